//! smol-specific behaviour: flows through futures-io's traits. Unix
//! sockets (through `Async` and smol's own) and config errors are
//! conformance cases.

use adapter_smol::{Config, Connection};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use std::io;

async fn serve(conn: Connection) {
    while let Ok(flow) = conn.accept_flow().await {
        smol::spawn(async move {
            let (mut rx, mut tx) = flow.split();
            smol::io::copy(&mut rx, &mut tx).await.unwrap();
            tx.close().await.unwrap();
        })
        .detach();
    }
}

async fn roundtrip(client: &Connection, data: &[u8]) -> Vec<u8> {
    let flow = client.open_flow().await.unwrap();
    let (mut rx, mut tx) = flow.split();
    let owned = data.to_vec();
    let writer = smol::spawn(async move {
        tx.write_all(&owned).await.unwrap();
        tx.flush().await.unwrap();
        tx.close().await.unwrap();
    });
    let mut got = Vec::new();
    rx.read_to_end(&mut got).await.unwrap();
    writer.await;
    got
}

#[test]
fn io_traits_over_tcp() {
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = Connection::connect_tcp(listener.local_addr().unwrap(), Config::default())
            .await
            .unwrap();
        let (s, _) = listener.accept().await.unwrap();
        smol::spawn(serve(Connection::server(s, Config::default()).unwrap())).detach();
        let data: Vec<u8> = (0..500_000u32).map(|i| (i % 253) as u8).collect();
        assert_eq!(roundtrip(&client, &data).await, data);

        let mut flow = client.open_flow().await.unwrap();
        flow.write_all(b"whole").await.unwrap();
        flow.close().await.unwrap();
        let mut got = String::new();
        flow.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "whole");
        assert_eq!(
            flow.write_all(b"x").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    });
}
