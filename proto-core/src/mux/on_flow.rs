//! [`OnFlow<M>`]: a byte-stream machine carried on one flow of a mux
//! connection, composed in the core as one machine.

use super::{Connection, Event, FlowId, ReadError, Side, WriteError};
use crate::time::Instant;
use crate::wire::{Machine, Rejected, TransmitBuf};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::Bytes;

/// Largest read handed to `M` at once.
const READ_CHUNK: usize = 64 * 1024;

/// A byte-stream machine `M` (RPC, sessions, the echo) on one flow of a
/// mux [`Connection`], as one [`Machine`] over the connection's byte
/// stream: the dialer opens the flow at once, the acceptor takes the first
/// flow its peer opens (and refuses any other). `M` sees the flow's bytes
/// as its input, the flow's end as its transport closing, and its output
/// is written to the flow (bounded by the flow's credit: what does not fit
/// waits here, and `M` is not polled again until it drained).
///
/// When `M` closes, the flow is finished; when both directions ended, the
/// connection drains (GOAWAY) and closes. Drivers that want many machines
/// on one connection run each on a flow handle instead (the adapters'
/// `Flow` is a transport); this type is the same composition for a single
/// machine with no handles at all: the simulator, fuzzing, replay.
///
/// ```
/// # #[cfg(feature = "sim")] {
/// use proto_core::mux::{self, OnFlow, Side};
/// use proto_core::sim::echo::{Echo, EchoRole};
/// use proto_core::time::Instant;
/// use proto_core::wire::Machine;
///
/// let now = Instant::ZERO;
/// let conn = |side| mux::Connection::new(mux::Config::default(), side, now).unwrap();
/// let mut c = OnFlow::new(conn(Side::Dialer), Echo::new(EchoRole::Client, 1024)).unwrap();
/// let mut s = OnFlow::new(conn(Side::Acceptor), Echo::new(EchoRole::Server, 1024)).unwrap();
/// c.inner_mut().send(b"over a flow").unwrap();
/// for _ in 0..4 {
///     let mut w = Vec::new();
///     while c.poll_transmit(&mut w).is_some() {}
///     s.handle_input(now, w.into()).unwrap();
///     let mut w = Vec::new();
///     while s.poll_transmit(&mut w).is_some() {}
///     c.handle_input(now, w.into()).unwrap();
/// }
/// assert_eq!(&c.inner_mut().poll_reply().unwrap()[..], b"over a flow");
/// # }
/// ```
#[derive(Debug)]
pub struct OnFlow<M> {
    mux: Connection,
    inner: M,
    flow: Option<FlowId>,
    /// `M`'s output the flow has not taken yet.
    pending: VecDeque<Bytes>,
    scratch: Vec<u8>,
    /// The flow's receive side ended (FIN, reset or close) and `M` heard it.
    read_ended: bool,
    finished: bool,
    draining: bool,
    now: Instant,
}

impl<M: Machine> OnFlow<M> {
    /// `inner` on a flow of `mux` (which must be new: the dialer opens its
    /// first flow here). Fails like `open_flow` if the flow cannot open.
    pub fn new(mut mux: Connection, inner: M) -> Result<Self, super::OpenError> {
        let flow = match mux.side() {
            Side::Dialer => Some(mux.open_flow()?),
            Side::Acceptor => None,
        };
        Ok(OnFlow {
            mux,
            inner,
            flow,
            pending: VecDeque::new(),
            scratch: Vec::new(),
            read_ended: false,
            finished: false,
            draining: false,
            now: Instant::ZERO,
        })
    }

    /// The carried machine, for its commands and events.
    pub fn inner_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// The carried machine.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The mux connection (read-only: the flow is this type's).
    pub fn mux(&self) -> &Connection {
        &self.mux
    }

    /// The flow carrying `M`, once known.
    pub fn flow(&self) -> Option<FlowId> {
        self.flow
    }

    /// Moves bytes between the mux and `M` until neither has more.
    fn pump(&mut self) {
        let now = self.now;
        while let Some(ev) = self.mux.poll_event() {
            match ev {
                Event::FlowOpened { id, .. } if self.flow.is_none() => self.flow = Some(id),
                Event::FlowOpened { id, .. } => {
                    // One machine, one flow: refuse the rest.
                    let _ = self.mux.flow(id).reset(0);
                    let _ = self.mux.flow(id).stop(0);
                }
                Event::Closed(_) => self.end_input(now),
                _ => {}
            }
        }
        let Some(id) = self.flow else { return };
        // Received bytes into `M`, while it takes them (what it does not
        // take waits in the flow, whose credit then holds the peer).
        while !self.read_ended && self.inner.wants_input() {
            match self.mux.flow(id).read_chunk(READ_CHUNK) {
                Ok(Some(b)) => {
                    if self.inner.handle_input(now, b).is_err() {
                        // `M` refused its input and closed: so does the flow.
                        let _ = self.mux.flow(id).stop(0);
                        self.read_ended = true;
                    }
                }
                Ok(None) | Err(ReadError::Reset(_) | ReadError::Closed | ReadError::Stopped) => {
                    self.end_input(now)
                }
                Err(_) => break,
            }
        }
        // `M`'s output into the flow, as far as its credit goes.
        loop {
            if self.pending.is_empty() {
                self.scratch.clear();
                let mut out = core::mem::take(&mut self.scratch);
                while out.len() < READ_CHUNK && self.inner.poll_transmit(&mut out).is_some() {}
                if out.is_empty() {
                    self.scratch = out;
                    break;
                }
                self.pending.push_back(Bytes::from(out));
            }
            let Some(front) = self.pending.front_mut() else {
                break;
            };
            match self.mux.flow(id).write_chunk(front.clone()) {
                Ok(n) if n == front.len() => {
                    self.pending.pop_front();
                }
                Ok(n) => {
                    let _ = front.split_to(n);
                    break;
                }
                Err(WriteError::Blocked) => break,
                Err(_) => {
                    self.pending.clear();
                    break;
                }
            }
        }
        if self.inner.is_closed() && self.pending.is_empty() && !self.finished {
            self.finished = true;
            let _ = self.mux.flow(id).finish();
        }
        if self.finished && self.read_ended && !self.draining {
            self.draining = true;
            self.mux.go_away(0);
        }
    }

    fn end_input(&mut self, now: Instant) {
        if !self.read_ended {
            self.read_ended = true;
            self.inner.handle_transport_closed(now);
        }
    }
}

impl<M: Machine> Machine for OnFlow<M> {
    fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), Rejected> {
        self.now = now;
        let r = self.mux.handle_input_bytes(now, data).map_err(|_| Rejected);
        self.pump();
        r
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.mux.handle_timeout(now);
        if self.inner.poll_timeout().is_some_and(|d| d <= now) {
            self.inner.handle_timeout(now);
        }
        self.pump();
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        self.now = now;
        self.mux.handle_transport_closed(now);
        self.pump();
    }

    fn poll_transmit(&mut self, mut out: &mut dyn TransmitBuf) -> Option<usize> {
        self.pump();
        self.mux.poll_transmit(&mut out)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let m = self.mux.poll_timeout().map(|(t, _)| t);
        match (m, self.inner.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn wants_transmit(&self) -> bool {
        self.mux.wants_transmit() || self.inner.wants_transmit() || !self.pending.is_empty()
    }

    fn is_closed(&self) -> bool {
        self.mux.is_closed()
    }

    fn close(&mut self, now: Instant, code: u64, reason: &[u8]) {
        self.now = now;
        self.inner.close(now, code, reason);
        self.mux.close(code, reason);
    }
}
