//! Blessings: the version 2 encoding with explicit validity, version 1
//! lists from older peers, not-before and clock skew, an unknown clock,
//! and the order of the checks.

mod secure_common;

use proto_core::secure::*;
use proto_core::wire::Reader;
use secure_common::{handshake, rejection, Fixture};
use std::sync::Arc;

const NOW: u64 = 1_700_000_000;
const SKEW: u64 = 300;

fn acme() -> (Blesser, TrustedRoots) {
    let acme = Blesser::root("acme", [1; 32]).unwrap();
    let mut roots = TrustedRoots::new();
    let (n, k) = acme.trusted_root();
    roots.add(&n, k);
    (acme, roots)
}

fn key(secret: u8) -> PublicKey {
    Identity::from_secret([secret; 32]).public_key()
}

fn encode(list: &[Blessing]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_blessings(list, &mut out);
    out
}

fn decode(bytes: &[u8]) -> Result<Vec<Blessing>, proto_core::wire::DecodeError> {
    let mut r = Reader::new(bytes);
    let list = decode_blessings(&mut r, &BlessingLimits::default())?;
    assert_eq!(r.remaining(), 0);
    Ok(list)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn no_skew() -> BlessingLimits {
    BlessingLimits {
        clock_skew_secs: 0,
        ..BlessingLimits::default()
    }
}

/// Written by the version 1 encoder (before encoding version 2) for
/// `acme` = root secret [1; 32] and the static key of secret [3; 32]:
/// `acme:ops:server` (ops: delegate secret [8; 32], expiry 1_700_000_100;
/// server: expiry 0, meaning none) and `acme:phone` (expiry 1_700_000_000).
const V1_LIST: &str = "01020461636d658a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c02036f7073001398f62c6d1a457c51ba6a4b5f3dbd2f69fca93216218dc8997e416bd17d93ca000000006553f16474d9dc154c516d377b53349cd050d943b94e01442300fcc36f6a8198ba3546fc97d729e9f05824afdc425d82e8ba3d8112a1faaa421ea37b7ad5de8451a1950706736572766572015dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef2200000000000000005ea8eac57cca8cfe07cf55380b973af034bf5458998733704c3bc5ebf33b6377171975da7c0e493e24a08d42b2afad0a095645dd09fb28716289ce994c411f070461636d658a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c010570686f6e65015dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22000000006553f100cf55bf48c9ac89ed01ed3082fce30a953ea0f4dfd4b57e2b062930da9db15f4bb3ef6e805f359042798138313abf7640c7dc6ee1fd9c41543362eb40ae0e4207";

#[test]
fn a_version_1_list_decodes_with_its_old_meaning_and_verifies() {
    let (_, roots) = acme();
    let list = decode(&hex(V1_LIST)).unwrap();
    let [server, phone] = &list[..] else {
        panic!("two blessings expected, got {list:?}");
    };
    assert_eq!(server.name(), "acme:ops:server");
    assert_eq!(phone.name(), "acme:phone");
    for c in server.certificates.iter().chain(&phone.certificates) {
        assert_eq!(c.format, CertificateFormat::V1);
        assert_eq!(c.not_before, None);
    }
    assert_eq!(server.certificates[0].expiry, Some(1_700_000_100));
    // Expiry 0 meant "none" in version 1.
    assert_eq!(server.certificates[1].expiry, None);
    assert_eq!(phone.certificates[0].expiry, Some(NOW));

    let id = key(3);
    let limits = no_skew();
    assert_eq!(
        roots.verify_with(server, id, NOW, &limits),
        Ok("acme:ops:server".into())
    );
    assert_eq!(
        roots.verify_with(phone, id, NOW - 1, &limits),
        Ok("acme:phone".into())
    );
    assert_eq!(
        roots.verify_with(phone, id, NOW, &limits),
        Err(BlessingError::Expired)
    );
    // Tampering still shows: the v1 message binds the expiry.
    let mut longer = phone.clone();
    longer.certificates[0].expiry = Some(NOW + 1000);
    assert_eq!(
        roots.verify(&longer, id, NOW),
        Err(BlessingError::BadSignature)
    );
    // A v1 signature is no v2 signature.
    let mut relabelled = phone.clone();
    relabelled.certificates[0].format = CertificateFormat::V2;
    assert_eq!(
        roots.verify(&relabelled, id, NOW),
        Err(BlessingError::BadSignature)
    );
}

#[test]
fn a_version_1_blessing_is_presented_again_in_version_1() {
    let (_, roots) = acme();
    let list = decode(&hex(V1_LIST)).unwrap();
    // All version 1 certificates: the version 1 layout, byte for byte, so
    // peers of the previous release still read it.
    let again = encode(&list);
    assert_eq!(again, hex(V1_LIST));
    assert_eq!(ENCODING_VERSION, 2);
    assert_eq!(decode(&again).unwrap(), list);
    // Next to a version 2 certificate, the version 2 layout carries it.
    let (acme, _) = acme();
    let v2 = acme.bless("zero", key(3), Some(0)).unwrap();
    let mixed = [list[0].clone(), v2];
    let enc = encode(&mixed);
    assert_eq!(enc[0], ENCODING_VERSION);
    assert_eq!(decode(&enc).unwrap(), mixed);
    assert_eq!(
        roots.verify(&list[0], key(3), NOW),
        Ok("acme:ops:server".into())
    );
}

#[test]
fn a_version_1_certificate_cannot_claim_what_its_signature_did_not_cover() {
    let (_, roots) = acme();
    let list = decode(&hex(V1_LIST)).unwrap();
    let server = &list[0];
    // A not-before, or an expiry of 0 (which v1 signed as "none").
    let mut with_start = server.clone();
    with_start.certificates[1].not_before = Some(1);
    let mut expiry_zero = server.clone();
    expiry_zero.certificates[1].expiry = Some(0);
    for b in [with_start, expiry_zero] {
        assert_eq!(roots.verify(&b, key(3), NOW), Err(BlessingError::Malformed));
        // The encoding carries them, so the verifier (not the decoder)
        // says no, for this blessing only.
        assert_eq!(decode(&encode(std::slice::from_ref(&b))).unwrap(), [b]);
    }
}

#[test]
fn an_expiry_of_zero_is_expired_and_none_never_expires() {
    let (acme, roots) = acme();
    let id = key(3);
    let zero = acme.bless("zero", id, Some(0)).unwrap();
    let never = acme.bless("never", id, None).unwrap();
    let list = [zero.clone(), never.clone()];
    let decoded = decode(&encode(&list)).unwrap();
    assert_eq!(decoded, list);
    assert_eq!(decoded[0].certificates[0].expiry, Some(0));
    assert_eq!(decoded[1].certificates[0].expiry, None);
    assert_eq!(decoded[0].certificates[0].format, CertificateFormat::V2);

    assert_eq!(roots.verify(&zero, id, NOW), Err(BlessingError::Expired));
    assert_eq!(roots.verify(&zero, id, SKEW), Err(BlessingError::Expired));
    assert_eq!(roots.verify(&never, id, NOW), Ok("acme:never".into()));
    assert_eq!(roots.verify(&never, id, u64::MAX), Ok("acme:never".into()));
    // Presence is signed: neither can become the other.
    let mut zero_as_never = zero;
    zero_as_never.certificates[0].expiry = None;
    assert_eq!(
        roots.verify(&zero_as_never, id, NOW),
        Err(BlessingError::BadSignature)
    );
    // (`never` is signed as version 1, which cannot say "expiry 0": the
    // claim itself is refused.)
    assert_eq!(never.certificates[0].format, CertificateFormat::V1);
    let mut never_as_zero = never;
    never_as_zero.certificates[0].expiry = Some(0);
    // (A skew wide enough that expiry 0 is not yet past, to reach the signature.)
    let wide = BlessingLimits {
        clock_skew_secs: u64::MAX,
        ..BlessingLimits::default()
    };
    assert_eq!(
        roots.verify_with(&never_as_zero, id, NOW, &wide),
        Err(BlessingError::Malformed)
    );
    // A version 2 "never" cannot become "expiry 0" either.
    let never2 = acme
        .bless_with(
            "never2",
            id,
            Validity {
                not_before: Some(1),
                expiry: None,
            },
        )
        .unwrap();
    let mut never2_as_zero = never2;
    never2_as_zero.certificates[0].expiry = Some(0);
    assert_eq!(
        roots.verify_with(&never2_as_zero, id, NOW, &wide),
        Err(BlessingError::BadSignature)
    );
}

#[test]
fn not_before_and_expiry_hold_with_the_skew_allowance() {
    let (acme, roots) = acme();
    let id = key(3);
    let (start, end) = (NOW + 1000, NOW + 2000);
    let b = acme
        .bless_with(
            "window",
            id,
            Validity {
                not_before: Some(start),
                expiry: Some(end),
            },
        )
        .unwrap();
    assert_eq!(b.not_before(), Some(start));
    assert_eq!(b.expiry(), Some(end));
    let at = |now| roots.verify(&b, id, now);
    // Default skew: 300 s either side.
    assert_eq!(BlessingLimits::default().clock_skew_secs, SKEW);
    assert_eq!(at(start - SKEW - 1), Err(BlessingError::NotYetValid));
    assert_eq!(at(start - SKEW), Ok("acme:window".into()));
    assert_eq!(at(end + SKEW - 1), Ok("acme:window".into()));
    assert_eq!(at(end + SKEW), Err(BlessingError::Expired));
    // Without skew the window is exact.
    let exact = |now| roots.verify_with(&b, id, now, &no_skew());
    assert_eq!(exact(start - 1), Err(BlessingError::NotYetValid));
    assert_eq!(exact(start), Ok("acme:window".into()));
    assert_eq!(exact(end - 1), Ok("acme:window".into()));
    assert_eq!(exact(end), Err(BlessingError::Expired));
    // It round-trips, and the not-before is signed.
    assert_eq!(
        decode(&encode(std::slice::from_ref(&b))).unwrap(),
        std::slice::from_ref(&b)
    );
    let mut earlier = b.clone();
    earlier.certificates[0].not_before = Some(NOW);
    assert_eq!(
        roots.verify(&earlier, id, NOW + 1500),
        Err(BlessingError::BadSignature)
    );
    let mut open = b;
    open.certificates[0].not_before = None;
    assert_eq!(
        roots.verify(&open, id, NOW + 1500),
        Err(BlessingError::BadSignature)
    );
}

#[test]
fn a_delegate_not_yet_valid_holds_back_the_whole_chain() {
    let (acme, roots) = acme();
    let id = key(3);
    let ops = acme
        .delegate_with(
            "ops",
            [8; 32],
            Validity {
                not_before: Some(NOW + 3600),
                expiry: None,
            },
        )
        .unwrap();
    let b = ops.bless("server", id, None).unwrap();
    assert_eq!(roots.verify(&b, id, NOW), Err(BlessingError::NotYetValid));
    assert_eq!(
        roots.verify(&b, id, NOW + 3600),
        Ok("acme:ops:server".into())
    );
}

#[test]
fn the_skew_saturates_at_both_ends_of_time() {
    let (acme, roots) = acme();
    let id = key(3);
    let b = acme
        .bless_with(
            "all",
            id,
            Validity {
                not_before: Some(10),
                expiry: Some(u64::MAX),
            },
        )
        .unwrap();
    assert_eq!(roots.verify(&b, id, 1), Ok("acme:all".into()));
    assert_eq!(roots.verify(&b, id, u64::MAX - 1), Ok("acme:all".into()));
    let huge = BlessingLimits {
        clock_skew_secs: u64::MAX,
        ..BlessingLimits::default()
    };
    // No overflow: the sums stop at the ends of u64.
    assert_eq!(roots.verify_with(&b, id, 1, &huge), Ok("acme:all".into()));
    assert_eq!(
        roots.verify_with(&b, id, u64::MAX - 1, &huge),
        Ok("acme:all".into())
    );
    assert_eq!(
        roots.verify_with(&b, id, u64::MAX, &huge),
        Err(BlessingError::Expired)
    );
}

#[test]
fn an_unknown_clock_fails_closed_only_for_timed_chains() {
    let (acme, roots) = acme();
    let id = key(3);
    let timed = [
        Validity {
            not_before: None,
            expiry: Some(NOW),
        },
        Validity {
            not_before: Some(NOW),
            expiry: None,
        },
        // Even one that would be expired at any known time.
        Validity {
            not_before: None,
            expiry: Some(0),
        },
    ];
    for v in timed {
        let b = acme.bless_with("t", id, v).unwrap();
        assert_eq!(roots.verify(&b, id, 0), Err(BlessingError::ClockUnknown));
        assert_eq!(
            roots.verify_with(&b, id, 0, &no_skew()),
            Err(BlessingError::ClockUnknown)
        );
    }
    // A timed delegate above an untimed leaf counts too.
    let ops = acme.delegate("ops", [8; 32], Some(NOW)).unwrap();
    let b = ops.bless("server", id, None).unwrap();
    assert_eq!(roots.verify(&b, id, 0), Err(BlessingError::ClockUnknown));
    // A chain with neither time does not need the clock.
    let untimed = acme.bless("u", id, None).unwrap();
    assert_eq!(roots.verify(&untimed, id, 0), Ok("acme:u".into()));
}

#[test]
fn free_checks_come_before_signatures() {
    let (acme, roots) = acme();
    let id = key(3);
    let forged = |v: Validity| {
        let mut b = acme.bless_with("f", id, v).unwrap();
        b.certificates[0].signature[10] ^= 0x40;
        b
    };
    let untimed = forged(Validity::default());
    assert_eq!(
        roots.verify(&untimed, id, NOW),
        Err(BlessingError::BadSignature)
    );
    assert_eq!(
        roots.verify(&untimed, key(4), NOW),
        Err(BlessingError::KeyMismatch)
    );
    let expired = forged(Validity {
        not_before: None,
        expiry: Some(NOW - SKEW),
    });
    assert_eq!(roots.verify(&expired, id, NOW), Err(BlessingError::Expired));
    let early = forged(Validity {
        not_before: Some(NOW + SKEW + 1),
        expiry: None,
    });
    assert_eq!(
        roots.verify(&early, id, NOW),
        Err(BlessingError::NotYetValid)
    );
    assert_eq!(
        roots.verify(&early, id, 0),
        Err(BlessingError::ClockUnknown)
    );
    // The leaf key is checked before the times.
    assert_eq!(
        roots.verify(&expired, key(4), NOW),
        Err(BlessingError::KeyMismatch)
    );
    // And the root before anything.
    assert_eq!(
        TrustedRoots::new().verify(&expired, key(4), NOW),
        Err(BlessingError::UnknownRoot)
    );
}

#[test]
fn the_decoder_refuses_unknown_flags_and_versions() {
    let (acme, _) = acme();
    let b = acme
        .bless_with(
            "x",
            key(3),
            Validity {
                not_before: Some(1),
                expiry: Some(NOW),
            },
        )
        .unwrap();
    let enc = encode(&[b]);
    // version, count, root name (1 + 4), root key, chain length,
    // name (1 + 1), kind, key: then the flags.
    let flags_at = 2 + 5 + 32 + 1 + 2 + 1 + 32;
    assert_eq!(enc[flags_at], 3, "not-before and expiry");
    for bit in 3..8 {
        let mut bad = enc.clone();
        bad[flags_at] |= 1 << bit;
        assert!(decode(&bad).is_err(), "flag bit {bit}");
    }
    for version in [0, 3, 255] {
        let mut bad = enc.clone();
        bad[0] = version;
        assert!(decode(&bad).is_err(), "version {version}");
    }
    // Every truncation fails cleanly.
    for cut in 0..enc.len() {
        assert!(
            decode_blessings(&mut Reader::new(&enc[..cut]), &BlessingLimits::default()).is_err()
        );
    }
}

#[test]
fn the_decoder_never_panics_on_mutated_input() {
    let (acme, _) = acme();
    let ops = acme
        .delegate_with(
            "ops",
            [8; 32],
            Validity {
                not_before: Some(1),
                expiry: Some(NOW),
            },
        )
        .unwrap();
    let list = [
        ops.bless("a", key(3), None).unwrap(),
        acme.bless("b", key(3), Some(0)).unwrap(),
    ];
    let seeds = [encode(&list), hex(V1_LIST)];
    // A fixed xorshift stream: the same mutations every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for seed in &seeds {
        for _ in 0..20_000 {
            let mut m = seed.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % m.len() as u64) as usize;
                m[i] = next() as u8;
            }
            let cut = (next() % (m.len() as u64 + 1)) as usize;
            let mut r = Reader::new(&m[..cut]);
            if let Ok(list) = decode_blessings(&mut r, &BlessingLimits::default()) {
                assert!(list.len() <= 8 && list.iter().all(|b| b.certificates.len() <= 8));
            }
        }
    }
}

#[test]
fn a_peer_repeating_a_blessing_is_granted_its_name_once() {
    let f = Fixture::new();
    let mut server = Identity::from_secret([11; 32]);
    let b = f.acme.bless("server", server.public_key(), None).unwrap();
    for _ in 0..8 {
        server.add_blessing(b.clone()).unwrap();
    }
    let run = handshake(
        &f,
        f.params(f.identity(10, "alice"), Arc::new(AllowAny)),
        f.params(server, Arc::new(AllowAny)),
        Config::default(),
    );
    let peer = run.initiator.unwrap().peer;
    assert_eq!(peer.blessings.names, ["acme:server"]);
    assert_eq!(peer.granted, ["acme:server"]);
}

#[test]
fn a_handshake_without_a_wall_clock_refuses_timed_blessings_only() {
    let f = Fixture::new();
    for (expiry, expect) in [
        (Some(NOW + 3600), Err(BlessingError::ClockUnknown)),
        (None, Ok(())),
    ] {
        let mut server = Identity::from_secret([11; 32]);
        server
            .add_blessing(f.acme.bless("server", server.public_key(), expiry).unwrap())
            .unwrap();
        let mut client = f.params(
            f.identity(10, "alice"),
            Arc::new(AllowNames::new(["acme:server"])),
        );
        client.wall_clock_secs = 0;
        let run = handshake(
            &f,
            client,
            f.params(server, Arc::new(AllowAny)),
            Config::default(),
        );
        match expect {
            Ok(()) => assert_eq!(run.initiator.unwrap().peer.granted, ["acme:server"]),
            Err(error) => assert_eq!(
                rejection(&run.initiator),
                [
                    RejectReason::InvalidBlessing {
                        name: "acme:server".into(),
                        error
                    },
                    RejectReason::NoValidBlessing
                ]
            ),
        }
    }
}
