//! Blocking sockets for racing ([`adapter_core::taps::Net`]): each attempt
//! connects on its own thread, without blocking, checking between polls
//! whether the race cancelled it, so a loser's socket closes within about
//! a millisecond of its cancel rather than at the OS's connect timeout.

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
use std::task::{Context, Poll, Waker};
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
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
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
