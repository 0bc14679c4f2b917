//! Fixtures shared by the secure-layer fuzz targets: the backend is
//! `InsecureNullCipher` (built only with `cfg(fuzzing)` and the
//! `insecure-null-cipher` feature), so records are
//! `len | plaintext | 16 zero bytes` and the fuzzer can forge them.
#![allow(dead_code)]

use proto_core::secure::*;
use proto_core::time::Instant;
use std::sync::Arc;

pub const NOW_SECS: u64 = 1_700_000_000;
/// Bounded drain loops, as in the mux targets.
pub const MAX_POLLS: usize = 100_000;

pub fn roots_and_root() -> (TrustedRoots, Blesser) {
    let acme = Blesser::root("acme", [1; 32]).unwrap();
    let mut roots = TrustedRoots::new();
    let (n, k) = acme.trusted_root();
    roots.add(&n, k);
    (roots, acme)
}

pub fn params(
    identity: Identity,
    roots: &TrustedRoots,
    authorizer: Arc<dyn PeerAuthorizer>,
) -> Params {
    Params {
        identity,
        roots: roots.clone(),
        authorizer,
        wall_clock_secs: NOW_SECS,
        backend: &crypto::InsecureNullCipher,
        local_address: String::new(),
        remote_address: String::new(),
    }
}

/// Both sides' suites, from a number the input gives.
pub fn suites_for(n: usize) -> SuiteList {
    match n % 3 {
        0 => SuiteList::Auto,
        1 => SuiteList::Only(vec![Suite::AesGcmSha256]),
        _ => SuiteList::Only(vec![Suite::ChaChaPolyBlake2s]),
    }
}

/// The fuzzed responder: a server blessed `acme:server`, authorizing
/// either anyone or `acme:*` names.
pub fn responder(strict: bool, config: Config) -> Handshake {
    let (roots, acme) = roots_and_root();
    let mut id = Identity::from_secret([11; 32]);
    id.add_blessing(acme.bless("server", id.public_key(), None).unwrap())
        .unwrap();
    let auth: Arc<dyn PeerAuthorizer> = if strict {
        Arc::new(AllowNames::new(["acme:*"]))
    } else {
        Arc::new(AllowAny)
    };
    Handshake::responder(
        config,
        params(id, &roots, auth),
        Seed::new([2; 32]),
        Instant::ZERO,
    )
    .unwrap()
}

/// An honest initiator, blessed `acme:client` when `blessed`.
pub fn initiator(blessed: bool, config: Config) -> Handshake {
    let (roots, acme) = roots_and_root();
    let mut id = Identity::from_secret([10; 32]);
    if blessed {
        id.add_blessing(acme.bless("client", id.public_key(), None).unwrap())
            .unwrap();
    }
    Handshake::initiator(
        config,
        params(id, &roots, Arc::new(AllowAny)),
        Seed::new([1; 32]),
        Instant::ZERO,
    )
    .unwrap()
}

/// Drains a handshake's output into `out` (bounded).
pub fn drain(h: &mut Handshake, out: &mut Vec<u8>) {
    let mut polls = 0;
    while h.poll_transmit(out).is_some() {
        polls += 1;
        assert!(polls < MAX_POLLS, "handshake poll_transmit never ends");
    }
}
