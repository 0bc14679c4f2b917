//! RFC 9622 Rendezvous (section 7.3) between two endpoints that know each
//! other's candidates: both listen and dial, several candidate
//! connections may come up, and exactly one survives, the same on both
//! sides.
//!
//! A small protocol runs on every candidate connection before the
//! message connection takes its stream over ([`wire`] has the bytes):
//! each side sends a hello with a 64-bit tie-break value; the lower value
//! decides and sends "chosen" on the one link it keeps. [`Link`] is that
//! handshake on one connection (a [`Machine`](crate::wire::Machine), so
//! the driver runs it on any byte stream); [`Rendezvous`] tracks one
//! side's links and says which to keep and which to close.

mod config;
mod coordinator;
mod error;
mod handover;
mod link;
pub mod wire;

pub use config::RendezvousConfig;
pub use coordinator::{Decision, LinkId, Rendezvous, RendezvousEvent};
pub use error::RendezvousError;
pub use handover::Handover;
pub use link::{Link, LinkEvent, Role};
