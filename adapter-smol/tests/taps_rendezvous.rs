//! The rendezvous conformance cases on smol.

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

adapter_core::taps_rendezvous_conformance_tests!(Smol);
