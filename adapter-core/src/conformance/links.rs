//! The cases over [`Harness::link`]: the secure handshake (authorizers,
//! refusals, the addresses they see, timeouts) and plaintext starts over
//! each adapter's own streams. Written once; every adapter runs them with
//! [`link_conformance_tests!`](crate::link_conformance_tests).

use super::{
    checksum, payload, spawn, timeout, BoxFuture, Ends, Link, Shared, Start, MEM_CLIENT, MEM_SERVER,
};
use crate::secure::{
    assert_address_refused, assert_addresses_seen, assert_test_pair, test_credentials,
    test_credentials_with, AllowAny, Credentials, Identity, RecordingAuthorizer,
    SecureHandshakeError, TrustedRoots,
};
use crate::{CloseReason, Config, Connection, Side};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// The cases, each a `fn(Shared) -> BoxFuture<()>`.
pub mod link_cases {
    use super::*;

    /// `link`, bounded; panics if the harness cannot make it.
    async fn link(h: &Shared, link: Link, client: Start, server: Start) -> Ends {
        try_link(h, link, client, server)
            .await
            .unwrap_or_else(|e| panic!("harness could not make a {link:?} link: {e}"))
    }

    async fn try_link(h: &Shared, link: Link, client: Start, server: Start) -> io::Result<Ends> {
        let what = format!("{link:?} link and handshakes");
        timeout(
            h,
            Duration::from_secs(30),
            &what,
            h.link(link, client, server),
        )
        .await
    }

    fn secure(side: Side) -> Start {
        Start::Secure(Config::default(), test_credentials(side))
    }

    fn with(creds: Credentials) -> Start {
        Start::Secure(Config::default(), creds)
    }

    /// Test credentials whose handshake gives up after 200 ms.
    fn quick(side: Side) -> Start {
        let mut creds = test_credentials(side);
        creds.config.handshake_timeout = Duration::from_millis(200);
        with(creds)
    }

    fn both(ends: Ends) -> (io::Result<Connection>, io::Result<Connection>) {
        (
            ends.client.expect("a client end"),
            ends.server.expect("a server end"),
        )
    }

    fn inner(e: &io::Error) -> &SecureHandshakeError {
        e.get_ref()
            .and_then(|e| e.downcast_ref())
            .unwrap_or_else(|| panic!("not a handshake error: {e}"))
    }

    fn timed_out(r: Option<io::Result<Connection>>) {
        let e = r
            .expect("the started end")
            .expect_err("a handshake with a silent peer");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert_eq!(inner(&e), &SecureHandshakeError::Timeout);
    }

    /// 100 encrypted flows over loopback TCP, the peer's names on every
    /// handle, every byte echoed.
    pub fn secure_hundred_flows(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let ends = link(&h, Link::Tcp, secure(Side::Dialer), secure(Side::Acceptor)).await;
            let (c, s) = both(ends);
            let (client, server) = (c.unwrap(), s.unwrap());
            let sec = client.security().expect("encrypted");
            assert_eq!(sec.remote_blessings(), ["weft-test:server"]);
            assert_eq!(sec.local_blessings(), ["weft-test:client"]);
            assert_eq!(sec.remote_key(), server.security().unwrap().local_key());

            let (srv, h2) = (server.clone(), h.clone());
            let echo = spawn(&h, async move {
                let mut tasks = Vec::new();
                for _ in 0..100 {
                    let mut flow = srv.accept_flow().await.unwrap();
                    assert_eq!(flow.security().unwrap().granted(), ["weft-test:client"]);
                    tasks.push(spawn(&h2, async move {
                        let buf = flow.read_to_end(1 << 20).await.unwrap();
                        flow.write_all(&buf).await.unwrap();
                        flow.finish().unwrap();
                    }));
                }
                for t in tasks {
                    t.await;
                }
            });
            let mut tasks = Vec::new();
            for i in 0..100u64 {
                let conn = client.clone();
                tasks.push(spawn(&h, async move {
                    let data = payload(i, 1000 + (i as usize) * 997);
                    let mut flow = conn.open_flow().await.unwrap();
                    assert_eq!(flow.security().unwrap().granted(), ["weft-test:server"]);
                    flow.write_all(&data).await.unwrap();
                    flow.finish().unwrap();
                    let got = flow.read_to_end(1 << 20).await.unwrap();
                    assert_eq!(got.len(), data.len(), "flow {i}");
                    assert_eq!(checksum(&got), checksum(&data), "flow {i}");
                }));
            }
            for t in tasks {
                t.await;
            }
            echo.await;
            assert_eq!(server.stats().flows_accepted, 100);
        })
    }

    /// A client that trusts no root refuses the server before revealing
    /// itself; the server's handshake just ends.
    pub fn secure_client_refuses_an_untrusted_server(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let mut distrustful = test_credentials(Side::Dialer);
            distrustful.roots = TrustedRoots::new();
            let ends = link(&h, Link::Tcp, with(distrustful), secure(Side::Acceptor)).await;
            let (c, s) = both(ends);
            let e = c.expect_err("the client refuses");
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
            assert!(
                matches!(inner(&e), SecureHandshakeError::Rejected(_)),
                "{e}"
            );
            // The server never saw the client's identity.
            let e = s.expect_err("the server's handshake ends");
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        })
    }

    /// A server refuses a client with no blessing; the client (XX: done
    /// with its side) sees the transport end.
    pub fn secure_server_refuses_an_unblessed_client(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let sc = test_credentials(Side::Acceptor);
            let anonymous = Credentials::new(
                Identity::from_secret([9; 32]),
                sc.roots.clone(),
                Arc::new(AllowAny),
            );
            let ends = link(&h, Link::Tcp, with(anonymous), with(sc)).await;
            let (c, s) = both(ends);
            let e = s.expect_err("the server refuses");
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
            assert!(
                matches!(inner(&e), SecureHandshakeError::Rejected(_)),
                "{e}"
            );
            let client = c.expect("the client finished its side");
            assert_eq!(client.closed().await, CloseReason::TransportEnded);
        })
    }

    /// A server that accepts TCP but never answers: the client's handshake
    /// gives up at its timeout instead of hanging.
    pub fn secure_silent_server_times_out(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let ends = link(&h, Link::Tcp, quick(Side::Dialer), Start::Idle).await;
            timed_out(ends.client);
        })
    }

    /// A client that connects and never speaks: the server's handshake
    /// gives up at its timeout.
    pub fn secure_silent_client_times_out(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let ends = link(&h, Link::Tcp, Start::Idle, quick(Side::Acceptor)).await;
            timed_out(ends.server);
        })
    }

    /// A silent peer on a stream without addresses (an in-memory pipe where
    /// the adapter has one): the timeout holds there too.
    pub fn secure_silent_peer_on_an_unaddressed_stream_times_out(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let ends = link(&h, Link::Unaddressed, quick(Side::Dialer), Start::Idle).await;
            timed_out(ends.client);
        })
    }

    /// A peer that never reads: the handshake's first write blocks, and the
    /// timeout still ends it.
    pub fn secure_peer_that_never_reads_times_out(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let ends = link(&h, Link::Stalled, quick(Side::Dialer), Start::Idle).await;
            timed_out(ends.client);
        })
    }

    /// Over TCP each authorizer sees its own socket's address and the
    /// peer's, and admits a peer only at the address it expects.
    pub fn authorizers_see_the_tcp_addresses(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            // The addresses are known only once the sockets exist: first
            // learn them (recording, admitting anyone), then check that
            // authorizers admitting exactly those addresses admit.
            let (cr, sr) = (RecordingAuthorizer::any(), RecordingAuthorizer::any());
            let ends = link(
                &h,
                Link::Tcp,
                with(test_credentials_with(Side::Dialer, cr.clone())),
                with(test_credentials_with(Side::Acceptor, sr.clone())),
            )
            .await;
            let (client, server) = (ends.client_addr.clone(), ends.server_addr.clone());
            assert!(
                client.contains(':') && server.contains(':'),
                "{client} {server}"
            );
            let (c, s) = both(ends);
            assert_test_pair(&c.unwrap(), &s.unwrap());
            assert_addresses_seen(&cr, &sr, &client, &server);
        })
    }

    /// An authorizer admitting only another address refuses the peer, and
    /// says why.
    pub fn authorizer_refuses_a_peer_at_another_address(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let sc = test_credentials_with(
                Side::Acceptor,
                RecordingAuthorizer::admitting("192.0.2.1:9"),
            );
            let ends = link(&h, Link::Tcp, secure(Side::Dialer), with(sc)).await;
            let client = ends.client_addr.clone();
            let (_c, s) = both(ends);
            assert_address_refused(&s.expect_err("refused"), &client);
        })
    }

    /// A Unix socket: the listener's end is its path, the client's unnamed.
    pub fn authorizers_see_the_unix_socket_path(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let (cr, sr) = (RecordingAuthorizer::any(), RecordingAuthorizer::any());
            let r = try_link(
                &h,
                Link::Unix,
                with(test_credentials_with(Side::Dialer, cr.clone())),
                with(test_credentials_with(Side::Acceptor, sr.clone())),
            )
            .await;
            let ends = match r {
                Err(e) if !cfg!(unix) && e.kind() == io::ErrorKind::Unsupported => return,
                r => r.expect("a Unix socket link"),
            };
            assert_eq!(ends.client_addr, "unix:");
            assert!(
                ends.server_addr.starts_with("unix:/"),
                "{}",
                ends.server_addr
            );
            let (client, server) = (ends.client_addr.clone(), ends.server_addr.clone());
            let (c, s) = both(ends);
            assert_test_pair(&c.unwrap(), &s.unwrap());
            assert_addresses_seen(&cr, &sr, &client, &server);
        })
    }

    /// Any other stream: the authorizer sees what the caller stated.
    pub fn unaddressed_streams_take_the_callers_addresses(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let (cr, sr) = (RecordingAuthorizer::any(), RecordingAuthorizer::any());
            let ends = link(
                &h,
                Link::Unaddressed,
                with(test_credentials_with(Side::Dialer, cr.clone())),
                with(test_credentials_with(Side::Acceptor, sr.clone())),
            )
            .await;
            let (c, s) = both(ends);
            assert_test_pair(&c.unwrap(), &s.unwrap());
            assert_addresses_seen(&cr, &sr, MEM_CLIENT, MEM_SERVER);
        })
    }

    /// `dial` is the encrypted way to start a client over TCP.
    pub fn dial_connects_encrypted(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let ends = link(&h, Link::Dial, secure(Side::Dialer), secure(Side::Acceptor)).await;
            let (c, s) = both(ends);
            assert_test_pair(&c.unwrap(), &s.unwrap());
        })
    }

    /// `connect_tcp` is the plaintext one; a flow crosses it.
    pub fn dial_connects_plaintext(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let plain = Start::Plain(Config::default());
            let ends = link(&h, Link::Dial, plain.clone(), plain).await;
            let (c, s) = both(ends);
            roundtrip(&h, c.unwrap(), s.unwrap(), 50_000).await;
        })
    }

    /// A plaintext connection over a Unix socket carries a flow and pings.
    pub fn plaintext_over_a_unix_socket(h: Shared) -> BoxFuture<()> {
        Box::pin(async move {
            let plain = Start::Plain(Config::default());
            let ends = match try_link(&h, Link::Unix, plain.clone(), plain).await {
                Err(e) if !cfg!(unix) && e.kind() == io::ErrorKind::Unsupported => return,
                r => r.expect("a Unix socket link"),
            };
            let (c, s) = both(ends);
            let (client, server) = (c.unwrap(), s.unwrap());
            assert!(client.security().is_none());
            roundtrip(&h, client.clone(), server, 300_000).await;
            client.ping().await.expect("a pong");
        })
    }

    /// One flow from `client`, echoed by `server`.
    async fn roundtrip(h: &Shared, client: Connection, server: Connection, len: usize) {
        let _echo = super::super::serve_echo(h, server);
        let data = bytes::Bytes::from(payload(len as u64, len));
        let flow = client.open_flow().await.unwrap();
        let got = super::super::echo_roundtrip(h, flow, data.clone(), false)
            .await
            .unwrap();
        assert_eq!(got.len(), len);
        assert_eq!(checksum(&got), checksum(&data));
    }
}
