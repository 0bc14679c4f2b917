//! snow's primitive traits over a [`CryptoBackend`], and the injected RNG.
//!
//! snow runs the Noise state machine; every primitive it calls is the
//! backend's. The handshake's randomness is a [`Seed`] the driver draws
//! from the OS, consumed once.

use super::{Aead, CryptoBackend, Hasher, Suite, X25519Key, HASH_LEN, TAG_LEN};
use alloc::boxed::Box;
use alloc::sync::Arc;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use core::fmt;
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::CryptoResolver;
use snow::types::{Cipher, Dh, Hash, Random};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// 32 bytes of fresh randomness for one handshake (its ephemeral key).
///
/// Neither `Clone` nor `Default`, and a handshake takes it by value: a
/// seed cannot be used twice by accident. Reusing one would reuse the
/// ephemeral key, which lets a recorded first message be replayed.
/// The adapters draw it from the OS; tests and simulations derive it from
/// their own seeded RNG.
///
/// ```compile_fail
/// // A seed cannot be duplicated.
/// let seed = proto_core::secure::Seed::new([7; 32]);
/// let again = seed.clone();
/// ```
pub struct Seed(Zeroizing<[u8; 32]>);

impl Seed {
    /// A seed from 32 bytes the caller drew from a cryptographic RNG.
    pub fn new(bytes: [u8; 32]) -> Self {
        Seed(Zeroizing::new(bytes))
    }

    /// The ephemeral X25519 secret this seed gives: the first 32 bytes of
    /// its ChaCha20 keystream (so equal seeds give equal keys, which makes
    /// simulations reproducible).
    pub(crate) fn ephemeral_secret(self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        let mut stream = ChaCha20::new((&*self.0).into(), &[0u8; 12].into());
        stream.apply_keystream(&mut out[..]);
        out
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

pub(crate) fn noise_params(suite: Suite) -> NoiseParams {
    // Constant strings snow knows: parsing cannot fail.
    suite
        .noise_name()
        .parse()
        .expect("weft's Noise parameters parse")
}

/// A secret key prepared by the backend once, for every agreement of a
/// handshake (and every offered suite's state), with its bytes for snow.
#[derive(Clone)]
pub(crate) struct KeyPair {
    secret: Zeroizing<[u8; 32]>,
    key: Arc<dyn X25519Key>,
}

impl KeyPair {
    pub(crate) fn new(backend: &dyn CryptoBackend, secret: &[u8; 32]) -> Self {
        KeyPair {
            key: Arc::from(backend.x25519_key(secret)),
            secret: Zeroizing::new(*secret),
        }
    }

    pub(crate) fn public(&self) -> [u8; 32] {
        self.key.public()
    }
}

/// Hands snow the backend's primitives, our static key pair (so its
/// public half is not recomputed) and the handshake's ephemeral pair
/// (drawn once, so the initiator's states for each offered suite share it).
pub(crate) struct Resolver {
    backend: &'static dyn CryptoBackend,
    suite: Suite,
    static_key: KeyPair,
    ephemeral: KeyPair,
}

impl Resolver {
    pub(crate) fn boxed(
        backend: &'static dyn CryptoBackend,
        suite: Suite,
        static_key: KeyPair,
        ephemeral: KeyPair,
    ) -> Box<dyn CryptoResolver + Send> {
        Box::new(Resolver {
            backend,
            suite,
            static_key,
            ephemeral,
        })
    }
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        // snow asks for one; X25519::generate below never draws from it.
        Some(Box::new(NoRandomness))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519 {
                backend: self.backend,
                current: None,
                public: [0; 32],
                static_key: self.static_key.clone(),
                ephemeral: self.ephemeral.clone(),
            })),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        let wanted = match choice {
            HashChoice::SHA256 => Suite::AesGcmSha256,
            HashChoice::Blake2s => Suite::ChaChaPolyBlake2s,
            _ => return None,
        };
        (wanted == self.suite)
            .then(|| Box::new(NoiseHash(self.backend.hasher(self.suite))) as Box<dyn Hash>)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        let wanted = match choice {
            CipherChoice::AESGCM => Suite::AesGcmSha256,
            CipherChoice::ChaChaPoly => Suite::ChaChaPolyBlake2s,
        };
        (wanted == self.suite).then(|| {
            Box::new(NoiseCipher {
                backend: self.backend,
                suite: self.suite,
                aead: None,
            }) as Box<dyn Cipher>
        })
    }
}

/// The RNG snow holds but never uses (ephemeral keys come from the seed).
struct NoRandomness;

impl Random for NoRandomness {
    fn try_fill_bytes(&mut self, _dest: &mut [u8]) -> Result<(), snow::Error> {
        Err(snow::Error::Rng)
    }
}

struct X25519 {
    backend: &'static dyn CryptoBackend,
    /// The key in this slot (snow keeps one slot for `s`, one for `e`).
    current: Option<KeyPair>,
    public: [u8; 32],
    static_key: KeyPair,
    ephemeral: KeyPair,
}

impl X25519 {
    fn hold(&mut self, pair: KeyPair) {
        self.public = pair.public();
        self.current = Some(pair);
    }
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        // snow hands over exactly `priv_len` bytes: our static key.
        let mut secret = Zeroizing::new([0u8; 32]);
        let n = privkey.len().min(32);
        secret[..n].copy_from_slice(&privkey[..n]);
        // Secrets compared in constant time.
        let pair = if bool::from(secret.ct_eq(&*self.static_key.secret)) {
            self.static_key.clone()
        } else {
            KeyPair::new(self.backend, &secret)
        };
        self.hold(pair);
    }

    fn generate(&mut self, _rng: &mut dyn Random) -> Result<(), snow::Error> {
        self.hold(self.ephemeral.clone());
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |p| &p.secret[..])
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let peer: [u8; 32] = pubkey
            .get(..32)
            .and_then(|k| k.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let key = self.current.as_ref().ok_or(snow::Error::Dh)?;
        // A small-order peer key gives all zeros: the handshake fails.
        let shared = Zeroizing::new(key.key.agree(&peer).ok_or(snow::Error::Dh)?);
        out.get_mut(..32)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(&shared[..]);
        Ok(())
    }
}

struct NoiseHash(Box<dyn Hasher>);

impl Hash for NoiseHash {
    fn name(&self) -> &'static str {
        // snow only compares names it built itself; any stable string.
        "backend"
    }

    fn block_len(&self) -> usize {
        self.0.block_len()
    }

    fn hash_len(&self) -> usize {
        HASH_LEN
    }

    fn reset(&mut self) {
        let _ = self.0.finish_reset();
    }

    fn input(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn result(&mut self, out: &mut [u8]) {
        let digest = self.0.finish_reset();
        let n = out.len().min(HASH_LEN);
        out[..n].copy_from_slice(&digest[..n]);
    }
}

struct NoiseCipher {
    backend: &'static dyn CryptoBackend,
    suite: Suite,
    aead: Option<Box<dyn Aead>>,
}

impl Cipher for NoiseCipher {
    fn name(&self) -> &'static str {
        match self.suite {
            Suite::AesGcmSha256 => "AESGCM",
            Suite::ChaChaPolyBlake2s => "ChaChaPoly",
        }
    }

    fn set(&mut self, key: &[u8; 32]) {
        self.aead = Some(self.backend.aead(self.suite, key));
    }

    fn encrypt(&self, nonce: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        let n = plaintext.len();
        // snow sizes `out` for the tag; it checks lengths before calling.
        let (Some(aead), Some(body)) = (self.aead.as_ref(), out.get_mut(..n + TAG_LEN)) else {
            return 0;
        };
        body[..n].copy_from_slice(plaintext);
        let tag = aead.seal_in_place(nonce, authtext, &mut body[..n]);
        body[n..].copy_from_slice(&tag);
        n + TAG_LEN
    }

    fn decrypt(
        &self,
        nonce: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let n = ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(snow::Error::Decrypt)?;
        let aead = self.aead.as_ref().ok_or(snow::Error::Decrypt)?;
        let body = out.get_mut(..n).ok_or(snow::Error::Decrypt)?;
        body.copy_from_slice(&ciphertext[..n]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&ciphertext[n..]);
        aead.open_in_place(nonce, authtext, body, &tag)
            .map_err(|_| {
                body.zeroize();
                snow::Error::Decrypt
            })?;
        Ok(n)
    }
}
