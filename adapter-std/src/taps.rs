//! Transport services with blocking calls: race a preconnection's
//! candidates and talk in messages (RFC 9622). The core plans and decides
//! ([`proto_core::taps`](adapter_core::proto_core::taps)); the shared
//! [`adapter_core::taps`] runs the race and the message connection on
//! threads; this module opens sockets and blocks on the results.
//!
//! Each attempt connects on its own thread without blocking, checking
//! between polls whether the race cancelled it, so a loser's socket closes
//! within about a millisecond of its cancel rather than at the OS's
//! connect timeout.
//!
//! ```no_run
//! use adapter_std::taps::{self, Context, Preconnection, RemoteSpecifier};
//! use adapter_std::taps::{SecurityParameters, TransportProperties};
//! let pre = Preconnection::new(TransportProperties::new(), SecurityParameters::Disabled)
//!     .with_remote(RemoteSpecifier::new().with_host_name("localhost").with_port(4000));
//! let (conn, report) = taps::initiate(&Context::new(), &pre)?;
//! println!("{report}");
//! conn.send(b"hello".to_vec(), Default::default())?;
//! let reply = conn.receive(64 * 1024)?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub use adapter_core::proto_core::taps::endpoint::{LocalSpecifier, RemoteSpecifier};
pub use adapter_core::proto_core::taps::framer::{Delimiter, FramerFactory, LengthPrefix};
pub use adapter_core::proto_core::taps::message::MessageProperties;
pub use adapter_core::proto_core::taps::preconnection::{Preconnection, SecurityParameters};
pub use adapter_core::proto_core::taps::properties::{Preference, Property, TransportProperties};
pub use adapter_core::proto_core::taps::rendezvous::Role;
pub use adapter_core::taps::{
    Context, Ended, MessageConnection, Notice, RaceFailed, RaceReport, Received, SendOutcome,
    Settings, TarPit,
};

use adapter_core::block_on;

/// A message connection with blocking calls.
#[derive(Debug, Clone)]
pub struct Connection(pub MessageConnection);

impl Connection {
    /// Sends one message and waits until it went to the transport; an
    /// expired or refused message is an error naming why.
    pub fn send(&self, data: impl Into<bytes::Bytes>, props: MessageProperties) -> io::Result<()> {
        match block_on(self.0.send(data, props)) {
            SendOutcome::Sent => Ok(()),
            SendOutcome::Expired => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the message expired before it was sent",
            )),
            SendOutcome::Failed(e) => Err(io::Error::other(e)),
            _ => Err(io::Error::other("the message was not sent")),
        }
    }

    /// Receives the next message (in parts past `max_len` bytes).
    pub fn receive(&self, max_len: usize) -> io::Result<Received> {
        block_on(self.0.receive(max_len))
    }

    /// Closes gracefully, then waits for the end.
    pub fn close(&self) -> Ended {
        self.0.close();
        block_on(self.0.ended())
    }

    /// RFC 9622 Clone: another connection of the group.
    pub fn clone_connection(&self) -> io::Result<Connection> {
        block_on(self.0.clone_connection()).map(Connection)
    }
}

/// Races `pre`'s candidates (RFC 9622 Initiate) and returns the winner's
/// connection and the race's report.
pub fn initiate(ctx: &Context, pre: &Preconnection) -> io::Result<(Connection, RaceReport)> {
    let i = block_on(adapter_core::taps::initiate(&Threads, ctx, pre))?;
    Ok((Connection(i.connection), i.report))
}

/// Races `pre`'s candidates with `data` as the first message (RFC 9622
/// InitiateWithSend: only safely replayable data).
pub fn initiate_with_send(
    ctx: &Context,
    pre: &Preconnection,
    data: impl Into<bytes::Bytes>,
    props: MessageProperties,
) -> io::Result<(Connection, RaceReport)> {
    let i = block_on(adapter_core::taps::initiate_with_send(
        &Threads,
        ctx,
        pre,
        data.into(),
        props,
    ))?;
    Ok((Connection(i.connection), i.report))
}

/// Meets a peer that knows this side's endpoint as this side knows its
/// (RFC 9622 Rendezvous): both listen and dial; exactly one connection
/// survives, the same on both sides. Returns it and whether this side
/// decided.
pub fn rendezvous(ctx: &Context, pre: &Preconnection) -> io::Result<(Connection, Role)> {
    let r = block_on(adapter_core::taps::rendezvous(&Threads, ctx, pre))?;
    Ok((Connection(r.connection), r.role))
}

/// A listener with a blocking accept.
#[derive(Debug)]
pub struct Listener(pub adapter_core::taps::Listener);

impl Listener {
    /// The next incoming connection.
    pub fn accept(&self) -> io::Result<Connection> {
        block_on(self.0.accept()).map(Connection)
    }

    /// Where it listens.
    pub fn local_addr(&self) -> &str {
        self.0.local_addr()
    }
}

/// Listens with `pre` (RFC 9622 Listen).
pub fn listen(ctx: &Context, pre: &Preconnection) -> io::Result<Listener> {
    adapter_core::taps::listen(&Threads, ctx, pre).map(Listener)
}

use crate::threads::{ThreadedIo, Threads};
use crate::Addressed;
use adapter_core::taps::{on_thread, stopped, Accept, BoxFuture, Connected, Net};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
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
    fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Box<dyn Accept>> {
        let listener = std::net::TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        ThreadAccept::start(local.to_string(), Waking::Tcp(local), move || {
            let (s, _) = listener.accept()?;
            s.set_nodelay(true)?;
            let addresses = s.addresses()?;
            Ok(Connected {
                transport: Box::new(ThreadedIo::start(s)?),
                addresses,
            })
        })
    }

    fn bind_unix(&self, path: PathBuf) -> io::Result<Box<dyn Accept>> {
        #[cfg(unix)]
        {
            let listener = std::os::unix::net::UnixListener::bind(&path)?;
            let local = format!("unix:{}", path.display());
            ThreadAccept::start(local, Waking::Unix(path), move || {
                let (s, _) = listener.accept()?;
                let addresses = s.addresses()?;
                Ok(Connected {
                    transport: Box::new(ThreadedIo::start(s)?),
                    addresses,
                })
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
    }
}

/// Accepted connections a listener thread may hold before it waits.
const ACCEPT_QUEUE: usize = 64;

/// How a dropped listener unblocks its thread's `accept`: by connecting to
/// itself.
enum Waking {
    Tcp(SocketAddr),
    #[cfg(unix)]
    Unix(PathBuf),
}

#[derive(Default)]
struct AcceptState {
    queue: VecDeque<io::Result<Connected>>,
    waker: Option<Waker>,
    stop: bool,
}

fn lock(m: &Mutex<AcceptState>) -> MutexGuard<'_, AcceptState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A blocking listener served by one thread.
struct ThreadAccept {
    shared: Arc<(Mutex<AcceptState>, Condvar)>,
    local: String,
    waking: Waking,
}

impl ThreadAccept {
    fn start(
        local: String,
        waking: Waking,
        mut accept: impl FnMut() -> io::Result<Connected> + Send + 'static,
    ) -> io::Result<Box<dyn Accept>> {
        let shared = Arc::new((Mutex::new(AcceptState::default()), Condvar::new()));
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("weft-accept".into())
            .spawn(move || loop {
                let r = accept();
                let (state, room) = &*theirs;
                let mut st = lock(state);
                while !st.stop && st.queue.len() >= ACCEPT_QUEUE {
                    st = room.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.stop {
                    return;
                }
                st.queue.push_back(r);
                if let Some(w) = st.waker.take() {
                    w.wake();
                }
            })?;
        Ok(Box::new(ThreadAccept {
            shared,
            local,
            waking,
        }))
    }
}

impl Accept for ThreadAccept {
    fn poll_accept(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<Connected>> {
        let (state, room) = &*self.shared;
        let mut st = lock(state);
        match st.queue.pop_front() {
            Some(r) => {
                room.notify_one();
                Poll::Ready(r)
            }
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn local_addr(&self) -> String {
        self.local.clone()
    }
}

impl Drop for ThreadAccept {
    fn drop(&mut self) {
        let (state, room) = &*self.shared;
        lock(state).stop = true;
        room.notify_one();
        // The thread may be blocked in accept: one connection unblocks it.
        match &self.waking {
            Waking::Tcp(addr) => {
                let _ = TcpStream::connect_timeout(addr, Duration::from_millis(100));
            }
            #[cfg(unix)]
            Waking::Unix(path) => {
                let _ = std::os::unix::net::UnixStream::connect(path);
            }
        }
    }
}
