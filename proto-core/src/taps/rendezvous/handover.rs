//! A rendezvous link and then the machine that takes its stream over, as
//! one [`Machine`].

use super::link::Link;
use crate::time::Instant;
use crate::wire::{Machine, Rejected, TransmitBuf};
use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The link owns the stream.
    Link,
    /// Chosen and every rendezvous byte sent: `M` owns the stream.
    Inner,
    /// The link failed or was closed before the handover.
    Closed,
}

/// One candidate connection of a rendezvous: a [`Link`] first, then `M`
/// on the same byte stream.
///
/// Until the link is chosen and its last byte ("chosen", for the decider)
/// went out, only the link's bytes are sent and `M` receives nothing;
/// commands given to `M` meanwhile wait in `M` (as [`Secured`] holds them
/// until its keys exist) and leave after the handover. At the handover
/// `M` gets [`Link::take_leftover`] first (bytes that followed "chosen"),
/// then every later input. If the link fails, or the coordinator closes
/// it ([`close`](Machine::close)), the whole machine closes; `M` is
/// closed too so whoever waits on it sees the end. Until the handover
/// only the link's deadline is armed.
///
/// [`Secured`]: crate::secure::Secured
///
/// ```
/// use proto_core::taps::rendezvous::{Handover, Link, LinkEvent, RendezvousConfig};
/// use proto_core::time::Instant;
/// use proto_core::wire::Machine;
///
/// let now = Instant::ZERO;
/// let cfg = RendezvousConfig::default();
/// // The inner machine here is another link, standing in for any protocol.
/// let mut a = Handover::new(Link::new(cfg, now, 1), Link::new(cfg, now, 100));
/// let mut b = Link::new(cfg, now, 2);
/// let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
/// while a.poll_transmit(&mut to_b).is_some() {}
/// while b.poll_transmit(&mut to_a).is_some() {}
/// a.handle_input(now, to_a.into()).unwrap();
/// b.handle_input(now, to_b.into()).unwrap();
/// assert!(matches!(a.link_mut().poll_event(), Some(LinkEvent::HelloDone { .. })));
/// a.choose(now).unwrap();
/// let mut out = Vec::new();
/// while a.poll_transmit(&mut out).is_some() {}
/// // "chosen", then the inner machine's first bytes (its own hello).
/// assert_eq!(&out[..4], b"WRDC");
/// assert!(a.is_handed_over());
/// ```
#[derive(Debug)]
pub struct Handover<M> {
    link: Link,
    inner: M,
    phase: Phase,
    /// The latest time a call gave, for the leftover fed at a handover
    /// that happens in `poll_transmit` (which has no clock).
    now: Instant,
}

impl<M: Machine> Handover<M> {
    /// `link` on the stream now, `inner` after the handover.
    pub fn new(link: Link, inner: M) -> Self {
        Handover {
            link,
            inner,
            phase: Phase::Link,
            now: Instant::ZERO,
        }
    }

    /// The link (its role, its error).
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The link, to drain its events or [`choose`](Link::choose) it.
    pub fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }

    /// The machine that runs after the handover.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The machine that runs after the handover, for its commands and
    /// events (commands before the handover wait in it).
    pub fn inner_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// [`Link::choose`] on the link (the decider's coordinator chose it).
    pub fn choose(&mut self, now: Instant) -> Result<(), super::RendezvousError> {
        self.now = self.now.max(now);
        self.link.choose(now)
    }

    /// Whether `M` owns the stream now.
    pub fn is_handed_over(&self) -> bool {
        self.phase == Phase::Inner
    }

    /// After any call in the link phase: hand over, or close with the link.
    fn advance(&mut self) -> Result<(), Rejected> {
        if self.phase != Phase::Link {
            return Ok(());
        }
        if self.link.is_closed() {
            self.shut();
            return Err(Rejected);
        }
        if self.link.ready_for_handover() {
            self.phase = Phase::Inner;
            let leftover: Bytes = self.link.take_leftover();
            if !leftover.is_empty() {
                self.inner.handle_input(self.now, leftover)?;
            }
        }
        Ok(())
    }

    fn shut(&mut self) {
        self.phase = Phase::Closed;
        self.inner.close(self.now, 0, b"rendezvous link closed");
    }
}

impl<M: Machine> Machine for Handover<M> {
    fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), Rejected> {
        self.now = self.now.max(now);
        match self.phase {
            Phase::Link => {
                let r = self.link.handle_input(now, data);
                let a = self.advance();
                r.and(a)
            }
            Phase::Inner => self.inner.handle_input(now, data),
            Phase::Closed => Err(Rejected),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        match self.phase {
            Phase::Link => {
                self.link.handle_timeout(now);
                let _ = self.advance();
            }
            Phase::Inner => self.inner.handle_timeout(now),
            Phase::Closed => {}
        }
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.phase == Phase::Link {
            // A chosen link whose last byte went out hands over first, so
            // `M` hears the end with whatever followed "chosen".
            if self.advance().is_err() {
                return;
            }
        }
        match self.phase {
            Phase::Link => {
                self.link.handle_transport_closed(now);
                self.shut();
            }
            Phase::Inner => self.inner.handle_transport_closed(now),
            Phase::Closed => {}
        }
    }

    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
        let mut total = None;
        if self.phase == Phase::Link {
            total = self.link.poll_transmit(out);
            // The input that made the handover possible already returned;
            // a refusal here shows as `is_closed`.
            let _ = self.advance();
        }
        if self.phase == Phase::Inner {
            if let Some(n) = self.inner.poll_transmit(out) {
                total = Some(total.unwrap_or(0) + n);
            }
        }
        total
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Link => self.link.poll_timeout(),
            Phase::Inner => self.inner.poll_timeout(),
            Phase::Closed => None,
        }
    }

    fn wants_transmit(&self) -> bool {
        match self.phase {
            Phase::Link => {
                self.link.wants_transmit()
                    || self.link.is_closed()
                    || (self.link.ready_for_handover() && self.inner.wants_transmit())
            }
            Phase::Inner => self.inner.wants_transmit(),
            Phase::Closed => false,
        }
    }

    fn wants_input(&self) -> bool {
        match self.phase {
            Phase::Link if self.link.ready_for_handover() => self.inner.wants_input(),
            Phase::Link => self.link.wants_input(),
            Phase::Inner => self.inner.wants_input(),
            Phase::Closed => false,
        }
    }

    fn is_closed(&self) -> bool {
        match self.phase {
            Phase::Link => self.link.is_closed(),
            Phase::Inner => self.inner.is_closed(),
            Phase::Closed => true,
        }
    }

    fn close(&mut self, now: Instant, code: u64, reason: &[u8]) {
        self.now = self.now.max(now);
        match self.phase {
            Phase::Link => {
                self.link.close(now, code, reason);
                self.shut();
            }
            Phase::Inner => self.inner.close(now, code, reason),
            Phase::Closed => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taps::rendezvous::wire::CHOSEN;
    use crate::taps::rendezvous::{LinkEvent, RendezvousConfig, RendezvousError, Role};
    use crate::time::Duration;
    use alloc::vec::Vec;

    /// A machine that records what it was given and sends what it is told.
    #[derive(Debug, Default)]
    struct Probe {
        got: Vec<u8>,
        out: Vec<u8>,
        closed: bool,
        transport_closed: bool,
        full: bool,
    }

    impl Machine for Probe {
        fn handle_input(&mut self, _: Instant, data: Bytes) -> Result<(), Rejected> {
            self.got.extend_from_slice(&data);
            Ok(())
        }
        fn handle_timeout(&mut self, _: Instant) {}
        fn handle_transport_closed(&mut self, _: Instant) {
            self.transport_closed = true;
            self.closed = true;
        }
        fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
            if self.out.is_empty() {
                return None;
            }
            out.put_slice(&self.out);
            Some(core::mem::take(&mut self.out).len())
        }
        fn poll_timeout(&self) -> Option<Instant> {
            Some(Instant::from_nanos(u64::MAX))
        }
        fn wants_transmit(&self) -> bool {
            !self.out.is_empty()
        }
        fn wants_input(&self) -> bool {
            !self.full
        }
        fn is_closed(&self) -> bool {
            self.closed
        }
        fn close(&mut self, _: Instant, _: u64, _: &[u8]) {
            self.closed = true;
        }
    }

    const T0: Instant = Instant::ZERO;

    fn cfg() -> RendezvousConfig {
        RendezvousConfig::default()
    }

    fn drain(m: &mut dyn Machine) -> Vec<u8> {
        let mut v = Vec::new();
        while m.poll_transmit(&mut v).is_some() {}
        v
    }

    /// A decider (tie-break 1) and a follower (2), hellos exchanged.
    fn pair() -> (Handover<Probe>, Handover<Probe>) {
        let mut d = Handover::new(Link::new(cfg(), T0, 1), Probe::default());
        let mut f = Handover::new(Link::new(cfg(), T0, 2), Probe::default());
        let (to_f, to_d) = (drain(&mut d), drain(&mut f));
        d.handle_input(T0, to_d.into()).unwrap();
        f.handle_input(T0, to_f.into()).unwrap();
        (d, f)
    }

    #[test]
    fn only_the_hello_leaves_before_the_choice() {
        let mut h = Handover::new(Link::new(cfg(), T0, 7), Probe::default());
        h.inner_mut().out.extend_from_slice(b"early");
        let out = drain(&mut h);
        assert_eq!(out, super::super::wire::encode_hello(7).to_vec());
        assert!(!h.wants_transmit(), "the inner bytes wait");
        assert!(h.wants_input());
        assert!(!h.is_handed_over());
    }

    #[test]
    fn waiting_commands_follow_chosen_on_the_decider() {
        let (mut d, _) = pair();
        d.inner_mut().out.extend_from_slice(b"first message");
        assert!(drain(&mut d).is_empty(), "nothing before the choice");
        assert_eq!(
            d.link_mut().poll_event(),
            Some(LinkEvent::HelloDone {
                peer_tie_break: 2,
                role: Role::Decider
            })
        );
        d.choose(T0).unwrap();
        assert!(d.wants_transmit());
        let out = drain(&mut d);
        assert_eq!(&out[..4], &CHOSEN);
        assert_eq!(&out[4..], b"first message");
        assert!(d.is_handed_over());
    }

    #[test]
    fn leftover_reaches_the_inner_machine_first_on_the_follower() {
        let (_, mut f) = pair();
        assert!(f.inner().got.is_empty());
        let mut input = CHOSEN.to_vec();
        input.extend_from_slice(b"abc");
        f.handle_input(T0, input.into()).unwrap();
        assert!(f.is_handed_over());
        assert_eq!(f.link_mut().poll_event().map(|_| ()), Some(()));
        assert_eq!(f.link_mut().poll_event(), Some(LinkEvent::Chosen));
        f.handle_input(T0, Bytes::from_static(b"def")).unwrap();
        assert_eq!(f.inner().got, b"abcdef");
    }

    #[test]
    fn chosen_split_across_reads_hands_over() {
        let (_, mut f) = pair();
        f.handle_input(T0, Bytes::copy_from_slice(&CHOSEN[..2]))
            .unwrap();
        assert!(!f.is_handed_over());
        let mut rest = CHOSEN[2..].to_vec();
        rest.extend_from_slice(b"x");
        f.handle_input(T0, rest.into()).unwrap();
        assert!(f.is_handed_over());
        assert_eq!(f.inner().got, b"x");
    }

    #[test]
    fn decider_input_before_chosen_leaves_waits_for_the_handover() {
        let (mut d, _) = pair();
        d.choose(T0).unwrap();
        // "chosen" is queued, not sent: the stream is still the link's.
        assert!(!d.wants_input());
        d.handle_input(T0, Bytes::from_static(b"in flight"))
            .unwrap();
        assert!(d.inner().got.is_empty());
        let out = drain(&mut d);
        assert_eq!(out, CHOSEN.to_vec());
        assert!(d.is_handed_over());
        assert_eq!(d.inner().got, b"in flight");
        assert!(d.wants_input());
        d.inner_mut().full = true;
        assert!(
            !d.wants_input(),
            "after the handover the inner machine says"
        );
    }

    #[test]
    fn a_failed_link_closes_everything() {
        let mut h = Handover::new(Link::new(cfg(), T0, 3), Probe::default());
        let _ = drain(&mut h);
        assert_eq!(
            h.handle_input(T0, Bytes::from_static(b"GET / HTTP/1.1\r\n")),
            Err(Rejected)
        );
        assert!(h.is_closed());
        assert!(h.inner().closed, "the inner machine hears the end");
        assert_eq!(h.link().error(), Some(RendezvousError::BadMagic));
        assert!(!h.wants_input() && !h.wants_transmit());
        assert_eq!(h.poll_timeout(), None);
        assert_eq!(h.handle_input(T0, Bytes::from_static(b"x")), Err(Rejected));
    }

    #[test]
    fn the_coordinators_close_closes_everything() {
        let (mut d, _) = pair();
        d.inner_mut().out.extend_from_slice(b"never sent");
        d.close(T0, 0, b"");
        assert!(d.is_closed());
        assert!(d.inner().closed);
        assert!(drain(&mut d).is_empty());
    }

    #[test]
    fn the_link_deadline_is_the_only_one_before_the_handover() {
        let mut h = Handover::new(Link::new(cfg(), T0, 3), Probe::default());
        let deadline = T0.saturating_add(cfg().handshake_timeout);
        assert_eq!(h.poll_timeout(), Some(deadline));
        h.handle_timeout(T0.saturating_add(Duration::from_secs(1)));
        assert!(!h.is_closed(), "an early call is harmless");
        h.handle_timeout(deadline);
        assert!(h.is_closed());
        assert_eq!(h.link().error(), Some(RendezvousError::TimedOut));
        assert!(h.inner().closed);
    }

    #[test]
    fn after_the_handover_the_inner_machine_has_the_clock_and_the_end() {
        let (_, mut f) = pair();
        f.handle_input(T0, Bytes::copy_from_slice(&CHOSEN)).unwrap();
        assert_eq!(f.poll_timeout(), Some(Instant::from_nanos(u64::MAX)));
        assert!(!f.is_closed());
        f.handle_transport_closed(T0);
        assert!(f.inner().transport_closed);
        assert!(f.is_closed());
    }

    #[test]
    fn transport_end_before_the_choice_fails_the_link() {
        let (mut d, _) = pair();
        d.handle_transport_closed(T0);
        assert!(d.is_closed());
        assert_eq!(d.link().error(), Some(RendezvousError::ClosedByPeer));
        assert!(d.inner().closed && !d.inner().transport_closed);
    }

    #[test]
    fn two_handovers_carry_data_both_ways() {
        let (mut d, mut f) = pair();
        d.choose(T0).unwrap();
        d.inner_mut().out.extend_from_slice(b"ping");
        f.inner_mut().out.extend_from_slice(b"pong");
        let to_f = drain(&mut d);
        assert!(drain(&mut f).is_empty(), "the follower waits for chosen");
        f.handle_input(T0, to_f.into()).unwrap();
        let to_d = drain(&mut f);
        d.handle_input(T0, to_d.into()).unwrap();
        assert_eq!(f.inner().got, b"ping");
        assert_eq!(d.inner().got, b"pong");
    }
}
