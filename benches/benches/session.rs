//! weft-session on loopback, side by side with its baselines in one run
//! (issue 12; results in BENCHMARKS.md, "Sessions: request/reply and
//! restores").
//!
//! - `request_reply_<size>_<n>client(s)`: `n` clients each doing sequential
//!   round trips of a `size` payload, counted together (elements/s = round
//!   trips per second): `weft` (a `weft_session::Server` with an echo
//!   handler and `weft_session::Client`s), `raw_ws` (a tokio-tungstenite
//!   server echoing each binary message, clients sending one and awaiting
//!   its echo) and `jsonrpsee` (its WebSocket server with an `echo` method,
//!   its WebSocket client). The payload is the same ASCII bytes for all
//!   three (a JSON string for jsonrpsee, a binary payload for the others).
//! - `restore_<n>`: a fresh `Client` connecting and restoring an existing
//!   session, `n` at a time, with each store; `lookup`: the store's
//!   `lookup` alone. Redis runs as a `redis-server` child on a free port;
//!   without `redis-server` those cases are skipped with a note.
//!
//! Everything runs on a two-worker multi-thread tokio runtime.

use benches::{bench_on, configure, RtMode, TaskGuard};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use futures::{SinkExt, StreamExt};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::server::{RpcModule, ServerHandle};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use proto_core::session::{SessionInfo, SessionKey};
use std::future::Future;
use std::io;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weft_session::store::{MemoryStore, RedbStore, RedisStore, SessionStore, StoredSession};
use weft_session::{
    BoxFuture, Client, ClientEvent, ClientOptions, Connection, Handler, HandlerError, Incoming,
    Payload, Server, ServerOptions,
};

const PAYLOADS: [(usize, &str); 2] = [(64, "64B"), (4096, "4KiB")];
const CONCURRENT_CLIENTS: usize = 100;
/// Sessions the restore benches rotate through (each restore takes the next).
const SESSIONS: usize = 256;
/// Restores in flight at once in `restore_16`.
const RESTORES_IN_FLIGHT: usize = 16;
const SESSION_INFO: &str = r#"{"user":"bench"}"#;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn payload_bytes(size: usize) -> Bytes {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs `iters` calls of `one` spread over `clients`, each client doing its
/// calls one after another; returns the clients.
async fn fan_out<C, F, Fut>(clients: Vec<C>, iters: u64, one: F) -> io::Result<Vec<C>>
where
    C: Send + 'static,
    F: Fn(C) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = io::Result<C>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            let next = next.clone();
            let one = one.clone();
            tokio::spawn(async move {
                let mut c = c;
                while next.fetch_add(1, Ordering::Relaxed) < iters {
                    c = one(c).await?;
                }
                Ok::<C, io::Error>(c)
            })
        })
        .collect();
    let mut back = Vec::with_capacity(tasks.len());
    for t in tasks {
        back.push(t.await.map_err(other)??);
    }
    Ok(back)
}

fn check_echo(got: &[u8], sent: &[u8]) -> io::Result<()> {
    if got == sent {
        Ok(())
    } else {
        Err(other("the echo differs from what was sent"))
    }
}

// ---------------------------------------------------------------------------
// weft-session
// ---------------------------------------------------------------------------

struct Echo;

impl Handler for Echo {
    fn on_request(
        &self,
        _conn: Connection,
        req: Incoming,
    ) -> BoxFuture<'static, Result<Payload, HandlerError>> {
        Box::pin(async move { Ok(req.payload) })
    }
}

/// Serves `server` on a loopback port; returns its `ws://.../ws` URL.
async fn serve_weft(server: &Server, guard: &mut TaskGuard) -> io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let s = server.clone();
    guard.push(tokio::spawn(async move {
        let _ = s.serve(listener).await;
    }));
    Ok(format!("ws://{addr}/ws"))
}

struct WeftRr {
    clients: Vec<Client>,
    payload: Bytes,
    _server: Server,
    _guard: TaskGuard,
}

async fn setup_weft_rr(clients: usize, size: usize) -> io::Result<WeftRr> {
    let server = Server::new(Echo, Arc::new(MemoryStore::new()), ServerOptions::default());
    let mut guard = TaskGuard::default();
    let url = serve_weft(&server, &mut guard).await?;
    let payload = payload_bytes(size);
    let mut all = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = Client::connect(ClientOptions::new(url.clone()));
        // The first request waits until the client is connected.
        let reply = client
            .request("echo", Payload::binary(payload.clone()))
            .await
            .map_err(other)?;
        check_echo(&reply.data, &payload)?;
        all.push(client);
    }
    Ok(WeftRr {
        clients: all,
        payload,
        _server: server,
        _guard: guard,
    })
}

async fn weft_rr(mut f: WeftRr, iters: u64) -> io::Result<WeftRr> {
    let payload = f.payload.clone();
    f.clients = fan_out(f.clients, iters, move |c: Client| {
        let payload = payload.clone();
        async move {
            let reply = c
                .request("echo", Payload::binary(payload.clone()))
                .await
                .map_err(other)?;
            check_echo(&reply.data, &payload)?;
            Ok(c)
        }
    })
    .await?;
    Ok(f)
}

// ---------------------------------------------------------------------------
// Raw tokio-tungstenite echo
// ---------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct RawRr {
    clients: Vec<Ws>,
    payload: Bytes,
    _guard: TaskGuard,
}

async fn setup_raw_rr(clients: usize, size: usize) -> io::Result<RawRr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut guard = TaskGuard::default();
    guard.push(tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            // As weft-session's server does.
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if let WsMessage::Binary(_) = msg {
                        if ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    }));
    let payload = payload_bytes(size);
    let mut all = Vec::with_capacity(clients);
    for _ in 0..clients {
        // The same dial as weft-session's client.
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .map_err(other)?;
        all.push(ws);
    }
    Ok(RawRr {
        clients: all,
        payload,
        _guard: guard,
    })
}

async fn raw_rr(mut f: RawRr, iters: u64) -> io::Result<RawRr> {
    let payload = f.payload.clone();
    f.clients = fan_out(f.clients, iters, move |mut ws: Ws| {
        let payload = payload.clone();
        async move {
            ws.send(WsMessage::Binary(payload.clone()))
                .await
                .map_err(other)?;
            loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Binary(got))) => {
                        check_echo(&got, &payload)?;
                        return Ok(ws);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(other(e)),
                    None => return Err(other("the echo server closed")),
                }
            }
        }
    })
    .await?;
    Ok(f)
}

// ---------------------------------------------------------------------------
// jsonrpsee over WebSocket
// ---------------------------------------------------------------------------

struct JsonRr {
    clients: Vec<Arc<WsClient>>,
    payload: Arc<str>,
    handle: ServerHandle,
}

impl Drop for JsonRr {
    fn drop(&mut self) {
        let _ = self.handle.stop();
    }
}

async fn setup_json_rr(clients: usize, size: usize) -> io::Result<JsonRr> {
    let config = jsonrpsee::server::ServerConfig::builder()
        .max_connections(10_000)
        .build();
    let server = jsonrpsee::server::Server::builder()
        .set_config(config)
        .build("127.0.0.1:0")
        .await?;
    let addr = server.local_addr()?;
    let mut module = RpcModule::new(());
    module
        .register_method("echo", |params, _, _| params.one::<String>())
        .map_err(other)?;
    let handle = server.start(module);
    let payload: Arc<str> = String::from_utf8(payload_bytes(size).to_vec())
        .map_err(other)?
        .into();
    let mut all = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = WsClientBuilder::default()
            .build(format!("ws://{addr}"))
            .await
            .map_err(other)?;
        all.push(Arc::new(client));
    }
    Ok(JsonRr {
        clients: all,
        payload,
        handle,
    })
}

async fn json_rr(mut f: JsonRr, iters: u64) -> io::Result<JsonRr> {
    let payload = f.payload.clone();
    let clients = std::mem::take(&mut f.clients);
    f.clients = fan_out(clients, iters, move |c: Arc<WsClient>| {
        let payload = payload.clone();
        async move {
            let got: String = c
                .request("echo", jsonrpsee::rpc_params![&*payload])
                .await
                .map_err(other)?;
            check_echo(got.as_bytes(), payload.as_bytes())?;
            Ok(c)
        }
    })
    .await?;
    Ok(f)
}

fn request_reply(c: &mut Criterion) {
    for (size, size_name) in PAYLOADS {
        for clients in [1, CONCURRENT_CLIENTS] {
            let unit = if clients == 1 { "client" } else { "clients" };
            let mut g = c.benchmark_group(format!("request_reply_{size_name}_{clients}{unit}"));
            configure(&mut g);
            g.throughput(Throughput::Elements(1));
            bench_on(
                &mut g,
                RtMode::Mt,
                "weft",
                || setup_weft_rr(clients, size),
                weft_rr,
            );
            bench_on(
                &mut g,
                RtMode::Mt,
                "raw_ws",
                || setup_raw_rr(clients, size),
                raw_rr,
            );
            bench_on(
                &mut g,
                RtMode::Mt,
                "jsonrpsee",
                || setup_json_rr(clients, size),
                json_rr,
            );
            g.finish();
        }
    }
}

// ---------------------------------------------------------------------------
// Stores and restores
// ---------------------------------------------------------------------------

/// A `redis-server` child on a free loopback port, killed on drop.
struct RedisChild {
    child: Child,
    url: String,
}

impl Drop for RedisChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Option<RedisChild> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("note: redis-server could not be started ({e}); Redis cases skipped");
            return None;
        }
    };
    let redis = RedisChild {
        child,
        url: format!("redis://127.0.0.1:{port}/"),
    };
    // Ready once it accepts connections.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(redis);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("note: redis-server did not start listening; Redis cases skipped");
    None
}

#[derive(Clone, Copy, PartialEq)]
enum StoreKind {
    Memory,
    Redb,
    Redis,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Redb => "redb",
            StoreKind::Redis => "redis",
        }
    }
}

/// A store holding `SESSIONS` sessions, and their infos as a client keeps them.
struct Stored {
    store: Arc<dyn SessionStore>,
    sessions: Vec<SessionInfo>,
    _dir: Option<tempfile::TempDir>,
}

async fn open_store(kind: StoreKind, redis_url: Option<&str>) -> io::Result<Stored> {
    let mut dir = None;
    let store: Arc<dyn SessionStore> = match kind {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Redb => {
            let d = tempfile::tempdir()?;
            let store = RedbStore::open(d.path()).await.map_err(other)?;
            dir = Some(d);
            Arc::new(store)
        }
        StoreKind::Redis => {
            let url = redis_url.ok_or_else(|| other("no redis"))?;
            // A prefix per fixture: the benches never see each other's keys.
            static FIXTURES: AtomicU64 = AtomicU64::new(0);
            let prefix = format!("bench:{}:", FIXTURES.fetch_add(1, Ordering::Relaxed));
            Arc::new(RedisStore::connect(url, &prefix).await.map_err(other)?)
        }
    };
    let now = unix_ms();
    let mut sessions = Vec::with_capacity(SESSIONS);
    for n in 0..SESSIONS {
        let mut random = [0u8; 48];
        random[..8].copy_from_slice(&(n as u64).to_le_bytes());
        random[8..16].copy_from_slice(&now.to_le_bytes());
        let key = SessionKey::from_random(random);
        store
            .created(&StoredSession::new(
                key.as_str().to_owned(),
                now,
                Some(SESSION_INFO.into()),
            ))
            .await
            .map_err(other)?;
        sessions.push(SessionInfo {
            key,
            creation_ms: now,
            last_lookup_ms: now,
            info: Some(Bytes::from_static(SESSION_INFO.as_bytes())),
        });
    }
    Ok(Stored {
        store,
        sessions,
        _dir: dir,
    })
}

struct Lookup {
    stored: Stored,
    next: usize,
}

async fn lookups(mut f: Lookup, iters: u64) -> io::Result<Lookup> {
    for _ in 0..iters {
        let key = f.stored.sessions[f.next % SESSIONS].key;
        f.next += 1;
        f.stored
            .store
            .lookup(key.as_str(), unix_ms())
            .await
            .map_err(other)?
            .ok_or_else(|| other("a stored session was not found"))?;
    }
    Ok(f)
}

struct Restores {
    url: String,
    sessions: Arc<Vec<SessionInfo>>,
    next: Arc<AtomicU64>,
    _stored: Stored,
    _server: Server,
    _guard: TaskGuard,
}

async fn setup_restores(kind: StoreKind, redis_url: Option<String>) -> io::Result<Restores> {
    let stored = open_store(kind, redis_url.as_deref()).await?;
    let server = Server::new(Echo, stored.store.clone(), ServerOptions::default());
    let mut guard = TaskGuard::default();
    let url = serve_weft(&server, &mut guard).await?;
    Ok(Restores {
        url,
        sessions: Arc::new(stored.sessions.clone()),
        next: Arc::new(AtomicU64::new(0)),
        _stored: stored,
        _server: server,
        _guard: guard,
    })
}

/// A fresh client connects and restores the next stored session.
async fn restore_one(url: String, sessions: Arc<Vec<SessionInfo>>, n: u64) -> io::Result<()> {
    let info = sessions[n as usize % sessions.len()].clone();
    let client = Client::with_session(ClientOptions::new(url), Some(info));
    loop {
        match client.next_event().await {
            Some(ClientEvent::Restored(_)) => return Ok(()),
            Some(ClientEvent::RestoreFailed(e)) => return Err(other(e)),
            Some(_) => {}
            None => return Err(other("the client stopped")),
        }
    }
}

async fn restores(f: Restores, iters: u64, in_flight: usize) -> io::Result<Restores> {
    let workers: Vec<()> = vec![(); in_flight];
    let url = f.url.clone();
    let sessions = f.sessions.clone();
    let next = f.next.clone();
    fan_out(workers, iters, move |()| {
        let n = next.fetch_add(1, Ordering::Relaxed);
        restore_one(url.clone(), sessions.clone(), n)
    })
    .await?;
    Ok(f)
}

fn stores(c: &mut Criterion) {
    let redis = start_redis();
    let kinds: Vec<StoreKind> = [StoreKind::Memory, StoreKind::Redb, StoreKind::Redis]
        .into_iter()
        .filter(|k| *k != StoreKind::Redis || redis.is_some())
        .collect();
    let redis_url = redis.as_ref().map(|r| r.url.clone());

    let mut g = c.benchmark_group("lookup");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    for &kind in &kinds {
        let url = redis_url.clone();
        bench_on(
            &mut g,
            RtMode::Mt,
            kind.name(),
            || async move {
                Ok(Lookup {
                    stored: open_store(kind, url.as_deref()).await?,
                    next: 0,
                })
            },
            lookups,
        );
    }
    g.finish();

    for in_flight in [1, RESTORES_IN_FLIGHT] {
        let mut g = c.benchmark_group(format!("restore_{in_flight}"));
        configure(&mut g);
        g.throughput(Throughput::Elements(1));
        for &kind in &kinds {
            restore_case(&mut g, kind, redis_url.clone(), in_flight);
        }
        g.finish();
    }
    drop(redis);
}

fn restore_case(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    kind: StoreKind,
    redis_url: Option<String>,
    in_flight: usize,
) {
    bench_on(
        g,
        RtMode::Mt,
        kind.name(),
        || setup_restores(kind, redis_url),
        move |f, iters| restores(f, iters, in_flight),
    );
}

criterion_group!(session, request_reply, stores);
criterion_main!(session);
