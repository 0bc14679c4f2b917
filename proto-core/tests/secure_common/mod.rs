//! Fixtures for the secure-layer tests: a root, identities, and a loop
//! that runs two handshakes against each other, recording every byte.

#![allow(dead_code)]

use proto_core::secure::*;
use proto_core::time::Instant;
use std::sync::Arc;

pub const NOW_SECS: u64 = 1_700_000_000;

pub struct Fixture {
    pub acme: Blesser,
    pub roots: TrustedRoots,
}

impl Fixture {
    pub fn new() -> Self {
        let acme = Blesser::root("acme", [1; 32]).unwrap();
        let mut roots = TrustedRoots::new();
        let (n, k) = acme.trusted_root();
        roots.add(&n, k);
        Fixture { acme, roots }
    }

    /// An identity with secret `[secret; 32]` blessed `acme:<ext>`.
    pub fn identity(&self, secret: u8, ext: &str) -> Identity {
        let mut id = Identity::from_secret([secret; 32]);
        id.add_blessing(self.acme.bless(ext, id.public_key(), None).unwrap())
            .unwrap();
        id
    }

    pub fn params(&self, identity: Identity, authorizer: Arc<dyn PeerAuthorizer>) -> Params {
        Params {
            identity,
            roots: self.roots.clone(),
            authorizer,
            wall_clock_secs: NOW_SECS,
            backend: default_backend(),
            local_address: String::new(),
            remote_address: String::new(),
        }
    }
}

/// What a handshake run produced.
pub struct Run {
    /// Every byte the initiator / responder put on the wire.
    pub from_initiator: Vec<u8>,
    pub from_responder: Vec<u8>,
    pub initiator: Result<Established, HandshakeError>,
    pub responder: Result<Established, HandshakeError>,
}

/// Runs `c` (initiator) against `s` (responder) until neither sends more.
pub fn run(mut c: Handshake, mut s: Handshake) -> Run {
    let now = Instant::ZERO;
    let (mut from_c, mut from_s) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let mut wire = Vec::new();
        while c.poll_transmit(&mut wire).is_some() {}
        from_c.extend_from_slice(&wire);
        let _ = s.handle_input(now, &wire);
        let mut wire = Vec::new();
        while s.poll_transmit(&mut wire).is_some() {}
        from_s.extend_from_slice(&wire);
        let _ = c.handle_input(now, &wire);
        if wire.is_empty() {
            break;
        }
    }
    Run {
        from_initiator: from_c,
        from_responder: from_s,
        initiator: c.finish(),
        responder: s.finish(),
    }
}

pub fn handshake(f: &Fixture, client: Params, server: Params, config: Config) -> Run {
    handshake_seeded(f, client, server, config, (1, 2))
}

/// As [`handshake`], with the seeds `[seeds.0; 32]` and `[seeds.1; 32]`.
pub fn handshake_seeded(
    f: &Fixture,
    client: Params,
    server: Params,
    config: Config,
    seeds: (u8, u8),
) -> Run {
    let _ = f;
    let now = Instant::ZERO;
    let c = Handshake::initiator(config.clone(), client, Seed::new([seeds.0; 32]), now).unwrap();
    let s = Handshake::responder(config, server, Seed::new([seeds.1; 32]), now).unwrap();
    run(c, s)
}

pub fn rejection(r: &Result<Established, HandshakeError>) -> Vec<RejectReason> {
    match r {
        Err(HandshakeError::Rejected(rej)) => rej.reasons.clone(),
        Err(e) => panic!("expected a rejection, got {e}"),
        Ok(_) => panic!("expected a rejection, got success"),
    }
}

#[path = "../common/rng.rs"]
mod rng;
#[allow(unused_imports)] // not every secure test draws faults
pub use rng::Rng;
