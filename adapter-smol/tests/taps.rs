//! The transport-services conformance cases on smol: racing, messages,
//! Clone and Listen, then rendezvous.

use adapter_core::conformance::taps::TapsHarness;
use adapter_core::conformance::BoxFuture;

struct Smol;

impl TapsHarness for Smol {
    type Net = adapter_smol::SmolRuntime;

    fn net(&self) -> Self::Net {
        adapter_smol::SmolRuntime
    }

    fn block_on(&self, task: BoxFuture<()>) {
        smol::block_on(task)
    }
}

mod racing {
    use super::Smol;
    adapter_core::taps_conformance_tests!(Smol);
}

mod rendezvous {
    use super::Smol;
    adapter_core::taps_rendezvous_conformance_tests!(Smol);
}
