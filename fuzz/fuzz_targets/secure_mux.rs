//! The mux reached through valid records: an honest handshake, then the
//! fuzzer's bytes as mux plaintext, sealed record by record by the honest
//! initiator's record layer and delivered to the responder in any chunking.
//!
//! Input layout: byte 0 picks the chunk size (low 4 bits) and the record
//! size limit (high 4 bits); the rest is segments `len: u8 | bytes`, each
//! one sealed as one record. The input's length modulo 3 picks the suite
//! (automatic, AES-256-GCM only, ChaCha20-Poly1305 only).
//!
//! Checked: no panic; the record layer hands out exactly the sealed
//! plaintexts, in order, each once, whatever the chunking; no record error
//! on an honest stream; the mux stays within its limits (its own
//! invariants) and drains terminate.
#![no_main]

#[path = "secure_common.rs"]
mod secure_common;

use libfuzzer_sys::fuzz_target;
use proto_core::mux::{self, Side};
use proto_core::secure::*;
use proto_core::time::{Duration, Instant};
use secure_common::*;

const CHUNKS: [usize; 16] = [
    1,
    2,
    3,
    5,
    17,
    18,
    19,
    64,
    100,
    256,
    1000,
    4096,
    16384,
    65537,
    200_000,
    usize::MAX,
];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut body)) = data.split_first() else {
        return;
    };
    let chunk = CHUNKS[usize::from(flags & 15)];
    let mut config = Config::default();
    config.suites = suites_for(data.len());
    config.record.rekey_after = u64::from(flags >> 4);
    let now = Instant::ZERO;
    let mut c = initiator(true, config.clone());
    let mut s = responder(false, config);
    let mut wire = Vec::new();
    for _ in 0..3 {
        drain(&mut c, &mut wire);
        s.handle_input(now, &wire).unwrap();
        wire.clear();
        drain(&mut s, &mut wire);
        c.handle_input(now, &wire).unwrap();
        wire.clear();
    }
    let mut tx = c.finish().expect("honest initiator").records;
    let est = s.finish().expect("honest responder");
    assert!(est.leftover.is_empty());
    let mut rx = est.records;
    let mut conn = mux::Connection::new(mux::Config::default(), Side::Acceptor, now).unwrap();

    // Seal each segment.
    let mut sealed = Vec::new();
    let mut plain = Vec::new();
    while let Some((&len, rest)) = body.split_first() {
        let n = usize::from(len).min(rest.len());
        tx.seal(&rest[..n], &mut sealed).expect("seal");
        plain.push(rest[..n].to_vec());
        body = &rest[n..];
    }

    // Open in chunks; the mux gets the plaintext.
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut t = now;
    let mut out = Vec::new();
    for piece in sealed.chunks(chunk) {
        t += Duration::from_millis(1);
        rx.open(piece, |p| {
            got.push(p.to_vec());
            let _ = conn.handle_input_bytes(t, p);
            true
        })
        .expect("honest records open");
        let mut polls = 0;
        while rx
            .transmit_with(|p| conn.poll_transmit(p).is_some(), &mut out)
            .is_some()
        {
            polls += 1;
            assert!(polls < MAX_POLLS);
        }
        while conn.poll_event().is_some() {
            polls += 1;
            assert!(polls < MAX_POLLS);
        }
        out.clear();
    }
    assert_eq!(got, plain, "records delivered exactly once, in order");
    assert_eq!(rx.records_received(), plain.len() as u64);
});
