//! What goes on the wire next: queued connection control frames, flow
//! opens in id order, flows with per-flow control frames, and flows with
//! DATA in round-robin; plus the writers waiting for buffer room.

use super::error::ProtocolError;
use super::flow::{flag, Flow};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A control frame waiting for the wire that has no per-flow home.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Queued {
    Ping(u64),
    Pong(u64),
    /// yamux: a peer open we refuse (limit or GOAWAY).
    Rst(u64),
}

/// The send queues. A flow id is in `ready` at most once and in `ctrl` at
/// most once, which the flow's `IN_READY` / `IN_CTRL` flags record: a busy
/// flow then costs one queue slot however often it is scheduled, and the
/// round-robin stays fair. Queues may name flows that have gone since;
/// consumers skip them.
#[derive(Debug, Default)]
pub(super) struct Scheduler {
    /// Our new flows, in id order: the peer (native) expects ids in
    /// sequence, so a flow's first frame never overtakes an older one's.
    opens: VecDeque<u64>,
    /// Announced flows with DATA or FIN to send and the credit to send it.
    ready: VecDeque<u64>,
    /// Flows that had flow credit but no connection credit: MAX_DATA puts
    /// them back in `ready`, in the order they blocked.
    conn_blocked: VecDeque<u64>,
    /// Flows with a window update, reset, stop or ACK to send.
    ctrl: VecDeque<u64>,
    /// Writers blocked on the connection's send buffer (not their flow's).
    write_waiters: Vec<u64>,
    /// What the peer makes us queue (PONGs, refusals) is bounded by the
    /// buckets per input and by `max_queued_control` across inputs (see
    /// `queue`); our own PINGs are bounded by `max_outstanding_pings`.
    queued: VecDeque<Queued>,
    /// PONGs and refusals in `queued`.
    owed: usize,
    /// Some of `owed` were queued before the current input: the driver did
    /// not flush them, so the peer is not reading.
    backlog: bool,
}

impl Scheduler {
    /// Something is queued for the wire (credit may still hold DATA back).
    pub fn has_work(&self) -> bool {
        !self.queued.is_empty()
            || !self.opens.is_empty()
            || !self.ctrl.is_empty()
            || !self.ready.is_empty()
    }

    /// Puts an announced flow with something to send in the round-robin.
    /// A flow with bytes but no flow credit waits for MAX_FLOW_DATA; a bare
    /// FIN needs no credit.
    pub fn schedule(&mut self, id: u64, flow: &mut Flow) {
        if flow.has(flag::ANNOUNCED)
            && flow.wants_send()
            && (flow.send_buffered == 0 || flow.send_credit() > 0)
            && flow.raise(flag::IN_READY)
        {
            self.ready.push_back(id);
        }
    }

    /// Queues `id` for its per-flow control frames.
    pub fn schedule_ctrl(&mut self, id: u64, flow: &mut Flow) {
        if flow.raise(flag::IN_CTRL) {
            self.ctrl.push_back(id);
        }
    }

    pub fn push_open(&mut self, id: u64) {
        self.opens.push_back(id);
    }

    pub fn front_open(&self) -> Option<u64> {
        self.opens.front().copied()
    }

    pub fn pop_open(&mut self) {
        self.opens.pop_front();
    }

    pub fn opens_pending(&self) -> bool {
        !self.opens.is_empty()
    }

    pub fn front_ctrl(&self) -> Option<u64> {
        self.ctrl.front().copied()
    }

    pub fn pop_ctrl(&mut self) {
        self.ctrl.pop_front();
    }

    pub fn pop_ready(&mut self) -> Option<u64> {
        self.ready.pop_front()
    }

    /// `id` is ready but the connection window is closed.
    pub fn block_on_conn(&mut self, id: u64) {
        self.conn_blocked.push_back(id);
    }

    /// The connection window opened: the blocked flows go first, in order.
    pub fn unblock_conn(&mut self) {
        while let Some(id) = self.conn_blocked.pop_front() {
            self.ready.push_back(id);
        }
    }

    /// An input starts: frames the peer made us owe that are still queued
    /// were not flushed after the previous one.
    pub fn start_input(&mut self) {
        self.backlog = self.owed > 0;
    }

    /// Queues a frame the peer asked for. Within one input the caller's
    /// token buckets bound how many; `max` applies only while frames owed
    /// from an earlier input still wait, because only a peer that does not
    /// read (the driver could not flush) makes the queue grow across inputs.
    /// A reading peer's burst therefore never trips it.
    pub fn queue(&mut self, q: Queued, max: usize) -> Result<(), ProtocolError> {
        if self.backlog && self.owed >= max {
            return Err(ProtocolError::ControlQueueFull(max as u64));
        }
        self.queued.push_back(q);
        self.owed += 1;
        Ok(())
    }

    /// Queues our own PING (bounded by the caller's outstanding limit).
    pub fn queue_ping(&mut self, v: u64) {
        self.queued.push_back(Queued::Ping(v));
    }

    pub fn pop_queued(&mut self) -> Option<Queued> {
        let q = self.queued.pop_front();
        if let Some(Queued::Pong(_) | Queued::Rst(_)) = q {
            self.owed -= 1;
        }
        q
    }

    pub fn add_write_waiter(&mut self, id: u64) {
        if !self.write_waiters.contains(&id) {
            self.write_waiters.push(id);
        }
    }

    pub fn take_write_waiters(&mut self) -> Vec<u64> {
        core::mem::take(&mut self.write_waiters)
    }

    /// The connection closed: nothing more goes out but the close frame.
    pub fn clear(&mut self) {
        self.opens.clear();
        self.ready.clear();
        self.conn_blocked.clear();
        self.ctrl.clear();
        self.queued.clear();
        self.owed = 0;
        self.write_waiters.clear();
    }

    /// Gives back burst capacity of the queues drained in a transmit.
    pub fn shrink(&mut self) {
        shrink_idle(&mut self.opens);
        shrink_idle(&mut self.ctrl);
    }
}

/// Gives back a burst's worth of queue capacity once the queue is empty.
pub(super) fn shrink_idle<T>(q: &mut VecDeque<T>) {
    if q.is_empty() && q.capacity() > 64 {
        *q = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::flow::SendState;
    use crate::time::Instant;

    fn flow(flags: u16, send_max: u64) -> Flow {
        Flow::new(flags, send_max, 1024, Instant::ZERO)
    }

    #[test]
    fn a_flow_is_ready_once() {
        let mut s = Scheduler::default();
        let mut f = flow(flag::ANNOUNCED, 100);
        f.send_buffered = 10; // stands for buffered bytes
        s.schedule(4, &mut f);
        s.schedule(4, &mut f);
        assert_eq!(s.pop_ready(), Some(4));
        assert_eq!(s.pop_ready(), None);
        // Still flagged: consumers clear IN_READY when they take it.
        s.schedule(4, &mut f);
        assert_eq!(s.pop_ready(), None);
        f.clear(flag::IN_READY);
        s.schedule(4, &mut f);
        assert_eq!(s.pop_ready(), Some(4));
    }

    #[test]
    fn unannounced_idle_or_creditless_flows_wait() {
        let mut s = Scheduler::default();
        let mut unannounced = flow(0, 100);
        unannounced.send_buffered = 1;
        s.schedule(0, &mut unannounced);
        let mut idle = flow(flag::ANNOUNCED, 100);
        s.schedule(2, &mut idle);
        let mut no_credit = flow(flag::ANNOUNCED, 0);
        no_credit.send_buffered = 1;
        s.schedule(4, &mut no_credit);
        assert_eq!(s.pop_ready(), None);
        assert!(!s.has_work());
    }

    #[test]
    fn a_bare_fin_needs_no_credit() {
        let mut s = Scheduler::default();
        let mut f = flow(flag::ANNOUNCED, 0);
        f.send_state = SendState::Fin { sent: false };
        s.schedule(6, &mut f);
        assert_eq!(s.pop_ready(), Some(6));
    }

    #[test]
    fn conn_blocked_flows_return_in_order_after_ready_ones() {
        let mut s = Scheduler::default();
        let mut f = flow(flag::ANNOUNCED, 100);
        f.send_buffered = 1;
        s.schedule(8, &mut f);
        s.block_on_conn(2);
        s.block_on_conn(4);
        s.unblock_conn();
        assert_eq!(s.pop_ready(), Some(8));
        assert_eq!(s.pop_ready(), Some(2));
        assert_eq!(s.pop_ready(), Some(4));
        s.unblock_conn(); // nothing blocked any more
        assert_eq!(s.pop_ready(), None);
    }

    #[test]
    fn one_input_may_queue_past_the_limit_when_nothing_waited_before() {
        let mut s = Scheduler::default();
        s.start_input();
        for v in 0..10 {
            s.queue(Queued::Pong(v), 2).unwrap();
        }
        // Flushed before the next input: still no backlog.
        while s.pop_queued().is_some() {}
        s.start_input();
        for v in 0..10 {
            s.queue(Queued::Pong(v), 2).unwrap();
        }
    }

    #[test]
    fn peer_driven_control_is_bounded_while_the_peer_does_not_read() {
        let mut s = Scheduler::default();
        s.start_input();
        s.queue(Queued::Pong(1), 2).unwrap();
        // Not flushed: the next input finds a backlog.
        s.start_input();
        s.queue(Queued::Rst(3), 2).unwrap();
        assert_eq!(
            s.queue(Queued::Pong(2), 2),
            Err(ProtocolError::ControlQueueFull(2))
        );
        // Our own ping is not the peer's doing and counts for nothing.
        s.queue_ping(7);
        assert_eq!(s.pop_queued(), Some(Queued::Pong(1)));
        assert_eq!(s.pop_queued(), Some(Queued::Rst(3)));
        assert_eq!(s.pop_queued(), Some(Queued::Ping(7)));
        assert_eq!(s.pop_queued(), None);
        s.start_input();
        s.queue(Queued::Pong(4), 2).unwrap();
    }

    #[test]
    fn our_own_pings_waiting_are_no_backlog() {
        let mut s = Scheduler::default();
        s.queue_ping(1);
        s.start_input();
        for v in 0..5 {
            s.queue(Queued::Pong(v), 1).unwrap();
        }
    }

    #[test]
    fn ctrl_and_waiters_are_deduplicated_and_clear_empties_all() {
        let mut s = Scheduler::default();
        let mut f = flow(0, 0);
        s.schedule_ctrl(1, &mut f);
        s.schedule_ctrl(1, &mut f);
        s.add_write_waiter(5);
        s.add_write_waiter(5);
        s.push_open(9);
        assert_eq!(s.front_ctrl(), Some(1));
        s.pop_ctrl();
        assert_eq!(s.front_ctrl(), None);
        assert_eq!(s.take_write_waiters(), [5]);
        assert!(s.take_write_waiters().is_empty());
        s.add_write_waiter(5);
        s.clear();
        assert!(!s.has_work());
        assert!(!s.opens_pending());
        assert!(s.take_write_waiters().is_empty());
    }
}
