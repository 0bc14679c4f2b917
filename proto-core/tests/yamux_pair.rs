//! Two connections speaking the yamux profile over the simulated pipe: what
//! the wire maps differently from the native profile (the shared behaviour
//! runs under both profiles in `mux_pair.rs`).

mod common;

use common::{cfg, opened, pump_read, Faults, Pair};
use proto_core::mux::yamux::{flags, Header, Type, HEADER_LEN};
use proto_core::mux::{
    CloseReason, Connection, Event, FlowId, OpenError, Profile, ReadError, Side, WriteError,
};
use proto_core::time::Instant;

fn pair(seed: u64) -> Pair {
    Pair::of(seed, Profile::Yamux)
}

fn headers(bytes: &[u8]) -> Vec<Header> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let h = Header::decode(rest).unwrap();
        let body = if h.ty == Type::Data {
            h.length as usize
        } else {
            0
        };
        rest = &rest[HEADER_LEN + body..];
        out.push(h);
    }
    out
}

#[test]
fn the_wire_is_yamux_with_client_odd_and_server_even_ids() {
    let now = Instant::ZERO;
    let mut a = Connection::new(cfg(Profile::Yamux), Side::Dialer, now).unwrap();
    let mut b = Connection::new(cfg(Profile::Yamux), Side::Acceptor, now).unwrap();
    let ids: Vec<u64> = (0..3).map(|_| a.open_flow().unwrap().0).collect();
    assert_eq!(ids, vec![1, 3, 5]);
    assert_eq!(b.open_flow().unwrap().0, 2);
    a.flow(FlowId(1)).write(b"hi").unwrap();
    a.flow(FlowId(1)).finish().unwrap();
    let mut wire = Vec::new();
    while a.poll_transmit(&mut wire).is_some() {}
    let hs = headers(&wire);
    // No preface: a PING (for the RTT), then the opens in id order.
    assert_eq!(
        (hs[0].ty, hs[0].flags, hs[0].stream),
        (Type::Ping, flags::SYN, 0)
    );
    assert_eq!(
        (hs[1].ty, hs[1].flags, hs[1].stream, hs[1].length),
        (Type::Data, flags::SYN | flags::FIN, 1, 2)
    );
    assert_eq!(&wire[2 * HEADER_LEN..2 * HEADER_LEN + 2], b"hi");
    assert!(hs[2..].iter().all(|h| h.has(flags::SYN)));
    b.handle_input(now, &wire).unwrap();
    let mut back = Vec::new();
    while b.poll_transmit(&mut back).is_some() {}
    let hs = headers(&back);
    // b answers the ping, opens its own stream, and acknowledges a's three.
    assert!(hs.iter().any(|h| h.ty == Type::Ping && h.has(flags::ACK)));
    let mut acked: Vec<u32> = hs
        .iter()
        .filter(|h| h.ty != Type::Ping && h.has(flags::ACK))
        .map(|h| h.stream)
        .collect();
    acked.sort();
    assert_eq!(acked, vec![1, 3, 5]);
}

#[test]
fn window_updates_are_deltas() {
    let mut p = pair(1);
    p.settle();
    let id = p.a.conn.open_flow().unwrap();
    let data = vec![5u8; 200 * 1024];
    let mut pos = 0;
    common::pump_write(&mut p.a.conn, id, &data, &mut pos);
    p.settle();
    let start = p.transcript.len();
    let mut got = Vec::new();
    assert_eq!(pump_read(&mut p.b.conn, id, &mut got), Ok(false));
    p.flush();
    let upd: Vec<Header> = headers(&p.transcript[start..])
        .into_iter()
        .filter(|h| h.ty == Type::WindowUpdate && h.stream == id.0 as u32)
        .collect();
    assert_eq!(upd.len(), 1, "{upd:?}");
    // The reader freed 200 KiB of a 256 KiB window (or more if it grew): the
    // delta restores the window, it is not an absolute offset.
    let window = p.b.conn.flow_stats(id).unwrap().recv_window;
    assert_eq!(u64::from(upd[0].length), 200 * 1024 + window - 256 * 1024);
}

#[test]
fn reset_carries_no_code_and_ends_both_directions() {
    let mut p = pair(2);
    let id = p.a.conn.open_flow().unwrap();
    p.a.conn.flow(id).write(b"partial").unwrap();
    p.settle();
    p.b.conn.flow(id).write(b"answer").unwrap();
    p.a.conn.flow(id).reset(42).unwrap();
    // a's own receive side ends with the RST: b's answer is dropped.
    let mut back = Vec::new();
    assert_eq!(
        pump_read(&mut p.a.conn, id, &mut back),
        Err(ReadError::Stopped)
    );
    p.settle();
    assert_eq!(p.b.conn.flow(id).write(b"x"), Err(WriteError::Stopped(0)));
    let mut got = Vec::new();
    assert_eq!(
        pump_read(&mut p.b.conn, id, &mut got),
        Err(ReadError::Reset(0))
    );
    assert_eq!(got, b"partial");
    assert!(back.is_empty());
    assert_eq!(p.a.conn.stats().recv_buffered, 0);
    p.settle();
    assert_eq!(p.a.conn.flow_ids().count(), 0);
    assert_eq!(p.b.conn.flow_ids().count(), 0);
}

#[test]
fn stop_sends_rst_so_the_writer_fails() {
    let mut p = pair(3);
    let id = p.a.conn.open_flow().unwrap();
    p.a.conn.flow(id).write(b"unwanted").unwrap();
    p.settle();
    p.b.conn.flow(id).stop(7).unwrap();
    assert_eq!(p.b.conn.stats().recv_buffered, 0);
    // b was still writing: the RST goes at once and ends b's sending too.
    assert_eq!(p.b.conn.flow(id).write(b"x"), Err(WriteError::Finished));
    p.settle();
    assert_eq!(
        p.a.conn.flow(id).write(b"more"),
        Err(WriteError::Stopped(0))
    );
}

#[test]
fn stop_after_finish_keeps_the_data_in_flight() {
    // A reader dropped after its writer finished (as adapters do) must not
    // abort the data still queued.
    let mut p = pair(11);
    let id = p.a.conn.open_flow().unwrap();
    p.a.conn.flow(id).write(b"hello").unwrap();
    p.settle();
    let data = vec![3u8; 600 * 1024]; // more than the peer's window
    assert_eq!(
        p.b.conn.flow(id).write(&data[..200 * 1024]).unwrap(),
        200 * 1024
    );
    p.b.conn.flow(id).finish().unwrap();
    p.b.conn.flow(id).stop(0).unwrap();
    let mut got = Vec::new();
    loop {
        p.step();
        if pump_read(&mut p.a.conn, id, &mut got).unwrap() {
            break;
        }
    }
    assert_eq!(got.len(), 200 * 1024);
    p.settle();
    // a read to the end, then b's RST ended a's sending: both forget it.
    assert_eq!(p.a.conn.flow(id).write(b"x"), Err(WriteError::UnknownFlow));
    assert_eq!(p.b.conn.flow_ids().count(), 0);
}

#[test]
fn unacknowledged_opens_make_the_opener_wait() {
    let mut ca = cfg(Profile::Yamux);
    ca.max_unacked_opens = 4;
    let mut p = Pair::with(4, ca, cfg(Profile::Yamux), Faults::default());
    p.settle();
    p.pause_b_reading(true); // b never sees the SYNs, so never ACKs
    for _ in 0..4 {
        p.a.conn.open_flow().unwrap();
    }
    assert_eq!(p.a.conn.open_flow(), Err(OpenError::FlowLimit));
    p.settle();
    assert_eq!(p.a.conn.open_flow(), Err(OpenError::FlowLimit));
    p.pause_b_reading(false);
    p.settle();
    assert!(p.take_events_a().contains(&Event::FlowCredit));
    assert!(p.a.conn.open_flow().is_ok());
}

#[test]
fn excess_opens_are_reset() {
    let mut cb = cfg(Profile::Yamux);
    cb.max_concurrent_flows = 64;
    let mut p = Pair::with(5, cfg(Profile::Yamux), cb, Faults::default());
    let ids: Vec<FlowId> = (0..70).map(|_| p.a.conn.open_flow().unwrap()).collect();
    for id in &ids {
        p.a.conn.flow(*id).write(b"x").unwrap();
    }
    p.settle();
    assert_eq!(opened(&p.take_events_b()).len(), 64);
    let mut sink = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let r = pump_read(&mut p.a.conn, *id, &mut sink);
        if i < 64 {
            assert_eq!(r, Ok(false), "{id}");
        } else {
            assert_eq!(r, Err(ReadError::Reset(0)), "{id}");
            assert_eq!(p.a.conn.flow(*id).write(b"y"), Err(WriteError::UnknownFlow));
        }
    }
    assert!(!p.a.conn.is_closed() && !p.b.conn.is_closed());
}

#[test]
fn goaway_drains_existing_flows_refuses_new_ones_then_closes() {
    let mut p = pair(6);
    let old = p.a.conn.open_flow().unwrap();
    p.a.conn.flow(old).write(b"before").unwrap();
    p.settle();
    p.b.conn.go_away(0);
    p.settle();
    assert_eq!(p.b.conn.open_flow(), Err(OpenError::GoingAway));
    // b's GoAway waits for the drain (rust-yamux would end the connection
    // on it): meanwhile a's new opens are refused with RST.
    let late = p.a.conn.open_flow().unwrap();
    p.a.conn.flow(late).write(b"too late").unwrap();
    p.settle();
    let mut sink = Vec::new();
    assert_eq!(
        pump_read(&mut p.a.conn, late, &mut sink),
        Err(ReadError::Reset(0))
    );
    assert!(!opened(&p.take_events_b()).contains(&late));
    // The flow that was open finishes normally.
    p.a.conn.flow(old).write(b" and after").unwrap();
    p.a.conn.flow(old).finish().unwrap();
    p.b.conn.flow(old).finish().unwrap();
    p.settle();
    let mut got = Vec::new();
    assert_eq!(pump_read(&mut p.b.conn, old, &mut got), Ok(true));
    assert_eq!(got, b"before and after");
    assert_eq!(pump_read(&mut p.a.conn, old, &mut sink), Ok(true));
    p.settle();
    assert!(p.b.conn.is_closed() && p.a.conn.is_closed());
    assert!(p
        .take_events_b()
        .contains(&Event::Closed(CloseReason::Drained)));
    assert!(p
        .take_events_a()
        .iter()
        .any(|e| matches!(e, Event::GoAway { code: 0, .. })));
}

#[test]
fn opens_after_our_goaway_are_reset() {
    let mut p = pair(7);
    p.settle();
    let keep = p.b.conn.open_flow().unwrap(); // keeps b draining, not closed
    p.b.conn.flow(keep).write(b"k").unwrap();
    p.settle();
    let late = p.a.conn.open_flow().unwrap();
    p.a.conn.flow(late).write(b"crossing").unwrap();
    p.b.conn.go_away(0);
    p.flush(); // a's open and b's GoAway cross on the wire
    p.settle();
    assert!(!opened(&p.take_events_b()).contains(&late));
    let mut sink = Vec::new();
    assert_eq!(
        pump_read(&mut p.a.conn, late, &mut sink),
        Err(ReadError::Reset(0))
    );
}

#[test]
fn close_reaches_the_peer_as_a_normal_goaway() {
    let mut p = pair(8);
    let id = p.a.conn.open_flow().unwrap();
    p.a.conn.flow(id).write(b"last words").unwrap();
    p.settle();
    p.a.conn
        .close(99, b"the code and reason are not on yamux's wire");
    p.settle();
    let evs = p.take_events_b();
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::GoAway { code: 0, .. })));
    // The transport then ends; what arrived stays readable.
    p.b.conn.handle_transport_closed(p.now);
    let mut got = Vec::new();
    assert_eq!(
        pump_read(&mut p.b.conn, id, &mut got),
        Err(ReadError::Closed)
    );
    assert_eq!(got, b"last words");
}

#[test]
fn a_side_channel_is_a_plain_stream_to_the_peer() {
    let mut p = pair(9);
    let side = p.a.conn.open_side_channel().unwrap();
    p.a.conn.flow(side).write(b"hb").unwrap();
    p.settle();
    assert!(p.take_events_b().contains(&Event::FlowOpened {
        id: side,
        side_channel: false
    }));
}
