//! The listener over real loopback TCP, on smol: admission refuses or
//! queues a flood from one source while other sources get through.
//! Outcomes and counts only: no timing assertions.

use adapter_core::secure::test_credentials;
use adapter_smol::{
    AdmissionConfig, Config, Connection, Excess, Listener, ListenerOptions, ListenerStats, Side,
};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::Async;
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Waits until `f` holds for the listener's stats (panics after a minute:
/// a liveness guard, not a timing assertion).
async fn until(l: &Listener, what: &str, f: impl Fn(&ListenerStats) -> bool) {
    for _ in 0..12_000 {
        if f(&l.stats()) {
            return;
        }
        smol::Timer::after(Duration::from_millis(5)).await;
    }
    panic!("never {what}: {:?}", l.stats());
}

/// A raw TCP connection from `from` (any 127/8 address on Linux loopback).
fn raw_from(from: &str, to: SocketAddr) -> Async<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    s.bind(&local.into()).unwrap();
    s.connect(&to.into()).unwrap();
    Async::new(TcpStream::from(s)).unwrap()
}

async fn client_from(from: &str, to: SocketAddr, name: &'static [u8]) -> Connection {
    let stream = raw_from(from, to);
    let conn = Connection::connect(stream, Config::default(), &test_credentials(Side::Dialer))
        .await
        .expect("handshake");
    let mut flow = conn.open_flow().await.unwrap();
    flow.write_all(name).await.unwrap();
    flow.close().await.unwrap();
    conn
}

async fn accept_name(l: &Listener) -> Vec<u8> {
    let conn = l.accept().await.expect("accepted");
    let mut flow = conn.accept_flow().await.unwrap();
    let mut got = Vec::new();
    flow.read_to_end(&mut got).await.unwrap();
    got
}

async fn closed_by_server(mut s: Async<TcpStream>) {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn listener(admission: AdmissionConfig) -> Listener {
    let options = ListenerOptions {
        admission,
        ..ListenerOptions::default()
    };
    let creds = test_credentials(Side::Acceptor);
    Listener::bind("127.0.0.1:0", Config::default(), &creds, options)
        .await
        .unwrap()
}

#[test]
fn flood_from_one_source_is_refused_while_another_connects() {
    smol::block_on(async {
        let l = listener(AdmissionConfig {
            max_in_progress_per_source: 4,
            ..AdmissionConfig::default()
        })
        .await;
        let addr = l.local_addr();
        let mut flood: Vec<_> = (0..20).map(|_| raw_from("127.0.0.1", addr)).collect();
        until(&l, "refused the flood", |s| {
            s.admission.refused.source_busy == 16 && s.admission.in_progress == 4
        })
        .await;
        for s in flood.drain(4..) {
            closed_by_server(s).await;
        }
        let client = smol::spawn(client_from("127.0.0.2", addr, b"other source"));
        assert_eq!(accept_name(&l).await, b"other source");
        assert!(client.await.security().is_some());
        let s = l.stats();
        assert_eq!((s.established, s.accepted, s.handshake_failures), (1, 1, 0));
        // The permit goes once the connection is handed over: soon after `accept`.
        until(&l, "kept the flood's four places", |s| {
            s.admission.in_progress == 4
        })
        .await;
        drop(flood);
        until(&l, "released the held slots", |s| {
            s.admission.in_progress == 0 && s.handshake_failures == 4
        })
        .await;
    });
}

#[test]
fn queue_mode_admits_in_order_when_slots_free() {
    smol::block_on(async {
        let l = listener(AdmissionConfig {
            max_in_progress_per_source: 1,
            excess: Excess::Queue,
            queue_timeout: Duration::from_secs(60),
            ..AdmissionConfig::default()
        })
        .await;
        let addr = l.local_addr();
        let blocker = raw_from("127.0.0.1", addr);
        until(&l, "admitted the blocker", |s| s.admission.in_progress == 1).await;
        let b = smol::spawn(client_from("127.0.0.1", addr, b"B"));
        until(&l, "queued B", |s| s.admission.queued == 1).await;
        let c = smol::spawn(client_from("127.0.0.1", addr, b"C"));
        until(&l, "queued C", |s| s.admission.queued == 2).await;
        let d = smol::spawn(client_from("127.0.0.2", addr, b"D"));
        assert_eq!(accept_name(&l).await, b"D");
        drop(blocker);
        assert_eq!(accept_name(&l).await, b"B");
        assert_eq!(accept_name(&l).await, b"C");
        for t in [b, c, d] {
            drop(t.await);
        }
        let s = l.stats();
        assert_eq!(s.admission.admitted_from_queue, 2, "{s:?}");
        assert_eq!((s.established, s.handshake_failures), (3, 1), "{s:?}");
    });
}

#[test]
fn queue_timeout_closes_queued_sockets() {
    smol::block_on(async {
        let l = listener(AdmissionConfig {
            max_in_progress_per_source: 1,
            excess: Excess::Queue,
            max_queued_per_source: 2,
            // Long enough that the three sockets below all arrive before it.
            queue_timeout: Duration::from_secs(1),
            ..AdmissionConfig::default()
        })
        .await;
        let addr = l.local_addr();
        let _blocker = raw_from("127.0.0.1", addr);
        until(&l, "admitted the blocker", |s| s.admission.in_progress == 1).await;
        let q1 = raw_from("127.0.0.1", addr);
        let q2 = raw_from("127.0.0.1", addr);
        let over = raw_from("127.0.0.1", addr);
        closed_by_server(over).await;
        closed_by_server(q1).await;
        closed_by_server(q2).await;
        let s = l.stats();
        assert_eq!(s.admission.refused.source_queue_full, 1, "{s:?}");
        assert_eq!(s.admission.refused.queue_timeout, 2, "{s:?}");
        assert_eq!(
            (s.admission.queued, s.admission.in_progress),
            (0, 1),
            "{s:?}"
        );
    });
}

#[test]
fn plaintext_listener() {
    smol::block_on(async {
        let l = Listener::bind_plain("127.0.0.1:0", Config::default(), ListenerOptions::default())
            .await
            .unwrap();
        let client = Connection::connect_tcp(l.local_addr(), Config::default())
            .await
            .unwrap();
        let mut flow = client.open_flow().await.unwrap();
        flow.write_all(b"plain").await.unwrap();
        flow.close().await.unwrap();
        assert_eq!(accept_name(&l).await, b"plain");
        assert_eq!(l.stats().established, 1);
    });
}
