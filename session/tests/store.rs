//! The session stores against one behavioural suite: `MemoryStore`,
//! `RedbStore` in a temporary directory, and `RedisStore` against a real
//! `redis-server` each test starts on a free loopback port.
//!
//! Without `redis-server` installed the Redis tests print a skip line, unless
//! `WEFT_REQUIRE_REDIS` is set, when they fail.

mod common;

use common::redis_server::RedisServer;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use weft_session::store::{
    MemoryConfig, MemoryStore, RedbConfig, RedbStore, RedisConfig, RedisStore, SessionStore,
    StoreConfig, StoreError, StoredSession, REDB_FILE_NAME,
};

/// A valid 64-char key, distinct per (tag, i); tags are alphanumeric.
fn key(tag: &str, i: usize) -> String {
    let k = format!("{tag}-{i}_");
    format!("{k:A<64}")
}

fn session(key: &str, at: u64, info: Option<&str>) -> StoredSession {
    StoredSession::new(key.to_owned(), at, info.map(str::to_owned))
}

/// Keys that must be refused before any storage access.
fn bad_keys() -> Vec<String> {
    vec![
        String::new(),
        "../x".into(),
        "A".repeat(63),
        "A".repeat(65),
        // 64 bytes of UTF-8 but not 64 ASCII chars.
        "é".repeat(32),
        // 64 chars, one of them non-ASCII.
        format!("{}é", "A".repeat(62)),
        format!("../../../../tmp/{}", "A".repeat(48)),
        format!("{}/x", "A".repeat(62)),
        format!("{}\\x", "A".repeat(62)),
        format!("{}\0", "A".repeat(63)),
        format!("{}=", "A".repeat(63)),
        format!("{}.", "A".repeat(63)),
        format!("{} ", "A".repeat(63)),
        format!("{}*", "A".repeat(63)),
        format!("{}\r\n", "A".repeat(62)),
    ]
}

fn assert_bad_key<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(r, Err(StoreError::BadKey)),
        "{what}: want BadKey, got {r:?}"
    );
}

/// Every hook refuses every malformed key with `BadKey`.
async fn bad_keys_rejected(store: &dyn SessionStore) {
    for bad in bad_keys() {
        assert_bad_key(store.created(&session(&bad, 1, None)).await, "created");
        assert_bad_key(store.lookup(&bad, 2).await, "lookup");
        assert_bad_key(store.closed(&bad).await, "closed");
    }
}

/// The behaviour every store shares: create, restore, close, info checks.
async fn behaviour(store: &dyn SessionStore, tag: &str) {
    let k = key(tag, 0);
    assert!(store.lookup(&k, 10).await.unwrap().is_none(), "unknown key");

    store
        .created(&session(&k, 1_000, Some(r#"{"user":"ann"}"#)))
        .await
        .unwrap();
    let found = store.lookup(&k, 2_000).await.unwrap().expect("created");
    assert_eq!(found.key, k);
    assert_eq!(found.creation_ms, 1_000);
    assert_eq!(found.last_lookup_ms, 2_000, "lookup updates last_lookup");
    assert_eq!(found.info.as_deref(), Some(r#"{"user":"ann"}"#));
    let again = store.lookup(&k, 3_000).await.unwrap().expect("still there");
    assert_eq!((again.creation_ms, again.last_lookup_ms), (1_000, 3_000));

    // A session without info.
    let bare = key(tag, 1);
    store.created(&session(&bare, 5, None)).await.unwrap();
    assert_eq!(store.lookup(&bare, 6).await.unwrap().unwrap().info, None);

    store.closed(&k).await.unwrap();
    assert!(store.lookup(&k, 4_000).await.unwrap().is_none(), "closed");
    // Closing twice, or an unknown key, is fine.
    store.closed(&k).await.unwrap();
    store.closed(&key(tag, 99)).await.unwrap();
    // The other session is untouched.
    assert!(store.lookup(&bare, 7).await.unwrap().is_some());

    // Info must be a JSON object within the size limit.
    let info_key = key(tag, 2);
    for bad in ["[1,2]", "\"text\"", "not json", "{\"a\":", ""] {
        let r = store.created(&session(&info_key, 1, Some(bad))).await;
        assert!(matches!(r, Err(StoreError::BadInfo)), "{bad:?}: {r:?}");
    }
    let big = format!(
        r#"{{"pad":"{}"}}"#,
        "x".repeat(StoreConfig::DEFAULT_MAX_INFO_LEN)
    );
    let r = store.created(&session(&info_key, 1, Some(&big))).await;
    assert!(
        matches!(r, Err(StoreError::InfoTooLarge { len, max })
            if len == big.len() && max == StoreConfig::DEFAULT_MAX_INFO_LEN),
        "{r:?}"
    );
    assert!(store.lookup(&info_key, 2).await.unwrap().is_none());

    bad_keys_rejected(store).await;
}

/// With a TTL of 10 s: a lookup within it refreshes the session, a lookup at
/// or past it finds nothing and removes the entry (time is the `now_ms`
/// argument, not the wall clock).
async fn expiry_by_now(store: &dyn SessionStore, tag: &str) {
    let k = key(tag, 0);
    store.created(&session(&k, 1_000, None)).await.unwrap();
    let s = store.lookup(&k, 10_999).await.unwrap().expect("inside ttl");
    assert_eq!(s.last_lookup_ms, 10_999);
    // Measured from the last lookup, not from creation.
    assert!(store.lookup(&k, 20_998).await.unwrap().is_some());
    assert!(store.lookup(&k, 30_998).await.unwrap().is_none(), "expired");
    // Removed, not hidden: an earlier clock does not bring it back.
    assert!(store.lookup(&k, 20_999).await.unwrap().is_none());
}

fn ten_second_ttl() -> StoreConfig {
    let mut c = StoreConfig::default();
    c.ttl = Some(Duration::from_secs(10));
    c
}

/// 100 tasks at once through one store: each creates its session and looks
/// it up, and all look up one shared session.
async fn concurrent(store: Arc<dyn SessionStore>, tag: &str) {
    let shared = key(tag, 1_000);
    store.created(&session(&shared, 1, None)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = Arc::clone(&store);
        let (own, shared) = (key(tag, i), shared.clone());
        tasks.push(tokio::spawn(async move {
            let at = 10 + i as u64;
            store
                .created(&session(&own, at, Some(&format!(r#"{{"n":{i}}}"#))))
                .await
                .unwrap();
            let mine = store.lookup(&own, at + 1).await.unwrap().expect("own");
            assert_eq!(mine.info, Some(format!(r#"{{"n":{i}}}"#)));
            assert_eq!(mine.last_lookup_ms, at + 1);
            let s = store.lookup(&shared, at).await.unwrap().expect("shared");
            assert_eq!(s.creation_ms, 1);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for i in 0..100 {
        let s = store.lookup(&key(tag, i), 500).await.unwrap().unwrap();
        assert_eq!(s.creation_ms, 10 + i as u64);
    }
}

// ---- MemoryStore ----

#[tokio::test]
async fn memory_behaviour() {
    let store = MemoryStore::new();
    behaviour(&store, "mem").await;
    assert_eq!(store.len(), 1, "only the bare session remains");
}

#[tokio::test]
async fn memory_expiry() {
    let mut config = MemoryConfig::default();
    config.store = ten_second_ttl();
    let store = MemoryStore::with_config(config);
    expiry_by_now(&store, "memttl").await;
    assert!(store.is_empty());

    store
        .created(&session(&key("p", 1), 0, None))
        .await
        .unwrap();
    store
        .created(&session(&key("p", 2), 5_000, None))
        .await
        .unwrap();
    assert_eq!(store.purge_expired(10_000), 1);
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn memory_bounded() {
    let mut config = MemoryConfig::default();
    config.max_sessions = 2;
    config.store = ten_second_ttl();
    let store = MemoryStore::with_config(config);
    store
        .created(&session(&key("f", 1), 0, None))
        .await
        .unwrap();
    store
        .created(&session(&key("f", 2), 0, None))
        .await
        .unwrap();
    let r = store.created(&session(&key("f", 3), 1, None)).await;
    assert!(matches!(r, Err(StoreError::Full { max: 2 })), "{r:?}");
    // Once the others expired, there is room again.
    store
        .created(&session(&key("f", 3), 10_000, None))
        .await
        .unwrap();
    assert_eq!(store.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_concurrent() {
    concurrent(Arc::new(MemoryStore::new()), "memc").await;
}

// ---- RedbStore ----

/// Every file under `root`, relative to it.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn redb_behaviour() {
    let root = tempfile::tempdir().unwrap();
    let store = RedbStore::open(root.path().join("s")).await.unwrap();
    behaviour(&store, "redb").await;
    assert_eq!(
        store.count().await.unwrap(),
        1,
        "only the bare session remains"
    );
}

#[tokio::test]
async fn redb_survives_reopen() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sessions");
    let (kept, gone) = (key("keep", 1), key("gone", 2));

    let store = RedbStore::open(&dir).await.unwrap();
    store
        .created(&session(&kept, 100, Some(r#"{"user":"bo"}"#)))
        .await
        .unwrap();
    store.created(&session(&gone, 100, None)).await.unwrap();
    store.lookup(&kept, 200).await.unwrap().unwrap();
    drop(store);

    let store = RedbStore::open(&dir).await.unwrap();
    let s = store.lookup(&kept, 300).await.unwrap().expect("survived");
    assert_eq!(s.creation_ms, 100);
    assert_eq!(s.info.as_deref(), Some(r#"{"user":"bo"}"#));
    store.closed(&gone).await.unwrap();
    drop(store);

    let store = RedbStore::open(&dir).await.unwrap();
    assert!(
        store.lookup(&gone, 400).await.unwrap().is_none(),
        "close survived"
    );
    let s = store.lookup(&kept, 400).await.unwrap().unwrap();
    assert_eq!(s.creation_ms, 100);
}

#[tokio::test]
async fn redb_keys_stay_inside_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let store = RedbStore::open(root.path().join("store")).await.unwrap();
    bad_keys_rejected(&store).await;
    assert_eq!(store.count().await.unwrap(), 0, "no bad key was stored");
    // Valid keys made only of the path-like characters the alphabet has.
    for k in ["-".repeat(64), "_".repeat(64), "-_".repeat(32)] {
        store.created(&session(&k, 1, None)).await.unwrap();
        assert!(store.lookup(&k, 2).await.unwrap().is_some());
    }
    assert_eq!(
        files_under(root.path()),
        vec![
            PathBuf::from("store"),
            PathBuf::from("store").join(REDB_FILE_NAME)
        ]
    );
}

#[tokio::test]
async fn redb_expiry() {
    let root = tempfile::tempdir().unwrap();
    let mut config = RedbConfig::default();
    config.store = ten_second_ttl();
    let store = RedbStore::open_with(root.path(), config).await.unwrap();
    expiry_by_now(&store, "redbttl").await;
    assert_eq!(store.count().await.unwrap(), 0, "expired entry removed");

    store
        .created(&session(&key("p", 1), 0, None))
        .await
        .unwrap();
    store
        .created(&session(&key("p", 2), 5_000, None))
        .await
        .unwrap();
    assert_eq!(store.purge_expired(10_000).await.unwrap(), 1);
    assert_eq!(store.count().await.unwrap(), 1);
    assert!(store.lookup(&key("p", 2), 10_000).await.unwrap().is_some());
}

/// The file is locked while a store has it; a second open fails cleanly.
#[tokio::test]
async fn redb_second_open_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let store = RedbStore::open(root.path()).await.unwrap();
    let r = RedbStore::open(root.path()).await;
    assert!(matches!(r, Err(StoreError::Embedded(_))), "{r:?}");
    drop(store);
    RedbStore::open(root.path()).await.unwrap();
}

/// Records the store did not write are `Corrupt` errors, never a panic or
/// a wrong session, and a purge leaves them alone.
#[tokio::test]
async fn redb_foreign_records_are_errors() {
    let root = tempfile::tempdir().unwrap();
    let (k, other) = (key("foreign", 1), key("foreign", 2));
    drop(RedbStore::open(root.path()).await.unwrap());
    {
        let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("sessions");
        let db = redb::Database::create(root.path().join(REDB_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        let misfiled = serde_json::to_vec(&session(&other, 1, None)).unwrap();
        let mut t = txn.open_table(table).unwrap();
        t.insert(k.as_str(), b"not json".as_slice()).unwrap();
        t.insert(other.as_str(), b"{}".as_slice()).unwrap();
        t.insert(key("foreign", 3).as_str(), misfiled.as_slice())
            .unwrap();
        drop(t);
        txn.commit().unwrap();
    }
    let store = RedbStore::open(root.path()).await.unwrap();
    for k in [k, other, key("foreign", 3)] {
        let r = store.lookup(&k, 2).await;
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    }
    assert_eq!(store.purge_expired(u64::MAX).await.unwrap(), 0);
    assert_eq!(store.count().await.unwrap(), 3);
}

#[tokio::test]
async fn redb_bounded() {
    let root = tempfile::tempdir().unwrap();
    let mut config = RedbConfig::default();
    config.max_sessions = 2;
    config.store = ten_second_ttl();
    let store = RedbStore::open_with(root.path(), config).await.unwrap();
    store
        .created(&session(&key("f", 1), 0, None))
        .await
        .unwrap();
    store
        .created(&session(&key("f", 2), 0, None))
        .await
        .unwrap();
    let r = store.created(&session(&key("f", 3), 1, None)).await;
    assert!(matches!(r, Err(StoreError::Full { max: 2 })), "{r:?}");
    // Re-creating a session already stored takes no new room.
    store
        .created(&session(&key("f", 2), 1, None))
        .await
        .unwrap();
    // Once the others expired, there is room again.
    store
        .created(&session(&key("f", 3), 10_001, None))
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_concurrent() {
    let root = tempfile::tempdir().unwrap();
    let store = RedbStore::open(root.path()).await.unwrap();
    concurrent(Arc::new(store), "redbc").await;
}

// ---- RedisStore against a real redis-server ----

async fn query<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(conn).await.unwrap()
}

#[tokio::test]
async fn redis_behaviour() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "t:").await.unwrap();
    behaviour(&store, "redis").await;
    let mut raw = server.raw().await;
    let keys: Vec<String> = query(&mut raw, &["KEYS", "*"]).await;
    assert_eq!(keys, vec![format!("t:{}", key("redis", 1))]);
    // The value is the JSON of the session, with the default TTL set.
    let value: String = query(&mut raw, &["GET", &keys[0]]).await;
    let stored: StoredSession = serde_json::from_str(&value).unwrap();
    assert_eq!(stored.key, key("redis", 1));
    let pttl: i64 = query(&mut raw, &["PTTL", &keys[0]]).await;
    assert!(pttl > 0, "default TTL applied, got {pttl}");
}

#[tokio::test]
async fn redis_bad_keys_never_reach_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "t:").await.unwrap();
    let mut raw = server.raw().await;
    let _: () = query(&mut raw, &["CONFIG", "RESETSTAT"]).await;
    bad_keys_rejected(&store).await;
    let stats: String = query(&mut raw, &["INFO", "commandstats"]).await;
    for cmd in ["cmdstat_get:", "cmdstat_set:", "cmdstat_del:"] {
        assert!(!stats.contains(cmd), "{cmd} was sent:\n{stats}");
    }
    let size: i64 = query(&mut raw, &["DBSIZE"]).await;
    assert_eq!(size, 0);
}

/// Values the store did not write (garbage, a session filed under another
/// key, an oversized value) are errors, never a panic or a wrong session.
#[tokio::test]
async fn redis_foreign_values_are_errors() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut config = RedisConfig::default();
    config.max_value_len = 1_000;
    let store = RedisStore::connect_with(&server.url(), "f:", config)
        .await
        .unwrap();
    let mut raw = server.raw().await;
    let (k, other) = (key("foreign", 1), key("foreign", 2));
    let misfiled = serde_json::to_string(&session(&other, 1, None)).unwrap();
    let oversized = "x".repeat(1_001);
    for value in ["not json", "{}", misfiled.as_str(), oversized.as_str()] {
        let _: () = query(&mut raw, &["SET", &format!("f:{k}"), value]).await;
        let r = store.lookup(&k, 2).await;
        assert!(
            matches!(r, Err(StoreError::Corrupt(_))),
            "{value:.20}: {r:?}"
        );
    }
}

#[tokio::test]
async fn redis_two_stores_share_sessions() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // Two stores with their own connections, as two server processes have.
    let a = RedisStore::connect(&server.url(), "app:").await.unwrap();
    let b = RedisStore::connect(&server.url(), "app:").await.unwrap();
    let other_app = RedisStore::connect(&server.url(), "other:").await.unwrap();
    let k = key("shared", 1);

    a.created(&session(&k, 100, Some(r#"{"user":"cy"}"#)))
        .await
        .unwrap();
    let s = b
        .lookup(&k, 200)
        .await
        .unwrap()
        .expect("b sees a's session");
    assert_eq!((s.creation_ms, s.last_lookup_ms), (100, 200));
    assert_eq!(s.info.as_deref(), Some(r#"{"user":"cy"}"#));
    // a sees b's refresh.
    assert_eq!(a.lookup(&k, 300).await.unwrap().unwrap().creation_ms, 100);
    assert!(other_app.lookup(&k, 300).await.unwrap().is_none(), "prefix");

    b.closed(&k).await.unwrap();
    assert!(
        a.lookup(&k, 400).await.unwrap().is_none(),
        "b's close seen by a"
    );
}

/// The child half of `redis_shared_across_processes`, which runs this
/// binary again with `WEFT_STORE_CHILD=url,key`.
#[tokio::test]
#[ignore = "run by redis_shared_across_processes in a child process"]
async fn redis_child_process_creates() {
    let spec = std::env::var("WEFT_STORE_CHILD").expect("WEFT_STORE_CHILD=url,key");
    let (url, k) = spec.split_once(',').unwrap();
    let store = RedisStore::connect(url, "proc:").await.unwrap();
    store
        .created(&session(k, 7, Some(r#"{"from":"child"}"#)))
        .await
        .unwrap();
}

#[tokio::test]
async fn redis_shared_across_processes() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let k = key("proc", 1);
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "redis_child_process_creates"])
        .stdout(Stdio::null())
        .env("WEFT_STORE_CHILD", format!("{},{k}", server.url()))
        .status()
        .unwrap();
    assert!(status.success(), "child process failed");
    let store = RedisStore::connect(&server.url(), "proc:").await.unwrap();
    let s = store
        .lookup(&k, 8)
        .await
        .unwrap()
        .expect("the child's session");
    assert_eq!(s.creation_ms, 7);
    assert_eq!(s.info.as_deref(), Some(r#"{"from":"child"}"#));
}

#[tokio::test]
async fn redis_ttl() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut raw = server.raw().await;
    let mut config = RedisConfig::default();
    config.store.ttl = Some(Duration::from_secs(3_600));
    let store = RedisStore::connect_with(&server.url(), "ttl:", config)
        .await
        .unwrap();
    let k = key("ttl", 1);
    let rk = format!("ttl:{k}");
    store.created(&session(&k, 1, None)).await.unwrap();
    let pttl: i64 = query(&mut raw, &["PTTL", &rk]).await;
    assert!(pttl > 0 && pttl <= 3_600_000, "TTL set on create: {pttl}");
    // A lookup restarts the TTL: shorten it by hand, look up, see it long again.
    let _: i64 = query(&mut raw, &["PEXPIRE", &rk, "600000"]).await;
    store.lookup(&k, 2).await.unwrap().expect("still there");
    let pttl: i64 = query(&mut raw, &["PTTL", &rk]).await;
    assert!(pttl > 600_000, "lookup refreshed the TTL: {pttl}");

    // A session with a 1 ms TTL is gone once Redis expires it: poll until
    // then (bounded), never assert how long it took.
    let mut short = RedisConfig::default();
    short.store.ttl = Some(Duration::from_millis(1));
    let store = RedisStore::connect_with(&server.url(), "ttl:", short)
        .await
        .unwrap();
    let k = key("ttl", 2);
    store.created(&session(&k, 1, None)).await.unwrap();
    let mut gone = false;
    for _ in 0..1_000 {
        if store.lookup(&k, 2).await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "a 1 ms TTL session never expired");
    let exists: i64 = query(&mut raw, &["EXISTS", &format!("ttl:{k}")]).await;
    assert_eq!(exists, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "c:").await.unwrap();
    concurrent(Arc::new(store), "redisc").await;
}
