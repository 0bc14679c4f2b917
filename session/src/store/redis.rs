//! [`RedisStore`]: sessions in Redis, shared by every server process using it.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    check_key, decode, encode, BoxFuture, SessionStore, StoreConfig, StoreError, StoredSession,
};

/// Configuration of a [`RedisStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Expiry and size limits shared with the other stores. The TTL is kept
    /// by Redis itself (`PX` on every write), so it is measured by the Redis
    /// server's clock.
    pub store: StoreConfig,
    /// Longest wait for a connection to Redis. Default: 5 s.
    pub connection_timeout: Duration,
    /// Longest wait for the reply to one command. Default: 5 s.
    pub response_timeout: Duration,
    /// Largest stored value `lookup` accepts, in bytes; bigger values are
    /// reported as [`StoreError::Corrupt`]. Default: 64 KiB, which holds any
    /// session within the default `max_info_len`.
    pub max_value_len: usize,
}

impl RedisConfig {
    /// Default [`RedisConfig::connection_timeout`].
    pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default [`RedisConfig::response_timeout`].
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default [`RedisConfig::max_value_len`].
    pub const DEFAULT_MAX_VALUE_LEN: usize = 64 * 1024;
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig {
            store: StoreConfig::default(),
            connection_timeout: RedisConfig::DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: RedisConfig::DEFAULT_RESPONSE_TIMEOUT,
            max_value_len: RedisConfig::DEFAULT_MAX_VALUE_LEN,
        }
    }
}

/// Sessions in Redis, one string value per session: the JSON of
/// [`StoredSession`] under `prefix + key`. Several server processes
/// connected to one Redis with the same prefix see each other's sessions,
/// so a client restores on whichever it reaches. The connection is a
/// reconnecting [`ConnectionManager`]; a store is cheap to clone.
///
/// ```no_run
/// use weft_session::store::{RedisConfig, RedisStore};
///
/// # async fn demo() -> Result<(), weft_session::store::StoreError> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/", "myapp:session:").await?;
/// let mut config = RedisConfig::default();
/// config.store.ttl = Some(std::time::Duration::from_secs(24 * 60 * 60));
/// let daily = RedisStore::connect_with("redis://127.0.0.1:6379/", "myapp:s:", config).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    config: RedisConfig,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://host:port/db`) with the
    /// default [`RedisConfig`]; sessions are stored under `prefix + key`.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect_with(url, prefix, RedisConfig::default()).await
    }

    /// [`RedisStore::connect`] with `config`.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        config: RedisConfig,
    ) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connection_timeout))
            .set_response_timeout(Some(config.response_timeout));
        let conn = ConnectionManager::new_with_config(client, manager_config).await?;
        Ok(RedisStore {
            conn,
            prefix: prefix.to_owned(),
            config,
        })
    }

    /// The Redis key a session key is stored under.
    fn redis_key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    /// `SET` with the TTL as `PX` (or none), plus extra flags.
    fn set_cmd(&self, key: &str, value: &[u8]) -> redis::Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.redis_key(key)).arg(value);
        if let Some(ttl) = self.config.store.ttl_ms() {
            cmd.arg("PX").arg(ttl);
        }
        cmd
    }
}

impl SessionStore for RedisStore {
    fn created(&self, session: &StoredSession) -> BoxFuture<'_, Result<(), StoreError>> {
        let checked = self
            .config
            .store
            .check_session(session)
            .and_then(|()| encode(session))
            .map(|value| self.set_cmd(&session.key, &value));
        Box::pin(async move {
            let cmd = checked?;
            let mut conn = self.conn.clone();
            let _: () = cmd.query_async(&mut conn).await?;
            Ok(())
        })
    }

    fn lookup(
        &self,
        key: &str,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Option<StoredSession>, StoreError>> {
        let checked = check_key(key).map(|()| key.to_owned());
        Box::pin(async move {
            let key = checked?;
            let mut conn = self.conn.clone();
            let value: Option<Vec<u8>> = redis::cmd("GET")
                .arg(self.redis_key(&key))
                .query_async(&mut conn)
                .await?;
            let Some(value) = value else {
                return Ok(None);
            };
            if value.len() > self.config.max_value_len {
                return Err(StoreError::Corrupt(format!(
                    "stored value of {} bytes is over max_value_len {}",
                    value.len(),
                    self.config.max_value_len
                )));
            }
            let mut session = decode(&value, &key)?;
            session.last_lookup_ms = now_ms;
            // XX: refresh only if still there, so a `closed` from another
            // process between GET and SET is not undone; the write also
            // restarts the TTL.
            let mut cmd = self.set_cmd(&key, &encode(&session)?);
            cmd.arg("XX");
            let written: Option<String> = cmd.query_async(&mut conn).await?;
            Ok(written.map(|_| session))
        })
    }

    fn closed(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>> {
        let checked = check_key(key).map(|()| self.redis_key(key));
        Box::pin(async move {
            let redis_key = checked?;
            let mut conn = self.conn.clone();
            let _: i64 = redis::cmd("DEL")
                .arg(redis_key)
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
    }
}
