//! A hostile peer, written frame by frame: every limit closes the connection
//! with a clear error and the right code, never a panic or unbounded growth.

use proto_core::mux::frame::{encode_control, encode_data_header, Control, DataHeader, PREFACE};
use proto_core::mux::{
    initial, CloseReason, Config, Connection, ErrorCode, Event, InputError, ProtocolError, Side,
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

/// Checks the connection closed with `err` and told the peer `code`.
fn assert_closed(
    r: Result<(), InputError>,
    mut c: Connection,
    err: ProtocolError,
    code: ErrorCode,
) {
    assert_eq!(r, Err(InputError::Protocol(err)));
    assert_eq!(err.code(), code);
    let mut out = Vec::new();
    while c.poll_transmit(&mut out).is_some() {}
    // The last frame is CONNECTION_CLOSE with the code.
    let close_at = out
        .windows(1)
        .rposition(|w| w[0] == 0x0a)
        .expect("no CONNECTION_CLOSE");
    assert_eq!(out[close_at + 1] as u64, code.to_wire());
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
    assert_closed(
        r,
        c,
        ProtocolError::Malformed("unknown frame type"),
        ErrorCode::ProtocolViolation,
    );
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
        ProtocolError::FrameTooLarge(cfg.max_frame_payload + 1),
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
    assert_closed(r, c, ProtocolError::FlowLimit, ErrorCode::FlowLimit);
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
    assert_closed(r, c, ProtocolError::ResetFlood, ErrorCode::EnhanceYourCalm);
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
    let mut w = wire();
    for i in 0..6 {
        control(&mut w, Control::Ping(i));
    }
    let (r, c) = feed(cfg, &w);
    assert_closed(r, c, ProtocolError::PingFlood, ErrorCode::EnhanceYourCalm);
}

#[test]
fn pongs_pile_up_while_the_peer_does_not_read() {
    let mut cfg = Config::default();
    cfg.max_queued_control = 4;
    let mut c = Connection::new(cfg, Side::Acceptor, Instant::ZERO).unwrap();
    let mut out = Vec::new();
    while c.poll_transmit(&mut out).is_some() {}
    let mut w = wire();
    for i in 0..5 {
        control(&mut w, Control::Ping(i));
    }
    let r = c.handle_input(Instant::ZERO, &w);
    assert_closed(
        r,
        c,
        ProtocolError::ControlQueueFull,
        ErrorCode::EnhanceYourCalm,
    );
}

#[test]
fn close_reason_too_long() {
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
    let (r, c) = feed(cfg, &w);
    assert_closed(
        r,
        c,
        ProtocolError::Malformed("close reason too long"),
        ErrorCode::ProtocolViolation,
    );
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
