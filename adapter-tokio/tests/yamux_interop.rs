//! weft's yamux profile against the real `yamux` crate (0.13 and 0.14),
//! over loopback TCP, in both directions: many concurrent checksummed
//! streams, half-close either way, reset mid-transfer, a reader that stops
//! (memory stays bounded, then the transfer recovers), ping, GoAway drain.
//!
//! The biggest payloads are 1 MiB by default (every tenth stream) so the
//! suite stays quick in CI; `WEFT_YAMUX_BIG_MIB=64 cargo test -p
//! adapter-tokio --test yamux_interop` runs 64 MiB streams, and
//! `WEFT_YAMUX_STREAMS` changes the number of concurrent streams (100).

use adapter_core::conformance::{checksum, payload};
use adapter_tokio::{reset_code, CloseReason, Config, Connection, Flow, Profile};
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn weft_config() -> Config {
    let mut c = Config::default();
    c.profile = Profile::Yamux;
    c
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (dialed, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (dialed, accepted) = (dialed.unwrap(), accepted.unwrap().0);
    dialed.set_nodelay(true).unwrap();
    accepted.set_nodelay(true).unwrap();
    (dialed, accepted)
}

/// Runs `f` under a deadline that grows with `WEFT_YAMUX_BIG_MIB` (both
/// peers are debug builds here, a few hundred MB/s at best).
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    let secs = 60 + 5 * (big() >> 20) as u64;
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out"))
}

fn big() -> usize {
    std::env::var("WEFT_YAMUX_BIG_MIB").map_or(1, |s| s.parse().expect("a number of MiB")) << 20
}

/// Concurrent streams in the many-streams tests (`WEFT_YAMUX_STREAMS`, default 100).
fn streams() -> usize {
    std::env::var("WEFT_YAMUX_STREAMS").map_or(100, |s| s.parse().expect("a number"))
}

/// Sizes for `n` streams: mostly small, every tenth big.
fn mixed_sizes(n: usize) -> Vec<usize> {
    (0..n)
        .map(|i| match i % 10 {
            0 => big() - i,
            1 => 0,
            2 => 1,
            _ => {
                (payload(i as u64, 4)
                    .iter()
                    .map(|&b| b as usize)
                    .sum::<usize>()
                    * 997)
                    % (300 << 10)
            }
        })
        .collect()
}

/// Echoes a weft flow (zero-copy chunks), then FIN.
async fn weft_echo(flow: Flow) -> std::io::Result<u64> {
    adapter_core::conformance::echo_flow(flow.into_core()).await
}

/// Sends `data` on a weft flow while reading the echo; checks it.
async fn weft_roundtrip(flow: Flow, data: Vec<u8>) {
    let id = flow.id();
    let (mut r, mut w) = flow.split();
    let want = checksum(&data);
    let len = data.len();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::with_capacity(len);
    r.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), len, "{id}: echo length");
    assert_eq!(checksum(&got), want, "{id}: echo checksum");
}

/// yamux frames one relay direction saw (see `tapped_pair`).
#[derive(Debug, Default, Clone, Copy)]
#[allow(dead_code)] // read through Debug by the ignored throughput test
struct Tally {
    data_frames: u64,
    data_bytes: u64,
    window_updates: u64,
    max_window_delta: u32,
    ping_requests: u64,
    ping_answers: u64,
}

/// Copies yamux frames from `from` to `to`, counting them in `tally`.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    tally: std::sync::Arc<std::sync::Mutex<Tally>>,
) {
    let mut h = [0u8; 12];
    let mut body = vec![0u8; 64 << 10];
    while from.read_exact(&mut h).await.is_ok() {
        if to.write_all(&h).await.is_err() {
            return;
        }
        let flags = u16::from_be_bytes([h[2], h[3]]);
        let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        {
            let mut t = tally.lock().unwrap();
            match h[1] {
                0 => {
                    t.data_frames += 1;
                    t.data_bytes += u64::from(len);
                }
                1 => {
                    t.window_updates += 1;
                    t.max_window_delta = t.max_window_delta.max(len);
                }
                2 if flags & 1 != 0 => t.ping_requests += 1,
                2 => t.ping_answers += 1,
                _ => {}
            }
        }
        let mut left = if h[1] == 0 { len as usize } else { 0 };
        while left > 0 {
            let k = left.min(body.len());
            if from.read_exact(&mut body[..k]).await.is_err()
                || to.write_all(&body[..k]).await.is_err()
            {
                return;
            }
            left -= k;
        }
    }
    let _ = to.shutdown().await;
}

type Tap = std::sync::Arc<std::sync::Mutex<Tally>>;

/// Like `tcp_pair`, with a relay in between that counts the frames each
/// way: (dialer end, acceptor end, dialer -> acceptor, acceptor -> dialer).
async fn tapped_pair() -> (TcpStream, TcpStream, Tap, Tap) {
    let (dialer, relay_in) = tcp_pair().await;
    let (relay_out, acceptor) = tcp_pair().await;
    let (fwd, back) = (Tap::default(), Tap::default());
    let (ir, iw) = relay_in.into_split();
    let (or, ow) = relay_out.into_split();
    tokio::spawn(relay(ir, ow, fwd.clone()));
    tokio::spawn(relay(or, iw, back.clone()));
    (dialer, acceptor, fwd, back)
}

/// Reads a rust-yamux stream to its end. Not futures' `read_to_end`: that
/// one zero-fills the vector's whole spare capacity again on every poll
/// that returns `Pending` (its guard shrinks the length back), which costs
/// O(payload) per arriving frame, quadratic overall; in a debug build a
/// 16 MiB read took 0.5-9 s that way, and that, not weft or the wire, was
/// the "slow weft -> yamux direction" (docs/decisions.md, yamux profile).
async fn read_all<R: futures::io::AsyncRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
) -> std::io::Result<usize> {
    use futures::io::AsyncReadExt as _;
    let start = out.len();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf).await? {
            0 => return Ok(out.len() - start),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

macro_rules! interop {
    ($module:ident, $y:ident) => {
        mod $module {
            use super::*;
            use futures::io::{AsyncReadExt as _, AsyncWriteExt as _};
            use std::collections::VecDeque;
            use std::pin::Pin;
            use std::task::Poll;
            use tokio::sync::{mpsc, oneshot};
            use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

            type Stream = $y::Stream;

            /// A yamux connection driven by its own task: opens on request,
            /// hands inbound streams to `inbound`, closes (GoAway) on request.
            struct Peer {
                opens: mpsc::UnboundedSender<oneshot::Sender<Stream>>,
                inbound: mpsc::UnboundedReceiver<Stream>,
                close: Option<oneshot::Sender<()>>,
                done: tokio::task::JoinHandle<Result<(), String>>,
            }

            impl Peer {
                fn new(tcp: TcpStream, mode: $y::Mode) -> Peer {
                    let mut conn: $y::Connection<Compat<TcpStream>> =
                        $y::Connection::new(tcp.compat(), $y::Config::default(), mode);
                    let (opens, mut open_rx) = mpsc::unbounded_channel::<oneshot::Sender<Stream>>();
                    let (in_tx, inbound) = mpsc::unbounded_channel();
                    let (close, mut close_rx) = oneshot::channel::<()>();
                    let done = tokio::spawn(async move {
                        let mut waiting: VecDeque<oneshot::Sender<Stream>> = VecDeque::new();
                        let mut closing = false;
                        futures::future::poll_fn(move |cx| loop {
                            if !closing && Pin::new(&mut close_rx).poll(cx).is_ready() {
                                closing = true;
                            }
                            if closing {
                                return conn.poll_close(cx).map_err(|e| e.to_string());
                            }
                            while let Poll::Ready(Some(tx)) = open_rx.poll_recv(cx) {
                                waiting.push_back(tx);
                            }
                            while !waiting.is_empty() {
                                match conn.poll_new_outbound(cx) {
                                    Poll::Ready(Ok(s)) => {
                                        let _ = waiting.pop_front().unwrap().send(s);
                                    }
                                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                                    Poll::Pending => break,
                                }
                            }
                            match conn.poll_next_inbound(cx) {
                                Poll::Ready(Some(Ok(s))) => {
                                    let _ = in_tx.send(s);
                                }
                                Poll::Ready(Some(Err(e))) => {
                                    return Poll::Ready(Err(e.to_string()))
                                }
                                Poll::Ready(None) => return Poll::Ready(Ok(())),
                                Poll::Pending => return Poll::Pending,
                            }
                        })
                        .await
                    });
                    Peer {
                        opens,
                        inbound,
                        close: Some(close),
                        done,
                    }
                }

                async fn open(&self) -> Stream {
                    let (tx, rx) = oneshot::channel();
                    self.opens.send(tx).unwrap();
                    rx.await.expect("yamux connection ended")
                }

                async fn accept(&mut self) -> Stream {
                    self.inbound.recv().await.expect("yamux connection ended")
                }

                /// Closes the connection (yamux sends GoAway) and waits.
                async fn close(mut self) -> Result<(), String> {
                    let _ = self.close.take().unwrap().send(());
                    self.done.await.unwrap()
                }

                /// Serves every inbound stream with an echo.
                fn serve_echo(mut self) -> tokio::task::JoinHandle<()> {
                    tokio::spawn(async move {
                        // Dropping the sender would close the connection.
                        let _keep_open = self.close.take();
                        while let Some(s) = self.inbound.recv().await {
                            tokio::spawn(yamux_echo(s));
                        }
                    })
                }
            }

            async fn yamux_echo(s: Stream) {
                let (r, mut w) = s.split();
                if futures::io::copy(r, &mut w).await.is_ok() {
                    let _ = w.close().await;
                }
            }

            async fn yamux_roundtrip(s: Stream, data: Vec<u8>) {
                let (mut r, mut w) = s.split();
                let want = checksum(&data);
                let len = data.len();
                // One task for both halves: a rust-yamux stream's halves
                // share one command channel that remembers one waiting
                // task, so a reader and a writer in separate tasks can
                // leave the reader's window update unsent forever.
                let mut got = Vec::with_capacity(len);
                let (sent, read) = futures::join!(
                    async {
                        w.write_all(&data).await?;
                        w.close().await
                    },
                    read_all(&mut r, &mut got)
                );
                sent.unwrap();
                read.unwrap();
                assert_eq!(got.len(), len, "echo length");
                assert_eq!(checksum(&got), want, "echo checksum");
            }

            /// weft dials, yamux accepts.
            async fn weft_client() -> (Connection, Peer) {
                let (c, s) = tcp_pair().await;
                (
                    Connection::client(c, weft_config()).unwrap(),
                    Peer::new(s, $y::Mode::Server),
                )
            }

            /// yamux dials, weft accepts.
            async fn yamux_client() -> (Peer, Connection) {
                let (c, s) = tcp_pair().await;
                (
                    Peer::new(c, $y::Mode::Client),
                    Connection::server(s, weft_config()).unwrap(),
                )
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn weft_to_yamux_hundred_streams_checksummed() {
                let (weft, peer) = weft_client().await;
                let _server = peer.serve_echo();
                let mut tasks = Vec::new();
                for (i, n) in mixed_sizes(streams()).into_iter().enumerate() {
                    let flow = weft.open_flow().await.unwrap();
                    tasks.push(tokio::spawn(weft_roundtrip(flow, payload(i as u64, n))));
                }
                within("100 streams", async {
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
                .await;
                assert_eq!(weft.stats().flows_open, 0);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn yamux_to_weft_hundred_streams_checksummed() {
                let (peer, weft) = yamux_client().await;
                let server = weft.clone();
                tokio::spawn(async move {
                    while let Ok(flow) = server.accept_flow().await {
                        tokio::spawn(weft_echo(flow));
                    }
                });
                let peer = std::sync::Arc::new(peer);
                let mut tasks = Vec::new();
                for (i, n) in mixed_sizes(streams()).into_iter().enumerate() {
                    let s = peer.open().await;
                    tasks.push(tokio::spawn(yamux_roundtrip(s, payload(i as u64, n))));
                }
                within("100 streams", async {
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
                .await;
                within("weft forgets the flows", async {
                    while weft.stats().flows_open > 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn half_close_each_way() {
                // weft finishes first; yamux answers on the half-closed stream.
                let (weft, mut peer) = weft_client().await;
                let mut flow = weft.open_flow().await.unwrap();
                flow.write_all(b"request").await.unwrap();
                flow.shutdown().await.unwrap();
                let mut s = within("accept", peer.accept()).await;
                let mut req = Vec::new();
                within("read request", read_all(&mut s, &mut req))
                    .await
                    .unwrap();
                assert_eq!(req, b"request");
                s.write_all(b"response").await.unwrap();
                s.close().await.unwrap();
                let mut resp = Vec::new();
                within("read response", flow.read_to_end(&mut resp))
                    .await
                    .unwrap();
                assert_eq!(resp, b"response");

                // yamux finishes first; weft answers.
                let mut s = peer.open().await;
                s.write_all(b"question").await.unwrap();
                s.close().await.unwrap();
                let mut flow = within("accept", weft.accept_flow()).await.unwrap();
                let mut q = Vec::new();
                within("read question", flow.read_to_end(&mut q))
                    .await
                    .unwrap();
                assert_eq!(q, b"question");
                flow.write_all(b"answer").await.unwrap();
                flow.shutdown().await.unwrap();
                let mut a = Vec::new();
                within("read answer", read_all(&mut s, &mut a))
                    .await
                    .unwrap();
                assert_eq!(a, b"answer");

                // The server side finishes before the client has sent anything.
                let (mut peer, weft) = yamux_client().await;
                let mut s = peer.open().await;
                s.write_all(b"hello").await.unwrap(); // the SYN carries data
                let mut flow = within("accept", weft.accept_flow()).await.unwrap();
                flow.write_all(b"early reply").await.unwrap();
                flow.shutdown().await.unwrap();
                let mut early = Vec::new();
                within("read early reply", read_all(&mut s, &mut early))
                    .await
                    .unwrap();
                assert_eq!(early, b"early reply");
                s.write_all(b", still talking").await.unwrap();
                s.close().await.unwrap();
                let mut rest = Vec::new();
                within("read rest", flow.read_to_end(&mut rest))
                    .await
                    .unwrap();
                assert_eq!(rest, b"hello, still talking");
                drop(peer.inbound.try_recv());
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reset_mid_transfer_each_way() {
                // Both sides write less than one window before the reader
                // starts, so no write waits on the other side's reader.
                let (part, total) = (200 << 10, 4 << 20);
                // weft resets: yamux's reader sees the stream end early.
                let (weft, mut peer) = weft_client().await;
                let mut flow = weft.open_flow().await.unwrap();
                flow.write_all(&payload(1, part)).await.unwrap();
                let mut s = within("accept", peer.accept()).await;
                let mut first = vec![0u8; 1000];
                within("first bytes", s.read_exact(&mut first))
                    .await
                    .unwrap();
                flow.reset(7).unwrap();
                let mut rest = Vec::new();
                let r = within("read to the reset", read_all(&mut s, &mut rest)).await;
                let got = first.len() + rest.len();
                assert!(r.is_err() || got < total, "{r:?} after {got} bytes");
                assert!(payload(1, part).starts_with(&[first, rest].concat()));
                // The stream is gone on the weft side too.
                within("weft forgets it", async {
                    while weft.stats().flows_open > 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
                .await;

                // yamux drops a stream mid-transfer: weft's read fails with
                // a reset (code 0: yamux carries none).
                let (peer, weft) = yamux_client().await;
                let mut s = peer.open().await;
                s.write_all(&payload(2, part)).await.unwrap();
                s.flush().await.unwrap();
                let mut flow = within("accept", weft.accept_flow()).await.unwrap();
                let mut first = vec![0u8; 1000];
                within("first bytes", flow.read_exact(&mut first))
                    .await
                    .unwrap();
                drop(s);
                let mut rest = Vec::new();
                let e = within("read to the reset", flow.read_to_end(&mut rest))
                    .await
                    .unwrap_err();
                assert_eq!(reset_code(&e), Some(0), "{e}");
                assert!(payload(2, part).starts_with(&[first, rest].concat()));
                // The connection is fine afterwards.
                let s = peer.open().await;
                let server = weft.clone();
                tokio::spawn(async move {
                    let f = server.accept_flow().await.unwrap();
                    weft_echo(f).await.unwrap();
                });
                within("echo after reset", yamux_roundtrip(s, payload(3, 100_000))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_yamux_reader_that_stops_holds_weft_memory_flat() {
                let (weft, mut peer) = weft_client().await;
                let cfg = weft_config();
                let data = payload(4, 8 << 20);
                let flow = weft.open_flow().await.unwrap();
                let (mut fr, mut fw) = flow.split();
                let sent = data.clone();
                let writer = tokio::spawn(async move {
                    fw.write_all(&sent).await.unwrap();
                    fw.shutdown().await.unwrap();
                });
                let mut s = within("accept", peer.accept()).await;
                // yamux does not read for a while: weft's writer must block.
                for _ in 0..40 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let st = weft.stats();
                    assert!(st.send_buffered <= cfg.conn_send_buffer as u64, "{st:?}");
                    if let Some(fs) = fr.stats() {
                        assert!(fs.send_buffered <= cfg.flow_send_buffer as u64);
                        assert!(fs.bytes_sent <= 256 << 10, "sent past yamux's window");
                    }
                }
                assert!(!writer.is_finished(), "the writer was never blocked");
                let mut got = Vec::new();
                within("read everything", read_all(&mut s, &mut got))
                    .await
                    .unwrap();
                within("writer", writer).await.unwrap();
                assert_eq!(checksum(&got), checksum(&data));
                s.close().await.unwrap();
                let mut sink = Vec::new();
                fr.read_to_end(&mut sink).await.unwrap();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_weft_reader_that_stops_is_never_overrun() {
                let (peer, weft) = yamux_client().await;
                let cfg = weft_config();
                let data = payload(5, 8 << 20);
                let s = peer.open().await;
                let (mut r, mut w) = s.split();
                let sent = data.clone();
                let writer = tokio::spawn(async move {
                    w.write_all(&sent).await.unwrap();
                    w.close().await.unwrap();
                });
                let mut flow = within("accept", weft.accept_flow()).await.unwrap();
                let mut max = 0;
                for _ in 0..40 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let st = weft.stats();
                    max = max.max(st.recv_buffered);
                    assert!(st.recv_buffered <= cfg.max_flow_window, "{st:?}");
                }
                assert!(max > 0 && !writer.is_finished(), "yamux was never blocked");
                let mut got = Vec::new();
                within("read everything", flow.read_to_end(&mut got))
                    .await
                    .unwrap();
                within("writer", writer).await.unwrap();
                assert_eq!(checksum(&got), checksum(&data));
                flow.shutdown().await.unwrap();
                let mut sink = Vec::new();
                read_all(&mut r, &mut sink).await.unwrap();
            }

            /// Times one 16 MiB stream each way (`--ignored --nocapture`).
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore]
            async fn throughput_16mib_each_way() {
                let n = 16 << 20;
                let data = payload(9, n);
                // weft sends, yamux reads.
                let (c, sv, to_yamux, to_weft) = tapped_pair().await;
                let weft = Connection::client(c, weft_config()).unwrap();
                let mut peer = Peer::new(sv, $y::Mode::Server);
                let t = std::time::Instant::now();
                let mut flow = weft.open_flow().await.unwrap();
                let sent = data.clone();
                let writer = tokio::spawn(async move {
                    flow.write_all(&sent).await.unwrap();
                    flow.shutdown().await.unwrap();
                    flow
                });
                let mut s = peer.accept().await;
                let mut got = Vec::new();
                read_all(&mut s, &mut got).await.unwrap();
                let el = t.elapsed();
                assert_eq!(got.len(), n);
                eprintln!(
                    "{}: weft -> yamux 16 MiB in {:?} = {:.0} MiB/s",
                    stringify!($y),
                    el,
                    16.0 / el.as_secs_f64()
                );
                drop(writer.await.unwrap());
                eprintln!("  weft -> yamux frames: {:?}", to_yamux.lock().unwrap());
                eprintln!("  yamux -> weft frames: {:?}", to_weft.lock().unwrap());
                // yamux sends, weft reads.
                let (c, sv, to_weft, to_yamux) = tapped_pair().await;
                let peer = Peer::new(c, $y::Mode::Client);
                let weft = Connection::server(sv, weft_config()).unwrap();
                let t = std::time::Instant::now();
                let mut s = peer.open().await;
                let sent = data.clone();
                let writer = tokio::spawn(async move {
                    s.write_all(&sent).await.unwrap();
                    s.close().await.unwrap();
                    s
                });
                let mut flow = weft.accept_flow().await.unwrap();
                let mut got = Vec::with_capacity(n);
                flow.read_to_end(&mut got).await.unwrap();
                let el = t.elapsed();
                assert_eq!(got.len(), n);
                eprintln!(
                    "{}: yamux -> weft 16 MiB in {:?} = {:.0} MiB/s",
                    stringify!($y),
                    el,
                    16.0 / el.as_secs_f64()
                );
                drop(writer.await.unwrap());
                eprintln!("  yamux -> weft frames: {:?}", to_weft.lock().unwrap());
                eprintln!("  weft -> yamux frames: {:?}", to_yamux.lock().unwrap());
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ping_both_roles() {
                let (weft, _peer) = weft_client().await;
                let rtt = within("ping", weft.ping()).await.unwrap();
                assert!(rtt < Duration::from_secs(10));
                let (_peer, weft) = yamux_client().await;
                let rtt = within("ping", weft.ping()).await.unwrap();
                assert!(rtt < Duration::from_secs(10));
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn goaway_drain_each_way() {
                // yamux closes after its streams: weft sees the GoAway and
                // the end of the connection, with every byte delivered.
                let (peer, weft) = yamux_client().await;
                let mut s = peer.open().await;
                s.write_all(&payload(6, 200_000)).await.unwrap();
                s.close().await.unwrap();
                let mut flow = within("accept", weft.accept_flow()).await.unwrap();
                let mut got = Vec::new();
                within("read", flow.read_to_end(&mut got)).await.unwrap();
                assert_eq!(checksum(&got), checksum(&payload(6, 200_000)));
                flow.shutdown().await.unwrap();
                let mut sink = Vec::new();
                within("yamux reads FIN", read_all(&mut s, &mut sink))
                    .await
                    .unwrap();
                drop(s);
                within("yamux closes", peer.close()).await.unwrap();
                let why = within("weft closes", weft.closed()).await;
                assert!(
                    matches!(why, CloseReason::Drained | CloseReason::TransportEnded),
                    "{why:?}"
                );
                assert!(weft.peer_go_away().is_some(), "GoAway not seen");

                // weft drains: the open stream finishes, then the yamux
                // connection ends cleanly and new opens are refused.
                let (weft, mut peer) = weft_client().await;
                let mut flow = weft.open_flow().await.unwrap();
                flow.write_all(b"in flight").await.unwrap();
                let mut s = within("accept", peer.accept()).await;
                weft.go_away(0);
                assert!(weft.open_flow().await.is_err());
                flow.shutdown().await.unwrap();
                let mut got = Vec::new();
                within("read", read_all(&mut s, &mut got)).await.unwrap();
                assert_eq!(got, b"in flight");
                s.close().await.unwrap();
                let mut sink = Vec::new();
                within("weft reads FIN", flow.read_to_end(&mut sink))
                    .await
                    .unwrap();
                let why = within("weft closes", weft.closed()).await;
                assert_eq!(why, CloseReason::Drained);
                let end = within("yamux ends", peer.done).await.unwrap();
                assert!(end.is_ok(), "{end:?}");
            }
        }
    };
}

interop!(yamux_0_13, yamux013);
interop!(yamux_0_14, yamux014);
