//! Identities, blessings (names bound to a static key by signed certificate
//! chains), their wire encoding, and their verification.
//!
//! A blessing `acme:alice:phone` is a chain: the root `acme` (a name and an
//! ed25519 key the verifier trusts), then one certificate per further
//! name component. Each certificate is signed by the key its parent bound
//! (the root key for the first) and binds either a *delegate* ed25519 key
//! (which may sign further certificates) or, last in the chain, the
//! holder's X25519 static key. The Noise handshake proves possession of
//! that static key, so presenting a blessing needs no signature of its own.
//!
//! A certificate may carry a not-before time and an expiry, both signed;
//! [`TrustedRoots::verify`] judges them against a wall-clock input with a
//! skew allowance, and fails closed when that clock is unknown (0).
//!
//! Encoding version 2 states explicitly whether each time is present (in
//! version 1 an expiry of 0 meant "none"). Version 1 lists from older
//! peers are still read, and their certificates verified against the
//! version 1 signed message ([`CertificateFormat::V1`]).

use super::crypto::CryptoBackend;
use crate::wire::{DecodeError, Reader};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::{Zeroize, Zeroizing};

/// Version byte [`encode_blessings`] writes in front of a blessing list
/// (version 1 is still decoded).
pub const ENCODING_VERSION: u8 = 2;

/// Separates name components.
pub const SEPARATOR: char = ':';

const DOMAIN_V1: &[u8] = b"weft blessing certificate v1\0";
const DOMAIN_V2: &[u8] = b"weft blessing certificate v2\0";

// Validity flags of a version 2 certificate; only the first two are signed
// (the third says which message was).
const HAS_NOT_BEFORE: u8 = 1;
const HAS_EXPIRY: u8 = 2;
const SIGNED_V1: u8 = 4;

/// The allowance for clocks that disagree, unless [`BlessingLimits`] says
/// otherwise.
const DEFAULT_CLOCK_SKEW_SECS: u64 = 300;

/// An X25519 static public key: what identifies a peer to Noise.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..)")
    }
}

/// An identity: a static key pair and the blessings bound to its key.
///
/// Clones share one copy of the secret key, wiped when the last clone is
/// dropped; `Debug` never shows it.
#[derive(Clone)]
pub struct Identity {
    secret: Arc<Zeroizing<[u8; 32]>>,
    public: PublicKey,
    blessings: Vec<Blessing>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .field("blessings", &self.blessings)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The identity whose X25519 secret key is `secret` (32 bytes the
    /// caller drew from a good RNG, or stored), with no blessings yet.
    /// The argument's copy is wiped; the caller's own copy is the caller's
    /// to wipe.
    pub fn from_secret(mut secret: [u8; 32]) -> Self {
        let public = PublicKey(super::crypto::Portable.x25519_public(&secret));
        // Filled in place on the heap, so no stack copy outlives this call.
        let mut held = Arc::new(Zeroizing::new([0u8; 32]));
        Arc::make_mut(&mut held).copy_from_slice(&secret);
        secret.zeroize();
        Identity {
            public,
            secret: held,
            blessings: Vec::new(),
        }
    }

    /// The static public key peers see.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Adds a blessing; it must bind this identity's key.
    pub fn add_blessing(&mut self, blessing: Blessing) -> Result<(), BlessingError> {
        if blessing.leaf_key() != Some(self.public) {
            return Err(BlessingError::KeyMismatch);
        }
        self.blessings.push(blessing);
        Ok(())
    }

    /// The blessings this identity holds.
    pub fn blessings(&self) -> &[Blessing] {
        &self.blessings
    }
}

/// What a certificate binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// An ed25519 key that may sign further certificates.
    Delegate([u8; 32]),
    /// A holder's X25519 static key; ends the chain.
    Static(PublicKey),
}

impl Subject {
    fn kind(&self) -> u8 {
        match self {
            Subject::Delegate(_) => 0,
            Subject::Static(_) => 1,
        }
    }

    fn key(&self) -> &[u8; 32] {
        match self {
            Subject::Delegate(k) | Subject::Static(PublicKey(k)) => k,
        }
    }
}

/// One link of a chain: a name component bound to a key, signed by the
/// parent's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The name component this certificate adds.
    pub name: String,
    /// The key it binds.
    pub subject: Subject,
    /// Seconds since the Unix epoch before which it is not yet valid.
    pub not_before: Option<u64>,
    /// Seconds since the Unix epoch from which it is no longer valid.
    pub expiry: Option<u64>,
    /// Which signed message its signature covers.
    pub format: CertificateFormat,
    /// The parent key's ed25519 signature.
    pub signature: [u8; 64],
}

/// Which message a certificate's signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CertificateFormat {
    /// `weft blessing certificate v1`: the expiry as a `u64`, 0 meaning
    /// none, and no not-before. Only read from older peers' blessings: such
    /// a certificate with a not-before or an expiry of 0 is
    /// [`BlessingError::Malformed`], its signature could not bind them.
    V1,
    /// `weft blessing certificate v2`: whether each time is present is
    /// signed too. What [`Blesser`] signs.
    #[default]
    V2,
}

/// When a certificate is valid: from `not_before` (inclusive) until
/// `expiry` (exclusive), seconds since the Unix epoch; `None` leaves that
/// side open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validity {
    /// Not valid before this time.
    pub not_before: Option<u64>,
    /// Not valid from this time on.
    pub expiry: Option<u64>,
}

/// A name bound to a key through a chain of certificates from a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blessing {
    /// The root's name: the first component.
    pub root_name: String,
    /// The root's ed25519 public key.
    pub root_key: [u8; 32],
    /// The chain, root's child first.
    pub certificates: Vec<Certificate>,
}

impl Blessing {
    /// The full name, components joined by `:`.
    pub fn name(&self) -> String {
        let mut s = self.root_name.clone();
        for c in &self.certificates {
            s.push(SEPARATOR);
            s.push_str(&c.name);
        }
        s
    }

    /// The static key the chain ends in, if it does.
    pub fn leaf_key(&self) -> Option<PublicKey> {
        match self.certificates.last()?.subject {
            Subject::Static(k) => Some(k),
            Subject::Delegate(_) => None,
        }
    }

    /// The earliest expiry in the chain.
    pub fn expiry(&self) -> Option<u64> {
        self.certificates.iter().filter_map(|c| c.expiry).min()
    }

    /// The latest not-before time in the chain.
    pub fn not_before(&self) -> Option<u64> {
        self.certificates.iter().filter_map(|c| c.not_before).max()
    }
}

/// The bytes a certificate's signature covers: the parent (the root's
/// name and key, or the parent certificate's signature, which covers its
/// own parent in turn), then this certificate, in its format's layout.
/// Names are at most [`MAX_COMPONENT`] bytes (checked before signing and
/// before verifying), so their lengths fit a byte.
fn signed_message(parent: Parent<'_>, cert: &Certificate) -> Vec<u8> {
    let domain = match cert.format {
        CertificateFormat::V1 => DOMAIN_V1,
        CertificateFormat::V2 => DOMAIN_V2,
    };
    let mut m = Vec::with_capacity(domain.len() + 256);
    m.extend_from_slice(domain);
    match parent {
        Parent::Root(name, key) => {
            m.push(0);
            m.push(name.len() as u8);
            m.extend_from_slice(name.as_bytes());
            m.extend_from_slice(key);
        }
        Parent::Cert(sig) => {
            m.push(1);
            m.extend_from_slice(sig);
        }
    }
    m.push(cert.name.len() as u8);
    m.extend_from_slice(cert.name.as_bytes());
    m.push(cert.subject.kind());
    m.extend_from_slice(cert.subject.key());
    match cert.format {
        CertificateFormat::V1 => m.extend_from_slice(&cert.expiry.unwrap_or(0).to_be_bytes()),
        CertificateFormat::V2 => {
            // Presence is signed: "no expiry" and "expiry 0" differ.
            m.push(validity_flags(cert));
            for t in [cert.not_before, cert.expiry].into_iter().flatten() {
                m.extend_from_slice(&t.to_be_bytes());
            }
        }
    }
    m
}

fn validity_flags(cert: &Certificate) -> u8 {
    let mut f = 0;
    if cert.not_before.is_some() {
        f |= HAS_NOT_BEFORE;
    }
    if cert.expiry.is_some() {
        f |= HAS_EXPIRY;
    }
    f
}

#[derive(Clone, Copy)]
enum Parent<'a> {
    Root(&'a str, &'a [u8; 32]),
    Cert(&'a [u8; 64]),
}

fn parent_of(chain: &Blessing, i: usize) -> Parent<'_> {
    match i.checked_sub(1) {
        None => Parent::Root(&chain.root_name, &chain.root_key),
        Some(p) => Parent::Cert(&chain.certificates[p].signature),
    }
}

/// Longest name component [`Blesser`] accepts, and the encoding's bound.
pub const MAX_COMPONENT: usize = 64;

fn check_component(name: &str) -> Result<(), BlessingError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_COMPONENT
        && !name
            .chars()
            .any(|c| c == SEPARATOR || c == '*' || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(BlessingError::BadName)
    }
}

/// Who signs certificates: a root key pair, or a delegate holding a
/// signing key and the chain that gave it authority.
///
/// Clones share one signing key, wiped when the last clone is dropped.
#[derive(Clone)]
pub struct Blesser {
    key: Arc<SigningKey>,
    chain: Blessing,
}

impl fmt::Debug for Blesser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blesser")
            .field("name", &self.chain.name())
            .finish_non_exhaustive()
    }
}

impl Blesser {
    /// A root named `name` (one component) whose ed25519 secret key is
    /// `secret` (the argument's copy is wiped).
    pub fn root(name: &str, secret: [u8; 32]) -> Result<Self, BlessingError> {
        check_component(name)?;
        let key = signing_key(secret);
        Ok(Blesser {
            chain: Blessing {
                root_name: name.to_string(),
                root_key: key.verifying_key().to_bytes(),
                certificates: Vec::new(),
            },
            key,
        })
    }

    /// This blesser's name (`acme`, or `acme:alice` for a delegate).
    pub fn name(&self) -> String {
        self.chain.name()
    }

    /// The root a verifier must trust for this blesser's blessings.
    pub fn trusted_root(&self) -> (String, [u8; 32]) {
        (self.chain.root_name.clone(), self.chain.root_key)
    }

    fn extend(
        &self,
        name: &str,
        subject: Subject,
        validity: Validity,
    ) -> Result<Blessing, BlessingError> {
        check_component(name)?;
        let mut chain = self.chain.clone();
        if chain.certificates.len() >= usize::from(u8::MAX) {
            return Err(BlessingError::TooLong);
        }
        // Version 1 can say "no not-before, this expiry or none" unambiguously
        // unless the expiry is 0: such certificates are signed as version 1,
        // so peers of the previous release still verify them.
        let format = if validity.not_before.is_none() && validity.expiry != Some(0) {
            CertificateFormat::V1
        } else {
            CertificateFormat::V2
        };
        let mut cert = Certificate {
            name: name.to_string(),
            subject,
            not_before: validity.not_before,
            expiry: validity.expiry,
            format,
            signature: [0; 64],
        };
        cert.signature = sign(
            &self.key,
            &signed_message(parent_of(&chain, chain.certificates.len()), &cert),
        );
        chain.certificates.push(cert);
        Ok(chain)
    }

    /// Blesses the static key `key` as `<this name>:<extension>`, valid
    /// until `expiry` if given.
    pub fn bless(
        &self,
        extension: &str,
        key: PublicKey,
        expiry: Option<u64>,
    ) -> Result<Blessing, BlessingError> {
        let validity = Validity {
            not_before: None,
            expiry,
        };
        self.bless_with(extension, key, validity)
    }

    /// Blesses the static key `key` as `<this name>:<extension>` for `validity`.
    pub fn bless_with(
        &self,
        extension: &str,
        key: PublicKey,
        validity: Validity,
    ) -> Result<Blessing, BlessingError> {
        self.extend(extension, Subject::Static(key), validity)
    }

    /// A delegate `<this name>:<extension>` signing with `secret`, valid
    /// until `expiry` if given.
    pub fn delegate(
        &self,
        extension: &str,
        secret: [u8; 32],
        expiry: Option<u64>,
    ) -> Result<Blesser, BlessingError> {
        let validity = Validity {
            not_before: None,
            expiry,
        };
        self.delegate_with(extension, secret, validity)
    }

    /// A delegate `<this name>:<extension>` signing with `secret`, for
    /// `validity` (the argument's copy is wiped).
    pub fn delegate_with(
        &self,
        extension: &str,
        secret: [u8; 32],
        validity: Validity,
    ) -> Result<Blesser, BlessingError> {
        let key = signing_key(secret);
        let chain = self.extend(
            extension,
            Subject::Delegate(key.verifying_key().to_bytes()),
            validity,
        )?;
        Ok(Blesser { key, chain })
    }
}

/// A shared signing key from `secret`, wiping the argument's copy
/// (`SigningKey` wipes itself on drop).
fn signing_key(mut secret: [u8; 32]) -> Arc<SigningKey> {
    let key = Arc::new(SigningKey::from_bytes(&secret));
    secret.zeroize();
    key
}

/// Roots a verifier trusts: (name, ed25519 key) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedRoots {
    roots: Vec<(String, [u8; 32])>,
}

impl TrustedRoots {
    /// No roots: no blessing verifies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts blessings from the root `name` with key `key`.
    pub fn add(&mut self, name: &str, key: [u8; 32]) -> &mut Self {
        self.roots.push((name.to_string(), key));
        self
    }

    /// Checks `blessing` for a peer whose proven static key is `peer`, at
    /// `now_secs` (seconds since the Unix epoch); returns its name.
    ///
    /// A certificate is valid when
    /// `not_before - skew <= now_secs < expiry + skew`, with the default
    /// skew of 300 s (see [`verify_with`](Self::verify_with)).
    /// `now_secs == 0` means the clock is unknown (a wall clock before the
    /// epoch reaches the core as 0): a chain with any not-before or expiry
    /// then fails with [`BlessingError::ClockUnknown`] rather than being
    /// judged against 1970; a chain with neither still verifies.
    ///
    /// Every check that costs nothing is made before any signature is
    /// verified, so a peer cannot buy ed25519 work with a chain that fails
    /// them: the root is trusted, the chain has the right shape, the leaf
    /// binds `peer`, and every certificate is within its validity.
    pub fn verify(
        &self,
        blessing: &Blessing,
        peer: PublicKey,
        now_secs: u64,
    ) -> Result<String, BlessingError> {
        self.verify_with(blessing, peer, now_secs, &BlessingLimits::default())
    }

    /// [`verify`](Self::verify) with the clock skew of `limits`
    /// ([`BlessingLimits::clock_skew_secs`]).
    pub fn verify_with(
        &self,
        blessing: &Blessing,
        peer: PublicKey,
        now_secs: u64,
        limits: &BlessingLimits,
    ) -> Result<String, BlessingError> {
        self.verify_using(blessing, peer, now_secs, limits, &mut verify_signature)
    }

    /// [`verify`](Self::verify) with the signature check passed in, so
    /// tests can see which signatures are checked, and when.
    pub(crate) fn verify_using(
        &self,
        blessing: &Blessing,
        peer: PublicKey,
        now_secs: u64,
        limits: &BlessingLimits,
        check: SignatureCheck<'_>,
    ) -> Result<String, BlessingError> {
        let known = self
            .roots
            .iter()
            .any(|(n, k)| *n == blessing.root_name && *k == blessing.root_key);
        if !known {
            return Err(BlessingError::UnknownRoot);
        }
        let Some((leaf, above)) = blessing.certificates.split_last() else {
            return Err(BlessingError::Empty);
        };
        // Lengths of longer names would not fit the signed message.
        check_component(&blessing.root_name)?;
        for c in &blessing.certificates {
            check_component(&c.name)?;
        }
        let unsignable_v1 = |c: &Certificate| {
            c.format == CertificateFormat::V1 && (c.not_before.is_some() || c.expiry == Some(0))
        };
        if blessing.certificates.iter().any(unsignable_v1) {
            return Err(BlessingError::Malformed);
        }
        if above
            .iter()
            .any(|c| !matches!(c.subject, Subject::Delegate(_)))
        {
            return Err(BlessingError::Malformed);
        }
        let Subject::Static(leaf_key) = leaf.subject else {
            return Err(BlessingError::Malformed);
        };
        if leaf_key != peer {
            return Err(BlessingError::KeyMismatch);
        }
        check_validity(&blessing.certificates, now_secs, limits.clock_skew_secs)?;
        // Only now the signatures, root first: each signer is the key the
        // certificate before it bound.
        let mut signer = &blessing.root_key;
        for (i, cert) in blessing.certificates.iter().enumerate() {
            let msg = signed_message(parent_of(blessing, i), cert);
            if !check(signer, &msg, &cert.signature) {
                return Err(BlessingError::BadSignature);
            }
            if let Subject::Delegate(k) = &cert.subject {
                signer = k;
            }
        }
        Ok(blessing.name())
    }
}

/// Whether every certificate is valid at `now` give or take `skew`.
fn check_validity(certs: &[Certificate], now: u64, skew: u64) -> Result<(), BlessingError> {
    let timed = certs
        .iter()
        .any(|c| c.not_before.is_some() || c.expiry.is_some());
    // A clock the driver could not read arrives as 0; judging against
    // 1970 would admit certificates not yet valid.
    if timed && now == 0 {
        return Err(BlessingError::ClockUnknown);
    }
    for c in certs {
        if c.not_before.is_some_and(|t| now < t.saturating_sub(skew)) {
            return Err(BlessingError::NotYetValid);
        }
        if c.expiry.is_some_and(|t| now >= t.saturating_add(skew)) {
            return Err(BlessingError::Expired);
        }
    }
    Ok(())
}

/// A signature check: `(key, message, signature) -> valid`.
pub(crate) type SignatureCheck<'a> = &'a mut dyn FnMut(&[u8; 32], &[u8], &[u8; 64]) -> bool;

/// Every certificate signature weft checks goes through here (strict
/// ed25519: no small-order keys, no malleable signatures), so one place
/// can later hand it to another crypto backend.
pub(crate) fn verify_signature(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(key)
        .and_then(|vk| vk.verify_strict(msg, &Signature::from_bytes(sig)))
        .is_ok()
}

/// Every certificate weft signs is signed here (the counterpart of
/// [`verify_signature`]).
fn sign(key: &SigningKey, msg: &[u8]) -> [u8; 64] {
    key.sign(msg).to_bytes()
}

/// Bounds on an encoded blessing list (a peer's handshake payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlessingLimits {
    /// Blessings one peer may present. Default 8.
    pub max_blessings: usize,
    /// Certificates per chain. Default 8.
    pub max_chain: usize,
    /// How far the peer's clock (or the signer's) may be from ours: a
    /// certificate is accepted from `skew` seconds before its not-before
    /// until `skew` seconds after its expiry. Default 300 (5 minutes).
    pub clock_skew_secs: u64,
}

impl Default for BlessingLimits {
    fn default() -> Self {
        BlessingLimits {
            max_blessings: 8,
            max_chain: 8,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
        }
    }
}

/// Appends the encoding of `blessings`: version ([`ENCODING_VERSION`]),
/// count, then each chain. A certificate is its name, subject kind and key,
/// a flags byte (bit 0: a not-before follows, bit 1: an expiry follows,
/// bit 2: signed in [`CertificateFormat::V1`]), those times as big-endian
/// `u64`s, and its signature.
///
/// A list whose certificates are all [`CertificateFormat::V1`] (with no
/// not-before and no expiry of 0) is written in the version 1 layout (expiry as a `u64`, 0 for none), which peers of
/// the previous release read.
pub fn encode_blessings(blessings: &[Blessing], out: &mut Vec<u8>) {
    let all_v1 = blessings.iter().flat_map(|b| &b.certificates).all(|c| {
        c.format == CertificateFormat::V1 && c.not_before.is_none() && c.expiry != Some(0)
    });
    if all_v1 {
        encode_blessings_v1(blessings, out);
        return;
    }
    out.push(ENCODING_VERSION);
    out.push(blessings.len().min(255) as u8);
    for b in blessings.iter().take(255) {
        put_name(out, &b.root_name);
        out.extend_from_slice(&b.root_key);
        out.push(b.certificates.len().min(255) as u8);
        for c in b.certificates.iter().take(255) {
            put_name(out, &c.name);
            out.push(c.subject.kind());
            out.extend_from_slice(c.subject.key());
            let mut flags = validity_flags(c);
            if c.format == CertificateFormat::V1 {
                flags |= SIGNED_V1;
            }
            out.push(flags);
            for t in [c.not_before, c.expiry].into_iter().flatten() {
                out.extend_from_slice(&t.to_be_bytes());
            }
            out.extend_from_slice(&c.signature);
        }
    }
}

/// Version 1: version, count, then each chain; a certificate is its name,
/// subject kind and key, its expiry (0: none) and its signature.
fn encode_blessings_v1(blessings: &[Blessing], out: &mut Vec<u8>) {
    out.push(1);
    out.push(blessings.len().min(255) as u8);
    for b in blessings.iter().take(255) {
        put_name(out, &b.root_name);
        out.extend_from_slice(&b.root_key);
        out.push(b.certificates.len().min(255) as u8);
        for c in b.certificates.iter().take(255) {
            put_name(out, &c.name);
            out.push(c.subject.kind());
            out.extend_from_slice(c.subject.key());
            out.extend_from_slice(&c.expiry.unwrap_or(0).to_be_bytes());
            out.extend_from_slice(&c.signature);
        }
    }
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    // Names are checked at creation: at most MAX_COMPONENT bytes.
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

/// Decodes a blessing list written by [`encode_blessings`] (version 2) or
/// by an older peer (version 1, where an expiry of 0 meant none) from `r`,
/// within `limits`. Signatures are not checked here: see [`TrustedRoots::verify`].
pub fn decode_blessings(
    r: &mut Reader<'_>,
    limits: &BlessingLimits,
) -> Result<Vec<Blessing>, DecodeError> {
    let version = r.u8()?;
    if version != 1 && version != 2 {
        return Err(DecodeError::Invalid("blessing encoding version"));
    }
    let n = usize::from(r.u8()?);
    if n > limits.max_blessings {
        return Err(DecodeError::Invalid("too many blessings"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let root_name = get_name(r)?;
        let root_key = array::<32>(r)?;
        let k = usize::from(r.u8()?);
        if k > limits.max_chain {
            return Err(DecodeError::Invalid("blessing chain too long"));
        }
        let mut certificates = Vec::with_capacity(k);
        for _ in 0..k {
            let name = get_name(r)?;
            let kind = r.u8()?;
            let key = array::<32>(r)?;
            let subject = match kind {
                0 => Subject::Delegate(key),
                1 => Subject::Static(PublicKey(key)),
                _ => return Err(DecodeError::Invalid("certificate subject kind")),
            };
            let (not_before, expiry, format) = if version == 1 {
                let expiry = u64::from_be_bytes(array::<8>(r)?);
                (None, (expiry != 0).then_some(expiry), CertificateFormat::V1)
            } else {
                let flags = r.u8()?;
                if flags & !(HAS_NOT_BEFORE | HAS_EXPIRY | SIGNED_V1) != 0 {
                    return Err(DecodeError::Invalid("certificate flags"));
                }
                let mut time = |bit| -> Result<Option<u64>, DecodeError> {
                    Ok(if flags & bit != 0 {
                        Some(u64::from_be_bytes(array::<8>(r)?))
                    } else {
                        None
                    })
                };
                let not_before = time(HAS_NOT_BEFORE)?;
                let expiry = time(HAS_EXPIRY)?;
                let format = if flags & SIGNED_V1 != 0 {
                    CertificateFormat::V1
                } else {
                    CertificateFormat::V2
                };
                (not_before, expiry, format)
            };
            let signature = array::<64>(r)?;
            certificates.push(Certificate {
                name,
                subject,
                not_before,
                expiry,
                format,
                signature,
            });
        }
        out.push(Blessing {
            root_name,
            root_key,
            certificates,
        });
    }
    Ok(out)
}

fn get_name(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let len = usize::from(r.u8()?);
    let raw = r.bytes(len)?;
    let s = core::str::from_utf8(raw).map_err(|_| DecodeError::Invalid("name is not UTF-8"))?;
    check_component(s).map_err(|_| DecodeError::Invalid("bad name component"))?;
    Ok(s.to_string())
}

fn array<const N: usize>(r: &mut Reader<'_>) -> Result<[u8; N], DecodeError> {
    let mut a = [0u8; N];
    a.copy_from_slice(r.bytes(N)?);
    Ok(a)
}

/// Why a blessing is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlessingError {
    /// Its root is not among the verifier's trusted roots.
    UnknownRoot,
    /// A certificate in the chain has expired.
    Expired,
    /// A certificate in the chain is not valid yet.
    NotYetValid,
    /// The chain carries a not-before or an expiry and the verifier's
    /// clock is unknown (`now_secs == 0`).
    ClockUnknown,
    /// A signature does not verify.
    BadSignature,
    /// The chain binds a different static key than the peer proved.
    KeyMismatch,
    /// The chain has no certificate.
    Empty,
    /// A static key before the end of the chain, a delegate at its end,
    /// or a [`CertificateFormat::V1`] certificate with a time its
    /// signature could not cover.
    Malformed,
    /// A name component is empty, too long, or holds `:`, `*` or a control character.
    BadName,
    /// The chain is longer than the encoding allows.
    TooLong,
}

impl fmt::Display for BlessingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlessingError::UnknownRoot => "root not trusted",
            BlessingError::Expired => "certificate expired",
            BlessingError::NotYetValid => "certificate not yet valid",
            BlessingError::ClockUnknown => "certificate validity needs a wall clock",
            BlessingError::BadSignature => "bad certificate signature",
            BlessingError::KeyMismatch => "blessing bound to another key",
            BlessingError::Empty => "blessing has no certificate",
            BlessingError::Malformed => "malformed certificate chain",
            BlessingError::BadName => "bad name component",
            BlessingError::TooLong => "certificate chain too long",
        })
    }
}

impl core::error::Error for BlessingError {}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    const NOW: u64 = 1_700_000_000;

    fn setup() -> (Blesser, TrustedRoots, Identity) {
        let acme = Blesser::root("acme", [1; 32]).unwrap();
        let mut roots = TrustedRoots::new();
        let (n, k) = acme.trusted_root();
        roots.add(&n, k);
        (acme, roots, Identity::from_secret([3; 32]))
    }

    /// Verifies with a counting signature check; (result, checks made).
    fn counted(
        roots: &TrustedRoots,
        b: &Blessing,
        peer: PublicKey,
        now: u64,
    ) -> (Result<String, BlessingError>, usize) {
        let mut n = 0;
        let limits = BlessingLimits::default();
        let r = roots.verify_using(b, peer, now, &limits, &mut |k, m, s| {
            n += 1;
            verify_signature(k, m, s)
        });
        (r, n)
    }

    #[test]
    fn a_valid_chain_checks_one_signature_per_certificate() {
        let (acme, roots, id) = setup();
        let ops = acme.delegate("ops", [8; 32], None).unwrap();
        let b = ops.bless("server", id.public_key(), None).unwrap();
        assert_eq!(
            counted(&roots, &b, id.public_key(), NOW),
            (Ok("acme:ops:server".into()), 2)
        );
    }

    #[test]
    fn cheap_failures_check_no_signature() {
        let (acme, roots, id) = setup();
        let other = Identity::from_secret([4; 32]).public_key();
        let b = acme
            .bless("server", id.public_key(), Some(NOW - 300))
            .unwrap();
        // Wrong leaf key, expired, unknown root, bad shape: no ed25519 work.
        assert_eq!(
            counted(&roots, &b, other, NOW),
            (Err(BlessingError::KeyMismatch), 0)
        );
        assert_eq!(
            counted(&roots, &b, id.public_key(), NOW),
            (Err(BlessingError::Expired), 0)
        );
        assert_eq!(
            counted(&TrustedRoots::new(), &b, id.public_key(), NOW),
            (Err(BlessingError::UnknownRoot), 0)
        );
        let ops = acme.delegate("ops", [8; 32], None).unwrap();
        let mut swapped = ops.bless("server", id.public_key(), None).unwrap();
        swapped.certificates.reverse();
        assert_eq!(
            counted(&roots, &swapped, id.public_key(), NOW),
            (Err(BlessingError::Malformed), 0)
        );
        // A name too long for its length byte in the signed message.
        let mut long = acme.bless("server", id.public_key(), None).unwrap();
        long.certificates[0].name = "a".repeat(256 + 6);
        assert_eq!(
            counted(&roots, &long, id.public_key(), NOW),
            (Err(BlessingError::BadName), 0)
        );
    }

    #[test]
    fn a_bad_signature_stops_at_the_first_certificate() {
        let (acme, roots, id) = setup();
        let ops = acme.delegate("ops", [8; 32], None).unwrap();
        let mut b = ops.bless("server", id.public_key(), None).unwrap();
        b.certificates[0].signature[0] ^= 1;
        assert_eq!(
            counted(&roots, &b, id.public_key(), NOW),
            (Err(BlessingError::BadSignature), 1)
        );
    }

    #[test]
    fn verify_signature_is_strict_ed25519() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let pk = key.verifying_key().to_bytes();
        let sig = sign(&key, b"m");
        assert!(verify_signature(&pk, b"m", &sig));
        assert!(!verify_signature(&pk, b"n", &sig));
        // Key and R both the identity point, s = 0: plain `verify` accepts
        // this forgery for any message; the strict check must not.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert!(weak.verify(b"m", &Signature::from_bytes(&forged)).is_ok());
        assert!(!verify_signature(&identity, b"m", &forged));
    }

    #[test]
    fn identity_clones_share_one_secret_and_debug_hides_it() {
        let a = Identity::from_secret([0x5a; 32]);
        assert_eq!(a.secret(), &[0x5a; 32]);
        assert_eq!(
            a.public_key().0,
            super::super::crypto::CryptoBackend::x25519_public(
                &super::super::crypto::Portable,
                &[0x5a; 32]
            )
        );
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.secret, &b.secret));
        assert_eq!(Arc::strong_count(&a.secret), 2);
        let held = Arc::downgrade(&a.secret);
        drop((a, b));
        // The last clone gone, the holder (a `Zeroizing`) was dropped.
        assert!(held.upgrade().is_none());

        let id = Identity::from_secret([0x5a; 32]);
        for shown in [alloc::format!("{id:?}"), alloc::format!("{id:#?}")] {
            assert!(shown.contains("PublicKey("), "{shown}");
            assert!(
                !shown.contains("90, 90") && !shown.contains("90,\n"),
                "{shown}"
            );
            assert!(!shown.to_lowercase().contains("5a5a5a"), "{shown}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }

    #[test]
    fn blesser_clones_share_one_signing_key_and_debug_hides_it() {
        let root = Blesser::root("acme", [0x5a; 32]).unwrap();
        let copy = root.clone();
        assert!(Arc::ptr_eq(&root.key, &copy.key));
        let ops = root.delegate("ops", [0x6b; 32], None).unwrap();
        assert!(!Arc::ptr_eq(&root.key, &ops.key));
        assert_eq!(ops.clone().name(), "acme:ops");
        for shown in [alloc::format!("{root:?}"), alloc::format!("{ops:#?}")] {
            assert!(
                !shown.contains("90, 90") && !shown.contains("107, 107"),
                "{shown}"
            );
            assert!(!shown.contains("key"), "{shown}");
        }
    }
}
