//! The admission limits, each with its default and why.

use crate::time::Duration;
use core::fmt;

/// What happens to a handshake over a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Excess {
    /// Refuse it at once: the connection is closed unread. Costs nothing
    /// under attack; a legitimate client retries. The default.
    #[default]
    Refuse,
    /// Let it wait, unread, in a bounded queue until a slot frees or
    /// [`AdmissionConfig::queue_timeout`] passes. Kinder to bursts of
    /// legitimate clients (many behind one NAT), at the cost of one open
    /// socket per queued entry.
    Queue,
}

/// Admission limits. Every limit is a field; [`Default`] gives the values
/// documented on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Handshakes in progress at once, all sources together. Default 256:
    /// a handshake costs a few hundred microseconds of CPU spread over a
    /// round trip or two, so 256 keeps every core busy on any real link
    /// while bounding the memory held by half-open connections (each has a
    /// driver and receive buffer).
    pub max_in_progress: u32,
    /// Handshakes in progress at once from one source. Default 8: more
    /// than a client opening a pool in parallel needs, and one source can
    /// hold at most 1/32 of the total.
    pub max_in_progress_per_source: u32,
    /// New handshakes a second one source may start, sustained. Default
    /// 32: at well under a millisecond of CPU each, one source costs at
    /// most a few percent of a core (the flood that prompted this made
    /// 5,240 a second).
    pub rate_per_source: u32,
    /// New handshakes one source may start back to back before the rate
    /// applies. Default 64: a client reconnecting its pool after a restart
    /// is not slowed down.
    pub burst_per_source: u32,
    /// Sources tracked at once. When a new source arrives with the table
    /// full, a source with nothing in progress or queued is forgotten (one
    /// whose bucket is full first, since forgetting it loses nothing, else
    /// the one whose bucket refills soonest); if every tracked source has
    /// something in progress or queued, the new one is refused. Default
    /// 4096 (a few hundred KiB), more than `max_in_progress + max_queued`,
    /// so there is always an idle source to forget.
    pub max_sources: u32,
    /// Bits of an IPv6 address that name a source (at most 128). Default
    /// 64: a host usually gets a whole /64, so counting addresses would
    /// let one host look like 2^64 sources.
    pub ipv6_prefix: u8,
    /// What happens to a handshake over a limit. Default
    /// [`Excess::Refuse`].
    pub excess: Excess,
    /// Handshakes waiting in the queue, all sources together
    /// ([`Excess::Queue`] only). Default 128: each holds an open socket,
    /// and 256 running plus 128 waiting stays far below the usual
    /// 1024-descriptor limit.
    pub max_queued: u32,
    /// Handshakes waiting from one source. Default 8, so a flooding source
    /// holds at most 1/16 of the queue.
    pub max_queued_per_source: u32,
    /// How long a handshake may wait in the queue before its connection is
    /// closed. Default 5 s: shorter than the usual client connect timeout,
    /// so the client sees a close it can retry, not a hang.
    pub queue_timeout: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_in_progress: 256,
            max_in_progress_per_source: 8,
            rate_per_source: 32,
            burst_per_source: 64,
            max_sources: 4096,
            ipv6_prefix: 64,
            excess: Excess::Refuse,
            max_queued: 128,
            max_queued_per_source: 8,
            queue_timeout: Duration::from_secs(5),
        }
    }
}

impl AdmissionConfig {
    /// Limits high enough never to apply in practice: admission off (for
    /// measurements and trusted networks). The table of sources stays
    /// bounded.
    pub fn unlimited() -> Self {
        AdmissionConfig {
            max_in_progress: u32::MAX,
            max_in_progress_per_source: u32::MAX,
            rate_per_source: u32::MAX,
            burst_per_source: u32::MAX,
            ..AdmissionConfig::default()
        }
    }

    /// Checks that no limit is zero (a zero limit would refuse everything:
    /// that is a mistake, not a policy) and the prefix fits.
    pub fn validate(&self) -> Result<(), AdmissionConfigError> {
        let zero = [
            ("max_in_progress", self.max_in_progress),
            (
                "max_in_progress_per_source",
                self.max_in_progress_per_source,
            ),
            ("rate_per_source", self.rate_per_source),
            ("burst_per_source", self.burst_per_source),
            ("max_sources", self.max_sources),
        ]
        .into_iter()
        .chain(match self.excess {
            Excess::Refuse => None,
            Excess::Queue => Some(("max_queued", self.max_queued)),
        })
        .chain(match self.excess {
            Excess::Refuse => None,
            Excess::Queue => Some(("max_queued_per_source", self.max_queued_per_source)),
        })
        .find(|(_, v)| *v == 0);
        if let Some((name, _)) = zero {
            return Err(AdmissionConfigError::Zero(name));
        }
        if self.ipv6_prefix > 128 {
            return Err(AdmissionConfigError::Ipv6Prefix(self.ipv6_prefix));
        }
        Ok(())
    }
}

/// A config [`Admission::new`](super::Admission::new) refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdmissionConfigError {
    /// This limit is zero.
    Zero(&'static str),
    /// `ipv6_prefix` is above 128.
    Ipv6Prefix(u8),
}

impl fmt::Display for AdmissionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdmissionConfigError::Zero(name) => write!(f, "admission limit {name} is zero"),
            AdmissionConfigError::Ipv6Prefix(p) => {
                write!(f, "ipv6_prefix is {p} bits (at most 128)")
            }
        }
    }
}

impl core::error::Error for AdmissionConfigError {}
