//! Message framers (RFC 9623 section 6): how messages are cut out of, and
//! written into, an ordered byte stream.
//!
//! On receive a [`Framer`] looks at the unread bytes through a receive
//! cursor and answers with one [`ParseStep`]: it needs more bytes
//! ([`ParseStep::ParseInput`]), the cursor skips bytes that belong to no
//! message, a header or a delimiter ([`ParseStep::AdvanceReceiveCursor`]),
//! or bytes are (part of) a message, delivered and skipped
//! ([`ParseStep::DeliverAndAdvanceReceiveCursor`]). A framer may deliver a
//! message in pieces as its bytes arrive, so nothing has to hold a whole
//! large message before it is handed on. On send it turns one message into
//! a header, the body and a trailer ([`Framed`]), or refuses that message.
//!
//! Two framers ship: [`LengthPrefix`] (a big-endian length before each
//! message) and [`Delimiter`] (a byte string after each message).
//!
//! ```
//! use bytes::Bytes;
//! use proto_core::taps::framer::{Framer, LengthPrefix, ParseStep};
//!
//! let mut f = LengthPrefix::default();
//! let framed = f.frame(Bytes::from_static(b"hi")).unwrap();
//! let wire = [&framed.header[..], &framed.body[..], &framed.trailer[..]].concat();
//! assert_eq!(wire, [0, 0, 0, 2, b'h', b'i']);
//! assert_eq!(f.parse(&wire[..1]).unwrap(), ParseStep::ParseInput { min_bytes: 4 });
//! assert_eq!(f.parse(&wire).unwrap(), ParseStep::AdvanceReceiveCursor(4));
//! assert_eq!(
//!     f.parse(&wire[4..]).unwrap(),
//!     ParseStep::DeliverAndAdvanceReceiveCursor { len: 2, end_of_message: true }
//! );
//! ```

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

/// Default largest message a built-in framer accepts, either way: 16 MiB
/// (large enough for any message an application means to hold whole,
/// small enough that a peer's announced length is a sane bound).
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// What a [`Framer`] wants done with the unread bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseStep {
    /// Call again once at least `min_bytes` bytes are unread (more than
    /// are unread now: asking for what is already there is a framer error,
    /// since nothing would change).
    ParseInput {
        /// The unread length the framer needs to decide.
        min_bytes: usize,
    },
    /// Skip this many unread bytes (at least one): a header, a
    /// delimiter, padding.
    AdvanceReceiveCursor(usize),
    /// The next `len` unread bytes are the next part of the current
    /// message: deliver them and advance past them. `end_of_message`
    /// closes the message (an empty message is `len == 0` with it set).
    DeliverAndAdvanceReceiveCursor {
        /// Bytes of message data at the cursor.
        len: usize,
        /// Whether they end the message.
        end_of_message: bool,
    },
}

/// A message as the framer writes it: header, body, trailer, sent in that
/// order. `Bytes` so the body goes out without a copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Framed {
    /// Bytes before the message.
    pub header: Bytes,
    /// The message (usually the application's bytes unchanged).
    pub body: Bytes,
    /// Bytes after the message.
    pub trailer: Bytes,
}

impl Framed {
    /// Total bytes on the wire.
    pub fn len(&self) -> usize {
        self.header.len() + self.body.len() + self.trailer.len()
    }

    /// Whether nothing goes on the wire.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A framer refused input or a message: which framer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramerError {
    framer: Cow<'static, str>,
    reason: String,
}

impl FramerError {
    /// An error of the framer named `framer`.
    pub fn new(framer: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        FramerError {
            framer: framer.into(),
            reason: reason.into(),
        }
    }

    /// The framer's name.
    pub fn framer(&self) -> &str {
        &self.framer
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for FramerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "framer {}: {}", self.framer, self.reason)
    }
}

impl core::error::Error for FramerError {}

/// A message framer (RFC 9623 section 6). Object-safe, so a connection
/// holds any framer as `Box<dyn Framer>`.
///
/// The connection calls [`parse`](Self::parse) with every byte not yet
/// consumed, applies the step, and calls again until the framer asks for
/// more input. A framer keeps whatever state it needs between calls (the
/// rest of a message's length, say); the connection always does what the
/// previous step said before the next call. A parse error fails the whole
/// connection (the stream can no longer be cut into messages); a frame
/// error fails only that send.
pub trait Framer: Send {
    /// A short name for errors and logs ("length-prefix").
    fn name(&self) -> &'static str;

    /// Decides what to do with `unread`, the bytes at the receive cursor.
    ///
    /// # Errors
    /// The stream breaks the framing (a length over the limit, a message
    /// too long without a delimiter): the connection fails.
    fn parse(&mut self, unread: &[u8]) -> Result<ParseStep, FramerError>;

    /// Writes `message` as header, body and trailer.
    ///
    /// # Errors
    /// This message cannot be framed (too long, contains the delimiter):
    /// that send fails, the connection goes on.
    fn frame(&mut self, message: Bytes) -> Result<Framed, FramerError>;

    /// Whether the stream may end here: no message started and none of
    /// `unread` is part of one. The connection reports an end of stream
    /// elsewhere as a truncated message. The default: nothing unread.
    fn at_message_boundary(&self, unread: &[u8]) -> bool {
        unread.is_empty()
    }
}

/// Width of a [`LengthPrefix`] length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PrefixWidth {
    /// One byte: messages up to 255 bytes.
    U8,
    /// Two bytes, big-endian: up to 65,535 bytes.
    U16,
    /// Four bytes, big-endian: up to 4 GiB - 1. The default.
    #[default]
    U32,
}

impl PrefixWidth {
    /// Bytes in the field.
    pub fn bytes(self) -> usize {
        match self {
            PrefixWidth::U8 => 1,
            PrefixWidth::U16 => 2,
            PrefixWidth::U32 => 4,
        }
    }

    /// The largest length the field can say.
    pub fn max_len(self) -> u64 {
        match self {
            PrefixWidth::U8 => 0xff,
            PrefixWidth::U16 => 0xffff,
            PrefixWidth::U32 => 0xffff_ffff,
        }
    }
}

/// Each message preceded by its length, big-endian.
#[derive(Debug, Clone)]
pub struct LengthPrefix {
    width: PrefixWidth,
    max_message_len: usize,
    /// Bytes of the current message still to deliver, once its header is read.
    remaining: Option<usize>,
}

impl Default for LengthPrefix {
    /// A 4-byte prefix, messages up to [`DEFAULT_MAX_MESSAGE_LEN`].
    fn default() -> Self {
        LengthPrefix::new(PrefixWidth::U32, DEFAULT_MAX_MESSAGE_LEN)
    }
}

impl LengthPrefix {
    /// A `width` prefix, messages up to `max_message_len` bytes (and what
    /// the width can say). A peer announcing more fails the connection
    /// before anything is buffered for it.
    pub fn new(width: PrefixWidth, max_message_len: usize) -> Self {
        let cap = usize::try_from(width.max_len()).unwrap_or(usize::MAX);
        LengthPrefix {
            width,
            max_message_len: max_message_len.min(cap),
            remaining: None,
        }
    }

    /// The largest message either way.
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    fn err(&self, reason: String) -> FramerError {
        FramerError::new(self.name(), reason)
    }
}

impl Framer for LengthPrefix {
    fn name(&self) -> &'static str {
        "length-prefix"
    }

    fn parse(&mut self, unread: &[u8]) -> Result<ParseStep, FramerError> {
        match self.remaining {
            None => {
                let w = self.width.bytes();
                let Some(field) = unread.get(..w) else {
                    return Ok(ParseStep::ParseInput { min_bytes: w });
                };
                let len = field.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
                if len > self.max_message_len as u64 {
                    return Err(self.err(format!(
                        "the peer announced a {len}-byte message, over the limit of {} bytes",
                        self.max_message_len
                    )));
                }
                // Fits: len <= max_message_len, a usize.
                self.remaining = Some(len as usize);
                Ok(ParseStep::AdvanceReceiveCursor(w))
            }
            Some(0) => {
                self.remaining = None;
                Ok(ParseStep::DeliverAndAdvanceReceiveCursor {
                    len: 0,
                    end_of_message: true,
                })
            }
            Some(rest) => {
                if unread.is_empty() {
                    return Ok(ParseStep::ParseInput { min_bytes: 1 });
                }
                let len = rest.min(unread.len());
                let end_of_message = len == rest;
                self.remaining = if end_of_message {
                    None
                } else {
                    Some(rest - len)
                };
                Ok(ParseStep::DeliverAndAdvanceReceiveCursor {
                    len,
                    end_of_message,
                })
            }
        }
    }

    fn frame(&mut self, message: Bytes) -> Result<Framed, FramerError> {
        if message.len() > self.max_message_len {
            return Err(self.err(format!(
                "a {}-byte message is over the limit of {} bytes",
                message.len(),
                self.max_message_len
            )));
        }
        let len = message.len() as u64;
        let w = self.width.bytes();
        let header: Vec<u8> = (0..w).rev().map(|i| (len >> (8 * i)) as u8).collect();
        Ok(Framed {
            header: header.into(),
            body: message,
            trailer: Bytes::new(),
        })
    }

    fn at_message_boundary(&self, unread: &[u8]) -> bool {
        self.remaining.is_none() && unread.is_empty()
    }
}

/// Each message followed by a delimiter (default `b"\n"`); messages must
/// not contain it.
#[derive(Debug, Clone)]
pub struct Delimiter {
    delimiter: Bytes,
    max_message_len: usize,
    /// Bytes of the current message delivered so far.
    delivered: usize,
    /// The delimiter is at the cursor, to skip.
    skip_delimiter: bool,
}

impl Default for Delimiter {
    /// `b"\n"`, messages up to [`DEFAULT_MAX_MESSAGE_LEN`].
    fn default() -> Self {
        Delimiter {
            delimiter: Bytes::from_static(b"\n"),
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            delivered: 0,
            skip_delimiter: false,
        }
    }
}

impl Delimiter {
    /// Messages ended by `delimiter`, each up to `max_message_len` bytes
    /// (not counting the delimiter). A peer sending more without a
    /// delimiter fails the connection.
    ///
    /// # Errors
    /// An empty delimiter.
    pub fn new(delimiter: Bytes, max_message_len: usize) -> Result<Self, FramerError> {
        if delimiter.is_empty() {
            return Err(FramerError::new("delimiter", "the delimiter is empty"));
        }
        Ok(Delimiter {
            delimiter,
            max_message_len,
            delivered: 0,
            skip_delimiter: false,
        })
    }

    /// The largest message either way.
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    fn find(&self, hay: &[u8]) -> Option<usize> {
        let d = &self.delimiter[..];
        hay.windows(d.len()).position(|w| w == d)
    }

    fn too_long(&self) -> FramerError {
        FramerError::new(
            self.name(),
            format!(
                "the peer sent over {} bytes without a delimiter",
                self.max_message_len
            ),
        )
    }
}

impl Framer for Delimiter {
    fn name(&self) -> &'static str {
        "delimiter"
    }

    fn parse(&mut self, unread: &[u8]) -> Result<ParseStep, FramerError> {
        let dlen = self.delimiter.len();
        if self.skip_delimiter {
            if unread.len() < dlen {
                return Ok(ParseStep::ParseInput { min_bytes: dlen });
            }
            self.skip_delimiter = false;
            return Ok(ParseStep::AdvanceReceiveCursor(dlen));
        }
        if let Some(at) = self.find(unread) {
            if self.delivered + at > self.max_message_len {
                return Err(self.too_long());
            }
            self.delivered = 0;
            self.skip_delimiter = true;
            return Ok(ParseStep::DeliverAndAdvanceReceiveCursor {
                len: at,
                end_of_message: true,
            });
        }
        // No delimiter: every byte but a possible delimiter's start is
        // message data, delivered now so nothing long is held here.
        let safe = unread.len().saturating_sub(dlen - 1);
        if self.delivered + safe > self.max_message_len {
            return Err(self.too_long());
        }
        if safe == 0 {
            return Ok(ParseStep::ParseInput {
                min_bytes: unread.len() + 1,
            });
        }
        self.delivered += safe;
        Ok(ParseStep::DeliverAndAdvanceReceiveCursor {
            len: safe,
            end_of_message: false,
        })
    }

    fn frame(&mut self, message: Bytes) -> Result<Framed, FramerError> {
        if message.len() > self.max_message_len {
            return Err(FramerError::new(
                self.name(),
                format!(
                    "a {}-byte message is over the limit of {} bytes",
                    message.len(),
                    self.max_message_len
                ),
            ));
        }
        if let Some(at) = self.find(&message) {
            return Err(FramerError::new(
                self.name(),
                format!("the message contains the delimiter at offset {at}"),
            ));
        }
        Ok(Framed {
            header: Bytes::new(),
            body: message,
            trailer: self.delimiter.clone(),
        })
    }

    fn at_message_boundary(&self, unread: &[u8]) -> bool {
        self.delivered == 0 && !self.skip_delimiter && unread.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    /// Parses `wire` fed in `chunk`-byte pieces; returns whole messages.
    fn parse_all(
        f: &mut dyn Framer,
        wire: &[u8],
        chunk: usize,
    ) -> Result<Vec<Vec<u8>>, FramerError> {
        let (mut unread, mut msgs, mut cur) = (Vec::new(), Vec::new(), Vec::new());
        for piece in wire.chunks(chunk.max(1)) {
            unread.extend_from_slice(piece);
            loop {
                match f.parse(&unread)? {
                    ParseStep::ParseInput { min_bytes } => {
                        assert!(min_bytes > unread.len());
                        break;
                    }
                    ParseStep::AdvanceReceiveCursor(n) => {
                        unread.drain(..n);
                    }
                    ParseStep::DeliverAndAdvanceReceiveCursor {
                        len,
                        end_of_message,
                    } => {
                        cur.extend(unread.drain(..len));
                        if end_of_message {
                            msgs.push(core::mem::take(&mut cur));
                        }
                    }
                }
            }
        }
        assert!(f.at_message_boundary(&unread));
        Ok(msgs)
    }

    fn wire(f: &mut dyn Framer, msgs: &[&[u8]]) -> Vec<u8> {
        let mut w = Vec::new();
        for m in msgs {
            let fr = f.frame(Bytes::copy_from_slice(m)).unwrap();
            w.extend_from_slice(&fr.header);
            w.extend_from_slice(&fr.body);
            w.extend_from_slice(&fr.trailer);
        }
        w
    }

    #[test]
    fn length_prefix_round_trips_in_any_chunking() {
        let msgs: [&[u8]; 4] = [b"", b"a", &[7u8; 300], b"xyz"];
        for width in [PrefixWidth::U16, PrefixWidth::U32] {
            let w = wire(&mut LengthPrefix::new(width, 1000), &msgs);
            for chunk in [1, 2, 3, 5, 64, 10_000] {
                let got = parse_all(&mut LengthPrefix::new(width, 1000), &w, chunk).unwrap();
                assert_eq!(got, msgs.iter().map(|m| m.to_vec()).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn length_prefix_refuses_an_oversized_announcement_before_reading_it() {
        let mut f = LengthPrefix::new(PrefixWidth::U32, 10);
        let e = f.parse(&[0, 0, 0, 11]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "framer length-prefix: the peer announced a 11-byte message, over the limit of 10 bytes"
        );
        assert!(LengthPrefix::new(PrefixWidth::U8, 1000)
            .frame(Bytes::from(vec![0; 256]))
            .is_err());
    }

    #[test]
    fn delimiter_round_trips_with_a_multi_byte_delimiter() {
        let mk = || Delimiter::new(Bytes::from_static(b"\r\n"), 100).unwrap();
        let msgs: [&[u8]; 4] = [b"", b"\r", b"a\rb", b"hello world"];
        let w = wire(&mut mk(), &msgs);
        for chunk in [1, 2, 3, 7, 1000] {
            let got = parse_all(&mut mk(), &w, chunk).unwrap();
            assert_eq!(got, msgs.iter().map(|m| m.to_vec()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn delimiter_refuses_a_message_holding_it_and_long_lines() {
        let mut f = Delimiter::default();
        let e = f.frame(Bytes::from_static(b"a\nb")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "framer delimiter: the message contains the delimiter at offset 1"
        );
        let mut f = Delimiter::new(Bytes::from_static(b"\n"), 4).unwrap();
        assert!(parse_all(&mut f, b"abcd\n", 1).is_ok());
        let mut f = Delimiter::new(Bytes::from_static(b"\n"), 4).unwrap();
        let e = parse_all(&mut f, b"abcde", 1).unwrap_err();
        assert!(e.to_string().contains("without a delimiter"), "{e}");
        assert!(Delimiter::new(Bytes::new(), 4).is_err());
    }

    #[test]
    fn a_truncated_message_is_not_a_boundary() {
        let mut f = LengthPrefix::default();
        assert_eq!(
            f.parse(&[0, 0, 0, 3]).unwrap(),
            ParseStep::AdvanceReceiveCursor(4)
        );
        assert!(!f.at_message_boundary(&[]));
        let mut d = Delimiter::default();
        assert!(!d.at_message_boundary(b"x"));
        d.parse(b"xy").unwrap();
        assert!(!d.at_message_boundary(&[]));
    }
}

/// Makes a fresh framer for each connection of a preconnection: a framer
/// keeps per-stream state, so connections cannot share one. The default
/// makes [`LengthPrefix::default`].
///
/// ```
/// use proto_core::taps::framer::{Delimiter, FramerFactory};
/// let lines = FramerFactory::new(|| Box::new(Delimiter::default()));
/// assert_eq!(lines.make().name(), "delimiter");
/// assert_eq!(FramerFactory::default().make().name(), "length-prefix");
/// ```
#[derive(Clone)]
pub struct FramerFactory(alloc::sync::Arc<dyn Fn() -> alloc::boxed::Box<dyn Framer> + Send + Sync>);

impl FramerFactory {
    /// A factory calling `make` for each connection.
    pub fn new(make: impl Fn() -> alloc::boxed::Box<dyn Framer> + Send + Sync + 'static) -> Self {
        FramerFactory(alloc::sync::Arc::new(make))
    }

    /// A new framer.
    pub fn make(&self) -> alloc::boxed::Box<dyn Framer> {
        (self.0)()
    }
}

impl Default for FramerFactory {
    fn default() -> Self {
        FramerFactory::new(|| alloc::boxed::Box::new(LengthPrefix::default()))
    }
}

impl fmt::Debug for FramerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FramerFactory({})", self.make().name())
    }
}
