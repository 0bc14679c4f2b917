//! Two `taps::connection::Connection`s over the simulator, a few hundred
//! seeds: seeded latency, re-chunking, transmit pacing (so lifetimes can
//! pass), small receive buffers (so the reader holds the writer), and
//! receive requests of seeded sizes (so messages arrive in parts).
//!
//! Checked for every seed: each message taken by `send` gets exactly one
//! of `Sent` and `Expired`; `Sent` follows priority order, FIFO within a
//! priority (everything is queued before the first byte goes); the peer
//! receives exactly the sent messages, intact and in that order; both
//! ends finish with `Closed` (the client's `close`, then the server seeing
//! the stream end at a boundary).

#[path = "common/rng.rs"]
mod rng;

use bytes::Bytes;
use proto_core::sim::{Accept, LinkConfig, Net, NetConfig, NetEvent};
use proto_core::taps::connection::{Config, Connection, Event};
use proto_core::taps::framer::{Delimiter, Framer, LengthPrefix};
use proto_core::taps::message::{MessageProperties, MessageRef};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use rng::Rng;
use std::collections::VecDeque;

const SEEDS: u64 = 300;

/// One end: the connection, what the network delivered but it has not
/// taken yet (the driver's read buffer while `wants_input` is false), and
/// what its application has seen.
struct End {
    conn: Connection,
    inbox: VecDeque<Vec<u8>>,
    events: Vec<Event>,
    outstanding: usize,
    received: Vec<Vec<u8>>,
    partial: Vec<u8>,
    fin_seen: bool,
}

impl End {
    fn new(cfg: Config, framer: Box<dyn Framer>) -> End {
        End {
            conn: Connection::new(cfg, framer, Instant::ZERO).unwrap(),
            inbox: VecDeque::new(),
            events: Vec::new(),
            outstanding: 0,
            received: Vec::new(),
            partial: Vec::new(),
            fin_seen: false,
        }
    }

    /// Feeds the inbox while the connection takes input, then reads events
    /// and keeps four receive requests outstanding.
    fn run(&mut self, now: Instant, rng: &mut Rng) {
        while self.conn.wants_input() && !self.conn.is_closed() {
            let Some(d) = self.inbox.pop_front() else {
                break;
            };
            self.conn.handle_input(now, d.into()).unwrap();
        }
        if self.inbox.is_empty() && self.fin_seen && !self.conn.is_closed() {
            self.conn.handle_transport_closed(now);
        }
        loop {
            while let Some(ev) = self.conn.poll_event() {
                if let Event::Received { data, context }
                | Event::ReceivedPartial { data, context } = &ev
                {
                    self.outstanding -= 1;
                    assert_eq!(context.offset, self.partial.len() as u64);
                    self.partial.extend_from_slice(data);
                    if context.end_of_message {
                        self.received.push(std::mem::take(&mut self.partial));
                    }
                }
                self.events.push(ev);
            }
            if self.outstanding >= 4 || self.conn.is_closed() {
                break;
            }
            let max = if rng.chance(50) {
                usize::MAX
            } else {
                rng.range(1, 700) as usize
            };
            let min = if rng.chance(50) {
                usize::MAX
            } else {
                rng.range(1, 400) as usize
            };
            if self.conn.receive(min, max).is_err() {
                break;
            }
            self.outstanding += 1;
        }
    }
}

/// The messages one side sends: (priority, lifetime, bytes), all queued at
/// time zero. Bytes are odd so the delimiter framer's `\n` never appears.
fn plan(rng: &mut Rng, n: usize) -> Vec<(u32, Option<Duration>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let len = rng.range(0, 2000) as usize;
            let fill = rng.next() as u8 | 1;
            let body = (0..len)
                .map(|j| fill.wrapping_add((j * 2 + i * 6) as u8) | 1)
                .collect();
            let life = rng
                .chance(20)
                .then(|| Duration::from_micros(rng.range(0, 20_000)));
            (rng.range(0, 4) as u32, life, body)
        })
        .collect()
}

fn queue(end: &mut End, plan: &[(u32, Option<Duration>, Vec<u8>)]) {
    for (i, (priority, lifetime, body)) in plan.iter().enumerate() {
        let props = MessageProperties {
            priority: *priority,
            lifetime: *lifetime,
            ..MessageProperties::default()
        };
        end.conn
            .send(
                Instant::ZERO,
                MessageRef(i as u64),
                Bytes::copy_from_slice(body),
                props,
            )
            .unwrap();
    }
}

/// The sender's view checked against the plan; returns the messages it
/// sent, in `Sent` order.
fn check_sender(
    seed: u64,
    who: &str,
    events: &[Event],
    plan: &[(u32, Option<Duration>, Vec<u8>)],
) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    let mut expired = Vec::new();
    for ev in events {
        match ev {
            Event::Sent(m) => sent.push(m.0 as usize),
            Event::Expired(m) => expired.push(m.0 as usize),
            Event::SendError { .. } | Event::ConnectionError(_) => {
                panic!("seed {seed} {who}: {ev:?}")
            }
            _ => {}
        }
    }
    let mut all: Vec<usize> = sent.iter().chain(&expired).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..plan.len()).collect::<Vec<_>>(),
        "seed {seed} {who}: one outcome each"
    );
    for &e in &expired {
        assert!(
            plan[e].1.is_some(),
            "seed {seed} {who}: {e} expired without a lifetime"
        );
    }
    let mut want: Vec<usize> = sent.clone();
    want.sort_by_key(|&i| (plan[i].0, i));
    assert_eq!(
        sent, want,
        "seed {seed} {who}: Sent follows priority, then FIFO"
    );
    sent.iter().map(|&i| plan[i].2.clone()).collect()
}

fn run(seed: u64) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let cfg = NetConfig {
        link: LinkConfig {
            latency: (Duration::from_micros(100), Duration::from_millis(3)),
            max_chunk: 1 + (rng.next() % 1500) as usize,
            ..LinkConfig::default()
        },
        ..NetConfig::default()
    };
    let mut net = Net::new(cfg, seed, false);
    let a = net.add_host("client").unwrap();
    let b = net.add_host("server").unwrap();
    let l = net.listen(b, ":0").unwrap();
    net.dial(a, "server:1").unwrap();
    let config = Config {
        max_buffered_receive_bytes: rng.range(1024, 8192) as usize,
        max_transmit_chunk: rng.range(64, 2048) as usize,
        ..Config::default()
    };
    let delimited = seed.is_multiple_of(3);
    let framer = || -> Box<dyn Framer> {
        if delimited {
            Box::new(Delimiter::default())
        } else {
            Box::new(LengthPrefix::default())
        }
    };
    let mut c = End::new(config.clone(), framer());
    let mut s = End::new(config, framer());
    let c_plan = plan(&mut rng, 24);
    let s_plan = plan(&mut rng, 16);
    queue(&mut c, &c_plan);
    queue(&mut s, &s_plan);
    let (mut ca, mut cb) = (None, None);
    let mut closing = false;
    let mut shut = [false, false];
    let mut steps = 0u64;
    while !(c.conn.is_closed() && s.conn.is_closed()) {
        steps += 1;
        assert!(steps < 5_000_000, "seed {seed}: no progress");
        let now = net.now();
        let mut transmitted = false;
        for (i, (conn, end)) in [(ca, &mut c), (cb, &mut s)].into_iter().enumerate() {
            let Some(conn) = conn else { continue };
            if end.conn.poll_timeout().is_some_and(|d| d <= now) {
                end.conn.handle_timeout(now);
            }
            // One transmit call per step: sending takes virtual time.
            let mut buf = Vec::new();
            if end.conn.poll_transmit(&mut buf).is_some() {
                net.send(conn, &buf).unwrap();
                transmitted = true;
            }
            end.run(now, &mut rng);
            if end.conn.is_closed() && !end.conn.wants_transmit() && !shut[i] {
                shut[i] = true;
                let _ = net.shutdown_write(conn);
            }
        }
        // The client closes once it has every message the server sent.
        let s_done = s
            .events
            .iter()
            .filter(|e| matches!(e, Event::Sent(_) | Event::Expired(_)))
            .count();
        if !closing
            && s_done == s_plan.len()
            && c.received.len()
                == s.events
                    .iter()
                    .filter(|e| matches!(e, Event::Sent(_)))
                    .count()
        {
            closing = true;
            c.conn.close(now);
            c.run(now, &mut rng);
        }
        if !net.step() {
            let next = [c.conn.poll_timeout(), s.conn.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let pace = now + Duration::from_micros(50);
            match (
                transmitted || c.conn.wants_transmit() || s.conn.wants_transmit(),
                next,
            ) {
                (true, Some(t)) => net.advance_to(t.min(pace).max(now + Duration::from_nanos(1))),
                (true, None) => net.advance_to(pace),
                (false, Some(t)) => net.advance_to(t.max(now + Duration::from_nanos(1))),
                (false, None) => {
                    // Nothing in flight: every end must be done or
                    // waiting on its application's reads.
                    if c.inbox.is_empty()
                        && s.inbox.is_empty()
                        && !c.conn.wants_transmit()
                        && !s.conn.wants_transmit()
                    {
                        net.advance_to(pace);
                    }
                }
            }
        }
        while let Some(ev) = net.poll_event() {
            match ev {
                NetEvent::Dialed { result, .. } => ca = Some(result.unwrap()),
                NetEvent::Incoming(_) | NetEvent::Accepted { .. } => {
                    if let Ok(Accept::Ready(conn)) = net.accept(l) {
                        cb = Some(conn);
                    }
                }
                NetEvent::Data { conn, data } => {
                    let end = if Some(conn) == ca { &mut c } else { &mut s };
                    end.inbox.push_back(data);
                }
                NetEvent::Fin(conn) => {
                    let end = if Some(conn) == ca { &mut c } else { &mut s };
                    end.fin_seen = true;
                }
                _ => {}
            }
        }
    }
    let c_sent = check_sender(seed, "client", &c.events, &c_plan);
    let s_sent = check_sender(seed, "server", &s.events, &s_plan);
    assert_eq!(
        s.received, c_sent,
        "seed {seed}: server received what the client sent"
    );
    assert_eq!(
        c.received, s_sent,
        "seed {seed}: client received what the server sent"
    );
    for (who, end) in [("client", &c), ("server", &s)] {
        assert_eq!(end.events.first(), Some(&Event::Ready), "seed {seed} {who}");
        assert_eq!(end.events.last(), Some(&Event::Closed), "seed {seed} {who}");
    }
    let expired = c_plan.len() + s_plan.len() - c_sent.len() - s_sent.len();
    let partials = c
        .events
        .iter()
        .chain(&s.events)
        .filter(|e| matches!(e, Event::ReceivedPartial { .. }))
        .count();
    (expired, partials)
}

#[test]
fn messages_cross_the_simulator_intact_and_in_priority_order() {
    let (mut expired, mut partials) = (0, 0);
    for seed in 0..SEEDS {
        let (e, p) = run(seed);
        expired += e;
        partials += p;
    }
    // The seeds reach the cases they are for.
    assert!(expired > 0, "no lifetime ever passed");
    assert!(partials > 0, "no message arrived in parts");
}
