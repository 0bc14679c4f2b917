//! A memory budget shared by every connection of a process.
//!
//! Each connection bounds itself (`conn_recv_budget`, send buffers), but a
//! process with many connections needs one cap over all of them: a
//! [`MemoryBudget`] is that cap. The user creates one handle and gives a
//! clone to every connection (through the mux [`Config`](crate::mux::Config));
//! each connection holds a [`Share`] and keeps it equal to what a peer can
//! make it hold: the receive credit it granted and the bytes it has not
//! sent yet.
//!
//! The budget itself decides nothing; connections read its
//! [`Pressure`] and act:
//!
//! | used      | pressure      | what connections do                                   |
//! |-----------|---------------|-------------------------------------------------------|
//! | < 50 %    | `Normal`      | windows grow with the measured RTT                     |
//! | ≥ 50 %    | `Hold`        | windows stop growing                                   |
//! | ≥ 75 %    | `Shrink`      | connections over their fair share shrink their windows and stop buffering writes past a floor |
//! | ≥ 90 %    | `Refuse`      | connections over their fair share refuse new peer flows (reset with [`mux::OVERLOADED`](crate::mux::OVERLOADED)) |
//!
//! The thresholds are [`BudgetConfig`] fields. The fair share is the limit
//! divided by the number of connections holding a share. Protocol floors
//! (the initial windows a peer may use before any credit frame) are charged
//! even over the limit: what goes past it is the signal for the last resort,
//! closing the connection that holds the most unread data, which the
//! adapters do when a new connection cannot get its floor (the core sees
//! one connection at a time and cannot choose among them).
//!
//! The counters are atomics, so clones may live on any thread; the core
//! itself stays single-threaded and deterministic (the simulator shares one
//! budget among its hosts in a fixed order).
//!
//! ```
//! use proto_core::budget::{BudgetConfig, MemoryBudget, Pressure};
//! let budget = MemoryBudget::new(BudgetConfig::with_limit(1 << 20));
//! let mut share = budget.share();
//! share.set(600 << 10);
//! assert_eq!(budget.pressure(), Pressure::Hold);
//! assert_eq!(budget.stats().used, 600 << 10);
//! drop(share);
//! assert_eq!(budget.stats().used, 0);
//! ```

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Limits and thresholds of a [`MemoryBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetConfig {
    /// Bytes all connections together may hold. Default 1 GiB.
    pub limit: usize,
    /// Percent of `limit` in use from which receive windows stop growing.
    /// Default 50.
    pub hold_percent: u8,
    /// Percent from which connections above their fair share shrink their
    /// windows and writes past a floor wait. Default 75.
    pub shrink_percent: u8,
    /// Percent from which new peer flows are refused. Default 90.
    pub refuse_percent: u8,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            limit: 1 << 30,
            hold_percent: 50,
            shrink_percent: 75,
            refuse_percent: 90,
        }
    }
}

impl BudgetConfig {
    /// The default thresholds with this `limit` in bytes.
    pub fn with_limit(limit: usize) -> Self {
        BudgetConfig {
            limit,
            ..Self::default()
        }
    }
}

/// How full the budget is; see the table in the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pressure {
    /// Below `hold_percent`.
    Normal,
    /// Windows stop growing.
    Hold,
    /// Connections above their fair share shrink.
    Shrink,
    /// New peer flows are refused.
    Refuse,
}

/// What a budget holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetStats {
    /// The limit in bytes.
    pub limit: usize,
    /// Bytes held by all shares.
    pub used: usize,
    /// The most `used` has been.
    pub peak: usize,
    /// Shares alive (connections drawing from the budget).
    pub shares: usize,
    /// Peer flows refused because of pressure.
    pub flows_refused: usize,
    /// Connections closed to make room (the last resort).
    pub evictions: usize,
}

#[derive(Debug)]
struct Inner {
    config: BudgetConfig,
    used: AtomicUsize,
    peak: AtomicUsize,
    shares: AtomicUsize,
    flows_refused: AtomicUsize,
    evictions: AtomicUsize,
}

/// A handle on a process-wide memory budget; clones share it.
#[derive(Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.stats();
        f.debug_struct("MemoryBudget")
            .field("limit", &s.limit)
            .field("used", &s.used)
            .field("shares", &s.shares)
            .finish()
    }
}

impl PartialEq for MemoryBudget {
    /// Two handles are equal when they share one budget.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for MemoryBudget {}

impl MemoryBudget {
    /// A new budget. Thresholds above 100 are treated as 100.
    pub fn new(config: BudgetConfig) -> Self {
        MemoryBudget {
            inner: Arc::new(Inner {
                config,
                used: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                shares: AtomicUsize::new(0),
                flows_refused: AtomicUsize::new(0),
                evictions: AtomicUsize::new(0),
            }),
        }
    }

    /// The settings it was made with.
    pub fn config(&self) -> BudgetConfig {
        self.inner.config
    }

    /// A new share, for one connection; released when dropped.
    pub fn share(&self) -> Share {
        self.inner.shares.fetch_add(1, Relaxed);
        Share {
            budget: self.clone(),
            held: 0,
            counted: true,
        }
    }

    /// A share for bytes a connection holds outside its state machine (a
    /// driver's queue of output not yet written): it counts in `used` but
    /// is not another connection, so the fair share stays the same.
    pub fn side_share(&self) -> Share {
        Share {
            budget: self.clone(),
            held: 0,
            counted: false,
        }
    }

    /// Bytes held by all shares.
    pub fn used(&self) -> usize {
        self.inner.used.load(Relaxed)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.inner.config.limit
    }

    fn percent_used(&self, extra: usize) -> u128 {
        let used = self.used().saturating_add(extra) as u128;
        match self.inner.config.limit {
            // Nothing may be held: full from the start.
            0 => 100,
            limit => used * 100 / limit as u128,
        }
    }

    /// How full the budget is now.
    pub fn pressure(&self) -> Pressure {
        self.pressure_with(0)
    }

    /// How full the budget would be with `extra` more bytes.
    pub fn pressure_with(&self, extra: usize) -> Pressure {
        let c = &self.inner.config;
        let p = self.percent_used(extra);
        if p >= u128::from(c.refuse_percent.min(100)) {
            Pressure::Refuse
        } else if p >= u128::from(c.shrink_percent.min(100)) {
            Pressure::Shrink
        } else if p >= u128::from(c.hold_percent.min(100)) {
            Pressure::Hold
        } else {
            Pressure::Normal
        }
    }

    /// The limit divided among the shares alive.
    pub fn fair_share(&self) -> usize {
        self.inner.config.limit / self.inner.shares.load(Relaxed).max(1)
    }

    /// Whether `extra` more bytes still fit under the limit.
    pub fn fits(&self, extra: usize) -> bool {
        self.used().saturating_add(extra) <= self.inner.config.limit
    }

    /// Counts a peer flow refused because of pressure.
    pub fn note_flow_refused(&self) {
        self.inner.flows_refused.fetch_add(1, Relaxed);
    }

    /// Counts a connection closed to make room.
    pub fn note_eviction(&self) {
        self.inner.evictions.fetch_add(1, Relaxed);
    }

    /// The counters now.
    pub fn stats(&self) -> BudgetStats {
        let i = &self.inner;
        BudgetStats {
            limit: i.config.limit,
            used: i.used.load(Relaxed),
            peak: i.peak.load(Relaxed),
            shares: i.shares.load(Relaxed),
            flows_refused: i.flows_refused.load(Relaxed),
            evictions: i.evictions.load(Relaxed),
        }
    }

    fn add(&self, n: usize) {
        let now = self.inner.used.fetch_add(n, Relaxed).saturating_add(n);
        self.inner.peak.fetch_max(now, Relaxed);
    }

    fn sub(&self, n: usize) {
        self.inner.used.fetch_sub(n, Relaxed);
    }
}

/// One connection's part of a [`MemoryBudget`]: what it holds now. Not
/// `Clone`; dropping it gives everything back.
#[derive(Debug)]
pub struct Share {
    budget: MemoryBudget,
    held: usize,
    /// Counted in `shares` (a connection), or a side share.
    counted: bool,
}

impl Share {
    /// The budget this share draws from.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// Bytes this share holds.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Sets what this share holds to `bytes`, whatever the limit: callers
    /// ask [`MemoryBudget::pressure`] before committing to more.
    pub fn set(&mut self, bytes: usize) {
        if bytes > self.held {
            self.budget.add(bytes - self.held);
        } else if bytes < self.held {
            self.budget.sub(self.held - bytes);
        }
        self.held = bytes;
    }

    /// Whether this share holds more than its fair part of the budget.
    pub fn over_fair_share(&self) -> bool {
        self.held > self.budget.fair_share()
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.set(0);
        if self.counted {
            self.budget.inner.shares.fetch_sub(1, Relaxed);
        }
    }
}

/// The connection to close when the budget cannot make room otherwise: the
/// one holding the most (ties: the first listed). `None` for no candidates.
pub fn pick_victim<K: Copy>(holders: impl IntoIterator<Item = (K, usize)>) -> Option<(K, usize)> {
    let mut best: Option<(K, usize)> = None;
    for (k, held) in holders {
        if best.is_none_or(|(_, b)| held > b) {
            best = Some((k, held));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_follows_the_thresholds() {
        let b = MemoryBudget::new(BudgetConfig::with_limit(1000));
        let mut s = b.share();
        for (held, want) in [
            (0, Pressure::Normal),
            (499, Pressure::Normal),
            (500, Pressure::Hold),
            (750, Pressure::Shrink),
            (900, Pressure::Refuse),
            (5000, Pressure::Refuse),
        ] {
            s.set(held);
            assert_eq!(b.pressure(), want, "at {held}");
        }
        s.set(100);
        assert_eq!(b.pressure_with(400), Pressure::Hold);
    }

    #[test]
    fn shares_add_up_and_give_back_on_drop() {
        let b = MemoryBudget::new(BudgetConfig::with_limit(1000));
        let mut x = b.share();
        let mut y = b.share();
        x.set(300);
        y.set(200);
        assert_eq!(b.used(), 500);
        assert_eq!(b.fair_share(), 500);
        x.set(100);
        assert_eq!(b.used(), 300);
        assert!(!x.over_fair_share());
        y.set(600);
        assert!(y.over_fair_share());
        assert_eq!(b.stats().peak, 700);
        drop(y);
        assert_eq!(b.used(), 100);
        assert_eq!(b.stats().shares, 1);
        assert_eq!(b.fair_share(), 1000);
        drop(x);
        assert_eq!(b.stats().used, 0);
    }

    #[test]
    fn side_shares_count_bytes_not_connections() {
        let b = MemoryBudget::new(BudgetConfig::with_limit(1000));
        let _conn = b.share();
        let mut queue = b.side_share();
        queue.set(300);
        assert_eq!(b.used(), 300);
        assert_eq!(b.stats().shares, 1);
        assert_eq!(b.fair_share(), 1000);
        drop(queue);
        assert_eq!(b.used(), 0);
        assert_eq!(b.stats().shares, 1);
    }

    #[test]
    fn fits_and_a_zero_limit() {
        let b = MemoryBudget::new(BudgetConfig::with_limit(0));
        assert!(b.fits(0));
        assert!(!b.fits(1));
        assert_eq!(b.pressure(), Pressure::Refuse);
    }

    #[test]
    fn the_victim_holds_the_most() {
        assert_eq!(pick_victim([(1, 10), (2, 30), (3, 30)]), Some((2, 30)));
        assert_eq!(pick_victim::<u8>([]), None);
    }

    #[test]
    fn clones_are_the_same_budget() {
        let a = MemoryBudget::new(BudgetConfig::default());
        let b = a.clone();
        assert_eq!(a, b);
        assert_ne!(a, MemoryBudget::new(BudgetConfig::default()));
    }
}
