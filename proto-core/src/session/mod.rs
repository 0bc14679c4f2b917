//! Sessions: webwire protocol 2.0's requests, replies, signals, heartbeats
//! and session lifecycle, sans-IO.
//!
//! - [`message`]: the wire codec, byte-exact with webwire 2.0.
//! - [`key`]: session keys (48 caller-given random bytes, URL-safe base64).
//! - [`info`]: a session as JSON (`{"k","c","l","i"}`), RFC 3339 times.
//! - [`server`]: [`ServerConnection`], one client connection, server side.
//! - [`client`]: [`ClientConnection`], one connection, client side.
//! - [`registry`]: [`Registry`], session key -> connections, bounded.
//! - [`framed`]: [`Framed`], either machine on a byte stream (u32
//!   big-endian length before each message), as a
//!   [`Machine`](crate::wire::Machine).
//!
//! Both machines read no clock and draw no randomness: the driver passes
//! `now`, and session keys come from 48 bytes the caller drew.
pub mod client;
mod close;
pub mod framed;
pub mod info;
pub mod key;
pub mod message;
pub mod registry;
pub mod server;

pub use client::{ClientConfig, ClientConnection, ClientError, ClientEvent, RequestError};
pub use close::CloseReason;
pub use framed::{Framed, MessageMachine};
pub use info::{InfoError, InfoLimits, SessionInfo};
pub use key::{KeyError, SessionKey};
pub use message::{
    AcceptConf, DecodeError, EncodeError, Encoding, Message, Payload, RequestId, SpecialReply,
};
pub use registry::{Registry, RegistryConfig, RegistryError};
pub use server::{ServerConfig, ServerConnection, ServerEvent, SessionError};
