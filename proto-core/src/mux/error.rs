//! Errors: one small enum per operation, plus the wire error codes.

use core::fmt;

/// Transport error codes carried in CONNECTION_CLOSE.
///
/// Each limit that protects against a hostile peer has its own code (11
/// and up), so the peer's logs say which one it hit; the reason text then
/// names the limit and its value.
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
    /// The peer was abusive. Earlier versions sent it for every flood; this
    /// one sends the specific codes below and only decodes this one.
    EnhanceYourCalm,
    /// The peer stopped answering.
    ChannelTimeout,
    /// Nothing used the connection for the idle timeout.
    Idle,
    /// A GOAWAY drain did not finish in time.
    DrainTimeout,
    /// The peer hit an internal error (yamux GoAway code 2).
    Internal,
    /// PINGs beyond `max_pings_per_sec` / `ping_burst`.
    PingFlood,
    /// Resets beyond `max_resets_per_sec` / `reset_burst`.
    ResetFlood,
    /// yamux opens we had to refuse, beyond `max_refused_opens_per_sec` /
    /// `refused_open_burst` (a SYN flood).
    OpenFlood,
    /// More than `max_queued_control` control frames owed to a peer that
    /// does not read.
    ControlQueueFull,
    /// Output waited `send_stall_timeout` without the transport taking any.
    SendStall,
    /// The process-wide memory budget for connections ran out.
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
            ErrorCode::PingFlood => 11,
            ErrorCode::ResetFlood => 12,
            ErrorCode::OpenFlood => 13,
            ErrorCode::ControlQueueFull => 14,
            ErrorCode::SendStall => 15,
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
            11 => ErrorCode::PingFlood,
            12 => ErrorCode::ResetFlood,
            13 => ErrorCode::OpenFlood,
            14 => ErrorCode::ControlQueueFull,
            15 => ErrorCode::SendStall,
            16 => ErrorCode::MemoryBudget,
            v => ErrorCode::Unknown(v),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorCode::NoError => "no error",
            ErrorCode::ProtocolViolation => "protocol violation",
            ErrorCode::FlowControl => "flow control",
            ErrorCode::FlowLimit => "flow limit",
            ErrorCode::FrameSize => "frame size",
            ErrorCode::FinalSize => "final size",
            ErrorCode::EnhanceYourCalm => "enhance your calm",
            ErrorCode::ChannelTimeout => "channel timeout",
            ErrorCode::Idle => "idle",
            ErrorCode::DrainTimeout => "drain timeout",
            ErrorCode::Internal => "internal error",
            ErrorCode::PingFlood => "ping flood",
            ErrorCode::ResetFlood => "reset flood",
            ErrorCode::OpenFlood => "refused-open flood",
            ErrorCode::ControlQueueFull => "control queue full",
            ErrorCode::SendStall => "send stall",
            ErrorCode::MemoryBudget => "memory budget exhausted",
            ErrorCode::Unknown(v) => return write!(f, "unknown code {v}"),
        };
        f.write_str(s)
    }
}

/// What a peer did wrong; the connection is closed with [`ProtocolError::code`]
/// and, on the native wire, with this error's `Display` text as the CLOSE
/// reason (cut to `max_close_reason`). Variants carry the numbers that text
/// names, not strings, so the error stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first 8 bytes were not the mux preface.
    BadPreface,
    /// A frame type this version does not know (native type byte, or
    /// yamux's type field).
    UnknownFrameType(u8),
    /// A yamux header with a version other than 0.
    BadYamuxVersion(u8),
    /// A CLOSE reason longer than `max_close_reason`.
    CloseReasonTooLong {
        /// The length the frame announced.
        len: u64,
        /// `max_close_reason`.
        max: u64,
    },
    /// A frame could not be decoded for another reason.
    Malformed(&'static str),
    /// A frame referred to a flow in a way the protocol forbids.
    BadFlowId(u64),
    /// DATA beyond the flow's or the connection's window.
    FlowControl,
    /// The peer opened more flows than granted; carries
    /// `max_concurrent_flows`.
    FlowLimit(u64),
    /// A DATA payload above the largest accepted.
    FrameTooLarge {
        /// The payload length the frame announced.
        len: u64,
        /// The largest accepted (`max_frame_payload`; yamux: `max_flow_window`).
        max: u64,
    },
    /// DATA after FIN, or a final size that disagrees with data seen.
    FinalSize,
    /// Resets (RESET_FLOW, yamux RST) beyond the reset bucket.
    ResetFlood {
        /// `max_resets_per_sec`.
        rate: u32,
        /// `reset_burst`.
        burst: u32,
    },
    /// PINGs beyond the ping bucket.
    PingFlood {
        /// `max_pings_per_sec`.
        rate: u32,
        /// `ping_burst`.
        burst: u32,
    },
    /// yamux opens we refused with RST beyond their bucket (a SYN flood).
    OpenFlood {
        /// `max_refused_opens_per_sec`.
        rate: u32,
        /// `refused_open_burst`.
        burst: u32,
    },
    /// More than `max_queued_control` (carried) control frames owed to a
    /// peer that is not reading them.
    ControlQueueFull(u64),
    /// A credit frame lowered a limit or overflowed.
    BadCredit,
}

impl ProtocolError {
    /// The transport code sent in CONNECTION_CLOSE.
    pub fn code(self) -> ErrorCode {
        match self {
            ProtocolError::BadPreface
            | ProtocolError::UnknownFrameType(_)
            | ProtocolError::BadYamuxVersion(_)
            | ProtocolError::CloseReasonTooLong { .. }
            | ProtocolError::Malformed(_)
            | ProtocolError::BadFlowId(_)
            | ProtocolError::BadCredit => ErrorCode::ProtocolViolation,
            ProtocolError::FlowControl => ErrorCode::FlowControl,
            ProtocolError::FlowLimit(_) => ErrorCode::FlowLimit,
            ProtocolError::FrameTooLarge { .. } => ErrorCode::FrameSize,
            ProtocolError::FinalSize => ErrorCode::FinalSize,
            ProtocolError::ResetFlood { .. } => ErrorCode::ResetFlood,
            ProtocolError::PingFlood { .. } => ErrorCode::PingFlood,
            ProtocolError::OpenFlood { .. } => ErrorCode::OpenFlood,
            ProtocolError::ControlQueueFull(_) => ErrorCode::ControlQueueFull,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtocolError::BadPreface => f.write_str("peer did not send the mux preface"),
            ProtocolError::UnknownFrameType(t) => write!(f, "unknown frame type {t:#04x}"),
            ProtocolError::BadYamuxVersion(v) => write!(f, "yamux version {v} is not 0"),
            ProtocolError::CloseReasonTooLong { len, max } => write!(
                f,
                "close reason of {len} bytes exceeds max_close_reason {max}"
            ),
            ProtocolError::Malformed(what) => write!(f, "malformed frame: {what}"),
            ProtocolError::BadFlowId(id) => {
                write!(f, "frame names flow {id}, which the peer may not use")
            }
            ProtocolError::FlowControl => f.write_str("peer sent beyond its flow-control window"),
            ProtocolError::FlowLimit(max) => write!(f, "flow limit {max} exceeded"),
            ProtocolError::FrameTooLarge { len, max } => {
                write!(f, "DATA payload of {len} bytes exceeds the maximum {max}")
            }
            ProtocolError::FinalSize => f.write_str("final size contradicts data already received"),
            ProtocolError::ResetFlood { rate, burst } => {
                write!(f, "reset rate {rate}/s (burst {burst}) exceeded")
            }
            ProtocolError::PingFlood { rate, burst } => {
                write!(f, "ping rate {rate}/s (burst {burst}) exceeded")
            }
            ProtocolError::OpenFlood { rate, burst } => {
                write!(f, "refused-open rate {rate}/s (burst {burst}) exceeded")
            }
            ProtocolError::ControlQueueFull(max) => write!(
                f,
                "more than max_queued_control {max} control frames queued for a peer that does not read"
            ),
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
