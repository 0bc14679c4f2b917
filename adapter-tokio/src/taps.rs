//! tokio's sockets for racing ([`adapter_core::taps::Net`]).

use crate::{Addressed, TokioIo, TokioRuntime};
use adapter_core::taps::{BoxFuture, Connected, Net};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

impl Net for TokioRuntime {
    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<Connected>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            let addresses = s.addresses()?;
            Ok(Connected {
                transport: Box::new(TokioIo(s)),
                addresses,
            })
        })
    }

    fn connect_unix(&self, path: PathBuf) -> BoxFuture<io::Result<Connected>> {
        Box::pin(async move {
            #[cfg(unix)]
            {
                let s = tokio::net::UnixStream::connect(path).await?;
                let addresses = s.addresses()?;
                Ok(Connected {
                    transport: Box::new(TokioIo(s)),
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
}
