//! What a race is given: its limits ([`RaceConfig`]) and what is known
//! about the remote when it starts ([`RacePlan`]).

use crate::taps::candidate::Stack;
use crate::taps::endpoint::{Endpoint, Family};
use crate::time::Duration;
use alloc::vec::Vec;

/// The race's timings and bounds. [`Default`] gives the values documented
/// on each field (RFC 8305 section 8 and the Happy Eyeballs v3 draft
/// recommend the timings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceConfig {
    /// How long an answer for the other family waits for the preferred
    /// family's answer before its attempts start. Default 50 ms.
    pub resolution_delay: Duration,
    /// The family tried first when both have addresses. Default
    /// [`Family::V6`].
    pub preferred_family: Family,
    /// How many addresses of the preferred family are tried before the
    /// families alternate (0 counts as 1). Default 1.
    pub first_family_count: usize,
    /// The delay between two attempt starts when the plan has no RTT
    /// estimate. Default 250 ms. Used as given (0 starts every candidate
    /// at once).
    pub attempt_delay: Duration,
    /// With an RTT estimate the delay is `rtt * rtt_multiplier`, clamped
    /// to [`min_attempt_delay`](Self::min_attempt_delay),
    /// [`max_attempt_delay`](Self::max_attempt_delay). Default 2: a
    /// connect takes one RTT, so twice that is "clearly slow".
    pub rtt_multiplier: u32,
    /// The lower clamp of the RTT-derived delay. Default 100 ms: below
    /// that, attempts pile up on a congested link.
    pub min_attempt_delay: Duration,
    /// The upper clamp of the RTT-derived delay. Default 2 s: a stale
    /// estimate from a slow network must not hold back the next attempt
    /// longer than that.
    pub max_attempt_delay: Duration,
    /// From the race's creation until every attempt still pending is
    /// cancelled and reported timed out. Default 30 s.
    pub establishment_timeout: Duration,
    /// Addresses kept per family (answers and literals together; further
    /// addresses are dropped). Default 16: a huge answer costs nothing,
    /// and the candidates kept are at most five stacks times 32
    /// endpoints (Unix paths count as a third family).
    pub max_endpoints_per_family: usize,
    /// Attempts started at most; once reached the race waits for those
    /// running and fails when they do. Default 32.
    pub max_attempts: usize,
}

impl Default for RaceConfig {
    fn default() -> Self {
        RaceConfig {
            resolution_delay: Duration::from_millis(50),
            preferred_family: Family::V6,
            first_family_count: 1,
            attempt_delay: Duration::from_millis(250),
            rtt_multiplier: 2,
            min_attempt_delay: Duration::from_millis(100),
            max_attempt_delay: Duration::from_secs(2),
            establishment_timeout: Duration::from_secs(30),
            max_endpoints_per_family: 16,
            max_attempts: 32,
        }
    }
}

impl RaceConfig {
    /// The delay between attempt starts for this remote: `attempt_delay`
    /// without an estimate, else `rtt * rtt_multiplier` clamped to
    /// `[min_attempt_delay, max_attempt_delay]` (when the clamps are
    /// inverted the maximum wins).
    ///
    /// ```
    /// use proto_core::taps::race::RaceConfig;
    /// use proto_core::time::Duration;
    /// let c = RaceConfig::default();
    /// assert_eq!(c.attempt_delay_for(None), Duration::from_millis(250));
    /// assert_eq!(c.attempt_delay_for(Some(Duration::from_millis(80))), Duration::from_millis(160));
    /// assert_eq!(c.attempt_delay_for(Some(Duration::from_millis(10))), Duration::from_millis(100));
    /// assert_eq!(c.attempt_delay_for(Some(Duration::from_secs(5))), Duration::from_secs(2));
    /// ```
    pub fn attempt_delay_for(&self, rtt: Option<Duration>) -> Duration {
        match rtt {
            None => self.attempt_delay,
            Some(rtt) => rtt
                .saturating_mul(self.rtt_multiplier)
                .max(self.min_attempt_delay)
                .min(self.max_attempt_delay),
        }
    }
}

/// What is known about the remote when the race starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RacePlan {
    /// The protocol stacks, most preferred first (duplicates are ignored).
    /// IP endpoints are raced on every stack but [`Stack::Unix`], Unix
    /// paths only on [`Stack::Unix`].
    pub stacks: Vec<Stack>,
    /// Endpoints known without resolution: IP literals and Unix paths, in
    /// preference order within their family. Literals come before
    /// resolved addresses of their family.
    pub endpoints: Vec<Endpoint>,
    /// The families whose resolution (AAAA for V6, A for V4) is still
    /// running; each ends with [`Race::on_answer`](super::Race::on_answer)
    /// or [`Race::on_resolution_failed`](super::Race::on_resolution_failed).
    pub resolving: Vec<Family>,
    /// A smoothed RTT to this remote from a cache, if any: it sets the
    /// attempt delay (see [`RaceConfig::attempt_delay_for`]).
    pub rtt_estimate: Option<Duration>,
}
