//! One flow's state: a send half and a receive half with their buffers.
//!
//! Kept small on purpose: an idle flow must cost at most 256 bytes of core
//! state (checked by a test), so the buffers live in a box that exists only
//! while some byte is buffered.

use crate::time::Instant;
use crate::wire::{copy_in_pieces, extend_in_pieces};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Buf, Bytes, BytesMut};

/// Written chunks shorter than this are copied, not queued by reference.
const SMALL_CHUNK: usize = 512;
/// Received payloads at least this long may be kept by reference.
const ZERO_COPY_MIN: usize = 4096;
/// ... but only when they are at least 1/8 of the input buffer they pin.
const ZERO_COPY_MAX_PIN: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendState {
    Open,
    /// FIN requested; `sent` once it is on the wire.
    Fin {
        sent: bool,
    },
    /// Abandoned with `code`; `by_peer` when the peer asked (STOP_SENDING or
    /// GOAWAY refusal); `sent` once RESET_FLOW is on the wire (or need not be).
    Reset {
        code: u64,
        sent: bool,
        by_peer: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvState {
    Open,
    /// FIN seen: the final size is known.
    Fin {
        final_size: u64,
    },
    /// The peer reset the flow; the application has not seen it yet.
    Reset {
        code: u64,
    },
    /// We stopped reading; STOP_SENDING `sent` once on the wire.
    Stopped {
        code: u64,
        sent: bool,
    },
    /// Nothing more will arrive and the application knows how it ended.
    Done(End),
}

/// How a receive direction ended, repeated to every later read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Eof,
    Reset(u64),
    Stopped,
}

pub(crate) mod flag {
    pub const LOCAL: u16 = 1 << 0;
    pub const SIDE_CHANNEL: u16 = 1 << 1;
    pub const ANNOUNCED: u16 = 1 << 2;
    pub const IN_READY: u16 = 1 << 3;
    pub const IN_CTRL: u16 = 1 << 4;
    pub const WANT_WRITABLE: u16 = 1 << 5;
    pub const READABLE_SIGNALED: u16 = 1 << 6;
    pub const WINDOW_UPDATE: u16 = 1 << 7;
    /// yamux, a peer's flow: our first frame on it must carry ACK.
    pub const ACK_PENDING: u16 = 1 << 8;
    /// yamux, our flow: the peer's ACK arrived.
    pub const PEER_ACKED: u16 = 1 << 9;
    /// yamux: the reader stopped; send RST once our FIN is on the wire.
    pub const RST_AFTER_FIN: u16 = 1 << 10;
}

/// A flow's byte buffers, allocated on first use and freed whenever all
/// are empty, so an idle flow holds none (and no stale capacity).
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    send_queue: VecDeque<Bytes>,
    send_tail: BytesMut,
    recv_queue: VecDeque<Bytes>,
    recv_tail: BytesMut,
}

impl Buffers {
    fn capacity(&self) -> usize {
        self.send_tail.capacity() + self.recv_tail.capacity()
    }
}

/// Emptied flow buffers kept for the next flow that needs one, so a busy
/// flow does not allocate (and fault in) a fresh buffer for every write.
/// Bounded in count and per-buffer capacity: idle memory stays bounded
/// per connection, not per flow.
#[derive(Debug)]
pub(crate) struct BufferPool {
    // Boxed so a buffer set moves between a flow and the pool without copying.
    #[allow(clippy::vec_box)]
    free: Vec<Box<Buffers>>,
    max: usize,
}

/// Buffers holding more than this are freed rather than pooled.
const POOL_MAX_CAPACITY: usize = 256 * 1024;

impl BufferPool {
    pub fn new(max: usize) -> Self {
        BufferPool {
            free: Vec::new(),
            max,
        }
    }

    fn get(&mut self) -> Box<Buffers> {
        self.free.pop().unwrap_or_default()
    }

    fn put(&mut self, b: Box<Buffers>) {
        if self.free.len() < self.max && b.capacity() <= POOL_MAX_CAPACITY {
            self.free.push(b);
        }
    }
}

#[derive(Debug)]
pub(crate) struct Flow {
    bufs: Option<Box<Buffers>>,
    /// Payload bytes put on the wire (the next send offset).
    pub sent: u64,
    /// The peer's MAX_FLOW_DATA.
    pub send_max: u64,
    /// Payload bytes received (the next receive offset).
    pub received: u64,
    /// Payload bytes the application has read (or we discarded).
    pub read: u64,
    /// The MAX_FLOW_DATA we last granted.
    pub recv_max: u64,
    /// When we last granted more (drives window growth).
    pub last_update: Instant,
    pub send_state: SendState,
    pub recv_state: RecvState,
    /// Bytes written but not yet sent.
    pub send_buffered: u32,
    /// Current receive window.
    pub window: u32,
    pub frames_sent: u32,
    pub frames_received: u32,
    pub flags: u16,
}

impl Flow {
    pub fn new(flags: u16, send_max: u64, window: u64, now: Instant) -> Self {
        Flow {
            bufs: None,
            sent: 0,
            send_max,
            received: 0,
            read: 0,
            recv_max: window,
            last_update: now,
            send_state: SendState::Open,
            recv_state: RecvState::Open,
            send_buffered: 0,
            window: window as u32,
            frames_sent: 0,
            frames_received: 0,
            flags,
        }
    }

    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    pub fn set(&mut self, f: u16) {
        self.flags |= f;
    }

    pub fn clear(&mut self, f: u16) {
        self.flags &= !f;
    }

    /// Sets `f` and reports whether it was clear before.
    pub fn raise(&mut self, f: u16) -> bool {
        let was = self.has(f);
        self.flags |= f;
        !was
    }

    pub fn send_done(&self) -> bool {
        matches!(
            self.send_state,
            SendState::Fin { sent: true } | SendState::Reset { sent: true, .. }
        )
    }

    pub fn recv_done(&self) -> bool {
        matches!(self.recv_state, RecvState::Done(_))
    }

    /// The send half has bytes or a FIN waiting for the wire.
    pub fn wants_send(&self) -> bool {
        match self.send_state {
            SendState::Open => self.send_buffered > 0,
            SendState::Fin { sent } => !sent,
            SendState::Reset { .. } => false,
        }
    }

    pub fn send_credit(&self) -> u64 {
        self.send_max.saturating_sub(self.sent)
    }

    fn bufs(&mut self, pool: &mut BufferPool) -> &mut Buffers {
        self.bufs.get_or_insert_with(|| pool.get())
    }

    fn release_if_empty(&mut self, pool: &mut BufferPool) {
        if self.send_buffered == 0 && self.received == self.read {
            if let Some(mut b) = self.bufs.take() {
                // Queues are empty; keep only their (small) capacity.
                b.send_queue.clear();
                b.recv_queue.clear();
                b.send_tail.clear();
                b.recv_tail.clear();
                pool.put(b);
            }
        }
    }

    /// Takes up to `n` buffered bytes for the wire.
    pub fn take_send(&mut self, n: usize, pool: &mut BufferPool) -> Bytes {
        let b = self.bufs(pool);
        let piece = match b.send_queue.front_mut() {
            Some(front) if front.len() > n => front.split_to(n),
            Some(_) => b.send_queue.pop_front().unwrap_or_default(),
            None => b.send_tail.split_to(n.min(b.send_tail.len())).freeze(),
        };
        self.send_buffered -= piece.len() as u32;
        self.sent += piece.len() as u64;
        self.release_if_empty(pool);
        piece
    }

    pub fn push_send_slice(&mut self, data: &[u8], pool: &mut BufferPool) {
        extend_in_pieces(&mut self.bufs(pool).send_tail, data);
        self.send_buffered += data.len() as u32;
    }

    pub fn push_send_bytes(&mut self, data: Bytes, pool: &mut BufferPool) {
        if data.len() < SMALL_CHUNK {
            // Queue entries cost 32 bytes each: coalesce tiny chunks.
            return self.push_send_slice(&data, pool);
        }
        self.send_buffered += data.len() as u32;
        let b = self.bufs(pool);
        if !b.send_tail.is_empty() {
            let tail = b.send_tail.split().freeze();
            b.send_queue.push_back(tail);
        }
        b.send_queue.push_back(data);
    }

    /// Drops unsent bytes; returns how many.
    pub fn discard_send(&mut self, pool: &mut BufferPool) -> usize {
        let n = self.send_buffered as usize;
        if let Some(b) = self.bufs.as_mut() {
            b.send_queue.clear();
            b.send_tail.clear();
        }
        self.send_buffered = 0;
        self.release_if_empty(pool);
        n
    }

    pub fn recv_buffered(&self) -> u64 {
        self.received - self.read
    }

    /// Buffers a received payload piece. `src` is the input buffer `piece`
    /// lies in, when the driver gave one that can be shared.
    pub fn push_recv(&mut self, piece: &[u8], src: Option<&Bytes>, pool: &mut BufferPool) {
        self.received += piece.len() as u64;
        let b = self.bufs(pool);
        match src {
            Some(src)
                if piece.len() >= ZERO_COPY_MIN && piece.len() * ZERO_COPY_MAX_PIN >= src.len() =>
            {
                if !b.recv_tail.is_empty() {
                    let tail = b.recv_tail.split().freeze();
                    b.recv_queue.push_back(tail);
                }
                b.recv_queue.push_back(src.slice_ref(piece));
            }
            _ => extend_in_pieces(&mut b.recv_tail, piece),
        }
    }

    /// Copies buffered bytes into `buf`; returns how many.
    pub fn read_into(&mut self, buf: &mut [u8], pool: &mut BufferPool) -> usize {
        let Some(b) = self.bufs.as_mut() else {
            return 0;
        };
        let mut n = 0;
        while n < buf.len() {
            let src: &mut dyn Buf = match b.recv_queue.front_mut() {
                Some(front) => front,
                None if !b.recv_tail.is_empty() => &mut b.recv_tail,
                None => break,
            };
            let k = src.chunk().len().min(buf.len() - n);
            copy_in_pieces(&mut buf[n..n + k], &src.chunk()[..k]);
            src.advance(k);
            n += k;
            if b.recv_queue.front().is_some_and(|f| f.is_empty()) {
                b.recv_queue.pop_front();
            }
        }
        self.read += n as u64;
        self.release_if_empty(pool);
        n
    }

    /// Takes up to `max` buffered bytes without copying.
    pub fn read_chunk(&mut self, max: usize, pool: &mut BufferPool) -> Option<Bytes> {
        let b = self.bufs.as_mut()?;
        let chunk = match b.recv_queue.front_mut() {
            Some(front) if front.len() > max => front.split_to(max),
            Some(_) => b.recv_queue.pop_front()?,
            None if !b.recv_tail.is_empty() => {
                let n = max.min(b.recv_tail.len());
                b.recv_tail.split_to(n).freeze()
            }
            None => return None,
        };
        self.read += chunk.len() as u64;
        self.release_if_empty(pool);
        Some(chunk)
    }

    /// Drops unread bytes; returns how many.
    pub fn discard_recv(&mut self, pool: &mut BufferPool) -> u64 {
        let n = self.recv_buffered();
        if let Some(b) = self.bufs.as_mut() {
            b.recv_queue.clear();
            b.recv_tail.clear();
        }
        self.read = self.received;
        self.release_if_empty(pool);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_flow_is_small() {
        // With B-tree slack this keeps an idle flow under 256 bytes.
        assert!(
            core::mem::size_of::<Flow>() <= 120,
            "{}",
            core::mem::size_of::<Flow>()
        );
    }
}
