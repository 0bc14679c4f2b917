//! weft's handshake and records against snow driving the other side with
//! its own primitives (RustCrypto through snow's default resolver, not
//! weft's backends): both suites, both roles, then records both ways.

mod secure_common;

use proto_core::secure::*;
use proto_core::time::Instant;
use proto_core::wire::put_varint;
use secure_common::*;
use std::sync::Arc;

const PROLOGUE: &[u8] = b"weft secure 2";

fn frame(prefix: Option<u8>, body: &[u8]) -> Vec<u8> {
    let len = body.len() + usize::from(prefix.is_some());
    let mut out = (len as u16).to_be_bytes().to_vec();
    out.extend(prefix);
    out.extend_from_slice(body);
    out
}

fn unframe(wire: &[u8]) -> &[u8] {
    let len = usize::from(u16::from_be_bytes([wire[0], wire[1]]));
    assert_eq!(wire.len(), 2 + len);
    &wire[2..]
}

/// A weft handshake payload with no blessings, written by hand.
fn payload() -> Vec<u8> {
    let mut p = vec![1, 0, 1, 0, 2]; // layout 1, versions 1..=2
    for v in [1u64 << 20, 100, 1 << 20, 1 << 24] {
        put_varint(&mut p, v);
    }
    p.extend_from_slice(&[1, 0]); // blessings: version 1, none
    p
}

fn snow_side(suite: Suite, initiator: bool) -> snow::HandshakeState {
    let b = snow::Builder::new(suite.noise_name().parse().unwrap())
        .local_private_key(&[0x33; 32])
        .unwrap()
        .prologue(PROLOGUE)
        .unwrap();
    if initiator {
        b.build_initiator().unwrap()
    } else {
        b.build_responder().unwrap()
    }
}

fn weft_params(f: &Fixture) -> (Config, Params) {
    (
        Config::default(),
        f.params(Identity::from_secret([0x44; 32]), Arc::new(AllowAny)),
    )
}

/// Records both ways between weft's `est` and snow's transport state.
fn records(mut est: Established, mut snow: snow::TransportState) {
    let mut buf = [0u8; 2048];
    let n = snow.write_message(b"from snow", &mut buf).unwrap();
    let mut got = Vec::new();
    est.records
        .open(&frame(None, &buf[..n]), |p| {
            got.extend_from_slice(&p);
            true
        })
        .unwrap();
    assert_eq!(got, b"from snow");
    let mut wire = Vec::new();
    est.records.seal(b"from weft", &mut wire).unwrap();
    let mut out = [0u8; 2048];
    let n = snow.read_message(unframe(&wire), &mut out).unwrap();
    assert_eq!(&out[..n], b"from weft");
}

#[test]
fn snow_as_initiator() {
    let f = Fixture::new();
    for suite in Suite::ALL {
        let (config, params) = weft_params(&f);
        let mut weft =
            Handshake::responder(config, params, Seed::new([7; 32]), Instant::ZERO).unwrap();
        let mut snow = snow_side(suite, true);
        let mut buf = [0u8; 4096];
        let n = snow.write_message(&[1, 1, suite.id()], &mut buf).unwrap();
        weft.handle_input(Instant::ZERO, &frame(None, &buf[..n]))
            .unwrap();
        let mut msg2 = Vec::new();
        while weft.poll_transmit(&mut msg2).is_some() {}
        let body = unframe(&msg2);
        assert_eq!(body[0], suite.id());
        let mut p = [0u8; 4096];
        snow.read_message(&body[1..], &mut p).unwrap();
        let n = snow.write_message(&payload(), &mut buf).unwrap();
        weft.handle_input(Instant::ZERO, &frame(None, &buf[..n]))
            .unwrap();
        assert!(weft.is_complete());
        let est = weft.finish().unwrap();
        assert_eq!(est.peer.suite, suite);
        assert_eq!(&est.peer.handshake_hash[..], snow.get_handshake_hash());
        records(est, snow.into_transport_mode().unwrap());
    }
}

#[test]
fn snow_as_responder() {
    let f = Fixture::new();
    for suite in Suite::ALL {
        let (mut config, params) = weft_params(&f);
        config.suites = SuiteList::Only(vec![suite]);
        let mut weft =
            Handshake::initiator(config, params, Seed::new([8; 32]), Instant::ZERO).unwrap();
        let mut snow = snow_side(suite, false);
        let mut msg1 = Vec::new();
        while weft.poll_transmit(&mut msg1).is_some() {}
        let mut p = [0u8; 4096];
        let n = snow.read_message(unframe(&msg1), &mut p).unwrap();
        assert_eq!(&p[..n], [1, 1, suite.id()], "the offer is msg1's payload");
        let mut buf = [0u8; 4096];
        let n = snow.write_message(&payload(), &mut buf).unwrap();
        weft.handle_input(Instant::ZERO, &frame(Some(suite.id()), &buf[..n]))
            .unwrap();
        let mut msg3 = Vec::new();
        while weft.poll_transmit(&mut msg3).is_some() {}
        snow.read_message(unframe(&msg3), &mut p).unwrap();
        assert!(snow.is_handshake_finished());
        let est = weft.finish().unwrap();
        assert_eq!(&est.peer.handshake_hash[..], snow.get_handshake_hash());
        records(est, snow.into_transport_mode().unwrap());
    }
}
