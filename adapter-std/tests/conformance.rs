//! The adapter conformance suite over blocking std IO: real loopback TCP,
//! and the in-memory pipe. Tasks are threads blocking on the poll-based
//! handles.

use adapter_core::conformance::{BoxFuture, Harness, Pair};
use adapter_core::secure::{assert_test_pair, test_credentials};
use adapter_core::{Config, Side};
use adapter_std::{Connection, Stream};
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
    /// Loopback TCP with the secure handshake and encrypted records.
    SecureTcp,
}

struct StdHarness(Transport);

fn tcp_pair(client: Config, server: Config) -> io::Result<Pair> {
    tcp_pair_with(client, server, false)
}

fn tcp_pair_with(client: Config, server: Config, secure: bool) -> io::Result<Pair> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let a = TcpStream::connect(listener.local_addr()?)?;
    let (b, _) = listener.accept()?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    let cut = a.try_clone()?;
    let (client, server) = if secure {
        // Both handshakes block: the server's runs on its own thread.
        let accept =
            thread::spawn(move || Connection::accept(b, server, &test_credentials(Side::Acceptor)));
        let c = Connection::connect(a, client, &test_credentials(Side::Dialer));
        let s = accept.join().expect("accept thread");
        let (c, s) = (c?.into_core(), s?.into_core());
        // Every pair in the suite is really encrypted and authenticated.
        assert_test_pair(&c, &s);
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
                Transport::SecureTcp => tcp_pair_with(client, server, true),
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
}

mod tcp {
    adapter_core::conformance_tests!(super::StdHarness(super::Transport::Tcp));
}

mod pipe {
    adapter_core::conformance_tests!(super::StdHarness(super::Transport::Pipe));
}

mod secure_tcp {
    adapter_core::conformance_tests!(super::StdHarness(super::Transport::SecureTcp));
}
