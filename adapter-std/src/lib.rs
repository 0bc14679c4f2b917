//! weft's mux connections with blocking std IO and threads.
//!
//! A connection runs `adapter_core`'s one driver on its own thread, with a
//! reader thread that blocks in `read`, a writer thread that blocks in
//! `write` (received and sent bytes move between them and the driver as
//! `Bytes`, not copied) and a timer thread. Because reading never waits
//! on writing, two peers that both write and stop reading cannot
//! deadlock. The handles are `adapter_core`'s poll-based ones, driven to
//! completion with a thread-parking waker ([`adapter_core::block_on`]).
//! No protocol logic lives here.
//!
//! Any [`Stream`] works: a `Read + Write` byte stream that can be cloned
//! for the reader thread and shut down: `TcpStream`, `UnixStream`, and the
//! in-memory [`pipe`].
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
//! use adapter_std::{Config, Connection};
//! use std::io::{Read, Write};
//!
//! let (a, b) = adapter_std::pipe();
//! let client = Connection::client(a, Config::default())?;
//! let server = Connection::server(b, Config::default())?;
//!
//! let mut flow = client.open_flow()?;
//! flow.write_all(b"hello")?;
//! flow.finish()?; // FIN
//!
//! let mut accepted = server.accept_flow()?;
//! let mut got = Vec::new();
//! accepted.read_to_end(&mut got)?;
//! assert_eq!(got, b"hello");
//! # std::io::Result::Ok(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod listener;
mod pipe;
pub mod taps;
mod threads;

pub use adapter_core::listener::{
    AdmissionConfig, AdmissionStats, Excess, ListenerOptions, ListenerStats, Reason, RefusalCounts,
};
pub use listener::Listener;

pub use pipe::{pipe, PipeStream, PIPE_CAPACITY};

pub use adapter_core::secure::{self, Addresses, Credentials, Security};
pub use adapter_core::{
    close_reason, reset_code, stop_code, CloseReason, Config, ConnectionClosed, ConnectionStats,
    ErrorCode, FlowId, FlowStats, GoingAway, Profile, Side,
};

use adapter_core::block_on;
use bytes::Bytes;
use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use threads::ThreadedIo;
pub use threads::{ThreadTimer, Threads};

/// A blocking byte stream the adapter can run a connection over: readable
/// and writable, clonable for a separate reader thread, and shut down-able.
///
/// ```
/// use adapter_std::Stream;
/// let (a, _b) = adapter_std::pipe();
/// let reader = a.try_clone().unwrap();
/// a.shutdown(std::net::Shutdown::Write).unwrap();
/// # drop(reader);
/// ```
pub trait Stream: Read + Write + Send + Sized + 'static {
    /// Another handle to the same stream (for the reader thread).
    fn try_clone(&self) -> io::Result<Self>;
    /// Shuts down one or both directions; a blocked `read` must return
    /// after `Shutdown::Read`.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::os::unix::net::UnixStream::try_clone(self)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
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
impl Addressed for std::os::unix::net::UnixStream {
    fn addresses(&self) -> io::Result<Addresses> {
        let (local, peer) = (self.local_addr()?, self.peer_addr()?);
        Ok(Addresses::unix(local.as_pathname(), peer.as_pathname()))
    }
}

/// Runs `layer`'s machine over `stream` through the one driver, on its
/// own thread with reader and writer threads (as a connection runs);
/// returns the state its handles share.
pub fn spawn_layer<S: Stream, L: adapter_core::Layer>(
    stream: S,
    layer: L,
) -> io::Result<Arc<adapter_core::Shared<L>>> {
    Ok(spawn_layer_on(ThreadedIo::start(stream)?, layer))
}

/// Runs `layer`'s machine over any [`adapter_core::Transport`] (a mux
/// flow: `adapter_core::Flow`) through the one driver, on its own thread.
pub fn spawn_layer_on<T: adapter_core::Transport, L: adapter_core::Layer>(
    io: T,
    layer: L,
) -> Arc<adapter_core::Shared<L>> {
    adapter_core::spawn_layer(&Threads, io, layer)
}

/// Starts a plaintext connection over `stream`: the driver on its thread,
/// with reader and writer threads.
fn start<S: Stream>(stream: S, config: Config, side: Side) -> io::Result<Connection> {
    config.validate().map_err(adapter_core::config_error)?;
    let io = ThreadedIo::start(stream)?;
    adapter_core::spawn_connection(&Threads, io, config, side).map(Connection::from)
}

/// Starts a secure connection over `stream` and waits (parking this
/// thread) for its handshake. The handshake runs in the driver like every
/// other state of the machine, so its timeout holds on every stream: the
/// driver never blocks, and when it gives up the stream is shut down,
/// which releases the reader and writer threads.
fn start_secure<S: Stream>(
    stream: S,
    addresses: &Addresses,
    config: Config,
    side: Side,
    creds: &Credentials,
) -> io::Result<Connection> {
    config.validate().map_err(adapter_core::config_error)?;
    let io = ThreadedIo::start(stream)?;
    block_on(adapter_core::spawn_secure_connection(
        &Threads, io, config, side, creds, addresses,
    ))
    .map(Connection::from)
}

/// A multiplexed connection over a blocking stream; clones share it.
///
/// Blocking methods park the calling thread until done.
///
/// ```no_run
/// use adapter_std::{Config, Connection};
/// let conn = Connection::connect_tcp("127.0.0.1:4000", Config::default())?;
/// println!("rtt {:?}", conn.ping()?);
/// conn.go_away(0);
/// println!("closed: {:?}", conn.closed());
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct Connection {
    inner: adapter_core::Connection,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl From<adapter_core::Connection> for Connection {
    fn from(inner: adapter_core::Connection) -> Self {
        Connection { inner }
    }
}

impl Connection {
    /// The dialing side over `stream`; starts its reader and writer threads.
    /// A bad `config` is `InvalidInput`.
    pub fn client<S: Stream>(stream: S, config: Config) -> io::Result<Self> {
        start(stream, config, Side::Dialer)
    }

    /// The accepting side over `stream`; starts its reader and writer threads.
    pub fn server<S: Stream>(stream: S, config: Config) -> io::Result<Self> {
        start(stream, config, Side::Acceptor)
    }

    /// Dials securely over a socket: the Noise XX handshake on this
    /// thread (the server proves who it is first; `creds.authorizer` must
    /// accept it before we reveal ourselves), then the mux over encrypted
    /// records. The authorizer sees the socket's local and peer addresses.
    /// A refused peer is `PermissionDenied`; see [`adapter_core::secure`].
    /// The plaintext [`client`](Self::client) is the opt-out for trusted
    /// links; [`dial`](Self::dial) connects TCP and runs this in one call.
    pub fn connect<S: Stream + Addressed>(
        stream: S,
        config: Config,
        creds: &Credentials,
    ) -> io::Result<Self> {
        let addresses = stream.addresses()?;
        start_secure(stream, &addresses, config, Side::Dialer, creds)
    }

    /// Accepts securely over a socket: the handshake's responder side
    /// (the authorizer sees the socket's addresses), then the mux over
    /// encrypted records.
    pub fn accept<S: Stream + Addressed>(
        stream: S,
        config: Config,
        creds: &Credentials,
    ) -> io::Result<Self> {
        let addresses = stream.addresses()?;
        start_secure(stream, &addresses, config, Side::Acceptor, creds)
    }

    /// [`connect`](Self::connect) over any stream (the in-memory [`pipe`],
    /// ...): the caller states the `addresses` the authorizer sees, since
    /// the stream cannot tell.
    pub fn connect_with<S: Stream>(
        stream: S,
        addresses: Addresses,
        config: Config,
        creds: &Credentials,
    ) -> io::Result<Self> {
        start_secure(stream, &addresses, config, Side::Dialer, creds)
    }

    /// [`accept`](Self::accept) over any stream, with the caller's `addresses`.
    pub fn accept_with<S: Stream>(
        stream: S,
        addresses: Addresses,
        config: Config,
        creds: &Credentials,
    ) -> io::Result<Self> {
        start_secure(stream, &addresses, config, Side::Acceptor, creds)
    }

    /// What the secure handshake established; `None` on plaintext.
    pub fn security(&self) -> Option<Arc<Security>> {
        self.inner.security()
    }

    /// Dials `addr` over TCP (with `TCP_NODELAY`) and runs the secure
    /// handshake as the dialing side ([`connect`](Self::connect)): the
    /// usual way to start a client.
    pub fn dial(addr: impl ToSocketAddrs, config: Config, creds: &Credentials) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Self::connect(stream, config, creds)
    }

    /// Dials `addr` over TCP (with `TCP_NODELAY`) as the dialing side,
    /// in plaintext: the opt-out for trusted links ([`dial`](Self::dial)
    /// is the encrypted one).
    pub fn connect_tcp(addr: impl ToSocketAddrs, config: Config) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Self::client(stream, config)
    }

    /// Which end of the stream this is.
    pub fn side(&self) -> Side {
        self.inner.side()
    }

    /// Opens a flow, blocking while the peer's flow limit is reached (see
    /// [`adapter_core::Connection::open_flow`]).
    pub fn open_flow(&self) -> io::Result<Flow> {
        block_on(self.inner.open_flow()).map(Flow)
    }

    /// Opens a side-channel flow (it does not keep the connection from idling).
    pub fn open_side_channel(&self) -> io::Result<Flow> {
        block_on(self.inner.open_side_channel()).map(Flow)
    }

    /// Blocks until the peer opens a flow (see
    /// [`adapter_core::Connection::accept_flow`]).
    pub fn accept_flow(&self) -> io::Result<Flow> {
        block_on(self.inner.accept_flow()).map(Flow)
    }

    /// Sends a PING and blocks for its PONG: the round-trip time.
    pub fn ping(&self) -> io::Result<Duration> {
        block_on(self.inner.ping())
    }

    /// Starts a graceful drain (GOAWAY); see [`adapter_core::Connection::go_away`].
    pub fn go_away(&self, code: u64) {
        self.inner.go_away(code)
    }

    /// Closes now with an application `code` and `reason`.
    pub fn close(&self, code: u64, reason: &[u8]) {
        self.inner.close(code, reason)
    }

    /// Blocks until the connection is closed; returns why.
    pub fn closed(&self) -> CloseReason {
        block_on(self.inner.closed())
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.inner.close_reason()
    }

    /// The connection is draining (GOAWAY sent or received) or closed.
    pub fn is_draining(&self) -> bool {
        self.inner.is_draining()
    }

    /// The peer's GOAWAY, if one arrived: `(accepted_below, code)`.
    pub fn peer_go_away(&self) -> Option<(u64, u64)> {
        self.inner.peer_go_away()
    }

    /// The transport's error, if it failed rather than ended cleanly.
    pub fn transport_error(&self) -> Option<String> {
        self.inner.transport_error()
    }

    /// Connection counters.
    pub fn stats(&self) -> ConnectionStats {
        self.inner.stats()
    }

    /// The smoothed round-trip time, once a PONG has arrived.
    pub fn rtt(&self) -> Option<Duration> {
        self.inner.rtt()
    }

    /// The runtime-neutral handle (its methods are async: drive them with
    /// [`adapter_core::block_on`] or an executor).
    pub fn into_core(self) -> adapter_core::Connection {
        self.inner
    }
}

/// A flow implementing [`Read`] and [`Write`]; [`finish`](Self::finish)
/// sends FIN. Dropping it finishes the send side and stops an unfinished
/// receive side.
///
/// ```no_run
/// # fn f(conn: adapter_std::Connection) -> std::io::Result<()> {
/// use std::io::{Read, Write};
/// let mut flow = conn.accept_flow()?;
/// let mut buf = Vec::new();
/// flow.read_to_end(&mut buf)?;
/// flow.write_all(&buf)?;
/// flow.finish()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Flow(adapter_core::Flow);

/// The receive half of a [`Flow`], implementing [`Read`].
#[derive(Debug)]
pub struct FlowReader(adapter_core::FlowReader);

/// The send half of a [`Flow`], implementing [`Write`].
#[derive(Debug)]
pub struct FlowWriter(adapter_core::FlowWriter);

impl Flow {
    /// What its connection's secure handshake established; `None` on plaintext.
    pub fn security(&self) -> Option<Arc<Security>> {
        self.0.security()
    }

    /// The flow's id.
    pub fn id(&self) -> FlowId {
        self.0.id()
    }

    /// The flow does not keep the connection from being idle.
    pub fn is_side_channel(&self) -> bool {
        self.0.is_side_channel()
    }

    /// Counters for the flow, while the connection knows it.
    pub fn stats(&self) -> Option<FlowStats> {
        self.0.stats()
    }

    /// Ends the send side after the buffered data (FIN).
    pub fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }

    /// Abandons the send side; the peer's reads fail with `ConnectionReset` and `code`.
    pub fn reset(&mut self, code: u64) -> io::Result<()> {
        self.0.reset(code)
    }

    /// Stops reading; the peer's writes fail with `BrokenPipe` and `code`.
    pub fn stop(&mut self, code: u64) -> io::Result<()> {
        self.0.stop(code)
    }

    /// Blocks for up to `max` received bytes, without copying; `None` at the end of data.
    pub fn read_chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        block_on(self.0.read_chunk(max))
    }

    /// Writes all of `data` without copying it, blocking while buffers are full.
    pub fn write_chunk(&mut self, data: Bytes) -> io::Result<()> {
        block_on(self.0.write_chunk(data))
    }

    /// The two directions, for two threads.
    pub fn split(self) -> (FlowReader, FlowWriter) {
        let (r, w) = self.0.split();
        (FlowReader(r), FlowWriter(w))
    }

    /// The runtime-neutral flow.
    pub fn into_core(self) -> adapter_core::Flow {
        self.0
    }
}

impl FlowReader {
    /// The flow's id.
    pub fn id(&self) -> FlowId {
        self.0.id()
    }

    /// Stops reading; the peer's writes fail with `BrokenPipe` and `code`.
    pub fn stop(&mut self, code: u64) -> io::Result<()> {
        self.0.stop(code)
    }

    /// Blocks for up to `max` received bytes, without copying; `None` at the end of data.
    pub fn read_chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        block_on(self.0.read_chunk(max))
    }
}

impl FlowWriter {
    /// The flow's id.
    pub fn id(&self) -> FlowId {
        self.0.id()
    }

    /// Ends the send side after the buffered data (FIN).
    pub fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }

    /// Abandons the send side; the peer's reads fail with `ConnectionReset` and `code`.
    pub fn reset(&mut self, code: u64) -> io::Result<()> {
        self.0.reset(code)
    }

    /// Writes all of `data` without copying it, blocking while buffers are full.
    pub fn write_chunk(&mut self, data: Bytes) -> io::Result<()> {
        block_on(self.0.write_chunk(data))
    }
}

impl Read for Flow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        block_on(poll_fn(|cx| self.0.poll_read(cx, buf)))
    }
}

impl Read for FlowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        block_on(poll_fn(|cx| self.0.poll_read(cx, buf)))
    }
}

impl Write for Flow {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        block_on(poll_fn(|cx| self.0.poll_write(cx, buf)))
    }

    fn flush(&mut self) -> io::Result<()> {
        block_on(poll_fn(|cx| self.0.poll_flush(cx)))
    }
}

impl Write for FlowWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        block_on(poll_fn(|cx| self.0.poll_write(cx, buf)))
    }

    fn flush(&mut self) -> io::Result<()> {
        block_on(poll_fn(|cx| self.0.poll_flush(cx)))
    }
}
