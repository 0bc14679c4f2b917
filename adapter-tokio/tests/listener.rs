//! The listener over real loopback TCP: admission refuses or queues a
//! flood from one source while other sources get through. Outcomes and
//! counts only: no timing assertions (the machines running this are
//! shared and noisy).

use adapter_core::secure::test_credentials;
use adapter_tokio::{
    AdmissionConfig, Config, Connection, Excess, Listener, ListenerOptions, ListenerStats, Side,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Waits until `f` holds for the listener's stats (panics after a minute:
/// a liveness guard, not a timing assertion).
async fn until(l: &Listener, what: &str, f: impl Fn(&ListenerStats) -> bool) {
    for _ in 0..12_000 {
        if f(&l.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never {what}: {:?}", l.stats());
}

/// A raw TCP connection from `from` (any 127/8 address on Linux
/// loopback) that never speaks: it holds a handshake slot until dropped.
async fn raw_from(from: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{from}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

/// A secure client from `from`, which then sends `name` on a flow.
async fn client_from(from: &str, to: SocketAddr, name: &'static [u8]) -> Connection {
    let stream = raw_from(from, to).await;
    let conn = Connection::connect(stream, Config::default(), &test_credentials(Side::Dialer))
        .await
        .expect("handshake");
    let mut flow = conn.open_flow().await.unwrap();
    flow.write_all(name).await.unwrap();
    flow.shutdown().await.unwrap();
    conn
}

/// The name the next accepted connection sends on its first flow.
async fn accept_name(l: &Listener) -> Vec<u8> {
    let conn = l.accept().await.expect("accepted");
    let mut flow = conn.accept_flow().await.unwrap();
    let mut got = Vec::new();
    flow.read_to_end(&mut got).await.unwrap();
    got
}

/// Reads until the server closes the socket (EOF or a reset).
async fn closed_by_server(mut s: TcpStream) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_from_one_source_is_refused_while_another_connects() {
    let l = listener(AdmissionConfig {
        max_in_progress_per_source: 4,
        ..AdmissionConfig::default()
    })
    .await;
    let addr = l.local_addr();
    let mut flood = Vec::new();
    for _ in 0..20 {
        flood.push(raw_from("127.0.0.1", addr).await);
    }
    until(&l, "refused the flood", |s| {
        s.admission.refused.source_busy == 16 && s.admission.in_progress == 4
    })
    .await;
    // The refused sockets were closed unread.
    let refused: Vec<_> = flood.drain(4..).collect();
    for s in refused {
        closed_by_server(s).await;
    }
    let client = tokio::spawn(client_from("127.0.0.2", addr, b"other source"));
    assert_eq!(accept_name(&l).await, b"other source");
    let conn = client.await.unwrap();
    assert!(conn.security().is_some());
    let s = l.stats();
    assert_eq!((s.established, s.accepted, s.handshake_failures), (1, 1, 0));
    // The permit goes once the connection is handed over: soon after `accept`.
    until(&l, "kept the flood's four places", |s| {
        s.admission.in_progress == 4
    })
    .await;
    // The held slots fail their handshakes once their sockets go.
    drop(flood);
    until(&l, "released the held slots", |s| {
        s.admission.in_progress == 0 && s.handshake_failures == 4
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_its_rate_is_refused() {
    let l = listener(AdmissionConfig {
        rate_per_source: 1,
        burst_per_source: 3,
        ..AdmissionConfig::default()
    })
    .await;
    let addr = l.local_addr();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(raw_from("127.0.0.1", addr).await);
    }
    // 2 refusals, or 1 if the machine was slow enough for a token to come back.
    until(&l, "refused over the rate", |s| {
        let r = s.admission.refused.source_rate;
        r >= 1 && r + s.admission.admitted == 5
    })
    .await;
    let client = tokio::spawn(client_from("127.0.0.3", addr, b"fresh bucket"));
    assert_eq!(accept_name(&l).await, b"fresh bucket");
    drop(client.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mode_admits_in_order_when_slots_free() {
    let l = listener(AdmissionConfig {
        max_in_progress_per_source: 1,
        excess: Excess::Queue,
        queue_timeout: Duration::from_secs(60),
        ..AdmissionConfig::default()
    })
    .await;
    let addr = l.local_addr();
    let blocker = raw_from("127.0.0.1", addr).await;
    until(&l, "admitted the blocker", |s| s.admission.in_progress == 1).await;
    let b = tokio::spawn(client_from("127.0.0.1", addr, b"B"));
    until(&l, "queued B", |s| s.admission.queued == 1).await;
    let c = tokio::spawn(client_from("127.0.0.1", addr, b"C"));
    until(&l, "queued C", |s| s.admission.queued == 2).await;
    // Another source is not held back by the queue.
    let d = tokio::spawn(client_from("127.0.0.2", addr, b"D"));
    assert_eq!(accept_name(&l).await, b"D");
    drop(blocker);
    // B cannot start before the blocker's slot frees, nor C before B is
    // established: one at a time from this source, in order.
    assert_eq!(accept_name(&l).await, b"B");
    assert_eq!(accept_name(&l).await, b"C");
    for t in [b, c, d] {
        drop(t.await.unwrap());
    }
    let s = l.stats();
    assert_eq!(s.admission.admitted_from_queue, 2, "{s:?}");
    assert_eq!((s.established, s.handshake_failures), (3, 1), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_timeout_closes_queued_sockets() {
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
    let _blocker = raw_from("127.0.0.1", addr).await;
    until(&l, "admitted the blocker", |s| s.admission.in_progress == 1).await;
    let q1 = raw_from("127.0.0.1", addr).await;
    let q2 = raw_from("127.0.0.1", addr).await;
    let over = raw_from("127.0.0.1", addr).await;
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_are_counted() {
    let l = listener(AdmissionConfig::default()).await;
    let mut s = raw_from("127.0.0.1", l.local_addr()).await;
    s.write_all(&[0xff; 64]).await.unwrap();
    closed_by_server(s).await;
    until(&l, "counted the failure", |s| s.handshake_failures == 1).await;
    assert_eq!(l.stats().established, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_listener() {
    let l = Listener::bind_plain("127.0.0.1:0", Config::default(), ListenerOptions::default())
        .await
        .unwrap();
    let client = Connection::connect_tcp(l.local_addr(), Config::default())
        .await
        .unwrap();
    let mut flow = client.open_flow().await.unwrap();
    flow.write_all(b"plain").await.unwrap();
    flow.shutdown().await.unwrap();
    assert_eq!(accept_name(&l).await, b"plain");
    let s = l.stats();
    assert_eq!((s.established, s.accepted, s.admission.admitted), (1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_acceptor_holds_admission_places() {
    let options = ListenerOptions {
        accept_backlog: 1,
        admission: AdmissionConfig {
            max_in_progress: 1,
            ..AdmissionConfig::default()
        },
        ..ListenerOptions::default()
    };
    let creds = test_credentials(Side::Acceptor);
    let l = Listener::bind("127.0.0.1:0", Config::default(), &creds, options)
        .await
        .unwrap();
    let addr = l.local_addr();
    let a = client_from("127.0.0.2", addr, b"A").await;
    until(&l, "queued A for accept", |s| {
        s.ready == 1 && s.admission.in_progress == 0
    })
    .await;
    // A waits in the backlog; B completes its handshake and then waits
    // for room, holding the one place, so C is refused.
    let b = tokio::spawn(client_from("127.0.0.3", addr, b"B"));
    until(&l, "established B", |s| s.established == 2).await;
    let c = raw_from("127.0.0.4", addr).await;
    closed_by_server(c).await;
    assert_eq!(l.stats().admission.refused.total_busy, 1);
    assert_eq!(accept_name(&l).await, b"A");
    assert_eq!(accept_name(&l).await, b"B");
    drop((a, b.await.unwrap()));
}
