//! Cipher suite negotiation: every pairing of suite lists, downgrade
//! attempts by a man in the middle, offers of unknown suites, and protocol
//! version 1 peers (ChaCha20-Poly1305 only, no offer).

mod secure_common;

use proto_core::secure::*;
use proto_core::time::Instant;
use secure_common::*;
use std::sync::Arc;

const AES: Suite = Suite::AesGcmSha256;
const CHACHA: Suite = Suite::ChaChaPolyBlake2s;

fn any() -> Arc<dyn PeerAuthorizer> {
    Arc::new(AllowAny)
}

fn config(suites: SuiteList, versions: (u16, u16)) -> Config {
    let mut c = Config::default();
    c.suites = suites;
    c.versions = versions;
    c
}

fn start(f: &Fixture, c: Config, s: Config) -> (Handshake, Handshake) {
    let now = Instant::ZERO;
    let hc = Handshake::initiator(
        c,
        f.params(f.identity(10, "c"), any()),
        Seed::new([1; 32]),
        now,
    );
    let hs = Handshake::responder(
        s,
        f.params(f.identity(11, "s"), any()),
        Seed::new([2; 32]),
        now,
    );
    (hc.unwrap(), hs.unwrap())
}

fn drain(h: &mut Handshake) -> Vec<u8> {
    let mut out = Vec::new();
    while h.poll_transmit(&mut out).is_some() {}
    out
}

/// Records flow both ways after a completed run.
fn records_work(run: Run) -> (Established, Established) {
    let (mut c, mut s) = (run.initiator.unwrap(), run.responder.unwrap());
    let one_way = |tx: &mut Established, rx: &mut Established| {
        let mut wire = Vec::new();
        tx.records
            .seal(b"over the chosen suite", &mut wire)
            .unwrap();
        let mut got = Vec::new();
        rx.records
            .open(&wire, |p| {
                got.extend_from_slice(&p);
                true
            })
            .unwrap();
        assert_eq!(got, b"over the chosen suite");
    };
    one_way(&mut c, &mut s);
    one_way(&mut s, &mut c);
    (c, s)
}

#[test]
fn every_pairing_of_suite_lists_picks_the_responders_favourite_offered() {
    let f = Fixture::new();
    let lists = [
        SuiteList::Only(vec![AES]),
        SuiteList::Only(vec![CHACHA]),
        SuiteList::Only(vec![AES, CHACHA]),
        SuiteList::Only(vec![CHACHA, AES]),
    ];
    for cl in &lists {
        for sl in &lists {
            let (c, s) = start(&f, config(cl.clone(), (1, 2)), config(sl.clone(), (1, 2)));
            let run = run(c, s);
            let offered = cl.resolve(true);
            let want = sl.resolve(true).into_iter().find(|x| offered.contains(x));
            match want {
                Some(suite) => {
                    let (c, s) = records_work(run);
                    assert_eq!(
                        (c.peer.suite, s.peer.suite),
                        (suite, suite),
                        "{cl:?} {sl:?}"
                    );
                    assert_eq!(c.records.suite(), suite);
                    assert_eq!((c.peer.version, s.peer.version), (2, 2));
                    assert_eq!(c.peer.handshake_hash, s.peer.handshake_hash);
                }
                None => {
                    let ids: Vec<u8> = offered.iter().map(|s| s.id()).collect();
                    assert_eq!(
                        run.responder.unwrap_err(),
                        HandshakeError::NoCommonSuite { offered: ids },
                        "{cl:?} {sl:?}"
                    );
                    // The responder sent nothing.
                    assert!(run.from_responder.is_empty());
                }
            }
        }
    }
}

#[test]
fn the_handshake_hash_differs_per_connection() {
    let f = Fixture::new();
    let c1 = handshake_seeded(
        &f,
        f.params(f.identity(10, "c"), any()),
        f.params(f.identity(11, "s"), any()),
        Config::default(),
        (1, 2),
    );
    let c2 = handshake_seeded(
        &f,
        f.params(f.identity(10, "c"), any()),
        f.params(f.identity(11, "s"), any()),
        Config::default(),
        (3, 2),
    );
    let (a, b) = (c1.initiator.unwrap(), c2.initiator.unwrap());
    assert_ne!(a.peer.handshake_hash, b.peer.handshake_hash);
}

/// Splits a framed first message into the ephemeral key and the offer.
fn first_message(wire: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let len = usize::from(u16::from_be_bytes([wire[0], wire[1]]));
    assert_eq!(wire.len(), 2 + len);
    (wire[2..34].to_vec(), wire[34..].to_vec())
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn a_man_in_the_middle_who_strips_aes_from_the_offer_is_detected() {
    let f = Fixture::new();
    let both = SuiteList::Only(vec![AES, CHACHA]);
    let (mut c, mut s) = start(
        &f,
        config(both.clone(), (1, 2)),
        config(both.clone(), (1, 2)),
    );
    let (e, offer) = first_message(&drain(&mut c));
    assert_eq!(offer, [1, 2, AES.id(), CHACHA.id()]);
    // Mallory forwards an offer of ChaCha20-Poly1305 alone.
    let mut body = e.clone();
    body.extend_from_slice(&[1, 1, CHACHA.id()]);
    s.handle_input(Instant::ZERO, &frame(&body)).unwrap();
    let msg2 = drain(&mut s);
    assert_eq!(msg2[2], CHACHA.id());
    // The initiator's handshake hash holds the offer it sent: msg2 fails.
    assert_eq!(
        c.handle_input(Instant::ZERO, &msg2),
        Err(HandshakeError::Noise)
    );
    assert!(drain(&mut c).is_empty());

    // Mallory instead strips the whole offer (a "version 1" initiator).
    let (mut c, mut s) = start(
        &f,
        config(both.clone(), (1, 2)),
        config(both.clone(), (1, 2)),
    );
    let (e, _) = first_message(&drain(&mut c));
    s.handle_input(Instant::ZERO, &frame(&e)).unwrap();
    let msg2 = drain(&mut s);
    assert!(c.handle_input(Instant::ZERO, &msg2).is_err());
    assert!(drain(&mut c).is_empty());

    // Or rewrites the responder's choice.
    let (mut c, mut s) = start(&f, config(both.clone(), (1, 2)), config(both, (1, 2)));
    s.handle_input(Instant::ZERO, &drain(&mut c)).unwrap();
    let mut msg2 = drain(&mut s);
    assert_eq!(msg2[2], AES.id());
    msg2[2] = CHACHA.id();
    assert_eq!(
        c.handle_input(Instant::ZERO, &msg2),
        Err(HandshakeError::Noise)
    );
    // A choice that was never offered is named as such.
    let (mut c, mut s) = start(
        &f,
        config(SuiteList::Only(vec![AES]), (1, 2)),
        config(SuiteList::Auto, (1, 2)),
    );
    s.handle_input(Instant::ZERO, &drain(&mut c)).unwrap();
    let mut msg2 = drain(&mut s);
    msg2[2] = CHACHA.id();
    assert_eq!(
        c.handle_input(Instant::ZERO, &msg2),
        Err(HandshakeError::UnofferedSuite(CHACHA.id()))
    );
}

#[test]
fn an_offer_of_unknown_suites_only_gets_a_clear_error() {
    let f = Fixture::new();
    let (mut c, mut s) = start(&f, Config::default(), Config::default());
    let (e, _) = first_message(&drain(&mut c));
    let mut body = e;
    body.extend_from_slice(&[1, 3, 9, 200, 0]);
    let err = s.handle_input(Instant::ZERO, &frame(&body)).unwrap_err();
    assert_eq!(
        err,
        HandshakeError::NoCommonSuite {
            offered: vec![9, 200, 0]
        }
    );
    assert!(err.to_string().contains("no common cipher suite"));
    assert!(drain(&mut s).is_empty());
    // A malformed offer (count past the end, unknown layout, trailing bytes).
    for tail in [&[1u8, 5, 1][..], &[2, 1, 1], &[1, 1, 1, 7]] {
        let (mut c, mut s) = start(&f, Config::default(), Config::default());
        let (e, _) = first_message(&drain(&mut c));
        let mut body = e;
        body.extend_from_slice(tail);
        assert!(matches!(
            s.handle_input(Instant::ZERO, &frame(&body)),
            Err(HandshakeError::BadPayload(_))
        ));
    }
}

#[test]
fn a_version_1_initiator_still_connects_with_chacha() {
    let f = Fixture::new();
    // Today's release: versions 1..=1, ChaCha20-Poly1305, no offer.
    let (mut c, s) = start(&f, config(SuiteList::Auto, (1, 1)), Config::default());
    let msg1 = drain(&mut c);
    assert_eq!(
        msg1.len(),
        2 + 32,
        "a version 1 first message is the key alone"
    );
    let mut s = s;
    s.handle_input(Instant::ZERO, &msg1).unwrap();
    let r = run(c, s);
    let (c, s) = records_work(r);
    assert_eq!((c.peer.suite, s.peer.suite), (CHACHA, CHACHA));
    assert_eq!((c.peer.version, s.peer.version), (1, 1));

    // A version 1 initiator cannot be told to use AES.
    let now = Instant::ZERO;
    let r = Handshake::initiator(
        config(SuiteList::Only(vec![AES]), (1, 1)),
        f.params(f.identity(10, "c"), any()),
        Seed::new([1; 32]),
        now,
    );
    assert!(matches!(r, Err(HandshakeError::Config(_))));
    // A responder that no longer accepts ChaCha20-Poly1305 refuses it.
    let (c, s) = start(
        &f,
        config(SuiteList::Auto, (1, 1)),
        config(SuiteList::Only(vec![AES]), (1, 2)),
    );
    let run = run(c, s);
    assert_eq!(
        run.responder.unwrap_err(),
        HandshakeError::NoCommonSuite {
            offered: vec![CHACHA.id()]
        }
    );
}

#[test]
fn a_version_2_initiator_reaches_a_version_1_responder_when_told_to() {
    let f = Fixture::new();
    // A responder of today's release (1..=1) refuses an offer...
    let (c, s) = start(&f, Config::default(), config(SuiteList::Auto, (1, 1)));
    let r = run(c, s);
    assert!(matches!(r.responder, Err(HandshakeError::BadPayload(_))));
    // ...and accepts an initiator configured for version 1.
    let (c, s) = start(
        &f,
        config(SuiteList::Auto, (1, 1)),
        config(SuiteList::Auto, (1, 1)),
    );
    let (c, _) = records_work(run(c, s));
    assert_eq!(c.peer.version, 1);
}

#[test]
fn a_peer_holding_our_own_key_is_refused_unless_allowed() {
    let f = Fixture::new();
    let me = f.identity(10, "me");
    for allow in [false, true] {
        let mut cfg = Config::default();
        cfg.allow_self_connection = allow;
        let run = handshake(
            &f,
            f.params(me.clone(), any()),
            f.params(me.clone(), any()),
            cfg,
        );
        if allow {
            assert!(run.initiator.is_ok() && run.responder.is_ok());
        } else {
            assert_eq!(run.initiator.unwrap_err(), HandshakeError::SelfConnection);
        }
    }
}

#[test]
fn a_small_order_ephemeral_key_fails_the_handshake() {
    let f = Fixture::new();
    let (mut c, mut s) = start(&f, Config::default(), Config::default());
    let (_, offer) = first_message(&drain(&mut c));
    // The all-zero point: every DH with it gives zero.
    let mut body = vec![0u8; 32];
    body.extend_from_slice(&offer);
    assert_eq!(
        s.handle_input(Instant::ZERO, &frame(&body)),
        Err(HandshakeError::WeakKey)
    );
    assert!(drain(&mut s).is_empty());
}
