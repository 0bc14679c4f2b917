//! Why a session connection closed.

use super::info::InfoError;
use super::message::{DecodeError, RequestId};
use core::fmt;

/// Why a [`ServerConnection`](super::ServerConnection) or
/// [`ClientConnection`](super::ClientConnection) closed: the last event
/// either machine gives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side's application closed it (`close`).
    Local,
    /// The transport ended (EOF, error, reset).
    TransportClosed,
    /// Server: nothing arrived for the read timeout.
    ReadTimeout,
    /// Client: no accept configuration within the accept timeout.
    AcceptTimeout,
    /// A frame over the configured maximum message size.
    MessageTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame that is not a webwire message.
    Malformed(DecodeError),
    /// A well-formed message this side never receives (a reply sent to a
    /// server, a request sent to a client, a second accept configuration).
    Unexpected {
        /// Its type byte.
        type_byte: u8,
    },
    /// Server: the client reused the id of a request still in flight.
    DuplicateRequestId(RequestId),
    /// Client: the server speaks another major protocol version.
    UnsupportedVersion {
        /// Its major version.
        major: u8,
        /// Its minor version.
        minor: u8,
    },
    /// Client: a session-created notification with bad JSON.
    BadSession(InfoError),
    /// A WebSocket text frame: webwire messages are binary frames only
    /// (for WebSocket adapters to report).
    TextFrame,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed by the application"),
            CloseReason::TransportClosed => f.write_str("the transport closed"),
            CloseReason::ReadTimeout => f.write_str("read timeout: the peer went silent"),
            CloseReason::AcceptTimeout => {
                f.write_str("the server sent no accept configuration in time")
            }
            CloseReason::MessageTooLarge { len, max } => {
                write!(f, "a {len}-byte message, over the limit of {max}")
            }
            CloseReason::Malformed(e) => write!(f, "malformed message: {e}"),
            CloseReason::Unexpected { type_byte } => {
                write!(f, "unexpected message of type {type_byte}")
            }
            CloseReason::DuplicateRequestId(id) => {
                write!(f, "request id {:02x?} reused while in flight", id.0)
            }
            CloseReason::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported protocol version {major}.{minor}")
            }
            CloseReason::BadSession(e) => write!(f, "bad session-created message: {e}"),
            CloseReason::TextFrame => f.write_str("a text frame: webwire messages are binary"),
        }
    }
}

impl core::error::Error for CloseReason {}
