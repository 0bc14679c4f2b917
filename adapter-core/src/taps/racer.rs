//! Runs the racing core ([`proto_core::taps::race::Race`]) on a runtime:
//! resolves names, starts and cancels attempts as it says, fires its
//! timer, and reports every attempt with its timing.

use super::establish::{establish, Established, StackOptions};
use super::net::Net;
use super::resolve::Resolver;
use super::BoxFuture;
use crate::runtime::Timer;
use proto_core::taps::candidate::Candidate;
use proto_core::taps::endpoint::Family;
use proto_core::taps::race::{
    Action, AttemptError, AttemptId, EstablishmentError, FailureCause, Race, RaceConfig, RaceEvent,
    RacePlan, ResolutionError,
};
use proto_core::time::Instant as CoreInstant;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// How one attempt ended, for the [`RaceReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// It won.
    Won,
    /// It failed: the error as the socket or the stack said it.
    Failed(String),
    /// The race cancelled it (another won, or the race ended).
    Cancelled,
}

/// One attempt: what, when it started and ended (from the race's start).
#[derive(Debug, Clone)]
pub struct AttemptReport {
    /// The attempt's number in start order.
    pub attempt: u64,
    /// What it connected to.
    pub candidate: Candidate,
    /// When it started.
    pub started: Duration,
    /// When it ended.
    pub ended: Duration,
    /// How.
    pub outcome: AttemptOutcome,
}

/// One family's resolution: when it answered, and what.
#[derive(Debug, Clone)]
pub struct ResolutionReport {
    /// The family (AAAA for V6, A for V4).
    pub family: Family,
    /// When the answer came.
    pub at: Duration,
    /// The addresses, or the error.
    pub answer: Result<Vec<SocketAddr>, String>,
}

/// What a race did: resolutions, attempts with their timings, the delay
/// between attempts, and how long the whole race took.
#[derive(Debug, Clone, Default)]
pub struct RaceReport {
    /// Each family's resolution, in answer order.
    pub resolutions: Vec<ResolutionReport>,
    /// Each attempt, in start order.
    pub attempts: Vec<AttemptReport>,
    /// The connection attempt delay the race used.
    pub attempt_delay: Duration,
    /// From the start to the winner (or the failure).
    pub elapsed: Duration,
}

impl RaceReport {
    /// Records how attempt `id` ended, at `at`.
    fn settle(&mut self, id: AttemptId, at: Duration, outcome: AttemptOutcome) {
        if let Some(a) = self.attempts.iter_mut().find(|a| a.attempt == id.as_raw()) {
            a.ended = at;
            a.outcome = outcome;
        }
    }
}

impl fmt::Display for RaceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for r in &self.resolutions {
            let rr = match r.family {
                Family::V6 => "AAAA",
                Family::V4 => "A",
            };
            match &r.answer {
                Ok(a) => writeln!(f, "{:>8.2} ms  {rr} answer: {a:?}", ms(r.at))?,
                Err(e) => writeln!(f, "{:>8.2} ms  {rr} failed: {e}", ms(r.at))?,
            }
        }
        for a in &self.attempts {
            let how = match &a.outcome {
                AttemptOutcome::Won => "won".to_owned(),
                AttemptOutcome::Failed(e) => format!("failed: {e}"),
                AttemptOutcome::Cancelled => "cancelled".to_owned(),
            };
            writeln!(
                f,
                "{:>8.2} ms  attempt {} to {} started; {how} at {:.2} ms",
                ms(a.started),
                a.attempt,
                a.candidate,
                ms(a.ended)
            )?;
        }
        write!(
            f,
            "attempt delay {:.0} ms, race took {:.2} ms",
            ms(self.attempt_delay),
            ms(self.elapsed)
        )
    }
}

/// The race's winner.
#[derive(Debug)]
pub struct Won {
    /// The winning attempt's stack, ready.
    pub established: Established,
    /// What it connected to.
    pub candidate: Candidate,
    /// From its start to connected.
    pub connect_time: Duration,
}

/// The race failed: the core's error (every attempt and resolution error)
/// and the report. Converts into an `io::Error` naming them all.
#[derive(Debug)]
pub struct RaceFailed {
    /// The core's account.
    pub error: EstablishmentError,
    /// The adapter's account, with the sockets' own error messages.
    pub report: RaceReport,
}

impl fmt::Display for RaceFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for RaceFailed {}

impl From<RaceFailed> for io::Error {
    fn from(e: RaceFailed) -> io::Error {
        let kind = match e.error.cause {
            FailureCause::TimedOut => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::ConnectionRefused,
        };
        io::Error::new(kind, e)
    }
}

/// What the core knows of an attempt's error.
fn attempt_error(e: &io::Error) -> AttemptError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => AttemptError::Refused,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            AttemptError::Unreachable
        }
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => AttemptError::Reset,
        io::ErrorKind::TimedOut => AttemptError::TimedOut,
        io::ErrorKind::PermissionDenied => AttemptError::Other("refused by an authorizer"),
        _ => AttemptError::Other("connection setup failed"),
    }
}

fn resolution_error(e: &io::Error) -> ResolutionError {
    match e.kind() {
        io::ErrorKind::TimedOut => ResolutionError::TimedOut,
        io::ErrorKind::NotFound => ResolutionError::NoSuchName,
        _ => ResolutionError::Other("the resolver failed"),
    }
}

type Attempt = BoxFuture<io::Result<Established>>;

/// How early the racer arms its timer before yielding until the deadline
/// itself: runtime timers count in milliseconds and may fire up to a tick
/// past what they were set for (1 ms was measured to start attempts up to
/// 1 ms late, sometimes 3; 2 ms kept every start within 0.02 ms).
const TIMER_GRAIN: Duration = Duration::from_millis(2);

/// Races `plan` on `net`: resolves `host` (if given) per family with
/// `resolver`, brings each candidate's stack up with `opts`, and returns
/// the winner and the report.
pub async fn race<N: Net>(
    net: &N,
    resolver: &Arc<dyn Resolver>,
    config: RaceConfig,
    plan: RacePlan,
    host: Option<(String, u16)>,
    opts: Arc<StackOptions>,
) -> Result<(Won, RaceReport), RaceFailed> {
    let origin = Instant::now();
    let core_now =
        || CoreInstant::from_nanos(u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX));
    let mut resolving: Vec<(Family, BoxFuture<io::Result<Vec<SocketAddr>>>)> = Vec::new();
    if let Some((name, port)) = &host {
        for &family in &plan.resolving {
            resolving.push((family, resolver.resolve(name, *port, family)));
        }
    }
    let mut race = Race::new(config, core_now(), plan);
    let mut report = RaceReport {
        attempt_delay: race.attempt_delay(),
        ..RaceReport::default()
    };
    let mut attempts: Vec<(AttemptId, Attempt)> = Vec::new();
    let mut connected: Vec<(AttemptId, Established)> = Vec::new();
    let mut timer = net.timer();
    let mut outcome: Option<Result<Won, EstablishmentError>> = None;

    let result = poll_fn(|cx| loop {
        let now = core_now();
        let at = origin.elapsed();
        let mut progressed = false;
        let mut i = 0;
        while i < resolving.len() {
            if let Poll::Ready(r) = resolving[i].1.as_mut().poll(cx) {
                let (family, _) = resolving.swap_remove(i);
                match &r {
                    Ok(addrs) => race.on_answer(now, family, addrs),
                    Err(e) => race.on_resolution_failed(now, family, resolution_error(e)),
                }
                report.resolutions.push(ResolutionReport {
                    family,
                    at,
                    answer: r.map_err(|e| e.to_string()),
                });
                progressed = true;
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < attempts.len() {
            if let Poll::Ready(r) = attempts[i].1.as_mut().poll(cx) {
                let (id, _) = attempts.swap_remove(i);
                match r {
                    Ok(est) => {
                        connected.push((id, est));
                        race.on_connected(now, id);
                    }
                    Err(e) => {
                        report.settle(id, at, AttemptOutcome::Failed(e.to_string()));
                        race.on_failed(now, id, attempt_error(&e));
                    }
                }
                progressed = true;
            } else {
                i += 1;
            }
        }
        if race.poll_timeout().is_some_and(|(d, _)| now >= d) {
            race.handle_timeout(now);
            progressed = true;
        }
        while let Some(action) = race.poll_action() {
            progressed = true;
            match action {
                Action::Start { attempt, candidate } => {
                    report.attempts.push(AttemptReport {
                        attempt: attempt.as_raw(),
                        candidate: candidate.clone(),
                        started: at,
                        ended: at,
                        outcome: AttemptOutcome::Cancelled,
                    });
                    let (net, opts) = (net.clone(), opts.clone());
                    attempts.push((
                        attempt,
                        Box::pin(async move { establish(net, candidate, &opts).await }),
                    ));
                }
                Action::Cancel { attempt } => {
                    // Dropping the attempt closes its socket (and stops its handshake).
                    attempts.retain(|(id, _)| *id != attempt);
                    connected.retain(|(id, _)| *id != attempt);
                    report.settle(attempt, at, AttemptOutcome::Cancelled);
                }
                _ => {}
            }
        }
        while let Some(ev) = race.poll_event() {
            match ev {
                RaceEvent::Ready {
                    attempt,
                    candidate,
                    connect_time,
                } => {
                    let pos = connected.iter().position(|(id, _)| *id == attempt);
                    let Some(pos) = pos else {
                        // The core named a winner we hold no stack for: fail
                        // rather than wait forever.
                        outcome = Some(Err(EstablishmentError {
                            cause: FailureCause::AllFailed,
                            attempts: Vec::new(),
                            resolution: Vec::new(),
                        }));
                        continue;
                    };
                    let (_, established) = connected.swap_remove(pos);
                    report.settle(attempt, at, AttemptOutcome::Won);
                    outcome = Some(Ok(Won {
                        established,
                        candidate,
                        connect_time,
                    }));
                }
                RaceEvent::Failed(e) => outcome = Some(Err(e)),
                _ => {}
            }
        }
        if let Some(o) = outcome.take() {
            return Poll::Ready(o);
        }
        if progressed {
            continue;
        }
        match race.poll_timeout() {
            Some((deadline, _)) => {
                let due = origin + deadline.saturating_duration_since(CoreInstant::ZERO);
                let left = due.saturating_duration_since(Instant::now());
                if left <= TIMER_GRAIN {
                    // Runtime timers round up to their tick: the last
                    // stretch is yielded through, so the next attempt
                    // starts on time, not up to a tick late.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                timer.reset(due - TIMER_GRAIN);
                if timer.poll_expired(cx).is_ready() {
                    continue;
                }
            }
            None if attempts.is_empty() && resolving.is_empty() => {
                // Nothing can move the race any more: end it rather than hang.
                race.cancel(now);
                continue;
            }
            None => {}
        }
        return Poll::Pending;
    })
    .await;
    // Losers still connecting or connected are dropped here: their sockets close.
    drop(attempts);
    drop(connected);
    report.elapsed = origin.elapsed();
    match result {
        Ok(won) => Ok((won, report)),
        Err(error) => Err(RaceFailed { error, report }),
    }
}
