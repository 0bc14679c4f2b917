//! smol's sockets for racing and listening ([`adapter_core::taps::Net`]).

use crate::{Addressed, SmolIo, SmolRuntime};
use adapter_core::taps::{Accept, BoxFuture, Connected, Net};
use smol::Async;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::task::{Context, Poll};

impl Net for SmolRuntime {
    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<Connected>> {
        Box::pin(async move {
            let s = smol::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            let addresses = s.addresses()?;
            Ok(Connected {
                transport: Box::new(SmolIo(s)),
                addresses,
            })
        })
    }

    fn connect_unix(&self, path: PathBuf) -> BoxFuture<io::Result<Connected>> {
        Box::pin(async move {
            #[cfg(unix)]
            {
                let s = smol::net::unix::UnixStream::connect(path).await?;
                let addresses = s.addresses()?;
                Ok(Connected {
                    transport: Box::new(SmolIo(s)),
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
        })
    }

    fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Box<dyn Accept>> {
        Ok(Box::new(TcpAccept(Async::new(TcpListener::bind(addr)?)?)))
    }

    fn bind_unix(&self, path: PathBuf) -> io::Result<Box<dyn Accept>> {
        #[cfg(unix)]
        {
            let l = std::os::unix::net::UnixListener::bind(path)?;
            Ok(Box::new(UnixAccept(Async::new(l)?)))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no Unix sockets here",
            ))
        }
    }
}

/// Accepts without blocking: waits for readability, then tries, until the
/// listener has no more waiting connections.
fn poll_nonblocking<T>(
    cx: &mut Context<'_>,
    mut ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<()>>,
    mut accept: impl FnMut() -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        match accept() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return Poll::Ready(r),
        }
        match ready(cx) {
            Poll::Ready(Ok(())) => continue,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

struct TcpAccept(Async<TcpListener>);

impl Accept for TcpAccept {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        let listener = &self.0;
        poll_nonblocking(
            cx,
            |cx| listener.poll_readable(cx),
            || {
                let (s, _) = listener.get_ref().accept()?;
                s.set_nodelay(true)?;
                let s: Async<TcpStream> = Async::new(s)?;
                let addresses = s.addresses()?;
                Ok(Connected {
                    transport: Box::new(SmolIo(s)),
                    addresses,
                })
            },
        )
    }

    fn local_addr(&self) -> String {
        self.0
            .get_ref()
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
}

#[cfg(unix)]
struct UnixAccept(Async<std::os::unix::net::UnixListener>);

#[cfg(unix)]
impl Accept for UnixAccept {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        let listener = &self.0;
        poll_nonblocking(
            cx,
            |cx| listener.poll_readable(cx),
            || {
                let (s, _) = listener.get_ref().accept()?;
                let s = Async::new(s)?;
                let addresses = s.addresses()?;
                Ok(Connected {
                    transport: Box::new(SmolIo(s)),
                    addresses,
                })
            },
        )
    }

    fn local_addr(&self) -> String {
        self.0
            .get_ref()
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
            .unwrap_or_else(|| "unix:".to_owned())
    }
}
