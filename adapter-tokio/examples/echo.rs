//! A mux echo server and a load generator for it.
//!
//! ```text
//! cargo run --release -p adapter-tokio --example echo -- --listen 127.0.0.1:4000
//! cargo run --release -p adapter-tokio --example echo -- --connect 127.0.0.1:4000 --flows 64 --bytes 4194304
//! ```
//!
//! `--profile yamux` (on either side) speaks yamux v0 instead of weft's
//! native framing, so any yamux implementation can be pointed at the
//! server (as a yamux client: odd stream ids) or serve the client.
//!
//! The server echoes every flow it accepts. The client opens `--flows`
//! concurrent flows, sends `--bytes` pseudo-random bytes on each while
//! reading the echo, verifies every byte, and prints throughput, the
//! flow-open rate (flows opened and echoed one byte, per second) and RTT.

use adapter_tokio::{Config, Connection, Flow, Profile};
mod shared;

use shared::pattern;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const USAGE: &str = "usage: echo --listen ADDR [--profile native|yamux]
       echo --connect ADDR [--flows N] [--bytes B] [--profile native|yamux]";

enum Mode {
    Listen(String),
    Connect {
        addr: String,
        flows: usize,
        bytes: usize,
    },
}

fn parse() -> Result<(Mode, Profile), String> {
    let mut args = std::env::args().skip(1);
    let (mut listen, mut connect) = (None, None);
    let (mut flows, mut bytes) = (16usize, 1usize << 20);
    let mut profile = Profile::Native;
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--listen" => listen = Some(value()?),
            "--connect" => connect = Some(value()?),
            "--flows" => flows = value()?.parse().map_err(|e| format!("--flows: {e}"))?,
            "--bytes" => bytes = value()?.parse().map_err(|e| format!("--bytes: {e}"))?,
            "--profile" => {
                profile = match value()?.as_str() {
                    "native" => Profile::Native,
                    "yamux" => Profile::Yamux,
                    other => return Err(format!("--profile: unknown profile {other}")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    match (listen, connect) {
        (Some(addr), None) => Ok((Mode::Listen(addr), profile)),
        (None, Some(addr)) if flows > 0 => Ok((Mode::Connect { addr, flows, bytes }, profile)),
        (None, Some(_)) => Err("--flows must be at least 1".into()),
        _ => Err("give exactly one of --listen and --connect".into()),
    }
}

fn main() -> ExitCode {
    let (mode, profile) = match parse() {
        Ok(m) => m,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("echo: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let r = rt.block_on(async {
        match mode {
            Mode::Listen(addr) => serve(&addr, config(profile)).await,
            Mode::Connect { addr, flows, bytes } => {
                load(&addr, flows, bytes, config(profile)).await
            }
        }
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config(profile: Profile) -> Config {
    let mut c = Config::default();
    c.profile = profile;
    c.max_concurrent_flows = 4096;
    c
}

async fn serve(addr: &str, config: Config) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!(
        "echo: listening on {} ({:?} profile)",
        listener.local_addr()?,
        config.profile
    );
    loop {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let conn = Connection::server(stream, config.clone())?;
        tokio::spawn(async move {
            let mut flows = 0u64;
            while let Ok(flow) = conn.accept_flow().await {
                flows += 1;
                tokio::spawn(echo(flow));
            }
            let reason = conn.closed().await;
            let s = conn.stats();
            println!(
                "echo: {peer}: {flows} flows, {} bytes in, {} bytes out, closed: {reason:?}",
                s.data_received, s.data_sent
            );
        });
    }
}

/// Echoes one flow without copying: received chunks are written back as is.
async fn echo(flow: Flow) -> std::io::Result<()> {
    let (mut rx, mut tx) = flow.into_core().split();
    while let Some(chunk) = rx.read_chunk(64 * 1024).await? {
        tx.write_chunk(chunk).await?;
    }
    tx.finish()
}

/// Sends `data` on a new flow while reading the echo; checks it.
async fn roundtrip(conn: Connection, data: bytes::Bytes) -> std::io::Result<()> {
    let flow = conn.open_flow().await?.into_core();
    let (mut rx, mut tx) = flow.split();
    let expect = data.clone();
    let writer = tokio::spawn(async move {
        tx.write_chunk(data).await?;
        tx.finish()
    });
    let mut off = 0;
    while let Some(chunk) = rx.read_chunk(256 * 1024).await? {
        if expect.get(off..off + chunk.len()) != Some(&chunk[..]) {
            return Err(std::io::Error::other(format!(
                "echo mismatch at offset {off} on flow {}",
                rx.id()
            )));
        }
        off += chunk.len();
    }
    if off != expect.len() {
        return Err(std::io::Error::other(format!(
            "echo ended after {off} of {} bytes",
            expect.len()
        )));
    }
    writer.await.map_err(std::io::Error::other)?
}

async fn load(addr: &str, flows: usize, bytes: usize, config: Config) -> std::io::Result<()> {
    let profile = config.profile;
    let conn = Connection::connect_tcp(addr, config).await?;
    println!("echo: connected to {addr} ({profile:?} profile)");

    // RTT.
    let mut rtts = Vec::new();
    for _ in 0..10 {
        rtts.push(conn.ping().await?);
    }
    rtts.sort();

    // Flow-open rate: flows opened concurrently, each echoing one byte.
    let t = Instant::now();
    let tasks: Vec<_> = (0..flows)
        .map(|i| tokio::spawn(roundtrip(conn.clone(), pattern(i as u64, 1).into())))
        .collect();
    for task in tasks {
        task.await.map_err(std::io::Error::other)??;
    }
    let open_rate = flows as f64 / t.elapsed().as_secs_f64();

    // Throughput: every flow echoes `bytes`.
    let t = Instant::now();
    let tasks: Vec<_> = (0..flows)
        .map(|i| {
            tokio::spawn(roundtrip(
                conn.clone(),
                pattern(1000 + i as u64, bytes).into(),
            ))
        })
        .collect();
    for task in tasks {
        task.await.map_err(std::io::Error::other)??;
    }
    let elapsed = t.elapsed();
    let total = (flows * bytes) as f64;

    println!(
        "echo: {flows} flows x {bytes} bytes echoed and verified in {:.3} s",
        elapsed.as_secs_f64()
    );
    println!(
        "echo: throughput {:.1} MiB/s each way ({:.1} MiB/s total)",
        total / elapsed.as_secs_f64() / 1048576.0,
        2.0 * total / elapsed.as_secs_f64() / 1048576.0
    );
    println!(
        "echo: flow-open rate {open_rate:.0} flows/s (open + 1-byte echo, {flows} concurrent)"
    );
    println!(
        "echo: rtt min {:?} median {:?} max {:?}; smoothed {:?}",
        rtts[0],
        rtts[rtts.len() / 2],
        rtts[rtts.len() - 1],
        conn.rtt().unwrap_or(Duration::ZERO)
    );
    conn.go_away(0);
    let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .map_err(|_| std::io::Error::other("drain timed out"))?;
    println!("echo: closed: {reason:?}");
    Ok(())
}
