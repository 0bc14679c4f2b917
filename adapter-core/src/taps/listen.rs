//! Listen (RFC 9622 section 7.2): a listener that hands out a message
//! connection for every incoming connection, or for every incoming flow
//! on the multistreaming stacks.

use super::context::Context;
use super::establish::Established;
use super::initiate::{credentials, invalid, message_connection, on_flow, Origin};
use super::message::MessageConnection;
use super::net::{Accept, Connected, Net};
use crate::secure::spawn_secure_connection;
use crate::shared::set_waker;
use crate::{spawn_connection, Config, Profile, Side};
use proto_core::taps::candidate::{Candidate, Stack};
use proto_core::taps::endpoint::{Endpoint, LocalBinding};
use proto_core::taps::preconnection::{PlanContext, Preconnection};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

#[derive(Default)]
struct State {
    ready: VecDeque<MessageConnection>,
    waiter: Option<Waker>,
    /// The accept task, to stop it when the listener goes.
    task: Option<Waker>,
    stopped: bool,
    refused: u64,
    error: Option<io::Error>,
}

struct Shared {
    state: Mutex<State>,
    backlog: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an incoming connection, or closes it when the backlog is full.
    fn offer(&self, conn: MessageConnection) {
        let mut st = self.lock();
        if st.stopped || st.ready.len() >= self.backlog {
            st.refused += 1;
            drop(st);
            conn.abort();
            return;
        }
        st.ready.push_back(conn);
        let w = st.waiter.take();
        drop(st);
        if let Some(w) = w {
            w.wake();
        }
    }

    fn stopped(&self) -> bool {
        self.lock().stopped
    }
}

/// A listener (RFC 9622 Listen): [`accept`](Self::accept) gives each
/// incoming message connection (RFC 9622's ConnectionReceived). Dropping
/// it, or [`stop`](Self::stop), stops listening; connections already
/// handed out go on.
pub struct Listener {
    shared: Arc<Shared>,
    local: String,
    stack: Stack,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local", &self.local)
            .field("stack", &self.stack)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// The next incoming connection.
    pub async fn accept(&self) -> io::Result<MessageConnection> {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if let Some(c) = st.ready.pop_front() {
                return Poll::Ready(Ok(c));
            }
            if let Some(e) = st.error.take() {
                return Poll::Ready(Err(e));
            }
            if st.stopped {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the listener stopped",
                )));
            }
            set_waker(&mut st.waiter, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Where it listens (`127.0.0.1:4000`, `unix:/run/x.sock`).
    pub fn local_addr(&self) -> &str {
        &self.local
    }

    /// The stack it speaks.
    pub fn stack(&self) -> Stack {
        self.stack
    }

    /// Connections closed at once because `listen_backlog` were waiting.
    pub fn refused(&self) -> u64 {
        self.shared.lock().refused
    }

    /// Stops listening (RFC 9622 Stop).
    pub fn stop(&self) {
        let mut st = self.shared.lock();
        st.stopped = true;
        let wakers = [st.task.take(), st.waiter.take()];
        drop(st);
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where to bind for a validated local endpoint.
pub(crate) fn bind<N: Net>(net: &N, binding: &LocalBinding) -> io::Result<Box<dyn Accept>> {
    match binding {
        LocalBinding::Any { port } => {
            net.bind_tcp(SocketAddr::from((Ipv6Addr::UNSPECIFIED, *port)))
        }
        LocalBinding::Addr(a) => net.bind_tcp(*a),
        LocalBinding::Lookup { host, port } => {
            let addr = (host.as_str(), *port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
                })?;
            net.bind_tcp(addr)
        }
        LocalBinding::Unix(path) => net.bind_unix(PathBuf::from(path)),
        _ => Err(invalid(io::Error::other(
            "an unknown kind of local endpoint",
        ))),
    }
}

/// Listens with `pre` on `net` (RFC 9622 Listen). The listener speaks the
/// first stack of the core's selection for the listener's properties
/// (with security, the secure mux).
pub fn listen<N: Net>(net: &N, ctx: &Context, pre: &Preconnection) -> io::Result<Listener> {
    let plan = pre.listen(&PlanContext::default()).map_err(invalid)?;
    let stack = *plan.selection.stacks().first().ok_or_else(|| {
        invalid(io::Error::other(
            "the selection left no stack to listen with",
        ))
    })?;
    let mut accept = bind(net, &plan.local.binding)?;
    let local = accept.local_addr();
    let backlog = ctx.settings().listen_backlog;
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        backlog,
    });
    let endpoint = if plan.local.is_unix() {
        Endpoint::Unix(local.trim_start_matches("unix:").to_owned())
    } else {
        Endpoint::Ip(
            local
                .parse()
                .map_err(|_| invalid(io::Error::other("listener address")))?,
        )
    };
    let candidate = Candidate { stack, endpoint };
    let creds = credentials(&plan.security);
    let mux = ctx.settings().mux.clone();
    let (task_net, task_shared, ctx, pre) = (net.clone(), shared.clone(), ctx.clone(), pre.clone());
    net.spawn(async move {
        loop {
            let next = poll_fn(|cx| {
                if task_shared.stopped() {
                    return Poll::Ready(None);
                }
                set_waker(&mut task_shared.lock().task, cx.waker());
                accept.poll_accept(cx).map(Some)
            })
            .await;
            let conn = match next {
                None => return,
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    // A failed accept (EMFILE, say) is reported; listening goes on.
                    task_shared.lock().error = Some(e);
                    continue;
                }
            };
            let origin = Origin::new(&task_net, &ctx, &pre, candidate.clone(), None);
            let (net, shared, creds, mux) = (
                task_net.clone(),
                task_shared.clone(),
                creds.clone(),
                mux.clone(),
            );
            task_net.spawn(async move {
                let _ = serve(net, shared, stack, conn, origin, creds, mux).await;
            });
        }
    });
    Ok(Listener {
        shared,
        local,
        stack,
    })
}

/// One accepted socket: its message connection, or, on the mux stacks,
/// the handshake and then a message connection per incoming flow.
async fn serve<N: Net>(
    net: N,
    shared: Arc<Shared>,
    stack: Stack,
    conn: Connected,
    mut origin: Origin,
    creds: Option<crate::Credentials>,
    mux: Config,
) -> io::Result<()> {
    let mux_conn = match stack {
        Stack::SecureMux => {
            let creds = creds.ok_or_else(|| invalid(io::Error::other("no credentials")))?;
            spawn_secure_connection(
                &net,
                conn.transport,
                mux,
                Side::Acceptor,
                &creds,
                &conn.addresses,
            )
            .await?
        }
        Stack::Yamux => {
            let mut config = mux;
            config.profile = Profile::Yamux;
            spawn_connection(&net, conn.transport, config, Side::Acceptor)?
        }
        _ => {
            let mc = message_connection(&net, Established::Stream(conn), origin).await?;
            shared.offer(mc);
            return Ok(());
        }
    };
    origin.addresses = Some(conn.addresses);
    origin.mux = Some(mux_conn.clone());
    let origin = Arc::new(origin);
    while let Ok(flow) = mux_conn.accept_flow().await {
        if shared.stopped() {
            break;
        }
        shared.offer(on_flow(&origin, flow)?);
    }
    Ok(())
}
