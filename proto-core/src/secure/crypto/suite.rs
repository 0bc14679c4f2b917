//! The cipher suites a handshake can negotiate.

use alloc::vec::Vec;
use core::fmt;

/// A Noise cipher and hash pair (the DH is always X25519).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Suite {
    /// `Noise_XX_25519_AESGCM_SHA256`: AES-256-GCM and SHA-256.
    AesGcmSha256,
    /// `Noise_XX_25519_ChaChaPoly_BLAKE2s`: ChaCha20-Poly1305 and BLAKE2s,
    /// the one suite of protocol version 1.
    ChaChaPolyBlake2s,
}

impl Suite {
    /// Every suite this build speaks.
    pub const ALL: [Suite; 2] = [Suite::AesGcmSha256, Suite::ChaChaPolyBlake2s];

    /// Its identifier in the handshake's offer and answer.
    pub const fn id(self) -> u8 {
        match self {
            Suite::ChaChaPolyBlake2s => 1,
            Suite::AesGcmSha256 => 2,
        }
    }

    /// The suite with identifier `id`, if this build speaks it.
    pub const fn from_id(id: u8) -> Option<Suite> {
        match id {
            1 => Some(Suite::ChaChaPolyBlake2s),
            2 => Some(Suite::AesGcmSha256),
            _ => None,
        }
    }

    /// The Noise protocol name of the XX handshake under this suite.
    pub const fn noise_name(self) -> &'static str {
        match self {
            Suite::ChaChaPolyBlake2s => "Noise_XX_25519_ChaChaPoly_BLAKE2s",
            Suite::AesGcmSha256 => "Noise_XX_25519_AESGCM_SHA256",
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Suite::AesGcmSha256 => "AES-256-GCM/SHA-256",
            Suite::ChaChaPolyBlake2s => "ChaCha20-Poly1305/BLAKE2s",
        })
    }
}

/// Which suites a side accepts, in its order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SuiteList {
    /// Both suites; AES-GCM first where the backend runs it on hardware
    /// instructions, ChaCha20-Poly1305 first otherwise. The default.
    #[default]
    Auto,
    /// Exactly these, most preferred first (duplicates ignored).
    Only(Vec<Suite>),
}

impl SuiteList {
    /// The suites in order, for a backend that does (or does not) run AES
    /// on hardware.
    pub fn resolve(&self, aes_is_fast: bool) -> Vec<Suite> {
        match self {
            SuiteList::Auto if aes_is_fast => {
                alloc::vec![Suite::AesGcmSha256, Suite::ChaChaPolyBlake2s]
            }
            SuiteList::Auto => alloc::vec![Suite::ChaChaPolyBlake2s, Suite::AesGcmSha256],
            SuiteList::Only(list) => {
                let mut out: Vec<Suite> = Vec::with_capacity(list.len());
                for s in list {
                    if !out.contains(s) {
                        out.push(*s);
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_resolve_in_order_without_duplicates() {
        use Suite::*;
        assert_eq!(
            SuiteList::Auto.resolve(true),
            [AesGcmSha256, ChaChaPolyBlake2s]
        );
        assert_eq!(
            SuiteList::Auto.resolve(false),
            [ChaChaPolyBlake2s, AesGcmSha256]
        );
        let list = SuiteList::Only(alloc::vec![
            ChaChaPolyBlake2s,
            AesGcmSha256,
            ChaChaPolyBlake2s
        ]);
        assert_eq!(list.resolve(true), [ChaChaPolyBlake2s, AesGcmSha256]);
        for s in Suite::ALL {
            assert_eq!(Suite::from_id(s.id()), Some(s));
        }
        assert_eq!(Suite::from_id(0), None);
    }
}
