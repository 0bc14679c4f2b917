//! The adapter conformance suite over tokio: real loopback TCP, and the
//! in-memory `tokio::io::duplex` pipe.

use adapter_core::conformance::{BoxFuture, Harness, Pair};
use adapter_core::secure::{assert_test_pair, test_credentials};
use adapter_core::{Config, Side};
use adapter_tokio::Connection;
use std::io;
use std::net::Shutdown;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

#[derive(Clone, Copy)]
enum Transport {
    Tcp,
    Duplex,
    /// Loopback TCP with the secure handshake and encrypted records.
    SecureTcp,
}

struct TokioHarness {
    rt: Runtime,
    transport: Transport,
}

impl TokioHarness {
    fn new(transport: Transport) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        TokioHarness { rt, transport }
    }

    fn tcp() -> Self {
        Self::new(Transport::Tcp)
    }

    fn duplex() -> Self {
        Self::new(Transport::Duplex)
    }

    fn secure_tcp() -> Self {
        Self::new(Transport::SecureTcp)
    }
}

async fn tcp_pair(client: Config, server: Config) -> io::Result<Pair> {
    tcp_pair_with(client, server, false).await
}

async fn tcp_pair_with(client: Config, server: Config, secure: bool) -> io::Result<Pair> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (a, (b, _)) = (a?, b?);
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    // Keep a clone of the client's socket to cut the transport under it.
    let a = a.into_std()?;
    let cut = a.try_clone()?;
    let a = TcpStream::from_std(a)?;
    let (client, server) = if secure {
        let (cc, sc) = (
            test_credentials(Side::Dialer),
            test_credentials(Side::Acceptor),
        );
        let (c, s) = tokio::join!(
            Connection::connect(a, client, &cc),
            Connection::accept(b, server, &sc)
        );
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

async fn duplex_pair(client: Config, server: Config) -> io::Result<Pair> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    Ok(Pair {
        client: Connection::client(a, client)?.into_core(),
        server: Connection::server(b, server)?.into_core(),
        cut: None,
    })
}

impl Harness for TokioHarness {
    fn pair(&self, client: Config, server: Config) -> BoxFuture<io::Result<Pair>> {
        match self.transport {
            Transport::Tcp => Box::pin(tcp_pair(client, server)),
            Transport::Duplex => Box::pin(duplex_pair(client, server)),
            Transport::SecureTcp => Box::pin(tcp_pair_with(client, server, true)),
        }
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

mod tcp {
    adapter_core::conformance_tests!(super::TokioHarness::tcp());
}

mod duplex {
    adapter_core::conformance_tests!(super::TokioHarness::duplex());
}

mod secure_tcp {
    adapter_core::conformance_tests!(super::TokioHarness::secure_tcp());
}
