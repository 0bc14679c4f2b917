//! One candidate connection's rendezvous handshake, as a [`Machine`] on
//! its byte stream.

use super::config::RendezvousConfig;
use super::error::RendezvousError;
use super::wire::{check_hello_prefix, decode_hello, encode_hello, CHOSEN, HELLO_LEN};
use crate::time::Instant;
use crate::wire::{Machine, Rejected, TransmitBuf};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

/// Which side of a link decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The lower tie-break value: keeps the first link whose hello
    /// completed and sends "chosen" on it.
    Decider,
    /// The higher value: keeps the link "chosen" arrives on.
    Follower,
}

/// What a link reports (hand each to
/// [`Rendezvous::on_link_event`](super::Rendezvous::on_link_event)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// The peer's hello arrived.
    HelloDone {
        /// The peer's tie-break value.
        peer_tie_break: u64,
        /// This side's role on the link.
        role: Role,
    },
    /// The follower received "chosen": this link is the one kept.
    Chosen,
    /// The link failed; it is closed.
    Failed(RendezvousError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hello,
    /// Decider, hello done, waiting for the coordinator.
    AwaitChoice,
    /// Follower, hello done, waiting for "chosen".
    AwaitChosen,
    /// Kept: the message connection takes the stream over.
    Chosen,
    Closed,
}

/// The rendezvous handshake on one candidate connection: sends a hello
/// at once, reads the peer's, then either waits for the coordinator's
/// choice (decider: [`choose`](Self::choose)) or for "chosen" (follower).
///
/// Once chosen it stops wanting input; when
/// [`ready_for_handover`](Self::ready_for_handover) says so, the adapter
/// replaces it with the message connection on the same stream, feeding
/// that [`take_leftover`](Self::take_leftover) first (bytes that came
/// after "chosen" in the same read).
///
/// ```
/// use proto_core::taps::rendezvous::{Link, LinkEvent, RendezvousConfig, Role};
/// use proto_core::time::Instant;
/// use proto_core::wire::Machine;
///
/// let now = Instant::ZERO;
/// let mut low = Link::new(RendezvousConfig::default(), now, 5);
/// let mut high = Link::new(RendezvousConfig::default(), now, 9);
/// let (mut a, mut b) = (Vec::new(), Vec::new());
/// while low.poll_transmit(&mut a).is_some() {}
/// while high.poll_transmit(&mut b).is_some() {}
/// low.handle_input(now, b.into()).unwrap();
/// high.handle_input(now, a.into()).unwrap();
/// assert!(matches!(low.poll_event(), Some(LinkEvent::HelloDone { role: Role::Decider, .. })));
/// low.choose(now).unwrap();
/// let mut c = Vec::new();
/// while low.poll_transmit(&mut c).is_some() {}
/// c.extend_from_slice(b"app data");
/// assert!(matches!(high.poll_event(), Some(LinkEvent::HelloDone { role: Role::Follower, .. })));
/// high.handle_input(now, c.into()).unwrap();
/// assert_eq!(high.poll_event(), Some(LinkEvent::Chosen));
/// assert_eq!(&high.take_leftover()[..], b"app data");
/// assert!(low.ready_for_handover() && high.ready_for_handover());
/// ```
#[derive(Debug)]
pub struct Link {
    max_leftover: usize,
    ours: u64,
    state: State,
    deadline: Instant,
    partial: Vec<u8>,
    out: Vec<u8>,
    leftover: BytesMut,
    peer: Option<u64>,
    error: Option<RendezvousError>,
    events: VecDeque<LinkEvent>,
}

impl Link {
    /// A link that announces `tie_break` (the coordinator's value, the
    /// same on every link of one side).
    pub fn new(config: RendezvousConfig, now: Instant, tie_break: u64) -> Link {
        Link {
            max_leftover: config.max_leftover,
            ours: tie_break,
            state: State::Hello,
            deadline: now.saturating_add(config.handshake_timeout),
            partial: Vec::with_capacity(HELLO_LEN),
            out: encode_hello(tie_break).to_vec(),
            leftover: BytesMut::new(),
            peer: None,
            error: None,
            events: VecDeque::new(),
        }
    }

    /// Keeps this link (decider only, after its hello): queues "chosen".
    pub fn choose(&mut self, _now: Instant) -> Result<(), RendezvousError> {
        if self.state != State::AwaitChoice {
            return Err(RendezvousError::NotDecider);
        }
        self.out.extend_from_slice(&CHOSEN);
        self.state = State::Chosen;
        Ok(())
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// This side's role, once the peer's hello arrived.
    pub fn role(&self) -> Option<Role> {
        self.peer.map(|p| role(self.ours, p)).and_then(Result::ok)
    }

    /// The peer's tie-break value, once its hello arrived.
    pub fn peer_tie_break(&self) -> Option<u64> {
        self.peer
    }

    /// Why the link failed, if it did.
    pub fn error(&self) -> Option<RendezvousError> {
        self.error
    }

    /// Whether this link is the one kept.
    pub fn is_chosen(&self) -> bool {
        self.state == State::Chosen
    }

    /// Chosen and every rendezvous byte sent: the message connection may
    /// take the stream over now.
    pub fn ready_for_handover(&self) -> bool {
        self.state == State::Chosen && self.out.is_empty()
    }

    /// The bytes that followed "chosen" (and any read after it), for the
    /// message connection.
    pub fn take_leftover(&mut self) -> Bytes {
        core::mem::take(&mut self.leftover).freeze()
    }

    fn fail(&mut self, e: RendezvousError) -> Rejected {
        self.state = State::Closed;
        self.out.clear();
        self.error = Some(e);
        self.events.push_back(LinkEvent::Failed(e));
        Rejected
    }

    /// Takes up to `want` bytes of `data` into `partial`; how many.
    fn gather(&mut self, data: &[u8], want: usize) -> usize {
        let n = (want - self.partial.len()).min(data.len());
        self.partial.extend_from_slice(&data[..n]);
        n
    }

    fn step(&mut self, data: &Bytes) -> Result<(), RendezvousError> {
        let mut at = 0;
        while at < data.len() {
            match self.state {
                State::Hello => {
                    at += self.gather(&data[at..], HELLO_LEN);
                    check_hello_prefix(&self.partial)?;
                    if self.partial.len() < HELLO_LEN {
                        continue;
                    }
                    let mut h = [0u8; HELLO_LEN];
                    h.copy_from_slice(&self.partial);
                    self.partial.clear();
                    let peer = decode_hello(&h)?;
                    let role = role(self.ours, peer)?;
                    self.peer = Some(peer);
                    self.state = match role {
                        Role::Decider => State::AwaitChoice,
                        Role::Follower => State::AwaitChosen,
                    };
                    self.events.push_back(LinkEvent::HelloDone {
                        peer_tie_break: peer,
                        role,
                    });
                }
                State::AwaitChosen => {
                    at += self.gather(&data[at..], CHOSEN.len());
                    if self.partial[..] != CHOSEN[..self.partial.len()] {
                        return Err(RendezvousError::BadChosen);
                    }
                    if self.partial.len() == CHOSEN.len() {
                        self.partial.clear();
                        self.state = State::Chosen;
                        self.events.push_back(LinkEvent::Chosen);
                    }
                }
                State::AwaitChoice => return Err(RendezvousError::UnexpectedData),
                State::Chosen => {
                    let rest = &data[at..];
                    if self.leftover.len() + rest.len() > self.max_leftover {
                        return Err(RendezvousError::LeftoverTooLarge);
                    }
                    self.leftover.extend_from_slice(rest);
                    at = data.len();
                }
                State::Closed => return Ok(()),
            }
        }
        Ok(())
    }
}

fn role(ours: u64, peer: u64) -> Result<Role, RendezvousError> {
    match ours.cmp(&peer) {
        core::cmp::Ordering::Less => Ok(Role::Decider),
        core::cmp::Ordering::Greater => Ok(Role::Follower),
        core::cmp::Ordering::Equal => Err(RendezvousError::Tie),
    }
}

impl Machine for Link {
    fn handle_input(&mut self, _now: Instant, data: Bytes) -> Result<(), Rejected> {
        if self.state == State::Closed {
            return Err(Rejected);
        }
        self.step(&data).map_err(|e| self.fail(e))
    }

    fn handle_timeout(&mut self, now: Instant) {
        if matches!(
            self.state,
            State::Hello | State::AwaitChoice | State::AwaitChosen
        ) && now >= self.deadline
        {
            self.fail(RendezvousError::TimedOut);
        }
    }

    fn handle_transport_closed(&mut self, _now: Instant) {
        match self.state {
            State::Closed => {}
            State::Chosen if self.out.is_empty() => {
                // Handed over: the message connection sees the end too.
                self.state = State::Closed;
            }
            _ => {
                self.fail(RendezvousError::ClosedByPeer);
            }
        }
    }

    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
        if self.out.is_empty() {
            return None;
        }
        out.put_slice(&self.out);
        let n = self.out.len();
        self.out.clear();
        Some(n)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        matches!(
            self.state,
            State::Hello | State::AwaitChoice | State::AwaitChosen
        )
        .then_some(self.deadline)
    }

    fn wants_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    fn wants_input(&self) -> bool {
        !matches!(self.state, State::Chosen | State::Closed)
    }

    fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn close(&mut self, _now: Instant, _code: u64, _reason: &[u8]) {
        // The protocol has no goodbye: closing the transport says it.
        self.state = State::Closed;
        self.out.clear();
    }
}
