//! Transport services on tokio: race a preconnection's candidates and
//! talk in messages (RFC 9622). The core plans and decides
//! ([`proto_core::taps`]); this module only opens sockets, and the shared
//! [`adapter_core::taps`] runs the race and the message connection.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use adapter_tokio::taps::{self, Context, Preconnection, RemoteSpecifier};
//! use adapter_tokio::taps::{SecurityParameters, TransportProperties};
//! let pre = Preconnection::new(TransportProperties::new(), SecurityParameters::Disabled)
//!     .with_remote(
//!     RemoteSpecifier::new().with_host_name("localhost").with_port(4000),
//! );
//! let ctx = Context::new();
//! let taps::Initiated { connection, report } = taps::initiate(&ctx, &pre).await?;
//! println!("{report}"); // every attempt, with its timing
//! connection.send_default("hello").await;
//! let reply = connection.receive(64 * 1024).await?;
//! # drop(reply); Ok(()) }
//! ```

pub use adapter_core::proto_core::taps::endpoint::{LocalSpecifier, RemoteSpecifier};
pub use adapter_core::proto_core::taps::framer::{Delimiter, FramerFactory, LengthPrefix};
pub use adapter_core::proto_core::taps::message::MessageProperties;
pub use adapter_core::proto_core::taps::preconnection::{Preconnection, SecurityParameters};
pub use adapter_core::proto_core::taps::properties::{Preference, Property, TransportProperties};
pub use adapter_core::taps::{
    Context, Ended, Initiated, Listener, MessageConnection, Notice, RaceFailed, RaceReport,
    Received, RendezvousOptions, Rendezvoused, SendOutcome, Settings, TarPit,
};

/// Races `pre`'s candidates on TokioRuntime (RFC 9622 Initiate): the winner's
/// message connection and the race's report, or every attempt's error.
pub async fn initiate(ctx: &Context, pre: &Preconnection) -> io::Result<Initiated> {
    adapter_core::taps::initiate(&TokioRuntime, ctx, pre).await
}

/// Races `pre`'s candidates with `data` as the first message (RFC 9622
/// InitiateWithSend; only safely replayable data, see
/// [`adapter_core::taps::initiate_with_send`]).
pub async fn initiate_with_send(
    ctx: &Context,
    pre: &Preconnection,
    data: impl Into<bytes::Bytes>,
    props: MessageProperties,
) -> io::Result<Initiated> {
    adapter_core::taps::initiate_with_send(&TokioRuntime, ctx, pre, data.into(), props).await
}

/// Meets a peer that knows this side's endpoint as this side knows its
/// (RFC 9622 Rendezvous): both listen and dial; exactly one connection
/// survives, the same on both sides (see
/// [`adapter_core::taps::rendezvous`]).
pub async fn rendezvous(ctx: &Context, pre: &Preconnection) -> io::Result<Rendezvoused> {
    adapter_core::taps::rendezvous(&TokioRuntime, ctx, pre).await
}

/// Listens with `pre` (RFC 9622 Listen; call inside the runtime).
pub fn listen(ctx: &Context, pre: &Preconnection) -> io::Result<Listener> {
    adapter_core::taps::listen(&TokioRuntime, ctx, pre)
}

use crate::{Addressed, TokioIo, TokioRuntime};
use adapter_core::taps::{Accept, BoxFuture, Connected, Net};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::task::Poll;

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
    fn poll_accept(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<Connected>> {
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
    fn poll_accept(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<Connected>> {
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
