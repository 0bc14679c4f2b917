//! What a virtual-network operation can fail with.

use core::fmt;

/// The error of one virtnet operation. Named after go123 `xnet/virtnet`'s
/// errors, plus the two a stream can hit after it was set up
/// (`ConnectionReset`, `InvalidAddress`) and `UnknownId` for an id this
/// network never handed out.
///
/// When several closes apply, the widest wins: a closed network reports
/// [`NetworkDown`](NetError::NetworkDown) even if the host is also down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NetError {
    /// The whole network was shut down.
    NetworkDown,
    /// The host the operation runs on was closed or has crashed.
    HostDown,
    /// The socket (listener, connection, datagram socket) was closed.
    SocketDown,
    /// Nothing listens at the dialed address (or its host is down).
    ConnectionRefused,
    /// The port is already in use on that host.
    AddressInUse,
    /// The address to listen on does not belong to the host.
    AddressNotListening,
    /// A host with that name is already registered.
    HostDuplicate,
    /// The registry knows no host of that name.
    NoSuchHost,
    /// The registry was closed.
    RegistryDown,
    /// The peer reset the connection.
    ConnectionReset,
    /// An address that does not parse as `host:port`.
    InvalidAddress,
    /// A datagram larger than the link's MTU (also counted as a drop).
    MessageTooLong,
    /// A host, connection, listener or socket id this network never
    /// handed out (out of its range, e.g. from a bigger network). Ids are
    /// plain indices, so an in-range id from another network names this
    /// network's object of that number.
    UnknownId,
    /// The registry has no room for another claim (lonet's file reached
    /// its configured size); releases still go through.
    RegistryFull,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetError::NetworkDown => "network is down",
            NetError::HostDown => "host is down",
            NetError::SocketDown => "socket is down",
            NetError::ConnectionRefused => "connection refused",
            NetError::AddressInUse => "address already in use",
            NetError::AddressNotListening => "cannot listen on requested address",
            NetError::HostDuplicate => "host already registered",
            NetError::NoSuchHost => "no such host",
            NetError::RegistryDown => "registry is down",
            NetError::ConnectionReset => "connection reset by peer",
            NetError::InvalidAddress => "invalid address",
            NetError::MessageTooLong => "message too long",
            NetError::UnknownId => "unknown id for this network",
            NetError::RegistryFull => "registry is full",
        })
    }
}

impl core::error::Error for NetError {}

impl NetError {
    /// A small stable number for the trace.
    pub(crate) fn code(self) -> u8 {
        self as u8 + 1
    }
}
