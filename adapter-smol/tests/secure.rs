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
