//! Authenticated, encrypted connections: a Noise XX handshake, a record
//! layer, identities with blessings, and peer authorization.
//!
//! - [`Handshake`]: Noise XX through `snow`, sans-IO, under a negotiated
//!   cipher suite: `Noise_XX_25519_AESGCM_SHA256` or
//!   `Noise_XX_25519_ChaChaPoly_BLAKE2s` ([`Suite`]). The ephemeral key
//!   comes from a one-shot [`Seed`] the driver passes in, so the same keys
//!   and seed give the same bytes. The responder proves its identity
//!   first; the initiator runs its [`PeerAuthorizer`] on it *before*
//!   sending its own, and sends nothing more if it refuses.
//! - [`crypto`]: the [`CryptoBackend`] trait every primitive comes
//!   through, with a portable (`no_std`) and a native backend.
//! - [`Records`]: length-prefixed AEAD records after the handshake, sealed
//!   and opened in place, several mux frames per record, deterministic
//!   rekeying, and a first failure that stops all later delivery.
//! - [`Identity`], [`Blessing`], [`Blesser`], [`TrustedRoots`]: names such
//!   as `acme:alice:phone` bound to a static key by ed25519-signed
//!   certificate chains, with not-before and expiry times judged against a
//!   wall-clock input, give or take a clock skew.
//! - [`AllowAny`], [`AllowNames`], [`AllowKey`]: ready-made authorizers.
//! - [`Secured`]: the record layer stacked under a [`crate::mux::Connection`], for
//!   drivers that want one object.
//!
//! For fuzzing only (`cfg(fuzzing)` and the `insecure-null-cipher`
//! feature), `crypto::InsecureNullCipher` leaves records in plaintext with
//! a zero tag so a fuzzer can forge them and reach the mux.
//!
//! ```
//! use proto_core::secure::*;
//! use proto_core::time::Instant;
//! use std::sync::Arc;
//! # extern crate std;
//!
//! let root = Blesser::root("acme", [1; 32]).unwrap();
//! let mut roots = TrustedRoots::new();
//! let (name, key) = root.trusted_root();
//! roots.add(&name, key);
//!
//! let mut server = Identity::from_secret([2; 32]);
//! server.add_blessing(root.bless("server", server.public_key(), None).unwrap()).unwrap();
//! let client = Identity::from_secret([3; 32]);
//!
//! let params = |identity: Identity, authorizer: Arc<dyn PeerAuthorizer>| Params {
//!     identity, roots: roots.clone(), authorizer, wall_clock_secs: 1_700_000_000,
//!     backend: crypto::default_backend(),
//!     local_address: String::new(), remote_address: String::new(),
//! };
//! // Constant seeds are for tests only: a real seed is 32 bytes from the
//! // OS's RNG, fresh for every handshake (the adapters do this).
//! let now = Instant::ZERO;
//! let mut c = Handshake::initiator(Config::default(),
//!     params(client, Arc::new(AllowNames::new(["acme:server"]))), Seed::new([4; 32]), now).unwrap();
//! let mut s = Handshake::responder(Config::default(), params(server, Arc::new(AllowAny)),
//!     Seed::new([5; 32]), now).unwrap();
//!
//! let mut wire = Vec::new();
//! while !(c.is_complete() && s.is_complete()) {
//!     while c.poll_transmit(&mut wire).is_some() {}
//!     s.handle_input(now, &std::mem::take(&mut wire)).unwrap();
//!     while s.poll_transmit(&mut wire).is_some() {}
//!     c.handle_input(now, &std::mem::take(&mut wire)).unwrap();
//! }
//! let (c, s) = (c.finish().unwrap(), s.finish().unwrap());
//! assert_eq!(c.peer.granted, ["acme:server"]);
//! assert_eq!(c.peer.handshake_hash, s.peer.handshake_hash);
//! ```

mod authorizer;
mod blessing;
pub mod crypto;
mod error;
mod handshake;
mod record;
mod secured;

pub use authorizer::{
    pattern_matches, AllowAny, AllowKey, AllowNames, Endpoint, PeerAuthorizer, PeerBlessings,
    RejectReason, Rejection,
};
pub use blessing::{
    decode_blessings, encode_blessings, Blesser, Blessing, BlessingError, BlessingLimits,
    Certificate, CertificateFormat, Identity, PublicKey, Subject, TrustedRoots, Validity,
    ENCODING_VERSION, MAX_COMPONENT,
};
pub use crypto::noise::Seed;
pub use crypto::{default_backend, CryptoBackend, Suite, SuiteList};
pub use error::{HandshakeError, InputError, RecordError};
pub use handshake::{
    Config, Established, Handshake, HandshakeEvent, MuxSettings, Params, PeerInfo, PROTOCOL_VERSION,
};
pub use record::{RecordConfig, Records, LEN_PREFIX, MAX_RECORD, MAX_RECORD_PLAINTEXT, TAG_LEN};
pub use secured::Secured;

/// The application close code a connection sends when a record fails
/// authentication (the CLOSE still goes out, sealed).
pub const RECORD_FAILURE: u64 = 0x5ec0_0001;
