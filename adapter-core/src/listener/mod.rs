//! Listeners: accept connections, admit their handshakes
//! ([`proto_core::admission`]), run them concurrently, and hand out only
//! established connections.
//!
//! Nothing here knows a runtime. [`ListenerCore`] holds what a listener's
//! tasks share: the [`AdmissionGate`], the mux [`Config`] and the
//! [`Credentials`] every accepted connection gets, and a bounded queue of
//! established connections for `accept`. An adapter feeds it sockets,
//! through [`ListenerCore::serve`] (any [`Accept`]or) or
//! [`ListenerCore::incoming`] (one socket), and wraps
//! [`ListenerCore::accept`].
//!
//! For each socket: the gate decides before a byte is read. A refused
//! socket is dropped at once, unread (no Diffie-Hellman work is done for
//! it); a queued one waits, unread, and is dropped if its wait expires;
//! an admitted one gets a task that runs the handshake (the driver's
//! first phase, [`spawn_secure_connection`]) holding a [`Permit`], and
//! then waits for room in the accept queue. The permit is released once
//! the connection is in the queue (or the handshake failed), so a server
//! that stops calling `accept` stops admitting new handshakes instead of
//! piling up connections.

mod gate;

pub use gate::{AdmissionGate, Offer, Permit, Queued};
pub use proto_core::admission::{AdmissionConfig, AdmissionStats, Excess, Reason, RefusalCounts};

use crate::runtime::{Runtime, Timer, Transport};
use crate::secure::{Addresses, Credentials};
use crate::{spawn_connection, spawn_secure_connection, Config, Connection, Side};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How a listener admits and hands out connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerOptions {
    /// Handshake admission limits (see [`AdmissionConfig`] for each
    /// default). [`AdmissionConfig::unlimited`] turns admission off.
    pub admission: AdmissionConfig,
    /// Established connections waiting for `accept`. Default 64: past it,
    /// finished handshakes keep their admission place until `accept`
    /// makes room, so a slow application slows admission down instead of
    /// buffering connections without bound.
    pub accept_backlog: usize,
    /// `TCP_NODELAY` on accepted TCP sockets. Default true, as the
    /// adapters' `dial` sets it: the mux does its own batching.
    pub nodelay: bool,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            admission: AdmissionConfig::default(),
            accept_backlog: 64,
            nodelay: true,
        }
    }
}

/// What a listener has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenerStats {
    /// The admission machine's counters: handshakes in progress (from
    /// admission until the connection is queued for `accept`), queued,
    /// admitted, and refusals by reason (queue timeouts included).
    pub admission: AdmissionStats,
    /// Handshakes that completed (authorized, encrypted) or, for a
    /// plaintext listener, connections started.
    pub established: u64,
    /// Handshakes that failed (refused peer, timeout, bad data, EOF).
    pub handshake_failures: u64,
    /// Connections taken by `accept`.
    pub accepted: u64,
    /// Connections waiting for `accept` now.
    pub ready: usize,
    /// Errors from the socket's own accept (out of descriptors, ...).
    pub accept_errors: u64,
}

/// How long the accept loop waits after an accept error before retrying:
/// out of descriptors, retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(20);

/// A listening socket the runtime-neutral accept loop can poll.
pub trait Accept: Send + 'static {
    /// An accepted socket, not yet read.
    type Stream: Send + 'static;
    /// The transport a handshake runs over.
    type Io: Transport;
    /// The next connection: its socket, both ends' addresses, and the
    /// peer's IP (the admission source).
    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Self::Stream, Addresses, IpAddr)>>;
    /// The transport over an admitted socket (setting options first).
    fn into_io(stream: Self::Stream) -> io::Result<Self::Io>;
}

#[derive(Debug, Default)]
struct Ready {
    conns: VecDeque<Connection>,
    accept: Option<Waker>,
    space: Vec<Waker>,
    serve: Option<Waker>,
    closed: bool,
}

#[derive(Debug, Default)]
struct Counters {
    established: AtomicU64,
    failures: AtomicU64,
    accepted: AtomicU64,
    accept_errors: AtomicU64,
}

/// What a listener's tasks share (see the [module docs](self)).
#[derive(Debug)]
pub struct ListenerCore {
    gate: Arc<AdmissionGate>,
    config: Config,
    creds: Option<Credentials>,
    backlog: usize,
    ready: Mutex<Ready>,
    counters: Counters,
}

impl ListenerCore {
    /// A listener's shared state: `creds` `None` is the plaintext opt-out.
    /// A bad `config` or admission config is `InvalidInput`.
    pub fn new(
        config: Config,
        creds: Option<Credentials>,
        options: &ListenerOptions,
    ) -> io::Result<Arc<ListenerCore>> {
        config.validate().map_err(crate::config_error)?;
        Ok(Arc::new(ListenerCore {
            gate: AdmissionGate::new(options.admission.clone())?,
            config,
            creds,
            backlog: options.accept_backlog.max(1),
            ready: Mutex::new(Ready::default()),
            counters: Counters::default(),
        }))
    }

    /// The admission gate.
    pub fn gate(&self) -> &Arc<AdmissionGate> {
        &self.gate
    }

    fn ready(&self) -> MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One accepted socket from `ip`: refused (dropped unread), queued, or
    /// admitted; `make_io` turns it into a transport only once admitted.
    pub fn incoming<R, T, F>(
        self: &Arc<Self>,
        runtime: &R,
        ip: IpAddr,
        addresses: Addresses,
        make_io: F,
    ) where
        R: Runtime + Clone,
        R::Timer: Unpin,
        T: Transport,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        match self.gate.offer(runtime, ip) {
            Offer::Refused(reason) => {
                refused(&addresses, &reason);
                drop(make_io);
            }
            Offer::Admitted(permit) => {
                let (core, rt) = (self.clone(), runtime.clone());
                runtime.spawn(async move { core.establish(rt, make_io, addresses, permit).await });
            }
            Offer::Queued(wait) => {
                let (core, rt) = (self.clone(), runtime.clone());
                runtime.spawn(async move {
                    match wait.await {
                        Ok(permit) => core.establish(rt, make_io, addresses, permit).await,
                        Err(reason) => refused(&addresses, &reason),
                    }
                });
            }
        }
    }

    async fn establish<R, T, F>(
        self: Arc<Self>,
        runtime: R,
        make_io: F,
        addresses: Addresses,
        permit: Permit,
    ) where
        R: Runtime,
        T: Transport,
        F: FnOnce() -> io::Result<T>,
    {
        let started = match make_io() {
            Ok(io) => match &self.creds {
                Some(creds) => {
                    spawn_secure_connection(
                        &runtime,
                        io,
                        self.config.clone(),
                        Side::Acceptor,
                        creds,
                        &addresses,
                    )
                    .await
                }
                None => spawn_connection(&runtime, io, self.config.clone(), Side::Acceptor),
            },
            Err(e) => Err(e),
        };
        match started {
            Ok(conn) => {
                self.counters.established.fetch_add(1, Ordering::Relaxed);
                self.deliver(conn).await;
            }
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                handshake_failed(&addresses, &e);
            }
        }
        drop(permit);
    }

    /// Waits for room in the accept queue, then queues `conn`; drops it
    /// (the peer sees GOAWAY) if the listener has closed.
    async fn deliver(&self, conn: Connection) {
        let mut conn = Some(conn);
        poll_fn(|cx| {
            let mut r = self.ready();
            if r.closed {
                return Poll::Ready(());
            }
            if r.conns.len() < self.backlog {
                r.conns.extend(conn.take());
                let w = r.accept.take();
                drop(r);
                if let Some(w) = w {
                    w.wake();
                }
                return Poll::Ready(());
            }
            r.space.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }

    /// The next established connection; `NotConnected` once closed.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Connection>> {
        let mut r = self.ready();
        if let Some(conn) = r.conns.pop_front() {
            let space = std::mem::take(&mut r.space);
            drop(r);
            for w in space {
                w.wake();
            }
            self.counters.accepted.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Ok(conn));
        }
        if r.closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "listener closed",
            )));
        }
        r.accept = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The next established connection.
    pub async fn accept(&self) -> io::Result<Connection> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Stops the accept loop and drops the connections not yet accepted;
    /// handshakes still running finish and are dropped too.
    pub fn close(&self) {
        let (conns, wakers) = {
            let mut r = self.ready();
            r.closed = true;
            let mut wakers = std::mem::take(&mut r.space);
            wakers.extend(r.accept.take());
            wakers.extend(r.serve.take());
            (std::mem::take(&mut r.conns), wakers)
        };
        drop(conns);
        for w in wakers {
            w.wake();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.ready().closed
    }

    /// Counters now.
    pub fn stats(&self) -> ListenerStats {
        let c = &self.counters;
        ListenerStats {
            admission: self.gate.stats(),
            established: c.established.load(Ordering::Relaxed),
            handshake_failures: c.failures.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            ready: self.ready().conns.len(),
            accept_errors: c.accept_errors.load(Ordering::Relaxed),
        }
    }

    /// Counts an error from the socket's accept (for adapters that run
    /// their own accept loop).
    pub fn accept_error(&self, e: &io::Error) {
        self.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
        accept_failed(e);
    }

    /// The accept loop: every socket `acceptor` yields goes through
    /// [`incoming`](Self::incoming), until [`close`](Self::close). An
    /// accept error is counted and retried after a short pause.
    pub async fn serve<R, A>(self: Arc<Self>, runtime: R, mut acceptor: A)
    where
        R: Runtime + Clone,
        R::Timer: Unpin,
        A: Accept,
    {
        let mut pause = runtime.timer();
        loop {
            let next = poll_fn(|cx| {
                let mut r = self.ready();
                if r.closed {
                    return Poll::Ready(None);
                }
                r.serve = Some(cx.waker().clone());
                drop(r);
                acceptor.poll_accept(cx).map(Some)
            })
            .await;
            match next {
                None => return,
                Some(Ok((stream, addresses, ip))) => {
                    self.incoming(&runtime, ip, addresses, move || A::into_io(stream));
                }
                Some(Err(e)) => {
                    self.accept_error(&e);
                    pause.reset(Instant::now() + ACCEPT_ERROR_PAUSE);
                    poll_fn(|cx| pause.poll_expired(cx)).await;
                }
            }
        }
    }
}

#[cfg(feature = "tracing")]
fn refused(addresses: &Addresses, reason: &Reason) {
    tracing::debug!(peer = %addresses.remote, %reason, "handshake not admitted");
}

#[cfg(not(feature = "tracing"))]
fn refused(_: &Addresses, _: &Reason) {}

#[cfg(feature = "tracing")]
fn handshake_failed(addresses: &Addresses, e: &io::Error) {
    tracing::debug!(peer = %addresses.remote, error = %e, "handshake failed");
}

#[cfg(not(feature = "tracing"))]
fn handshake_failed(_: &Addresses, _: &io::Error) {}

#[cfg(feature = "tracing")]
fn accept_failed(e: &io::Error) {
    tracing::warn!(error = %e, "accept failed");
}

#[cfg(not(feature = "tracing"))]
fn accept_failed(_: &io::Error) {}
