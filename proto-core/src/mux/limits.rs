//! Per-second caps on work a peer can make us do for free (resets, pings).

use super::error::ProtocolError;
use crate::time::{Duration, Instant};

/// Counts the peer's resets and pings in one shared window.
///
/// The window is fixed, not sliding: it restarts at the first counted event
/// a second or more after it opened, and both counts restart with it. So a
/// peer can get up to twice a cap through around a window boundary; the caps
/// only need to bound work per unit of time, and a fixed window costs two
/// counters instead of a timestamp per event. Time comes from the caller
/// (the latest input's), so the window never moves on its own.
#[derive(Debug)]
pub(super) struct RateLimits {
    window: Instant,
    resets: u32,
    pings: u32,
}

impl RateLimits {
    pub fn new(now: Instant) -> Self {
        RateLimits {
            window: now,
            resets: 0,
            pings: 0,
        }
    }

    fn tick(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.resets = 0;
            self.pings = 0;
        }
    }

    /// Counts one reset (a RESET_FLOW, a yamux RST, or a yamux open we
    /// refused with RST): more than `max` in the window is a flood.
    pub fn reset(&mut self, now: Instant, max: u32) -> Result<(), ProtocolError> {
        self.tick(now);
        self.resets += 1;
        if self.resets > max {
            return Err(ProtocolError::ResetFlood);
        }
        Ok(())
    }

    /// Counts one PING from the peer: each costs us a PONG.
    pub fn ping(&mut self, now: Instant, max: u32) -> Result<(), ProtocolError> {
        self.tick(now);
        self.pings += 1;
        if self.pings > max {
            return Err(ProtocolError::PingFlood);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn resets_over_the_cap_are_a_flood() {
        let mut l = RateLimits::new(at(0));
        for _ in 0..3 {
            assert_eq!(l.reset(at(10), 3), Ok(()));
        }
        assert_eq!(l.reset(at(20), 3), Err(ProtocolError::ResetFlood));
    }

    #[test]
    fn the_window_restarts_after_a_second() {
        let mut l = RateLimits::new(at(0));
        for _ in 0..3 {
            l.reset(at(500), 3).unwrap();
        }
        // 999 ms after the window opened: still the same window.
        assert_eq!(l.reset(at(999), 3), Err(ProtocolError::ResetFlood));
        let mut l = RateLimits::new(at(0));
        for _ in 0..3 {
            l.reset(at(500), 3).unwrap();
        }
        // A full second: a fresh window, counted from this event.
        assert_eq!(l.reset(at(1000), 3), Ok(()));
        for _ in 0..2 {
            l.reset(at(1999), 3).unwrap();
        }
        assert_eq!(l.reset(at(1999), 3), Err(ProtocolError::ResetFlood));
    }

    #[test]
    fn pings_and_resets_count_apart_but_share_the_window() {
        let mut l = RateLimits::new(at(0));
        l.reset(at(0), 1).unwrap();
        // A ping does not spend reset budget ...
        l.ping(at(0), 1).unwrap();
        assert_eq!(l.ping(at(0), 1), Err(ProtocolError::PingFlood));
        // ... and a ping after a second restarts the reset count too.
        l.ping(at(1000), 1).unwrap();
        assert_eq!(l.reset(at(1000), 1), Ok(()));
    }

    #[test]
    fn a_cap_of_zero_refuses_the_first() {
        let mut l = RateLimits::new(at(0));
        assert_eq!(l.ping(at(0), 0), Err(ProtocolError::PingFlood));
        assert_eq!(l.reset(at(0), 0), Err(ProtocolError::ResetFlood));
    }
}
