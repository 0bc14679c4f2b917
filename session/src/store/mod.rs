//! Session stores: where the server keeps sessions between connections.
//!
//! The server calls the three hooks of [`SessionStore`] (webwire's
//! `OnSessionCreated`, `OnSessionLookup`, `OnSessionClosed`). Three stores
//! come with the crate:
//!
//! - [`RedbStore`]: the default, one embedded database file in a directory;
//!   survives a restart.
//! - [`RedisStore`]: sessions in a Redis server, so several server processes
//!   share them and a client restores on any of them.
//! - [`MemoryStore`]: no persistence; for tests and servers that do not need
//!   sessions to outlive the process.
//!
//! Every store validates the key (see [`check_key`]) before it touches its
//! storage, so a hostile key is refused with [`StoreError::BadKey`] and never
//! reaches a database, a Redis command or a file name.
//!
//! ```
//! use weft_session::store::{MemoryStore, SessionStore, StoredSession};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let key = "a".repeat(64);
//! let session = StoredSession::new(key.clone(), 1_000, Some(r#"{"user":"ann"}"#.into()));
//! store.created(&session).await?;
//! let found = store.lookup(&key, 2_000).await?.expect("just created");
//! assert_eq!(found.last_lookup_ms, 2_000);
//! store.closed(&key).await?;
//! assert!(store.lookup(&key, 3_000).await?.is_none());
//! # Ok::<(), weft_session::store::StoreError>(())
//! # }).unwrap();
//! ```

mod memory;
mod redb;
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::memory::{MemoryConfig, MemoryStore};
pub use self::redb::{RedbConfig, RedbStore, REDB_FILE_NAME};
pub use self::redis::{RedisConfig, RedisStore};

/// A boxed future that can move between threads; what the store hooks return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Length of a session key: 48 random bytes in URL-safe base64.
pub const KEY_LEN: usize = proto_core::session::key::KEY_LEN;

/// A session as a store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    /// The session key: 64 chars of URL-safe base64 (`[A-Za-z0-9_-]`).
    pub key: String,
    /// When the session was created, in unix milliseconds.
    pub creation_ms: u64,
    /// When the session was last created or restored, in unix milliseconds.
    pub last_lookup_ms: u64,
    /// The application's session info: the text of a JSON object, if any.
    pub info: Option<String>,
}

impl StoredSession {
    /// A session created at `creation_ms` (also its last lookup).
    pub fn new(key: String, creation_ms: u64, info: Option<String>) -> StoredSession {
        StoredSession {
            key,
            creation_ms,
            last_lookup_ms: creation_ms,
            info,
        }
    }
}

/// The hooks through which a server keeps its sessions.
///
/// Every method checks its key with [`check_key`] first and fails with
/// [`StoreError::BadKey`] without touching storage.
pub trait SessionStore: Send + Sync + 'static {
    /// The server created a session (webwire's `OnSessionCreated`).
    fn created(&self, session: &StoredSession) -> BoxFuture<'_, Result<(), StoreError>>;
    /// A client asks to restore `key` (`OnSessionLookup`): the session, with
    /// `last_lookup_ms` updated to `now_ms`, or `None` if it is unknown,
    /// closed or expired.
    fn lookup(
        &self,
        key: &str,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Option<StoredSession>, StoreError>>;
    /// The session was closed (`OnSessionClosed`): forget it. Closing an
    /// unknown session is not an error.
    fn closed(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Limits and expiry shared by all stores.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// How long a session lives after it was created or last restored;
    /// `None` keeps sessions until they are closed. An expired session is
    /// treated as absent and removed. Default: 30 days.
    pub ttl: Option<Duration>,
    /// Largest session info accepted by `created`, in bytes of JSON text.
    /// Default: 16 KiB.
    pub max_info_len: usize,
}

impl StoreConfig {
    /// Default [`StoreConfig::ttl`]: 30 days.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
    /// Default [`StoreConfig::max_info_len`]: 16 KiB.
    pub const DEFAULT_MAX_INFO_LEN: usize = 16 * 1024;

    fn ttl_ms(&self) -> Option<u64> {
        self.ttl
            .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
    }

    /// Whether a session last used at `last_lookup_ms` has expired at `now_ms`.
    fn expired(&self, session: &StoredSession, now_ms: u64) -> bool {
        match self.ttl_ms() {
            Some(ttl) => now_ms >= session.last_lookup_ms.saturating_add(ttl),
            None => false,
        }
    }

    /// Checks a session handed to `created`: its key and its info.
    fn check_session(&self, session: &StoredSession) -> Result<(), StoreError> {
        check_key(&session.key)?;
        if let Some(info) = &session.info {
            if info.len() > self.max_info_len {
                return Err(StoreError::InfoTooLarge {
                    len: info.len(),
                    max: self.max_info_len,
                });
            }
            // Stored info is handed back to clients as the `i` object of the
            // session-created message: refuse anything else now, not then.
            match serde_json::from_str::<serde_json::Value>(info) {
                Ok(serde_json::Value::Object(_)) => {}
                _ => return Err(StoreError::BadInfo),
            }
        }
        Ok(())
    }
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            ttl: Some(StoreConfig::DEFAULT_TTL),
            max_info_len: StoreConfig::DEFAULT_MAX_INFO_LEN,
        }
    }
}

/// Whether `key` is a well-formed session key: exactly 64 chars of
/// `[A-Za-z0-9_-]`.
pub fn is_valid_key(key: &str) -> bool {
    proto_core::session::SessionKey::parse(key.as_bytes()).is_ok()
}

/// [`is_valid_key`] as a `Result`: [`StoreError::BadKey`] if malformed.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    if is_valid_key(key) {
        Ok(())
    } else {
        Err(StoreError::BadKey)
    }
}

/// Why a store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The key is not 64 chars of URL-safe base64; storage was not touched.
    BadKey,
    /// The session info is longer than the store's `max_info_len`.
    InfoTooLarge {
        /// Length of the info, in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The session info is not the text of a JSON object.
    BadInfo,
    /// The store holds its maximum number of sessions.
    Full {
        /// The configured maximum.
        max: u64,
    },
    /// A stored session could not be read back (damaged or foreign data).
    Corrupt(String),
    /// Creating the store's directory failed.
    Io(std::io::Error),
    /// The embedded database failed.
    Embedded(Box<::redb::Error>),
    /// Redis failed or could not be reached.
    Redis(::redis::RedisError),
    /// The blocking task running a database operation panicked or was cancelled.
    Task(tokio::task::JoinError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::BadKey => {
                f.write_str("malformed session key (want 64 chars of [A-Za-z0-9_-])")
            }
            StoreError::InfoTooLarge { len, max } => {
                write!(f, "session info of {len} bytes is over the limit of {max}")
            }
            StoreError::BadInfo => f.write_str("session info is not a JSON object"),
            StoreError::Full { max } => write!(f, "session store is full ({max} sessions)"),
            StoreError::Corrupt(why) => write!(f, "stored session is unreadable: {why}"),
            StoreError::Io(e) => write!(f, "session store directory: {e}"),
            StoreError::Embedded(e) => write!(f, "embedded session database: {e}"),
            StoreError::Redis(e) => write!(f, "redis session store: {e}"),
            StoreError::Task(e) => write!(f, "session database task failed: {e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io(e) => Some(e),
            StoreError::Embedded(e) => Some(e.as_ref()),
            StoreError::Redis(e) => Some(e),
            StoreError::Task(e) => Some(e),
            _ => None,
        }
    }
}

impl From<::redis::RedisError> for StoreError {
    fn from(e: ::redis::RedisError) -> StoreError {
        StoreError::Redis(e)
    }
}

/// Encodes a session as the JSON both persistent stores keep.
fn encode(session: &StoredSession) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(session).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Decodes a stored session and checks it belongs to `key`.
fn decode(bytes: &[u8], key: &str) -> Result<StoredSession, StoreError> {
    let session: StoredSession =
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if session.key != key {
        return Err(StoreError::Corrupt(
            "stored key differs from the key it is filed under".into(),
        ));
    }
    Ok(session)
}
