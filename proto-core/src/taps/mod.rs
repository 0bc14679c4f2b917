//! Transport services (TAPS: RFC 9622's API, RFC 9623's implementation,
//! Happy Eyeballs v3 racing), sans-IO.
//!
//! A [`preconnection`] holds what the application asks for (endpoints,
//! transport properties with five preference levels, security, send
//! parameters); [`selection`] turns it into an ordered candidate tree
//! (paths, then protocol stacks, then endpoints); [`race`] races the
//! candidates Happy-Eyeballs style as a pure machine (inputs: resolution
//! answers, attempt outcomes, time; outputs: start and cancel attempts,
//! events); [`connection`] is the message-oriented connection that runs
//! on the winner's byte stream, with [`framer`]s and [`message`]
//! properties. Adapters only resolve names, run attempts and timers.

pub mod cache;
pub mod candidate;
pub mod connection;
pub mod endpoint;
pub mod framer;
pub mod message;
pub mod preconnection;
pub mod properties;
pub mod race;
pub mod rendezvous;
pub mod selection;
