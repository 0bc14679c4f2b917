//! The adapter conformance suite: one set of cases, run unchanged against
//! every adapter (feature `conformance`).
//!
//! An adapter implements [`Harness`] (make a connected pair, spawn, sleep,
//! block on) and expands [`conformance_tests!`](crate::conformance_tests)
//! in its `tests/conformance.rs`, once per transport:
//!
//! ```ignore
//! mod tcp {
//!     adapter_core::conformance_tests!(crate::MyHarness::tcp());
//! }
//! ```
//!
//! Cases use only the runtime-neutral handles ([`Connection`], [`Flow`]),
//! make real assertions, bound every wait with a timeout, and never assert
//! on timing.

pub mod echo;
mod links;
pub mod taps;
pub mod taps_rendezvous;

pub use echo::{EchoHandle, EchoLayer};
pub use links::link_cases;

use crate::{reset_code, stop_code, CloseReason, Config, Connection, Flow};
use bytes::Bytes;
use proto_core::mux::{ErrorCode, FlowStats};
use std::any::Any;
use std::future::{poll_fn, Future};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A shared harness, as the cases take it.
pub type Shared = Arc<dyn Harness>;

/// A connected pair.
pub struct Pair {
    /// The dialing side.
    pub client: Connection,
    /// The accepting side.
    pub server: Connection,
    /// Ends the client's transport abruptly in both directions, as a dead
    /// TCP connection looks (`None` where the harness cannot; the case that
    /// needs it is then skipped).
    pub cut: Option<Box<dyn FnOnce() + Send>>,
}

/// A raw connected stream the adapter makes for [`Harness::link`], before
/// any connection runs on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Loopback TCP; each end's addresses come from its socket.
    Tcp,
    /// A Unix socket bound to a fresh path: the listener's end is
    /// `unix:<path>`, the dialer's `unix:` (unnamed).
    Unix,
    /// A stream that cannot name its ends (an in-memory pipe, or a socket
    /// handed over as a plain stream): secure ends start with
    /// `connect_with` / `accept_with`, stating [`MEM_CLIENT`] and
    /// [`MEM_SERVER`].
    Unaddressed,
    /// A stream whose peer never reads and whose buffers are already full
    /// (or one byte long): the client's first write blocks. Only with an
    /// [`Start::Idle`] server.
    Stalled,
    /// Loopback TCP where the client dials the listener's address itself
    /// (the adapter's `dial` when secure, `connect_tcp` in plaintext).
    Dial,
}

/// The client's address on a [`Link::Unaddressed`] stream.
pub const MEM_CLIENT: &str = "mem:c";
/// The server's address on a [`Link::Unaddressed`] stream.
pub const MEM_SERVER: &str = "mem:s";

/// How one end of a [`Link`] starts.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // a few per test
pub enum Start {
    /// A plaintext connection (`client` / `server`, or `connect_tcp`).
    Plain(Config),
    /// A secure one: `connect` (dialer) / `accept` (acceptor) with these
    /// credentials (`connect_with` / `accept_with` on an unaddressed link,
    /// `dial` on [`Link::Dial`]).
    Secure(Config, crate::Credentials),
    /// Holds its end open and never reads nor writes.
    Idle,
}

/// What [`Harness::link`] made: each end's result (`None` for an idle
/// end), the addresses of the two ends, and whatever must stay alive.
pub struct Ends {
    /// The client's (dialer's) connection.
    pub client: Option<io::Result<Connection>>,
    /// The server's (acceptor's) connection.
    pub server: Option<io::Result<Connection>>,
    /// The client end's own address as its socket names it (empty where
    /// the harness cannot know it before dialing).
    pub client_addr: String,
    /// The server end's own address.
    pub server_addr: String,
    /// Idle ends and temporary paths, kept until this is dropped.
    pub keep: Vec<Box<dyn Any + Send>>,
}

fn unsupported<T>() -> io::Result<T> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "not provided by this harness",
    ))
}

/// What an adapter provides to run the suite.
pub trait Harness: Send + Sync + 'static {
    /// A connected client (dialer) and server (acceptor) with these configs.
    fn pair(&self, client: Config, server: Config) -> BoxFuture<io::Result<Pair>>;
    /// Runs `task` in the background.
    fn spawn(&self, task: BoxFuture<()>);
    /// Completes after `duration` (used for bounded waits, never for timing assertions).
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
    /// Runs `task` to completion on the runtime; a panic in it propagates.
    fn block_on(&self, task: BoxFuture<()>);
    /// Runs `client` and `server` on the two ends of a fresh connected
    /// stream of the harness's transport, each through the adapter's own
    /// `spawn_layer` (for the [`echo`] cases).
    fn echo_sockets(
        &self,
        client: EchoLayer,
        server: EchoLayer,
    ) -> BoxFuture<io::Result<(EchoHandle, EchoHandle)>> {
        let _ = (client, server);
        Box::pin(async { unsupported() })
    }
    /// Runs `layer` on `flow` (a [`Transport`](crate::Transport)) on the
    /// adapter's runtime, through [`spawn_layer`](crate::spawn_layer).
    fn echo_flow(&self, flow: Flow, layer: EchoLayer) -> io::Result<EchoHandle> {
        let _ = (flow, layer);
        unsupported()
    }
    /// Makes a fresh `link` and starts its ends as `client` and `server`
    /// say, concurrently (for [`link_conformance_tests!`](crate::link_conformance_tests)).
    /// `Unsupported` for a link this harness cannot make.
    fn link(&self, link: Link, client: Start, server: Start) -> BoxFuture<io::Result<Ends>> {
        let _ = (link, client, server);
        Box::pin(async { unsupported() })
    }
}

/// A case of the suite.
pub type Case = fn(Shared) -> BoxFuture<()>;

/// How long one case may take before it fails as hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one case on `harness`, failing (panicking) if it fails or hangs.
pub fn run(harness: Shared, case: Case) {
    let h = harness.clone();
    harness.block_on(Box::pin(async move {
        let fut = case(h.clone());
        timeout(&h, CASE_TIMEOUT, "conformance case", fut).await;
    }));
}

/// Expands to one `#[test]` per conformance case, each building its
/// harness with `$harness` (an expression of a type implementing
/// [`Harness`]).
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@cases $harness;
            echo,
            server_opens,
            side_channel,
            many_flows,
            half_close_client_first,
            half_close_server_first,
            reset_mid_transfer,
            stop_sending,
            drop_semantics,
            backpressure,
            flow_limit,
            ping,
            go_away_drain,
            go_away_right_after_open,
            close_with_reason,
            transport_eof,
            idle_timeout,
            bad_config_is_invalid_input,
            echo_layer_on_sockets,
            echo_layer_on_flows,
            echo_layer_refuses_an_overlong_message_on_a_socket,
            echo_layer_refuses_an_overlong_message_on_a_flow,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $crate::conformance_tests!(@in cases, $harness; $($case),*);
    };
    (@in $module:ident, $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run(
                    ::std::sync::Arc::new($harness),
                    $crate::conformance::$module::$case,
                );
            }
        )*
    };
}

/// Expands to one `#[test]` per case of [`link_cases`]: the secure
/// handshake (authorizers, refusals, addresses, timeouts) and plaintext
/// starts over the adapter's own streams ([`Harness::link`]). Expand it
/// once per adapter; the cases do not depend on [`Harness::pair`].
#[macro_export]
macro_rules! link_conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@in link_cases, $harness;
            secure_hundred_flows,
            secure_client_refuses_an_untrusted_server,
            secure_server_refuses_an_unblessed_client,
            secure_silent_server_times_out,
            secure_silent_client_times_out,
            secure_silent_peer_on_an_unaddressed_stream_times_out,
            secure_peer_that_never_reads_times_out,
            authorizers_see_the_tcp_addresses,
            authorizer_refuses_a_peer_at_another_address,
            authorizers_see_the_unix_socket_path,
            unaddressed_streams_take_the_callers_addresses,
            dial_connects_encrypted,
            dial_connects_plaintext,
            plaintext_over_a_unix_socket,
        );
    };
}

// ------------------------------------------------------------------ helpers

struct JoinState<T> {
    result: Option<Result<T, Box<dyn Any + Send>>>,
    waker: Option<Waker>,
}

/// The output of a task started with [`spawn`]; a panic in the task
/// resumes in whoever awaits this.
pub struct JoinHandle<T>(Arc<Mutex<JoinState<T>>>);

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match st.result.take() {
            Some(Ok(v)) => Poll::Ready(v),
            Some(Err(p)) => {
                drop(st);
                panic::resume_unwind(p)
            }
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> JoinHandle<T> {
    /// Lets the task run on without waiting for it.
    pub fn detach(self) {}

    /// The task has finished.
    pub fn is_finished(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .result
            .is_some()
    }
}

/// Spawns `fut` on the harness and returns a handle to its output.
pub fn spawn<T, F>(h: &Shared, fut: F) -> JoinHandle<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let state = Arc::new(Mutex::new(JoinState {
        result: None,
        waker: None,
    }));
    let st = state.clone();
    h.spawn(Box::pin(async move {
        let mut fut = Box::pin(fut);
        let result =
            poll_fn(
                |cx| match panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                    Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
                    Ok(Poll::Pending) => Poll::Pending,
                    Err(p) => Poll::Ready(Err(p)),
                },
            )
            .await;
        let mut st = st.lock().unwrap_or_else(|e| e.into_inner());
        st.result = Some(result);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }));
    JoinHandle(state)
}

/// `fut`, or a panic naming `what` if it takes longer than `limit`.
pub async fn timeout<T>(
    h: &Shared,
    limit: Duration,
    what: &str,
    fut: impl Future<Output = T>,
) -> T {
    let mut fut = pin!(fut);
    let mut sleep = h.sleep(limit);
    let r = poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await;
    match r {
        Some(v) => v,
        None => panic!("{what}: no result within {limit:?}"),
    }
}

/// Polls `cond` every few milliseconds until it holds (bounded by `limit`).
pub async fn wait_until(h: &Shared, what: &str, mut cond: impl FnMut() -> bool) {
    let limit = Duration::from_secs(20);
    timeout(h, limit, what, async {
        while !cond() {
            h.sleep(Duration::from_millis(2)).await;
        }
    })
    .await
}

/// Writes to `s` (made non-blocking, and left so) until the kernel takes
/// no more for a while: a socket whose peer never reads, its buffers full,
/// for [`Link::Stalled`].
pub fn fill_send_buffer(s: &std::net::TcpStream) -> io::Result<()> {
    use std::io::Write;
    s.set_nonblocking(true)?;
    let chunk = vec![0u8; 64 * 1024];
    let mut w = s;
    let mut refused = 0;
    // Queued bytes keep moving into the peer's receive buffer for a
    // moment: stop only once writes have been refused a few times running.
    while refused < 5 {
        match w.write(&chunk) {
            Ok(_) => refused = 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// FNV-1a over `data`.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Echoes one flow back (zero-copy chunks) until its end; returns the length.
pub async fn echo_flow(flow: Flow) -> io::Result<u64> {
    let (mut rx, mut tx) = flow.split();
    let mut n = 0u64;
    while let Some(chunk) = rx.read_chunk(64 * 1024).await? {
        n += chunk.len() as u64;
        tx.write_chunk(chunk).await?;
    }
    tx.finish()?;
    Ok(n)
}

/// Accepts flows on `conn` and echoes each, until accepting fails.
pub fn serve_echo(h: &Shared, conn: Connection) -> JoinHandle<()> {
    let h2 = h.clone();
    spawn(h, async move {
        while let Ok(flow) = conn.accept_flow().await {
            spawn(&h2, echo_flow(flow)).detach();
        }
    })
}

/// Writes `data` on a flow while reading the echo concurrently; returns
/// the echo. `chunks` uses the zero-copy paths.
pub async fn echo_roundtrip(
    h: &Shared,
    flow: Flow,
    data: Bytes,
    chunks: bool,
) -> io::Result<Vec<u8>> {
    let (mut rx, mut tx) = flow.split();
    let len = data.len();
    let writer = spawn(h, async move {
        if chunks {
            // Several chunks, to exercise the queue of references.
            let mut rest = data;
            while !rest.is_empty() {
                let piece = rest.split_to(rest.len().min(100_000));
                tx.write_chunk(piece).await?;
            }
        } else {
            for piece in data.chunks(7_777) {
                tx.write_all(piece).await?;
            }
        }
        tx.finish()
    });
    let got = if chunks {
        rx.read_to_end(len + 1).await?
    } else {
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; 10_000];
        loop {
            let n = rx.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    };
    writer.await?;
    Ok(got)
}

fn small_config() -> Config {
    let mut c = Config::default();
    c.flow_send_buffer = 64 * 1024;
    c.max_flow_window = proto_core::mux::initial::FLOW_WINDOW;
    c.conn_recv_budget = proto_core::mux::initial::CONN_WINDOW;
    c.max_concurrent_flows = proto_core::mux::initial::MAX_FLOWS;
    c
}

fn unread(s: &FlowStats) -> u64 {
    s.bytes_received - s.bytes_read
}

/// The cases, each a `fn(Shared) -> BoxFuture<()>`.
pub mod cases {
    use super::*;

    async fn pair(h: &Shared) -> Pair {
        pair_with(h, Config::default(), Config::default()).await
    }

    async fn pair_with(h: &Shared, client: Config, server: Config) -> Pair {
        timeout(
            h,
            Duration::from_secs(10),
            "connect",
            h.pair(client, server),
        )
        .await
        .expect("harness could not make a connected pair")
    }

    /// Open, write, finish; the peer echoes; read to the end.
    pub fn echo(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let _server = serve_echo(&h, p.server.clone());
            let mut flow = p.client.open_flow().await.unwrap();
            assert_eq!(flow.id().0 % 2, 0, "dialer flows have even ids");
            flow.write_all(b"hello, weft").await.unwrap();
            flow.finish().unwrap();
            let got = flow.read_to_end(1 << 20).await.unwrap();
            assert_eq!(got, b"hello, weft");
            // End of data stays the end of data.
            assert_eq!(flow.read(&mut [0u8; 8]).await.unwrap(), 0);
            let stats = p.client.stats();
            assert_eq!(stats.flows_opened, 1);
            assert!(stats.bytes_sent > 0 && stats.bytes_received > 0);
        })
    }

    /// The acceptor opens a flow and the dialer accepts it.
    pub fn server_opens(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let _client = serve_echo(&h, p.client.clone());
            let flow = p.server.open_flow().await.unwrap();
            assert_eq!(flow.id().0 % 2, 1, "acceptor flows have odd ids");
            let data = Bytes::from(payload(1, 300_000));
            let got = echo_roundtrip(&h, flow, data.clone(), false).await.unwrap();
            assert_eq!(checksum(&got), checksum(&data));
            assert_eq!(got.len(), data.len());
        })
    }

    /// A side channel is accepted as one and carries data.
    pub fn side_channel(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let mut flow = p.client.open_side_channel().await.unwrap();
            assert!(flow.is_side_channel());
            flow.write_all(b"side").await.unwrap();
            flow.finish().unwrap();
            let mut acc = p.server.accept_flow().await.unwrap();
            assert!(acc.is_side_channel());
            assert_eq!(acc.read_to_end(100).await.unwrap(), b"side");
            acc.finish().unwrap();
            assert_eq!(flow.read_to_end(100).await.unwrap(), b"");
        })
    }

    /// 50 concurrent flows with random payloads of mixed sizes (up to
    /// ~2.2 MiB), half through the zero-copy paths, all echoed and checked.
    pub fn many_flows(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let _server = serve_echo(&h, p.server.clone());
            let mut tasks = Vec::new();
            for i in 0..50u64 {
                let len = match i % 10 {
                    0 => 2 * 1024 * 1024 + (i as usize) * 4099,
                    1 | 2 => 128 * 1024 + (i as usize) * 5003,
                    _ => ((i * 7919) % 65_536) as usize,
                };
                let conn = p.client.clone();
                let h2 = h.clone();
                tasks.push(spawn(&h, async move {
                    let data = Bytes::from(payload(i + 100, len));
                    let flow = conn.open_flow().await.unwrap();
                    let got = echo_roundtrip(&h2, flow, data.clone(), i % 2 == 0)
                        .await
                        .unwrap();
                    assert_eq!(got.len(), len, "flow {i}: echoed length");
                    assert_eq!(checksum(&got), checksum(&data), "flow {i}: checksum");
                    len as u64
                }));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await;
            }
            let stats = p.client.stats();
            assert_eq!(stats.flows_opened, 50);
            assert!(stats.data_sent >= total && stats.data_received >= total);
            assert_eq!(p.server.stats().flows_accepted, 50);
        })
    }

    /// The client finishes first; the server reads to the end, then replies.
    pub fn half_close_client_first(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let mut flow = p.client.open_flow().await.unwrap();
            flow.write_all(b"request").await.unwrap();
            flow.finish().unwrap();
            assert!(flow.write(b"more").await.is_err(), "write after finish");

            let mut acc = p.server.accept_flow().await.unwrap();
            assert_eq!(acc.read_to_end(1 << 20).await.unwrap(), b"request");
            let reply = payload(2, 100_000);
            acc.write_all(&reply).await.unwrap();
            acc.finish().unwrap();

            assert_eq!(flow.read_to_end(1 << 20).await.unwrap(), reply);
        })
    }

    /// The server finishes first; the client keeps writing after reading
    /// the end of data, and the server still reads it all.
    pub fn half_close_server_first(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let mut flow = p.client.open_flow().await.unwrap();
            flow.write_all(b"go").await.unwrap();

            let mut acc = p.server.accept_flow().await.unwrap();
            let mut two = [0u8; 2];
            acc.read_exact(&mut two).await.unwrap();
            assert_eq!(&two, b"go");
            acc.write_all(b"bye").await.unwrap();
            acc.finish().unwrap();

            let (mut rx, mut tx) = flow.split();
            assert_eq!(rx.read_to_end(100).await.unwrap(), b"bye");
            let rest = payload(3, 200_000);
            let rest2 = rest.clone();
            let writer = spawn(&h, async move {
                tx.write_all(&rest2).await.unwrap();
                tx.finish().unwrap();
            });
            assert_eq!(acc.read_to_end(1 << 20).await.unwrap(), rest);
            writer.await;
        })
    }

    /// A reset mid-transfer reaches the reader as `ConnectionReset` with
    /// the code, after at most the data sent before it.
    pub fn reset_mid_transfer(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let mut flow = p.client.open_flow().await.unwrap();
            let sent = payload(4, 64 * 1024);
            flow.write_all(&sent).await.unwrap();
            flow.reset(42).unwrap();
            let e = flow.write(b"x").await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);

            let mut acc = p.server.accept_flow().await.unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 8192];
            let err = loop {
                match acc.read(&mut buf).await {
                    Ok(0) => panic!("reset flow ended cleanly"),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => break e,
                }
            };
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
            assert_eq!(reset_code(&err), Some(42));
            assert!(got.len() <= sent.len());
            assert_eq!(
                got[..],
                sent[..got.len()],
                "data before the reset is intact"
            );
            // The error sticks.
            let again = acc.read(&mut buf).await.unwrap_err();
            assert_eq!(reset_code(&again), Some(42));
        })
    }

    /// The reader stops the flow; the writer's writes then fail with the code.
    pub fn stop_sending(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let mut flow = p.client.open_flow().await.unwrap();
            flow.write_all(b"0123456789").await.unwrap();
            let mut acc = p.server.accept_flow().await.unwrap();
            let mut ten = [0u8; 10];
            acc.read_exact(&mut ten).await.unwrap();
            acc.stop(7).unwrap();
            assert!(acc.read(&mut ten).await.is_err(), "read after stop");

            let chunk = vec![0u8; 16 * 1024];
            let mut err = None;
            for _ in 0..100_000 {
                if let Err(e) = flow.write(&chunk).await {
                    err = Some(e);
                    break;
                }
            }
            let err = err.expect("writes to a stopped flow kept succeeding");
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
            assert_eq!(stop_code(&err), Some(7));
        })
    }

    /// Dropping a flow finishes its send side and stops its receive side.
    pub fn drop_semantics(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let mut flow = p.client.open_flow().await.unwrap();
            flow.write_all(b"last words").await.unwrap();
            let mut acc = p.server.accept_flow().await.unwrap();
            drop(flow); // FIN after the buffered data
            assert_eq!(acc.read_to_end(100).await.unwrap(), b"last words");

            let mut flow2 = p.client.open_flow().await.unwrap();
            flow2.write_all(b"x").await.unwrap();
            let acc2 = p.server.accept_flow().await.unwrap();
            drop(acc2); // STOP_SENDING(0): our writes fail
            let chunk = vec![0u8; 16 * 1024];
            let mut err = None;
            for _ in 0..100_000 {
                if let Err(e) = flow2.write(&chunk).await {
                    err = Some(e);
                    break;
                }
            }
            assert_eq!(stop_code(&err.expect("writes kept succeeding")), Some(0));
            drop(acc);
        })
    }

    /// A peer that stops reading blocks the writer with bounded buffers;
    /// reading again lets everything through.
    pub fn backpressure(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let config = small_config();
            let p = pair_with(&h, config.clone(), config.clone()).await;
            const TOTAL: u64 = 8 * 1024 * 1024;
            let progress = Arc::new(AtomicU64::new(0));
            let mut flow = p.client.open_flow().await.unwrap();
            let id = flow.id();
            let prog = progress.clone();
            let conn = p.client.clone();
            let writer = spawn(&h, async move {
                let data = payload(5, 1 << 20);
                let mut sent = 0u64;
                let mut max_buffered = 0;
                while sent < TOTAL {
                    let off = (sent % (1 << 20)) as usize;
                    let end = (off + 16 * 1024).min(1 << 20);
                    let n = flow.write(&data[off..end]).await.unwrap();
                    sent += n as u64;
                    prog.store(sent, Ordering::SeqCst);
                    if let Some(s) = flow.stats() {
                        max_buffered = max_buffered.max(s.send_buffered);
                    }
                }
                flow.finish().unwrap();
                drop(conn);
                max_buffered
            });

            let mut acc = p.server.accept_flow().await.unwrap();
            assert_eq!(acc.id(), id);
            // Not reading: the writer fills the peer's window and its own
            // send buffer, then blocks.
            let bound = config.flow_send_buffer as u64 + config.max_flow_window;
            wait_until(&h, "writer fills the window", || {
                progress.load(Ordering::SeqCst) >= bound
            })
            .await;
            h.sleep(Duration::from_millis(100)).await;
            let blocked_at = progress.load(Ordering::SeqCst);
            assert!(!writer.is_finished(), "writer finished without a reader");
            assert!(
                blocked_at <= bound,
                "writer got {blocked_at} bytes ahead of a reader that reads nothing (bound {bound})"
            );
            let s = acc.stats().unwrap();
            assert_eq!(s.bytes_read, 0);
            assert!(unread(&s) <= config.max_flow_window);
            assert!(p.server.stats().recv_window <= config.conn_recv_budget);

            // Reading again: everything arrives intact; buffers stay bounded.
            let data = payload(5, 1 << 20);
            let mut got = 0u64;
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = acc.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                for (k, b) in buf[..n].iter().enumerate() {
                    let off = ((got + k as u64) % (1 << 20)) as usize;
                    assert_eq!(*b, data[off], "byte {} corrupted", got + k as u64);
                }
                got += n as u64;
                if let Some(s) = acc.stats() {
                    assert!(unread(&s) <= s.recv_window.max(config.max_flow_window));
                }
            }
            assert_eq!(got, TOTAL);
            let max_buffered = writer.await;
            assert!(max_buffered <= config.flow_send_buffer as u64);
        })
    }

    /// Opening beyond the peer's flow limit waits, and proceeds once a
    /// flow closes.
    pub fn flow_limit(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let config = small_config();
            let limit = config.max_concurrent_flows as usize;
            let p = pair_with(&h, Config::default(), config).await;
            let mut mine = Vec::new();
            for _ in 0..limit {
                let mut f = p.client.open_flow().await.unwrap();
                f.write_all(b"x").await.unwrap();
                mine.push(f);
            }
            let mut theirs = Vec::new();
            for _ in 0..limit {
                theirs.push(p.server.accept_flow().await.unwrap());
            }
            let opened = Arc::new(AtomicBool::new(false));
            let flag = opened.clone();
            let conn = p.client.clone();
            let extra = spawn(&h, async move {
                let f = conn.open_flow().await;
                flag.store(true, Ordering::SeqCst);
                f
            });
            h.sleep(Duration::from_millis(100)).await;
            assert!(
                !opened.load(Ordering::SeqCst),
                "opened a flow beyond the peer's limit"
            );

            // End one flow in both directions: the peer grants one more.
            let mut first = mine.remove(0);
            let mut peer = theirs.remove(0);
            first.finish().unwrap();
            peer.finish().unwrap();
            assert_eq!(peer.read_to_end(10).await.unwrap(), b"x");
            assert_eq!(first.read_to_end(10).await.unwrap(), b"");
            drop((first, peer));

            let mut f = extra.await.expect("open after a flow closed");
            f.write_all(b"late").await.unwrap();
            f.finish().unwrap();
            let mut acc = p.server.accept_flow().await.unwrap();
            assert_eq!(acc.id(), f.id());
            assert_eq!(acc.read_to_end(10).await.unwrap(), b"late");
        })
    }

    /// Pings return an RTT, also when more are in flight than allowed at once.
    pub fn ping(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let rtt = p.client.ping().await.unwrap();
            assert!(rtt < Duration::from_secs(30));
            p.server.ping().await.unwrap();
            assert!(p.client.rtt().is_some());
            assert!(p.client.stats().rtt.is_some());
            // More than `max_outstanding_pings` at once: the extra ones wait.
            let n = Config::default().max_outstanding_pings * 3;
            let pings: Vec<_> = (0..n)
                .map(|_| {
                    let c = p.client.clone();
                    spawn(&h, async move { c.ping().await })
                })
                .collect();
            for ping in pings {
                ping.await.unwrap();
            }
        })
    }

    /// GOAWAY: open flows finish, new opens fail on both sides, then the
    /// connection closes as drained.
    pub fn go_away_drain(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let mut flow = p.client.open_flow().await.unwrap();
            flow.write_all(b"part1,").await.unwrap();
            let mut acc = p.server.accept_flow().await.unwrap();
            let mut buf = [0u8; 6];
            acc.read_exact(&mut buf).await.unwrap();

            p.server.go_away(5);
            let e = p.server.open_flow().await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
            // A ping's PONG comes after the GOAWAY: the client has seen it.
            p.client.ping().await.unwrap();
            let (accepted_below, code) = p.client.peer_go_away().expect("GOAWAY seen");
            assert_eq!(code, 5);
            assert!(flow.id().0 < accepted_below);
            let e = p.client.open_flow().await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
            assert!(p.client.is_draining());

            // The open flow runs to its end.
            flow.write_all(b"part2").await.unwrap();
            flow.finish().unwrap();
            assert_eq!(acc.read_to_end(100).await.unwrap(), b"part2");
            acc.write_all(b"reply").await.unwrap();
            acc.finish().unwrap();
            assert_eq!(flow.read_to_end(100).await.unwrap(), b"reply");
            drop((flow, acc));

            assert_eq!(p.server.closed().await, CloseReason::Drained);
            match p.client.closed().await {
                CloseReason::Drained => {}
                CloseReason::Transport { code, .. } => assert_eq!(code, ErrorCode::NoError),
                other => panic!("client closed with {other:?}"),
            }
            assert!(p.server.accept_flow().await.is_err());
        })
    }

    /// A flow opened just before our own GOAWAY still reaches the peer and
    /// runs to its end (the GOAWAY must not overtake its opening frame).
    pub fn go_away_right_after_open(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            p.client.ping().await.unwrap(); // both sides are up
            let mut flow = p.client.open_flow().await.unwrap();
            flow.write_all(b"opened before GOAWAY").await.unwrap();
            flow.finish().unwrap();
            p.client.go_away(0);
            assert!(p.client.open_flow().await.is_err());

            let mut acc = timeout(
                &h,
                Duration::from_secs(10),
                "accept the flow opened before GOAWAY",
                p.server.accept_flow(),
            )
            .await
            .expect("the flow opened before GOAWAY was lost");
            assert_eq!(acc.read_to_end(100).await.unwrap(), b"opened before GOAWAY");
            acc.write_all(b"ok").await.unwrap();
            acc.finish().unwrap();
            assert_eq!(flow.read_to_end(100).await.unwrap(), b"ok");
            drop((flow, acc));
            for reason in [p.client.closed().await, p.server.closed().await] {
                match reason {
                    CloseReason::Drained => {}
                    CloseReason::Transport { code, .. } => assert_eq!(code, ErrorCode::NoError),
                    other => panic!("closed with {other:?}"),
                }
            }
        })
    }

    /// `close(code, reason)` reaches the peer; its flows see the close.
    pub fn close_with_reason(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let p = pair(&h).await;
            let mut flow = p.client.open_flow().await.unwrap();
            flow.write_all(b"hi").await.unwrap();
            let mut acc = p.server.accept_flow().await.unwrap();
            let mut two = [0u8; 2];
            acc.read_exact(&mut two).await.unwrap();

            p.client.close(42, b"bye now");
            assert_eq!(p.client.closed().await, CloseReason::Local { code: 42 });
            assert_eq!(
                p.server.closed().await,
                CloseReason::Application {
                    code: 42,
                    reason: b"bye now".to_vec()
                }
            );
            let e = acc.read(&mut two).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted);
            assert!(acc.write(b"x").await.is_err());
            let e = p.server.open_flow().await.unwrap_err();
            let reason = crate::close_reason(&e).expect("a close reason");
            assert!(matches!(reason, CloseReason::Application { code: 42, .. }));
            assert!(p.client.ping().await.is_err());
        })
    }

    /// With an idle timeout, a connection whose last regular flow ended
    /// closes by itself: the driver arms the core's idle deadline.
    pub fn idle_timeout(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let mut cfg = Config::default();
            cfg.idle_timeout = Some(Duration::from_millis(200));
            cfg.keepalive_interval = None;
            cfg.channel_timeout = None;
            // The server idles out much later, so the client's own deadline
            // is what closes it: under yamux a peer's idle close arrives as
            // GoAway(normal) and would read as `Drained`.
            let mut server_cfg = cfg.clone();
            server_cfg.idle_timeout = Some(Duration::from_secs(30));
            let p = pair_with(&h, cfg, server_cfg).await;
            let _server = serve_echo(&h, p.server.clone());
            let mut flow = p.client.open_flow().await.unwrap();
            flow.write_all(b"last work").await.unwrap();
            flow.finish().unwrap();
            assert_eq!(flow.read_to_end(1 << 10).await.unwrap(), b"last work");
            drop(flow);
            let reason =
                timeout(&h, Duration::from_secs(20), "idle close", p.client.closed()).await;
            assert!(
                matches!(reason, CloseReason::Idle)
                    || matches!(
                        reason,
                        CloseReason::Transport {
                            code: ErrorCode::Idle,
                            ..
                        }
                    ),
                "{reason:?}"
            );
        })
    }

    /// The transport ends under the connection: it closes, and flows read
    /// their buffered data, then an error.
    pub fn transport_eof(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let mut p = pair(&h).await;
            let Some(cut) = p.cut.take() else {
                return; // this harness cannot cut its transport
            };
            let mut flow = p.client.open_flow().await.unwrap();
            flow.write_all(b"?").await.unwrap();
            let mut acc = p.server.accept_flow().await.unwrap();
            let mut one = [0u8; 1];
            acc.read_exact(&mut one).await.unwrap();
            let sent = payload(6, 50_000);
            acc.write_all(&sent).await.unwrap();
            wait_until(&h, "data arrives", || {
                flow.stats().is_some_and(|s| s.bytes_received == 50_000)
            })
            .await;

            cut();
            assert_eq!(p.client.closed().await, CloseReason::TransportEnded);
            let mut got = Vec::new();
            let mut buf = vec![0u8; 8192];
            let err = loop {
                match flow.read(&mut buf).await {
                    Ok(0) => panic!("flow ended cleanly after the transport died"),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => break e,
                }
            };
            assert_eq!(got, sent, "buffered data is read before the error");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
            assert!(p.client.open_flow().await.is_err());
            // The peer sees the transport end too.
            assert_eq!(p.server.closed().await, CloseReason::TransportEnded);
            assert!(acc.read(&mut buf).await.is_err());
        })
    }

    /// Each invalid config is refused with `InvalidInput` before anything
    /// is sent (both ends have it: a harness reports the first error).
    pub fn bad_config_is_invalid_input(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let mut below_initial = Config::default();
            below_initial.max_concurrent_flows = 1;
            let mut no_chunk = Config::default();
            no_chunk.send_chunk = 0;
            let mut no_buffer = Config::default();
            no_buffer.flow_send_buffer = 0;
            for (i, bad) in [below_initial, no_chunk, no_buffer].into_iter().enumerate() {
                let what = "a pair with a bad config";
                let r = timeout(&h, Duration::from_secs(20), what, h.pair(bad.clone(), bad)).await;
                match r {
                    Ok(_) => panic!("bad config {i} accepted"),
                    Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{i}: {e}"),
                }
            }
        })
    }

    /// The largest echo message in the echo cases.
    const ECHO_MAX: usize = 64 * 1024;

    /// Empty, one byte and 64 KiB one at a time, then 300 small ones
    /// pipelined: each comes back whole and in order.
    async fn echo_exchange(client: &EchoHandle, seed: u64) {
        for (i, len) in [0, 1, ECHO_MAX].into_iter().enumerate() {
            let msg = payload(seed + i as u64, len);
            client.send(&msg).unwrap();
            let got = client.reply().await.expect("a reply");
            assert_eq!(got.len(), len, "reply {i}: length");
            assert_eq!(&got[..], &msg[..], "reply {i}");
        }
        let msgs: Vec<Vec<u8>> = (0..300u64)
            .map(|i| payload(seed * 1000 + i, ((i * 37) % 300) as usize))
            .collect();
        for m in &msgs {
            client.send(m).unwrap();
        }
        for (i, m) in msgs.iter().enumerate() {
            let got = client.reply().await.expect("a reply");
            assert_eq!(&got[..], &m[..], "pipelined reply {i}");
        }
        assert_eq!(client.outstanding(), 0);
    }

    /// The client closes; each side's driver then ends the transport and
    /// finishes (no hang); the server saw a clean end.
    async fn echo_close(h: &Shared, client: EchoHandle, server: EchoHandle) {
        client.close(7);
        assert_eq!(
            client.closed().await,
            Some(proto_core::sim::echo::EchoError::Closed(7))
        );
        assert_eq!(server.closed().await, None, "the server saw a clean end");
        wait_until(h, "both drivers end", || {
            client.driver_ended() && server.driver_ended()
        })
        .await;
    }

    /// The echo machine on each end of a socket (the harness's transport),
    /// through the adapter's `spawn_layer`: messages of every size come
    /// back whole and in order; closing ends both drivers.
    pub fn echo_layer_on_sockets(h: Shared) -> BoxFuture<()> {
        use proto_core::sim::echo::EchoRole;
        Box::pin(async move {
            let (client, server) = h
                .echo_sockets(
                    EchoLayer::new(EchoRole::Client, ECHO_MAX),
                    EchoLayer::new(EchoRole::Server, ECHO_MAX),
                )
                .await
                .expect("echo over the harness's sockets");
            echo_exchange(&client, 1).await;
            echo_close(&h, client, server).await;
        })
    }

    /// The same echo machine, unchanged, on four flows of one connection at
    /// once (the pair's: plaintext or encrypted), through the same driver;
    /// the connection carries on after the echoes end.
    pub fn echo_layer_on_flows(h: Shared) -> BoxFuture<()> {
        use proto_core::sim::echo::EchoRole;
        const FLOWS: u64 = 4;
        Box::pin(async move {
            let p = pair(&h).await;
            let (h2, server_conn) = (h.clone(), p.server.clone());
            let servers = spawn(&h, async move {
                let mut servers = Vec::new();
                for _ in 0..FLOWS {
                    let flow = server_conn.accept_flow().await.unwrap();
                    let layer = EchoLayer::new(EchoRole::Server, ECHO_MAX);
                    servers.push(h2.echo_flow(flow, layer).expect("echo on a flow"));
                }
                servers
            });
            let mut clients = Vec::new();
            for i in 0..FLOWS {
                let flow = p.client.open_flow().await.unwrap();
                let layer = EchoLayer::new(EchoRole::Client, ECHO_MAX);
                let client = h.echo_flow(flow, layer).expect("echo on a flow");
                clients.push(spawn(&h, async move {
                    echo_exchange(&client, 10 + i).await;
                    client
                }));
            }
            let servers = servers.await;
            let mut done = Vec::new();
            for c in clients {
                done.push(c.await);
            }
            for (client, server) in done.into_iter().zip(servers) {
                echo_close(&h, client, server).await;
            }
            assert_eq!(p.client.stats().flows_opened, FLOWS);
            assert_eq!(p.server.stats().flows_accepted, FLOWS);
            p.client
                .ping()
                .await
                .expect("the connection outlives its echoes");
        })
    }

    /// A peer announcing a message longer than the server's maximum: the
    /// server's echo closes with `TooLong`, its driver ends the socket,
    /// and the client sees the end without a reply.
    pub fn echo_layer_refuses_an_overlong_message_on_a_socket(h: Shared) -> BoxFuture<()> {
        use proto_core::sim::echo::{EchoError, EchoRole};
        Box::pin(async move {
            let (client, server) = h
                .echo_sockets(
                    // The client may send more than the server accepts.
                    EchoLayer::new(EchoRole::Client, 1 << 20),
                    EchoLayer::new(EchoRole::Server, 1024),
                )
                .await
                .expect("echo over the harness's sockets");
            client.send(b"fine").unwrap();
            assert_eq!(client.reply().await.as_deref(), Some(&b"fine"[..]));
            client.send(&[7u8; 2000]).unwrap();
            assert_eq!(
                server.closed().await,
                Some(EchoError::TooLong { len: 2000 })
            );
            assert_eq!(
                client.reply().await,
                None,
                "no reply to an overlong message"
            );
            assert_eq!(client.closed().await, None);
            assert_eq!(client.outstanding(), 1);
            wait_until(&h, "both drivers end", || {
                client.driver_ended() && server.driver_ended()
            })
            .await;
        })
    }

    /// The same on a flow, with raw bytes from the peer: the echo closes
    /// with `TooLong`, its driver finishes the flow and ends, and the
    /// connection is unaffected.
    pub fn echo_layer_refuses_an_overlong_message_on_a_flow(h: Shared) -> BoxFuture<()> {
        use proto_core::sim::echo::{EchoError, EchoRole};
        Box::pin(async move {
            let p = pair(&h).await;
            let mut raw = p.client.open_flow().await.unwrap();
            let mut hostile = (4096u32).to_be_bytes().to_vec();
            hostile.extend_from_slice(&[1u8; 100]);
            raw.write_all(&hostile).await.unwrap();
            let flow = p.server.accept_flow().await.unwrap();
            let server = h
                .echo_flow(flow, EchoLayer::new(EchoRole::Server, 1024))
                .expect("echo on a flow");
            assert_eq!(
                server.closed().await,
                Some(EchoError::TooLong { len: 4096 })
            );
            // The driver finished the flow: nothing was echoed.
            assert_eq!(raw.read_to_end(1 << 16).await.unwrap(), b"");
            raw.finish().unwrap();
            wait_until(&h, "the echo's driver ends", || server.driver_ended()).await;
            p.client.ping().await.expect("the connection is unaffected");
        })
    }
}
