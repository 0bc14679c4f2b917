//! weft's sans-IO core: protocol state machines with no IO, no clock, no
//! threads and no global state. `#![no_std]` + `alloc`.
//!
//! # The contract every state machine follows
//!
//! **Inputs.** `handle_input(now, &[u8])` for bytes received (any chunking;
//! `handle_input_bytes` takes a [`bytes::Bytes`] and avoids copying large
//! payloads), `handle_timeout(now)` when a deadline passes, and commands
//! (`open_flow`, `write`, `finish`, `close`, ...). Time is a
//! [`time::Instant`] the driver passes in; randomness, where a protocol
//! needs it, comes from an RNG the driver gives. Every input that can fail
//! returns a `Result` with a small error enum specific to the operation.
//!
//! **Outputs.** `poll_transmit(&mut buf)` appends bytes to send to a
//! caller-owned buffer (a `Vec<u8>`, or [`mux::IoChunks`] for vectored
//! zero-copy writes); `poll_event()` yields events; `poll_timeout()` gives
//! the next deadline and what it is for.
//!
//! **Call order.** After *every* input or command, the driver drains
//! `poll_transmit` and `poll_event` until both return `None`, then re-arms
//! its timer from `poll_timeout`. Commands use the time of the latest input
//! as "now".
//!
//! **Determinism.** The same inputs give the same outputs, byte for byte:
//! that is what makes fuzzing, simulation and trace replay possible.
//!
//! **Hostile peers.** No input from the network panics, allocates without a
//! bound, or grows a table without a limit. Every limit is a field of a
//! config struct with a documented default; breaking one is a protocol
//! error with a clear code.
//!
//! # Modules
//!
//! - [`time`]: the [`time::Instant`] drivers pass in.
//! - [`wire`]: varints and bounded readers shared by the codecs.
//! - [`secure`]: Noise XX handshake, encrypted records, blessings and
//!   peer authorization, under the mux.
//! - [`mux`]: flows multiplexed over one byte stream.
//! - [`budget`]: a memory budget shared by every connection of a process.
//! - [`session`]: webwire-compatible requests, replies, signals and
//!   sessions: the wire codec, server and client machines, the key registry.
//! - `sim` (feature `sim`): a deterministic virtual network of named hosts,
//!   a scheduler with seeded faults, and trace record/replay; it drives any
//!   state machine through the contract ([`sim::SimCore`]).
//!
//! # Features
//!
//! - `tracing`: emit a `tracing` event for every protocol decision worth
//!   seeing (flow opened or refused, window grown, limit hit, timer fired,
//!   GOAWAY, close).
//! - `sim`: the [`sim`] module (no IO, no clock, no std needed).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod admission;
pub mod budget;
pub mod mux;
mod rate;
pub mod secure;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod taps;
pub mod time;
pub mod wire;
