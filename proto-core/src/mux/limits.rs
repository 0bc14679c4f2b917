//! Token buckets ([`crate::rate`]) on work a peer can make us do for
//! free: a PONG for each PING, bookkeeping for each reset, an RST for each
//! yamux open we refuse.

use super::config::Config;
use super::error::ProtocolError;
use crate::rate::{Bucket, Rate};
use crate::time::Instant;

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
        if self.pings.try_take(Rate::new(rate, burst), now) {
            return Ok(());
        }
        Err(ProtocolError::PingFlood { rate, burst })
    }

    /// One reset from the peer (a RESET_FLOW or a yamux RST).
    pub fn reset(&mut self, now: Instant, c: &Config) -> Result<(), ProtocolError> {
        let (rate, burst) = (c.max_resets_per_sec, c.reset_burst);
        if self.resets.try_take(Rate::new(rate, burst), now) {
            return Ok(());
        }
        Err(ProtocolError::ResetFlood { rate, burst })
    }

    /// One yamux open we refuse with RST (beyond our flow limit or after
    /// our GOAWAY): each costs us an RST.
    pub fn refused_open(&mut self, now: Instant, c: &Config) -> Result<(), ProtocolError> {
        let (rate, burst) = (c.max_refused_opens_per_sec, c.refused_open_burst);
        if self.refused_opens.try_take(Rate::new(rate, burst), now) {
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
