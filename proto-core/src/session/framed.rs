//! A message machine on a byte stream: each message preceded by its
//! length, a big-endian u32 (how webwire messages travel on a weft flow or
//! a plain socket, where there are no WebSocket frames).
//!
//! [`Framed<M>`] is a [`Machine`], so the one driver, `Secured`,
//! `Recorded` and `OnFlow` run a [`ServerConnection`] or a
//! [`ClientConnection`] like any other layer. Frames are cut out of the
//! input as slices (a frame that arrives whole in one read is not
//! copied); a length over the machine's maximum message size closes it
//! before anything is buffered for that frame.
//!
//! (`taps::framer::LengthPrefix` delivers a message in parts as they
//! arrive; a webwire message is decoded whole, so this cuts whole frames
//! itself.)

use super::client::{ClientConnection, ClientError};
use super::close::CloseReason;
use super::server::{ServerConnection, SessionError};
use crate::time::Instant;
use crate::wire::{Machine, Rejected, TransmitBuf};
use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the length before each message.
pub const LENGTH_PREFIX: usize = 4;

/// The announced length at the front of `b`, once its 4 bytes are there.
fn frame_len(b: &[u8]) -> Option<usize> {
    let p = b.get(..LENGTH_PREFIX)?;
    Some(u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize)
}

/// A machine that takes and gives whole messages: what [`Framed`] runs.
pub trait MessageMachine {
    /// Why an input was refused.
    type Error;
    /// One whole message.
    ///
    /// # Errors
    /// The machine refused it (and has closed, or was closed).
    fn handle_message(&mut self, now: Instant, frame: Bytes) -> Result<(), Self::Error>;
    /// A deadline passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The transport ended.
    fn handle_transport_closed(&mut self, now: Instant);
    /// The next message to send.
    fn poll_message(&mut self) -> Option<Bytes>;
    /// Whether a message is queued.
    fn has_messages(&self) -> bool;
    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Closed for good.
    fn is_closed(&self) -> bool;
    /// Closes now for `why`.
    fn close(&mut self, now: Instant, why: CloseReason);
    /// The largest message it reads.
    fn max_message_size(&self) -> usize;
}

impl MessageMachine for ServerConnection {
    type Error = SessionError;
    fn handle_message(&mut self, now: Instant, frame: Bytes) -> Result<(), SessionError> {
        ServerConnection::handle_message(self, now, frame)
    }
    fn handle_timeout(&mut self, now: Instant) {
        ServerConnection::handle_timeout(self, now)
    }
    fn handle_transport_closed(&mut self, now: Instant) {
        ServerConnection::handle_transport_closed(self, now)
    }
    fn poll_message(&mut self) -> Option<Bytes> {
        ServerConnection::poll_message(self)
    }
    fn has_messages(&self) -> bool {
        ServerConnection::has_messages(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ServerConnection::poll_timeout(self)
    }
    fn is_closed(&self) -> bool {
        ServerConnection::is_closed(self)
    }
    fn close(&mut self, now: Instant, why: CloseReason) {
        ServerConnection::close(self, now, why)
    }
    fn max_message_size(&self) -> usize {
        self.config().max_message_size
    }
}

impl MessageMachine for ClientConnection {
    type Error = ClientError;
    fn handle_message(&mut self, now: Instant, frame: Bytes) -> Result<(), ClientError> {
        ClientConnection::handle_message(self, now, frame)
    }
    fn handle_timeout(&mut self, now: Instant) {
        ClientConnection::handle_timeout(self, now)
    }
    fn handle_transport_closed(&mut self, now: Instant) {
        ClientConnection::handle_transport_closed(self, now)
    }
    fn poll_message(&mut self) -> Option<Bytes> {
        ClientConnection::poll_message(self)
    }
    fn has_messages(&self) -> bool {
        ClientConnection::has_messages(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ClientConnection::poll_timeout(self)
    }
    fn is_closed(&self) -> bool {
        ClientConnection::is_closed(self)
    }
    fn close(&mut self, now: Instant, why: CloseReason) {
        ClientConnection::close(self, now, why)
    }
    fn max_message_size(&self) -> usize {
        self.config().max_message_size
    }
}

/// `M` over a byte stream, each message after its u32 big-endian length.
///
/// Events and commands stay `M`'s: reach them with
/// [`inner`](Self::inner) / [`inner_mut`](Self::inner_mut), then drain
/// `poll_transmit` as after any command.
#[derive(Debug)]
pub struct Framed<M> {
    inner: M,
    /// The start of a frame not yet whole.
    buf: BytesMut,
}

impl<M: MessageMachine> Framed<M> {
    /// Runs `inner` on a byte stream.
    pub fn new(inner: M) -> Self {
        Framed {
            inner,
            buf: BytesMut::new(),
        }
    }

    /// The message machine.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The message machine, for its commands and events.
    pub fn inner_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// Bytes held for a frame not yet whole.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Closes the machine if `len` is over its limit.
    fn check_len(&mut self, now: Instant, len: usize) -> Result<usize, Rejected> {
        let max = self.inner.max_message_size();
        if len > max {
            self.inner
                .close(now, CloseReason::MessageTooLarge { len, max });
            return Err(Rejected);
        }
        Ok(len)
    }

    fn deliver(&mut self, now: Instant, frame: Bytes) -> Result<(), Rejected> {
        self.inner.handle_message(now, frame).map_err(|_| Rejected)
    }
}

impl<M: MessageMachine> Machine for Framed<M> {
    fn handle_input(&mut self, now: Instant, mut data: Bytes) -> Result<(), Rejected> {
        if self.inner.is_closed() {
            return Err(Rejected);
        }
        // Whole frames straight from the input, without a copy.
        while self.buf.is_empty() {
            let Some(len) = frame_len(&data) else {
                break;
            };
            let len = self.check_len(now, len)?;
            if data.len() < LENGTH_PREFIX + len {
                break;
            }
            data.advance(LENGTH_PREFIX);
            let frame = data.split_to(len);
            self.deliver(now, frame)?;
        }
        if data.is_empty() {
            return Ok(());
        }
        self.buf.extend_from_slice(&data);
        while let Some(len) = frame_len(&self.buf) {
            let len = self.check_len(now, len)?;
            if self.buf.len() < LENGTH_PREFIX + len {
                // Room for the rest of this frame, once (len <= max).
                self.buf.reserve(LENGTH_PREFIX + len - self.buf.len());
                break;
            }
            self.buf.advance(LENGTH_PREFIX);
            let frame = self.buf.split_to(len).freeze();
            self.deliver(now, frame)?;
        }
        Ok(())
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now)
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        self.buf.clear();
        self.inner.handle_transport_closed(now)
    }

    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
        let msg = self.inner.poll_message()?;
        // A message is bounded by what the application built; one over
        // 4 GiB cannot be framed and is not sent.
        let len = u32::try_from(msg.len()).ok()?;
        out.put_slice(&len.to_be_bytes());
        out.put_bytes(msg);
        Some(LENGTH_PREFIX + len as usize)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn wants_transmit(&self) -> bool {
        self.inner.has_messages()
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn close(&mut self, now: Instant, _code: u64, _reason: &[u8]) {
        self.inner.close(now, CloseReason::Local)
    }
}
