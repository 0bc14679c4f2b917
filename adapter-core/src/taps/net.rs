//! What racing needs from a runtime beyond the driver: connecting sockets.

use super::BoxFuture;
use crate::runtime::{Runtime, Transport};
use crate::secure::Addresses;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::task::{Context, Poll};

/// A connected stream socket: the transport the driver runs, and both
/// ends' addresses (for the secure layer's authorizer and for reports).
pub struct Connected {
    /// The socket, as a driver transport.
    pub transport: Box<dyn Transport>,
    /// Our end and the peer's.
    pub addresses: Addresses,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

/// A runtime that can open sockets: each adapter implements this in a few
/// lines over its own socket types. Dropping a returned future cancels the
/// attempt and closes its socket at once (a racing loser leaves no file
/// descriptor behind).
pub trait Net: Runtime + Clone {
    /// Connects TCP to `addr`, with `TCP_NODELAY`.
    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<Connected>>;
    /// Connects a Unix stream socket at `path`.
    fn connect_unix(&self, path: PathBuf) -> BoxFuture<io::Result<Connected>>;
    /// Listens on TCP `addr` (port 0: any free port).
    fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Box<dyn Accept>>;
    /// Listens on a Unix socket at `path`.
    fn bind_unix(&self, path: PathBuf) -> io::Result<Box<dyn Accept>>;
}

/// A listening socket. Dropping it stops listening.
pub trait Accept: Send + 'static {
    /// The next incoming connection.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>>;
    /// Where it listens (`127.0.0.1:4000`, `unix:/run/x.sock`).
    fn local_addr(&self) -> String;
}
