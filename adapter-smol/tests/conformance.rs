//! The adapter conformance suite over smol (loopback TCP through
//! `smol::net`), and once more under async-std: its `TcpStream` through the
//! same futures-io traits, its executor running the driver.

use adapter_core::conformance::{BoxFuture, Harness, Pair};
use adapter_core::Config;
use adapter_smol::Connection;
use std::io;
use std::net::Shutdown;
use std::time::Duration;

struct SmolHarness;

async fn smol_pair(client: Config, server: Config) -> io::Result<Pair> {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
    let a = smol::net::TcpStream::connect(listener.local_addr()?).await?;
    let (b, _) = listener.accept().await?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    let cut = a.clone();
    Ok(Pair {
        client: Connection::client(a, client)?.into_core(),
        server: Connection::server(b, server)?.into_core(),
        cut: Some(Box::new(move || {
            let _ = cut.shutdown(Shutdown::Both);
        })),
    })
}

impl Harness for SmolHarness {
    fn pair(&self, client: Config, server: Config) -> BoxFuture<io::Result<Pair>> {
        Box::pin(smol_pair(client, server))
    }

    fn spawn(&self, task: BoxFuture<()>) {
        smol::spawn(task).detach();
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(async move {
            async_io::Timer::after(duration).await;
        })
    }

    fn block_on(&self, task: BoxFuture<()>) {
        smol::block_on(task)
    }
}

struct AsyncStdHarness;

async fn async_std_pair(client: Config, server: Config) -> io::Result<Pair> {
    use async_std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let a = TcpStream::connect(listener.local_addr()?).await?;
    let (b, _) = listener.accept().await?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    let cut = a.clone();
    // The drivers run on async-std's executor, not smol's.
    let (client, driver) = Connection::new(a, client, adapter_core::Side::Dialer)?;
    async_std::task::spawn(driver);
    let (server, driver) = Connection::new(b, server, adapter_core::Side::Acceptor)?;
    async_std::task::spawn(driver);
    Ok(Pair {
        client: client.into_core(),
        server: server.into_core(),
        cut: Some(Box::new(move || {
            let _ = cut.shutdown(Shutdown::Both);
        })),
    })
}

impl Harness for AsyncStdHarness {
    fn pair(&self, client: Config, server: Config) -> BoxFuture<io::Result<Pair>> {
        Box::pin(async_std_pair(client, server))
    }

    fn spawn(&self, task: BoxFuture<()>) {
        async_std::task::spawn(task);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(async_std::task::sleep(duration))
    }

    fn block_on(&self, task: BoxFuture<()>) {
        async_std::task::block_on(task)
    }
}

mod smol_tcp {
    adapter_core::conformance_tests!(super::SmolHarness);
}

mod async_std_tcp {
    adapter_core::conformance_tests!(super::AsyncStdHarness);
}
