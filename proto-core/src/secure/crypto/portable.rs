//! The portable backend: RustCrypto's implementations, `no_std`.

use super::{nonce_bytes, Aead, AeadFailed, CryptoBackend, Hasher, Suite, X25519Key};
use super::{HASH_LEN, TAG_LEN};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::boxed::Box;
use blake2::Blake2s256;
use chacha20poly1305::ChaCha20Poly1305;
use sha2::{Digest, Sha256};

/// RustCrypto's primitives: x25519-dalek, aes-gcm (AES instructions when
/// the CPU has them, a constant-time bitsliced AES otherwise),
/// chacha20poly1305, sha2, blake2. Builds everywhere `alloc` does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Portable;

impl CryptoBackend for Portable {
    fn name(&self) -> &'static str {
        "portable"
    }

    fn x25519_key(&self, secret: &[u8; 32]) -> Box<dyn X25519Key> {
        let secret = x25519_dalek::StaticSecret::from(*secret);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        Box::new(DalekKey { secret, public })
    }

    fn aead(&self, suite: Suite, key: &[u8; 32]) -> Box<dyn Aead> {
        match suite {
            Suite::AesGcmSha256 => Box::new(RustCryptoAead {
                suite,
                cipher: Aes256Gcm::new(key.into()),
            }),
            Suite::ChaChaPolyBlake2s => Box::new(RustCryptoAead {
                suite,
                cipher: ChaCha20Poly1305::new(key.into()),
            }),
        }
    }

    fn hasher(&self, suite: Suite) -> Box<dyn Hasher> {
        match suite {
            Suite::AesGcmSha256 => Box::new(RustCryptoHash(Sha256::new(), 64)),
            Suite::ChaChaPolyBlake2s => Box::new(RustCryptoHash(Blake2s256::new(), 64)),
        }
    }
}

/// x25519-dalek's key (wiped on drop) and its public half.
struct DalekKey {
    secret: x25519_dalek::StaticSecret,
    public: [u8; 32],
}

impl X25519Key for DalekKey {
    fn public(&self) -> [u8; 32] {
        self.public
    }

    fn agree(&self, peer: &[u8; 32]) -> Option<[u8; 32]> {
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(*peer));
        shared.was_contributory().then(|| shared.to_bytes())
    }
}

struct RustCryptoAead<C> {
    suite: Suite,
    cipher: C,
}

impl<C> Aead for RustCryptoAead<C>
where
    C: AeadInPlace + Send + Sync,
    C: aes_gcm::aead::AeadCore<
        NonceSize = aes_gcm::aead::consts::U12,
        TagSize = aes_gcm::aead::consts::U16,
    >,
{
    fn seal_in_place(&self, nonce: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = nonce_bytes(self.suite, nonce);
        // Fails only past the ciphers' length limits (GiBs), far above
        // a record's 64 KiB.
        match self
            .cipher
            .encrypt_in_place_detached(&nonce.into(), ad, buf)
        {
            Ok(tag) => tag.into(),
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
        let nonce = nonce_bytes(self.suite, nonce);
        self.cipher
            .decrypt_in_place_detached(&nonce.into(), ad, buf, tag.into())
            .map_err(|_| AeadFailed)
    }
}

struct RustCryptoHash<D>(D, usize);

impl<D> Hasher for RustCryptoHash<D>
where
    D: Digest + digest_reset::Reset + Send + Sync,
{
    fn block_len(&self) -> usize {
        self.1
    }

    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }

    fn finish_reset(&mut self) -> [u8; HASH_LEN] {
        let mut out = [0u8; HASH_LEN];
        let digest = self.0.finalize_reset();
        out.copy_from_slice(&digest[..HASH_LEN]);
        out
    }
}

mod digest_reset {
    pub(super) use sha2::digest::FixedOutputReset as Reset;
}
