//! The process memory budget seen from the mux: what a connection holds,
//! windows that stop growing or shrink under pressure, refused flows,
//! writes that wait past a floor, and shares given back.

mod common;

use common::{cfg, opened, pattern, pump_read, pump_write, Faults, Pair};
use proto_core::budget::{BudgetConfig, MemoryBudget, Pressure};
use proto_core::mux::{Config, Event, Profile, ReadError, WriteError, OVERLOADED};
use proto_core::time::Duration;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const PROFILES: [Profile; 2] = [Profile::Native, Profile::Yamux];

fn budgeted(profile: Profile, budget: &MemoryBudget) -> Config {
    let mut c = cfg(profile);
    c.budget = Some(budget.clone());
    c
}

/// A pair whose acceptor (b) draws from `budget`.
fn pair(profile: Profile, budget: &MemoryBudget) -> Pair {
    Pair::with(
        1,
        cfg(profile),
        budgeted(profile, budget),
        Faults::default(),
    )
}

/// Sends `len` bytes from a on a new flow and lets them arrive unread at b
/// (as far as b lets them: a refused flow stops early).
fn stuff(p: &mut Pair, len: usize) -> proto_core::mux::FlowId {
    let id = p.a.conn.open_flow().unwrap();
    let data = pattern(1, 0, len);
    let mut pos = 0;
    for _ in 0..1000 {
        while pos < data.len() {
            match p.a.conn.flow(id).write(&data[pos..]) {
                Ok(n) => pos += n,
                Err(_) => break,
            }
        }
        p.settle();
        if pos == data.len() || p.a.conn.flow(id).write(b"").is_err() {
            break;
        }
    }
    id
}

#[test]
fn an_idle_connection_holds_its_initial_window_and_gives_it_back() {
    for profile in PROFILES {
        let budget = MemoryBudget::new(BudgetConfig::with_limit(64 * MIB));
        let mut p = pair(profile, &budget);
        p.settle();
        let held = p.b.conn.stats().budget_held as usize;
        match profile {
            // The peer may send the initial connection window unasked.
            Profile::Native => assert_eq!(held, MIB),
            // No connection window and no flows: nothing granted yet.
            _ => assert_eq!(held, 0),
        }
        assert_eq!(budget.used(), held);
        assert_eq!(budget.stats().shares, 1);
        drop(p);
        assert_eq!(budget.stats().used, 0, "{profile:?}");
        assert_eq!(budget.stats().shares, 0);
    }
}

#[test]
fn unread_data_is_held_and_released_as_it_is_read() {
    for profile in PROFILES {
        let budget = MemoryBudget::new(BudgetConfig::with_limit(64 * MIB));
        let mut p = pair(profile, &budget);
        p.settle();
        let before = budget.used();
        stuff(&mut p, 200 * KIB);
        let id = opened(&p.take_events_b())[0];
        let s = p.b.conn.stats();
        assert_eq!(s.recv_buffered, 200 * KIB as u64);
        assert!(s.budget_held as usize >= 200 * KIB, "{profile:?}: {s:?}");
        assert_eq!(budget.used(), s.budget_held as usize);
        let mut got = Vec::new();
        pump_read(&mut p.b.conn, id, &mut got).unwrap();
        p.settle();
        assert_eq!(got.len(), 200 * KIB);
        // What stays is credit, never more than before plus one window.
        // (a window may have doubled on the way).
        assert!(budget.used() <= before + 512 * KIB + 512, "{profile:?}");
    }
}

/// Bulk transfer a -> b with b reading everything, for `rounds` steps;
/// returns b's flow window at the end.
fn bulk_window(profile: Profile, budget: &MemoryBudget) -> u64 {
    let faults = Faults {
        delay: (5_000_000, 5_000_000),
        ..Faults::default()
    };
    let mut p = Pair::with(2, cfg(profile), budgeted(profile, budget), faults);
    p.settle();
    let id = p.a.conn.open_flow().unwrap();
    let data = pattern(2, 0, 64 * MIB);
    let (mut pos, mut got) = (0, Vec::new());
    let mut rid = None;
    for _ in 0..20_000 {
        pump_write(&mut p.a.conn, id, &data, &mut pos);
        p.step();
        if rid.is_none() {
            rid = opened(&p.take_events_b()).first().copied();
        }
        if let Some(r) = rid {
            pump_read(&mut p.b.conn, r, &mut got).unwrap();
        }
        if pos == data.len() {
            break;
        }
    }
    p.b.conn.flow_stats(rid.unwrap()).unwrap().recv_window
}

#[test]
fn windows_grow_without_pressure_and_hold_under_it() {
    for profile in PROFILES {
        let free = MemoryBudget::new(BudgetConfig::with_limit(1 << 30));
        let grown = bulk_window(profile, &free);
        assert!(grown > 256 * KIB as u64, "{profile:?}: {grown}");

        let busy = MemoryBudget::new(BudgetConfig::with_limit(1 << 30));
        let mut other = busy.share();
        other.set(600 * MIB); // 58 %: Hold
        assert_eq!(busy.pressure(), Pressure::Hold);
        let held = bulk_window(profile, &busy);
        assert_eq!(held, 256 * KIB as u64, "{profile:?}");
    }
}

#[test]
fn a_connection_over_its_share_shrinks_under_pressure() {
    for profile in PROFILES {
        // Native holds its 1 MiB connection window, yamux a 256 KiB flow
        // window: idle shares make the fair share smaller than that.
        let (limit, idle, other_held) = match profile {
            Profile::Native => (4 * MIB, 3, 2 * MIB),
            _ => (2 * MIB, 7, 1300 * KIB),
        };
        let budget = MemoryBudget::new(BudgetConfig::with_limit(limit));
        let _idle: Vec<_> = (0..idle).map(|_| budget.share()).collect();
        let mut other = budget.share();
        let mut p = pair(profile, &budget);
        p.settle();
        let id = stuff(&mut p, 200 * KIB);
        let rid = opened(&p.take_events_b())[0];
        other.set(other_held);
        assert_eq!(budget.pressure(), Pressure::Shrink, "{profile:?}");
        let held_before = p.b.conn.stats().budget_held;
        let fair = budget.fair_share() as u64;
        assert!(held_before > fair);
        let mut got = Vec::new();
        pump_read(&mut p.b.conn, rid, &mut got).unwrap();
        let data = pattern(1, 0, 600 * KIB);
        let mut pos = 200 * KIB;
        for _ in 0..200 {
            pump_write(&mut p.a.conn, id, &data, &mut pos);
            p.settle();
            pump_read(&mut p.b.conn, rid, &mut got).unwrap();
        }
        assert_eq!(got.len(), 600 * KIB, "{profile:?}: progress goes on");
        // Native gives back connection window, yamux (without one) halves
        // its flow window down to the floor: either way the pressure is
        // relieved and this connection holds less than it did.
        let held = p.b.conn.stats().budget_held;
        let w = p.b.conn.flow_stats(rid).unwrap().recv_window;
        assert!(budget.pressure() < Pressure::Shrink, "{profile:?}");
        assert!(held < held_before, "{profile:?}: {held_before} -> {held}");
        if profile == Profile::Yamux {
            assert!(w < 256 * KIB as u64 && w >= 64 * KIB as u64, "shrunk: {w}");
        }
    }
}

#[test]
fn new_flows_are_refused_with_overloaded_near_the_limit() {
    for profile in PROFILES {
        let budget = MemoryBudget::new(BudgetConfig::with_limit(16 * MIB));
        // Many connections: a fair share of 256 KiB, which b's next flow
        // would take it past (yamux: b already holds the one flow every
        // connection may hold).
        let _idle: Vec<_> = (0..62).map(|_| budget.share()).collect();
        let mut p = pair(profile, &budget);
        p.settle();
        if profile == Profile::Yamux {
            let first = p.a.conn.open_flow().unwrap();
            p.a.conn.flow(first).write(b"first").unwrap();
            p.settle();
            assert_eq!(opened(&p.take_events_b()).len(), 1);
        }
        let mut other = budget.share();
        other.set(15 * MIB); // 90 %+
        let id = p.a.conn.open_flow().unwrap();
        p.a.conn.flow(id).write(b"hello").unwrap();
        p.settle();
        assert!(opened(&p.take_events_b()).is_empty(), "{profile:?}");
        assert_eq!(budget.stats().flows_refused, 1);
        assert_eq!(p.b.conn.stats().flows_refused, 1);
        // The opener learns it was refused and why (yamux's RST has no code).
        let mut buf = [0u8; 8];
        let want = match profile {
            Profile::Native => OVERLOADED,
            _ => 0,
        };
        assert_eq!(
            p.a.conn.flow(id).read(&mut buf),
            Err(ReadError::Reset(want))
        );
        let w = p.a.conn.flow(id).write(b"more");
        assert!(
            matches!(
                w,
                Err(WriteError::Stopped(_) | WriteError::Finished | WriteError::UnknownFlow)
            ),
            "{profile:?}: {w:?}"
        );
        // Once the pressure is gone, flows open again.
        other.set(0);
        let id2 = p.a.conn.open_flow().unwrap();
        p.a.conn.flow(id2).write(b"again").unwrap();
        p.settle();
        assert_eq!(opened(&p.take_events_b()).len(), 1, "{profile:?}");
    }
}

#[test]
fn a_connection_within_its_share_still_opens_flows_near_the_limit() {
    // A greedy connection filling the budget must not deny service to the
    // others: only connections over their fair share refuse.
    for profile in PROFILES {
        let budget = MemoryBudget::new(BudgetConfig::with_limit(64 * MIB));
        let mut p = pair(profile, &budget);
        p.settle();
        let mut greedy = budget.share();
        greedy.set(60 * MIB);
        assert_eq!(budget.pressure(), Pressure::Refuse);
        let id = p.a.conn.open_flow().unwrap();
        p.a.conn.flow(id).write(b"hello").unwrap();
        p.settle();
        assert_eq!(opened(&p.take_events_b()).len(), 1, "{profile:?}");
        assert_eq!(budget.stats().flows_refused, 0);
    }
}

#[test]
fn writes_wait_past_the_floor_under_pressure_and_resume() {
    let budget = MemoryBudget::new(BudgetConfig::with_limit(4 * MIB));
    let _idle: Vec<_> = (0..7).map(|_| budget.share()).collect();
    let mut other = budget.share();
    // b is the writer here; a does not read its socket for a while.
    let mut p = pair(Profile::Native, &budget);
    p.settle();
    let id = p.a.conn.open_flow().unwrap();
    p.a.conn.flow(id).write(b"x").unwrap();
    p.settle();
    let rid = opened(&p.take_events_b())[0];
    p.pause_a_reading(true);
    other.set(2 * MIB); // 75 %; b holds more than its eighth
    let data = pattern(3, 0, 512 * KIB);
    let mut pos = 0;
    pump_write(&mut p.b.conn, rid, &data, &mut pos);
    assert_eq!(pos, 64 * KIB, "only the floor is taken");
    assert_eq!(
        p.b.conn.flow(rid).write(b"y"),
        Err(WriteError::Blocked),
        "past the floor"
    );
    other.set(0);
    p.pause_a_reading(false);
    let mut got = Vec::new();
    for _ in 0..100 {
        p.settle();
        let ev = p.take_events_b();
        if ev.contains(&Event::Writable(rid)) || pos < data.len() {
            pump_write(&mut p.b.conn, rid, &data, &mut pos);
        }
        pump_read(&mut p.a.conn, id, &mut got).unwrap();
    }
    assert_eq!(got, data);
}

#[test]
fn many_connections_stay_within_the_budget_plus_their_floors() {
    // 40 connections whose peers fill every window and never get read:
    // the total stays within the limit plus each connection's protocol
    // floor (what a peer may send before any credit frame).
    let limit = 16 * MIB;
    let budget = MemoryBudget::new(BudgetConfig::with_limit(limit));
    for profile in PROFILES {
        let mut pairs: Vec<Pair> = (0..40).map(|_| pair(profile, &budget)).collect();
        for p in &mut pairs {
            p.settle();
            for _ in 0..4 {
                stuff(p, 300 * KIB);
            }
            p.advance(Duration::from_millis(50));
        }
        let floors = 40 * MIB + 40 * 4 * 256 * KIB;
        let s = budget.stats();
        assert!(s.peak <= limit + floors, "{profile:?}: {s:?}");
        assert!(s.flows_refused > 0, "{profile:?}: pressure refused flows");
        drop(pairs);
        assert_eq!(budget.stats().used, 0);
    }
}
