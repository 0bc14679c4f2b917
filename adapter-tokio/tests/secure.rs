//! tokio-only secure behaviour: a man in the middle flipping a bit. The
//! handshake cases written once for every adapter (authorizers, refusals,
//! addresses, timeouts, 100 encrypted flows) are the link cases of the
//! conformance suite (`tests/conformance.rs`, module `links`).

use adapter_core::secure::test_credentials;
use adapter_tokio::{CloseReason, Config, Connection, Side};
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
