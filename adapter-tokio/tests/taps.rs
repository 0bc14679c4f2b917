//! The transport-services conformance cases on tokio: racing, messages,
//! Clone and Listen, then rendezvous.

use adapter_core::conformance::taps::TapsHarness;
use adapter_core::conformance::BoxFuture;

struct Tokio(tokio::runtime::Runtime);

impl Tokio {
    fn new() -> Self {
        Tokio(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime"),
        )
    }
}

impl TapsHarness for Tokio {
    type Net = adapter_tokio::TokioRuntime;

    fn net(&self) -> Self::Net {
        adapter_tokio::TokioRuntime
    }

    fn block_on(&self, task: BoxFuture<()>) {
        self.0.block_on(task)
    }
}

mod racing {
    use super::Tokio;
    adapter_core::taps_conformance_tests!(Tokio::new());
}

mod rendezvous {
    use super::Tokio;
    adapter_core::taps_rendezvous_conformance_tests!(Tokio::new());
}
