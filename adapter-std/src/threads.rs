//! Threads as a runtime for the one driver: the driver future runs on its
//! own thread ([`block_on`]), a reader thread blocks in `read`, a writer
//! thread blocks in `write`, and a timer thread sleeps until the deadline.
//! Reading never waits on writing, so two peers that both write and stop
//! reading cannot deadlock.

use crate::Stream;
use adapter_core::proto_core::wire::IoChunks;
use adapter_core::{block_on, RecvBuffer, Runtime, Timer, Transport};
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice, Write};
use std::net::Shutdown;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Instant;

/// Received bytes the reader thread may hold before it stops reading (the
/// driver has not taken them yet).
const READ_AHEAD: usize = 512 * 1024;
/// Output the writer thread may hold before the driver waits.
const WRITE_BEHIND: usize = 512 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Threads as a runtime: a thread per task (each runs its future with
/// `block_on`) and [`ThreadTimer`]s. What the blocking API runs on; also
/// an [`adapter_core::Runtime`] for `adapter_core`'s generic calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Threads;

impl Runtime for Threads {
    type Timer = ThreadTimer;

    fn timer(&self) -> ThreadTimer {
        ThreadTimer::default()
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) {
        // A failed spawn drops the driver, which ends its connection.
        let _ = thread::Builder::new()
            .name("weft-driver".into())
            .spawn(move || block_on(future));
    }
}

#[derive(Debug, Default)]
struct TimerState {
    deadline: Option<Instant>,
    waker: Option<Waker>,
    running: bool,
    gone: bool,
}

/// A timer served by one thread that sleeps until the armed deadline.
#[derive(Debug, Default)]
pub struct ThreadTimer {
    shared: Arc<(Mutex<TimerState>, Condvar)>,
}

impl Timer for ThreadTimer {
    fn reset(&mut self, deadline: Instant) {
        let (m, cv) = &*self.shared;
        lock(m).deadline = Some(deadline);
        cv.notify_one();
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (m, _) = &*self.shared;
        let mut st = lock(m);
        let Some(d) = st.deadline else {
            return Poll::Pending;
        };
        if Instant::now() >= d {
            return Poll::Ready(());
        }
        st.waker = Some(cx.waker().clone());
        if !st.running {
            st.running = true;
            let shared = self.shared.clone();
            let spawned = thread::Builder::new()
                .name("weft-timer".into())
                .spawn(move || timer_thread(&shared));
            if spawned.is_err() {
                st.running = false;
                // No thread: poll again soon rather than never.
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        let (m, cv) = &*self.shared;
        lock(m).gone = true;
        cv.notify_one();
    }
}

fn timer_thread(shared: &(Mutex<TimerState>, Condvar)) {
    let (m, cv) = shared;
    let mut st = lock(m);
    while !st.gone {
        match st.deadline {
            Some(d) if Instant::now() >= d => {
                if let Some(w) = st.waker.take() {
                    w.wake();
                }
                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            Some(d) => {
                let wait = d.saturating_duration_since(Instant::now());
                st = cv
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            None => st = cv.wait(st).unwrap_or_else(|e| e.into_inner()),
        }
    }
}

#[derive(Debug, Default)]
struct Inbox {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    /// EOF (`None` error) or failure, after the chunks.
    ended: Option<Option<io::Error>>,
    waker: Option<Waker>,
    gone: bool,
}

#[derive(Debug, Default)]
struct Outbox {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    /// Written and flushed everything handed over.
    idle: bool,
    shutdown_asked: bool,
    shutdown_done: bool,
    error: Option<io::Error>,
    waker: Option<Waker>,
    gone: bool,
}

impl Outbox {
    fn shutdown_pending(&self) -> bool {
        self.shutdown_asked && !self.shutdown_done
    }
}

type Pair<T> = Arc<(Mutex<T>, Condvar)>;

/// A blocking stream as a [`Transport`]: a reader and a writer thread move
/// `Bytes` to and from the driver (no copy on either side).
pub(crate) struct ThreadedIo<S: Stream> {
    stream: S,
    inbox: Pair<Inbox>,
    outbox: Pair<Outbox>,
}

impl<S: Stream> ThreadedIo<S> {
    pub(crate) fn start(stream: S) -> io::Result<Self> {
        let inbox: Pair<Inbox> = Arc::default();
        let outbox: Pair<Outbox> = Arc::new((
            Mutex::new(Outbox {
                idle: true,
                ..Outbox::default()
            }),
            Condvar::new(),
        ));
        let reader = stream.try_clone()?;
        let writer = stream.try_clone()?;
        let i = inbox.clone();
        thread::Builder::new()
            .name("weft-reader".into())
            .spawn(move || read_thread(reader, &i))?;
        let o = outbox.clone();
        let spawned = thread::Builder::new()
            .name("weft-writer".into())
            .spawn(move || write_thread(writer, &o));
        if let Err(e) = spawned {
            let _ = stream.shutdown(Shutdown::Both);
            return Err(e);
        }
        Ok(ThreadedIo {
            stream,
            inbox,
            outbox,
        })
    }
}

fn read_thread<S: Stream>(mut stream: S, inbox: &(Mutex<Inbox>, Condvar)) {
    let (m, cv) = inbox;
    let mut recv = RecvBuffer::new();
    loop {
        {
            let mut st = lock(m);
            while st.bytes >= READ_AHEAD && !st.gone {
                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.gone {
                return;
            }
        }
        let r = stream.read(recv.spare());
        let mut st = lock(m);
        match r {
            Ok(0) => st.ended = Some(None),
            Ok(n) => {
                let b = recv.take(n);
                st.bytes += b.len();
                st.chunks.push_back(b);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => st.ended = Some(Some(e)),
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        if st.ended.is_some() {
            return;
        }
    }
}

fn write_thread<S: Stream>(mut stream: S, outbox: &(Mutex<Outbox>, Condvar)) {
    let (m, cv) = outbox;
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        {
            let mut st = lock(m);
            while st.chunks.is_empty() && !st.gone && !st.shutdown_pending() {
                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.gone {
                return;
            }
            if st.chunks.is_empty() && st.shutdown_pending() {
                drop(st);
                let _ = stream.flush();
                let r = stream.shutdown(Shutdown::Write);
                let mut st = lock(m);
                st.shutdown_done = true;
                if let Err(e) = r {
                    st.error.get_or_insert(e);
                }
                if let Some(w) = st.waker.take() {
                    w.wake();
                }
                continue;
            }
            let k = st.chunks.len().min(64);
            batch.extend(st.chunks.drain(..k));
        }
        let r = write_batch(&mut stream, &batch);
        let mut st = lock(m);
        st.bytes -= batch.iter().map(Bytes::len).sum::<usize>();
        batch.clear();
        match r {
            Ok(()) => st.idle = st.chunks.is_empty(),
            Err(e) => {
                st.error.get_or_insert(e);
                st.chunks.clear();
                st.bytes = 0;
                st.idle = true;
            }
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        if st.error.is_some() {
            return;
        }
    }
}

/// Writes every byte of `batch` (vectored), then flushes.
fn write_batch<S: Write>(stream: &mut S, batch: &[Bytes]) -> io::Result<()> {
    let mut i = 0;
    let mut off = 0;
    while i < batch.len() {
        let mut slices = [IoSlice::new(&[]); 64];
        let mut k = 0;
        for (j, c) in batch[i..].iter().enumerate().take(64) {
            slices[k] = IoSlice::new(if j == 0 { &c[off..] } else { &c[..] });
            k += 1;
        }
        let mut n = match stream.write_vectored(&slices[..k]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while n > 0 {
            let left = batch[i].len() - off;
            if n >= left {
                n -= left;
                i += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    stream.flush()
}

impl<S: Stream> Transport for ThreadedIo<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut recv = RecvBuffer::new();
        match self.poll_recv(cx, &mut recv) {
            Poll::Ready(Ok(b)) => {
                // The driver reads through `poll_recv`; this path copies and
                // keeps what does not fit.
                let n = b.len().min(buf.len());
                buf[..n].copy_from_slice(&b[..n]);
                if n < b.len() {
                    let (m, _) = &*self.inbox;
                    let mut st = lock(m);
                    st.bytes += b.len() - n;
                    st.chunks.push_front(b.slice(n..));
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>, _: &mut RecvBuffer) -> Poll<io::Result<Bytes>> {
        let (m, cv) = &*self.inbox;
        let mut st = lock(m);
        if let Some(b) = st.chunks.pop_front() {
            st.bytes -= b.len();
            cv.notify_one();
            return Poll::Ready(Ok(b));
        }
        match st.ended.take() {
            Some(None) => {
                st.ended = Some(None);
                Poll::Ready(Ok(Bytes::new()))
            }
            Some(Some(e)) => {
                st.ended = Some(None);
                Poll::Ready(Err(e))
            }
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut out = IoChunks::default();
        for b in bufs {
            adapter_core::proto_core::wire::TransmitBuf::put_slice(&mut out, b);
        }
        self.poll_write_chunks(cx, &mut out)
    }

    fn poll_write_chunks(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut IoChunks,
    ) -> Poll<io::Result<usize>> {
        let (m, cv) = &*self.outbox;
        let mut st = lock(m);
        if let Some(e) = &st.error {
            return Poll::Ready(Err(io::Error::new(e.kind(), e.to_string())));
        }
        if st.bytes >= WRITE_BEHIND {
            st.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut n = 0;
        while st.bytes < WRITE_BEHIND {
            let Some(c) = out.pop_chunk() else { break };
            n += c.len();
            st.bytes += c.len();
            st.chunks.push_back(c);
        }
        st.idle = false;
        cv.notify_one();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (m, _) = &*self.outbox;
        let mut st = lock(m);
        if let Some(e) = &st.error {
            return Poll::Ready(Err(io::Error::new(e.kind(), e.to_string())));
        }
        if st.idle {
            return Poll::Ready(Ok(()));
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (m, cv) = &*self.outbox;
        let mut st = lock(m);
        if st.shutdown_done || st.error.is_some() {
            return Poll::Ready(Ok(()));
        }
        st.shutdown_asked = true;
        st.waker = Some(cx.waker().clone());
        cv.notify_one();
        Poll::Pending
    }
}

impl<S: Stream> Drop for ThreadedIo<S> {
    fn drop(&mut self) {
        // The driver is done: unblock both threads and let them end.
        let _ = self.stream.shutdown(Shutdown::Both);
        let (m, cv) = &*self.inbox;
        lock(m).gone = true;
        cv.notify_all();
        let (m, cv) = &*self.outbox;
        lock(m).gone = true;
        cv.notify_all();
    }
}
