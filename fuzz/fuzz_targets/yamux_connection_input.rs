//! Hostile-peer input: raw bytes into one `mux::Connection` speaking yamux.
//!
//! Input layout (every byte string is a valid input):
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | flags: bit0 acceptor side, bit1 tight config, bit2 read every readable flow after each input, bit3 open two local flows first, bits4-5 repeat the body 1/4/32/300 times, bit6 `handle_input_bytes` |
//! | 1..5 | chunk plan, cyclic: low 5 bits pick the chunk size, high 3 bits an action between chunks (advance the clock, ping, go_away, reset or stop or finish a flow) |
//! | 5.. | the peer's bytes |
//!
//! Checked: no panic; drains terminate; what we send parses as yamux
//! frames, Data payloads at most `send_chunk`; per flow, unread data stays
//! within its receive window; flows stay within `max_concurrent_flows` plus
//! our own; after an `Err` every input is `Err(InputError::Closed)`; a
//! protocol error sends GoAway(protocol error) as the last frame;
//! `Event::Closed` comes once and last.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use bytes::Bytes;
use common::small_config;
use libfuzzer_sys::fuzz_target;
use proto_core::mux::yamux::{go_away, Header, Type, HEADER_LEN};
use proto_core::mux::{Config, Connection, Event, FlowId, InputError, Profile, Side};
use proto_core::time::{Duration, Instant};

const CHUNK_SIZES: [usize; 32] = [
    1,
    1,
    2,
    3,
    5,
    7,
    11,
    12,
    13,
    16,
    23,
    24,
    25,
    36,
    64,
    100,
    255,
    256,
    1000,
    1024,
    4096,
    9000,
    12_000,
    16384,
    20_000,
    65536,
    100_000,
    262_144,
    300_000,
    1 << 20,
    usize::MAX,
    usize::MAX,
];

const MAX_POLLS: usize = 100_000;

/// Parses our output stream as yamux frames across `poll_transmit` calls.
#[derive(Default)]
struct Wire {
    head: Vec<u8>,
    body_left: usize,
    last: Option<Header>,
    after_error_goaway: bool,
}

impl Wire {
    fn feed(&mut self, mut data: &[u8], cfg: &Config) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                continue;
            }
            assert!(!self.after_error_goaway, "frame after GoAway(error)");
            let need = HEADER_LEN - self.head.len();
            let n = need.min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.head.len() < HEADER_LEN {
                continue;
            }
            let h = Header::decode(&self.head).expect("we sent a bad header");
            self.head.clear();
            match h.ty {
                Type::Data => {
                    assert!(h.length as usize <= cfg.send_chunk, "Data of {}", h.length);
                    assert_ne!(h.stream, 0);
                    self.body_left = h.length as usize;
                }
                Type::WindowUpdate => assert_ne!(h.stream, 0),
                Type::Ping | Type::GoAway => assert_eq!(h.stream, 0),
            }
            if h.ty == Type::GoAway && h.length != go_away::NORMAL {
                self.after_error_goaway = true;
            }
            self.last = Some(h);
        }
    }
}

struct Run {
    conn: Connection,
    cfg: Config,
    wire: Wire,
    closed_events: usize,
    after_closed: bool,
    local: Vec<FlowId>,
    read_all: bool,
    now: Instant,
}

impl Run {
    /// Drains output and events, reads what became readable (reads can end
    /// flows, and so a drain, so events are drained again after them).
    fn drain(&mut self) {
        for _ in 0..64 {
            if !self.drain_once() {
                break;
            }
        }
        self.check_bounds();
    }

    /// One pass; whether it read something.
    fn drain_once(&mut self) -> bool {
        for i in 0.. {
            assert!(i < MAX_POLLS, "poll_transmit does not end");
            let mut out = Vec::new();
            match self.conn.poll_transmit(&mut out) {
                Some(n) => {
                    assert_eq!(n, out.len());
                    assert!(n <= self.cfg.max_transmit);
                    self.wire.feed(&out, &self.cfg);
                }
                None => break,
            }
        }
        let mut readable = Vec::new();
        for i in 0.. {
            assert!(i < MAX_POLLS, "poll_event does not end");
            let Some(ev) = self.conn.poll_event() else {
                break;
            };
            assert!(!self.after_closed, "event after Closed: {ev:?}");
            match ev {
                Event::Closed(_) => {
                    self.closed_events += 1;
                    self.after_closed = true;
                }
                Event::Readable(id) => readable.push(id),
                _ => {}
            }
        }
        if !self.read_all || readable.is_empty() {
            return false;
        }
        let mut buf = vec![0u8; 70_000];
        for id in readable {
            for _ in 0..64 {
                match self.conn.flow(id).read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        true
    }

    fn check_bounds(&self) {
        let ids: Vec<FlowId> = self.conn.flow_ids().collect();
        let peer = ids.iter().filter(|id| !self.local.contains(id)).count() as u64;
        assert!(
            peer <= self.cfg.max_concurrent_flows,
            "{peer} peer flows open"
        );
        for id in ids {
            let s = self.conn.flow_stats(id).expect("listed flow has stats");
            assert!(s.recv_window <= self.cfg.max_flow_window);
            assert!(
                s.bytes_received - s.bytes_read <= s.recv_window,
                "{id}: {} unread, window {}",
                s.bytes_received - s.bytes_read,
                s.recv_window
            );
        }
    }

    fn action(&mut self, a: u8, k: usize) {
        match a {
            0..=2 => {}
            3 => {
                self.now += Duration::from_millis(1100);
                self.conn.handle_timeout(self.now);
            }
            4 => {
                let _ = self.conn.ping();
            }
            5 => self.conn.go_away(k as u64),
            _ => {
                let ids: Vec<FlowId> = self.conn.flow_ids().collect();
                if let Some(&id) = ids.get(k % ids.len().max(1)) {
                    let _ = match (a, k % 3) {
                        (6, 0) => self.conn.flow(id).reset(1).map_err(|_| ()),
                        (6, _) => self.conn.flow(id).stop(2).map_err(|_| ()),
                        _ => self.conn.flow(id).finish().map_err(|_| ()),
                    };
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let flags = data[0];
    let plan = &data[1..5];
    let body = &data[5..];
    let mut cfg = small_config();
    cfg.profile = Profile::Yamux;
    if flags & 2 != 0 {
        cfg.send_chunk = 1000;
        cfg.max_transmit = 2000;
        cfg.flow_send_buffer = 4096;
        cfg.conn_send_buffer = 8192;
        cfg.max_queued_control = 4;
        cfg.max_pings_per_sec = 10;
        cfg.max_resets_per_sec = 10;
        cfg.max_unacked_opens = 2;
    }
    let side = if flags & 1 != 0 {
        Side::Acceptor
    } else {
        Side::Dialer
    };
    let now = Instant::ZERO;
    let mut run = Run {
        conn: Connection::new(cfg.clone(), side, now).unwrap(),
        cfg,
        wire: Wire::default(),
        closed_events: 0,
        after_closed: false,
        local: Vec::new(),
        read_all: flags & 4 != 0,
        now,
    };
    if flags & 8 != 0 {
        if let Ok(id) = run.conn.open_flow() {
            let _ = run.conn.flow(id).write(&[7u8; 3000]);
            run.local.push(id);
        }
        if let Ok(id) = run.conn.open_side_channel() {
            let _ = run.conn.flow(id).finish();
            run.local.push(id);
        }
    }
    run.drain();
    let repeat = [1, 4, 32, 300][usize::from(flags >> 4 & 3)];
    let zero_copy = flags & 64 != 0;
    let mut stream = Vec::with_capacity(body.len() * repeat);
    for _ in 0..repeat {
        stream.extend_from_slice(body);
    }
    let stream = Bytes::from(stream);
    let mut pos = 0;
    let mut failed = false;
    let mut step = 0usize;
    while pos < stream.len() {
        let p = plan[step % plan.len()];
        let size = CHUNK_SIZES[usize::from(p & 31)];
        let size = if step > 4096 {
            size.max(16 * 1024)
        } else {
            size
        };
        let end = pos.saturating_add(size).min(stream.len());
        let r = if zero_copy {
            run.conn.handle_input_bytes(run.now, stream.slice(pos..end))
        } else {
            run.conn.handle_input(run.now, &stream[pos..end])
        };
        match r {
            Ok(()) => assert!(!failed, "input accepted after a failure"),
            Err(InputError::Closed) => assert!(failed || run.conn.is_closed()),
            Err(InputError::Protocol(_)) => {
                assert!(!failed, "second protocol error");
                failed = true;
                run.drain();
                let last = run.wire.last.expect("closed without a GoAway");
                assert_eq!(last.ty, Type::GoAway);
                assert_eq!(last.length, go_away::PROTOCOL_ERROR);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        if run.conn.is_closed() {
            failed = true;
        }
        pos = end;
        step += 1;
        run.action(p >> 5, step);
        run.drain();
    }
    assert!(run.closed_events <= 1);
    assert_eq!(run.closed_events == 1, run.conn.is_closed());
});
