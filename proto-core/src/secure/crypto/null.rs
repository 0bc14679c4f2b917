//! A backend for fuzzing only: real X25519 and hashes, and an "AEAD" that
//! leaves the bytes as they are with an all-zero tag, so a fuzzer can
//! forge valid records. Exists only under `cfg(fuzzing)` with the
//! `insecure-null-cipher` feature.

use super::{Aead, AeadFailed, CryptoBackend, Hasher, Portable, Suite, X25519Key, TAG_LEN};
use alloc::boxed::Box;

/// NOT A CIPHER: plaintext on the wire with a zero tag. Fuzzing only.
#[derive(Debug, Clone, Copy, Default)]
pub struct InsecureNullCipher;

impl CryptoBackend for InsecureNullCipher {
    fn name(&self) -> &'static str {
        "insecure-null-cipher"
    }

    fn aes_is_fast(&self) -> bool {
        false
    }

    fn x25519_key(&self, secret: &[u8; 32]) -> Box<dyn X25519Key> {
        Portable.x25519_key(secret)
    }

    fn aead(&self, _suite: Suite, _key: &[u8; 32]) -> Box<dyn Aead> {
        Box::new(Null)
    }

    fn hasher(&self, suite: Suite) -> Box<dyn Hasher> {
        Portable.hasher(suite)
    }
}

struct Null;

impl Aead for Null {
    fn seal_in_place(&self, _nonce: u64, _ad: &[u8], _buf: &mut [u8]) -> [u8; TAG_LEN] {
        [0; TAG_LEN]
    }

    fn open_in_place(
        &self,
        _nonce: u64,
        _ad: &[u8],
        _buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailed> {
        if tag.iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(AeadFailed)
        }
    }
}
