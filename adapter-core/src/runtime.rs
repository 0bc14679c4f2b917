//! What a runtime plugs into the shared driver: an IO wrapper, a timer and
//! a way to spawn (the shape of quinn's `Runtime` trait).

use bytes::{Bytes, BytesMut};
use proto_core::wire::IoChunks;
use std::future::Future;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use std::time::Instant;

/// A byte stream the [`Driver`](crate::Driver) reads and writes.
///
/// Methods take `&mut self`: an implementation pins whatever it wraps
/// itself (`Pin::new` for `Unpin` streams). `Pending` results must arrange
/// for the task's waker to be woken, as for any poll function.
///
/// ```
/// use adapter_core::Transport;
/// use std::io::{self, IoSlice};
/// use std::task::{Context, Poll};
///
/// /// A transport that has already ended: reads give EOF, writes fail.
/// struct Ended;
///
/// impl Transport for Ended {
///     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
///         Poll::Ready(Ok(0))
///     }
///     fn poll_write_vectored(&mut self, _: &mut Context<'_>, _: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
///         Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
///     }
///     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
///     fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
/// }
/// ```
pub trait Transport: Send + 'static {
    /// Reads into `buf`; `Ok(0)` is end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Reads into the driver's receive buffer; the driver then takes the
    /// `n` bytes read with [`RecvBuffer::take`]. The default reads into
    /// zeroed memory through [`poll_read`](Self::poll_read); a transport
    /// that can fill uninitialised memory safely (tokio's) overrides it to
    /// read into [`RecvBuffer::unfilled`] and skip the zeroing.
    fn poll_read_recv(
        &mut self,
        cx: &mut Context<'_>,
        recv: &mut RecvBuffer,
    ) -> Poll<io::Result<usize>> {
        self.poll_read(cx, recv.spare())
    }
    /// Receives the next bytes as `Bytes`; empty is end of stream. The
    /// default reads into `recv` ([`poll_read_recv`](Self::poll_read_recv))
    /// and splits the bytes read off it; a transport that already holds
    /// received bytes as `Bytes` (a flow, a reader thread) hands them over.
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        recv: &mut RecvBuffer,
    ) -> Poll<io::Result<Bytes>> {
        self.poll_read_recv(cx, recv).map_ok(|n| recv.take(n))
    }
    /// Writes a prefix of `bufs` (gathered); returns how many bytes.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
    /// Writes a prefix of `out` and drops it from `out`; returns how many
    /// bytes. The default gathers `out`'s chunks into one vectored write;
    /// a transport that hands bytes to another thread overrides it to take
    /// the chunks themselves (they are reference-counted `Bytes`: no copy).
    fn poll_write_chunks(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut IoChunks,
    ) -> Poll<io::Result<usize>> {
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let mut k = 0;
        for (slot, chunk) in slices.iter_mut().zip(out.chunks()) {
            *slot = IoSlice::new(chunk);
            k += 1;
        }
        let r = self.poll_write_vectored(cx, &slices[..k]);
        if let Poll::Ready(Ok(n)) = r {
            out.advance(n);
        }
        r
    }
    /// Flushes anything the stream itself buffers.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Ends the write direction (TCP FIN); reads may continue.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A resettable one-shot timer.
///
/// ```
/// use adapter_core::Timer;
/// use std::task::{Context, Poll};
/// use std::time::Instant;
///
/// /// A timer that polls the clock (a real one registers a wake-up).
/// struct Polling(Option<Instant>);
///
/// impl Timer for Polling {
///     fn reset(&mut self, deadline: Instant) {
///         self.0 = Some(deadline);
///     }
///     fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
///         match self.0 {
///             Some(d) if Instant::now() >= d => Poll::Ready(()),
///             _ => {
///                 cx.waker().wake_by_ref();
///                 Poll::Pending
///             }
///         }
///     }
/// }
/// ```
pub trait Timer: Send + 'static {
    /// Arms the timer for `deadline` (replacing any earlier deadline).
    fn reset(&mut self, deadline: Instant);
    /// Ready once the armed deadline has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A runtime: makes timers and spawns tasks. With it,
/// [`spawn_connection`](crate::spawn_connection) starts a connection in one call.
///
/// ```
/// use adapter_core::{Runtime, Timer};
/// use std::future::Future;
/// use std::task::{Context, Poll};
/// use std::time::Instant;
///
/// struct NoTimer;
/// impl Timer for NoTimer {
///     fn reset(&mut self, _: Instant) {}
///     fn poll_expired(&mut self, _: &mut Context<'_>) -> Poll<()> { Poll::Pending }
/// }
///
/// /// Runs every task on its own thread (a sketch, not a real runtime).
/// struct Threads;
/// impl Runtime for Threads {
///     type Timer = NoTimer;
///     fn timer(&self) -> NoTimer { NoTimer }
///     fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) {
///         std::thread::spawn(move || adapter_core::block_on(future));
///     }
/// }
/// ```
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's timer.
    type Timer: Timer;
    /// A new, unarmed timer.
    fn timer(&self) -> Self::Timer;
    /// Runs `future` in the background.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F);
}

/// Slices per vectored write.
const MAX_IOV: usize = 64;

/// Bytes the driver reads into per allocation.
pub(crate) const RECV_CHUNK: usize = 128 * 1024;
/// Below this much room left, a fresh allocation is made.
const RECV_MIN: usize = 32 * 1024;

/// A receive buffer that hands out what was read as [`Bytes`] without
/// copying, for [`Connection::handle_input_bytes`](proto_core::mux::Connection::handle_input_bytes).
///
/// It keeps an initialised (zeroed) region and splits received bytes off its
/// front, so the zeroing costs one `memset` per 64 KiB, not per read, and no
/// `unsafe` is needed to read into spare capacity. Once every slice handed
/// out has been dropped, the same allocation is reused.
///
/// ```
/// use adapter_core::RecvBuffer;
/// let mut rb = RecvBuffer::new();
/// let room = rb.spare();
/// room[..5].copy_from_slice(b"hello");
/// assert_eq!(&rb.take(5)[..], b"hello");
/// ```
#[derive(Debug)]
pub struct RecvBuffer {
    buf: BytesMut,
}

impl Default for RecvBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBuffer {
    /// An empty buffer; the first [`spare`](Self::spare) allocates.
    pub fn new() -> Self {
        RecvBuffer {
            buf: BytesMut::new(),
        }
    }

    /// Room to read into (at least 16 KiB).
    pub fn spare(&mut self) -> &mut [u8] {
        if self.buf.len() < RECV_MIN {
            // Reuse the allocation once the core has let go of every slice
            // of it (warm memory, no page faults); otherwise start a new one.
            if !self.buf.try_reclaim(RECV_CHUNK) {
                self.buf = BytesMut::with_capacity(RECV_CHUNK);
            }
            self.buf.resize(RECV_CHUNK, 0);
        }
        &mut self.buf[..]
    }

    /// An empty `BytesMut` with at least 16 KiB of (uninitialised) capacity,
    /// for transports that append to it; then [`take`](Self::take) the
    /// bytes appended.
    pub fn unfilled(&mut self) -> &mut BytesMut {
        self.buf.clear();
        if self.buf.capacity() < RECV_MIN && !self.buf.try_reclaim(RECV_CHUNK) {
            self.buf = BytesMut::with_capacity(RECV_CHUNK);
        }
        &mut self.buf
    }

    /// Bytes of the current allocation not yet handed out (what the buffer
    /// holds between reads).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The first `n` bytes of the last [`spare`](Self::spare) (or of what
    /// was appended to [`unfilled`](Self::unfilled)), which a read filled.
    pub fn take(&mut self, n: usize) -> Bytes {
        self.buf.split_to(n.min(self.buf.len())).freeze()
    }
}

/// A boxed transport is one: racing hands out TCP and Unix sockets (and
/// any user transport) as one type.
impl Transport for Box<dyn Transport> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        (**self).poll_read(cx, buf)
    }
    fn poll_read_recv(
        &mut self,
        cx: &mut Context<'_>,
        recv: &mut RecvBuffer,
    ) -> Poll<io::Result<usize>> {
        (**self).poll_read_recv(cx, recv)
    }
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        recv: &mut RecvBuffer,
    ) -> Poll<io::Result<Bytes>> {
        (**self).poll_recv(cx, recv)
    }
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        (**self).poll_write_vectored(cx, bufs)
    }
    fn poll_write_chunks(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut IoChunks,
    ) -> Poll<io::Result<usize>> {
        (**self).poll_write_chunks(cx, out)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_flush(cx)
    }
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_shutdown(cx)
    }
}
