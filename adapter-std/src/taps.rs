//! Blocking sockets for racing ([`adapter_core::taps::Net`]): each attempt
//! connects on its own thread, without blocking, checking between polls
//! whether the race cancelled it, so a loser's socket closes within about
//! a millisecond of its cancel rather than at the OS's connect timeout.

use crate::threads::{ThreadedIo, Threads};
use crate::Addressed;
use adapter_core::taps::{on_thread, stopped, BoxFuture, Connected, Net};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// The longest pause between two checks of a connect in progress.
const MAX_POLL: Duration = Duration::from_millis(1);

fn connect_polling(addr: SocketAddr, stop: &AtomicBool) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    let mut pause = Duration::from_micros(20);
    loop {
        if let Some(e) = socket.take_error()? {
            return Err(e);
        }
        // getpeername succeeds once the handshake completed.
        if socket.peer_addr().is_ok() {
            break;
        }
        if stopped(stop) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "connect cancelled",
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_POLL);
    }
    socket.set_nonblocking(false)?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Net for Threads {
    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<Connected>> {
        Box::pin(on_thread("weft-connect", move |stop| {
            let s = connect_polling(addr, stop)?;
            let addresses = s.addresses()?;
            Ok(Connected {
                transport: Box::new(ThreadedIo::start(s)?),
                addresses,
            })
        }))
    }

    fn connect_unix(&self, path: PathBuf) -> BoxFuture<io::Result<Connected>> {
        Box::pin(on_thread("weft-connect", move |_| {
            #[cfg(unix)]
            {
                let s = std::os::unix::net::UnixStream::connect(path)?;
                let addresses = s.addresses()?;
                Ok(Connected {
                    transport: Box::new(ThreadedIo::start(s)?),
                    addresses,
                })
            }
            #[cfg(not(unix))]
            {
                let _ = path;
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no Unix sockets here",
                ))
            }
        }))
    }
}
