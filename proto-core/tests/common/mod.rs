//! A deterministic two-peer harness: two mux connections joined by
//! in-memory pipes with virtual time and seeded faults (re-chunking, delays,
//! a reader that stops, a bounded pipe that pushes back on the sender).

#![allow(dead_code)]

use proto_core::mux::{Config, Connection, Event, FlowId, Profile, ReadError, Side, WriteError};
use proto_core::time::{Duration, Instant};
use std::collections::VecDeque;

mod rng;
pub use rng::Rng;

/// What the network does to bytes.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Deliveries are cut into pieces of 1..=max_chunk bytes.
    pub max_chunk: usize,
    /// One-way latency range, nanoseconds.
    pub delay: (u64, u64),
    /// Bytes a pipe holds before the sender must wait (like a socket buffer).
    pub pipe_capacity: usize,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            max_chunk: usize::MAX,
            delay: (1_000_000, 1_000_000),
            pipe_capacity: 4 << 20,
        }
    }
}

#[derive(Default)]
struct Pipe {
    /// (arrival time, bytes), arrival times non-decreasing.
    queue: VecDeque<(Instant, Vec<u8>)>,
    held: usize,
    /// The receiving side does not read its socket.
    paused: bool,
    /// The pipe is cut: nothing more is delivered.
    cut: bool,
}

pub struct Peer {
    pub conn: Connection,
    pub events: Vec<Event>,
}

pub struct Pair {
    pub a: Peer,
    pub b: Peer,
    pub now: Instant,
    pub rng: Rng,
    pub faults: Faults,
    ab: Pipe,
    ba: Pipe,
    /// Every byte each side transmitted, for determinism checks.
    pub transcript: Vec<u8>,
}

impl Pair {
    pub fn new(seed: u64) -> Self {
        Self::with(
            seed,
            Config::default(),
            Config::default(),
            Faults::default(),
        )
    }

    /// Default configs speaking `profile`.
    pub fn of(seed: u64, profile: Profile) -> Self {
        Self::with(seed, cfg(profile), cfg(profile), Faults::default())
    }

    pub fn with(seed: u64, ca: Config, cb: Config, faults: Faults) -> Self {
        let now = Instant::ZERO;
        Pair {
            a: Peer {
                conn: Connection::new(ca, Side::Dialer, now).unwrap(),
                events: Vec::new(),
            },
            b: Peer {
                conn: Connection::new(cb, Side::Acceptor, now).unwrap(),
                events: Vec::new(),
            },
            now,
            rng: Rng::new(seed),
            faults,
            ab: Pipe::default(),
            ba: Pipe::default(),
            transcript: Vec::new(),
        }
    }

    pub fn pause_a_reading(&mut self, paused: bool) {
        self.ba.paused = paused;
    }

    pub fn pause_b_reading(&mut self, paused: bool) {
        self.ab.paused = paused;
    }

    /// Cuts both directions: nothing more is delivered.
    pub fn cut(&mut self) {
        self.ab.cut = true;
        self.ba.cut = true;
    }

    pub fn held_ab(&self) -> usize {
        self.ab.held
    }

    /// Drains transmits and events of both sides (as the contract requires).
    pub fn flush(&mut self) {
        Self::drain(
            &mut self.a,
            &mut self.ab,
            self.now,
            &mut self.rng,
            &self.faults,
            &mut self.transcript,
        );
        Self::drain(
            &mut self.b,
            &mut self.ba,
            self.now,
            &mut self.rng,
            &self.faults,
            &mut self.transcript,
        );
    }

    fn drain(
        peer: &mut Peer,
        pipe: &mut Pipe,
        now: Instant,
        rng: &mut Rng,
        faults: &Faults,
        transcript: &mut Vec<u8>,
    ) {
        while pipe.held < faults.pipe_capacity {
            let mut out = Vec::new();
            if peer.conn.poll_transmit(&mut out).is_none() {
                break;
            }
            transcript.extend_from_slice(&out);
            if pipe.cut {
                continue;
            }
            let delay = rng.range(faults.delay.0, faults.delay.1);
            let last = pipe.queue.back().map_or(Instant::ZERO, |(t, _)| *t);
            let at = (now + Duration::from_nanos(delay)).max(last);
            pipe.held += out.len();
            pipe.queue.push_back((at, out));
        }
        while let Some(ev) = peer.conn.poll_event() {
            peer.events.push(ev);
        }
    }

    fn deliver(peer: &mut Peer, pipe: &mut Pipe, now: Instant, rng: &mut Rng, faults: &Faults) {
        if pipe.paused || pipe.cut {
            return;
        }
        while pipe.queue.front().is_some_and(|(t, _)| *t <= now) {
            let (_, bytes) = pipe.queue.pop_front().unwrap();
            pipe.held -= bytes.len();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = if faults.max_chunk == usize::MAX {
                    rest.len()
                } else {
                    (rng.range(1, faults.max_chunk as u64) as usize).min(rest.len())
                };
                let _ = peer.conn.handle_input(now, &rest[..n]);
                rest = &rest[n..];
                while let Some(ev) = peer.conn.poll_event() {
                    peer.events.push(ev);
                }
            }
        }
    }

    /// One step: flush, deliver what is due, then advance time to the next
    /// arrival or timer. Returns false when nothing is pending at all.
    pub fn step(&mut self) -> bool {
        self.flush();
        Self::deliver(
            &mut self.b,
            &mut self.ab,
            self.now,
            &mut self.rng,
            &self.faults,
        );
        Self::deliver(
            &mut self.a,
            &mut self.ba,
            self.now,
            &mut self.rng,
            &self.faults,
        );
        self.flush();
        let next_arrival = [&self.ab, &self.ba]
            .into_iter()
            .filter(|p| !p.paused && !p.cut)
            .filter_map(|p| p.queue.front().map(|(t, _)| *t))
            .min();
        match next_arrival {
            Some(t) => {
                self.now = self.now.max(t);
                true
            }
            None => false,
        }
    }

    /// Steps until the network is quiet (timers are not advanced).
    pub fn settle(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// Advances virtual time to `t`, firing timers on the way.
    pub fn advance_to(&mut self, t: Instant) {
        loop {
            self.settle();
            let next = [self.a.conn.poll_timeout(), self.b.conn.poll_timeout()]
                .into_iter()
                .flatten()
                .map(|(d, _)| d)
                .min();
            match next {
                Some(d) if d <= t => {
                    self.now = self.now.max(d);
                    self.a.conn.handle_timeout(self.now);
                    self.b.conn.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
        self.settle();
    }

    pub fn advance(&mut self, d: Duration) {
        let t = self.now + d;
        self.advance_to(t);
    }

    pub fn take_events_a(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.a.events)
    }

    pub fn take_events_b(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.b.events)
    }
}

/// The default config speaking `profile`.
pub fn cfg(profile: Profile) -> Config {
    let mut c = Config::default();
    c.profile = profile;
    c
}

/// The code a reader sees after the writer reset with `code`: yamux's RST
/// carries none.
pub fn reset_code(profile: Profile, code: u64) -> u64 {
    match profile {
        Profile::Yamux => 0,
        _ => code,
    }
}

/// Deterministic content: byte `i` of flow `seed`.
pub fn pattern(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let x = (offset + i)
                .wrapping_mul(0x9e37_79b9)
                .wrapping_add(seed * 7919);
            (x ^ (x >> 13)) as u8
        })
        .collect()
}

/// Writes as much of `data[*pos..]` as the flow takes.
pub fn pump_write(conn: &mut Connection, id: FlowId, data: &[u8], pos: &mut usize) {
    while *pos < data.len() {
        match conn.flow(id).write(&data[*pos..]) {
            Ok(n) => *pos += n,
            Err(WriteError::Blocked) => break,
            Err(e) => panic!("write on {id}: {e}"),
        }
    }
}

/// Like [`pump_write`] through `write_chunk`, in pieces of at most `piece`.
pub fn pump_write_chunks(
    conn: &mut Connection,
    id: FlowId,
    data: &bytes::Bytes,
    pos: &mut usize,
    piece: usize,
) {
    while *pos < data.len() {
        let end = (*pos + piece).min(data.len());
        match conn.flow(id).write_chunk(data.slice(*pos..end)) {
            Ok(n) => *pos += n,
            Err(WriteError::Blocked) => break,
            Err(e) => panic!("write_chunk on {id}: {e}"),
        }
    }
}

/// Reads everything available; returns Some(true) at FIN.
pub fn pump_read(conn: &mut Connection, id: FlowId, into: &mut Vec<u8>) -> Result<bool, ReadError> {
    let mut buf = [0u8; 7000];
    loop {
        match conn.flow(id).read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(ReadError::Blocked) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

pub fn opened(events: &[Event]) -> Vec<FlowId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::FlowOpened { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}
