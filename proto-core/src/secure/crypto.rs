//! snow's primitives with the randomness injected: a resolver whose RNG is
//! a ChaCha20 keystream from a seed the driver passes in.

use alloc::boxed::Box;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// The one Noise protocol weft speaks.
pub(crate) const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

pub(crate) fn noise_params() -> NoiseParams {
    // A constant string snow knows: parsing cannot fail.
    NOISE_PARAMS.parse().expect("weft's Noise parameters parse")
}

/// A deterministic RNG: the ChaCha20 keystream under the seed (the seed
/// *is* the entropy; the driver draws it from the OS).
pub(crate) struct SeededRng(ChaCha20);

impl SeededRng {
    pub(crate) fn new(seed: &[u8; 32]) -> Self {
        SeededRng(ChaCha20::new(seed.into(), &[0u8; 12].into()))
    }
}

impl Random for SeededRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        dest.fill(0);
        // 2^38 bytes of keystream per seed; a handshake draws 32.
        self.0
            .try_apply_keystream(dest)
            .map_err(|_| snow::Error::Rng)
    }
}

/// snow's default primitives, our RNG, and (under `cfg(fuzzing)`) a null
/// cipher so a fuzzer can forge valid records.
pub(crate) struct Resolver {
    seed: [u8; 32],
}

impl Resolver {
    pub(crate) fn boxed(seed: [u8; 32]) -> Box<dyn CryptoResolver + Send> {
        Box::new(Resolver { seed })
    }
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRng::new(&self.seed)))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    #[cfg(not(fuzzing))]
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }

    #[cfg(fuzzing)]
    fn resolve_cipher(&self, _choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        Some(Box::new(null::NullCipher))
    }
}

/// Under `cfg(fuzzing)` only: "encryption" that copies the plaintext and
/// appends a zero tag, so fuzzed inputs reach the mux through valid records.
#[cfg(fuzzing)]
mod null {
    use snow::types::Cipher;

    pub(crate) struct NullCipher;

    const TAG: usize = 16;

    impl Cipher for NullCipher {
        fn name(&self) -> &'static str {
            "ChaChaPoly"
        }
        fn set(&mut self, _key: &[u8; 32]) {}
        fn encrypt(&self, _nonce: u64, _ad: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
            out[..plaintext.len()].copy_from_slice(plaintext);
            out[plaintext.len()..plaintext.len() + TAG].fill(0);
            plaintext.len() + TAG
        }
        fn decrypt(
            &self,
            _nonce: u64,
            _ad: &[u8],
            ciphertext: &[u8],
            out: &mut [u8],
        ) -> Result<usize, snow::Error> {
            let n = ciphertext
                .len()
                .checked_sub(TAG)
                .ok_or(snow::Error::Decrypt)?;
            if ciphertext[n..].iter().any(|&b| b != 0) {
                return Err(snow::Error::Decrypt);
            }
            out[..n].copy_from_slice(&ciphertext[..n]);
            Ok(n)
        }
    }
}

/// The X25519 public key of a static secret key.
pub(crate) fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    curve25519_dalek::MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}
