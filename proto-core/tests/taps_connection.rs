//! Two `taps::connection::Connection`s back to back, their transmit output
//! fed to each other in every chunking down to one byte, with the reading
//! side honouring `wants_input`: every sending, receiving, limit and
//! ending rule, and RFC 9622 section 11's event order.

use bytes::Bytes;
use proto_core::taps::connection::{
    Config, Connection, ConnectionFailure, Event, ReceiveError, ReceiveRequestError, SendError,
    MESSAGE_OVERHEAD,
};
use proto_core::taps::framer::{
    Delimiter, Framed, Framer, FramerError, LengthPrefix, ParseStep, PrefixWidth,
};
use proto_core::taps::message::{MessageContext, MessageProperties, MessageRef};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use std::collections::VecDeque;

fn props(priority: u32) -> MessageProperties {
    MessageProperties {
        priority,
        ..MessageProperties::default()
    }
}

fn bytes(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

/// One direction of the stream: bytes written, not yet read.
#[derive(Default)]
struct Pipe(VecDeque<u8>);

struct Pair {
    a: Connection,
    b: Connection,
    a2b: Pipe,
    b2a: Pipe,
    chunk: usize,
    now: Instant,
}

impl Pair {
    fn new(cfg: Config, fa: Box<dyn Framer>, fb: Box<dyn Framer>, chunk: usize) -> Pair {
        let now = Instant::ZERO;
        let mut p = Pair {
            a: Connection::new(cfg.clone(), fa, now).unwrap(),
            b: Connection::new(cfg, fb, now).unwrap(),
            a2b: Pipe::default(),
            b2a: Pipe::default(),
            chunk,
            now,
        };
        assert_eq!(p.a.poll_event(), Some(Event::Ready));
        assert_eq!(p.b.poll_event(), Some(Event::Ready));
        p
    }

    fn lp(chunk: usize) -> Pair {
        Pair::new(
            Config::default(),
            Box::new(LengthPrefix::default()),
            Box::new(LengthPrefix::default()),
            chunk,
        )
    }

    /// Moves bytes both ways until neither side has anything to move.
    fn pump(&mut self) {
        loop {
            let ab = step(
                &mut self.a,
                &mut self.a2b,
                &mut self.b,
                self.chunk,
                self.now,
            );
            let ba = step(
                &mut self.b,
                &mut self.b2a,
                &mut self.a,
                self.chunk,
                self.now,
            );
            if !ab && !ba {
                break;
            }
        }
    }
}

/// `from` transmits into `pipe`; `to` reads from it while it wants input.
fn step(
    from: &mut Connection,
    pipe: &mut Pipe,
    to: &mut Connection,
    chunk: usize,
    now: Instant,
) -> bool {
    let mut w = Vec::new();
    while from.poll_transmit(&mut w).is_some() {}
    pipe.0.extend(w);
    let mut moved = false;
    while !pipe.0.is_empty() && to.wants_input() && !to.is_closed() {
        let n = chunk.min(pipe.0.len());
        let piece: Vec<u8> = pipe.0.drain(..n).collect();
        let _ = to.handle_input(now, piece.into());
        moved = true;
    }
    moved
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Whole messages (parts joined) from received events, in order.
fn messages(evs: &[Event]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for ev in evs {
        match ev {
            Event::Received { data, context } | Event::ReceivedPartial { data, context } => {
                assert_eq!(context.offset, cur.len() as u64, "parts in order");
                assert_eq!(context.len, data.len());
                cur.extend_from_slice(data);
                if context.end_of_message {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => {}
        }
    }
    assert!(cur.is_empty(), "a message without its end");
    out
}

fn sample(i: usize) -> Vec<u8> {
    let len = [0, 1, 2, 17, 300, 5000, 70_000][i % 7];
    (0..len).map(|j| (j * 7 + i) as u8 | 1).collect()
}

const CHUNKS: [usize; 6] = [1, 2, 3, 7, 1000, 1 << 20];

#[test]
fn messages_cross_intact_in_any_chunking_with_both_framers() {
    for chunk in CHUNKS {
        for delim in [false, true] {
            let mk = || -> Box<dyn Framer> {
                if delim {
                    // Bytes are odd (|1), so b"\n\0" never appears in them.
                    Box::new(Delimiter::new(Bytes::from_static(b"\n\0"), 100_000).unwrap())
                } else {
                    Box::new(LengthPrefix::new(PrefixWidth::U32, 100_000))
                }
            };
            let mut p = Pair::new(Config::default(), mk(), mk(), chunk);
            let sent: Vec<Vec<u8>> = (0..14).map(sample).collect();
            for (i, m) in sent.iter().enumerate() {
                p.a.send(p.now, MessageRef(i as u64), bytes(m), props(100))
                    .unwrap();
            }
            for _ in 0..sent.len() {
                p.b.receive(usize::MAX, usize::MAX).unwrap();
            }
            p.pump();
            let got = events(&mut p.b);
            assert!(
                got.iter().all(|e| matches!(e, Event::Received { .. })),
                "chunk {chunk}"
            );
            assert_eq!(messages(&got), sent, "chunk {chunk} delim {delim}");
            let sent_evs = events(&mut p.a);
            let want: Vec<Event> = (0..14).map(|i| Event::Sent(MessageRef(i))).collect();
            assert_eq!(sent_evs, want);
        }
    }
}

#[test]
fn lower_priority_numbers_go_first_fifo_within_a_priority() {
    for chunk in [1, 5, 1 << 20] {
        let mut p = Pair::lp(chunk);
        let plan = [
            (5, b"a"),
            (1, b"b"),
            (5, b"c"),
            (0, b"d"),
            (1, b"e"),
            (9, b"f"),
        ];
        for (i, (prio, m)) in plan.iter().enumerate() {
            p.a.send(p.now, MessageRef(i as u64), bytes(*m), props(*prio))
                .unwrap();
        }
        for _ in 0..plan.len() {
            p.b.receive(usize::MAX, usize::MAX).unwrap();
        }
        p.pump();
        let got = messages(&events(&mut p.b));
        assert_eq!(
            got,
            [b"d", b"b", b"e", b"a", b"c", b"f"].map(|m| m.to_vec())
        );
        // Sent events in wire order (RFC 9622 section 11).
        assert_eq!(
            events(&mut p.a),
            [3, 1, 4, 0, 2, 5].map(|i| Event::Sent(MessageRef(i)))
        );
    }
}

#[test]
fn a_started_message_is_never_interleaved() {
    let cfg = Config {
        max_transmit_chunk: 10,
        ..Config::default()
    };
    let mut a = Connection::new(cfg, Box::new(LengthPrefix::default()), Instant::ZERO).unwrap();
    let mut b = Connection::new(
        Config::default(),
        Box::new(LengthPrefix::default()),
        Instant::ZERO,
    )
    .unwrap();
    let big = vec![7u8; 100];
    a.send(Instant::ZERO, MessageRef(1), bytes(&big), props(100))
        .unwrap();
    let mut w = Vec::new();
    assert_eq!(a.poll_transmit(&mut w), Some(10));
    // More urgent, but the big one has started: it waits.
    a.send(Instant::ZERO, MessageRef(2), bytes(b"urgent"), props(0))
        .unwrap();
    while a.poll_transmit(&mut w).is_some() {}
    b.receive(usize::MAX, usize::MAX).unwrap();
    b.receive(usize::MAX, usize::MAX).unwrap();
    b.handle_input(Instant::ZERO, w.into()).unwrap();
    let got = messages(&events(&mut b));
    assert_eq!(got, [big, b"urgent".to_vec()]);
}

#[test]
fn lifetime_expiry_is_exact_in_virtual_time() {
    let cfg = Config {
        max_transmit_chunk: 4,
        ..Config::default()
    };
    let mut a = Connection::new(cfg, Box::new(LengthPrefix::default()), Instant::ZERO).unwrap();
    assert_eq!(a.poll_event(), Some(Event::Ready));
    let t0 = Instant::from_nanos(1_000);
    let life = Duration::from_millis(10);
    let with_life = MessageProperties {
        lifetime: Some(life),
        ..MessageProperties::default()
    };
    a.send(t0, MessageRef(1), bytes(&[1; 40]), props(100))
        .unwrap();
    a.send(t0, MessageRef(2), bytes(b"late"), with_life)
        .unwrap();
    a.send(t0, MessageRef(3), bytes(b"also"), with_life)
        .unwrap();
    let mut w = Vec::new();
    assert_eq!(a.poll_transmit(&mut w), Some(4));
    assert_eq!(a.poll_timeout(), Some(t0 + life));
    // One nanosecond early: nothing expires.
    a.handle_timeout(t0 + (life - Duration::from_nanos(1)));
    assert_eq!(a.poll_event(), None);
    a.handle_timeout(t0 + life);
    assert_eq!(a.poll_event(), Some(Event::Expired(MessageRef(2))));
    assert_eq!(a.poll_event(), Some(Event::Expired(MessageRef(3))));
    assert_eq!(a.poll_timeout(), None);
    while a.poll_transmit(&mut w).is_some() {}
    assert_eq!(w.len(), 44, "expired messages are not on the wire");
    assert_eq!(a.poll_event(), Some(Event::Sent(MessageRef(1))));
    // A message sent in time is not expired later.
    a.send(t0 + life, MessageRef(4), bytes(b"x"), with_life)
        .unwrap();
    while a.poll_transmit(&mut w).is_some() {}
    a.handle_timeout(t0 + life * 3);
    assert_eq!(events(&mut a), [Event::Sent(MessageRef(4))]);
    // A zero lifetime has passed already.
    let zero = MessageProperties {
        lifetime: Some(Duration::ZERO),
        ..MessageProperties::default()
    };
    a.send(t0, MessageRef(5), bytes(b"y"), zero).unwrap();
    assert_eq!(events(&mut a), [Event::Expired(MessageRef(5))]);
}

#[test]
fn long_messages_are_delivered_in_max_length_parts() {
    for chunk in [1, 3, 1 << 20] {
        let mut p = Pair::lp(chunk);
        p.a.send(p.now, MessageRef(1), bytes(b"0123456789"), props(100))
            .unwrap();
        p.a.send(p.now, MessageRef(2), bytes(b"ab"), props(100))
            .unwrap();
        for _ in 0..4 {
            p.b.receive(usize::MAX, 4).unwrap();
        }
        p.pump();
        let evs = events(&mut p.b);
        let ctx = |message, offset, len, end_of_message| MessageContext {
            message,
            offset,
            len,
            end_of_message,
        };
        assert_eq!(
            evs,
            [
                Event::ReceivedPartial {
                    data: bytes(b"0123"),
                    context: ctx(0, 0, 4, false)
                },
                Event::ReceivedPartial {
                    data: bytes(b"4567"),
                    context: ctx(0, 4, 4, false)
                },
                Event::ReceivedPartial {
                    data: bytes(b"89"),
                    context: ctx(0, 8, 2, true)
                },
                Event::Received {
                    data: bytes(b"ab"),
                    context: ctx(1, 0, 2, true)
                },
            ]
        );
    }
}

#[test]
fn an_incomplete_message_is_delivered_once_min_incomplete_length_arrived() {
    let mut b = Connection::new(
        Config::default(),
        Box::new(LengthPrefix::default()),
        Instant::ZERO,
    )
    .unwrap();
    let _ = b.poll_event();
    b.receive(3, usize::MAX).unwrap();
    b.handle_input(Instant::ZERO, bytes(&[0, 0, 0, 6, b'a', b'b']))
        .unwrap();
    assert_eq!(b.poll_event(), None, "2 bytes is under the minimum of 3");
    b.handle_input(Instant::ZERO, bytes(b"c")).unwrap();
    let Some(Event::ReceivedPartial { data, context }) = b.poll_event() else {
        panic!()
    };
    assert_eq!((&data[..], context.end_of_message), (&b"abc"[..], false));
    b.receive(usize::MAX, usize::MAX).unwrap();
    b.handle_input(Instant::ZERO, bytes(b"def")).unwrap();
    let Some(Event::ReceivedPartial { data, context }) = b.poll_event() else {
        panic!()
    };
    assert_eq!(
        (&data[..], context.offset, context.end_of_message),
        (&b"def"[..], 3, true)
    );
}

#[test]
fn a_message_larger_than_the_receive_buffer_streams_through_in_parts() {
    let cfg = Config {
        max_buffered_receive_bytes: 4096,
        input_slack: 4096,
        ..Config::default()
    };
    let mut p = Pair::new(
        cfg,
        Box::new(LengthPrefix::default()),
        Box::new(LengthPrefix::default()),
        1000,
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    p.a.send(p.now, MessageRef(1), bytes(&big), props(100))
        .unwrap();
    let mut got = Vec::new();
    let mut parts = 0;
    for _ in 0..10_000 {
        p.pump();
        assert!(p.b.buffered_receive_bytes() <= 4096 + 1000 + MESSAGE_OVERHEAD);
        let evs = events(&mut p.b);
        for e in &evs {
            if let Event::ReceivedPartial { data, .. } | Event::Received { data, .. } = e {
                got.extend_from_slice(data);
                parts += 1;
            }
        }
        if got.len() == big.len() {
            break;
        }
        p.b.receive(usize::MAX, usize::MAX).unwrap();
    }
    assert_eq!(got, big);
    assert!(parts > 40, "delivered in parts ({parts})");
}

#[test]
fn an_oversized_length_fails_the_connection_naming_the_framer() {
    let mut b = Connection::new(
        Config::default(),
        Box::new(LengthPrefix::new(PrefixWidth::U16, 10)),
        Instant::ZERO,
    )
    .unwrap();
    b.send(Instant::ZERO, MessageRef(9), bytes(b"queued"), props(100))
        .unwrap();
    assert_eq!(
        b.handle_input(Instant::ZERO, bytes(&[0, 11])),
        Err(proto_core::wire::Rejected)
    );
    let evs = events(&mut b);
    assert_eq!(evs[0], Event::Ready);
    assert_eq!(
        evs[1],
        Event::SendError {
            message: MessageRef(9),
            error: SendError::ConnectionFailed
        }
    );
    let Event::ConnectionError(why) = &evs[2] else {
        panic!("{evs:?}")
    };
    assert_eq!(
        why.to_string(),
        "framer length-prefix: the peer announced a 11-byte message, over the limit of 10 bytes"
    );
    assert_eq!(evs.len(), 3);
    assert!(b.is_closed());
    let mut w = Vec::new();
    assert_eq!(b.poll_transmit(&mut w), None);
}

#[test]
fn a_delimiter_inside_a_message_fails_that_send_only() {
    let mut p = Pair::new(
        Config::default(),
        Box::new(Delimiter::default()),
        Box::new(Delimiter::default()),
        2,
    );
    let e =
        p.a.send(p.now, MessageRef(1), bytes(b"a\nb"), props(100))
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "framer delimiter: the message contains the delimiter at offset 1"
    );
    p.a.send(p.now, MessageRef(2), bytes(b"fine"), props(100))
        .unwrap();
    p.b.receive(usize::MAX, usize::MAX).unwrap();
    p.pump();
    assert_eq!(messages(&events(&mut p.b)), [b"fine".to_vec()]);
    assert_eq!(events(&mut p.a), [Event::Sent(MessageRef(2))]);
}

#[test]
fn send_limits_are_refused_with_a_reason() {
    let cfg = Config {
        max_queued_send_bytes: 30,
        max_queued_messages: 3,
        max_unsegmented_len: 5,
        ..Config::default()
    };
    let mut a = Connection::new(cfg, Box::new(LengthPrefix::default()), Instant::ZERO).unwrap();
    let t = Instant::ZERO;
    a.send(t, MessageRef(1), bytes(&[1; 10]), props(100))
        .unwrap();
    let e = a
        .send(t, MessageRef(2), bytes(&[1; 20]), props(100))
        .unwrap_err();
    assert_eq!(
        e,
        SendError::QueueFull {
            queued: 14,
            len: 24,
            limit: 30
        }
    );
    assert_eq!(
        e.to_string(),
        "send queue full: 14 bytes queued, 24 more would pass the limit of 30"
    );
    a.send(t, MessageRef(3), bytes(b""), props(100)).unwrap();
    a.send(t, MessageRef(4), bytes(b""), props(100)).unwrap();
    assert_eq!(
        a.send(t, MessageRef(5), bytes(b""), props(100)),
        Err(SendError::TooManyMessages { limit: 3 })
    );
    let unseg = MessageProperties {
        no_segmentation: true,
        ..MessageProperties::default()
    };
    let mut w = Vec::new();
    while a.poll_transmit(&mut w).is_some() {}
    assert_eq!(
        a.send(t, MessageRef(6), bytes(b"123456"), unseg),
        Err(SendError::NoSegmentation { len: 6, limit: 5 })
    );
    a.send(t, MessageRef(7), bytes(b"12345"), unseg).unwrap();
}

#[test]
fn receive_limits_hold_the_peer_and_release_it() {
    let cfg = Config {
        max_buffered_receive_bytes: 1000,
        max_receive_requests: 2,
        ..Config::default()
    };
    let mut p = Pair::new(
        cfg,
        Box::new(LengthPrefix::default()),
        Box::new(LengthPrefix::default()),
        7,
    );
    for i in 0..50 {
        p.a.send(p.now, MessageRef(i), bytes(&[i as u8; 100]), props(100))
            .unwrap();
    }
    p.pump();
    // Nobody asked: b holds what fits and stops reading.
    assert!(!p.b.wants_input());
    // At most one read and one parse step (a message's overhead) over.
    assert!(p.b.buffered_receive_bytes() <= 1000 + 7 + MESSAGE_OVERHEAD);
    assert!(!p.a2b.0.is_empty(), "the rest waits in the transport");
    // Held messages answer requests at once.
    p.b.receive(usize::MAX, usize::MAX).unwrap();
    p.b.receive(usize::MAX, usize::MAX).unwrap();
    let mut got = messages(&events(&mut p.b));
    assert_eq!(got.len(), 2);
    while got.len() < 50 {
        p.pump();
        got.extend(messages(&events(&mut p.b)));
        let _ = p.b.receive(usize::MAX, usize::MAX);
        let _ = p.b.receive(usize::MAX, usize::MAX);
    }
    let want: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; 100]).collect();
    assert_eq!(got, want);
}

#[test]
fn receive_requests_are_bounded() {
    let cfg = Config {
        max_receive_requests: 2,
        ..Config::default()
    };
    let mut b = Connection::new(cfg, Box::new(LengthPrefix::default()), Instant::ZERO).unwrap();
    b.receive(usize::MAX, usize::MAX).unwrap();
    b.receive(usize::MAX, usize::MAX).unwrap();
    let e = b.receive(usize::MAX, usize::MAX).unwrap_err();
    assert_eq!(e, ReceiveRequestError::TooMany { limit: 2 });
    assert_eq!(
        e.to_string(),
        "2 receive requests are outstanding (the limit)"
    );
    b.handle_input(Instant::ZERO, bytes(&[0, 0, 0, 0])).unwrap();
    b.receive(usize::MAX, usize::MAX).unwrap();
}

#[test]
fn input_past_the_slack_while_paused_fails_the_connection() {
    let cfg = Config {
        max_buffered_receive_bytes: 200,
        input_slack: 100,
        ..Config::default()
    };
    let mut b = Connection::new(cfg, Box::new(LengthPrefix::default()), Instant::ZERO).unwrap();
    let mut wire = Vec::new();
    for _ in 0..20 {
        wire.extend_from_slice(&[0, 0, 0, 100]);
        wire.extend_from_slice(&[1; 100]);
    }
    let mut rest = &wire[..];
    while b.wants_input() {
        b.handle_input(Instant::ZERO, bytes(&rest[..50])).unwrap();
        rest = &rest[50..];
    }
    // A driver that ignores `wants_input` and hands over far more.
    assert!(b.handle_input(Instant::ZERO, bytes(rest)).is_err());
    let evs = events(&mut b);
    assert!(matches!(
        evs.last(),
        Some(Event::ConnectionError(ConnectionFailure::ReceiveOverrun {
            limit: 300,
            ..
        }))
    ));
}

#[test]
fn soft_errors_are_reported_and_bounded() {
    let cfg = Config {
        max_pending_soft_errors: 2,
        ..Config::default()
    };
    let mut a = Connection::new(cfg, Box::new(LengthPrefix::default()), Instant::ZERO).unwrap();
    for _ in 0..5 {
        a.soft_error(Instant::ZERO, "icmp: port unreachable");
    }
    assert_eq!(a.dropped_soft_errors(), 3);
    let evs = events(&mut a);
    assert_eq!(evs.len(), 3);
    assert_eq!(
        evs[1],
        Event::SoftError {
            reason: "icmp: port unreachable".into()
        }
    );
    a.soft_error(Instant::ZERO, "again");
    assert_eq!(events(&mut a).len(), 1, "room again once delivered");
    assert!(!a.is_closed(), "a soft error does not end the connection");
}

#[test]
fn close_sends_what_is_queued_then_closed() {
    for chunk in [1, 1 << 20] {
        let mut p = Pair::lp(chunk);
        p.a.send(p.now, MessageRef(1), bytes(b"one"), props(100))
            .unwrap();
        p.a.send(p.now, MessageRef(2), bytes(b"two"), props(1))
            .unwrap();
        p.a.close(p.now);
        assert_eq!(
            p.a.send(p.now, MessageRef(3), bytes(b"x"), props(1)),
            Err(SendError::Closing)
        );
        assert_eq!(p.a.poll_event(), None, "Closed waits for the queue");
        assert!(!p.a.is_closed());
        p.b.receive(usize::MAX, usize::MAX).unwrap();
        p.b.receive(usize::MAX, usize::MAX).unwrap();
        p.pump();
        assert_eq!(
            events(&mut p.a),
            [
                Event::Sent(MessageRef(2)),
                Event::Sent(MessageRef(1)),
                Event::Closed
            ]
        );
        assert!(p.a.is_closed());
        assert_eq!(
            messages(&events(&mut p.b)),
            [b"two".to_vec(), b"one".to_vec()]
        );
        // The peer sees the stream end at a boundary: Closed there too.
        p.b.handle_transport_closed(p.now);
        assert_eq!(events(&mut p.b), [Event::Closed]);
    }
}

#[test]
fn abort_fails_every_queued_message_then_reports_a_connection_error() {
    let cfg = Config {
        max_transmit_chunk: 2,
        ..Config::default()
    };
    let mut a = Connection::new(cfg, Box::new(LengthPrefix::default()), Instant::ZERO).unwrap();
    let _ = a.poll_event();
    let t = Instant::ZERO;
    a.send(t, MessageRef(1), bytes(b"started"), props(100))
        .unwrap();
    a.send(t, MessageRef(2), bytes(b"queued"), props(100))
        .unwrap();
    let mut w = Vec::new();
    assert!(a.poll_transmit(&mut w).is_some());
    a.abort(t);
    assert_eq!(
        events(&mut a),
        [
            Event::SendError {
                message: MessageRef(1),
                error: SendError::Aborted
            },
            Event::SendError {
                message: MessageRef(2),
                error: SendError::Aborted
            },
            Event::ConnectionError(ConnectionFailure::Aborted),
        ]
    );
    assert!(a.is_closed());
    assert_eq!(a.poll_transmit(&mut w), None);
    assert_eq!(a.poll_timeout(), None);
    // Nothing follows the last event, whatever the application does.
    assert_eq!(
        a.send(t, MessageRef(3), bytes(b"x"), props(1)),
        Err(SendError::ConnectionFailed)
    );
    a.close(t);
    a.abort(t);
    a.soft_error(t, "late");
    a.handle_transport_closed(t);
    assert_eq!(a.poll_event(), None);
}

#[test]
fn the_stream_ending_inside_a_message_is_a_receive_error_never_a_short_message() {
    for framer in ["lp", "delim"] {
        let mk = || -> Box<dyn Framer> {
            if framer == "lp" {
                Box::new(LengthPrefix::default())
            } else {
                Box::new(Delimiter::default())
            }
        };
        let mut b = Connection::new(Config::default(), mk(), Instant::ZERO).unwrap();
        let _ = b.poll_event();
        let mut f = mk();
        let whole = f.frame(bytes(b"whole")).unwrap();
        let cut = f.frame(bytes(b"truncated")).unwrap();
        let mut wire = [&whole.header[..], &whole.body[..], &whole.trailer[..]].concat();
        wire.extend_from_slice(&cut.header);
        wire.extend_from_slice(&cut.body[..4]);
        b.send(Instant::ZERO, MessageRef(5), bytes(b"unsent"), props(100))
            .unwrap();
        b.handle_input(Instant::ZERO, wire.into()).unwrap();
        b.handle_transport_closed(Instant::ZERO);
        assert_eq!(
            b.poll_event(),
            None,
            "waits for the whole message to be taken"
        );
        b.receive(usize::MAX, usize::MAX).unwrap();
        let evs = events(&mut b);
        assert_eq!(messages(&evs), [b"whole".to_vec()], "{framer}");
        assert!(evs.iter().any(|e| matches!(
            e,
            Event::ReceiveError {
                error: ReceiveError::Truncated { .. },
                ..
            }
        )));
        assert!(evs.contains(&Event::SendError {
            message: MessageRef(5),
            error: SendError::ConnectionFailed
        }));
        assert_eq!(
            evs.last(),
            Some(&Event::ConnectionError(ConnectionFailure::Truncated))
        );
        assert!(b.is_closed());
    }
    // Inside the length prefix itself.
    let mut b = Connection::new(
        Config::default(),
        Box::new(LengthPrefix::default()),
        Instant::ZERO,
    )
    .unwrap();
    let _ = b.poll_event();
    b.handle_input(Instant::ZERO, bytes(&[0, 0])).unwrap();
    b.handle_transport_closed(Instant::ZERO);
    let evs = events(&mut b);
    assert!(matches!(
        evs[..],
        [
            Event::ReceiveError {
                error: ReceiveError::Truncated { received: 0 },
                ..
            },
            Event::ConnectionError(ConnectionFailure::Truncated)
        ]
    ));
}

#[test]
fn a_final_message_ends_the_sending_side_and_the_peer_closes_cleanly() {
    for chunk in [1, 1 << 20] {
        let mut p = Pair::lp(chunk);
        let fin = MessageProperties {
            is_final: true,
            ..MessageProperties::default()
        };
        p.a.send(p.now, MessageRef(1), bytes(b"last words"), fin)
            .unwrap();
        assert_eq!(
            p.a.send(p.now, MessageRef(2), bytes(b"more"), props(100)),
            Err(SendError::AfterFinal)
        );
        p.b.receive(usize::MAX, usize::MAX).unwrap();
        p.pump();
        assert!(p.a.final_sent());
        assert_eq!(events(&mut p.a), [Event::Sent(MessageRef(1))]);
        assert_eq!(messages(&events(&mut p.b)), [b"last words".to_vec()]);
        // The peer answers and ends; both close.
        p.b.send(p.now, MessageRef(7), bytes(b"bye"), props(100))
            .unwrap();
        p.a.receive(usize::MAX, usize::MAX).unwrap();
        p.pump();
        p.a.handle_transport_closed(p.now);
        let evs = events(&mut p.a);
        assert_eq!(messages(&evs), [b"bye".to_vec()]);
        assert_eq!(evs.last(), Some(&Event::Closed));
    }
}

#[test]
fn a_peer_ending_cleanly_lets_queued_sends_finish_before_closed() {
    let mut p = Pair::lp(3);
    p.a.send(p.now, MessageRef(1), bytes(b"reply"), props(100))
        .unwrap();
    p.a.handle_transport_closed(p.now);
    assert_eq!(p.a.poll_event(), None, "Closed waits for the queue");
    assert_eq!(
        p.a.send(p.now, MessageRef(2), bytes(b"x"), props(100)),
        Err(SendError::Closing)
    );
    let mut w = Vec::new();
    while p.a.poll_transmit(&mut w).is_some() {}
    assert_eq!(
        events(&mut p.a),
        [Event::Sent(MessageRef(1)), Event::Closed]
    );
    assert!(p.a.is_closed());
}

#[test]
fn closed_waits_until_received_messages_are_taken() {
    let mut p = Pair::lp(1 << 20);
    p.a.send(p.now, MessageRef(1), bytes(b"m1"), props(100))
        .unwrap();
    p.a.send(p.now, MessageRef(2), bytes(b"m2"), props(100))
        .unwrap();
    p.pump();
    p.b.handle_transport_closed(p.now);
    assert_eq!(p.b.poll_event(), None);
    assert!(!p.b.is_closed());
    p.b.receive(usize::MAX, usize::MAX).unwrap();
    assert!(matches!(p.b.poll_event(), Some(Event::Received { .. })));
    assert_eq!(p.b.poll_event(), None);
    p.b.receive(usize::MAX, usize::MAX).unwrap();
    assert!(matches!(p.b.poll_event(), Some(Event::Received { .. })));
    assert_eq!(p.b.poll_event(), Some(Event::Closed));
    assert_eq!(p.b.receive(1, 1), Err(ReceiveRequestError::Closed));
}

#[test]
fn the_enclosing_layer_closing_is_a_connection_error() {
    let mut a = Connection::new(
        Config::default(),
        Box::new(LengthPrefix::default()),
        Instant::ZERO,
    )
    .unwrap();
    a.send(Instant::ZERO, MessageRef(1), bytes(b"x"), props(100))
        .unwrap();
    Machine::close(&mut a, Instant::ZERO, 7, b"handshake failed");
    assert_eq!(
        events(&mut a),
        [
            Event::Ready,
            Event::SendError {
                message: MessageRef(1),
                error: SendError::ConnectionFailed
            },
            Event::ConnectionError(ConnectionFailure::ClosedBelow { code: 7 }),
        ]
    );
}

/// Netstrings (`5:hello,`): a framer written outside the crate, with a
/// header, a body and a trailer.
#[derive(Default)]
struct Netstring {
    body_left: Option<usize>,
    trailer_due: bool,
}

impl Framer for Netstring {
    fn name(&self) -> &'static str {
        "netstring"
    }

    fn parse(&mut self, unread: &[u8]) -> Result<ParseStep, FramerError> {
        if self.trailer_due {
            return match unread.first() {
                None => Ok(ParseStep::ParseInput { min_bytes: 1 }),
                Some(b',') => {
                    self.trailer_due = false;
                    Ok(ParseStep::AdvanceReceiveCursor(1))
                }
                Some(_) => Err(FramerError::new("netstring", "missing ','")),
            };
        }
        match self.body_left {
            None => {
                let digits = unread.iter().take_while(|b| b.is_ascii_digit()).count();
                if digits > 6 {
                    return Err(FramerError::new("netstring", "length over 6 digits"));
                }
                match unread.get(digits) {
                    None => Ok(ParseStep::ParseInput {
                        min_bytes: unread.len() + 1,
                    }),
                    Some(b':') if digits > 0 => {
                        let n = std::str::from_utf8(&unread[..digits])
                            .unwrap()
                            .parse()
                            .unwrap();
                        self.body_left = Some(n);
                        Ok(ParseStep::AdvanceReceiveCursor(digits + 1))
                    }
                    Some(_) => Err(FramerError::new("netstring", "bad length")),
                }
            }
            Some(left) => {
                if left > 0 && unread.is_empty() {
                    return Ok(ParseStep::ParseInput { min_bytes: 1 });
                }
                let len = left.min(unread.len());
                let end = len == left;
                self.body_left = if end { None } else { Some(left - len) };
                self.trailer_due = end;
                Ok(ParseStep::DeliverAndAdvanceReceiveCursor {
                    len,
                    end_of_message: end,
                })
            }
        }
    }

    fn frame(&mut self, message: Bytes) -> Result<Framed, FramerError> {
        Ok(Framed {
            header: format!("{}:", message.len()).into_bytes().into(),
            body: message,
            trailer: Bytes::from_static(b","),
        })
    }

    fn at_message_boundary(&self, unread: &[u8]) -> bool {
        self.body_left.is_none() && !self.trailer_due && unread.is_empty()
    }
}

#[test]
fn a_custom_framer_plugs_in() {
    for chunk in [1, 4, 1 << 20] {
        let mut p = Pair::new(
            Config::default(),
            Box::new(Netstring::default()),
            Box::new(Netstring::default()),
            chunk,
        );
        let sent: Vec<Vec<u8>> = (0..7).map(sample).collect();
        for (i, m) in sent.iter().enumerate() {
            p.a.send(p.now, MessageRef(i as u64), bytes(m), props(100))
                .unwrap();
            p.b.receive(usize::MAX, usize::MAX).unwrap();
        }
        p.pump();
        assert_eq!(messages(&events(&mut p.b)), sent);
    }
    let mut b = Connection::new(
        Config::default(),
        Box::new(Netstring::default()),
        Instant::ZERO,
    )
    .unwrap();
    assert!(b.handle_input(Instant::ZERO, bytes(b"3:abc;")).is_err());
    let evs = events(&mut b);
    let Some(Event::ConnectionError(why)) = evs.last() else {
        panic!()
    };
    assert_eq!(why.to_string(), "framer netstring: missing ','");
}

#[test]
fn received_never_precedes_ready_and_nothing_follows_the_last_event() {
    let mut b = Connection::new(
        Config::default(),
        Box::new(LengthPrefix::default()),
        Instant::ZERO,
    )
    .unwrap();
    b.receive(usize::MAX, usize::MAX).unwrap();
    b.handle_input(Instant::ZERO, bytes(&[0, 0, 0, 1, b'x']))
        .unwrap();
    b.handle_transport_closed(Instant::ZERO);
    let evs = events(&mut b);
    assert_eq!(evs.first(), Some(&Event::Ready));
    assert!(matches!(evs[1], Event::Received { .. }));
    assert_eq!(evs.last(), Some(&Event::Closed));
    assert_eq!(evs.len(), 3);
    assert!(b.handle_input(Instant::ZERO, bytes(b"more")).is_err());
    b.soft_error(Instant::ZERO, "late");
    b.abort(Instant::ZERO);
    assert_eq!(b.poll_event(), None);
}
