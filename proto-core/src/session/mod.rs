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
//!
//! A request and its reply, the frames carried by hand (a WebSocket
//! adapter sends each `poll_message` as one binary frame; on a byte stream
//! [`Framed`] does it):
//!
//! ```
//! use proto_core::session::*;
//! use proto_core::time::Instant;
//!
//! let now = Instant::ZERO;
//! let mut server = ServerConnection::new(now, ServerConfig::default());
//! let mut client = ClientConnection::new(now, ClientConfig::default());
//! let id = client.request(now, "echo", Payload::utf8("hi")).unwrap();
//! // Carry frames both ways until neither side has any.
//! loop {
//!     let mut moved = false;
//!     while let Some(f) = server.poll_message() {
//!         client.handle_message(now, f).unwrap();
//!         moved = true;
//!     }
//!     while let Some(f) = client.poll_message() {
//!         server.handle_message(now, f).unwrap();
//!         moved = true;
//!     }
//!     // The server's handler.
//!     while let Some(ev) = server.poll_event() {
//!         if let ServerEvent::Request { id, payload, .. } = ev {
//!             server.reply(id, payload).unwrap();
//!         }
//!     }
//!     if !moved && !server.has_messages() {
//!         break;
//!     }
//! }
//! assert!(matches!(client.poll_event(), Some(ClientEvent::Ready(_))));
//! assert_eq!(
//!     client.poll_event(),
//!     Some(ClientEvent::Reply { id, result: Ok(Payload::utf8("hi")) })
//! );
//! ```
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
