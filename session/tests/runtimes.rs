//! The stream transport on the other runtimes: a session server on a weft
//! flow served by smol, and by blocking std threads; the client is a
//! blocking std flow that speaks the wire by hand.

mod common;

use bytes::Bytes;
use common::*;
use proto_core::session::{Message, RequestId};
use std::io::{Read, Write};
use weft_session::ServerOptions;

/// A blocking peer that writes and reads length-prefixed messages.
struct SyncPeer<S>(S);

impl<S: Read + Write> SyncPeer<S> {
    fn send(&mut self, msg: &Message) {
        let mut body = Vec::new();
        msg.encode(&mut body).unwrap();
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        self.0.write_all(&frame).unwrap();
        self.0.flush().unwrap();
    }

    fn recv(&mut self) -> Option<Message> {
        let mut len = [0u8; 4];
        self.0.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.0.read_exact(&mut body).ok()?;
        Some(Message::decode(Bytes::from(body)).expect("a valid message"))
    }
}

/// Accept configuration, a reply, an error reply, a signal both ways.
fn exchange<S: Read + Write>(peer: &mut SyncPeer<S>) {
    assert!(matches!(peer.recv(), Some(Message::AcceptConf(_))));
    peer.send(&request(1, "echo", utf8("on this runtime")));
    match peer.recv() {
        Some(Message::Reply { id, payload }) => {
            assert_eq!(id, RequestId::from_u64(1));
            assert_eq!(&payload.data[..], b"on this runtime");
        }
        other => panic!("expected the echo, got {other:?}"),
    }
    peer.send(&request(2, "fail", utf8("")));
    assert!(
        matches!(peer.recv(), Some(Message::ErrorReply { code, .. }) if &code[..] == b"E_TEST")
    );
    peer.send(&Message::Signal {
        name: Bytes::from_static(b"ping"),
        payload: utf8("7"),
    });
    match peer.recv() {
        Some(Message::Signal { name, payload }) => {
            assert_eq!(&name[..], b"pong");
            assert_eq!(&payload.data[..], b"7");
        }
        other => panic!("expected the pong, got {other:?}"),
    }
}

#[test]
fn a_session_server_on_a_smol_flow() {
    let (server, app, _) = server_with(ServerOptions::default());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        smol::block_on(async move {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            let conn =
                adapter_smol::Connection::server(tcp, adapter_smol::Config::default()).unwrap();
            while let Ok(flow) = conn.accept_flow().await {
                let server = server.clone();
                smol::spawn(async move {
                    server
                        .serve_transport(&adapter_smol::SmolRuntime, flow.into_core(), None)
                        .await
                })
                .detach();
            }
        })
    });
    let addr = rx.recv().unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    let client = adapter_std::Connection::client(tcp, adapter_std::Config::default()).unwrap();
    let mut peer = SyncPeer(client.open_flow().unwrap());
    exchange(&mut peer);
    assert_eq!(app.requests.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn a_session_server_on_std_threads() {
    let (server, app, _) = server_with(ServerOptions::default());
    let (a, b) = adapter_std::pipe();
    let accepting = adapter_std::Connection::server(b, adapter_std::Config::default()).unwrap();
    std::thread::spawn(move || {
        while let Ok(flow) = accepting.accept_flow() {
            let server = server.clone();
            std::thread::spawn(move || {
                adapter_core::block_on(server.serve_transport(
                    &adapter_std::Threads,
                    flow.into_core(),
                    None,
                ))
            });
        }
    });
    let client = adapter_std::Connection::client(a, adapter_std::Config::default()).unwrap();
    let mut peer = SyncPeer(client.open_flow().unwrap());
    exchange(&mut peer);
    assert_eq!(app.requests.load(std::sync::atomic::Ordering::SeqCst), 2);
}
