//! Secure connections over loopback TCP: 100 encrypted flows with the
//! peer's names on every handle, and both kinds of refusal.

use adapter_core::conformance::{checksum, payload};
use adapter_core::secure::{test_credentials, SecureHandshakeError};
use adapter_tokio::secure::{AllowAny, Credentials, Identity, TrustedRoots};
use adapter_tokio::{CloseReason, Config, Connection, Side};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn tcp() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (a, (b, _)) = (a.unwrap(), b.unwrap());
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_encrypted_flows_over_loopback() {
    let (a, b) = tcp().await;
    let (cc, sc) = (
        test_credentials(Side::Dialer),
        test_credentials(Side::Acceptor),
    );
    let (c, s) = tokio::join!(
        Connection::connect(a, Config::default(), &cc),
        Connection::accept(b, Config::default(), &sc),
    );
    let (client, server) = (c.unwrap(), s.unwrap());
    let sec = client.security().unwrap();
    assert_eq!(sec.remote_blessings(), ["weft-test:server"]);
    assert_eq!(sec.local_blessings(), ["weft-test:client"]);
    assert_eq!(sec.remote_key(), server.security().unwrap().local_key());

    let srv = server.clone();
    let echo = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let mut flow = srv.accept_flow().await.unwrap();
            assert_eq!(flow.security().unwrap().granted(), ["weft-test:client"]);
            tasks.push(tokio::spawn(async move {
                let mut buf = Vec::new();
                flow.read_to_end(&mut buf).await.unwrap();
                flow.write_all(&buf).await.unwrap();
                flow.shutdown().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let conn = client.clone();
        tasks.push(tokio::spawn(async move {
            let data = payload(i, 1000 + (i as usize) * 997);
            let mut flow = conn.open_flow().await.unwrap();
            assert_eq!(flow.security().unwrap().granted(), ["weft-test:server"]);
            flow.write_all(&data).await.unwrap();
            flow.shutdown().await.unwrap();
            let mut got = Vec::new();
            flow.read_to_end(&mut got).await.unwrap();
            assert_eq!(checksum(&got), checksum(&data), "flow {i}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    echo.await.unwrap();
    assert_eq!(server.stats().flows_accepted, 100);
}

fn inner(e: &io::Error) -> &SecureHandshakeError {
    e.get_ref()
        .and_then(|e| e.downcast_ref())
        .expect("a handshake error")
}

#[tokio::test]
async fn a_client_refuses_a_server_it_does_not_trust() {
    let (a, b) = tcp().await;
    // Trusts no root at all.
    let mut distrustful = test_credentials(Side::Dialer);
    distrustful.roots = TrustedRoots::new();
    let sc = test_credentials(Side::Acceptor);
    let (c, s) = tokio::join!(
        Connection::connect(a, Config::default(), &distrustful),
        Connection::accept(b, Config::default(), &sc),
    );
    let e = c.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(
        matches!(inner(&e), SecureHandshakeError::Rejected(_)),
        "{e}"
    );
    // The server never saw the client's identity: its handshake ended early.
    let e = s.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
}

#[tokio::test]
async fn a_server_refuses_an_unblessed_client() {
    let (a, b) = tcp().await;
    let server_creds = test_credentials(Side::Acceptor);
    let anonymous = Credentials::new(
        Identity::from_secret([9; 32]),
        server_creds.roots.clone(),
        Arc::new(AllowAny),
    );
    let (c, s) = tokio::join!(
        Connection::connect(a, Config::default(), &anonymous),
        Connection::accept(b, Config::default(), &server_creds),
    );
    let e = s.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    // XX: the client finished its side; the server hangs up on it.
    let client = c.unwrap();
    assert_eq!(client.closed().await, CloseReason::TransportEnded);
}

/// A man in the middle flips one bit of the client's stream after the
/// handshake: the server closes with a clear reason, accepts no flow, and
/// the client hears why (the CLOSE goes out sealed).
#[tokio::test]
async fn a_flipped_bit_on_the_wire_closes_with_a_clear_error() {
    use adapter_core::proto_core::secure::RECORD_FAILURE;
    let (a, to_proxy) = tcp().await;
    let (from_proxy, b) = tcp().await;
    // Client -> server: pass the handshake's 2 messages (msg1, msg3) and
    // the first record through, then flip a bit in the next record.
    let (mut cr, mut cw) = to_proxy.into_split();
    let (mut sr, mut sw) = from_proxy.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    });
    let (first_done_tx, first_done_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        // Frames of the client's stream: 2-byte length + body.
        let mut frames = 0;
        let mut first_done = Some(first_done_tx);
        loop {
            let mut len = [0u8; 2];
            if cr.read_exact(&mut len).await.is_err() {
                break;
            }
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if cr.read_exact(&mut body).await.is_err() {
                break;
            }
            frames += 1;
            if frames == 4 {
                body[0] ^= 1;
            }
            if sw.write_all(&len).await.is_err() || sw.write_all(&body).await.is_err() {
                break;
            }
            if frames == 3 {
                let _ = first_done.take().map(|t| t.send(()));
            }
        }
    });
    let (cc, sc) = (
        test_credentials(Side::Dialer),
        test_credentials(Side::Acceptor),
    );
    let (c, s) = tokio::join!(
        Connection::connect(a, Config::default(), &cc),
        Connection::accept(b, Config::default(), &sc),
    );
    let (client, server) = (c.unwrap(), s.unwrap());
    // Record 1 (the mux's opening output) arrives intact; the next one
    // (this flow, or a PONG that beats it) is tampered with.
    first_done_rx.await.unwrap();
    let mut flow = client.open_flow().await.unwrap();
    flow.write_all(b"never delivered").await.unwrap();
    flow.shutdown().await.unwrap();
    assert_eq!(
        server.closed().await,
        CloseReason::Local {
            code: RECORD_FAILURE
        }
    );
    assert_eq!(
        server.transport_error().as_deref(),
        Some("record authentication failed")
    );
    assert_eq!(
        server.stats().flows_accepted,
        0,
        "nothing after the bad record"
    );
    match client.closed().await {
        CloseReason::Application { code, .. } => assert_eq!(code, RECORD_FAILURE),
        other => panic!("client saw {other:?}"),
    }
}

/// A server that accepts TCP but never answers: the handshake gives up at
/// its timeout instead of hanging.
#[tokio::test]
async fn a_silent_server_times_the_handshake_out() {
    let (a, _silent) = tcp().await;
    let mut creds = test_credentials(Side::Dialer);
    creds.config.handshake_timeout = std::time::Duration::from_millis(200);
    let e = Connection::connect(a, Config::default(), &creds)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert_eq!(inner(&e), &SecureHandshakeError::Timeout);
}

mod addresses {
    use super::tcp;
    use adapter_core::secure::{
        assert_address_refused, assert_addresses_seen, assert_test_pair, test_credentials,
        test_credentials_with, RecordingAuthorizer, TempSocketPath,
    };
    use adapter_tokio::secure::Addresses;
    use adapter_tokio::{Config, Connection, Side};

    /// Over TCP each authorizer sees its own socket's address and the
    /// peer's, and admits a peer only at the address it expects.
    #[tokio::test]
    async fn authorizers_see_the_tcp_addresses() {
        let (a, b) = tcp().await;
        let client = a.local_addr().unwrap().to_string();
        let server = b.local_addr().unwrap().to_string();
        let cr = RecordingAuthorizer::admitting(&server);
        let sr = RecordingAuthorizer::admitting(&client);
        let cc = test_credentials_with(Side::Dialer, cr.clone());
        let sc = test_credentials_with(Side::Acceptor, sr.clone());
        let (c, s) = tokio::join!(
            Connection::connect(a, Config::default(), &cc),
            Connection::accept(b, Config::default(), &sc),
        );
        c.unwrap();
        s.unwrap();
        assert_addresses_seen(&cr, &sr, &client, &server);
    }

    #[tokio::test]
    async fn an_authorizer_refuses_a_peer_at_another_address() {
        let (a, b) = tcp().await;
        let client = a.local_addr().unwrap().to_string();
        let cc = test_credentials(Side::Dialer);
        let sc = test_credentials_with(
            Side::Acceptor,
            RecordingAuthorizer::admitting("192.0.2.1:9"),
        );
        let (_c, s) = tokio::join!(
            Connection::connect(a, Config::default(), &cc),
            Connection::accept(b, Config::default(), &sc),
        );
        assert_address_refused(&s.unwrap_err(), &client);
    }

    /// A Unix socket: the listener's end is its path, the client's unnamed.
    #[cfg(unix)]
    #[tokio::test]
    async fn authorizers_see_the_unix_socket_path() {
        let sock = TempSocketPath::new("tokio");
        let listener = tokio::net::UnixListener::bind(&sock.path).unwrap();
        let (a, b) = tokio::join!(
            tokio::net::UnixStream::connect(&sock.path),
            listener.accept()
        );
        let (a, (b, _)) = (a.unwrap(), b.unwrap());
        let (cr, sr) = (RecordingAuthorizer::any(), RecordingAuthorizer::any());
        let cc = test_credentials_with(Side::Dialer, cr.clone());
        let sc = test_credentials_with(Side::Acceptor, sr.clone());
        let (c, s) = tokio::join!(
            Connection::connect(a, Config::default(), &cc),
            Connection::accept(b, Config::default(), &sc),
        );
        c.unwrap();
        s.unwrap();
        assert_addresses_seen(&cr, &sr, "unix:", &sock.address());
    }

    /// Any other stream: the authorizer sees what the caller stated.
    #[tokio::test]
    async fn other_streams_take_the_callers_addresses() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (cr, sr) = (RecordingAuthorizer::any(), RecordingAuthorizer::any());
        let cc = test_credentials_with(Side::Dialer, cr.clone());
        let sc = test_credentials_with(Side::Acceptor, sr.clone());
        let (c, s) = tokio::join!(
            Connection::connect_with(a, Addresses::new("mem:c", "mem:s"), Config::default(), &cc),
            Connection::accept_with(b, Addresses::new("mem:s", "mem:c"), Config::default(), &sc),
        );
        assert_test_pair(&c.unwrap(), &s.unwrap());
        assert_addresses_seen(&cr, &sr, "mem:c", "mem:s");
    }

    /// `dial` is the encrypted way to start a client over TCP.
    #[tokio::test]
    async fn dial_connects_encrypted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (b, _) = listener.accept().await.unwrap();
            Connection::accept(b, Config::default(), &test_credentials(Side::Acceptor)).await
        });
        let c = Connection::dial(addr, Config::default(), &test_credentials(Side::Dialer))
            .await
            .unwrap();
        let s = server.await.unwrap().unwrap();
        assert_test_pair(&c, &s);
    }
}

/// A peer that never reads: the handshake's first write blocks on a full
/// one-byte pipe, and the timeout still ends it.
#[tokio::test]
async fn a_peer_that_never_reads_times_the_handshake_out() {
    let (a, _deaf) = tokio::io::duplex(1);
    let mut creds = test_credentials(Side::Dialer);
    creds.config.handshake_timeout = std::time::Duration::from_millis(200);
    let mem = adapter_tokio::Addresses::new("mem:c", "mem:s");
    let e = Connection::connect_with(a, mem, Config::default(), &creds)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert_eq!(inner(&e), &SecureHandshakeError::Timeout);
}
