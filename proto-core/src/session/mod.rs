//! Sessions: webwire protocol 2.0's requests, replies, signals, heartbeats
//! and session lifecycle, sans-IO.
//!
//! - [`message`]: the wire codec, byte-exact with webwire 2.0.
//! - [`key`]: session keys (48 caller-given random bytes, URL-safe base64).
//! - [`info`]: a session as JSON (`{"k","c","l","i"}`), RFC 3339 times.
pub mod info;
pub mod key;
pub mod message;

pub use info::{InfoError, InfoLimits, SessionInfo};
pub use key::{KeyError, SessionKey};
pub use message::{
    AcceptConf, DecodeError, EncodeError, Encoding, Message, Payload, RequestId, SpecialReply,
};
