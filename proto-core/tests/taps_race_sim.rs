//! The racing core and the message connection together over the
//! simulated network: attempts are real simulated dials (blackholed by a
//! partition, refused where nothing listens, delayed by each link's
//! latency), the winner's stream carries message connections both ways.
//! Exact timings for the fixed cases, invariants over a seed sweep.

use bytes::Bytes;
use proto_core::sim::{Accept, ConnId, HostId, LinkConfig, Net, NetConfig, NetEvent, OpId};
use proto_core::taps::candidate::Stack;
use proto_core::taps::connection::{Config, Connection, Event};
use proto_core::taps::endpoint::{Endpoint, Family};
use proto_core::taps::framer::LengthPrefix;
use proto_core::taps::message::{MessageProperties, MessageRef};
use proto_core::taps::race::{
    Action, AttemptError, AttemptId, Race, RaceConfig, RaceEvent, RacePlan,
};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const PORT: u16 = 7;
const ANSWER_V6: u64 = 1;
const ANSWER_V4: u64 = 2;
const RACE_TIMER: u64 = 3;

/// What a simulated server host does with dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Listens,
    Refuses,
    Blackholed,
}

/// A host per address: `::n` is host `v6-n`, `127.0.0.n` host `v4-n`.
struct World {
    net: Net,
    client: HostId,
    names: HashMap<SocketAddr, String>,
    listeners: HashMap<String, proto_core::sim::ListenerId>,
}

fn addr(family: Family, n: u8) -> SocketAddr {
    match family {
        Family::V6 => SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, u16::from(n))),
            PORT,
        ),
        Family::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)), PORT),
    }
}

impl World {
    fn new(seed: u64, link: LinkConfig, servers: &[(SocketAddr, Behaviour)]) -> World {
        let mut net = Net::new(
            NetConfig {
                link,
                ..NetConfig::default()
            },
            seed,
            false,
        );
        let client = net.add_host("client").unwrap();
        let mut names = HashMap::new();
        let mut listeners = HashMap::new();
        for (i, (a, b)) in servers.iter().enumerate() {
            let name = format!("s{i}");
            let h = net.add_host(&name).unwrap();
            match b {
                Behaviour::Listens => {
                    listeners.insert(name.clone(), net.listen(h, &format!(":{PORT}")).unwrap());
                }
                Behaviour::Refuses => {}
                Behaviour::Blackholed => net.partition(client, h, true).unwrap(),
            }
            names.insert(*a, name);
        }
        World {
            net,
            client,
            names,
            listeners,
        }
    }
}

/// Each family's answer: when, and which addresses (`None`: not asked).
type Answers = [(Family, Option<(Instant, Vec<SocketAddr>)>); 2];

/// What a race did, in simulated time.
#[derive(Debug, Default)]
struct Seen {
    starts: Vec<(Instant, AttemptId, SocketAddr)>,
    cancels: Vec<(Instant, AttemptId)>,
    failures: Vec<(Instant, AttemptId)>,
    ready: Option<(Instant, AttemptId, SocketAddr, ConnId)>,
    failed: bool,
}

/// Runs a race for `plan`, answering AAAA and A at the given times, to its
/// terminal event; checks the invariants every race must keep.
fn race(w: &mut World, config: RaceConfig, plan: RacePlan, answers: Answers) -> Seen {
    let mut race = Race::new(config, w.net.now(), plan);
    for (family, answer) in &answers {
        if let Some((at, _)) = answer {
            let token = if *family == Family::V6 {
                ANSWER_V6
            } else {
                ANSWER_V4
            };
            w.net.set_timer(None, *at, token).unwrap();
        }
    }
    let mut seen = Seen::default();
    let mut ops: HashMap<OpId, (AttemptId, SocketAddr)> = HashMap::new();
    let mut live: HashMap<AttemptId, Option<ConnId>> = HashMap::new();
    let mut timer = None;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 100_000, "no progress");
        let now = w.net.now();
        while let Some(a) = race.poll_action() {
            match a {
                Action::Start { attempt, candidate } => {
                    assert!(
                        seen.ready.is_none() && !seen.failed,
                        "a start after the end"
                    );
                    assert_eq!(candidate.stack, Stack::Tcp);
                    let Endpoint::Ip(sa) = candidate.endpoint else {
                        panic!("an IP endpoint")
                    };
                    let name = &w.names[&sa];
                    let op = w.net.dial(w.client, &format!("{name}:{PORT}")).unwrap();
                    ops.insert(op, (attempt, sa));
                    live.insert(attempt, None);
                    seen.starts.push((now, attempt, sa));
                }
                Action::Cancel { attempt } => {
                    let conn = live.remove(&attempt).expect("cancel of a live attempt");
                    if let Some(c) = conn {
                        w.net.close(c).unwrap();
                    }
                    seen.cancels.push((now, attempt));
                }
                _ => {}
            }
        }
        while let Some(e) = race.poll_event() {
            match e {
                RaceEvent::Ready { attempt, .. } => {
                    assert!(seen.ready.is_none() && !seen.failed, "two terminal events");
                    let sa = seen.starts.iter().find(|s| s.1 == attempt).unwrap().2;
                    let conn = live
                        .remove(&attempt)
                        .flatten()
                        .expect("the winner connected");
                    seen.ready = Some((now, attempt, sa, conn));
                }
                RaceEvent::Failed(_) => {
                    assert!(seen.ready.is_none() && !seen.failed, "two terminal events");
                    seen.failed = true;
                }
                _ => {}
            }
        }
        if seen.ready.is_some() || seen.failed {
            assert!(live.is_empty(), "attempts left running: {live:?}");
            return seen;
        }
        if let Some((t, _)) = race.poll_timeout() {
            if let Some(old) = timer.take() {
                w.net.cancel_timer(old);
            }
            timer = Some(w.net.set_timer(None, t, RACE_TIMER).unwrap());
        }
        assert!(w.net.step(), "the network went quiet before the race ended");
        while let Some(ev) = w.net.poll_event() {
            let now = w.net.now();
            match ev {
                NetEvent::Timer {
                    token: ANSWER_V6, ..
                }
                | NetEvent::Timer {
                    token: ANSWER_V4, ..
                } => {
                    let fam = if matches!(
                        ev,
                        NetEvent::Timer {
                            token: ANSWER_V6,
                            ..
                        }
                    ) {
                        Family::V6
                    } else {
                        Family::V4
                    };
                    let addrs = &answers
                        .iter()
                        .find(|a| a.0 == fam)
                        .unwrap()
                        .1
                        .as_ref()
                        .unwrap()
                        .1;
                    race.on_answer(now, fam, addrs);
                }
                NetEvent::Timer {
                    token: RACE_TIMER, ..
                } => {
                    timer = None;
                    race.handle_timeout(now);
                }
                NetEvent::Dialed { op, result } => {
                    let (attempt, _) = ops[&op];
                    match (live.get_mut(&attempt), result) {
                        (Some(slot), Ok(c)) => {
                            *slot = Some(c);
                            race.on_connected(now, attempt);
                        }
                        (Some(_), Err(_)) => {
                            live.remove(&attempt);
                            seen.failures.push((now, attempt));
                            race.on_failed(now, attempt, AttemptError::Refused);
                        }
                        // A cancelled attempt's dial completed: close it.
                        (None, Ok(c)) => w.net.close(c).unwrap(),
                        (None, Err(_)) => {}
                    }
                }
                _ => {}
            }
        }
    }
}

fn literal_plan(endpoints: &[SocketAddr]) -> RacePlan {
    RacePlan {
        stacks: vec![Stack::Tcp],
        endpoints: endpoints.iter().map(|a| Endpoint::Ip(*a)).collect(),
        resolving: Vec::new(),
        rtt_estimate: None,
    }
}

fn fixed(latency_ms: u64) -> LinkConfig {
    let l = Duration::from_millis(latency_ms);
    LinkConfig {
        latency: (l, l),
        ..LinkConfig::default()
    }
}

fn ms(n: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(n)
}

#[test]
fn blackholed_first_is_ready_at_the_delay_plus_a_round_trip() {
    let (v6, v4) = (addr(Family::V6, 1), addr(Family::V4, 1));
    let mut w = World::new(
        1,
        fixed(5),
        &[(v6, Behaviour::Blackholed), (v4, Behaviour::Listens)],
    );
    let seen = race(
        &mut w,
        RaceConfig::default(),
        literal_plan(&[v6, v4]),
        [(Family::V6, None), (Family::V4, None)],
    );
    assert_eq!(
        seen.starts.iter().map(|s| (s.0, s.2)).collect::<Vec<_>>(),
        [(ms(0), v6), (ms(250), v4)]
    );
    let (at, _, winner, _) = seen.ready.unwrap();
    assert_eq!(
        (at, winner),
        (ms(260), v4),
        "CAD 250 ms + a 10 ms round trip"
    );
    assert_eq!(seen.cancels, [(ms(260), seen.starts[0].1)]);
}

#[test]
fn a_refusal_starts_the_next_attempt_when_it_arrives() {
    let (v6, v4) = (addr(Family::V6, 1), addr(Family::V4, 1));
    let mut w = World::new(
        2,
        fixed(5),
        &[(v6, Behaviour::Refuses), (v4, Behaviour::Listens)],
    );
    let seen = race(
        &mut w,
        RaceConfig::default(),
        literal_plan(&[v6, v4]),
        [(Family::V6, None), (Family::V4, None)],
    );
    assert_eq!(seen.failures.len(), 1);
    let refused_at = seen.failures[0].0;
    assert_eq!(refused_at, ms(10), "refused after a round trip");
    assert_eq!(
        seen.starts[1].0, refused_at,
        "the next attempt starts at once"
    );
    assert_eq!(seen.ready.unwrap().0, ms(20));
}

#[test]
fn a_late_aaaa_answer_within_the_resolution_delay_goes_first() {
    let (v6, v4) = (addr(Family::V6, 1), addr(Family::V4, 1));
    let mut w = World::new(
        3,
        fixed(5),
        &[(v6, Behaviour::Listens), (v4, Behaviour::Listens)],
    );
    let plan = RacePlan {
        resolving: vec![Family::V6, Family::V4],
        ..literal_plan(&[])
    };
    let seen = race(
        &mut w,
        RaceConfig::default(),
        plan,
        [
            (Family::V6, Some((ms(30), vec![v6]))),
            (Family::V4, Some((ms(10), vec![v4]))),
        ],
    );
    assert_eq!(
        seen.starts[0],
        (ms(30), seen.starts[0].1, v6),
        "A waited for AAAA"
    );
    assert_eq!(seen.ready.unwrap().0, ms(40));
    assert_eq!(seen.ready.unwrap().2, v6);
}

/// A message connection on each end of the winner's stream: messages with
/// seeded priorities and sizes both ways, through the network's latency
/// and re-chunking; everything arrives intact, each side's in priority
/// order (FIFO within a priority).
fn talk(w: &mut World, conn: ConnId, server_host: &str, seed: u64) {
    let l = w.listeners[server_host];
    let server = match w.net.accept(l).unwrap() {
        Accept::Ready(c) => c,
        Accept::Pending(_) => panic!("the winner's connection is queued"),
    };
    let new = || {
        Connection::new(
            Config::default(),
            Box::new(LengthPrefix::default()),
            Instant::ZERO,
        )
        .unwrap()
    };
    let mut ends = [(conn, new()), (server, new())];
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut expected: [Vec<(u32, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    for (side, (_, c)) in ends.iter_mut().enumerate() {
        for i in 0..20u64 {
            let len = (next() % 5000) as usize;
            let body: Vec<u8> = (0..len).map(|j| (j as u64 ^ i ^ seed) as u8).collect();
            let priority = (next() % 3) as u32;
            let props = MessageProperties {
                priority,
                ..MessageProperties::default()
            };
            c.send(w.net.now(), MessageRef(i), Bytes::from(body.clone()), props)
                .unwrap();
            expected[1 - side].push((priority, body));
        }
    }
    for e in &mut expected {
        e.sort_by_key(|m| m.0); // stable: FIFO within a priority
    }
    let mut got: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let mut buf = Vec::new();
    for _ in 0..1_000_000 {
        for (side, (c, m)) in ends.iter_mut().enumerate() {
            // One receive request per message still expected (extra ones
            // are refused at the limit and change nothing).
            for _ in got[side].len()..20 {
                let _ = m.receive(usize::MAX, usize::MAX);
            }
            buf.clear();
            while m.poll_transmit(&mut buf).is_some() {}
            if !buf.is_empty() {
                w.net.send(*c, &buf).unwrap();
            }
            while let Some(ev) = m.poll_event() {
                match ev {
                    Event::Received { data, .. } => got[side].push(data.to_vec()),
                    Event::Ready | Event::Sent(_) => {}
                    other => panic!("seed {seed}: side {side}: {other:?}"),
                }
            }
        }
        if got[0].len() == 20 && got[1].len() == 20 {
            break;
        }
        if !w.net.step() {
            panic!(
                "seed {seed}: quiet with {} and {} messages; queued {} and {}, buffered {} and {}, timeouts {:?} {:?}",
                got[0].len(),
                got[1].len(),
                ends[0].1.queued_send_bytes(),
                ends[1].1.queued_send_bytes(),
                ends[0].1.buffered_receive_bytes(),
                ends[1].1.buffered_receive_bytes(),
                ends[0].1.poll_timeout(),
                ends[1].1.poll_timeout(),
            );
        }
        while let Some(ev) = w.net.poll_event() {
            if let NetEvent::Data { conn, data } = ev {
                let now = w.net.now();
                let m = &mut ends.iter_mut().find(|e| e.0 == conn).unwrap().1;
                m.handle_input(now, data.into()).unwrap();
            }
        }
    }
    for side in 0..2 {
        let want: Vec<Vec<u8>> = expected[side].iter().map(|m| m.1.clone()).collect();
        assert_eq!(got[side], want, "seed {seed}: side {side}");
    }
}

#[test]
fn seeded_races_keep_their_invariants_and_the_winner_carries_messages() {
    let (mut readies, mut failures, mut cancels) = (0, 0, 0);
    for seed in 0..200u64 {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let behaviours = [
            Behaviour::Listens,
            Behaviour::Refuses,
            Behaviour::Blackholed,
        ];
        let mut servers = Vec::new();
        let (mut v6s, mut v4s) = (Vec::new(), Vec::new());
        for n in 1..=(1 + next(3) as u8) {
            let a = addr(Family::V6, n);
            servers.push((a, behaviours[next(3) as usize]));
            v6s.push(a);
        }
        for n in 1..=(1 + next(3) as u8) {
            let a = addr(Family::V4, n);
            servers.push((a, behaviours[next(3) as usize]));
            v4s.push(a);
        }
        let lo = Duration::from_millis(1 + next(20));
        let link = LinkConfig {
            latency: (lo, lo + Duration::from_millis(next(30))),
            max_chunk: 1 + next(1400) as usize,
            ..LinkConfig::default()
        };
        let mut w = World::new(seed, link, &servers);
        let plan = RacePlan {
            resolving: vec![Family::V6, Family::V4],
            ..literal_plan(&[])
        };
        let config = RaceConfig {
            establishment_timeout: Duration::from_secs(5),
            ..RaceConfig::default()
        };
        let answers = [
            (Family::V6, Some((ms(next(120)), v6s.clone()))),
            (Family::V4, Some((ms(next(120)), v4s.clone()))),
        ];
        let seen = race(&mut w, config, plan, answers);
        let listening: Vec<SocketAddr> = servers
            .iter()
            .filter(|s| s.1 == Behaviour::Listens)
            .map(|s| s.0)
            .collect();
        // Every attempt ended once: failed, cancelled, or won.
        let ended = seen.failures.len() + seen.cancels.len() + usize::from(seen.ready.is_some());
        assert_eq!(ended, seen.starts.len(), "seed {seed}: {seen:?}");
        cancels += seen.cancels.len();
        match seen.ready {
            Some((_, _, winner, conn)) => {
                readies += 1;
                assert!(
                    listening.contains(&winner),
                    "seed {seed}: {winner} does not listen"
                );
                let name = w.names[&winner].clone();
                talk(&mut w, conn, &name, seed);
            }
            None => {
                failures += 1;
                // Only a race with nothing listening, or one that ran out of
                // time behind blackholes, may fail.
                assert!(seen.failed);
                let reachable = listening.len();
                assert!(
                    reachable == 0 || servers.iter().any(|s| s.1 == Behaviour::Blackholed),
                    "seed {seed}: failed with {reachable} listening and no blackhole"
                );
            }
        }
    }
    // The sweep reached both endings and cancelled losers.
    assert!(
        readies >= 100 && failures >= 5 && cancels >= 20,
        "{readies} ready, {failures} failed, {cancels} cancels"
    );
}
