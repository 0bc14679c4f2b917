//! Secure connections over loopback TCP with blocking IO: 100 encrypted
//! flows with the peer's names on every handle, and both kinds of refusal.

use adapter_core::conformance::{checksum, payload};
use adapter_core::secure::{test_credentials, SecureHandshakeError};
use adapter_std::secure::{AllowAny, Credentials, Identity, TrustedRoots};
use adapter_std::{CloseReason, Config, Connection, Side};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

fn pair(cc: Credentials, sc: Credentials) -> (io::Result<Connection>, io::Result<Connection>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    let server = thread::spawn(move || Connection::accept(b, Config::default(), &sc));
    let client = Connection::connect(a, Config::default(), &cc);
    (client, server.join().unwrap())
}

#[test]
fn a_hundred_encrypted_flows_over_loopback() {
    let (c, s) = pair(
        test_credentials(Side::Dialer),
        test_credentials(Side::Acceptor),
    );
    let (client, server) = (c.unwrap(), s.unwrap());
    let sec = client.security().unwrap();
    assert_eq!(sec.remote_blessings(), ["weft-test:server"]);
    assert_eq!(sec.remote_key(), server.security().unwrap().local_key());

    let srv = server.clone();
    let echo = thread::spawn(move || {
        let mut threads = Vec::new();
        for _ in 0..100 {
            let mut flow = srv.accept_flow().unwrap();
            assert_eq!(flow.security().unwrap().granted(), ["weft-test:client"]);
            threads.push(thread::spawn(move || {
                let mut buf = Vec::new();
                flow.read_to_end(&mut buf).unwrap();
                flow.write_all(&buf).unwrap();
                flow.finish().unwrap();
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
    });
    let mut threads = Vec::new();
    for i in 0..100u64 {
        let conn = client.clone();
        threads.push(thread::spawn(move || {
            let data = payload(i, 1000 + (i as usize) * 997);
            let mut flow = conn.open_flow().unwrap();
            assert_eq!(flow.security().unwrap().granted(), ["weft-test:server"]);
            flow.write_all(&data).unwrap();
            flow.finish().unwrap();
            let mut got = Vec::new();
            flow.read_to_end(&mut got).unwrap();
            assert_eq!(checksum(&got), checksum(&data), "flow {i}");
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    echo.join().unwrap();
    assert_eq!(server.stats().flows_accepted, 100);
}

#[test]
fn a_client_refuses_a_server_it_does_not_trust() {
    let mut distrustful = test_credentials(Side::Dialer);
    distrustful.roots = TrustedRoots::new();
    let (c, s) = pair(distrustful, test_credentials(Side::Acceptor));
    let e = c.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    let inner: &SecureHandshakeError = e.get_ref().unwrap().downcast_ref().unwrap();
    assert!(matches!(inner, SecureHandshakeError::Rejected(_)), "{e}");
    assert_eq!(s.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn a_server_refuses_an_unblessed_client() {
    let sc = test_credentials(Side::Acceptor);
    let anonymous = Credentials::new(
        Identity::from_secret([9; 32]),
        sc.roots.clone(),
        Arc::new(AllowAny),
    );
    let (c, s) = pair(anonymous, sc);
    assert_eq!(s.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(c.unwrap().closed(), CloseReason::TransportEnded);
}

/// A server that accepts TCP but never answers: the blocking handshake
/// gives up at its timeout (through the stream's read timeout).
#[test]
fn a_silent_server_times_the_handshake_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_silent, _) = listener.accept().unwrap();
    let mut creds = test_credentials(Side::Dialer);
    creds.config.handshake_timeout = std::time::Duration::from_millis(200);
    let e = Connection::connect(a, Config::default(), &creds).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    let inner: &SecureHandshakeError = e.get_ref().unwrap().downcast_ref().unwrap();
    assert_eq!(inner, &SecureHandshakeError::Timeout);
}

mod addresses {
    use adapter_core::secure::{
        assert_address_refused, assert_addresses_seen, assert_test_pair, test_credentials,
        test_credentials_with, RecordingAuthorizer, TempSocketPath,
    };
    use adapter_std::secure::Addresses;
    use adapter_std::{Config, Connection, Side};
    use std::io;
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    /// Runs `accept` on a thread and `connect` here.
    fn both(
        connect: impl FnOnce() -> io::Result<Connection>,
        accept: impl FnOnce() -> io::Result<Connection> + Send + 'static,
    ) -> (io::Result<Connection>, io::Result<Connection>) {
        let server = thread::spawn(accept);
        let c = connect();
        (c, server.join().unwrap())
    }

    fn tcp() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (a, listener.accept().unwrap().0)
    }

    /// Over TCP each authorizer sees its own socket's address and the
    /// peer's, and admits a peer only at the address it expects.
    #[test]
    fn authorizers_see_the_tcp_addresses() {
        let (a, b) = tcp();
        let client = a.local_addr().unwrap().to_string();
        let server = b.local_addr().unwrap().to_string();
        let cr = RecordingAuthorizer::admitting(&server);
        let sr = RecordingAuthorizer::admitting(&client);
        let cc = test_credentials_with(Side::Dialer, cr.clone());
        let sc = test_credentials_with(Side::Acceptor, sr.clone());
        let (c, s) = both(
            || Connection::connect(a, Config::default(), &cc),
            move || Connection::accept(b, Config::default(), &sc),
        );
        c.unwrap();
        s.unwrap();
        assert_addresses_seen(&cr, &sr, &client, &server);
    }

    #[test]
    fn an_authorizer_refuses_a_peer_at_another_address() {
        let (a, b) = tcp();
        let client = a.local_addr().unwrap().to_string();
        let sc = test_credentials_with(
            Side::Acceptor,
            RecordingAuthorizer::admitting("192.0.2.1:9"),
        );
        let (_c, s) = both(
            || Connection::connect(a, Config::default(), &test_credentials(Side::Dialer)),
            move || Connection::accept(b, Config::default(), &sc),
        );
        assert_address_refused(&s.unwrap_err(), &client);
    }

    /// A Unix socket: the listener's end is its path, the client's unnamed.
    #[cfg(unix)]
    #[test]
    fn authorizers_see_the_unix_socket_path() {
        use std::os::unix::net::{UnixListener, UnixStream};
        let sock = TempSocketPath::new("std");
        let listener = UnixListener::bind(&sock.path).unwrap();
        let a = UnixStream::connect(&sock.path).unwrap();
        let (b, _) = listener.accept().unwrap();
        let (cr, sr) = (RecordingAuthorizer::any(), RecordingAuthorizer::any());
        let cc = test_credentials_with(Side::Dialer, cr.clone());
        let sc = test_credentials_with(Side::Acceptor, sr.clone());
        let (c, s) = both(
            || Connection::connect(a, Config::default(), &cc),
            move || Connection::accept(b, Config::default(), &sc),
        );
        c.unwrap();
        s.unwrap();
        assert_addresses_seen(&cr, &sr, "unix:", &sock.address());
    }

    /// The in-memory pipe: the authorizer sees what the caller stated.
    #[test]
    fn other_streams_take_the_callers_addresses() {
        let (a, b) = adapter_std::pipe();
        let (cr, sr) = (RecordingAuthorizer::any(), RecordingAuthorizer::any());
        let cc = test_credentials_with(Side::Dialer, cr.clone());
        let sc = test_credentials_with(Side::Acceptor, sr.clone());
        let (c, s) = both(
            || {
                Connection::connect_with(
                    a,
                    Addresses::new("mem:c", "mem:s"),
                    Config::default(),
                    &cc,
                )
            },
            move || {
                Connection::accept_with(b, Addresses::new("mem:s", "mem:c"), Config::default(), &sc)
            },
        );
        assert_test_pair(&c.unwrap().into_core(), &s.unwrap().into_core());
        assert_addresses_seen(&cr, &sr, "mem:c", "mem:s");
    }

    /// `dial` is the encrypted way to start a client over TCP.
    #[test]
    fn dial_connects_encrypted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (c, s) = both(
            || Connection::dial(addr, Config::default(), &test_credentials(Side::Dialer)),
            move || {
                let (b, _) = listener.accept()?;
                Connection::accept(b, Config::default(), &test_credentials(Side::Acceptor))
            },
        );
        assert_test_pair(&c.unwrap().into_core(), &s.unwrap().into_core());
    }
}

/// The handshake's timeout holds on streams without read timeouts of
/// their own.
mod timeout {
    use adapter_core::secure::test_credentials;
    use adapter_std::secure::{Addresses, SecureHandshakeError};
    use adapter_std::{Config, Connection, PipeStream, Side, Stream};
    use std::io::{self, Read, Write};
    use std::net::Shutdown;
    use std::time::Duration;

    fn timed_out(e: io::Error) {
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        let inner: &SecureHandshakeError = e.get_ref().unwrap().downcast_ref().unwrap();
        assert_eq!(inner, &SecureHandshakeError::Timeout);
    }

    fn quick(side: Side) -> adapter_std::Credentials {
        let mut creds = test_credentials(side);
        creds.config.handshake_timeout = Duration::from_millis(200);
        creds
    }

    /// The in-memory pipe (it has read timeouts): a silent server.
    #[test]
    fn a_silent_peer_on_the_pipe() {
        let (a, _silent) = adapter_std::pipe();
        let mem = Addresses::new("mem:client", "mem:server");
        timed_out(
            Connection::connect_with(a, mem, Config::default(), &quick(Side::Dialer)).unwrap_err(),
        );
    }

    /// A stream with no read timeout at all: only the watchdog can end
    /// the server's wait for a client that never speaks.
    #[test]
    fn a_silent_peer_on_a_stream_without_read_timeouts() {
        #[derive(Clone)]
        struct NoTimeouts(PipeStream);
        impl Read for NoTimeouts {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Write for NoTimeouts {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }
        impl Stream for NoTimeouts {
            fn try_clone(&self) -> io::Result<Self> {
                Ok(self.clone())
            }
            fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                self.0.shutdown(how)
            }
        }
        let (b, _silent) = adapter_std::pipe();
        let mem = Addresses::new("mem:server", "mem:client");
        let e = Connection::accept_with(
            NoTimeouts(b),
            mem,
            Config::default(),
            &quick(Side::Acceptor),
        );
        timed_out(e.unwrap_err());
    }
}
