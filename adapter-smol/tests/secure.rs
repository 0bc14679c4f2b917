//! Secure connections over loopback TCP: 100 encrypted flows with the
//! peer's names on every handle, and both kinds of refusal.

use adapter_core::conformance::{checksum, payload};
use adapter_core::secure::{test_credentials, SecureHandshakeError};
use adapter_smol::secure::{AllowAny, Credentials, Identity, TrustedRoots};
use adapter_smol::{CloseReason, Config, Connection, Side};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use std::io;
use std::sync::Arc;

async fn tcp() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (b, _) = listener.accept().await.unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

async fn pair(
    cc: &Credentials,
    sc: &Credentials,
) -> (io::Result<Connection>, io::Result<Connection>) {
    let (a, b) = tcp().await;
    smol::future::zip(
        Connection::connect(a, Config::default(), cc),
        Connection::accept(b, Config::default(), sc),
    )
    .await
}

#[test]
fn a_hundred_encrypted_flows_over_loopback() {
    smol::block_on(async {
        let (cc, sc) = (
            test_credentials(Side::Dialer),
            test_credentials(Side::Acceptor),
        );
        let (c, s) = pair(&cc, &sc).await;
        let (client, server) = (c.unwrap(), s.unwrap());
        let sec = client.security().unwrap();
        assert_eq!(sec.remote_blessings(), ["weft-test:server"]);
        assert_eq!(sec.remote_key(), server.security().unwrap().local_key());

        let srv = server.clone();
        let echo = smol::spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..100 {
                let mut flow = srv.accept_flow().await.unwrap();
                assert_eq!(flow.security().unwrap().granted(), ["weft-test:client"]);
                tasks.push(smol::spawn(async move {
                    let mut buf = Vec::new();
                    flow.read_to_end(&mut buf).await.unwrap();
                    flow.write_all(&buf).await.unwrap();
                    flow.close().await.unwrap();
                }));
            }
            for t in tasks {
                t.await;
            }
        });
        let mut tasks = Vec::new();
        for i in 0..100u64 {
            let conn = client.clone();
            tasks.push(smol::spawn(async move {
                let data = payload(i, 1000 + (i as usize) * 997);
                let mut flow = conn.open_flow().await.unwrap();
                assert_eq!(flow.security().unwrap().granted(), ["weft-test:server"]);
                flow.write_all(&data).await.unwrap();
                flow.close().await.unwrap();
                let mut got = Vec::new();
                flow.read_to_end(&mut got).await.unwrap();
                assert_eq!(checksum(&got), checksum(&data), "flow {i}");
            }));
        }
        for t in tasks {
            t.await;
        }
        echo.await;
        assert_eq!(server.stats().flows_accepted, 100);
    });
}

#[test]
fn a_client_refuses_a_server_it_does_not_trust() {
    smol::block_on(async {
        let mut distrustful = test_credentials(Side::Dialer);
        distrustful.roots = TrustedRoots::new();
        let (c, s) = pair(&distrustful, &test_credentials(Side::Acceptor)).await;
        let e = c.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let inner: &SecureHandshakeError = e.get_ref().unwrap().downcast_ref().unwrap();
        assert!(matches!(inner, SecureHandshakeError::Rejected(_)), "{e}");
        assert_eq!(s.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    });
}

#[test]
fn a_server_refuses_an_unblessed_client() {
    smol::block_on(async {
        let sc = test_credentials(Side::Acceptor);
        let anonymous = Credentials::new(
            Identity::from_secret([9; 32]),
            sc.roots.clone(),
            Arc::new(AllowAny),
        );
        let (c, s) = pair(&anonymous, &sc).await;
        assert_eq!(s.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(c.unwrap().closed().await, CloseReason::TransportEnded);
    });
}

mod addresses {
    use super::tcp;
    use adapter_core::secure::{
        assert_address_refused, assert_addresses_seen, assert_test_pair, test_credentials,
        test_credentials_with, RecordingAuthorizer, TempSocketPath,
    };
    use adapter_smol::secure::Addresses;
    use adapter_smol::{Config, Connection, Side};

    /// Over TCP each authorizer sees its own socket's address and the
    /// peer's, and admits a peer only at the address it expects.
    #[test]
    fn authorizers_see_the_tcp_addresses() {
        smol::block_on(async {
            let (a, b) = tcp().await;
            let client = a.local_addr().unwrap().to_string();
            let server = b.local_addr().unwrap().to_string();
            let cr = RecordingAuthorizer::admitting(&server);
            let sr = RecordingAuthorizer::admitting(&client);
            let cc = test_credentials_with(Side::Dialer, cr.clone());
            let sc = test_credentials_with(Side::Acceptor, sr.clone());
            let (c, s) = smol::future::zip(
                Connection::connect(a, Config::default(), &cc),
                Connection::accept(b, Config::default(), &sc),
            )
            .await;
            c.unwrap();
            s.unwrap();
            assert_addresses_seen(&cr, &sr, &client, &server);
        })
    }

    #[test]
    fn an_authorizer_refuses_a_peer_at_another_address() {
        smol::block_on(async {
            let (a, b) = tcp().await;
            let client = a.local_addr().unwrap().to_string();
            let cc = test_credentials(Side::Dialer);
            let sc = test_credentials_with(
                Side::Acceptor,
                RecordingAuthorizer::admitting("192.0.2.1:9"),
            );
            let (_c, s) = smol::future::zip(
                Connection::connect(a, Config::default(), &cc),
                Connection::accept(b, Config::default(), &sc),
            )
            .await;
            assert_address_refused(&s.unwrap_err(), &client);
        })
    }

    /// A Unix socket: the listener's end is its path, the client's unnamed.
    #[cfg(unix)]
    #[test]
    fn authorizers_see_the_unix_socket_path() {
        use smol::net::unix::{UnixListener, UnixStream};
        smol::block_on(async {
            let sock = TempSocketPath::new("smol");
            let listener = UnixListener::bind(&sock.path).unwrap();
            let a = UnixStream::connect(&sock.path).await.unwrap();
            let (b, _) = listener.accept().await.unwrap();
            let (cr, sr) = (RecordingAuthorizer::any(), RecordingAuthorizer::any());
            let cc = test_credentials_with(Side::Dialer, cr.clone());
            let sc = test_credentials_with(Side::Acceptor, sr.clone());
            let (c, s) = smol::future::zip(
                Connection::connect(a, Config::default(), &cc),
                Connection::accept(b, Config::default(), &sc),
            )
            .await;
            c.unwrap();
            s.unwrap();
            assert_addresses_seen(&cr, &sr, "unix:", &sock.address());
        })
    }

    /// Any other stream (here TCP handed over as a plain stream): the
    /// authorizer sees what the caller stated.
    #[test]
    fn other_streams_take_the_callers_addresses() {
        smol::block_on(async {
            let (a, b) = tcp().await;
            let (cr, sr) = (RecordingAuthorizer::any(), RecordingAuthorizer::any());
            let cc = test_credentials_with(Side::Dialer, cr.clone());
            let sc = test_credentials_with(Side::Acceptor, sr.clone());
            let (c, s) = smol::future::zip(
                Connection::connect_with(a, Addresses::new("me", "them"), Config::default(), &cc),
                Connection::accept_with(b, Addresses::new("them", "me"), Config::default(), &sc),
            )
            .await;
            assert_test_pair(&c.unwrap(), &s.unwrap());
            assert_addresses_seen(&cr, &sr, "me", "them");
        })
    }

    /// `dial` is the encrypted way to start a client over TCP.
    #[test]
    fn dial_connects_encrypted() {
        smol::block_on(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let sc = test_credentials(Side::Acceptor);
            let cc = test_credentials(Side::Dialer);
            let (c, s) = smol::future::zip(Connection::dial(addr, Config::default(), &cc), async {
                let (b, _) = listener.accept().await?;
                Connection::accept(b, Config::default(), &sc).await
            })
            .await;
            assert_test_pair(&c.unwrap(), &s.unwrap());
        })
    }
}
