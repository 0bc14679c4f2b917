//! The reference byte-stream machine (`sim::echo`) through the simulator,
//! both ways: directly on a simulated stream, and on one flow of a mux
//! connection (`mux::OnFlow`), plain and under `Secured`, with seeded
//! latency jitter and re-chunking. The same machine runs on every adapter
//! (the conformance suite).

mod secure_common;

use bytes::Bytes;
use proto_core::mux::{self, OnFlow, Side};
use proto_core::secure::{
    AllowAny, Config as SecureConfig, Handshake, PeerAuthorizer, Secured, Seed,
};
use proto_core::sim::echo::{Echo, EchoRole};
use proto_core::sim::{LinkConfig, Net, NetConfig, NetEvent};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use secure_common::Fixture;
use std::sync::Arc;

/// What a test machine offers the harness: its echo end.
trait EchoEnd: Machine {
    fn echo(&mut self) -> &mut Echo;
}

impl EchoEnd for Echo {
    fn echo(&mut self) -> &mut Echo {
        self
    }
}

impl EchoEnd for OnFlow<Echo> {
    fn echo(&mut self) -> &mut Echo {
        self.inner_mut()
    }
}

impl<M: EchoEnd> EchoEnd for Secured<M> {
    fn echo(&mut self) -> &mut Echo {
        self.inner_mut().echo()
    }
}

fn messages(seed: u64) -> Vec<Vec<u8>> {
    (0..40u64)
        .map(|i| {
            let len = ((seed * 7919 + i * 104729) % 3000) as usize;
            (0..len).map(|j| (j as u64 * 31 + i + seed) as u8).collect()
        })
        .collect()
}

/// Runs client `c` against server `s` over a simulated stream with seeded
/// faults until every message came back; returns the replies.
fn run<C: EchoEnd, S: EchoEnd>(seed: u64, mut c: C, mut s: S) -> Vec<Bytes> {
    let cfg = NetConfig {
        link: LinkConfig {
            latency: (Duration::from_micros(200), Duration::from_millis(5)),
            max_chunk: 1 + (seed as usize * 37) % 1400,
            ..LinkConfig::default()
        },
        ..NetConfig::default()
    };
    let mut net = Net::new(cfg, seed, false);
    let a = net.add_host("client").unwrap();
    let b = net.add_host("server").unwrap();
    let l = net.listen(b, ":0").unwrap();
    net.dial(a, "server:1").unwrap();
    let (mut ca, mut cb) = (None, None);
    let sent = messages(seed);
    for m in &sent {
        c.echo().send(m).unwrap();
    }
    let mut replies = Vec::new();
    let mut buf = Vec::new();
    let mut steps = 0;
    while replies.len() < sent.len() {
        steps += 1;
        assert!(steps < 2_000_000, "seed {seed}: no progress");
        let now = net.now();
        // Both ends transmit everything they have.
        for (conn, m) in [
            (ca, &mut c as &mut dyn Machine),
            (cb, &mut s as &mut dyn Machine),
        ] {
            if let Some(conn) = conn {
                buf.clear();
                while m.poll_transmit(&mut buf).is_some() {}
                if !buf.is_empty() {
                    net.send(conn, &buf).unwrap();
                }
                if let Some(d) = m.poll_timeout() {
                    if d <= now {
                        m.handle_timeout(now);
                    }
                }
            }
        }
        while let Some(r) = c.echo().poll_reply() {
            replies.push(r);
        }
        if replies.len() == sent.len() {
            break;
        }
        if !net.step() {
            // Quiet network: let timers run.
            let next = [c.poll_timeout(), s.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) => net.advance_to(t.max(now + Duration::from_micros(1))),
                None => panic!(
                    "seed {seed}: stuck with {} of {} replies",
                    replies.len(),
                    sent.len()
                ),
            }
        }
        while let Some(ev) = net.poll_event() {
            let now = net.now();
            match ev {
                NetEvent::Dialed { result, .. } => ca = Some(result.unwrap()),
                NetEvent::Incoming(_) | NetEvent::Accepted { .. } => {
                    if let Ok(proto_core::sim::Accept::Ready(conn)) = net.accept(l) {
                        cb = Some(conn);
                    }
                }
                NetEvent::Data { conn, data } => {
                    let m: &mut dyn Machine = if Some(conn) == ca { &mut c } else { &mut s };
                    m.handle_input(now, data.into()).unwrap();
                }
                _ => {}
            }
        }
    }
    assert_eq!(replies.len(), sent.len());
    for (i, (r, m)) in replies.iter().zip(&sent).enumerate() {
        assert_eq!(&r[..], &m[..], "seed {seed}: reply {i}");
    }
    replies
}

const MAX: usize = 4096;
const SEEDS: u64 = 12;

fn mux(side: Side) -> mux::Connection {
    mux::Connection::new(mux::Config::default(), side, Instant::ZERO).unwrap()
}

#[test]
fn echo_directly_on_a_simulated_stream() {
    for seed in 0..SEEDS {
        run(
            seed,
            Echo::new(EchoRole::Client, MAX),
            Echo::new(EchoRole::Server, MAX),
        );
    }
}

#[test]
fn echo_on_one_flow_of_a_mux_connection() {
    for seed in 0..SEEDS {
        let c = OnFlow::new(mux(Side::Dialer), Echo::new(EchoRole::Client, MAX)).unwrap();
        let s = OnFlow::new(mux(Side::Acceptor), Echo::new(EchoRole::Server, MAX)).unwrap();
        run(seed, c, s);
    }
}

#[test]
fn echo_on_a_flow_of_a_secure_connection() {
    let f = Fixture::new();
    for seed in 0..4 {
        let any: Arc<dyn PeerAuthorizer> = Arc::new(AllowAny);
        let hc = Handshake::initiator(
            SecureConfig::default(),
            f.params(f.identity(10, "alice"), any.clone()),
            Seed::new([seed as u8; 32]),
            Instant::ZERO,
        )
        .unwrap();
        let hs = Handshake::responder(
            SecureConfig::default(),
            f.params(f.identity(11, "server"), any),
            Seed::new([100 + seed as u8; 32]),
            Instant::ZERO,
        )
        .unwrap();
        let c = Secured::new(
            hc,
            OnFlow::new(mux(Side::Dialer), Echo::new(EchoRole::Client, MAX)).unwrap(),
        );
        let s = Secured::new(
            hs,
            OnFlow::new(mux(Side::Acceptor), Echo::new(EchoRole::Server, MAX)).unwrap(),
        );
        run(seed, c, s);
    }
}

#[test]
fn a_hostile_length_closes_the_machine_on_its_flow() {
    let mut s = OnFlow::new(mux(Side::Acceptor), Echo::new(EchoRole::Server, 8)).unwrap();
    let mut c = mux(Side::Dialer);
    let id = c.open_flow().unwrap();
    c.flow(id).write(&[0, 0, 1, 0, 9]).unwrap();
    let mut w = Vec::new();
    while c.poll_transmit(&mut w).is_some() {}
    s.handle_input(Instant::ZERO, w.into()).unwrap();
    let mut back = Vec::new();
    while s.poll_transmit(&mut back).is_some() {}
    assert!(s.inner().error().is_some());
    assert!(s.inner().is_closed());
    // The flow was stopped: the peer's writes fail.
    c.handle_input(Instant::ZERO, &back).unwrap();
    while c.poll_event().is_some() {}
    assert!(c.flow(id).write(b"more").is_err());
}
