//! The adapter conformance suite over smol (loopback TCP through
//! `smol::net`), and once more under async-std: its `TcpStream` through the
//! same futures-io traits, its executor running the driver.

use adapter_core::conformance::{BoxFuture, Harness, Pair};
use adapter_core::secure::{assert_test_pair, test_credentials};
use adapter_core::{Config, Side};
use adapter_smol::Connection;
use std::io;
use std::net::Shutdown;
use std::time::Duration;

struct SmolHarness;

/// smol over loopback TCP with the secure handshake and encrypted records.
struct SecureSmolHarness;

async fn smol_pair(client: Config, server: Config) -> io::Result<Pair> {
    smol_pair_with(client, server, false).await
}

async fn smol_pair_with(client: Config, server: Config, secure: bool) -> io::Result<Pair> {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
    let a = smol::net::TcpStream::connect(listener.local_addr()?).await?;
    let (b, _) = listener.accept().await?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    let cut = a.clone();
    let (client, server) = if secure {
        let (cc, sc) = (
            test_credentials(Side::Dialer),
            test_credentials(Side::Acceptor),
        );
        let (c, s) = smol::future::zip(
            Connection::connect(a, client, &cc),
            Connection::accept(b, server, &sc),
        )
        .await;
        let (c, s) = (c?, s?);
        // Every pair in the suite is really encrypted and authenticated.
        assert_test_pair(&c, &s);
        (c, s)
    } else {
        (
            Connection::client(a, client)?,
            Connection::server(b, server)?,
        )
    };
    Ok(Pair {
        client: client.into_core(),
        server: server.into_core(),
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

impl Harness for SecureSmolHarness {
    fn pair(&self, client: Config, server: Config) -> BoxFuture<io::Result<Pair>> {
        Box::pin(smol_pair_with(client, server, true))
    }

    fn spawn(&self, task: BoxFuture<()>) {
        SmolHarness.spawn(task)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        SmolHarness.sleep(duration)
    }

    fn block_on(&self, task: BoxFuture<()>) {
        SmolHarness.block_on(task)
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

mod smol_secure_tcp {
    adapter_core::conformance_tests!(super::SecureSmolHarness);
}
