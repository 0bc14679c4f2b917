//! Differential: one `arbitrary` operation sequence drives two pairs of
//! connections, one speaking the native profile and one yamux, and both must
//! deliver the same bytes on every flow.
//!
//! Ops: open a flow (either side), ask to write `len` more bytes on a flow
//! (from either end), finish a side of a flow, read on either end, move some
//! of one direction's bytes (any chunking) or all of them, ping, advance the
//! clock. Flows are named by open order, so the profiles' different ids do
//! not matter. Writes accept what the send buffers take; the rest stays
//! pending and is retried, so both pairs are asked for the same byte
//! streams however their framing differs.
//!
//! Checked: no protocol error and no close in either pair; what each end
//! reads is a prefix of what the other end wrote (a pseudo-random pattern of
//! flow, direction and offset); after the network heals (everything written,
//! delivered and read), both pairs delivered the whole stream with its FIN
//! in each direction the op sequence finished, and the same bytes.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use proto_core::mux::{Config, Connection, Event, FlowId, OpenError, Profile, ReadError, Side};
use proto_core::time::{Duration, Instant};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Open { by_b: bool },
    Write { flow: u8, from_b: bool, len: u16 },
    Finish { flow: u8, from_b: bool },
    Read { flow: u8, at_b: bool, size: u16 },
    Deliver { to_b: bool, max: u16, chunk: u16 },
    DeliverAll { to_b: bool },
    Ping { by_b: bool },
    Advance { ms: u8 },
}

const MAX_FLOWS: usize = 48;
const MAX_BYTES_PER_DIR: usize = 1 << 20;

fn byte(flow: usize, from_b: bool, offset: usize) -> u8 {
    let x = (offset as u64)
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(flow as u64 * 7919 + u64::from(from_b) * 104_729);
    (x ^ (x >> 13)) as u8
}

/// One direction of one flow: what the op sequence asked for and what
/// happened.
#[derive(Default, Clone, Debug)]
struct Dir {
    wanted: usize,
    written: usize,
    fin_wanted: bool,
    fin_sent: bool,
    got: Vec<u8>,
    eof: bool,
}

struct World {
    conns: [Connection; 2],
    /// Bytes in flight towards conns[i].
    pipes: [Vec<u8>; 2],
    flows: Vec<FlowId>,
    /// dirs[flow][0] = a -> b, dirs[flow][1] = b -> a.
    dirs: Vec<[Dir; 2]>,
    known: [Vec<FlowId>; 2],
    now: Instant,
}

impl World {
    fn new(profile: Profile) -> Self {
        let mut cfg = Config::default();
        cfg.profile = profile;
        cfg.conn_recv_budget = 1 << 20;
        // Clock jumps without traffic are not what this target compares.
        cfg.keepalive_interval = None;
        cfg.channel_timeout = None;
        let now = Instant::ZERO;
        World {
            conns: [
                Connection::new(cfg.clone(), Side::Dialer, now).unwrap(),
                Connection::new(cfg, Side::Acceptor, now).unwrap(),
            ],
            pipes: [Vec::new(), Vec::new()],
            flows: Vec::new(),
            dirs: Vec::new(),
            known: [Vec::new(), Vec::new()],
            now,
        }
    }

    fn drain(&mut self) {
        for i in 0..2 {
            let mut out = Vec::new();
            while self.conns[i].poll_transmit(&mut out).is_some() {}
            self.pipes[1 - i].extend_from_slice(&out);
            while let Some(ev) = self.conns[i].poll_event() {
                match ev {
                    Event::FlowOpened { id, .. } => self.known[i].push(id),
                    Event::Closed(why) => panic!("connection {i} closed: {why:?}"),
                    _ => {}
                }
            }
        }
    }

    fn deliver(&mut self, to: usize, max: usize, chunk: usize) {
        let n = max.min(self.pipes[to].len());
        let bytes: Vec<u8> = self.pipes[to].drain(..n).collect();
        for piece in bytes.chunks(chunk.max(1)) {
            self.conns[to]
                .handle_input(self.now, piece)
                .expect("honest peers never break the protocol");
        }
        self.drain();
    }

    /// Pushes pending writes and FINs of every flow.
    fn pump(&mut self) {
        for f in 0..self.flows.len() {
            let id = self.flows[f];
            for from in 0..2 {
                let d = &mut self.dirs[f][from];
                let conn = &mut self.conns[from];
                if !self.known[from].contains(&id) {
                    continue;
                }
                while d.written < d.wanted {
                    let chunk: Vec<u8> = (d.written..d.wanted.min(d.written + 65536))
                        .map(|o| byte(f, from == 1, o))
                        .collect();
                    match conn.flow(id).write(&chunk) {
                        Ok(n) => d.written += n,
                        Err(_) => break,
                    }
                }
                if d.fin_wanted && !d.fin_sent && d.written == d.wanted {
                    conn.flow(id).finish().expect("finish");
                    d.fin_sent = true;
                }
            }
        }
        self.drain();
    }

    fn read(&mut self, f: usize, at: usize, size: usize) {
        let id = self.flows[f];
        if !self.known[at].contains(&id) {
            return;
        }
        let d = &mut self.dirs[f][1 - at];
        if d.eof {
            return;
        }
        let mut buf = vec![0u8; size.max(1)];
        loop {
            match self.conns[at].flow(id).read(&mut buf) {
                Ok(0) => {
                    d.eof = true;
                    break;
                }
                Ok(n) => {
                    let start = d.got.len();
                    for (i, b) in buf[..n].iter().enumerate() {
                        assert_eq!(
                            *b,
                            byte(f, at == 0, start + i),
                            "flow {f} offset {}",
                            start + i
                        );
                    }
                    d.got.extend_from_slice(&buf[..n]);
                }
                Err(ReadError::Blocked) => break,
                Err(e) => panic!("read on flow {f}: {e}"),
            }
            if size < 70_000 {
                break;
            }
        }
        self.drain();
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Open { by_b } => {
                if self.flows.len() >= MAX_FLOWS {
                    return;
                }
                let i = usize::from(by_b);
                match self.conns[i].open_flow() {
                    Ok(id) => {
                        self.flows.push(id);
                        self.dirs.push(Default::default());
                        self.known[i].push(id);
                    }
                    Err(OpenError::FlowLimit) => {}
                    Err(e) => panic!("open: {e}"),
                }
            }
            Op::Write { flow, from_b, len } => {
                if let Some(f) = self.pick(flow) {
                    let d = &mut self.dirs[f][usize::from(from_b)];
                    if !d.fin_wanted {
                        d.wanted = (d.wanted + usize::from(len)).min(MAX_BYTES_PER_DIR);
                    }
                }
            }
            Op::Finish { flow, from_b } => {
                if let Some(f) = self.pick(flow) {
                    self.dirs[f][usize::from(from_b)].fin_wanted = true;
                }
            }
            Op::Read { flow, at_b, size } => {
                if let Some(f) = self.pick(flow) {
                    self.read(f, usize::from(at_b), usize::from(size));
                }
            }
            Op::Deliver { to_b, max, chunk } => {
                self.deliver(usize::from(to_b), usize::from(max), usize::from(chunk))
            }
            Op::DeliverAll { to_b } => self.deliver(usize::from(to_b), usize::MAX, usize::MAX),
            Op::Ping { by_b } => {
                let _ = self.conns[usize::from(by_b)].ping();
            }
            Op::Advance { ms } => {
                self.now += Duration::from_millis(u64::from(ms));
                for c in &mut self.conns {
                    c.handle_timeout(self.now);
                }
            }
        }
        self.pump();
    }

    fn pick(&self, flow: u8) -> Option<usize> {
        (!self.flows.is_empty()).then(|| usize::from(flow) % self.flows.len())
    }

    /// Deliver, write and read until nothing moves.
    fn heal(&mut self) {
        for _ in 0..100_000 {
            self.pump();
            let moved = !self.pipes[0].is_empty() || !self.pipes[1].is_empty();
            self.deliver(0, usize::MAX, usize::MAX);
            self.deliver(1, usize::MAX, usize::MAX);
            for f in 0..self.flows.len() {
                self.read(f, 0, 1 << 20);
                self.read(f, 1, 1 << 20);
            }
            if !moved && self.pipes.iter().all(|p| p.is_empty()) {
                return;
            }
        }
        panic!("network never settled");
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut worlds = [World::new(Profile::Native), World::new(Profile::Yamux)];
    for op in ops.iter().take(2000) {
        for w in &mut worlds {
            w.apply(*op);
        }
    }
    for w in &mut worlds {
        w.heal();
    }
    let [native, yamux] = &worlds;
    assert_eq!(native.flows.len(), yamux.flows.len(), "flows opened");
    for f in 0..native.flows.len() {
        for dir in 0..2 {
            let (n, y) = (&native.dirs[f][dir], &yamux.dirs[f][dir]);
            for (name, d) in [("native", n), ("yamux", y)] {
                assert_eq!(d.got.len(), d.wanted, "{name}: flow {f} dir {dir} length");
                assert_eq!(d.eof, d.fin_wanted, "{name}: flow {f} dir {dir} FIN");
            }
            assert!(n.got == y.got, "flow {f} dir {dir}: profiles differ");
        }
    }
});
