//! Both session machines (`proto_core::session::{ServerConnection,
//! ClientConnection}`) under arbitrary sequences of frames (raw bytes or
//! well-formed messages with small, colliding ids), timer jumps and
//! commands, with the two ends optionally wired to each other.
//!
//! Checks: no panic; every drain terminates and each input or command
//! yields a bounded number of frames and events; the server's in-flight
//! count equals a model (requests handed out as events, minus those
//! replied to, none after close) and never exceeds `max_pending_requests`;
//! no request or signal event after `begin_shutdown`; `Closed` is each
//! machine's last event, at most once; every client request ends in
//! exactly one reply event (after a close, all of them), and the client's
//! pending count never exceeds its limit.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use proto_core::session::{
    AcceptConf, ClientConfig, ClientConnection, ClientEvent, CloseReason, Encoding, Message,
    Payload, RequestId, ServerConfig, ServerConnection, ServerEvent, SessionInfo, SessionKey,
    SpecialReply,
};
use proto_core::time::{Duration, Instant};
use std::collections::BTreeSet;

#[derive(Arbitrary, Debug)]
enum Enc {
    Binary,
    Utf8,
    Utf16,
}

impl Enc {
    fn payload(&self, data: Vec<u8>) -> Payload {
        let encoding = match self {
            Enc::Binary => Encoding::Binary,
            Enc::Utf8 => Encoding::Utf8,
            Enc::Utf16 => Encoding::Utf16,
        };
        Payload {
            encoding,
            data: data.into(),
        }
    }
}

/// A well-formed message (if its fields allow), ids from a small range.
#[derive(Arbitrary, Debug)]
enum Msg {
    Request {
        id: u8,
        name: Vec<u8>,
        data: Vec<u8>,
        enc: Enc,
    },
    Signal {
        name: Vec<u8>,
        data: Vec<u8>,
        enc: Enc,
    },
    Heartbeat,
    Restore {
        id: u8,
        key: Option<u8>,
        raw: Vec<u8>,
    },
    CloseSession {
        id: u8,
    },
    Accept {
        major: u8,
        read_timeout_ms: u16,
    },
    Reply {
        id: u8,
        data: Vec<u8>,
        enc: Enc,
    },
    Error {
        id: u8,
        code: Vec<u8>,
        message: String,
    },
    Special {
        id: u8,
        kind: u8,
    },
    SessionCreated {
        seed: Option<u8>,
        raw: Vec<u8>,
    },
    SessionClosed,
}

impl Msg {
    fn frame(self) -> Option<Bytes> {
        let id = |n: u8| RequestId::from_u64(u64::from(n % 8));
        let m = match self {
            Msg::Request {
                id: n,
                name,
                data,
                enc,
            } => Message::Request {
                id: id(n),
                name: name.into(),
                payload: enc.payload(data),
            },
            Msg::Signal { name, data, enc } => Message::Signal {
                name: name.into(),
                payload: enc.payload(data),
            },
            Msg::Heartbeat => Message::Heartbeat,
            Msg::Restore { id: n, key, raw } => Message::RestoreSession {
                id: id(n),
                key: match key {
                    Some(k) => Bytes::copy_from_slice(SessionKey::from_random([k; 48]).as_bytes()),
                    None => raw.into(),
                },
            },
            Msg::CloseSession { id: n } => Message::CloseSession { id: id(n) },
            Msg::Accept {
                major,
                read_timeout_ms,
            } => Message::AcceptConf(AcceptConf {
                major: if major < 200 { 2 } else { major },
                minor: 0,
                read_timeout_ms: u32::from(read_timeout_ms),
                message_buffer_size: 1 << 20,
                subprotocol: Bytes::new(),
            }),
            Msg::Reply { id: n, data, enc } => Message::Reply {
                id: id(n),
                payload: enc.payload(data),
            },
            Msg::Error {
                id: n,
                code,
                message,
            } => Message::ErrorReply {
                id: id(n),
                code: code.into(),
                message: Bytes::from(message),
            },
            Msg::Special { id: n, kind } => Message::Special {
                id: id(n),
                reply: SpecialReply::from_type_byte(1 + kind % 5)?,
            },
            Msg::SessionCreated { seed, raw } => Message::SessionCreated {
                json: match seed {
                    Some(s) => SessionInfo {
                        key: SessionKey::from_random([s; 48]),
                        creation_ms: u64::from(s) * 1_000_000_007,
                        last_lookup_ms: u64::from(s),
                        info: (s % 2 == 0).then(|| Bytes::from_static(b"{\"u\":[1,{}]}")),
                    }
                    .to_json()
                    .into(),
                    None => raw.into(),
                },
            },
            Msg::SessionClosed => Message::SessionClosed,
        };
        m.to_bytes().ok()
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    ServerRaw(Vec<u8>),
    ServerMsg(Msg),
    ClientRaw(Vec<u8>),
    ClientMsg(Msg),
    /// Server output into the client, client output into the server.
    Pipe,
    Advance(u16),
    JumpToDeadline,
    Reply {
        pick: u8,
        how: u8,
        data: Vec<u8>,
    },
    ServerSignal {
        name: Vec<u8>,
        data: Vec<u8>,
    },
    SessionCreated(u8),
    SessionClosed,
    BeginShutdown,
    ServerClose,
    ServerTransportClosed,
    Request {
        name: Vec<u8>,
        data: Vec<u8>,
        enc: Enc,
    },
    ClientSignal {
        name: Vec<u8>,
        data: Vec<u8>,
    },
    Restore(u8),
    CloseSession,
    ClientClose,
    ClientTransportClosed,
}

#[derive(Arbitrary, Debug)]
struct Input {
    server_pending: u8,
    read_timeout_ms: u16,
    sessions: bool,
    client_pending: u8,
    request_timeout_ms: u16,
    ops: Vec<Op>,
}

/// The model checked after every op.
struct Check {
    server_in_flight: BTreeSet<RequestId>,
    server_closed: bool,
    shutting_down: bool,
    client_waiting: BTreeSet<RequestId>,
    client_closed: bool,
    max_server: usize,
    max_client: usize,
    /// Frames given to each machine by the current op.
    frames_in: usize,
}

impl Check {
    fn drain(
        &mut self,
        s: &mut ServerConnection,
        c: &mut ClientConnection,
    ) -> (Vec<Bytes>, Vec<Bytes>) {
        let sout: Vec<Bytes> = std::iter::from_fn(|| s.poll_message())
            .take(10_000)
            .collect();
        assert!(sout.len() < 10_000, "server output unbounded");
        let cout: Vec<Bytes> = std::iter::from_fn(|| c.poll_message())
            .take(10_000)
            .collect();
        assert!(cout.len() < 10_000, "client output unbounded");
        let mut n = 0;
        while let Some(ev) = s.poll_event() {
            n += 1;
            assert!(n <= self.frames_in + 1, "too many server events for one op");
            assert!(!self.server_closed, "server event after Closed: {ev:?}");
            match ev {
                ServerEvent::Request { id, .. }
                | ServerEvent::RestoreSession { id, .. }
                | ServerEvent::CloseSession { id } => {
                    assert!(!self.shutting_down, "request event after shutdown");
                    assert!(self.server_in_flight.insert(id), "duplicate in-flight id");
                }
                ServerEvent::Signal { .. } => assert!(!self.shutting_down, "signal after shutdown"),
                ServerEvent::Closed(_) => {
                    self.server_closed = true;
                    self.server_in_flight.clear();
                }
                _ => {}
            }
        }
        assert_eq!(s.in_flight(), self.server_in_flight.len());
        assert!(s.in_flight() <= self.max_server);
        let mut n = 0;
        while let Some(ev) = c.poll_event() {
            n += 1;
            assert!(
                n <= self.frames_in + self.max_client + 1,
                "too many client events for one op"
            );
            assert!(!self.client_closed, "client event after Closed: {ev:?}");
            match ev {
                ClientEvent::Reply { id, .. } => {
                    assert!(self.client_waiting.remove(&id), "reply to nothing waiting")
                }
                ClientEvent::Closed(_) => {
                    self.client_closed = true;
                    assert!(self.client_waiting.is_empty(), "a request never ended");
                }
                _ => {}
            }
        }
        assert_eq!(c.pending(), self.client_waiting.len());
        assert!(c.pending() <= self.max_client);
        (sout, cout)
    }
}

fuzz_target!(|input: Input| {
    let mut now = Instant::ZERO;
    let scfg = ServerConfig {
        max_pending_requests: usize::from(input.server_pending % 8),
        read_timeout: Duration::from_millis(u64::from(input.read_timeout_ms)),
        sessions_enabled: input.sessions,
        max_message_size: 4096,
        ..ServerConfig::default()
    };
    let ccfg = ClientConfig {
        max_pending_requests: usize::from(input.client_pending % 8),
        request_timeout: Duration::from_millis(u64::from(input.request_timeout_ms)),
        max_message_size: 4096,
        ..ClientConfig::default()
    };
    let mut check = Check {
        server_in_flight: BTreeSet::new(),
        server_closed: false,
        shutting_down: false,
        client_waiting: BTreeSet::new(),
        client_closed: false,
        max_server: scfg.max_pending_requests,
        max_client: ccfg.max_pending_requests,
        frames_in: 0,
    };
    let mut s = ServerConnection::new(now, scfg);
    let mut c = ClientConnection::new(now, ccfg);
    let (mut to_client, mut to_server) = check.drain(&mut s, &mut c);
    for op in input.ops {
        check.frames_in = match &op {
            Op::Pipe => to_client.len().max(to_server.len()),
            _ => 1,
        };
        match op {
            Op::ServerRaw(b) => {
                let _ = s.handle_message(now, b.into());
            }
            Op::ServerMsg(m) => {
                if let Some(f) = m.frame() {
                    let _ = s.handle_message(now, f);
                }
            }
            Op::ClientRaw(b) => {
                let _ = c.handle_message(now, b.into());
            }
            Op::ClientMsg(m) => {
                if let Some(f) = m.frame() {
                    let _ = c.handle_message(now, f);
                }
            }
            Op::Pipe => {
                for f in std::mem::take(&mut to_server) {
                    let _ = s.handle_message(now, f);
                }
                for f in std::mem::take(&mut to_client) {
                    let _ = c.handle_message(now, f);
                }
            }
            Op::Advance(ms) => {
                now = now + Duration::from_millis(u64::from(ms));
                s.handle_timeout(now);
                c.handle_timeout(now);
            }
            Op::JumpToDeadline => {
                if let Some(t) = [s.poll_timeout(), c.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
                {
                    now = now.max(t);
                }
                s.handle_timeout(now);
                c.handle_timeout(now);
            }
            Op::Reply { pick, how, data } => {
                let ids: Vec<_> = check.server_in_flight.iter().copied().collect();
                let id = ids
                    .get(usize::from(pick) % ids.len().max(1))
                    .copied()
                    .unwrap_or(RequestId::from_u64(u64::from(pick)));
                let r = match how % 4 {
                    0 => s.reply(id, Payload::binary(data)),
                    1 => s.reply(id, Payload::utf16(data)),
                    2 => s.reply_error(id, data, "m"),
                    _ => s.reply_internal_error(id),
                };
                if r.is_ok() {
                    assert!(
                        check.server_in_flight.remove(&id),
                        "replied to nothing in flight"
                    );
                }
            }
            Op::ServerSignal { name, data } => {
                let _ = s.signal(name, Payload::binary(data));
            }
            Op::SessionCreated(k) => {
                let _ = s.session_created(&SessionInfo {
                    key: SessionKey::from_random([k; 48]),
                    creation_ms: u64::from(k),
                    last_lookup_ms: u64::from(k),
                    info: None,
                });
            }
            Op::SessionClosed => {
                let _ = s.session_closed();
            }
            Op::BeginShutdown => {
                s.begin_shutdown();
                check.shutting_down = true;
            }
            Op::ServerClose => s.close(now, CloseReason::Local),
            Op::ServerTransportClosed => s.handle_transport_closed(now),
            Op::Request { name, data, enc } => {
                if let Ok(id) = c.request(now, name, enc.payload(data)) {
                    assert!(check.client_waiting.insert(id), "request id reused");
                }
            }
            Op::ClientSignal { name, data } => {
                let _ = c.signal(now, name, Payload::utf8(data));
            }
            Op::Restore(k) => {
                if let Ok(id) = c.restore_session(now, &SessionKey::from_random([k; 48])) {
                    assert!(check.client_waiting.insert(id));
                }
            }
            Op::CloseSession => {
                if let Ok(id) = c.close_session(now) {
                    assert!(check.client_waiting.insert(id));
                }
            }
            Op::ClientClose => c.close(now, CloseReason::Local),
            Op::ClientTransportClosed => c.handle_transport_closed(now),
        }
        let (sout, cout) = check.drain(&mut s, &mut c);
        // The queues between the ends stay bounded: a pipe that is never
        // drained keeps only the latest frames.
        to_client.extend(sout);
        to_server.extend(cout);
        for q in [&mut to_client, &mut to_server] {
            if q.len() > 256 {
                q.drain(..q.len() - 256);
            }
        }
    }
    // Closing both ends ends every waiting request.
    c.handle_transport_closed(now);
    s.handle_transport_closed(now);
    check.drain(&mut s, &mut c);
    assert!(check.client_waiting.is_empty());
    assert_eq!(s.in_flight(), 0);
});
