//! The webwire protocol 2.0 messages, byte for byte.
//!
//! One message is one WebSocket binary frame (or one length-prefixed frame
//! on a byte stream, see [`Framed`](super::Framed)); its first byte is its
//! type. [`Message::decode`] keeps every variable field as a slice of the
//! frame it was given (no copy), and checks everything a peer can get
//! wrong: lengths, names of printable ASCII, UTF-16 alignment and padding,
//! error codes, UTF-8 error messages, ASCII session keys. Whatever it
//! accepts, [`Message::encode`] writes back to the same bytes; whatever
//! `encode` accepts, `decode` reads back to the same message.
//!
//! Where webwire-go and webwire-js disagree, the stricter reading wins:
//! special replies, close-session requests, heartbeats and session-closed
//! notifications must be exactly as long as their layout, a binary or
//! UTF-8 signal needs at least one payload byte (webwire-js), padding
//! bytes must be zero.
//!
//! ```
//! use bytes::Bytes;
//! use proto_core::session::{Encoding, Message, Payload, RequestId};
//!
//! let msg = Message::Request {
//!     id: RequestId([0, 0, 0, 0, 0, 0, 0, 1]),
//!     name: Bytes::from_static(b"echo"),
//!     payload: Payload { encoding: Encoding::Utf8, data: Bytes::from_static(b"hi") },
//! };
//! let mut wire = Vec::new();
//! msg.encode(&mut wire).unwrap();
//! assert_eq!(wire, b"\x80\0\0\0\0\0\0\0\x01\x04echohi");
//! assert_eq!(Message::decode(Bytes::from(wire)).unwrap(), msg);
//! ```

use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

/// Type byte of an error reply.
pub const TYPE_ERROR_REPLY: u8 = 0;
/// Type byte of the shutdown special reply (the others follow: 2 internal
/// error, 3 session not found, 4 max session connections reached, 5
/// sessions disabled).
pub const TYPE_SPECIAL_SHUTDOWN: u8 = 1;
/// Type byte of a session-created notification.
pub const TYPE_SESSION_CREATED: u8 = 21;
/// Type byte of a session-closed notification.
pub const TYPE_SESSION_CLOSED: u8 = 22;
/// Type byte of the accept configuration.
pub const TYPE_ACCEPT_CONF: u8 = 23;
/// Type byte of a close-session request.
pub const TYPE_CLOSE_SESSION: u8 = 31;
/// Type byte of a restore-session request.
pub const TYPE_RESTORE_SESSION: u8 = 32;
/// Type byte of a heartbeat.
pub const TYPE_HEARTBEAT: u8 = 33;
/// Type byte of a binary signal (UTF-8 is +1, UTF-16 +2).
pub const TYPE_SIGNAL: u8 = 63;
/// Type byte of a binary request (UTF-8 is +1, UTF-16 +2).
pub const TYPE_REQUEST: u8 = 127;
/// Type byte of a binary reply (UTF-8 is +1, UTF-16 +2).
pub const TYPE_REPLY: u8 = 191;

/// The protocol version this codec speaks (major, minor).
pub const PROTOCOL_VERSION: (u8, u8) = (2, 0);

/// Longest name or error code: its length is one byte.
pub const MAX_NAME_LEN: usize = 255;

/// A request's identifier: 8 bytes the client chooses, opaque to the
/// server, echoed in the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RequestId(pub [u8; 8]);

impl RequestId {
    /// The id whose bytes are `n` big-endian (how
    /// [`ClientConnection`](super::ClientConnection) numbers its requests).
    pub const fn from_u64(n: u64) -> Self {
        RequestId(n.to_be_bytes())
    }
}

/// How a payload is encoded: the type byte says it, the bytes are not
/// checked (a UTF-16 payload is only checked to have an even length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// Opaque bytes.
    #[default]
    Binary,
    /// UTF-8 text.
    Utf8,
    /// UTF-16 text (code units in the sender's order; an even length).
    Utf16,
}

impl Encoding {
    fn offset(self) -> u8 {
        match self {
            Encoding::Binary => 0,
            Encoding::Utf8 => 1,
            Encoding::Utf16 => 2,
        }
    }
}

/// A payload and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Payload {
    /// The encoding the message type announces.
    pub encoding: Encoding,
    /// The bytes.
    pub data: Bytes,
}

impl Payload {
    /// Opaque bytes.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Payload {
            encoding: Encoding::Binary,
            data: data.into(),
        }
    }

    /// UTF-8 text.
    pub fn utf8(data: impl Into<Bytes>) -> Self {
        Payload {
            encoding: Encoding::Utf8,
            data: data.into(),
        }
    }

    /// UTF-16 code units as bytes (an even length).
    pub fn utf16(data: impl Into<Bytes>) -> Self {
        Payload {
            encoding: Encoding::Utf16,
            data: data.into(),
        }
    }
}

/// The server's first message: protocol version and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcceptConf {
    /// Major protocol version (2).
    pub major: u8,
    /// Minor protocol version (0).
    pub minor: u8,
    /// The server closes a connection silent for this long; the client
    /// heartbeats well before.
    pub read_timeout_ms: u32,
    /// The largest message the server reads.
    pub message_buffer_size: u32,
    /// The application's subprotocol name (may be empty).
    pub subprotocol: Bytes,
}

/// A reply with no body, one type byte each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpecialReply {
    /// The server is shutting down and did not run the request (1).
    Shutdown,
    /// The handler failed in a way the client is not told about (2).
    InternalError,
    /// No session has the key of a restore request (3).
    SessionNotFound,
    /// The session has as many connections as it may (4).
    MaxSessionConnectionsReached,
    /// The server has sessions turned off (5).
    SessionsDisabled,
}

impl SpecialReply {
    /// The message type byte.
    pub const fn type_byte(self) -> u8 {
        match self {
            SpecialReply::Shutdown => 1,
            SpecialReply::InternalError => 2,
            SpecialReply::SessionNotFound => 3,
            SpecialReply::MaxSessionConnectionsReached => 4,
            SpecialReply::SessionsDisabled => 5,
        }
    }

    /// The reply a type byte names, if it names one.
    pub const fn from_type_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => SpecialReply::Shutdown,
            2 => SpecialReply::InternalError,
            3 => SpecialReply::SessionNotFound,
            4 => SpecialReply::MaxSessionConnectionsReached,
            5 => SpecialReply::SessionsDisabled,
            _ => return None,
        })
    }
}

/// One webwire message. Variable fields are [`Bytes`]: after
/// [`Message::decode`] they are slices of the received frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Message {
    /// 23: the server's configuration, sent first.
    AcceptConf(AcceptConf),
    /// 127/128/129: a request (name of printable ASCII, up to 255 bytes;
    /// a name or a payload or both).
    Request {
        /// Echoed in the reply.
        id: RequestId,
        /// Printable ASCII, may be empty.
        name: Bytes,
        /// May be empty if the name is not.
        payload: Payload,
    },
    /// 191/192/193: a successful reply.
    Reply {
        /// The request's id.
        id: RequestId,
        /// May be empty.
        payload: Payload,
    },
    /// 0: an application error.
    ErrorReply {
        /// The request's id.
        id: RequestId,
        /// 1 to 255 bytes of printable ASCII.
        code: Bytes,
        /// UTF-8, may be empty.
        message: Bytes,
    },
    /// 1..=5: a reply with no body.
    Special {
        /// The request's id.
        id: RequestId,
        /// Which one.
        reply: SpecialReply,
    },
    /// 63/64/65: a one-way message, either way.
    Signal {
        /// Printable ASCII, may be empty.
        name: Bytes,
        /// At least one byte (two for UTF-16).
        payload: Payload,
    },
    /// 21: the server created a session for this connection; the body is
    /// the session as JSON (see [`SessionInfo`](super::SessionInfo)).
    SessionCreated {
        /// UTF-8 JSON, at least one byte.
        json: Bytes,
    },
    /// 22: the server closed this connection's session.
    SessionClosed,
    /// 31: the client asks to close its session.
    CloseSession {
        /// Echoed in the reply.
        id: RequestId,
    },
    /// 32: the client asks to restore a session by key.
    RestoreSession {
        /// Echoed in the reply.
        id: RequestId,
        /// 7-bit ASCII, at least one byte (not yet checked to be a
        /// [`SessionKey`](super::SessionKey)).
        key: Bytes,
    },
    /// 33: the client is alive.
    Heartbeat,
}

/// Why a frame is not a webwire message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame has no bytes.
    Empty,
    /// The type byte names no message.
    UnknownType(u8),
    /// The frame is shorter than the smallest message of its type.
    TooShort {
        /// The message type.
        kind: &'static str,
        /// The frame's length.
        len: usize,
        /// The least the type needs.
        min: usize,
    },
    /// A fixed-size message has another length.
    WrongLength {
        /// The message type.
        kind: &'static str,
        /// The frame's length.
        len: usize,
        /// Its only valid length.
        expected: usize,
    },
    /// The name (or error code) length points past the end of the frame.
    NameLengthPastEnd {
        /// The announced length.
        name_len: u8,
        /// Bytes left for it.
        available: usize,
    },
    /// A name byte outside printable ASCII (0x20..=0x7E).
    BadNameChar {
        /// Offset in the name.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// A UTF-16 message of odd length: its payload cannot be whole code
    /// units (or a padding byte is missing).
    OddUtf16Payload {
        /// The frame's length.
        len: usize,
    },
    /// A padding byte that is not zero.
    BadPadding(u8),
    /// A signal with no payload.
    EmptySignalPayload,
    /// An error reply whose code length is zero.
    CodeEmpty,
    /// An error code byte outside printable ASCII.
    CodeNotPrintable {
        /// Offset in the code.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// An error reply's message is not UTF-8.
    MessageNotUtf8,
    /// A restore request's key has a byte over 0x7F.
    KeyNotAscii {
        /// Offset in the key.
        at: usize,
    },
    /// A session-created notification's JSON is not UTF-8.
    SessionNotUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty message"),
            DecodeError::UnknownType(t) => write!(f, "unknown message type {t}"),
            DecodeError::TooShort { kind, len, min } => {
                write!(f, "{kind} message too short: {len} bytes, at least {min}")
            }
            DecodeError::WrongLength {
                kind,
                len,
                expected,
            } => write!(f, "{kind} message of {len} bytes, must be {expected}"),
            DecodeError::NameLengthPastEnd {
                name_len,
                available,
            } => write!(
                f,
                "name length {name_len} past the end of the message ({available} bytes left)"
            ),
            DecodeError::BadNameChar { at, byte } => {
                write!(f, "name byte {at} is {byte:#04x}, not printable ASCII")
            }
            DecodeError::OddUtf16Payload { len } => {
                write!(f, "UTF-16 message of odd length {len}")
            }
            DecodeError::BadPadding(b) => write!(f, "padding byte is {b:#04x}, not zero"),
            DecodeError::EmptySignalPayload => f.write_str("signal without a payload"),
            DecodeError::CodeEmpty => f.write_str("error reply with an empty code"),
            DecodeError::CodeNotPrintable { at, byte } => {
                write!(
                    f,
                    "error code byte {at} is {byte:#04x}, not printable ASCII"
                )
            }
            DecodeError::MessageNotUtf8 => f.write_str("error reply message is not UTF-8"),
            DecodeError::KeyNotAscii { at } => write!(f, "session key byte {at} is not ASCII"),
            DecodeError::SessionNotUtf8 => f.write_str("session-created JSON is not UTF-8"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a message cannot be written (it would not decode back to itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A name over 255 bytes.
    NameTooLong(usize),
    /// A name byte outside printable ASCII.
    BadNameChar {
        /// Offset in the name.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// A request with neither a name nor a payload.
    EmptyRequest,
    /// A signal with no payload.
    EmptySignalPayload,
    /// A UTF-16 payload of odd length.
    OddUtf16Payload(usize),
    /// An empty error code.
    CodeEmpty,
    /// An error code over 255 bytes.
    CodeTooLong(usize),
    /// An error code byte outside printable ASCII.
    CodeNotPrintable {
        /// Offset in the code.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// An error message that is not UTF-8.
    MessageNotUtf8,
    /// An empty session key.
    KeyEmpty,
    /// A session key byte over 0x7F.
    KeyNotAscii {
        /// Offset in the key.
        at: usize,
    },
    /// Empty session JSON.
    SessionEmpty,
    /// Session JSON that is not UTF-8.
    SessionNotUtf8,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NameTooLong(n) => write!(f, "name of {n} bytes, at most 255"),
            EncodeError::BadNameChar { at, byte } => {
                write!(f, "name byte {at} is {byte:#04x}, not printable ASCII")
            }
            EncodeError::EmptyRequest => f.write_str("request without a name or a payload"),
            EncodeError::EmptySignalPayload => f.write_str("signal without a payload"),
            EncodeError::OddUtf16Payload(n) => write!(f, "UTF-16 payload of odd length {n}"),
            EncodeError::CodeEmpty => f.write_str("empty error code"),
            EncodeError::CodeTooLong(n) => write!(f, "error code of {n} bytes, at most 255"),
            EncodeError::CodeNotPrintable { at, byte } => {
                write!(
                    f,
                    "error code byte {at} is {byte:#04x}, not printable ASCII"
                )
            }
            EncodeError::MessageNotUtf8 => f.write_str("error message is not UTF-8"),
            EncodeError::KeyEmpty => f.write_str("empty session key"),
            EncodeError::KeyNotAscii { at } => write!(f, "session key byte {at} is not ASCII"),
            EncodeError::SessionEmpty => f.write_str("empty session JSON"),
            EncodeError::SessionNotUtf8 => f.write_str("session JSON is not UTF-8"),
        }
    }
}

impl core::error::Error for EncodeError {}

fn printable(b: u8) -> bool {
    (0x20..=0x7e).contains(&b)
}

fn first_unprintable(s: &[u8]) -> Option<(usize, u8)> {
    s.iter().position(|&b| !printable(b)).map(|at| (at, s[at]))
}

fn id_at(frame: &[u8]) -> RequestId {
    let mut id = [0u8; 8];
    id.copy_from_slice(&frame[1..9]);
    RequestId(id)
}

fn encoding_of(offset: u8) -> Encoding {
    match offset {
        0 => Encoding::Binary,
        1 => Encoding::Utf8,
        _ => Encoding::Utf16,
    }
}

fn too_short(kind: &'static str, len: usize, min: usize) -> Result<(), DecodeError> {
    if len < min {
        Err(DecodeError::TooShort { kind, len, min })
    } else {
        Ok(())
    }
}

fn exact(kind: &'static str, len: usize, expected: usize) -> Result<(), DecodeError> {
    if len != expected {
        Err(DecodeError::WrongLength {
            kind,
            len,
            expected,
        })
    } else {
        Ok(())
    }
}

/// A name of `frame[at]` bytes after the length byte at `at`: returns the
/// name's end.
fn name_end(frame: &[u8], at: usize) -> Result<usize, DecodeError> {
    let name_len = frame[at];
    let start = at + 1;
    let end = start + usize::from(name_len);
    if end > frame.len() {
        return Err(DecodeError::NameLengthPastEnd {
            name_len,
            available: frame.len() - start,
        });
    }
    if let Some((at, byte)) = first_unprintable(&frame[start..end]) {
        return Err(DecodeError::BadNameChar { at, byte });
    }
    Ok(end)
}

/// For a UTF-16 payload: the frame's length must be even and, when the
/// header before the payload ends at an odd offset, a zero padding byte
/// follows. Returns where the payload starts.
fn utf16_payload_start(frame: &[u8], header_end: usize) -> Result<usize, DecodeError> {
    if !frame.len().is_multiple_of(2) {
        return Err(DecodeError::OddUtf16Payload { len: frame.len() });
    }
    if header_end.is_multiple_of(2) {
        return Ok(header_end);
    }
    // Even total, odd header: the padding byte is there.
    match frame[header_end] {
        0 => Ok(header_end + 1),
        b => Err(DecodeError::BadPadding(b)),
    }
}

impl Message {
    /// Reads one message from a whole frame; every variable field is a
    /// slice of `frame`.
    ///
    /// # Errors
    /// The frame breaks its type's layout (see [`DecodeError`]). Never
    /// panics, whatever the bytes.
    pub fn decode(frame: Bytes) -> Result<Message, DecodeError> {
        let f = &frame[..];
        let len = f.len();
        let Some(&ty) = f.first() else {
            return Err(DecodeError::Empty);
        };
        match ty {
            TYPE_ERROR_REPLY => {
                too_short("error reply", len, 11)?;
                if f[9] == 0 {
                    return Err(DecodeError::CodeEmpty);
                }
                let end = 10 + usize::from(f[9]);
                if end > len {
                    return Err(DecodeError::NameLengthPastEnd {
                        name_len: f[9],
                        available: len - 10,
                    });
                }
                if let Some((at, byte)) = first_unprintable(&f[10..end]) {
                    return Err(DecodeError::CodeNotPrintable { at, byte });
                }
                if core::str::from_utf8(&f[end..]).is_err() {
                    return Err(DecodeError::MessageNotUtf8);
                }
                Ok(Message::ErrorReply {
                    id: id_at(f),
                    code: frame.slice(10..end),
                    message: frame.slice(end..),
                })
            }
            1..=5 => {
                exact("special reply", len, 9)?;
                Ok(Message::Special {
                    id: id_at(f),
                    reply: SpecialReply::from_type_byte(ty).unwrap_or(SpecialReply::Shutdown),
                })
            }
            TYPE_SESSION_CREATED => {
                too_short("session created", len, 2)?;
                if core::str::from_utf8(&f[1..]).is_err() {
                    return Err(DecodeError::SessionNotUtf8);
                }
                Ok(Message::SessionCreated {
                    json: frame.slice(1..),
                })
            }
            TYPE_SESSION_CLOSED => {
                exact("session closed", len, 1)?;
                Ok(Message::SessionClosed)
            }
            TYPE_ACCEPT_CONF => {
                too_short("accept conf", len, 11)?;
                let u32_at = |i: usize| u32::from_le_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
                Ok(Message::AcceptConf(AcceptConf {
                    major: f[1],
                    minor: f[2],
                    read_timeout_ms: u32_at(3),
                    message_buffer_size: u32_at(7),
                    subprotocol: frame.slice(11..),
                }))
            }
            TYPE_CLOSE_SESSION => {
                exact("close session", len, 9)?;
                Ok(Message::CloseSession { id: id_at(f) })
            }
            TYPE_RESTORE_SESSION => {
                too_short("restore session", len, 10)?;
                if let Some(at) = f[9..].iter().position(|&b| b > 0x7f) {
                    return Err(DecodeError::KeyNotAscii { at });
                }
                Ok(Message::RestoreSession {
                    id: id_at(f),
                    key: frame.slice(9..),
                })
            }
            TYPE_HEARTBEAT => {
                exact("heartbeat", len, 1)?;
                Ok(Message::Heartbeat)
            }
            63..=65 => {
                let encoding = encoding_of(ty - TYPE_SIGNAL);
                let utf16 = encoding == Encoding::Utf16;
                too_short("signal", len, if utf16 { 4 } else { 3 })?;
                let end = name_end(f, 1)?;
                let start = if utf16 {
                    utf16_payload_start(f, end)?
                } else {
                    end
                };
                if start == len {
                    return Err(DecodeError::EmptySignalPayload);
                }
                Ok(Message::Signal {
                    name: frame.slice(2..end),
                    payload: Payload {
                        encoding,
                        data: frame.slice(start..),
                    },
                })
            }
            127..=129 => {
                let encoding = encoding_of(ty - TYPE_REQUEST);
                // 11: with no name, at least one payload byte; with a
                // name, at least one name byte.
                too_short("request", len, 11)?;
                let end = name_end(f, 9)?;
                let start = if encoding == Encoding::Utf16 {
                    utf16_payload_start(f, end)?
                } else {
                    end
                };
                Ok(Message::Request {
                    id: id_at(f),
                    name: frame.slice(10..end),
                    payload: Payload {
                        encoding,
                        data: frame.slice(start..),
                    },
                })
            }
            191..=193 => {
                let encoding = encoding_of(ty - TYPE_REPLY);
                let start = if encoding == Encoding::Utf16 {
                    too_short("reply", len, 10)?;
                    if !len.is_multiple_of(2) {
                        return Err(DecodeError::OddUtf16Payload { len });
                    }
                    // The padding byte is always there: the header is 9.
                    match f[9] {
                        0 => 10,
                        b => return Err(DecodeError::BadPadding(b)),
                    }
                } else {
                    too_short("reply", len, 9)?;
                    9
                };
                Ok(Message::Reply {
                    id: id_at(f),
                    payload: Payload {
                        encoding,
                        data: frame.slice(start..),
                    },
                })
            }
            t => Err(DecodeError::UnknownType(t)),
        }
    }

    /// The message's type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Message::AcceptConf(_) => TYPE_ACCEPT_CONF,
            Message::Request { payload, .. } => TYPE_REQUEST + payload.encoding.offset(),
            Message::Reply { payload, .. } => TYPE_REPLY + payload.encoding.offset(),
            Message::ErrorReply { .. } => TYPE_ERROR_REPLY,
            Message::Special { reply, .. } => reply.type_byte(),
            Message::Signal { payload, .. } => TYPE_SIGNAL + payload.encoding.offset(),
            Message::SessionCreated { .. } => TYPE_SESSION_CREATED,
            Message::SessionClosed => TYPE_SESSION_CLOSED,
            Message::CloseSession { .. } => TYPE_CLOSE_SESSION,
            Message::RestoreSession { .. } => TYPE_RESTORE_SESSION,
            Message::Heartbeat => TYPE_HEARTBEAT,
        }
    }

    /// Bytes [`encode`](Self::encode) writes (for a valid message).
    pub fn encoded_len(&self) -> usize {
        let pad = |header: usize, p: &Payload| {
            usize::from(p.encoding == Encoding::Utf16 && !header.is_multiple_of(2))
        };
        match self {
            Message::AcceptConf(c) => 11 + c.subprotocol.len(),
            Message::Request { name, payload, .. } => {
                let h = 10 + name.len();
                h + pad(h, payload) + payload.data.len()
            }
            Message::Reply { payload, .. } => 9 + pad(9, payload) + payload.data.len(),
            Message::ErrorReply { code, message, .. } => 10 + code.len() + message.len(),
            Message::Special { .. } | Message::CloseSession { .. } => 9,
            Message::Signal { name, payload } => {
                let h = 2 + name.len();
                h + pad(h, payload) + payload.data.len()
            }
            Message::SessionCreated { json } => 1 + json.len(),
            Message::SessionClosed | Message::Heartbeat => 1,
            Message::RestoreSession { key, .. } => 9 + key.len(),
        }
    }

    /// Checks that the message can be written and read back unchanged.
    ///
    /// # Errors
    /// What [`encode`](Self::encode) would refuse.
    pub fn validate(&self) -> Result<(), EncodeError> {
        fn name(n: &[u8]) -> Result<(), EncodeError> {
            if n.len() > MAX_NAME_LEN {
                return Err(EncodeError::NameTooLong(n.len()));
            }
            match first_unprintable(n) {
                Some((at, byte)) => Err(EncodeError::BadNameChar { at, byte }),
                None => Ok(()),
            }
        }
        fn utf16(p: &Payload) -> Result<(), EncodeError> {
            if p.encoding == Encoding::Utf16 && !p.data.len().is_multiple_of(2) {
                return Err(EncodeError::OddUtf16Payload(p.data.len()));
            }
            Ok(())
        }
        match self {
            Message::Request {
                name: n, payload, ..
            } => {
                name(n)?;
                utf16(payload)?;
                if n.is_empty() && payload.data.is_empty() {
                    return Err(EncodeError::EmptyRequest);
                }
            }
            Message::Reply { payload, .. } => utf16(payload)?,
            Message::ErrorReply { code, message, .. } => {
                if code.is_empty() {
                    return Err(EncodeError::CodeEmpty);
                }
                if code.len() > MAX_NAME_LEN {
                    return Err(EncodeError::CodeTooLong(code.len()));
                }
                if let Some((at, byte)) = first_unprintable(code) {
                    return Err(EncodeError::CodeNotPrintable { at, byte });
                }
                if core::str::from_utf8(message).is_err() {
                    return Err(EncodeError::MessageNotUtf8);
                }
            }
            Message::Signal { name: n, payload } => {
                name(n)?;
                utf16(payload)?;
                if payload.data.is_empty() {
                    return Err(EncodeError::EmptySignalPayload);
                }
            }
            Message::SessionCreated { json } => {
                if json.is_empty() {
                    return Err(EncodeError::SessionEmpty);
                }
                if core::str::from_utf8(json).is_err() {
                    return Err(EncodeError::SessionNotUtf8);
                }
            }
            Message::RestoreSession { key, .. } => {
                if key.is_empty() {
                    return Err(EncodeError::KeyEmpty);
                }
                if let Some(at) = key.iter().position(|&b| b > 0x7f) {
                    return Err(EncodeError::KeyNotAscii { at });
                }
            }
            Message::AcceptConf(_)
            | Message::Special { .. }
            | Message::SessionClosed
            | Message::CloseSession { .. }
            | Message::Heartbeat => {}
        }
        Ok(())
    }

    /// Appends the message to `out`.
    ///
    /// # Errors
    /// The message would not decode back to itself (see
    /// [`validate`](Self::validate)); `out` is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.validate()?;
        out.reserve(self.encoded_len());
        out.push(self.type_byte());
        let pad_if = |out: &mut Vec<u8>, header: usize, p: &Payload| {
            if p.encoding == Encoding::Utf16 && !header.is_multiple_of(2) {
                out.push(0);
            }
        };
        match self {
            Message::AcceptConf(c) => {
                out.push(c.major);
                out.push(c.minor);
                out.extend_from_slice(&c.read_timeout_ms.to_le_bytes());
                out.extend_from_slice(&c.message_buffer_size.to_le_bytes());
                out.extend_from_slice(&c.subprotocol);
            }
            Message::Request { id, name, payload } => {
                out.extend_from_slice(&id.0);
                // validate() bounded the name to 255 bytes.
                out.push(name.len() as u8);
                out.extend_from_slice(name);
                pad_if(out, 10 + name.len(), payload);
                out.extend_from_slice(&payload.data);
            }
            Message::Reply { id, payload } => {
                out.extend_from_slice(&id.0);
                pad_if(out, 9, payload);
                out.extend_from_slice(&payload.data);
            }
            Message::ErrorReply { id, code, message } => {
                out.extend_from_slice(&id.0);
                out.push(code.len() as u8);
                out.extend_from_slice(code);
                out.extend_from_slice(message);
            }
            Message::Special { id, .. } | Message::CloseSession { id } => {
                out.extend_from_slice(&id.0)
            }
            Message::Signal { name, payload } => {
                out.push(name.len() as u8);
                out.extend_from_slice(name);
                pad_if(out, 2 + name.len(), payload);
                out.extend_from_slice(&payload.data);
            }
            Message::SessionCreated { json } => out.extend_from_slice(json),
            Message::RestoreSession { id, key } => {
                out.extend_from_slice(&id.0);
                out.extend_from_slice(key);
            }
            Message::SessionClosed | Message::Heartbeat => {}
        }
        Ok(())
    }

    /// The message as a new frame.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(Bytes::from(out))
    }
}
