//! The server and the client end to end: WebSocket on loopback, the
//! length-prefixed stream on in-memory pipes and on a weft flow.

mod common;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use proto_core::session::{Message, RegistryConfig, RequestId, SessionKey, SpecialReply};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use weft_session::{
    Backoff, Client, ClientError, ClientEvent, ClientOptions, RequestError, ServerOptions,
};

/// The next event `f` accepts. The guard only turns a hang into a
/// failure: with heartbeats off, a message left queued would wait forever.
async fn event_matching(client: &Client, f: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
    let wait = async {
        loop {
            let ev = client.next_event().await.expect("the client stopped");
            if f(&ev) {
                return ev;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the event never came")
}

#[tokio::test]
async fn replies_error_replies_and_internal_errors_over_websocket() {
    let (server, app, _) = server_with(ServerOptions::default());
    let url = listen(&server).await;
    let client = Client::connect(ClientOptions::new(url));

    let echoed = client.request("echo", utf8("hello")).await.unwrap();
    assert_eq!(&echoed.data[..], b"hello");
    let binary = weft_session::Payload::binary(Bytes::from_static(&[0, 1, 2, 255]));
    let echoed = client.request("echo", binary.clone()).await.unwrap();
    assert_eq!(echoed, binary);

    match client.request("fail", utf8("")).await {
        Err(ClientError::Request(RequestError::Error { code, message })) => {
            assert_eq!(&code[..], b"E_TEST");
            assert_eq!(&message[..], b"failed on purpose");
        }
        other => panic!("expected an error reply, got {other:?}"),
    }
    // Neither an internal error nor a panic shows its detail.
    for name in ["internal", "panic"] {
        assert_eq!(
            client.request(name, utf8("")).await,
            Err(ClientError::Request(RequestError::InternalError)),
            "{name}"
        );
    }
    // The server is still there.
    assert_eq!(
        &client.request("echo", utf8("again")).await.unwrap().data[..],
        b"again"
    );
    assert_eq!(app.requests.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn signals_go_both_ways() {
    let (server, app, _) = server_with(ServerOptions::default());
    let client = Client::connect(ClientOptions::new(listen(&server).await));
    client.request("echo", utf8("up")).await.unwrap();
    client.signal("ping", utf8("42")).unwrap();
    let ev = event_matching(&client, |e| matches!(e, ClientEvent::Signal(_))).await;
    let ClientEvent::Signal(s) = ev else {
        unreachable!()
    };
    assert_eq!(&s.name[..], b"pong");
    assert_eq!(&s.payload.data[..], b"42");
    assert_eq!(app.signals.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_session_is_created_and_restored_on_another_connection() {
    // No read timeout, so no heartbeats: nothing but the restore itself
    // may get the restore sent.
    let mut options = ServerOptions::default();
    options.connection.read_timeout = proto_core::time::Duration::ZERO;
    let (server, _, store) = server_with(options);
    let url = listen(&server).await;
    let first = Client::connect(ClientOptions::new(url.clone()));
    first.request("login", utf8("ada")).await.unwrap();
    let ev = event_matching(&first, |e| matches!(e, ClientEvent::SessionCreated(_))).await;
    let ClientEvent::SessionCreated(created) = ev else {
        unreachable!()
    };
    assert_eq!(first.session().as_ref(), Some(&created));
    assert_eq!(created.key.as_str().len(), 64);
    assert_eq!(server.active_sessions(), 1);
    assert!(store.len() == 1);

    let second = Client::with_session(ClientOptions::new(url), Some(created.clone()));
    let ev = event_matching(&second, |e| {
        matches!(e, ClientEvent::Restored(_) | ClientEvent::RestoreFailed(_))
    })
    .await;
    let ClientEvent::Restored(restored) = ev else {
        panic!("restore failed: {ev:?}")
    };
    assert_eq!(restored.key, created.key);
    assert_eq!(restored.info, created.info);
    assert_eq!(server.session_connections(&created.key).len(), 2);
    assert_eq!(server.active_sessions(), 1);

    // Closed everywhere: both clients hear it, the store forgets it.
    assert_eq!(server.close_session(&created.key).await.unwrap(), 2);
    event_matching(&first, |e| matches!(e, ClientEvent::SessionClosed)).await;
    event_matching(&second, |e| matches!(e, ClientEvent::SessionClosed)).await;
    assert_eq!(server.active_sessions(), 0);
    assert_eq!(store.len(), 0);
    assert!(first.session().is_none());
}

#[tokio::test]
async fn unknown_and_malformed_keys_are_not_found() {
    let (server, _, _) = server_with(ServerOptions::default());
    let mut peer = pipe(&server);
    assert!(matches!(peer.recv().await, Some(Message::AcceptConf(_))));
    let unknown = SessionKey::from_random([7; 48]);
    for (n, key) in [
        Bytes::copy_from_slice(unknown.as_str().as_bytes()),
        Bytes::from_static(b"../../etc/passwd"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = RequestId((n as u64 + 1).to_be_bytes());
        peer.send(&Message::RestoreSession { id, key }).await;
        match peer.reply_to(id).await {
            Some(Message::Special { reply, .. }) => {
                assert_eq!(reply, SpecialReply::SessionNotFound)
            }
            other => panic!("expected session-not-found, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_thousand_concurrent_restores_of_one_key_give_exactly_the_limit() {
    let options = ServerOptions {
        registry: RegistryConfig {
            max_connections_per_key: 2,
            ..RegistryConfig::default()
        },
        ..ServerOptions::default()
    };
    let (server, _, _) = server_with(options);
    // One connection creates the session, then leaves (its slot is freed).
    let key = {
        let mut peer = pipe(&server);
        peer.send(&request(1, "login", utf8("ada"))).await;
        let key = loop {
            if let Some(Message::SessionCreated { json }) = peer.recv().await {
                break weft_session::SessionInfo::from_json(&json).unwrap().key;
            }
        };
        assert!(matches!(
            peer.reply_to(RequestId(1u64.to_be_bytes())).await,
            Some(Message::Reply { .. })
        ));
        key
    };
    while !server.session_connections(&key).is_empty() {
        tokio::task::yield_now().await;
    }

    let mut tasks = Vec::new();
    let mut peers = Vec::new();
    for _ in 0..1000 {
        peers.push(pipe(&server));
    }
    for mut peer in peers {
        let key = Bytes::copy_from_slice(key.as_str().as_bytes());
        tasks.push(tokio::spawn(async move {
            let id = RequestId([9; 8]);
            peer.send(&Message::RestoreSession { id, key }).await;
            let answer = peer.reply_to(id).await;
            // Keep the connection (and its slot) until every restore ran.
            (answer, peer)
        }));
    }
    let mut ok = 0;
    let mut full = 0;
    let mut held = Vec::new();
    for t in tasks {
        let (answer, peer) = t.await.unwrap();
        match answer {
            Some(Message::Reply { .. }) => ok += 1,
            Some(Message::Special {
                reply: SpecialReply::MaxSessionConnectionsReached,
                ..
            }) => full += 1,
            other => panic!("unexpected answer {other:?}"),
        }
        held.push(peer);
    }
    assert_eq!((ok, full), (2, 998));
    assert_eq!(server.session_connections(&key).len(), 2);
}

#[tokio::test]
async fn shutdown_waits_for_handlers_refuses_new_requests_and_drops_late_signals() {
    let (server, app, _) = server_with(ServerOptions::default());
    let mut peer = pipe(&server);
    assert!(matches!(peer.recv().await, Some(Message::AcceptConf(_))));
    peer.send(&request(1, "hold", utf8(""))).await;
    while server.in_flight() == 0 {
        tokio::task::yield_now().await;
    }

    let stopping = tokio::spawn({
        let server = server.clone();
        async move { server.shutdown().await }
    });
    while !server.is_shutting_down() {
        tokio::task::yield_now().await;
    }
    let signals_before = app.signals.load(Ordering::SeqCst);
    peer.send(&request(2, "echo", utf8("late"))).await;
    for _ in 0..50 {
        peer.send(&Message::Signal {
            name: Bytes::from_static(b"late"),
            payload: utf8("x"),
        })
        .await;
    }
    match peer.reply_to(RequestId(2u64.to_be_bytes())).await {
        Some(Message::Special { reply, .. }) => assert_eq!(reply, SpecialReply::Shutdown),
        other => panic!("expected the shutdown reply, got {other:?}"),
    }
    assert!(
        !stopping.is_finished(),
        "shutdown returned with a handler running"
    );

    app.release.notify_waiters();
    match peer.reply_to(RequestId(1u64.to_be_bytes())).await {
        Some(Message::Reply { payload, .. }) => assert_eq!(&payload.data[..], b"released"),
        other => panic!("the in-flight request lost its reply: {other:?}"),
    }
    stopping.await.unwrap();
    assert_eq!(server.in_flight(), 0);
    assert_eq!(app.signals.load(Ordering::SeqCst), signals_before);
    // Only the request that came before shutdown ran.
    assert_eq!(app.requests.load(Ordering::SeqCst), 1);
    // The connection is closed after shutdown.
    while peer.recv().await.is_some() {}
}

#[tokio::test]
async fn signals_across_the_shutdown_edge_leak_no_handler_slot() {
    for round in 0..20 {
        let (server, app, _) = server_with(ServerOptions::default());
        let mut peer = pipe(&server);
        assert!(matches!(peer.recv().await, Some(Message::AcceptConf(_))));
        let sender = tokio::spawn(async move {
            for _ in 0..200 {
                peer.send(&Message::Signal {
                    name: Bytes::from_static(b"edge"),
                    payload: utf8("x"),
                })
                .await;
                tokio::task::yield_now().await;
            }
            peer
        });
        for _ in 0..round {
            tokio::task::yield_now().await;
        }
        server.shutdown().await;
        assert_eq!(server.in_flight(), 0, "round {round}");
        let ran = app.signals.load(Ordering::SeqCst);
        let _ = sender.await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            app.signals.load(Ordering::SeqCst),
            ran,
            "a signal ran after shutdown returned"
        );
        assert_eq!(server.in_flight(), 0);
    }
}

#[tokio::test]
async fn upgrades_during_shutdown_get_503() {
    let (server, app, _) = server_with(ServerOptions::default());
    let url = listen(&server).await;
    let client = Client::connect(ClientOptions::new(url.clone()));
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.request("hold", utf8("")).await }
    });
    while server.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    let stopping = tokio::spawn({
        let server = server.clone();
        async move { server.shutdown().await }
    });
    while !server.is_shutting_down() {
        tokio::task::yield_now().await;
    }
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503)
        }
        other => panic!("expected HTTP 503, got {:?}", other.map(|_| ())),
    }
    app.release.notify_waiters();
    assert_eq!(&held.await.unwrap().unwrap().data[..], b"released");
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_text_frame_closes_the_connection() {
    let (server, _, _) = server_with(ServerOptions::default());
    let url = listen(&server).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert!(matches!(first, WsMessage::Binary(ref b) if b[0] == 23));
    ws.send(WsMessage::Text("hello".into())).await.unwrap();
    // Only a close (or the end) follows.
    while let Some(Ok(m)) = ws.next().await {
        assert!(
            matches!(m, WsMessage::Close(_)),
            "got {m:?} after a text frame"
        );
    }
    while server.connection_count() > 0 {
        tokio::task::yield_now().await;
    }
}

/// Forwards TCP from a local port to `to` until aborted (then both ends
/// see the connection drop).
async fn proxy(to: std::net::SocketAddr) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut links = tokio::task::JoinSet::new();
        loop {
            let (mut a, _) = listener.accept().await.unwrap();
            links.spawn(async move {
                let mut b = tokio::net::TcpStream::connect(to).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
            });
        }
    });
    (format!("ws://{addr}/ws"), task)
}

#[tokio::test]
async fn a_cut_fails_pending_requests_at_once_then_the_client_reconnects_and_restores() {
    let (server, app, _) = server_with(ServerOptions::default());
    let url = listen(&server).await;
    let target: std::net::SocketAddr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    let (via, cut) = proxy(target).await;
    let mut options = ClientOptions::new(via.clone());
    options.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        ..Backoff::default()
    };
    let client = Client::connect(options);
    client.request("login", utf8("ada")).await.unwrap();
    let key = client.session().unwrap().key;
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.request("hold", utf8("")).await }
    });
    while server.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    cut.abort();
    assert_eq!(
        held.await.unwrap(),
        Err(ClientError::Request(RequestError::Disconnected))
    );
    event_matching(&client, |e| matches!(e, ClientEvent::Disconnected(_))).await;
    app.release.notify_waiters();

    // The proxy comes back on the same port; the client redials and restores.
    let port: u16 = via
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    let listener = loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    tokio::spawn(async move {
        loop {
            let (mut a, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut b = tokio::net::TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
            });
        }
    });
    let ev = event_matching(&client, |e| {
        matches!(e, ClientEvent::Restored(_) | ClientEvent::RestoreFailed(_))
    })
    .await;
    let ClientEvent::Restored(info) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(info.key, key);
    assert_eq!(
        &client.request("echo", utf8("back")).await.unwrap().data[..],
        b"back"
    );
}

#[tokio::test]
async fn the_outbound_queue_is_bounded_and_reports_high_water() {
    // Nobody listens here: the client keeps redialing, nothing is sent.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut options = ClientOptions::new(format!("ws://127.0.0.1:{port}/ws"));
    options.max_queued = 4;
    options.high_water = 3;
    let client = Client::connect(options);
    for _ in 0..4 {
        client.signal("s", utf8("x")).unwrap();
    }
    assert_eq!(client.queued(), 4);
    assert_eq!(client.signal("s", utf8("x")), Err(ClientError::QueueFull));
    let ev = event_matching(&client, |e| matches!(e, ClientEvent::HighWater(_))).await;
    assert!(matches!(ev, ClientEvent::HighWater(3)));
    let ev = event_matching(&client, |e| matches!(e, ClientEvent::Reconnecting { .. })).await;
    let ClientEvent::Reconnecting { attempt, delay } = ev else {
        unreachable!()
    };
    assert!(attempt >= 1 && delay <= Backoff::default().max);
}

#[tokio::test]
async fn sessions_run_on_a_weft_flow() {
    let (server, _, _) = server_with(ServerOptions::default());
    let (a, b) = tokio::io::duplex(256 * 1024);
    let client = adapter_tokio::Connection::client(a, adapter_tokio::Config::default()).unwrap();
    let accepting = adapter_tokio::Connection::server(b, adapter_tokio::Config::default()).unwrap();
    let s = server.clone();
    tokio::spawn(async move {
        while let Ok(flow) = accepting.accept_flow().await {
            let s = s.clone();
            tokio::spawn(async move { s.serve_stream(flow, None).await });
        }
    });
    let mut peer = RawPeer {
        io: client.open_flow().await.unwrap(),
    };
    assert!(matches!(peer.recv().await, Some(Message::AcceptConf(_))));
    peer.send(&request(5, "echo", utf8("over a flow"))).await;
    match peer.reply_to(RequestId(5u64.to_be_bytes())).await {
        Some(Message::Reply { payload, .. }) => assert_eq!(&payload.data[..], b"over a flow"),
        other => panic!("{other:?}"),
    }
    peer.send(&request(6, "fail", utf8(""))).await;
    assert!(matches!(
        peer.reply_to(RequestId(6u64.to_be_bytes())).await,
        Some(Message::ErrorReply { .. })
    ));
}

#[test]
fn backoff_grows_is_capped_and_jitters_within_bounds() {
    let b = Backoff::default();
    for attempt in 1..40 {
        for unit in [0.0, 0.25, 0.5, 0.999] {
            let d = b.delay(attempt, unit);
            assert!(d <= b.max, "attempt {attempt}: {d:?}");
            let base =
                (b.initial.as_secs_f64() * 2f64.powi(attempt as i32 - 1)).min(b.max.as_secs_f64());
            assert!(d.as_secs_f64() >= base * (1.0 - b.jitter) - 1e-9);
        }
    }
    assert!(b.delay(1, 0.0) < b.delay(1, 0.999));
}

#[tokio::test]
async fn signal_handlers_per_connection_are_bounded() {
    let options = ServerOptions {
        max_signal_handlers: 2,
        ..ServerOptions::default()
    };
    let (server, app, _) = server_with(options);
    let mut peer = pipe(&server);
    assert!(matches!(peer.recv().await, Some(Message::AcceptConf(_))));
    for _ in 0..10 {
        peer.send(&Message::Signal {
            name: Bytes::from_static(b"hold"),
            payload: utf8("x"),
        })
        .await;
    }
    // A request after them: once it is answered, every signal was seen.
    peer.send(&request(1, "echo", utf8("after"))).await;
    assert!(matches!(
        peer.reply_to(RequestId::from_u64(1)).await,
        Some(Message::Reply { .. })
    ));
    assert_eq!(server.signals_dropped(), 8);
    // The two admitted handlers start and wait (the runtime is one thread:
    // once counted, each is parked on `release`).
    while app.signals.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    app.release.notify_waiters();
    while server.in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    // Slots are free again.
    peer.send(&Message::Signal {
        name: Bytes::from_static(b"ping"),
        payload: utf8("again"),
    })
    .await;
    assert!(matches!(peer.recv().await, Some(Message::Signal { .. })));
    assert_eq!(server.signals_dropped(), 8);
}

#[tokio::test]
async fn session_info_that_is_not_one_json_object_is_refused() {
    let (server, _, store) = server_with(ServerOptions::default());
    let mut peer = pipe(&server);
    assert!(matches!(peer.recv().await, Some(Message::AcceptConf(_))));
    // The test app splices the name into `{"user":"..."}`: a quote breaks it.
    peer.send(&request(1, "login", utf8("a\"b"))).await;
    assert!(matches!(
        peer.reply_to(RequestId::from_u64(1)).await,
        Some(Message::Special {
            reply: SpecialReply::InternalError,
            ..
        })
    ));
    assert_eq!(store.len(), 0);
    assert_eq!(server.active_sessions(), 0);
}
