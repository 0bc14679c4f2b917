//! The transport-services conformance cases on std: racing, messages,
//! Clone and Listen, then rendezvous.

use adapter_core::conformance::taps::TapsHarness;
use adapter_core::conformance::BoxFuture;

struct Threads;

impl TapsHarness for Threads {
    type Net = adapter_std::Threads;

    fn net(&self) -> Self::Net {
        adapter_std::Threads
    }

    fn block_on(&self, task: BoxFuture<()>) {
        adapter_core::block_on(task)
    }
}

mod racing {
    use super::Threads;
    adapter_core::taps_conformance_tests!(Threads);
}

mod rendezvous {
    use super::Threads;
    adapter_core::taps_rendezvous_conformance_tests!(Threads);
}
