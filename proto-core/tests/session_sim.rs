//! Sessions across the simulated network: `Framed<ClientConnection>` and
//! `Framed<ServerConnection>` on a virtual TCP stream with seeded latency
//! jitter and re-chunking, the server's handlers played by the test (the
//! demo's: echo, login, whoami, fail, slow, logout, notify). Requests,
//! replies, error replies, signals both ways, session creation, restore on
//! a second connection through the `Registry`; heartbeats keeping an idle
//! connection alive; a held link ending in the server's read timeout; a
//! reset failing every pending request at once.

use bytes::Bytes;
use proto_core::session::{
    ClientConfig, ClientConnection, ClientEvent, CloseReason, Framed, Payload, Registry,
    RegistryConfig, RegistryError, RequestError, RequestId, ServerConfig, ServerConnection,
    ServerEvent, SessionInfo, SessionKey, SpecialReply,
};
use proto_core::sim::{Accept, ConnId, FaultKind, LinkConfig, Net, NetConfig, NetEvent};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use std::collections::BTreeMap;

const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// One client connection and its server end.
struct Pair {
    client: Framed<ClientConnection>,
    server: Framed<ServerConnection>,
    cconn: Option<ConnId>,
    sconn: Option<ConnId>,
    /// The server handler's session key, once logged in or restored.
    session: Option<SessionKey>,
    user: Option<String>,
    /// Slow replies due: when, id.
    slow: Vec<(Instant, RequestId)>,
    events: Vec<(Instant, ClientEvent)>,
    server_closed: Option<CloseReason>,
}

struct World {
    net: Net,
    client_host: proto_core::sim::HostId,
    listener: proto_core::sim::ListenerId,
    pairs: Vec<Pair>,
    registry: Registry,
    /// The session store: key -> session.
    store: BTreeMap<SessionKey, (SessionInfo, String)>,
    next_key: u8,
    buf: Vec<u8>,
}

impl World {
    fn new(seed: u64) -> World {
        let cfg = NetConfig {
            link: LinkConfig {
                latency: (Duration::from_micros(200), Duration::from_millis(20)),
                max_chunk: 1 + (seed as usize * 37) % 300,
                ..LinkConfig::default()
            },
            ..NetConfig::default()
        };
        let mut net = Net::new(cfg, seed, false);
        let client_host = net.add_host("client").unwrap();
        let s = net.add_host("server").unwrap();
        let listener = net.listen(s, ":0").unwrap();
        World {
            net,
            client_host,
            listener,
            pairs: Vec::new(),
            registry: Registry::new(RegistryConfig {
                max_connections_per_key: 2,
                ..RegistryConfig::default()
            }),
            store: BTreeMap::new(),
            next_key: 1,
            buf: Vec::new(),
        }
    }

    fn connect(&mut self) -> usize {
        let now = self.net.now();
        self.net.dial(self.client_host, "server:1").unwrap();
        self.pairs.push(Pair {
            client: Framed::new(ClientConnection::new(
                now,
                ClientConfig {
                    request_timeout: Duration::from_secs(30),
                    ..ClientConfig::default()
                },
            )),
            server: Framed::new(ServerConnection::new(
                now,
                ServerConfig {
                    read_timeout: READ_TIMEOUT,
                    ..ServerConfig::default()
                },
            )),
            cconn: None,
            sconn: None,
            session: None,
            user: None,
            slow: Vec::new(),
            events: Vec::new(),
            server_closed: None,
        });
        self.pairs.len() - 1
    }

    /// The test's server handlers for one pair's events.
    fn serve(&mut self, i: usize, now: Instant) {
        let conn_id = i as u64;
        while let Some(ev) = self.pairs[i].server.inner_mut().poll_event() {
            let p = &mut self.pairs[i];
            let s = p.server.inner_mut();
            match ev {
                ServerEvent::Request { id, name, payload } => match &name[..] {
                    b"echo" => s.reply(id, payload).unwrap(),
                    b"fail" => s.reply_error(id, "DEMO_ERROR", "asked to fail").unwrap(),
                    b"slow" => {
                        let ms: u64 = std::str::from_utf8(&payload.data).unwrap().parse().unwrap();
                        p.slow.push((now + Duration::from_millis(ms), id));
                    }
                    b"whoami" => match &p.user {
                        Some(u) => s.reply(id, Payload::utf8(Bytes::from(u.clone()))).unwrap(),
                        None => s.reply_error(id, "NO_SESSION", "").unwrap(),
                    },
                    b"login" => {
                        let key = SessionKey::from_random([self.next_key; 48]);
                        self.next_key += 1;
                        let user = String::from_utf8(payload.data.to_vec()).unwrap();
                        let info = SessionInfo {
                            key,
                            creation_ms: 1_795_885_200_000 + now.as_nanos() / 1_000_000,
                            last_lookup_ms: 1_795_885_200_000 + now.as_nanos() / 1_000_000,
                            info: Some(Bytes::from(format!("{{\"user\":\"{user}\"}}"))),
                        };
                        self.registry.attach(key, conn_id).unwrap();
                        s.session_created(&info).unwrap();
                        s.reply(id, Payload::utf8(Bytes::from_static(b"ok")))
                            .unwrap();
                        self.store.insert(key, (info, user.clone()));
                        p.session = Some(key);
                        p.user = Some(user);
                    }
                    b"logout" => {
                        if let Some(k) = p.session.take() {
                            self.registry.detach(conn_id);
                            self.store.remove(&k);
                            p.user = None;
                            s.session_closed().unwrap();
                        }
                        s.reply(id, Payload::utf8(Bytes::from_static(b"ok")))
                            .unwrap();
                    }
                    other => panic!("unknown request {other:?}"),
                },
                ServerEvent::Signal { name, payload } => {
                    assert_eq!(&name[..], b"notify");
                    s.signal("notified", payload).unwrap();
                }
                ServerEvent::RestoreSession { id, key } => {
                    let Some((info, user)) = self.store.get(&key).cloned() else {
                        s.reply_special(id, SpecialReply::SessionNotFound).unwrap();
                        continue;
                    };
                    match self.registry.attach(key, conn_id) {
                        Ok(()) => {
                            s.reply_session(id, &info).unwrap();
                            p.session = Some(key);
                            p.user = Some(user);
                        }
                        Err(RegistryError::Full { .. }) => s
                            .reply_special(id, SpecialReply::MaxSessionConnectionsReached)
                            .unwrap(),
                        Err(e) => panic!("{e}"),
                    }
                }
                ServerEvent::CloseSession { id } => {
                    self.registry.detach(conn_id);
                    p.session = None;
                    s.reply(id, Payload::default()).unwrap();
                }
                ServerEvent::Closed(why) => {
                    self.registry.detach(conn_id);
                    p.server_closed = Some(why);
                }
                _ => {}
            }
        }
        let p = &mut self.pairs[i];
        let due: Vec<_> = p
            .slow
            .iter()
            .filter(|(t, _)| *t <= now)
            .map(|&(_, id)| id)
            .collect();
        p.slow.retain(|(t, _)| *t > now);
        for id in due {
            // The connection may have closed meanwhile: then the reply has
            // nowhere to go.
            let _ = p
                .server
                .inner_mut()
                .reply(id, Payload::utf8(Bytes::from_static(b"done")));
        }
    }

    /// Moves bytes, fires timers and runs handlers until `done` or `until`.
    fn run(&mut self, until: Instant, done: impl Fn(&World) -> bool) {
        let mut steps = 0u64;
        loop {
            steps += 1;
            assert!(steps < 5_000_000, "no progress");
            let now = self.net.now();
            for i in 0..self.pairs.len() {
                self.serve(i, now);
                let p = &mut self.pairs[i];
                while let Some(ev) = p.client.inner_mut().poll_event() {
                    p.events.push((now, ev));
                }
                for (conn, m) in [
                    (p.cconn, &mut p.client as &mut dyn Machine),
                    (p.sconn, &mut p.server as &mut dyn Machine),
                ] {
                    if m.poll_timeout().is_some_and(|d| d <= now) {
                        m.handle_timeout(now);
                    }
                    let Some(conn) = conn else { continue };
                    self.buf.clear();
                    while m.poll_transmit(&mut self.buf).is_some() {}
                    if !self.buf.is_empty() {
                        // The peer may be gone (reset): its bytes are lost.
                        let _ = self.net.send(conn, &self.buf);
                    }
                }
                self.serve(i, now);
                let p = &mut self.pairs[i];
                while let Some(ev) = p.client.inner_mut().poll_event() {
                    p.events.push((now, ev));
                }
            }
            if done(self) || now >= until {
                return;
            }
            if !self.net.step() {
                let next = self
                    .pairs
                    .iter()
                    .flat_map(|p| {
                        [p.client.poll_timeout(), p.server.poll_timeout()]
                            .into_iter()
                            .chain(p.slow.iter().map(|&(t, _)| Some(t)))
                    })
                    .flatten()
                    .chain([until])
                    .min()
                    .unwrap();
                self.net
                    .advance_to(next.max(now + Duration::from_micros(1)));
            }
            while let Some(ev) = self.net.poll_event() {
                let now = self.net.now();
                match ev {
                    NetEvent::Dialed { result, .. } => {
                        let p = self.pairs.iter_mut().find(|p| p.cconn.is_none()).unwrap();
                        p.cconn = Some(result.unwrap());
                    }
                    NetEvent::Incoming(_) | NetEvent::Accepted { .. } => {
                        if let Ok(Accept::Ready(conn)) = self.net.accept(self.listener) {
                            let p = self.pairs.iter_mut().find(|p| p.sconn.is_none()).unwrap();
                            p.sconn = Some(conn);
                        }
                    }
                    NetEvent::Data { conn, data } => {
                        let m = self.machine(conn);
                        // A rejected input closed the machine: its event says why.
                        let _ = m.handle_input(now, data.into());
                    }
                    NetEvent::Fin(conn) | NetEvent::Reset(conn) | NetEvent::Down { conn, .. } => {
                        self.machine(conn).handle_transport_closed(now);
                    }
                    _ => {}
                }
            }
        }
    }

    fn machine(&mut self, conn: ConnId) -> &mut dyn Machine {
        for p in &mut self.pairs {
            if p.cconn == Some(conn) {
                return &mut p.client;
            }
            if p.sconn == Some(conn) {
                return &mut p.server;
            }
        }
        panic!("unknown connection")
    }

    fn client(&mut self, i: usize) -> &mut ClientConnection {
        self.pairs[i].client.inner_mut()
    }

    fn now(&self) -> Instant {
        self.net.now()
    }

    fn reply(&self, i: usize, id: RequestId) -> Option<Result<Payload, RequestError>> {
        self.pairs[i].events.iter().find_map(|(_, e)| match e {
            ClientEvent::Reply { id: got, result } if *got == id => Some(result.clone()),
            _ => None,
        })
    }

    fn ready(&self, i: usize) -> bool {
        self.pairs[i]
            .events
            .iter()
            .any(|(_, e)| matches!(e, ClientEvent::Ready(_)))
    }
}

fn utf8(s: &'static str) -> Payload {
    Payload::utf8(Bytes::from_static(s.as_bytes()))
}

const SEEDS: u64 = 10;

#[test]
fn requests_signals_and_sessions_across_a_faulty_network() {
    for seed in 0..SEEDS {
        let mut w = World::new(seed);
        let a = w.connect();
        let t0 = w.now();
        w.run(t0 + Duration::from_secs(5), |w| w.ready(a));
        assert!(w.ready(a), "seed {seed}: no accept configuration");

        let now = w.now();
        let who0 = w
            .client(a)
            .request(now, "whoami", Payload::default())
            .unwrap();
        let login = w.client(a).request(now, "login", utf8("ann")).unwrap();
        let who1 = w
            .client(a)
            .request(now, "whoami", Payload::default())
            .unwrap();
        let fail = w
            .client(a)
            .request(now, "fail", Payload::default())
            .unwrap();
        let slow = w.client(a).request(now, "slow", utf8("300")).unwrap();
        let echoes: Vec<_> = (0..20u8)
            .map(|i| {
                let data =
                    Bytes::from(vec![i; 1 + (seed as usize * 131 + i as usize * 977) % 5000]);
                let enc = [
                    Payload::binary(data.clone()),
                    Payload::utf16(Bytes::from(vec![i; 2 * (1 + i as usize)])),
                ][i as usize % 2]
                    .clone();
                (w.client(a).request(now, "echo", enc.clone()).unwrap(), enc)
            })
            .collect();
        w.client(a).signal(now, "notify", utf8("ping")).unwrap();
        w.run(now + Duration::from_secs(10), |w| {
            w.reply(a, slow).is_some()
        });

        assert_eq!(
            w.reply(a, who0),
            Some(Err(RequestError::Error {
                code: Bytes::from_static(b"NO_SESSION"),
                message: Bytes::new()
            })),
            "seed {seed}"
        );
        assert_eq!(w.reply(a, login), Some(Ok(utf8("ok"))));
        assert_eq!(w.reply(a, who1), Some(Ok(utf8("ann"))));
        assert_eq!(
            w.reply(a, fail),
            Some(Err(RequestError::Error {
                code: Bytes::from_static(b"DEMO_ERROR"),
                message: Bytes::from_static(b"asked to fail")
            }))
        );
        assert_eq!(w.reply(a, slow), Some(Ok(utf8("done"))));
        for (id, payload) in &echoes {
            assert_eq!(w.reply(a, *id), Some(Ok(payload.clone())), "seed {seed}");
        }
        let evs: Vec<_> = w.pairs[a].events.iter().map(|(_, e)| e.clone()).collect();
        assert!(evs.contains(&ClientEvent::Signal {
            name: Bytes::from_static(b"notified"),
            payload: utf8("ping")
        }));
        let info = evs
            .iter()
            .find_map(|e| match e {
                ClientEvent::SessionCreated(info) => Some(info.clone()),
                _ => None,
            })
            .expect("session created");
        assert_eq!(info.info.as_deref(), Some(&br#"{"user":"ann"}"#[..]));

        // A second and a third connection restore the session: the
        // registry's maximum of two lets one in.
        let b = w.connect();
        let c = w.connect();
        let t = w.now();
        w.run(t + Duration::from_secs(5), |w| w.ready(b) && w.ready(c));
        let now = w.now();
        let rb = w.client(b).restore_session(now, &info.key).unwrap();
        let rc = w
            .client(c)
            .restore_session(now + Duration::from_millis(50), &info.key)
            .unwrap();
        w.run(now + Duration::from_secs(5), |w| {
            w.reply(b, rb).is_some() && w.reply(c, rc).is_some()
        });
        let restored = [w.reply(b, rb).unwrap(), w.reply(c, rc).unwrap()];
        let ok: Vec<_> = restored.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ok.len(), 1, "seed {seed}: {restored:?}");
        assert_eq!(SessionInfo::from_json(&ok[0].data).unwrap(), info);
        assert!(restored.contains(&Err(RequestError::MaxSessionConnectionsReached)));
        assert_eq!(w.registry.connections(&info.key).len(), 2);

        // Logging out on the first connection frees its slot.
        let now = w.now();
        let out = w
            .client(a)
            .request(now, "logout", Payload::default())
            .unwrap();
        w.run(now + Duration::from_secs(5), |w| w.reply(a, out).is_some());
        assert!(w.pairs[a]
            .events
            .iter()
            .any(|(_, e)| *e == ClientEvent::SessionClosed));
        assert_eq!(w.registry.connections(&info.key).len(), 1);
        assert!(
            w.net.fault_counts()[FaultKind::Rechunk as usize] > 0,
            "seed {seed}: the link re-chunked nothing"
        );
    }
}

#[test]
fn heartbeats_keep_an_idle_connection_and_a_held_link_times_out() {
    for seed in 0..SEEDS {
        let mut w = World::new(seed);
        let a = w.connect();
        let t0 = w.now();
        w.run(t0 + Duration::from_secs(5), |w| w.ready(a));
        // Idle for ten read timeouts: the client's heartbeats keep it open.
        let t = w.now();
        w.run(t + READ_TIMEOUT * 10, |_| false);
        assert!(w.pairs[a].server_closed.is_none(), "seed {seed}");
        assert!(!w.pairs[a].client.is_closed());
        // Hold everything the server receives: it hears nothing and closes
        // at its read timeout.
        let sconn = w.pairs[a].sconn.unwrap();
        w.net.hold(sconn).unwrap();
        let held = w.now();
        w.run(held + READ_TIMEOUT * 2, |w| {
            w.pairs[a].server_closed.is_some()
        });
        assert_eq!(w.pairs[a].server_closed, Some(CloseReason::ReadTimeout));
        assert!(w.now() - held <= READ_TIMEOUT + Duration::from_millis(1));
    }
}

#[test]
fn a_reset_fails_every_pending_request_at_once() {
    for seed in 0..SEEDS {
        let mut w = World::new(seed);
        let a = w.connect();
        let t0 = w.now();
        w.run(t0 + Duration::from_secs(5), |w| w.ready(a));
        let now = w.now();
        let ids: Vec<_> = (0..10)
            .map(|_| w.client(a).request(now, "slow", utf8("20000")).unwrap())
            .collect();
        w.run(now + Duration::from_millis(100), |_| false);
        let cconn = w.pairs[a].cconn.unwrap();
        w.net.inject_reset(cconn).unwrap();
        let reset_at = w.now();
        w.run(reset_at + Duration::from_secs(1), |w| {
            w.pairs[a].client.is_closed()
        });
        for id in &ids {
            assert_eq!(
                w.reply(a, *id),
                Some(Err(RequestError::Disconnected)),
                "seed {seed}"
            );
        }
        // At once: long before the 30 s request timeout, at the instant the
        // client saw the reset.
        let closed_at = w.pairs[a]
            .events
            .iter()
            .find(|(_, e)| matches!(e, ClientEvent::Closed(_)))
            .map(|(t, _)| *t)
            .unwrap();
        assert!(
            closed_at - reset_at < Duration::from_millis(100),
            "seed {seed}"
        );
        let times: Vec<_> = w.pairs[a]
            .events
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    ClientEvent::Reply {
                        result: Err(RequestError::Disconnected),
                        ..
                    }
                )
            })
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(times.len(), ids.len());
        assert!(times.iter().all(|t| *t == closed_at));
        assert_eq!(
            w.pairs[a].events.last().map(|(_, e)| e.clone()),
            Some(ClientEvent::Closed(CloseReason::TransportClosed))
        );
        // The server end closed too and left nothing in the registry.
        w.run(w.now() + Duration::from_secs(1), |w| {
            w.pairs[a].server_closed.is_some()
        });
        assert!(w.pairs[a].server_closed.is_some());
        assert_eq!(w.pairs[a].server.inner().in_flight(), 0);
    }
}
