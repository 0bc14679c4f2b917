//! Mux errors as `std::io::Error`s, with the mux error kept inside.

use proto_core::mux::{CloseReason, OpenError, PingError, ReadError, WriteError};
use std::fmt;
use std::io;

/// The connection closed; the inner error of `io::Error`s from
/// connection-level operations (open, accept, ping) after the close.
///
/// ```
/// use adapter_core::{ConnectionClosed, CloseReason};
/// let e = ConnectionClosed(CloseReason::Drained);
/// assert!(e.to_string().contains("Drained"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionClosed(pub CloseReason);

impl fmt::Display for ConnectionClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection closed: {:?}", self.0)
    }
}

impl std::error::Error for ConnectionClosed {}

/// The peer sent GOAWAY or we did: no new flows on this connection.
///
/// ```
/// use adapter_core::GoingAway;
/// assert!(GoingAway.to_string().contains("GOAWAY"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoingAway;

impl fmt::Display for GoingAway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection is draining after GOAWAY: no new flows")
    }
}

impl std::error::Error for GoingAway {}

/// `ReadError` as an `io::Error`: `Reset` is `ConnectionReset`, a closed
/// connection `ConnectionAborted`, a stopped or unknown flow `NotConnected`.
pub(crate) fn read_error(e: ReadError) -> io::Error {
    let kind = match e {
        ReadError::Blocked => io::ErrorKind::WouldBlock,
        ReadError::Reset(_) => io::ErrorKind::ConnectionReset,
        ReadError::Closed => io::ErrorKind::ConnectionAborted,
        ReadError::Stopped | ReadError::UnknownFlow => io::ErrorKind::NotConnected,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// `WriteError` as an `io::Error`: `Stopped` (by the peer) and writes after
/// finish or reset are `BrokenPipe`, a closed connection `ConnectionAborted`.
pub(crate) fn write_error(e: WriteError) -> io::Error {
    let kind = match e {
        WriteError::Blocked => io::ErrorKind::WouldBlock,
        WriteError::Stopped(_) | WriteError::Finished => io::ErrorKind::BrokenPipe,
        WriteError::Closed => io::ErrorKind::ConnectionAborted,
        WriteError::UnknownFlow => io::ErrorKind::NotConnected,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

pub(crate) fn open_error(e: OpenError, reason: Option<CloseReason>) -> io::Error {
    match (e, reason) {
        (OpenError::GoingAway, _) => io::Error::new(io::ErrorKind::ConnectionRefused, GoingAway),
        (_, Some(reason)) => closed_error(reason),
        (e, None) => io::Error::new(io::ErrorKind::NotConnected, e),
    }
}

pub(crate) fn ping_error(e: PingError) -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, e)
}

pub(crate) fn closed_error(reason: CloseReason) -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, ConnectionClosed(reason))
}

/// The code a peer reset the flow with, if `e` is that error.
///
/// ```no_run
/// # async fn f(mut flow: adapter_core::Flow) {
/// let mut buf = [0u8; 1024];
/// if let Err(e) = flow.read(&mut buf).await {
///     if let Some(code) = adapter_core::reset_code(&e) {
///         println!("peer reset the flow with {code}");
///     }
/// }
/// # }
/// ```
pub fn reset_code(e: &io::Error) -> Option<u64> {
    match e.get_ref()?.downcast_ref::<ReadError>()? {
        ReadError::Reset(code) => Some(*code),
        _ => None,
    }
}

/// The code a peer stopped the flow with (our writes fail), if `e` is that error.
///
/// ```
/// use proto_core::mux::WriteError;
/// let e = std::io::Error::new(std::io::ErrorKind::BrokenPipe, WriteError::Stopped(7));
/// assert_eq!(adapter_core::stop_code(&e), Some(7));
/// ```
pub fn stop_code(e: &io::Error) -> Option<u64> {
    match e.get_ref()?.downcast_ref::<WriteError>()? {
        WriteError::Stopped(code) => Some(*code),
        _ => None,
    }
}

/// The close reason, if `e` says the connection closed.
///
/// ```
/// use adapter_core::{CloseReason, ConnectionClosed};
/// let e = std::io::Error::new(std::io::ErrorKind::NotConnected, ConnectionClosed(CloseReason::Idle));
/// assert_eq!(adapter_core::close_reason(&e), Some(CloseReason::Idle));
/// ```
pub fn close_reason(e: &io::Error) -> Option<CloseReason> {
    e.get_ref()?
        .downcast_ref::<ConnectionClosed>()
        .map(|c| c.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            read_error(ReadError::Reset(3)).kind(),
            io::ErrorKind::ConnectionReset
        );
        assert_eq!(reset_code(&read_error(ReadError::Reset(3))), Some(3));
        assert_eq!(
            write_error(WriteError::Stopped(9)).kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(stop_code(&write_error(WriteError::Stopped(9))), Some(9));
        assert_eq!(
            read_error(ReadError::Closed).kind(),
            io::ErrorKind::ConnectionAborted
        );
        let e = open_error(OpenError::GoingAway, None);
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let e = open_error(OpenError::Closed, Some(CloseReason::Drained));
        assert_eq!(close_reason(&e), Some(CloseReason::Drained));
    }
}
