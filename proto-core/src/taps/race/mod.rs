//! Racing candidates Happy-Eyeballs style (RFC 8305 and
//! draft-ietf-happy-eyeballs-v3) as a pure machine: resolution answers,
//! attempt outcomes and time in; attempts to start and cancel, and one
//! terminal event, out. The adapter resolves names, runs the attempts
//! and the timer. See [`Race`] for the rules and the call order.

mod config;
mod machine;
mod order;
mod outcome;

pub use config::{RaceConfig, RacePlan};
pub use machine::Race;
pub use outcome::{
    Action, AttemptError, AttemptFailure, AttemptId, EstablishmentError, FailureCause, RaceEvent,
    ResolutionError, TimerReason,
};
