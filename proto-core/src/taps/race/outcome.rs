//! What a race says: the actions it asks of the adapter, its events, its
//! timers and its errors.

use crate::taps::candidate::Candidate;
use crate::taps::endpoint::Family;
use crate::time::Duration;
use alloc::vec::Vec;
use core::fmt;

/// One connection attempt, numbered from 0 in start order within a race.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(u64);

impl AttemptId {
    /// The attempt numbered `n`. Ids a race did not issue are ignored by
    /// its inputs.
    pub const fn from_raw(n: u64) -> Self {
        AttemptId(n)
    }

    /// The attempt's number.
    pub const fn as_raw(self) -> u64 {
        self.0
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt {}", self.0)
    }
}

/// What the race asks the adapter to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Start connecting to `candidate`; report the outcome with
    /// `attempt`.
    Start {
        /// The attempt's id.
        attempt: AttemptId,
        /// What to connect to.
        candidate: Candidate,
    },
    /// Abandon `attempt` and close whatever it built. Later outcomes for
    /// it are ignored.
    Cancel {
        /// The attempt to abandon.
        attempt: AttemptId,
    },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RaceEvent {
    /// An attempt failed (for logs; the race goes on).
    AttemptFailed(AttemptFailure),
    /// Terminal: `attempt` won; every other running attempt was cancelled.
    Ready {
        /// The winner.
        attempt: AttemptId,
        /// What it connected to.
        candidate: Candidate,
        /// From the winner's start to its connection (what an RTT cache
        /// wants).
        connect_time: Duration,
    },
    /// Terminal: no connection.
    Failed(EstablishmentError),
}

/// Why a timer is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerReason {
    /// The other family's answer waits for the preferred family's.
    ResolutionDelay,
    /// The next attempt starts.
    AttemptDelay,
    /// The race gives up.
    EstablishmentTimeout,
}

/// Why one attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptError {
    /// The remote refused (TCP RST, ICMP port unreachable, no listener).
    Refused,
    /// No route, network or host unreachable.
    Unreachable,
    /// The connection was reset during setup (a handshake layer's
    /// included).
    Reset,
    /// The establishment timeout passed while it was pending.
    TimedOut,
    /// The application cancelled the race while it was pending.
    Cancelled,
    /// Anything else, said briefly.
    Other(&'static str),
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Refused => f.write_str("refused"),
            AttemptError::Unreachable => f.write_str("unreachable"),
            AttemptError::Reset => f.write_str("reset"),
            AttemptError::TimedOut => f.write_str("timed out"),
            AttemptError::Cancelled => f.write_str("cancelled"),
            AttemptError::Other(why) => f.write_str(why),
        }
    }
}

impl core::error::Error for AttemptError {}

/// Why resolving one family failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolutionError {
    /// The name does not exist (NXDOMAIN).
    NoSuchName,
    /// The resolver failed (SERVFAIL, no server reachable).
    ServerFailure,
    /// The resolver did not answer in time.
    TimedOut,
    /// Anything else, said briefly.
    Other(&'static str),
}

impl fmt::Display for ResolutionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolutionError::NoSuchName => f.write_str("no such name"),
            ResolutionError::ServerFailure => f.write_str("server failure"),
            ResolutionError::TimedOut => f.write_str("timed out"),
            ResolutionError::Other(why) => f.write_str(why),
        }
    }
}

impl core::error::Error for ResolutionError {}

/// One attempt's failure: which, on what, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFailure {
    /// The attempt.
    pub attempt: AttemptId,
    /// What it connected to.
    pub candidate: Candidate,
    /// Why it failed.
    pub error: AttemptError,
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.attempt, self.candidate, self.error)
    }
}

/// Why the race ended without a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureCause {
    /// Every attempt failed and nothing is left to try.
    AllFailed,
    /// Resolution ended with no candidate to try at all.
    NoCandidates,
    /// The establishment timeout passed.
    TimedOut,
    /// The application cancelled.
    Cancelled,
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureCause::AllFailed => "every attempt failed",
            FailureCause::NoCandidates => "no candidate to try",
            FailureCause::TimedOut => "establishment timed out",
            FailureCause::Cancelled => "cancelled",
        })
    }
}

/// The race's failure: its cause, every attempt's error (in start order)
/// and every resolution error (at most one per family).
///
/// Display lists them all:
/// `connection establishment failed (every attempt failed): attempt 0
/// (tcp [2001:db8::1]:443): refused; A resolution: timed out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstablishmentError {
    /// Why the race ended.
    pub cause: FailureCause,
    /// Every attempt started, in start order, with its error.
    pub attempts: Vec<AttemptFailure>,
    /// Every family whose resolution failed, with why.
    pub resolution: Vec<(Family, ResolutionError)>,
}

impl fmt::Display for EstablishmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection establishment failed ({})", self.cause)?;
        let mut sep = ": ";
        for a in &self.attempts {
            write!(f, "{sep}{a}")?;
            sep = "; ";
        }
        for (family, e) in &self.resolution {
            let rr = match family {
                Family::V6 => "AAAA",
                Family::V4 => "A",
            };
            write!(f, "{sep}{rr} resolution: {e}")?;
            sep = "; ";
        }
        Ok(())
    }
}

impl core::error::Error for EstablishmentError {}
