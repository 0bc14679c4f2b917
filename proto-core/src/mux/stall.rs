//! The send-stall rule: output waits and the driver takes none of it.
//!
//! A driver stops calling `poll_transmit` while its own queue to the
//! transport is full, so a peer that does not read stops the calls. Such a
//! peer can still send (PINGs, data), which keeps every input-based timer
//! happy while what we owe it stays in memory; only the absence of takes
//! shows it.

use crate::time::{Duration, Instant};

/// Since when output has been seen waiting without being taken.
///
/// `poll_transmit` and commands carry no clock, and the latest input's time
/// may be long past when they run. So the wait is stamped only by calls that
/// carry the time (inputs and timers) that find output waiting, and any
/// `poll_transmit` call ends it. The wait is thereby never overestimated:
/// it may start as late as the first such call after the last take.
#[derive(Debug, Default)]
pub(super) struct SendStall {
    since: Option<Instant>,
}

impl SendStall {
    /// A call with the time `now` found output `waiting` (or not).
    pub fn observe(&mut self, now: Instant, waiting: bool) {
        if !waiting {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(now);
        }
    }

    /// `poll_transmit` was called: the driver takes output (or there was
    /// none to take).
    pub fn taken(&mut self) {
        self.since = None;
    }

    /// When the connection counts as stalled, while output is `waiting`.
    /// Output not yet stamped by a timed call gets a deadline from
    /// `latest`, the latest known time: if that is stale it fires early,
    /// and the timer's own call stamps the wait and re-arms it.
    pub fn deadline(
        &self,
        latest: Instant,
        waiting: bool,
        timeout: Option<Duration>,
    ) -> Option<Instant> {
        let timeout = timeout?;
        waiting.then(|| self.since.unwrap_or(latest) + timeout)
    }

    /// Output has waited untaken for `timeout` at `now`.
    pub fn stalled(&self, now: Instant, timeout: Option<Duration>) -> bool {
        match (self.since, timeout) {
            (Some(since), Some(t)) => now >= since + t,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    const T: Option<Duration> = Some(Duration::from_secs(30));

    #[test]
    fn a_wait_counts_from_the_first_timed_call_that_sees_it() {
        let mut s = SendStall::default();
        s.observe(at(5), true);
        s.observe(at(20), true); // still the same wait
        assert_eq!(s.deadline(at(20), true, T), Some(at(35)));
        assert!(!s.stalled(at(34), T));
        assert!(s.stalled(at(35), T));
    }

    #[test]
    fn a_take_ends_the_wait_and_the_next_timed_call_restarts_it() {
        let mut s = SendStall::default();
        s.observe(at(0), true);
        s.taken();
        assert!(!s.stalled(at(100), T));
        s.observe(at(40), true);
        assert_eq!(s.deadline(at(40), true, T), Some(at(70)));
    }

    #[test]
    fn nothing_waiting_arms_nothing() {
        let mut s = SendStall::default();
        s.observe(at(0), true);
        s.observe(at(10), false);
        assert_eq!(s.deadline(at(10), false, T), None);
        assert!(!s.stalled(at(100), T));
    }

    #[test]
    fn an_unstamped_wait_is_armed_from_the_latest_time_and_stamped_when_it_fires() {
        let mut s = SendStall::default();
        // A command queued output after an input at 0: no stamp yet.
        assert_eq!(s.deadline(at(0), true, T), Some(at(30)));
        // The timer fires (perhaps much later): it stamps, not closes.
        s.observe(at(500), true);
        assert!(!s.stalled(at(500), T));
        assert_eq!(s.deadline(at(500), true, T), Some(at(530)));
    }

    #[test]
    fn no_timeout_never_stalls() {
        let mut s = SendStall::default();
        s.observe(at(0), true);
        assert_eq!(s.deadline(at(0), true, None), None);
        assert!(!s.stalled(at(1_000_000), None));
    }
}
