//! [`RedbStore`]: the default store, one embedded redb database file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{
    check_key, decode, encode, BoxFuture, SessionStore, StoreConfig, StoreError, StoredSession,
};

/// Name of the database file a [`RedbStore`] keeps inside its directory;
/// the only file it creates.
pub const REDB_FILE_NAME: &str = "sessions.redb";

/// Session key -> JSON of [`StoredSession`]. Keys live inside the file as
/// table keys, never as file names, so no key can reach outside the directory.
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

/// Configuration of a [`RedbStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedbConfig {
    /// Expiry and size limits shared with the other stores.
    pub store: StoreConfig,
    /// Most sessions the file holds; `created` beyond it fails with
    /// [`StoreError::Full`] (after expired sessions were removed), so a flood
    /// of logins cannot fill the disk. Default: 1 000 000.
    pub max_sessions: u64,
}

impl RedbConfig {
    /// Default [`RedbConfig::max_sessions`].
    pub const DEFAULT_MAX_SESSIONS: u64 = 1_000_000;
}

impl Default for RedbConfig {
    fn default() -> RedbConfig {
        RedbConfig {
            store: StoreConfig::default(),
            max_sessions: RedbConfig::DEFAULT_MAX_SESSIONS,
        }
    }
}

/// Sessions in an embedded [redb](https://docs.rs/redb) database: the default
/// store. Survives a restart of the server; every change is committed durably
/// before its future completes. Database work runs on tokio's blocking pool.
///
/// ```no_run
/// use weft_session::store::{RedbConfig, RedbStore};
///
/// # async fn demo() -> Result<(), weft_session::store::StoreError> {
/// // Default: sessions expire 30 days after their last restore.
/// let store = RedbStore::open("/var/lib/myapp/sessions").await?;
/// // Or keep sessions until they are closed.
/// let mut config = RedbConfig::default();
/// config.store.ttl = None;
/// let store = RedbStore::open_with("/var/lib/myapp/sessions-forever", config).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    config: RedbConfig,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (creating if needed) the store in `dir` with the default
    /// [`RedbConfig`]. The directory is created if missing; the database is
    /// the file [`REDB_FILE_NAME`] in it. A database file is locked while a
    /// store has it open: drop every clone before opening it again.
    pub async fn open(dir: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        RedbStore::open_with(dir, RedbConfig::default()).await
    }

    /// [`RedbStore::open`] with `config`.
    pub async fn open_with(
        dir: impl AsRef<Path>,
        config: RedbConfig,
    ) -> Result<RedbStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(REDB_FILE_NAME);
        let file = path.clone();
        let db = tokio::task::spawn_blocking(move || -> Result<Database, StoreError> {
            std::fs::create_dir_all(&dir).map_err(StoreError::Io)?;
            let db = Database::create(&file).map_err(embedded)?;
            // Create the table now so lookups on a fresh store find it.
            let txn = db.begin_write().map_err(embedded)?;
            txn.open_table(SESSIONS).map_err(embedded)?;
            txn.commit().map_err(embedded)?;
            Ok(db)
        })
        .await
        .map_err(StoreError::Task)??;
        Ok(RedbStore {
            db: Arc::new(db),
            config,
            path,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes every session expired at `now_ms`; returns how many. Expired
    /// sessions are also removed when looked up; this sweeps the ones no
    /// client comes back for.
    pub async fn purge_expired(&self, now_ms: u64) -> Result<u64, StoreError> {
        let config = self.config.store.clone();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(embedded)?;
            let removed = purge(
                &mut txn.open_table(SESSIONS).map_err(embedded)?,
                &config,
                now_ms,
            )?;
            txn.commit().map_err(embedded)?;
            Ok(removed)
        })
        .await
    }

    /// Number of sessions in the file, expired ones included until purged.
    pub async fn count(&self) -> Result<u64, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(embedded)?;
            let table = txn.open_table(SESSIONS).map_err(embedded)?;
            table.len().map_err(embedded)
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(StoreError::Task)?
    }
}

/// Removes the sessions of `table` expired at `now_ms`; returns how many.
fn purge(
    table: &mut redb::Table<'_, &str, &[u8]>,
    config: &StoreConfig,
    now_ms: u64,
) -> Result<u64, StoreError> {
    let before = table.len().map_err(embedded)?;
    table
        .retain(|key, value| match decode(value, key) {
            Ok(session) => !config.expired(&session, now_ms),
            // Unreadable entries stay for a person to inspect.
            Err(_) => true,
        })
        .map_err(embedded)?;
    Ok(before - table.len().map_err(embedded)?)
}

fn embedded(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Embedded(Box::new(e.into()))
}

impl SessionStore for RedbStore {
    fn created(&self, session: &StoredSession) -> BoxFuture<'_, Result<(), StoreError>> {
        let checked = self
            .config
            .store
            .check_session(session)
            .and_then(|()| encode(session));
        let key = session.key.clone();
        // The new session's time stands for "now" when making room.
        let now_ms = session.last_lookup_ms;
        let config = self.config.clone();
        Box::pin(async move {
            let value = checked?;
            self.blocking(move |db| {
                let txn = db.begin_write().map_err(embedded)?;
                {
                    let mut table = txn.open_table(SESSIONS).map_err(embedded)?;
                    if table.len().map_err(embedded)? >= config.max_sessions
                        && table.get(key.as_str()).map_err(embedded)?.is_none()
                    {
                        purge(&mut table, &config.store, now_ms)?;
                        if table.len().map_err(embedded)? >= config.max_sessions {
                            return Err(StoreError::Full {
                                max: config.max_sessions,
                            });
                        }
                    }
                    table
                        .insert(key.as_str(), value.as_slice())
                        .map_err(embedded)?;
                }
                txn.commit().map_err(embedded)
            })
            .await
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
            let config = self.config.store.clone();
            self.blocking(move |db| {
                // Read, refresh and write back in one write transaction so a
                // concurrent `closed` cannot be undone by this lookup.
                let txn = db.begin_write().map_err(embedded)?;
                let found = {
                    let mut table = txn.open_table(SESSIONS).map_err(embedded)?;
                    let stored = match table.get(key.as_str()).map_err(embedded)? {
                        Some(value) => Some(decode(value.value(), &key)?),
                        None => None,
                    };
                    match stored {
                        None => None,
                        Some(session) if config.expired(&session, now_ms) => {
                            table.remove(key.as_str()).map_err(embedded)?;
                            None
                        }
                        Some(mut session) => {
                            session.last_lookup_ms = now_ms;
                            let value = encode(&session)?;
                            table
                                .insert(key.as_str(), value.as_slice())
                                .map_err(embedded)?;
                            Some(session)
                        }
                    }
                };
                txn.commit().map_err(embedded)?;
                Ok(found)
            })
            .await
        })
    }

    fn closed(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>> {
        let checked = check_key(key).map(|()| key.to_owned());
        Box::pin(async move {
            let key = checked?;
            self.blocking(move |db| {
                let txn = db.begin_write().map_err(embedded)?;
                txn.open_table(SESSIONS)
                    .map_err(embedded)?
                    .remove(key.as_str())
                    .map_err(embedded)?;
                txn.commit().map_err(embedded)
            })
            .await
        })
    }
}
