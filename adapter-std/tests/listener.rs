//! The listener over real loopback TCP, with threads: admission refuses
//! or queues a flood from one source while other sources get through.
//! Outcomes and counts only: no timing assertions.

use adapter_core::secure::test_credentials;
use adapter_std::{
    AdmissionConfig, Config, Connection, Excess, Listener, ListenerOptions, ListenerStats, Side,
};
use socket2::{Domain, Socket, Type};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// Waits until `f` holds for the listener's stats (panics after a minute:
/// a liveness guard, not a timing assertion).
fn until(l: &Listener, what: &str, f: impl Fn(&ListenerStats) -> bool) {
    for _ in 0..12_000 {
        if f(&l.stats()) {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("never {what}: {:?}", l.stats());
}

/// A raw TCP connection from `from` (any 127/8 address on Linux loopback).
fn raw_from(from: &str, to: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    s.bind(&local.into()).unwrap();
    s.connect(&to.into()).unwrap();
    TcpStream::from(s)
}

fn client_from(from: &str, to: SocketAddr, name: &'static [u8]) -> Connection {
    let stream = raw_from(from, to);
    let conn = Connection::connect(stream, Config::default(), &test_credentials(Side::Dialer))
        .expect("handshake");
    let mut flow = conn.open_flow().unwrap();
    flow.write_all(name).unwrap();
    flow.finish().unwrap();
    conn
}

fn spawn_client(
    from: &'static str,
    to: SocketAddr,
    name: &'static [u8],
) -> thread::JoinHandle<Connection> {
    thread::spawn(move || client_from(from, to, name))
}

fn accept_name(l: &Listener) -> Vec<u8> {
    let conn = l.accept().expect("accepted");
    let mut flow = conn.accept_flow().unwrap();
    let mut got = Vec::new();
    flow.read_to_end(&mut got).unwrap();
    got
}

fn closed_by_server(mut s: TcpStream) {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn listener(admission: AdmissionConfig) -> Listener {
    let options = ListenerOptions {
        admission,
        ..ListenerOptions::default()
    };
    let creds = test_credentials(Side::Acceptor);
    Listener::bind("127.0.0.1:0", Config::default(), &creds, options).unwrap()
}

#[test]
fn flood_from_one_source_is_refused_while_another_connects() {
    let l = listener(AdmissionConfig {
        max_in_progress_per_source: 4,
        ..AdmissionConfig::default()
    });
    let addr = l.local_addr();
    let mut flood: Vec<_> = (0..20).map(|_| raw_from("127.0.0.1", addr)).collect();
    until(&l, "refused the flood", |s| {
        s.admission.refused.source_busy == 16 && s.admission.in_progress == 4
    });
    for s in flood.drain(4..) {
        closed_by_server(s);
    }
    let client = spawn_client("127.0.0.2", addr, b"other source");
    assert_eq!(accept_name(&l), b"other source");
    assert!(client.join().unwrap().security().is_some());
    let s = l.stats();
    assert_eq!((s.established, s.accepted, s.handshake_failures), (1, 1, 0));
    // The permit goes once the connection is handed over: soon after `accept`.
    until(&l, "kept the flood's four places", |s| {
        s.admission.in_progress == 4
    });
    drop(flood);
    until(&l, "released the held slots", |s| {
        s.admission.in_progress == 0 && s.handshake_failures == 4
    });
}

#[test]
fn queue_mode_admits_in_order_when_slots_free() {
    let l = listener(AdmissionConfig {
        max_in_progress_per_source: 1,
        excess: Excess::Queue,
        queue_timeout: Duration::from_secs(60),
        ..AdmissionConfig::default()
    });
    let addr = l.local_addr();
    let blocker = raw_from("127.0.0.1", addr);
    until(&l, "admitted the blocker", |s| s.admission.in_progress == 1);
    let b = spawn_client("127.0.0.1", addr, b"B");
    until(&l, "queued B", |s| s.admission.queued == 1);
    let c = spawn_client("127.0.0.1", addr, b"C");
    until(&l, "queued C", |s| s.admission.queued == 2);
    let d = spawn_client("127.0.0.2", addr, b"D");
    assert_eq!(accept_name(&l), b"D");
    drop(blocker);
    assert_eq!(accept_name(&l), b"B");
    assert_eq!(accept_name(&l), b"C");
    for t in [b, c, d] {
        drop(t.join().unwrap());
    }
    let s = l.stats();
    assert_eq!(s.admission.admitted_from_queue, 2, "{s:?}");
    assert_eq!((s.established, s.handshake_failures), (3, 1), "{s:?}");
}

#[test]
fn queue_timeout_closes_queued_sockets() {
    let l = listener(AdmissionConfig {
        max_in_progress_per_source: 1,
        excess: Excess::Queue,
        max_queued_per_source: 2,
        // Long enough that the three sockets below all arrive before it.
        queue_timeout: Duration::from_secs(1),
        ..AdmissionConfig::default()
    });
    let addr = l.local_addr();
    let _blocker = raw_from("127.0.0.1", addr);
    until(&l, "admitted the blocker", |s| s.admission.in_progress == 1);
    let q1 = raw_from("127.0.0.1", addr);
    let q2 = raw_from("127.0.0.1", addr);
    let over = raw_from("127.0.0.1", addr);
    closed_by_server(over);
    closed_by_server(q1);
    closed_by_server(q2);
    let s = l.stats();
    assert_eq!(s.admission.refused.source_queue_full, 1, "{s:?}");
    assert_eq!(s.admission.refused.queue_timeout, 2, "{s:?}");
    assert_eq!(
        (s.admission.queued, s.admission.in_progress),
        (0, 1),
        "{s:?}"
    );
}

#[test]
fn plaintext_listener_and_drop() {
    let l =
        Listener::bind_plain("127.0.0.1:0", Config::default(), ListenerOptions::default()).unwrap();
    let client = Connection::connect_tcp(l.local_addr(), Config::default()).unwrap();
    let mut flow = client.open_flow().unwrap();
    flow.write_all(b"plain").unwrap();
    flow.finish().unwrap();
    assert_eq!(accept_name(&l), b"plain");
    assert_eq!(l.stats().established, 1);
    let addr = l.local_addr();
    drop(l);
    // The accept thread has gone with the listener: nothing accepts now.
    let late = TcpStream::connect(addr);
    if let Ok(s) = late {
        closed_by_server(s);
    }
}
