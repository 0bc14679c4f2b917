//! Where `poll_transmit` puts its bytes: the output half of the machine
//! contract, shared by every layer.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

/// A caller-owned output buffer for `poll_transmit` (every layer's; see
/// [`Machine`](super::Machine)).
///
/// `Vec<u8>` and `BytesMut` copy everything into one contiguous buffer.
/// [`IoChunks`] keeps large payloads as the [`Bytes`] the application wrote,
/// so an adapter can hand them to a vectored write without copying.
pub trait TransmitBuf {
    /// Appends `bytes`.
    fn put_slice(&mut self, bytes: &[u8]);
    /// Appends a payload the sink may keep without copying.
    fn put_bytes(&mut self, bytes: Bytes) {
        self.put_slice(&bytes);
    }
}

impl TransmitBuf for Vec<u8> {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl TransmitBuf for BytesMut {
    fn put_slice(&mut self, bytes: &[u8]) {
        // Payloads land here whole (a record's plaintext): see `copy`.
        super::extend_in_pieces(self, bytes);
    }
}

/// Payloads at least this long are kept by reference in [`IoChunks`].
const ZERO_COPY_MIN: usize = 1024;

/// Output as a queue of [`Bytes`] chunks for vectored writes: frame headers
/// and small payloads are packed together, large payloads are not copied.
///
/// ```
/// use proto_core::wire::{IoChunks, TransmitBuf};
/// let mut out = IoChunks::default();
/// out.put_slice(b"head");
/// out.put_bytes(bytes::Bytes::from(vec![7u8; 4096]));
/// assert_eq!(out.len(), 4100);
/// let chunks: Vec<_> = out.chunks().collect();
/// assert_eq!(chunks.len(), 2);
/// out.advance(4100);
/// assert!(out.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct IoChunks {
    chunks: VecDeque<Bytes>,
    pending: BytesMut,
    len: usize,
}

impl IoChunks {
    /// Total bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The queued bytes in order, as slices for a vectored write.
    pub fn chunks(&mut self) -> impl Iterator<Item = &[u8]> {
        self.seal();
        self.chunks.iter().map(|c| &c[..])
    }

    /// Drops the first `n` bytes (those a write accepted).
    pub fn advance(&mut self, mut n: usize) {
        self.seal();
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len() > n {
                let _ = front.split_to(n);
                break;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// Takes the first queued chunk whole (for a writer on another
    /// thread: the bytes move, nothing is copied).
    pub fn pop_chunk(&mut self) -> Option<Bytes> {
        self.seal();
        let c = self.chunks.pop_front()?;
        self.len -= c.len();
        Some(c)
    }

    /// Puts `chunk` back in front (the part of a popped chunk a writer
    /// did not take).
    pub fn push_front(&mut self, chunk: Bytes) {
        self.seal();
        self.len += chunk.len();
        self.chunks.push_front(chunk);
    }

    fn seal(&mut self) {
        if !self.pending.is_empty() {
            self.chunks.push_back(self.pending.split().freeze());
        }
    }
}

impl TransmitBuf for IoChunks {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    fn put_bytes(&mut self, bytes: Bytes) {
        if bytes.len() < ZERO_COPY_MIN {
            return self.put_slice(&bytes);
        }
        self.seal();
        self.len += bytes.len();
        self.chunks.push_back(bytes);
    }
}

/// Lets a layer hand its `&mut dyn TransmitBuf` (the [`Machine`](super::Machine)
/// contract's) to code generic over `impl TransmitBuf`.
impl<T: TransmitBuf + ?Sized> TransmitBuf for &mut T {
    fn put_slice(&mut self, bytes: &[u8]) {
        (**self).put_slice(bytes)
    }
    fn put_bytes(&mut self, bytes: Bytes) {
        (**self).put_bytes(bytes)
    }
}
