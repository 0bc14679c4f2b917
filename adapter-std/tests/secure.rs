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
