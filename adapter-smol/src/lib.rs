//! weft's mux connections on smol, over any futures-io stream.
//!
//! This crate only plugs smol into [`adapter_core`]: an IO wrapper over
//! futures-io's traits ([`SmolIo`]), `async-io`'s timer ([`SmolTimer`]) and
//! `smol::spawn` ([`SmolRuntime`]). The driver loop, the waker bookkeeping
//! and the handles are `adapter_core`'s; [`Connection`] and [`Flow`] wrap
//! them so that flows implement futures-io's [`AsyncRead`] and
//! [`AsyncWrite`] (`close` sends FIN).
//!
//! Any `AsyncRead + AsyncWrite + Unpin + Send + 'static` stream works:
//! `smol::net::TcpStream`, `Async<std::net::TcpStream>`, a Unix socket, and
//! async-std's `TcpStream` through the same traits. On another executor
//! (async-std's, say), use [`Connection::new`] and spawn the driver there;
//! the timer works anywhere.
//!
//! Connections are authenticated and encrypted by default:
//! [`Connection::dial`] (TCP) or [`Connection::connect`] on the client and
//! [`Connection::accept`] on the server run the Noise XX handshake with
//! each side's [`Credentials`] (see [`adapter_core::secure`] and the
//! README's first example). [`Connection::client`] and
//! [`Connection::server`], used below for brevity, are the plaintext
//! opt-out for trusted links.
//!
//! ```
//! use adapter_smol::{Config, Connection};
//! use smol::io::{AsyncReadExt, AsyncWriteExt};
//!
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let client = Connection::connect_tcp(addr, Config::default()).await?;
//!     let (stream, _) = listener.accept().await?;
//!     let server = Connection::server(stream, Config::default())?;
//!
//!     let mut flow = client.open_flow().await?;
//!     flow.write_all(b"hello").await?;
//!     flow.close().await?; // FIN
//!
//!     let mut accepted = server.accept_flow().await?;
//!     let mut got = Vec::new();
//!     accepted.read_to_end(&mut got).await?;
//!     assert_eq!(got, b"hello");
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io::{self, IoSlice};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

mod listener;
pub mod taps;

pub use adapter_core::listener::{
    AdmissionConfig, AdmissionStats, Excess, ListenerOptions, ListenerStats, Reason, RefusalCounts,
};
pub use listener::Listener;

pub use adapter_core::secure::{self, Addresses, Credentials, Security};
pub use adapter_core::{
    close_reason, reset_code, stop_code, CloseReason, Config, ConnectionClosed, ConnectionStats,
    ErrorCode, FlowId, FlowStats, GoingAway, Ping, Profile, Side,
};

/// A socket that knows both its ends' addresses, for the authorizer
/// ([`Connection::connect`], [`Connection::accept`]).
pub trait Addressed {
    /// Our end's and the peer's addresses.
    fn addresses(&self) -> io::Result<Addresses>;
}

impl Addressed for smol::net::TcpStream {
    fn addresses(&self) -> io::Result<Addresses> {
        Ok(Addresses::tcp(self.local_addr()?, self.peer_addr()?))
    }
}

impl Addressed for smol::Async<std::net::TcpStream> {
    fn addresses(&self) -> io::Result<Addresses> {
        let s = self.get_ref();
        Ok(Addresses::tcp(s.local_addr()?, s.peer_addr()?))
    }
}

#[cfg(unix)]
impl Addressed for smol::net::unix::UnixStream {
    fn addresses(&self) -> io::Result<Addresses> {
        let (local, peer) = (self.local_addr()?, self.peer_addr()?);
        Ok(Addresses::unix(local.as_pathname(), peer.as_pathname()))
    }
}

#[cfg(unix)]
impl Addressed for smol::Async<std::os::unix::net::UnixStream> {
    fn addresses(&self) -> io::Result<Addresses> {
        let s = self.get_ref();
        let (local, peer) = (s.local_addr()?, s.peer_addr()?);
        Ok(Addresses::unix(local.as_pathname(), peer.as_pathname()))
    }
}

/// A futures-io stream as an [`adapter_core::Transport`]; shutdown is `poll_close`.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let stream = smol::net::TcpStream::connect("127.0.0.1:4000").await?;
/// let io = adapter_smol::SmolIo(stream);
/// # let _ = io; Ok(()) }
/// ```
#[derive(Debug)]
pub struct SmolIo<T>(pub T);

impl<T> adapter_core::Transport for SmolIo<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// `async-io`'s timer as an [`adapter_core::Timer`]; it runs on
/// async-io's own reactor, so it works under any executor.
///
/// ```
/// use adapter_core::Timer;
/// let mut t = adapter_smol::SmolTimer::default();
/// t.reset(std::time::Instant::now());
/// smol::block_on(std::future::poll_fn(|cx| t.poll_expired(cx)));
/// ```
#[derive(Debug)]
pub struct SmolTimer(async_io::Timer);

impl Default for SmolTimer {
    fn default() -> Self {
        SmolTimer(async_io::Timer::never())
    }
}

impl adapter_core::Timer for SmolTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// smol as an [`adapter_core::Runtime`]: `smol::spawn` and [`SmolTimer`].
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let stream = smol::net::TcpStream::connect("127.0.0.1:4000").await?;
/// let conn = adapter_core::spawn_connection(
///     &adapter_smol::SmolRuntime,
///     adapter_smol::SmolIo(stream),
///     adapter_smol::Config::default(),
///     adapter_smol::Side::Dialer,
/// )?;
/// # drop(conn); Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl adapter_core::Runtime for SmolRuntime {
    type Timer = SmolTimer;

    fn timer(&self) -> SmolTimer {
        SmolTimer::default()
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) {
        smol::spawn(future).detach();
    }
}

/// Runs `layer`'s machine over a futures-io stream through the one
/// driver, spawned with `smol::spawn`; returns the state its handles
/// share. On a [`Flow`]: `adapter_core::spawn_layer(&SmolRuntime, flow.into_core(), layer)`.
pub fn spawn_layer<T, L>(io: T, layer: L) -> std::sync::Arc<adapter_core::Shared<L>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    L: adapter_core::Layer,
{
    adapter_core::spawn_layer(&SmolRuntime, SmolIo(io), layer)
}

/// The driver future of a connection over `T`, for [`Connection::new`].
pub type Driver<T> = adapter_core::Driver<adapter_core::MuxLayer, SmolIo<T>, SmolTimer>;

/// A multiplexed connection over a futures-io stream; clones share it.
///
/// It derefs to [`adapter_core::Connection`] for everything that does not
/// involve a flow type: `ping`, `go_away`, `close`, `closed`, `stats`,
/// `rtt`, ...
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use adapter_smol::{Config, Connection};
/// let conn = Connection::connect_tcp("127.0.0.1:4000", Config::default()).await?;
/// println!("rtt {:?}", conn.ping().await?);
/// conn.go_away(0);
/// conn.closed().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Connection {
    inner: adapter_core::Connection,
}

impl Deref for Connection {
    type Target = adapter_core::Connection;

    fn deref(&self) -> &adapter_core::Connection {
        &self.inner
    }
}

impl From<adapter_core::Connection> for Connection {
    fn from(inner: adapter_core::Connection) -> Self {
        Connection { inner }
    }
}

impl Connection {
    /// The dialing side over `io`; spawns the driver with `smol::spawn`.
    /// A bad `config` is `InvalidInput`.
    pub fn client<T>(io: T, config: Config) -> io::Result<Self>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::spawn(io, config, Side::Dialer)
    }

    /// The accepting side over `io`; spawns the driver with `smol::spawn`.
    pub fn server<T>(io: T, config: Config) -> io::Result<Self>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::spawn(io, config, Side::Acceptor)
    }

    fn spawn<T>(io: T, config: Config, side: Side) -> io::Result<Self>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        adapter_core::spawn_connection(&SmolRuntime, SmolIo(io), config, side).map(Self::from)
    }

    /// Dials securely over a socket: runs the Noise XX handshake (the
    /// server proves who it is first; `creds.authorizer` must accept it
    /// before we reveal ourselves), then the mux over encrypted records.
    /// The authorizer sees the socket's local and peer addresses. A refused
    /// peer is `PermissionDenied`; see [`adapter_core::secure`]. The
    /// plaintext [`client`](Self::client) is the opt-out for trusted links;
    /// [`dial`](Self::dial) connects TCP and runs this in one call.
    pub async fn connect<T>(io: T, config: Config, creds: &Credentials) -> io::Result<Self>
    where
        T: Addressed + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let addresses = io.addresses()?;
        Self::spawn_secure(io, addresses, config, Side::Dialer, creds).await
    }

    /// Accepts securely over a socket: the handshake's responder side (we
    /// prove who we are first; `creds.authorizer` decides on the client,
    /// seeing the socket's addresses), then the mux over encrypted records.
    pub async fn accept<T>(io: T, config: Config, creds: &Credentials) -> io::Result<Self>
    where
        T: Addressed + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let addresses = io.addresses()?;
        Self::spawn_secure(io, addresses, config, Side::Acceptor, creds).await
    }

    /// [`connect`](Self::connect) over any stream: the caller states the
    /// `addresses` the authorizer sees, since the stream cannot tell.
    pub async fn connect_with<T>(
        io: T,
        addresses: Addresses,
        config: Config,
        creds: &Credentials,
    ) -> io::Result<Self>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::spawn_secure(io, addresses, config, Side::Dialer, creds).await
    }

    /// [`accept`](Self::accept) over any stream, with the caller's `addresses`.
    pub async fn accept_with<T>(
        io: T,
        addresses: Addresses,
        config: Config,
        creds: &Credentials,
    ) -> io::Result<Self>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::spawn_secure(io, addresses, config, Side::Acceptor, creds).await
    }

    async fn spawn_secure<T>(
        io: T,
        addresses: Addresses,
        config: Config,
        side: Side,
        creds: &Credentials,
    ) -> io::Result<Self>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        adapter_core::spawn_secure_connection(
            &SmolRuntime,
            SmolIo(io),
            config,
            side,
            creds,
            &addresses,
        )
        .await
        .map(Self::from)
    }

    /// A connection and its driver, which the caller spawns on any
    /// executor (async-std's `task::spawn`, a `LocalExecutor`, ...).
    ///
    /// ```
    /// use adapter_smol::{Config, Connection, Side};
    /// smol::block_on(async {
    ///     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = smol::net::TcpStream::connect(listener.local_addr()?).await?;
    ///     let (client, driver) = Connection::new(stream, Config::default(), Side::Dialer)?;
    ///     smol::spawn(driver).detach();
    ///     let (accepted, _) = listener.accept().await?;
    ///     let _server = Connection::server(accepted, Config::default())?;
    ///     assert!(client.ping().await?.as_secs() < 10);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn new<T>(io: T, config: Config, side: Side) -> io::Result<(Self, Driver<T>)>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (conn, driver) =
            adapter_core::Connection::new(SmolIo(io), SmolTimer::default(), config, side)
                .map_err(adapter_core::config_error)?;
        Ok((conn.into(), driver))
    }

    /// Dials `addr` over TCP (with `TCP_NODELAY`) and runs the secure
    /// handshake as the dialing side ([`connect`](Self::connect)): the
    /// usual way to start a client.
    pub async fn dial(
        addr: impl smol::net::AsyncToSocketAddrs,
        config: Config,
        creds: &Credentials,
    ) -> io::Result<Self> {
        let stream = smol::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Self::connect(stream, config, creds).await
    }

    /// Dials `addr` over TCP (with `TCP_NODELAY`) as the dialing side,
    /// in plaintext: the opt-out for trusted links ([`dial`](Self::dial)
    /// is the encrypted one).
    pub async fn connect_tcp(
        addr: impl smol::net::AsyncToSocketAddrs,
        config: Config,
    ) -> io::Result<Self> {
        let stream = smol::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Self::client(stream, config)
    }

    /// Opens a flow, waiting while the peer's flow limit is reached (see
    /// [`adapter_core::Connection::open_flow`]).
    pub async fn open_flow(&self) -> io::Result<Flow> {
        self.inner.open_flow().await.map(Flow)
    }

    /// Opens a side-channel flow (it does not keep the connection from idling).
    pub async fn open_side_channel(&self) -> io::Result<Flow> {
        self.inner.open_side_channel().await.map(Flow)
    }

    /// Waits for the next flow the peer opens.
    pub async fn accept_flow(&self) -> io::Result<Flow> {
        self.inner.accept_flow().await.map(Flow)
    }

    /// The runtime-neutral handle.
    pub fn into_core(self) -> adapter_core::Connection {
        self.inner
    }
}

/// A flow implementing futures-io's [`AsyncRead`] and [`AsyncWrite`]
/// (`poll_close` sends FIN). It derefs to [`adapter_core::Flow`] for `id`,
/// `stats`, `reset`, `stop`, and the zero-copy `write_chunk` / `read_chunk`.
///
/// ```no_run
/// # async fn f(conn: adapter_smol::Connection) -> std::io::Result<()> {
/// use smol::io::{AsyncReadExt, AsyncWriteExt};
/// let mut flow = conn.accept_flow().await?;
/// let mut buf = Vec::new();
/// flow.read_to_end(&mut buf).await?;
/// flow.write_all(&buf).await?;
/// flow.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Flow(pub adapter_core::Flow);

/// The receive half of a [`Flow`], implementing [`AsyncRead`].
#[derive(Debug)]
pub struct FlowReader(pub adapter_core::FlowReader);

/// The send half of a [`Flow`], implementing [`AsyncWrite`].
#[derive(Debug)]
pub struct FlowWriter(pub adapter_core::FlowWriter);

impl Flow {
    /// The two directions, for two tasks.
    pub fn split(self) -> (FlowReader, FlowWriter) {
        let (r, w) = self.0.split();
        (FlowReader(r), FlowWriter(w))
    }

    /// The runtime-neutral flow.
    pub fn into_core(self) -> adapter_core::Flow {
        self.0
    }
}

macro_rules! deref {
    ($outer:ty => $inner:ty) => {
        impl Deref for $outer {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }
        impl DerefMut for $outer {
            fn deref_mut(&mut self) -> &mut $inner {
                &mut self.0
            }
        }
    };
}

deref!(Flow => adapter_core::Flow);
deref!(FlowReader => adapter_core::FlowReader);
deref!(FlowWriter => adapter_core::FlowWriter);

macro_rules! async_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().0.poll_read(cx, buf)
            }
        }
    };
}

macro_rules! async_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().0.poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_flush(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_finish(cx)
            }
        }
    };
}

async_read!(Flow);
async_read!(FlowReader);
async_write!(Flow);
async_write!(FlowWriter);
