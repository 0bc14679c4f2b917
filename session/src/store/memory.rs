//! [`MemoryStore`]: sessions in a map, gone when the process ends.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{check_key, BoxFuture, SessionStore, StoreConfig, StoreError, StoredSession};

/// Configuration of a [`MemoryStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Expiry and size limits shared with the other stores.
    pub store: StoreConfig,
    /// Most sessions held at once; `created` beyond it fails with
    /// [`StoreError::Full`] (after expired sessions were dropped).
    /// Default: 100 000.
    pub max_sessions: usize,
}

impl MemoryConfig {
    /// Default [`MemoryConfig::max_sessions`].
    pub const DEFAULT_MAX_SESSIONS: usize = 100_000;
}

impl Default for MemoryConfig {
    fn default() -> MemoryConfig {
        MemoryConfig {
            store: StoreConfig::default(),
            max_sessions: MemoryConfig::DEFAULT_MAX_SESSIONS,
        }
    }
}

/// Sessions kept in memory only: for tests, and for servers whose sessions
/// need not outlive the process. Each hook does its work when called; the
/// returned future is already complete.
///
/// ```
/// use weft_session::store::{MemoryConfig, MemoryStore};
///
/// let mut config = MemoryConfig::default();
/// config.max_sessions = 1_000;
/// let store = MemoryStore::with_config(config);
/// assert!(store.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    config: MemoryConfig,
    sessions: Mutex<HashMap<String, StoredSession>>,
}

impl MemoryStore {
    /// An empty store with the default configuration.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store with `config`.
    pub fn with_config(config: MemoryConfig) -> MemoryStore {
        MemoryStore {
            config,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Number of sessions held, expired ones included until they are purged.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every session expired at `now_ms`; returns how many.
    pub fn purge_expired(&self, now_ms: u64) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, s| !self.config.store.expired(s, now_ms));
        before - map.len()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredSession>> {
        // No code panics while holding the lock, but stay usable if it did.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn created_now(&self, session: &StoredSession) -> Result<(), StoreError> {
        self.config.store.check_session(session)?;
        let mut map = self.map();
        if map.len() >= self.config.max_sessions && !map.contains_key(&session.key) {
            let now = session.last_lookup_ms;
            map.retain(|_, s| !self.config.store.expired(s, now));
            if map.len() >= self.config.max_sessions {
                return Err(StoreError::Full {
                    max: u64::try_from(self.config.max_sessions).unwrap_or(u64::MAX),
                });
            }
        }
        map.insert(session.key.clone(), session.clone());
        Ok(())
    }

    fn lookup_now(&self, key: &str, now_ms: u64) -> Result<Option<StoredSession>, StoreError> {
        check_key(key)?;
        let mut map = self.map();
        let Some(session) = map.get_mut(key) else {
            return Ok(None);
        };
        if self.config.store.expired(session, now_ms) {
            map.remove(key);
            return Ok(None);
        }
        session.last_lookup_ms = now_ms;
        Ok(Some(session.clone()))
    }

    fn closed_now(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.map().remove(key);
        Ok(())
    }
}

impl SessionStore for MemoryStore {
    fn created(&self, session: &StoredSession) -> BoxFuture<'_, Result<(), StoreError>> {
        let result = self.created_now(session);
        Box::pin(async move { result })
    }

    fn lookup(
        &self,
        key: &str,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Option<StoredSession>, StoreError>> {
        let result = self.lookup_now(key, now_ms);
        Box::pin(async move { result })
    }

    fn closed(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>> {
        let result = self.closed_now(key);
        Box::pin(async move { result })
    }
}
