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
    /// Default: whether the CPU has AES instructions.
    fn aes_is_fast(&self) -> bool {
        cpu_has_aes()
    }
    /// `secret` prepared for several agreements: a backend whose key import
    /// costs a base-point multiplication pays it once here, not per
    /// agreement (a handshake uses its ephemeral key twice).
    fn x25519_key(&self, secret: &[u8; 32]) -> Box<dyn X25519Key>;
    /// The X25519 public key of `secret`.
    fn x25519_public(&self, secret: &[u8; 32]) -> [u8; 32] {
        self.x25519_key(secret).public()
    }
    /// X25519(secret, public); `None` when the result is all zero (a
    /// public key of small order), checked in constant time.
    fn x25519(&self, secret: &[u8; 32], public: &[u8; 32]) -> Option<[u8; 32]> {
        self.x25519_key(secret).agree(public)
    }
    /// The suite's AEAD under `key`, nonces as the Noise spec encodes them
    /// for that cipher.
    fn aead(&self, suite: Suite, key: &[u8; 32]) -> Box<dyn Aead>;
    /// A fresh instance of the suite's hash.
    fn hasher(&self, suite: Suite) -> Box<dyn Hasher>;
}

/// An X25519 secret key ready for agreements.
pub trait X25519Key: Send + Sync {
    /// Its public key.
    fn public(&self) -> [u8; 32];
    /// X25519 with `peer`; `None` when the result is all zero (checked in
    /// constant time).
    fn agree(&self, peer: &[u8; 32]) -> Option<[u8; 32]>;
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

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests {
    use super::noise::{noise_params, KeyPair, Resolver};
    use super::*;
    use crate::secure::record::{RecordConfig, Records};
    use alloc::vec::Vec;

    fn backends() -> Vec<&'static dyn CryptoBackend> {
        let portable: &'static dyn CryptoBackend = &Portable;
        #[cfg(feature = "native-crypto")]
        let native: Option<&'static dyn CryptoBackend> = Some(&Native);
        #[cfg(not(feature = "native-crypto"))]
        let native: Option<&'static dyn CryptoBackend> = None;
        core::iter::once(portable).chain(native).collect()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn key(s: &str) -> [u8; 32] {
        hex(s).try_into().unwrap()
    }

    fn pair(backend: &'static dyn CryptoBackend, secret: &str) -> KeyPair {
        KeyPair::new(backend, &key(secret))
    }

    /// The cacophony XX vectors, both suites, every backend: each
    /// handshake message byte for byte, the handshake hash, then the
    /// transport messages through the record layer's ciphers.
    #[test]
    fn noise_test_vectors() {
        for backend in backends() {
            for v in &vectors::VECTORS {
                let build = |initiator: bool| {
                    let (s, e) = if initiator {
                        (v.init_static, v.init_ephemeral)
                    } else {
                        (v.resp_static, v.resp_ephemeral)
                    };
                    let (secret, prologue) = (key(s), hex(v.prologue));
                    let b = snow::Builder::with_resolver(
                        noise_params(v.suite),
                        Resolver::boxed(backend, v.suite, pair(backend, s), pair(backend, e)),
                    )
                    .local_private_key(&secret)
                    .unwrap()
                    .prologue(&prologue)
                    .unwrap();
                    if initiator {
                        b.build_initiator().unwrap()
                    } else {
                        b.build_responder().unwrap()
                    }
                };
                let (mut i, mut r) = (build(true), build(false));
                let mut buf = [0u8; 1024];
                let mut out = [0u8; 1024];
                for (n, (payload, ciphertext)) in v.messages[..3].iter().enumerate() {
                    let (tx, rx) = if n % 2 == 0 {
                        (&mut i, &mut r)
                    } else {
                        (&mut r, &mut i)
                    };
                    let len = tx.write_message(&hex(payload), &mut buf).unwrap();
                    assert_eq!(
                        &buf[..len],
                        &hex(ciphertext)[..],
                        "{} {:?} msg {n}",
                        backend.name(),
                        v.suite
                    );
                    let got = rx.read_message(&buf[..len], &mut out).unwrap();
                    assert_eq!(&out[..got], &hex(payload)[..]);
                }
                assert_eq!(i.get_handshake_hash(), &hex(v.handshake_hash)[..]);
                assert_eq!(r.get_handshake_hash(), &hex(v.handshake_hash)[..]);
                let (k1, k2) = i.dangerously_get_raw_split();
                let cfg = RecordConfig::default();
                let mut init = Records::new(backend, v.suite, &k1, &k2, &cfg, 0);
                let mut resp = Records::new(backend, v.suite, &k2, &k1, &cfg, 0);
                for (n, (payload, ciphertext)) in v.messages[3..].iter().enumerate() {
                    // The initiator sent the last handshake message.
                    let (tx, rx) = if n % 2 == 0 {
                        (&mut resp, &mut init)
                    } else {
                        (&mut init, &mut resp)
                    };
                    let mut wire = Vec::new();
                    tx.seal(&hex(payload), &mut wire).unwrap();
                    assert_eq!(
                        &wire[2..],
                        &hex(ciphertext)[..],
                        "{} {:?} transport {n}",
                        backend.name(),
                        v.suite
                    );
                    let mut got = Vec::new();
                    rx.open(&wire, |p| {
                        got.extend_from_slice(&p);
                        true
                    })
                    .unwrap();
                    assert_eq!(got, hex(payload));
                }
            }
        }
    }

    /// RFC 7748 section 6.1, and the all-zero result of small-order keys.
    #[test]
    fn x25519_known_answers_and_small_order_keys() {
        let a = key("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let b = key("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let pa = key("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let pb = key("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = key("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        let small_order = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ];
        for backend in backends() {
            assert_eq!(backend.x25519_public(&a), pa, "{}", backend.name());
            assert_eq!(backend.x25519_public(&b), pb);
            assert_eq!(backend.x25519(&a, &pb), Some(shared));
            assert_eq!(backend.x25519(&b, &pa), Some(shared));
            let ka = backend.x25519_key(&a);
            assert_eq!(ka.public(), pa);
            assert_eq!(ka.agree(&pb), Some(shared));
            assert_eq!(ka.agree(&pb), Some(shared), "a prepared key is reusable");
            for u in small_order {
                assert_eq!(backend.x25519(&a, &key(u)), None, "{} {u}", backend.name());
                assert_eq!(ka.agree(&key(u)), None, "{} {u}", backend.name());
            }
        }
    }

    /// Every backend seals to the same bytes, opens the others' output,
    /// refuses a flipped bit, and hashes to the known digests.
    #[test]
    fn backends_agree_and_refuse_tampering() {
        let all = backends();
        for suite in Suite::ALL {
            let plain: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
            let mut sealed = Vec::new();
            for b in &all {
                let mut buf = plain.clone();
                let tag = b.aead(suite, &[9; 32]).seal_in_place(5, b"ad", &mut buf);
                sealed.push((buf, tag));
            }
            assert!(sealed.windows(2).all(|w| w[0] == w[1]), "{suite:?}");
            for b in &all {
                let aead = b.aead(suite, &[9; 32]);
                let (mut buf, mut tag) = sealed[0].clone();
                aead.open_in_place(5, b"ad", &mut buf, &tag).unwrap();
                assert_eq!(buf, plain);
                let (mut buf, _) = sealed[0].clone();
                tag[3] ^= 1;
                assert_eq!(
                    aead.open_in_place(5, b"ad", &mut buf, &tag),
                    Err(AeadFailed)
                );
                let (mut buf, tag) = sealed[0].clone();
                assert_eq!(
                    aead.open_in_place(6, b"ad", &mut buf, &tag),
                    Err(AeadFailed)
                );
            }
        }
        for b in &all {
            let mut h = b.hasher(Suite::AesGcmSha256);
            h.update(b"abc");
            assert_eq!(
                h.finish_reset()[..],
                hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")[..]
            );
            let mut h = b.hasher(Suite::ChaChaPolyBlake2s);
            h.update(b"abc");
            assert_eq!(
                h.finish_reset()[..],
                hex("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")[..]
            );
        }
    }
}
