//! The Noise XX handshake, blessings and authorizers.

mod secure_common;

use proto_core::secure::*;
use proto_core::time::{Duration, Instant};
use secure_common::*;
use std::sync::Arc;

fn any() -> Arc<dyn PeerAuthorizer> {
    Arc::new(AllowAny)
}

fn names(p: &[&str]) -> Arc<dyn PeerAuthorizer> {
    Arc::new(AllowNames::new(p.iter().copied()))
}

/// msg1 is the initiator's ephemeral key and its offer of two suites
/// (offer version, count, two ids).
const MSG1_LEN: usize = 2 + 32 + 4;

#[test]
fn same_keys_and_seeds_give_byte_identical_handshakes() {
    let f = Fixture::new();
    let go = |cs: u8, ss: u8| {
        let c = f.params(f.identity(10, "alice"), any());
        let s = f.params(f.identity(11, "server"), any());
        handshake_seeded(&f, c, s, Config::default(), (cs, ss))
    };
    let a = go(3, 4);
    let b = go(3, 4);
    assert!(a.initiator.is_ok() && a.responder.is_ok());
    assert_eq!(a.from_initiator, b.from_initiator);
    assert_eq!(a.from_responder, b.from_responder);
    // The first records sealed afterwards match too.
    let mut ra = a.initiator.unwrap().records;
    let mut rb = b.initiator.unwrap().records;
    let (mut oa, mut ob) = (Vec::new(), Vec::new());
    ra.seal(b"same", &mut oa).unwrap();
    rb.seal(b"same", &mut ob).unwrap();
    assert_eq!(oa, ob);
    // Another seed on either side: other ephemeral keys, other bytes.
    let c = go(5, 4);
    assert_ne!(a.from_initiator[..MSG1_LEN], c.from_initiator[..MSG1_LEN]);
    let d = go(3, 6);
    assert_eq!(a.from_initiator[..MSG1_LEN], d.from_initiator[..MSG1_LEN]);
    assert_ne!(a.from_responder, d.from_responder);
}

#[test]
fn both_sides_learn_the_peer_its_names_and_what_they_presented() {
    let f = Fixture::new();
    let alice = f.acme.delegate("alice", [7; 32], None).unwrap();
    let mut phone = Identity::from_secret([10; 32]);
    phone
        .add_blessing(
            alice
                .bless("phone", phone.public_key(), Some(NOW_SECS + 60))
                .unwrap(),
        )
        .unwrap();
    let server = f.identity(11, "server");
    let (phone_key, server_key) = (phone.public_key(), server.public_key());
    let run = handshake(
        &f,
        f.params(phone, names(&["acme:server"])),
        f.params(server, names(&["acme:alice:*"])),
        Config::default(),
    );
    let c = run.initiator.unwrap();
    let s = run.responder.unwrap();
    assert_eq!(c.peer.key, server_key);
    assert_eq!(c.peer.granted, ["acme:server"]);
    assert_eq!(c.peer.presented, ["acme:alice:phone"]);
    assert_eq!(s.peer.key, phone_key);
    assert_eq!(s.peer.granted, ["acme:alice:phone"]);
    assert_eq!(s.peer.blessings.names, ["acme:alice:phone"]);
    assert_eq!(s.peer.presented, ["acme:server"]);
    assert_eq!(c.peer.version, PROTOCOL_VERSION);
    assert_eq!(c.peer.mux, MuxSettings::default());
    assert!(c.leftover.is_empty() && s.leftover.is_empty());
}

/// The initiator refuses the responder: it must send nothing after msg1.
fn assert_client_sent_no_identity(run: &Run, client_key: PublicKey) {
    assert_eq!(
        run.from_initiator.len(),
        MSG1_LEN,
        "only the ephemeral key left the client"
    );
    assert!(!run.from_initiator.windows(32).any(|w| w == client_key.0));
    // The responder is left waiting for a msg3 that never comes.
    assert_eq!(
        run.responder.as_ref().unwrap_err(),
        &HandshakeError::NotFinished
    );
}

#[test]
fn a_client_rejects_a_server_blessed_by_an_unknown_root_and_sends_no_identity() {
    let f = Fixture::new();
    let evil = Blesser::root("acme", [66; 32]).unwrap(); // same name, other key
    let mut server = Identity::from_secret([11; 32]);
    server
        .add_blessing(evil.bless("server", server.public_key(), None).unwrap())
        .unwrap();
    let client = f.identity(10, "alice");
    let client_key = client.public_key();
    let run = handshake(
        &f,
        f.params(client, names(&["acme:server"])),
        f.params(server, any()),
        Config::default(),
    );
    assert_eq!(
        rejection(&run.initiator),
        [
            RejectReason::InvalidBlessing {
                name: "acme:server".into(),
                error: BlessingError::UnknownRoot
            },
            RejectReason::NoValidBlessing
        ]
    );
    assert_client_sent_no_identity(&run, client_key);
}

#[test]
fn an_expired_certificate_anywhere_in_the_chain_is_rejected() {
    let f = Fixture::new();
    // No skew allowance: the boundary is exactly the expiry.
    let mut config = Config::default();
    config.blessing_limits.clock_skew_secs = 0;
    for (delegate_expiry, leaf_expiry) in [(Some(NOW_SECS), None), (None, Some(NOW_SECS - 1))] {
        let ops = f.acme.delegate("ops", [8; 32], delegate_expiry).unwrap();
        let mut server = Identity::from_secret([11; 32]);
        server
            .add_blessing(
                ops.bless("server", server.public_key(), leaf_expiry)
                    .unwrap(),
            )
            .unwrap();
        let client = f.identity(10, "alice");
        let client_key = client.public_key();
        let run = handshake(
            &f,
            f.params(client, names(&["acme:ops:*"])),
            f.params(server, any()),
            config.clone(),
        );
        assert_eq!(
            rejection(&run.initiator)[0],
            RejectReason::InvalidBlessing {
                name: "acme:ops:server".into(),
                error: BlessingError::Expired
            }
        );
        assert_client_sent_no_identity(&run, client_key);
    }
    // One second earlier, the same chain is fine.
    let ops = f.acme.delegate("ops", [8; 32], Some(NOW_SECS + 1)).unwrap();
    let mut server = Identity::from_secret([11; 32]);
    server
        .add_blessing(ops.bless("server", server.public_key(), None).unwrap())
        .unwrap();
    let run = handshake(
        &f,
        f.params(f.identity(10, "alice"), names(&["acme:ops:*"])),
        f.params(server, any()),
        config,
    );
    assert_eq!(run.initiator.unwrap().peer.granted, ["acme:ops:server"]);
}

#[test]
fn a_name_outside_the_patterns_is_rejected() {
    let f = Fixture::new();
    let client = f.identity(10, "alice");
    let client_key = client.public_key();
    let run = handshake(
        &f,
        f.params(client, names(&["acme:server:*", "acme:db"])),
        f.params(f.identity(11, "server"), any()),
        Config::default(),
    );
    assert_eq!(
        rejection(&run.initiator),
        [RejectReason::NameNotAllowed("acme:server".into())]
    );
    assert_client_sent_no_identity(&run, client_key);
}

#[test]
fn a_blessing_bound_to_another_key_is_rejected() {
    // Mallory holds a copy of the server's blessing but not its key.
    let f = Fixture::new();
    let server = f.identity(11, "server");
    let mut mallory = Identity::from_secret([99; 32]);
    assert_eq!(
        mallory.add_blessing(server.blessings()[0].clone()),
        Err(BlessingError::KeyMismatch)
    );
    // Forced past `add_blessing` by an authorizer presenting it anyway.
    struct Present(Blessing);
    impl PeerAuthorizer for Present {
        fn authorize_peer(
            &self,
            _: &Endpoint,
            _: &Endpoint,
            b: &PeerBlessings,
        ) -> Result<Vec<String>, Rejection> {
            Ok(b.names.clone())
        }
        fn blessings_for_peer(&self, _: &[String], _: &[Blessing]) -> Vec<Blessing> {
            vec![self.0.clone()]
        }
    }
    let client = f.identity(10, "alice");
    let client_key = client.public_key();
    let run = handshake(
        &f,
        f.params(client, names(&["acme:server"])),
        f.params(mallory, Arc::new(Present(server.blessings()[0].clone()))),
        Config::default(),
    );
    assert_eq!(
        rejection(&run.initiator)[0],
        RejectReason::InvalidBlessing {
            name: "acme:server".into(),
            error: BlessingError::KeyMismatch
        }
    );
    assert_client_sent_no_identity(&run, client_key);
}

#[test]
fn exactly_this_key() {
    let f = Fixture::new();
    let server = f.identity(11, "server");
    let other = f.identity(12, "server");
    let run = handshake(
        &f,
        f.params(
            f.identity(10, "alice"),
            Arc::new(AllowKey(server.public_key())),
        ),
        f.params(other.clone(), any()),
        Config::default(),
    );
    assert_eq!(
        rejection(&run.initiator),
        [RejectReason::KeyNotAllowed(other.public_key())]
    );
    let run = handshake(
        &f,
        f.params(
            f.identity(10, "alice"),
            Arc::new(AllowKey(server.public_key())),
        ),
        f.params(server, any()),
        Config::default(),
    );
    assert_eq!(run.initiator.unwrap().peer.granted, ["acme:server"]);
}

#[test]
fn a_man_in_the_middle_with_its_own_keys_is_detected() {
    // Mallory terminates the client's handshake with her own static key and
    // relays the server's blessings: they bind the server's key, not hers.
    let f = Fixture::new();
    let server = f.identity(11, "server");
    let stolen = server.blessings().to_vec();
    struct Relay(Vec<Blessing>);
    impl PeerAuthorizer for Relay {
        fn authorize_peer(
            &self,
            _: &Endpoint,
            _: &Endpoint,
            b: &PeerBlessings,
        ) -> Result<Vec<String>, Rejection> {
            Ok(b.names.clone())
        }
        fn blessings_for_peer(&self, _: &[String], _: &[Blessing]) -> Vec<Blessing> {
            self.0.clone()
        }
    }
    let run = handshake(
        &f,
        f.params(f.identity(10, "alice"), names(&["acme:server"])),
        f.params(Identity::from_secret([99; 32]), Arc::new(Relay(stolen))),
        Config::default(),
    );
    assert!(
        rejection(&run.initiator).contains(&RejectReason::InvalidBlessing {
            name: "acme:server".into(),
            error: BlessingError::KeyMismatch
        })
    );

    // Mallory instead passes the server's msg2 through but swaps in her
    // own ephemeral key: Noise authentication fails at once.
    let c_params = f.params(f.identity(10, "alice"), names(&["acme:server"]));
    let mut c = Handshake::initiator(
        Config::default(),
        c_params,
        Seed::new([1; 32]),
        Instant::ZERO,
    )
    .unwrap();
    let mut s = Handshake::responder(
        Config::default(),
        f.params(server, any()),
        Seed::new([2; 32]),
        Instant::ZERO,
    )
    .unwrap();
    let mut wire = Vec::new();
    while c.poll_transmit(&mut wire).is_some() {}
    s.handle_input(Instant::ZERO, &wire).unwrap();
    let mut msg2 = Vec::new();
    while s.poll_transmit(&mut msg2).is_some() {}
    // After the length and the suite choice.
    msg2[3..35].copy_from_slice(&proto_core_x25519_public([42; 32]));
    assert_eq!(
        c.handle_input(Instant::ZERO, &msg2),
        Err(HandshakeError::Noise)
    );
    let mut after = Vec::new();
    assert!(c.poll_transmit(&mut after).is_none());
    assert_eq!(
        c.poll_event(),
        Some(HandshakeEvent::Failed(HandshakeError::Noise))
    );
}

/// A valid X25519 public key, derived through an identity.
fn proto_core_x25519_public(secret: [u8; 32]) -> [u8; 32] {
    Identity::from_secret(secret).public_key().0
}

#[test]
fn a_server_rejects_a_client_without_an_acceptable_blessing() {
    let f = Fixture::new();
    let run = handshake(
        &f,
        f.params(Identity::from_secret([10; 32]), any()),
        f.params(f.identity(11, "server"), names(&["acme:*"])),
        Config::default(),
    );
    // XX: the client is done once it sent msg3; the server refuses.
    assert!(run.initiator.is_ok());
    assert_eq!(rejection(&run.responder), [RejectReason::NoValidBlessing]);
}

#[test]
fn oversized_handshake_messages_and_the_timeout() {
    let f = Fixture::new();
    let mut config = Config::default();
    config.max_handshake_message = 100;
    let mut s = Handshake::responder(
        config,
        f.params(f.identity(11, "server"), any()),
        Seed::new([2; 32]),
        Instant::ZERO,
    )
    .unwrap();
    assert_eq!(
        s.handle_input(Instant::ZERO, &[0x01, 0x00]),
        Err(HandshakeError::MessageTooLarge { len: 256 })
    );
    assert_eq!(
        s.handle_input(Instant::ZERO, &[0]),
        Err(HandshakeError::MessageTooLarge { len: 256 })
    );

    let c = f.params(f.identity(10, "alice"), any());
    let mut c =
        Handshake::initiator(Config::default(), c, Seed::new([1; 32]), Instant::ZERO).unwrap();
    let deadline = Instant::ZERO + Duration::from_secs(10);
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(Instant::from_nanos(deadline.as_nanos() - 1));
    let mut out = Vec::new();
    assert!(c.poll_transmit(&mut out).is_some());
    assert_eq!(c.poll_event(), None);
    c.handle_timeout(deadline);
    assert_eq!(
        c.poll_event(),
        Some(HandshakeEvent::Failed(HandshakeError::Timeout))
    );
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.finish().unwrap_err(), HandshakeError::Timeout);
}

#[test]
fn no_common_version() {
    let f = Fixture::new();
    let mut v1 = Config::default();
    v1.versions = (1, 1);
    let mut v2 = Config::default();
    v2.versions = (2, 2);
    // A version-2-only responder refuses a version 1 initiator's first message.
    let c = Handshake::initiator(
        v1,
        f.params(f.identity(10, "a"), any()),
        Seed::new([1; 32]),
        Instant::ZERO,
    )
    .unwrap();
    let s = Handshake::responder(
        v2,
        f.params(f.identity(11, "s"), any()),
        Seed::new([2; 32]),
        Instant::ZERO,
    )
    .unwrap();
    let run = run(c, s);
    assert_eq!(
        run.responder.unwrap_err(),
        HandshakeError::VersionMismatch {
            peer_min: 1,
            peer_max: 1
        }
    );
    assert!(run.from_responder.is_empty());
    // Versions out of range are a config error, not a handshake.
    let mut bad = Config::default();
    bad.versions = (7, 9);
    assert!(matches!(
        Handshake::responder(
            bad,
            f.params(f.identity(11, "s"), any()),
            Seed::new([2; 32]),
            Instant::ZERO
        ),
        Err(HandshakeError::Config(_))
    ));
}

#[test]
fn any_chunking_gives_the_same_result() {
    let f = Fixture::new();
    let c = Handshake::initiator(
        Config::default(),
        f.params(f.identity(10, "a"), any()),
        Seed::new([1; 32]),
        Instant::ZERO,
    )
    .unwrap();
    let s = Handshake::responder(
        Config::default(),
        f.params(f.identity(11, "s"), any()),
        Seed::new([2; 32]),
        Instant::ZERO,
    )
    .unwrap();
    let whole = run(c, s);
    let mut c = Handshake::initiator(
        Config::default(),
        f.params(f.identity(10, "a"), any()),
        Seed::new([1; 32]),
        Instant::ZERO,
    )
    .unwrap();
    let mut s = Handshake::responder(
        Config::default(),
        f.params(f.identity(11, "s"), any()),
        Seed::new([2; 32]),
        Instant::ZERO,
    )
    .unwrap();
    for _ in 0..4 {
        let mut w = Vec::new();
        while c.poll_transmit(&mut w).is_some() {}
        for b in &w {
            s.handle_input(Instant::ZERO, std::slice::from_ref(b))
                .unwrap();
        }
        let mut w = Vec::new();
        while s.poll_transmit(&mut w).is_some() {}
        for b in &w {
            c.handle_input(Instant::ZERO, std::slice::from_ref(b))
                .unwrap();
        }
    }
    let (c, s) = (c.finish().unwrap(), s.finish().unwrap());
    assert_eq!(c.peer, whole.initiator.unwrap().peer);
    assert_eq!(s.peer, whole.responder.unwrap().peer);
}

#[test]
fn blessing_encoding_round_trips_and_is_bounded() {
    let f = Fixture::new();
    let alice = f.acme.delegate("alice", [7; 32], Some(5)).unwrap();
    let id = Identity::from_secret([3; 32]);
    let list = vec![
        alice.bless("phone", id.public_key(), None).unwrap(),
        f.acme.bless("x", id.public_key(), Some(9)).unwrap(),
    ];
    let mut enc = Vec::new();
    encode_blessings(&list, &mut enc);
    let limits = BlessingLimits::default();
    let mut r = proto_core::wire::Reader::new(&enc);
    assert_eq!(decode_blessings(&mut r, &limits).unwrap(), list);
    assert_eq!(r.remaining(), 0);
    // Every truncation fails cleanly.
    for cut in 0..enc.len() {
        let mut r = proto_core::wire::Reader::new(&enc[..cut]);
        assert!(decode_blessings(&mut r, &limits).is_err());
    }
    let tight = BlessingLimits {
        max_blessings: 1,
        ..limits
    };
    assert!(decode_blessings(&mut proto_core::wire::Reader::new(&enc), &tight).is_err());
    let short = BlessingLimits {
        max_chain: 1,
        ..limits
    };
    assert!(decode_blessings(&mut proto_core::wire::Reader::new(&enc), &short).is_err());
    // Names with the separator or a wildcard are refused at creation.
    assert_eq!(
        f.acme.bless("a:b", id.public_key(), None),
        Err(BlessingError::BadName)
    );
    assert_eq!(
        f.acme.bless("*", id.public_key(), None),
        Err(BlessingError::BadName)
    );
}

#[test]
fn a_tampered_certificate_fails_its_signature() {
    let f = Fixture::new();
    let id = Identity::from_secret([3; 32]);
    let good = f
        .acme
        .bless("alice", id.public_key(), Some(NOW_SECS + 10))
        .unwrap();
    assert_eq!(
        f.roots.verify(&good, id.public_key(), NOW_SECS),
        Ok("acme:alice".into())
    );
    let mut renamed = good.clone();
    renamed.certificates[0].name = "admin".into();
    assert_eq!(
        f.roots.verify(&renamed, id.public_key(), NOW_SECS),
        Err(BlessingError::BadSignature)
    );
    let mut extended = good.clone();
    extended.certificates[0].expiry = None;
    assert_eq!(
        f.roots.verify(&extended, id.public_key(), NOW_SECS),
        Err(BlessingError::BadSignature)
    );
}
