//! The native backend: ring's AEADs and SHA-256, aws-lc's X25519, and
//! BLAKE2s from RustCrypto (neither library has it).

use super::{nonce_bytes, Aead, AeadFailed, CryptoBackend, Hasher, Suite, X25519Key};
use super::{Portable, HASH_LEN, TAG_LEN};
use alloc::boxed::Box;
use aws_lc_rs::agreement;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::digest;

/// ring (AES-256-GCM with VAES/AVX2 or AES-NI, ChaCha20-Poly1305, SHA-256
/// with the SHA extensions) and aws-lc (X25519 on s2n-bignum); BLAKE2s
/// from RustCrypto. Needs std (feature `native-crypto`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl CryptoBackend for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn x25519_key(&self, secret: &[u8; 32]) -> Box<dyn X25519Key> {
        // aws-lc computes the public key as it imports the secret: keep both.
        let imported = agreement::PrivateKey::from_private_key(&agreement::X25519, secret)
            .ok()
            .and_then(|key| {
                let public = key.compute_public_key().ok()?;
                let public = <[u8; 32]>::try_from(public.as_ref()).ok()?;
                Some(AwsLcKey { key, public })
            });
        match imported {
            Some(key) => Box::new(key),
            // Any 32 bytes are an X25519 secret; never panic should aws-lc differ.
            None => Portable.x25519_key(secret),
        }
    }

    fn aead(&self, suite: Suite, key: &[u8; 32]) -> Box<dyn Aead> {
        let alg = match suite {
            Suite::AesGcmSha256 => &aead::AES_256_GCM,
            Suite::ChaChaPolyBlake2s => &aead::CHACHA20_POLY1305,
        };
        match UnboundKey::new(alg, key) {
            Ok(k) => Box::new(RingAead {
                suite,
                key: LessSafeKey::new(k),
            }),
            // Both algorithms take 32-byte keys: unreachable, but never panic.
            Err(_) => Portable.aead(suite, key),
        }
    }

    fn hasher(&self, suite: Suite) -> Box<dyn Hasher> {
        match suite {
            Suite::AesGcmSha256 => Box::new(RingSha256(digest::Context::new(&digest::SHA256))),
            Suite::ChaChaPolyBlake2s => Portable.hasher(suite),
        }
    }
}

struct AwsLcKey {
    key: agreement::PrivateKey,
    public: [u8; 32],
}

impl X25519Key for AwsLcKey {
    fn public(&self) -> [u8; 32] {
        self.public
    }

    fn agree(&self, peer: &[u8; 32]) -> Option<[u8; 32]> {
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer);
        // aws-lc fails the agreement when the output is all zero.
        agreement::agree(&self.key, peer, (), |shared| {
            <[u8; 32]>::try_from(shared).map_err(|_| ())
        })
        .ok()
    }
}

struct RingAead {
    suite: Suite,
    key: LessSafeKey,
}

impl Aead for RingAead {
    fn seal_in_place(&self, nonce: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = Nonce::assume_unique_for_key(nonce_bytes(self.suite, nonce));
        match self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(ad), buf)
        {
            Ok(tag) => {
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                out
            }
            // Only past the ciphers' length limits, far above a record.
            Err(_) => [0; TAG_LEN],
        }
    }

    fn open_in_place(
        &self,
        nonce: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailed> {
        let nonce = Nonce::assume_unique_for_key(nonce_bytes(self.suite, nonce));
        let tag = aead::Tag::from(*tag);
        self.key
            .open_in_place_separate_tag(nonce, Aad::from(ad), tag, buf, 0..)
            .map(|_| ())
            .map_err(|_| AeadFailed)
    }
}

struct RingSha256(digest::Context);

impl Hasher for RingSha256 {
    fn block_len(&self) -> usize {
        64
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finish_reset(&mut self) -> [u8; HASH_LEN] {
        let done = core::mem::replace(&mut self.0, digest::Context::new(&digest::SHA256));
        let mut out = [0u8; HASH_LEN];
        out.copy_from_slice(done.finish().as_ref());
        out
    }
}
