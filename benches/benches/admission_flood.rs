//! A handshake flood against the tokio `Listener`, with and without
//! admission: how long a legitimate handshake from another source takes
//! unloaded and under the flood. A measurement, not a criterion bench:
//! it prints one table (see BENCHMARKS.md, "Handshake admission under a
//! flood").
//!
//! The server runs on a one-worker tokio runtime. The flooder, on its own
//! thread and runtime, keeps `FLOOD_TASKS` connections from 127.0.0.1
//! going: each sends a valid first Noise message (so every admitted one
//! costs the server a Diffie-Hellman reply), waits for the reply or the
//! close, and starts over. The legitimate clients dial from other loopback
//! addresses (127.1.0.1, 127.1.0.2, ...), one handshake at a time, and times each from connect to established.
//!
//! `cargo bench -p benches --bench admission_flood` measures for
//! `FLOOD_SECS` seconds per case; without `--bench` (`cargo test
//! --all-targets`) it runs a short smoke version.

use adapter_tokio::{AdmissionConfig, Config, Connection, Listener, ListenerOptions};
use benches::tls::weft_credentials;
use proto_core::secure::{Handshake, Params, Seed};
use proto_core::time::Instant as CoreInstant;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

const FLOOD_TASKS: usize = 128;

struct Plan {
    handshakes: usize,
    flood_secs: f64,
}

/// What the flooder sends first: a real initiator's first message.
fn first_message() -> Vec<u8> {
    let (client, _) = weft_credentials();
    let params = Params {
        identity: client.identity,
        roots: client.roots,
        authorizer: client.authorizer,
        wall_clock_secs: 1_700_000_000,
        backend: client.backend,
        local_address: String::new(),
        remote_address: String::new(),
    };
    let mut hs = Handshake::initiator(client.config, params, Seed::new([7; 32]), CoreInstant::ZERO)
        .expect("initiator");
    let mut out = Vec::new();
    while hs.poll_transmit(&mut out).is_some() {}
    out
}

async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(format!("{from}:0").parse().expect("an address"))?;
    let stream = s.connect(to).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[derive(Default)]
struct FloodCounts {
    attempts: AtomicU64,
    replies: AtomicU64,
}

/// Runs the flood until `stop`, on its own thread and runtime.
fn flood(
    to: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<FloodCounts>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("flood runtime");
        let msg: Arc<[u8]> = first_message().into();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for _ in 0..FLOOD_TASKS {
                let (stop, counts, msg) = (stop.clone(), counts.clone(), msg.clone());
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        counts.attempts.fetch_add(1, Ordering::Relaxed);
                        let Ok(mut s) = tokio::net::TcpStream::connect(to).await else {
                            tokio::task::yield_now().await;
                            continue;
                        };
                        if s.write_all(&msg).await.is_err() {
                            continue;
                        }
                        let mut buf = [0u8; 4096];
                        if let Ok(Ok(n)) =
                            tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await
                        {
                            if n > 0 {
                                counts.replies.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
    })
}

/// Legitimate clients, each from its own address outside 127.0.0.0/24
/// (one handshake each, as clients do: one source repeating handshakes
/// back to back would meet its own rate limit).
struct Clients {
    next: u32,
}

impl Clients {
    fn address(&mut self) -> String {
        let n = self.next;
        self.next = self.next.wrapping_add(1);
        format!(
            "127.{}.{}.{}",
            1 + (n >> 16) % 254,
            (n >> 8) & 0xff,
            1 + (n & 0xff) % 254
        )
    }
}

/// `n` handshakes from new sources, one at a time: their durations, sorted.
async fn legit(to: SocketAddr, n: usize, clients: &mut Clients) -> Vec<Duration> {
    let (client, _) = weft_credentials();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let stream = connect_from(&clients.address(), to).await.expect("connect");
        let conn = Connection::connect(stream, Config::default(), &client)
            .await
            .expect("legitimate handshake");
        times.push(t0.elapsed());
        drop(conn);
    }
    times.sort();
    times
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn case(name: &str, admission: AdmissionConfig, plan: &Plan) {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let (_, server_creds) = weft_credentials();
    let options = ListenerOptions {
        admission,
        ..ListenerOptions::default()
    };
    let listener = Arc::new(
        server_rt
            .block_on(Listener::bind(
                "127.0.0.1:0",
                Config::default(),
                &server_creds,
                options,
            ))
            .expect("bind"),
    );
    let addr = listener.local_addr();
    let l = listener.clone();
    server_rt.spawn(async move {
        while let Ok(conn) = l.accept().await {
            drop(conn);
        }
    });
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    // Warm up (first connections, page faults), then unloaded.
    let mut clients = Clients { next: 0 };
    client_rt.block_on(legit(addr, 5, &mut clients));
    let unloaded = client_rt.block_on(legit(addr, plan.handshakes, &mut clients));

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(FloodCounts::default());
    let before = listener.stats();
    let flooder = flood(addr, stop.clone(), counts.clone());
    // Let the flood reach its steady state before measuring.
    std::thread::sleep(Duration::from_secs_f64(plan.flood_secs / 4.0));
    let t0 = Instant::now();
    let (a0, r0) = (
        counts.attempts.load(Ordering::Relaxed),
        counts.replies.load(Ordering::Relaxed),
    );
    let mut flooded = Vec::new();
    while t0.elapsed().as_secs_f64() < plan.flood_secs || flooded.len() < plan.handshakes {
        flooded.extend(client_rt.block_on(legit(addr, 1, &mut clients)));
    }
    flooded.sort();
    let secs = t0.elapsed().as_secs_f64();
    let attempts = counts.attempts.load(Ordering::Relaxed) - a0;
    let replies = counts.replies.load(Ordering::Relaxed) - r0;
    stop.store(true, Ordering::Relaxed);
    flooder.join().expect("flooder");
    let after = listener.stats();

    let (u50, f50) = (pct(&unloaded, 50), pct(&flooded, 50));
    println!(
        "{name:<14} unloaded p50 {} p90 {} ms | flood p50 {} p90 {} ms ({} handshakes) | p50 ratio {:.1}x | flood {:.0} conn/s, {:.0} server replies/s | refused {} admitted {}",
        ms(u50),
        ms(pct(&unloaded, 90)),
        ms(f50),
        ms(pct(&flooded, 90)),
        flooded.len(),
        f50.as_secs_f64() / u50.as_secs_f64(),
        attempts as f64 / secs,
        replies as f64 / secs,
        after.admission.refused.total() - before.admission.refused.total(),
        after.admission.admitted - before.admission.admitted,
    );
    drop(listener);
    server_rt.shutdown_timeout(Duration::from_secs(1));
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let plan = if measuring {
        Plan {
            handshakes: 200,
            flood_secs: 8.0,
        }
    } else {
        Plan {
            handshakes: 3,
            flood_secs: 0.2,
        }
    };
    case("admission on", AdmissionConfig::default(), &plan);
    case("admission off", AdmissionConfig::unlimited(), &plan);
}
