//! The mux as the simulated-network tests run it.

#![allow(dead_code)]

use proto_core::budget::{BudgetConfig, MemoryBudget};
use proto_core::mux::{Config, Connection, Profile, Side};
use proto_core::sim::Role;
use proto_core::time::{Duration, Instant};

/// Short keepalive and channel timeout, so a dead peer is noticed well
/// inside the scenario's 40 s liveness deadline.
pub fn mux_config() -> Config {
    let mut cfg = Config::default();
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.channel_timeout = Some(Duration::from_secs(4));
    cfg.drain_timeout = Duration::from_secs(10);
    cfg
}

pub fn side(role: Role) -> Side {
    match role {
        Role::Dialer => Side::Dialer,
        Role::Acceptor => Side::Acceptor,
    }
}

pub fn mux(role: Role, now: Instant) -> Connection {
    Connection::new(mux_config(), side(role), now).expect("valid config")
}

/// The mux speaking the yamux wire profile, same timers.
pub fn yamux(role: Role, now: Instant) -> Connection {
    let mut cfg = mux_config();
    cfg.profile = Profile::Yamux;
    Connection::new(cfg, side(role), now).expect("valid config")
}

/// The budget a swarm asks for (`Swarm::budget`), fresh for one run.
pub fn budget_for(limit: Option<usize>) -> Option<MemoryBudget> {
    limit.map(|l| MemoryBudget::new(BudgetConfig::with_limit(l)))
}

/// `mux` or `yamux` (by `profile`), every connection drawing from `budget`.
pub fn mux_in(
    profile: Profile,
    budget: Option<MemoryBudget>,
) -> impl FnMut(Role, Instant) -> Connection {
    move |role, now| {
        let mut cfg = mux_config();
        cfg.profile = profile;
        cfg.budget = budget.clone();
        Connection::new(cfg, side(role), now).expect("valid config")
    }
}
