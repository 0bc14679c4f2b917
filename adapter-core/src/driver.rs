//! The driver: moves bytes between a transport and the sans-IO connection,
//! fires its timer, and never lets a blocked direction stall the other.

use crate::runtime::{RecvBuffer, Timer, Transport};
use crate::shared::{set_waker, Shared};
use bytes::Bytes;
use proto_core::mux::IoChunks;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Output the driver collects from `poll_transmit` before writing.
pub const TRANSMIT_HIGH_WATER: usize = 256 * 1024;
/// How long a closed connection keeps reading (and discarding) after its
/// FIN, so that closing does not turn into a TCP reset that could destroy
/// the CLOSE frame in flight; also how long it tries to flush its last
/// bytes to a peer that does not read.
pub const LINGER: Duration = Duration::from_secs(2);
/// Slices per vectored write.
const MAX_IOV: usize = 64;
/// Loop iterations with progress before the driver yields to its executor.
const BUDGET: usize = 32;

/// The driver's side of the shared state: what an IO loop calls. The async
/// [`Driver`] uses it, and so can a blocking driver built from threads
/// (`adapter-std`'s): one thread calls [`input`](Self::input) with what
/// it reads, another [`poll_transmit`](Self::poll_transmit) and writes.
///
/// Each call takes the lock once, feeds the connection, drains its events
/// into wake-ups, and returns.
///
/// ```
/// use adapter_core::{Config, Side};
/// let (conn, pump) = adapter_core::Pump::new(Config::default(), Side::Dialer).unwrap();
/// let mut out = proto_core::mux::IoChunks::default();
/// let status = pump.poll_transmit(&mut out, 1 << 20, futures_task_noop());
/// assert!(!out.is_empty()); // the preface and first PING
/// assert!(!status.closed);
/// # fn futures_task_noop() -> &'static std::task::Waker { std::task::Waker::noop() }
/// # drop(conn);
/// ```
pub struct Pump {
    shared: Arc<Shared>,
}

impl fmt::Debug for Pump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pump").finish_non_exhaustive()
    }
}

/// What [`Pump::poll_transmit`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PumpStatus {
    /// When to call again even if nothing else happens (the core's timer).
    pub deadline: Option<Instant>,
    /// The connection has closed.
    pub closed: bool,
    /// More output is ready than fit under the limit.
    pub more: bool,
}

impl Pump {
    /// A connection on `side` and its pump, with the clock origin now.
    pub fn new(
        config: crate::Config,
        side: crate::Side,
    ) -> Result<(crate::Connection, Pump), crate::ConfigError> {
        let origin = Instant::now();
        let conn =
            proto_core::mux::Connection::new(config, side, crate::shared::to_mux(origin, origin))?;
        let shared = Arc::new(Shared::new(conn, origin));
        let t0 = crate::shared::to_mux(origin, origin);
        shared.with(|st| crate::record::attach(st, side, t0));
        let handle = crate::Connection::new(shared.clone(), side);
        Ok((handle, Pump { shared }))
    }

    /// A secure connection on `side` over an established handshake (from
    /// [`crate::secure::handshake`] or [`crate::secure::handshake_blocking`]):
    /// the record layer under the mux.
    pub fn new_secure(
        config: crate::Config,
        side: crate::Side,
        established: proto_core::secure::Established,
        security: Arc<crate::secure::Security>,
    ) -> Result<(crate::Connection, Pump), crate::ConfigError> {
        let (conn, pump) = Pump::new(config, side)?;
        let now = pump.shared.now();
        let proto_core::secure::Established {
            records, leftover, ..
        } = established;
        pump.shared.with(|st| {
            st.records = Some(records);
            // Records that came with the handshake's last message.
            crate::record::input(st, now, leftover.into());
            st.security = Some(security);
            st.kick = true;
        });
        Ok((conn, pump))
    }

    /// Bytes read from the transport (`handle_input_bytes`: large payloads
    /// are kept by reference, not copied); on a secure connection, records
    /// to open first.
    pub fn input(&self, data: Bytes) {
        let now = self.shared.now();
        self.shared.with(|st| {
            // A protocol error closes the connection; the CLOSE frame is
            // queued and `Event::Closed` reports it.
            crate::record::input(st, now, data);
            st.kick = true;
        });
    }

    /// The transport ended (`None`: EOF) or failed.
    pub fn transport_closed(&self, error: Option<&io::Error>) {
        let now = self.shared.now();
        self.shared.with(|st| {
            if let Some(e) = error {
                if st.transport_error.is_none() && !st.conn.is_closed() {
                    st.transport_error = Some(e.to_string());
                }
            }
            crate::record::transport_closed(st, now);
            st.kick = true;
        });
    }

    /// Registers `waker` as the driver's (woken after every command),
    /// fires the core's timer if due, and appends output to `out` until it
    /// holds `limit` bytes or there is no more.
    pub fn poll_transmit(&self, out: &mut IoChunks, limit: usize, waker: &Waker) -> PumpStatus {
        let now = self.shared.now();
        let shared = &self.shared;
        shared.with(|st| {
            set_waker(&mut st.driver_waker, waker);
            if st.conn.poll_timeout().is_some_and(|(d, _)| now >= d) {
                crate::record::timeout(st, now);
            }
            let mut more = false;
            while out.len() < limit {
                more = crate::record::transmit(st, out);
                if !more {
                    break;
                }
            }
            st.armed = st.conn.poll_timeout().map(|(d, _)| d);
            crate::record::flush(st);
            PumpStatus {
                deadline: st.armed.map(|d| shared.to_std(d)),
                closed: st.conn.is_closed(),
                more,
            }
        })
    }

    /// The connection has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.with(|st| st.conn.is_closed())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Closed and shut down: reading until EOF or the deadline.
    Lingering(Instant),
    Done,
}

/// The connection's driver: a future that runs until the connection has
/// closed and its last bytes are written. Spawn it on any executor.
///
/// It reads into a [`RecvBuffer`] and feeds `handle_input_bytes` (no copy),
/// drains `poll_transmit` into [`IoChunks`] and writes them vectored, and
/// re-arms the timer from `poll_timeout`. Reads and writes are polled
/// independently in one loop, so a write blocked by a peer that does not
/// read never stops this side from reading (and the reverse).
///
/// Its output is the transport's error, if it failed.
///
/// ```no_run
/// # fn f<T: adapter_core::Transport, M: adapter_core::Timer>(io: T, timer: M) {
/// let (conn, driver) =
///     adapter_core::Driver::new(io, timer, adapter_core::Config::default(), adapter_core::Side::Dialer)
///         .unwrap();
/// // spawn `driver` on the executor, use `conn`
/// # }
/// ```
#[must_use = "the driver does nothing unless polled"]
pub struct Driver<T: Transport, M: Timer> {
    pump: Pump,
    io: T,
    timer: M,
    recv: RecvBuffer,
    out: IoChunks,
    armed: Option<Instant>,
    read_done: bool,
    write_done: bool,
    need_flush: bool,
    phase: Phase,
    /// When a closed connection gives up flushing its last bytes.
    close_deadline: Option<Instant>,
    error: Option<io::Error>,
}

// The driver never pins its fields: `Transport` and `Timer` take `&mut self`.
impl<T: Transport, M: Timer> Unpin for Driver<T, M> {}

impl<T: Transport, M: Timer> fmt::Debug for Driver<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("phase", &self.phase)
            .field("read_done", &self.read_done)
            .field("write_done", &self.write_done)
            .field("queued", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl<T: Transport, M: Timer> Driver<T, M> {
    /// A connection over `io` on `side`, and the driver to spawn for it.
    pub fn new(
        io: T,
        timer: M,
        config: crate::Config,
        side: crate::Side,
    ) -> Result<(crate::Connection, Self), crate::ConfigError> {
        let (conn, pump) = Pump::new(config, side)?;
        Ok((conn, Driver::with_pump(pump, io, timer)))
    }

    pub(crate) fn with_pump(pump: Pump, io: T, timer: M) -> Self {
        Driver {
            pump,
            io,
            timer,
            recv: RecvBuffer::new(),
            out: IoChunks::default(),
            armed: None,
            read_done: false,
            write_done: false,
            need_flush: false,
            phase: Phase::Running,
            close_deadline: None,
            error: None,
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.pump.transport_closed(Some(&e));
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// One pass over reading, transmitting, writing and the timer; true if
    /// anything moved.
    fn step(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;

        // Read whatever has arrived, whatever the write side's state.
        if !self.read_done {
            match self.io.poll_read_recv(cx, &mut self.recv) {
                Poll::Ready(Ok(0)) => {
                    self.read_done = true;
                    self.pump.transport_closed(None);
                    progress = true;
                }
                Poll::Ready(Ok(n)) => {
                    let data = self.recv.take(n);
                    if self.phase == Phase::Running {
                        self.pump.input(data);
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

        let status = self
            .pump
            .poll_transmit(&mut self.out, TRANSMIT_HIGH_WATER, cx.waker());

        // Write what is queued, as far as the transport takes it.
        if self.write_done {
            self.out = IoChunks::default();
        }
        while !self.out.is_empty() && !self.write_done {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut k = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.out.chunks()) {
                *slot = IoSlice::new(chunk);
                k += 1;
            }
            match self.io.poll_write_vectored(cx, &slices[..k]) {
                Poll::Ready(Ok(0)) => {
                    self.write_done = true;
                    self.fail(io::ErrorKind::WriteZero.into());
                    progress = true;
                }
                Poll::Ready(Ok(n)) => {
                    self.out.advance(n);
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

impl<T: Transport, M: Timer> Future for Driver<T, M> {
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

impl<T: Transport, M: Timer> Drop for Driver<T, M> {
    fn drop(&mut self) {
        // Dropped before the end (runtime shutdown, task aborted): the
        // handles must not wait for a driver that is gone.
        if !self.pump.is_closed() {
            self.pump.transport_closed(None);
        }
        self.pump.shared.with(|st| st.driver_waker = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{block_on, Config, Side};
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
        let (conn, driver) = Driver::new(
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
        let (conn, driver) = Driver::new(
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
