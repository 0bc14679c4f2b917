//! A self-contained tour of weft's mux on tokio, with no arguments:
//!
//! ```text
//! cargo run --release -p adapter-tokio --example demo
//! ```
//!
//! It starts a server and a client on 127.0.0.1 (an ephemeral port),
//! opens several flows that carry data concurrently (checksums verified),
//! pings for the RTT, drains the connection with GOAWAY, and prints a short
//! report. It exits 0 on success and 1 on any failure, within seconds.

use adapter_tokio::{CloseReason, Config, Connection, ErrorCode, Flow};
mod shared;

use shared::pattern;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FLOWS: u64 = 8;
const BYTES_PER_FLOW: usize = 4 << 20;

fn main() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let r = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), demo())
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

async fn demo() -> Result<(), Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("demo: server listening on {addr}");
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let conn = Connection::server(stream, Config::default())?;
        serve(conn).await
    });

    let client = Connection::connect_tcp(addr, Config::default()).await?;
    println!("demo: client connected");

    // Several flows carrying data concurrently.
    let t = Instant::now();
    let tasks: Vec<_> = (0..FLOWS)
        .map(|i| {
            tokio::spawn(exchange(
                client.clone(),
                i,
                BYTES_PER_FLOW - i as usize * 1000,
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
    let server_reason = server.await??;
    let stats = client.stats();
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
    println!("  client closed     {}", describe(&client_reason));
    println!("  server closed     {}", describe(&server_reason));
    if !drained(&client_reason) || !drained(&server_reason) {
        return Err("the connection did not close as drained".into());
    }
    Ok(())
}
