//! std-specific behaviour: flows through `Read`/`Write` from plain threads
//! over TCP and the pipe. Unix sockets and config errors are conformance
//! cases.

use adapter_std::{Config, Connection};
use std::io::{self, Read, Write};
use std::thread;

fn serve(conn: Connection) {
    thread::spawn(move || {
        while let Ok(flow) = conn.accept_flow() {
            thread::spawn(move || {
                let (mut rx, mut tx) = flow.split();
                io::copy(&mut rx, &mut tx).unwrap();
                tx.finish().unwrap();
            });
        }
    });
}

fn roundtrip(client: &Connection, data: &[u8]) -> Vec<u8> {
    let (mut rx, mut tx) = client.open_flow().unwrap().split();
    let owned = data.to_vec();
    let writer = thread::spawn(move || {
        tx.write_all(&owned).unwrap();
        tx.flush().unwrap();
        tx.finish().unwrap();
    });
    let mut got = Vec::new();
    rx.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    got
}

#[test]
fn read_write_over_tcp() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client =
        Connection::connect_tcp(listener.local_addr().unwrap(), Config::default()).unwrap();
    let (s, _) = listener.accept().unwrap();
    let server = Connection::server(s, Config::default()).unwrap();
    serve(server.clone());
    let data: Vec<u8> = (0..500_000u32).map(|i| (i % 241) as u8).collect();
    assert_eq!(roundtrip(&client, &data), data);

    let mut flow = client.open_flow().unwrap();
    flow.write_all(b"whole").unwrap();
    flow.finish().unwrap();
    let mut got = String::new();
    flow.read_to_string(&mut got).unwrap();
    assert_eq!(got, "whole");
    assert_eq!(
        flow.write(b"x").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );

    assert!(client.ping().unwrap() < std::time::Duration::from_secs(30));
    client.go_away(0);
    let reason = client.closed();
    assert!(
        matches!(
            reason,
            adapter_std::CloseReason::Drained | adapter_std::CloseReason::Transport { .. }
        ),
        "{reason:?}"
    );
}

#[test]
fn zero_copy_chunks_over_the_pipe() {
    let (a, b) = adapter_std::pipe();
    let client = Connection::client(a, Config::default()).unwrap();
    let server = Connection::server(b, Config::default()).unwrap();
    let mut flow = client.open_flow().unwrap();
    flow.write_chunk(bytes::Bytes::from(vec![1u8; 200_000]))
        .unwrap();
    flow.finish().unwrap();
    let mut acc = server.accept_flow().unwrap();
    let mut total = 0;
    while let Some(chunk) = acc.read_chunk(64 * 1024).unwrap() {
        assert!(chunk.iter().all(|&b| b == 1));
        total += chunk.len();
    }
    assert_eq!(total, 200_000);
}

#[test]
fn a_closed_connection_gives_up_on_a_peer_that_never_reads() {
    // The peer end is held but never read: the pipe fills up and the
    // writer thread blocks in `write`.
    let (a, mut b) = adapter_std::pipe();
    let client = Connection::client(a, Config::default()).unwrap();
    let mut flow = client.open_flow().unwrap();
    let chunk = vec![0u8; 64 * 1024];
    for _ in 0..4 {
        flow.write_all(&chunk).unwrap(); // buffered: the window is 256 KiB
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    client.close(9, b"giving up");
    assert_eq!(client.closed(), adapter_std::CloseReason::Local { code: 9 });
    // The writer gives up LINGER after the close and shuts the stream down:
    // the peer reads what got into the pipe, then EOF, not the whole 256 KiB.
    std::thread::sleep(adapter_core::LINGER + std::time::Duration::from_millis(700));
    let mut rest = Vec::new();
    b.read_to_end(&mut rest).unwrap();
    assert!(
        rest.len() <= adapter_std::PIPE_CAPACITY,
        "{} bytes",
        rest.len()
    );
}
