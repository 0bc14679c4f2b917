//! Replaying one core's recorded inputs into a fresh core gives
//! byte-identical outputs; a different core or a tampered input is caught.

mod sim_support;

use proto_core::mux::Connection;
use proto_core::sim::trace::{parse, tag, MAGIC};
use proto_core::sim::{driver, world, Role, Swarm};
use proto_core::time::{Duration, Instant};
use sim_support::{mux, mux_config, side};

fn recorded(seed: u64) -> Vec<u8> {
    let o = world::run(&Swarm::from_seed(seed), mux, true);
    assert!(o.violations.is_empty(), "{:?}", o.violations);
    o.trace.unwrap()
}

#[test]
fn every_core_replays_byte_for_byte() {
    for seed in [3, 8] {
        let bytes = recorded(seed);
        let recs = parse(&bytes).unwrap();
        let cores = driver::cores_in(&recs);
        assert!(cores.len() >= 4, "seed {seed}: {} cores", cores.len());
        let mut inputs = 0;
        for (id, _, _) in &cores {
            let rep = driver::replay(&recs, *id, mux).unwrap();
            assert_eq!(rep.mismatch, None, "seed {seed} core {id}");
            inputs += rep.inputs;
        }
        assert!(inputs > 100, "seed {seed}: only {inputs} inputs");
    }
}

#[test]
fn a_differently_configured_core_does_not_match() {
    let bytes = recorded(3);
    let recs = parse(&bytes).unwrap();
    let other = |role: Role, now: Instant| {
        let mut cfg = mux_config();
        cfg.keepalive_interval = Some(Duration::from_millis(1500));
        Connection::new(cfg, side(role), now).unwrap()
    };
    let mismatches = driver::cores_in(&recs)
        .iter()
        .filter(|(id, _, _)| {
            driver::replay(&recs, *id, other)
                .unwrap()
                .mismatch
                .is_some()
        })
        .count();
    assert!(mismatches > 0, "replay must notice a different core");
}

#[test]
fn a_tampered_input_is_caught() {
    let mut bytes = recorded(3);
    // Find the first CORE_INPUT record with a payload and flip a byte of it.
    let recs = parse(&bytes).unwrap();
    let target = recs
        .iter()
        .find(|r| r.tag == tag::CORE_INPUT && r.payload.len() > 8)
        .map(|r| {
            (
                r.field(0),
                r.payload.as_ptr() as usize - bytes.as_ptr() as usize,
            )
        })
        .unwrap();
    drop(recs);
    let (core, off) = target;
    bytes[off] ^= 0xff; // the first preface byte
    let recs = parse(&bytes).unwrap();
    let rep = driver::replay(&recs, core as u32, mux).unwrap();
    assert!(rep.mismatch.is_some(), "core {core}: {rep:?}");
    assert!(parse(&bytes[MAGIC.len() - 1..]).is_err());
}
