//! Where a connection goes: endpoint specifiers (what the application
//! names, RFC 9622 section 6.1) and the concrete endpoints resolution
//! yields (what an attempt dials).

use alloc::string::String;
use core::fmt;
use core::net::SocketAddr;

/// An IP address family. Racing interleaves families (Happy Eyeballs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv6 (AAAA records).
    V6,
    /// IPv4 (A records).
    V4,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: &SocketAddr) -> Family {
        match addr {
            SocketAddr::V6(_) => Family::V6,
            SocketAddr::V4(_) => Family::V4,
        }
    }

    /// The other family.
    pub fn other(self) -> Family {
        match self {
            Family::V6 => Family::V4,
            Family::V4 => Family::V6,
        }
    }
}

/// A concrete endpoint an attempt connects to: what resolving a
/// [`RemoteSpecifier`] yields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A Unix socket path.
    Unix(String),
}

impl Endpoint {
    /// The IP family, `None` for a Unix socket.
    pub fn family(&self) -> Option<Family> {
        match self {
            Endpoint::Ip(a) => Some(Family::of(a)),
            Endpoint::Unix(_) => None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Ip(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}
