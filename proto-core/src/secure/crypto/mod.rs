//! The primitives under the secure layer, behind one trait.
//!
//! A [`CryptoBackend`] gives X25519, the two AEADs and the two hashes of
//! weft's cipher suites. Every primitive comes from a vetted crate; weft
//! does no field or curve arithmetic of its own.
//!
//! - [`Portable`] (always built, `no_std`): x25519-dalek, aes-gcm,
//!   chacha20poly1305, sha2 and blake2 from RustCrypto.
//! - [`Native`] (feature `native-crypto`, needs std; the std adapters turn
//!   it on): ring's AES-GCM, ChaCha20-Poly1305 and SHA-256, and aws-lc's
//!   X25519, the fastest of each measured on x86-64 (`docs/decisions.md`).
//!
//! [`default_backend`] is the fastest one compiled in.
//!
//! ```
//! use proto_core::secure::crypto::{default_backend, Portable, CryptoBackend, Suite};
//! let a = Portable.x25519_public(&[1; 32]);
//! let b = default_backend().x25519_public(&[1; 32]);
//! assert_eq!(a, b);
//! let key = [7; 32];
//! let mut buf = *b"hello";
//! let tag = Portable.aead(Suite::AesGcmSha256, &key).seal_in_place(0, b"", &mut buf);
//! default_backend().aead(Suite::AesGcmSha256, &key).open_in_place(0, b"", &mut buf, &tag).unwrap();
//! assert_eq!(&buf, b"hello");
//! ```

#[cfg(feature = "native-crypto")]
mod native;
pub(crate) mod noise;
#[cfg(all(fuzzing, feature = "insecure-null-cipher"))]
mod null;
mod portable;
mod suite;

#[cfg(feature = "native-crypto")]
pub use native::Native;
#[cfg(all(fuzzing, feature = "insecure-null-cipher"))]
pub use null::InsecureNullCipher;
pub use portable::Portable;
pub use suite::{Suite, SuiteList};

use alloc::boxed::Box;
use core::fmt;

/// Bytes of an AEAD tag (both suites).
pub const TAG_LEN: usize = 16;
/// Bytes of a handshake hash (both suites' hashes give 32).
pub const HASH_LEN: usize = 32;

/// A record or message failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadFailed;

/// Where the secure layer's primitives come from.
///
/// Implementations are stateless (a `&'static` of one is what
/// [`Params`](super::Params) holds) and must not panic on any input.
pub trait CryptoBackend: Send + Sync + fmt::Debug {
    /// A short name, for logs and benchmarks.
    fn name(&self) -> &'static str;
    /// Whether AES-GCM runs on hardware instructions here (the default
    /// suite order puts it first then, ChaCha20-Poly1305 otherwise).
    fn aes_is_fast(&self) -> bool;
    /// The X25519 public key of `secret`.
    fn x25519_public(&self, secret: &[u8; 32]) -> [u8; 32];
    /// X25519(secret, public); `None` when the result is all zero (a
    /// public key of small order), checked in constant time.
    fn x25519(&self, secret: &[u8; 32], public: &[u8; 32]) -> Option<[u8; 32]>;
    /// The suite's AEAD under `key`, nonces as the Noise spec encodes them
    /// for that cipher.
    fn aead(&self, suite: Suite, key: &[u8; 32]) -> Box<dyn Aead>;
    /// A fresh instance of the suite's hash.
    fn hasher(&self, suite: Suite) -> Box<dyn Hasher>;
}

/// An AEAD under one key, sealing and opening in place.
pub trait Aead: Send + Sync {
    /// Encrypts `buf` in place under the 64-bit `nonce`; the tag.
    fn seal_in_place(&self, nonce: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN];
    /// Decrypts `buf` in place if `tag` authenticates it (the tag is
    /// compared in constant time); on failure `buf`'s content is unspecified.
    fn open_in_place(
        &self,
        nonce: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailed>;
}

/// An incremental hash of [`HASH_LEN`] bytes.
pub trait Hasher: Send + Sync {
    /// The hash's block length (for HMAC).
    fn block_len(&self) -> usize;
    /// Absorbs `data`.
    fn update(&mut self, data: &[u8]);
    /// The digest of everything absorbed; the hasher starts over.
    fn finish_reset(&mut self) -> [u8; HASH_LEN];
}

/// The fastest backend compiled in: [`Native`] with the `native-crypto`
/// feature, [`Portable`] otherwise.
pub fn default_backend() -> &'static dyn CryptoBackend {
    #[cfg(feature = "native-crypto")]
    {
        &Native
    }
    #[cfg(not(feature = "native-crypto"))]
    {
        &Portable
    }
}

/// The 96-bit nonce for counter `n`, as the Noise spec encodes it: 32 zero
/// bits, then `n` little-endian (ChaChaPoly) or big-endian (AESGCM).
pub(crate) fn nonce_bytes(suite: Suite, n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    match suite {
        Suite::ChaChaPolyBlake2s => nonce[4..].copy_from_slice(&n.to_le_bytes()),
        Suite::AesGcmSha256 => nonce[4..].copy_from_slice(&n.to_be_bytes()),
    }
    nonce
}

/// Whether this CPU has AES instructions (with carry-less multiply, which
/// GCM needs).
pub(crate) fn cpu_has_aes() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        cpufeatures::new!(aes_clmul, "aes", "pclmulqdq");
        aes_clmul::get()
    }
    #[cfg(target_arch = "aarch64")]
    {
        cpufeatures::new!(aes_pmull, "aes");
        aes_pmull::get()
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}
