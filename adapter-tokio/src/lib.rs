//! weft's mux connections on tokio.
//!
//! This crate only plugs tokio into [`adapter_core`]: an IO wrapper
//! ([`TokioIo`]), a timer ([`TokioTimer`]) and spawning ([`TokioRuntime`]).
//! The driver loop, the waker bookkeeping and the handles are
//! `adapter_core`'s; [`Connection`] and [`Flow`] wrap them so that flows
//! implement tokio's [`AsyncRead`] and [`AsyncWrite`] (shutdown sends FIN).
//!
//! Any `AsyncRead + AsyncWrite + Unpin + Send + 'static` stream works: TCP
//! (set `TCP_NODELAY`, as [`Connection::connect_tcp`] does), Unix sockets,
//! `tokio::io::duplex`.
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
//! use adapter_tokio::{Config, Connection};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let (a, b) = tokio::io::duplex(64 * 1024);
//! let client = Connection::client(a, Config::default())?;
//! let server = Connection::server(b, Config::default())?;
//!
//! let mut flow = client.open_flow().await?;
//! flow.write_all(b"hello").await?;
//! flow.shutdown().await?; // FIN
//!
//! let mut accepted = server.accept_flow().await?;
//! let mut got = Vec::new();
//! accepted.read_to_end(&mut got).await?;
//! assert_eq!(got, b"hello");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod listener;
#[cfg(feature = "lonet")]
pub mod lonet;
pub mod taps;

pub use adapter_core::listener::{
    AdmissionConfig, AdmissionStats, Excess, ListenerOptions, ListenerStats, Reason, RefusalCounts,
};
pub use listener::Listener;

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::time::Sleep;

pub use adapter_core::secure::{self, Addresses, Credentials, Security};
pub use adapter_core::{
    close_reason, reset_code, stop_code, CloseReason, Config, ConnectionClosed, ConnectionStats,
    ErrorCode, FlowId, FlowStats, GoingAway, Ping, Profile, Side,
};

/// A tokio stream as an [`adapter_core::Transport`].
///
/// ```
/// let (a, _b) = tokio::io::duplex(1024);
/// let io = adapter_tokio::TokioIo(a);
/// # let _ = io;
/// ```
#[derive(Debug)]
pub struct TokioIo<T>(pub T);

impl<T> adapter_core::Transport for TokioIo<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_read_recv(
        &mut self,
        cx: &mut Context<'_>,
        recv: &mut adapter_core::RecvBuffer,
    ) -> Poll<io::Result<usize>> {
        // tokio reads into uninitialised capacity: no zeroing per buffer.
        tokio_util::io::poll_read_buf(Pin::new(&mut self.0), cx, recv.unfilled())
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
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A socket that knows both its ends' addresses, for the authorizer
/// ([`Connection::connect`], [`Connection::accept`]).
pub trait Addressed {
    /// Our end's and the peer's addresses.
    fn addresses(&self) -> io::Result<Addresses>;
}

impl Addressed for TcpStream {
    fn addresses(&self) -> io::Result<Addresses> {
        Ok(Addresses::tcp(self.local_addr()?, self.peer_addr()?))
    }
}

#[cfg(unix)]
impl Addressed for tokio::net::UnixStream {
    fn addresses(&self) -> io::Result<Addresses> {
        let (local, peer) = (self.local_addr()?, self.peer_addr()?);
        Ok(Addresses::unix(local.as_pathname(), peer.as_pathname()))
    }
}

/// tokio's timer as an [`adapter_core::Timer`]. The `Sleep` is made on
/// first use, inside the runtime, so a driver can be built outside one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use adapter_core::Timer;
/// let mut t = adapter_tokio::TokioTimer::default();
/// t.reset(std::time::Instant::now());
/// std::future::poll_fn(|cx| t.poll_expired(cx)).await;
/// # }
/// ```
#[derive(Default)]
pub struct TokioTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for TokioTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioTimer")
            .field("deadline", &self.sleep.as_ref().map(|s| s.deadline()))
            .finish()
    }
}

impl adapter_core::Timer for TokioTimer {
    fn reset(&mut self, deadline: Instant) {
        let deadline = tokio::time::Instant::from_std(deadline);
        match &mut self.sleep {
            Some(s) => s.as_mut().reset(deadline),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.sleep {
            Some(s) => s.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

/// tokio as an [`adapter_core::Runtime`]: `tokio::spawn` and [`TokioTimer`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (a, _b) = tokio::io::duplex(1024);
/// let io = adapter_tokio::TokioIo(a);
/// let conn = adapter_core::spawn_connection(
///     &adapter_tokio::TokioRuntime,
///     io,
///     adapter_tokio::Config::default(),
///     adapter_tokio::Side::Dialer,
/// )?;
/// # drop(conn); Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl adapter_core::Runtime for TokioRuntime {
    type Timer = TokioTimer;

    fn timer(&self) -> TokioTimer {
        TokioTimer::default()
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) {
        tokio::spawn(future);
    }
}

/// Runs `layer`'s machine over a tokio stream through the one driver,
/// spawned with `tokio::spawn` (call inside a runtime); returns the state
/// its handles share. Any byte-stream machine runs this way on a socket,
/// or on a [`Flow`] with `adapter_core::spawn_layer(&TokioRuntime, flow.into_core(), layer)`.
pub fn spawn_layer<T, L>(io: T, layer: L) -> std::sync::Arc<adapter_core::Shared<L>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    L: adapter_core::Layer,
{
    adapter_core::spawn_layer(&TokioRuntime, TokioIo(io), layer)
}

/// The driver future of a connection over `T`, for [`Connection::new`]:
/// spawn it (on a `LocalSet`, a current-thread runtime, anywhere).
pub type Driver<T> = adapter_core::Driver<adapter_core::MuxLayer, TokioIo<T>, TokioTimer>;

/// A multiplexed connection over a tokio stream; clones share it.
///
/// It derefs to [`adapter_core::Connection`] for everything that does not
/// involve a flow type: `ping`, `go_away`, `close`, `closed`, `stats`,
/// `rtt`, ...
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use adapter_tokio::{Config, Connection};
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
    /// The dialing side over `io`; spawns the driver with `tokio::spawn`
    /// (call inside a runtime). A bad `config` is `InvalidInput`.
    pub fn client<T>(io: T, config: Config) -> io::Result<Self>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::spawn(io, config, Side::Dialer)
    }

    /// The accepting side over `io`; spawns the driver with `tokio::spawn`.
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
        adapter_core::spawn_connection(&TokioRuntime, TokioIo(io), config, side).map(Self::from)
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

    /// [`connect`](Self::connect) over any stream (`tokio::io::duplex`, a
    /// TLS-less tunnel, ...): the caller states the `addresses` the
    /// authorizer sees, since the stream cannot tell.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use adapter_core::secure::{test_credentials, Addresses};
    /// use adapter_tokio::{Config, Connection, Side};
    /// let (a, b) = tokio::io::duplex(64 * 1024);
    /// let (cc, sc) = (test_credentials(Side::Dialer), test_credentials(Side::Acceptor));
    /// let (c, s) = tokio::join!(
    ///     Connection::connect_with(a, Addresses::new("mem:a", "mem:b"), Config::default(), &cc),
    ///     Connection::accept_with(b, Addresses::new("mem:b", "mem:a"), Config::default(), &sc),
    /// );
    /// assert_eq!(c?.security().unwrap().granted(), ["weft-test:server"]);
    /// # drop(s?); Ok(()) }
    /// ```
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
            &TokioRuntime,
            TokioIo(io),
            config,
            side,
            creds,
            &addresses,
        )
        .await
        .map(Self::from)
    }

    /// A connection and its driver, which the caller spawns (for example
    /// with `tokio::task::spawn_local` or on another runtime).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use adapter_tokio::{Config, Connection, Side};
    /// let (a, b) = tokio::io::duplex(64 * 1024);
    /// let (client, driver) = Connection::new(a, Config::default(), Side::Dialer)?;
    /// tokio::spawn(driver);
    /// let server = Connection::server(b, Config::default())?;
    /// assert!(client.ping().await?.as_secs() < 10);
    /// # drop(server); Ok(()) }
    /// ```
    pub fn new<T>(io: T, config: Config, side: Side) -> io::Result<(Self, Driver<T>)>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (conn, driver) =
            adapter_core::Connection::new(TokioIo(io), TokioTimer::default(), config, side)
                .map_err(adapter_core::config_error)?;
        Ok((conn.into(), driver))
    }

    /// Dials `addr` over TCP (with `TCP_NODELAY`) and runs the secure
    /// handshake as the dialing side ([`connect`](Self::connect)): the
    /// usual way to start a client.
    ///
    /// ```no_run
    /// # async fn f(creds: adapter_tokio::Credentials) -> std::io::Result<()> {
    /// use adapter_tokio::{Config, Connection};
    /// let conn = Connection::dial("127.0.0.1:4000", Config::default(), &creds).await?;
    /// println!("talking to {:?}", conn.security().unwrap().granted());
    /// # Ok(()) }
    /// ```
    pub async fn dial(
        addr: impl ToSocketAddrs,
        config: Config,
        creds: &Credentials,
    ) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Self::connect(stream, config, creds).await
    }

    /// Dials `addr` over TCP (with `TCP_NODELAY`) as the dialing side,
    /// in plaintext: the opt-out for trusted links ([`dial`](Self::dial)
    /// is the encrypted one).
    pub async fn connect_tcp(addr: impl ToSocketAddrs, config: Config) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
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

/// A flow implementing tokio's [`AsyncRead`] and [`AsyncWrite`]
/// (`poll_shutdown` sends FIN). It derefs to [`adapter_core::Flow`] for
/// `id`, `stats`, `reset`, `stop`, and the zero-copy `write_chunk` /
/// `read_chunk`.
///
/// ```no_run
/// # async fn f(conn: adapter_tokio::Connection) -> std::io::Result<()> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// let mut flow = conn.accept_flow().await?;
/// let mut buf = Vec::new();
/// flow.read_to_end(&mut buf).await?;
/// flow.write_all(&buf).await?;
/// flow.shutdown().await?;
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

fn read_into(r: Poll<io::Result<usize>>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    match r {
        Poll::Ready(Ok(n)) => {
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

impl AsyncRead for Flow {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = this.0.poll_read(cx, buf.initialize_unfilled());
        read_into(r, buf)
    }
}

impl AsyncRead for FlowReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = this.0.poll_read(cx, buf.initialize_unfilled());
        read_into(r, buf)
    }
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

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_finish(cx)
            }
        }
    };
}

async_write!(Flow);
async_write!(FlowWriter);

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
