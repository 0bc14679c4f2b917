//! webwire-style sessions on tokio: requests, replies, signals and session
//! lifecycle over WebSocket or a weft flow, a reconnecting client, and
//! session stores. The protocol itself is the sans-IO
//! `proto_core::session`; this crate only does IO, timers and storage.

pub mod store;
