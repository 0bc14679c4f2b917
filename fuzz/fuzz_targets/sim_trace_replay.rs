//! Arbitrary bytes as a simulator trace file, down every path the `sim`
//! example's `--dump` and `--replay` take: `trace::parse`, the recorded mux
//! config (`recorded_mux_config`), the cores (`try_cores_in`, `cores_in`),
//! and `driver::replay` of every core into a fresh mux (the recording's
//! config if it names one, else the example's).
//!
//! Checks: no panic, overflow or unbounded work; every error displays;
//! `cores_in` is `try_cores_in`'s list when the trace checks out; a core
//! of a trace that checks out replays to a report (maybe a mismatch), never
//! a `ReplayError`; a report never counts more records than the trace has.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::mux::{config_text, sim_core, Config, Connection, Side};
use proto_core::sim::trace::{self, tag, MAGIC};
use proto_core::sim::{driver, Role};
use proto_core::time::{Duration, Instant};

/// The example's mux (`examples/sim.rs`), which the simulator's traces
/// were recorded with.
fn example_config() -> Config {
    let mut cfg = Config::default();
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.channel_timeout = Some(Duration::from_secs(4));
    cfg.drain_timeout = Duration::from_secs(10);
    cfg
}

fn side(role: Role) -> Side {
    match role {
        Role::Dialer => Side::Dialer,
        Role::Acceptor => Side::Acceptor,
    }
}

fn check(bytes: &[u8]) {
    let records = match trace::parse(bytes) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    // `--dump`'s formatting.
    for r in &records {
        let _ = trace::tag_name(r.tag);
        let _ = (r.time as f64 / 1e9, r.field(0), r.field(usize::MAX));
        if r.tag == tag::NOTE {
            let _ = String::from_utf8_lossy(r.payload);
        }
    }
    let cfg = match sim_core::recorded_mux_config(&records) {
        None => example_config(),
        Some(Ok(cfg)) => {
            // What the CLI prints, and it decodes to the same config.
            let text = config_text::encode_mux_config(&cfg);
            let back = config_text::decode_mux_config(&text).expect("an encoded config decodes");
            assert_eq!(config_text::encode_mux_config(&back), text);
            cfg
        }
        Some(Err(e)) => {
            assert!(!e.to_string().is_empty());
            example_config()
        }
    };
    let make = |role: Role, now: Instant| {
        Connection::new(cfg.clone(), side(role), now).expect("a validated config")
    };
    let checked = driver::try_cores_in(&records);
    let cores = driver::cores_in(&records);
    match &checked {
        Ok(c) => assert_eq!(c, &cores, "cores_in disagrees with try_cores_in"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    for &(id, _, role) in &cores {
        match driver::replay(&records, id, make) {
            Ok(rep) => {
                assert_eq!((rep.core, rep.role), (id, role));
                assert!(rep.records as usize <= records.len());
                if let Some((at, what)) = &rep.mismatch {
                    assert!(*at < rep.records && !what.is_empty());
                }
            }
            Err(e) => {
                assert!(
                    checked.is_err(),
                    "core {id}: {e}, yet the trace checked out"
                );
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.starts_with(MAGIC) {
        check(data);
    } else {
        // Most mutations of the first bytes only reach "bad magic": give
        // the rest a header too.
        check(data);
        let mut with = MAGIC.to_vec();
        with.extend_from_slice(data);
        check(&with);
    }
});
