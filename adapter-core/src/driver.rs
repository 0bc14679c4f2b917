//! The one driver: moves bytes between a transport and any layer's
//! machine, fires its timer, and never lets a blocked direction stall the
//! other. Every runtime, every layer (the mux, encrypted or not, recorded
//! or not; a byte-stream machine on a socket or on a flow) runs through it.
//!
//! The transport and the queue of bytes waiting for it live in the shared
//! state, beside the machine: a handle whose command leaves output with
//! nothing queued ahead of it writes that output itself (the direct write
//! path, registered with the driver's waker), so a message does not wait
//! for the driver task to be scheduled. Everything else (reading, timers,
//! writes the transport pushed back on, closing) is the driver's.

use crate::runtime::{RecvBuffer, Timer, Transport};
use crate::shared::{set_waker, Layer, Shared, State};
use proto_core::wire::{IoChunks, Machine};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Output collected from `poll_transmit` before writing.
pub const TRANSMIT_HIGH_WATER: usize = 256 * 1024;
/// How long a closed connection keeps reading (and discarding) after its
/// FIN, so that closing does not turn into a TCP reset that could destroy
/// the CLOSE frame in flight; also how long it tries to flush its last
/// bytes to a peer that does not read.
pub const LINGER: Duration = Duration::from_secs(2);
/// Loop iterations with progress before the driver yields to its executor.
const BUDGET: usize = 32;

/// The transport and what waits to be written to it.
#[derive(Default)]
pub(crate) struct Io {
    transport: Option<Box<dyn Transport>>,
    out: IoChunks,
    write_done: bool,
    need_flush: bool,
    error: Option<io::Error>,
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("attached", &self.transport.is_some())
            .field("queued", &self.out.len())
            .field("write_done", &self.write_done)
            .finish_non_exhaustive()
    }
}

impl Io {
    /// Output is queued (or unflushed): the driver has writing to do.
    pub(crate) fn busy(&self) -> bool {
        !self.write_done && (!self.out.is_empty() || self.need_flush)
    }
}

impl<L: Layer> State<L> {
    /// The transport failed: the layer hears why, the machine that its
    /// transport closed.
    fn fail(&mut self, now: proto_core::time::Instant, e: io::Error) {
        self.layer.transport_failed(&e);
        self.layer.machine().handle_transport_closed(now);
        self.io.error.get_or_insert(e);
    }

    /// Appends the machine's output to the queue up to the high-water
    /// mark; true if there was more than fit.
    fn collect(&mut self) -> bool {
        let m = self.layer.machine();
        while self.io.out.len() < TRANSMIT_HIGH_WATER {
            if m.poll_transmit(&mut self.io.out).is_none() {
                return false;
            }
        }
        true
    }

    /// Writes the queue as far as the transport takes it, then flushes;
    /// true if anything moved. A `Pending` wakes `cx`'s task when the
    /// transport can take more: always the driver's.
    fn write_out(&mut self, cx: &mut Context<'_>, now: proto_core::time::Instant) -> bool {
        let mut progress = false;
        let Some(t) = self.io.transport.as_mut() else {
            return false;
        };
        if self.io.write_done {
            self.io.out = IoChunks::default();
        }
        let mut failed = None;
        while !self.io.out.is_empty() && !self.io.write_done {
            match t.poll_write_chunks(cx, &mut self.io.out) {
                Poll::Ready(Ok(0)) => {
                    self.io.write_done = true;
                    failed = Some(io::ErrorKind::WriteZero.into());
                    progress = true;
                }
                Poll::Ready(Ok(_)) => {
                    self.io.need_flush = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    self.io.write_done = true;
                    failed = Some(e);
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        if failed.is_none() && self.io.out.is_empty() && self.io.need_flush && !self.io.write_done {
            match t.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.io.need_flush = false,
                Poll::Ready(Err(e)) => {
                    self.io.write_done = true;
                    failed = Some(e);
                    progress = true;
                }
                Poll::Pending => {}
            }
        }
        if let Some(e) = failed {
            self.fail(now, e);
        }
        progress
    }

    /// The direct write path, after a handle's command: with nothing
    /// queued ahead, the handle's task collects the machine's output and
    /// writes it, on the driver's behalf (its waker is the one registered).
    pub(crate) fn write_directly(&mut self, now: proto_core::time::Instant) {
        if self.io.transport.is_none() || self.io.busy() || self.io.write_done {
            return;
        }
        let Some(w) = self.driver_waker.clone() else {
            return;
        };
        if !self.layer.machine_ref().wants_transmit() {
            return;
        }
        let mut cx = Context::from_waker(&w);
        self.collect();
        self.write_out(&mut cx, now);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Closed and shut down: reading until EOF or the deadline.
    Lingering(Instant),
    Done,
}

/// A layer's driver: a future that runs until its machine has closed and
/// its last bytes are written. Spawn it on any executor.
///
/// It reads into a [`RecvBuffer`] and feeds the machine `Bytes` (no copy),
/// drains `poll_transmit` into [`IoChunks`] and writes them vectored, and
/// re-arms the timer from `poll_timeout`, as the machine contract says.
/// Reads and writes are polled independently in one loop, so a write
/// blocked by a peer that does not read never stops this side from reading
/// (and the reverse).
///
/// Its output is the transport's error, if it failed.
///
/// ```no_run
/// # fn f<T: adapter_core::Transport, M: adapter_core::Timer>(io: T, timer: M) {
/// let (conn, driver) =
///     adapter_core::Connection::new(io, timer, adapter_core::Config::default(), adapter_core::Side::Dialer)
///         .unwrap();
/// // spawn `driver` on the executor, use `conn`
/// # }
/// ```
#[must_use = "the driver does nothing unless polled"]
pub struct Driver<L: Layer, M: Timer> {
    shared: Arc<Shared<L>>,
    timer: M,
    recv: RecvBuffer,
    armed: Option<Instant>,
    read_done: bool,
    /// The machine took more input at the last pass.
    wants_input: bool,
    phase: Phase,
    /// When a closed connection gives up flushing its last bytes.
    close_deadline: Option<Instant>,
}

// The driver never pins its fields: `Transport` and `Timer` take `&mut self`.
impl<L: Layer, M: Timer> Unpin for Driver<L, M> {}

impl<L: Layer, M: Timer> fmt::Debug for Driver<L, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("phase", &self.phase)
            .field("read_done", &self.read_done)
            .finish_non_exhaustive()
    }
}

/// What one pass under the lock reported.
struct Pass {
    progress: bool,
    /// When to run again even if nothing else happens (the machine's timer).
    deadline: Option<Instant>,
    closed: bool,
    /// Everything the machine had is written and flushed (or cannot be).
    drained: bool,
    write_done: bool,
}

impl<L: Layer, M: Timer> Driver<L, M> {
    /// The driver of `shared`'s layer over `io`, with `timer` for its
    /// deadlines.
    pub fn new<T: Transport>(shared: Arc<Shared<L>>, io: T, timer: M) -> Self {
        shared.with_driver(|st| st.io.transport = Some(Box::new(io)));
        Driver {
            shared,
            timer,
            recv: RecvBuffer::new(),
            armed: None,
            read_done: false,
            wants_input: true,
            phase: Phase::Running,
            close_deadline: None,
        }
    }

    /// Reading, feeding, transmitting and writing, under one lock.
    fn pass(&mut self, cx: &mut Context<'_>) -> Pass {
        let shared = &self.shared;
        let now = shared.now();
        let (recv, read_done, wants_input, phase) = (
            &mut self.recv,
            &mut self.read_done,
            &mut self.wants_input,
            self.phase,
        );
        shared.with_driver(|st| {
            set_waker(&mut st.driver_waker, cx.waker());
            let mut progress = false;
            // Read whatever has arrived, whatever the write side's state,
            // as long as the machine takes input (else the transport's flow
            // control holds the peer); after the close, read to discard.
            if !*read_done && (*wants_input || phase != Phase::Running) {
                let got = match st.io.transport.as_mut() {
                    Some(t) => t.poll_recv(cx, recv),
                    None => Poll::Ready(Ok(bytes::Bytes::new())),
                };
                match got {
                    Poll::Ready(Ok(data)) if data.is_empty() => {
                        *read_done = true;
                        st.layer.machine().handle_transport_closed(now);
                        progress = true;
                    }
                    Poll::Ready(Ok(data)) => {
                        if phase == Phase::Running {
                            // A refused input closes the machine; its
                            // events say why.
                            let _ = st.layer.machine().handle_input(now, data);
                        }
                        progress = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                        progress = true
                    }
                    Poll::Ready(Err(e)) => {
                        *read_done = true;
                        st.fail(now, e);
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }
            let m = st.layer.machine();
            if m.poll_timeout().is_some_and(|d| now >= d) {
                m.handle_timeout(now);
            }
            let more = st.collect();
            progress |= st.write_out(cx, now);
            let m = st.layer.machine();
            let armed = m.poll_timeout();
            let closed = m.is_closed();
            let wants = m.wants_input();
            st.armed = armed;
            st.input_paused = !wants;
            if wants != *wants_input {
                *wants_input = wants;
                progress |= wants;
            }
            st.layer.end_of_pass();
            Pass {
                progress,
                deadline: armed.map(|d| shared.to_std(d)),
                closed,
                drained: !more && !st.io.busy(),
                write_done: st.io.write_done,
            }
        })
    }

    /// One pass over reading, transmitting, writing and the timer; true if
    /// anything moved.
    fn step(&mut self, cx: &mut Context<'_>) -> bool {
        let pass = self.pass(cx);
        let mut progress = pass.progress;

        // Closed and everything written: FIN, then linger for the peer's.
        // A peer that never reads cannot hold us longer than LINGER.
        if pass.closed && self.phase == Phase::Running {
            let now = Instant::now();
            let give_up = *self.close_deadline.get_or_insert(now + LINGER);
            if now >= give_up && !pass.drained {
                self.phase = Phase::Done;
                return true;
            }
            if pass.write_done {
                self.phase = Phase::Lingering(now + LINGER);
                progress = true;
            } else if pass.drained {
                let shut = self
                    .shared
                    .with_driver(|st| match st.io.transport.as_mut() {
                        Some(t) => t.poll_shutdown(cx).is_ready(),
                        None => true,
                    });
                if shut {
                    self.shared.with_driver(|st| st.io.write_done = true);
                    self.phase = Phase::Lingering(now + LINGER);
                    progress = true;
                }
            }
        }
        if let Phase::Lingering(until) = self.phase {
            if self.read_done || Instant::now() >= until {
                self.phase = Phase::Done;
                return true;
            }
        }

        // The timer: the machine's deadline, or the end of lingering.
        let deadline = match self.phase {
            Phase::Lingering(until) => Some(until),
            _ if pass.closed => self.close_deadline,
            _ => pass.deadline,
        };
        if let Some(d) = deadline {
            // Keepalive deadlines slide later with every byte received:
            // keep an earlier timer (it fires, finds nothing due, and is
            // re-armed) rather than resetting it per message.
            if self.armed.is_none_or(|a| d < a) {
                self.timer.reset(d);
                self.armed = Some(d);
            }
            if self.timer.poll_expired(cx).is_ready() {
                self.armed = None;
                progress = true;
            }
        }
        progress
    }

    fn finish(&mut self) -> io::Result<()> {
        self.shared
            .with_driver(|st| st.io.error.take())
            .map_or(Ok(()), Err)
    }
}

impl<L: Layer, M: Timer> Future for Driver<L, M> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        for _ in 0..BUDGET {
            if this.phase == Phase::Done {
                return Poll::Ready(this.finish());
            }
            if !this.step(cx) {
                return Poll::Pending;
            }
        }
        if this.phase == Phase::Done {
            return Poll::Ready(this.finish());
        }
        // Plenty to do: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<L: Layer, M: Timer> Drop for Driver<L, M> {
    fn drop(&mut self) {
        // Dropped before the end (runtime shutdown, task aborted): the
        // handles must not wait for a driver that is gone. The transport
        // goes with it (closing the socket).
        let now = self.shared.now();
        let transport = self.shared.with_driver(|st| {
            if !st.layer.machine_ref().is_closed() {
                st.layer.machine().handle_transport_closed(now);
            }
            st.driver_waker = None;
            st.io.transport.take()
        });
        drop(transport);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{block_on, Config, Connection, Side};
    use std::io::IoSlice;
    use std::sync::Mutex;
    use std::thread;

    /// A transport that never reads nor writes anything (a peer that is
    /// alive but stuck).
    struct Stuck;

    impl Transport for Stuck {
        fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_write_vectored(
            &mut self,
            _: &mut Context<'_>,
            _: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A timer backed by a thread per deadline.
    #[derive(Default)]
    struct ThreadTimer {
        deadline: Option<Instant>,
        armed: Arc<Mutex<Option<Instant>>>,
    }

    impl Timer for ThreadTimer {
        fn reset(&mut self, deadline: Instant) {
            self.deadline = Some(deadline);
        }
        fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            let Some(d) = self.deadline else {
                return Poll::Pending;
            };
            if Instant::now() >= d {
                return Poll::Ready(());
            }
            let mut armed = self.armed.lock().unwrap();
            if *armed != Some(d) {
                *armed = Some(d);
                let waker = cx.waker().clone();
                thread::spawn(move || {
                    thread::sleep(d.saturating_duration_since(Instant::now()));
                    waker.wake();
                });
            }
            Poll::Pending
        }
    }

    #[test]
    fn a_closed_connection_gives_up_on_a_peer_that_never_reads() {
        let (conn, driver) = Connection::new(
            Stuck,
            ThreadTimer::default(),
            Config::default(),
            Side::Dialer,
        )
        .unwrap();
        conn.close(1, b"bye");
        let start = Instant::now();
        block_on(driver).unwrap();
        assert!(start.elapsed() >= LINGER);
        assert_eq!(
            block_on(conn.closed()),
            crate::CloseReason::Local { code: 1 }
        );
    }

    #[test]
    fn dropping_the_driver_ends_the_connection() {
        let (conn, driver) = Connection::new(
            Stuck,
            ThreadTimer::default(),
            Config::default(),
            Side::Dialer,
        )
        .unwrap();
        let flow = block_on(conn.open_flow()).unwrap();
        drop(driver);
        assert_eq!(block_on(conn.closed()), crate::CloseReason::TransportEnded);
        let (mut rx, _tx) = flow.split();
        let e = block_on(rx.read(&mut [0u8; 4])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted);
    }
}
