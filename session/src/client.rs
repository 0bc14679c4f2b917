//! The Rust client: a [`ClientConnection`] machine on a WebSocket, redialed
//! with exponential backoff, jitter and a cap; the session is restored
//! after every reconnect and the outcome reported; what the application
//! sends waits in one bounded queue.
//!
//! ```no_run
//! # async fn run() -> Result<(), weft_session::ClientError> {
//! use weft_session::{Client, ClientOptions, Payload};
//! let client = Client::connect(ClientOptions::new("ws://127.0.0.1:8080/ws"));
//! let reply = client.request("echo", Payload::utf8("hi")).await?;
//! assert_eq!(&reply.data[..], b"hi");
//! # Ok(()) }
//! ```

use crate::clock::Clock;
use crate::lock;
use crate::server::Incoming;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use proto_core::session::{
    AcceptConf, ClientConfig, ClientConnection, ClientError as Refused, ClientEvent as CoreEvent,
    CloseReason, Payload, RequestError, RequestId, SessionInfo,
};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Redial delays: `initial`, times `factor` per failed attempt, at most
/// `max`, each spread by up to `jitter` (a fraction) either way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay. Default 100 ms.
    pub initial: Duration,
    /// The cap. Default 10 s.
    pub max: Duration,
    /// Growth per attempt. Default 2.
    pub factor: f64,
    /// Spread, 0 to 1: a delay `d` becomes one in `d × (1 ± jitter)`.
    /// Default 0.3.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            factor: 2.0,
            jitter: 0.3,
        }
    }
}

impl Backoff {
    /// The delay before redial `attempt` (1 for the first), given `unit`,
    /// a random number in `[0, 1)`. Never above `max`.
    ///
    /// ```
    /// use weft_session::Backoff;
    /// use std::time::Duration;
    /// let b = Backoff { jitter: 0.0, ..Backoff::default() };
    /// assert_eq!(b.delay(1, 0.5), Duration::from_millis(100));
    /// assert_eq!(b.delay(3, 0.5), Duration::from_millis(400));
    /// assert_eq!(b.delay(60, 0.5), Duration::from_secs(10));
    /// ```
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self
            .factor
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(64) as i32);
        let base = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let spread = 1.0 + jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((base * spread).clamp(0.0, self.max.as_secs_f64()))
    }
}

/// The client's settings. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The server's WebSocket URL (`ws://host:port/ws`).
    pub url: String,
    /// The protocol settings: request timeout, pending requests, message
    /// size (see [`ClientConfig`]).
    pub connection: ClientConfig,
    /// Redial delays.
    pub backoff: Backoff,
    /// Requests and signals waiting to be sent, at most. Default 1024.
    pub max_queued: usize,
    /// At this many waiting, a [`ClientEvent::HighWater`] is reported
    /// (once, until the queue falls below it). Default 768.
    pub high_water: usize,
    /// Events kept for [`Client::next_event`]; beyond, new ones are
    /// counted in [`Client::dropped_events`] and dropped. Default 1024.
    pub max_events: usize,
    /// Restore the session after each reconnect. Default true.
    pub restore: bool,
}

impl ClientOptions {
    /// Defaults, for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        ClientOptions {
            url: url.into(),
            connection: ClientConfig::default(),
            backoff: Backoff::default(),
            max_queued: 1024,
            high_water: 768,
            max_events: 1024,
            restore: true,
        }
    }
}

/// What happened to a client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Connected; the server's configuration.
    Connected(AcceptConf),
    /// The connection ended; requests in flight failed with `Disconnected`.
    Disconnected(String),
    /// Redial `attempt` after `delay`.
    Reconnecting {
        /// 1 for the first redial after a failure.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
    },
    /// The server created a session for this client.
    SessionCreated(SessionInfo),
    /// The session was restored after a (re)connect.
    Restored(SessionInfo),
    /// Restoring failed (the session is forgotten when the server does
    /// not know it).
    RestoreFailed(RequestError),
    /// The server closed the session.
    SessionClosed,
    /// A signal from the server.
    Signal(Incoming),
    /// The outbound queue reached the high-water mark.
    HighWater(usize),
}

/// Why a request failed on the client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server's answer, or the connection's end (see [`RequestError`]).
    Request(RequestError),
    /// The outbound queue is full.
    QueueFull,
    /// The client was closed.
    Closed,
    /// The connection refused the request (too many waiting, a name that
    /// cannot be encoded, ...).
    Refused(Refused),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Request(e) => write!(f, "{e}"),
            ClientError::QueueFull => f.write_str("the client's outbound queue is full"),
            ClientError::Closed => f.write_str("the client is closed"),
            ClientError::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

type Reply = oneshot::Sender<Result<Payload, ClientError>>;

enum Command {
    Request(Bytes, Payload, Reply),
    Signal(Bytes, Payload),
    CloseSession(Reply),
}

struct Shared {
    /// The connection up now, once ready: requests go straight to it.
    live: Mutex<Option<Live>>,
    session: Mutex<Option<SessionInfo>>,
    events: tokio::sync::Mutex<mpsc::Receiver<ClientEvent>>,
    event_tx: mpsc::Sender<ClientEvent>,
    dropped: AtomicU64,
    above_high_water: AtomicBool,
    connected: AtomicBool,
}

impl Shared {
    fn emit(&self, ev: ClientEvent) {
        if self.event_tx.try_send(ev).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A reconnecting session client; clones share the connection.
#[derive(Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    options: Arc<ClientOptions>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.options.url)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    /// Starts the client: it dials at once and keeps redialing until
    /// every handle is dropped. Needs a tokio runtime.
    pub fn connect(options: ClientOptions) -> Self {
        Self::with_session(options, None)
    }

    /// Like [`connect`](Self::connect), restoring `session` (kept from an
    /// earlier run) once connected.
    pub fn with_session(options: ClientOptions, session: Option<SessionInfo>) -> Self {
        let (tx, rx) = mpsc::channel(options.max_queued.max(1));
        let (event_tx, event_rx) = mpsc::channel(options.max_events.max(1));
        let shared = Arc::new(Shared {
            live: Mutex::new(None),
            session: Mutex::new(session),
            events: tokio::sync::Mutex::new(event_rx),
            event_tx,
            dropped: AtomicU64::new(0),
            above_high_water: AtomicBool::new(false),
            connected: AtomicBool::new(false),
        });
        let options = Arc::new(options);
        tokio::spawn(run(options.clone(), shared.clone(), rx));
        Client {
            tx,
            shared,
            options,
        }
    }

    /// Sends a request and waits for its reply (or its failure: the
    /// server's error, the request timeout, a disconnect).
    pub async fn request(&self, name: &str, payload: Payload) -> Result<Payload, ClientError> {
        let (reply, answer) = oneshot::channel();
        let name = Bytes::copy_from_slice(name.as_bytes());
        // Connected and nothing queued ahead: straight onto the socket from
        // this task (no hop through the connection's task).
        let live = lock(&self.shared.live).clone();
        match live {
            Some(live) if self.queued() == 0 => live.request(name, payload, reply).await?,
            _ => self.enqueue(Command::Request(name, payload, reply))?,
        }
        // The machine times out a request once sent; this covers the time
        // spent queued while disconnected.
        match tokio::time::timeout(self.options.connection.request_timeout, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Request(RequestError::Timeout)),
        }
    }

    /// Queues a signal (no reply).
    pub fn signal(&self, name: &str, payload: Payload) -> Result<(), ClientError> {
        self.enqueue(Command::Signal(
            Bytes::copy_from_slice(name.as_bytes()),
            payload,
        ))
    }

    /// Asks the server to close this client's session.
    pub async fn close_session(&self) -> Result<(), ClientError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Command::CloseSession(reply))?;
        answer.await.map_err(|_| ClientError::Closed)?.map(|_| ())
    }

    /// The session held now (kept across reconnects).
    pub fn session(&self) -> Option<SessionInfo> {
        self.shared
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether a connection is up now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// The next event; `None` once the client has stopped.
    pub async fn next_event(&self) -> Option<ClientEvent> {
        self.shared.events.lock().await.recv().await
    }

    /// Events dropped because nobody read them.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waiting requests and signals.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    fn enqueue(&self, cmd: Command) -> Result<(), ClientError> {
        match self.tx.try_send(cmd) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(ClientError::QueueFull),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(ClientError::Closed),
        }
        let queued = self.queued();
        if queued >= self.options.high_water {
            if !self.shared.above_high_water.swap(true, Ordering::SeqCst) {
                self.shared.emit(ClientEvent::HighWater(queued));
            }
        } else {
            self.shared.above_high_water.store(false, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Draws a number in `[0, 1)` for the jitter.
fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

async fn run(options: Arc<ClientOptions>, shared: Arc<Shared>, mut rx: mpsc::Receiver<Command>) {
    let mut attempt = 0u32;
    loop {
        if attempt > 0 {
            let delay = options.backoff.delay(attempt, unit_random());
            shared.emit(ClientEvent::Reconnecting { attempt, delay });
            tokio::time::sleep(delay).await;
        }
        if rx.is_closed() {
            return;
        }
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(crate::server::http::READ_BUFFER)
            .max_message_size(Some(options.connection.max_message_size))
            .max_frame_size(Some(options.connection.max_message_size));
        let dial =
            tokio_tungstenite::connect_async_with_config(options.url.as_str(), Some(config), true);
        match dial.await {
            Ok((ws, _)) => {
                let outcome = session(&options, &shared, &mut rx, ws).await;
                shared.connected.store(false, Ordering::SeqCst);
                match outcome {
                    Ended::Stopped => return,
                    Ended::Lost(reason, was_ready) => {
                        shared.emit(ClientEvent::Disconnected(reason));
                        attempt = if was_ready { 1 } else { attempt + 1 };
                    }
                }
            }
            Err(e) => {
                shared.emit(ClientEvent::Disconnected(format!("dial failed: {e}")));
                attempt += 1;
            }
        }
    }
}

enum Ended {
    /// Every handle is gone.
    Stopped,
    /// The connection ended (why; whether it had become ready).
    Lost(String, bool),
}

enum Pending {
    Request(Reply),
    Restore,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Sink = futures_util::stream::SplitSink<Ws, WsMessage>;

/// A connection's machine and its waiting requests.
struct State {
    machine: ClientConnection,
    pending: HashMap<RequestId, Pending>,
    clock: Clock,
}

impl State {
    fn drain(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(m) = self.machine.poll_message() {
            out.push(m);
        }
        out
    }
}

/// A ready connection, shared by the connection's task and the callers.
#[derive(Clone)]
struct Live {
    state: Arc<Mutex<State>>,
    sink: Arc<tokio::sync::Mutex<Sink>>,
}

impl Live {
    /// Sends a request from the caller's task.
    async fn request(
        &self,
        name: Bytes,
        payload: Payload,
        reply: Reply,
    ) -> Result<(), ClientError> {
        let out = {
            let mut st = lock(&self.state);
            let now = st.clock.now();
            let id = st
                .machine
                .request(now, name, payload)
                .map_err(ClientError::Refused)?;
            st.pending.insert(id, Pending::Request(reply));
            st.drain()
        };
        // A failed write ends the connection: the connection's task sees
        // it and fails what is pending.
        let _ = write(&self.sink, out).await;
        Ok(())
    }
}

async fn write(sink: &tokio::sync::Mutex<Sink>, out: Vec<Bytes>) -> Result<(), ()> {
    if out.is_empty() {
        return Ok(());
    }
    let mut sink = sink.lock().await;
    for msg in out {
        sink.feed(WsMessage::Binary(msg)).await.map_err(|_| ())?;
    }
    sink.flush().await.map_err(|_| ())
}

async fn session(
    options: &ClientOptions,
    shared: &Arc<Shared>,
    rx: &mut mpsc::Receiver<Command>,
    ws: Ws,
) -> Ended {
    let clock = Clock::new();
    let (sink, mut stream) = ws.split();
    let live = Live {
        state: Arc::new(Mutex::new(State {
            machine: ClientConnection::new(clock.now(), options.connection.clone()),
            pending: HashMap::new(),
            clock,
        })),
        sink: Arc::new(tokio::sync::Mutex::new(sink)),
    };
    let mut ready = false;
    let mut why = String::from("the connection ended");
    // One timer for the connection, moved when the deadline moves.
    let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(sleep);
    let mut armed = None;
    let ended = loop {
        let (out, closed, deadline) = {
            let mut st = lock(&live.state);
            let out = st.drain();
            let st = &mut *st;
            while let Some(ev) = st.machine.poll_event() {
                match ev {
                    CoreEvent::Ready(conf) => {
                        ready = true;
                        shared.connected.store(true, Ordering::SeqCst);
                        shared.emit(ClientEvent::Connected(conf));
                        let key = lock(&shared.session).as_ref().map(|s| s.key);
                        if let (true, Some(key)) = (options.restore, key) {
                            if let Ok(id) = st.machine.restore_session(st.clock.now(), &key) {
                                st.pending.insert(id, Pending::Restore);
                            }
                        }
                        *lock(&shared.live) = Some(live.clone());
                    }
                    CoreEvent::Reply { id, result } => match st.pending.remove(&id) {
                        Some(Pending::Request(reply)) => {
                            let _ = reply.send(result.map_err(ClientError::Request));
                        }
                        Some(Pending::Restore) => restored(shared, result),
                        None => {}
                    },
                    CoreEvent::Signal { name, payload } => {
                        shared.emit(ClientEvent::Signal(Incoming { name, payload }));
                    }
                    CoreEvent::SessionCreated(info) => {
                        *lock(&shared.session) = Some(info.clone());
                        shared.emit(ClientEvent::SessionCreated(info));
                    }
                    CoreEvent::SessionClosed => {
                        *lock(&shared.session) = None;
                        shared.emit(ClientEvent::SessionClosed);
                    }
                    CoreEvent::Closed(reason) => why = reason.to_string(),
                    _ => {}
                }
            }
            let closed = st.machine.is_closed();
            if closed {
                *lock(&shared.live) = None;
                // The machine failed what was pending; anything left is ours.
                for (_, p) in st.pending.drain() {
                    if let Pending::Request(reply) = p {
                        let _ = reply.send(Err(ClientError::Request(RequestError::Disconnected)));
                    }
                }
            }
            let mut out = out;
            // An event may have queued a message (the restore after Ready).
            out.extend(st.drain());
            (
                out,
                closed,
                st.machine.poll_timeout().map(|d| clock.deadline(d)),
            )
        };
        if write(&live.sink, out).await.is_err() {
            lock(&live.state)
                .machine
                .handle_transport_closed(clock.now());
            continue;
        }
        if closed {
            break Ended::Lost(why, ready);
        }
        if deadline != armed {
            if let Some(at) = deadline {
                sleep.as_mut().reset(at);
            }
            armed = deadline;
        }
        tokio::select! {
            msg = stream.next() => {
                let mut st = lock(&live.state);
                let now = clock.now();
                match msg {
                    Some(Ok(WsMessage::Binary(data))) => {
                        let _ = st.machine.handle_message(now, data);
                    }
                    Some(Ok(WsMessage::Text(_))) => st.machine.close(now, CloseReason::TextFrame),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        why = format!("transport failed: {e}");
                        st.machine.handle_transport_closed(now);
                    }
                    None => st.machine.handle_transport_closed(now),
                }
            }
            cmd = rx.recv(), if ready => match cmd {
                None => break Ended::Stopped,
                Some(cmd) => {
                    let mut st = lock(&live.state);
                    let now = clock.now();
                    let st = &mut *st;
                    match cmd {
                        Command::Request(name, payload, reply) => {
                            match st.machine.request(now, name, payload) {
                                Ok(id) => {
                                    st.pending.insert(id, Pending::Request(reply));
                                }
                                Err(e) => {
                                    let _ = reply.send(Err(ClientError::Refused(e)));
                                }
                            }
                        }
                        Command::Signal(name, payload) => {
                            let _ = st.machine.signal(now, name, payload);
                        }
                        Command::CloseSession(reply) => match st.machine.close_session(now) {
                            Ok(id) => {
                                st.pending.insert(id, Pending::Request(reply));
                            }
                            Err(e) => {
                                let _ = reply.send(Err(ClientError::Refused(e)));
                            }
                        },
                    }
                    if shared.above_high_water.load(Ordering::SeqCst)
                        && rx.len() < options.high_water
                    {
                        shared.above_high_water.store(false, Ordering::SeqCst);
                    }
                }
            },
            _ = &mut sleep, if armed.is_some() => {
                armed = None;
                lock(&live.state).machine.handle_timeout(clock.now());
            }
        }
    };
    *lock(&shared.live) = None;
    let _ = live.sink.lock().await.close().await;
    ended
}

/// The outcome of the restore sent after Ready.
fn restored(shared: &Shared, result: Result<Payload, RequestError>) {
    let restored = result
        .and_then(|p| SessionInfo::from_json(&p.data).map_err(|_| RequestError::InternalError));
    let mut held = lock(&shared.session);
    match restored {
        Ok(info) => {
            *held = Some(info.clone());
            shared.emit(ClientEvent::Restored(info));
        }
        Err(e) => {
            if e == RequestError::SessionNotFound {
                *held = None;
            }
            shared.emit(ClientEvent::RestoreFailed(e));
        }
    }
}
