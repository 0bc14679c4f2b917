//! Hostile peers against a real server over loopback TCP: every probe
//! ends with a precise close code and reason, a normal client still gets
//! through, and 1,000 connections trying to pin memory leave the server
//! process within its memory budget plus a stated overhead.
//!
//! The memory probe runs the server in a child process (this test binary,
//! re-executed with `WEFT_HOSTILE_SERVER` set) so that its peak resident
//! size (`VmHWM`) is the server's alone. Times are printed, never asserted
//! (shared, noisy machines); waits have generous liveness guards.

use adapter_core::proto_core::mux::frame::{
    encode_control, encode_data_header, Control, DataHeader, PREFACE,
};
use adapter_core::proto_core::mux::yamux::{flags, Header, Type};
use adapter_core::{BudgetConfig, CloseReason, ErrorCode, MemoryBudget};
use adapter_tokio::{AdmissionConfig, Config, Connection, Listener, ListenerOptions, Profile};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn config(profile: Profile) -> Config {
    let mut c = Config::default();
    c.profile = profile;
    c
}

/// Options admitting a flood (admission has its own tests): the probes
/// here are about what happens after a connection is in.
fn open_door() -> ListenerOptions {
    ListenerOptions {
        admission: AdmissionConfig::unlimited(),
        ..ListenerOptions::default()
    }
}

/// An echo server on `listener`: every flow of every connection is echoed.
fn serve_echo(listener: Listener) {
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok(flow) = conn.accept_flow().await {
                    tokio::spawn(async move {
                        let (mut r, mut w) = tokio::io::split(flow);
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                        let _ = w.shutdown().await;
                    });
                }
            });
        }
    });
}

/// A normal client: echoes `len` bytes through the server and checks them.
async fn echo_through(addr: SocketAddr, profile: Profile, len: usize) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let conn = Connection::client(stream, config(profile)).unwrap();
    let flow = conn.open_flow().await.unwrap();
    let (mut r, mut w) = tokio::io::split(flow);
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::with_capacity(len);
    r.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    assert!(got == data, "the echo came back intact");
}

/// Reads what the server sends until it closes; returns it.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * KIB];
    let guard = Instant::now() + Duration::from_secs(120);
    while Instant::now() < guard {
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return all,
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    panic!("the server never closed");
}

/// A native server's output as frames: the PONGs, and the
/// CONNECTION_CLOSE (code, reason) if one came.
fn native_frames(out: &[u8]) -> (usize, Option<(u64, String)>) {
    use adapter_core::proto_core::mux::frame::{decode_head, Head};
    let (mut pongs, mut close) = (0, None);
    let Some(mut rest) = out.strip_prefix(PREFACE) else {
        return (pongs, close);
    };
    while let Ok((head, used)) = decode_head(rest, 4096) {
        rest = &rest[used..];
        match head {
            Head::Data(h) => rest = &rest[(h.len as usize).min(rest.len())..],
            Head::Control(Control::Pong(_)) => pongs += 1,
            Head::Control(Control::ConnectionClose { code, reason }) => {
                close = Some((code, String::from_utf8_lossy(reason).into_owned()))
            }
            Head::Control(_) => {}
        }
    }
    (pongs, close)
}

/// The CONNECTION_CLOSE at the end of a native server's output.
fn native_close(out: &[u8]) -> (u64, String) {
    native_frames(out).1.expect("a CONNECTION_CLOSE")
}

fn ping(w: &mut Vec<u8>, v: u64) {
    encode_control(w, &Control::Ping(v));
}

/// A native server with `cfg`, on a fresh loopback port.
async fn native_server(cfg: Config) -> SocketAddr {
    let l = Listener::bind_plain("127.0.0.1:0", cfg, open_door())
        .await
        .unwrap();
    let addr = l.local_addr();
    serve_echo(l);
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_closes_with_its_code_and_rate_while_a_burst_passes() {
    let addr = native_server(config(Profile::Native)).await;
    // A burst of 200 PINGs in one write, from a peer that reads: answered.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut w = PREFACE.to_vec();
    for v in 0..200 {
        ping(&mut w, v);
    }
    s.write_all(&w).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * KIB];
    while native_frames(&got).0 < 200 {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after a legitimate burst");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(native_frames(&got), (200, None));
    // Then a sustained flood: closed with PingFlood, the reason names the rate.
    let t = Instant::now();
    let mut flood = Vec::new();
    for v in 0..2000 {
        ping(&mut flood, 1000 + v);
    }
    let _ = s.write_all(&flood).await;
    let out = until_closed(&mut s).await;
    got.extend_from_slice(&out);
    let (code, reason) = native_close(&got);
    eprintln!("ping flood closed in {:?}: {reason}", t.elapsed());
    assert_eq!(ErrorCode::from_wire(code), ErrorCode::PingFlood);
    assert!(reason.contains("100/s"), "{reason}");
    echo_through(addr, Profile::Native, 256 * KIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_frame_type_is_named_in_the_close() {
    let addr = native_server(config(Profile::Native)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut w = PREFACE.to_vec();
    w.push(0x20);
    w.extend_from_slice(&[0; 8]);
    s.write_all(&w).await.unwrap();
    let out = until_closed(&mut s).await;
    let (code, reason) = native_close(&out);
    assert_eq!(ErrorCode::from_wire(code), ErrorCode::ProtocolViolation);
    assert!(reason.contains("0x20"), "{reason}");
    echo_through(addr, Profile::Native, 64 * KIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_closed_by_the_send_stall_timeout_despite_pings() {
    let mut cfg = config(Profile::Native);
    cfg.send_stall_timeout = Some(adapter_core::proto_core::time::Duration::from_secs(2));
    let addr = native_server(cfg).await;
    // Open 4 flows, fill them (the echo fills the way back), never read,
    // and keep pinging.
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let mut w = PREFACE.to_vec();
    for i in 0..4u64 {
        let payload = vec![b'x'; 256 * KIB];
        encode_data_header(
            &mut w,
            &DataHeader {
                flow: i * 2,
                len: payload.len() as u64,
                fin: false,
                side_channel: false,
            },
        );
        w.extend_from_slice(&payload);
    }
    s.write_all(&w).await.unwrap();
    let t = Instant::now();
    let mut v = 0;
    let closed = loop {
        let mut p = Vec::new();
        ping(&mut p, v);
        v += 1;
        if s.write_all(&p).await.is_err() {
            break true;
        }
        // Peek whether the server has gone: a write after its close fails.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if t.elapsed() > Duration::from_secs(120) {
            break false;
        }
    };
    eprintln!("stalled peer closed after {:?}", t.elapsed());
    assert!(closed, "a pinging non-reader was never closed");
    echo_through(addr, Profile::Native, 64 * KIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_inside_a_frame_is_reported_as_truncated() {
    let l = Listener::bind_plain("127.0.0.1:0", config(Profile::Native), open_door())
        .await
        .unwrap();
    let addr = l.local_addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut w = PREFACE.to_vec();
    encode_data_header(
        &mut w,
        &DataHeader {
            flow: 0,
            len: 1000,
            fin: false,
            side_channel: false,
        },
    );
    w.extend_from_slice(&[1; 10]);
    s.write_all(&w).await.unwrap();
    let conn = l.accept().await.unwrap();
    s.shutdown().await.unwrap();
    match conn.closed().await {
        CloseReason::TruncatedFrame { .. } => {}
        other => panic!("closed with {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yamux_syn_flood_closes_with_the_open_flood_code() {
    let mut cfg = config(Profile::Yamux);
    cfg.max_concurrent_flows = 64;
    let l = Listener::bind_plain("127.0.0.1:0", cfg, open_door())
        .await
        .unwrap();
    let addr = l.local_addr();
    let server = tokio::spawn(async move {
        let conn = l.accept().await.unwrap();
        // Accept nothing: every SYN past the limit is refused with RST.
        conn.closed().await
    });
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut w = Vec::new();
    for i in 0..5000u32 {
        w.extend_from_slice(
            &Header {
                ty: Type::WindowUpdate,
                flags: flags::SYN,
                stream: 2 * i + 1,
                length: 0,
            }
            .encode(),
        );
    }
    let _ = s.write_all(&w).await;
    let reason = tokio::time::timeout(Duration::from_secs(120), server)
        .await
        .unwrap()
        .unwrap();
    match reason {
        CloseReason::ProtocolError(e) => {
            assert_eq!(e.code(), ErrorCode::OpenFlood, "{e}");
            assert!(e.to_string().contains("/s"), "{e}");
        }
        other => panic!("closed with {other:?}"),
    }
}

// ------------------------------------------------------------ the memory probe

/// The server side of the memory probe, when this binary runs as the child.
#[test]
fn memory_probe_server() {
    let Ok(profile) = std::env::var("WEFT_HOSTILE_SERVER") else {
        return; // an ordinary test run: nothing to do
    };
    // No size given: the process default budget.
    let limit: Option<usize> = std::env::var("WEFT_BUDGET")
        .ok()
        .map(|v| v.parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut cfg = config(if profile == "yamux" {
            Profile::Yamux
        } else {
            Profile::Native
        });
        let budget = match limit {
            Some(limit) => MemoryBudget::new(BudgetConfig::with_limit(limit)),
            None => adapter_core::default_budget(),
        };
        cfg.budget = Some(budget.clone());
        let l = Listener::bind_plain("127.0.0.1:0", cfg, open_door())
            .await
            .unwrap();
        println!("PORT {}", l.local_addr().port());
        std::io::stdout().flush().unwrap();
        serve_echo(l);
        // Report on each line from the parent until it closes our stdin.
        tokio::task::spawn_blocking(move || {
            for line in std::io::stdin().lines() {
                if line.is_err() {
                    break;
                }
                let s = budget.stats();
                println!(
                    "STATS used={} peak={} shares={} refused={} evictions={}",
                    s.used, s.peak, s.shares, s.flows_refused, s.evictions
                );
                std::io::stdout().flush().unwrap();
            }
        })
        .await
        .unwrap();
    });
}

struct ServerProcess {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    port: u16,
}

impl ServerProcess {
    fn start(profile: &str, budget: Option<usize>) -> Self {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "memory_probe_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WEFT_HOSTILE_SERVER", profile);
        if let Some(b) = budget {
            cmd.env("WEFT_BUDGET", b.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines.next().expect("server output").unwrap();
            // libtest may print its own "test ... " before ours on the line.
            if let Some((_, p)) = line.split_once("PORT ") {
                break p.trim().parse().unwrap();
            }
        };
        ServerProcess { child, lines, port }
    }

    /// (VmRSS, VmHWM) in bytes.
    fn memory(&self) -> (usize, usize) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<usize>().ok())
                .map(|kib| kib * KIB)
                .unwrap()
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn stats(&mut self) -> String {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"?\n").unwrap();
        stdin.flush().unwrap();
        loop {
            let line = self.lines.next().expect("stats").unwrap();
            if let Some(i) = line.find("STATS") {
                return line[i..].to_string();
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one hostile connection sends at once, never reading anything
/// back: as much as the protocol lets a peer send before any credit
/// frame (native: 1 MiB over 4 flows; yamux: 256 KiB on each of `streams`).
fn greedy_bytes(profile: Profile, streams: u32) -> Vec<u8> {
    let mut w = Vec::new();
    match profile {
        Profile::Yamux => {
            for i in 0..streams {
                let payload = 256 * KIB;
                w.extend_from_slice(
                    &Header {
                        ty: Type::Data,
                        flags: flags::SYN,
                        stream: 2 * i + 1,
                        length: payload as u32,
                    }
                    .encode(),
                );
                w.resize(w.len() + payload, b'y');
            }
        }
        _ => {
            w.extend_from_slice(PREFACE);
            // Frames of 16 KiB (the default limit is 64 KiB), opens in id order.
            for _ in 0..16 {
                for i in 0..4u64 {
                    encode_data_header(
                        &mut w,
                        &DataHeader {
                            flow: i * 2,
                            len: 16 * KIB as u64,
                            fin: false,
                            side_channel: false,
                        },
                    );
                    w.resize(w.len() + 16 * KIB, b'x');
                }
            }
        }
    }
    w
}

/// 1,000 greedy connections (from 100 loopback sources), then a normal
/// client's transfer; the server's peak RSS must stay within its budget
/// plus the stated overhead.
async fn thousand_greedy(profile: Profile, name: &str, size: Option<usize>) {
    let budget = size.unwrap_or(adapter_core::default_budget().limit());
    let mut server = ServerProcess::start(name, size);
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let (baseline, _) = server.memory();
    let bytes = std::sync::Arc::new(greedy_bytes(profile, 64));
    let t = Instant::now();
    let mut held = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.bind(
            format!("127.2.{}.{}:0", i / 10, i % 10 + 1)
                .parse()
                .unwrap(),
        )
        .unwrap();
        let s = sock.connect(addr).await.unwrap();
        let (r, mut w) = s.into_split();
        let bytes = bytes.clone();
        // Writes as far as the server takes it; never reads.
        tasks.push(tokio::spawn(async move {
            let _ = w.write_all(&bytes).await;
            w
        }));
        held.push(r);
    }
    // Let the flood land, then a normal client goes through.
    tokio::time::sleep(Duration::from_secs(3)).await;
    eprintln!("flood landed: {}", server.stats());
    echo_through(addr, profile, MIB).await;
    let (_, peak) = server.memory();
    let stats = server.stats();
    // Stated overhead: the process at rest; 64 KiB per connection of what
    // no budget counts (task, socket, mux tables, allocator slack); and a
    // transient overdraft of half the budget, since new connections are
    // charged their floors before the connections evicted for them have
    // wound down.
    let overhead = baseline + 1000 * 64 * KIB + budget / 2;
    eprintln!(
        "{name}, budget {} MiB: peak RSS {} MiB (baseline {} MiB, bound {} MiB) after {:?}; {stats}",
        budget / MIB,
        peak / MIB,
        baseline / MIB,
        (budget + overhead) / MIB,
        t.elapsed()
    );
    assert!(
        peak <= budget + overhead,
        "{name}: peak RSS {peak} over budget {budget} + overhead {overhead}; {stats}"
    );
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_greedy_native_connections_stay_within_a_small_budget() {
    thousand_greedy(Profile::Native, "native", Some(96 * MIB)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_greedy_native_connections_stay_within_the_default_budget() {
    thousand_greedy(Profile::Native, "native", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_greedy_yamux_connections_stay_within_the_default_budget() {
    thousand_greedy(Profile::Yamux, "yamux", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_greedy_yamux_connections_stay_within_a_small_budget() {
    thousand_greedy(Profile::Yamux, "yamux", Some(192 * MIB)).await;
}
