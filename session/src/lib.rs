//! webwire-style sessions on tokio: requests, replies, signals and session
//! lifecycle over WebSocket or a weft flow, a reconnecting client, and
//! session stores. The protocol itself is the sans-IO
//! [`proto_core::session`]; this crate only does IO, timers and storage.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod clock;
pub mod server;
pub mod store;

pub use client::{Backoff, Client, ClientError, ClientEvent, ClientOptions};
pub use proto_core::session::{Encoding, Payload, RequestError, SessionInfo, SessionKey};
pub use server::{Connection, Handler, HandlerError, Incoming, Server, ServerOptions};
pub use store::BoxFuture;

/// Locks, taking the data of a poisoned lock (a handler panicked while
/// holding it: the data is still consistent, every update is one call).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
