//! The record layer: after the handshake, the byte stream is a sequence of
//! records, each a 2-byte big-endian length and that many bytes of AEAD
//! ciphertext and tag (at most 65535, as Noise allows), under the suite
//! the handshake chose.
//!
//! Nonces are implicit counters, so a replayed, dropped or reordered
//! record fails authentication. Each side rekeys its sending key after
//! every [`RecordConfig::rekey_after`] records (Noise's `REKEY`) and
//! announces that interval in its handshake payload, so the receiver
//! rekeys in step without a message. The first record that fails to open
//! ends the layer: nothing after it is delivered.
//!
//! Both directions work in place: the layer above writes its output
//! straight into the record's buffer, which is sealed where it lies; an
//! input buffer the layer owns alone is opened where it lies and its
//! plaintext handed up as slices of it.

use super::crypto::{Aead, CryptoBackend, Suite};
use super::error::RecordError;
use crate::wire::{extend_in_pieces, TransmitBuf};
use alloc::boxed::Box;
use bytes::{Buf, Bytes, BytesMut};
use core::fmt;
use zeroize::Zeroizing;

pub use super::crypto::TAG_LEN;

/// Bytes of the length prefix in front of each record.
pub const LEN_PREFIX: usize = 2;
/// The longest record body (ciphertext) Noise allows.
pub const MAX_RECORD: usize = 65535;
/// The most plaintext one record can carry.
pub const MAX_RECORD_PLAINTEXT: usize = MAX_RECORD - TAG_LEN;

/// Record layer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordConfig {
    /// Most plaintext bytes per sealed record, 1..=[`MAX_RECORD_PLAINTEXT`].
    /// Default: the maximum (fewest AEAD calls and syscalls per byte;
    /// `BENCHMARKS.md` compares sizes).
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

/// One direction's key and nonce counter.
struct CipherState {
    backend: &'static dyn CryptoBackend,
    suite: Suite,
    aead: Box<dyn Aead>,
    nonce: u64,
}

impl CipherState {
    fn new(backend: &'static dyn CryptoBackend, suite: Suite, key: &[u8; 32]) -> Self {
        CipherState {
            backend,
            suite,
            aead: backend.aead(suite, key),
            nonce: 0,
        }
    }

    /// The next nonce; 2^64 - 1 is reserved for rekeying.
    fn next_nonce(&mut self) -> Result<u64, RecordError> {
        if self.nonce == u64::MAX {
            return Err(RecordError::NonceExhausted);
        }
        let n = self.nonce;
        self.nonce += 1;
        Ok(n)
    }

    fn seal(&mut self, buf: &mut [u8]) -> Result<[u8; TAG_LEN], RecordError> {
        let n = self.next_nonce()?;
        Ok(self.aead.seal_in_place(n, &[], buf))
    }

    fn open(&mut self, buf: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), RecordError> {
        let n = self.next_nonce()?;
        self.aead
            .open_in_place(n, &[], buf, tag)
            .map_err(|_| RecordError::Authentication)
    }

    /// Noise's REKEY: the new key is the first 32 bytes of encrypting 32
    /// zero bytes under nonce 2^64 - 1. The counter carries on.
    fn rekey(&mut self) {
        let mut key = Zeroizing::new([0u8; 32]);
        let _tag = self.aead.seal_in_place(u64::MAX, &[], &mut key[..]);
        self.aead = self.backend.aead(self.suite, &key);
    }
}

/// The record layer of one established connection.
///
/// [`open`](Self::open) / [`open_owned`](Self::open_owned) take bytes from
/// the wire in any chunking and hand out each record's plaintext;
/// [`seal`](Self::seal) turns plaintext into one record, and
/// [`transmit_with`](Self::transmit_with) seals a layer's output in place.
/// [`Secured`](super::Secured) stacks it under any
/// [`Machine`](crate::wire::Machine).
pub struct Records {
    send: CipherState,
    recv: CipherState,
    max_plaintext: usize,
    send_rekey: u64,
    recv_rekey: u64,
    sent: u64,
    received: u64,
    /// A record split across inputs: its bytes so far (bounded by one
    /// record; the buffer is reclaimed once its plaintext is dropped).
    partial: BytesMut,
    /// Plaintext from the layer above, cut into records and sealed in
    /// place when a record's worth is there or the layer has no more.
    pending: BytesMut,
    /// Why opening stopped (an input error ends input only: the CLOSE
    /// that reports it still goes out sealed).
    rx_failed: Option<RecordError>,
    tx_failed: Option<RecordError>,
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("suite", &self.send.suite)
            .field("sent", &self.sent)
            .field("received", &self.received)
            .field("rx_failed", &self.rx_failed)
            .field("tx_failed", &self.tx_failed)
            .finish_non_exhaustive()
    }
}

impl Records {
    /// The record layer over the keys a handshake split off.
    pub(crate) fn new(
        backend: &'static dyn CryptoBackend,
        suite: Suite,
        send_key: &[u8; 32],
        recv_key: &[u8; 32],
        config: &RecordConfig,
        peer_rekey_after: u64,
    ) -> Self {
        Records {
            send: CipherState::new(backend, suite, send_key),
            recv: CipherState::new(backend, suite, recv_key),
            max_plaintext: config.max_plaintext.clamp(1, MAX_RECORD_PLAINTEXT),
            send_rekey: config.rekey_after,
            recv_rekey: peer_rekey_after,
            sent: 0,
            received: 0,
            partial: BytesMut::new(),
            pending: BytesMut::new(),
            rx_failed: None,
            tx_failed: None,
        }
    }

    /// The suite the records are sealed under.
    pub fn suite(&self) -> Suite {
        self.send.suite
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
        self.pending.len()
    }

    /// Why opening records stopped, if it did.
    pub fn input_error(&self) -> Option<RecordError> {
        self.rx_failed
    }

    /// Seals `plain` (at most the configured record size) as one record
    /// appended to `out`; returns the bytes appended.
    pub fn seal(&mut self, plain: &[u8], out: &mut impl TransmitBuf) -> Result<usize, RecordError> {
        if plain.len() > self.max_plaintext {
            return Err(RecordError::TooLarge);
        }
        self.seal_record(BytesMut::from(plain), out)
    }

    /// Seals `rec` (at most one record's plaintext) where it lies and
    /// appends the length prefix, it and its tag to `out`: three chunks,
    /// so neither the prefix nor the tag makes the record move (a vectored
    /// write sends them as one).
    fn seal_record(
        &mut self,
        mut rec: BytesMut,
        out: &mut impl TransmitBuf,
    ) -> Result<usize, RecordError> {
        if let Some(e) = self.tx_failed {
            return Err(e);
        }
        let body = rec.len() + TAG_LEN;
        let tag = self.send.seal(&mut rec).inspect_err(|&e| {
            self.tx_failed = Some(e);
        })?;
        // body <= MAX_RECORD: the plaintext is capped at MAX_RECORD_PLAINTEXT.
        out.put_slice(&(body as u16).to_be_bytes());
        out.put_bytes(rec.freeze());
        out.put_slice(&tag);
        self.sent += 1;
        if self.send_rekey != 0 && self.sent.is_multiple_of(self.send_rekey) {
            self.send.rekey();
        }
        Ok(LEN_PREFIX + body)
    }

    fn fail(&mut self, e: RecordError) -> RecordError {
        self.rx_failed = Some(e);
        self.partial = BytesMut::new();
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
        data: &[u8],
        deliver: impl FnMut(Bytes) -> bool,
    ) -> Result<(), RecordError> {
        self.open_owned(Bytes::copy_from_slice(data), deliver)
    }

    /// As [`open`](Self::open), for bytes the caller hands over: when
    /// nothing else shares their buffer, whole records are opened in it
    /// without a copy.
    pub fn open_owned(
        &mut self,
        mut data: Bytes,
        mut deliver: impl FnMut(Bytes) -> bool,
    ) -> Result<(), RecordError> {
        if let Some(e) = self.rx_failed {
            return Err(e);
        }
        // Finish a record split across inputs: copy only what it lacks.
        if !self.partial.is_empty() {
            // Twice at most: the rest of the length prefix, then the body.
            while self.missing() > 0 {
                if data.is_empty() {
                    return Ok(());
                }
                let take = self.missing().min(data.len());
                extend_in_pieces(&mut self.partial, &data[..take]);
                data.advance(take);
            }
            let rec = self.partial.split();
            let plain = self.open_one(rec)?;
            if !deliver(plain) {
                return Ok(());
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut buf = match data.try_into_mut() {
            Ok(owned) => owned,
            // Shared: one copy into a buffer of our own, as large as the
            // input (allocations of one size, which the allocator reuses).
            Err(shared) => {
                let mut own = BytesMut::with_capacity(shared.len());
                extend_in_pieces(&mut own, &shared);
                own
            }
        };
        // Whole records where they lie.
        while buf.len() >= LEN_PREFIX {
            let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            if buf.len() < LEN_PREFIX + len {
                break;
            }
            let rec = buf.split_to(LEN_PREFIX + len);
            let plain = self.open_one(rec)?;
            if !deliver(plain) {
                return Ok(());
            }
        }
        // The start of the next record (less than one record).
        if !buf.is_empty() {
            self.partial.reserve(LEN_PREFIX + MAX_RECORD);
            extend_in_pieces(&mut self.partial, &buf);
        }
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

    /// Opens one whole record (length prefix included) in place; its
    /// plaintext.
    fn open_one(&mut self, mut rec: BytesMut) -> Result<Bytes, RecordError> {
        let Some(plain_len) = rec.len().checked_sub(LEN_PREFIX + TAG_LEN) else {
            return Err(self.fail(RecordError::Authentication));
        };
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&rec[LEN_PREFIX + plain_len..]);
        rec.advance(LEN_PREFIX);
        rec.truncate(plain_len);
        if let Err(e) = self.recv.open(&mut rec, &tag) {
            return Err(self.fail(e));
        }
        self.received += 1;
        if self.recv_rekey != 0 && self.received.is_multiple_of(self.recv_rekey) {
            self.recv.rekey();
        }
        Ok(rec.freeze())
    }

    /// Lets `poll` (which appends to the buffer it is given and returns
    /// whether it appended anything: a layer's `poll_transmit`) write its
    /// output into the next record, seals it in place and appends it to
    /// `out`, several of the layer's messages per record; returns the
    /// bytes appended, `None` when there is nothing to send.
    #[must_use]
    pub fn transmit_with(
        &mut self,
        mut poll: impl FnMut(&mut BytesMut) -> bool,
        out: &mut impl TransmitBuf,
    ) -> Option<usize> {
        if self.tx_failed.is_some() {
            return None;
        }
        if self.pending.is_empty() {
            // Reclaims the allocation once the records cut from it have
            // been written and dropped: warm memory, no page faults.
            self.pending.reserve(self.max_plaintext);
        }
        while self.pending.len() < self.max_plaintext {
            if !poll(&mut self.pending) {
                break;
            }
        }
        if self.pending.is_empty() {
            return None;
        }
        // The layer may give several records' worth at once: each is cut
        // off the front and sealed where it lies, nothing moves.
        let n = self.pending.len().min(self.max_plaintext);
        let rec = self.pending.split_to(n);
        self.seal_record(rec, out).ok()
    }
}
