//! Which connections hold which session: key -> connection ids, with a
//! maximum of connections per key and a maximum of keys.
//!
//! [`Registry::attach`] is the one check-and-insert: an adapter that calls
//! it under one lock (the registry is a plain value, so it is whatever the
//! adapter's lock makes it) cannot let two restores of a key through where
//! one slot was left.
//!
//! ```
//! use proto_core::session::{Registry, RegistryConfig, RegistryError, SessionKey};
//! let mut reg = Registry::new(RegistryConfig { max_connections_per_key: 2, ..Default::default() });
//! let key = SessionKey::from_random([1; 48]);
//! reg.attach(key, 10).unwrap();
//! reg.attach(key, 11).unwrap();
//! assert_eq!(reg.attach(key, 12), Err(RegistryError::Full { max: 2 }));
//! assert_eq!(reg.detach(10), Some(key));
//! reg.attach(key, 12).unwrap();
//! assert_eq!(reg.connections(&key), &[11, 12]);
//! ```

use super::key::SessionKey;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

/// The registry's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Connections one session may have at once. Default 8 (a user with a
    /// few tabs and devices); webwire's default is unlimited, which lets
    /// one stolen key hold any number of connections.
    pub max_connections_per_key: usize,
    /// Sessions with at least one connection, at once. Default 1,048,576:
    /// one entry per connected session, about a hundred bytes each.
    pub max_keys: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_connections_per_key: 8,
            max_keys: 1 << 20,
        }
    }
}

/// Why a connection was not attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The key has its maximum of connections (reply "max session
    /// connections reached").
    Full {
        /// The limit.
        max: usize,
    },
    /// A new key, and the registry holds its maximum of keys.
    TooManyKeys {
        /// The limit.
        max: usize,
    },
    /// The connection is attached to a session already (detach it first).
    AlreadyAttached,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Full { max } => {
                write!(f, "the session has its maximum of {max} connections")
            }
            RegistryError::TooManyKeys { max } => {
                write!(f, "the registry holds its maximum of {max} sessions")
            }
            RegistryError::AlreadyAttached => f.write_str("the connection has a session already"),
        }
    }
}

impl core::error::Error for RegistryError {}

/// Session key -> connection ids (the adapter's, any `u64`).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    config: RegistryConfig,
    by_key: BTreeMap<SessionKey, Vec<u64>>,
    by_conn: BTreeMap<u64, SessionKey>,
}

impl Registry {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Self {
        Registry {
            config,
            by_key: BTreeMap::new(),
            by_conn: BTreeMap::new(),
        }
    }

    /// The config.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Attaches connection `conn` to `key` if the key has a free slot.
    ///
    /// # Errors
    /// [`RegistryError`]: full, too many keys, or `conn` already attached.
    pub fn attach(&mut self, key: SessionKey, conn: u64) -> Result<(), RegistryError> {
        if self.by_conn.contains_key(&conn) {
            return Err(RegistryError::AlreadyAttached);
        }
        match self.by_key.get_mut(&key) {
            Some(conns) => {
                if conns.len() >= self.config.max_connections_per_key {
                    return Err(RegistryError::Full {
                        max: self.config.max_connections_per_key,
                    });
                }
                conns.push(conn);
            }
            None => {
                if self.config.max_connections_per_key == 0 {
                    return Err(RegistryError::Full { max: 0 });
                }
                if self.by_key.len() >= self.config.max_keys {
                    return Err(RegistryError::TooManyKeys {
                        max: self.config.max_keys,
                    });
                }
                self.by_key.insert(key, alloc::vec![conn]);
            }
        }
        self.by_conn.insert(conn, key);
        Ok(())
    }

    /// Detaches `conn` (its connection closed or its session was closed);
    /// returns the key it held.
    pub fn detach(&mut self, conn: u64) -> Option<SessionKey> {
        let key = self.by_conn.remove(&conn)?;
        if let Some(conns) = self.by_key.get_mut(&key) {
            conns.retain(|&c| c != conn);
            if conns.is_empty() {
                self.by_key.remove(&key);
            }
        }
        Some(key)
    }

    /// The connections of `key`, in attach order.
    pub fn connections(&self, key: &SessionKey) -> &[u64] {
        self.by_key.get(key).map_or(&[], |v| &v[..])
    }

    /// The key `conn` holds.
    pub fn key_of(&self, conn: u64) -> Option<SessionKey> {
        self.by_conn.get(&conn).copied()
    }

    /// Removes `key` and returns its connections: closing a session
    /// everywhere (send each a session-closed message).
    pub fn remove_key(&mut self, key: &SessionKey) -> Vec<u64> {
        let conns = self.by_key.remove(key).unwrap_or_default();
        for c in &conns {
            self.by_conn.remove(c);
        }
        conns
    }

    /// Sessions with at least one connection.
    pub fn session_count(&self) -> usize {
        self.by_key.len()
    }

    /// Attached connections.
    pub fn connection_count(&self) -> usize {
        self.by_conn.len()
    }
}
