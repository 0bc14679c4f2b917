//! One client connection: its machine under a lock, the task that moves
//! its messages, and the handle handlers get.

use super::stream::SessionLayer;
use super::{Incoming, ServerInner};
use crate::lock;
use crate::store::StoredSession;
use crate::BoxFuture;
use adapter_core::Shared;
use bytes::Bytes;
use futures_util::FutureExt;
use proto_core::session::{
    CloseReason, Payload, RequestId, ServerConnection, ServerEvent, SessionInfo, SessionKey,
    SpecialReply,
};
use std::fmt;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Where the connection's machine lives.
pub(crate) enum Machine {
    /// A WebSocket: whole messages, moved by the connection's own task.
    Messages(Box<Mutex<ServerConnection>>),
    /// A byte stream (a flow, a socket), run by `adapter_core`'s one
    /// driver on whichever runtime: length-prefixed messages.
    Stream(Arc<Shared<SessionLayer>>),
}

/// Spawns a handler on the runtime the connection runs on.
pub(crate) type Spawner = Arc<dyn Fn(BoxFuture<'static, ()>) + Send + Sync>;

struct State {
    session: Option<SessionInfo>,
    /// Handlers of this connection running now.
    handlers: usize,
    /// Signal handlers running now.
    signal_handlers: usize,
    /// Close once `handlers` is zero ([`Connection::close`]).
    close_when_idle: bool,
}

pub(crate) struct Conn {
    pub(crate) id: u64,
    server: Arc<ServerInner>,
    machine: Machine,
    state: Mutex<State>,
    /// Wakes a WebSocket connection's task after a command.
    wake: Notify,
    remote: Option<SocketAddr>,
    spawn: Spawner,
}

/// A client connection, as handlers see it; clones share it.
#[derive(Clone)]
pub struct Connection {
    conn: Arc<Conn>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.conn.id)
            .field("remote", &self.conn.remote)
            .finish()
    }
}

/// Why [`Connection::create_session`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// The server runs with sessions disabled.
    Disabled,
    /// This connection already has a session.
    AlreadyHasSession,
    /// The connection is closed.
    Closed,
    /// The registry refused (too many sessions held).
    Registry(proto_core::session::RegistryError),
    /// The info is not a JSON object.
    BadInfo(String),
    /// The store failed.
    Store(crate::store::StoreError),
    /// The system has no randomness for a key.
    NoRandomness(String),
    /// The connection refused the command (a bad signal name, say).
    Refused(proto_core::session::SessionError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Disabled => f.write_str("sessions are disabled on this server"),
            SessionError::AlreadyHasSession => f.write_str("the connection already has a session"),
            SessionError::Closed => f.write_str("the connection is closed"),
            SessionError::Registry(e) => write!(f, "the session registry refused: {e}"),
            SessionError::BadInfo(e) => write!(f, "session info is not a JSON object: {e}"),
            SessionError::Store(e) => write!(f, "the session store failed: {e}"),
            SessionError::NoRandomness(e) => write!(f, "no randomness for a session key: {e}"),
            SessionError::Refused(e) => write!(f, "the connection refused: {e}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl Connection {
    pub(crate) fn new(conn: Arc<Conn>) -> Self {
        Connection { conn }
    }

    /// This connection's number, unique in the server's lifetime.
    pub fn id(&self) -> u64 {
        self.conn.id
    }

    /// The client's address, when the transport has one.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.conn.remote
    }

    /// The session this connection holds.
    pub fn session(&self) -> Option<SessionInfo> {
        lock(&self.conn.state).session.clone()
    }

    /// Sends a signal to the client.
    pub fn signal(&self, name: &str, payload: Payload) -> Result<(), SessionError> {
        self.conn
            .command(|m| m.signal(Bytes::copy_from_slice(name.as_bytes()), payload))
            .ok_or(SessionError::Closed)?
            .map_err(SessionError::Refused)
    }

    /// Creates a session for this connection with `info` (a JSON object's
    /// text, or none): stores it, registers the connection under its new
    /// key and tells the client (a session-created message).
    pub async fn create_session(&self, info: Option<&str>) -> Result<SessionInfo, SessionError> {
        let server = &self.conn.server;
        if !server.options.connection.sessions_enabled {
            return Err(SessionError::Disabled);
        }
        if self.session().is_some() {
            return Err(SessionError::AlreadyHasSession);
        }
        if let Some(text) = info {
            // The core's bounded check: what a client will accept back.
            SessionInfo::check_info(text.as_bytes(), &server.options.info_limits)
                .map_err(|e| SessionError::BadInfo(e.to_string()))?;
        }
        let mut random = [0u8; 48];
        getrandom::fill(&mut random).map_err(|e| SessionError::NoRandomness(e.to_string()))?;
        let key = SessionKey::from_random(random);
        let now = crate::clock::unix_ms();
        let session = SessionInfo {
            key,
            creation_ms: now,
            last_lookup_ms: now,
            info: info.map(|t| Bytes::copy_from_slice(t.as_bytes())),
        };
        server
            .store
            .created(&stored(&session))
            .await
            .map_err(SessionError::Store)?;
        server
            .registry()
            .attach(key, self.conn.id)
            .map_err(SessionError::Registry)?;
        let sent = self.conn.command(|m| m.session_created(&session));
        if !matches!(sent, Some(Ok(()))) {
            server.registry().detach(self.conn.id);
            return Err(SessionError::Closed);
        }
        lock(&self.conn.state).session = Some(session.clone());
        Ok(session)
    }

    /// Closes this connection's session (here and in the store; other
    /// connections of the key keep theirs until [`Server::close_session`]
    /// (crate::Server::close_session)). The client gets a session-closed
    /// message.
    pub async fn close_session(&self) -> Result<(), SessionError> {
        let Some(session) = self.drop_session(true) else {
            return Ok(());
        };
        self.conn
            .server
            .store
            .closed(session.key.as_str())
            .await
            .map_err(SessionError::Store)
    }

    /// Closes the connection once the handlers running for it have
    /// returned (their replies are sent first).
    pub fn close(&self) {
        let mut st = lock(&self.conn.state);
        st.close_when_idle = true;
        let idle = st.handlers == 0;
        drop(st);
        if idle {
            self.conn.close_now();
        }
    }

    /// Forgets the session here and in the registry; tells the client when
    /// `notify`.
    pub(crate) fn drop_session(&self, notify: bool) -> Option<SessionInfo> {
        let session = lock(&self.conn.state).session.take()?;
        if notify {
            // A closed connection has no one to tell.
            let _ = self.conn.command(|m| m.session_closed());
        }
        self.conn.server.registry().detach(self.conn.id);
        Some(session)
    }
}

fn stored(s: &SessionInfo) -> StoredSession {
    StoredSession {
        key: s.key.as_str().to_owned(),
        creation_ms: s.creation_ms,
        last_lookup_ms: s.last_lookup_ms,
        info: s
            .info
            .as_ref()
            .map(|i| String::from_utf8_lossy(i).into_owned()),
    }
}

fn from_stored(s: StoredSession) -> Option<SessionInfo> {
    Some(SessionInfo {
        key: SessionKey::parse(s.key.as_bytes()).ok()?,
        creation_ms: s.creation_ms,
        last_lookup_ms: s.last_lookup_ms,
        info: s.info.map(Bytes::from),
    })
}

impl Conn {
    fn new(
        server: Arc<ServerInner>,
        id: u64,
        machine: Machine,
        remote: Option<SocketAddr>,
        spawn: Spawner,
    ) -> Arc<Self> {
        Arc::new(Conn {
            id,
            server,
            machine,
            state: Mutex::new(State {
                session: None,
                handlers: 0,
                signal_handlers: 0,
                close_when_idle: false,
            }),
            wake: Notify::new(),
            remote,
            spawn,
        })
    }

    /// The machine's clock.
    fn now(&self) -> proto_core::time::Instant {
        match &self.machine {
            Machine::Messages(_) => self.server.clock.now(),
            Machine::Stream(shared) => shared.now(),
        }
    }

    /// Runs a command on the machine and wakes whoever moves its output;
    /// `None` when the connection is closed.
    fn command<R>(&self, f: impl FnOnce(&mut ServerConnection) -> R) -> Option<R> {
        match &self.machine {
            Machine::Messages(m) => {
                let mut m = lock(m);
                if m.is_closed() {
                    return None;
                }
                let r = f(&mut m);
                drop(m);
                self.wake.notify_one();
                Some(r)
            }
            Machine::Stream(shared) => shared.with(|layer| {
                let m = layer.connection();
                if m.is_closed() {
                    None
                } else {
                    Some(f(m))
                }
            }),
        }
    }

    pub(crate) fn begin_shutdown(&self) {
        self.command(|m| m.begin_shutdown());
    }

    pub(crate) fn close_now(&self) {
        let now = self.now();
        self.command(|m| m.close(now, CloseReason::Local));
    }

    /// Starts the work an event asks for.
    pub(crate) fn dispatch(self: &Arc<Self>, event: ServerEvent) {
        let work = match event {
            ServerEvent::Request { id, name, payload } => {
                Work::Request(id, Incoming { name, payload })
            }
            ServerEvent::Signal { name, payload } => {
                let mut st = lock(&self.state);
                if st.signal_handlers >= self.server.options.max_signal_handlers {
                    drop(st);
                    self.server.signal_dropped();
                    return;
                }
                st.signal_handlers += 1;
                Work::Signal(Incoming { name, payload })
            }
            ServerEvent::RestoreSession { id, key } => Work::Restore(id, key),
            ServerEvent::CloseSession { id } => Work::CloseSession(id),
            _ => return,
        };
        let guard = self.server.work();
        lock(&self.state).handlers += 1;
        let conn = self.clone();
        let signal = matches!(work, Work::Signal(_));
        let mut task: BoxFuture<'static, ()> = Box::pin(async move {
            conn.clone().run_work(work).await;
            conn.handler_done(signal);
            drop(guard);
        });
        // A handler that needs no waiting (most replies) finishes here, in
        // the connection's task: no spawn and no wake-up per request. One
        // that waits is spawned and polled again with a real waker.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if task.as_mut().poll(&mut cx).is_pending() {
            (self.spawn)(task);
        }
    }

    fn handler_done(&self, signal: bool) {
        let mut st = lock(&self.state);
        st.handlers -= 1;
        if signal {
            st.signal_handlers -= 1;
        }
        let close = st.handlers == 0 && st.close_when_idle;
        drop(st);
        if close {
            self.close_now();
        }
    }

    async fn run_work(self: Arc<Self>, work: Work) {
        let handler = self.server.handler.clone();
        let handle = Connection::new(self.clone());
        match work {
            Work::Request(id, request) => {
                // A panic is caught and answered (without a task of its own:
                // one hop less per request).
                let outcome = AssertUnwindSafe(handler.on_request(handle, request))
                    .catch_unwind()
                    .await;
                self.command(|m| match outcome {
                    Ok(Ok(payload)) => m.reply(id, payload),
                    Ok(Err(super::HandlerError::Reply { code, message })) => {
                        let reply = m.reply_error(
                            id,
                            Bytes::copy_from_slice(code.as_bytes()),
                            Bytes::from(message.into_bytes()),
                        );
                        match reply {
                            Ok(()) => Ok(()),
                            Err(e) => {
                                tracing::error!(
                                    connection = self.id,
                                    "bad error reply {code:?}: {e}"
                                );
                                m.reply_internal_error(id)
                            }
                        }
                    }
                    Ok(Err(super::HandlerError::Internal(e))) => {
                        tracing::error!(connection = self.id, "request handler failed: {e}");
                        m.reply_internal_error(id)
                    }
                    Err(_) => {
                        tracing::error!(connection = self.id, "request handler panicked");
                        m.reply_internal_error(id)
                    }
                });
            }
            Work::Signal(signal) => {
                let outcome = AssertUnwindSafe(handler.on_signal(handle, signal))
                    .catch_unwind()
                    .await;
                if outcome.is_err() {
                    tracing::error!(connection = self.id, "signal handler panicked");
                }
            }
            Work::Restore(id, key) => self.restore(id, key).await,
            Work::CloseSession(id) => {
                let reply = match Connection::new(self.clone()).close_session().await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        tracing::error!(connection = self.id, "closing a session failed: {e}");
                        Err(())
                    }
                };
                self.command(|m| match reply {
                    Ok(()) => m.reply(id, Payload::default()),
                    Err(()) => m.reply_internal_error(id),
                });
            }
        }
    }

    async fn restore(self: &Arc<Self>, id: RequestId, key: SessionKey) {
        // With sessions disabled the machine answers restores itself.
        let server = &self.server;
        let found = match server
            .store
            .lookup(key.as_str(), crate::clock::unix_ms())
            .await
        {
            Ok(found) => found.and_then(from_stored),
            Err(e) => {
                tracing::error!(connection = self.id, "session lookup failed: {e}");
                self.command(|m| m.reply_internal_error(id));
                return;
            }
        };
        let Some(session) = found else {
            self.command(|m| m.reply_special(id, SpecialReply::SessionNotFound));
            return;
        };
        // A restore replaces the session this connection held.
        Connection::new(self.clone()).drop_session(false);
        // The one atomic check-and-insert: concurrent restores of one key
        // cannot pass the per-session limit together.
        if server.registry().attach(session.key, self.id).is_err() {
            self.command(|m| m.reply_special(id, SpecialReply::MaxSessionConnectionsReached));
            return;
        }
        let sent = self.command(|m| m.reply_session(id, &session));
        if !matches!(sent, Some(Ok(()))) {
            server.registry().detach(self.id);
            return;
        }
        lock(&self.state).session = Some(session);
    }
}

enum Work {
    Request(RequestId, Incoming),
    Signal(Incoming),
    Restore(RequestId, SessionKey),
    CloseSession(RequestId),
}

impl ServerInner {
    /// Registers a connection and tells the application.
    pub(crate) fn open(
        self: &Arc<Self>,
        id: u64,
        machine: Machine,
        remote: Option<SocketAddr>,
        spawn: Spawner,
    ) -> Arc<Conn> {
        let conn = Conn::new(self.clone(), id, machine, remote, spawn);
        self.register(&conn);
        self.handler.on_connected(&Connection::new(conn.clone()));
        conn
    }

    /// Forgets a connection that ended and tells the application.
    pub(crate) fn finish(&self, conn: &Arc<Conn>) {
        self.forget(conn.id);
        lock(&conn.state).session = None;
        self.handler.on_disconnected(&Connection::new(conn.clone()));
    }
}

impl Conn {
    /// The WebSocket machine (`None` on a stream).
    pub(crate) fn messages(&self) -> Option<&Mutex<ServerConnection>> {
        match &self.machine {
            Machine::Messages(m) => Some(m),
            Machine::Stream(_) => None,
        }
    }

    /// Waits for a command to wake a WebSocket connection's task.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }
}
