//! A small length-prefixed echo protocol: the reference byte-stream
//! machine. It runs directly on a socket, on one flow of a mux connection
//! ([`OnFlow`](crate::mux::OnFlow)), in the simulator and on every adapter,
//! through the same contract as the layers to come (RPC, sessions).
//!
//! Wire: each message is a 4-byte big-endian length and that many bytes.
//! The server sends every message back; the client sends what it is given
//! and collects the replies.

use crate::time::Instant;
use crate::wire::{Machine, Rejected, TransmitBuf};
use alloc::collections::VecDeque;
use bytes::{Buf, Bytes, BytesMut};
use core::fmt;

/// Bytes of the length prefix.
pub const PREFIX: usize = 4;

/// Which end of the echo an [`Echo`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoRole {
    /// Sends messages, collects replies.
    Client,
    /// Sends every message back.
    Server,
}

/// Why an echo machine stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EchoError {
    /// A message longer than the configured maximum was announced.
    TooLong {
        /// The announced length.
        len: usize,
    },
    /// The transport ended inside a message.
    Truncated,
    /// Closed locally with this code.
    Closed(u64),
}

impl fmt::Display for EchoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EchoError::TooLong { len } => write!(f, "echo message of {len} bytes too long"),
            EchoError::Truncated => f.write_str("transport ended inside an echo message"),
            EchoError::Closed(c) => write!(f, "echo closed locally with code {c}"),
        }
    }
}

impl core::error::Error for EchoError {}

/// One end of the echo protocol (see the module docs).
///
/// ```
/// use proto_core::sim::echo::{Echo, EchoRole};
/// use proto_core::time::Instant;
/// use proto_core::wire::Machine;
///
/// let (mut c, mut s) = (Echo::new(EchoRole::Client, 1024), Echo::new(EchoRole::Server, 1024));
/// c.send(b"ping").unwrap();
/// let mut wire = Vec::new();
/// while c.poll_transmit(&mut wire).is_some() {}
/// s.handle_input(Instant::ZERO, wire.into()).unwrap();
/// let mut back = Vec::new();
/// while s.poll_transmit(&mut back).is_some() {}
/// c.handle_input(Instant::ZERO, back.into()).unwrap();
/// assert_eq!(&c.poll_reply().unwrap()[..], b"ping");
/// ```
#[derive(Debug)]
pub struct Echo {
    role: EchoRole,
    max_message: usize,
    rx: BytesMut,
    tx: VecDeque<Bytes>,
    /// Bytes in `tx`.
    tx_bytes: usize,
    replies: VecDeque<Bytes>,
    /// Messages sent whose reply has not arrived (client).
    outstanding: usize,
    ended: bool,
    error: Option<EchoError>,
}

impl Echo {
    /// An echo end that accepts messages of at most `max_message` bytes.
    pub fn new(role: EchoRole, max_message: usize) -> Self {
        Echo {
            role,
            max_message,
            rx: BytesMut::new(),
            tx: VecDeque::new(),
            tx_bytes: 0,
            replies: VecDeque::new(),
            outstanding: 0,
            ended: false,
            error: None,
        }
    }

    /// Queues `msg` (client; a server may send too). Refused once closed
    /// or if longer than the maximum.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), EchoError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if msg.len() > self.max_message {
            return Err(EchoError::TooLong { len: msg.len() });
        }
        self.frame(Bytes::copy_from_slice(msg));
        self.outstanding += 1;
        Ok(())
    }

    fn frame(&mut self, msg: Bytes) {
        self.tx_bytes += PREFIX + msg.len();
        self.tx
            .push_back(Bytes::copy_from_slice(&(msg.len() as u32).to_be_bytes()));
        if !msg.is_empty() {
            self.tx.push_back(msg);
        }
    }

    /// The next reply that arrived (client).
    pub fn poll_reply(&mut self) -> Option<Bytes> {
        self.replies.pop_front()
    }

    /// Messages sent whose reply has not arrived yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Output bytes not yet transmitted.
    pub fn backlog(&self) -> usize {
        self.tx_bytes
    }

    /// Output not yet transmitted beyond which the machine stops taking
    /// input: four maximal messages.
    pub fn max_backlog(&self) -> usize {
        4 * (PREFIX + self.max_message)
    }

    /// Why it stopped, if it did for a reason other than a clean end.
    pub fn error(&self) -> Option<EchoError> {
        self.error
    }

    fn on_message(&mut self, msg: Bytes) {
        match self.role {
            EchoRole::Server => self.frame(msg),
            EchoRole::Client => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.replies.push_back(msg);
            }
        }
    }
}

impl Machine for Echo {
    fn handle_input(&mut self, _now: Instant, data: Bytes) -> Result<(), Rejected> {
        if self.error.is_some() || self.ended {
            return Err(Rejected);
        }
        self.rx.extend_from_slice(&data);
        while self.rx.len() >= PREFIX {
            let len = u32::from_be_bytes([self.rx[0], self.rx[1], self.rx[2], self.rx[3]]) as usize;
            if len > self.max_message {
                self.error = Some(EchoError::TooLong { len });
                self.rx.clear();
                return Err(Rejected);
            }
            if self.rx.len() < PREFIX + len {
                break;
            }
            self.rx.advance(PREFIX);
            let msg = self.rx.split_to(len).freeze();
            self.on_message(msg);
        }
        Ok(())
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn handle_transport_closed(&mut self, _now: Instant) {
        if !self.rx.is_empty() && self.error.is_none() {
            self.error = Some(EchoError::Truncated);
        }
        self.ended = true;
    }

    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
        let chunk = self.tx.pop_front()?;
        let n = chunk.len();
        self.tx_bytes -= n;
        out.put_bytes(chunk);
        Some(n)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn wants_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// A server whose echoes are not drained (a peer that sends and never
    /// reads) stops taking input: its backlog stays within about
    /// `max_backlog` plus one read.
    fn wants_input(&self) -> bool {
        self.tx_bytes < self.max_backlog()
    }

    fn is_closed(&self) -> bool {
        self.tx.is_empty() && (self.ended || self.error.is_some())
    }

    fn close(&mut self, _now: Instant, code: u64, _reason: &[u8]) {
        self.error.get_or_insert(EchoError::Closed(code));
        self.tx.clear();
        self.tx_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn pump(from: &mut Echo, to: &mut Echo, chunk: usize) -> Result<(), Rejected> {
        let mut w = Vec::new();
        while from.poll_transmit(&mut w).is_some() {}
        for piece in w.chunks(chunk.max(1)) {
            to.handle_input(Instant::ZERO, Bytes::copy_from_slice(piece))?;
        }
        Ok(())
    }

    #[test]
    fn messages_come_back_whole_whatever_the_chunking() {
        for chunk in [1, 3, 7, 1000] {
            let mut c = Echo::new(EchoRole::Client, 64);
            let mut s = Echo::new(EchoRole::Server, 64);
            for m in [&b""[..], b"a", b"hello", &[7u8; 64]] {
                c.send(m).unwrap();
            }
            assert_eq!(c.outstanding(), 4);
            pump(&mut c, &mut s, chunk).unwrap();
            pump(&mut s, &mut c, chunk).unwrap();
            let got: Vec<_> = core::iter::from_fn(|| c.poll_reply()).collect();
            assert_eq!(got, [&b""[..], b"a", b"hello", &[7u8; 64]]);
            assert_eq!(c.outstanding(), 0);
        }
    }

    #[test]
    fn an_overlong_message_is_refused_and_closes() {
        let mut s = Echo::new(EchoRole::Server, 8);
        let r = s.handle_input(Instant::ZERO, Bytes::from_static(&[0, 0, 0, 9, 1]));
        assert_eq!(r, Err(Rejected));
        assert_eq!(s.error(), Some(EchoError::TooLong { len: 9 }));
        assert!(s.is_closed());
        let mut c = Echo::new(EchoRole::Client, 8);
        assert_eq!(c.send(&[0; 9]), Err(EchoError::TooLong { len: 9 }));
    }

    #[test]
    fn an_undrained_server_stops_taking_input() {
        let mut s = Echo::new(EchoRole::Server, 8);
        let msg = [0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let mut fed = 0;
        while s.wants_input() {
            s.handle_input(Instant::ZERO, Bytes::copy_from_slice(&msg))
                .unwrap();
            fed += 1;
            assert!(fed < 100, "never pushed back");
        }
        assert_eq!(fed, 4);
        let mut w = Vec::new();
        while s.poll_transmit(&mut w).is_some() {}
        assert!(s.wants_input());
        assert_eq!(w.len(), 4 * msg.len());
    }

    #[test]
    fn an_end_inside_a_message_is_truncation() {
        let mut s = Echo::new(EchoRole::Server, 8);
        s.handle_input(Instant::ZERO, Bytes::from_static(&[0, 0, 0, 4, 1]))
            .unwrap();
        s.handle_transport_closed(Instant::ZERO);
        assert_eq!(s.error(), Some(EchoError::Truncated));
        assert!(s.is_closed());
    }
}
