//! The graceful end of a connection: GOAWAY sent or received, and the drain
//! deadline that bounds how long flows may take to finish.

use crate::time::{Duration, Instant};

/// GOAWAY in both directions.
#[derive(Debug, Default)]
pub(super) struct Drain {
    sent: bool,
    /// Our GOAWAY (accepted below, code), until it is on the wire. Kept
    /// apart from `sent`: the yamux profile decides to drain at once but
    /// puts its GoAway on the wire only with the close.
    frame: Option<(u64, u64)>,
    received: bool,
    /// Set by whichever GOAWAY comes first and never moved: a second one
    /// (ours after the peer's) must not extend the drain.
    deadline: Option<Instant>,
}

impl Drain {
    /// A GOAWAY went either way: no new flows.
    pub fn is_draining(&self) -> bool {
        self.sent || self.received
    }

    pub fn sent(&self) -> bool {
        self.sent
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn start(&mut self, now: Instant, timeout: Duration) {
        if self.deadline.is_none() {
            self.deadline = Some(now + timeout);
        }
    }

    /// We go away; `frame` is what to put on the wire now, if anything.
    /// The caller checks [`sent`](Self::sent) first: one GOAWAY each way.
    pub fn send(&mut self, now: Instant, timeout: Duration, frame: Option<(u64, u64)>) {
        self.sent = true;
        self.frame = frame;
        self.start(now, timeout);
    }

    /// The peer's GOAWAY; `false` if one came already (later ones change
    /// nothing: the first said which of our flows were accepted).
    pub fn receive(&mut self, now: Instant, timeout: Duration) -> bool {
        if self.received {
            return false;
        }
        self.received = true;
        self.start(now, timeout);
        true
    }

    pub fn has_frame(&self) -> bool {
        self.frame.is_some()
    }

    pub fn take_frame(&mut self) -> Option<(u64, u64)> {
        self.frame.take()
    }

    /// A close other than the drain's own end: the GOAWAY would only
    /// precede the close frame and say less.
    pub fn drop_frame(&mut self) {
        self.frame = None;
    }

    /// The drain is over once no flow is left: `flows_empty` is the flow
    /// table's state, as there are flows on both sides to wait for.
    pub fn is_complete(&self, flows_empty: bool) -> bool {
        self.is_draining() && flows_empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn completes_only_when_draining_and_empty() {
        let mut d = Drain::default();
        assert!(!d.is_complete(true)); // no GOAWAY: an empty table is just idle
        d.send(at(0), Duration::from_secs(1), None);
        assert!(!d.is_complete(false));
        assert!(d.is_complete(true));
        let mut d = Drain::default();
        d.receive(at(0), Duration::from_secs(1));
        assert!(d.is_complete(true));
    }

    #[test]
    fn the_first_goaway_sets_the_deadline() {
        let mut d = Drain::default();
        assert!(d.receive(at(100), Duration::from_millis(50)));
        d.send(at(140), Duration::from_millis(50), Some((4, 0)));
        assert_eq!(d.deadline(), Some(at(150)));
        let mut d = Drain::default();
        d.send(at(10), Duration::from_millis(50), None);
        assert!(d.receive(at(20), Duration::from_millis(50)));
        assert_eq!(d.deadline(), Some(at(60)));
    }

    #[test]
    fn only_the_first_received_goaway_counts() {
        let mut d = Drain::default();
        assert!(d.receive(at(0), Duration::from_secs(1)));
        assert!(!d.receive(at(1), Duration::from_secs(1)));
        assert!(d.is_draining());
        assert!(!d.sent());
    }

    #[test]
    fn the_frame_goes_out_once_or_not_at_all() {
        let mut d = Drain::default();
        d.send(at(0), Duration::from_secs(1), Some((6, 9)));
        assert!(d.has_frame());
        assert_eq!(d.take_frame(), Some((6, 9)));
        assert_eq!(d.take_frame(), None);
        let mut d = Drain::default();
        d.send(at(0), Duration::from_secs(1), Some((6, 9)));
        d.drop_frame();
        assert!(!d.has_frame());
        assert!(d.sent()); // still draining: only the frame is gone
    }
}
