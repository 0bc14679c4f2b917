//! A token bucket kept as one instant (the generic cell rate algorithm):
//! the moment the bucket would be full again. Integer nanoseconds only, so
//! it is exact and the same on every platform.

use crate::time::Instant;

/// A source's bucket of new handshakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Bucket {
    /// When the bucket is full again; at or before `now` it is full.
    full_at: u64,
}

/// A rate and burst turned into nanoseconds once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    /// Nanoseconds one token takes to come back.
    interval: u64,
    /// How far `full_at` may run ahead of `now` and still hand out a token:
    /// `burst - 1` intervals.
    slack: u64,
}

impl Rate {
    /// `per_second` tokens a second, up to `burst` at once (both at least 1:
    /// the config is validated before this runs).
    pub(crate) fn new(per_second: u32, burst: u32) -> Rate {
        let interval = 1_000_000_000 / u64::from(per_second.max(1));
        let slack = u64::from(burst.max(1) - 1).saturating_mul(interval);
        Rate { interval, slack }
    }
}

impl Bucket {
    /// Whether a token is available at `now`.
    pub(crate) fn conforms(&self, rate: Rate, now: Instant) -> bool {
        self.full_at <= now.as_nanos().saturating_add(rate.slack)
    }

    /// Takes a token (call only when [`conforms`](Self::conforms)).
    pub(crate) fn take(&mut self, rate: Rate, now: Instant) {
        self.full_at = self
            .full_at
            .max(now.as_nanos())
            .saturating_add(rate.interval);
    }

    /// When the next token is available.
    pub(crate) fn next_token(&self, rate: Rate) -> Instant {
        Instant::from_nanos(self.full_at.saturating_sub(rate.slack))
    }

    /// Full at `now`: forgetting it loses nothing (a new source starts full).
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        self.full_at <= now.as_nanos()
    }

    /// When it is full (the earliest is the cheapest to forget).
    pub(crate) fn full_at(&self) -> u64 {
        self.full_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let rate = Rate::new(10, 3);
        let mut b = Bucket::default();
        let t0 = Instant::from_nanos(1_000_000_000);
        for _ in 0..3 {
            assert!(b.conforms(rate, t0));
            b.take(rate, t0);
        }
        assert!(!b.conforms(rate, t0));
        assert_eq!(b.next_token(rate), Instant::from_nanos(1_100_000_000));
        let t1 = Instant::from_nanos(1_100_000_000);
        assert!(b.conforms(rate, t1));
        b.take(rate, t1);
        assert!(!b.conforms(rate, t1));
        assert!(b.is_full(Instant::from_nanos(1_400_000_000)));
    }

    #[test]
    fn extreme_rates_do_not_overflow() {
        let rate = Rate::new(u32::MAX, u32::MAX);
        let mut b = Bucket::default();
        b.take(rate, Instant::MAX);
        assert!(b.conforms(rate, Instant::MAX));
        let slow = Rate::new(1, u32::MAX);
        b.take(slow, Instant::MAX);
        assert!(b.conforms(slow, Instant::MAX));
    }
}
