//! One token bucket for every rate limit in the core: the mux's limits on
//! work a peer makes us do (PINGs, resets, refused opens) and admission's
//! per-source rate of new handshakes.
//!
//! A bucket lets `burst` events through at once and then `per_second`;
//! a fixed counting window would punish a legitimate burst as hard as a
//! flood and let twice the cap through around a window boundary (nghttp2
//! uses a bucket against Rapid Reset for the same reason). The bucket
//! stores what was spent, not what is left, so a new one is full without
//! knowing its burst. A token is 10^9 units and refill adds `elapsed
//! nanoseconds * per_second`: integers only, exact and the same on every
//! platform. Time comes from the caller, and a `now` earlier than the
//! latest refills nothing.

use crate::time::Instant;

/// One token in the bucket's units.
const TOKEN: u64 = 1_000_000_000;

/// A sustained rate and a burst. A rate of 0 never refills; a burst of 0
/// admits nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    per_second: u64,
    /// The burst in units.
    cap: u64,
}

impl Rate {
    pub(crate) fn new(per_second: u32, burst: u32) -> Rate {
        Rate {
            per_second: u64::from(per_second),
            cap: u64::from(burst) * TOKEN,
        }
    }

    /// Nanoseconds until `units` have refilled, rounded up; `None` never.
    fn time_for(self, units: u64) -> Option<u64> {
        match self.per_second {
            0 if units > 0 => None,
            0 => Some(0),
            r => Some(units.div_ceil(r)),
        }
    }
}

/// A token bucket; see the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Units spent and not yet refilled as of `at`.
    spent: u64,
    at: Option<Instant>,
}

impl Bucket {
    /// Units spent and not refilled at `now`.
    fn spent_at(&self, rate: Rate, now: Instant) -> u64 {
        let Some(at) = self.at else { return 0 };
        let elapsed = now.as_nanos().saturating_sub(at.as_nanos());
        self.spent
            .saturating_sub(elapsed.saturating_mul(rate.per_second))
    }

    /// Whether a token is available at `now`.
    pub(crate) fn conforms(&self, rate: Rate, now: Instant) -> bool {
        self.spent_at(rate, now) + TOKEN <= rate.cap
    }

    /// Takes a token at `now`, available or not (callers ask
    /// [`conforms`](Self::conforms) first).
    pub(crate) fn take(&mut self, rate: Rate, now: Instant) {
        self.spent = self.spent_at(rate, now).saturating_add(TOKEN);
        self.at = Some(self.at.map_or(now, |at| at.max(now)));
    }

    /// Takes a token at `now` if one is available.
    pub(crate) fn try_take(&mut self, rate: Rate, now: Instant) -> bool {
        let ok = self.conforms(rate, now);
        if ok {
            self.take(rate, now);
        }
        ok
    }

    /// When the next token is available (`Instant::MAX`: never).
    pub(crate) fn next_token(&self, rate: Rate) -> Instant {
        let Some(at) = self.at else {
            return if rate.cap >= TOKEN {
                Instant::ZERO
            } else {
                Instant::MAX
            };
        };
        if rate.cap < TOKEN {
            return Instant::MAX;
        }
        let excess = (self.spent + TOKEN).saturating_sub(rate.cap);
        rate.time_for(excess).map_or(Instant::MAX, |ns| {
            Instant::from_nanos(at.as_nanos().saturating_add(ns))
        })
    }

    /// When it is full again (nothing spent), in nanoseconds; `u64::MAX`
    /// never.
    pub(crate) fn full_at(&self, rate: Rate) -> u64 {
        let at = self.at.map_or(0, |at| at.as_nanos());
        rate.time_for(self.spent)
            .map_or(u64::MAX, |ns| at.saturating_add(ns))
    }

    /// Full at `now`: forgetting it loses nothing (a new bucket is full).
    pub(crate) fn is_full(&self, rate: Rate, now: Instant) -> bool {
        self.spent_at(rate, now) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    fn take(b: &mut Bucket, now: Instant, rate: u32, burst: u32) -> bool {
        b.try_take(Rate::new(rate, burst), now)
    }

    #[test]
    fn a_full_burst_passes_at_once_and_one_more_does_not() {
        let mut b = Bucket::default();
        for _ in 0..256 {
            assert!(take(&mut b, at(0), 100, 256));
        }
        assert!(!take(&mut b, at(0), 100, 256));
    }

    #[test]
    fn the_bucket_refills_at_the_sustained_rate() {
        let mut b = Bucket::default();
        for _ in 0..4 {
            assert!(take(&mut b, at(0), 10, 4));
        }
        // 10/s is one token per 100 ms: 99 ms is not enough ...
        assert!(!take(&mut b, at(99), 10, 4));
        // ... 100 ms is exactly one.
        assert!(take(&mut b, at(100), 10, 4));
        assert!(!take(&mut b, at(100), 10, 4));
        // A long pause refills to the burst, never beyond.
        for _ in 0..4 {
            assert!(take(&mut b, at(60_000), 10, 4));
        }
        assert!(!take(&mut b, at(60_000), 10, 4));
    }

    #[test]
    fn a_sustained_flood_above_the_rate_runs_dry() {
        // 20/s against a rate of 10/s and a burst of 5: the bucket loses
        // half a token per event, so it is empty after about 10 events.
        let mut b = Bucket::default();
        let refused = (0..100u64).position(|i| !take(&mut b, at(i * 50), 10, 5));
        assert_eq!(refused, Some(9));
        // At the rate itself it never runs dry.
        let mut b = Bucket::default();
        assert!((0..1000u64).all(|i| take(&mut b, at(i * 100), 10, 1)));
    }

    #[test]
    fn time_going_back_refills_nothing() {
        let mut b = Bucket::default();
        assert!(take(&mut b, at(1000), 1, 1));
        assert!(!take(&mut b, at(0), 1, 1));
        // The bucket keeps the latest time: going back did not move it.
        assert!(!take(&mut b, at(1999), 1, 1));
        assert!(take(&mut b, at(2000), 1, 1));
    }

    #[test]
    fn extreme_rates_and_bursts_do_not_overflow() {
        let mut b = Bucket::default();
        for _ in 0..1000 {
            assert!(take(&mut b, at(0), u32::MAX, u32::MAX));
        }
        assert!(take(&mut b, Instant::MAX, u32::MAX, u32::MAX));
        let mut b = Bucket::default();
        assert!(
            !take(&mut b, at(0), u32::MAX, 0),
            "a burst of 0 admits nothing"
        );
        let slow = Rate::new(1, u32::MAX);
        b.take(slow, Instant::MAX);
        assert!(b.conforms(slow, Instant::MAX));
    }

    #[test]
    fn burst_then_rate_with_the_next_token_and_when_full() {
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
        assert!(b.is_full(rate, Instant::from_nanos(1_400_000_000)));
        assert_eq!(b.full_at(rate), 1_400_000_000);
    }

    #[test]
    fn a_rate_of_zero_never_refills() {
        let rate = Rate::new(0, 2);
        let mut b = Bucket::default();
        assert!(b.try_take(rate, at(0)));
        assert!(b.try_take(rate, at(0)));
        assert!(!b.try_take(rate, at(1_000_000)));
        assert_eq!(b.next_token(rate), Instant::MAX);
        assert_eq!(b.full_at(rate), u64::MAX);
    }
}
