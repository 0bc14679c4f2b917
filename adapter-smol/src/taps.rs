//! smol's sockets for racing ([`adapter_core::taps::Net`]).

use crate::{Addressed, SmolIo, SmolRuntime};
use adapter_core::taps::{BoxFuture, Connected, Net};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

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
}
