//! Transport services on smol: race a preconnection's candidates and
//! talk in messages (RFC 9622). The core plans and decides
//! ([`proto_core::taps`]); this module only opens sockets, and the shared
//! [`adapter_core::taps`] runs the race and the message connection.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use adapter_smol::taps::{self, Context, Preconnection, RemoteSpecifier};
//! use adapter_smol::taps::{SecurityParameters, TransportProperties};
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

/// Races `pre`'s candidates on SmolRuntime (RFC 9622 Initiate): the winner's
/// message connection and the race's report, or every attempt's error.
pub async fn initiate(ctx: &Context, pre: &Preconnection) -> io::Result<Initiated> {
    adapter_core::taps::initiate(&SmolRuntime, ctx, pre).await
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
    adapter_core::taps::initiate_with_send(&SmolRuntime, ctx, pre, data.into(), props).await
}

/// Meets a peer that knows this side's endpoint as this side knows its
/// (RFC 9622 Rendezvous): both listen and dial; exactly one connection
/// survives, the same on both sides (see
/// [`adapter_core::taps::rendezvous`]).
pub async fn rendezvous(ctx: &Context, pre: &Preconnection) -> io::Result<Rendezvoused> {
    adapter_core::taps::rendezvous(&SmolRuntime, ctx, pre).await
}

/// Listens with `pre` (RFC 9622 Listen; call inside the runtime).
pub fn listen(ctx: &Context, pre: &Preconnection) -> io::Result<Listener> {
    adapter_core::taps::listen(&SmolRuntime, ctx, pre)
}

use crate::{Addressed, SmolIo, SmolRuntime};
use adapter_core::taps::{Accept, BoxFuture, Connected, Net};
use smol::Async;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::task::Poll;

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
    cx: &mut std::task::Context<'_>,
    mut ready: impl FnMut(&mut std::task::Context<'_>) -> Poll<io::Result<()>>,
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
    fn poll_accept(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<Connected>> {
        let listener = &self.0;
        poll_nonblocking(
            cx,
            |cx| listener.poll_readable(cx),
            || {
                let (s, _) = listener.get_ref().accept()?;
                s.set_nodelay(true)?;
                // smol's TcpStream, not a bare Async: its close shuts the
                // write side down (the peer sees the end at once).
                let s = smol::net::TcpStream::from(Async::new(s)?);
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
    fn poll_accept(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<Connected>> {
        let listener = &self.0;
        poll_nonblocking(
            cx,
            |cx| listener.poll_readable(cx),
            || {
                let (s, _) = listener.get_ref().accept()?;
                let s = smol::net::unix::UnixStream::from(Async::new(s)?);
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
