//! `proto_core::taps::rendezvous`: hostile bytes into one `Link`, and two
//! honest sides (`Rendezvous` + their `Link`s) over arbitrary networks.
//!
//! The input is read op by op through `arbitrary::Unstructured`, one byte
//! per field, so seeds are easy to write by hand. The first byte picks
//! the part (even: one link, odd: a pair of sides).
//!
//! One link (`[0, ours, flags, leftover, timeout_ms/10]`, then ops: raw
//! bytes, a hello with any value (sometimes corrupted), "chosen" (maybe
//! cut short), long fills, drain, time forward / backward, a jump to the
//! deadline, `choose`, transport closed, `close`, take the leftover; fed
//! in the chunk size from `flags`, drained after every op or only on
//! request), checked against a model of the link's state:
//! - no panic; every error displays; drains terminate;
//! - `HelloDone` once, after a whole valid hello, with its value and the
//!   role the values give; `Chosen` once, only to a follower, after
//!   "chosen"; `Failed` once and last, with the link closed from then on;
//!   an input `Err` on an open link comes with that `Failed`, later ones
//!   with none; equal values fail with `Tie`;
//! - `choose` succeeds exactly for a decider whose hello is done, once;
//! - a pending link times out exactly when a time reaches its deadline;
//! - `is_closed`, `is_chosen`, `wants_input`, `poll_timeout`, `role`,
//!   `ready_for_handover` agree with the model;
//! - everything sent is "", the hello, or the hello then one "chosen"
//!   (only after a successful `choose`);
//! - each leftover taken is at most `max_leftover`, and all of them are
//!   exactly the bytes fed after "chosen" (a prefix once the link failed).
//!
//! A pair (`[1, tie_a, tie_b, max_links, timeout_ms/10]`, then ops:
//! connect (a link on both sides), deliver some or all bytes (or the
//! FIN) one way on one link, cut a link, time forward, a jump to the
//! next deadline, no more links on one side, app data after the
//! handover, a link on one side only to a third party that sends a
//! hello with its own value), with the adapter's duties done after
//! every op (decisions applied, events handed over, closed links
//! dropped and their peers told after the bytes in flight), then the
//! network heals:
//! - at most one outcome per side, at most one chosen link per side, and
//!   it is the survivor; open links equal the live machines, within
//!   `max_links`; the survivor is never closed by a decision; a kept
//!   link's peer value is the first one that side heard;
//! - `Tie` only for equal values (or a third party's equal to ours);
//!   honest links fail only with `Tie`, `ClosedByPeer` or `TimedOut`;
//! - without a third party: equal values never establish, and when both
//!   sides are Established they kept the same link, with opposite roles,
//!   the lower value deciding;
//! - app data sent after the handover reaches the peer's leftover
//!   exactly, in order;
//! - after healing with no cut, timeout or third party, a link up on
//!   both sides means both Established (different values) or both `Tie`
//!   (equal); with no more links and every deadline passed, every side
//!   has ended.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use proto_core::taps::rendezvous::wire::{encode_hello, CHOSEN, HELLO_LEN};
use proto_core::taps::rendezvous::{
    Decision, Link, LinkEvent, LinkId, Rendezvous, RendezvousConfig, RendezvousError,
    RendezvousEvent, Role,
};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use std::collections::VecDeque;

/// `WEFT_FUZZ_TRACE=1`: print each run's end state (to check seeds).
fn trace() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("WEFT_FUZZ_TRACE").is_some())
}

fn byte(u: &mut Unstructured) -> u8 {
    u.bytes(1).map(|b| b[0]).unwrap_or(0)
}

/// Small values and values near the top, so ties and both orders happen.
fn value(b: u8) -> u64 {
    if b & 0x80 == 0 {
        u64::from(b)
    } else {
        u64::MAX - u64::from(b & 0x7f)
    }
}

fn role_of(ours: u64, peer: u64) -> Option<Role> {
    match ours.cmp(&peer) {
        std::cmp::Ordering::Less => Some(Role::Decider),
        std::cmp::Ordering::Greater => Some(Role::Follower),
        std::cmp::Ordering::Equal => None,
    }
}

/// Drains a link's transmit queue; everything comes in one call.
fn drain(link: &mut Link) -> Vec<u8> {
    let mut out = Vec::new();
    let wanted = link.wants_transmit();
    if let Some(n) = link.poll_transmit(&mut out) {
        assert!(wanted, "sent without wants_transmit");
        assert_eq!(n, out.len());
    } else {
        assert!(!wanted, "wants_transmit but sent nothing");
    }
    assert_eq!(link.poll_transmit(&mut out), None, "drain did not end");
    assert!(!link.wants_transmit());
    out
}

// ---------------------------------------------------------------- one link

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Hello,
    AwaitChoice,
    AwaitChosen,
    Chosen,
    Closed,
}

struct One {
    link: Link,
    ours: u64,
    st: St,
    now: Instant,
    deadline: Instant,
    max_leftover: usize,
    chunk: usize,
    auto_drain: bool,
    sent: Vec<u8>,
    chose: bool,
    /// Every byte given to the link while it was open.
    fed: Vec<u8>,
    /// Where the leftover starts in `fed`, once chosen.
    leftover_from: Option<usize>,
    taken: Vec<u8>,
    failures: usize,
    error: Option<RendezvousError>,
}

impl One {
    fn pending(&self) -> bool {
        matches!(self.st, St::Hello | St::AwaitChoice | St::AwaitChosen)
    }

    /// Checks the events queued; `expect_fail` is the error a `Failed`
    /// must carry, if one must come.
    fn events(&mut self, expect_fail: Option<RendezvousError>) {
        let mut failed = None;
        while let Some(ev) = self.link.poll_event() {
            assert!(failed.is_none(), "event after Failed: {ev:?}");
            assert_ne!(self.st, St::Closed, "event on a closed link: {ev:?}");
            match ev {
                LinkEvent::HelloDone {
                    peer_tie_break,
                    role,
                } => {
                    assert_eq!(self.st, St::Hello, "second HelloDone");
                    assert!(self.fed.len() >= HELLO_LEN);
                    assert_eq!(self.fed[..HELLO_LEN], encode_hello(peer_tie_break));
                    assert_eq!(Some(role), role_of(self.ours, peer_tie_break));
                    assert_eq!(self.link.peer_tie_break(), Some(peer_tie_break));
                    self.st = match role {
                        Role::Decider => St::AwaitChoice,
                        Role::Follower => St::AwaitChosen,
                    };
                }
                LinkEvent::Chosen => {
                    assert_eq!(self.st, St::AwaitChosen, "Chosen not to a follower");
                    let end = HELLO_LEN + CHOSEN.len();
                    assert!(self.fed.len() >= end);
                    assert_eq!(self.fed[HELLO_LEN..end], CHOSEN);
                    self.st = St::Chosen;
                    self.leftover_from = Some(end);
                }
                LinkEvent::Failed(e) => {
                    let _ = e.to_string();
                    if e == RendezvousError::Tie {
                        assert_eq!(self.fed[..HELLO_LEN], encode_hello(self.ours));
                    }
                    if let Some(want) = expect_fail {
                        assert_eq!(e, want);
                    }
                    assert_eq!(self.link.error(), Some(e));
                    failed = Some(e);
                    self.error = Some(e);
                    self.failures += 1;
                }
                other => panic!("unknown event {other:?}"),
            }
        }
        if failed.is_some() {
            self.st = St::Closed;
        }
        assert!(self.failures <= 1, "failed twice");
        if expect_fail.is_some() {
            assert!(failed.is_some(), "expected {expect_fail:?}");
        }
    }

    fn feed(&mut self, data: &[u8]) {
        let step = if self.chunk == 0 {
            data.len().max(1)
        } else {
            self.chunk
        };
        let mut chunks: Vec<&[u8]> = data.chunks(step).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for c in chunks {
            let was = self.st;
            if was != St::Closed {
                self.fed.extend_from_slice(c);
            }
            let r = self
                .link
                .handle_input(self.now, bytes::Bytes::copy_from_slice(c));
            if was == St::Closed {
                assert!(r.is_err(), "input accepted after close");
                assert_eq!(self.link.poll_event(), None);
                continue;
            }
            self.events(None);
            // An Err exactly when the input failed the link.
            assert_eq!(r.is_err(), self.st == St::Closed, "{r:?} in {:?}", self.st);
            self.check();
        }
    }

    fn timeout(&mut self, at: Instant) {
        let fires = self.pending() && at >= self.deadline;
        self.link.handle_timeout(at);
        if fires {
            self.events(Some(RendezvousError::TimedOut));
        } else {
            assert_eq!(self.link.poll_event(), None, "timeout event before {at:?}");
        }
    }

    fn take_leftover(&mut self) {
        let l = self.link.take_leftover();
        assert!(l.len() <= self.max_leftover, "leftover {}", l.len());
        if !l.is_empty() {
            assert!(self.leftover_from.is_some(), "leftover before chosen");
        }
        self.taken.extend_from_slice(&l);
    }

    fn check(&mut self) {
        assert_eq!(self.link.error(), self.error, "error() changed");
        assert_eq!(self.link.is_closed(), self.st == St::Closed);
        assert_eq!(self.link.is_chosen(), self.st == St::Chosen);
        assert_eq!(
            self.link.wants_input(),
            !matches!(self.st, St::Chosen | St::Closed)
        );
        let t = self.link.poll_timeout();
        assert_eq!(t, self.pending().then_some(self.deadline));
        if self.link.ready_for_handover() {
            assert_eq!(self.st, St::Chosen);
            assert!(!self.link.wants_transmit());
        }
        let role = self.link.role();
        match self.st {
            St::AwaitChoice => assert_eq!(role, Some(Role::Decider)),
            St::AwaitChosen => assert_eq!(role, Some(Role::Follower)),
            St::Hello => assert_eq!(role, None),
            _ => {}
        }
        // Output: "", the hello, or the hello then one "chosen".
        let hello = encode_hello(self.ours);
        let with_chosen = [&hello[..], &CHOSEN[..]].concat();
        assert!(
            self.sent.is_empty() || self.sent == hello || (self.chose && self.sent == with_chosen),
            "sent {:?}",
            self.sent
        );
        // The leftover is what came after "chosen".
        if let Some(from) = self.leftover_from {
            let after = &self.fed[from.min(self.fed.len())..];
            assert!(after.starts_with(&self.taken), "leftover not what came");
        } else {
            assert!(self.taken.is_empty());
        }
    }
}

fn one_link(u: &mut Unstructured) {
    let ours = value(byte(u));
    let flags = byte(u);
    let lb = byte(u);
    let max_leftover = if lb & 0x80 != 0 {
        RendezvousConfig::default().max_leftover
    } else {
        usize::from(lb)
    };
    let timeout = Duration::from_millis(u64::from(byte(u)) * 10);
    let config = RendezvousConfig {
        handshake_timeout: timeout,
        max_leftover,
        ..RendezvousConfig::default()
    };
    let start = Instant::from_nanos(1_000_000_000);
    let chunk = match (flags >> 1) & 7 {
        0 => 0,
        k => 1 << (k - 1),
    };
    let mut m = One {
        link: Link::new(config, start, ours),
        ours,
        st: St::Hello,
        now: start,
        deadline: start.saturating_add(timeout),
        max_leftover,
        chunk,
        auto_drain: flags & 1 != 0,
        sent: Vec::new(),
        chose: false,
        fed: Vec::new(),
        leftover_from: None,
        taken: Vec::new(),
        failures: 0,
        error: None,
    };
    m.check();
    // Enough to pass the default `max_leftover` (128 KiB) once.
    let mut budget: usize = 320 * 1024;
    let mut ops = 0;
    while !u.is_empty() && ops < 512 {
        ops += 1;
        match byte(u) % 12 {
            0 => {
                let n = usize::from(byte(u));
                let raw = u.bytes(n.min(u.len())).unwrap_or(&[]).to_vec();
                m.feed(&raw);
            }
            1 => {
                let mut h = encode_hello(value(byte(u)));
                let c = byte(u);
                if c >= 0xf0 {
                    h[usize::from(c & 0x0f) % HELLO_LEN] ^= 0x55;
                }
                m.feed(&h);
            }
            2 => {
                let c = byte(u);
                let n = if c & 0x80 != 0 { usize::from(c & 3) } else { 4 };
                m.feed(&CHOSEN[..n]);
            }
            3 => {
                let b = byte(u);
                let c = usize::from(byte(u));
                let mut n = if c & 0x80 != 0 {
                    (c & 0x7f) * 2048
                } else {
                    c * 8
                };
                // Small chunks get a few hundred calls: runs stay cheap.
                if m.chunk != 0 {
                    n = n.min(m.chunk * 256);
                }
                if n <= budget {
                    budget -= n;
                    m.feed(&vec![b; n]);
                }
            }
            4 => {
                let out = drain(&mut m.link);
                m.sent.extend_from_slice(&out);
            }
            5 => {
                m.now = m.now + Duration::from_millis(u64::from(byte(u)) * 10);
                m.timeout(m.now);
            }
            6 => {
                let back = u64::from(byte(u)) * 10_000_000;
                let earlier = Instant::from_nanos(m.now.as_nanos().saturating_sub(back));
                m.timeout(earlier);
            }
            7 => {
                if let Some(t) = m.link.poll_timeout() {
                    m.now = m.now.max(t);
                }
                m.timeout(m.now);
                assert!(!m.pending(), "still pending at its deadline");
            }
            8 => {
                let r = m.link.choose(m.now);
                assert_eq!(r.is_ok(), m.st == St::AwaitChoice, "{r:?} in {:?}", m.st);
                match r {
                    Ok(()) => {
                        m.chose = true;
                        m.st = St::Chosen;
                        m.leftover_from = Some(m.fed.len());
                    }
                    Err(e) => {
                        assert_eq!(e, RendezvousError::NotDecider);
                        let _ = e.to_string();
                    }
                }
                assert_eq!(m.link.poll_event(), None);
            }
            9 => {
                let handed_over = m.st == St::Chosen && !m.link.wants_transmit();
                let was = m.st;
                m.link.handle_transport_closed(m.now);
                if was == St::Closed || handed_over {
                    assert_eq!(m.link.poll_event(), None);
                    m.st = St::Closed;
                } else {
                    m.events(Some(RendezvousError::ClosedByPeer));
                }
            }
            10 => {
                m.link.close(m.now, 0, b"");
                assert_eq!(m.link.poll_event(), None);
                m.st = St::Closed;
            }
            _ => m.take_leftover(),
        }
        if m.auto_drain {
            let out = drain(&mut m.link);
            m.sent.extend_from_slice(&out);
        }
        m.check();
    }
    m.take_leftover();
    m.check();
    if trace() {
        eprintln!(
            "link: {:?} error {:?} sent {} fed {} leftover {:?}",
            m.st,
            m.link.error(),
            m.sent.len(),
            m.fed.len(),
            String::from_utf8_lossy(&m.taken)
        );
    }
    if m.st != St::Closed {
        let from = m.leftover_from.unwrap_or(m.fed.len());
        assert_eq!(m.taken, m.fed[from..], "leftover lost");
    }
}

// ---------------------------------------------------------------- a pair

/// One candidate connection seen from both sides; index 0 is side A.
struct Conn {
    link: [Option<(LinkId, Link)>; 2],
    /// Each side's id for it, kept after its machine is dropped.
    ids: [Option<LinkId>; 2],
    up: [bool; 2],
    /// `pipe[s]`: bytes from side `s` in flight.
    pipe: [VecDeque<u8>; 2],
    /// Side `s` closed its end (FIN after `pipe[s]`).
    fin: [bool; 2],
    fin_told: [bool; 2],
    cut: bool,
    app_sent: [Vec<u8>; 2],
    app_got: [Vec<u8>; 2],
}

struct Side {
    rdv: Rendezvous,
    outcome: Option<RendezvousEvent>,
}

struct Pair {
    sides: [Side; 2],
    conns: Vec<Conn>,
    now: Instant,
    max_links: usize,
    cut: bool,
    timed_out: bool,
    app_budget: [usize; 2],
    /// Values a third party announced to each side (a confused peer).
    rogue: [Vec<u64>; 2],
    /// The first peer value each side heard: the only one it may keep.
    first_peer: [Option<u64>; 2],
}

fn conn_of(conns: &[Conn], side: usize, id: LinkId) -> Option<usize> {
    conns
        .iter()
        .position(|c| matches!(&c.link[side], Some((l, _)) if *l == id))
}

impl Pair {
    /// Side `s` closes its end of connection `c`.
    fn drop_link(&mut self, s: usize, c: usize) {
        let conn = &mut self.conns[c];
        if let Some((_, mut l)) = conn.link[s].take() {
            let got = l.take_leftover();
            conn.app_got[s].extend_from_slice(&got);
        }
        conn.fin[s] = true;
        conn.pipe[1 - s].clear();
    }

    /// The adapter's work on side `s` until nothing changes.
    fn pump(&mut self, s: usize) {
        for _ in 0..256 {
            let mut changed = false;
            for c in 0..self.conns.len() {
                let conn = &mut self.conns[c];
                let Some((id, link)) = conn.link[s].as_mut() else {
                    continue;
                };
                let id = *id;
                let out = drain(link);
                if !conn.fin[1 - s] && !conn.cut {
                    conn.pipe[s].extend(out);
                }
                let got = link.take_leftover();
                conn.app_got[s].extend_from_slice(&got);
                assert!(
                    conn.app_sent[1 - s].starts_with(&conn.app_got[s]),
                    "leftover is not the peer's app data"
                );
                let mut events = Vec::new();
                while let Some(ev) = link.poll_event() {
                    events.push(ev);
                }
                let closed = link.is_closed();
                for ev in &events {
                    if let LinkEvent::HelloDone { peer_tie_break, .. } = ev {
                        self.first_peer[s].get_or_insert(*peer_tie_break);
                    }
                    if let LinkEvent::Failed(e) = ev {
                        let _ = e.to_string();
                        assert!(
                            matches!(
                                e,
                                RendezvousError::Tie
                                    | RendezvousError::ClosedByPeer
                                    | RendezvousError::TimedOut
                            ),
                            "honest link failed: {e}"
                        );
                        if *e == RendezvousError::TimedOut {
                            self.timed_out = true;
                        }
                    }
                    self.sides[s].rdv.on_link_event(id, ev);
                    // As an adapter does: each event's decisions at once.
                    self.decisions(s);
                    changed = true;
                }
                if closed && self.conns[c].link[s].is_some() {
                    self.sides[s].rdv.on_link_closed(id);
                    self.drop_link(s, c);
                    self.decisions(s);
                    changed = true;
                }
            }
            changed |= self.decisions(s);
            while let Some(ev) = self.sides[s].rdv.poll_event() {
                assert!(
                    self.sides[s].outcome.is_none(),
                    "second outcome {ev:?} after {:?}",
                    self.sides[s].outcome
                );
                self.sides[s].outcome = Some(ev);
                changed = true;
            }
            if !changed {
                return;
            }
        }
        panic!("pump did not settle");
    }

    /// Applies side `s`'s decisions; whether there were any.
    fn decisions(&mut self, s: usize) -> bool {
        let mut any = false;
        while let Some(d) = self.sides[s].rdv.poll_decision() {
            any = true;
            match d {
                Decision::Choose(id) => {
                    let c = conn_of(&self.conns, s, id).expect("choose: no such link");
                    let link = &mut self.conns[c].link[s].as_mut().unwrap().1;
                    link.choose(self.now)
                        .expect("the coordinator chose a non-decider");
                }
                Decision::Close(id) => {
                    assert_ne!(
                        self.sides[s].rdv.survivor(),
                        Some(id),
                        "closing the survivor"
                    );
                    let c = conn_of(&self.conns, s, id).expect("close: no such link");
                    self.drop_link(s, c);
                }
                other => panic!("unknown decision {other:?}"),
            }
        }
        any
    }

    fn pump_both(&mut self) {
        self.pump(0);
        self.pump(1);
    }

    /// Delivers up to `n` bytes (0: all) from side `s`, or its FIN.
    fn deliver(&mut self, c: usize, s: usize, n: usize) -> bool {
        let r = 1 - s;
        let now = self.now;
        let conn = &mut self.conns[c];
        let Some((_, link)) = conn.link[r].as_mut() else {
            return false;
        };
        if !conn.pipe[s].is_empty() {
            let take = if n == 0 {
                conn.pipe[s].len()
            } else {
                n.min(conn.pipe[s].len())
            };
            let data: Vec<u8> = conn.pipe[s].drain(..take).collect();
            let _ = link.handle_input(now, data.into());
            return true;
        }
        if conn.fin[s] && !conn.fin_told[s] {
            conn.fin_told[s] = true;
            link.handle_transport_closed(now);
            return true;
        }
        false
    }

    fn check(&self, ties: [u64; 2]) {
        for s in 0..2 {
            let side = &self.sides[s];
            let live = self.conns.iter().filter(|c| c.link[s].is_some()).count();
            assert_eq!(side.rdv.open_links(), live, "open links vs machines");
            assert!(live <= self.max_links);
            assert_eq!(side.rdv.is_finished(), side.outcome.is_some());
            let chosen: Vec<LinkId> = self
                .conns
                .iter()
                .filter_map(|c| c.link[s].as_ref())
                .filter(|(_, l)| l.is_chosen())
                .map(|(id, _)| *id)
                .collect();
            assert!(chosen.len() <= 1, "two chosen links: {chosen:?}");
            if let Some(&id) = chosen.first() {
                assert_eq!(side.rdv.survivor(), Some(id));
            }
            let rogue = self.rogue.iter().any(|r| !r.is_empty());
            match side.outcome {
                Some(RendezvousEvent::Established { link, role }) => {
                    assert_eq!(side.rdv.survivor(), Some(link));
                    if !rogue {
                        assert_ne!(ties[0], ties[1], "established on a tie");
                        let want = if ties[s] < ties[1 - s] {
                            Role::Decider
                        } else {
                            Role::Follower
                        };
                        assert_eq!(role, want);
                    }
                    if let Some(c) = conn_of(&self.conns, s, link) {
                        let l = &self.conns[c].link[s].as_ref().unwrap().1;
                        assert_eq!(l.role(), Some(role));
                        assert_eq!(
                            l.peer_tie_break(),
                            self.first_peer[s],
                            "kept a link whose peer value changed"
                        );
                    }
                }
                Some(RendezvousEvent::Failed(RendezvousError::Tie)) => {
                    assert!(
                        ties[0] == ties[1] || self.rogue[s].contains(&ties[s]),
                        "Tie on different values"
                    );
                }
                Some(RendezvousEvent::Failed(RendezvousError::NoLink)) | None => {}
                Some(other) => panic!("outcome {other:?}"),
            }
        }
        // A third party can make the sides keep different links; without
        // one they agree.
        let rogue = self.rogue.iter().any(|r| !r.is_empty());
        if let (
            false,
            Some(RendezvousEvent::Established { link: a, role: ra }),
            Some(RendezvousEvent::Established { link: b, role: rb }),
        ) = (rogue, self.sides[0].outcome, self.sides[1].outcome)
        {
            assert_ne!(ra, rb, "both sides {ra:?}");
            // The link numbers differ per side; the connection is shared.
            let ca = self
                .conns
                .iter()
                .position(|c| c.up[0] && c.up[1] && c.ids[0] == Some(a));
            let cb = self
                .conns
                .iter()
                .position(|c| c.up[0] && c.up[1] && c.ids[1] == Some(b));
            assert!(ca.is_some(), "A established on a one-sided link");
            assert_eq!(ca, cb, "the sides kept different links");
        }
    }
}

fn pair(u: &mut Unstructured) {
    let ties = [value(byte(u) & 0x83), value(byte(u) & 0x83)];
    let max_links = usize::from(byte(u) % 6);
    let timeout = Duration::from_millis(1 + u64::from(byte(u)) * 10);
    let config = RendezvousConfig {
        handshake_timeout: timeout,
        max_links,
        max_leftover: 4096,
    };
    let mut p = Pair {
        sides: [0, 1].map(|s| Side {
            rdv: Rendezvous::new(config, ties[s]),
            outcome: None,
        }),
        conns: Vec::new(),
        now: Instant::from_nanos(1_000_000_000),
        max_links,
        cut: false,
        timed_out: false,
        app_budget: [1024, 1024],
        rogue: [Vec::new(), Vec::new()],
        first_peer: [None, None],
    };
    let mut ops = 0;
    while !u.is_empty() && ops < 256 {
        ops += 1;
        match byte(u) % 8 {
            k @ (0 | 7) => {
                if p.conns.len() >= 32 {
                    continue;
                }
                // 7: a link on one side only, whose far end is a third
                // party that sends a hello with its own value and no more.
                let rogue = (k == 7).then(|| (usize::from(byte(u) & 1), value(byte(u))));
                let mut conn = Conn {
                    link: [None, None],
                    ids: [None, None],
                    up: [false, false],
                    pipe: [VecDeque::new(), VecDeque::new()],
                    fin: [false, false],
                    fin_told: [false, false],
                    cut: false,
                    app_sent: [Vec::new(), Vec::new()],
                    app_got: [Vec::new(), Vec::new()],
                };
                let order = match rogue {
                    Some((1, _)) => [1, 0],
                    _ => [0, 1],
                };
                for s in order {
                    if let Some((r, v)) = rogue {
                        if s != r {
                            if conn.up[r] {
                                conn.up[s] = true;
                                conn.pipe[s].extend(encode_hello(v));
                                p.rogue[r].push(v);
                            }
                            continue;
                        }
                    }
                    let rdv = &mut p.sides[s].rdv;
                    let (open, finished) = (rdv.open_links(), rdv.is_finished());
                    match rdv.add_link(p.now) {
                        Ok((id, link)) => {
                            assert!(!finished && open < max_links);
                            conn.link[s] = Some((id, link));
                            conn.ids[s] = Some(id);
                            conn.up[s] = true;
                        }
                        Err(e) => {
                            let _ = e.to_string();
                            match e {
                                RendezvousError::Finished => assert!(finished),
                                RendezvousError::TooManyLinks => {
                                    assert!(!finished && open >= max_links)
                                }
                                other => panic!("add_link: {other:?}"),
                            }
                            conn.fin[s] = true;
                        }
                    }
                }
                p.conns.push(conn);
            }
            1 => {
                let pick = usize::from(byte(u));
                let s = usize::from(byte(u) & 1);
                let n = usize::from(byte(u));
                if !p.conns.is_empty() {
                    let c = pick % p.conns.len();
                    p.deliver(c, s, n);
                }
            }
            2 => {
                let pick = usize::from(byte(u));
                if !p.conns.is_empty() {
                    let c = pick % p.conns.len();
                    let now = p.now;
                    let conn = &mut p.conns[c];
                    if !conn.cut {
                        p.cut = true;
                        conn.cut = true;
                        conn.pipe = [VecDeque::new(), VecDeque::new()];
                        conn.fin_told = [true, true];
                        for s in 0..2 {
                            if let Some((_, l)) = conn.link[s].as_mut() {
                                l.handle_transport_closed(now);
                            }
                        }
                    }
                }
            }
            3 => {
                p.now = p.now + Duration::from_millis(u64::from(byte(u)));
                for conn in &mut p.conns {
                    for (_, l) in conn.link.iter_mut().flatten() {
                        l.handle_timeout(p.now);
                    }
                }
            }
            4 => {
                let next = p
                    .conns
                    .iter()
                    .flat_map(|c| c.link.iter().flatten())
                    .filter_map(|(_, l)| l.poll_timeout())
                    .min();
                if let Some(t) = next {
                    p.now = p.now.max(t);
                    for conn in &mut p.conns {
                        for (_, l) in conn.link.iter_mut().flatten() {
                            l.handle_timeout(p.now);
                        }
                    }
                }
            }
            5 => {
                let s = usize::from(byte(u) & 1);
                p.sides[s].rdv.no_more_links();
            }
            _ => {
                let s = usize::from(byte(u) & 1);
                let n = usize::from(byte(u) % 64).min(p.app_budget[s]);
                if let Some(id) = p.sides[s].rdv.survivor() {
                    if let Some(c) = conn_of(&p.conns, s, id) {
                        let conn = &mut p.conns[c];
                        let l = &conn.link[s].as_ref().unwrap().1;
                        if l.ready_for_handover() && !conn.fin[1 - s] && !conn.cut {
                            p.app_budget[s] -= n;
                            let start = conn.app_sent[s].len();
                            let data: Vec<u8> =
                                (start..start + n).map(|i| (i * 7 + s) as u8).collect();
                            conn.app_sent[s].extend_from_slice(&data);
                            conn.pipe[s].extend(data);
                        }
                    }
                }
            }
        }
        p.pump_both();
        p.check(ties);
    }

    // Heal: deliver everything in flight, FINs included.
    for _ in 0..256 {
        let mut moved = false;
        for c in 0..p.conns.len() {
            for s in 0..2 {
                moved |= p.deliver(c, s, 0);
            }
        }
        p.pump_both();
        p.check(ties);
        if !moved {
            break;
        }
    }
    for conn in &p.conns {
        for s in 0..2 {
            if conn.link[s].is_some() {
                assert_eq!(conn.app_got[s], conn.app_sent[1 - s], "app data lost");
            }
        }
    }
    let both_up = p.conns.iter().any(|c| c.up[0] && c.up[1]);
    if trace() {
        let app: Vec<_> = p
            .conns
            .iter()
            .map(|c| [c.app_got[0].len(), c.app_got[1].len()])
            .collect();
        eprintln!(
            "pair: ties {ties:?} links {} both up {both_up} cut {} timed out {} app {app:?}\n  A {:?}\n  B {:?}",
            p.conns.len(),
            p.cut,
            p.timed_out,
            p.sides[0].outcome,
            p.sides[1].outcome
        );
    }
    let rogue = p.rogue.iter().any(|r| !r.is_empty());
    if both_up && !p.cut && !p.timed_out && !rogue {
        for side in &p.sides {
            if ties[0] == ties[1] {
                assert_eq!(
                    side.outcome,
                    Some(RendezvousEvent::Failed(RendezvousError::Tie)),
                    "a tie did not fail both"
                );
            } else {
                assert!(
                    matches!(side.outcome, Some(RendezvousEvent::Established { .. })),
                    "no survivor after healing: {:?}",
                    side.outcome
                );
            }
        }
    }
    // No more links, every deadline passes: every side ends.
    for s in 0..2 {
        p.sides[s].rdv.no_more_links();
    }
    p.now = Instant::MAX;
    for conn in &mut p.conns {
        for (_, l) in conn.link.iter_mut().flatten() {
            l.handle_timeout(p.now);
        }
    }
    p.pump_both();
    p.check(ties);
    for side in &p.sides {
        assert!(side.outcome.is_some(), "a side never ended");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if byte(&mut u) & 1 == 0 {
        one_link(&mut u);
    } else {
        pair(&mut u);
    }
});
