//! A local address that swallows connection attempts: for tests, examples
//! and benches of racing on loopback, with no root and no firewall rule.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

/// A listener whose accept queue is full and never drained. Linux drops
/// the SYN of every further connect to it, so those attempts hang the way
/// a blackholed address does (until the connector gives up or cancels).
///
/// ```
/// let pit = adapter_core::taps::TarPit::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let s = std::net::TcpStream::connect_timeout(&pit.local_addr(), std::time::Duration::from_millis(50));
/// # if cfg!(target_os = "linux") {
/// assert_eq!(s.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// # }
/// ```
#[derive(Debug)]
pub struct TarPit {
    _listener: TcpListener,
    _filler: TcpStream,
    addr: SocketAddr,
}

impl TarPit {
    /// Binds `addr` with an accept queue of one and fills it.
    pub fn bind(addr: SocketAddr) -> io::Result<TarPit> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(0)?;
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr()?;
        let filler = TcpStream::connect(addr)?;
        Ok(TarPit {
            _listener: listener,
            _filler: filler,
            addr,
        })
    }

    /// The address that swallows connects.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}
