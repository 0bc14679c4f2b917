//! A TCP listener that admits handshakes ([`adapter_core::listener`]) and
//! hands out established connections.

use crate::{Config, Connection, Credentials, TokioIo, TokioRuntime};
use adapter_core::listener::{Accept, ListenerCore, ListenerOptions, ListenerStats};
use adapter_core::secure::Addresses;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

/// A TCP listener that runs each connection's handshake in its own task
/// and returns from [`accept`](Self::accept) only established (handshake
/// done, peer authorized) connections.
///
/// Before any byte of a new connection is read, its source address goes
/// through handshake admission ([`ListenerOptions::admission`]): a source
/// over its limits is closed at once (or waits, in queue mode), so a
/// flood of first messages costs no Diffie-Hellman work beyond the
/// limits. [`stats`](Self::stats) counts what happened. Dropping the
/// listener stops accepting and drops connections not yet accepted.
///
/// ```no_run
/// # async fn f(creds: adapter_tokio::Credentials) -> std::io::Result<()> {
/// use adapter_tokio::{Config, Listener, ListenerOptions};
/// let listener =
///     Listener::bind("0.0.0.0:4000", Config::default(), &creds, ListenerOptions::default())
///         .await?;
/// loop {
///     let conn = listener.accept().await?;
///     tokio::spawn(async move {
///         while let Ok(flow) = conn.accept_flow().await {
///             // serve the flow
///             # drop(flow);
///         }
///     });
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Listener {
    core: Arc<ListenerCore>,
    local: SocketAddr,
}

struct TokioAccept {
    listener: TcpListener,
    nodelay: bool,
}

impl Accept for TokioAccept {
    type Stream = TcpStream;
    type Io = TokioIo<TcpStream>;

    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(TcpStream, Addresses, IpAddr)>> {
        let (stream, peer) = match self.listener.poll_accept(cx) {
            Poll::Ready(Ok(accepted)) => accepted,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        // Only socket options and addresses before admission: nothing is read.
        if self.nodelay {
            stream.set_nodelay(true)?;
        }
        let local = stream.local_addr()?;
        Poll::Ready(Ok((stream, Addresses::tcp(local, peer), peer.ip())))
    }

    fn into_io(stream: TcpStream) -> io::Result<TokioIo<TcpStream>> {
        Ok(TokioIo(stream))
    }
}

impl Listener {
    /// Binds `addr` and accepts secure connections: each runs the
    /// handshake's responder side with `creds`, then the mux with
    /// `config`. Call inside a tokio runtime (the accept loop is spawned).
    pub async fn bind(
        addr: impl ToSocketAddrs,
        config: Config,
        creds: &Credentials,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        Self::from_tcp(listener, config, Some(creds.clone()), options)
    }

    /// [`bind`](Self::bind) without encryption: the plaintext opt-out for
    /// trusted links. Admission still applies (per-source concurrency
    /// and rate of new connections).
    pub async fn bind_plain(
        addr: impl ToSocketAddrs,
        config: Config,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        Self::from_tcp(listener, config, None, options)
    }

    /// A listener over an already bound socket; `creds` `None` is
    /// plaintext. Call inside a tokio runtime.
    pub fn from_tcp(
        listener: TcpListener,
        config: Config,
        creds: Option<Credentials>,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        let local = listener.local_addr()?;
        let core = ListenerCore::new(config, creds, &options)?;
        let acceptor = TokioAccept {
            listener,
            nodelay: options.nodelay,
        };
        tokio::spawn(core.clone().serve(TokioRuntime, acceptor));
        Ok(Listener { core, local })
    }

    /// The next established connection.
    pub async fn accept(&self) -> io::Result<Connection> {
        self.core.accept().await.map(Connection::from)
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// What the listener has done so far.
    pub fn stats(&self) -> ListenerStats {
        self.core.stats()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.core.close();
    }
}
