//! A hostile peer, written frame by frame: every limit closes the connection
//! with a clear error and the right code, never a panic or unbounded growth.

use proto_core::mux::frame::{
    decode_head, encode_control, encode_data_header, Control, DataHeader, Head, PREFACE,
};
use proto_core::mux::{
    initial, CloseReason, Config, Connection, ErrorCode, Event, FlowId, FramePart, InputError,
    ProtocolError, Side, TimerReason,
};
use proto_core::time::{Duration, Instant};

fn wire() -> Vec<u8> {
    PREFACE.to_vec()
}

fn control(w: &mut Vec<u8>, c: Control<'_>) {
    encode_control(w, &c);
}

fn data(w: &mut Vec<u8>, flow: u64, payload: &[u8], fin: bool) {
    encode_data_header(
        w,
        &DataHeader {
            flow,
            len: payload.len() as u64,
            fin,
            side_channel: false,
        },
    );
    w.extend_from_slice(payload);
}

/// An acceptor fed `w` at once; returns the error and what it sent back.
fn feed(config: Config, w: &[u8]) -> (Result<(), InputError>, Connection) {
    let mut c = Connection::new(config, Side::Acceptor, Instant::ZERO).unwrap();
    let r = c.handle_input(Instant::ZERO, w);
    (r, c)
}

/// A control frame or DATA header as the peer decodes it (payloads skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Control(Control<'static>),
    Data(DataHeader),
}

/// Everything `c` wants to send, decoded frame by frame after its preface.
fn sent(c: &mut Connection) -> Vec<Sent> {
    let mut out = Vec::new();
    while c.poll_transmit(&mut out).is_some() {}
    let mut rest: &[u8] = &out;
    if rest.starts_with(PREFACE) {
        rest = &rest[PREFACE.len()..];
    }
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (head, n) = decode_head(rest, usize::MAX).expect("we sent a bad frame");
        let (frame, skip) = match head {
            // Leaked: a test's few frames, so they can outlive `out`.
            Head::Control(c) => (Sent::Control(leak(c)), 0),
            Head::Data(h) => (Sent::Data(h), h.len as usize),
        };
        frames.push(frame);
        rest = &rest[n + skip..];
    }
    frames
}

fn leak(c: Control<'_>) -> Control<'static> {
    match c {
        Control::ConnectionClose { code, reason } => Control::ConnectionClose {
            code,
            reason: reason.to_vec().leak(),
        },
        Control::ApplicationClose { code, reason } => Control::ApplicationClose {
            code,
            reason: reason.to_vec().leak(),
        },
        Control::Ping(v) => Control::Ping(v),
        Control::Pong(v) => Control::Pong(v),
        Control::MaxData(v) => Control::MaxData(v),
        Control::MaxFlowData { flow, max } => Control::MaxFlowData { flow, max },
        Control::MaxFlows(v) => Control::MaxFlows(v),
        Control::ResetFlow {
            flow,
            code,
            final_size,
        } => Control::ResetFlow {
            flow,
            code,
            final_size,
        },
        Control::StopSending { flow, code } => Control::StopSending { flow, code },
        Control::GoAway {
            accepted_below,
            code,
        } => Control::GoAway {
            accepted_below,
            code,
        },
        _ => unreachable!("a control frame this test does not know"),
    }
}

/// The CONNECTION_CLOSE `c` sends last: its code and reason.
fn close_sent(c: &mut Connection) -> (u64, Vec<u8>) {
    match sent(c).pop() {
        Some(Sent::Control(Control::ConnectionClose { code, reason })) => (code, reason.to_vec()),
        other => panic!("last frame is not CONNECTION_CLOSE: {other:?}"),
    }
}

/// The values PONGs carried, in order.
fn pongs(frames: &[Sent]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| match f {
            Sent::Control(Control::Pong(v)) => Some(*v),
            _ => None,
        })
        .collect()
}

/// Checks the connection closed with `err`, told the peer `code`, and gave
/// as reason the error's text (cut to `max_close_reason`), the same text
/// the API reports.
fn assert_closed(
    r: Result<(), InputError>,
    mut c: Connection,
    err: ProtocolError,
    code: ErrorCode,
) {
    assert_eq!(r, Err(InputError::Protocol(err)));
    assert_eq!(err.code(), code);
    let text = err.to_string();
    let cut = text.len().min(c.config().max_close_reason);
    assert_eq!(
        close_sent(&mut c),
        (code.to_wire(), text.as_bytes()[..cut].to_vec())
    );
    let mut closed = false;
    while let Some(ev) = c.poll_event() {
        if ev == Event::Closed(CloseReason::ProtocolError(err)) {
            closed = true;
        }
    }
    assert!(closed);
    assert_eq!(
        c.handle_input(Instant::ZERO, b"more"),
        Err(InputError::Closed)
    );
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn wrong_preface() {
    let (r, c) = feed(Config::default(), b"GET / HTTP/1.1\r\n");
    assert_closed(
        r,
        c,
        ProtocolError::BadPreface,
        ErrorCode::ProtocolViolation,
    );
}

#[test]
fn unknown_frame_type() {
    let mut w = wire();
    w.push(0x3f);
    let (r, c) = feed(Config::default(), &w);
    let e = ProtocolError::UnknownFrameType(0x3f);
    assert_eq!(e.to_string(), "unknown frame type 0x3f");
    assert_closed(r, c, e, ErrorCode::ProtocolViolation);
}

#[test]
fn oversized_data_frame() {
    let mut w = wire();
    let cfg = Config::default();
    encode_data_header(
        &mut w,
        &DataHeader {
            flow: 0,
            len: cfg.max_frame_payload + 1,
            fin: false,
            side_channel: false,
        },
    );
    let (r, c) = feed(cfg.clone(), &w);
    assert_closed(
        r,
        c,
        ProtocolError::FrameTooLarge {
            len: cfg.max_frame_payload + 1,
            max: cfg.max_frame_payload,
        },
        ErrorCode::FrameSize,
    );
}

#[test]
fn data_beyond_the_flow_window() {
    let mut w = wire();
    let chunk = vec![0u8; 16 * 1024];
    for _ in 0..initial::FLOW_WINDOW / chunk.len() as u64 {
        data(&mut w, 0, &chunk, false);
    }
    data(&mut w, 0, b"x", false);
    let (r, c) = feed(Config::default(), &w);
    assert_closed(r, c, ProtocolError::FlowControl, ErrorCode::FlowControl);
}

#[test]
fn data_beyond_the_connection_window() {
    // Many flows, each within its own window, together beyond the budget.
    let mut cfg = Config::default();
    cfg.conn_recv_budget = initial::CONN_WINDOW;
    let mut w = wire();
    let chunk = vec![0u8; 16 * 1024];
    let mut flow = 0;
    let mut sent = 0;
    while sent <= initial::CONN_WINDOW {
        for _ in 0..8 {
            data(&mut w, flow, &chunk, false);
            sent += chunk.len() as u64;
        }
        flow += 2;
    }
    let (r, c) = feed(cfg, &w);
    assert_closed(r, c, ProtocolError::FlowControl, ErrorCode::FlowControl);
}

#[test]
fn more_flows_than_granted() {
    let mut w = wire();
    for i in 0..=initial::MAX_FLOWS {
        data(&mut w, i * 2, b"", false);
    }
    let mut cfg = Config::default();
    cfg.max_concurrent_flows = initial::MAX_FLOWS;
    let (r, c) = feed(cfg, &w);
    let e = ProtocolError::FlowLimit(initial::MAX_FLOWS);
    assert_eq!(e.to_string(), "flow limit 64 exceeded");
    assert_closed(r, c, e, ErrorCode::FlowLimit);
}

#[test]
fn skipped_flow_id() {
    let mut w = wire();
    data(&mut w, 4, b"x", false);
    let (r, c) = feed(Config::default(), &w);
    assert_closed(
        r,
        c,
        ProtocolError::BadFlowId(4),
        ErrorCode::ProtocolViolation,
    );
}

#[test]
fn data_on_a_flow_we_never_opened() {
    let mut w = wire();
    data(&mut w, 1, b"x", false); // odd: an acceptor's id
    let (r, c) = feed(Config::default(), &w);
    assert_closed(
        r,
        c,
        ProtocolError::BadFlowId(1),
        ErrorCode::ProtocolViolation,
    );
}

#[test]
fn credit_for_a_flow_never_opened() {
    let mut w = wire();
    control(
        &mut w,
        Control::MaxFlowData {
            flow: 9,
            max: 1 << 20,
        },
    );
    let (r, c) = feed(Config::default(), &w);
    assert_closed(
        r,
        c,
        ProtocolError::BadFlowId(9),
        ErrorCode::ProtocolViolation,
    );
}

#[test]
fn data_after_fin() {
    let mut w = wire();
    data(&mut w, 0, b"abc", true);
    data(&mut w, 0, b"d", false);
    let (r, c) = feed(Config::default(), &w);
    assert_closed(r, c, ProtocolError::FinalSize, ErrorCode::FinalSize);
}

#[test]
fn reset_with_a_wrong_final_size() {
    let mut w = wire();
    data(&mut w, 0, b"abc", false);
    control(
        &mut w,
        Control::ResetFlow {
            flow: 0,
            code: 1,
            final_size: 2,
        },
    );
    let (r, c) = feed(Config::default(), &w);
    assert_closed(r, c, ProtocolError::FinalSize, ErrorCode::FinalSize);
}

#[test]
fn reset_flood() {
    // Open-and-reset as fast as possible ("rapid reset").
    let mut cfg = Config::default();
    cfg.max_resets_per_sec = 10;
    cfg.reset_burst = 10;
    let mut w = wire();
    for i in 0..11 {
        data(&mut w, i * 2, b"", false);
        control(
            &mut w,
            Control::ResetFlow {
                flow: i * 2,
                code: 0,
                final_size: 0,
            },
        );
    }
    let (r, c) = feed(cfg, &w);
    let e = ProtocolError::ResetFlood {
        rate: 10,
        burst: 10,
    };
    assert_eq!(e.to_string(), "reset rate 10/s (burst 10) exceeded");
    assert_closed(r, c, e, ErrorCode::ResetFlood);
}

#[test]
fn a_sustained_reset_flood_is_caught_after_the_burst() {
    // Default buckets: 1000 at once pass, then 1000/s. 200 open-and-reset
    // pairs every 100 ms is 2000/s: the bucket loses 100 a round. (Flow
    // credit for all those opens, so only the resets can end it.)
    let mut cfg = Config::default();
    cfg.max_concurrent_flows = 4096;
    let mut c = Connection::new(cfg.clone(), Side::Acceptor, Instant::ZERO).unwrap();
    c.handle_input(Instant::ZERO, PREFACE).unwrap();
    let mut flow = 0;
    let mut result = Ok(());
    let mut rounds = 0;
    for round in 0..100u64 {
        let mut w = Vec::new();
        for _ in 0..200 {
            data(&mut w, flow, b"", false);
            control(
                &mut w,
                Control::ResetFlow {
                    flow,
                    code: 0,
                    final_size: 0,
                },
            );
            flow += 2;
        }
        let now = Instant::ZERO + Duration::from_millis(100 * round);
        result = c.handle_input(now, &w);
        rounds = round;
        if result.is_err() {
            break;
        }
        let _ = sent(&mut c);
    }
    // 1000 + 100 per round of credit against 200 a round.
    assert_eq!(rounds, 9);
    let e = ProtocolError::ResetFlood {
        rate: cfg.max_resets_per_sec,
        burst: cfg.reset_burst,
    };
    assert_closed(result, c, e, ErrorCode::ResetFlood);
}

#[test]
fn resets_spread_over_time_are_fine() {
    let mut cfg = Config::default();
    cfg.max_resets_per_sec = 10;
    let mut c = Connection::new(cfg, Side::Acceptor, Instant::ZERO).unwrap();
    c.handle_input(Instant::ZERO, PREFACE).unwrap();
    for i in 0..30u64 {
        let mut w = Vec::new();
        data(&mut w, i * 2, b"", false);
        control(
            &mut w,
            Control::ResetFlow {
                flow: i * 2,
                code: 0,
                final_size: 0,
            },
        );
        let now = Instant::ZERO + Duration::from_millis(200 * i);
        c.handle_input(now, &w).unwrap();
        let mut out = Vec::new();
        while c.poll_transmit(&mut out).is_some() {}
    }
}

#[test]
fn ping_flood() {
    let mut cfg = Config::default();
    cfg.max_pings_per_sec = 5;
    cfg.ping_burst = 5;
    let mut w = wire();
    for i in 0..6 {
        control(&mut w, Control::Ping(i));
    }
    let (r, c) = feed(cfg, &w);
    let e = ProtocolError::PingFlood { rate: 5, burst: 5 };
    assert_closed(r, c, e, ErrorCode::PingFlood);
}

/// `n` PINGs in one write from a peer that reads: every one gets its PONG.
fn ping_burst_is_answered(n: u64) {
    let mut c = Connection::new(Config::default(), Side::Acceptor, Instant::ZERO).unwrap();
    let _ = sent(&mut c);
    let mut w = wire();
    for i in 0..n {
        control(&mut w, Control::Ping(1000 + i));
    }
    assert_eq!(c.handle_input(Instant::ZERO, &w), Ok(()));
    assert_eq!(pongs(&sent(&mut c)), (1000..1000 + n).collect::<Vec<_>>());
    assert!(!c.is_closed());
}

#[test]
fn a_burst_of_65_pings_in_one_write_is_answered() {
    // One more than max_queued_control: the queue limit is for a peer
    // that does not read, not for one write.
    ping_burst_is_answered(Config::default().max_queued_control as u64 + 1);
}

#[test]
fn a_burst_of_256_pings_in_one_write_is_answered() {
    ping_burst_is_answered(u64::from(Config::default().ping_burst));
}

#[test]
fn a_sustained_ping_flood_closes_with_the_ping_code() {
    // 50 PINGs every 100 ms (500/s) against 100/s and a burst of 256, from
    // a peer that reads every PONG: the bucket loses 40 a round.
    let cfg = Config::default();
    let mut c = Connection::new(cfg.clone(), Side::Acceptor, Instant::ZERO).unwrap();
    c.handle_input(Instant::ZERO, PREFACE).unwrap();
    let mut result = Ok(());
    let mut answered = 0;
    for round in 0..100u64 {
        let mut w = Vec::new();
        for i in 0..50 {
            control(&mut w, Control::Ping(round * 50 + i));
        }
        let now = Instant::ZERO + Duration::from_millis(100 * round);
        result = c.handle_input(now, &w);
        if result.is_err() {
            break;
        }
        answered += pongs(&sent(&mut c)).len();
    }
    // 256 + 10 a round against 50 a round: round 6 runs dry.
    assert_eq!(answered, 300);
    let e = ProtocolError::PingFlood {
        rate: 100,
        burst: 256,
    };
    assert_eq!(e.to_string(), "ping rate 100/s (burst 256) exceeded");
    assert_closed(result, c, e, ErrorCode::PingFlood);
}

#[test]
fn pings_at_the_sustained_rate_never_close() {
    let mut c = Connection::new(Config::default(), Side::Acceptor, Instant::ZERO).unwrap();
    c.handle_input(Instant::ZERO, PREFACE).unwrap();
    for round in 0..600u64 {
        let mut w = Vec::new();
        for i in 0..10 {
            control(&mut w, Control::Ping(i));
        }
        let now = Instant::ZERO + Duration::from_millis(100 * round);
        assert_eq!(c.handle_input(now, &w), Ok(()), "round {round}");
        assert_eq!(pongs(&sent(&mut c)).len(), 10);
    }
}

#[test]
fn pongs_pile_up_while_the_peer_does_not_read() {
    // One PING per input and nothing flushed in between: from the second
    // input on, PONGs from earlier inputs wait, and the limit applies.
    let mut cfg = Config::default();
    cfg.max_queued_control = 4;
    let mut c = Connection::new(cfg, Side::Acceptor, Instant::ZERO).unwrap();
    let _ = sent(&mut c);
    c.handle_input(Instant::ZERO, PREFACE).unwrap();
    let mut r = Ok(());
    let mut inputs = 0;
    for i in 0..10 {
        let mut w = Vec::new();
        control(&mut w, Control::Ping(i));
        r = c.handle_input(Instant::ZERO, &w);
        if r.is_err() {
            break;
        }
        inputs += 1;
    }
    assert_eq!(inputs, 4);
    let e = ProtocolError::ControlQueueFull(4);
    assert_closed(r, c, e, ErrorCode::ControlQueueFull);
}

#[test]
fn a_burst_after_a_flushed_one_is_fine() {
    // Two bursts past max_queued_control, flushed in between: the peer
    // reads, so neither counts against the queue limit.
    let mut cfg = Config::default();
    cfg.max_queued_control = 4;
    let mut c = Connection::new(cfg, Side::Acceptor, Instant::ZERO).unwrap();
    c.handle_input(Instant::ZERO, PREFACE).unwrap();
    let _ = sent(&mut c);
    for burst in 0..2 {
        let mut w = Vec::new();
        for i in 0..20 {
            control(&mut w, Control::Ping(burst * 20 + i));
        }
        assert_eq!(c.handle_input(Instant::ZERO, &w), Ok(()));
        assert_eq!(pongs(&sent(&mut c)).len(), 20);
    }
}

#[test]
fn close_reason_too_long() {
    let mut w = wire();
    control(
        &mut w,
        Control::ConnectionClose {
            code: 0,
            reason: &[b'x'; 5000],
        },
    );
    let (r, c) = feed(Config::default(), &w);
    let e = ProtocolError::CloseReasonTooLong {
        len: 5000,
        max: 1024,
    };
    assert_eq!(
        e.to_string(),
        "close reason of 5000 bytes exceeds max_close_reason 1024"
    );
    assert_closed(r, c, e, ErrorCode::ProtocolViolation);
}

#[test]
fn our_reason_text_is_cut_at_max_close_reason() {
    let mut cfg = Config::default();
    cfg.max_close_reason = 8;
    let mut w = wire();
    control(
        &mut w,
        Control::ConnectionClose {
            code: 0,
            reason: b"way too long a reason",
        },
    );
    let (r, mut c) = feed(cfg, &w);
    let e = ProtocolError::CloseReasonTooLong { len: 21, max: 8 };
    assert_eq!(r, Err(InputError::Protocol(e)));
    assert_eq!(close_sent(&mut c), (1, b"close re".to_vec()));
}

#[test]
fn each_protocol_violation_names_its_cause() {
    // Same code, different reasons: the peer's log says which rule broke.
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"WEFTMUX2".to_vec(), "peer did not send the mux preface"),
        ([&PREFACE[..], &[0x20]].concat(), "unknown frame type 0x20"),
        (
            {
                let mut w = wire();
                data(&mut w, 6, b"x", false);
                w
            },
            "frame names flow 6, which the peer may not use",
        ),
        (
            {
                let mut w = wire();
                control(&mut w, Control::MaxFlows(1 << 61));
                w
            },
            "credit frame out of range",
        ),
    ];
    for (w, text) in cases {
        let (r, mut c) = feed(Config::default(), &w);
        let Err(InputError::Protocol(e)) = r else {
            panic!("{text}: {r:?}");
        };
        assert_eq!(e.to_string(), text);
        assert_eq!(close_sent(&mut c), (1, text.as_bytes().to_vec()));
    }
}

#[test]
fn huge_flow_credit() {
    let mut w = wire();
    control(&mut w, Control::MaxFlows(1 << 61));
    let (r, c) = feed(Config::default(), &w);
    assert_closed(r, c, ProtocolError::BadCredit, ErrorCode::ProtocolViolation);
}

#[test]
fn byte_by_byte_input_decodes_the_same() {
    let mut w = wire();
    data(&mut w, 0, b"hello", false);
    control(&mut w, Control::Ping(300));
    control(
        &mut w,
        Control::ApplicationClose {
            code: 5,
            reason: b"bye",
        },
    );
    let mut c = Connection::new(Config::default(), Side::Acceptor, Instant::ZERO).unwrap();
    for b in &w {
        c.handle_input(Instant::ZERO, std::slice::from_ref(b))
            .unwrap();
    }
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.contains(&Event::Closed(CloseReason::Application {
        code: 5,
        reason: b"bye".to_vec()
    })));
    let mut buf = [0u8; 8];
    assert_eq!(c.flow(proto_core::mux::FlowId(0)).read(&mut buf), Ok(5));
}

#[test]
fn tiny_frames_cannot_inflate_memory() {
    // 1-byte DATA frames on many flows, never read: what is held stays
    // within the receive budget (counted in payload bytes), and the heap
    // overhead per byte is bounded because small payloads are coalesced.
    let mut cfg = Config::default();
    cfg.conn_recv_budget = initial::CONN_WINDOW;
    let mut c = Connection::new(cfg.clone(), Side::Acceptor, Instant::ZERO).unwrap();
    c.handle_input(Instant::ZERO, PREFACE).unwrap();
    let mut total = 0u64;
    'outer: for round in 0..100_000u64 {
        let mut w = Vec::new();
        for f in 0..initial::MAX_FLOWS {
            data(&mut w, f * 2, &[round as u8], false);
        }
        let bytes = bytes::Bytes::from(w);
        match c.handle_input_bytes(Instant::ZERO, bytes) {
            Ok(()) => total += initial::MAX_FLOWS,
            Err(e) => {
                assert_eq!(e, InputError::Protocol(ProtocolError::FlowControl));
                break 'outer;
            }
        }
        while c.poll_event().is_some() {}
        let s = c.stats();
        assert!(s.recv_buffered <= cfg.conn_recv_budget);
    }
    assert!(total <= cfg.conn_recv_budget);
}

// ----------------------------------------------------------- truncated frames

/// An acceptor that got `w` and then the end of the stream: why it closed.
fn ended_after(w: &[u8]) -> CloseReason {
    let mut c = Connection::new(Config::default(), Side::Acceptor, Instant::ZERO).unwrap();
    c.handle_input(Instant::ZERO, w).unwrap();
    c.handle_transport_closed(Instant::ZERO);
    let closed = std::iter::from_fn(|| c.poll_event()).find_map(|e| match e {
        Event::Closed(why) => Some(why),
        _ => None,
    });
    closed.expect("no Closed event")
}

#[test]
fn the_stream_ending_inside_a_frame_head_is_a_truncated_frame() {
    let mut w = wire();
    control(
        &mut w,
        Control::ResetFlow {
            flow: 0,
            code: 1 << 40,
            final_size: 0,
        },
    );
    w.truncate(w.len() - 3);
    assert_eq!(
        ended_after(&w),
        CloseReason::TruncatedFrame {
            part: FramePart::Head,
            received: 8,
            missing: None,
        }
    );
}

#[test]
fn the_stream_ending_inside_a_payload_is_a_truncated_frame() {
    let mut w = wire();
    data(&mut w, 0, &[7u8; 100], false);
    w.truncate(w.len() - 40);
    assert_eq!(
        ended_after(&w),
        CloseReason::TruncatedFrame {
            part: FramePart::Payload,
            received: 60,
            missing: Some(40),
        }
    );
}

#[test]
fn the_stream_ending_inside_the_preface_is_a_truncated_frame() {
    assert_eq!(
        ended_after(b"WEFT"),
        CloseReason::TruncatedFrame {
            part: FramePart::Preface,
            received: 4,
            missing: Some(4),
        }
    );
}

#[test]
fn the_stream_ending_between_frames_is_a_clean_end() {
    let mut w = wire();
    data(&mut w, 0, b"hello", true);
    control(&mut w, Control::Ping(1));
    assert_eq!(ended_after(&w), CloseReason::TransportEnded);
    assert_eq!(ended_after(&wire()), CloseReason::TransportEnded);
    // Nothing at all: the peer connected and left.
    let mut c = Connection::new(Config::default(), Side::Acceptor, Instant::ZERO).unwrap();
    c.handle_transport_closed(Instant::ZERO);
    let evs: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(evs.contains(&Event::Closed(CloseReason::TransportEnded)));
}

// ---------------------------------------------------------------- send stall

fn secs(s: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(s)
}

/// An acceptor whose peer opened flow 0 (and granted the initial credit),
/// everything sent so far taken.
fn with_peer_flow() -> Connection {
    let mut c = Connection::new(Config::default(), Side::Acceptor, Instant::ZERO).unwrap();
    let mut w = wire();
    data(&mut w, 0, b"hi", false);
    c.handle_input(Instant::ZERO, &w).unwrap();
    let _ = sent(&mut c);
    while c.poll_event().is_some() {}
    c
}

/// One PING from the peer at `now`; fires the timer first if it is due,
/// as a driver does.
fn ping_at(c: &mut Connection, now: Instant, v: u64) {
    if c.poll_timeout().is_some_and(|(t, _)| t <= now) {
        c.handle_timeout(now);
    }
    if c.is_closed() {
        return;
    }
    let mut w = Vec::new();
    control(&mut w, Control::Ping(v));
    c.handle_input(now, &w).unwrap();
}

#[test]
fn output_nobody_takes_closes_the_connection_despite_pings() {
    let mut c = with_peer_flow();
    // Data with credit to send, and a driver that never takes it (its
    // queue to the transport is full: the peer does not read).
    c.flow(FlowId(0)).write(&[1u8; 100_000]).unwrap();
    for t in 1..=30 {
        ping_at(&mut c, secs(t), t);
        assert!(!c.is_closed(), "closed at {t} s");
    }
    // The first input after the write saw it waiting: 1 s + 30 s.
    assert_eq!(c.poll_timeout(), Some((secs(31), TimerReason::SendStall)));
    ping_at(&mut c, secs(31), 31);
    assert!(c.is_closed());
    let evs: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        evs.contains(&Event::Closed(CloseReason::SendStall)),
        "{evs:?}"
    );
    let (code, reason) = close_sent(&mut c);
    assert_eq!(ErrorCode::from_wire(code), ErrorCode::SendStall);
    assert_eq!(
        reason,
        b"send stalled: no output taken for send_stall_timeout 30s"
    );
}

#[test]
fn output_that_is_taken_never_stalls() {
    let mut c = with_peer_flow();
    for t in 1..=120 {
        c.flow(FlowId(0)).write(&[1u8; 1000]).unwrap();
        ping_at(&mut c, secs(t), t);
        let _ = sent(&mut c);
        assert!(!c.is_closed(), "closed at {t} s");
    }
}

#[test]
fn data_waiting_for_flow_credit_is_not_a_stall() {
    let mut c = with_peer_flow();
    // More than the peer's 256 KiB of flow credit: the rest waits for
    // credit the peer withholds, which is its backpressure, not a stall.
    let mut written = 0;
    while written < 300_000 {
        match c.flow(FlowId(0)).write(&[1u8; 16_384]) {
            Ok(n) => written += n,
            Err(_) => {
                let _ = sent(&mut c);
            }
        }
    }
    let _ = sent(&mut c);
    assert!(c.stats().send_buffered > 0);
    assert!(!c.wants_transmit());
    // The peer keeps talking (PONGs for nothing: no output owed) and the
    // driver is never asked for more.
    for t in 1..=120 {
        if c.poll_timeout().is_some_and(|(d, _)| d <= secs(t)) {
            c.handle_timeout(secs(t));
        }
        let mut w = Vec::new();
        control(&mut w, Control::Pong(12345));
        c.handle_input(secs(t), &w).unwrap();
        assert!(!c.is_closed(), "closed at {t} s");
        assert_ne!(
            c.poll_timeout().map(|(_, r)| r),
            Some(TimerReason::SendStall)
        );
    }
}
