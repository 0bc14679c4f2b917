//! The adapter conformance suite over blocking std IO: real loopback TCP,
//! and the in-memory pipe. Tasks are threads blocking on the poll-based
//! handles.

use adapter_core::conformance::{
    fill_send_buffer, BoxFuture, EchoHandle, EchoLayer, Ends, Harness, Link, Pair, Start,
    MEM_CLIENT, MEM_SERVER,
};
use adapter_core::secure::{assert_test_pair, suite_credentials, Suite, TempSocketPath};
use adapter_core::{Config, Credentials, Side};
use adapter_std::{Addressed, Addresses, Connection, Stream};
use std::any::Any;
use std::future::Future;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

#[derive(Clone, Copy)]
enum Transport {
    Tcp,
    Pipe,
    /// Loopback TCP with the secure handshake and encrypted records under
    /// this suite.
    SecureTcp(Suite),
}

struct StdHarness(Transport);

fn tcp_pair(client: Config, server: Config) -> io::Result<Pair> {
    tcp_pair_with(client, server, None)
}

fn tcp_pair_with(client: Config, server: Config, secure: Option<Suite>) -> io::Result<Pair> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let a = TcpStream::connect(listener.local_addr()?)?;
    let (b, _) = listener.accept()?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    let cut = a.try_clone()?;
    let (client, server) = if let Some(suite) = secure {
        // Both handshakes block: the server's runs on its own thread.
        let accept = thread::spawn(move || {
            Connection::accept(b, server, &suite_credentials(Side::Acceptor, suite))
        });
        let c = Connection::connect(a, client, &suite_credentials(Side::Dialer, suite));
        let s = accept.join().expect("accept thread");
        let (c, s) = (c?.into_core(), s?.into_core());
        // Every pair in the suite is really encrypted and authenticated.
        assert_test_pair(&c, &s);
        assert_eq!(c.security().map(|x| x.suite()), Some(suite));
        (c, s)
    } else {
        (
            Connection::client(a, client)?.into_core(),
            Connection::server(b, server)?.into_core(),
        )
    };
    Ok(Pair {
        client,
        server,
        cut: Some(Box::new(move || {
            let _ = cut.shutdown(Shutdown::Both);
        })),
    })
}

fn pipe_pair(client: Config, server: Config) -> io::Result<Pair> {
    let (a, b) = adapter_std::pipe();
    let cut = a.try_clone()?;
    Ok(Pair {
        client: Connection::client(a, client)?.into_core(),
        server: Connection::server(b, server)?.into_core(),
        cut: Some(Box::new(move || {
            let _ = Stream::shutdown(&cut, Shutdown::Both);
        })),
    })
}

/// Whether the sleep is over, and the task to wake when it is.
type SleepState = Arc<Mutex<(bool, Option<Waker>)>>;

/// A sleep for thread-based tasks: a helper thread wakes the task.
struct Sleep {
    duration: Duration,
    state: Option<SleepState>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let duration = self.duration;
        let state = self.state.get_or_insert_with(|| {
            let state = Arc::new(Mutex::new((false, None::<Waker>)));
            let s = state.clone();
            thread::spawn(move || {
                thread::sleep(duration);
                let mut g = s.lock().unwrap();
                g.0 = true;
                if let Some(w) = g.1.take() {
                    w.wake();
                }
            });
            state
        });
        let mut g = state.lock().unwrap();
        if g.0 {
            Poll::Ready(())
        } else {
            g.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Harness for StdHarness {
    fn pair(&self, client: Config, server: Config) -> BoxFuture<io::Result<Pair>> {
        let transport = self.0;
        Box::pin(async move {
            match transport {
                Transport::Tcp => tcp_pair(client, server),
                Transport::Pipe => pipe_pair(client, server),
                Transport::SecureTcp(suite) => tcp_pair_with(client, server, Some(suite)),
            }
        })
    }

    fn spawn(&self, task: BoxFuture<()>) {
        thread::spawn(move || adapter_core::block_on(task));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(Sleep {
            duration,
            state: None,
        })
    }

    fn block_on(&self, task: BoxFuture<()>) {
        adapter_core::block_on(task)
    }

    fn echo_sockets(
        &self,
        client: EchoLayer,
        server: EchoLayer,
    ) -> BoxFuture<io::Result<(EchoHandle, EchoHandle)>> {
        let transport = self.0;
        Box::pin(async move {
            use adapter_std::spawn_layer as run;
            Ok(match transport {
                Transport::Pipe => {
                    let (a, b) = adapter_std::pipe();
                    (EchoHandle(run(a, client)?), EchoHandle(run(b, server)?))
                }
                Transport::Tcp | Transport::SecureTcp(_) => {
                    let (a, b) = tcp()?;
                    (EchoHandle(run(a, client)?), EchoHandle(run(b, server)?))
                }
            })
        })
    }

    fn echo_flow(&self, flow: adapter_core::Flow, layer: EchoLayer) -> io::Result<EchoHandle> {
        Ok(EchoHandle(adapter_std::spawn_layer_on(flow, layer)))
    }

    fn link(&self, link: Link, client: Start, server: Start) -> BoxFuture<io::Result<Ends>> {
        Box::pin(async move { std_link(link, client, server) })
    }
}

fn tcp() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let a = TcpStream::connect(listener.local_addr()?)?;
    let (b, _) = listener.accept()?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    Ok((a, b))
}

type Conn = io::Result<adapter_core::Connection>;
type Started = Box<dyn FnOnce() -> Conn + Send>;

/// `connect` / `accept`: the addresses come from the socket.
fn secure<S: Stream + Addressed>(io: S, side: Side, config: Config, creds: Credentials) -> Conn {
    match side {
        Side::Dialer => Connection::connect(io, config, &creds),
        Side::Acceptor => Connection::accept(io, config, &creds),
    }
    .map(Connection::into_core)
}

/// `connect_with` / `accept_with`, stating the in-memory addresses.
fn secure_with<S: Stream>(io: S, side: Side, config: Config, creds: Credentials) -> Conn {
    match side {
        Side::Dialer => {
            let mem = Addresses::new(MEM_CLIENT, MEM_SERVER);
            Connection::connect_with(io, mem, config, &creds)
        }
        Side::Acceptor => {
            let mem = Addresses::new(MEM_SERVER, MEM_CLIENT);
            Connection::accept_with(io, mem, config, &creds)
        }
    }
    .map(Connection::into_core)
}

/// One end, started as `start` says (`secure` for a secure start), to
/// run on a thread of its own.
fn start<S: Stream>(
    io: S,
    side: Side,
    start: Start,
    keep: &mut Vec<Box<dyn Any + Send>>,
    secure: fn(S, Side, Config, Credentials) -> Conn,
) -> Option<Started> {
    match start {
        Start::Idle => {
            keep.push(Box::new(io));
            None
        }
        Start::Plain(config) => Some(Box::new(move || {
            match side {
                Side::Dialer => Connection::client(io, config),
                Side::Acceptor => Connection::server(io, config),
            }
            .map(Connection::into_core)
        })),
        Start::Secure(config, creds) => Some(Box::new(move || secure(io, side, config, creds))),
    }
}

fn std_link(link: Link, client: Start, server: Start) -> io::Result<Ends> {
    let mut keep: Vec<Box<dyn Any + Send>> = Vec::new();
    let (cf, sf, client_addr, server_addr) = match link {
        Link::Tcp => {
            let (a, b) = tcp()?;
            let (ca, sa) = (a.local_addr()?.to_string(), b.local_addr()?.to_string());
            let cf = start(a, Side::Dialer, client, &mut keep, secure);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure);
            (cf, sf, ca, sa)
        }
        #[cfg(unix)]
        Link::Unix => {
            use std::os::unix::net::{UnixListener, UnixStream};
            let sock = TempSocketPath::new("std");
            let listener = UnixListener::bind(&sock.path)?;
            let a = UnixStream::connect(&sock.path)?;
            let (b, _) = listener.accept()?;
            let server_addr = sock.address();
            keep.push(Box::new(sock));
            let cf = start(a, Side::Dialer, client, &mut keep, secure);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure);
            (cf, sf, "unix:".to_owned(), server_addr)
        }
        Link::Unaddressed => {
            let (a, b) = adapter_std::pipe();
            let cf = start(a, Side::Dialer, client, &mut keep, secure_with);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure_with);
            (cf, sf, MEM_CLIENT.to_owned(), MEM_SERVER.to_owned())
        }
        // TCP whose send buffer is full: the writer thread blocks in `write`.
        Link::Stalled => {
            let (a, b) = tcp()?;
            fill_send_buffer(&a)?;
            a.set_nonblocking(false)?;
            let (ca, sa) = (a.local_addr()?.to_string(), b.local_addr()?.to_string());
            let cf = start(a, Side::Dialer, client, &mut keep, secure);
            let sf = start(b, Side::Acceptor, server, &mut keep, secure);
            (cf, sf, ca, sa)
        }
        Link::Dial => {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let cf: Started = Box::new(move || {
                match client {
                    Start::Secure(config, creds) => Connection::dial(addr, config, &creds),
                    Start::Plain(config) => Connection::connect_tcp(addr, config),
                    Start::Idle => Err(io::ErrorKind::Unsupported.into()),
                }
                .map(Connection::into_core)
            });
            let sf: Started = Box::new(move || {
                let (b, _) = listener.accept()?;
                match start(b, Side::Acceptor, server, &mut Vec::new(), secure) {
                    Some(f) => f(),
                    None => Err(io::ErrorKind::Unsupported.into()),
                }
            });
            (Some(cf), Some(sf), String::new(), addr.to_string())
        }
        #[allow(unreachable_patterns)]
        _ => return Err(io::ErrorKind::Unsupported.into()),
    };
    // Both handshakes block: the server's runs on its own thread.
    let server = sf.map(thread::spawn);
    let client = cf.map(|f| f());
    let server = server.map(|t| t.join().expect("server thread"));
    Ok(Ends {
        client,
        server,
        client_addr,
        server_addr,
        keep,
    })
}

mod tcp {
    adapter_core::conformance_tests!(super::StdHarness(super::Transport::Tcp));
}

mod links {
    adapter_core::link_conformance_tests!(super::StdHarness(super::Transport::Tcp));
}

mod pipe {
    adapter_core::conformance_tests!(super::StdHarness(super::Transport::Pipe));
}

mod secure_tcp_aes {
    adapter_core::conformance_tests!(super::StdHarness(super::Transport::SecureTcp(
        adapter_core::secure::Suite::AesGcmSha256
    )));
}

mod secure_tcp_chacha {
    adapter_core::conformance_tests!(super::StdHarness(super::Transport::SecureTcp(
        adapter_core::secure::Suite::ChaChaPolyBlake2s
    )));
}
