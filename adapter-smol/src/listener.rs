//! A TCP listener that admits handshakes ([`adapter_core::listener`]) and
//! hands out established connections.

use crate::{Config, Connection, Credentials, SmolIo, SmolRuntime};
use adapter_core::listener::{Accept, ListenerCore, ListenerOptions, ListenerStats};
use adapter_core::secure::Addresses;
use smol::Async;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::task::{Context, Poll};

/// A TCP listener that runs each connection's handshake in its own task
/// (`smol::spawn`) and returns from [`accept`](Self::accept) only
/// established (handshake done, peer authorized) connections.
///
/// Before any byte of a new connection is read, its source address goes
/// through handshake admission ([`ListenerOptions::admission`]): a source
/// over its limits is closed at once (or waits, in queue mode), so a
/// flood of first messages costs no Diffie-Hellman work beyond the
/// limits. [`stats`](Self::stats) counts what happened. Dropping the
/// listener stops accepting and drops connections not yet accepted.
///
/// ```no_run
/// # async fn f(creds: adapter_smol::Credentials) -> std::io::Result<()> {
/// use adapter_smol::{Config, Listener, ListenerOptions};
/// let listener =
///     Listener::bind("0.0.0.0:4000", Config::default(), &creds, ListenerOptions::default())
///         .await?;
/// loop {
///     let conn = listener.accept().await?;
///     smol::spawn(async move {
///         while let Ok(flow) = conn.accept_flow().await {
///             // serve the flow
///             # drop(flow);
///         }
///     })
///     .detach();
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Listener {
    core: Arc<ListenerCore>,
    local: SocketAddr,
}

struct SmolAccept {
    listener: Async<TcpListener>,
    nodelay: bool,
}

impl Accept for SmolAccept {
    type Stream = TcpStream;
    type Io = SmolIo<Async<TcpStream>>;

    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(TcpStream, Addresses, IpAddr)>> {
        loop {
            match self.listener.get_ref().accept() {
                Ok((stream, peer)) => {
                    // Only socket options and addresses before admission:
                    // nothing is read, nothing is registered with the reactor.
                    if self.nodelay {
                        stream.set_nodelay(true)?;
                    }
                    let local = stream.local_addr()?;
                    return Poll::Ready(Ok((stream, Addresses::tcp(local, peer), peer.ip())));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.listener.poll_readable(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn into_io(stream: TcpStream) -> io::Result<SmolIo<Async<TcpStream>>> {
        Ok(SmolIo(Async::new(stream)?))
    }
}

impl Listener {
    /// Binds `addr` and accepts secure connections: each runs the
    /// handshake's responder side with `creds`, then the mux with
    /// `config`. The accept loop runs on `smol::spawn`.
    pub async fn bind(
        addr: impl smol::net::AsyncToSocketAddrs,
        config: Config,
        creds: &Credentials,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        let addrs = smol::net::resolve(addr).await?;
        Self::from_std(
            TcpListener::bind(&addrs[..])?,
            config,
            Some(creds.clone()),
            options,
        )
    }

    /// [`bind`](Self::bind) without encryption: the plaintext opt-out for
    /// trusted links. Admission still applies.
    pub async fn bind_plain(
        addr: impl smol::net::AsyncToSocketAddrs,
        config: Config,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        let addrs = smol::net::resolve(addr).await?;
        Self::from_std(TcpListener::bind(&addrs[..])?, config, None, options)
    }

    /// A listener over an already bound std socket; `creds` `None` is
    /// plaintext.
    pub fn from_std(
        listener: TcpListener,
        config: Config,
        creds: Option<Credentials>,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        let local = listener.local_addr()?;
        let core = ListenerCore::new(config, creds, &options)?;
        let acceptor = SmolAccept {
            listener: Async::new(listener)?,
            nodelay: options.nodelay,
        };
        smol::spawn(core.clone().serve(SmolRuntime, acceptor)).detach();
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
