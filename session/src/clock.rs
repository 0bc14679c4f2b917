//! The machines' clock: time since an origin this process picked, and the
//! wall clock for the timestamps a session carries.

use proto_core::time::Instant as CoreInstant;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Converts between tokio's clock and a machine's `Instant`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// Now, as a machine instant.
    pub(crate) fn now(&self) -> CoreInstant {
        adapter_core::to_core(self.origin, Instant::now())
    }

    /// A machine deadline on tokio's clock.
    pub(crate) fn deadline(&self, at: CoreInstant) -> tokio::time::Instant {
        let at = self.origin + std::time::Duration::from_nanos(at.as_nanos());
        tokio::time::Instant::from_std(at)
    }
}

/// Milliseconds since the Unix epoch (0 on a clock set before 1970).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
