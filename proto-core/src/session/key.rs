//! Session keys: 48 random bytes as 64 characters of URL-safe base64.
//!
//! The core never draws randomness: the caller passes the 48 bytes (from
//! its injected RNG) to [`SessionKey::from_random`]. A key received from a
//! peer goes through [`SessionKey::parse`], which checks its length and
//! alphabet before anything looks it up, so a store never sees a path
//! separator, a dot, a quote or a megabyte of text where a key should be.
//!
//! The encoding is Go's `base64.URLEncoding` (what webwire uses): 48 bytes
//! are exactly 64 characters, so no `=` padding appears, and every
//! 64-character string of the alphabet is the encoding of exactly one
//! 48-byte value.
//!
//! ```
//! use proto_core::session::SessionKey;
//! let key = SessionKey::from_random([0xfb; 48]);
//! assert_eq!(key.as_str().len(), 64);
//! assert!(key.as_str().starts_with("-_v7"));
//! assert_eq!(SessionKey::parse(key.as_str().as_bytes()), Ok(key));
//! assert!(SessionKey::parse(b"../../etc/passwd").is_err());
//! ```

use core::fmt;

/// Random bytes in a key.
pub const KEY_RANDOM_LEN: usize = 48;
/// Characters in a key's text.
pub const KEY_LEN: usize = 64;
/// A validated session key: 64 characters of `[A-Za-z0-9_-]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey([u8; KEY_LEN]);

/// Why bytes are not a session key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 64 bytes long.
    WrongLength(usize),
    /// A byte outside the URL-safe base64 alphabet.
    BadChar {
        /// Its offset.
        at: usize,
        /// The byte.
        byte: u8,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::WrongLength(n) => write!(f, "session key of {n} bytes, must be 64"),
            KeyError::BadChar { at, byte } => {
                write!(
                    f,
                    "session key byte {at} ({byte:#04x}) is not URL-safe base64"
                )
            }
        }
    }
}

impl core::error::Error for KeyError {}

impl SessionKey {
    /// The key of 48 random bytes (drawn by the caller).
    pub fn from_random(random: [u8; KEY_RANDOM_LEN]) -> Self {
        use base64::Engine;
        let mut out = [0u8; KEY_LEN];
        // 48 bytes are exactly 64 characters: no padding, nothing left over.
        let written = base64::engine::general_purpose::URL_SAFE
            .encode_slice(random, &mut out)
            .unwrap_or(0);
        debug_assert_eq!(written, KEY_LEN);
        SessionKey(out)
    }

    /// Checks received bytes: exactly 64 characters of the alphabet.
    ///
    /// # Errors
    /// [`KeyError`] says which rule broke.
    pub fn parse(text: &[u8]) -> Result<Self, KeyError> {
        let Ok(arr) = <[u8; KEY_LEN]>::try_from(text) else {
            return Err(KeyError::WrongLength(text.len()));
        };
        if let Some(at) = arr
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(KeyError::BadChar { at, byte: arr[at] });
        }
        Ok(SessionKey(arr))
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        // Only alphabet bytes get in (from_random, parse).
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The key's text as bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    /// Only the first 6 characters: a key is a bearer secret, logs should
    /// not hold it whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}…)", &self.as_str()[..6])
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
