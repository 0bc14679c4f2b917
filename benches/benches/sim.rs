//! The simulator's speed target: one simulated hour of 10 hosts exchanging
//! echo streams over the mux with every fault kind on
//! (`Swarm::hour`), hashed trace and all. Target: at most 5 s per run.
//! There is no "real peer" to compare with here: the baseline is the target.

use criterion::{criterion_group, criterion_main, Criterion};
use proto_core::mux::{Config, Connection, Side};
use proto_core::sim::{world, Role, Swarm};
use proto_core::time::{Duration, Instant};
use std::hint::black_box;

fn mux(role: Role, now: Instant) -> Connection {
    let mut cfg = Config::default();
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.channel_timeout = Some(Duration::from_secs(4));
    cfg.drain_timeout = Duration::from_secs(10);
    let side = match role {
        Role::Dialer => Side::Dialer,
        Role::Acceptor => Side::Acceptor,
    };
    Connection::new(cfg, side, now).expect("valid config")
}

fn simulated_hour(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(30));
    g.bench_function("hour_10_hosts_faults", |b| {
        b.iter(|| {
            let o = world::run(&Swarm::hour(black_box(1)), mux, false);
            assert!(o.violations.is_empty(), "{:?}", o.violations);
            black_box(o.hash)
        })
    });
    g.finish();
}

criterion_group!(benches, simulated_hour);
criterion_main!(benches);
