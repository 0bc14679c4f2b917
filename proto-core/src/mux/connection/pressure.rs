//! The connection's side of the process [`MemoryBudget`](crate::budget):
//! what it holds, and what it does under pressure (windows that stop
//! growing or shrink, refused flows, writes that wait past a floor).

use super::*;
use crate::budget::Pressure;

/// What one flow's state costs, charged to the budget per flow: about what
/// `tests/mux_memory.rs` measures for an idle flow, rounded up.
pub(in crate::mux) const FLOW_STATE_BYTES: u64 = 256;

impl Connection {
    /// The budget's pressure; `Normal` without a budget.
    pub(super) fn pressure(&self) -> Pressure {
        self.share
            .as_ref()
            .map_or(Pressure::Normal, |s| s.budget().pressure())
    }

    /// Under pressure and holding more than its fair part: this connection
    /// gives back first.
    pub(super) fn must_shrink(&self) -> bool {
        self.share
            .as_ref()
            .is_some_and(|s| s.budget().pressure() >= Pressure::Shrink && s.over_fair_share())
    }

    /// Receive windows may grow (the budget is below its hold threshold).
    pub(super) fn may_grow(&self) -> bool {
        self.pressure() < Pressure::Hold
    }

    /// A new peer flow is refused: the budget is nearly spent and this
    /// connection would hold more than its fair share with it, or the
    /// budget is full. Connections within their share keep opening flows
    /// until then, so a greedy peer cannot deny service to the others by
    /// filling its part; and every connection may hold one flow, or with
    /// many connections none could do anything (the adapters make room for
    /// that one by the last resort).
    pub(super) fn refuses_flows(&self) -> bool {
        let Some(share) = &self.share else {
            return false;
        };
        let cost = if self.policy.has_credit_frames() {
            FLOW_STATE_BYTES // bounded by the connection window
        } else {
            initial::FLOW_WINDOW + FLOW_STATE_BYTES // yamux: a window per stream
        };
        let budget = share.budget();
        let held = share.held() as u64;
        if held + cost <= cost.max(FLOW_STATE_BYTES * 4) {
            return false; // the one flow every connection may hold
        }
        budget.pressure() >= Pressure::Refuse
            && (held + cost > budget.fair_share() as u64 || !budget.fits(cost as usize))
    }

    /// The connection window to keep granted (native profile). Without a
    /// budget it is the whole `conn_recv_budget`, as the peer can use it
    /// at once. With one it starts at the protocol's initial window and
    /// follows what the flows' windows grew beyond their initial size, so
    /// an idle connection holds little; under pressure it is at most the
    /// fair share (at least `pressure_window`).
    pub(super) fn conn_window_target(&self) -> u64 {
        let Some(share) = &self.share else {
            return self.config.conn_recv_budget;
        };
        let initial_windows = self.flows.len() as u64 * initial::FLOW_WINDOW;
        let grown = self.fc.total_windows().saturating_sub(initial_windows);
        let target = (initial::CONN_WINDOW + grown).min(self.config.conn_recv_budget);
        // Clamped whether or not this connection is over its share now, or
        // it would climb back over it with the next grant.
        if share.budget().pressure() >= Pressure::Shrink {
            let fair = share.budget().fair_share() as u64;
            return target.min(fair.max(self.config.pressure_window));
        }
        target
    }

    /// Receive credit the peer may use now plus unread bytes: what the
    /// peer can make us hold. yamux has no connection window, so there it
    /// is the sum of the flows' windows.
    fn recv_held(&self) -> u64 {
        if self.closed {
            // Nothing more arrives; what did stays readable.
            return self.fc.recv_buffered();
        }
        if self.policy.has_credit_frames() {
            self.fc.recv_window() + self.fc.recv_buffered()
        } else {
            self.fc.total_windows()
        }
    }

    /// Brings the share up to date with what the connection holds.
    pub(super) fn sync_budget(&mut self) {
        let state = self.flows.len() as u64 * FLOW_STATE_BYTES;
        // A closed connection sends nothing more: its unsent bytes are gone.
        let unsent = if self.closed {
            0
        } else {
            self.fc.send_buffered() as u64
        };
        let held = self.recv_held() + unsent + state;
        if let Some(share) = &mut self.share {
            share.set(usize::try_from(held).unwrap_or(usize::MAX));
        }
    }

    /// Room for a write under pressure: a connection above its fair share
    /// may keep `pressure_send_floor` bytes unsent, no more.
    pub(super) fn pressure_send_room(&self) -> usize {
        if self.must_shrink() {
            self.config
                .pressure_send_floor
                .saturating_sub(self.fc.send_buffered())
        } else {
            usize::MAX
        }
    }

    /// Counts a peer flow refused for memory, here and in the budget.
    pub(super) fn count_refused_flow(&mut self) {
        if let Some(share) = &self.share {
            share.budget().note_flow_refused();
        }
        self.stats.flows_refused += 1;
    }

    /// Refuses a peer's new flow for memory: it is reset and stopped with
    /// [`OVERLOADED`](crate::mux::OVERLOADED) and the application never
    /// sees it.
    pub(super) fn refuse_for_budget(&mut self, id: u64, flags: u16) {
        trace!(flow = id, "mux flow refused: memory budget");
        self.count_refused_flow();
        self.insert_flow(id, flags);
        let _ = self.reset(id, crate::mux::OVERLOADED);
        let _ = self.stop(id, crate::mux::OVERLOADED);
    }
}
