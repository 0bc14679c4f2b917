//! Token buckets on work a peer can make us do for free: a PONG for each
//! PING, bookkeeping for each reset, an RST for each yamux open we refuse.

use super::config::Config;
use super::error::ProtocolError;
use crate::time::Instant;

/// One token in the bucket's units. Refill adds `elapsed nanoseconds *
/// rate per second`, so a token is 10^9 units and the arithmetic stays in
/// integers, exact and the same on every platform.
const TOKEN: u64 = 1_000_000_000;

/// A token bucket: up to `burst` events at once, `rate` per second after.
///
/// A fixed counting window punished a legitimate burst as hard as a flood
/// and let twice the cap through around a window boundary; a bucket lets a
/// burst through and then holds the peer to the sustained rate, as nghttp2
/// does against Rapid Reset. It stores what was spent, not what is left,
/// so it starts full without knowing `burst` when the connection is made.
/// Time comes from the caller (the latest input's), so it never refills on
/// its own, and a `now` earlier than the last one refills nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Bucket {
    /// Units spent and not yet refilled, at most `burst` tokens.
    spent: u64,
    at: Option<Instant>,
}

impl Bucket {
    /// Takes one token at `now`; `false` if the bucket is empty.
    pub fn take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        let elapsed = match self.at {
            Some(at) => now.as_nanos().saturating_sub(at.as_nanos()),
            None => 0,
        };
        self.at = Some(self.at.map_or(now, |at| at.max(now)));
        let refill = elapsed.saturating_mul(u64::from(rate));
        self.spent = self.spent.saturating_sub(refill);
        let cap = u64::from(burst) * TOKEN;
        if self.spent + TOKEN > cap {
            return false;
        }
        self.spent += TOKEN;
        true
    }
}

/// The peer's pings, resets and refused opens, each in its own bucket: a
/// burst of one does not eat into the others.
#[derive(Debug, Default)]
pub(super) struct RateLimits {
    pings: Bucket,
    resets: Bucket,
    refused_opens: Bucket,
}

impl RateLimits {
    pub fn new() -> Self {
        RateLimits::default()
    }

    /// One PING from the peer: each costs us a PONG.
    pub fn ping(&mut self, now: Instant, c: &Config) -> Result<(), ProtocolError> {
        let (rate, burst) = (c.max_pings_per_sec, c.ping_burst);
        if self.pings.take(now, rate, burst) {
            return Ok(());
        }
        Err(ProtocolError::PingFlood { rate, burst })
    }

    /// One reset from the peer (a RESET_FLOW or a yamux RST).
    pub fn reset(&mut self, now: Instant, c: &Config) -> Result<(), ProtocolError> {
        let (rate, burst) = (c.max_resets_per_sec, c.reset_burst);
        if self.resets.take(now, rate, burst) {
            return Ok(());
        }
        Err(ProtocolError::ResetFlood { rate, burst })
    }

    /// One yamux open we refuse with RST (beyond our flow limit or after
    /// our GOAWAY): each costs us an RST.
    pub fn refused_open(&mut self, now: Instant, c: &Config) -> Result<(), ProtocolError> {
        let (rate, burst) = (c.max_refused_opens_per_sec, c.refused_open_burst);
        if self.refused_opens.take(now, rate, burst) {
            return Ok(());
        }
        Err(ProtocolError::OpenFlood { rate, burst })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn a_full_burst_passes_at_once_and_one_more_does_not() {
        let mut b = Bucket::default();
        for _ in 0..256 {
            assert!(b.take(at(0), 100, 256));
        }
        assert!(!b.take(at(0), 100, 256));
    }

    #[test]
    fn the_bucket_refills_at_the_sustained_rate() {
        let mut b = Bucket::default();
        for _ in 0..4 {
            assert!(b.take(at(0), 10, 4));
        }
        // 10/s is one token per 100 ms: 99 ms is not enough ...
        assert!(!b.take(at(99), 10, 4));
        // ... 100 ms is exactly one.
        assert!(b.take(at(100), 10, 4));
        assert!(!b.take(at(100), 10, 4));
        // A long pause refills to the burst, never beyond.
        for _ in 0..4 {
            assert!(b.take(at(60_000), 10, 4));
        }
        assert!(!b.take(at(60_000), 10, 4));
    }

    #[test]
    fn a_sustained_flood_above_the_rate_runs_dry() {
        // 20/s against a rate of 10/s and a burst of 5: the bucket loses
        // half a token per event, so it is empty after about 10 events.
        let mut b = Bucket::default();
        let refused = (0..100u64).position(|i| !b.take(at(i * 50), 10, 5));
        assert_eq!(refused, Some(9));
        // At the rate itself it never runs dry.
        let mut b = Bucket::default();
        assert!((0..1000u64).all(|i| b.take(at(i * 100), 10, 1)));
    }

    #[test]
    fn time_going_back_refills_nothing() {
        let mut b = Bucket::default();
        assert!(b.take(at(1000), 1, 1));
        assert!(!b.take(at(0), 1, 1));
        // The bucket keeps the latest time: going back did not move it.
        assert!(!b.take(at(1999), 1, 1));
        assert!(b.take(at(2000), 1, 1));
    }

    #[test]
    fn extreme_rates_and_bursts_do_not_overflow() {
        let mut b = Bucket::default();
        for _ in 0..1000 {
            assert!(b.take(at(0), u32::MAX, u32::MAX));
        }
        assert!(b.take(Instant::MAX, u32::MAX, u32::MAX));
        let mut b = Bucket::default();
        assert!(!b.take(at(0), u32::MAX, 0), "a burst of 0 admits nothing");
    }

    #[test]
    fn each_kind_has_its_own_bucket_and_error() {
        let c = Config {
            max_pings_per_sec: 1,
            ping_burst: 1,
            max_resets_per_sec: 2,
            reset_burst: 1,
            max_refused_opens_per_sec: 3,
            refused_open_burst: 1,
            ..Config::default()
        };
        let mut l = RateLimits::new();
        l.ping(at(0), &c).unwrap();
        l.reset(at(0), &c).unwrap();
        l.refused_open(at(0), &c).unwrap();
        assert_eq!(
            l.ping(at(0), &c),
            Err(ProtocolError::PingFlood { rate: 1, burst: 1 })
        );
        assert_eq!(
            l.reset(at(0), &c),
            Err(ProtocolError::ResetFlood { rate: 2, burst: 1 })
        );
        assert_eq!(
            l.refused_open(at(0), &c),
            Err(ProtocolError::OpenFlood { rate: 3, burst: 1 })
        );
    }
}
