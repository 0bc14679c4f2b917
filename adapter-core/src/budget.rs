//! The process side of the memory budget: a default budget for connections
//! whose config names none, and the last resort the core cannot take on
//! its own (it sees one connection at a time): when a new connection cannot
//! get its protocol floor, the connection holding the most unread data
//! among those drawing from the same budget is closed.

use crate::mux_layer::MuxLayer;
use crate::shared::Shared;
use proto_core::budget::{pick_victim, BudgetConfig, MemoryBudget};
use proto_core::mux::{self, Config, Profile};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// The budget every connection draws from when its config has none:
/// [`BudgetConfig::default`] (1 GiB), created on first use. Pass your own
/// [`MemoryBudget`] in [`Config::budget`] to choose the size.
///
/// ```
/// let b = adapter_core::default_budget();
/// assert_eq!(b, adapter_core::default_budget());
/// assert_eq!(b.limit(), 1 << 30);
/// ```
pub fn default_budget() -> MemoryBudget {
    static DEFAULT: OnceLock<MemoryBudget> = OnceLock::new();
    DEFAULT
        .get_or_init(|| MemoryBudget::new(BudgetConfig::default()))
        .clone()
}

struct Entry {
    budget: MemoryBudget,
    conn: Weak<Shared<MuxLayer>>,
}

/// Connections alive with a budget, so the last resort can choose among them.
fn registry() -> &'static Mutex<Vec<Entry>> {
    static REGISTRY: OnceLock<Mutex<Vec<Entry>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Vec::new()))
}

/// What a new connection will hold whatever the budget says, so room is
/// made for it first: what a peer may send before any credit frame
/// (native: the connection window; yamux: one stream's window, the one
/// flow every connection may hold under pressure), and the driver's read
/// buffer and output queue.
fn floor(config: &Config) -> usize {
    let protocol = match config.profile {
        Profile::Yamux => mux::initial::FLOW_WINDOW as usize,
        _ => mux::initial::CONN_WINDOW as usize,
    };
    protocol + crate::runtime::RECV_CHUNK + crate::driver::TRANSMIT_HIGH_WATER
}

/// Gives `config` the default budget if it has none, and makes room for a
/// new connection's floor: while it does not fit, the connection holding
/// the most unread data (received and not read, or written and not sent)
/// is closed with [`ErrorCode::MemoryBudget`](proto_core::mux::ErrorCode).
pub(crate) fn prepare(config: &mut Config) {
    let budget = config.budget.get_or_insert_with(default_budget).clone();
    let need = floor(config);
    if budget.fits(need) {
        return;
    }
    // The open connections drawing from this budget, with what they hold.
    let mut candidates: Vec<_> = {
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        reg.retain(|e| e.conn.strong_count() > 0);
        reg.iter()
            .filter(|e| e.budget == budget)
            .filter_map(|e| e.conn.upgrade())
            .filter_map(|c| {
                let held = c.with(|st| {
                    let m = st.stack.conn();
                    let s = m.stats();
                    let unread = (s.recv_buffered + s.send_buffered) as usize;
                    (!m.is_closed()).then_some((unread, s.budget_held as usize))
                })?;
                Some((c, held))
            })
            .collect()
    };
    // One victim usually frees enough; more only while what the victims
    // held does not cover the floor (their unread bytes go when their
    // owners drop them, so `used` lags behind).
    let mut freed = 0;
    while !budget.fits(need) && freed < need {
        let most = pick_victim(candidates.iter().enumerate().map(|(i, c)| (i, c.1 .0)));
        let Some((i, unread)) = most else { break };
        let (victim, (_, held)) = candidates.swap_remove(i);
        freed += held.max(1);
        let reason = format!(
            "memory budget of {} bytes exhausted: this connection held the most unread data ({unread} bytes)",
            budget.limit()
        );
        // Closing gives back the credit it granted and its unsent bytes at
        // once; its unread bytes when their owner drops them.
        victim.with(|st| st.stack.mux().evict(reason.as_bytes()));
    }
}

/// Registers a new connection so the last resort can find it.
pub(crate) fn register(budget: &MemoryBudget, conn: &Arc<Shared<MuxLayer>>) {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|e| e.conn.strong_count() > 0);
    reg.push(Entry {
        budget: budget.clone(),
        conn: Arc::downgrade(conn),
    });
}
