//! Errors: one small enum per operation, plus the wire error codes.

use core::fmt;

/// Transport error codes carried in CONNECTION_CLOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Graceful close.
    NoError,
    /// A frame that breaks the protocol.
    ProtocolViolation,
    /// Data beyond the granted window.
    FlowControl,
    /// More flows opened than granted.
    FlowLimit,
    /// A frame larger than allowed.
    FrameSize,
    /// A final size that contradicts data already seen.
    FinalSize,
    /// Too many resets, pings or queued control frames: the peer is abusive.
    EnhanceYourCalm,
    /// The peer stopped answering.
    ChannelTimeout,
    /// Nothing used the connection for the idle timeout.
    Idle,
    /// A GOAWAY drain did not finish in time.
    DrainTimeout,
    /// The peer hit an internal error (yamux GoAway code 2).
    Internal,
    /// Closed to make room in the process memory budget.
    MemoryBudget,
    /// A code this version does not know.
    Unknown(u64),
}

impl ErrorCode {
    /// The wire value.
    pub fn to_wire(self) -> u64 {
        match self {
            ErrorCode::NoError => 0,
            ErrorCode::ProtocolViolation => 1,
            ErrorCode::FlowControl => 2,
            ErrorCode::FlowLimit => 3,
            ErrorCode::FrameSize => 4,
            ErrorCode::FinalSize => 5,
            ErrorCode::EnhanceYourCalm => 6,
            ErrorCode::ChannelTimeout => 7,
            ErrorCode::Idle => 8,
            ErrorCode::DrainTimeout => 9,
            ErrorCode::Internal => 10,
            ErrorCode::MemoryBudget => 16,
            ErrorCode::Unknown(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_wire(v: u64) -> Self {
        match v {
            0 => ErrorCode::NoError,
            1 => ErrorCode::ProtocolViolation,
            2 => ErrorCode::FlowControl,
            3 => ErrorCode::FlowLimit,
            4 => ErrorCode::FrameSize,
            5 => ErrorCode::FinalSize,
            6 => ErrorCode::EnhanceYourCalm,
            7 => ErrorCode::ChannelTimeout,
            8 => ErrorCode::Idle,
            9 => ErrorCode::DrainTimeout,
            10 => ErrorCode::Internal,
            16 => ErrorCode::MemoryBudget,
            v => ErrorCode::Unknown(v),
        }
    }
}

/// What a peer did wrong; the connection is closed with [`ProtocolError::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first 8 bytes were not the mux preface.
    BadPreface,
    /// A frame could not be decoded.
    Malformed(&'static str),
    /// A frame referred to a flow in a way the protocol forbids.
    BadFlowId(u64),
    /// DATA beyond the flow's or the connection's window.
    FlowControl,
    /// The peer opened more flows than it was granted.
    FlowLimit,
    /// A DATA payload above `max_frame_payload`.
    FrameTooLarge(u64),
    /// DATA after FIN, or a final size that disagrees with data seen.
    FinalSize,
    /// More than `max_resets_per_sec` resets in a second.
    ResetFlood,
    /// More than `max_pings_per_sec` pings in a second.
    PingFlood,
    /// More than `max_queued_control` control frames waiting to be sent.
    ControlQueueFull,
    /// A credit frame lowered a limit or overflowed.
    BadCredit,
}

impl ProtocolError {
    /// The transport code sent in CONNECTION_CLOSE.
    pub fn code(self) -> ErrorCode {
        match self {
            ProtocolError::BadPreface
            | ProtocolError::Malformed(_)
            | ProtocolError::BadFlowId(_)
            | ProtocolError::BadCredit => ErrorCode::ProtocolViolation,
            ProtocolError::FlowControl => ErrorCode::FlowControl,
            ProtocolError::FlowLimit => ErrorCode::FlowLimit,
            ProtocolError::FrameTooLarge(_) => ErrorCode::FrameSize,
            ProtocolError::FinalSize => ErrorCode::FinalSize,
            ProtocolError::ResetFlood
            | ProtocolError::PingFlood
            | ProtocolError::ControlQueueFull => ErrorCode::EnhanceYourCalm,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::BadPreface => f.write_str("peer did not send the mux preface"),
            ProtocolError::Malformed(what) => write!(f, "malformed frame: {what}"),
            ProtocolError::BadFlowId(id) => {
                write!(f, "frame names flow {id}, which the peer may not use")
            }
            ProtocolError::FlowControl => f.write_str("peer sent beyond its flow-control window"),
            ProtocolError::FlowLimit => f.write_str("peer opened more flows than granted"),
            ProtocolError::FrameTooLarge(n) => {
                write!(f, "DATA payload of {n} bytes exceeds max_frame_payload")
            }
            ProtocolError::FinalSize => f.write_str("final size contradicts data already received"),
            ProtocolError::ResetFlood => f.write_str("peer exceeded max_resets_per_sec"),
            ProtocolError::PingFlood => f.write_str("peer exceeded max_pings_per_sec"),
            ProtocolError::ControlQueueFull => {
                f.write_str("peer made us queue more than max_queued_control frames")
            }
            ProtocolError::BadCredit => f.write_str("credit frame out of range"),
        }
    }
}

impl core::error::Error for ProtocolError {}

/// Why `handle_input` failed: the connection is now closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// The peer broke the protocol; a CONNECTION_CLOSE is queued.
    Protocol(ProtocolError),
    /// Input after the connection closed; it was ignored.
    Closed,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Protocol(e) => write!(f, "protocol error: {e}"),
            InputError::Closed => f.write_str("connection is closed"),
        }
    }
}

impl core::error::Error for InputError {}

impl From<ProtocolError> for InputError {
    fn from(e: ProtocolError) -> Self {
        InputError::Protocol(e)
    }
}

/// Why `open_flow` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// The peer's flow credit is used up: wait for [`Event::FlowCredit`](super::Event::FlowCredit).
    FlowLimit,
    /// A GOAWAY was sent or received: open on another connection.
    GoingAway,
    /// The connection is closed.
    Closed,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenError::FlowLimit => "peer's flow limit reached",
            OpenError::GoingAway => "connection is draining after GOAWAY",
            OpenError::Closed => "connection is closed",
        })
    }
}

impl core::error::Error for OpenError {}

/// Why a write (or finish) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The send buffer is full: wait for [`Event::Writable`](super::Event::Writable).
    Blocked,
    /// The peer asked us to stop sending, with this code; the flow was reset.
    Stopped(u64),
    /// The flow was already finished or reset by us.
    Finished,
    /// No such flow (never opened, or closed and forgotten).
    UnknownFlow,
    /// The connection is closed.
    Closed,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Blocked => f.write_str("send buffer full"),
            WriteError::Stopped(c) => write!(f, "peer stopped the flow with code {c}"),
            WriteError::Finished => f.write_str("flow already finished or reset"),
            WriteError::UnknownFlow => f.write_str("unknown flow"),
            WriteError::Closed => f.write_str("connection is closed"),
        }
    }
}

impl core::error::Error for WriteError {}

/// Why a read failed. End of data is `Ok(0)` / `Ok(None)`, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// Nothing to read yet: wait for [`Event::Readable`](super::Event::Readable).
    Blocked,
    /// The peer reset the flow with this code (after any data it had sent
    /// before the reset was read).
    Reset(u64),
    /// We stopped reading this flow.
    Stopped,
    /// No such flow (never opened, or closed and forgotten).
    UnknownFlow,
    /// The connection closed before the flow ended.
    Closed,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Blocked => f.write_str("no data available yet"),
            ReadError::Reset(c) => write!(f, "peer reset the flow with code {c}"),
            ReadError::Stopped => f.write_str("reading was stopped"),
            ReadError::UnknownFlow => f.write_str("unknown flow"),
            ReadError::Closed => f.write_str("connection closed before the flow ended"),
        }
    }
}

impl core::error::Error for ReadError {}

/// Why a ping could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PingError {
    /// `max_outstanding_pings` are already awaiting a PONG.
    TooMany,
    /// The connection is closed.
    Closed,
}

impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PingError::TooMany => "too many pings outstanding",
            PingError::Closed => "connection is closed",
        })
    }
}

impl core::error::Error for PingError {}
