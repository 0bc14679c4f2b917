//! Happy Eyeballs racing in virtual time: a scripted discrete-event
//! harness (per-endpoint behaviour, per-family answer times) drives
//! `taps::race::Race` and checks exact start, cancel and event times.
//!
//! Every run also checks the race's invariants: at most one terminal
//! event, no start after it, every started attempt ends exactly once
//! (its outcome or one Cancel), and outcomes for cancelled attempts
//! change nothing.

use proto_core::taps::candidate::{Candidate, Stack};
use proto_core::taps::endpoint::{Endpoint, Family};
use proto_core::taps::race::{
    Action, AttemptError, AttemptId, EstablishmentError, FailureCause, Race, RaceConfig, RaceEvent,
    RacePlan, ResolutionError, TimerReason,
};
use proto_core::time::{Duration, Instant};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
fn at(n: u64) -> Instant {
    Instant::ZERO + ms(n)
}
fn a(n: u16) -> SocketAddr {
    SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n).into(), 443)
}
fn b(n: u8) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::new(192, 0, 2, n).into(), 443)
}
fn tcp(addr: SocketAddr) -> Candidate {
    Candidate {
        stack: Stack::Tcp,
        endpoint: Endpoint::Ip(addr),
    }
}

/// What connecting to an endpoint does.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Never answers.
    Blackhole,
    /// Fails with this error after this long.
    Fail(Duration, AttemptError),
    /// Connects after one RTT.
    Connect(Duration),
}

#[derive(Debug)]
enum Input {
    Answer(Family, Vec<SocketAddr>),
    ResolutionFailed(Family, ResolutionError),
    Connected(AttemptId),
    Failed(AttemptId, AttemptError),
    Cancel,
}

/// A scripted run: when each family answers, how each endpoint behaves.
#[derive(Default)]
struct Script {
    inputs: Vec<(Instant, Input)>,
    behaviour: BTreeMap<Endpoint, Behaviour>,
}

impl Script {
    fn answer(mut self, t: u64, family: Family, addrs: &[SocketAddr]) -> Self {
        self.inputs
            .push((at(t), Input::Answer(family, addrs.to_vec())));
        self
    }
    fn resolution_fails(mut self, t: u64, family: Family, why: ResolutionError) -> Self {
        self.inputs
            .push((at(t), Input::ResolutionFailed(family, why)));
        self
    }
    fn cancel_at(mut self, t: u64) -> Self {
        self.inputs.push((at(t), Input::Cancel));
        self
    }
    fn on(mut self, addr: SocketAddr, b: Behaviour) -> Self {
        self.behaviour.insert(Endpoint::Ip(addr), b);
        self
    }
}

/// What happened, with virtual times.
#[derive(Debug, Default)]
struct Log {
    starts: Vec<(Instant, AttemptId, Candidate)>,
    cancels: Vec<(Instant, AttemptId)>,
    failed_attempts: Vec<(Instant, AttemptId, AttemptError)>,
    terminal: Vec<(Instant, RaceEvent)>,
    timers: Vec<(Instant, TimerReason)>,
}

impl Log {
    fn start_times(&self) -> Vec<(u64, Candidate)> {
        self.starts
            .iter()
            .map(|(t, _, c)| ((*t - Instant::ZERO).as_millis() as u64, c.clone()))
            .collect()
    }
    fn ready(&self) -> (Instant, AttemptId, Candidate, Duration) {
        match &self.terminal[..] {
            [(
                t,
                RaceEvent::Ready {
                    attempt,
                    candidate,
                    connect_time,
                },
            )] => (*t, *attempt, candidate.clone(), *connect_time),
            other => panic!("expected one Ready, got {other:?}"),
        }
    }
    fn failed(&self) -> (Instant, EstablishmentError) {
        match &self.terminal[..] {
            [(t, RaceEvent::Failed(e))] => (*t, e.clone()),
            other => panic!("expected one Failed, got {other:?}"),
        }
    }
}

fn plan(resolving: &[Family]) -> RacePlan {
    RacePlan {
        stacks: vec![Stack::Tcp],
        resolving: resolving.to_vec(),
        ..RacePlan::default()
    }
}

const BOTH: &[Family] = &[Family::V6, Family::V4];

/// Runs `script` until the race ended and every scheduled input was
/// delivered, checking the invariants as it goes.
fn run(config: RaceConfig, plan: RacePlan, script: Script) -> Log {
    let mut queue: BTreeMap<(Instant, u64), Input> = BTreeMap::new();
    let mut seq = 0u64;
    for (t, input) in script.inputs {
        queue.insert((t, seq), input);
        seq += 1;
    }
    let mut race = Race::new(config, Instant::ZERO, plan);
    let mut log = Log::default();
    let mut live: BTreeSet<AttemptId> = BTreeSet::new();
    let mut ever: BTreeSet<AttemptId> = BTreeSet::new();
    let mut now = Instant::ZERO;
    for _ in 0..10_000 {
        // Drain, as the call order says.
        while let Some(action) = race.poll_action() {
            match action {
                Action::Start { attempt, candidate } => {
                    assert!(log.terminal.is_empty(), "start after the terminal event");
                    assert!(ever.insert(attempt), "{attempt} started twice");
                    live.insert(attempt);
                    let input = match script
                        .behaviour
                        .get(&candidate.endpoint)
                        .copied()
                        .unwrap_or(Behaviour::Blackhole)
                    {
                        Behaviour::Blackhole => None,
                        Behaviour::Fail(d, e) => Some((now + d, Input::Failed(attempt, e))),
                        Behaviour::Connect(d) => Some((now + d, Input::Connected(attempt))),
                    };
                    if let Some((t, input)) = input {
                        queue.insert((t, seq), input);
                        seq += 1;
                    }
                    log.starts.push((now, attempt, candidate));
                }
                Action::Cancel { attempt } => {
                    assert!(live.remove(&attempt), "{attempt} cancelled but not live");
                    log.cancels.push((now, attempt));
                }
                other => panic!("unknown action {other:?}"),
            }
        }
        while let Some(ev) = race.poll_event() {
            match ev {
                RaceEvent::AttemptFailed(f) => log.failed_attempts.push((now, f.attempt, f.error)),
                terminal => {
                    assert!(log.terminal.is_empty(), "a second terminal event");
                    log.terminal.push((now, terminal));
                }
            }
        }
        assert_eq!(race.running(), live.len());
        let timer = race.poll_timeout();
        if let Some(t) = timer {
            log.timers.push(t);
        }
        let next_input = queue.keys().next().copied();
        match (timer, next_input) {
            (None, None) => {
                assert!(race.is_finished());
                assert!(live.is_empty(), "attempts never ended: {live:?}");
                assert_eq!(log.terminal.len(), 1);
                return log;
            }
            (Some((t, _)), next) if next.is_none_or(|(n, _)| t < n) => {
                assert!(t >= now, "timer in the past");
                now = t;
                race.handle_timeout(now);
            }
            _ => {
                let (key, input) = queue.pop_first().unwrap();
                now = key.0;
                match input {
                    Input::Answer(f, addrs) => race.on_answer(now, f, &addrs),
                    Input::ResolutionFailed(f, e) => race.on_resolution_failed(now, f, e),
                    Input::Connected(id) => {
                        // A cancelled attempt's outcome must change nothing.
                        let was_live = live.remove(&id);
                        race.on_connected(now, id);
                        if !was_live {
                            assert_eq!(race.poll_action(), None);
                            assert_eq!(race.poll_event(), None);
                        }
                    }
                    Input::Failed(id, e) => {
                        let was_live = live.remove(&id);
                        race.on_failed(now, id, e);
                        if !was_live {
                            assert_eq!(race.poll_action(), None);
                            assert_eq!(race.poll_event(), None);
                        }
                    }
                    Input::Cancel => race.cancel(now),
                }
            }
        }
    }
    panic!("the run did not end");
}

fn config() -> RaceConfig {
    RaceConfig::default()
}

#[test]
fn blackholed_first_candidate_gives_ready_at_attempt_delay_plus_rtt() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1)])
        .answer(0, Family::V4, &[b(1)])
        .on(b(1), Behaviour::Connect(ms(20)));
    let log = run(config(), plan(BOTH), script);
    assert_eq!(log.start_times(), [(0, tcp(a(1))), (250, tcp(b(1)))]);
    let (t, id, cand, connect_time) = log.ready();
    assert_eq!(t, at(270));
    assert_eq!((id, cand), (AttemptId::from_raw(1), tcp(b(1))));
    assert_eq!(connect_time, ms(20));
    assert_eq!(log.cancels, [(at(270), AttemptId::from_raw(0))]);
}

#[test]
fn a_failure_starts_the_next_attempt_at_once() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1)])
        .answer(0, Family::V4, &[b(1)])
        .on(a(1), Behaviour::Fail(ms(5), AttemptError::Refused))
        .on(b(1), Behaviour::Connect(ms(10)));
    let log = run(config(), plan(BOTH), script);
    assert_eq!(log.start_times(), [(0, tcp(a(1))), (5, tcp(b(1)))]);
    assert_eq!(
        log.failed_attempts,
        [(at(5), AttemptId::from_raw(0), AttemptError::Refused)]
    );
    assert_eq!(log.ready().0, at(15));
    assert!(log.cancels.is_empty());
}

#[test]
fn aaaa_late_within_the_resolution_delay_goes_first() {
    let script = Script::default()
        .answer(0, Family::V4, &[b(1)])
        .answer(30, Family::V6, &[a(1)])
        .on(b(1), Behaviour::Connect(ms(10)));
    let log = run(config(), plan(BOTH), script);
    assert!(log.timers.contains(&(at(50), TimerReason::ResolutionDelay)));
    assert_eq!(log.start_times(), [(30, tcp(a(1))), (280, tcp(b(1)))]);
    assert_eq!(log.ready().0, at(290));
}

#[test]
fn aaaa_later_than_the_resolution_delay_joins_after_the_first_attempt() {
    let script = Script::default()
        .answer(0, Family::V4, &[b(1), b(2)])
        .answer(100, Family::V6, &[a(1)])
        .on(a(1), Behaviour::Connect(ms(10)));
    let log = run(config(), plan(BOTH), script);
    // The A answer waits 50 ms; the late AAAA address is next in line
    // (it sorts before b(2)) when the attempt delay passes.
    assert_eq!(log.start_times(), [(50, tcp(b(1))), (300, tcp(a(1)))]);
    assert_eq!(log.ready().0, at(310));
    assert_eq!(log.cancels, [(at(310), AttemptId::from_raw(0))]);
}

#[test]
fn a_late_joins_the_interleaving() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1), a(2)])
        .answer(400, Family::V4, &[b(1)]);
    let log = run(
        RaceConfig {
            establishment_timeout: ms(1000),
            ..config()
        },
        plan(BOTH),
        script,
    );
    assert_eq!(
        log.start_times(),
        [(0, tcp(a(1))), (250, tcp(a(2))), (500, tcp(b(1)))]
    );
    let (t, e) = log.failed();
    assert_eq!(t, at(1000));
    assert_eq!(e.cause, FailureCause::TimedOut);
    assert_eq!(e.attempts.len(), 3);
}

#[test]
fn a_answer_after_aaaa_started_does_not_wait() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1)])
        .answer(100, Family::V4, &[b(1)])
        .on(b(1), Behaviour::Connect(ms(1)));
    let log = run(config(), plan(BOTH), script);
    assert_eq!(log.start_times(), [(0, tcp(a(1))), (250, tcp(b(1)))]);
    assert_eq!(log.ready().0, at(251));
}

#[test]
fn aaaa_failing_releases_the_waiting_a_answer() {
    let script = Script::default()
        .answer(0, Family::V4, &[b(1)])
        .resolution_fails(10, Family::V6, ResolutionError::ServerFailure)
        .on(b(1), Behaviour::Fail(ms(3), AttemptError::Refused));
    let log = run(config(), plan(BOTH), script);
    assert_eq!(log.start_times(), [(10, tcp(b(1)))]);
    let (t, e) = log.failed();
    assert_eq!(t, at(13));
    assert_eq!(e.cause, FailureCause::AllFailed);
    assert_eq!(e.resolution, [(Family::V6, ResolutionError::ServerFailure)]);
    let text = e.to_string();
    assert!(text.contains("192.0.2.1:443): refused"), "{text}");
    assert!(text.contains("AAAA resolution: server failure"), "{text}");
}

#[test]
fn empty_aaaa_answer_releases_the_waiting_a_answer() {
    let script = Script::default()
        .answer(0, Family::V4, &[b(1)])
        .answer(20, Family::V6, &[])
        .on(b(1), Behaviour::Connect(ms(5)));
    let log = run(config(), plan(BOTH), script);
    assert_eq!(log.start_times(), [(20, tcp(b(1)))]);
    assert_eq!(log.ready().0, at(25));
}

#[test]
fn only_a_resolving_does_not_wait() {
    let script = Script::default()
        .answer(7, Family::V4, &[b(1)])
        .on(b(1), Behaviour::Connect(ms(5)));
    let log = run(config(), plan(&[Family::V4]), script);
    assert_eq!(log.start_times(), [(7, tcp(b(1)))]);
}

fn interleaving(first_family_count: usize) -> Vec<(u64, Candidate)> {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1), a(2), a(3)])
        .answer(0, Family::V4, &[b(1), b(2)]);
    let log = run(
        RaceConfig {
            first_family_count,
            ..config()
        },
        plan(BOTH),
        script,
    );
    let (t, e) = log.failed();
    assert_eq!(t, at(30_000));
    assert_eq!(e.cause, FailureCause::TimedOut);
    assert!(e.attempts.iter().all(|f| f.error == AttemptError::TimedOut));
    assert_eq!(log.cancels.len(), 5);
    log.start_times()
}

#[test]
fn interleaving_with_first_family_count_one() {
    assert_eq!(
        interleaving(1),
        [
            (0, tcp(a(1))),
            (250, tcp(b(1))),
            (500, tcp(a(2))),
            (750, tcp(b(2))),
            (1000, tcp(a(3))),
        ]
    );
}

#[test]
fn interleaving_with_first_family_count_two() {
    assert_eq!(
        interleaving(2),
        [
            (0, tcp(a(1))),
            (250, tcp(a(2))),
            (500, tcp(b(1))),
            (750, tcp(a(3))),
            (1000, tcp(b(2))),
        ]
    );
}

#[test]
fn preferred_v4_leads_the_interleaving() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1)])
        .answer(0, Family::V4, &[b(1)])
        .on(a(1), Behaviour::Connect(ms(1)));
    let log = run(
        RaceConfig {
            preferred_family: Family::V4,
            ..config()
        },
        plan(BOTH),
        script,
    );
    assert_eq!(log.start_times(), [(0, tcp(b(1))), (250, tcp(a(1)))]);
}

#[test]
fn stacks_are_the_outer_order() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1)])
        .answer(0, Family::V4, &[b(1)])
        .on(b(1), Behaviour::Fail(ms(1), AttemptError::Unreachable))
        .on(a(1), Behaviour::Fail(ms(1), AttemptError::Reset));
    let log = run(
        config(),
        RacePlan {
            stacks: vec![Stack::SecureMux, Stack::Tcp, Stack::SecureMux],
            resolving: BOTH.to_vec(),
            ..RacePlan::default()
        },
        script,
    );
    let order: Vec<_> = log
        .start_times()
        .into_iter()
        .map(|(t, c)| (t, c.stack, c.endpoint))
        .collect();
    assert_eq!(
        order,
        [
            (0, Stack::SecureMux, Endpoint::Ip(a(1))),
            (1, Stack::SecureMux, Endpoint::Ip(b(1))),
            (2, Stack::Tcp, Endpoint::Ip(a(1))),
            (3, Stack::Tcp, Endpoint::Ip(b(1))),
        ]
    );
    let (t, e) = log.failed();
    assert_eq!(t, at(4));
    assert_eq!(e.attempts.len(), 4);
}

#[test]
fn no_attempt_after_the_winner_and_every_loser_cancelled_once() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1), a(2), a(3)])
        .answer(0, Family::V4, &[b(1), b(2)])
        // Late outcomes for attempts the winner cancelled.
        .on(a(1), Behaviour::Fail(ms(700), AttemptError::Refused))
        .on(b(1), Behaviour::Connect(ms(900)))
        .on(a(2), Behaviour::Connect(ms(100)));
    let log = run(config(), plan(BOTH), script);
    assert_eq!(
        log.start_times(),
        [(0, tcp(a(1))), (250, tcp(b(1))), (500, tcp(a(2)))]
    );
    let (t, id, cand, rtt) = log.ready();
    assert_eq!(
        (t, id, cand, rtt),
        (at(600), AttemptId::from_raw(2), tcp(a(2)), ms(100))
    );
    assert_eq!(
        log.cancels,
        [
            (at(600), AttemptId::from_raw(0)),
            (at(600), AttemptId::from_raw(1))
        ]
    );
    assert!(log.failed_attempts.is_empty());
}

#[test]
fn the_establishment_timeout_cancels_and_reports_pending_attempts() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1)])
        .answer(0, Family::V4, &[b(1)])
        .on(a(1), Behaviour::Fail(ms(20), AttemptError::Unreachable));
    let log = run(
        RaceConfig {
            establishment_timeout: ms(1000),
            ..config()
        },
        plan(BOTH),
        script,
    );
    assert_eq!(log.start_times(), [(0, tcp(a(1))), (20, tcp(b(1)))]);
    let (t, e) = log.failed();
    assert_eq!(t, at(1000));
    assert_eq!(e.cause, FailureCause::TimedOut);
    let errors: Vec<_> = e.attempts.iter().map(|f| (f.attempt, f.error)).collect();
    assert_eq!(
        errors,
        [
            (AttemptId::from_raw(0), AttemptError::Unreachable),
            (AttemptId::from_raw(1), AttemptError::TimedOut)
        ]
    );
    assert_eq!(log.cancels, [(at(1000), AttemptId::from_raw(1))]);
}

#[test]
fn the_timeout_also_covers_resolution() {
    let log = run(
        RaceConfig {
            establishment_timeout: ms(400),
            ..config()
        },
        plan(BOTH),
        Script::default(),
    );
    let (t, e) = log.failed();
    assert_eq!((t, e.cause), (at(400), FailureCause::TimedOut));
    assert!(log.starts.is_empty());
}

#[test]
fn everything_failing_gives_one_failed_listing_every_error() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1), a(2)])
        .answer(0, Family::V4, &[b(1)])
        .on(a(1), Behaviour::Fail(ms(5), AttemptError::Refused))
        .on(b(1), Behaviour::Fail(ms(300), AttemptError::Unreachable))
        .on(
            a(2),
            Behaviour::Fail(ms(40), AttemptError::Other("tls alert")),
        );
    let log = run(config(), plan(BOTH), script);
    assert_eq!(
        log.start_times(),
        [(0, tcp(a(1))), (5, tcp(b(1))), (255, tcp(a(2)))]
    );
    let (t, e) = log.failed();
    assert_eq!(t, at(305));
    assert_eq!(e.cause, FailureCause::AllFailed);
    assert_eq!(log.failed_attempts.len(), 3);
    assert_eq!(
        e.to_string(),
        "connection establishment failed (every attempt failed): \
         attempt 0 (tcp [2001:db8::1]:443): refused; \
         attempt 1 (tcp 192.0.2.1:443): unreachable; \
         attempt 2 (tcp [2001:db8::2]:443): tls alert"
    );
    assert!(log.cancels.is_empty());
}

#[test]
fn failing_waits_for_resolution_still_running() {
    // A refuses at 5 ms, but AAAA is still running: no Failed until it
    // answers, and its address is tried at once.
    let script = Script::default()
        .answer(0, Family::V4, &[b(1)])
        .answer(80, Family::V6, &[a(1)])
        .on(b(1), Behaviour::Fail(ms(5), AttemptError::Refused))
        .on(a(1), Behaviour::Connect(ms(3)));
    let log = run(config(), plan(BOTH), script);
    assert_eq!(log.start_times(), [(50, tcp(b(1))), (80, tcp(a(1)))]);
    assert_eq!(log.ready().0, at(83));
}

#[test]
fn both_resolutions_failing_lists_both() {
    let script = Script::default()
        .resolution_fails(3, Family::V4, ResolutionError::NoSuchName)
        .resolution_fails(9, Family::V6, ResolutionError::TimedOut);
    let log = run(config(), plan(BOTH), script);
    let (t, e) = log.failed();
    assert_eq!((t, e.cause), (at(9), FailureCause::NoCandidates));
    assert_eq!(
        e.to_string(),
        "connection establishment failed (no candidate to try): \
         A resolution: no such name; AAAA resolution: timed out"
    );
}

#[test]
fn nothing_to_try_fails_at_once() {
    let mut race = Race::new(config(), at(3), RacePlan::default());
    assert_eq!(race.poll_action(), None);
    match race.poll_event() {
        Some(RaceEvent::Failed(e)) => assert_eq!(e.cause, FailureCause::NoCandidates),
        other => panic!("{other:?}"),
    }
    assert_eq!(race.poll_event(), None);
    assert_eq!(race.poll_timeout(), None);
}

#[test]
fn known_endpoints_start_at_once_unix_on_unix_only() {
    let plan = RacePlan {
        stacks: vec![Stack::Unix, Stack::Tcp],
        endpoints: vec![Endpoint::Unix("/run/app.sock".into()), Endpoint::Ip(b(9))],
        resolving: vec![],
        rtt_estimate: None,
    };
    let script = Script::default().on(b(9), Behaviour::Connect(ms(1)));
    let log = run(config(), plan, script);
    let order: Vec<_> = log
        .start_times()
        .into_iter()
        .map(|(t, c)| (t, c.stack, c.endpoint))
        .collect();
    assert_eq!(
        order,
        [
            (0, Stack::Unix, Endpoint::Unix("/run/app.sock".into())),
            (250, Stack::Tcp, Endpoint::Ip(b(9))),
        ]
    );
    assert_eq!(log.ready().0, at(251));
}

#[test]
fn the_application_cancelling_ends_the_race() {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1), a(2)])
        .cancel_at(300);
    let log = run(config(), plan(BOTH), script);
    assert_eq!(log.start_times(), [(0, tcp(a(1))), (250, tcp(a(2)))]);
    let (t, e) = log.failed();
    assert_eq!((t, e.cause), (at(300), FailureCause::Cancelled));
    assert_eq!(log.cancels.len(), 2);
    assert!(e
        .attempts
        .iter()
        .all(|f| f.error == AttemptError::Cancelled));
}

fn second_start_with_rtt(rtt: Option<Duration>) -> u64 {
    let script = Script::default()
        .answer(0, Family::V6, &[a(1)])
        .answer(0, Family::V4, &[b(1)])
        .on(b(1), Behaviour::Connect(ms(1)));
    let log = run(
        config(),
        RacePlan {
            rtt_estimate: rtt,
            ..plan(BOTH)
        },
        script,
    );
    log.start_times()[1].0
}

#[test]
fn the_rtt_estimate_sets_the_attempt_delay_within_its_clamps() {
    assert_eq!(second_start_with_rtt(None), 250);
    assert_eq!(second_start_with_rtt(Some(ms(80))), 160);
    assert_eq!(second_start_with_rtt(Some(ms(10))), 100);
    assert_eq!(second_start_with_rtt(Some(ms(5000))), 2000);
}

#[test]
fn huge_answers_are_bounded() {
    let many: Vec<_> = (1..=1000u16).map(a).collect();
    let mut race = Race::new(
        RaceConfig {
            attempt_delay: Duration::ZERO,
            ..config()
        },
        Instant::ZERO,
        plan(BOTH),
    );
    race.on_answer(Instant::ZERO, Family::V6, &many);
    race.on_answer(Instant::ZERO, Family::V6, &many);
    assert_eq!(race.endpoints_kept(), 16);
    let mut starts = 0;
    while let Some(action) = race.poll_action() {
        assert!(matches!(action, Action::Start { .. }));
        starts += 1;
    }
    // Zero delay: every kept candidate at once, within max_attempts.
    assert_eq!(starts, 16);
    assert_eq!(race.running(), 16);
}

#[test]
fn bogus_and_repeated_outcomes_are_ignored() {
    let mut race = Race::new(config(), Instant::ZERO, plan(&[Family::V6]));
    race.on_answer(at(0), Family::V6, &[a(1), a(2)]);
    let Some(Action::Start { attempt, .. }) = race.poll_action() else {
        panic!()
    };
    race.on_connected(at(1), AttemptId::from_raw(77));
    race.on_failed(at(1), AttemptId::from_raw(78), AttemptError::Refused);
    assert_eq!(race.poll_action(), None);
    assert_eq!(race.poll_event(), None);
    race.on_failed(at(2), attempt, AttemptError::Refused);
    assert!(matches!(race.poll_action(), Some(Action::Start { .. })));
    assert!(matches!(
        race.poll_event(),
        Some(RaceEvent::AttemptFailed(_))
    ));
    race.on_failed(at(3), attempt, AttemptError::Refused);
    assert_eq!(race.poll_action(), None);
    assert_eq!(race.poll_event(), None);
    assert_eq!(race.running(), 1);
}
