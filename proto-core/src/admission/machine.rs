//! The admission machine: counts, buckets, the queue and its turns.

use super::{AdmissionConfig, AdmissionConfigError, Excess, Reason, RefusalCounts, Source};
use crate::rate::{Bucket, Rate};
use crate::time::Instant;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use core::net::IpAddr;

/// A handshake's place: held from [`Decision::Admit`] or
/// [`Decision::Queued`] until [`Admission::finished`] or
/// [`Admission::cancel`] gives it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// A number unique within its [`Admission`].
    pub fn id(self) -> u64 {
        self.0
    }

    /// The ticket with this id (tickets an [`Admission`] never issued are
    /// ignored by it).
    pub fn from_id(id: u64) -> Ticket {
        Ticket(id)
    }
}

/// What [`Admission::offer`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start the handshake; call [`Admission::finished`] when it ends.
    Admit(Ticket),
    /// Wait: [`Admission::poll_admit`] yields the ticket when it may
    /// start, [`Admission::poll_expired`] when it waited too long.
    Queued(Ticket),
    /// Close the connection unread.
    Refused(Reason),
}

/// Counters and gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AdmissionStats {
    /// Handshakes in progress now.
    pub in_progress: u32,
    /// Entries waiting in the queue now.
    pub queued: u32,
    /// Sources tracked now.
    pub sources: u32,
    /// Handshakes admitted, at once or from the queue.
    pub admitted: u64,
    /// Of those, admitted from the queue.
    pub admitted_from_queue: u64,
    /// Entries ever queued.
    pub queued_total: u64,
    /// Refusals by reason (queue expiry included).
    pub refused: RefusalCounts,
    /// Entries withdrawn from the queue by [`Admission::cancel`] or
    /// [`Admission::finished`].
    pub cancelled: u64,
    /// Idle sources forgotten to make room for new ones.
    pub forgotten: u64,
}

#[derive(Debug, Default)]
struct SourceState {
    in_progress: u32,
    queue: VecDeque<u64>,
    bucket: Bucket,
}

impl SourceState {
    fn is_idle(&self) -> bool {
        self.in_progress == 0 && self.queue.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Running(Source),
    Queued(Source, Instant),
}

/// The admission state machine (see the [module docs](super)).
#[derive(Debug)]
pub struct Admission {
    config: AdmissionConfig,
    rate: Rate,
    sources: BTreeMap<Source, SourceState>,
    tickets: BTreeMap<u64, Entry>,
    /// Sources with queued entries, in turn order: the front goes next.
    turns: VecDeque<Source>,
    /// Queue deadlines, earliest first.
    deadlines: BTreeSet<(Instant, u64)>,
    expired: VecDeque<(Ticket, Reason)>,
    next_id: u64,
    in_progress: u32,
    queued: u32,
    stats: AdmissionStats,
}

impl Admission {
    /// A machine with these limits.
    pub fn new(config: AdmissionConfig) -> Result<Admission, AdmissionConfigError> {
        config.validate()?;
        Ok(Admission {
            rate: Rate::new(config.rate_per_source, config.burst_per_source),
            config,
            sources: BTreeMap::new(),
            tickets: BTreeMap::new(),
            turns: VecDeque::new(),
            deadlines: BTreeSet::new(),
            expired: VecDeque::new(),
            next_id: 0,
            in_progress: 0,
            queued: 0,
            stats: AdmissionStats::default(),
        })
    }

    /// The limits.
    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// The source `ip` counts as.
    pub fn source_of(&self, ip: IpAddr) -> Source {
        Source::of(ip, self.config.ipv6_prefix)
    }

    /// A new connection from `ip` wants to handshake.
    ///
    /// It is admitted if the total and its source's concurrency limits
    /// have room, its source's bucket has a token and none of its source's
    /// entries are queued ahead of it (a source's entries start in
    /// order). Otherwise it is refused, or queued under [`Excess::Queue`]
    /// while the queue and the source's share of it have room.
    ///
    /// A source not yet tracked, with the table full, takes the place of
    /// an idle one (nothing in progress or queued): one with a full bucket
    /// first, else the one whose bucket refills soonest. If none is idle it
    /// is refused with [`Reason::TooManySources`].
    pub fn offer(&mut self, now: Instant, ip: IpAddr) -> Decision {
        let source = self.source_of(ip);
        if !self.sources.contains_key(&source) && !self.make_room(now) {
            return self.refuse(Reason::TooManySources {
                limit: self.config.max_sources,
            });
        }
        let blocked = self.blocked(now, source);
        let state = self.sources.entry(source).or_default();
        let source_queued = u32::try_from(state.queue.len()).unwrap_or(u32::MAX);
        let blocked = match blocked {
            None if source_queued == 0 => {
                state.bucket.take(self.rate, now);
                state.in_progress += 1;
                return Decision::Admit(self.start(source));
            }
            // Behind its own queued entries: wait with them, never jump them.
            None => Reason::SourceBusy {
                source,
                in_progress: state.in_progress,
                limit: self.config.max_in_progress_per_source,
            },
            Some(reason) => reason,
        };
        if self.config.excess == Excess::Refuse {
            return self.refuse(blocked);
        }
        if self.queued >= self.config.max_queued {
            return self.refuse(Reason::QueueFull {
                queued: self.queued,
                limit: self.config.max_queued,
            });
        }
        if source_queued >= self.config.max_queued_per_source {
            return self.refuse(Reason::SourceQueueFull {
                source,
                queued: source_queued,
                limit: self.config.max_queued_per_source,
            });
        }
        let id = self.issue();
        let deadline = now.saturating_add(self.config.queue_timeout);
        if source_queued == 0 {
            self.turns.push_back(source);
        }
        self.sources.entry(source).or_default().queue.push_back(id);
        self.tickets.insert(id, Entry::Queued(source, deadline));
        self.deadlines.insert((deadline, id));
        self.queued += 1;
        self.stats.queued_total += 1;
        Decision::Queued(Ticket(id))
    }

    /// The handshake of `ticket` ended (done or failed), or its connection
    /// went away while queued: its place is freed. A ticket this machine
    /// does not hold (already finished, expired, or never issued) is
    /// ignored; returns whether it was held. Call
    /// [`poll_admit`](Self::poll_admit) afterwards: a queued entry may now
    /// start.
    pub fn finished(&mut self, now: Instant, ticket: Ticket) -> bool {
        let Some(source) = self.release(ticket, true) else {
            return false;
        };
        // An idle source with a full bucket is the same as an unknown one:
        // drop it now so the table holds only sources that matter.
        if let Some(s) = self.sources.get(&source) {
            if s.is_idle() && s.bucket.is_full(self.rate, now) {
                self.sources.remove(&source);
            }
        }
        true
    }

    /// Withdraws `ticket` (queued or running) without a clock: as
    /// [`finished`](Self::finished), but the source stays tracked until
    /// its place is needed.
    pub fn cancel(&mut self, ticket: Ticket) -> bool {
        self.release(ticket, true).is_some()
    }

    /// A queued entry that may start now, if any: sources take turns, one
    /// entry each, in the order they first queued, so a source with many
    /// entries waits behind every other waiting source's next one.
    pub fn poll_admit(&mut self, now: Instant) -> Option<Ticket> {
        if self.in_progress >= self.config.max_in_progress {
            return None;
        }
        for _ in 0..self.turns.len() {
            let source = self.turns.pop_front()?;
            let Some(state) = self.sources.get_mut(&source) else {
                continue;
            };
            let ready = state.in_progress < self.config.max_in_progress_per_source
                && state.bucket.conforms(self.rate, now);
            let next = if ready { state.queue.pop_front() } else { None };
            if !state.queue.is_empty() {
                self.turns.push_back(source);
            }
            let Some(id) = next else { continue };
            state.bucket.take(self.rate, now);
            state.in_progress += 1;
            if let Some(Entry::Queued(_, deadline)) = self.tickets.get(&id).copied() {
                self.deadlines.remove(&(deadline, id));
            }
            self.tickets.insert(id, Entry::Running(source));
            self.queued -= 1;
            self.in_progress += 1;
            self.stats.admitted += 1;
            self.stats.admitted_from_queue += 1;
            return Some(Ticket(id));
        }
        None
    }

    /// The next time something changes without an input: a queued entry
    /// expires, or a waiting source's bucket gets a token back.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiry = self.deadlines.first().map(|(d, _)| *d);
        let refill = if self.in_progress < self.config.max_in_progress {
            self.turns
                .iter()
                .filter_map(|s| self.sources.get(s))
                .filter(|s| s.in_progress < self.config.max_in_progress_per_source)
                .map(|s| s.bucket.next_token(self.rate))
                .min()
        } else {
            None
        };
        match (expiry, refill) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expires queued entries whose deadline has passed; they come out of
    /// [`poll_expired`](Self::poll_expired). Early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let Some(Entry::Queued(source, _)) = self.tickets.get(&id).copied() else {
                self.deadlines.pop_first();
                continue;
            };
            self.release(Ticket(id), false);
            let reason = Reason::QueueTimeout {
                source,
                timeout: self.config.queue_timeout,
            };
            self.stats.refused.count(&reason);
            self.expired.push_back((Ticket(id), reason));
        }
    }

    /// A queued entry [`handle_timeout`](Self::handle_timeout) dropped:
    /// close its connection. Its ticket is no longer held.
    pub fn poll_expired(&mut self) -> Option<(Ticket, Reason)> {
        self.expired.pop_front()
    }

    /// Whether `ticket` is held (running or queued).
    pub fn holds(&self, ticket: Ticket) -> bool {
        self.tickets.contains_key(&ticket.0)
    }

    /// `(in progress, queued)` for `ip`'s source.
    pub fn source_counts(&self, ip: IpAddr) -> (u32, u32) {
        self.sources.get(&self.source_of(ip)).map_or((0, 0), |s| {
            (
                s.in_progress,
                u32::try_from(s.queue.len()).unwrap_or(u32::MAX),
            )
        })
    }

    /// Counters and gauges now.
    pub fn stats(&self) -> AdmissionStats {
        AdmissionStats {
            in_progress: self.in_progress,
            queued: self.queued,
            sources: u32::try_from(self.sources.len()).unwrap_or(u32::MAX),
            ..self.stats
        }
    }

    /// What keeps `source` from starting a handshake now, if anything.
    fn blocked(&self, now: Instant, source: Source) -> Option<Reason> {
        let (in_progress, bucket) = self
            .sources
            .get(&source)
            .map_or((0, Bucket::default()), |s| (s.in_progress, s.bucket));
        if in_progress >= self.config.max_in_progress_per_source {
            return Some(Reason::SourceBusy {
                source,
                in_progress,
                limit: self.config.max_in_progress_per_source,
            });
        }
        if !bucket.conforms(self.rate, now) {
            return Some(Reason::SourceRate {
                source,
                rate: self.config.rate_per_source,
                burst: self.config.burst_per_source,
            });
        }
        if self.in_progress >= self.config.max_in_progress {
            return Some(Reason::TotalBusy {
                in_progress: self.in_progress,
                limit: self.config.max_in_progress,
            });
        }
        None
    }

    fn refuse(&mut self, reason: Reason) -> Decision {
        self.stats.refused.count(&reason);
        Decision::Refused(reason)
    }

    fn issue(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn start(&mut self, source: Source) -> Ticket {
        let id = self.issue();
        self.tickets.insert(id, Entry::Running(source));
        self.in_progress += 1;
        self.stats.admitted += 1;
        Ticket(id)
    }

    /// Frees whatever `ticket` holds; its source, if it held anything. A
    /// queued entry counts as cancelled when `cancelled` (not when expired).
    fn release(&mut self, ticket: Ticket, cancelled: bool) -> Option<Source> {
        let entry = self.tickets.remove(&ticket.0)?;
        match entry {
            Entry::Running(source) => {
                self.in_progress -= 1;
                if let Some(s) = self.sources.get_mut(&source) {
                    s.in_progress -= 1;
                }
                Some(source)
            }
            Entry::Queued(source, deadline) => {
                self.deadlines.remove(&(deadline, ticket.0));
                self.queued -= 1;
                if cancelled {
                    self.stats.cancelled += 1;
                }
                if let Some(s) = self.sources.get_mut(&source) {
                    s.queue.retain(|&id| id != ticket.0);
                    if s.queue.is_empty() {
                        self.turns.retain(|t| *t != source);
                    }
                }
                Some(source)
            }
        }
    }

    /// Makes room for one more source; false if every tracked source is busy.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.sources.len() < self.config.max_sources as usize {
            return true;
        }
        let victim = self
            .sources
            .iter()
            .filter(|(_, s)| s.is_idle())
            .min_by_key(|(_, s)| {
                (
                    !s.bucket.is_full(self.rate, now),
                    s.bucket.full_at(self.rate),
                )
            })
            .map(|(k, _)| *k);
        match victim {
            Some(k) => {
                self.sources.remove(&k);
                self.stats.forgotten += 1;
                true
            }
            None => false,
        }
    }
}
