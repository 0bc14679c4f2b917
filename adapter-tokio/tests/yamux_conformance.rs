//! The adapter conformance suite with both ends speaking the yamux profile,
//! over loopback TCP: every case whose expectations the yamux wire can
//! meet. The others check what yamux cannot carry, and
//! `proto-core/tests/yamux_pair.rs` covers them with yamux's semantics:
//! `echo` and `server_opens` (native id parity), `reset_mid_transfer` and
//! `stop_sending` (reset codes), `flow_limit` (MAX_FLOWS credit),
//! `go_away_drain` (our GoAway waits for the drain), `close_with_reason`
//! (no close reason on the wire), `side_channel` (not on the wire).

use adapter_core::conformance::{cases, run, BoxFuture, Harness, Pair, Shared};
use adapter_core::Config;
use adapter_tokio::{Connection, Profile};
use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

struct YamuxHarness {
    rt: Runtime,
}

async fn tcp_pair(mut client: Config, mut server: Config) -> io::Result<Pair> {
    client.profile = Profile::Yamux;
    server.profile = Profile::Yamux;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (a, (b, _)) = (a?, b?);
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    let a = a.into_std()?;
    let cut = a.try_clone()?;
    let a = TcpStream::from_std(a)?;
    Ok(Pair {
        client: Connection::client(a, client)?.into_core(),
        server: Connection::server(b, server)?.into_core(),
        cut: Some(Box::new(move || {
            let _ = cut.shutdown(Shutdown::Both);
        })),
    })
}

impl Harness for YamuxHarness {
    fn pair(&self, client: Config, server: Config) -> BoxFuture<io::Result<Pair>> {
        Box::pin(tcp_pair(client, server))
    }

    fn spawn(&self, task: BoxFuture<()>) {
        self.rt.spawn(task);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(async move { tokio::time::sleep(duration).await })
    }

    fn block_on(&self, task: BoxFuture<()>) {
        self.rt.block_on(task)
    }
}

fn harness() -> Shared {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Arc::new(YamuxHarness { rt })
}

macro_rules! yamux_cases {
    ($($case:ident),* $(,)?) => {
        $( #[test] fn $case() { run(harness(), cases::$case) } )*
    };
}

yamux_cases!(
    many_flows,
    half_close_client_first,
    half_close_server_first,
    drop_semantics,
    backpressure,
    ping,
    go_away_right_after_open,
    transport_eof,
    idle_timeout,
);
