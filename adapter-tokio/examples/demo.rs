//! A self-contained tour of weft's mux on tokio, with no arguments:
//!
//! ```text
//! cargo run --release -p adapter-tokio --example demo              # encrypted
//! cargo run --release -p adapter-tokio --example demo -- --insecure # plaintext
//! ```
//!
//! It makes a root blesser and two identities in memory (fresh random keys
//! each run: `demo:server` and `demo:client`), starts a server and a client
//! on 127.0.0.1 (an ephemeral port) that run the secure handshake, each
//! admitting only the other's name, opens several flows that carry data
//! concurrently (checksums verified), pings for the RTT, drains the
//! connection with GOAWAY, and prints a short report with what each side
//! proved to the other. `--insecure` runs the same over the plaintext mux,
//! the opt-out for trusted links. Last, transport services: a client races
//! `localhost` (`::1` blackholed, 127.0.0.1 serving) Happy-Eyeballs style
//! and talks in messages (the `taps` example). `WEFT_DEMO_BYTES` sets the bytes per
//! flow (default 4 MiB). It exits 0 on success and 1 on any failure,
//! within seconds.

use adapter_core::conformance::echo::{EchoHandle, EchoLayer};
use adapter_core::proto_core::sim::echo::EchoRole;
use adapter_tokio::secure::{AllowNames, Blesser, Identity, TrustedRoots};
use adapter_tokio::{CloseReason, Config, Connection, Credentials, ErrorCode, Flow, Security};
mod shared;

use shared::pattern;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FLOWS: u64 = 8;
pub(crate) const BYTES_PER_FLOW: usize = 4 << 20;

/// What the command line and environment asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// Encrypted and authenticated (the default) or plaintext (`--insecure`).
    pub(crate) secure: bool,
    pub(crate) bytes_per_flow: usize,
}

const USAGE: &str = "usage: demo [--insecure]";

/// Options from the arguments (after the program name) and the value of
/// `WEFT_DEMO_BYTES`; `Ok(None)` for `--help`.
pub(crate) fn options(
    args: impl IntoIterator<Item = String>,
    bytes: Option<String>,
) -> Result<Option<Options>, String> {
    let mut secure = true;
    for arg in args {
        match arg.as_str() {
            "--insecure" => secure = false,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    let min = FLOWS as usize * 1000;
    let bytes_per_flow = match bytes {
        None => BYTES_PER_FLOW,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= min => n,
            _ => {
                return Err(format!(
                    "WEFT_DEMO_BYTES must be a number of at least {min}"
                ))
            }
        },
    };
    Ok(Some(Options {
        secure,
        bytes_per_flow,
    }))
}

fn main() -> ExitCode {
    let opts = match options(
        std::env::args().skip(1),
        std::env::var("WEFT_DEMO_BYTES").ok(),
    ) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let r = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(20),
            demo(opts.secure, opts.bytes_per_flow),
        )
        .await
        .unwrap_or_else(|_| Err("the demo did not finish within 20 s".into()))
    });
    match r {
        Ok(()) => {
            println!("demo: OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn fnv(h: u64, data: &[u8]) -> u64 {
    data.iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// Fresh random 32 bytes (a key's secret).
fn secret() -> Result<[u8; 32], Error> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| e.to_string())?;
    Ok(s)
}

/// An in-memory root `demo` and the two sides' credentials: each is blessed
/// by the root and admits only the other's name. A real deployment keeps
/// the root's secret offline and each identity's secret on its machine.
fn credentials() -> Result<(Credentials, Credentials), Error> {
    let root = Blesser::root("demo", secret()?)?;
    let mut roots = TrustedRoots::new();
    let (name, key) = root.trusted_root();
    roots.add(&name, key);
    let creds = |me: &str, peer: &str| -> Result<Credentials, Error> {
        let mut id = Identity::from_secret(secret()?);
        id.add_blessing(root.bless(me, id.public_key(), None)?)?;
        let allow = Arc::new(AllowNames::new([peer]));
        Ok(Credentials::new(id, roots.clone(), allow))
    };
    Ok((
        creds("server", "demo:client")?,
        creds("client", "demo:server")?,
    ))
}

/// One side's view of the handshake, for the report.
fn view(sec: Option<&Security>) -> String {
    match sec {
        Some(s) => format!(
            "peer proved {:?}, granted {:?}; we showed {:?}",
            s.remote_blessings(),
            s.granted(),
            s.local_blessings()
        ),
        None => "plaintext (--insecure)".to_string(),
    }
}

/// The server: echoes every flow it accepts, with tokio's IO traits.
async fn serve(conn: Connection) -> Result<CloseReason, Error> {
    let mut tasks = Vec::new();
    while let Ok(flow) = conn.accept_flow().await {
        tasks.push(tokio::spawn(echo(flow)));
    }
    for t in tasks {
        t.await??;
    }
    Ok(conn.closed().await)
}

async fn echo(flow: Flow) -> Result<(), Error> {
    let (mut rx, mut tx) = flow.split();
    tokio::io::copy(&mut rx, &mut tx).await?;
    tx.shutdown().await?; // FIN
    Ok(())
}

/// Sends a pattern on a new flow while reading the echo; returns (bytes, checksum ok).
async fn exchange(conn: Connection, seed: u64, len: usize) -> Result<usize, Error> {
    let flow = conn.open_flow().await?;
    let (mut rx, mut tx) = flow.split();
    let data = pattern(seed, len);
    let sent_sum = fnv(FNV0, &data);
    let writer = tokio::spawn(async move {
        tx.write_all(&data).await?;
        tx.shutdown().await
    });
    let mut sum = FNV0;
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = rx.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        sum = fnv(sum, &buf[..n]);
        got += n;
    }
    writer.await??;
    if got != len || sum != sent_sum {
        return Err(format!("flow {seed}: echoed {got} of {len} bytes, checksum mismatch").into());
    }
    Ok(got)
}

fn describe(r: &CloseReason) -> String {
    match r {
        CloseReason::Transport { code, reason } => {
            format!(
                "by the peer: {code:?} \"{}\"",
                String::from_utf8_lossy(reason)
            )
        }
        CloseReason::Application { code, reason } => format!(
            "by the peer's application: code {code} \"{}\"",
            String::from_utf8_lossy(reason)
        ),
        CloseReason::Drained => "drained (every flow ended after GOAWAY)".to_string(),
        other => format!("{other:?}"),
    }
}

pub(crate) async fn demo(secure: bool, bytes_per_flow: usize) -> Result<(), Error> {
    let (server_creds, client_creds) = credentials()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("demo: server listening on {addr}");
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let conn = if secure {
            Connection::accept(stream, Config::default(), &server_creds).await?
        } else {
            Connection::server(stream, Config::default())?
        };
        let security = conn.security();
        Ok::<_, Error>((serve(conn).await?, security))
    });

    let client = if secure {
        Connection::dial(addr, Config::default(), &client_creds).await?
    } else {
        Connection::connect_tcp(addr, Config::default()).await?
    };
    match client.security() {
        Some(s) => println!(
            "demo: client connected, encrypted (Noise XX, {}, protocol {}, handshake hash {:02x?}..); the server proved {:?}",
            s.suite(),
            s.version(),
            &s.handshake_hash()[..4],
            s.remote_blessings()
        ),
        None => println!("demo: client connected in PLAINTEXT (--insecure)"),
    }

    // Several flows carrying data concurrently.
    let t = Instant::now();
    let tasks: Vec<_> = (0..FLOWS)
        .map(|i| {
            tokio::spawn(exchange(
                client.clone(),
                i,
                bytes_per_flow - i as usize * 1000,
            ))
        })
        .collect();
    let mut bytes = 0;
    for t in tasks {
        bytes += t.await??;
    }
    let elapsed = t.elapsed();
    println!(
        "demo: {FLOWS} concurrent flows echoed {:.1} MiB, checksums verified, in {:.3} s ({:.1} MiB/s each way)",
        bytes as f64 / 1048576.0,
        elapsed.as_secs_f64(),
        bytes as f64 / 1048576.0 / elapsed.as_secs_f64()
    );

    // Ping.
    let rtt = client.ping().await?;
    println!("demo: ping rtt {rtt:?} (smoothed {:?})", client.rtt());

    // A byte-stream machine (the length-prefixed echo protocol: the shape
    // RPC and sessions take) on one flow, run by the same driver code as
    // the connection itself; the server's plain byte echo sends it back.
    let flow = client.open_flow().await?;
    let echo = EchoHandle(adapter_tokio::spawn_layer(
        flow,
        EchoLayer::new(EchoRole::Client, 64 * 1024),
    ));
    let sizes = [0usize, 1, 100, 4096, 65536];
    for (i, n) in sizes.iter().enumerate() {
        echo.send(&vec![i as u8; *n])?;
    }
    for (i, n) in sizes.iter().enumerate() {
        let reply = echo.reply().await.ok_or("the echo machine ended early")?;
        if reply.len() != *n || reply.iter().any(|b| *b != i as u8) {
            return Err(format!("echo message {i} came back altered").into());
        }
    }
    echo.close(0);
    println!(
        "demo: a byte-stream machine (length-prefixed echo) on one flow: {} messages echoed whole",
        sizes.len()
    );

    // Graceful drain: one flow is still open when GOAWAY goes out.
    let mut last = client.open_flow().await?;
    last.write_all(b"in flight ").await?;
    let mut head = [0u8; 10];
    last.read_exact(&mut head).await?; // the server has the flow
    client.go_away(0);
    match client.open_flow().await {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            println!("demo: GOAWAY sent; new flows are refused ({e})")
        }
        Err(e) => return Err(format!("open after GOAWAY failed oddly: {e}").into()),
        Ok(_) => return Err("a flow opened after GOAWAY".into()),
    }
    last.write_all(b"during GOAWAY").await?;
    last.shutdown().await?;
    let mut echoed = head.to_vec();
    last.read_to_end(&mut echoed).await?;
    if echoed != b"in flight during GOAWAY" {
        return Err("the in-flight flow did not finish intact".into());
    }
    drop(last);
    println!("demo: the flow open during the drain finished intact");

    let client_reason = client.closed().await;
    let (server_reason, server_security) = server.await??;
    let stats = client.stats();
    if secure {
        let granted = |s: Option<&Security>| s.map(|s| s.granted().to_vec());
        let want = |n: &str| Some(vec![n.to_string()]);
        if granted(client.security().as_deref()) != want("demo:server")
            || granted(server_security.as_deref()) != want("demo:client")
        {
            return Err("the sides were not granted each other's names".into());
        }
        // Both ends derived the same handshake hash: one channel, no one between.
        let hash = |s: Option<&Security>| s.map(|s| *s.handshake_hash());
        if hash(client.security().as_deref()) != hash(server_security.as_deref()) {
            return Err("the two ends saw different handshake hashes".into());
        }
    }
    let drained = |r: &CloseReason| {
        matches!(r, CloseReason::Drained)
            || matches!(r, CloseReason::Transport { code, .. } if *code == ErrorCode::NoError)
    };
    println!("demo: report");
    println!("  flows opened      {}", stats.flows_opened);
    println!("  payload sent      {} bytes", stats.data_sent);
    println!("  payload received  {} bytes", stats.data_received);
    println!(
        "  wire bytes        {} out, {} in",
        stats.bytes_sent, stats.bytes_received
    );
    println!(
        "  throughput        {:.1} MiB/s each way",
        bytes as f64 / 1048576.0 / elapsed.as_secs_f64()
    );
    println!("  rtt               {rtt:?}");
    println!("  client security   {}", view(client.security().as_deref()));
    println!("  server security   {}", view(server_security.as_deref()));
    println!("  client closed     {}", describe(&client_reason));
    println!("  server closed     {}", describe(&server_reason));
    if !drained(&client_reason) || !drained(&server_reason) {
        return Err("the connection did not close as drained".into());
    }
    taps_step().await
}

/// Transport services: race `localhost` past a blackholed `::1` to a
/// message server on 127.0.0.1 (the `taps` example's tour).
async fn taps_step() -> Result<(), Error> {
    let t = shared::taps_tour::tour().await?;
    let a = &t.report.attempts;
    let winner = a
        .iter()
        .find(|a| a.outcome == adapter_core::taps::AttemptOutcome::Won);
    let Some(winner) = winner else {
        return Err("the race named no winner".into());
    };
    println!(
        "demo: taps raced localhost: {} attempts, ::1 blackholed; {} won, started at {:.1} ms (attempt delay {:?}), ready at {:.1} ms",
        a.len(),
        winner.candidate,
        winner.started.as_secs_f64() * 1e3,
        t.report.attempt_delay,
        winner.ended.as_secs_f64() * 1e3,
    );
    println!(
        "demo: taps messages came back in priority order: {:?}; zero-lifetime message expired: {}; next race's delay from the cached RTT: {:?}",
        t.replies, t.expired, t.cached_delay
    );
    if !t.winner.contains("127.0.0.1") || !t.expired || !t.replies[0].contains("PRIORITY 1") {
        return Err("the transport-services step did not go as expected".into());
    }
    session_step().await
}

/// Sessions: log in over WebSocket, restore the session on a second
/// client, a signal, an error reply, a graceful shutdown (the `session`
/// example serves the same protocol to a browser).
async fn session_step() -> Result<(), Error> {
    let t = shared::session_tour::tour().await?;
    println!(
        "demo: session {}... created by one client, restored by another: {} ({} connections hold it)",
        t.key_prefix, t.restored, t.holders
    );
    println!(
        "demo: session signal answered {:?}; unknown request got error {:?}; during shutdown the running request finished ({:?}) and a new one got the {}",
        t.pong, t.error_code, t.in_flight_reply, t.late_request
    );
    if !t.restored
        || t.holders != 2
        || t.pong != "hello"
        || t.in_flight_reply != "finished"
        || t.late_request != "shutdown reply"
    {
        return Err("the session step did not go as expected".into());
    }
    Ok(())
}
