//! tokio-specific behaviour: flows through tokio's IO traits, a driver
//! spawned by the caller on a current-thread runtime. Unix sockets,
//! `connect_tcp` and config errors are conformance cases.

use adapter_tokio::{CloseReason, Config, Connection, Side};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Echoes every accepted flow with `tokio::io::copy` over the split halves.
async fn serve(conn: Connection) {
    while let Ok(flow) = conn.accept_flow().await {
        tokio::spawn(async move {
            let (mut rx, mut tx) = flow.split();
            tokio::io::copy(&mut rx, &mut tx).await.unwrap();
            tx.shutdown().await.unwrap();
        });
    }
}

async fn roundtrip(client: &Connection, data: &[u8]) -> Vec<u8> {
    let flow = client.open_flow().await.unwrap();
    let (mut rx, mut tx) = flow.split();
    let owned = data.to_vec();
    let writer = tokio::spawn(async move {
        tx.write_all(&owned).await.unwrap();
        tx.flush().await.unwrap();
        tx.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    rx.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_traits_over_duplex() {
    let (a, b) = tokio::io::duplex(16 * 1024);
    let client = Connection::client(a, Config::default()).unwrap();
    let server = Connection::server(b, Config::default()).unwrap();
    tokio::spawn(serve(server.clone()));
    let data: Vec<u8> = (0..500_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(roundtrip(&client, &data).await, data);

    // The whole flow (not split) through the traits too.
    let mut flow = client.open_flow().await.unwrap();
    flow.write_all(b"whole").await.unwrap();
    flow.shutdown().await.unwrap();
    let mut got = String::new();
    flow.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "whole");
    // Writing after shutdown (FIN) fails.
    assert_eq!(
        flow.write_all(b"x").await.unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
}

#[test]
fn driver_spawned_by_the_caller_on_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let (a, b) = tokio::io::duplex(64 * 1024);
        // Built outside any task: the timer is created lazily.
        let (client, driver) = Connection::new(a, Config::default(), Side::Dialer).unwrap();
        let (server, server_driver) =
            Connection::new(b, Config::default(), Side::Acceptor).unwrap();
        let client_driver = tokio::task::spawn_local(driver);
        tokio::task::spawn_local(server_driver);
        tokio::task::spawn_local(serve(server.clone()));
        assert_eq!(roundtrip(&client, b"local").await, b"local");
        assert!(client.ping().await.is_ok());
        client.close(3, b"done");
        assert_eq!(
            server.closed().await,
            CloseReason::Application {
                code: 3,
                reason: b"done".to_vec()
            }
        );
        // The driver finishes once the close is written and the peer is gone.
        client_driver.await.unwrap().unwrap();
    });
}
