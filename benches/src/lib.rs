//! Shared harness for the `weft` criterion benches.
//!
//! Everything here runs over real loopback TCP (`127.0.0.1` only), with the
//! client and the server living in the same process and the same tokio
//! runtime. The benches in `benches/loopback.rs` time the *client* side of
//! each workload; the server side runs in background tasks spawned by the
//! `setup_*` functions.
//!
//! # Layout
//!
//! * Runtime builders ([`RtMode`], [`build_runtime`]) and the loopback
//!   helpers ([`loopback_listener`], [`tcp_pair`]).
//! * Transport-agnostic client/server halves of every workload, generic over
//!   tokio's `AsyncRead + AsyncWrite` ([`client_bulk`], [`client_open_close`],
//!   [`client_pingpong`], [`serve`]). A multiplexer only has to hand out
//!   streams; the bytes on each stream are identical for every baseline.
//! * [`tls`]: weft's secure layer next to TLS 1.3 (rustls), for
//!   `benches/tls_compare.rs`.
//! * One module per baseline ([`raw_tcp`], [`yamux_mux`]). Each module has the
//!   same shape, which a `weft` module should mirror:
//!
//! ```text
//! pub struct Bulk;      pub async fn setup_bulk(flows: usize) -> io::Result<Bulk>;
//!                       pub async fn bulk(f: &mut Bulk, total: usize) -> io::Result<()>;
//! pub struct OpenRate;  pub async fn setup_open_rate() -> io::Result<OpenRate>;
//!                       pub async fn open_rate(f: &mut OpenRate, streams: usize) -> io::Result<()>;
//! pub struct PingPong;  pub async fn setup_pingpong() -> io::Result<PingPong>;
//!                       pub async fn pingpong(f: &mut PingPong, round_trips: usize) -> io::Result<()>;
//! ```
//!
//! All fixtures are `Send + 'static` (the bench moves them into a spawned task
//! so that in `mt` mode the client also runs on a runtime worker), and all
//! `setup_*`/workload futures are `Send`. `setup_*` must be awaited inside a
//! tokio runtime (it spawns the server tasks); dropping a fixture aborts its
//! server tasks.
//!
//! # Wire protocol on each stream (same for every baseline)
//!
//! * bulk: per iteration the client writes an 8-byte big-endian length `n`,
//!   then `n` payload bytes in [`BULK_WRITE`]-sized writes; the server reads
//!   and discards exactly `n` bytes and answers with a 1-byte ack. The client
//!   returns once it has read the ack, i.e. once the server has read
//!   everything. Streams stay open across iterations (stream setup is not
//!   timed; flow-control windows are warm).
//! * open/close: the client opens a fresh stream, writes 1 byte and closes its
//!   write side; the server reads to EOF (exactly 1 byte) and closes; the
//!   client reads to EOF, so the full open/close handshake is inside the timed
//!   region. Streams are opened one after another (no pipelining), so this is
//!   a latency-bound "streams per second" number.
//! * pingpong: the client writes [`PING_SIZE`] bytes and reads them back; the
//!   server echoes whatever it reads.

pub mod tls;

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Bytes moved per `bulk` iteration in the benches (64 MiB).
pub const BULK_TOTAL: usize = 64 * 1024 * 1024;
/// Size of each client write in the bulk workloads (64 KiB).
pub const BULK_WRITE: usize = 64 * 1024;
/// Number of concurrent streams in `bulk_100flows`.
pub const BULK_FLOWS: usize = 100;
/// Message size of the pingpong workload.
pub const PING_SIZE: usize = 64;
/// `open_rate` keeps this many open + 1 byte + close exchanges in flight
/// (every baseline the same), so it measures a rate, not one round trip.
pub const OPEN_CONCURRENCY: usize = 16;

/// Runs `n` copies of `one()` with at most [`OPEN_CONCURRENCY`] in flight.
pub async fn run_concurrent<F, Fut>(n: usize, mut one: F) -> io::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = io::Result<()>>,
{
    use futures::stream::{FuturesUnordered, StreamExt as _};
    let mut in_flight = FuturesUnordered::new();
    let mut started = 0;
    while started < n || !in_flight.is_empty() {
        while started < n && in_flight.len() < OPEN_CONCURRENCY {
            in_flight.push(one());
            started += 1;
        }
        if let Some(r) = in_flight.next().await {
            r?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Runtimes
// ---------------------------------------------------------------------------

/// Which tokio runtime flavour a bench runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtMode {
    /// `current_thread` runtime: client and server share one thread.
    St,
    /// `multi_thread` runtime with 2 workers.
    Mt,
}

impl RtMode {
    /// Both modes, in the order the benches run them.
    pub const ALL: [RtMode; 2] = [RtMode::St, RtMode::Mt];

    /// Short name used in benchmark ids (`st` / `mt`).
    pub fn name(self) -> &'static str {
        match self {
            RtMode::St => "st",
            RtMode::Mt => "mt",
        }
    }
}

/// Builds the tokio runtime for `mode` (I/O and time drivers enabled).
pub fn build_runtime(mode: RtMode) -> Runtime {
    let mut builder = match mode {
        RtMode::St => tokio::runtime::Builder::new_current_thread(),
        RtMode::Mt => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    };
    builder
        .enable_all()
        .build()
        .expect("failed to build tokio runtime")
}

/// Runs `work(fixture)` inside a task spawned on `rt` and returns the fixture
/// (handed back by `work`) together with the wall-clock time the task took,
/// measured from the task's first poll.
///
/// Spawning (rather than `block_on` directly) makes the client run on a
/// runtime worker in `mt` mode instead of on the bench's main thread. In `st`
/// mode `block_on` drives the spawned task and the server tasks on the
/// calling thread.
pub fn time_on_runtime<T, F, Fut>(rt: &Runtime, fixture: T, work: F) -> (T, Duration)
where
    T: Send + 'static,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = io::Result<T>> + Send + 'static,
{
    let fut = work(fixture);
    let task = rt.spawn(async move {
        let start = Instant::now();
        let fixture = fut.await.expect("workload failed");
        (fixture, start.elapsed())
    });
    rt.block_on(task).expect("workload task panicked")
}

/// Registers one benchmark `<group>/<mode>/<contender>`.
///
/// `setup` runs once on a fresh runtime of flavour `mode` (not timed); then for
/// every criterion sample `work(fixture, iters)` runs inside a task spawned on
/// that runtime and must perform `iters` iterations and hand the fixture back.
pub fn bench_on<T, S, SF, W, WF>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    mode: RtMode,
    contender: &str,
    setup: S,
    mut work: W,
) where
    T: Send + 'static,
    S: FnOnce() -> SF,
    SF: Future<Output = io::Result<T>>,
    W: FnMut(T, u64) -> WF,
    WF: Future<Output = io::Result<T>> + Send + 'static,
{
    let rt = build_runtime(mode);
    let mut fixture = Some(rt.block_on(setup()).expect("bench setup failed"));
    g.bench_function(format!("{}/{contender}", mode.name()), |b| {
        b.iter_custom(|iters| {
            let f = fixture.take().expect("fixture lost by a failed sample");
            let (f, elapsed) = time_on_runtime(&rt, f, |f| work(f, iters));
            fixture = Some(f);
            elapsed
        })
    });
    // Drop the fixture (aborting its server tasks) inside the runtime, then the runtime.
    rt.block_on(async move { drop(fixture) });
    drop(rt);
}

/// The sampling every loopback bench uses: 10 samples, 1 s warm-up, 3 s.
pub fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

// ---------------------------------------------------------------------------
// Loopback helpers
// ---------------------------------------------------------------------------

/// Binds a listener on `127.0.0.1` with an OS-assigned port.
pub async fn loopback_listener() -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Returns a connected `(client, server)` pair of loopback TCP streams, both
/// with `TCP_NODELAY` set.
pub async fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let (listener, addr) = loopback_listener().await?;
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let client = client?;
    let (server, _) = accepted?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

/// Aborts the wrapped tasks when dropped (used for fixture server tasks).
#[derive(Debug, Default)]
pub struct TaskGuard(Vec<JoinHandle<()>>);

impl TaskGuard {
    /// Adds a task to abort on drop.
    pub fn push(&mut self, handle: JoinHandle<()>) {
        self.0.push(handle);
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Splits `total` bytes over `flows` flows as evenly as possible.
pub fn split_even(total: usize, flows: usize) -> impl Iterator<Item = usize> {
    let flows = flows.max(1);
    let (base, rem) = (total / flows, total % flows);
    (0..flows).map(move |i| base + usize::from(i < rem))
}

// ---------------------------------------------------------------------------
// Transport-agnostic workload halves
// ---------------------------------------------------------------------------

/// Runs `one(stream, bytes)` on every stream at once, one task each (so
/// `mt` mode can use both workers), with `total` bytes split evenly, and
/// puts the streams back; the first error wins.
pub async fn bulk_split<S, F, Fut>(streams: &mut Vec<S>, total: usize, one: F) -> io::Result<()>
where
    S: Send + 'static,
    F: Fn(S, usize) -> Fut,
    Fut: std::future::Future<Output = (S, io::Result<()>)> + Send + 'static,
{
    let n = streams.len();
    let tasks: Vec<_> = streams
        .drain(..)
        .zip(split_even(total, n))
        .map(|(s, k)| tokio::spawn(one(s, k)))
        .collect();
    let mut result = Ok(());
    for t in tasks {
        let (s, r) = t.await.map_err(io::Error::other)?;
        streams.push(s);
        if result.is_ok() {
            result = r;
        }
    }
    result
}

/// What the server does with every stream / connection it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerRole {
    /// Repeatedly: read an 8-byte big-endian length, discard that many bytes,
    /// reply with a 1-byte ack. Ends at EOF.
    Bulk,
    /// Read to EOF, then close.
    OpenClose,
    /// Echo everything back until EOF.
    Echo,
}

/// Reads one batch of the bulk protocol (an 8-byte big-endian length, then
/// that many bytes) through `buf`, handing each piece read to `seen`; the
/// batch's length, or `None` at a clean EOF before it.
pub async fn read_batch<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut [u8],
    mut seen: impl FnMut(&[u8]),
) -> io::Result<Option<u64>> {
    let mut hdr = [0u8; 8];
    match s.read_exact(&mut hdr).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let total = u64::from_be_bytes(hdr);
    let mut left = total;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = s.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        seen(&buf[..n]);
        left -= n as u64;
    }
    Ok(Some(total))
}

/// Server half of every workload, selected by `role`. Returns at EOF.
pub async fn serve<S>(role: ServerRole, mut s: S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match role {
        ServerRole::Bulk => {
            let mut buf = vec![0u8; BULK_WRITE];
            while read_batch(&mut s, &mut buf, |_| {}).await?.is_some() {
                s.write_all(&[1]).await?;
                s.flush().await?;
            }
        }
        ServerRole::OpenClose => {
            let mut buf = [0u8; 16];
            let mut got = 0usize;
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            if got != 1 {
                return Err(io::Error::other(format!("open/close: got {got} bytes")));
            }
        }
        ServerRole::Echo => {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await?;
                s.flush().await?;
            }
        }
    }
    s.shutdown().await
}

/// Client half of one bulk transfer on one stream: sends the length header and
/// `total` payload bytes in `write_size` writes, then waits for the server's
/// 1-byte ack (sent after it has read every byte).
pub async fn client_bulk<S>(s: &mut S, total: usize, write_size: usize) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    static PAYLOAD: [u8; BULK_WRITE] = [0xA5; BULK_WRITE];
    let write_size = write_size.clamp(1, BULK_WRITE);
    s.write_all(&(total as u64).to_be_bytes()).await?;
    let mut left = total;
    while left > 0 {
        let k = left.min(write_size);
        s.write_all(&PAYLOAD[..k]).await?;
        left -= k;
    }
    s.flush().await?;
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack).await?;
    Ok(())
}

/// Client half of one open/close on an already opened stream: write 1 byte,
/// close the write side, read to EOF (the server's close).
pub async fn client_open_close<S>(mut s: S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    s.write_all(b"o").await?;
    s.shutdown().await?;
    let mut buf = [0u8; 16];
    loop {
        if s.read(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Client half of `round_trips` pingpongs of [`PING_SIZE`] bytes.
pub async fn client_pingpong<S>(s: &mut S, round_trips: usize) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let out = [0x5Au8; PING_SIZE];
    let mut back = [0u8; PING_SIZE];
    for _ in 0..round_trips {
        s.write_all(&out).await?;
        s.flush().await?;
        s.read_exact(&mut back).await?;
        if back != out {
            return Err(io::Error::other("pingpong: echo mismatch"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Baseline: raw tokio TCP
// ---------------------------------------------------------------------------

/// Baseline: plain `tokio::net::TcpStream`, no multiplexing.
///
/// Raw TCP has no streams, so:
/// * `bulk` with any `flows` uses ONE TCP connection carrying the same total
///   number of bytes (the `bulk_100flows/*/raw_tcp` number is therefore the
///   single-connection ceiling, not 100 connections);
/// * `open_rate` opens a NEW TCP connection per "stream" (connect + 1 byte +
///   close, server reads to EOF and closes), so connection establishment is
///   the measured work.
///
/// All sockets have `TCP_NODELAY` set.
///
/// `open_rate` caveat: the client closes first, so every connection leaves a
/// client-side TIME_WAIT entry (60 s). A full bench run fills the whole
/// ephemeral port range (~28k entries with the default 32768-60999); connects
/// keep working only because Linux's default `net.ipv4.tcp_tw_reuse = 2`
/// reuses TIME_WAIT ports for loopback after `tcp_tw_reuse_delay` (1 s). That
/// caps this baseline at roughly 28k connections/s before `connect` fails
/// with `EADDRNOTAVAIL`.
pub mod raw_tcp {
    use super::*;

    /// Fixture for `bulk_1flow` / `bulk_100flows`: one established connection.
    #[derive(Debug)]
    pub struct Bulk {
        conn: TcpStream,
        _server: TaskGuard,
    }

    /// Connects once; `flows` is ignored (raw TCP has no streams; see module
    /// docs).
    pub async fn setup_bulk(_flows: usize) -> io::Result<Bulk> {
        let (conn, server) = tcp_pair().await?;
        let mut guard = TaskGuard::default();
        guard.push(tokio::spawn(async move {
            let _ = serve(ServerRole::Bulk, server).await;
        }));
        Ok(Bulk {
            conn,
            _server: guard,
        })
    }

    /// Sends `total` bytes over the single connection and waits for the ack.
    pub async fn bulk(f: &mut Bulk, total: usize) -> io::Result<()> {
        client_bulk(&mut f.conn, total, BULK_WRITE).await
    }

    /// Fixture for `open_rate`: a listening server with an accept loop that
    /// spawns one task per connection.
    #[derive(Debug)]
    pub struct OpenRate {
        addr: SocketAddr,
        _server: TaskGuard,
    }

    /// Binds the loopback listener and spawns the accept loop.
    pub async fn setup_open_rate() -> io::Result<OpenRate> {
        let (listener, addr) = loopback_listener().await?;
        let mut guard = TaskGuard::default();
        guard.push(tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = serve(ServerRole::OpenClose, s).await;
                });
            }
        }));
        Ok(OpenRate {
            addr,
            _server: guard,
        })
    }

    /// `streams` connect + 1 byte + close + wait-for-server-close, [`OPEN_CONCURRENCY`] at a time.
    pub async fn open_rate(f: &mut OpenRate, streams: usize) -> io::Result<()> {
        let addr = f.addr;
        run_concurrent(streams, || async move {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            client_open_close(s).await
        })
        .await
    }

    /// Fixture for `pingpong`: one established connection to an echo server.
    #[derive(Debug)]
    pub struct PingPong {
        conn: TcpStream,
        _server: TaskGuard,
    }

    /// Connects once and spawns the echo server.
    pub async fn setup_pingpong() -> io::Result<PingPong> {
        let (conn, server) = tcp_pair().await?;
        let mut guard = TaskGuard::default();
        guard.push(tokio::spawn(async move {
            let _ = serve(ServerRole::Echo, server).await;
        }));
        Ok(PingPong {
            conn,
            _server: guard,
        })
    }

    /// `round_trips` sequential 64-byte round trips.
    pub async fn pingpong(f: &mut PingPong, round_trips: usize) -> io::Result<()> {
        client_pingpong(&mut f.conn, round_trips).await
    }
}

// ---------------------------------------------------------------------------
// Baseline: yamux 0.14
// ---------------------------------------------------------------------------

/// Baseline: `yamux` 0.14 with the default `yamux::Config`, over tokio
/// `TcpStream`s (with `TCP_NODELAY`) adapted through `tokio_util::compat`.
///
/// yamux 0.14's `Connection` has no cloneable control handle: it must be
/// polled (`poll_next_inbound`) continuously by one owner for *any* I/O to
/// happen, and outbound streams are created with `poll_new_outbound` on the
/// same `&mut Connection`. So each side runs one driver task owning the
/// `Connection`; the client driver also serves "open a stream" requests sent
/// over a channel by [`yamux_mux::YamuxClient::open`]. The server driver spawns one task
/// per inbound stream running [`serve`].
pub mod yamux_mux {
    use super::*;

    use futures::StreamExt as _;
    use std::task::Poll;
    use tokio::sync::{mpsc, oneshot};
    use tokio_util::compat::{
        Compat, FuturesAsyncReadCompatExt as _, TokioAsyncReadCompatExt as _,
    };

    /// A yamux stream usable with tokio's I/O traits.
    pub type YamuxStream = Compat<yamux::Stream>;

    type OpenReply = oneshot::Sender<yamux::Result<yamux::Stream>>;

    fn to_io(e: yamux::ConnectionError) -> io::Error {
        io::Error::other(e)
    }

    /// Client side of one yamux connection: a handle to the driver task.
    #[derive(Debug)]
    pub struct YamuxClient {
        open_tx: mpsc::UnboundedSender<OpenReply>,
        _tasks: TaskGuard,
    }

    impl YamuxClient {
        /// Opens a new outbound stream. Note that yamux only tells the peer
        /// about it (SYN) with the first frame written on it.
        pub async fn open(&self) -> io::Result<YamuxStream> {
            let (tx, rx) = oneshot::channel();
            self.open_tx
                .send(tx)
                .map_err(|_| io::Error::other("yamux client driver gone"))?;
            let stream = rx
                .await
                .map_err(|_| io::Error::other("yamux client driver gone"))?
                .map_err(to_io)?;
            Ok(stream.compat())
        }
    }

    /// Drives a client-mode `Connection`: serves open requests via
    /// `poll_new_outbound` and keeps the connection's I/O going via
    /// `poll_next_inbound` (inbound streams are not expected and are dropped).
    /// When every `YamuxClient` handle is gone, closes the connection.
    async fn drive_client(
        mut conn: yamux::Connection<Compat<TcpStream>>,
        mut open_rx: mpsc::UnboundedReceiver<OpenReply>,
    ) {
        let mut pending: Option<OpenReply> = None;
        let mut closing = false;
        futures::future::poll_fn(|cx| loop {
            if closing {
                return conn.poll_close(cx).map(|_| ());
            }
            if pending.is_none() {
                match open_rx.poll_recv(cx) {
                    Poll::Ready(Some(reply)) => pending = Some(reply),
                    Poll::Ready(None) => {
                        closing = true;
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            if let Some(reply) = pending.take() {
                // Pending only while 256 outbound streams await the peer's ACK
                // (waker is registered); an Err (e.g. TooManyStreams, >= 512
                // live streams) is handed back to the opener.
                match conn.poll_new_outbound(cx) {
                    Poll::Ready(res) => {
                        let _ = reply.send(res);
                        continue;
                    }
                    Poll::Pending => pending = Some(reply),
                }
            }
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(_unexpected_inbound))) => continue,
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        })
        .await
    }

    /// Drives a server-mode `Connection`, spawning `serve(role, stream)` for
    /// every inbound stream until the connection ends.
    async fn drive_server(mut conn: yamux::Connection<Compat<TcpStream>>, role: ServerRole) {
        let mut inbound = futures::stream::poll_fn(move |cx| conn.poll_next_inbound(cx));
        while let Some(Ok(stream)) = inbound.next().await {
            tokio::spawn(async move {
                let _ = serve(role, stream.compat()).await;
            });
        }
    }

    /// Sets up one loopback TCP connection with a yamux client on one end and
    /// a yamux server (serving every inbound stream with `role`) on the other.
    pub async fn connect(role: ServerRole) -> io::Result<YamuxClient> {
        let (client_tcp, server_tcp) = tcp_pair().await?;
        let client = yamux::Connection::new(
            client_tcp.compat(),
            yamux::Config::default(),
            yamux::Mode::Client,
        );
        let server = yamux::Connection::new(
            server_tcp.compat(),
            yamux::Config::default(),
            yamux::Mode::Server,
        );
        let (open_tx, open_rx) = mpsc::unbounded_channel();
        let mut tasks = TaskGuard::default();
        tasks.push(tokio::spawn(drive_server(server, role)));
        tasks.push(tokio::spawn(drive_client(client, open_rx)));
        Ok(YamuxClient {
            open_tx,
            _tasks: tasks,
        })
    }

    /// Fixture for `bulk_1flow` / `bulk_100flows`: one yamux connection with
    /// `flows` long-lived streams.
    #[derive(Debug)]
    pub struct Bulk {
        streams: Vec<YamuxStream>,
        // Declared last so streams drop before the driver tasks are aborted.
        _client: YamuxClient,
    }

    /// Connects and opens `flows` streams (not timed).
    pub async fn setup_bulk(flows: usize) -> io::Result<Bulk> {
        let client = connect(ServerRole::Bulk).await?;
        let mut streams = Vec::with_capacity(flows);
        for _ in 0..flows.max(1) {
            streams.push(client.open().await?);
        }
        Ok(Bulk {
            streams,
            _client: client,
        })
    }

    /// Sends `total` bytes split evenly over the fixture's streams, one
    /// spawned task per stream (so `mt` mode can use both workers), and
    /// returns when every stream's ack has arrived.
    pub async fn bulk(f: &mut Bulk, total: usize) -> io::Result<()> {
        if f.streams.len() == 1 {
            return client_bulk(&mut f.streams[0], total, BULK_WRITE).await;
        }
        bulk_split(&mut f.streams, total, |mut s, k| async move {
            let r = client_bulk(&mut s, k, BULK_WRITE).await;
            (s, r)
        })
        .await
    }

    /// Fixture for `open_rate`: one yamux connection.
    #[derive(Debug)]
    pub struct OpenRate {
        client: YamuxClient,
    }

    /// Connects (not timed).
    pub async fn setup_open_rate() -> io::Result<OpenRate> {
        Ok(OpenRate {
            client: connect(ServerRole::OpenClose).await?,
        })
    }

    /// `streams` open + 1 byte + close + wait-for-server-close, [`OPEN_CONCURRENCY`] at a time.
    pub async fn open_rate(f: &mut OpenRate, streams: usize) -> io::Result<()> {
        let client = &f.client;
        run_concurrent(streams, || async move {
            client_open_close(client.open().await?).await
        })
        .await
    }

    /// Fixture for `pingpong`: one yamux connection with one stream.
    #[derive(Debug)]
    pub struct PingPong {
        stream: YamuxStream,
        _client: YamuxClient,
    }

    /// Connects and opens the stream (not timed).
    pub async fn setup_pingpong() -> io::Result<PingPong> {
        let client = connect(ServerRole::Echo).await?;
        let stream = client.open().await?;
        Ok(PingPong {
            stream,
            _client: client,
        })
    }

    /// `round_trips` sequential 64-byte round trips on one stream.
    pub async fn pingpong(f: &mut PingPong, round_trips: usize) -> io::Result<()> {
        client_pingpong(&mut f.stream, round_trips).await
    }
}

// ---------------------------------------------------------------------------
// weft over loopback TCP through adapter-tokio
// ---------------------------------------------------------------------------

/// weft's mux (native profile, plaintext) through `adapter-tokio`, default
/// `Config`, flows used through tokio's `AsyncRead`/`AsyncWrite` exactly as
/// the baselines use their streams (so every byte is copied into and out of
/// the flow buffers, as with yamux).
pub mod weft {
    use super::*;
    use adapter_tokio::{Config, Connection, Flow, Profile};

    /// One weft connection: the client handle; the server runs in tasks.
    #[derive(Debug)]
    pub struct WeftClient {
        /// The dialing side.
        pub conn: Connection,
        _tasks: TaskGuard,
    }

    /// Sets up one loopback TCP connection with weft on both ends, the
    /// server running `serve(role, flow)` for every flow it accepts (or,
    /// with `zero_copy`, the bulk server on `read_chunk`).
    pub async fn connect(role: ServerRole) -> io::Result<WeftClient> {
        connect_with(role, false, Profile::Native).await
    }

    async fn connect_with(
        role: ServerRole,
        zero_copy: bool,
        profile: Profile,
    ) -> io::Result<WeftClient> {
        let (client_tcp, server_tcp) = tcp_pair().await?;
        let mut config = Config::default();
        config.profile = profile;
        let server = Connection::server(server_tcp, config.clone())?;
        let conn = Connection::client(client_tcp, config)?;
        let mut tasks = TaskGuard::default();
        tasks.push(tokio::spawn(async move {
            while let Ok(flow) = server.accept_flow().await {
                tokio::spawn(async move {
                    let _ = if zero_copy {
                        serve_bulk_chunks(flow).await
                    } else {
                        serve(role, flow).await
                    };
                });
            }
        }));
        Ok(WeftClient {
            conn,
            _tasks: tasks,
        })
    }

    /// Fixture for `bulk_1flow` / `bulk_100flows`: `flows` long-lived flows.
    #[derive(Debug)]
    pub struct Bulk {
        flows: Vec<Flow>,
        zero_copy: bool,
        _client: WeftClient,
    }

    /// Connects and opens `flows` flows (not timed).
    pub async fn setup_bulk(flows: usize) -> io::Result<Bulk> {
        open_bulk(flows, false, Profile::Native).await
    }

    /// Like [`setup_bulk`] on the wire `profile` (`benches/yamux_profile.rs`
    /// runs weft's yamux profile against the yamux crate).
    pub async fn setup_bulk_profile(flows: usize, profile: Profile) -> io::Result<Bulk> {
        open_bulk(flows, false, profile).await
    }

    /// Like [`setup_bulk`], but [`bulk`] then uses the zero-copy API: the
    /// client hands the same 64 KiB `Bytes` to `write_chunk` (no copy) and
    /// the server uses `read_chunk`.
    pub async fn setup_bulk_zero_copy(flows: usize) -> io::Result<Bulk> {
        open_bulk(flows, true, Profile::Native).await
    }

    async fn open_bulk(flows: usize, zero_copy: bool, profile: Profile) -> io::Result<Bulk> {
        let client = connect_with(ServerRole::Bulk, zero_copy, profile).await?;
        let mut v = Vec::with_capacity(flows);
        for _ in 0..flows.max(1) {
            v.push(client.conn.open_flow().await?);
        }
        Ok(Bulk {
            flows: v,
            zero_copy,
            _client: client,
        })
    }

    /// Sends `total` bytes split evenly over the flows, one task per flow.
    pub async fn bulk(f: &mut Bulk, total: usize) -> io::Result<()> {
        async fn one(mut s: Flow, k: usize, zero_copy: bool) -> (Flow, io::Result<()>) {
            let r = if zero_copy {
                client_bulk_chunks(&mut s, k).await
            } else {
                client_bulk(&mut s, k, BULK_WRITE).await
            };
            (s, r)
        }
        let zero_copy = f.zero_copy;
        if let [_] = f.flows[..] {
            // One flow: stay on this task, as the other contenders do.
            let (s, r) = one(f.flows.remove(0), total, zero_copy).await;
            f.flows.push(s);
            return r;
        }
        bulk_split(&mut f.flows, total, |s, k| one(s, k, zero_copy)).await
    }

    /// [`ServerRole::Bulk`] on the zero-copy API: `read_chunk` hands out
    /// the receive buffer's slices.
    async fn serve_bulk_chunks(mut flow: Flow) -> io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let mut pending = bytes::Bytes::new();
        loop {
            // The 8-byte length header, possibly split across chunks.
            let mut hdr = [0u8; 8];
            let mut got = 0;
            while got < 8 {
                if pending.is_empty() {
                    match flow.read_chunk(usize::MAX).await? {
                        Some(c) => pending = c,
                        None if got == 0 => return flow.shutdown().await,
                        None => return Err(io::ErrorKind::UnexpectedEof.into()),
                    }
                }
                let k = (8 - got).min(pending.len());
                hdr[got..got + k].copy_from_slice(&pending.split_to(k));
                got += k;
            }
            let mut left = u64::from_be_bytes(hdr) as usize;
            while left > 0 {
                if pending.is_empty() {
                    pending = flow
                        .read_chunk(left)
                        .await?
                        .ok_or(io::ErrorKind::UnexpectedEof)?;
                }
                let k = left.min(pending.len());
                let _ = pending.split_to(k);
                left -= k;
            }
            flow.write_all(&[1]).await?;
        }
    }

    async fn client_bulk_chunks(flow: &mut Flow, total: usize) -> io::Result<()> {
        use tokio::io::AsyncReadExt as _;
        let payload = bytes::Bytes::from(vec![0xA5u8; BULK_WRITE]);
        flow.write_chunk(bytes::Bytes::copy_from_slice(&(total as u64).to_be_bytes()))
            .await?;
        let mut left = total;
        while left > 0 {
            let k = left.min(BULK_WRITE);
            flow.write_chunk(payload.slice(..k)).await?;
            left -= k;
        }
        let mut ack = [0u8; 1];
        flow.read_exact(&mut ack).await?;
        Ok(())
    }

    /// Fixture for `open_rate`: one connection.
    #[derive(Debug)]
    pub struct OpenRate {
        client: WeftClient,
    }

    /// Connects (not timed).
    pub async fn setup_open_rate() -> io::Result<OpenRate> {
        setup_open_rate_profile(Profile::Native).await
    }

    /// Like [`setup_open_rate`] on the wire `profile`.
    pub async fn setup_open_rate_profile(profile: Profile) -> io::Result<OpenRate> {
        Ok(OpenRate {
            client: connect_with(ServerRole::OpenClose, false, profile).await?,
        })
    }

    /// `streams` open + 1 byte + close + wait-for-server-close, [`OPEN_CONCURRENCY`] at a time.
    pub async fn open_rate(f: &mut OpenRate, streams: usize) -> io::Result<()> {
        let conn = &f.client.conn;
        run_concurrent(streams, || async move {
            client_open_close(conn.open_flow().await?).await
        })
        .await
    }

    /// Fixture for `pingpong`: one flow.
    #[derive(Debug)]
    pub struct PingPong {
        flow: Flow,
        _client: WeftClient,
    }

    /// Connects and opens the flow (not timed).
    pub async fn setup_pingpong() -> io::Result<PingPong> {
        setup_pingpong_profile(Profile::Native).await
    }

    /// Like [`setup_pingpong`] on the wire `profile`.
    pub async fn setup_pingpong_profile(profile: Profile) -> io::Result<PingPong> {
        let client = connect_with(ServerRole::Echo, false, profile).await?;
        let flow = client.conn.open_flow().await?;
        Ok(PingPong {
            flow,
            _client: client,
        })
    }

    /// `round_trips` sequential 64-byte round trips on one flow.
    pub async fn pingpong(f: &mut PingPong, round_trips: usize) -> io::Result<()> {
        client_pingpong(&mut f.flow, round_trips).await
    }
}
