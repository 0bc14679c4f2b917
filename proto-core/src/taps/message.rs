//! What travels with a message: its send properties (RFC 9622 section
//! 9.1.3), the reference that ties events to it, and the context of a
//! received piece.

use crate::time::Duration;
use core::fmt;

/// The application's name for a message it sends, echoed in that
/// message's `Sent`, `Expired` and `SendError` events.
///
/// The application picks the value (a counter, a request id, an index
/// into its own table); the connection never reads or compares it, so
/// reusing one only makes the application's own bookkeeping ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageRef(pub u64);

impl fmt::Display for MessageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message {}", self.0)
    }
}

/// How one message is to be sent (RFC 9622 section 9.1.3).
///
/// On an ordered byte stream several of these can only be honoured as
/// the stream allows; each field says what this implementation does.
///
/// ```
/// use proto_core::taps::message::MessageProperties;
/// use proto_core::time::Duration;
///
/// let urgent = MessageProperties {
///     priority: 10,
///     lifetime: Some(Duration::from_millis(250)),
///     ..MessageProperties::default()
/// };
/// assert!(urgent.ordered && urgent.reliable && !urgent.is_final);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageProperties {
    /// How long the message is worth sending, from the `send` call. A
    /// message whose lifetime passes before its first byte goes out is
    /// dropped with an `Expired` event; once started it is always
    /// finished (a byte stream cannot take back half a message).
    /// Default `None`: forever.
    pub lifetime: Option<Duration>,
    /// Lower goes first. Messages of one priority go in the order sent; a
    /// message already started is never interleaved with another.
    /// Default 100.
    pub priority: u32,
    /// Whether it must arrive in order with the others. A byte stream
    /// delivers everything in order, so `false` changes nothing.
    /// Default `true`.
    pub ordered: bool,
    /// The last message this side sends: it goes out after every message
    /// queued before it (whatever their priority), later sends fail, and
    /// the sending side is finished once it is out. Default `false`.
    pub is_final: bool,
    /// Whether it may be delivered more than once (0-RTT data). Recorded
    /// only: a byte stream running here never replays. Default `false`.
    pub safely_replayable: bool,
    /// Whether it must not be split below the transport. A byte stream
    /// has no datagrams to keep it in, so a message longer than the
    /// connection's `max_unsegmented_len` is refused. Default `false`.
    pub no_segmentation: bool,
    /// Whether it must arrive. A byte stream is always reliable, which
    /// satisfies `false` as well. Default `true`.
    pub reliable: bool,
}

impl Default for MessageProperties {
    fn default() -> Self {
        MessageProperties {
            lifetime: None,
            priority: 100,
            ordered: true,
            is_final: false,
            safely_replayable: false,
            no_segmentation: false,
            reliable: true,
        }
    }
}

/// Where a received piece sits in its message (RFC 9622's receive-side
/// MessageContext, the parts a byte stream knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageContext {
    /// Index of the message among those received on this connection,
    /// from 0.
    pub message: u64,
    /// Offset of this piece's first byte in its message.
    pub offset: u64,
    /// Bytes in this piece.
    pub len: usize,
    /// Whether this piece ends the message.
    pub end_of_message: bool,
}
