//! Hostile input to the acceptor's side of the secure layer: handshake
//! bytes, then records, then (through valid null-cipher records) the mux.
//!
//! Input layout:
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | bit0: an honest initiator does the handshake first (the body is then records); bit1: the responder only admits `acme:*` names; bit2: the honest initiator is blessed; bit3: small `max_handshake_message` (64, without bit0); bits4-7: chunk size |
//! | 1.. | the peer's bytes |
//!
//! The input's length modulo 3 picks both sides' suites: automatic,
//! AES-256-GCM only, ChaCha20-Poly1305 only.
//!
//! Checked: no panic, drains terminate; a failed handshake sends nothing
//! more and fails every later input the same way; a completed handshake
//! finishes; after a record fails, the mux is closed, every later input
//! fails, and nothing more is delivered; output is whole records.
#![no_main]

#[path = "secure_common.rs"]
mod secure_common;

use libfuzzer_sys::fuzz_target;
use proto_core::mux::{self, Side};
use proto_core::secure::*;
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use secure_common::*;

const CHUNKS: [usize; 16] = [
    1,
    2,
    3,
    7,
    16,
    33,
    34,
    64,
    100,
    255,
    1000,
    4096,
    16384,
    65537,
    200_000,
    usize::MAX,
];

/// Checks `out` is a sequence of whole records.
fn whole_records(mut out: &[u8]) {
    while !out.is_empty() {
        assert!(out.len() >= 2, "half a length prefix");
        let len = usize::from(u16::from_be_bytes([out[0], out[1]]));
        assert!(len >= TAG_LEN && out.len() >= 2 + len, "truncated record");
        out = &out[2 + len..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let chunk = CHUNKS[usize::from(flags >> 4)];
    let mut config = Config::default();
    config.suites = suites_for(data.len());
    // (Not with the honest handshake: its msg2 and msg3 exceed 64 bytes.)
    if flags & 9 == 8 {
        config.max_handshake_message = 64;
    }
    let mut s = responder(flags & 2 != 0, config.clone());
    let now = Instant::ZERO;

    if flags & 1 != 0 {
        let mut c = initiator(flags & 4 != 0, config);
        let mut wire = Vec::new();
        drain(&mut c, &mut wire);
        s.handle_input(now, &wire).expect("honest msg1");
        wire.clear();
        drain(&mut s, &mut wire);
        c.handle_input(now, &wire).expect("honest msg2");
        wire.clear();
        drain(&mut c, &mut wire);
        let r = s.handle_input(now, &wire);
        assert_eq!(r.is_err(), flags & 6 == 2, "honest handshake: {r:?}");
    }

    // Handshake phase: feed until complete, failed, or out of input.
    let mut rest = body;
    let mut failed = None;
    while !s.is_complete() && failed.is_none() && !rest.is_empty() {
        let n = chunk.min(rest.len());
        if let Err(e) = s.handle_input(now, &rest[..n]) {
            failed = Some(e);
        }
        rest = &rest[n..];
        let mut out = Vec::new();
        drain(&mut s, &mut out);
        if failed.is_some() {
            assert!(out.is_empty(), "output after a failure");
        }
    }
    while let Some(ev) = s.poll_event() {
        if let HandshakeEvent::Failed(e) = ev {
            failed.get_or_insert(e);
        }
    }
    if let Some(e) = failed {
        assert_eq!(s.handle_input(now, b"more"), Err(e.clone()));
        let mut out = Vec::new();
        assert!(s.poll_transmit(&mut out).is_none());
        assert_eq!(s.finish().unwrap_err(), e);
        return;
    }
    if !s.is_complete() {
        s.handle_timeout(now + Duration::from_secs(3600));
        assert_eq!(
            s.poll_event(),
            Some(HandshakeEvent::Failed(HandshakeError::Timeout))
        );
        return;
    }

    // Records phase: the rest of the input, through the record layer, into the mux.
    let est = s.finish().expect("complete handshake finishes");
    let conn = mux::Connection::new(mux::Config::default(), Side::Acceptor, now).unwrap();
    let (mut sec, first) = Secured::established(est, conn, now);
    let mut broken = first.is_err();
    let mut out = Vec::new();
    let mut t = now;
    for piece in rest.chunks(chunk) {
        t += Duration::from_millis(1);
        let was_broken = sec.records().and_then(|r| r.input_error()).is_some();
        let r = sec.handle_input(t, bytes::Bytes::copy_from_slice(piece));
        if was_broken {
            assert!(
                matches!(r, Err(InputError::Record(_))),
                "input after a bad record: {r:?}"
            );
        }
        if let Err(InputError::Record(e)) = r {
            assert_eq!(sec.records().and_then(|r| r.input_error()), Some(e));
            assert!(sec.inner().is_closed(), "bad record left the mux open");
            broken = true;
        }
        let mut polls = 0;
        while sec.poll_transmit(&mut out).is_some() {
            polls += 1;
            assert!(polls < MAX_POLLS);
        }
        while sec.inner_mut().poll_event().is_some() {
            polls += 1;
            assert!(polls < MAX_POLLS);
        }
        let ids: Vec<_> = sec.inner_mut().flow_ids().collect();
        for id in ids {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sec.inner_mut().flow(id).read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        }
    }
    if broken {
        assert!(sec.inner().is_closed());
    }
    whole_records(&out);
});
