//! The race itself.

use super::config::{RaceConfig, RacePlan};
use super::order::Endpoints;
use super::outcome::{
    Action, AttemptError, AttemptFailure, AttemptId, EstablishmentError, FailureCause, RaceEvent,
    ResolutionError, TimerReason,
};
use crate::taps::candidate::{Candidate, Stack};
use crate::taps::endpoint::{Endpoint, Family};
use crate::time::{Duration, Instant};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::net::SocketAddr;

/// A Happy Eyeballs race (RFC 8305, draft-ietf-happy-eyeballs-v3) over
/// the candidates of one connection: a pure machine, no clock.
///
/// **Inputs**: resolution answers ([`on_answer`](Self::on_answer),
/// [`on_resolution_failed`](Self::on_resolution_failed)), attempt
/// outcomes ([`on_connected`](Self::on_connected),
/// [`on_failed`](Self::on_failed)), [`handle_timeout`](Self::handle_timeout)
/// and [`cancel`](Self::cancel). Every input carries `now`; a `now` earlier
/// than one seen before counts as that one.
///
/// **Call order**: after constructing and after every input, drain
/// [`poll_action`](Self::poll_action) (start and cancel attempts), then
/// [`poll_event`](Self::poll_event), then re-arm the timer from
/// [`poll_timeout`](Self::poll_timeout).
///
/// **Rules**:
/// - candidates are tried stacks first (the plan's order), and inside a
///   stack with the families interleaved: `first_family_count` of the
///   preferred family, then one of each in turn;
/// - an answer for the preferred family starts attempts at once; an
///   answer for the other family arriving while nothing has started and
///   the preferred family is still resolving waits `resolution_delay` for
///   it (and starts at once when it arrives or fails);
/// - the next attempt starts the attempt delay after the previous start,
///   or at once when an attempt fails (or nothing is running); the delay
///   comes from [`RaceConfig::attempt_delay_for`];
/// - a late answer's addresses take the place in the order they would
///   have had; candidates already started are skipped;
/// - the first attempt to connect wins: [`RaceEvent::Ready`], one
///   [`Action::Cancel`] for every other running attempt, and nothing
///   starts after it;
/// - when every attempt failed, resolution is over and nothing is left to
///   try, [`RaceEvent::Failed`] at once; at the establishment timeout (or
///   on `cancel`) every running attempt is cancelled and reported;
/// - exactly one terminal event (`Ready` or `Failed`); after it every
///   input is ignored, as are outcomes of attempts not running
///   (cancelled, finished or never issued).
///
/// ```
/// use proto_core::taps::candidate::Stack;
/// use proto_core::taps::endpoint::Family;
/// use proto_core::taps::race::{Action, Race, RaceConfig, RaceEvent, RacePlan};
/// use proto_core::time::{Duration, Instant};
///
/// let t0 = Instant::ZERO;
/// let plan = RacePlan {
///     stacks: vec![Stack::Tcp],
///     resolving: vec![Family::V6, Family::V4],
///     ..RacePlan::default()
/// };
/// let mut race = Race::new(RaceConfig::default(), t0, plan);
/// assert_eq!(race.poll_action(), None);
/// race.on_answer(t0, Family::V6, &["[2001:db8::1]:443".parse().unwrap()]);
/// let Some(Action::Start { attempt, .. }) = race.poll_action() else { panic!() };
/// let t1 = t0 + Duration::from_millis(30);
/// race.on_connected(t1, attempt);
/// let Some(RaceEvent::Ready { connect_time, .. }) = race.poll_event() else { panic!() };
/// assert_eq!(connect_time, Duration::from_millis(30));
/// ```
#[derive(Debug)]
pub struct Race {
    config: RaceConfig,
    stacks: Vec<Stack>,
    endpoints: Endpoints,
    /// Resolution still running, indexed by `family_index`.
    resolving: [bool; 2],
    attempt_delay: Duration,
    now: Instant,
    deadline: Instant,
    resolution_deadline: Option<Instant>,
    next_start_at: Instant,
    /// When the next attempt is due and a candidate waits for it.
    attempt_timer: Option<Instant>,
    started: u64,
    tried: BTreeSet<Candidate>,
    running: BTreeMap<AttemptId, (Candidate, Instant)>,
    failures: Vec<AttemptFailure>,
    resolution_errors: Vec<(Family, ResolutionError)>,
    actions: VecDeque<Action>,
    events: VecDeque<RaceEvent>,
    finished: bool,
}

fn family_index(f: Family) -> usize {
    match f {
        Family::V6 => 0,
        Family::V4 => 1,
    }
}

impl Race {
    /// A race for `plan` starting at `now`. Known endpoints start at once
    /// (drain [`poll_action`](Self::poll_action)); with no candidate and
    /// nothing resolving it fails at once.
    pub fn new(config: RaceConfig, now: Instant, plan: RacePlan) -> Race {
        let mut stacks = Vec::new();
        for s in plan.stacks {
            if !stacks.contains(&s) {
                stacks.push(s);
            }
        }
        let mut endpoints = Endpoints::default();
        for e in &plan.endpoints {
            endpoints.add(e, config.max_endpoints_per_family);
        }
        let mut resolving = [false; 2];
        for f in plan.resolving {
            resolving[family_index(f)] = true;
        }
        let mut race = Race {
            attempt_delay: config.attempt_delay_for(plan.rtt_estimate),
            deadline: now.saturating_add(config.establishment_timeout),
            config,
            stacks,
            endpoints,
            resolving,
            now,
            resolution_deadline: None,
            next_start_at: now,
            attempt_timer: None,
            started: 0,
            tried: BTreeSet::new(),
            running: BTreeMap::new(),
            failures: Vec::new(),
            resolution_errors: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            finished: false,
        };
        race.step();
        race
    }

    /// The answer for `family`'s query (empty: no records). Addresses are
    /// filed under their own family, kept up to
    /// [`RaceConfig::max_endpoints_per_family`]. Answers after the first
    /// for a family (or for a family not resolving) add their addresses.
    pub fn on_answer(&mut self, now: Instant, family: Family, addrs: &[SocketAddr]) {
        if self.advance(now) {
            return;
        }
        let mut added = false;
        for a in addrs {
            added |= self
                .endpoints
                .add(&Endpoint::Ip(*a), self.config.max_endpoints_per_family);
        }
        self.resolving[family_index(family)] = false;
        let preferred = self.config.preferred_family;
        if family != preferred
            && added
            && self.started == 0
            && self.resolving[family_index(preferred)]
            && self.resolution_deadline.is_none()
        {
            self.resolution_deadline = Some(self.now.saturating_add(self.config.resolution_delay));
        }
        self.step();
    }

    /// Resolving `family` failed. Kept for the final error (the first per
    /// family); ignored for a family not resolving.
    pub fn on_resolution_failed(&mut self, now: Instant, family: Family, reason: ResolutionError) {
        if self.advance(now) {
            return;
        }
        let i = family_index(family);
        if self.resolving[i] {
            self.resolving[i] = false;
            self.resolution_errors.push((family, reason));
        }
        self.step();
    }

    /// `attempt` connected: it wins if it is running.
    pub fn on_connected(&mut self, now: Instant, attempt: AttemptId) {
        if self.advance(now) {
            return;
        }
        let Some((candidate, started)) = self.running.remove(&attempt) else {
            return;
        };
        for &other in self.running.keys() {
            self.actions.push_back(Action::Cancel { attempt: other });
        }
        self.running.clear();
        self.finished = true;
        self.events.push_back(RaceEvent::Ready {
            attempt,
            candidate,
            connect_time: self.now - started,
        });
    }

    /// `attempt` failed with `error`: the next candidate starts at once.
    pub fn on_failed(&mut self, now: Instant, attempt: AttemptId, error: AttemptError) {
        if self.advance(now) {
            return;
        }
        let Some((candidate, _)) = self.running.remove(&attempt) else {
            return;
        };
        self.record(attempt, candidate, error);
        self.next_start_at = self.now;
        self.step();
    }

    /// A deadline from [`poll_timeout`](Self::poll_timeout) passed (early
    /// calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.advance(now) {
            return;
        }
        self.step();
    }

    /// The application gives up: running attempts are cancelled and the
    /// race fails with [`FailureCause::Cancelled`].
    pub fn cancel(&mut self, now: Instant) {
        if self.advance(now) {
            return;
        }
        self.give_up(FailureCause::Cancelled, AttemptError::Cancelled);
    }

    /// The next attempt to start or cancel.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RaceEvent> {
        self.events.pop_front()
    }

    /// The next deadline and what it is for; `None` once the race ended.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, TimerReason)> {
        if self.finished {
            return None;
        }
        let mut next = (self.deadline, TimerReason::EstablishmentTimeout);
        for (at, why) in [
            (self.resolution_deadline, TimerReason::ResolutionDelay),
            (self.attempt_timer, TimerReason::AttemptDelay),
        ] {
            if let Some(at) = at.filter(|&at| at < next.0) {
                next = (at, why);
            }
        }
        Some(next)
    }

    /// Whether the terminal event has been queued.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Attempts started and not yet ended.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Attempts started so far.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Endpoints kept (all families).
    pub fn endpoints_kept(&self) -> usize {
        self.endpoints.len()
    }

    /// The delay between attempt starts this race uses.
    pub fn attempt_delay(&self) -> Duration {
        self.attempt_delay
    }

    /// The configuration.
    pub fn config(&self) -> &RaceConfig {
        &self.config
    }

    /// Takes `now` (never backwards); whether the race is over.
    fn advance(&mut self, now: Instant) -> bool {
        self.now = self.now.max(now);
        self.finished
    }

    fn record(&mut self, attempt: AttemptId, candidate: Candidate, error: AttemptError) {
        let f = AttemptFailure {
            attempt,
            candidate,
            error,
        };
        self.events.push_back(RaceEvent::AttemptFailed(f.clone()));
        self.failures.push(f);
    }

    fn next_candidate(&self) -> Option<Candidate> {
        if self.started >= self.config.max_attempts as u64 {
            return None;
        }
        self.endpoints
            .candidates(
                &self.stacks,
                self.config.preferred_family,
                self.config.first_family_count,
            )
            .find(|c| !self.tried.contains(c))
    }

    fn step(&mut self) {
        if self.finished {
            return;
        }
        let now = self.now;
        if now >= self.deadline {
            self.give_up(FailureCause::TimedOut, AttemptError::TimedOut);
            return;
        }
        let preferred_resolving = self.resolving[family_index(self.config.preferred_family)];
        if self
            .resolution_deadline
            .is_some_and(|d| now >= d || !preferred_resolving)
        {
            self.resolution_deadline = None;
        }
        self.attempt_timer = None;
        if self.resolution_deadline.is_none() {
            while let Some(candidate) = self.next_candidate() {
                if now < self.next_start_at && !self.running.is_empty() {
                    self.attempt_timer = Some(self.next_start_at);
                    break;
                }
                let attempt = AttemptId::from_raw(self.started);
                self.started += 1;
                self.tried.insert(candidate.clone());
                self.running.insert(attempt, (candidate.clone(), now));
                self.actions.push_back(Action::Start { attempt, candidate });
                self.next_start_at = now.saturating_add(self.attempt_delay);
            }
        }
        let resolving = self.resolving.iter().any(|&r| r);
        if self.running.is_empty()
            && !resolving
            && self.resolution_deadline.is_none()
            && self.attempt_timer.is_none()
        {
            let cause = if self.failures.is_empty() {
                FailureCause::NoCandidates
            } else {
                FailureCause::AllFailed
            };
            self.give_up(cause, AttemptError::Cancelled);
        }
    }

    /// Ends the race without a winner: running attempts are cancelled and
    /// reported with `error`.
    fn give_up(&mut self, cause: FailureCause, error: AttemptError) {
        let running = core::mem::take(&mut self.running);
        for (attempt, (candidate, _)) in running {
            self.actions.push_back(Action::Cancel { attempt });
            self.record(attempt, candidate, error);
        }
        self.finished = true;
        let mut attempts = core::mem::take(&mut self.failures);
        attempts.sort_by_key(|f| f.attempt);
        self.events.push_back(RaceEvent::Failed(EstablishmentError {
            cause,
            attempts,
            resolution: core::mem::take(&mut self.resolution_errors),
        }));
    }
}
