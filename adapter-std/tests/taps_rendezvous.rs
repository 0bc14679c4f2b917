//! The rendezvous conformance cases on std.

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

adapter_core::taps_rendezvous_conformance_tests!(Threads);
