//! Hostile-peer input: raw bytes into one `mux::Connection`.
//!
//! Input layout (every byte string is a valid input):
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | flags: bit0 acceptor side, bit1 prepend the preface, bits2-3 `TransmitBuf` kind, bit4 `handle_input_bytes` (zero-copy path), bit5 tight config, bits6-7 repeat the wire body 1/4/32/300 times |
//! | 1 | flags: bit0 read every readable flow after each input, bit1 open two local flows first (one with data queued, one finished side channel) |
//! | 2..10 | chunk plan, used cyclically: low 5 bits pick the chunk size, high 3 bits an action between chunks (timeouts, a stale clock, reads, flow commands) |
//! | 10.. | the peer's bytes |
//!
//! Checked: no panic; `poll_transmit`/`poll_event` terminate and what the
//! connection sends is well formed; buffered receive data never exceeds
//! `conn_recv_budget` (sum over flows) nor `max_flow_window` (per flow);
//! once `handle_input` failed (or the connection closed) every later input
//! is `Err(InputError::Closed)`; a protocol error closes with a
//! CONNECTION_CLOSE carrying its code; `Event::Closed` comes once and last;
//! peer flows open in id order with the peer's parity.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use bytes::Bytes;
use common::{small_config, transmit_once, OutputChecker, TxKind, MAX_POLLS};
use libfuzzer_sys::fuzz_target;
use proto_core::mux::frame::PREFACE;
use proto_core::mux::{Config, Connection, Event, FlowId, InputError, ReadError, Side};
use proto_core::time::{Duration, Instant};
use std::collections::BTreeMap;

const CHUNK_SIZES: [usize; 32] = [
    1,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    13,
    16,
    17,
    24,
    25,
    31,
    32,
    63,
    64,
    100,
    255,
    256,
    1000,
    1024,
    4096,
    9000,
    16384,
    65536,
    300_000,
    usize::MAX,
];

/// After this many inputs the rest of the stream goes in chunks of at
/// least 16 KiB, so a 1 MB stream costs at most a few thousand inputs.
const MAX_SMALL_STEPS: usize = 4096;

fn tight_config() -> Config {
    let mut c = small_config();
    c.send_chunk = 1000;
    c.max_transmit = 1000 + proto_core::mux::frame::MAX_DATA_HEADER;
    c.flow_send_buffer = 4096;
    c.conn_send_buffer = 8192;
    c.max_frame_payload = 16 * 1024;
    c.max_queued_control = 4;
    c.max_pings_per_sec = 10;
    c.max_resets_per_sec = 10;
    c.max_outstanding_pings = 2;
    c.idle_timeout = Some(Duration::from_secs(5));
    c.drain_timeout = Duration::from_secs(3);
    c.spare_buffers = 0;
    c
}

#[derive(Default)]
struct FlowSeen {
    read: u64,
    eof: bool,
}

struct Harness {
    conn: Connection,
    tx: TxKind,
    checker: OutputChecker,
    out: Vec<u8>,
    now: Instant,
    closed_event: bool,
    failed: bool,
    stale: bool,
    last_peer_flow: Option<u64>,
    flows: BTreeMap<u64, FlowSeen>,
    side: Side,
}

impl Harness {
    fn peer_parity(&self) -> u64 {
        match self.side {
            Side::Dialer => 1,
            Side::Acceptor => 0,
        }
    }

    /// Drains outputs, as the contract requires after every call, and
    /// checks the memory bounds.
    fn drain(&mut self) {
        self.drain_quiet();
        self.check_memory();
    }

    /// Drains outputs without the (per-flow, so costly) memory check.
    fn drain_quiet(&mut self) {
        let mut polls = 0;
        while transmit_once(&mut self.conn, self.tx, &mut self.out, &mut self.checker).is_some() {
            polls += 1;
            assert!(polls < MAX_POLLS, "poll_transmit never returns None");
        }
        // Keep memory flat: the checker has seen the bytes.
        self.out.clear();
        let mut polls = 0;
        while let Some(ev) = self.conn.poll_event() {
            polls += 1;
            assert!(polls < MAX_POLLS, "poll_event never returns None");
            assert!(!self.closed_event, "event after Event::Closed: {ev:?}");
            match ev {
                Event::FlowOpened { id, .. } => {
                    assert_eq!(id.0 % 2, self.peer_parity(), "peer flow with our parity");
                    if let Some(last) = self.last_peer_flow {
                        assert!(
                            id.0 > last,
                            "flows opened out of order: {} after {last}",
                            id.0
                        );
                    }
                    self.last_peer_flow = Some(id.0);
                    assert!(self.flows.insert(id.0, FlowSeen::default()).is_none());
                }
                Event::Closed(_) => {
                    assert!(self.conn.is_closed(), "Closed event but not is_closed()");
                    self.closed_event = true;
                }
                Event::FlowClosed(id) => {
                    assert!(
                        self.conn.flow_stats(id).is_none(),
                        "FlowClosed but the flow is still known"
                    );
                }
                _ => {}
            }
        }
        assert_eq!(
            self.conn.is_closed(),
            self.closed_event,
            "is_closed() without Event::Closed"
        );
    }

    fn check_memory(&self) {
        let cfg = self.conn.config();
        let mut buffered = 0u64;
        let mut send = 0u64;
        let mut flows = 0u64;
        for id in self.conn.flow_ids() {
            let s = self.conn.flow_stats(id).expect("listed flow has stats");
            assert!(s.bytes_read <= s.bytes_received);
            let b = s.bytes_received - s.bytes_read;
            assert!(
                b <= cfg.max_flow_window,
                "flow {id} buffers {b} > max_flow_window {}",
                cfg.max_flow_window
            );
            assert!(s.send_buffered <= cfg.flow_send_buffer as u64);
            buffered += b;
            send += s.send_buffered;
            flows += 1;
        }
        assert!(
            buffered <= cfg.conn_recv_budget,
            "buffered receive data {buffered} exceeds conn_recv_budget {}",
            cfg.conn_recv_budget
        );
        let st = self.conn.stats();
        assert_eq!(st.flows_open, flows);
        assert_eq!(
            st.recv_buffered, buffered,
            "stats().recv_buffered disagrees with the flows"
        );
        assert_eq!(
            st.send_buffered, send,
            "stats().send_buffered disagrees with the flows"
        );
        assert!(st.send_buffered <= cfg.conn_send_buffer as u64);
        // Peer flows are bounded by the flow credit we grant: concurrent
        // peer flows never exceed max_concurrent_flows.
        let peer_flows = self
            .conn
            .flow_ids()
            .filter(|id| id.0 % 2 == self.peer_parity())
            .count() as u64;
        assert!(
            peer_flows <= cfg.max_concurrent_flows,
            "{peer_flows} peer flows > max_concurrent_flows"
        );
    }

    /// The driver's clock, or an older reading when `stale` (time handed
    /// in "must never be trusted to be monotonic").
    fn clock(&mut self) -> Instant {
        if std::mem::take(&mut self.stale) {
            Instant::from_nanos(self.now.as_nanos().saturating_sub(10_000_000_000))
        } else {
            self.now
        }
    }

    fn input(&mut self, data: &[u8], zero_copy: bool) {
        let was_closed = self.conn.is_closed();
        let now = self.clock();
        let r = if zero_copy {
            self.conn
                .handle_input_bytes(now, Bytes::copy_from_slice(data))
        } else {
            self.conn.handle_input(now, data)
        };
        if was_closed || self.failed {
            assert_eq!(r, Err(InputError::Closed), "input after close/error");
        }
        match r {
            // Ok and closed is fine: the peer sent CLOSE, or a GOAWAY drained.
            Ok(()) => {}
            Err(InputError::Closed) => assert!(was_closed, "Err(Closed) on an open connection"),
            Err(InputError::Protocol(e)) => {
                assert!(!was_closed);
                assert!(
                    self.conn.is_closed(),
                    "protocol error left the connection open"
                );
                self.failed = true;
                self.drain();
                let (app, code) = self
                    .checker
                    .last_close
                    .expect("protocol error but no CONNECTION_CLOSE sent");
                assert!(!app, "protocol error closed with APPLICATION_CLOSE");
                assert_eq!(code, e.code().to_wire(), "CONNECTION_CLOSE code for {e:?}");
                return;
            }
            Err(e) => panic!("unexpected input error {e:?}"),
        }
        self.drain();
    }

    fn timeout(&mut self, advance: Duration) {
        self.now = self.now + advance;
        self.conn.handle_timeout(self.now);
        self.drain();
    }

    fn timeout_at_deadline(&mut self) {
        if let Some((t, _)) = self.conn.poll_timeout() {
            assert!(!self.conn.is_closed(), "deadline on a closed connection");
            self.now = self.now.max(t);
            self.conn.handle_timeout(self.now);
            self.drain();
        }
    }

    fn read_flow(&mut self, id: u64, size: usize, chunked: bool, max_reads: usize) {
        let mut buf = vec![0u8; size.max(1)];
        for _ in 0..max_reads {
            let r = if chunked {
                self.conn
                    .flow(FlowId(id))
                    .read_chunk(size)
                    .map(|c| c.map(|c| c.len()))
            } else {
                self.conn.flow(FlowId(id)).read(&mut buf).map(Some)
            };
            let seen = self.flows.entry(id).or_default();
            match r {
                Ok(Some(0)) | Ok(None) => {
                    seen.eof = true;
                    break;
                }
                Ok(Some(n)) => {
                    assert!(n <= size.max(1), "read more than asked");
                    assert!(!seen.eof, "data after end of flow");
                    seen.read += n as u64;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Closed) => {
                    assert!(
                        self.conn.is_closed(),
                        "ReadError::Closed on an open connection"
                    );
                    break;
                }
                Err(_) => break,
            }
            self.drain_quiet();
        }
        self.drain_quiet();
    }

    fn read_all(&mut self, size: usize, chunked: bool) {
        let ids: Vec<u64> = self.conn.flow_ids().map(|f| f.0).collect();
        for id in ids {
            self.read_flow(id, size, chunked, 1 << 20);
        }
        self.check_memory();
    }

    fn flow_command(&mut self, sel: u8) {
        let ids: Vec<u64> = self.conn.flow_ids().map(|f| f.0).collect();
        if ids.is_empty() {
            return;
        }
        let id = FlowId(ids[sel as usize % ids.len()]);
        let code = u64::from(sel);
        match sel % 5 {
            0 => {
                let _ = self.conn.flow(id).stop(code);
            }
            1 => {
                let _ = self.conn.flow(id).reset(code);
            }
            2 => {
                let _ = self.conn.flow(id).write(&[sel; 3000]);
            }
            3 => {
                let _ = self.conn.flow(id).finish();
            }
            _ => {
                let _ = self.conn.ping();
            }
        }
        self.drain();
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let (f0, f1, plan, body) = (data[0], data[1], &data[2..10], &data[10..]);
    let side = if f0 & 1 != 0 {
        Side::Acceptor
    } else {
        Side::Dialer
    };
    let config = if f0 & 0x20 != 0 {
        tight_config()
    } else {
        small_config()
    };
    let zero_copy = f0 & 0x10 != 0;
    let repeat = [1usize, 4, 32, 300][usize::from(f0 >> 6)];
    let eager_read = f1 & 1 != 0;

    let now = Instant::from_nanos(1_000_000_000);
    let conn = Connection::new(config.clone(), side, now).expect("valid config");
    let mut h = Harness {
        conn,
        tx: TxKind::from_byte((f0 >> 2) & 3),
        checker: OutputChecker::new(&config),
        out: Vec::new(),
        now,
        closed_event: false,
        failed: false,
        stale: false,
        last_peer_flow: None,
        flows: BTreeMap::new(),
        side,
    };
    h.drain();

    if f1 & 2 != 0 {
        let a = h.conn.open_flow().expect("fresh connection opens");
        let _ = h.conn.flow(a).write(&vec![0xa5; 300_000]);
        let b = h.conn.open_side_channel().expect("fresh connection opens");
        h.conn.flow(b).write(b"side").unwrap();
        h.conn.flow(b).finish().unwrap();
        h.drain();
    }

    // The peer's stream: optional preface, then the body `repeat` times.
    let mut stream: Vec<u8> = Vec::new();
    if f0 & 2 != 0 {
        stream.extend_from_slice(PREFACE);
    }
    for _ in 0..repeat {
        stream.extend_from_slice(body);
    }

    let mut pos = 0;
    let mut step = 0usize;
    while pos < stream.len() {
        let p = plan[step % plan.len()];
        step += 1;
        let mut n = CHUNK_SIZES[usize::from(p & 0x1f)];
        if step > MAX_SMALL_STEPS {
            n = n.max(16 * 1024); // keep long streams fast
        }
        let n = n.min(stream.len() - pos);
        h.input(&stream[pos..pos + n], zero_copy);
        pos += n;
        if eager_read {
            h.read_all(4096, false);
        }
        match p >> 5 {
            0 => {}
            1 => {
                // A stale clock reading for a timeout and the next input.
                h.stale = true;
                let t = h.clock();
                h.conn.handle_timeout(t);
                h.drain();
                h.stale = true;
            }
            2 => h.timeout(Duration::from_millis(u64::from(p & 0x1f) * 37)),
            3 => h.timeout(Duration::from_secs(20)),
            4 => h.read_all(usize::from(p & 0x1f) * 100 + 1, p & 1 != 0),
            5 => {
                if let Some(&id) = h.flows.keys().next() {
                    h.read_flow(id, 7, p & 1 != 0, 3);
                    h.check_memory();
                }
            }
            6 => h.flow_command(p),
            _ => h.timeout_at_deadline(),
        }
    }

    // The end: read out whatever is buffered, fire the timers, and check
    // that closing is final.
    h.read_all(65536, false);
    h.timeout(Duration::from_secs(3600));
    h.timeout(Duration::from_secs(3600));
    assert!(
        h.conn.is_closed(),
        "channel timeout did not close an idle connection"
    );
    assert_eq!(h.conn.poll_timeout(), None);
    h.input(b"x", zero_copy);
    assert!(h.checker.at_boundary(), "output ends mid-frame");
});
