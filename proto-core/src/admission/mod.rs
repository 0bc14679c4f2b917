//! Handshake admission: how many handshakes may run at once, in total and
//! per source address, how fast one source may start new ones, and what
//! happens to the excess.
//!
//! A secure server spends a Diffie-Hellman reply on every first message it
//! answers, so one source sending first messages as fast as it can takes a
//! core and delays everybody else's handshake. [`Admission`] decides, before
//! any byte is read, whether a new connection's handshake may start:
//!
//! - at most [`AdmissionConfig::max_in_progress`] handshakes run at once,
//!   and [`AdmissionConfig::max_in_progress_per_source`] per source;
//! - each source has a token bucket of new handshakes
//!   ([`AdmissionConfig::rate_per_source`] per second, bursts of
//!   [`AdmissionConfig::burst_per_source`]);
//! - the excess is refused at once ([`Excess::Refuse`]) or waits in a
//!   bounded queue ([`Excess::Queue`]) that admits sources in turn, so one
//!   flooding source cannot starve the others, and drops entries that
//!   waited [`AdmissionConfig::queue_timeout`];
//! - the table of tracked sources is bounded
//!   ([`AdmissionConfig::max_sources`], see [`Admission::offer`] for what is
//!   forgotten first).
//!
//! A source is an IPv4 address, or an IPv6 address cut to
//! [`AdmissionConfig::ipv6_prefix`] bits (one host usually owns a whole
//! /64, so per-address limits would not hold it back).
//!
//! Like every machine here it reads no clock: the driver passes `now`, and
//! re-arms its timer from [`Admission::poll_timeout`].
//!
//! ```
//! use proto_core::admission::{Admission, AdmissionConfig, Decision};
//! use proto_core::time::Instant;
//! use core::net::{IpAddr, Ipv4Addr};
//!
//! let mut adm = Admission::new(AdmissionConfig {
//!     max_in_progress_per_source: 1,
//!     ..AdmissionConfig::default()
//! })
//! .unwrap();
//! let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
//! let now = Instant::ZERO;
//! let Decision::Admit(ticket) = adm.offer(now, ip) else { panic!() };
//! let Decision::Refused(why) = adm.offer(now, ip) else { panic!() };
//! assert_eq!(why.to_string(), "source 127.0.0.1 has 1 handshakes in progress (limit 1)");
//! adm.finished(now, ticket);
//! assert!(matches!(adm.offer(now, ip), Decision::Admit(_)));
//! ```

mod config;
mod machine;
mod reason;
mod source;
#[cfg(test)]
mod tests;

pub use config::{AdmissionConfig, AdmissionConfigError, Excess};
pub use machine::{Admission, AdmissionStats, Decision, Ticket};
pub use reason::{Reason, RefusalCounts};
pub use source::Source;
