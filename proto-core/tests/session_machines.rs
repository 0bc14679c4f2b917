//! The session machines' rules, one test each: `ServerConnection` (read
//! timeout, heartbeats, in-flight requests and their limit, duplicate ids,
//! shutdown, restore keys, sessions disabled, malformed input),
//! `ClientConnection` (accept configuration, heartbeats at 3/4 of the
//! read timeout, request timeouts, disconnects fail pending requests at
//! once, limits), the `Registry` (the restore race) and `Framed` (length
//! prefixes over any chunking). Time is virtual.

use bytes::Bytes;
use proto_core::session::{
    AcceptConf, ClientConfig, ClientConnection, ClientError, ClientEvent, CloseReason, DecodeError,
    EncodeError, Framed, Message, Payload, Registry, RegistryConfig, RegistryError, RequestError,
    RequestId, ServerConfig, ServerConnection, ServerEvent, SessionError, SessionInfo, SessionKey,
    SpecialReply,
};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use std::sync::{Arc, Mutex};

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn wire(m: Message) -> Bytes {
    m.to_bytes().unwrap()
}

fn req(n: u64, name: &'static [u8], data: &'static [u8]) -> Bytes {
    wire(Message::Request {
        id: RequestId::from_u64(n),
        name: Bytes::from_static(name),
        payload: Payload::utf8(Bytes::from_static(data)),
    })
}

fn out(s: &mut ServerConnection) -> Vec<Message> {
    std::iter::from_fn(|| s.poll_message())
        .map(|b| Message::decode(b).unwrap())
        .collect()
}

fn events(s: &mut ServerConnection) -> Vec<ServerEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn cout(c: &mut ClientConnection) -> Vec<Message> {
    std::iter::from_fn(|| c.poll_message())
        .map(|b| Message::decode(b).unwrap())
        .collect()
}

fn cevents(c: &mut ClientConnection) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// A server past its accept configuration.
fn server(config: ServerConfig) -> ServerConnection {
    let mut s = ServerConnection::new(at(0), config);
    let first = out(&mut s);
    assert!(matches!(first[..], [Message::AcceptConf(_)]));
    s
}

fn special(n: u64, reply: SpecialReply) -> Message {
    Message::Special {
        id: RequestId::from_u64(n),
        reply,
    }
}

mod server_side {
    use super::*;

    #[test]
    fn the_accept_configuration_goes_first_with_the_config() {
        let mut s = ServerConnection::new(
            at(0),
            ServerConfig {
                read_timeout: Duration::from_millis(1500),
                message_buffer_size: 4096,
                subprotocol: Bytes::from_static(b"chat"),
                ..ServerConfig::default()
            },
        );
        assert_eq!(
            out(&mut s),
            [Message::AcceptConf(AcceptConf {
                major: 2,
                minor: 0,
                read_timeout_ms: 1500,
                message_buffer_size: 4096,
                subprotocol: Bytes::from_static(b"chat"),
            })]
        );
        assert_eq!(s.poll_timeout(), Some(at(1500)));
        assert!(events(&mut s).is_empty());
    }

    #[test]
    fn signals_stop_at_the_backlog_limit_replies_do_not() {
        let mut s = server(ServerConfig {
            max_queued_bytes: 100,
            ..ServerConfig::default()
        });
        let big = || Payload::binary(Bytes::from(vec![7u8; 60]));
        s.signal(Bytes::from_static(b"a"), big()).unwrap();
        assert!(matches!(
            s.signal(Bytes::from_static(b"b"), big()),
            Err(SessionError::Backlog { max: 100, .. })
        ));
        // A reply is queued whatever the backlog: the client asked for it.
        s.handle_message(at(1), req(1, b"echo", b"hi")).unwrap();
        let _ = events(&mut s);
        s.reply(RequestId::from_u64(1), big()).unwrap();
        // Once the client has read, signals flow again.
        assert_eq!(out(&mut s).len(), 2);
        s.signal(Bytes::from_static(b"c"), big()).unwrap();
        assert!(matches!(out(&mut s)[..], [Message::Signal { .. }]));
    }

    #[test]
    fn requests_are_in_flight_until_replied_once() {
        let mut s = server(ServerConfig::default());
        s.handle_message(at(1), req(7, b"echo", b"hi")).unwrap();
        assert_eq!(
            events(&mut s),
            [ServerEvent::Request {
                id: RequestId::from_u64(7),
                name: Bytes::from_static(b"echo"),
                payload: Payload::utf8(Bytes::from_static(b"hi")),
            }]
        );
        assert_eq!(s.in_flight(), 1);
        let id = RequestId::from_u64(7);
        // A bad reply is refused and leaves the request in flight.
        assert_eq!(
            s.reply(id, Payload::utf16(Bytes::from_static(b"odd"))),
            Err(SessionError::Encode(EncodeError::OddUtf16Payload(3)))
        );
        assert_eq!(s.in_flight(), 1);
        s.reply(id, Payload::utf8(Bytes::from_static(b"hi")))
            .unwrap();
        assert_eq!(s.in_flight(), 0);
        assert_eq!(
            out(&mut s),
            [Message::Reply {
                id,
                payload: Payload::utf8(Bytes::from_static(b"hi"))
            }]
        );
        assert_eq!(
            s.reply(id, Payload::utf8(Bytes::new())),
            Err(SessionError::UnknownRequest(id))
        );
        assert_eq!(
            s.reply_internal_error(RequestId::from_u64(99)),
            Err(SessionError::UnknownRequest(RequestId::from_u64(99)))
        );
        // The id may be used again once replied.
        s.handle_message(at(2), req(7, b"fail", b"")).unwrap();
        s.reply_error(id, "DEMO_ERROR", "asked to fail").unwrap();
        s.handle_message(at(3), req(8, b"x", b"")).unwrap();
        assert_eq!(
            s.reply_error(RequestId::from_u64(8), "", "m"),
            Err(SessionError::Encode(EncodeError::CodeEmpty))
        );
        s.reply_internal_error(RequestId::from_u64(8)).unwrap();
        assert_eq!(
            out(&mut s),
            [
                Message::ErrorReply {
                    id,
                    code: Bytes::from_static(b"DEMO_ERROR"),
                    message: Bytes::from_static(b"asked to fail")
                },
                special(8, SpecialReply::InternalError)
            ]
        );
    }

    #[test]
    fn silence_for_the_read_timeout_closes() {
        let mut s = server(ServerConfig {
            read_timeout: Duration::from_secs(10),
            ..ServerConfig::default()
        });
        s.handle_timeout(at(9_999));
        assert!(!s.is_closed(), "an early timeout call is harmless");
        s.handle_timeout(at(10_000));
        assert!(s.is_closed());
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::ReadTimeout)]
        );
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(
            s.handle_message(at(10_001), wire(Message::Heartbeat)),
            Err(SessionError::Closed)
        );
    }

    #[test]
    fn every_message_pushes_the_read_deadline() {
        let mut s = server(ServerConfig {
            read_timeout: Duration::from_secs(10),
            ..ServerConfig::default()
        });
        let mut now = 0;
        for i in 0..50u64 {
            now += 9_000;
            s.handle_timeout(at(now));
            if i % 2 == 0 {
                s.handle_message(at(now), wire(Message::Heartbeat)).unwrap();
            } else {
                s.handle_message(
                    at(now),
                    wire(Message::Signal {
                        name: Bytes::new(),
                        payload: Payload::binary(Bytes::from_static(b"x")),
                    }),
                )
                .unwrap();
            }
            assert_eq!(s.poll_timeout(), Some(at(now + 10_000)));
        }
        assert!(!s.is_closed());
    }

    #[test]
    fn heartbeats_far_too_often_cost_nothing() {
        let mut s = server(ServerConfig::default());
        let hb = wire(Message::Heartbeat);
        for i in 0..100_000u64 {
            s.handle_message(Instant::from_nanos(i), hb.clone())
                .unwrap();
        }
        assert!(out(&mut s).is_empty());
        assert!(events(&mut s).is_empty());
        assert!(!s.is_closed());
    }

    #[test]
    fn zero_read_timeout_means_no_deadline() {
        let mut s = server(ServerConfig {
            read_timeout: Duration::ZERO,
            ..ServerConfig::default()
        });
        assert_eq!(s.poll_timeout(), None);
        s.handle_timeout(at(u64::MAX / 2_000_000));
        assert!(!s.is_closed());
    }

    #[test]
    fn beyond_max_pending_a_request_gets_internal_error_without_an_event() {
        let mut s = server(ServerConfig {
            max_pending_requests: 2,
            ..ServerConfig::default()
        });
        s.handle_message(at(1), req(1, b"a", b"")).unwrap();
        s.handle_message(at(1), req(2, b"a", b"")).unwrap();
        assert_eq!(events(&mut s).len(), 2);
        s.handle_message(at(1), req(3, b"a", b"")).unwrap();
        let restore = wire(Message::RestoreSession {
            id: RequestId::from_u64(4),
            key: Bytes::from("A".repeat(64)),
        });
        s.handle_message(at(1), restore).unwrap();
        assert!(events(&mut s).is_empty());
        assert_eq!(
            out(&mut s),
            [
                special(3, SpecialReply::InternalError),
                special(4, SpecialReply::InternalError)
            ]
        );
        assert_eq!(s.in_flight(), 2);
        s.reply(RequestId::from_u64(1), Payload::default()).unwrap();
        s.handle_message(at(2), req(5, b"a", b"")).unwrap();
        assert!(matches!(events(&mut s)[..], [ServerEvent::Request { .. }]));
    }

    #[test]
    fn a_duplicate_in_flight_id_is_a_protocol_error() {
        let mut s = server(ServerConfig::default());
        s.handle_message(at(1), req(1, b"a", b"")).unwrap();
        let e = s.handle_message(
            at(2),
            wire(Message::CloseSession {
                id: RequestId::from_u64(1),
            }),
        );
        let why = CloseReason::DuplicateRequestId(RequestId::from_u64(1));
        assert_eq!(e, Err(SessionError::Protocol(why.clone())));
        let ev = events(&mut s);
        assert_eq!(ev.last(), Some(&ServerEvent::Closed(why)));
        assert_eq!(s.in_flight(), 0);
        assert_eq!(
            s.reply(RequestId::from_u64(1), Payload::default()),
            Err(SessionError::Closed)
        );
    }

    #[test]
    fn shutdown_answers_new_requests_drops_signals_and_lets_in_flight_finish() {
        let mut s = server(ServerConfig::default());
        s.handle_message(at(1), req(1, b"slow", b"100")).unwrap();
        assert_eq!(events(&mut s).len(), 1);
        s.begin_shutdown();
        assert!(s.is_shutting_down());
        s.handle_message(at(2), req(2, b"echo", b"x")).unwrap();
        s.handle_message(
            at(2),
            wire(Message::Signal {
                name: Bytes::from_static(b"notify"),
                payload: Payload::utf8(Bytes::from_static(b"late")),
            }),
        )
        .unwrap();
        s.handle_message(
            at(2),
            wire(Message::RestoreSession {
                id: RequestId::from_u64(3),
                key: Bytes::from("A".repeat(64)),
            }),
        )
        .unwrap();
        s.handle_message(
            at(2),
            wire(Message::CloseSession {
                id: RequestId::from_u64(4),
            }),
        )
        .unwrap();
        assert!(
            events(&mut s).is_empty(),
            "no handler runs after shutdown began"
        );
        assert_eq!(
            out(&mut s),
            [
                special(2, SpecialReply::Shutdown),
                special(3, SpecialReply::Shutdown),
                special(4, SpecialReply::Shutdown)
            ]
        );
        assert_eq!(s.in_flight(), 1);
        s.reply(
            RequestId::from_u64(1),
            Payload::utf8(Bytes::from_static(b"done")),
        )
        .unwrap();
        assert_eq!(s.in_flight(), 0);
        assert!(matches!(out(&mut s)[..], [Message::Reply { .. }]));
    }

    #[test]
    fn restore_keys_are_checked_before_any_lookup() {
        let mut s = server(ServerConfig::default());
        for (n, bad) in [&b"short"[..], &[b'A'; 65][..], &[b'.'; 64][..]]
            .into_iter()
            .enumerate()
        {
            s.handle_message(
                at(1),
                wire(Message::RestoreSession {
                    id: RequestId::from_u64(n as u64),
                    key: Bytes::copy_from_slice(bad),
                }),
            )
            .unwrap();
            assert_eq!(
                out(&mut s),
                [special(n as u64, SpecialReply::SessionNotFound)]
            );
        }
        assert!(events(&mut s).is_empty());
        assert_eq!(s.in_flight(), 0);
        let key = SessionKey::from_random([3; 48]);
        s.handle_message(
            at(1),
            wire(Message::RestoreSession {
                id: RequestId::from_u64(9),
                key: Bytes::copy_from_slice(key.as_bytes()),
            }),
        )
        .unwrap();
        assert_eq!(
            events(&mut s),
            [ServerEvent::RestoreSession {
                id: RequestId::from_u64(9),
                key
            }]
        );
        assert_eq!(s.in_flight(), 1);
        s.reply_special(
            RequestId::from_u64(9),
            SpecialReply::MaxSessionConnectionsReached,
        )
        .unwrap();
        assert_eq!(
            out(&mut s),
            [special(9, SpecialReply::MaxSessionConnectionsReached)]
        );
    }

    #[test]
    fn sessions_disabled() {
        let mut s = server(ServerConfig {
            sessions_enabled: false,
            ..ServerConfig::default()
        });
        s.handle_message(
            at(1),
            wire(Message::RestoreSession {
                id: RequestId::from_u64(1),
                key: Bytes::from("A".repeat(64)),
            }),
        )
        .unwrap();
        s.handle_message(
            at(1),
            wire(Message::CloseSession {
                id: RequestId::from_u64(2),
            }),
        )
        .unwrap();
        assert!(events(&mut s).is_empty());
        assert_eq!(
            out(&mut s),
            [
                special(1, SpecialReply::SessionsDisabled),
                special(2, SpecialReply::SessionsDisabled)
            ]
        );
        let info = SessionInfo {
            key: SessionKey::from_random([0; 48]),
            creation_ms: 0,
            last_lookup_ms: 0,
            info: None,
        };
        assert_eq!(
            s.session_created(&info),
            Err(SessionError::SessionsDisabled)
        );
    }

    #[test]
    fn close_session_is_a_request() {
        let mut s = server(ServerConfig::default());
        s.handle_message(
            at(1),
            wire(Message::CloseSession {
                id: RequestId::from_u64(5),
            }),
        )
        .unwrap();
        assert_eq!(
            events(&mut s),
            [ServerEvent::CloseSession {
                id: RequestId::from_u64(5)
            }]
        );
        s.session_closed().unwrap();
        s.reply(RequestId::from_u64(5), Payload::default()).unwrap();
        assert_eq!(
            out(&mut s),
            [
                Message::SessionClosed,
                Message::Reply {
                    id: RequestId::from_u64(5),
                    payload: Payload::default()
                }
            ]
        );
    }

    #[test]
    fn server_commands_write_their_messages() {
        let mut s = server(ServerConfig::default());
        let info = SessionInfo {
            key: SessionKey::from_random([0; 48]),
            creation_ms: 1_795_885_200_000,
            last_lookup_ms: 1_795_885_200_000,
            info: Some(Bytes::from_static(br#"{"user":"ann"}"#)),
        };
        s.session_created(&info).unwrap();
        s.signal("notified", Payload::utf8(Bytes::from_static(b"x")))
            .unwrap();
        assert_eq!(
            s.signal("bad\n", Payload::utf8(Bytes::from_static(b"x"))),
            Err(SessionError::Encode(EncodeError::BadNameChar {
                at: 3,
                byte: b'\n'
            }))
        );
        let m = out(&mut s);
        let Message::SessionCreated { json } = &m[0] else {
            panic!("{m:?}")
        };
        assert_eq!(SessionInfo::from_json(json).unwrap(), info);
        assert_eq!(
            m[1],
            Message::Signal {
                name: Bytes::from_static(b"notified"),
                payload: Payload::utf8(Bytes::from_static(b"x"))
            }
        );
    }

    #[test]
    fn malformed_input_closes_with_a_clear_reason() {
        let cases: Vec<(Bytes, CloseReason)> = vec![
            (Bytes::new(), CloseReason::Malformed(DecodeError::Empty)),
            (
                Bytes::from_static(&[6]),
                CloseReason::Malformed(DecodeError::UnknownType(6)),
            ),
            (
                Bytes::from_static(&[0x21, 0]),
                CloseReason::Malformed(DecodeError::WrongLength {
                    kind: "heartbeat",
                    len: 2,
                    expected: 1,
                }),
            ),
            (
                wire(Message::Reply {
                    id: RequestId::from_u64(1),
                    payload: Payload::default(),
                }),
                CloseReason::Unexpected { type_byte: 191 },
            ),
            (
                wire(Message::SessionClosed),
                CloseReason::Unexpected { type_byte: 22 },
            ),
            (
                Bytes::from(vec![0x3f; 1025]),
                CloseReason::MessageTooLarge {
                    len: 1025,
                    max: 1024,
                },
            ),
        ];
        for (frame, why) in cases {
            let mut s = server(ServerConfig {
                max_message_size: 1024,
                ..ServerConfig::default()
            });
            s.handle_message(at(0), req(1, b"a", b"")).unwrap();
            assert_eq!(
                s.handle_message(at(1), frame),
                Err(SessionError::Protocol(why.clone()))
            );
            let ev = events(&mut s);
            assert_eq!(ev.last(), Some(&ServerEvent::Closed(why)));
            assert!(s.is_closed());
            assert_eq!(s.in_flight(), 0);
            assert_eq!(s.poll_timeout(), None);
        }
    }

    #[test]
    fn transport_close_and_local_close_end_once() {
        let mut s = server(ServerConfig::default());
        s.handle_message(at(0), req(1, b"a", b"")).unwrap();
        s.handle_transport_closed(at(1));
        s.handle_transport_closed(at(2));
        s.close(at(3), CloseReason::Local);
        let ev = events(&mut s);
        assert_eq!(
            ev.last(),
            Some(&ServerEvent::Closed(CloseReason::TransportClosed))
        );
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, ServerEvent::Closed(_)))
                .count(),
            1
        );
        assert_eq!(
            s.signal("x", Payload::binary(Bytes::from_static(b"x"))),
            Err(SessionError::Closed)
        );
        assert_eq!(s.close_reason(), Some(&CloseReason::TransportClosed));
    }
}

mod client_side {
    use super::*;

    fn accept(read_timeout_ms: u32) -> Bytes {
        wire(Message::AcceptConf(AcceptConf {
            major: 2,
            minor: 0,
            read_timeout_ms,
            message_buffer_size: 1 << 20,
            subprotocol: Bytes::new(),
        }))
    }

    fn ready(config: ClientConfig, read_timeout_ms: u32) -> ClientConnection {
        let mut c = ClientConnection::new(at(0), config);
        c.handle_message(at(0), accept(read_timeout_ms)).unwrap();
        assert!(matches!(cevents(&mut c)[..], [ClientEvent::Ready(_)]));
        c
    }

    #[test]
    fn the_accept_configuration_must_come_first_and_in_time() {
        let mut c = ClientConnection::new(at(0), ClientConfig::default());
        assert_eq!(c.poll_timeout(), Some(at(10_000)));
        c.handle_timeout(at(10_000));
        assert_eq!(
            cevents(&mut c),
            [ClientEvent::Closed(CloseReason::AcceptTimeout)]
        );

        let mut c = ClientConnection::new(at(0), ClientConfig::default());
        let e = c.handle_message(at(1), wire(Message::SessionClosed));
        assert_eq!(
            e,
            Err(ClientError::Protocol(CloseReason::Unexpected {
                type_byte: 22
            }))
        );

        let mut c = ClientConnection::new(at(0), ClientConfig::default());
        let v3 = wire(Message::AcceptConf(AcceptConf {
            major: 3,
            minor: 1,
            read_timeout_ms: 0,
            message_buffer_size: 0,
            subprotocol: Bytes::new(),
        }));
        assert_eq!(
            c.handle_message(at(1), v3),
            Err(ClientError::Protocol(CloseReason::UnsupportedVersion {
                major: 3,
                minor: 1
            }))
        );

        let mut c = ready(ClientConfig::default(), 1000);
        assert_eq!(
            c.handle_message(at(1), accept(1000)),
            Err(ClientError::Protocol(CloseReason::Unexpected {
                type_byte: 23
            }))
        );
    }

    #[test]
    fn heartbeats_at_three_quarters_of_the_read_timeout_after_the_last_send() {
        let mut c = ready(ClientConfig::default(), 1000);
        assert_eq!(c.poll_timeout(), Some(at(750)));
        c.handle_timeout(at(749));
        assert!(cout(&mut c).is_empty());
        c.handle_timeout(at(750));
        assert_eq!(cout(&mut c), [Message::Heartbeat]);
        assert_eq!(c.poll_timeout(), Some(at(1500)));
        // A request counts as sending: the heartbeat moves.
        c.signal(at(1200), "s", Payload::binary(Bytes::from_static(b"x")))
            .unwrap();
        assert_eq!(c.poll_timeout(), Some(at(1950)));
        c.handle_timeout(at(1500));
        assert_eq!(cout(&mut c).len(), 1, "only the signal");
    }

    #[test]
    fn no_heartbeat_when_the_server_has_no_read_timeout() {
        let mut c = ready(ClientConfig::default(), 0);
        assert_eq!(c.poll_timeout(), None);
        c.handle_timeout(at(1_000_000));
        assert!(cout(&mut c).is_empty());
    }

    #[test]
    fn requests_end_in_exactly_one_reply() {
        let mut c = ready(ClientConfig::default(), 0);
        let a = c
            .request(at(1), "echo", Payload::utf8(Bytes::from_static(b"hi")))
            .unwrap();
        let b = c.request(at(1), "fail", Payload::default()).unwrap();
        let k = c
            .restore_session(at(1), &SessionKey::from_random([1; 48]))
            .unwrap();
        let d = c.close_session(at(1)).unwrap();
        assert_eq!([a, b, k, d], [1, 2, 3, 4].map(RequestId::from_u64));
        let sent = cout(&mut c);
        assert!(matches!(sent[2], Message::RestoreSession { .. }));
        assert!(matches!(sent[3], Message::CloseSession { .. }));
        assert_eq!(c.pending(), 4);
        c.handle_message(
            at(2),
            wire(Message::Reply {
                id: a,
                payload: Payload::utf8(Bytes::from_static(b"hi")),
            }),
        )
        .unwrap();
        c.handle_message(
            at(2),
            wire(Message::ErrorReply {
                id: b,
                code: Bytes::from_static(b"E"),
                message: Bytes::from_static(b"m"),
            }),
        )
        .unwrap();
        c.handle_message(at(2), wire(special(3, SpecialReply::SessionNotFound)))
            .unwrap();
        c.handle_message(at(2), wire(special(4, SpecialReply::Shutdown)))
            .unwrap();
        // A second answer to the same id is ignored.
        c.handle_message(at(2), wire(special(4, SpecialReply::InternalError)))
            .unwrap();
        assert_eq!(
            cevents(&mut c),
            [
                ClientEvent::Reply {
                    id: a,
                    result: Ok(Payload::utf8(Bytes::from_static(b"hi")))
                },
                ClientEvent::Reply {
                    id: b,
                    result: Err(RequestError::Error {
                        code: Bytes::from_static(b"E"),
                        message: Bytes::from_static(b"m")
                    })
                },
                ClientEvent::Reply {
                    id: k,
                    result: Err(RequestError::SessionNotFound)
                },
                ClientEvent::Reply {
                    id: d,
                    result: Err(RequestError::Shutdown)
                },
            ]
        );
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn every_special_reply_maps_to_its_error() {
        let mut c = ready(ClientConfig::default(), 0);
        for (reply, want) in [
            (SpecialReply::Shutdown, RequestError::Shutdown),
            (SpecialReply::InternalError, RequestError::InternalError),
            (SpecialReply::SessionNotFound, RequestError::SessionNotFound),
            (
                SpecialReply::MaxSessionConnectionsReached,
                RequestError::MaxSessionConnectionsReached,
            ),
            (
                SpecialReply::SessionsDisabled,
                RequestError::SessionsDisabled,
            ),
        ] {
            let id = c.request(at(1), "x", Payload::default()).unwrap();
            c.handle_message(at(1), wire(Message::Special { id, reply }))
                .unwrap();
            assert_eq!(
                cevents(&mut c),
                [ClientEvent::Reply {
                    id,
                    result: Err(want)
                }]
            );
        }
    }

    #[test]
    fn requests_time_out_and_late_replies_are_ignored() {
        let mut c = ready(
            ClientConfig {
                request_timeout: Duration::from_secs(5),
                ..ClientConfig::default()
            },
            0,
        );
        let a = c.request(at(0), "slow", Payload::default()).unwrap();
        let b = c.request(at(3000), "slow", Payload::default()).unwrap();
        assert_eq!(c.poll_timeout(), Some(at(5000)));
        c.handle_timeout(at(5000));
        assert_eq!(
            cevents(&mut c),
            [ClientEvent::Reply {
                id: a,
                result: Err(RequestError::Timeout)
            }]
        );
        assert_eq!(c.poll_timeout(), Some(at(8000)));
        c.handle_message(
            at(5001),
            wire(Message::Reply {
                id: a,
                payload: Payload::default(),
            }),
        )
        .unwrap();
        assert!(cevents(&mut c).is_empty());
        c.handle_timeout(at(8000));
        assert_eq!(
            cevents(&mut c),
            [ClientEvent::Reply {
                id: b,
                result: Err(RequestError::Timeout)
            }]
        );
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn a_disconnect_fails_every_pending_request_at_once() {
        let mut c = ready(ClientConfig::default(), 1000);
        let ids: Vec<_> = (0..5)
            .map(|_| c.request(at(1), "slow", Payload::default()).unwrap())
            .collect();
        c.handle_transport_closed(at(2));
        let ev = cevents(&mut c);
        assert_eq!(ev.len(), 6);
        for (e, id) in ev.iter().zip(&ids) {
            assert_eq!(
                e,
                &ClientEvent::Reply {
                    id: *id,
                    result: Err(RequestError::Disconnected)
                }
            );
        }
        assert_eq!(ev[5], ClientEvent::Closed(CloseReason::TransportClosed));
        assert_eq!(c.pending(), 0);
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(
            c.request(at(3), "x", Payload::default()),
            Err(ClientError::Closed)
        );
        // A local close does the same.
        let mut c = ready(ClientConfig::default(), 1000);
        let id = c.request(at(1), "x", Payload::default()).unwrap();
        c.close(at(2), CloseReason::Local);
        assert_eq!(
            cevents(&mut c),
            [
                ClientEvent::Reply {
                    id,
                    result: Err(RequestError::Disconnected)
                },
                ClientEvent::Closed(CloseReason::Local)
            ]
        );
    }

    #[test]
    fn at_most_max_pending_requests_wait() {
        let mut c = ready(
            ClientConfig {
                max_pending_requests: 3,
                ..ClientConfig::default()
            },
            0,
        );
        for _ in 0..3 {
            c.request(at(1), "x", Payload::default()).unwrap();
        }
        assert_eq!(
            c.request(at(1), "x", Payload::default()),
            Err(ClientError::TooManyPending { max: 3 })
        );
        assert_eq!(cout(&mut c).len(), 3);
        assert_eq!(
            c.request(at(1), "", Payload::default()),
            Err(ClientError::TooManyPending { max: 3 })
        );
        c.handle_message(
            at(2),
            wire(Message::Reply {
                id: RequestId::from_u64(1),
                payload: Payload::default(),
            }),
        )
        .unwrap();
        assert_eq!(
            c.request(at(1), "", Payload::default()),
            Err(ClientError::Encode(EncodeError::EmptyRequest))
        );
        c.request(at(1), "x", Payload::default()).unwrap();
    }

    #[test]
    fn session_and_signal_events() {
        let mut c = ready(ClientConfig::default(), 0);
        let info = SessionInfo {
            key: SessionKey::from_random([5; 48]),
            creation_ms: 1,
            last_lookup_ms: 2,
            info: None,
        };
        c.handle_message(
            at(1),
            wire(Message::SessionCreated {
                json: info.to_json().into(),
            }),
        )
        .unwrap();
        c.handle_message(at(1), wire(Message::SessionClosed))
            .unwrap();
        c.handle_message(
            at(1),
            wire(Message::Signal {
                name: Bytes::from_static(b"notified"),
                payload: Payload::utf8(Bytes::from_static(b"x")),
            }),
        )
        .unwrap();
        assert_eq!(
            cevents(&mut c),
            [
                ClientEvent::SessionCreated(info),
                ClientEvent::SessionClosed,
                ClientEvent::Signal {
                    name: Bytes::from_static(b"notified"),
                    payload: Payload::utf8(Bytes::from_static(b"x"))
                }
            ]
        );
        let e = c.handle_message(
            at(1),
            wire(Message::SessionCreated {
                json: Bytes::from_static(b"{}"),
            }),
        );
        assert!(matches!(
            e,
            Err(ClientError::Protocol(CloseReason::BadSession(_)))
        ));
    }

    #[test]
    fn server_only_messages_from_the_server_only() {
        for m in [
            wire(Message::Heartbeat),
            req(1, b"x", b""),
            wire(Message::CloseSession {
                id: RequestId::from_u64(1),
            }),
        ] {
            let mut c = ready(ClientConfig::default(), 0);
            let t = m[0];
            assert_eq!(
                c.handle_message(at(1), m),
                Err(ClientError::Protocol(CloseReason::Unexpected {
                    type_byte: t
                }))
            );
        }
        let mut c = ready(
            ClientConfig {
                max_message_size: 20,
                ..ClientConfig::default()
            },
            0,
        );
        assert!(matches!(
            c.handle_message(at(1), Bytes::from_static(&[0xbf; 21])),
            Err(ClientError::Protocol(CloseReason::MessageTooLarge {
                len: 21,
                max: 20
            }))
        ));
    }
}

mod registry {
    use super::*;

    #[test]
    fn a_thousand_concurrent_restores_of_one_key_with_max_two_give_two() {
        let reg = Arc::new(Mutex::new(Registry::new(RegistryConfig {
            max_connections_per_key: 2,
            ..RegistryConfig::default()
        })));
        let key = SessionKey::from_random([9; 48]);
        // Each attempt is a server connection getting a restore request;
        // the "adapter" attaches under the one lock and replies.
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let reg = Arc::clone(&reg);
                std::thread::spawn(move || {
                    let mut wins = Vec::new();
                    for i in 0..125u64 {
                        let conn = t * 1000 + i;
                        let mut s = server(ServerConfig::default());
                        s.handle_message(
                            at(1),
                            wire(Message::RestoreSession {
                                id: RequestId::from_u64(conn),
                                key: Bytes::copy_from_slice(key.as_bytes()),
                            }),
                        )
                        .unwrap();
                        let Some(ServerEvent::RestoreSession { id, key }) = s.poll_event() else {
                            panic!("no restore event")
                        };
                        let attached = reg.lock().unwrap().attach(key, conn);
                        match attached {
                            Ok(()) => {
                                s.reply(id, Payload::utf8(Bytes::from_static(b"{}")))
                                    .unwrap();
                                wins.push(conn);
                            }
                            Err(RegistryError::Full { max: 2 }) => s
                                .reply_special(id, SpecialReply::MaxSessionConnectionsReached)
                                .unwrap(),
                            Err(e) => panic!("{e}"),
                        }
                        assert_eq!(s.in_flight(), 0);
                    }
                    wins
                })
            })
            .collect();
        let wins: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(wins.len(), 2);
        let mut reg = reg.lock().unwrap();
        assert_eq!(reg.connections(&key).len(), 2);
        assert_eq!(reg.attach(key, 5000), Err(RegistryError::Full { max: 2 }));
        // Detaching frees exactly one slot.
        assert_eq!(reg.detach(wins[0]), Some(key));
        reg.attach(key, 5000).unwrap();
        assert_eq!(reg.attach(key, 5001), Err(RegistryError::Full { max: 2 }));
        assert_eq!(reg.connections(&key), &[wins[1], 5000]);
    }

    #[test]
    fn limits_and_close_everywhere() {
        let mut reg = Registry::new(RegistryConfig {
            max_connections_per_key: 3,
            max_keys: 2,
        });
        let (a, b, c) = (
            SessionKey::from_random([1; 48]),
            SessionKey::from_random([2; 48]),
            SessionKey::from_random([3; 48]),
        );
        reg.attach(a, 1).unwrap();
        reg.attach(a, 2).unwrap();
        reg.attach(b, 3).unwrap();
        assert_eq!(reg.attach(c, 4), Err(RegistryError::TooManyKeys { max: 2 }));
        assert_eq!(reg.attach(b, 1), Err(RegistryError::AlreadyAttached));
        assert_eq!(reg.session_count(), 2);
        assert_eq!(reg.connection_count(), 3);
        assert_eq!(reg.key_of(2), Some(a));
        assert_eq!(reg.remove_key(&a), vec![1, 2]);
        assert_eq!(reg.key_of(2), None);
        assert_eq!(reg.connections(&a), &[] as &[u64]);
        reg.attach(c, 4).unwrap();
        assert_eq!(reg.detach(3), Some(b));
        assert_eq!(reg.detach(3), None);
        assert_eq!(reg.session_count(), 1);
        let mut none = Registry::new(RegistryConfig {
            max_connections_per_key: 0,
            ..RegistryConfig::default()
        });
        assert_eq!(none.attach(a, 1), Err(RegistryError::Full { max: 0 }));
    }
}

mod framed {
    use super::*;

    fn drain(m: &mut impl Machine) -> Vec<u8> {
        let mut buf = Vec::new();
        while m.poll_transmit(&mut buf).is_some() {}
        buf
    }

    #[test]
    fn server_and_client_talk_through_length_prefixes_in_any_chunking() {
        for chunk in [1usize, 2, 3, 7, 64, 4096] {
            let mut s = Framed::new(ServerConnection::new(at(0), ServerConfig::default()));
            let mut c = Framed::new(ClientConnection::new(at(0), ClientConfig::default()));
            let id = c
                .inner_mut()
                .request(at(0), "echo", Payload::binary(Bytes::from(vec![7u8; 300])))
                .unwrap();
            let to_server = drain(&mut c);
            assert_eq!(&to_server[..4], &(10 + 4 + 300u32).to_be_bytes());
            for piece in to_server.chunks(chunk) {
                s.handle_input(at(1), Bytes::copy_from_slice(piece))
                    .unwrap();
            }
            let Some(ServerEvent::Request {
                id: got, payload, ..
            }) = s.inner_mut().poll_event()
            else {
                panic!("no request")
            };
            assert_eq!(got, id);
            s.inner_mut().reply(got, payload).unwrap();
            let to_client = drain(&mut s);
            for piece in to_client.chunks(chunk) {
                c.handle_input(at(2), Bytes::copy_from_slice(piece))
                    .unwrap();
            }
            let ev: Vec<_> = std::iter::from_fn(|| c.inner_mut().poll_event()).collect();
            assert!(matches!(ev[0], ClientEvent::Ready(_)));
            assert_eq!(
                ev[1],
                ClientEvent::Reply {
                    id,
                    result: Ok(Payload::binary(Bytes::from(vec![7u8; 300])))
                }
            );
            assert_eq!(s.buffered(), 0);
            assert_eq!(c.buffered(), 0);
        }
    }

    #[test]
    fn a_frame_that_arrives_whole_is_not_copied() {
        let mut s = Framed::new(ServerConnection::new(at(0), ServerConfig::default()));
        let msg = req(1, b"echo", b"hello");
        let mut input = (msg.len() as u32).to_be_bytes().to_vec();
        input.extend_from_slice(&msg);
        let input = Bytes::from(input);
        let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
        s.handle_input(at(1), input.clone()).unwrap();
        let Some(ServerEvent::Request { payload, .. }) = s.inner_mut().poll_event() else {
            panic!()
        };
        assert!(range.contains(&(payload.data.as_ptr() as usize)));
    }

    #[test]
    fn an_announced_length_over_the_limit_closes_before_buffering() {
        let mut s = Framed::new(ServerConnection::new(
            at(0),
            ServerConfig {
                max_message_size: 100,
                ..ServerConfig::default()
            },
        ));
        assert!(s
            .handle_input(at(1), Bytes::from_static(&[0, 0, 0, 101]))
            .is_err());
        assert_eq!(s.buffered(), 0);
        assert!(s.is_closed());
        assert_eq!(
            s.inner().close_reason(),
            Some(&CloseReason::MessageTooLarge { len: 101, max: 100 })
        );
        assert!(s.handle_input(at(2), Bytes::from_static(&[0])).is_err());
        // Also when the prefix comes in pieces.
        let mut s = Framed::new(ServerConnection::new(
            at(0),
            ServerConfig {
                max_message_size: 100,
                ..ServerConfig::default()
            },
        ));
        s.handle_input(at(1), Bytes::from_static(&[0, 0])).unwrap();
        assert!(s.handle_input(at(1), Bytes::from_static(&[1, 0])).is_err());
    }

    #[test]
    fn a_malformed_frame_is_rejected_and_the_machine_says_why() {
        let mut s = Framed::new(ServerConnection::new(at(0), ServerConfig::default()));
        assert!(s
            .handle_input(at(1), Bytes::from_static(&[0, 0, 0, 1, 6]))
            .is_err());
        assert_eq!(
            s.inner().close_reason(),
            Some(&CloseReason::Malformed(DecodeError::UnknownType(6)))
        );
        let mut s = Framed::new(ServerConnection::new(at(0), ServerConfig::default()));
        s.close(at(1), 0, b"bye");
        assert_eq!(s.inner().close_reason(), Some(&CloseReason::Local));
        // The accept configuration queued before the close still goes out.
        assert!(s.wants_transmit());
        assert_eq!(drain(&mut s)[4], 23);
    }

    #[test]
    fn timers_pass_through() {
        let mut c = Framed::new(ClientConnection::new(at(0), ClientConfig::default()));
        assert_eq!(Machine::poll_timeout(&c), Some(at(10_000)));
        Machine::handle_timeout(&mut c, at(10_000));
        assert!(Machine::is_closed(&c));
        let mut c = Framed::new(ClientConnection::new(at(0), ClientConfig::default()));
        let id = c
            .inner_mut()
            .request(at(0), "x", Payload::default())
            .unwrap();
        Machine::handle_transport_closed(&mut c, at(1));
        assert_eq!(
            c.inner_mut().poll_event(),
            Some(ClientEvent::Reply {
                id,
                result: Err(RequestError::Disconnected)
            })
        );
    }
}
