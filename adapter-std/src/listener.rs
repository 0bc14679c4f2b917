//! A TCP listener that admits handshakes ([`adapter_core::listener`]) and
//! hands out established connections, with threads.

use crate::threads::{ThreadedIo, Threads};
use crate::{Config, Connection, Credentials};
use adapter_core::block_on;
use adapter_core::listener::{ListenerCore, ListenerOptions, ListenerStats};
use adapter_core::secure::Addresses;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How long the accept thread waits after an accept error before retrying:
/// out of descriptors, retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(20);

/// A TCP listener that runs each connection's handshake on its own
/// threads and returns from [`accept`](Self::accept) (blocking) only
/// established (handshake done, peer authorized) connections.
///
/// Before any byte of a new connection is read, its source address goes
/// through handshake admission ([`ListenerOptions::admission`]): a source
/// over its limits is closed at once, before any thread is started for it
/// (in queue mode it waits on one thread, bounded by the queue's limits).
/// [`stats`](Self::stats) counts what happened. Dropping the listener
/// stops accepting and drops connections not yet accepted.
///
/// ```no_run
/// # fn f(creds: adapter_std::Credentials) -> std::io::Result<()> {
/// use adapter_std::{Config, Listener, ListenerOptions};
/// let listener =
///     Listener::bind("0.0.0.0:4000", Config::default(), &creds, ListenerOptions::default())?;
/// loop {
///     let conn = listener.accept()?;
///     std::thread::spawn(move || {
///         while let Ok(flow) = conn.accept_flow() {
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

impl Listener {
    /// Binds `addr` and accepts secure connections: each runs the
    /// handshake's responder side with `creds`, then the mux with
    /// `config`. An accept thread is started.
    pub fn bind(
        addr: impl ToSocketAddrs,
        config: Config,
        creds: &Credentials,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        Self::from_std(
            TcpListener::bind(addr)?,
            config,
            Some(creds.clone()),
            options,
        )
    }

    /// [`bind`](Self::bind) without encryption: the plaintext opt-out for
    /// trusted links. Admission still applies.
    pub fn bind_plain(
        addr: impl ToSocketAddrs,
        config: Config,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        Self::from_std(TcpListener::bind(addr)?, config, None, options)
    }

    /// A listener over an already bound socket; `creds` `None` is plaintext.
    pub fn from_std(
        listener: TcpListener,
        config: Config,
        creds: Option<Credentials>,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        let local = listener.local_addr()?;
        let core = ListenerCore::new(config, creds, &options)?;
        let serving = core.clone();
        thread::Builder::new()
            .name("weft-accept".into())
            .spawn(move || serve(&serving, &listener, options.nodelay))?;
        Ok(Listener { core, local })
    }

    /// The next established connection (blocks).
    pub fn accept(&self) -> io::Result<Connection> {
        block_on(self.core.accept()).map(Connection::from)
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

fn serve(core: &Arc<ListenerCore>, listener: &TcpListener, nodelay: bool) {
    while !core.is_closed() {
        match listener.accept() {
            Ok((stream, peer)) => {
                if core.is_closed() {
                    return;
                }
                if let Err(e) = incoming(core, stream, peer, nodelay) {
                    core.accept_error(&e);
                }
            }
            Err(e) => {
                core.accept_error(&e);
                thread::sleep(ACCEPT_ERROR_PAUSE);
            }
        }
    }
}

fn incoming(
    core: &Arc<ListenerCore>,
    stream: TcpStream,
    peer: SocketAddr,
    nodelay: bool,
) -> io::Result<()> {
    // Only socket options and addresses before admission: nothing is
    // read, and the reader and writer threads start only once admitted.
    if nodelay {
        stream.set_nodelay(true)?;
    }
    let addresses = Addresses::tcp(stream.local_addr()?, peer);
    core.incoming(&Threads, peer.ip(), addresses, move || {
        ThreadedIo::start(stream)
    });
    Ok(())
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.core.close();
        // The accept thread is blocked in `accept`: one connection of our
        // own wakes it to see the listener closed.
        let mut wake = self.local;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
    }
}
