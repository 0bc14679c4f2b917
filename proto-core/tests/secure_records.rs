//! The record layer: sealing, opening, tampering, replay, rekeying, and
//! the mux running over it through a faulty simulated network, under each
//! cipher suite (one module per suite, the same tests).

mod secure_common;

use proto_core::mux::{self, CloseReason, Event, Side};
use proto_core::secure::*;
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use secure_common::*;
use std::collections::VecDeque;
use std::sync::Arc;

/// The tests below, under `$suite`.
macro_rules! record_tests {
    ($suite:expr) => {
        use super::*;

        const SUITE: Suite = $suite;

        fn pair_with(mut config: Config) -> (Established, Established) {
            config.suites = SuiteList::Only(vec![SUITE]);
            let f = Fixture::new();
            let any: Arc<dyn PeerAuthorizer> = Arc::new(AllowAny);
            let run = handshake(
                &f,
                f.params(f.identity(10, "alice"), any.clone()),
                f.params(f.identity(11, "server"), any),
                config,
            );
            let (c, s) = (run.initiator.unwrap(), run.responder.unwrap());
            assert_eq!((c.records.suite(), s.records.suite()), (SUITE, SUITE));
            (c, s)
        }

        fn pair() -> (Records, Records) {
            let (c, s) = pair_with(Config::default());
            (c.records, s.records)
        }

        /// `n` records with distinct plaintexts, and the wire bytes of each.
        fn sealed(tx: &mut Records, n: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
            let mut plain = Vec::new();
            let mut wire = Vec::new();
            for i in 0..n {
                let p: Vec<u8> = (0..40 + i * 7).map(|j| (i * 31 + j) as u8).collect();
                let mut w = Vec::new();
                tx.seal(&p, &mut w).unwrap();
                plain.push(p);
                wire.push(w);
            }
            (plain, wire)
        }

        fn open_all(
            rx: &mut Records,
            data: &[u8],
            got: &mut Vec<Vec<u8>>,
        ) -> Result<(), RecordError> {
            rx.open(data, |b| {
                got.push(b.to_vec());
                true
            })
        }

        #[test]
        fn records_round_trip_in_any_chunking() {
            let (mut c, mut s) = pair();
            let (plain, wire) = sealed(&mut c, 20);
            let stream: Vec<u8> = wire.concat();
            for chunk in [1, 2, 3, 50, 1000, stream.len()] {
                let (mut c2, mut s2) = pair();
                let (_, wire2) = sealed(&mut c2, 20);
                assert_eq!(wire2.concat(), stream, "deterministic keys");
                let mut got = Vec::new();
                for piece in stream.chunks(chunk) {
                    open_all(&mut s2, piece, &mut got).unwrap();
                }
                assert_eq!(got, plain, "chunk {chunk}");
            }
            let mut got = Vec::new();
            open_all(&mut s, &stream, &mut got).unwrap();
            assert_eq!(s.records_received(), 20);
            // The other direction has its own keys.
            let mut back = Vec::new();
            s.seal(b"reply", &mut back).unwrap();
            let mut got = Vec::new();
            open_all(&mut c, &back, &mut got).unwrap();
            assert_eq!(got, [b"reply".to_vec()]);
            assert_eq!(
                c.seal(&vec![0; MAX_RECORD_PLAINTEXT + 1], &mut back),
                Err(RecordError::TooLarge)
            );
        }

        #[test]
        fn a_flipped_bit_in_any_record_stops_delivery_at_that_record() {
            let (mut c, _) = pair();
            let (plain, wire) = sealed(&mut c, 6);
            let stream: Vec<u8> = wire.concat();
            let mut start = 0;
            for (i, rec) in wire.iter().enumerate() {
                // Every bit of the length prefix, and bits spread over the body
                // and the tag (a handshake per case: every bit would be slow).
                let bits = (0..16)
                    .chain((16..rec.len() * 8).step_by(37))
                    .chain(rec.len() * 8 - 3..rec.len() * 8);
                for bit in bits {
                    let (_, mut rx) = pair();
                    let mut bad = stream.clone();
                    bad[start + bit / 8] ^= 1 << (bit % 8);
                    let mut got = Vec::new();
                    let mut r = open_all(&mut rx, &bad, &mut got);
                    if r.is_ok() {
                        // A longer length prefix waits for more bytes: they come,
                        // and the record still fails.
                        r = open_all(&mut rx, &[0; MAX_RECORD + 2], &mut got);
                    }
                    assert_eq!(r, Err(RecordError::Authentication), "record {i} bit {bit}");
                    assert_eq!(got, plain[..i], "record {i} bit {bit}: nothing after it");
                    assert_eq!(rx.input_error(), Some(RecordError::Authentication));
                    // Later input, even valid, is refused.
                    assert_eq!(
                        open_all(&mut rx, &stream[start + rec.len()..], &mut got),
                        Err(RecordError::Authentication)
                    );
                    assert_eq!(got.len(), i);
                }
                start += rec.len();
            }
        }

        #[test]
        fn replayed_and_reordered_records_are_rejected() {
            let (mut c, _) = pair();
            let (plain, wire) = sealed(&mut c, 3);

            let (_, mut rx) = pair();
            let mut got = Vec::new();
            open_all(&mut rx, &wire[0], &mut got).unwrap();
            assert_eq!(
                open_all(&mut rx, &wire[0], &mut got),
                Err(RecordError::Authentication)
            );
            assert_eq!(got, plain[..1]);

            let (_, mut rx) = pair();
            let mut got = Vec::new();
            assert_eq!(
                open_all(&mut rx, &wire[1], &mut got),
                Err(RecordError::Authentication)
            );
            assert!(got.is_empty());

            // A dropped record makes the next one fail too.
            let (_, mut rx) = pair();
            let mut got = Vec::new();
            open_all(&mut rx, &wire[0], &mut got).unwrap();
            assert_eq!(
                open_all(&mut rx, &wire[2], &mut got),
                Err(RecordError::Authentication)
            );
            assert_eq!(got, plain[..1]);
        }

        #[test]
        fn both_sides_rekey_in_step() {
            let mut config = Config::default();
            config.record.rekey_after = 3;
            let (c, s) = pair_with(config);
            let (mut c, mut s) = (c.records, s.records);
            let (plain, wire) = sealed(&mut c, 10);
            let mut got = Vec::new();
            open_all(&mut s, &wire.concat(), &mut got).unwrap();
            assert_eq!(got, plain);
            // Same keys without rekeying: the first three records match, the
            // fourth (first under the new key) does not.
            let (mut plain_c, _) = pair();
            let (_, unrekeyed) = sealed(&mut plain_c, 10);
            assert_eq!(wire[..3], unrekeyed[..3]);
            assert_ne!(wire[3], unrekeyed[3]);
            // The peer that was told "rekey after 3" cannot read a stream that did not.
            let (_, s2) = pair_with({
                let mut k = Config::default();
                k.record.rekey_after = 3;
                k
            });
            let mut s2 = s2.records;
            let mut got = Vec::new();
            assert_eq!(
                open_all(&mut s2, &unrekeyed.concat(), &mut got),
                Err(RecordError::Authentication)
            );
            assert_eq!(got.len(), 3);
        }

        // ------------------------------------------------------------ the mux on top

        struct Node {
            sec: Secured<mux::Connection>,
            events: Vec<Event>,
            /// Bytes in flight to this node: (arrival, bytes).
            inbox: VecDeque<(Instant, Vec<u8>)>,
        }

        fn secured_pair(config: Config) -> (Node, Node) {
            let (c, s) = pair_with(config);
            let now = Instant::ZERO;
            let mk = |e: Established, side| {
                let mux = mux::Connection::new(mux::Config::default(), side, now).unwrap();
                let (sec, r) = Secured::established(e, mux, now);
                r.unwrap();
                Node {
                    sec,
                    events: Vec::new(),
                    inbox: VecDeque::new(),
                }
            };
            (mk(c, Side::Dialer), mk(s, Side::Acceptor))
        }

        /// Moves `from`'s output into `to`'s inbox in random pieces with random
        /// delays; returns how many records were sealed.
        fn transmit(from: &mut Node, to: &mut Node, now: Instant, rng: &mut Rng) -> usize {
            let mut out = Vec::new();
            let mut records = 0;
            while from.sec.poll_transmit(&mut out).is_some() {
                records += 1;
            }
            while let Some(ev) = from.sec.inner_mut().poll_event() {
                from.events.push(ev);
            }
            let mut at = to.inbox.back().map_or(now, |(t, _)| *t).max(now);
            let mut rest = &out[..];
            while !rest.is_empty() {
                let n = (1 + rng.next() % 3000).min(rest.len() as u64) as usize;
                at += Duration::from_micros(rng.next() % 500);
                to.inbox.push_back((at, rest[..n].to_vec()));
                rest = &rest[n..];
            }
            records
        }

        fn deliver(node: &mut Node, now: Instant) -> Result<(), InputError> {
            while node.inbox.front().is_some_and(|(t, _)| *t <= now) {
                let (_, bytes) = node.inbox.pop_front().unwrap();
                node.sec.handle_input(now, bytes.into())?;
            }
            while let Some(ev) = node.sec.inner_mut().poll_event() {
                node.events.push(ev);
            }
            Ok(())
        }

        fn pattern(seed: u64, len: usize) -> Vec<u8> {
            (0..len as u64)
                .map(|i| ((i * 7 + seed * 13) ^ (i >> 9)) as u8)
                .collect()
        }

        #[test]
        fn flows_run_over_records_through_a_faulty_network() {
            let seeds: u64 = std::env::var("WEFT_SECURE_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(4);
            for seed in 0..seeds {
                let mut config = Config::default();
                config.record.rekey_after = 1 + seed * 5;
                config.record.max_plaintext =
                    [MAX_RECORD_PLAINTEXT, 1000, 4096, 333][seed as usize % 4];
                let (mut a, mut b) = secured_pair(config);
                let mut rng = Rng::new(seed);
                let sizes = [0usize, 1, 5000, 300_000, 70_000, 12];
                let mut ids = Vec::new();
                for &n in &sizes {
                    let id = a.sec.inner_mut().open_flow().unwrap();
                    ids.push((id, pattern(id.0, n), 0usize, false));
                }
                let mut got: std::collections::BTreeMap<u64, (Vec<u8>, bool)> = Default::default();
                let mut now = Instant::ZERO;
                let (mut frames, mut records) = (0u64, 0usize);
                for _ in 0..20_000 {
                    for (id, data, pos, fin) in ids.iter_mut() {
                        while *pos < data.len() {
                            match a.sec.inner_mut().flow(*id).write(&data[*pos..]) {
                                Ok(n) => *pos += n,
                                Err(_) => break,
                            }
                        }
                        if *pos == data.len() && !*fin {
                            a.sec.inner_mut().flow(*id).finish().unwrap();
                            *fin = true;
                        }
                    }
                    records += transmit(&mut a, &mut b, now, &mut rng);
                    transmit(&mut b, &mut a, now, &mut rng);
                    now += Duration::from_micros(200);
                    deliver(&mut b, now).unwrap();
                    deliver(&mut a, now).unwrap();
                    for ev in b.events.drain(..) {
                        if let Event::FlowOpened { id, .. } = ev {
                            got.insert(id.0, (Vec::new(), false));
                        }
                    }
                    for (id, (buf, done)) in got.iter_mut() {
                        let mut tmp = [0u8; 8192];
                        while !*done {
                            match b.sec.inner_mut().flow(mux::FlowId(*id)).read(&mut tmp) {
                                Ok(0) => *done = true,
                                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    if got.len() == sizes.len() && got.values().all(|(_, d)| *d) {
                        frames = a.sec.inner().stats().frames_sent;
                        break;
                    }
                }
                for (id, data, _, _) in &ids {
                    let (buf, done) = &got[&id.0];
                    assert!(done, "seed {seed}: {id} finished");
                    assert_eq!(buf, data, "seed {seed}: {id} intact");
                }
                assert_eq!(b.sec.records().unwrap().input_error(), None);
                if seed % 4 == 0 {
                    // Full-size records carry several mux frames each.
                    assert!(
                        (records as u64) < frames,
                        "seed {seed}: {records} records for {frames} frames"
                    );
                }
            }
        }

        #[test]
        fn a_tampered_record_closes_the_mux_and_the_peer_hears_why() {
            let (mut a, mut b) = secured_pair(Config::default());
            let now = Instant::ZERO;
            let id = a.sec.inner_mut().open_flow().unwrap();
            a.sec.inner_mut().flow(id).write(b"first").unwrap();
            let mut first = Vec::new();
            while a.sec.poll_transmit(&mut first).is_some() {}
            b.sec.handle_input(now, first.into()).unwrap();
            a.sec.inner_mut().flow(id).write(b"second").unwrap();
            let mut second = Vec::new();
            while a.sec.poll_transmit(&mut second).is_some() {}
            let last = second.len() - 1;
            second[last] ^= 0x80;
            assert_eq!(
                b.sec.handle_input(now, second.into()),
                Err(InputError::Record(RecordError::Authentication))
            );
            while let Some(ev) = b.sec.inner_mut().poll_event() {
                b.events.push(ev);
            }
            assert!(b.events.contains(&Event::Closed(CloseReason::Local {
                code: RECORD_FAILURE
            })));
            let mut buf = [0u8; 64];
            let n = b.sec.inner_mut().flow(id).read(&mut buf).unwrap();
            assert_eq!(
                &buf[..n],
                b"first",
                "data before the bad record stays readable"
            );
            // "second" never arrives: the flow ends with the connection.
            assert_eq!(
                b.sec.inner_mut().flow(id).read(&mut buf),
                Err(mux::ReadError::Closed)
            );
            // B's CLOSE goes out sealed under its intact sending key.
            let mut close = Vec::new();
            while b.sec.poll_transmit(&mut close).is_some() {}
            a.sec.handle_input(now, close.into()).unwrap();
            let mut closed = None;
            while let Some(ev) = a.sec.inner_mut().poll_event() {
                if let Event::Closed(r) = ev {
                    closed = Some(r);
                }
            }
            assert!(
                matches!(
                    closed,
                    Some(CloseReason::Application {
                        code: RECORD_FAILURE,
                        ..
                    })
                ),
                "{closed:?}"
            );
        }
    };
}

mod aes256gcm {
    record_tests!(Suite::AesGcmSha256);
}

mod chacha20poly1305 {
    record_tests!(Suite::ChaChaPolyBlake2s);
}
