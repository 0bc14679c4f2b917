//! The side-wide view: which candidate link survives.

use super::config::RendezvousConfig;
use super::error::RendezvousError;
use super::link::{Link, LinkEvent, Role};
use crate::time::Instant;
use alloc::collections::{BTreeSet, VecDeque};
use core::fmt;

/// A candidate link, numbered by the coordinator from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(u64);

impl LinkId {
    /// The link's number.
    pub const fn as_raw(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.0)
    }
}

/// What the coordinator asks of the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Call [`Link::choose`] on this link (this side decides): it is the
    /// survivor; hand it over once
    /// [`Link::ready_for_handover`] says so.
    Choose(LinkId),
    /// Close this link's transport (and drop its machine).
    Close(LinkId),
}

/// The rendezvous' outcome (exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RendezvousEvent {
    /// `link` is the survivor; every other link is being closed.
    Established {
        /// The survivor.
        link: LinkId,
        /// This side's role.
        role: Role,
    },
    /// No survivor: [`RendezvousError::Tie`] (redraw and start over) or
    /// [`RendezvousError::NoLink`].
    Failed(RendezvousError),
}

/// The coordinator of one side of an RFC 9622 Rendezvous: both sides
/// listen and dial, so several candidate connections may come up, and
/// exactly one must survive, the same on both sides.
///
/// Every link carries a [`Link`] handshake: a hello with this side's
/// tie-break value (drawn once by the caller from its injected RNG). The
/// side with the lower value decides: it keeps the first link whose hello
/// exchange completed (from its point of view), sends "chosen" on it and
/// closes the rest. The other side keeps the link "chosen" arrives on and
/// closes the rest. Equal values fail the whole rendezvous with
/// [`RendezvousError::Tie`] (the caller redraws and starts over), since
/// neither side could decide.
///
/// **Use**: [`add_link`](Self::add_link) for every connection accepted
/// or dialed (run the returned [`Link`] on it); hand every
/// [`Link::poll_event`] to [`on_link_event`](Self::on_link_event), and
/// [`on_link_closed`](Self::on_link_closed) when a link's transport ends
/// for another reason; after each, drain
/// [`poll_decision`](Self::poll_decision) then
/// [`poll_event`](Self::poll_event). Call
/// [`no_more_links`](Self::no_more_links) when no further candidate will
/// come, so a rendezvous whose links all failed ends. The coordinator has
/// no timers: each link has its handshake timeout.
#[derive(Debug)]
pub struct Rendezvous {
    config: RendezvousConfig,
    ours: u64,
    next: u64,
    open: BTreeSet<LinkId>,
    peer: Option<u64>,
    survivor: Option<LinkId>,
    no_more: bool,
    finished: bool,
    decisions: VecDeque<Decision>,
    events: VecDeque<RendezvousEvent>,
}

impl Rendezvous {
    /// One side's coordinator announcing `tie_break` on every link.
    pub fn new(config: RendezvousConfig, tie_break: u64) -> Rendezvous {
        Rendezvous {
            config,
            ours: tie_break,
            next: 0,
            open: BTreeSet::new(),
            peer: None,
            survivor: None,
            no_more: false,
            finished: false,
            decisions: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A new candidate link (accepted or dialed) and the handshake to run
    /// on it. Refused over [`RendezvousConfig::max_links`] open links or
    /// after the rendezvous ended: close that transport.
    pub fn add_link(&mut self, now: Instant) -> Result<(LinkId, Link), RendezvousError> {
        if self.finished {
            return Err(RendezvousError::Finished);
        }
        if self.open.len() >= self.config.max_links {
            return Err(RendezvousError::TooManyLinks);
        }
        let id = LinkId(self.next);
        self.next += 1;
        self.open.insert(id);
        Ok((id, Link::new(self.config, now, self.ours)))
    }

    /// An event from `link`'s [`Link`]. Events for links not open are
    /// ignored.
    pub fn on_link_event(&mut self, link: LinkId, event: &LinkEvent) {
        if !self.open.contains(&link) {
            return;
        }
        match *event {
            LinkEvent::HelloDone {
                peer_tie_break,
                role,
            } => {
                let changed = *self.peer.get_or_insert(peer_tie_break) != peer_tie_break;
                if changed || self.survivor.is_some() {
                    self.close(link);
                } else if role == Role::Decider {
                    self.decisions.push_back(Decision::Choose(link));
                    self.keep(link, role);
                }
            }
            LinkEvent::Chosen => {
                if self.survivor.is_none() {
                    self.keep(link, Role::Follower);
                } else if self.survivor != Some(link) {
                    self.close(link);
                }
            }
            LinkEvent::Failed(RendezvousError::Tie) => {
                self.open.remove(&link);
                if !self.finished {
                    self.close_all_but(None);
                    self.end(RendezvousEvent::Failed(RendezvousError::Tie));
                }
            }
            LinkEvent::Failed(_) => self.on_link_closed(link),
        }
    }

    /// `link`'s transport ended or its machine closed (its error, if any,
    /// came as [`LinkEvent::Failed`]).
    pub fn on_link_closed(&mut self, link: LinkId) {
        if self.open.remove(&link) {
            self.check_exhausted();
        }
    }

    /// No further candidate links will be added.
    pub fn no_more_links(&mut self) {
        self.no_more = true;
        self.check_exhausted();
    }

    /// The next decision for the adapter.
    #[must_use]
    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.decisions.pop_front()
    }

    /// The outcome, once.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RendezvousEvent> {
        self.events.pop_front()
    }

    /// The survivor, once known.
    pub fn survivor(&self) -> Option<LinkId> {
        self.survivor
    }

    /// Links open (not closed, not failed), the survivor included.
    pub fn open_links(&self) -> usize {
        self.open.len()
    }

    /// Whether the outcome has been queued.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// This side's tie-break value.
    pub fn tie_break(&self) -> u64 {
        self.ours
    }

    fn keep(&mut self, link: LinkId, role: Role) {
        self.survivor = Some(link);
        self.close_all_but(Some(link));
        self.end(RendezvousEvent::Established { link, role });
    }

    fn close(&mut self, link: LinkId) {
        if self.open.remove(&link) {
            self.decisions.push_back(Decision::Close(link));
        }
        self.check_exhausted();
    }

    fn close_all_but(&mut self, keep: Option<LinkId>) {
        let others: alloc::vec::Vec<_> = self
            .open
            .iter()
            .copied()
            .filter(|&l| Some(l) != keep)
            .collect();
        for l in others {
            self.open.remove(&l);
            self.decisions.push_back(Decision::Close(l));
        }
    }

    fn end(&mut self, event: RendezvousEvent) {
        if !self.finished {
            self.finished = true;
            self.events.push_back(event);
        }
    }

    fn check_exhausted(&mut self) {
        if self.no_more && self.open.is_empty() && self.survivor.is_none() {
            self.end(RendezvousEvent::Failed(RendezvousError::NoLink));
        }
    }
}
