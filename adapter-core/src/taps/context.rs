//! The TAPS context (RFC 9622's "system" state an application's
//! preconnections share): the resolver, the RTT and success cache (which
//! can be saved and restored), and the racing, connection and mux
//! settings.

use super::resolve::{Resolver, SystemResolver};
use crate::Config;
use proto_core::taps::cache::{CacheConfig, PathCache, RestoreError};
use proto_core::taps::connection::Config as ConnectionConfig;
use proto_core::taps::race::RaceConfig;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// Settings every connection made through a [`Context`] uses. Every limit
/// is a field of one of these configs, each with its documented default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Racing: delays, timeouts, bounds ([`RaceConfig`]'s defaults follow
    /// Happy Eyeballs v3).
    pub race: RaceConfig,
    /// Message connections: queue and buffer limits.
    pub connection: ConnectionConfig,
    /// The mux under the multistreaming stacks.
    pub mux: Config,
    /// The RTT and success cache's bounds.
    pub cache: CacheConfig,
    /// Connections a listener holds, established and not yet accepted;
    /// more are closed at once. Default 128.
    pub listen_backlog: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            race: RaceConfig::default(),
            connection: ConnectionConfig::default(),
            mux: Config::default(),
            cache: CacheConfig::default(),
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
        }
    }
}

/// What a listener holds by default before closing new connections.
pub const DEFAULT_LISTEN_BACKLOG: usize = 128;

pub(crate) struct Inner {
    pub resolver: Arc<dyn Resolver>,
    pub cache: Mutex<PathCache>,
    pub settings: Settings,
}

/// Shared by the preconnections of an application: cheap to clone.
///
/// ```
/// let ctx = adapter_core::taps::Context::new();
/// let saved = ctx.save_cache();
/// let again = adapter_core::taps::Context::new();
/// again.restore_cache(&saved).unwrap();
/// ```
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl Context {
    /// The system resolver and default settings.
    pub fn new() -> Self {
        Context::with(Arc::new(SystemResolver), Settings::default())
    }

    /// A context with this resolver and these settings.
    pub fn with(resolver: Arc<dyn Resolver>, settings: Settings) -> Self {
        Context {
            inner: Arc::new(Inner {
                resolver,
                cache: Mutex::new(PathCache::new(settings.cache.clone())),
                settings,
            }),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, PathCache> {
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cache in its saved form (versioned, checksummed).
    pub fn save_cache(&self) -> Vec<u8> {
        self.cache().save()
    }

    /// Replaces the cache with a saved one; a corrupted or foreign file is
    /// refused with the reason, and the cache is left as it was.
    pub fn restore_cache(&self, saved: &[u8]) -> Result<(), RestoreError> {
        let restored = PathCache::restore_with(self.inner.settings.cache.clone(), saved)?;
        *self.cache() = restored;
        Ok(())
    }

    /// Entries in the cache.
    pub fn cached_remotes(&self) -> usize {
        self.cache().len()
    }
}
