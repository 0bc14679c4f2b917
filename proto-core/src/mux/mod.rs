//! Flows multiplexed over one ordered byte stream.
//!
//! Two wire profiles share this state machine: weft's native framing
//! ([`frame`]) and yamux v0 ([`yamux`]), chosen by [`Config::profile`]. The
//! description below is the native one; [`Profile`] lists what the yamux
//! profile maps differently.
//!
//! A [`Connection`] carries many flows, each a reliable, flow-controlled
//! byte stream in both directions. It follows the crate's sans-IO contract
//! (see [`Connection`] for the required call order):
//!
//! - **Flows** are opened without a round trip (data rides on the opening
//!   frame), accepted as [`Event::FlowOpened`], written, read, half-closed
//!   ([`FlowMut::finish`]), reset with a code, or stopped by the reader.
//!   Ids are even for the dialer and odd for the acceptor, strictly
//!   increasing, never reused.
//! - **Flow control** uses absolute offsets per flow and per connection;
//!   FIN and RESET carry the final size, which must match the data seen.
//!   Receive windows start at [`initial::FLOW_WINDOW`] and double when the
//!   application drains half a window within two RTTs, up to
//!   [`Config::max_flow_window`], while the sum of windows stays within
//!   [`Config::conn_recv_budget`], which also bounds the connection window:
//!   unread data never exceeds the budget.
//! - **Flow credit**: the peer may have [`Config::max_concurrent_flows`]
//!   open; a closed flow returns its credit (MAX_FLOWS). An opener without
//!   credit gets [`OpenError::FlowLimit`] and later [`Event::FlowCredit`].
//! - **Scheduling**: control frames first, then flow opens in id order, then
//!   per-flow control, then DATA round-robin in chunks of
//!   [`Config::send_chunk`]. Reads never wait on writes: input is processed
//!   whatever the send side's state.
//! - **Health**: PING/PONG gives [`Event::Rtt`]; a keepalive PING goes out
//!   after [`Config::keepalive_interval`] of silence and the connection
//!   closes after [`Config::channel_timeout`]. [`Config::idle_timeout`]
//!   counts time with no flows but side channels.
//! - **Drain**: [`Connection::go_away`] sends GOAWAY with the peer flows we
//!   accepted; no new flows; once every flow ends the connection closes
//!   ([`CloseReason::Drained`]), or after [`Config::drain_timeout`].
//! - **Hostile peers**: every limit is a [`Config`] field; breaking one
//!   closes the connection with a [`ProtocolError`] whose
//!   [`ErrorCode`] (one per limit) and text (naming the limit and its
//!   value) go to the peer. Peer PINGs, resets and refused opens pass
//!   token buckets; output that waits untaken for
//!   [`Config::send_stall_timeout`] closes the connection. No input panics
//!   or allocates without bound.

mod codec;
mod config;
pub mod config_text;
mod connection;
mod drain;
mod error;
mod event;
mod flow;
mod flow_control;
pub mod frame;
mod health;
mod limits;
mod machine;
mod on_flow;
mod opens;
mod policy;
#[cfg(feature = "sim")]
mod recorded;
mod scheduler;
#[cfg(feature = "sim")]
pub mod sim_core;
mod stall;
pub mod yamux;

pub use crate::wire::{IoChunks, TransmitBuf};
pub use config::{initial, Config, ConfigError, Profile, MAX_LIMIT};
pub use connection::{Connection, FlowMut};
pub use error::{
    ErrorCode, InputError, OpenError, PingError, ProtocolError, ReadError, WriteError,
};
pub use event::{CloseReason, ConnectionStats, Event, FlowStats, FramePart, TimerReason};
pub use on_flow::OnFlow;

use core::fmt;

/// The reset code given to our flows that a peer's GOAWAY refused.
pub const REFUSED: u64 = u64::MAX >> 2;

/// The reset code of a peer flow refused because the process memory budget
/// is nearly spent ([`budget`](crate::budget)): retry later or elsewhere.
pub const OVERLOADED: u64 = REFUSED - 1;

/// Which end of the byte stream a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Opened the byte stream; its flows have even ids (yamux: the client,
    /// odd ids from 1).
    Dialer,
    /// Accepted the byte stream; its flows have odd ids (yamux: the server,
    /// even ids from 2).
    Acceptor,
}

impl Side {
    /// The id of the first flow this side opens; later ones step by 2.
    fn first_id(self, profile: Profile) -> u64 {
        match (profile, self) {
            (Profile::Native, Side::Dialer) => 0,
            (Profile::Native, Side::Acceptor) => 1,
            (Profile::Yamux, Side::Dialer) => 1,
            (Profile::Yamux, Side::Acceptor) => 2,
        }
    }

    fn peer(self) -> Side {
        match self {
            Side::Dialer => Side::Acceptor,
            Side::Acceptor => Side::Dialer,
        }
    }
}

/// A flow's id: native profile, even for flows the dialer opened and odd for
/// the acceptor's; yamux profile, the wire's stream id (dialer odd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub u64);

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow {}", self.0)
    }
}
