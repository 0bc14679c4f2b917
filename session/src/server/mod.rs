//! The session server: one [`proto_core::session::ServerConnection`] per
//! client, on a WebSocket ([`Server::serve`]) or on any byte stream such as
//! a weft flow ([`Server::serve_stream`]); handlers run as tasks, sessions
//! live in a [`SessionStore`] and a registry of who holds which key.
//!
//! ```no_run
//! use weft_session::{Handler, HandlerError, Incoming, Connection, Payload, Server, ServerOptions};
//! use weft_session::store::MemoryStore;
//! use std::sync::Arc;
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_request(&self, _conn: Connection, req: Incoming)
//!         -> weft_session::BoxFuture<'static, Result<Payload, HandlerError>> {
//!         Box::pin(async move { Ok(req.payload) })
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::new(Echo, Arc::new(MemoryStore::default()), ServerOptions::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! server.serve(listener).await
//! # }
//! ```

mod connection;
pub(crate) mod http;
mod stream;
mod websocket;

pub(crate) use connection::Conn;
pub use connection::Connection;

use crate::clock::Clock;
use crate::lock;
use crate::store::SessionStore;
use crate::BoxFuture;
use bytes::Bytes;
use proto_core::session::{
    InfoLimits, Payload, Registry, RegistryConfig, ServerConfig, SessionKey,
};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::Notify;

/// What a handler is given: a request's or a signal's name and payload.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The name (printable ASCII, may be empty).
    pub name: Bytes,
    /// The payload and its encoding.
    pub payload: Payload,
}

/// How a request handler failed.
#[derive(Debug)]
pub enum HandlerError {
    /// An application error the client sees: an error reply with this
    /// `code` (1 to 255 printable ASCII bytes) and `message`.
    Reply {
        /// The error code.
        code: String,
        /// A message for people.
        message: String,
    },
    /// Anything else: logged here, the client sees only "internal error".
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl HandlerError {
    /// An error reply with `code` and `message`.
    pub fn reply(code: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError::Reply {
            code: code.into(),
            message: message.into(),
        }
    }

    /// An internal failure (logged, never shown to the client).
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        HandlerError::Internal(error.into())
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Reply { code, message } => write!(f, "error reply {code}: {message}"),
            HandlerError::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for HandlerError {}

/// The application: webwire's server hooks.
///
/// Handlers run as their own tasks, concurrently; a panic in one is
/// answered as an internal error and does not take the server down.
pub trait Handler: Send + Sync + 'static {
    /// A client connected (after the accept-configuration message is queued).
    fn on_connected(&self, _conn: &Connection) {}
    /// A client's connection ended.
    fn on_disconnected(&self, _conn: &Connection) {}
    /// A signal arrived (no reply). Not called for signals that arrive
    /// after shutdown began.
    fn on_signal(&self, _conn: Connection, _signal: Incoming) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    /// A request arrived; its result is the reply.
    fn on_request(
        &self,
        conn: Connection,
        request: Incoming,
    ) -> BoxFuture<'static, Result<Payload, HandlerError>>;
}

/// The server's settings. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Each connection's protocol settings (read timeout, message sizes,
    /// pending requests, sessions on or off): see [`ServerConfig`].
    pub connection: ServerConfig,
    /// The session registry's limits: connections per session (webwire's
    /// maximum session connections) and sessions held.
    pub registry: RegistryConfig,
    /// Most client connections at once; an upgrade beyond it gets HTTP 503
    /// and a stream beyond it is closed. Default 10 000.
    pub max_connections: usize,
    /// The path WebSocket upgrades are taken on. Default `/ws`.
    pub websocket_path: String,
    /// Signal handlers running at once per connection; a signal beyond
    /// it is dropped unhandled and counted ([`Server::signals_dropped`]),
    /// so a client flooding signals cannot start unbounded work
    /// (requests are bounded by the connection's `max_pending_requests`).
    /// Default 64.
    pub max_signal_handlers: usize,
    /// What session info [`Connection::create_session`] accepts: one JSON
    /// object within these size and depth limits (the client's defaults,
    /// so a client can read back every session made). Default
    /// [`InfoLimits::default`].
    pub info_limits: InfoLimits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            connection: ServerConfig::default(),
            registry: RegistryConfig::default(),
            max_connections: 10_000,
            websocket_path: "/ws".into(),
            max_signal_handlers: 64,
            info_limits: InfoLimits::default(),
        }
    }
}

/// A file [`Server::serve`] answers plain `GET`s with.
#[derive(Debug, Clone)]
struct StaticFile {
    content_type: &'static str,
    body: Bytes,
}

/// A session server; clones share it.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.connection_count())
            .field("active_sessions", &self.active_sessions())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

pub(crate) struct ServerInner {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) options: ServerOptions,
    pub(crate) clock: Clock,
    registry: Mutex<Registry>,
    conns: Mutex<HashMap<u64, Weak<Conn>>>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    /// Handlers (requests, signals, restores, closes) running now.
    in_flight: AtomicUsize,
    idle: Notify,
    signals_dropped: AtomicU64,
    files: Mutex<HashMap<String, StaticFile>>,
}

impl Server {
    /// A server running `handler`, keeping sessions in `store`.
    pub fn new(
        handler: impl Handler,
        store: Arc<dyn SessionStore>,
        options: ServerOptions,
    ) -> Self {
        let registry = Registry::new(options.registry.clone());
        Server {
            inner: Arc::new(ServerInner {
                handler: Arc::new(handler),
                store,
                options,
                clock: Clock::new(),
                registry: Mutex::new(registry),
                conns: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                signals_dropped: AtomicU64::new(0),
                files: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Answers `GET path` with `body` (for a page and its scripts).
    pub fn add_file(&self, path: &str, content_type: &'static str, body: impl Into<Bytes>) {
        lock(&self.inner.files).insert(
            path.to_owned(),
            StaticFile {
                content_type,
                body: body.into(),
            },
        );
    }

    /// Client connections open now.
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.conns).len()
    }

    /// Sessions with at least one connection.
    pub fn active_sessions(&self) -> usize {
        lock(&self.inner.registry).session_count()
    }

    /// The connections holding session `key` now.
    pub fn session_connections(&self, key: &SessionKey) -> Vec<Connection> {
        let ids = lock(&self.inner.registry).connections(key).to_vec();
        let conns = lock(&self.inner.conns);
        ids.into_iter()
            .filter_map(|id| conns.get(&id).and_then(Weak::upgrade))
            .map(Connection::new)
            .collect()
    }

    /// Closes session `key` on every connection that holds it (each is
    /// told with a session-closed message) and in the store. Returns how
    /// many connections held it.
    pub async fn close_session(&self, key: &SessionKey) -> Result<usize, crate::store::StoreError> {
        let conns = self.session_connections(key);
        for conn in &conns {
            conn.drop_session(true);
        }
        self.inner.store.closed(key.as_str()).await?;
        Ok(conns.len())
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Signals dropped because a connection had
    /// [`max_signal_handlers`](ServerOptions::max_signal_handlers) running.
    pub fn signals_dropped(&self) -> u64 {
        self.inner.signals_dropped.load(Ordering::Relaxed)
    }

    /// Handlers running now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Graceful shutdown: new upgrades get HTTP 503, new requests the
    /// shutdown reply, late signals are dropped unhandled; returns once the
    /// last handler running has returned, after closing every connection.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        for conn in self.inner.live_connections() {
            conn.begin_shutdown();
        }
        self.inner.wait_idle().await;
        for conn in self.inner.live_connections() {
            conn.close_now();
        }
    }
}

impl ServerInner {
    /// Registers a new connection, or `None` when at the limit or
    /// shutting down.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<u64> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return None;
        }
        let conns = lock(&self.conns);
        if conns.len() >= self.options.max_connections {
            return None;
        }
        Some(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn signal_dropped(&self) {
        self.signals_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn register(&self, conn: &Arc<Conn>) {
        lock(&self.conns).insert(conn.id, Arc::downgrade(conn));
    }

    pub(crate) fn forget(&self, id: u64) {
        lock(&self.conns).remove(&id);
        lock(&self.registry).detach(id);
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    fn live_connections(&self) -> Vec<Arc<Conn>> {
        lock(&self.conns)
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    pub(crate) fn file(&self, path: &str) -> Option<(&'static str, Bytes)> {
        lock(&self.files)
            .get(path)
            .map(|f| (f.content_type, f.body.clone()))
    }

    /// Counts a handler until the guard drops (even by a panic).
    pub(crate) fn work(self: &Arc<Self>) -> WorkGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        WorkGuard {
            server: self.clone(),
        }
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One running handler, counted for graceful shutdown.
pub(crate) struct WorkGuard {
    server: Arc<ServerInner>,
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        if self.server.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.server.idle.notify_waiters();
        }
    }
}
