//! What past connections taught: per remote and stack, whether the last
//! attempt succeeded and a smoothed round-trip time (the cached state
//! RFC 9623 lets an implementation order candidates by). Selection ranks
//! stacks with it; adapters save and restore it across runs.
//!
//! Bounded: at most [`CacheConfig::max_entries`] entries, the least
//! recently recorded evicted first.
//!
//! ```
//! use proto_core::taps::cache::{PathCache, RemoteKey};
//! use proto_core::taps::candidate::Stack;
//! use proto_core::time::Duration;
//!
//! let mut cache = PathCache::default();
//! let remote = RemoteKey::Host { name: "example.com".into(), port: 443 };
//! cache.record_success(&remote, Stack::SecureMux, Duration::from_millis(40));
//! assert_eq!(cache.rtt_estimate(&remote, Stack::SecureMux), Some(Duration::from_millis(40)));
//! let restored = PathCache::restore(&cache.save()).unwrap();
//! assert_eq!(restored.save(), cache.save());
//! ```

use super::candidate::Stack;
use super::endpoint::{normalize_host_name, Endpoint, Resolution, ValidRemote};
use crate::time::Duration;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Cache limits. [`Default`] gives the documented values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Entries (remote and stack pairs) kept. Default 256: a client talks
    /// to few remotes, each with at most five stacks; an entry is under
    /// 100 bytes plus its name, so the cache stays under ~100 KiB.
    /// [`PathCache::restore`] refuses a saved cache holding more.
    pub max_entries: usize,
    /// Longest Unix path accepted in a key on restore. Default 107, as
    /// [`SpecifierLimits`](super::endpoint::SpecifierLimits).
    pub max_unix_path: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 256,
            max_unix_path: 107,
        }
    }
}

/// Which remote an entry is about: what the application named, before
/// resolution (a host name stays one key whatever addresses it resolves
/// to today).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RemoteKey {
    /// A host name (lowercase, no trailing dot) and port.
    Host {
        /// The name.
        name: String,
        /// The port.
        port: u16,
    },
    /// An IP address and port.
    Addr(SocketAddr),
    /// A Unix socket path.
    Unix(String),
}

impl RemoteKey {
    /// The key of a validated remote.
    pub fn of(remote: &ValidRemote) -> RemoteKey {
        match &remote.resolution {
            Resolution::Lookup { host, port } => RemoteKey::Host {
                name: host.clone(),
                port: *port,
            },
            Resolution::Ready(Endpoint::Ip(a)) => RemoteKey::Addr(canonical(*a)),
            Resolution::Ready(Endpoint::Unix(p)) => RemoteKey::Unix(p.clone()),
        }
    }
}

/// Flow info and scope are not saved; keys carry neither so a restored
/// key equals the recorded one.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(_) => a,
        SocketAddr::V6(v6) => SocketAddr::new((*v6.ip()).into(), v6.port()),
    }
}

/// What the cache knows about one remote on one stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheEntry {
    /// Whether the latest recorded attempt succeeded.
    pub last_succeeded: bool,
    /// Smoothed RTT (RFC 6298's SRTT), if a success was ever recorded.
    pub srtt: Option<Duration>,
    /// RTT variation (RFC 6298's RTTVAR); zero without samples.
    pub rttvar: Duration,
    /// Successes recorded (saturating).
    pub successes: u32,
    /// Failures recorded (saturating).
    pub failures: u32,
}

/// How the cache ranks a stack for a remote: lower is tried first. Last
/// success before unknown before last failure; then the lower smoothed
/// RTT, unknown RTTs last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CacheRank {
    class: u8,
    srtt_nanos: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: CacheEntry,
    tick: u64,
}

/// The RTT and success cache. See the [module](self) docs.
#[derive(Debug, Clone, Default)]
pub struct PathCache {
    config: CacheConfig,
    slots: BTreeMap<(RemoteKey, Stack), Slot>,
    tick: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl PathCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        PathCache {
            config,
            slots: BTreeMap::new(),
            tick: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The entry for `remote` on `stack`.
    pub fn entry(&self, remote: &RemoteKey, stack: Stack) -> Option<&CacheEntry> {
        let key = canonical_key(remote, &self.config)?;
        self.slots.get(&(key, stack)).map(|s| &s.entry)
    }

    /// The smoothed RTT of `remote` on `stack`, if a success was recorded.
    pub fn rtt_estimate(&self, remote: &RemoteKey, stack: Stack) -> Option<Duration> {
        self.entry(remote, stack).and_then(|e| e.srtt)
    }

    /// The lowest smoothed RTT of `remote` on any stack.
    pub fn best_rtt(&self, remote: &RemoteKey) -> Option<Duration> {
        let remote = canonical_key(remote, &self.config)?;
        self.slots
            .iter()
            .filter(|((r, _), _)| *r == remote)
            .filter_map(|(_, s)| s.entry.srtt)
            .min()
    }

    /// The rank of `stack` for `remote` (see [`CacheRank`]).
    pub fn rank(&self, remote: &RemoteKey, stack: Stack) -> CacheRank {
        match self.entry(remote, stack) {
            None => CacheRank {
                class: 1,
                srtt_nanos: u64::MAX,
            },
            Some(e) => CacheRank {
                class: if e.last_succeeded { 0 } else { 2 },
                srtt_nanos: e.srtt.map_or(u64::MAX, nanos),
            },
        }
    }

    /// Records a connection established on `stack` to `remote` after `rtt`
    /// (the handshake's round trip), folding it into the smoothed RTT.
    /// Returns false, recording nothing, for a key that cannot be saved
    /// (an invalid host name, a Unix path over the limit) or with
    /// `max_entries` 0.
    pub fn record_success(&mut self, remote: &RemoteKey, stack: Stack, rtt: Duration) -> bool {
        let sample = nanos(rtt);
        self.update(remote, stack, |e| {
            e.last_succeeded = true;
            e.successes = e.successes.saturating_add(1);
            match e.srtt {
                None => {
                    e.srtt = Some(Duration::from_nanos(sample));
                    e.rttvar = Duration::from_nanos(sample / 2);
                }
                Some(srtt) => {
                    let srtt = nanos(srtt);
                    let var = nanos(e.rttvar);
                    let dev = srtt.abs_diff(sample);
                    e.rttvar = Duration::from_nanos(var - var / 4 + dev / 4);
                    e.srtt = Some(Duration::from_nanos(srtt - srtt / 8 + sample / 8));
                }
            }
        })
    }

    /// Records a failed attempt on `stack` to `remote`. Returns false as
    /// [`record_success`](Self::record_success) does.
    pub fn record_failure(&mut self, remote: &RemoteKey, stack: Stack) -> bool {
        self.update(remote, stack, |e| {
            e.last_succeeded = false;
            e.failures = e.failures.saturating_add(1);
        })
    }

    /// Forgets everything about `remote`.
    pub fn forget(&mut self, remote: &RemoteKey) {
        let Some(remote) = canonical_key(remote, &self.config) else {
            return;
        };
        self.slots.retain(|(r, _), _| *r != remote);
    }

    fn update(
        &mut self,
        remote: &RemoteKey,
        stack: Stack,
        f: impl FnOnce(&mut CacheEntry),
    ) -> bool {
        if self.config.max_entries == 0 {
            return false;
        }
        let Some(key) = canonical_key(remote, &self.config) else {
            return false;
        };
        let key = (key, stack);
        if !self.slots.contains_key(&key) && self.slots.len() >= self.config.max_entries {
            self.evict_oldest();
        }
        self.tick += 1;
        let tick = self.tick;
        let slot = self.slots.entry(key).or_insert(Slot {
            entry: CacheEntry {
                last_succeeded: false,
                srtt: None,
                rttvar: Duration::ZERO,
                successes: 0,
                failures: 0,
            },
            tick,
        });
        slot.tick = tick;
        f(&mut slot.entry);
        true
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .slots
            .iter()
            .min_by_key(|(_, s)| s.tick)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.slots.remove(&k);
        }
    }

    /// The entries, least recently recorded first.
    pub fn entries(&self) -> Vec<(&RemoteKey, Stack, &CacheEntry)> {
        let mut v: Vec<_> = self.slots.iter().collect();
        v.sort_by_key(|(_, s)| s.tick);
        v.into_iter()
            .map(|((r, st), s)| (r, *st, &s.entry))
            .collect()
    }
}

/// The key as saved, or `None` if it cannot be saved (an invalid host
/// name, a bad Unix path).
fn canonical_key(remote: &RemoteKey, config: &CacheConfig) -> Option<RemoteKey> {
    Some(match remote {
        RemoteKey::Addr(a) => RemoteKey::Addr(canonical(*a)),
        RemoteKey::Host { name, port } => RemoteKey::Host {
            name: normalize_host_name(name).ok()?,
            port: *port,
        },
        RemoteKey::Unix(p) => {
            if !unix_path_ok(p, config) {
                return None;
            }
            RemoteKey::Unix(p.clone())
        }
    })
}

fn unix_path_ok(p: &str, config: &CacheConfig) -> bool {
    !p.is_empty()
        && p.len() <= config.max_unix_path
        && p.len() <= usize::from(u16::MAX)
        && !p.contains('\0')
}

// ---- Save / restore ----

/// The first bytes of a saved cache.
pub const MAGIC: [u8; 4] = *b"WFTC";
/// The format version [`PathCache::save`] writes.
pub const VERSION: u8 = 1;

const HEADER: usize = 4 + 1 + 4;
const CHECKSUM: usize = 4;
/// A lower bound on an entry's size (a Unix key with an empty path):
/// kind, path length, stack, flags, two durations and two counters.
const MIN_ENTRY: usize = 1 + 2 + 1 + 1 + 8 + 8 + 4 + 4;

const FLAG_SUCCEEDED: u8 = 1;
const FLAG_RTT: u8 = 2;

fn stack_id(s: Stack) -> u8 {
    match s {
        Stack::Tcp => 0,
        Stack::SecureMux => 1,
        Stack::Yamux => 2,
        Stack::Udp => 3,
        Stack::Unix => 4,
    }
}

fn stack_of(id: u8) -> Option<Stack> {
    Some(match id {
        0 => Stack::Tcp,
        1 => Stack::SecureMux,
        2 => Stack::Yamux,
        3 => Stack::Udp,
        4 => Stack::Unix,
        _ => return None,
    })
}

/// FNV-1a, 32 bits: catches torn and corrupted files, not forgeries.
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Why [`PathCache::restore`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreError {
    /// The input does not start with [`MAGIC`].
    BadMagic,
    /// A version this code does not read.
    UnsupportedVersion(u8),
    /// The input ends before its header, an entry or its checksum.
    Truncated,
    /// The checksum does not match the bytes.
    ChecksumMismatch {
        /// The checksum stored.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// More entries than [`CacheConfig::max_entries`].
    TooManyEntries {
        /// Entries the input declares.
        count: u32,
        /// The limit.
        max: usize,
    },
    /// Entry `index` is malformed (why).
    BadEntry {
        /// The entry's index.
        index: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Bytes between the last entry and the checksum.
    TrailingBytes(usize),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::BadMagic => f.write_str("not a saved path cache (bad magic)"),
            RestoreError::UnsupportedVersion(v) => {
                write!(f, "unsupported path cache version {v} (this code reads {VERSION})")
            }
            RestoreError::Truncated => f.write_str("saved path cache is truncated"),
            RestoreError::ChecksumMismatch { stored, computed } => write!(
                f,
                "saved path cache checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            RestoreError::TooManyEntries { count, max } => write!(
                f,
                "saved path cache holds {count} entries, more than max_entries ({max})"
            ),
            RestoreError::BadEntry { index, reason } => {
                write!(f, "saved path cache entry {index} is malformed: {reason}")
            }
            RestoreError::TrailingBytes(n) => {
                write!(f, "saved path cache has {n} bytes after its last entry")
            }
        }
    }
}

impl core::error::Error for RestoreError {}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RestoreError> {
        if self.buf.len() < n {
            return Err(RestoreError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, RestoreError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, RestoreError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, RestoreError> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, RestoreError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

impl PathCache {
    /// The cache in weft's versioned format, oldest entry first:
    ///
    /// ```text
    /// magic "WFTC" | version u8 (1) | count u32
    /// count x entry:
    ///   kind u8: 0 host (len u8, 1..=253 bytes, port u16)
    ///            1 IPv4 (4 bytes, port u16) | 2 IPv6 (16 bytes, port u16)
    ///            3 Unix (len u16, bytes)
    ///   stack u8 (0 tcp, 1 tcp+secure+mux, 2 tcp+yamux, 3 udp, 4 unix)
    ///   flags u8 (bit 0: last attempt succeeded, bit 1: has an RTT)
    ///   srtt u64 ns | rttvar u64 ns | successes u32 | failures u32
    /// checksum u32: FNV-1a of every byte before it
    /// ```
    ///
    /// Integers are little-endian. The encoding is canonical: restoring
    /// any accepted input and saving again gives the same bytes.
    pub fn save(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.slots.len() * 48 + CHECKSUM);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        let count = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for (remote, stack, e) in self.entries().into_iter().take(count as usize) {
            match remote {
                RemoteKey::Host { name, port } => {
                    out.push(0);
                    out.push(name.len() as u8);
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(&port.to_le_bytes());
                }
                RemoteKey::Addr(SocketAddr::V4(a)) => {
                    out.push(1);
                    out.extend_from_slice(&a.ip().octets());
                    out.extend_from_slice(&a.port().to_le_bytes());
                }
                RemoteKey::Addr(SocketAddr::V6(a)) => {
                    out.push(2);
                    out.extend_from_slice(&a.ip().octets());
                    out.extend_from_slice(&a.port().to_le_bytes());
                }
                RemoteKey::Unix(p) => {
                    out.push(3);
                    out.extend_from_slice(&(p.len() as u16).to_le_bytes());
                    out.extend_from_slice(p.as_bytes());
                }
            }
            out.push(stack_id(stack));
            let mut flags = 0;
            if e.last_succeeded {
                flags |= FLAG_SUCCEEDED;
            }
            if e.srtt.is_some() {
                flags |= FLAG_RTT;
            }
            out.push(flags);
            out.extend_from_slice(&e.srtt.map_or(0, nanos).to_le_bytes());
            out.extend_from_slice(&nanos(e.rttvar).to_le_bytes());
            out.extend_from_slice(&e.successes.to_le_bytes());
            out.extend_from_slice(&e.failures.to_le_bytes());
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Restores a cache [`save`](Self::save)d earlier, with the default
    /// [`CacheConfig`].
    pub fn restore(bytes: &[u8]) -> Result<PathCache, RestoreError> {
        Self::restore_with(CacheConfig::default(), bytes)
    }

    /// Restores a saved cache under `config`. Never panics; allocates at
    /// most `config.max_entries` entries, each no larger than its bytes.
    pub fn restore_with(config: CacheConfig, bytes: &[u8]) -> Result<PathCache, RestoreError> {
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                RestoreError::Truncated
            } else {
                RestoreError::BadMagic
            });
        }
        if bytes[..4] != MAGIC {
            return Err(RestoreError::BadMagic);
        }
        if bytes.len() < 5 {
            return Err(RestoreError::Truncated);
        }
        if bytes[4] != VERSION {
            return Err(RestoreError::UnsupportedVersion(bytes[4]));
        }
        if bytes.len() < HEADER + CHECKSUM {
            return Err(RestoreError::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        let computed = fnv1a(body);
        if stored != computed {
            return Err(RestoreError::ChecksumMismatch { stored, computed });
        }
        let mut r = Reader { buf: &body[5..] };
        let count = r.u32()?;
        if count as usize > config.max_entries {
            return Err(RestoreError::TooManyEntries {
                count,
                max: config.max_entries,
            });
        }
        if (count as usize).saturating_mul(MIN_ENTRY) > r.buf.len() {
            return Err(RestoreError::Truncated);
        }
        let mut cache = PathCache::new(config);
        for index in 0..count {
            let bad = |reason| RestoreError::BadEntry { index, reason };
            let remote = match r.u8()? {
                0 => {
                    let len = usize::from(r.u8()?);
                    let raw = r.take(len)?;
                    let name =
                        core::str::from_utf8(raw).map_err(|_| bad("host name is not UTF-8"))?;
                    let norm = normalize_host_name(name).map_err(|_| bad("invalid host name"))?;
                    if norm != name {
                        return Err(bad("host name is not in canonical form"));
                    }
                    RemoteKey::Host {
                        name: norm,
                        port: r.u16()?,
                    }
                }
                1 => {
                    let b = r.take(4)?;
                    let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                    RemoteKey::Addr(SocketAddr::new(ip.into(), r.u16()?))
                }
                2 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(r.take(16)?);
                    RemoteKey::Addr(SocketAddr::new(Ipv6Addr::from(a).into(), r.u16()?))
                }
                3 => {
                    let len = usize::from(r.u16()?);
                    let raw = r.take(len)?;
                    let path =
                        core::str::from_utf8(raw).map_err(|_| bad("Unix path is not UTF-8"))?;
                    if !unix_path_ok(path, &cache.config) {
                        return Err(bad("invalid Unix path"));
                    }
                    RemoteKey::Unix(String::from(path))
                }
                _ => return Err(bad("unknown remote kind")),
            };
            let stack = stack_of(r.u8()?).ok_or_else(|| bad("unknown stack"))?;
            let flags = r.u8()?;
            if flags & !(FLAG_SUCCEEDED | FLAG_RTT) != 0 {
                return Err(bad("unknown flags"));
            }
            let srtt = r.u64()?;
            let rttvar = r.u64()?;
            let successes = r.u32()?;
            let failures = r.u32()?;
            let last_succeeded = flags & FLAG_SUCCEEDED != 0;
            let has_rtt = flags & FLAG_RTT != 0;
            if !has_rtt && (srtt != 0 || rttvar != 0) {
                return Err(bad("RTT values without the RTT flag"));
            }
            if has_rtt && successes == 0 {
                return Err(bad("an RTT without a success"));
            }
            if (last_succeeded && successes == 0) || (!last_succeeded && failures == 0) {
                return Err(bad("last outcome not counted"));
            }
            let key = (remote, stack);
            if cache.slots.contains_key(&key) {
                return Err(bad("duplicate remote and stack"));
            }
            cache.tick += 1;
            let tick = cache.tick;
            cache.slots.insert(
                key,
                Slot {
                    entry: CacheEntry {
                        last_succeeded,
                        srtt: has_rtt.then(|| Duration::from_nanos(srtt)),
                        rttvar: Duration::from_nanos(rttvar),
                        successes,
                        failures,
                    },
                    tick,
                },
            );
        }
        if !r.buf.is_empty() {
            return Err(RestoreError::TrailingBytes(r.buf.len()));
        }
        Ok(cache)
    }
}
