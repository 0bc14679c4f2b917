//! The record layer: after the handshake, the byte stream is a sequence of
//! records, each a 2-byte big-endian length and that many bytes of
//! ChaCha20-Poly1305 ciphertext (at most 65535, as Noise allows).
//!
//! Nonces are implicit counters, so a replayed, dropped or reordered
//! record fails authentication. Each side rekeys its sending key after
//! every [`RecordConfig::rekey_after`] records and announces that interval
//! in its handshake payload, so the receiver rekeys in step without a
//! message. The first record that fails to open ends the layer: nothing
//! after it is delivered.

use super::error::RecordError;
use crate::wire::TransmitBuf;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};
use core::fmt;

/// Bytes of the length prefix in front of each record.
pub const LEN_PREFIX: usize = 2;
/// Bytes the AEAD tag adds to each record.
pub const TAG_LEN: usize = 16;
/// The longest record body (ciphertext) Noise allows.
pub const MAX_RECORD: usize = 65535;
/// The most plaintext one record can carry.
pub const MAX_RECORD_PLAINTEXT: usize = MAX_RECORD - TAG_LEN;

/// Record layer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordConfig {
    /// Most plaintext bytes per sealed record, 1..=[`MAX_RECORD_PLAINTEXT`].
    /// Default: the maximum (fewest AEAD calls and syscalls per byte).
    pub max_plaintext: usize,
    /// Records sent under one key before rekeying it; 0 never rekeys.
    /// Default 2^20 (64 GiB of full records).
    pub rekey_after: u64,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            max_plaintext: MAX_RECORD_PLAINTEXT,
            rekey_after: 1 << 20,
        }
    }
}

/// The record layer of one established connection.
///
/// [`open`](Self::open) takes bytes from the wire in any chunking and
/// hands out each record's plaintext; [`seal`](Self::seal) turns plaintext
/// into one record. [`Secured`](super::Secured) stacks it under any
/// [`Machine`](crate::wire::Machine).
pub struct Records {
    transport: snow::TransportState,
    max_plaintext: usize,
    send_rekey: u64,
    recv_rekey: u64,
    sent: u64,
    received: u64,
    /// A record split across inputs: its bytes so far (bounded by one record).
    partial: Vec<u8>,
    /// Decrypted records, handed out as `Bytes` without another copy.
    plain_in: BytesMut,
    /// Mux output waiting to be sealed: `plain_out[plain_pos..]`.
    plain_out: Vec<u8>,
    plain_pos: usize,
    /// Sealed records, handed to the sink as `Bytes` (no copy into an
    /// `IoChunks`; the buffer comes back once the sink drops them).
    sealed: BytesMut,
    /// Why opening stopped (an input error ends input only: the CLOSE
    /// that reports it still goes out sealed).
    rx_failed: Option<RecordError>,
    tx_failed: Option<RecordError>,
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("sent", &self.sent)
            .field("received", &self.received)
            .field("rx_failed", &self.rx_failed)
            .field("tx_failed", &self.tx_failed)
            .finish_non_exhaustive()
    }
}

impl Records {
    pub(crate) fn new(
        transport: snow::TransportState,
        config: &RecordConfig,
        peer_rekey_after: u64,
    ) -> Self {
        Records {
            transport,
            max_plaintext: config.max_plaintext.clamp(1, MAX_RECORD_PLAINTEXT),
            send_rekey: config.rekey_after,
            recv_rekey: peer_rekey_after,
            sent: 0,
            received: 0,
            partial: Vec::new(),
            plain_in: BytesMut::new(),
            plain_out: Vec::new(),
            plain_pos: 0,
            sealed: BytesMut::new(),
            rx_failed: None,
            tx_failed: None,
        }
    }

    /// Records sealed so far.
    pub fn records_sent(&self) -> u64 {
        self.sent
    }

    /// Records opened so far.
    pub fn records_received(&self) -> u64 {
        self.received
    }

    /// Plaintext taken from the layer above and not sealed yet.
    pub fn pending_plaintext(&self) -> usize {
        self.plain_out.len() - self.plain_pos
    }

    /// Why opening records stopped, if it did.
    pub fn input_error(&self) -> Option<RecordError> {
        self.rx_failed
    }

    /// Seals `plain` (at most the configured record size) as one record
    /// appended to `out`; returns the bytes appended.
    pub fn seal(&mut self, plain: &[u8], out: &mut impl TransmitBuf) -> Result<usize, RecordError> {
        if let Some(e) = self.tx_failed {
            return Err(e);
        }
        if plain.len() > self.max_plaintext {
            return Err(RecordError::TooLarge);
        }
        let len = LEN_PREFIX + plain.len() + TAG_LEN;
        self.sealed.clear();
        self.sealed.reserve(len);
        self.sealed.resize(len, 0);
        let n = self
            .transport
            .write_message(plain, &mut self.sealed[LEN_PREFIX..])
            .map_err(|_| {
                self.tx_failed = Some(RecordError::NonceExhausted);
                RecordError::NonceExhausted
            })?;
        // n <= MAX_RECORD: checked by snow.
        self.sealed[..LEN_PREFIX].copy_from_slice(&(n as u16).to_be_bytes());
        self.sealed.truncate(LEN_PREFIX + n);
        out.put_bytes(self.sealed.split().freeze());
        self.sent += 1;
        if self.send_rekey != 0 && self.sent % self.send_rekey == 0 {
            self.transport.rekey_outgoing();
        }
        Ok(LEN_PREFIX + n)
    }

    fn fail(&mut self, e: RecordError) -> RecordError {
        self.rx_failed = Some(e);
        self.partial = Vec::new();
        e
    }

    /// Opens the records in `data` (any chunking), calling `deliver` with
    /// each one's plaintext in order. `deliver` returning `false` means the
    /// consumer is gone (its connection closed): the rest of `data` is
    /// dropped. The first record that fails to authenticate stops
    /// everything: it and all later bytes are dropped and every later call
    /// fails.
    pub fn open(
        &mut self,
        mut data: &[u8],
        mut deliver: impl FnMut(Bytes) -> bool,
    ) -> Result<(), RecordError> {
        if let Some(e) = self.rx_failed {
            return Err(e);
        }
        // Finish a record split across inputs first.
        if !self.partial.is_empty() {
            // Twice at most: the rest of the length prefix, then the body.
            while self.missing() > 0 {
                if data.is_empty() {
                    return Ok(());
                }
                let take = self.missing().min(data.len());
                self.partial.extend_from_slice(&data[..take]);
                data = &data[take..];
            }
            let rec = core::mem::take(&mut self.partial);
            let plain = self.open_one(&rec[LEN_PREFIX..])?;
            self.partial = rec;
            self.partial.clear();
            if !deliver(plain) {
                return Ok(());
            }
        }
        // Whole records straight from the input, without buffering.
        while data.len() >= LEN_PREFIX {
            let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
            if data.len() < LEN_PREFIX + len {
                break;
            }
            let plain = self.open_one(&data[LEN_PREFIX..LEN_PREFIX + len])?;
            data = &data[LEN_PREFIX + len..];
            if !deliver(plain) {
                return Ok(());
            }
        }
        self.partial.extend_from_slice(data);
        Ok(())
    }

    /// Bytes still missing from the partial record.
    fn missing(&self) -> usize {
        if self.partial.len() < LEN_PREFIX {
            return LEN_PREFIX - self.partial.len();
        }
        let len = usize::from(u16::from_be_bytes([self.partial[0], self.partial[1]]));
        (LEN_PREFIX + len).saturating_sub(self.partial.len())
    }

    fn open_one(&mut self, body: &[u8]) -> Result<Bytes, RecordError> {
        if body.len() < TAG_LEN {
            return Err(self.fail(RecordError::Authentication));
        }
        self.plain_in.reserve(body.len());
        self.plain_in.resize(body.len() - TAG_LEN, 0);
        match self.transport.read_message(body, &mut self.plain_in) {
            Ok(n) => {
                self.plain_in.truncate(n);
                self.received += 1;
                if self.recv_rekey != 0 && self.received % self.recv_rekey == 0 {
                    self.transport.rekey_incoming();
                }
                Ok(self.plain_in.split().freeze())
            }
            Err(_) => {
                self.plain_in.clear();
                Err(self.fail(RecordError::Authentication))
            }
        }
    }

    /// Drains plaintext from `poll` (which appends to the buffer it is
    /// given and returns whether it appended anything: a layer's
    /// `poll_transmit`) and seals it as one record appended to `out`,
    /// several of the layer's messages per record; returns the bytes
    /// appended, `None` when there is nothing to send.
    #[must_use]
    pub fn transmit_with(
        &mut self,
        mut poll: impl FnMut(&mut Vec<u8>) -> bool,
        out: &mut impl TransmitBuf,
    ) -> Option<usize> {
        if self.tx_failed.is_some() {
            return None;
        }
        if self.plain_out.len() - self.plain_pos < self.max_plaintext {
            // Refill. The mux gives up to `max_transmit` per call, several
            // records' worth: those are sealed from an offset, and only the
            // tail of one record moves to the front here.
            self.plain_out.drain(..self.plain_pos);
            self.plain_pos = 0;
            while self.plain_out.len() < self.max_plaintext {
                if !poll(&mut self.plain_out) {
                    break;
                }
            }
        }
        let pending = self.plain_out.len() - self.plain_pos;
        if pending == 0 {
            return None;
        }
        let n = pending.min(self.max_plaintext);
        let body = core::mem::take(&mut self.plain_out);
        let r = self.seal(&body[self.plain_pos..self.plain_pos + n], out);
        self.plain_out = body;
        self.plain_pos += n;
        if self.plain_pos == self.plain_out.len() {
            self.plain_out.clear();
            self.plain_pos = 0;
        }
        r.ok()
    }
}
