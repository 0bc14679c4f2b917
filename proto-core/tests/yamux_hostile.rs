//! A hostile yamux peer, written frame by frame (the yamux twin of
//! `mux_hostile.rs`): every limit closes the connection with a clear error
//! and a GoAway(protocol error), never a panic or unbounded growth.

mod common;

use common::cfg;
use proto_core::mux::yamux::{flags, go_away, Header, Type, HEADER_LEN, INITIAL_WINDOW};
use proto_core::mux::{
    CloseReason, Config, Connection, ErrorCode, Event, FlowId, FramePart, InputError, Profile,
    ProtocolError, Side, TimerReason,
};
use proto_core::time::{Duration, Instant};

fn yamux() -> Config {
    cfg(Profile::Yamux)
}

fn hdr(w: &mut Vec<u8>, ty: Type, f: u16, stream: u32, length: u32) {
    w.extend_from_slice(
        &Header {
            ty,
            flags: f,
            stream,
            length,
        }
        .encode(),
    );
}

fn data(w: &mut Vec<u8>, f: u16, stream: u32, payload: &[u8]) {
    hdr(w, Type::Data, f, stream, payload.len() as u32);
    w.extend_from_slice(payload);
}

/// Everything `c` wants to send, decoded into headers (Data payloads skipped).
fn sent(c: &mut Connection) -> Vec<Header> {
    let mut out = Vec::new();
    while c.poll_transmit(&mut out).is_some() {}
    let mut frames = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let h = Header::decode(rest).expect("we sent a bad header");
        let body = if h.ty == Type::Data {
            h.length as usize
        } else {
            0
        };
        rest = &rest[HEADER_LEN + body..];
        frames.push(h);
    }
    frames
}

/// A yamux server (the acceptor) fed `w` at once.
fn feed(config: Config, w: &[u8]) -> (Result<(), InputError>, Connection) {
    let mut c = Connection::new(config, Side::Acceptor, Instant::ZERO).unwrap();
    let r = c.handle_input(Instant::ZERO, w);
    (r, c)
}

/// Checks the connection closed with `err` and sent GoAway(protocol error) last.
fn assert_closed(r: Result<(), InputError>, mut c: Connection, err: ProtocolError) {
    assert_eq!(r, Err(InputError::Protocol(err)));
    let frames = sent(&mut c);
    let last = frames.last().expect("nothing sent");
    assert_eq!(last.ty, Type::GoAway, "{frames:?}");
    assert_eq!(last.length, go_away::PROTOCOL_ERROR);
    assert_eq!(last.stream, 0);
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
fn bad_version() {
    let mut w = Header {
        ty: Type::Ping,
        flags: flags::SYN,
        stream: 0,
        length: 1,
    }
    .encode()
    .to_vec();
    w[0] = 1;
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::BadYamuxVersion(1));
}

#[test]
fn unknown_frame_type() {
    let mut w = vec![0u8; HEADER_LEN];
    w[1] = 9;
    let (r, c) = feed(yamux(), &w);
    let e = ProtocolError::UnknownFrameType(9);
    assert_eq!(e.to_string(), "unknown frame type 0x09");
    assert_closed(r, c, e);
}

#[test]
fn a_native_peer_is_rejected() {
    let (r, c) = feed(yamux(), b"WEFTMUX1\x01\x00\x00\x00");
    assert_closed(r, c, ProtocolError::BadYamuxVersion(b'W'));
}

#[test]
fn oversized_data_frame() {
    let mut w = Vec::new();
    let max = yamux().max_flow_window as u32;
    hdr(&mut w, Type::Data, flags::SYN, 1, max + 1);
    let (r, c) = feed(yamux(), &w);
    assert_closed(
        r,
        c,
        ProtocolError::FrameTooLarge {
            len: u64::from(max) + 1,
            max: u64::from(max),
        },
    );
}

#[test]
fn one_frame_may_fill_the_whole_window() {
    // hashicorp's yamux sends a window's worth in one frame.
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 1, &vec![7u8; INITIAL_WINDOW as usize]);
    let (r, c) = feed(yamux(), &w);
    assert_eq!(r, Ok(()));
    assert_eq!(c.stats().recv_buffered, u64::from(INITIAL_WINDOW));
}

#[test]
fn data_beyond_the_stream_window() {
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 1, &vec![0u8; INITIAL_WINDOW as usize]);
    data(&mut w, 0, 1, b"x");
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::FlowControl);
}

#[test]
fn window_overflow() {
    let mut c = Connection::new(yamux(), Side::Acceptor, Instant::ZERO).unwrap();
    let id = c.open_flow().unwrap();
    assert_eq!(id.0, 2, "the server's first stream");
    let _ = sent(&mut c);
    let mut w = Vec::new();
    hdr(&mut w, Type::WindowUpdate, flags::ACK, 2, u32::MAX);
    let r = c.handle_input(Instant::ZERO, &w);
    assert_closed(r, c, ProtocolError::BadCredit);
}

#[test]
fn wrong_parity_open() {
    let mut w = Vec::new();
    hdr(&mut w, Type::WindowUpdate, flags::SYN, 2, 0);
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::BadFlowId(2));
}

#[test]
fn stream_frame_on_the_session_id() {
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 0, b"x");
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::BadFlowId(0));
}

#[test]
fn ping_on_a_stream_id() {
    let mut w = Vec::new();
    hdr(&mut w, Type::Ping, flags::SYN, 1, 7);
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::BadFlowId(1));
}

#[test]
fn ping_without_syn_or_ack() {
    let mut w = Vec::new();
    hdr(&mut w, Type::Ping, 0, 0, 7);
    let (r, c) = feed(yamux(), &w);
    assert_closed(
        r,
        c,
        ProtocolError::Malformed("yamux ping without SYN or ACK"),
    );
}

#[test]
fn reused_id_while_open() {
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 1, b"a");
    data(&mut w, flags::SYN, 1, b"b");
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::BadFlowId(1));
}

#[test]
fn reused_id_after_close() {
    let mut c = Connection::new(yamux(), Side::Acceptor, Instant::ZERO).unwrap();
    let mut w = Vec::new();
    data(&mut w, flags::SYN | flags::FIN, 1, b"a");
    c.handle_input(Instant::ZERO, &w).unwrap();
    let id = proto_core::mux::FlowId(1);
    let mut buf = [0u8; 4];
    assert_eq!(c.flow(id).read(&mut buf), Ok(1));
    assert_eq!(c.flow(id).read(&mut buf), Ok(0));
    c.flow(id).finish().unwrap();
    let _ = sent(&mut c);
    assert_eq!(c.flow_ids().count(), 0, "both directions ended");
    // Late frames for the closed stream are dropped, as rust-yamux does.
    let mut late = Vec::new();
    hdr(&mut late, Type::WindowUpdate, 0, 1, 1000);
    c.handle_input(Instant::ZERO, &late).unwrap();
    let mut again = Vec::new();
    data(&mut again, flags::SYN, 1, b"b");
    let r = c.handle_input(Instant::ZERO, &again);
    assert_closed(r, c, ProtocolError::BadFlowId(1));
}

#[test]
fn out_of_order_opens_are_accepted_once() {
    // rust-yamux sends SYN with a stream's first frame: 5 may precede 1 and 3.
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 5, b"five");
    data(&mut w, flags::SYN, 1, b"one");
    // 3 was dropped unused by the peer: a bare RST spends the id.
    data(&mut w, flags::RST, 3, b"");
    let (r, mut c) = feed(yamux(), &w);
    assert_eq!(r, Ok(()));
    let ids: Vec<u64> = c.flow_ids().map(|id| id.0).collect();
    assert_eq!(ids, vec![1, 5]);
    let mut again = Vec::new();
    data(&mut again, flags::SYN, 3, b"three");
    let r = c.handle_input(Instant::ZERO, &again);
    assert_closed(r, c, ProtocolError::BadFlowId(3));
}

#[test]
fn a_bare_fin_on_a_fresh_id_opens_an_empty_stream() {
    // rust-yamux closes a stream it never wrote to with FIN and no SYN.
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 3, b"three");
    data(&mut w, flags::FIN, 1, b"");
    data(&mut w, flags::FIN, 5, b"");
    let (r, mut c) = feed(yamux(), &w);
    assert_eq!(r, Ok(()));
    let ids: Vec<u64> = c.flow_ids().map(|id| id.0).collect();
    assert_eq!(ids, vec![1, 3, 5]);
    for id in [1, 5] {
        assert_eq!(
            c.flow(proto_core::mux::FlowId(id)).read(&mut [0u8; 4]),
            Ok(0)
        );
    }
    let acked: Vec<u32> = sent(&mut c)
        .iter()
        .filter(|h| h.has(flags::ACK))
        .map(|h| h.stream)
        .collect();
    assert_eq!(acked, vec![3, 1, 5]);
}

#[test]
fn too_many_skipped_ids() {
    let mut w = Vec::new();
    let skip = 2 * (yamux().max_concurrent_flows as u32 + 1);
    data(&mut w, flags::SYN, 1 + skip, b"");
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::BadFlowId(u64::from(1 + skip)));
}

#[test]
fn data_for_a_stream_we_never_opened() {
    let mut w = Vec::new();
    data(&mut w, 0, 2, b"x");
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::BadFlowId(2));
}

#[test]
fn data_after_fin() {
    let mut w = Vec::new();
    data(&mut w, flags::SYN | flags::FIN, 1, b"done");
    data(&mut w, 0, 1, b"more");
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::FinalSize);
}

#[test]
fn excess_opens_are_reset_not_fatal() {
    let mut config = yamux();
    config.max_concurrent_flows = 64;
    let mut w = Vec::new();
    for i in 0..70u32 {
        data(&mut w, flags::SYN, 1 + 2 * i, b"hi");
    }
    let (r, mut c) = feed(config, &w);
    assert_eq!(r, Ok(()));
    assert_eq!(c.flow_ids().count(), 64);
    let frames = sent(&mut c);
    let rst: Vec<u32> = frames
        .iter()
        .filter(|h| h.has(flags::RST))
        .map(|h| h.stream)
        .collect();
    assert_eq!(rst, (64..70u32).map(|i| 1 + 2 * i).collect::<Vec<_>>());
    // Every accepted stream is acknowledged at once.
    let acked = frames.iter().filter(|h| h.has(flags::ACK)).count();
    assert_eq!(acked, 64);
}

#[test]
fn syn_flood() {
    // Opens beyond the limit are refused with RST, each from the refusal
    // bucket (256 at once by default): one more in the same write is a
    // flood with its own code, not a reset flood or a full queue.
    let mut config = yamux();
    config.max_concurrent_flows = 64;
    let mut w = Vec::new();
    let n = 64 + config.refused_open_burst + 1;
    for i in 0..n {
        hdr(&mut w, Type::WindowUpdate, flags::SYN, 1 + 2 * i, 0);
    }
    let (r, c) = feed(config.clone(), &w);
    let e = ProtocolError::OpenFlood {
        rate: config.max_refused_opens_per_sec,
        burst: config.refused_open_burst,
    };
    assert_eq!(e.code(), ErrorCode::OpenFlood);
    assert_eq!(
        e.to_string(),
        "refused-open rate 100/s (burst 256) exceeded"
    );
    assert_closed(r, c, e);
}

#[test]
fn a_burst_of_refused_opens_within_the_bucket_is_answered() {
    let mut config = yamux();
    config.max_concurrent_flows = 64;
    let mut w = Vec::new();
    let n = 64 + config.refused_open_burst;
    for i in 0..n {
        hdr(&mut w, Type::WindowUpdate, flags::SYN, 1 + 2 * i, 0);
    }
    let (r, mut c) = feed(config.clone(), &w);
    assert_eq!(r, Ok(()));
    let rst = sent(&mut c).iter().filter(|h| h.has(flags::RST)).count();
    assert_eq!(rst, config.refused_open_burst as usize);
}

#[test]
fn rst_flood() {
    let mut config = yamux();
    config.max_resets_per_sec = 5;
    config.reset_burst = 5;
    let mut w = Vec::new();
    for i in 0..=config.max_resets_per_sec {
        data(&mut w, flags::SYN | flags::RST, 1 + 2 * i, b"");
    }
    let (r, c) = feed(config, &w);
    let e = ProtocolError::ResetFlood { rate: 5, burst: 5 };
    assert_eq!(e.code(), ErrorCode::ResetFlood);
    assert_closed(r, c, e);
}

#[test]
fn resets_spread_over_time_are_fine() {
    let mut config = yamux();
    config.max_resets_per_sec = 5;
    let mut c = Connection::new(config.clone(), Side::Acceptor, Instant::ZERO).unwrap();
    let mut next = 1u32;
    for sec in 0..5u64 {
        let now = Instant::ZERO + Duration::from_secs(sec);
        let mut w = Vec::new();
        for _ in 0..config.max_resets_per_sec {
            data(&mut w, flags::SYN | flags::RST, next, b"");
            next += 2;
        }
        assert_eq!(c.handle_input(now, &w), Ok(()));
        let _ = sent(&mut c);
        // Reading the resets frees the streams.
        for id in c.flow_ids().collect::<Vec<_>>() {
            assert_eq!(
                c.flow(id).read(&mut [0u8; 8]),
                Err(proto_core::mux::ReadError::Reset(0))
            );
        }
    }
    assert_eq!(c.flow_ids().count(), 0);
}

#[test]
fn ping_flood() {
    let mut config = yamux();
    config.max_pings_per_sec = 5;
    config.ping_burst = 5;
    let mut w = Vec::new();
    for i in 0..=config.max_pings_per_sec {
        hdr(&mut w, Type::Ping, flags::SYN, 0, i);
    }
    let (r, c) = feed(config, &w);
    let e = ProtocolError::PingFlood { rate: 5, burst: 5 };
    assert_eq!(e.code(), ErrorCode::PingFlood);
    assert_closed(r, c, e);
}

/// `n` pings in one write from a peer that reads: each gets its answer.
fn ping_burst_is_answered(n: u32) {
    let mut w = Vec::new();
    for i in 0..n {
        hdr(&mut w, Type::Ping, flags::SYN, 0, 1000 + i);
    }
    let (r, mut c) = feed(yamux(), &w);
    assert_eq!(r, Ok(()));
    let pongs: Vec<u32> = sent(&mut c)
        .iter()
        .filter(|h| h.ty == Type::Ping && h.has(flags::ACK))
        .map(|h| h.length)
        .collect();
    assert_eq!(pongs, (1000..1000 + n).collect::<Vec<_>>());
}

#[test]
fn a_burst_of_65_pings_in_one_write_is_answered() {
    ping_burst_is_answered(yamux().max_queued_control as u32 + 1);
}

#[test]
fn a_burst_of_256_pings_in_one_write_is_answered() {
    ping_burst_is_answered(yamux().ping_burst);
}

#[test]
fn pongs_pile_up_while_the_peer_does_not_read() {
    // A ping per input, nothing flushed: earlier pongs wait, the limit bites.
    let mut config = yamux();
    config.max_queued_control = 3;
    let mut c = Connection::new(config, Side::Acceptor, Instant::ZERO).unwrap();
    let _ = sent(&mut c);
    let mut r = Ok(());
    let mut inputs = 0;
    for i in 0..10 {
        let mut w = Vec::new();
        hdr(&mut w, Type::Ping, flags::SYN, 0, i);
        r = c.handle_input(Instant::ZERO, &w);
        if r.is_err() {
            break;
        }
        inputs += 1;
    }
    assert_eq!(inputs, 3);
    let e = ProtocolError::ControlQueueFull(3);
    assert_eq!(e.code(), ErrorCode::ControlQueueFull);
    assert_closed(r, c, e);
}

#[test]
fn ping_is_answered_with_the_same_value() {
    let mut w = Vec::new();
    hdr(&mut w, Type::Ping, flags::SYN, 0, 0xdead_beef);
    let (r, mut c) = feed(yamux(), &w);
    assert_eq!(r, Ok(()));
    let pong = sent(&mut c)
        .into_iter()
        .find(|h| h.ty == Type::Ping && h.has(flags::ACK))
        .expect("no pong");
    assert_eq!((pong.stream, pong.length), (0, 0xdead_beef));
}

#[test]
fn goaway_with_an_error_code_closes() {
    let mut w = Vec::new();
    hdr(&mut w, Type::GoAway, 0, 0, go_away::INTERNAL_ERROR);
    let (r, mut c) = feed(yamux(), &w);
    assert_eq!(r, Ok(()));
    assert!(c.is_closed());
    let evs: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(evs.contains(&Event::Closed(CloseReason::Transport {
        code: ErrorCode::Internal,
        reason: Vec::new()
    })));
}

#[test]
fn goaway_on_a_stream_id() {
    let mut w = Vec::new();
    hdr(&mut w, Type::GoAway, 0, 1, go_away::NORMAL);
    let (r, c) = feed(yamux(), &w);
    assert_closed(r, c, ProtocolError::BadFlowId(1));
}

#[test]
fn byte_by_byte_input_decodes_the_same() {
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 1, b"hello");
    hdr(&mut w, Type::Ping, flags::SYN, 0, 3);
    data(&mut w, flags::SYN | flags::FIN, 3, &[9u8; 5000]);
    hdr(&mut w, Type::WindowUpdate, flags::FIN, 1, 0);
    let (r, mut whole) = feed(yamux(), &w);
    assert_eq!(r, Ok(()));
    let mut bytewise = Connection::new(yamux(), Side::Acceptor, Instant::ZERO).unwrap();
    for b in &w {
        bytewise.handle_input(Instant::ZERO, &[*b]).unwrap();
    }
    assert_eq!(sent(&mut whole), sent(&mut bytewise));
    let evs = |c: &mut Connection| std::iter::from_fn(|| c.poll_event()).collect::<Vec<_>>();
    assert_eq!(evs(&mut whole), evs(&mut bytewise));
    assert_eq!(whole.stats().recv_buffered, 5005);
}

#[test]
fn junk_for_unknown_streams_is_bounded() {
    // Data for streams the peer never opened (or that are gone) is counted
    // and dropped: nothing is buffered however much arrives.
    let mut c = Connection::new(yamux(), Side::Acceptor, Instant::ZERO).unwrap();
    let mut w = Vec::new();
    data(&mut w, flags::SYN | flags::RST, 1, b"");
    c.handle_input(Instant::ZERO, &w).unwrap();
    let id = proto_core::mux::FlowId(1);
    assert!(c.flow(id).read(&mut [0u8; 8]).is_err());
    assert_eq!(c.flow_ids().count(), 0);
    let chunk = vec![1u8; 64 * 1024];
    for _ in 0..200 {
        let mut w = Vec::new();
        data(&mut w, 0, 1, &chunk);
        c.handle_input(Instant::ZERO, &w).unwrap();
    }
    assert_eq!(c.stats().recv_buffered, 0);
    assert!(!c.is_closed());
}

/// A yamux server that got `w` and then the end of the stream: why it closed.
fn ended_after(w: &[u8]) -> CloseReason {
    let (r, mut c) = feed(yamux(), w);
    assert_eq!(r, Ok(()));
    c.handle_transport_closed(Instant::ZERO);
    std::iter::from_fn(|| c.poll_event())
        .find_map(|e| match e {
            Event::Closed(why) => Some(why),
            _ => None,
        })
        .expect("no Closed event")
}

#[test]
fn the_stream_ending_inside_a_header_is_a_truncated_frame() {
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 1, b"hi");
    hdr(&mut w, Type::Ping, flags::SYN, 0, 7);
    w.truncate(w.len() - 5);
    assert_eq!(
        ended_after(&w),
        CloseReason::TruncatedFrame {
            part: FramePart::Head,
            received: 7,
            missing: Some(5),
        }
    );
}

#[test]
fn the_stream_ending_inside_a_payload_is_a_truncated_frame() {
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 1, &[3u8; 1000]);
    w.truncate(w.len() - 1);
    assert_eq!(
        ended_after(&w),
        CloseReason::TruncatedFrame {
            part: FramePart::Payload,
            received: 999,
            missing: Some(1),
        }
    );
}

#[test]
fn the_stream_ending_between_frames_is_a_clean_end() {
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 1, b"hi");
    assert_eq!(ended_after(&w), CloseReason::TransportEnded);
    assert_eq!(ended_after(&[]), CloseReason::TransportEnded);
}

#[test]
fn output_nobody_takes_closes_with_goaway_internal_despite_pings() {
    let mut w = Vec::new();
    data(&mut w, flags::SYN, 1, b"hi");
    let (r, mut c) = feed(yamux(), &w);
    assert_eq!(r, Ok(()));
    let _ = sent(&mut c);
    c.flow(FlowId(1)).write(&[5u8; 50_000]).unwrap();
    let secs = |s: u64| Instant::ZERO + Duration::from_secs(s);
    for t in 1..=40u64 {
        if c.poll_timeout().is_some_and(|(d, _)| d <= secs(t)) {
            c.handle_timeout(secs(t));
        }
        if c.is_closed() {
            break;
        }
        let mut w = Vec::new();
        hdr(&mut w, Type::Ping, flags::SYN, 0, t as u32);
        c.handle_input(secs(t), &w).unwrap();
    }
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout().map(|(_, r)| r), None::<TimerReason>);
    let evs: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        evs.contains(&Event::Closed(CloseReason::SendStall)),
        "{evs:?}"
    );
    // yamux's GoAway has three codes: a stall is ours, not the peer's
    // protocol error.
    let last = *sent(&mut c).last().unwrap();
    assert_eq!(
        (last.ty, last.length),
        (Type::GoAway, go_away::INTERNAL_ERROR)
    );
}
