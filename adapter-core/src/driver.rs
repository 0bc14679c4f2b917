//! The one driver: moves bytes between a transport and any layer's
//! machine, fires its timer, and never lets a blocked direction stall the
//! other. Every runtime, every layer (the mux, encrypted or not, recorded
//! or not; a byte-stream machine on a socket or on a flow) runs through it.

use crate::runtime::{RecvBuffer, Timer, Transport};
use crate::shared::{set_waker, Layer, Shared};
use bytes::Bytes;
use proto_core::wire::{IoChunks, Machine};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Output the driver collects from `poll_transmit` before writing.
pub const TRANSMIT_HIGH_WATER: usize = 256 * 1024;
/// The same while the memory budget is under pressure.
pub const PRESSURE_HIGH_WATER: usize = 64 * 1024;
/// How long a closed connection keeps reading (and discarding) after its
/// FIN, so that closing does not turn into a TCP reset that could destroy
/// the CLOSE frame in flight; also how long it tries to flush its last
/// bytes to a peer that does not read.
pub const LINGER: Duration = Duration::from_secs(2);
/// Loop iterations with progress before the driver yields to its executor.
const BUDGET: usize = 32;

/// What one pass of moving output reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PassStatus {
    /// When to run again even if nothing else happens (the machine's timer).
    deadline: Option<Instant>,
    /// The machine has closed.
    closed: bool,
    /// More output is ready than fit under the limit.
    more: bool,
    /// The machine takes more input.
    wants_input: bool,
}

/// The driver's calls into the shared layer: each takes the lock once,
/// feeds the machine, and dispatches its events into wake-ups.
impl<L: Layer> Shared<L> {
    fn transport_closed(&self, error: Option<&io::Error>) {
        let now = self.now();
        self.with_driver(|st| {
            if let Some(e) = error {
                st.layer.transport_failed(e);
            }
            st.layer.machine().handle_transport_closed(now);
        });
    }

    /// Under one lock: feeds `input` (bytes just read), registers the
    /// driver's waker, fires the machine's timer if due, and appends output
    /// to `out` until it holds `limit` bytes or there is no more.
    fn pass(
        &self,
        input: Option<Bytes>,
        out: &mut IoChunks,
        limit: usize,
        waker: &Waker,
    ) -> PassStatus {
        let now = self.now();
        self.with_driver(|st| {
            set_waker(&mut st.driver_waker, waker);
            let m = st.layer.machine();
            if let Some(data) = input {
                // A refused input closes the machine; its events say why.
                let _ = m.handle_input(now, data);
            }
            if m.poll_timeout().is_some_and(|d| now >= d) {
                m.handle_timeout(now);
            }
            let mut more = false;
            while out.len() < limit {
                more = m.poll_transmit(out).is_some();
                if !more {
                    break;
                }
            }
            let armed = m.poll_timeout();
            let closed = m.is_closed();
            let wants_input = m.wants_input();
            st.armed = armed;
            st.input_paused = !wants_input;
            st.layer.end_of_pass();
            PassStatus {
                deadline: armed.map(|d| self.to_std(d)),
                closed,
                more,
                wants_input,
            }
        })
    }

    fn is_closed(&self) -> bool {
        self.with_driver(|st| st.layer.machine_ref().is_closed())
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
/// re-arms the timer from `poll_timeout`, as the machine contract says. Reads and writes are polled
/// independently in one loop, so a write blocked by a peer that does not
/// read never stops this side from reading (and the reverse).
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
pub struct Driver<L: Layer, T: Transport, M: Timer> {
    shared: Arc<Shared<L>>,
    io: T,
    timer: M,
    recv: RecvBuffer,
    out: IoChunks,
    armed: Option<Instant>,
    read_done: bool,
    /// The machine took more input at the last pass.
    wants_input: bool,
    write_done: bool,
    need_flush: bool,
    phase: Phase,
    /// When a closed connection gives up flushing its last bytes.
    close_deadline: Option<Instant>,
    error: Option<io::Error>,
    /// `out` and the read buffer charged to the machine's memory budget:
    /// output taken from the machine but not yet written, and room for the
    /// next read, are memory too.
    queue_share: Option<proto_core::budget::Share>,
}

// The driver never pins its fields: `Transport` and `Timer` take `&mut self`.
impl<L: Layer, T: Transport, M: Timer> Unpin for Driver<L, T, M> {}

impl<L: Layer, T: Transport, M: Timer> fmt::Debug for Driver<L, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("phase", &self.phase)
            .field("read_done", &self.read_done)
            .field("write_done", &self.write_done)
            .field("queued", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl<L: Layer, T: Transport, M: Timer> Driver<L, T, M> {
    /// The driver of `shared`'s layer over `io`, with `timer` for its
    /// deadlines.
    pub fn new(shared: Arc<Shared<L>>, io: T, timer: M) -> Self {
        let queue_share = shared
            .with_driver(|st| st.layer.budget())
            .map(|b| b.side_share());
        Driver {
            queue_share,
            shared,
            io,
            timer,
            recv: RecvBuffer::new(),
            out: IoChunks::default(),
            armed: None,
            read_done: false,
            wants_input: true,
            write_done: false,
            need_flush: false,
            phase: Phase::Running,
            close_deadline: None,
            error: None,
        }
    }

    /// How much output to collect before writing: less while the memory
    /// budget is under pressure, since a peer that does not read pins it.
    fn high_water(&self) -> usize {
        match &self.queue_share {
            Some(s) if s.budget().pressure() >= proto_core::budget::Pressure::Shrink => {
                PRESSURE_HIGH_WATER
            }
            _ => TRANSMIT_HIGH_WATER,
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.shared.transport_closed(Some(&e));
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// One pass over reading, transmitting, writing and the timer; true if
    /// anything moved.
    fn step(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut input = None;

        // Read whatever has arrived, whatever the write side's state, as
        // long as the machine takes input (else the transport's flow
        // control holds the peer).
        if !self.read_done && (self.wants_input || self.phase != Phase::Running) {
            match self.io.poll_recv(cx, &mut self.recv) {
                Poll::Ready(Ok(data)) if data.is_empty() => {
                    self.read_done = true;
                    self.shared.transport_closed(None);
                    progress = true;
                }
                Poll::Ready(Ok(data)) => {
                    if self.phase == Phase::Running {
                        input = Some(data);
                    }
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Poll::Ready(Err(e)) => {
                    self.read_done = true;
                    self.fail(e);
                    progress = true;
                }
                Poll::Pending => {}
            }
        }

        let high_water = self.high_water();
        let status = self
            .shared
            .pass(input, &mut self.out, high_water, cx.waker());
        if status.wants_input != self.wants_input {
            self.wants_input = status.wants_input;
            progress |= status.wants_input;
        }

        // Write what is queued, as far as the transport takes it.
        if self.write_done {
            self.out = IoChunks::default();
        }
        while !self.out.is_empty() && !self.write_done {
            match self.io.poll_write_chunks(cx, &mut self.out) {
                Poll::Ready(Ok(0)) => {
                    self.write_done = true;
                    self.fail(io::ErrorKind::WriteZero.into());
                    progress = true;
                }
                Poll::Ready(Ok(_)) => {
                    self.need_flush = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    self.write_done = true;
                    self.fail(e);
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        if let Some(share) = &mut self.queue_share {
            share.set(self.out.len() + self.recv.capacity());
        }
        if self.out.is_empty() && self.need_flush && !self.write_done {
            match self.io.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.need_flush = false,
                Poll::Ready(Err(e)) => {
                    self.write_done = true;
                    self.fail(e);
                    progress = true;
                }
                Poll::Pending => {}
            }
        }

        // Closed and everything written: FIN, then linger for the peer's.
        // A peer that never reads cannot hold us longer than LINGER.
        if status.closed && self.phase == Phase::Running {
            let now = Instant::now();
            let give_up = *self.close_deadline.get_or_insert(now + LINGER);
            let drained = !status.more && self.out.is_empty() && !self.need_flush;
            if now >= give_up && !drained {
                self.phase = Phase::Done;
                return true;
            }
            if self.write_done {
                self.phase = Phase::Lingering(Instant::now() + LINGER);
                progress = true;
            } else if drained {
                match self.io.poll_shutdown(cx) {
                    Poll::Ready(_) => {
                        self.write_done = true;
                        self.phase = Phase::Lingering(Instant::now() + LINGER);
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }
        }
        if let Phase::Lingering(until) = self.phase {
            if self.read_done || Instant::now() >= until {
                self.phase = Phase::Done;
                return true;
            }
        }

        // The timer: the core's deadline, or the end of lingering.
        let deadline = match self.phase {
            Phase::Lingering(until) => Some(until),
            _ if status.closed => self.close_deadline,
            _ => status.deadline,
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
}

impl<L: Layer, T: Transport, M: Timer> Future for Driver<L, T, M> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        for _ in 0..BUDGET {
            if this.phase == Phase::Done {
                return Poll::Ready(this.error.take().map_or(Ok(()), Err));
            }
            if !this.step(cx) {
                return Poll::Pending;
            }
        }
        if this.phase == Phase::Done {
            return Poll::Ready(this.error.take().map_or(Ok(()), Err));
        }
        // Plenty to do: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<L: Layer, T: Transport, M: Timer> Drop for Driver<L, T, M> {
    fn drop(&mut self) {
        // Dropped before the end (runtime shutdown, task aborted): the
        // handles must not wait for a driver that is gone.
        if !self.shared.is_closed() {
            self.shared.transport_closed(None);
        }
        self.shared.with_driver(|st| st.driver_waker = None);
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
