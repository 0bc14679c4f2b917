//! Two honest `mux::Connection`s (A = dialer, B = acceptor) wired through
//! in-memory pipes, driven by an arbitrary sequence of application
//! operations and network schedules, checked against a model.
//!
//! Every byte written on a flow is a pattern of (writer, flow, offset), so the
//! reader can check content, not just length. The model checks:
//! - bytes read are exactly a prefix of the bytes written (content);
//! - end of data (`Ok(0)` / `Ok(None)`) only once the writer finished, did
//!   not reset, and every written byte was read;
//! - `ReadError::Reset(code)` only with the code the writer used (or
//!   `REFUSED` for a flow a GOAWAY refused); `WriteError::Stopped(code)`
//!   only with the code the reader used;
//! - `Finished`, `Closed`, `Stopped`, `UnknownFlow` errors only when the
//!   model allows them; `FlowClosed` only when both directions are done;
//! - honest peers never make each other report a protocol error;
//! - memory: buffered receive data within `conn_recv_budget`, send
//!   buffers within their limits;
//! - at the end, after healing the network (deliver everything, read
//!   everything), every flow delivered exactly what was written: FIN,
//!   reset code, or all data, unless a connection closed abruptly.
#![no_main]

#[path = "common/mod.rs"]
mod common;
#[path = "common/pair_ops.rs"]
mod pair_ops;

use bytes::Bytes;
use common::{small_config, tracing, transmit_once, OutputChecker, TxKind, MAX_POLLS};
use libfuzzer_sys::fuzz_target;
use pair_ops::{Input, Op};
use proto_core::mux::{
    CloseReason, Config, Connection, ErrorCode, Event, FlowId, InputError, OpenError, PingError,
    ReadError, Side, WriteError, REFUSED,
};
use proto_core::time::{Duration, Instant};
use proto_core::wire::VARINT_MAX;
use std::collections::{BTreeMap, VecDeque};

/// At most this many operations per input (keeps execs fast, and keeps an
/// honest pair below `max_resets_per_sec`).
const MAX_OPS: usize = 400;
/// The harness itself keeps pings below this per second per side (with at
/// most `max_outstanding_pings` in flight the peer sees well under
/// `max_pings_per_sec`).
const APP_PINGS_PER_SEC: usize = 40;

fn preset(p: u8) -> Config {
    let mut c = small_config();
    match p % 4 {
        0 => {}
        1 => {
            c.max_flow_window = 1024 * 1024;
            c.flow_send_buffer = 64 * 1024;
            c.conn_send_buffer = 256 * 1024;
            c.send_chunk = 4096;
            c.max_transmit = 32 * 1024;
            c.max_frame_payload = 16 * 1024;
            c.spare_buffers = 16;
        }
        2 => {
            c.max_flow_window = 256 * 1024;
            c.flow_send_buffer = 4096;
            c.conn_send_buffer = 16 * 1024;
            c.send_chunk = 1000;
            c.max_transmit = 1000 + proto_core::mux::frame::MAX_DATA_HEADER;
            c.idle_timeout = Some(Duration::from_secs(20));
            c.max_outstanding_pings = 2;
            c.max_queued_control = 32;
            c.spare_buffers = 0;
        }
        _ => {
            c.send_chunk = 1;
            c.max_transmit = 300;
            c.flow_send_buffer = 1000;
            c.conn_send_buffer = 5000;
            c.keepalive_interval = None;
            c.channel_timeout = None;
            c.drain_timeout = Duration::from_secs(5);
            c.spare_buffers = 1;
        }
    }
    c.validate().expect("preset is valid");
    c
}

/// Period of the content pattern: a prime, so no power-of-two framing
/// artefact lines up with it.
const PERIOD: usize = 65521;

/// Two periods of pseudo-random bytes, so any window of up to `PERIOD`
/// bytes is one contiguous slice (generating and checking content is then
/// memcpy/memcmp, not a per-byte loop the coverage instrumentation slows).
fn pattern_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let one: Vec<u8> = (0..PERIOD as u64)
            .map(|i| {
                let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                x ^= x >> 31;
                x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
                (x >> 56) as u8
            })
            .collect();
        [one.as_slice(), one.as_slice()].concat()
    })
}

/// The content of `flow` as written by side `writer`, from `offset`, in
/// pieces of at most `PERIOD` bytes: byte `o` is the table's
/// `(o + start(writer, flow)) % PERIOD`, so a shifted, reordered, or
/// other flow's byte shows.
fn pattern_pieces(
    writer: usize,
    flow: u64,
    offset: u64,
    len: usize,
) -> impl Iterator<Item = &'static [u8]> {
    let start = (flow.wrapping_mul(7919) + writer as u64 * 31337) % PERIOD as u64;
    let mut pos = ((offset + start) % PERIOD as u64) as usize;
    let mut left = len;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let k = left.min(PERIOD);
        let piece = &pattern_table()[pos..pos + k];
        pos = (pos + k) % PERIOD;
        left -= k;
        Some(piece)
    })
}

fn pattern_bytes(writer: usize, flow: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    for piece in pattern_pieces(writer, flow, offset, len) {
        v.extend_from_slice(piece);
    }
    v
}

/// The first offset in `data` (read at `offset`) that differs from the
/// pattern, if any.
fn pattern_mismatch(writer: usize, flow: u64, offset: u64, data: &[u8]) -> Option<u64> {
    let mut at = 0;
    for piece in pattern_pieces(writer, flow, offset, data.len()) {
        let got = &data[at..at + piece.len()];
        if got != piece {
            let k = got.iter().zip(piece).position(|(a, b)| a != b).unwrap_or(0);
            return Some(offset + (at + k) as u64);
        }
        at += piece.len();
    }
    None
}

/// One direction of a flow: `writer` side to the other.
#[derive(Debug, Default, Clone)]
struct Dir {
    written: u64,
    finished: bool,
    writer_reset: Option<u64>,
    read: u64,
    fin_seen: bool,
    reset_seen: Option<u64>,
    /// The reader called `stop` with this (clamped) code before the end.
    stopped: Option<u64>,
    /// A GOAWAY refused the flow.
    refused: bool,
}

impl Dir {
    fn reader_done(&self) -> bool {
        self.fin_seen || self.reset_seen.is_some() || self.stopped.is_some()
    }
    fn writer_done(&self) -> bool {
        self.finished || self.writer_reset.is_some() || self.stopped.is_some() || self.refused
    }
}

#[derive(Debug)]
struct FlowModel {
    opener: usize,
    side_channel: bool,
    /// Indexed by the writer.
    dirs: [Dir; 2],
    /// `FlowClosed` seen on each side.
    removed: [bool; 2],
    /// Per side: a read returned `Blocked` and no `Readable` came since.
    read_waiting: [bool; 2],
    /// Per side: a write returned `Blocked` and no `Writable` came since.
    write_waiting: [bool; 2],
}

struct Peer {
    conn: Connection,
    tx: TxKind,
    checker: OutputChecker,
    /// Flows this side can name: its own, and the peer's it was told about.
    known: Vec<u64>,
    next_local: u64,
    last_peer_opened: Option<u64>,
    closed: Option<CloseReason>,
    goaway_sent: bool,
    goaway_received: Option<u64>,
    pings: VecDeque<Instant>,
    /// `open` returned `FlowLimit` and no `FlowCredit` came since.
    want_credit: bool,
}

struct World {
    now: Instant,
    peers: [Peer; 2],
    /// `pipes[i]`: bytes side i sent, not yet delivered to the other.
    pipes: [Vec<u8>; 2],
    flows: BTreeMap<u64, FlowModel>,
    ops: usize,
}

fn clamp(code: u64) -> u64 {
    code.min(VARINT_MAX)
}

impl World {
    fn new(input: &Input) -> Self {
        let now = Instant::from_nanos(5_000_000_000);
        let mk = |side, p: u8, tx: u8| {
            let cfg = preset(p);
            Peer {
                conn: Connection::new(cfg.clone(), side, now).expect("valid config"),
                tx: TxKind::from_byte(tx),
                checker: OutputChecker::new(&cfg),
                known: Vec::new(),
                next_local: if side == Side::Dialer { 0 } else { 1 },
                last_peer_opened: None,
                closed: None,
                goaway_sent: false,
                goaway_received: None,
                pings: VecDeque::new(),
                want_credit: false,
            }
        };
        let mut w = World {
            now,
            peers: [
                mk(Side::Dialer, input.preset_a, input.tx_a),
                mk(Side::Acceptor, input.preset_b, input.tx_b),
            ],
            pipes: [Vec::new(), Vec::new()],
            flows: BTreeMap::new(),
            ops: 0,
        };
        w.drain_all();
        w
    }

    /// Drain both sides' `poll_transmit` and `poll_event` (the contract:
    /// after every input or command), and check the invariants.
    fn drain_all(&mut self) {
        for i in 0..2 {
            self.drain(i);
        }
        for i in 0..2 {
            self.check_memory(i);
        }
    }

    fn drain(&mut self, i: usize) {
        let mut polls = 0;
        loop {
            let p = &mut self.peers[i];
            if transmit_once(&mut p.conn, p.tx, &mut self.pipes[i], &mut p.checker).is_none() {
                break;
            }
            polls += 1;
            assert!(polls < MAX_POLLS, "poll_transmit never returns None");
        }
        let mut polls = 0;
        while let Some(ev) = self.peers[i].conn.poll_event() {
            polls += 1;
            assert!(polls < MAX_POLLS, "poll_event never returns None");
            self.on_event(i, ev);
        }
        assert_eq!(
            self.peers[i].conn.is_closed(),
            self.peers[i].closed.is_some(),
            "is_closed() disagrees with Event::Closed"
        );
    }

    fn on_event(&mut self, i: usize, ev: Event) {
        assert!(
            self.peers[i].closed.is_none(),
            "side {i}: event after Event::Closed: {ev:?}"
        );
        match ev {
            Event::FlowOpened { id, side_channel } => {
                let id = id.0;
                assert_eq!(
                    id % 2,
                    (1 - i) as u64,
                    "side {i}: FlowOpened with our parity"
                );
                if let Some(last) = self.peers[i].last_peer_opened {
                    assert!(id > last, "side {i}: FlowOpened {id} after {last}");
                }
                self.peers[i].last_peer_opened = Some(id);
                let f = self
                    .flows
                    .get(&id)
                    .unwrap_or_else(|| panic!("side {i}: FlowOpened {id} never opened"));
                assert_eq!(f.opener, 1 - i);
                assert_eq!(
                    f.side_channel, side_channel,
                    "side_channel flag of flow {id}"
                );
                assert!(
                    !f.dirs[0].refused,
                    "side {i}: FlowOpened {id} for a flow refused by GOAWAY"
                );
                assert!(!self.peers[i].known.contains(&id));
                self.peers[i].known.push(id);
            }
            Event::FlowClosed(id) => {
                let id = id.0;
                assert!(
                    self.peers[i].known.contains(&id),
                    "FlowClosed for unknown {id}"
                );
                let f = self.flows.get_mut(&id).expect("modelled");
                assert!(!f.removed[i], "side {i}: FlowClosed {id} twice");
                assert!(
                    f.dirs[1 - i].reader_done(),
                    "side {i}: FlowClosed {id} before its receive side ended: {:?}",
                    f.dirs[1 - i]
                );
                assert!(
                    f.dirs[i].writer_done(),
                    "side {i}: FlowClosed {id} before its send side ended: {:?}",
                    f.dirs[i]
                );
                f.removed[i] = true;
            }
            Event::GoAway {
                accepted_below,
                code,
            } => {
                let _ = code;
                assert!(
                    self.peers[i].goaway_received.is_none(),
                    "side {i}: second GoAway event"
                );
                assert_eq!(
                    accepted_below % 2,
                    i as u64,
                    "GOAWAY bound of the wrong parity"
                );
                assert!(
                    accepted_below <= self.peers[i].next_local,
                    "GOAWAY accepted flows never opened"
                );
                self.peers[i].goaway_received = Some(accepted_below);
                for (_, f) in self.flows.range_mut(accepted_below..) {
                    if f.opener == i {
                        f.dirs[0].refused = true;
                        f.dirs[1].refused = true;
                    }
                }
            }
            Event::Closed(reason) => {
                self.peers[i].closed = Some(reason);
            }
            Event::Readable(id) => {
                if let Some(f) = self.flows.get_mut(&id.0) {
                    f.read_waiting[i] = false;
                }
            }
            Event::Writable(id) => {
                if let Some(f) = self.flows.get_mut(&id.0) {
                    f.write_waiting[i] = false;
                }
            }
            Event::FlowCredit => self.peers[i].want_credit = false,
            Event::Rtt { .. } => {}
            other => panic!("unknown event {other:?}"),
        }
    }

    fn check_memory(&self, i: usize) {
        let conn = &self.peers[i].conn;
        let cfg = conn.config();
        let mut recv = 0u64;
        let mut send = 0u64;
        for id in conn.flow_ids() {
            let s = conn.flow_stats(id).expect("listed flow has stats");
            assert!(s.bytes_read <= s.bytes_received);
            recv += s.bytes_received - s.bytes_read;
            assert!(s.bytes_received - s.bytes_read <= cfg.max_flow_window);
            assert!(
                s.send_buffered <= cfg.flow_send_buffer as u64,
                "flow {id}: send_buffered {} > flow_send_buffer",
                s.send_buffered
            );
            send += s.send_buffered;
        }
        let st = conn.stats();
        assert_eq!(
            st.recv_buffered, recv,
            "side {i}: stats().recv_buffered disagrees with the flows"
        );
        assert_eq!(
            st.send_buffered, send,
            "side {i}: stats().send_buffered disagrees with the flows"
        );
        assert!(
            recv <= cfg.conn_recv_budget,
            "side {i}: {recv} bytes buffered > conn_recv_budget {}",
            cfg.conn_recv_budget
        );
        assert!(
            send <= cfg.conn_send_buffer as u64,
            "side {i}: {send} bytes send-buffered > conn_send_buffer"
        );
    }

    fn pick(&self, i: usize, sel: u8) -> Option<u64> {
        let k = &self.peers[i].known;
        (!k.is_empty()).then(|| k[sel as usize % k.len()])
    }

    // ------------------------------------------------------------ commands

    fn open(&mut self, i: usize, side_channel: bool) {
        let p = &mut self.peers[i];
        let r = if side_channel {
            p.conn.open_side_channel()
        } else {
            p.conn.open_flow()
        };
        match r {
            Ok(id) => {
                assert!(p.closed.is_none(), "opened a flow on a closed connection");
                assert!(
                    !p.want_credit,
                    "side {i}: open succeeded after FlowLimit without Event::FlowCredit"
                );
                assert!(
                    !p.goaway_sent && p.goaway_received.is_none(),
                    "opened a flow while draining"
                );
                assert_eq!(id.0, p.next_local, "flow ids are sequential per side");
                p.next_local += 2;
                p.known.push(id.0);
                let mut f = FlowModel {
                    opener: i,
                    side_channel,
                    dirs: [Dir::default(), Dir::default()],
                    removed: [false; 2],
                    read_waiting: [false; 2],
                    write_waiting: [false; 2],
                };
                // The peer already refused flows at or above its GOAWAY bound.
                if let Some(b) = p.goaway_received {
                    assert!(id.0 < b);
                    f.dirs[0].refused = true;
                    f.dirs[1].refused = true;
                }
                self.flows.insert(id.0, f);
            }
            Err(OpenError::FlowLimit) => p.want_credit = true,
            Err(OpenError::GoingAway) => assert!(
                p.goaway_sent || p.goaway_received.is_some(),
                "GoingAway without GOAWAY"
            ),
            Err(OpenError::Closed) => assert!(p.closed.is_some(), "OpenError::Closed while open"),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    fn write(&mut self, i: usize, sel: u8, len: usize, chunk: bool) {
        let Some(id) = self.pick(i, sel) else { return };
        let f = self.flows.get_mut(&id).expect("modelled");
        let removed = f.removed[i];
        let waiting = &mut f.write_waiting[i];
        let d = &mut f.dirs[i];
        let data = pattern_bytes(i, id, d.written, len);
        let conn = &mut self.peers[i].conn;
        let r = if chunk {
            conn.flow(FlowId(id)).write_chunk(Bytes::from(data))
        } else {
            conn.flow(FlowId(id)).write(&data)
        };
        let closed = self.peers[i].closed.is_some();
        match r {
            Ok(n) => {
                assert!(!removed, "write on a forgotten flow");
                assert!(n <= len, "write took {n} of {len}");
                assert!(!closed, "write accepted on a closed connection");
                assert!(
                    !d.finished && d.writer_reset.is_none(),
                    "write accepted after finish/reset"
                );
                assert!(
                    n == 0 || !*waiting,
                    "side {i} flow {id}: write succeeded after Blocked without Event::Writable"
                );
                d.written += n as u64;
            }
            Err(WriteError::Blocked) if !removed => {
                Self::check_write_err(WriteError::Blocked, removed, closed, d, Some(len));
                *waiting = true;
            }
            Err(e) => {
                // A blocked writer must be woken for these too.
                if matches!(e, WriteError::Stopped(_) | WriteError::Closed) {
                    assert!(
                        !*waiting,
                        "side {i} flow {id}: write failed with {e:?} after Blocked \
                         without Event::Writable"
                    );
                }
                Self::check_write_err(e, removed, closed, d, Some(len))
            }
        }
    }

    fn check_write_err(e: WriteError, removed: bool, closed: bool, d: &Dir, len: Option<usize>) {
        if removed {
            assert_eq!(e, WriteError::UnknownFlow, "forgotten flow");
            return;
        }
        match e {
            WriteError::Blocked => {
                assert!(len.is_some_and(|l| l > 0), "Blocked on an empty write")
            }
            WriteError::Stopped(c) => assert!(
                d.stopped == Some(c) || (c == REFUSED && d.refused),
                "Stopped({c}) but reader stopped with {:?} (refused {})",
                d.stopped,
                d.refused
            ),
            WriteError::Finished => assert!(
                d.finished || d.writer_reset.is_some(),
                "Finished on an open flow"
            ),
            WriteError::Closed => assert!(closed, "WriteError::Closed while open"),
            WriteError::UnknownFlow => panic!("UnknownFlow for a flow never closed"),
            e => panic!("unexpected {e:?}"),
        }
    }

    fn finish(&mut self, i: usize, sel: u8) {
        let Some(id) = self.pick(i, sel) else { return };
        let closed = self.peers[i].closed.is_some();
        let f = self.flows.get_mut(&id).expect("modelled");
        let removed = f.removed[i];
        let d = &mut f.dirs[i];
        match self.peers[i].conn.flow(FlowId(id)).finish() {
            Ok(()) => {
                assert!(!removed && !closed);
                assert!(!d.finished && d.writer_reset.is_none(), "finish twice");
                d.finished = true;
            }
            Err(e) => Self::check_write_err(e, removed, closed, d, None),
        }
    }

    fn reset(&mut self, i: usize, sel: u8, code: u64) {
        let Some(id) = self.pick(i, sel) else { return };
        let closed = self.peers[i].closed.is_some();
        let f = self.flows.get_mut(&id).expect("modelled");
        let removed = f.removed[i];
        let d = &mut f.dirs[i];
        match self.peers[i].conn.flow(FlowId(id)).reset(code) {
            Ok(()) => {
                assert!(!removed && !closed);
                assert!(d.writer_reset.is_none(), "reset twice");
                d.writer_reset = Some(clamp(code));
            }
            Err(WriteError::Finished) if !removed => {
                // Also when the peer's STOP_SENDING or GOAWAY already reset it.
                assert!(
                    d.finished || d.writer_reset.is_some() || d.stopped.is_some() || d.refused,
                    "reset: Finished on an open flow"
                );
            }
            Err(e) => Self::check_write_err(e, removed, closed, d, None),
        }
    }

    fn stop(&mut self, i: usize, sel: u8, code: u64) {
        let Some(id) = self.pick(i, sel) else { return };
        let f = self.flows.get_mut(&id).expect("modelled");
        let removed = f.removed[i];
        let d = &mut f.dirs[1 - i];
        match self.peers[i].conn.flow(FlowId(id)).stop(code) {
            Ok(()) => {
                assert!(!removed);
                if !d.reader_done() {
                    d.stopped = Some(clamp(code));
                }
            }
            Err(ReadError::UnknownFlow) => assert!(removed, "stop: UnknownFlow on a live flow"),
            Err(e) => panic!("stop failed: {e:?}"),
        }
    }

    /// One read; returns whether it made progress (data or an end).
    fn read(&mut self, i: usize, id: u64, size: usize, chunked: bool) -> bool {
        let closed = self.peers[i].closed.is_some();
        let f = self.flows.get_mut(&id).expect("modelled");
        let removed = f.removed[i];
        let waiting = f.read_waiting[i];
        let d = &mut f.dirs[1 - i];
        let writer = 1 - i;
        let conn = &mut self.peers[i].conn;
        let r: Result<Option<Vec<u8>>, ReadError> = if chunked {
            conn.flow(FlowId(id))
                .read_chunk(size)
                .map(|c| c.map(|b| b.to_vec()))
        } else {
            let mut buf = vec![0u8; size];
            conn.flow(FlowId(id)).read(&mut buf).map(|n| {
                buf.truncate(n);
                Some(buf)
            })
        };
        if removed {
            assert_eq!(
                r,
                Err(ReadError::UnknownFlow),
                "side {i}: read on forgotten flow {id}"
            );
            return false;
        }
        // Lost wakeup: after Blocked, data, an end, a reset or a close must
        // have been announced by Event::Readable.
        let asked = chunked || size > 0;
        let news = match &r {
            Ok(Some(data)) => !data.is_empty() || asked,
            Ok(None) => true,
            Err(ReadError::Reset(_) | ReadError::Closed) => true,
            Err(_) => false,
        };
        assert!(
            !(waiting && news && d.stopped.is_none()),
            "side {i} flow {id}: read made progress ({r:?}) after Blocked without \
             Event::Readable"
        );
        if matches!(r, Err(ReadError::Blocked)) && asked {
            self.flows.get_mut(&id).expect("modelled").read_waiting[i] = true;
            let d = &self.flows[&id].dirs[1 - i];
            assert!(
                !d.reader_done(),
                "side {i} flow {id}: Blocked after the end: {d:?}"
            );
            return false;
        }
        let d = &mut self.flows.get_mut(&id).expect("modelled").dirs[1 - i];
        match r {
            Ok(Some(data)) if !data.is_empty() => {
                let limit = if chunked { size.max(1) } else { size };
                assert!(data.len() <= limit, "read returned more than asked");
                assert!(
                    !d.fin_seen && d.reset_seen.is_none(),
                    "side {i} flow {id}: data after end/reset"
                );
                assert!(d.stopped.is_none(), "side {i} flow {id}: data after stop");
                let end = d.read + data.len() as u64;
                assert!(
                    end <= d.written,
                    "side {i} flow {id}: read {end} bytes but only {} written",
                    d.written
                );
                if let Some(off) = pattern_mismatch(writer, id, d.read, &data) {
                    panic!("side {i} flow {id}: wrong byte at offset {off}");
                }
                d.read = end;
                true
            }
            Ok(Some(_)) if !chunked && size == 0 => false,
            Ok(_) => {
                // End of data.
                // End of data, repeated by every later read.
                assert!(
                    d.stopped.is_none(),
                    "side {i} flow {id}: end of data after stop(): {d:?}"
                );
                assert!(
                    d.finished && d.writer_reset.is_none(),
                    "side {i} flow {id}: end of data but the writer did not finish: {d:?}"
                );
                assert_eq!(
                    d.read, d.written,
                    "side {i} flow {id}: end of data after {} of {} bytes",
                    d.read, d.written
                );
                assert!(
                    d.reset_seen.is_none(),
                    "side {i} flow {id}: FIN after reset"
                );
                let first = !d.fin_seen;
                d.fin_seen = true;
                first
            }
            Err(ReadError::Blocked) => {
                assert!(
                    !d.reader_done(),
                    "side {i} flow {id}: Blocked after the end: {d:?}"
                );
                false
            }
            Err(ReadError::Reset(c)) => {
                assert!(
                    d.stopped.is_none(),
                    "side {i} flow {id}: Reset({c}) after stop()"
                );
                assert!(!d.fin_seen, "side {i} flow {id}: Reset after FIN");
                if let Some(seen) = d.reset_seen {
                    // Every read after the end repeats it.
                    assert_eq!(seen, c, "side {i} flow {id}: reset code changed");
                    return false;
                }
                assert!(
                    d.writer_reset == Some(c) || (c == REFUSED && d.refused),
                    "side {i} flow {id}: Reset({c}) but writer reset {:?} refused {}",
                    d.writer_reset,
                    d.refused
                );
                d.reset_seen = Some(c);
                true
            }
            Err(ReadError::Stopped) => {
                assert!(d.stopped.is_some(), "ReadError::Stopped without stop");
                false
            }
            Err(ReadError::Closed) => {
                assert!(closed, "side {i}: ReadError::Closed on an open connection");
                assert!(!d.reader_done());
                false
            }
            Err(ReadError::UnknownFlow) => panic!("side {i}: UnknownFlow for live flow {id}"),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    /// Reads every flow `i` knows until it blocks or ends; returns whether
    /// anything happened.
    fn read_all(&mut self, i: usize, size: usize) -> bool {
        let mut progress = false;
        let ids = self.peers[i].known.clone();
        for id in ids {
            let mut reads = 0;
            loop {
                let f = &self.flows[&id];
                if f.removed[i] || f.dirs[1 - i].reader_done() {
                    break;
                }
                let p = self.read(i, id, size, reads % 2 == 1);
                self.drain_all();
                if !p {
                    break;
                }
                progress = true;
                reads += 1;
            }
        }
        progress
    }

    fn ping(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.peers[i];
        while p
            .pings
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            p.pings.pop_front();
        }
        if p.pings.len() >= APP_PINGS_PER_SEC {
            return;
        }
        match p.conn.ping() {
            Ok(_) => {
                assert!(p.closed.is_none());
                p.pings.push_back(now);
            }
            Err(PingError::TooMany) => {}
            Err(PingError::Closed) => assert!(p.closed.is_some()),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    fn go_away(&mut self, i: usize, code: u64) {
        let p = &mut self.peers[i];
        p.conn.go_away(code);
        if p.closed.is_none() {
            p.goaway_sent = true;
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        for i in 0..2 {
            self.peers[i].conn.handle_timeout(self.now);
            self.drain_all();
        }
    }

    fn to_deadline(&mut self, i: usize) {
        if let Some((t, _)) = self.peers[i].conn.poll_timeout() {
            assert!(self.peers[i].closed.is_none(), "deadline while closed");
            self.now = self.now.max(t);
            for j in [i, 1 - i] {
                self.peers[j].conn.handle_timeout(self.now);
                self.drain_all();
            }
        }
    }

    /// Moves up to `max` bytes from `from`'s pipe to the other side in
    /// `chunk`-sized inputs; returns how many.
    fn deliver(&mut self, from: usize, max: usize, chunk: usize, zero_copy: bool) -> usize {
        let to = 1 - from;
        let n = max.min(self.pipes[from].len());
        if n == 0 {
            return 0;
        }
        let bytes: Vec<u8> = self.pipes[from].drain(..n).collect();
        // At most 256 inputs per delivery keeps execs fast; small deliveries
        // still go byte by byte when asked.
        let chunk = chunk.max(1).max(n.div_ceil(256));
        for piece in bytes.chunks(chunk) {
            let was_closed = self.peers[to].closed.is_some();
            let r = if zero_copy {
                self.peers[to]
                    .conn
                    .handle_input_bytes(self.now, Bytes::copy_from_slice(piece))
            } else {
                self.peers[to].conn.handle_input(self.now, piece)
            };
            match r {
                Ok(()) => assert!(!was_closed, "input accepted by a closed connection"),
                Err(InputError::Closed) => {
                    assert!(was_closed, "Err(Closed) from an open connection");
                    // Nobody will ever read the rest.
                    self.pipes[from].clear();
                    self.drain_all();
                    return n;
                }
                Err(InputError::Protocol(e)) => panic!(
                    "side {to}: honest peer caused a protocol error: {e:?} ({})",
                    e.code().to_wire()
                ),
                Err(e) => panic!("unexpected {e:?}"),
            }
            self.drain_all();
        }
        n
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Open { who, side_channel } => self.open(who.idx(), side_channel),
            Op::Write {
                who,
                flow,
                len,
                chunk,
            } => self.write(who.idx(), flow, usize::from(len), chunk),
            Op::WriteBig { who, flow, kib } => {
                self.write(who.idx(), flow, usize::from(kib) * 1024, false)
            }
            Op::Finish { who, flow } => self.finish(who.idx(), flow),
            Op::Reset { who, flow, code } => self.reset(who.idx(), flow, code.get()),
            Op::Stop { who, flow, code } => self.stop(who.idx(), flow, code.get()),
            Op::Read { who, flow, size } => {
                if let Some(id) = self.pick(who.idx(), flow) {
                    self.read(who.idx(), id, usize::from(size), false);
                }
            }
            Op::ReadChunk { who, flow, max } => {
                if let Some(id) = self.pick(who.idx(), flow) {
                    self.read(who.idx(), id, usize::from(max), true);
                }
            }
            Op::ReadAll { who } => {
                self.read_all(who.idx(), 4096);
            }
            Op::Ping { who } => self.ping(who.idx()),
            Op::GoAway { who, code } => self.go_away(who.idx(), code.get()),
            Op::Close { who, code, reason } => {
                let reason = vec![b'r'; usize::from(reason)];
                self.peers[who.idx()].conn.close(code.get(), &reason);
            }
            Op::TransportClosed { who } => {
                self.peers[who.idx()].conn.handle_transport_closed(self.now);
            }
            Op::Advance { step } => {
                const STEPS_MS: [u64; 12] = [
                    0, 1, 5, 20, 100, 400, 1000, 2500, 10_000, 16_000, 31_000, 61_000,
                ];
                self.advance(Duration::from_millis(STEPS_MS[usize::from(step) % 12]));
            }
            Op::ToDeadline { who } => self.to_deadline(who.idx()),
            Op::Deliver {
                from,
                max,
                chunk,
                zero_copy,
            } => {
                self.deliver(from.idx(), usize::from(max), usize::from(chunk), zero_copy);
            }
            Op::DeliverAll { from, zero_copy } => {
                self.deliver(from.idx(), usize::MAX, usize::MAX, zero_copy);
            }
        }
        self.drain_all();
    }

    /// Both connections still up, or closed only by a graceful drain.
    fn healthy(&self) -> bool {
        self.peers.iter().all(|p| match &p.closed {
            None => true,
            Some(CloseReason::Drained) => true,
            Some(CloseReason::Transport {
                code: ErrorCode::NoError,
                ..
            }) => true,
            Some(_) => false,
        })
    }

    /// The network heals: deliver everything both ways and read every flow
    /// until nothing moves, then check every flow's outcome.
    fn heal(&mut self) {
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 100_000, "heal does not converge");
            let mut progress = false;
            for from in 0..2 {
                progress |= self.deliver(from, usize::MAX, 64 * 1024, rounds % 2 == 0) > 0;
            }
            for i in 0..2 {
                progress |= self.read_all(i, 16 * 1024);
            }
            if !progress {
                break;
            }
        }
        assert!(self.pipes.iter().all(|p| p.is_empty()));
        let healthy = self.healthy();
        for (&id, f) in &self.flows {
            for w in 0..2 {
                let r = 1 - w;
                let d = &f.dirs[w];
                if d.refused || d.stopped.is_some() {
                    continue;
                }
                if !healthy {
                    continue;
                }
                if r != f.opener {
                    assert!(
                        self.peers[r].known.contains(&id),
                        "flow {id} never reached side {r}"
                    );
                }
                if d.writer_reset.is_some() {
                    assert_eq!(
                        d.reset_seen, d.writer_reset,
                        "flow {id} {w}->{r}: reset not delivered: {d:?}"
                    );
                } else {
                    assert_eq!(
                        d.read, d.written,
                        "flow {id} {w}->{r}: not all data delivered: {d:?}"
                    );
                    if d.finished {
                        assert!(d.fin_seen, "flow {id} {w}->{r}: FIN not delivered: {d:?}");
                    }
                }
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let mut w = World::new(&input);
    for op in input.ops.iter().take(MAX_OPS) {
        w.ops += 1;
        if tracing() {
            eprintln!("op {}: {op:?}", w.ops);
        }
        w.apply(op);
    }
    w.heal();
    if tracing() {
        for (i, p) in w.peers.iter().enumerate() {
            eprintln!(
                "side {i}: closed {:?}, stats {:?}",
                p.closed,
                p.conn.stats()
            );
        }
        for (id, f) in &w.flows {
            eprintln!("flow {id}: {f:?}");
        }
    }
});
