//! The adapter conformance suite over tokio: real loopback TCP, and the
//! in-memory `tokio::io::duplex` pipe; the link cases (secure handshakes,
//! plaintext starts) over tokio's own streams.

use adapter_core::conformance::{
    BoxFuture, EchoHandle, EchoLayer, Ends, Harness, Link, Pair, Start, MEM_CLIENT, MEM_SERVER,
};
use adapter_core::secure::{assert_test_pair, suite_credentials, Suite, TempSocketPath};
use adapter_core::{Config, Credentials, Side};
use adapter_tokio::{Addressed, Addresses, Connection, TokioRuntime};
use std::any::Any;
use std::io;
use std::net::Shutdown;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

#[derive(Clone, Copy)]
enum Transport {
    Tcp,
    Duplex,
    /// Loopback TCP with the secure handshake and encrypted records under
    /// this suite.
    SecureTcp(Suite),
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

    fn secure_tcp(suite: Suite) -> Self {
        Self::new(Transport::SecureTcp(suite))
    }
}

async fn tcp_pair(client: Config, server: Config) -> io::Result<Pair> {
    tcp_pair_with(client, server, None).await
}

async fn tcp_pair_with(client: Config, server: Config, secure: Option<Suite>) -> io::Result<Pair> {
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
    let (client, server) = if let Some(suite) = secure {
        let (cc, sc) = (
            suite_credentials(Side::Dialer, suite),
            suite_credentials(Side::Acceptor, suite),
        );
        let (c, s) = tokio::join!(
            Connection::connect(a, client, &cc),
            Connection::accept(b, server, &sc)
        );
        let (c, s) = (c?, s?);
        // Every pair in the suite is really encrypted and authenticated.
        assert_test_pair(&c, &s);
        assert_eq!(c.security().map(|x| x.suite()), Some(suite));
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
            Transport::SecureTcp(suite) => Box::pin(tcp_pair_with(client, server, Some(suite))),
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

    fn echo_sockets(
        &self,
        client: EchoLayer,
        server: EchoLayer,
    ) -> BoxFuture<io::Result<(EchoHandle, EchoHandle)>> {
        let transport = self.transport;
        Box::pin(async move {
            use adapter_tokio::spawn_layer as run;
            Ok(match transport {
                Transport::Duplex => {
                    let (a, b) = tokio::io::duplex(64 * 1024);
                    (EchoHandle(run(a, client)), EchoHandle(run(b, server)))
                }
                Transport::Tcp | Transport::SecureTcp(_) => {
                    let (a, b) = tcp().await?;
                    (EchoHandle(run(a, client)), EchoHandle(run(b, server)))
                }
            })
        })
    }

    fn echo_flow(&self, flow: adapter_core::Flow, layer: EchoLayer) -> io::Result<EchoHandle> {
        let _rt = self.rt.enter();
        let shared = adapter_core::spawn_layer(&TokioRuntime, flow, layer);
        Ok(EchoHandle(shared))
    }

    fn link(&self, link: Link, client: Start, server: Start) -> BoxFuture<io::Result<Ends>> {
        Box::pin(tokio_link(link, client, server))
    }
}

async fn tcp() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let (a, b) = tokio::join!(
        TcpStream::connect(listener.local_addr()?),
        listener.accept()
    );
    let (a, (b, _)) = (a?, b?);
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    Ok((a, b))
}

type Started = BoxFuture<io::Result<adapter_core::Connection>>;

/// `connect` / `accept`: the addresses come from the socket.
fn secure<T>(io: T, side: Side, config: Config, creds: Credentials) -> Started
where
    T: Addressed + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(async move {
        match side {
            Side::Dialer => Connection::connect(io, config, &creds).await,
            Side::Acceptor => Connection::accept(io, config, &creds).await,
        }
        .map(Connection::into_core)
    })
}

/// `connect_with` / `accept_with`, stating the in-memory addresses.
fn secure_with<T>(io: T, side: Side, config: Config, creds: Credentials) -> Started
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(async move {
        match side {
            Side::Dialer => {
                let mem = Addresses::new(MEM_CLIENT, MEM_SERVER);
                Connection::connect_with(io, mem, config, &creds).await
            }
            Side::Acceptor => {
                let mem = Addresses::new(MEM_SERVER, MEM_CLIENT);
                Connection::accept_with(io, mem, config, &creds).await
            }
        }
        .map(Connection::into_core)
    })
}

/// Starts one end as `start` says (`secure` for a secure start).
fn start<T>(
    io: T,
    side: Side,
    start: Start,
    keep: &mut Vec<Box<dyn Any + Send>>,
    secure: fn(T, Side, Config, Credentials) -> Started,
) -> Option<Started>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match start {
        Start::Idle => {
            keep.push(Box::new(io));
            None
        }
        Start::Plain(config) => Some(Box::pin(async move {
            match side {
                Side::Dialer => Connection::client(io, config),
                Side::Acceptor => Connection::server(io, config),
            }
            .map(Connection::into_core)
        })),
        Start::Secure(config, creds) => Some(secure(io, side, config, creds)),
    }
}

async fn run(f: Option<Started>) -> Option<io::Result<adapter_core::Connection>> {
    match f {
        Some(f) => Some(f.await),
        None => None,
    }
}

async fn tokio_link(link: Link, client: Start, server: Start) -> io::Result<Ends> {
    let mut keep: Vec<Box<dyn Any + Send>> = Vec::new();
    let (cf, sf, client_addr, server_addr) = match link {
        Link::Tcp => {
            let (a, b) = tcp().await?;
            let (ca, sa) = (a.local_addr()?.to_string(), b.local_addr()?.to_string());
            let cf = start(a, Side::Dialer, client, &mut keep, secure);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure);
            (cf, sf, ca, sa)
        }
        #[cfg(unix)]
        Link::Unix => {
            let sock = TempSocketPath::new("tokio");
            let listener = tokio::net::UnixListener::bind(&sock.path)?;
            let (a, b) = tokio::join!(
                tokio::net::UnixStream::connect(&sock.path),
                listener.accept()
            );
            let (a, (b, _)) = (a?, b?);
            let server_addr = sock.address();
            keep.push(Box::new(sock));
            let cf = start(a, Side::Dialer, client, &mut keep, secure);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure);
            (cf, sf, "unix:".to_owned(), server_addr)
        }
        // A one-byte buffer: the first handshake write blocks.
        Link::Unaddressed | Link::Stalled => {
            let size = if link == Link::Stalled { 1 } else { 64 * 1024 };
            let (a, b) = tokio::io::duplex(size);
            let cf = start(a, Side::Dialer, client, &mut keep, secure_with);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure_with);
            (cf, sf, MEM_CLIENT.to_owned(), MEM_SERVER.to_owned())
        }
        Link::Dial => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let cf: Started = Box::pin(async move {
                match client {
                    Start::Secure(config, creds) => Connection::dial(addr, config, &creds).await,
                    Start::Plain(config) => Connection::connect_tcp(addr, config).await,
                    Start::Idle => Err(io::ErrorKind::Unsupported.into()),
                }
                .map(Connection::into_core)
            });
            let sf: Started = Box::pin(async move {
                let (b, _) = listener.accept().await?;
                let mut keep = Vec::new();
                match start(b, Side::Acceptor, server, &mut keep, secure) {
                    Some(f) => f.await,
                    None => Err(io::ErrorKind::Unsupported.into()),
                }
            });
            (Some(cf), Some(sf), String::new(), addr.to_string())
        }
        #[allow(unreachable_patterns)]
        _ => return Err(io::ErrorKind::Unsupported.into()),
    };
    let (client, server) = tokio::join!(run(cf), run(sf));
    Ok(Ends {
        client,
        server,
        client_addr,
        server_addr,
        keep,
    })
}

mod tcp {
    adapter_core::conformance_tests!(super::TokioHarness::tcp());
}

mod links {
    adapter_core::link_conformance_tests!(super::TokioHarness::tcp());
}

mod duplex {
    adapter_core::conformance_tests!(super::TokioHarness::duplex());
}

mod secure_tcp_aes {
    adapter_core::conformance_tests!(super::TokioHarness::secure_tcp(
        adapter_core::secure::Suite::AesGcmSha256
    ));
}

mod secure_tcp_chacha {
    adapter_core::conformance_tests!(super::TokioHarness::secure_tcp(
        adapter_core::secure::Suite::ChaChaPolyBlake2s
    ));
}
