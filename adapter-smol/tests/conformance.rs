//! The adapter conformance suite over smol (loopback TCP through
//! `smol::net`), and once more under async-std: its `TcpStream` through the
//! same futures-io traits, its executor running the driver.

use adapter_core::conformance::{
    fill_send_buffer, BoxFuture, EchoHandle, EchoLayer, Ends, Harness, Link, Pair, Start,
    MEM_CLIENT, MEM_SERVER,
};
use adapter_core::secure::{assert_test_pair, suite_credentials, Suite, TempSocketPath};
use adapter_core::{Config, Credentials, Side};
use adapter_smol::{Addressed, Addresses, Connection, SmolRuntime, SmolTimer};
use futures_io::{AsyncRead, AsyncWrite};
use std::any::Any;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::time::Duration;

struct SmolHarness;

/// smol over loopback TCP with the secure handshake and encrypted records
/// under this suite.
struct SecureSmolHarness(Suite);

async fn smol_pair(client: Config, server: Config) -> io::Result<Pair> {
    smol_pair_with(client, server, None).await
}

async fn smol_pair_with(client: Config, server: Config, secure: Option<Suite>) -> io::Result<Pair> {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
    let a = smol::net::TcpStream::connect(listener.local_addr()?).await?;
    let (b, _) = listener.accept().await?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    let cut = a.clone();
    let (client, server) = if let Some(suite) = secure {
        let (cc, sc) = (
            suite_credentials(Side::Dialer, suite),
            suite_credentials(Side::Acceptor, suite),
        );
        let (c, s) = smol::future::zip(
            Connection::connect(a, client, &cc),
            Connection::accept(b, server, &sc),
        )
        .await;
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

    fn echo_sockets(
        &self,
        client: EchoLayer,
        server: EchoLayer,
    ) -> BoxFuture<io::Result<(EchoHandle, EchoHandle)>> {
        Box::pin(async move {
            let (a, b) = tcp().await?;
            let run = adapter_smol::spawn_layer;
            Ok((EchoHandle(run(a, client)), EchoHandle(run(b, server))))
        })
    }

    fn echo_flow(&self, flow: adapter_core::Flow, layer: EchoLayer) -> io::Result<EchoHandle> {
        let shared = adapter_core::spawn_layer(&SmolRuntime, flow, layer);
        Ok(EchoHandle(shared))
    }

    fn link(&self, link: Link, client: Start, server: Start) -> BoxFuture<io::Result<Ends>> {
        Box::pin(smol_link(link, client, server))
    }
}

async fn tcp() -> io::Result<(smol::net::TcpStream, smol::net::TcpStream)> {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
    let a = smol::net::TcpStream::connect(listener.local_addr()?).await?;
    let (b, _) = listener.accept().await?;
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

async fn smol_link(link: Link, client: Start, server: Start) -> io::Result<Ends> {
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
            use smol::net::unix::UnixListener;
            let sock = TempSocketPath::new("smol");
            let listener = UnixListener::bind(&sock.path)?;
            // The dialer through `Async<std UnixStream>`, the acceptor
            // through smol's own: both stream types, both `Addressed`.
            let a = smol::Async::<std::os::unix::net::UnixStream>::connect(&sock.path).await?;
            let (b, _) = listener.accept().await?;
            let server_addr = sock.address();
            keep.push(Box::new(sock));
            let cf = start(a, Side::Dialer, client, &mut keep, secure);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure);
            (cf, sf, "unix:".to_owned(), server_addr)
        }
        // TCP handed over as a plain stream.
        Link::Unaddressed => {
            let (a, b) = tcp().await?;
            let cf = start(a, Side::Dialer, client, &mut keep, secure_with);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure_with);
            (cf, sf, MEM_CLIENT.to_owned(), MEM_SERVER.to_owned())
        }
        // TCP whose send buffer is full: the peer never reads.
        Link::Stalled => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let a = std::net::TcpStream::connect(listener.local_addr()?)?;
            let (b, _) = listener.accept()?;
            fill_send_buffer(&a)?;
            let (ca, sa) = (a.local_addr()?.to_string(), b.local_addr()?.to_string());
            let a = smol::Async::new(a)?;
            let b = smol::Async::new(b)?;
            let cf = start(a, Side::Dialer, client, &mut keep, secure);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure);
            (cf, sf, ca, sa)
        }
        Link::Dial => {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
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
    let (client, server) = smol::future::zip(run(cf), run(sf)).await;
    Ok(Ends {
        client,
        server,
        client_addr,
        server_addr,
        keep,
    })
}

impl Harness for SecureSmolHarness {
    fn pair(&self, client: Config, server: Config) -> BoxFuture<io::Result<Pair>> {
        Box::pin(smol_pair_with(client, server, Some(self.0)))
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

    fn echo_sockets(
        &self,
        client: EchoLayer,
        server: EchoLayer,
    ) -> BoxFuture<io::Result<(EchoHandle, EchoHandle)>> {
        SmolHarness.echo_sockets(client, server)
    }

    fn echo_flow(&self, flow: adapter_core::Flow, layer: EchoLayer) -> io::Result<EchoHandle> {
        SmolHarness.echo_flow(flow, layer)
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

    fn echo_sockets(
        &self,
        client: EchoLayer,
        server: EchoLayer,
    ) -> BoxFuture<io::Result<(EchoHandle, EchoHandle)>> {
        use async_std::net::{TcpListener, TcpStream};
        Box::pin(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let a = TcpStream::connect(listener.local_addr()?).await?;
            let (b, _) = listener.accept().await?;
            let (a, b) = (adapter_smol::SmolIo(a), adapter_smol::SmolIo(b));
            Ok((
                EchoHandle(adapter_core::spawn_layer(&AsyncStd, a, client)),
                EchoHandle(adapter_core::spawn_layer(&AsyncStd, b, server)),
            ))
        })
    }

    fn echo_flow(&self, flow: adapter_core::Flow, layer: EchoLayer) -> io::Result<EchoHandle> {
        Ok(EchoHandle(adapter_core::spawn_layer(
            &AsyncStd, flow, layer,
        )))
    }
}

/// async-std's executor with async-io's timer, as a runtime for layers.
struct AsyncStd;

impl adapter_core::Runtime for AsyncStd {
    type Timer = SmolTimer;

    fn timer(&self) -> SmolTimer {
        SmolTimer::default()
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) {
        async_std::task::spawn(future);
    }
}

mod smol_tcp {
    adapter_core::conformance_tests!(super::SmolHarness);
}

mod links {
    adapter_core::link_conformance_tests!(super::SmolHarness);
}

mod async_std_tcp {
    adapter_core::conformance_tests!(super::AsyncStdHarness);
}

mod smol_secure_tcp_aes {
    adapter_core::conformance_tests!(super::SecureSmolHarness(
        adapter_core::secure::Suite::AesGcmSha256
    ));
}

mod smol_secure_tcp_chacha {
    adapter_core::conformance_tests!(super::SecureSmolHarness(
        adapter_core::secure::Suite::ChaChaPolyBlake2s
    ));
}
