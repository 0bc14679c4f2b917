//! The connection handle.

use crate::error::{closed_error, open_error, ping_error, GoingAway};
use crate::flow::{new_flow, Flow};
use crate::mux_layer::{MuxLayer, PingSlot};
use crate::runtime::{Runtime, Timer, Transport};
use crate::shared::Shared;
use crate::stack::{recorded_mux, MuxStack};
use crate::Driver;
use proto_core::mux::{
    self, CloseReason, ConfigError, ConnectionStats, OpenError, PingError, Side,
};
use proto_core::wire::Machine;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A handle to a multiplexed connection; clones share it.
///
/// Every method locks the shared sans-IO connection briefly, calls it,
/// wakes the tasks its events concern, and wakes the driver so it
/// transmits. When the last `Connection` handle is dropped, the connection
/// sends GOAWAY: flows already open run to their end, then it closes
/// ([`CloseReason::Drained`]).
///
/// ```no_run
/// # async fn f(conn: adapter_core::Connection) -> std::io::Result<()> {
/// let rtt = conn.ping().await?;
/// let mut flow = conn.open_flow().await?;
/// flow.write_all(b"ping").await?;
/// flow.finish()?;
/// conn.go_away(0);
/// let why = conn.closed().await;
/// # Ok(()) }
/// ```
pub struct Connection {
    pub(crate) shared: Arc<Shared<MuxLayer>>,
    side: Side,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

impl Clone for Connection {
    fn clone(&self) -> Self {
        self.shared.with(|st| st.handles += 1);
        Connection {
            shared: self.shared.clone(),
            side: self.side,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.with(|st| {
            st.handles -= 1;
            if st.handles > 0 {
                return;
            }
            // Nobody can accept any more: refuse what is queued, drain the rest.
            while let Some((id, _)) = st.accept_queue.pop_front() {
                let _ = st.stack.mux().reset(id, 0);
                let _ = st.stack.mux().stop(id, 0);
            }
            st.stack.mux().go_away(0);
        });
    }
}

impl Connection {
    pub(crate) fn from_shared(shared: Arc<Shared<MuxLayer>>, side: Side) -> Self {
        shared.with(|st| st.handles += 1);
        Connection { shared, side }
    }

    /// A plaintext connection over `io` on `side`, and the driver to spawn
    /// for it (see [`spawn_connection`](crate::spawn_connection) for both
    /// in one call).
    pub fn new<T: Transport, M: Timer>(
        io: T,
        timer: M,
        config: mux::Config,
        side: Side,
    ) -> Result<(Connection, Driver<MuxLayer, T, M>), ConfigError> {
        let mut config = config;
        config.validate()?;
        crate::budget::prepare(&mut config);
        let budget = config.budget.clone();
        let origin = std::time::Instant::now();
        let t0 = crate::shared::to_core(origin, origin);
        let conn = mux::Connection::new(config, side, t0)?;
        let stack = MuxStack::Plain(recorded_mux(conn, t0));
        let shared = Arc::new(Shared::new(MuxLayer::new(stack, None), origin));
        if let Some(b) = &budget {
            crate::budget::register(b, &shared);
        }
        let handle = Connection::from_shared(shared.clone(), side);
        Ok((handle, Driver::new(shared, io, timer)))
    }

    /// Spawns the driver of `shared` on `runtime` over `io`.
    pub(crate) fn spawn<R: Runtime, T: Transport>(
        runtime: &R,
        shared: Arc<Shared<MuxLayer>>,
        io: T,
    ) {
        let driver = Driver::new(shared, io, runtime.timer());
        runtime.spawn(async move {
            let _ = driver.await;
        });
    }

    /// Which end of the transport this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Opens a flow, waiting while the peer's flow limit is reached. Data
    /// written to it rides on the opening frame: no round trip. Fails with
    /// `ConnectionRefused` (inner [`GoingAway`]) after a GOAWAY, and
    /// `NotConnected` (inner [`ConnectionClosed`](crate::ConnectionClosed))
    /// once closed.
    pub async fn open_flow(&self) -> io::Result<Flow> {
        poll_fn(|cx| self.poll_open(cx, false)).await
    }

    /// Like [`open_flow`](Self::open_flow) for a side channel: a flow that
    /// does not keep the connection from being idle.
    pub async fn open_side_channel(&self) -> io::Result<Flow> {
        poll_fn(|cx| self.poll_open(cx, true)).await
    }

    /// Poll form of [`open_flow`](Self::open_flow) / [`open_side_channel`](Self::open_side_channel).
    pub fn poll_open(&self, cx: &mut Context<'_>, side_channel: bool) -> Poll<io::Result<Flow>> {
        self.shared.with(|st| {
            let r = if side_channel {
                st.stack.mux().open_side_channel()
            } else {
                st.stack.mux().open_flow()
            };
            match r {
                Ok(id) => {
                    let flow = new_flow(&self.shared, &mut st.flows, id, side_channel);
                    Poll::Ready(Ok(flow))
                }
                Err(OpenError::FlowLimit) => {
                    st.register_open(cx);
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(open_error(e, st.close_reason.clone()))),
            }
        })
    }

    /// Waits for the next flow the peer opens. Fails once no more can come:
    /// the connection closed, or a GOAWAY was sent or received and the
    /// flows opened before it were all accepted.
    pub async fn accept_flow(&self) -> io::Result<Flow> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll form of [`accept_flow`](Self::accept_flow).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Flow>> {
        self.shared.with(|st| {
            if let Some((id, side_channel)) = st.accept_queue.pop_front() {
                let flow = new_flow(&self.shared, &mut st.flows, id, side_channel);
                return Poll::Ready(Ok(flow));
            }
            if let Some(reason) = &st.close_reason {
                return Poll::Ready(Err(closed_error(reason.clone())));
            }
            if st.stack.conn().is_draining() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    GoingAway,
                )));
            }
            st.register_accept(cx);
            Poll::Pending
        })
    }

    /// Sends a PING and waits for its PONG: the round-trip time. Waits
    /// first if too many pings are outstanding.
    pub fn ping(&self) -> Ping {
        Ping {
            shared: self.shared.clone(),
            value: None,
        }
    }

    /// Starts a graceful drain (GOAWAY): the peer may open no new flows
    /// (and nor may we); flows already open run to their end, then the
    /// connection closes with [`CloseReason::Drained`].
    pub fn go_away(&self, code: u64) {
        self.shared.with(|st| st.stack.mux().go_away(code));
    }

    /// Closes the connection now with an application `code` and `reason`;
    /// unsent data is dropped. Use [`go_away`](Self::go_away) to drain instead.
    pub fn close(&self, code: u64, reason: &[u8]) {
        let now = self.shared.now();
        self.shared.with(|st| st.stack.close(now, code, reason));
    }

    /// Waits until the connection is closed; returns why.
    pub async fn closed(&self) -> CloseReason {
        poll_fn(|cx| {
            self.shared.with(|st| match &st.close_reason {
                Some(r) => Poll::Ready(r.clone()),
                None => {
                    st.register_close(cx);
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.with(|st| st.close_reason.clone())
    }

    /// The connection is draining (GOAWAY sent or received) or closed.
    pub fn is_draining(&self) -> bool {
        self.shared
            .with(|st| st.stack.conn().is_draining() || st.stack.conn().is_closed())
    }

    /// The peer's GOAWAY, if one arrived: `(accepted_below, code)`. Our
    /// flows with ids below `accepted_below` were accepted; later ones were
    /// reset with [`REFUSED`](proto_core::mux::REFUSED).
    pub fn peer_go_away(&self) -> Option<(u64, u64)> {
        self.shared.with(|st| st.peer_goaway)
    }

    /// The transport's error, if it failed rather than ended cleanly.
    pub fn transport_error(&self) -> Option<String> {
        self.shared.with(|st| st.transport_error.clone())
    }

    /// Connection counters.
    pub fn stats(&self) -> ConnectionStats {
        self.shared.with(|st| st.stack.conn().stats())
    }

    /// The memory budget this connection draws from (its bytes there are
    /// [`ConnectionStats::budget_held`]).
    pub fn budget(&self) -> Option<proto_core::budget::MemoryBudget> {
        self.shared
            .with(|st| st.stack.conn().config().budget.clone())
    }

    /// The smoothed round-trip time, once a PONG has arrived.
    pub fn rtt(&self) -> Option<Duration> {
        self.shared.with(|st| st.stack.conn().smoothed_rtt())
    }
}

/// The future [`Connection::ping`] returns: the round-trip time.
#[must_use = "a ping does nothing unless awaited"]
pub struct Ping {
    shared: Arc<Shared<MuxLayer>>,
    value: Option<u64>,
}

impl fmt::Debug for Ping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ping").field("value", &self.value).finish()
    }
}

impl Future for Ping {
    type Output = io::Result<Duration>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let shared = this.shared.clone();
        shared.with(|st| {
            let value = match this.value {
                Some(v) => v,
                None => match st.stack.mux().ping() {
                    Ok(v) => {
                        st.pings.insert(v, PingSlot::default());
                        this.value = Some(v);
                        v
                    }
                    Err(PingError::TooMany) => {
                        st.register_ping(cx);
                        return Poll::Pending;
                    }
                    Err(e) => {
                        return Poll::Ready(Err(match &st.close_reason {
                            Some(r) => closed_error(r.clone()),
                            None => ping_error(e),
                        }))
                    }
                },
            };
            let Some(slot) = st.pings.get_mut(&value) else {
                return Poll::Ready(Err(ping_error(PingError::Closed)));
            };
            if let Some(rtt) = slot.rtt {
                st.pings.remove(&value);
                this.value = None;
                return Poll::Ready(Ok(rtt));
            }
            if let Some(r) = &st.close_reason {
                st.pings.remove(&value);
                this.value = None;
                return Poll::Ready(Err(closed_error(r.clone())));
            }
            crate::mux_layer::set_waker(&mut slot.waker, cx.waker());
            Poll::Pending
        })
    }
}

impl Drop for Ping {
    fn drop(&mut self) {
        if let Some(v) = self.value {
            self.shared.with(|st| {
                st.pings.remove(&v);
            });
        }
    }
}
