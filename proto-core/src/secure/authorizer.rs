//! Peer authorization: which verified peers may connect, under which names.

use super::blessing::{
    verify_signature, Blessing, BlessingError, BlessingLimits, PublicKey, SignatureCheck,
    TrustedRoots, SEPARATOR,
};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// One end of a connection as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The transport address as the driver knows it: the adapters fill
    /// it from the socket for TCP and Unix sockets, and take it from the
    /// caller for other transports. Empty only where the caller said so.
    pub address: String,
    /// The static key the handshake proved.
    pub key: PublicKey,
}

/// A peer's blessings after verification against the trusted roots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerBlessings {
    /// Names of the blessings that verified.
    pub names: Vec<String>,
    /// Blessings that did not, with the reason.
    pub invalid: Vec<(String, BlessingError)>,
}

impl PeerBlessings {
    /// Verifies the blessings a peer presented, against `roots`, for the
    /// static key `peer` proved, at `now_secs` within `limits` (see
    /// [`TrustedRoots::verify`]).
    ///
    /// A blessing presented more than once is verified and reported once,
    /// so repeating a chain costs the peer bytes, not us signature checks;
    /// each valid name is listed once.
    pub fn verify(
        roots: &TrustedRoots,
        presented: &[Blessing],
        peer: PublicKey,
        now_secs: u64,
        limits: &BlessingLimits,
    ) -> Self {
        Self::verify_using(
            roots,
            presented,
            peer,
            now_secs,
            limits,
            &mut verify_signature,
        )
    }

    fn verify_using(
        roots: &TrustedRoots,
        presented: &[Blessing],
        peer: PublicKey,
        now_secs: u64,
        limits: &BlessingLimits,
        check: SignatureCheck<'_>,
    ) -> Self {
        let mut out = PeerBlessings::default();
        for (i, b) in presented.iter().enumerate() {
            // Equal blessings encode equally: the same chain again.
            if presented[..i].contains(b) {
                continue;
            }
            match roots.verify_using(b, peer, now_secs, limits, &mut *check) {
                Ok(name) if out.names.contains(&name) => {}
                Ok(name) => out.names.push(name),
                Err(e) => out.invalid.push((b.name(), e)),
            }
        }
        out
    }
}

/// Why an authorizer refused a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// A presented blessing did not verify.
    InvalidBlessing {
        /// Its (claimed) name.
        name: String,
        /// Why.
        error: BlessingError,
    },
    /// A valid name no pattern allows.
    NameNotAllowed(String),
    /// The peer presented no valid blessing.
    NoValidBlessing,
    /// The peer's key is not the one required.
    KeyNotAllowed(PublicKey),
    /// The peer's transport address is not one allowed.
    AddressNotAllowed(String),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::InvalidBlessing { name, error } => {
                write!(f, "blessing {name:?}: {error}")
            }
            RejectReason::NameNotAllowed(n) => write!(f, "name {n:?} not allowed"),
            RejectReason::NoValidBlessing => f.write_str("no valid blessing"),
            RejectReason::KeyNotAllowed(k) => write!(f, "key {k:?} not allowed"),
            RejectReason::AddressNotAllowed(a) => write!(f, "address {a:?} not allowed"),
        }
    }
}

/// An authorizer's refusal, with every reason it found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rejection {
    /// The reasons, in the order found.
    pub reasons: Vec<RejectReason>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("peer rejected")?;
        for (i, r) in self.reasons.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl core::error::Error for Rejection {}

impl Rejection {
    fn with_invalid(remote: &PeerBlessings) -> Self {
        let reasons = remote
            .invalid
            .iter()
            .map(|(name, error)| RejectReason::InvalidBlessing {
                name: name.clone(),
                error: *error,
            })
            .collect();
        Rejection { reasons }
    }
}

/// Decides who may connect, and which of our blessings a peer sees.
///
/// The initiator (dialer) calls [`authorize_peer`](Self::authorize_peer)
/// on the responder's proof before it sends anything identifying; the
/// responder calls it on the initiator's at the end of the handshake.
pub trait PeerAuthorizer: Send + Sync {
    /// The names granted to the peer, or why it is refused.
    fn authorize_peer(
        &self,
        local: &Endpoint,
        remote: &Endpoint,
        remote_blessings: &PeerBlessings,
    ) -> Result<Vec<String>, Rejection>;

    /// Which of `ours` to present to a peer known by `peer_names` (empty
    /// for a responder, which presents first). Default: all of them.
    fn blessings_for_peer(&self, peer_names: &[String], ours: &[Blessing]) -> Vec<Blessing> {
        let _ = peer_names;
        ours.to_vec()
    }
}

/// Accepts any peer that completes the handshake, granting the names of
/// its valid blessings (possibly none).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAny;

impl PeerAuthorizer for AllowAny {
    fn authorize_peer(
        &self,
        _: &Endpoint,
        _: &Endpoint,
        remote: &PeerBlessings,
    ) -> Result<Vec<String>, Rejection> {
        Ok(remote.names.clone())
    }
}

/// Accepts peers holding a valid blessing whose name matches a pattern,
/// granting the matching names.
///
/// A pattern is a name whose components may be `*`: a `*` inside matches
/// exactly one component; a trailing `*` matches one or more. So
/// `acme:alice:*` allows `acme:alice:phone` and `acme:alice:phone:app`
/// but not `acme:alice` nor `acme:bob:phone`.
#[derive(Debug, Clone, Default)]
pub struct AllowNames {
    patterns: Vec<String>,
}

impl AllowNames {
    /// An authorizer allowing `patterns`.
    pub fn new<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Self {
        AllowNames {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `name` matches any pattern.
    pub fn allows(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| pattern_matches(p, name))
    }
}

/// Whether `name` matches `pattern` (see [`AllowNames`]).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let mut p = pattern.split(SEPARATOR).peekable();
    let mut n = name.split(SEPARATOR);
    while let Some(pc) = p.next() {
        let last = p.peek().is_none();
        let Some(nc) = n.next() else {
            return false;
        };
        if pc == "*" {
            if last {
                return true;
            }
        } else if pc != nc {
            return false;
        }
    }
    n.next().is_none()
}

impl PeerAuthorizer for AllowNames {
    fn authorize_peer(
        &self,
        _: &Endpoint,
        _: &Endpoint,
        remote: &PeerBlessings,
    ) -> Result<Vec<String>, Rejection> {
        let granted: Vec<String> = remote
            .names
            .iter()
            .filter(|n| self.allows(n))
            .cloned()
            .collect();
        if !granted.is_empty() {
            return Ok(granted);
        }
        let mut rej = Rejection::with_invalid(remote);
        rej.reasons.extend(
            remote
                .names
                .iter()
                .map(|n| RejectReason::NameNotAllowed(n.clone())),
        );
        if remote.names.is_empty() {
            rej.reasons.push(RejectReason::NoValidBlessing);
        }
        Err(rej)
    }
}

/// Accepts exactly the peer holding this static key, granting the names
/// of its valid blessings.
#[derive(Debug, Clone, Copy)]
pub struct AllowKey(pub PublicKey);

impl PeerAuthorizer for AllowKey {
    fn authorize_peer(
        &self,
        _: &Endpoint,
        remote: &Endpoint,
        blessings: &PeerBlessings,
    ) -> Result<Vec<String>, Rejection> {
        if remote.key == self.0 {
            Ok(blessings.names.clone())
        } else {
            Err(Rejection {
                reasons: alloc::vec![RejectReason::KeyNotAllowed(remote.key)],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::{Blesser, Identity};

    const NOW: u64 = 1_700_000_000;

    /// Verifies `presented` counting signature checks.
    fn counted(
        roots: &TrustedRoots,
        presented: &[Blessing],
        peer: PublicKey,
    ) -> (PeerBlessings, usize) {
        let mut n = 0;
        let limits = BlessingLimits::default();
        let p =
            PeerBlessings::verify_using(roots, presented, peer, NOW, &limits, &mut |k, m, s| {
                n += 1;
                verify_signature(k, m, s)
            });
        (p, n)
    }

    #[test]
    fn a_chain_presented_eight_times_is_verified_once() {
        let acme = Blesser::root("acme", [1; 32]).unwrap();
        let mut roots = TrustedRoots::new();
        let (n, k) = acme.trusted_root();
        roots.add(&n, k);
        let id = Identity::from_secret([3; 32]).public_key();
        let ops = acme.delegate("ops", [8; 32], None).unwrap();
        let b = ops.bless("server", id, None).unwrap();
        let (p, checks) = counted(&roots, &alloc::vec![b.clone(); 8], id);
        assert_eq!(p.names, ["acme:ops:server"]);
        assert!(p.invalid.is_empty());
        assert_eq!(checks, 2, "one chain of two certificates");

        // A forged copy among them is its own blessing, reported once.
        let mut forged = b.clone();
        forged.certificates[1].signature[0] ^= 1;
        let list = [b.clone(), forged.clone(), b.clone(), forged];
        let (p, checks) = counted(&roots, &list, id);
        assert_eq!(p.names, ["acme:ops:server"]);
        assert_eq!(
            p.invalid,
            [("acme:ops:server".into(), BlessingError::BadSignature)]
        );
        assert_eq!(checks, 4);

        // Another chain to the same name verifies, and the name is listed once.
        let other = acme.bless("x", id, Some(NOW + 10)).unwrap();
        let again = acme.bless("x", id, Some(NOW + 20)).unwrap();
        let (p, checks) = counted(&roots, &[other, again], id);
        assert_eq!(p.names, ["acme:x"]);
        assert_eq!(checks, 2);
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("acme:alice:*", "acme:alice:phone"));
        assert!(pattern_matches("acme:alice:*", "acme:alice:phone:app"));
        assert!(!pattern_matches("acme:alice:*", "acme:alice"));
        assert!(!pattern_matches("acme:alice:*", "acme:bob:phone"));
        assert!(pattern_matches("acme:*:phone", "acme:bob:phone"));
        assert!(!pattern_matches("acme:*:phone", "acme:bob:laptop"));
        assert!(pattern_matches("acme:alice", "acme:alice"));
        assert!(!pattern_matches("acme:alice", "acme:alice:phone"));
        assert!(!pattern_matches("acme", "acm"));
    }
}
