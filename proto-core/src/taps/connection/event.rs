//! What a connection tells its application, and why things failed.

use crate::taps::framer::FramerError;
use crate::taps::message::{MessageContext, MessageRef};
use alloc::borrow::Cow;
use bytes::Bytes;
use core::fmt;

/// A connection event (RFC 9622 sections 8 to 10), read with
/// [`Connection::poll_event`](super::Connection::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The connection can send and receive. Always the first event.
    Ready,
    /// The message's last byte was handed to the transport.
    Sent(MessageRef),
    /// The message's lifetime passed before its first byte was sent; it
    /// was dropped unsent.
    Expired(MessageRef),
    /// A queued message will not be sent.
    SendError {
        /// The message.
        message: MessageRef,
        /// Why.
        error: SendError,
    },
    /// A whole message, answering one receive request.
    Received {
        /// The message.
        data: Bytes,
        /// Where it sits (`end_of_message` is true, `offset` 0).
        context: MessageContext,
    },
    /// Part of a message, answering one receive request: the message was
    /// longer than the request's `max_length`, or its first
    /// `min_incomplete_length` bytes were there, or the receive buffer
    /// was full of it.
    ReceivedPartial {
        /// This part.
        data: Bytes,
        /// Where it sits in its message.
        context: MessageContext,
    },
    /// A message could not be received whole (the stream ended inside it).
    ReceiveError {
        /// The message as far as it was delivered (`len` 0).
        context: MessageContext,
        /// Why.
        error: ReceiveError,
    },
    /// A notice from below that does not end the connection (an ICMP
    /// message, say), as the adapter described it.
    SoftError {
        /// The adapter's description.
        reason: Cow<'static, str>,
    },
    /// The connection closed cleanly: after a local `close`, everything
    /// queued was sent; after the peer ended its stream at a message
    /// boundary, everything queued was sent and every received message
    /// delivered. The last event.
    Closed,
    /// The connection failed or was aborted. The last event.
    ConnectionError(ConnectionFailure),
}

/// Why a message was not (or will not be) sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The framer refused this message.
    Framer(FramerError),
    /// Queuing it would pass `max_queued_send_bytes`.
    QueueFull {
        /// Framed bytes queued already.
        queued: usize,
        /// This message, framed.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// `max_queued_messages` messages are queued already.
    TooManyMessages {
        /// The limit.
        limit: usize,
    },
    /// `no_segmentation` on a message longer than `max_unsegmented_len`.
    NoSegmentation {
        /// The message's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A message marked final was sent or queued already.
    AfterFinal,
    /// The connection is closing (local `close`, or the peer ended).
    Closing,
    /// The connection was aborted before the message went out.
    Aborted,
    /// The connection failed before the message went out.
    ConnectionFailed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Framer(e) => write!(f, "{e}"),
            SendError::QueueFull { queued, len, limit } => write!(
                f,
                "send queue full: {queued} bytes queued, {len} more would pass the limit of {limit}"
            ),
            SendError::TooManyMessages { limit } => {
                write!(f, "send queue full: {limit} messages queued (the limit)")
            }
            SendError::NoSegmentation { len, limit } => write!(
                f,
                "a {len}-byte message marked no_segmentation is over the limit of {limit} bytes"
            ),
            SendError::AfterFinal => f.write_str("a message marked final was already sent"),
            SendError::Closing => f.write_str("the connection is closing"),
            SendError::Aborted => {
                f.write_str("the connection was aborted before the message went out")
            }
            SendError::ConnectionFailed => {
                f.write_str("the connection failed before the message went out")
            }
        }
    }
}

impl core::error::Error for SendError {}

/// Why a message could not be received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The stream ended inside the message, after this many of its bytes.
    Truncated {
        /// Bytes of the message that arrived.
        received: u64,
    },
}

impl fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiveError::Truncated { received } => write!(
                f,
                "the stream ended inside a message, after {received} of its bytes"
            ),
        }
    }
}

impl core::error::Error for ReceiveError {}

/// Why a connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionFailure {
    /// The application called `abort`.
    Aborted,
    /// The layer around this one closed it (`Machine::close`), with the
    /// code it gave.
    ClosedBelow {
        /// The code.
        code: u64,
    },
    /// The framer could not cut the received stream into messages.
    Framer(FramerError),
    /// The stream ended inside a message.
    Truncated,
    /// The transport gave input far past the receive limit (a driver that
    /// ignored `wants_input`).
    ReceiveOverrun {
        /// Bytes held.
        held: usize,
        /// `max_buffered_receive_bytes + input_slack`.
        limit: usize,
    },
}

impl fmt::Display for ConnectionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionFailure::Aborted => f.write_str("aborted by the application"),
            ConnectionFailure::ClosedBelow { code } => {
                write!(f, "closed by the enclosing layer with code {code}")
            }
            ConnectionFailure::Framer(e) => write!(f, "{e}"),
            ConnectionFailure::Truncated => f.write_str("the stream ended inside a message"),
            ConnectionFailure::ReceiveOverrun { held, limit } => write!(
                f,
                "{held} received bytes held, over the limit of {limit} (input given while paused)"
            ),
        }
    }
}

impl core::error::Error for ConnectionFailure {}

/// Why a receive request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiveRequestError {
    /// `max_receive_requests` are outstanding already.
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// The connection closed or is closing: nothing more will arrive.
    Closed,
}

impl fmt::Display for ReceiveRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiveRequestError::TooMany { limit } => {
                write!(f, "{limit} receive requests are outstanding (the limit)")
            }
            ReceiveRequestError::Closed => f.write_str("the connection is closed or closing"),
        }
    }
}

impl core::error::Error for ReceiveRequestError {}
