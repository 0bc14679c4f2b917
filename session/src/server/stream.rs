//! A session connection on a byte stream (a weft flow, a TCP or Unix
//! socket): `Framed<ServerConnection>` run by `adapter_core`'s one driver,
//! so it works on every runtime weft has an adapter for.

use super::connection::{Machine, Spawner};
use super::{Server, ServerInner};
use adapter_core::{Layer, Runtime, Transport, Wakeups};
use proto_core::session::{Framed, ServerConnection, ServerEvent};
use proto_core::time::Instant;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Poll, Waker};

/// The layer the driver runs: the framed machine, and its events for the
/// connection's event task.
pub(crate) struct SessionLayer {
    machine: Framed<ServerConnection>,
    events: VecDeque<ServerEvent>,
    waiter: Option<Waker>,
}

impl SessionLayer {
    /// The connection machine inside the framing.
    pub(crate) fn connection(&mut self) -> &mut ServerConnection {
        self.machine.inner_mut()
    }
}

impl Layer for SessionLayer {
    type Machine = Framed<ServerConnection>;

    fn machine(&mut self) -> &mut Framed<ServerConnection> {
        &mut self.machine
    }

    fn machine_ref(&self) -> &Framed<ServerConnection> {
        &self.machine
    }

    fn dispatch(&mut self, wake: &mut Wakeups) {
        let mut any = false;
        while let Some(ev) = self.machine.inner_mut().poll_event() {
            // The event task takes these at once; requests are bounded by
            // the machine, signal handlers by `max_signal_handlers`.
            self.events.push_back(ev);
            any = true;
        }
        if any || proto_core::wire::Machine::is_closed(&self.machine) {
            wake.take_from(&mut self.waiter);
        }
    }
}

impl Server {
    /// Runs one session connection on `io` with `runtime` (tokio, smol or
    /// std threads: any [`adapter_core::Runtime`]) until it ends; messages
    /// are length-prefixed as [`Framed`] frames them. Refused (dropped at
    /// once) when shutting down or at
    /// [`max_connections`](super::ServerOptions::max_connections).
    ///
    /// Handlers run as tasks of `runtime`. The stores that come with this
    /// crate need a tokio context ([`store::MemoryStore`](crate::store::MemoryStore)
    /// does not).
    pub async fn serve_transport<R, T>(&self, runtime: &R, io: T, remote: Option<SocketAddr>)
    where
        R: Runtime + Clone,
        T: Transport,
    {
        let Some(id) = self.inner.admit() else {
            return;
        };
        self.inner.clone().run_stream(runtime, id, io, remote).await;
    }

    /// [`serve_transport`](Self::serve_transport) on tokio, for any tokio
    /// stream: a weft [`Flow`](adapter_tokio::Flow), a `TcpStream`, a
    /// `UnixStream`.
    pub async fn serve_stream<S>(&self, io: S, remote: Option<SocketAddr>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_transport(
            &adapter_tokio::TokioRuntime,
            adapter_tokio::TokioIo(io),
            remote,
        )
        .await
    }
}

impl ServerInner {
    async fn run_stream<R, T>(
        self: Arc<Self>,
        runtime: &R,
        id: u64,
        io: T,
        remote: Option<SocketAddr>,
    ) where
        R: Runtime + Clone,
        T: Transport,
    {
        // The driver's clock starts when it is spawned: time zero.
        let machine = ServerConnection::new(Instant::ZERO, self.options.connection.clone());
        let layer = SessionLayer {
            machine: Framed::new(machine),
            events: VecDeque::new(),
            waiter: None,
        };
        let shared = adapter_core::spawn_layer(runtime, io, layer);
        let rt = runtime.clone();
        let spawn: Spawner = Arc::new(move |f| rt.spawn(f));
        let conn = self.open(id, Machine::Stream(shared.clone()), remote, spawn);
        loop {
            let next = poll_fn(|cx| {
                shared.with(|l| match l.events.pop_front() {
                    Some(ev) => Poll::Ready(Some(ev)),
                    None if proto_core::wire::Machine::is_closed(&l.machine) => Poll::Ready(None),
                    None => {
                        l.waiter = Some(cx.waker().clone());
                        Poll::Pending
                    }
                })
            })
            .await;
            match next {
                Some(ev) => conn.dispatch(ev),
                None => break,
            }
        }
        self.finish(&conn);
    }
}
