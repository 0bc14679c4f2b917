//! tokio's sockets for racing and listening ([`adapter_core::taps::Net`]).

use crate::{Addressed, TokioIo, TokioRuntime};
use adapter_core::taps::{Accept, BoxFuture, Connected, Net};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::task::{Context, Poll};

impl Net for TokioRuntime {
    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<Connected>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            tcp(s)
        })
    }

    fn connect_unix(&self, path: PathBuf) -> BoxFuture<io::Result<Connected>> {
        Box::pin(async move {
            #[cfg(unix)]
            {
                unix(tokio::net::UnixStream::connect(path).await?)
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
        let std = std::net::TcpListener::bind(addr)?;
        std.set_nonblocking(true)?;
        Ok(Box::new(TcpAccept(tokio::net::TcpListener::from_std(std)?)))
    }

    fn bind_unix(&self, path: PathBuf) -> io::Result<Box<dyn Accept>> {
        #[cfg(unix)]
        {
            Ok(Box::new(UnixAccept(tokio::net::UnixListener::bind(path)?)))
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

fn tcp(s: tokio::net::TcpStream) -> io::Result<Connected> {
    s.set_nodelay(true)?;
    let addresses = s.addresses()?;
    Ok(Connected {
        transport: Box::new(TokioIo(s)),
        addresses,
    })
}

#[cfg(unix)]
fn unix(s: tokio::net::UnixStream) -> io::Result<Connected> {
    let addresses = s.addresses()?;
    Ok(Connected {
        transport: Box::new(TokioIo(s)),
        addresses,
    })
}

struct TcpAccept(tokio::net::TcpListener);

impl Accept for TcpAccept {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        self.0.poll_accept(cx).map(|r| r.and_then(|(s, _)| tcp(s)))
    }

    fn local_addr(&self) -> String {
        self.0
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
}

#[cfg(unix)]
struct UnixAccept(tokio::net::UnixListener);

#[cfg(unix)]
impl Accept for UnixAccept {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        self.0.poll_accept(cx).map(|r| r.and_then(|(s, _)| unix(s)))
    }

    fn local_addr(&self) -> String {
        self.0
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
            .unwrap_or_else(|| "unix:".to_owned())
    }
}
