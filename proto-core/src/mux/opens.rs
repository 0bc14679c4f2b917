//! Flow ids and open credit: which ids each side has used, how many flows
//! each side may open, who is refused by a GOAWAY, and (yamux) which peer
//! ids are still openable and which of our opens await an ACK.

use super::error::ProtocolError;
use alloc::collections::BTreeSet;

/// Open bookkeeping for both sides.
///
/// Ids step by 2 from a side's first id, so "the n-th open" and "the next
/// id" are one number. Counts only grow: an id is never reused, and a flow
/// that ended gives back credit (`peer_max`) rather than its id.
#[derive(Debug)]
pub(super) struct Opens {
    local_first: u64,
    peer_first: u64,
    local_opened: u64,
    /// How many flows the peer lets us open in all (MAX_FLOWS).
    local_max: u64,
    peer_opened: u64,
    /// How many flows we let the peer open in all: raised by one each time
    /// one of its flows ends, so `peer_max - peer_opened` never exceeds
    /// `max_concurrent_flows` and the peer's concurrency stays bounded.
    peer_max: u64,
    peer_max_sent: u64,
    /// After our GOAWAY: peer flows from this id on are refused. `Some(0)`
    /// refuses every later open (yamux peers open out of id order).
    refuse_peer_from: Option<u64>,
    /// After the peer's GOAWAY: our flows from this id on were refused.
    refused_local_from: Option<u64>,
    /// An open failed for lack of credit: say so once credit comes back.
    want_flow_credit: bool,
    /// yamux: the highest id the peer opened (0 before its first open)
    /// and the ids below it it skipped, which it may still open. Bounded by
    /// `max_concurrent_flows` so a peer cannot make us remember millions.
    peer_high: u64,
    peer_gaps: BTreeSet<u64>,
    /// yamux: our flows still waiting for the peer's ACK.
    unacked: u64,
}

impl Opens {
    pub fn new(
        local_first: u64,
        peer_first: u64,
        local_max: u64,
        peer_max: u64,
        peer_max_sent: u64,
    ) -> Self {
        Opens {
            local_first,
            peer_first,
            local_opened: 0,
            local_max,
            peer_opened: 0,
            peer_max,
            peer_max_sent,
            refuse_peer_from: None,
            refused_local_from: None,
            want_flow_credit: false,
            peer_high: 0,
            peer_gaps: BTreeSet::new(),
            unacked: 0,
        }
    }

    pub fn is_peer_id(&self, id: u64) -> bool {
        id % 2 == self.peer_first % 2
    }

    /// The id our next flow gets.
    pub fn local_next(&self) -> u64 {
        self.local_opened * 2 + self.local_first
    }

    /// The id the peer's next flow gets (native: ids come in order). Also
    /// what our GOAWAY reports as `accepted_below`.
    pub fn peer_next(&self) -> u64 {
        self.peer_opened * 2 + self.peer_first
    }

    /// A frame names `id`: is it a flow that exists or existed?
    pub fn check_known(&self, id: u64) -> Result<(), ProtocolError> {
        let next = if self.is_peer_id(id) {
            self.peer_next()
        } else {
            self.local_next()
        };
        if id < next {
            Ok(())
        } else {
            Err(ProtocolError::BadFlowId(id))
        }
    }

    #[cfg(feature = "tracing")]
    pub fn local_max(&self) -> u64 {
        self.local_max
    }

    #[cfg(feature = "tracing")]
    pub fn peer_max(&self) -> u64 {
        self.peer_max
    }

    /// May we open a flow now? `max_unacked` bounds opens without ACK
    /// (yamux peers stop accepting past 256); on failure the next credit
    /// raises [`Event::FlowCredit`](super::Event::FlowCredit).
    pub fn try_reserve(&mut self, max_unacked: u64) -> bool {
        if self.local_opened >= self.local_max || self.unacked >= max_unacked {
            self.want_flow_credit = true;
            return false;
        }
        true
    }

    /// We opened `local_next()`; `acked` is whether the wire will ACK it.
    pub fn opened_local(&mut self, acked: bool) {
        if acked {
            self.unacked += 1;
        }
        self.local_opened += 1;
    }

    /// The peer's MAX_FLOWS; `true` if an opener waits for this credit.
    pub fn raise_local_max(&mut self, max: u64) -> bool {
        if max > self.local_max {
            self.local_max = max;
            return core::mem::take(&mut self.want_flow_credit);
        }
        false
    }

    /// One of our opens was acknowledged (or forgotten by both sides);
    /// `true` if an opener waits for this credit.
    pub fn ack_arrived(&mut self) -> bool {
        self.unacked = self.unacked.saturating_sub(1);
        core::mem::take(&mut self.want_flow_credit)
    }

    /// The peer has credit for another flow.
    pub fn peer_may_open(&self) -> bool {
        self.peer_opened < self.peer_max
    }

    /// The peer opened a flow (accepted or refused: its id is spent).
    pub fn opened_peer(&mut self) {
        self.peer_opened += 1;
    }

    /// A flow of the peer's ended: it may open another, unless we are
    /// going away (no new flows then).
    pub fn peer_flow_ended(&mut self) {
        if self.refuse_peer_from.is_none() {
            self.peer_max += 1;
        }
    }

    pub fn max_flows_due(&self) -> bool {
        self.peer_max > self.peer_max_sent
    }

    /// The MAX_FLOWS to send, if the peer's view is stale.
    pub fn take_max_flows(&mut self) -> Option<u64> {
        if !self.max_flows_due() {
            return None;
        }
        self.peer_max_sent = self.peer_max;
        Some(self.peer_max)
    }

    /// Our GOAWAY: refuse the peer's opens from `id` on.
    pub fn refuse_peer_from(&mut self, id: u64) {
        self.refuse_peer_from = Some(id);
    }

    pub fn refusing_peer(&self) -> bool {
        self.refuse_peer_from.is_some()
    }

    pub fn peer_refused(&self, id: u64) -> bool {
        self.refuse_peer_from.is_some_and(|r| id >= r)
    }

    /// The peer's GOAWAY: our flows from `id` on were refused.
    pub fn refused_local_from(&mut self, id: u64) {
        self.refused_local_from = Some(id);
    }

    pub fn local_refused(&self, id: u64) -> bool {
        self.refused_local_from.is_some_and(|r| id >= r)
    }

    /// yamux: `id` (of the peer's, not in the table) was never opened.
    pub fn peer_id_fresh(&self, id: u64) -> bool {
        id > self.peer_high || self.peer_gaps.contains(&id)
    }

    /// yamux: marks peer id `id` used; it may not be opened again. Ids it
    /// jumps over become gaps, at most `max_gaps` in all.
    pub fn claim_peer_id(&mut self, id: u64, max_gaps: u64) -> Result<(), ProtocolError> {
        if id > self.peer_high {
            let first = if self.peer_high == 0 {
                self.peer_first
            } else {
                self.peer_high + 2
            };
            let skipped = (id - first) / 2;
            if self.peer_gaps.len() as u64 + skipped > max_gaps {
                return Err(ProtocolError::BadFlowId(id));
            }
            self.peer_gaps.extend((first..id).step_by(2));
            self.peer_high = id;
        } else if !self.peer_gaps.remove(&id) {
            return Err(ProtocolError::BadFlowId(id)); // reused
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Native dialer: even ids from 0, peer odd from 1.
    fn native() -> Opens {
        Opens::new(0, 1, 2, 2, 2)
    }

    /// yamux server: even ids from 2, peer (client) odd from 1.
    fn yamux_server() -> Opens {
        Opens::new(2, 1, u64::MAX, 4, u64::MAX)
    }

    #[test]
    fn ids_step_by_two_from_each_sides_first() {
        let mut o = native();
        assert_eq!((o.local_next(), o.peer_next()), (0, 1));
        o.opened_local(false);
        o.opened_peer();
        assert_eq!((o.local_next(), o.peer_next()), (2, 3));
        assert!(o.is_peer_id(3) && !o.is_peer_id(2));
        assert_eq!(o.check_known(0), Ok(()));
        assert_eq!(o.check_known(1), Ok(()));
        assert_eq!(o.check_known(2), Err(ProtocolError::BadFlowId(2)));
        assert_eq!(o.check_known(3), Err(ProtocolError::BadFlowId(3)));
    }

    #[test]
    fn blocked_opener_hears_of_credit_once() {
        let mut o = native();
        assert!(o.try_reserve(u64::MAX));
        o.opened_local(false);
        o.opened_local(false);
        assert!(!o.try_reserve(u64::MAX));
        assert!(!o.raise_local_max(2)); // not a raise
        assert!(o.raise_local_max(3));
        assert!(!o.raise_local_max(4)); // nobody waiting any more
        assert!(o.try_reserve(u64::MAX));
    }

    #[test]
    fn unacked_opens_are_capped() {
        let mut o = yamux_server();
        o.opened_local(true);
        o.opened_local(true);
        assert!(!o.try_reserve(2));
        assert!(o.ack_arrived());
        assert!(o.try_reserve(2));
        // Extra ACKs (or forgets) never underflow.
        o.ack_arrived();
        o.ack_arrived();
        assert_eq!(o.unacked, 0);
    }

    #[test]
    fn peer_credit_returns_unless_going_away() {
        let mut o = native();
        o.opened_peer();
        o.opened_peer();
        assert!(!o.peer_may_open());
        o.peer_flow_ended();
        assert!(o.peer_may_open());
        assert_eq!(o.take_max_flows(), Some(3));
        assert_eq!(o.take_max_flows(), None);
        o.refuse_peer_from(o.peer_next());
        o.peer_flow_ended();
        assert!(!o.max_flows_due());
        assert!(o.peer_refused(5) && !o.peer_refused(3));
    }

    #[test]
    fn yamux_gaps_stay_openable_once() {
        let mut o = yamux_server();
        // The peer opens 5 first: 1 and 3 may still come.
        assert!(o.peer_id_fresh(5));
        o.claim_peer_id(5, 8).unwrap();
        assert!(o.peer_id_fresh(1) && o.peer_id_fresh(3) && !o.peer_id_fresh(5));
        o.claim_peer_id(3, 8).unwrap();
        assert_eq!(o.claim_peer_id(3, 8), Err(ProtocolError::BadFlowId(3)));
        assert_eq!(o.claim_peer_id(5, 8), Err(ProtocolError::BadFlowId(5)));
        o.claim_peer_id(7, 8).unwrap(); // the next in line: no gap
        assert_eq!(o.peer_gaps.len(), 1);
    }

    #[test]
    fn yamux_gaps_are_bounded() {
        let mut o = yamux_server();
        // Jumping to 9 skips 1, 3, 5, 7: four gaps.
        assert_eq!(o.claim_peer_id(9, 3), Err(ProtocolError::BadFlowId(9)));
        o.claim_peer_id(9, 4).unwrap();
        assert_eq!(o.claim_peer_id(13, 4), Err(ProtocolError::BadFlowId(13)));
    }
}
