//! Rendezvous between two sides over simulated candidate connections:
//! links come up in any order on each side, bytes arrive in any chunking
//! and interleaving, some connections die during the hello, strangers
//! send garbage, silent links time out. Always exactly one survivor, the
//! same connection on both sides, with the bytes written after "chosen"
//! handed over intact.

#[path = "common/rng.rs"]
mod rng;

use bytes::Bytes;
use proto_core::taps::rendezvous::{
    wire, Decision, Link, LinkEvent, LinkId, Rendezvous, RendezvousConfig, RendezvousError,
    RendezvousEvent, Role,
};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use rng::Rng;
use std::collections::VecDeque;

#[derive(Debug)]
enum Item {
    Data(Bytes),
    Eof,
}

#[derive(Default)]
struct End {
    link: Option<(LinkId, Link)>,
    closed: bool,
    /// What the message connection got: the link's leftover, then
    /// everything after the handover.
    app_in: Vec<u8>,
    handed_over: bool,
    app_sent: bool,
}

/// One candidate connection: an end on each side and a pipe each way
/// (`pipes[s]` carries bytes to side `s`).
#[derive(Default)]
struct Conn {
    ends: [End; 2],
    pipes: [VecDeque<Item>; 2],
    /// Side `s` adds its link at this step (None: never, e.g. a stranger
    /// on the other end).
    add_at: [Option<usize>; 2],
    /// Dies at this step, if its decider end has not finished the hello.
    kill_at: Option<usize>,
    /// A stranger writes garbage to this side instead of a hello.
    garbage_to: Option<usize>,
}

struct Side {
    coord: Rendezvous,
    outcome: Vec<RendezvousEvent>,
}

struct World {
    sides: [Side; 2],
    conns: Vec<Conn>,
    now: Instant,
    rng: Rng,
}

fn app_bytes(side: usize) -> Bytes {
    Bytes::from(format!("message connection data from side {side}").into_bytes())
}

impl World {
    fn new(values: [u64; 2], conns: Vec<Conn>, seed: u64) -> World {
        let side = |v| Side {
            coord: Rendezvous::new(RendezvousConfig::default(), v),
            outcome: Vec::new(),
        };
        World {
            sides: [side(values[0]), side(values[1])],
            conns,
            now: Instant::ZERO,
            rng: Rng::new(seed),
        }
    }

    fn find(&self, s: usize, id: LinkId) -> usize {
        self.conns
            .iter()
            .position(|c| c.ends[s].link.as_ref().is_some_and(|(l, _)| *l == id))
            .expect("a decision for an unknown link")
    }

    fn add(&mut self, s: usize, c: usize) {
        match self.sides[s].coord.add_link(self.now) {
            Ok((id, link)) => {
                self.conns[c].ends[s].link = Some((id, link));
                self.pump(s, c);
            }
            Err(e) => {
                // Over: the late connection is closed unread.
                assert_eq!(e, RendezvousError::Finished);
                self.close_end(s, c);
            }
        }
    }

    /// Closes side `s`'s end of connection `c` (the other end sees EOF).
    fn close_end(&mut self, s: usize, c: usize) {
        let end = &mut self.conns[c].ends[s];
        if end.closed {
            return;
        }
        end.closed = true;
        if let Some((_, link)) = end.link.as_mut() {
            link.close(self.now, 0, b"");
        }
        self.conns[c].pipes[s].clear();
        self.conns[c].pipes[1 - s].push_back(Item::Eof);
    }

    /// Moves everything side `s`'s end of `c` has to say into the pipe,
    /// its events into the coordinator, and carries out the decisions.
    fn pump(&mut self, s: usize, c: usize) {
        let now = self.now;
        // Side `s` talking to a stranger: nobody reads what it writes.
        let garbage = self.conns[c].garbage_to == Some(s);
        let conn = &mut self.conns[c];
        let end = &mut conn.ends[s];
        let Some((id, link)) = end.link.as_mut() else {
            return;
        };
        let id = *id;
        let mut events = Vec::new();
        if !end.closed {
            let mut out = Vec::new();
            while link.poll_transmit(&mut out).is_some() {}
            if !out.is_empty() && !garbage {
                conn.pipes[1 - s].push_back(Item::Data(out.into()));
            }
            if link.ready_for_handover() && !end.handed_over {
                end.handed_over = true;
                end.app_in.extend_from_slice(&link.take_leftover());
            }
            if end.handed_over && !end.app_sent && !garbage {
                end.app_sent = true;
                conn.pipes[1 - s].push_back(Item::Data(app_bytes(s)));
            }
        }
        while let Some(ev) = link.poll_event() {
            events.push(ev);
        }
        for ev in events {
            if matches!(ev, LinkEvent::Failed(_)) {
                self.close_end(s, c);
            }
            self.sides[s].coord.on_link_event(id, &ev);
        }
        self.decide(s, now);
    }

    fn decide(&mut self, s: usize, now: Instant) {
        while let Some(d) = self.sides[s].coord.poll_decision() {
            match d {
                Decision::Choose(id) => {
                    let c = self.find(s, id);
                    let (_, link) = self.conns[c].ends[s].link.as_mut().unwrap();
                    link.choose(now).expect("choose");
                    self.pump(s, c);
                }
                Decision::Close(id) => {
                    let c = self.find(s, id);
                    self.close_end(s, c);
                }
                other => panic!("unknown decision {other:?}"),
            }
        }
        while let Some(ev) = self.sides[s].coord.poll_event() {
            self.sides[s].outcome.push(ev);
            assert_eq!(self.sides[s].outcome.len(), 1, "a second outcome");
        }
    }

    /// Delivers up to a random number of bytes from the pipe to side `s`
    /// of `c`. Whether anything moved.
    fn deliver(&mut self, s: usize, c: usize) -> bool {
        let now = self.now;
        let chunk = self.rng.range(1, 40) as usize;
        let conn = &mut self.conns[c];
        if conn.ends[s].closed {
            conn.pipes[s].clear();
            return true;
        }
        let Some(item) = conn.pipes[s].pop_front() else {
            return false;
        };
        let end = &mut conn.ends[s];
        let Some((_, link)) = end.link.as_mut() else {
            // Garbage for a side whose link is not up yet: keep it queued.
            conn.pipes[s].push_front(item);
            return false;
        };
        match item {
            Item::Eof => {
                if end.handed_over {
                    end.closed = true;
                } else {
                    link.handle_transport_closed(now);
                }
            }
            Item::Data(mut b) => {
                if b.len() > chunk {
                    conn.pipes[s].push_front(Item::Data(b.split_off(chunk)));
                }
                if end.handed_over {
                    end.app_in.extend_from_slice(&b);
                } else {
                    let _ = link.handle_input(now, b);
                }
            }
        }
        self.pump(s, c);
        true
    }

    fn kill(&mut self, c: usize) {
        for s in 0..2 {
            let now = self.now;
            let end = &mut self.conns[c].ends[s];
            if !end.closed {
                end.closed = true;
                if let Some((_, link)) = end.link.as_mut() {
                    link.handle_transport_closed(now);
                }
            }
            self.conns[c].pipes[s].clear();
            self.pump(s, c);
        }
    }

    fn decider(&self) -> usize {
        if self.sides[0].coord.tie_break() < self.sides[1].coord.tie_break() {
            0
        } else {
            1
        }
    }

    fn decider_hello_done(&self, c: usize) -> bool {
        let d = self.decider();
        self.conns[c].ends[d]
            .link
            .as_ref()
            .is_some_and(|(_, l)| l.peer_tie_break().is_some())
    }

    /// Runs until nothing is left to do: every link added, every pipe
    /// drained, every timer fired.
    fn run(&mut self) {
        for conn in &mut self.conns {
            if let Some(to) = conn.garbage_to {
                let junk = Bytes::from_static(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                conn.pipes[to].push_back(Item::Data(junk));
            }
        }
        let mut step = 0usize;
        loop {
            step += 1;
            assert!(step < 100_000, "the run did not settle");
            self.now += Duration::from_millis(self.rng.range(0, 3));
            let mut work = Vec::new();
            for c in 0..self.conns.len() {
                for s in 0..2 {
                    if let Some(at) = self.conns[c].add_at[s] {
                        let end = &self.conns[c].ends[s];
                        if end.link.is_none() && !end.closed {
                            work.push((0, s, c, at));
                        }
                    }
                    let never =
                        self.conns[c].add_at[s].is_none() && self.conns[c].garbage_to != Some(s);
                    if !self.conns[c].pipes[s].is_empty() && !never {
                        work.push((1, s, c, 0));
                    }
                }
                if let Some(at) = self.conns[c].kill_at {
                    if !self.conns[c].ends.iter().all(|e| e.closed) {
                        work.push((2, 0, c, at));
                    }
                }
            }
            if work.is_empty() {
                if !self.fire_timers() {
                    break;
                }
                continue;
            }
            let (kind, s, c, at) = work[self.rng.range(0, work.len() as u64 - 1) as usize];
            match kind {
                0 if step >= at => self.add(s, c),
                1 => {
                    self.deliver(s, c);
                }
                2 if step >= at => {
                    if self.decider_hello_done(c) {
                        self.conns[c].kill_at = None;
                    } else {
                        self.kill(c);
                    }
                }
                _ => {}
            }
        }
        for s in 0..2 {
            self.sides[s].coord.no_more_links();
            self.decide(s, self.now);
        }
    }

    /// Jumps to the earliest link deadline and fires it; whether any.
    fn fire_timers(&mut self) -> bool {
        let next = self
            .conns
            .iter()
            .flat_map(|c| c.ends.iter())
            .filter(|e| !e.closed)
            .filter_map(|e| e.link.as_ref().and_then(|(_, l)| l.poll_timeout()))
            .min();
        let Some(t) = next else { return false };
        self.now = self.now.max(t);
        for c in 0..self.conns.len() {
            for s in 0..2 {
                let now = self.now;
                if let Some((_, link)) = self.conns[c].ends[s].link.as_mut() {
                    link.handle_timeout(now);
                }
                self.pump(s, c);
            }
        }
        true
    }

    /// The survivor's connection index on side `s`.
    fn survivor(&self, s: usize) -> (usize, Role) {
        match self.sides[s].outcome[..] {
            [RendezvousEvent::Established { link, role }] => (self.find(s, link), role),
            ref other => panic!("side {s}: {other:?}"),
        }
    }

    fn check_one_survivor(&self) {
        let (ca, ra) = self.survivor(0);
        let (cb, rb) = self.survivor(1);
        assert_eq!(ca, cb, "the sides kept different connections");
        let d = self.decider();
        assert_eq!([ra, rb][d], Role::Decider);
        assert_eq!([ra, rb][1 - d], Role::Follower);
        for s in 0..2 {
            assert_eq!(self.sides[s].coord.open_links(), 1);
            for (c, conn) in self.conns.iter().enumerate() {
                let end = &conn.ends[s];
                if c == ca {
                    assert!(!end.closed, "side {s} closed the survivor");
                    assert!(end.handed_over);
                    assert_eq!(end.app_in, app_bytes(1 - s), "side {s}'s handover bytes");
                } else if end.link.is_some() {
                    assert!(end.closed, "side {s} left connection {c} open");
                }
            }
        }
    }
}

fn conns(rng: &mut Rng, n: usize) -> Vec<Conn> {
    (0..n)
        .map(|_| Conn {
            add_at: [
                Some(rng.range(1, 30) as usize),
                Some(rng.range(1, 30) as usize),
            ],
            ..Conn::default()
        })
        .collect()
}

fn values(rng: &mut Rng) -> [u64; 2] {
    let a = rng.next();
    let mut b = rng.next();
    if a == b {
        b ^= 1;
    }
    [a, b]
}

#[test]
fn every_arrival_order_keeps_one_connection_on_both_sides() {
    let mut survivors = std::collections::BTreeSet::new();
    let mut chosen_with_data = 0;
    for seed in 0..400 {
        let mut rng = Rng::new(seed);
        let n = rng.range(1, 5) as usize;
        let cs = conns(&mut rng, n);
        let mut w = World::new(values(&mut rng), cs, seed);
        w.run();
        w.check_one_survivor();
        survivors.insert(w.survivor(0).0);
        let f = 1 - w.decider();
        let c = w.survivor(f).0;
        if !w.conns[c].ends[f].app_in.is_empty() {
            chosen_with_data += 1;
        }
    }
    // The sweep is not trivial: the survivor is not always the first
    // connection.
    assert!(survivors.len() >= 3, "{survivors:?}");
    assert!(chosen_with_data > 0);
}

#[test]
fn deaths_strangers_and_silent_links_leave_one_survivor() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..400 {
        let mut rng = Rng::new(seed ^ 0xdead);
        let n = rng.range(2, 6) as usize;
        let mut cs = conns(&mut rng, n);
        // Connection 0 stays healthy; the others may fail in one way each.
        for c in cs.iter_mut().skip(1) {
            match rng.range(0, 4) {
                0 => c.kill_at = Some(rng.range(1, 40) as usize),
                1 => {
                    let to = rng.range(0, 1) as usize;
                    c.garbage_to = Some(to);
                    c.add_at[1 - to] = None;
                }
                2 => {
                    // A half-open connection: one side never sees it.
                    let side = rng.range(0, 1) as usize;
                    c.add_at[side] = None;
                }
                _ => {}
            }
        }
        let mut w = World::new(values(&mut rng), cs, seed);
        w.run();
        w.check_one_survivor();
        for conn in &w.conns {
            for end in &conn.ends {
                if let Some(e) = end.link.as_ref().and_then(|(_, l)| l.error()) {
                    seen.insert(format!("{e:?}"));
                }
            }
        }
    }
    // Each kind of failure happened somewhere in the sweep.
    for kind in ["BadMagic", "ClosedByPeer"] {
        assert!(seen.contains(kind), "{seen:?}");
    }
}

#[test]
fn a_tie_fails_both_sides_clearly() {
    let mut rng = Rng::new(7);
    let cs = conns(&mut rng, 3);
    let mut w = World::new([42, 42], cs, 7);
    w.run();
    for s in 0..2 {
        assert_eq!(
            w.sides[s].outcome,
            [RendezvousEvent::Failed(RendezvousError::Tie)]
        );
        assert_eq!(w.sides[s].coord.open_links(), 0);
        assert!(w.sides[s].coord.add_link(w.now).is_err());
    }
    assert!(RendezvousError::Tie.to_string().contains("redraw"));
}

#[test]
fn every_link_failing_ends_in_no_link() {
    // Only strangers: side 0 gets garbage on both links, side 1 sees none.
    let cs = (0..2)
        .map(|_| Conn {
            add_at: [Some(1), None],
            garbage_to: Some(0),
            ..Conn::default()
        })
        .collect();
    let mut w = World::new([1, 2], cs, 3);
    w.run();
    for s in 0..2 {
        assert_eq!(
            w.sides[s].outcome,
            [RendezvousEvent::Failed(RendezvousError::NoLink)]
        );
    }
    for c in &w.conns {
        let l = &c.ends[0].link.as_ref().unwrap().1;
        assert_eq!(l.error(), Some(RendezvousError::BadMagic));
    }
}

fn drain(l: &mut Link) -> Vec<u8> {
    let mut v = Vec::new();
    while l.poll_transmit(&mut v).is_some() {}
    v
}

const T0: Instant = Instant::ZERO;

#[test]
fn malformed_hellos_fail_only_their_link() {
    let cfg = RendezvousConfig::default();
    let mut coord = Rendezvous::new(cfg, 10);
    let (bad_magic, mut l1) = coord.add_link(T0).unwrap();
    let (bad_version, mut l2) = coord.add_link(T0).unwrap();
    let (good, mut l3) = coord.add_link(T0).unwrap();
    assert_eq!(
        l1.handle_input(T0, Bytes::from_static(b"WRX")),
        Err(proto_core::wire::Rejected)
    );
    assert_eq!(
        l1.poll_event(),
        Some(LinkEvent::Failed(RendezvousError::BadMagic))
    );
    assert!(l1.is_closed());
    coord.on_link_event(bad_magic, &LinkEvent::Failed(RendezvousError::BadMagic));
    let mut hello = wire::encode_hello(99);
    hello[4] = 7;
    assert!(l2
        .handle_input(T0, Bytes::copy_from_slice(&hello[..5]))
        .is_err());
    let ev = l2.poll_event().unwrap();
    assert_eq!(
        ev,
        LinkEvent::Failed(RendezvousError::UnsupportedVersion(7))
    );
    assert_eq!(
        RendezvousError::UnsupportedVersion(7).to_string(),
        "rendezvous: unsupported version 7"
    );
    coord.on_link_event(bad_version, &ev);
    assert_eq!(coord.poll_decision(), None);
    assert_eq!(coord.poll_event(), None);
    // The third link still works.
    let hello = wire::encode_hello(99);
    l3.handle_input(T0, Bytes::copy_from_slice(&hello)).unwrap();
    let ev = l3.poll_event().unwrap();
    coord.on_link_event(good, &ev);
    assert_eq!(coord.poll_decision(), Some(Decision::Choose(good)));
    assert_eq!(
        coord.poll_event(),
        Some(RendezvousEvent::Established {
            link: good,
            role: Role::Decider
        })
    );
    l3.choose(T0).unwrap();
    assert_eq!(
        &drain(&mut l3)[..],
        &[&wire::encode_hello(10)[..], &wire::CHOSEN[..]].concat()[..]
    );
}

#[test]
fn bytes_out_of_turn_are_errors() {
    let cfg = RendezvousConfig::default();
    // Follower: something other than "chosen" after the hello.
    let mut f = Link::new(cfg, T0, 9);
    let mut input = wire::encode_hello(1).to_vec();
    input.extend_from_slice(b"WRDX");
    assert!(f.handle_input(T0, input.into()).is_err());
    assert!(matches!(
        f.poll_event(),
        Some(LinkEvent::HelloDone {
            role: Role::Follower,
            ..
        })
    ));
    assert_eq!(
        f.poll_event(),
        Some(LinkEvent::Failed(RendezvousError::BadChosen))
    );
    // Decider: the peer talks before the choice.
    let mut d = Link::new(cfg, T0, 1);
    let mut input = wire::encode_hello(9).to_vec();
    input.push(0);
    assert!(d.handle_input(T0, input.into()).is_err());
    assert_eq!(d.error(), Some(RendezvousError::UnexpectedData));
    // The follower cannot choose.
    let mut f = Link::new(cfg, T0, 9);
    f.handle_input(T0, Bytes::copy_from_slice(&wire::encode_hello(1)))
        .unwrap();
    assert_eq!(f.choose(T0), Err(RendezvousError::NotDecider));
}

#[test]
fn leftover_is_bounded_and_handed_over() {
    let cfg = RendezvousConfig {
        max_leftover: 8,
        ..RendezvousConfig::default()
    };
    let mut f = Link::new(cfg, T0, 9);
    let mut input = wire::encode_hello(1).to_vec();
    input.extend_from_slice(&wire::CHOSEN);
    input.extend_from_slice(b"12345");
    f.handle_input(T0, input.into()).unwrap();
    drain(&mut f);
    assert!(f.ready_for_handover());
    use proto_core::wire::Machine as _;
    assert!(!f.wants_input());
    assert_eq!(f.poll_timeout(), None);
    // A read in flight when input stopped is still kept, within the bound.
    f.handle_input(T0, Bytes::from_static(b"678")).unwrap();
    assert!(f.handle_input(T0, Bytes::from_static(b"9")).is_err());
    assert_eq!(f.error(), Some(RendezvousError::LeftoverTooLarge));

    let mut f = Link::new(cfg, T0, 9);
    let mut input = wire::encode_hello(1).to_vec();
    input.extend_from_slice(&wire::CHOSEN);
    input.extend_from_slice(b"abc");
    f.handle_input(T0, input.into()).unwrap();
    assert_eq!(&f.take_leftover()[..], b"abc");
    assert!(f.take_leftover().is_empty());
}

#[test]
fn a_silent_peer_times_out() {
    let cfg = RendezvousConfig::default();
    let mut l = Link::new(cfg, T0, 1);
    let deadline = l.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + cfg.handshake_timeout);
    l.handle_timeout(T0 + Duration::from_secs(1));
    assert!(!l.is_closed());
    l.handle_timeout(deadline);
    assert_eq!(
        l.poll_event(),
        Some(LinkEvent::Failed(RendezvousError::TimedOut))
    );
    assert!(l.is_closed());
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn link_limits() {
    let cfg = RendezvousConfig {
        max_links: 2,
        ..RendezvousConfig::default()
    };
    let mut coord = Rendezvous::new(cfg, 5);
    let (a, _) = coord.add_link(T0).unwrap();
    let (_b, _) = coord.add_link(T0).unwrap();
    assert_eq!(
        coord.add_link(T0).unwrap_err(),
        RendezvousError::TooManyLinks
    );
    coord.on_link_closed(a);
    let (c, _) = coord.add_link(T0).unwrap();
    coord.on_link_event(
        c,
        &LinkEvent::HelloDone {
            peer_tie_break: 6,
            role: Role::Decider,
        },
    );
    assert_eq!(coord.add_link(T0).unwrap_err(), RendezvousError::Finished);
    // A second "chosen" or hello on another link after the choice closes it.
    assert_eq!(coord.poll_decision(), Some(Decision::Choose(c)));
    assert!(matches!(coord.poll_decision(), Some(Decision::Close(_))));
    assert_eq!(coord.poll_decision(), None);
}

#[test]
fn a_peer_changing_its_value_loses_that_link() {
    let mut coord = Rendezvous::new(RendezvousConfig::default(), 50);
    let (a, _) = coord.add_link(T0).unwrap();
    let (b, _) = coord.add_link(T0).unwrap();
    coord.on_link_event(
        a,
        &LinkEvent::HelloDone {
            peer_tie_break: 10,
            role: Role::Follower,
        },
    );
    coord.on_link_event(
        b,
        &LinkEvent::HelloDone {
            peer_tie_break: 60,
            role: Role::Decider,
        },
    );
    assert_eq!(coord.poll_decision(), Some(Decision::Close(b)));
    assert_eq!(coord.poll_event(), None);
    coord.on_link_event(a, &LinkEvent::Chosen);
    assert_eq!(
        coord.poll_event(),
        Some(RendezvousEvent::Established {
            link: a,
            role: Role::Follower
        })
    );
}

#[test]
fn the_chosen_link_closing_before_chosen_left_is_reported() {
    let cfg = RendezvousConfig::default();
    let mut d = Link::new(cfg, T0, 1);
    d.handle_input(T0, Bytes::copy_from_slice(&wire::encode_hello(9)))
        .unwrap();
    d.choose(T0).unwrap();
    assert!(d.is_chosen() && !d.ready_for_handover());
    d.handle_transport_closed(T0);
    assert!(matches!(d.poll_event(), Some(LinkEvent::HelloDone { .. })));
    assert_eq!(
        d.poll_event(),
        Some(LinkEvent::Failed(RendezvousError::ClosedByPeer))
    );
    // Once handed over, the end is the message connection's to report.
    let mut d = Link::new(cfg, T0, 1);
    d.handle_input(T0, Bytes::copy_from_slice(&wire::encode_hello(9)))
        .unwrap();
    d.choose(T0).unwrap();
    drain(&mut d);
    assert!(matches!(d.poll_event(), Some(LinkEvent::HelloDone { .. })));
    d.handle_transport_closed(T0);
    assert_eq!(d.poll_event(), None);
    assert!(d.is_closed());
}
