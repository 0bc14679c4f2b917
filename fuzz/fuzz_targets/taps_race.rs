//! Arbitrary answers, resolution failures, attempt outcomes (for started,
//! cancelled and never-issued attempts), timer firings, time jumps
//! (forward and backward) and cancels into `proto_core::taps::race::Race`,
//! against a model of the attempts live.
//!
//! Checked after every op:
//! - no panic; every event and error displays;
//! - at most one terminal event, never both Ready and Failed, no Start
//!   after it, no timer after it; Ready names the live attempt that just
//!   connected, and a live attempt connecting always wins;
//! - ids start once each; every started attempt ends exactly once (an
//!   outcome the race accepted, or one Cancel), and the race's running
//!   count equals the model's;
//! - starts stay within `max_attempts`, kept endpoints within
//!   `max_endpoints_per_family` per family, queues drained each op;
//! - a deadline is never in the past;
//! - at the end, cancelling (if still running) leaves one terminal event
//!   and no attempt live.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use proto_core::taps::candidate::Stack;
use proto_core::taps::endpoint::{Endpoint, Family};
use proto_core::taps::race::{
    Action, AttemptError, AttemptId, Race, RaceConfig, RaceEvent, RacePlan, ResolutionError,
};
use proto_core::time::{Duration, Instant};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Arbitrary, Debug)]
struct Cfg {
    resolution_delay_ms: u8,
    first_family_count: u8,
    prefer_v4: bool,
    attempt_delay_ms: u16,
    rtt_ms: Option<u16>,
    timeout_ms: u16,
    max_endpoints: u8,
    max_attempts: u8,
    stacks: Vec<u8>,
    literals: Vec<u8>,
    resolve_v6: bool,
    resolve_v4: bool,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Answer { v6: bool, addrs: Vec<u8> },
    ResolutionFailed { v6: bool, why: u8 },
    Connected { pick: u8 },
    Failed { pick: u8, why: u8 },
    Bogus { id: u16, connected: bool },
    FireTimer,
    Forward { ms: u16 },
    Backward { ms: u16 },
    Cancel,
}

#[derive(Arbitrary, Debug)]
struct Input {
    cfg: Cfg,
    ops: Vec<Op>,
}

fn addr(n: u8) -> SocketAddr {
    // The top bit picks the family; few distinct values, so duplicates happen.
    let host = n & 0x0f;
    if n & 0x80 == 0 {
        SocketAddr::new(Ipv4Addr::new(192, 0, 2, host).into(), 443)
    } else {
        SocketAddr::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(host)).into(),
            443,
        )
    }
}

fn stack(n: u8) -> Stack {
    [
        Stack::Tcp,
        Stack::SecureMux,
        Stack::Yamux,
        Stack::Udp,
        Stack::Unix,
    ][usize::from(n % 5)]
}

fn attempt_error(n: u8) -> AttemptError {
    match n % 4 {
        0 => AttemptError::Refused,
        1 => AttemptError::Unreachable,
        2 => AttemptError::Reset,
        _ => AttemptError::Other("fuzz"),
    }
}

struct Model {
    race: Race,
    now: Instant,
    live: BTreeSet<AttemptId>,
    ever: BTreeSet<AttemptId>,
    ready: usize,
    failed: usize,
    /// The live attempt just reported connected: the one Ready may name.
    connected: Option<AttemptId>,
}

impl Model {
    fn terminal(&self) -> usize {
        self.ready + self.failed
    }

    fn drain(&mut self) {
        let max_attempts = self.race.config().max_attempts;
        while let Some(action) = self.race.poll_action() {
            match action {
                Action::Start { attempt, candidate } => {
                    assert_eq!(self.terminal(), 0, "start after the terminal event");
                    assert!(self.ever.insert(attempt), "{attempt} started twice");
                    assert!(self.ever.len() <= max_attempts);
                    // Unix paths only on the Unix stack, IP never on it.
                    assert_eq!(
                        candidate.stack == Stack::Unix,
                        matches!(candidate.endpoint, Endpoint::Unix(_)),
                        "{candidate}"
                    );
                    let _ = candidate.to_string();
                    self.live.insert(attempt);
                }
                Action::Cancel { attempt } => {
                    assert!(
                        self.live.remove(&attempt),
                        "{attempt} cancelled but not live"
                    );
                }
                other => panic!("unknown action {other:?}"),
            }
        }
        while let Some(ev) = self.race.poll_event() {
            match ev {
                RaceEvent::AttemptFailed(f) => {
                    assert!(self.ever.contains(&f.attempt));
                    assert!(!self.live.contains(&f.attempt));
                    let _ = f.to_string();
                }
                RaceEvent::Ready { attempt, .. } => {
                    assert_eq!(Some(attempt), self.connected, "Ready for a non-winner");
                    self.ready += 1;
                }
                RaceEvent::Failed(e) => {
                    assert!(e.attempts.len() <= self.ever.len());
                    assert!(e.resolution.len() <= 2);
                    let _ = e.to_string();
                    self.failed += 1;
                }
                other => panic!("unknown event {other:?}"),
            }
        }
        assert!(
            self.terminal() <= 1,
            "{} Ready, {} Failed",
            self.ready,
            self.failed
        );
        assert_eq!(self.race.running(), self.live.len());
        assert_eq!(self.race.is_finished(), self.terminal() == 1);
        let per_family = self.race.config().max_endpoints_per_family;
        assert!(self.race.endpoints_kept() <= 3 * per_family);
        if self.race.is_finished() {
            assert!(self.live.is_empty(), "live after the end: {:?}", self.live);
            assert_eq!(self.race.poll_timeout(), None);
        } else {
            let (deadline, _) = self
                .race
                .poll_timeout()
                .expect("a running race has a deadline");
            assert!(
                deadline > self.now,
                "deadline {deadline:?} not after {:?}",
                self.now
            );
        }
    }

    fn pick(&self, n: u8) -> Option<AttemptId> {
        // Mostly live attempts; sometimes one already ended.
        let set = if n & 0x80 == 0 {
            &self.live
        } else {
            &self.ever
        };
        if set.is_empty() {
            return None;
        }
        set.iter().nth(usize::from(n) % set.len()).copied()
    }
}

fuzz_target!(|input: Input| {
    let c = &input.cfg;
    let config = RaceConfig {
        resolution_delay: Duration::from_millis(u64::from(c.resolution_delay_ms)),
        first_family_count: usize::from(c.first_family_count % 4),
        preferred_family: if c.prefer_v4 { Family::V4 } else { Family::V6 },
        attempt_delay: Duration::from_millis(u64::from(c.attempt_delay_ms % 500)),
        establishment_timeout: Duration::from_millis(u64::from(c.timeout_ms)),
        max_endpoints_per_family: usize::from(c.max_endpoints % 8),
        max_attempts: usize::from(c.max_attempts % 24),
        ..RaceConfig::default()
    };
    let mut endpoints: Vec<Endpoint> = c
        .literals
        .iter()
        .take(8)
        .map(|&n| {
            if n & 0x40 != 0 {
                Endpoint::Unix(format!("/s{}", n & 3))
            } else {
                Endpoint::Ip(addr(n))
            }
        })
        .collect();
    endpoints.truncate(8);
    let mut resolving = Vec::new();
    if c.resolve_v6 {
        resolving.push(Family::V6);
    }
    if c.resolve_v4 {
        resolving.push(Family::V4);
    }
    let plan = RacePlan {
        stacks: c.stacks.iter().take(8).map(|&n| stack(n)).collect(),
        endpoints,
        resolving,
        rtt_estimate: c.rtt_ms.map(|ms| Duration::from_millis(u64::from(ms))),
    };
    let mut m = Model {
        race: Race::new(config, Instant::ZERO, plan),
        now: Instant::ZERO,
        live: BTreeSet::new(),
        ever: BTreeSet::new(),
        ready: 0,
        failed: 0,
        connected: None,
    };
    m.drain();
    for op in input.ops.iter().take(512) {
        match op {
            Op::Answer { v6, addrs } => {
                let addrs: Vec<_> = addrs.iter().take(64).map(|&n| addr(n)).collect();
                let f = if *v6 { Family::V6 } else { Family::V4 };
                m.race.on_answer(m.now, f, &addrs);
            }
            Op::ResolutionFailed { v6, why } => {
                let f = if *v6 { Family::V6 } else { Family::V4 };
                let why = match why % 3 {
                    0 => ResolutionError::NoSuchName,
                    1 => ResolutionError::ServerFailure,
                    _ => ResolutionError::TimedOut,
                };
                m.race.on_resolution_failed(m.now, f, why);
            }
            Op::Connected { pick } => {
                if let Some(id) = m.pick(*pick) {
                    if m.live.remove(&id) {
                        m.connected = Some(id);
                    }
                    m.race.on_connected(m.now, id);
                    // A live attempt connecting always wins.
                    assert!(m.connected.is_none() || m.race.is_finished());
                }
            }
            Op::Failed { pick, why } => {
                if let Some(id) = m.pick(*pick) {
                    m.live.remove(&id);
                    m.race.on_failed(m.now, id, attempt_error(*why));
                }
            }
            Op::Bogus { id, connected } => {
                let id = AttemptId::from_raw(1_000 + u64::from(*id));
                if *connected {
                    m.race.on_connected(m.now, id);
                } else {
                    m.race.on_failed(m.now, id, AttemptError::Refused);
                }
                assert_eq!(m.race.poll_action(), None);
                assert_eq!(m.race.poll_event(), None);
            }
            Op::FireTimer => {
                if let Some((t, _)) = m.race.poll_timeout() {
                    m.now = m.now.max(t);
                }
                m.race.handle_timeout(m.now);
            }
            Op::Forward { ms } => {
                m.now = m.now + Duration::from_millis(u64::from(*ms));
                m.race.handle_timeout(m.now);
            }
            Op::Backward { ms } => {
                // The race keeps the latest time it saw; so does the model
                // for its checks, but the input carries the earlier one.
                let earlier = Instant::from_nanos(
                    m.now.as_nanos().saturating_sub(u64::from(*ms) * 1_000_000),
                );
                m.race.handle_timeout(earlier);
            }
            Op::Cancel => m.race.cancel(m.now),
        }
        m.drain();
        m.connected = None;
    }
    if !m.race.is_finished() {
        m.race.cancel(m.now);
        m.drain();
    }
    assert_eq!(m.terminal(), 1);
    assert!(m.live.is_empty());
});
