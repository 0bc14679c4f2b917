//! Connection-level flow control: absolute send and receive offsets over
//! all flows, the receive budget, and the sum of the flows' windows.

use super::error::ProtocolError;
use crate::time::Duration;

/// The connection's send and receive offsets.
///
/// Offsets are absolute and only grow, so a stale MAX_DATA is just smaller
/// and a duplicate is harmless. On a wire without a connection window
/// (yamux) the limits start at `u64::MAX`: every comparison below then
/// passes and no MAX_DATA is ever due.
#[derive(Debug)]
pub(super) struct ConnFlowControl {
    /// DATA payload bytes put on the wire.
    sent: u64,
    /// The peer's limit for `sent`.
    send_max: u64,
    /// DATA payload bytes that arrived (including discarded ones: the peer
    /// counted them against our limit).
    received: u64,
    /// Received bytes that left our buffers (read or discarded).
    read: u64,
    /// Our limit for the peer's `received`. Kept at most one budget ahead
    /// of `read`, so unread data never exceeds `conn_recv_budget`.
    recv_max: u64,
    /// The limit the peer knows.
    recv_max_sent: u64,
    /// Bytes the application wrote that are not yet on the wire.
    send_buffered: usize,
    /// Sum of the flows' receive windows: growth must keep it within the
    /// budget, or a window could promise credit the connection won't give.
    total_windows: u64,
}

impl ConnFlowControl {
    /// `send_max` and `recv_max_sent` are what both sides assume before any
    /// MAX_DATA; `recv_max` is what we will allow (sent right away).
    pub fn new(send_max: u64, recv_max: u64, recv_max_sent: u64) -> Self {
        ConnFlowControl {
            sent: 0,
            send_max,
            received: 0,
            read: 0,
            recv_max,
            recv_max_sent,
            send_buffered: 0,
            total_windows: 0,
        }
    }

    /// What the peer still lets us send.
    pub fn send_credit(&self) -> u64 {
        self.send_max - self.sent
    }

    /// The peer's MAX_DATA; `true` if it raised the limit (blocked flows
    /// may go again).
    pub fn raise_send_max(&mut self, max: u64) -> bool {
        if max > self.send_max {
            self.send_max = max;
            return true;
        }
        false
    }

    pub fn send_buffered(&self) -> usize {
        self.send_buffered
    }

    /// Room left in the connection's send buffer of `limit` bytes.
    pub fn send_room(&self, limit: usize) -> usize {
        limit.saturating_sub(self.send_buffered)
    }

    /// The application buffered `n` bytes.
    pub fn buffered(&mut self, n: usize) {
        self.send_buffered += n;
    }

    /// `n` buffered bytes were dropped unsent (reset, stop, refusal).
    pub fn unbuffered(&mut self, n: usize) {
        self.send_buffered -= n;
    }

    /// `n` buffered bytes went out as DATA payload.
    pub fn on_sent(&mut self, n: usize) {
        self.sent += n as u64;
        self.send_buffered -= n;
    }

    /// A DATA frame of `len` bytes announces itself: over our limit is a
    /// protocol error before a byte of it is buffered.
    pub fn check_recv(&self, len: u64) -> Result<(), ProtocolError> {
        if self.received.saturating_add(len) > self.recv_max {
            return Err(ProtocolError::FlowControl);
        }
        Ok(())
    }

    pub fn on_received(&mut self, n: u64) {
        self.received += n;
    }

    /// `n` received bytes left the buffers (read or discarded). The limit
    /// moves only once half a budget was consumed, so MAX_DATA goes out
    /// once per half budget, not once per read.
    pub fn consumed(&mut self, n: u64, budget: u64) {
        self.read += n;
        if self.recv_max - self.read < budget / 2 {
            self.recv_max = self.read + budget;
        }
    }

    /// The limit to announce in a MAX_DATA, if the peer's is stale.
    pub fn update_due(&self) -> bool {
        self.recv_max > self.recv_max_sent
    }

    /// Takes the limit to announce, marking it announced.
    pub fn take_update(&mut self) -> Option<u64> {
        if !self.update_due() {
            return None;
        }
        self.recv_max_sent = self.recv_max;
        Some(self.recv_max)
    }

    /// The peer's credit left, as our limit has it.
    pub fn recv_window(&self) -> u64 {
        self.recv_max - self.received
    }

    /// Received and not yet read or discarded.
    pub fn recv_buffered(&self) -> u64 {
        self.received - self.read
    }

    /// Sum of the flows' receive windows.
    pub fn total_windows(&self) -> u64 {
        self.total_windows
    }

    pub fn window_added(&mut self, window: u64) {
        self.total_windows += window;
    }

    pub fn window_removed(&mut self, window: u64) {
        self.total_windows -= window;
    }

    /// A flow's receive window at a window update: doubled (up to
    /// `max_window`) when the peer used half of it within two smoothed RTTs
    /// (`since_update` is the time since the previous update), because then
    /// the window, not the path, is what limits the flow. Growth that would
    /// take the sum of windows past `budget` is refused whole rather than
    /// cut: a half-grown window would not remove the bottleneck either.
    /// Without an RTT sample there is nothing to compare with: no growth.
    pub fn grow_window(
        &mut self,
        window: u64,
        max_window: u64,
        budget: u64,
        srtt: Option<Duration>,
        since_update: Duration,
    ) -> u64 {
        let Some(srtt) = srtt else {
            return window;
        };
        let extra = window.min(max_window - window);
        if extra > 0 && since_update < srtt * 2 && self.total_windows + extra <= budget {
            self.total_windows += extra;
            return window + extra;
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn window_doubles_when_used_fast() {
        let mut fc = ConnFlowControl::new(0, 0, 0);
        fc.window_added(256 * KIB);
        let w = fc.grow_window(256 * KIB, 16384 * KIB, 4096 * KIB, Some(ms(10)), ms(19));
        assert_eq!(w, 512 * KIB);
        assert_eq!(fc.total_windows, 512 * KIB);
    }

    #[test]
    fn window_stays_when_used_slowly_or_without_rtt() {
        let mut fc = ConnFlowControl::new(0, 0, 0);
        fc.window_added(256 * KIB);
        assert_eq!(
            fc.grow_window(256 * KIB, 16384 * KIB, 4096 * KIB, Some(ms(10)), ms(20)),
            256 * KIB
        );
        assert_eq!(
            fc.grow_window(256 * KIB, 16384 * KIB, 4096 * KIB, None, ms(0)),
            256 * KIB
        );
        assert_eq!(fc.total_windows, 256 * KIB);
    }

    #[test]
    fn window_growth_is_bounded_by_max_window() {
        let mut fc = ConnFlowControl::new(0, 0, 0);
        fc.window_added(768 * KIB);
        let w = fc.grow_window(768 * KIB, 1024 * KIB, 1 << 40, Some(ms(10)), ms(0));
        assert_eq!(w, 1024 * KIB);
        // At the maximum: no growth at all.
        let w = fc.grow_window(w, 1024 * KIB, 1 << 40, Some(ms(10)), ms(0));
        assert_eq!(w, 1024 * KIB);
        assert_eq!(fc.total_windows, 1024 * KIB);
    }

    #[test]
    fn window_growth_is_bounded_by_the_budget() {
        let mut fc = ConnFlowControl::new(0, 0, 0);
        // Three flows of 256 KiB in a 1 MiB budget: one may double ...
        fc.window_added(3 * 256 * KIB);
        let a = fc.grow_window(256 * KIB, 16384 * KIB, 1024 * KIB, Some(ms(10)), ms(0));
        assert_eq!(a, 512 * KIB);
        // ... and then the sum is at the budget: nobody else grows, not
        // even partly.
        let b = fc.grow_window(256 * KIB, 16384 * KIB, 1024 * KIB, Some(ms(10)), ms(0));
        assert_eq!(b, 256 * KIB);
        assert_eq!(fc.total_windows, 1024 * KIB);
        fc.window_removed(a);
        let b = fc.grow_window(256 * KIB, 16384 * KIB, 1024 * KIB, Some(ms(10)), ms(0));
        assert_eq!(b, 512 * KIB);
    }

    #[test]
    fn receive_limit_moves_after_half_a_budget() {
        let budget = 100;
        let mut fc = ConnFlowControl::new(0, budget, 0);
        fc.on_received(100);
        assert_eq!(fc.check_recv(1), Err(ProtocolError::FlowControl));
        fc.consumed(50, budget);
        assert_eq!(fc.recv_max, 100); // exactly half left: not yet
        fc.consumed(1, budget);
        assert_eq!(fc.recv_max, 151);
        assert_eq!(fc.check_recv(51), Ok(()));
        assert_eq!(fc.check_recv(52), Err(ProtocolError::FlowControl));
        // Unread data never exceeds the budget.
        assert!(fc.recv_max - fc.read <= budget);
    }

    #[test]
    fn max_data_is_due_once_per_raise() {
        let mut fc = ConnFlowControl::new(0, 200, 100);
        assert!(fc.update_due());
        assert_eq!(fc.take_update(), Some(200));
        assert_eq!(fc.take_update(), None);
        fc.on_received(150);
        fc.consumed(150, 200);
        assert_eq!(fc.take_update(), Some(350));
    }

    #[test]
    fn without_a_connection_window_nothing_blocks() {
        let mut fc = ConnFlowControl::new(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(fc.check_recv(u64::MAX), Ok(()));
        fc.on_received(1 << 40);
        assert_eq!(fc.check_recv(u64::MAX), Ok(()));
        fc.consumed(1 << 40, 1024);
        assert!(!fc.update_due());
        assert!(fc.send_credit() > 1 << 60);
    }

    #[test]
    fn send_credit_and_buffering() {
        let mut fc = ConnFlowControl::new(100, 0, 0);
        fc.buffered(70);
        assert_eq!(fc.send_room(100), 30);
        fc.on_sent(60);
        assert_eq!(fc.send_credit(), 40);
        assert_eq!(fc.send_buffered(), 10);
        fc.unbuffered(10);
        assert_eq!(fc.send_room(100), 100);
        assert!(!fc.raise_send_max(100));
        assert!(fc.raise_send_max(101));
        assert_eq!(fc.send_credit(), 41);
    }
}
