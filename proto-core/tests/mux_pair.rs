//! Two mux connections over the simulated pipe: behaviour a user relies on.

mod common;

use common::{cfg, opened, pattern, pump_read, pump_write, reset_code, Faults, Pair};
use proto_core::mux::{
    initial, CloseReason, Config, Event, FlowId, OpenError, Profile, ReadError, WriteError, REFUSED,
};
use proto_core::time::{Duration, Instant};
use std::collections::BTreeMap;

/// Moves `sizes[i]` bytes from a to b on flow i, under the pair's faults,
/// checking every byte; returns the flows' ids on b.
fn transfer(pair: &mut Pair, sizes: &[usize]) {
    // Open as the peer's flow credit allows.
    let mut ids: Vec<FlowId> = Vec::new();
    while ids.len() < sizes.len() {
        match pair.a.conn.open_flow() {
            Ok(id) => ids.push(id),
            Err(OpenError::FlowLimit) => {
                pair.step();
            }
            Err(e) => panic!("open: {e}"),
        }
    }
    let data: Vec<Vec<u8>> = ids
        .iter()
        .zip(sizes)
        .map(|(id, &n)| pattern(id.0, 0, n))
        .collect();
    let mut pos = vec![0usize; ids.len()];
    let mut fin = vec![false; ids.len()];
    let mut got: BTreeMap<FlowId, Vec<u8>> = BTreeMap::new();
    let mut done: BTreeMap<FlowId, bool> = BTreeMap::new();
    for _ in 0..200_000 {
        for (i, id) in ids.iter().enumerate() {
            pump_write(&mut pair.a.conn, *id, &data[i], &mut pos[i]);
            if pos[i] == data[i].len() && !fin[i] {
                pair.a.conn.flow(*id).finish().unwrap();
                fin[i] = true;
            }
        }
        pair.step();
        for id in opened(&pair.take_events_b()) {
            got.insert(id, Vec::new());
        }
        for (id, buf) in got.iter_mut() {
            if !done.get(id).copied().unwrap_or(false) {
                let end = pump_read(&mut pair.b.conn, *id, buf).unwrap();
                done.insert(*id, end);
            }
        }
        if done.len() == ids.len() && done.values().all(|d| *d) {
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(got[id].len(), sizes[i], "flow {id} length");
                assert!(got[id] == data[i], "flow {id} content");
            }
            return;
        }
    }
    panic!("transfer did not complete");
}

fn one_flow_bulk_survives_rechunking_and_grows_its_window(p: Profile) {
    let faults = Faults {
        max_chunk: 3000,
        delay: (100_000, 2_000_000),
        ..Faults::default()
    };
    let mut pair = Pair::with(1, cfg(p), cfg(p), faults);
    // Let the first PING measure the RTT.
    pair.settle();
    assert!(pair.a.conn.smoothed_rtt().is_some());
    let id = pair.a.conn.open_flow().unwrap();
    let data = pattern(id.0, 0, 8 << 20);
    let mut pos = 0;
    let mut got = Vec::new();
    let mut max_window = 0;
    pair.settle(); // b learns of the flow
    loop {
        pump_write(&mut pair.a.conn, id, &data, &mut pos);
        if pos == data.len() {
            let _ = pair.a.conn.flow(id).finish();
        }
        pair.step();
        if let Some(s) = pair.b.conn.flow_stats(id) {
            max_window = max_window.max(s.recv_window);
        }
        if pump_read(&mut pair.b.conn, id, &mut got).unwrap() {
            break;
        }
    }
    assert!(got == data);
    assert!(
        max_window > initial::FLOW_WINDOW,
        "window never grew: {max_window}"
    );
}

fn hundred_flows_of_mixed_sizes_arrive_intact(p: Profile) {
    let faults = Faults {
        max_chunk: 5000,
        delay: (10_000, 500_000),
        pipe_capacity: 256 * 1024,
    };
    let mut pair = Pair::with(2, cfg(p), cfg(p), faults);
    let sizes: Vec<usize> = (0..100)
        .map(|i| match i % 4 {
            0 => 0,
            1 => 1 + i * 37,
            2 => 70_000 + i,
            _ => 300_000 + i * 1000,
        })
        .collect();
    transfer(&mut pair, &sizes);
}

fn a_small_flow_is_not_starved_by_a_big_one(p: Profile) {
    let mut small_transmit = cfg(p);
    small_transmit.max_transmit = small_transmit.send_chunk + 64; // one chunk per poll: see the order
    let mut pair = Pair::with(3, small_transmit, cfg(p), Faults::default());
    let big = pair.a.conn.open_flow().unwrap();
    let small = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(small).write(b"+").unwrap();
    pair.settle(); // both flows announced, windows granted
    let big_data = pattern(1, 0, 1 << 20);
    let mut big_pos = 0;
    pump_write(&mut pair.a.conn, big, &big_data, &mut big_pos);
    assert!(big_pos >= 128 * 1024, "the big flow has plenty queued");
    pair.a.conn.flow(small).write(b"ping").unwrap();
    // Count the big flow's bytes that go out before the small flow's.
    let before = pair.a.conn.flow_stats(big).unwrap().bytes_sent;
    let mut out = Vec::new();
    while pair.a.conn.flow_stats(small).unwrap().bytes_sent < 5 {
        out.clear();
        assert!(pair.a.conn.poll_transmit(&mut out).is_some());
    }
    let waited = pair.a.conn.flow_stats(big).unwrap().bytes_sent - before;
    assert!(
        waited <= 2 * cfg(p).send_chunk as u64,
        "small flow waited for {waited} bytes of the big one"
    );
}

fn half_close_works_in_each_direction(p: Profile) {
    let mut pair = Pair::of(4, p);
    let id = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(id).write(b"request").unwrap();
    pair.a.conn.flow(id).finish().unwrap();
    pair.settle();
    let mut got = Vec::new();
    assert_eq!(pump_read(&mut pair.b.conn, id, &mut got), Ok(true));
    assert_eq!(got, b"request");
    // b can still answer on the half-closed flow.
    pair.b.conn.flow(id).write(b"response").unwrap();
    pair.settle();
    let mut back = Vec::new();
    assert_eq!(pump_read(&mut pair.a.conn, id, &mut back), Ok(false));
    assert_eq!(back, b"response");
    // a's send side is finished.
    assert_eq!(pair.a.conn.flow(id).write(b"x"), Err(WriteError::Finished));
    pair.b.conn.flow(id).finish().unwrap();
    pair.settle();
    assert_eq!(pump_read(&mut pair.a.conn, id, &mut back), Ok(true));
    // Both directions done: both sides forget the flow.
    pair.settle();
    assert!(pair.take_events_a().contains(&Event::FlowClosed(id)));
    assert!(pair.take_events_b().contains(&Event::FlowClosed(id)));
    assert_eq!(pair.a.conn.stats().flows_open, 0);
    assert_eq!(pair.b.conn.stats().flows_open, 0);
}

#[test]
fn reset_delivers_buffered_data_then_the_code() {
    let mut pair = Pair::new(5);
    let id = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(id).write(b"partial").unwrap();
    pair.settle();
    pair.a.conn.flow(id).reset(42).unwrap();
    pair.settle();
    let mut got = Vec::new();
    assert_eq!(
        pump_read(&mut pair.b.conn, id, &mut got),
        Err(ReadError::Reset(42))
    );
    assert_eq!(got, b"partial");
    assert_eq!(
        pair.a.conn.flow(id).write(b"more"),
        Err(WriteError::Finished)
    );
}

#[test]
fn stop_makes_the_writer_fail_with_the_code() {
    let mut pair = Pair::new(6);
    let id = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(id).write(b"unwanted").unwrap();
    pair.settle();
    pair.b.conn.flow(id).stop(7).unwrap();
    pair.settle();
    assert_eq!(
        pair.a.conn.flow(id).write(b"more"),
        Err(WriteError::Stopped(7))
    );
    // The discarded bytes no longer count against the connection.
    assert_eq!(pair.b.conn.stats().recv_buffered, 0);
}

fn a_reader_that_stops_holds_memory_flat_then_recovers(p: Profile) {
    let faults = Faults {
        pipe_capacity: 128 * 1024,
        ..Faults::default()
    };
    let mut pair = Pair::with(7, cfg(p), cfg(p), faults);
    pair.settle();
    let id = pair.a.conn.open_flow().unwrap();
    let data = pattern(9, 0, 64 << 20);
    let mut pos = 0;
    // b's application never reads: a must block, nothing grows without bound.
    for _ in 0..2000 {
        pump_write(&mut pair.a.conn, id, &data, &mut pos);
        pair.step();
    }
    let cfg = cfg(p);
    let sa = pair.a.conn.flow_stats(id).unwrap();
    let sb = pair.b.conn.flow_stats(id).unwrap();
    assert!(sa.send_buffered as usize <= cfg.flow_send_buffer);
    assert!(sb.bytes_received - sb.bytes_read <= sb.recv_window);
    assert!(pos < data.len(), "writer was never blocked");
    assert_eq!(pair.a.conn.flow(id).write(b"x"), Err(WriteError::Blocked));
    // Now read: everything flows again, and the writer is told it may write.
    let mut got = Vec::new();
    let _ = pump_read(&mut pair.b.conn, id, &mut got);
    pair.settle();
    assert!(pair.take_events_a().contains(&Event::Writable(id)));
    for _ in 0..1_000_000 {
        pump_write(&mut pair.a.conn, id, &data, &mut pos);
        if pos == data.len() {
            let _ = pair.a.conn.flow(id).finish();
        }
        pair.step();
        if pump_read(&mut pair.b.conn, id, &mut got).unwrap() {
            break;
        }
    }
    assert!(got == data);
}

fn both_sides_blocked_on_writes_still_read(p: Profile) {
    let faults = Faults {
        pipe_capacity: 64 * 1024,
        ..Faults::default()
    };
    let mut pair = Pair::with(8, cfg(p), cfg(p), faults);
    let id = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(id).write(b"hi").unwrap();
    pair.settle();
    let a_data = pattern(1, 0, 6 << 20);
    let b_data = pattern(2, 0, 6 << 20);
    let (mut pa, mut pb) = (0, 0);
    let (mut ga, mut gb) = (Vec::new(), b"hi".to_vec());
    let mut hi = Vec::new();
    let _ = pump_read(&mut pair.b.conn, id, &mut hi);
    gb.clear();
    let (mut fa, mut fb) = (false, false);
    for _ in 0..1_000_000 {
        // Each side writes all it can before it reads anything.
        pump_write(&mut pair.a.conn, id, &a_data, &mut pa);
        pump_write(&mut pair.b.conn, id, &b_data, &mut pb);
        if pa == a_data.len() {
            let _ = pair.a.conn.flow(id).finish();
        }
        if pb == b_data.len() {
            let _ = pair.b.conn.flow(id).finish();
        }
        pair.step();
        fa = fa || pump_read(&mut pair.a.conn, id, &mut ga).unwrap();
        fb = fb || pump_read(&mut pair.b.conn, id, &mut gb).unwrap();
        if fa && fb {
            break;
        }
    }
    assert!(ga == b_data && gb == a_data);
}

#[test]
fn flow_credit_makes_the_opener_wait_instead_of_failing() {
    let mut cfg = Config::default();
    cfg.max_concurrent_flows = initial::MAX_FLOWS;
    let mut pair = Pair::with(9, Config::default(), cfg, Faults::default());
    let ids: Vec<FlowId> = (0..initial::MAX_FLOWS)
        .map(|_| pair.a.conn.open_flow().unwrap())
        .collect();
    assert_eq!(pair.a.conn.open_flow(), Err(OpenError::FlowLimit));
    for id in &ids {
        pair.a.conn.flow(*id).finish().unwrap();
    }
    pair.settle();
    // b finishes and reads one flow: it is forgotten and its credit returns.
    let first = ids[0];
    pair.b.conn.flow(first).finish().unwrap();
    let mut sink = Vec::new();
    assert_eq!(pump_read(&mut pair.b.conn, first, &mut sink), Ok(true));
    pair.settle();
    let mut a_sink = Vec::new();
    assert_eq!(pump_read(&mut pair.a.conn, first, &mut a_sink), Ok(true));
    pair.settle();
    assert!(pair.take_events_a().contains(&Event::FlowCredit));
    assert!(pair.a.conn.open_flow().is_ok());
    assert_eq!(pair.a.conn.open_flow(), Err(OpenError::FlowLimit));
}

fn ping_measures_the_round_trip(p: Profile) {
    let faults = Faults {
        delay: (10_000_000, 10_000_000),
        ..Faults::default()
    };
    let mut pair = Pair::with(10, cfg(p), cfg(p), faults);
    pair.settle();
    pair.take_events_a();
    pair.a.conn.ping().unwrap();
    pair.settle();
    let rtts: Vec<Duration> = pair
        .take_events_a()
        .into_iter()
        .filter_map(|e| match e {
            Event::Rtt { rtt, .. } => Some(rtt),
            _ => None,
        })
        .collect();
    assert_eq!(rtts, vec![Duration::from_millis(20)]);
    assert_eq!(pair.a.conn.stats().rtt, Some(Duration::from_millis(20)));
}

fn keepalive_keeps_a_quiet_connection_open_and_silence_closes_it(p: Profile) {
    let mut pair = Pair::of(11, p);
    pair.advance(Duration::from_secs(300));
    assert!(!pair.a.conn.is_closed() && !pair.b.conn.is_closed());
    let cut_at = pair.now;
    pair.cut();
    pair.advance(Duration::from_secs(60));
    let closed = |evs: Vec<Event>| evs.contains(&Event::Closed(CloseReason::ChannelTimeout));
    assert!(closed(pair.take_events_a()));
    assert!(closed(pair.take_events_b()));
    assert!(pair.now >= cut_at + cfg(p).channel_timeout.unwrap());
}

#[test]
fn idle_timeout_ignores_side_channels() {
    let mut cfg = Config::default();
    cfg.idle_timeout = Some(Duration::from_secs(10));
    let mut pair = Pair::with(12, cfg.clone(), cfg, Faults::default());
    let side = pair.a.conn.open_side_channel().unwrap();
    pair.a.conn.flow(side).write(b"hb").unwrap();
    let regular = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(regular).write(b"work").unwrap();
    pair.settle();
    assert!(pair
        .take_events_b()
        .iter()
        .any(|e| matches!(e, Event::FlowOpened { id, side_channel: true } if *id == side)));
    pair.advance(Duration::from_secs(20));
    assert!(!pair.a.conn.is_closed(), "a regular flow is open");
    pair.a.conn.flow(regular).finish().unwrap();
    pair.b.conn.flow(regular).finish().unwrap();
    pair.settle();
    let mut sink = Vec::new();
    assert_eq!(pump_read(&mut pair.a.conn, regular, &mut sink), Ok(true));
    assert_eq!(pump_read(&mut pair.b.conn, regular, &mut sink), Ok(true));
    pair.advance(Duration::from_secs(11));
    assert!(pair.a.conn.is_closed(), "only a side channel is left");
    assert!(pair
        .take_events_a()
        .contains(&Event::Closed(CloseReason::Idle)));
}

#[test]
fn goaway_drains_existing_flows_refuses_new_ones_then_closes() {
    let mut pair = Pair::new(13);
    let old = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(old).write(b"before").unwrap();
    pair.settle();
    // b drains while a's next open is already in flight.
    let late = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(late).write(b"too late").unwrap();
    pair.b.conn.go_away(0);
    pair.flush(); // a's open and b's GOAWAY cross on the wire
    pair.settle();
    assert_eq!(pair.b.conn.open_flow(), Err(OpenError::GoingAway));
    assert_eq!(pair.a.conn.open_flow(), Err(OpenError::GoingAway));
    assert!(pair
        .take_events_a()
        .iter()
        .any(|e| matches!(e, Event::GoAway { accepted_below, .. } if *accepted_below == late.0)));
    let mut sink = Vec::new();
    assert_eq!(
        pair.a.conn.flow(late).write(b"x"),
        Err(WriteError::Stopped(REFUSED))
    );
    assert_eq!(
        pump_read(&mut pair.a.conn, late, &mut sink),
        Err(ReadError::Reset(REFUSED))
    );
    assert!(!opened(&pair.take_events_b()).contains(&late));
    // The old flow finishes normally.
    pair.a.conn.flow(old).write(b" and after").unwrap();
    pair.a.conn.flow(old).finish().unwrap();
    pair.b.conn.flow(old).finish().unwrap();
    pair.settle();
    let mut got = Vec::new();
    assert_eq!(pump_read(&mut pair.b.conn, old, &mut got), Ok(true));
    assert_eq!(got, b"before and after");
    assert_eq!(pump_read(&mut pair.a.conn, old, &mut sink), Ok(true));
    pair.settle();
    assert!(pair.a.conn.is_closed() && pair.b.conn.is_closed());
    assert!(pair
        .take_events_b()
        .contains(&Event::Closed(CloseReason::Drained)));
}

fn a_drain_that_never_finishes_times_out(p: Profile) {
    let mut pair = Pair::of(14, p);
    let id = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(id).write(b"never finished").unwrap();
    pair.settle();
    pair.b.conn.go_away(0);
    pair.advance(cfg(p).drain_timeout + Duration::from_secs(1));
    assert!(pair
        .take_events_b()
        .contains(&Event::Closed(CloseReason::DrainTimeout)));
}

#[test]
fn close_carries_code_and_reason_and_keeps_received_data() {
    let mut pair = Pair::new(15);
    let id = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(id).write(b"last words").unwrap();
    pair.settle();
    pair.a.conn.flow(id).write(b" never sent").unwrap();
    pair.a.conn.close(99, b"shutting down");
    pair.settle();
    assert!(pair
        .take_events_b()
        .contains(&Event::Closed(CloseReason::Application {
            code: 99,
            reason: b"shutting down".to_vec()
        })));
    // Close drops unsent data; what had arrived stays readable.
    let mut got = Vec::new();
    assert_eq!(
        pump_read(&mut pair.b.conn, id, &mut got),
        Err(ReadError::Closed)
    );
    assert_eq!(got, b"last words");
    assert_eq!(pair.a.conn.flow(id).write(b"x"), Err(WriteError::Closed));
    assert_eq!(pair.a.conn.open_flow(), Err(OpenError::Closed));
}

fn transport_end_keeps_buffered_data_readable(p: Profile) {
    let mut pair = Pair::of(16, p);
    let id = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(id).write(b"buffered").unwrap();
    pair.settle();
    pair.b.conn.handle_transport_closed(pair.now);
    pair.flush();
    let mut got = Vec::new();
    assert_eq!(
        pump_read(&mut pair.b.conn, id, &mut got),
        Err(ReadError::Closed)
    );
    assert_eq!(got, b"buffered");
    assert!(pair
        .take_events_b()
        .contains(&Event::Closed(CloseReason::TransportEnded)));
}

fn same_seed_same_bytes(p: Profile) {
    let run = |seed| {
        let faults = Faults {
            max_chunk: 1500,
            delay: (1_000, 3_000_000),
            pipe_capacity: 100_000,
        };
        let mut pair = Pair::with(seed, cfg(p), cfg(p), faults);
        transfer(&mut pair, &[10_000, 200_000, 3, 0, 90_000]);
        pair.transcript
    };
    assert_eq!(run(77), run(77));
}

fn zero_copy_input_and_chunk_io_deliver_the_same_bytes(p: Profile) {
    let mut a =
        proto_core::mux::Connection::new(cfg(p), proto_core::mux::Side::Dialer, Instant::ZERO)
            .unwrap();
    let mut b =
        proto_core::mux::Connection::new(cfg(p), proto_core::mux::Side::Acceptor, Instant::ZERO)
            .unwrap();
    let id = a.open_flow().unwrap();
    let data = bytes::Bytes::from(pattern(3, 0, 200_000));
    assert_eq!(a.flow(id).write_chunk(data.clone()).unwrap(), data.len());
    a.flow(id).finish().unwrap();
    let mut out = proto_core::mux::IoChunks::default();
    while a.poll_transmit(&mut out).is_some() {}
    let mut wire = Vec::new();
    for c in out.chunks() {
        wire.extend_from_slice(c);
    }
    b.handle_input_bytes(Instant::ZERO, bytes::Bytes::from(wire))
        .unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = b.flow(id).read_chunk(usize::MAX).unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert!(got == data);
}

/// One seeded run: random faults (chunking, latency, pipe size, pauses of
/// either reader), random flows in both directions, some reset midway.
fn seeded_run(seed: u64, p: Profile) {
    let mut rng = common::Rng::new(seed);
    let faults = Faults {
        max_chunk: [1, 7, 100, 1500, 65536, usize::MAX][rng.range(0, 5) as usize],
        delay: (rng.range(0, 1_000_000), rng.range(1_000_000, 50_000_000)),
        pipe_capacity: rng.range(1024, 1 << 20) as usize,
    };
    let mut pair = Pair::with(seed, cfg(p), cfg(p), faults);
    struct F {
        id: FlowId,
        from_a: bool,
        data: Vec<u8>,
        /// Written with `write_chunk` in pieces of this size (0: `write`).
        chunked: usize,
        pos: usize,
        reset_at: Option<usize>,
        got: Vec<u8>,
        end: Option<Result<(), ReadError>>,
    }
    let mut flows: Vec<F> = Vec::new();
    let n = rng.range(1, 40);
    for _ in 0..n {
        let from_a = rng.chance(60);
        let conn = if from_a {
            &mut pair.a.conn
        } else {
            &mut pair.b.conn
        };
        let Ok(id) = conn.open_flow() else { continue };
        let len = [0, 1, 100, 20_000, 300_000, 2_000_000][rng.range(0, 5) as usize];
        let reset_at = rng.chance(15).then(|| rng.range(0, len as u64) as usize);
        let chunked = [0, 0, 1, 1000, 70_000][rng.range(0, 4) as usize];
        flows.push(F {
            id,
            from_a,
            data: pattern(seed ^ id.0, 0, len),
            chunked,
            pos: 0,
            reset_at,
            got: Vec::new(),
            end: None,
        });
    }
    for round in 0..200_000u64 {
        if round % 50 == 0 {
            pair.pause_a_reading(rng.chance(20));
            pair.pause_b_reading(rng.chance(20));
        }
        for f in flows.iter_mut() {
            let conn = if f.from_a {
                &mut pair.a.conn
            } else {
                &mut pair.b.conn
            };
            if f.end.is_some() && f.pos == usize::MAX {
                continue;
            }
            let limit = f.reset_at.unwrap_or(f.data.len());
            if f.pos != usize::MAX {
                let mut pos = f.pos;
                if f.chunked == 0 {
                    pump_write(conn, f.id, &f.data[..limit], &mut pos);
                } else {
                    let data = bytes::Bytes::copy_from_slice(&f.data[..limit]);
                    common::pump_write_chunks(conn, f.id, &data, &mut pos, f.chunked);
                }
                f.pos = pos;
                if pos == limit {
                    if f.reset_at.is_some() {
                        conn.flow(f.id).reset(5).unwrap();
                    } else {
                        conn.flow(f.id).finish().unwrap();
                    }
                    f.pos = usize::MAX;
                }
            }
        }
        if !pair.step() {
            pair.pause_a_reading(false);
            pair.pause_b_reading(false);
            pair.advance(Duration::from_millis(1));
        }
        let mut all = true;
        for f in flows.iter_mut() {
            if f.end.is_some() {
                continue;
            }
            all = false;
            let conn = if f.from_a {
                &mut pair.b.conn
            } else {
                &mut pair.a.conn
            };
            match pump_read(conn, f.id, &mut f.got) {
                Ok(true) => f.end = Some(Ok(())),
                Ok(false) | Err(ReadError::UnknownFlow) => {}
                Err(e) => f.end = Some(Err(e)),
            }
        }
        if all {
            for f in &flows {
                assert!(
                    f.data.starts_with(&f.got),
                    "seed {seed}: {} got bytes that were not sent",
                    f.id
                );
                match f.reset_at {
                    None => {
                        assert_eq!(f.end, Some(Ok(())), "seed {seed}: {}", f.id);
                        assert_eq!(f.got.len(), f.data.len(), "seed {seed}: {}", f.id);
                    }
                    Some(at) => {
                        assert_eq!(
                            f.end,
                            Some(Err(ReadError::Reset(reset_code(p, 5)))),
                            "seed {seed}: {}",
                            f.id
                        );
                        assert!(f.got.len() <= at);
                    }
                }
            }
            assert!(
                !pair.a.conn.is_closed() && !pair.b.conn.is_closed(),
                "seed {seed}"
            );
            return;
        }
    }
    panic!("seed {seed}: flows did not finish");
}

/// A sweep of seeds (`WEFT_SWEEP=N` for more than 40); `WEFT_SEED=N` runs
/// one (the failure message says which).
fn seeded_fault_sweep(p: Profile) {
    let seeds: Vec<u64> = match std::env::var("WEFT_SEED") {
        Ok(s) => vec![s.parse().expect("WEFT_SEED is a number")],
        Err(_) => {
            let n = std::env::var("WEFT_SWEEP")
                .map_or(40, |s| s.parse().expect("WEFT_SWEEP is a number"));
            (0..n).collect()
        }
    };
    for seed in seeds {
        let r = std::panic::catch_unwind(|| seeded_run(seed, p));
        if let Err(e) = r {
            eprintln!("replay with: WEFT_SEED={seed} cargo test -p proto-core --test mux_pair {p:?}::seeded_fault_sweep");
            std::panic::resume_unwind(e);
        }
    }
}

fn a_frame_can_span_several_written_chunks(p: Profile) {
    let mut pair = Pair::of(21, p);
    let id = pair.a.conn.open_flow().unwrap();
    let mut sent = Vec::new();
    for i in 0..10u8 {
        let chunk = vec![i; 100 + i as usize * 300];
        sent.extend_from_slice(&chunk);
        pair.a
            .conn
            .flow(id)
            .write_chunk(bytes::Bytes::from(chunk))
            .unwrap();
        pair.a.conn.flow(id).write(&[i; 7]).unwrap();
        sent.extend_from_slice(&[i; 7]);
    }
    pair.a.conn.flow(id).finish().unwrap();
    pair.settle();
    let mut got = Vec::new();
    assert_eq!(pump_read(&mut pair.b.conn, id, &mut got), Ok(true));
    assert!(got == sent);
}

fn goaway_right_after_open_does_not_lose_the_flow(p: Profile) {
    let mut pair = Pair::of(22, p);
    pair.settle();
    let id = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(id).write(b"just in time").unwrap();
    pair.a.conn.flow(id).finish().unwrap();
    pair.a.conn.go_away(0);
    pair.settle();
    assert!(opened(&pair.take_events_b()).contains(&id));
    let mut got = Vec::new();
    assert_eq!(pump_read(&mut pair.b.conn, id, &mut got), Ok(true));
    assert_eq!(got, b"just in time");
}

fn wants_transmit_tells_when_poll_transmit_has_work(p: Profile) {
    let mut pair = Pair::of(23, p);
    assert!(pair.a.conn.wants_transmit()); // preface and PING
    pair.settle();
    assert!(!pair.a.conn.wants_transmit());
    let id = pair.a.conn.open_flow().unwrap();
    assert!(pair.a.conn.wants_transmit());
    pair.settle();
    assert!(!pair.a.conn.wants_transmit() && !pair.b.conn.wants_transmit());
    pair.a.conn.flow(id).write(b"x").unwrap();
    assert!(pair.a.conn.wants_transmit());
    pair.settle();
    // A small read queues no window update: nothing to send.
    let mut buf = [0u8; 4];
    assert_eq!(pair.b.conn.flow(id).read(&mut buf), Ok(1));
    assert!(!pair.b.conn.wants_transmit());
    let mut out = Vec::new();
    assert_eq!(pair.b.conn.poll_transmit(&mut out), None);
    pair.b.conn.close(0, b"");
    assert!(pair.b.conn.wants_transmit());
    assert!(pair.b.conn.poll_transmit(&mut out).is_some());
    assert!(!pair.b.conn.wants_transmit());
}

fn goaway_on_an_empty_connection_still_reaches_the_peer(p: Profile) {
    let mut pair = Pair::of(24, p);
    pair.settle();
    pair.a.conn.go_away(u64::MAX); // also: an out-of-range code is clamped
    pair.settle();
    let evs = pair.take_events_b();
    assert!(
        evs.iter().any(|e| matches!(e, Event::GoAway { .. })),
        "{evs:?}"
    );
    assert!(pair.a.conn.is_closed() && pair.b.conn.is_closed());
}

#[test]
fn a_read_after_the_end_repeats_how_it_ended() {
    let mut pair = Pair::new(25);
    let reset = pair.a.conn.open_flow().unwrap();
    let stopped = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(reset).write(b"r").unwrap();
    pair.a.conn.flow(stopped).write(b"s").unwrap();
    pair.settle();
    pair.a.conn.flow(reset).reset(9).unwrap();
    pair.a.conn.flow(stopped).finish().unwrap();
    pair.settle();
    let mut sink = Vec::new();
    // b keeps its send sides open, so the flows stay known.
    assert_eq!(
        pump_read(&mut pair.b.conn, reset, &mut sink),
        Err(ReadError::Reset(9))
    );
    assert_eq!(
        pump_read(&mut pair.b.conn, reset, &mut sink),
        Err(ReadError::Reset(9))
    );
    pair.b.conn.flow(stopped).stop(3).unwrap();
    assert_eq!(
        pump_read(&mut pair.b.conn, stopped, &mut sink),
        Err(ReadError::Stopped)
    );
    assert_eq!(
        pump_read(&mut pair.b.conn, stopped, &mut sink),
        Err(ReadError::Stopped)
    );
}

#[test]
fn a_stopped_flow_refused_by_goaway_still_reads_as_stopped() {
    let mut pair = Pair::new(26);
    pair.settle();
    let id = pair.a.conn.open_flow().unwrap();
    pair.a.conn.flow(id).stop(4).unwrap();
    pair.b.conn.go_away(0); // crosses a's open: a's flow is refused
    pair.settle();
    assert!(pair
        .take_events_a()
        .iter()
        .any(|e| matches!(e, Event::GoAway { .. })));
    let mut sink = Vec::new();
    assert_eq!(
        pump_read(&mut pair.a.conn, id, &mut sink),
        Err(ReadError::Stopped)
    );
    assert_eq!(
        pair.a.conn.flow(id).write(b"x"),
        Err(WriteError::Stopped(REFUSED))
    );
}

/// Runs each listed test once per wire profile, as `Native::name` and
/// `Yamux::name`: the behaviour a user relies on does not depend on the wire.
macro_rules! for_each_profile {
    ($($name:ident),* $(,)?) => {
        #[allow(non_snake_case)]
        mod Native {
            $( #[test] fn $name() { super::$name(super::Profile::Native) } )*
        }
        #[allow(non_snake_case)]
        mod Yamux {
            $( #[test] fn $name() { super::$name(super::Profile::Yamux) } )*
        }
    };
}

for_each_profile!(
    one_flow_bulk_survives_rechunking_and_grows_its_window,
    hundred_flows_of_mixed_sizes_arrive_intact,
    a_small_flow_is_not_starved_by_a_big_one,
    half_close_works_in_each_direction,
    a_reader_that_stops_holds_memory_flat_then_recovers,
    both_sides_blocked_on_writes_still_read,
    ping_measures_the_round_trip,
    keepalive_keeps_a_quiet_connection_open_and_silence_closes_it,
    a_drain_that_never_finishes_times_out,
    transport_end_keeps_buffered_data_readable,
    same_seed_same_bytes,
    zero_copy_input_and_chunk_io_deliver_the_same_bytes,
    seeded_fault_sweep,
    a_frame_can_span_several_written_chunks,
    goaway_right_after_open_does_not_lose_the_flow,
    wants_transmit_tells_when_poll_transmit_has_work,
    goaway_on_an_empty_connection_still_reaches_the_peer,
);
