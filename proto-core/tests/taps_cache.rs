//! The path cache: bounds, LRU eviction, RTT smoothing, save/restore round
//! trip, and every corruption rejected with its own error.

use proto_core::taps::cache::{CacheConfig, PathCache, RemoteKey, RestoreError, MAGIC, VERSION};
use proto_core::taps::candidate::Stack;
use proto_core::time::Duration;

fn host(i: u32) -> RemoteKey {
    RemoteKey::Host {
        name: format!("h{i}.example"),
        port: 443,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// FNV-1a 32, written again here to forge checksums.
fn fnv(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

fn reseal(mut v: Vec<u8>) -> Vec<u8> {
    let n = v.len() - 4;
    let sum = fnv(&v[..n]);
    v[n..].copy_from_slice(&sum.to_le_bytes());
    v
}

/// A cache with one entry of each remote kind, in a known order.
fn sample() -> PathCache {
    let mut c = PathCache::default();
    c.record_success(&host(1), Stack::SecureMux, ms(20));
    c.record_success(&host(1), Stack::SecureMux, ms(28));
    c.record_failure(
        &RemoteKey::Addr("192.0.2.9:80".parse().unwrap()),
        Stack::Tcp,
    );
    c.record_success(
        &RemoteKey::Addr("[2001:db8::1]:7".parse().unwrap()),
        Stack::Yamux,
        ms(3),
    );
    c.record_failure(
        &RemoteKey::Addr("[2001:db8::1]:7".parse().unwrap()),
        Stack::Yamux,
    );
    c.record_success(
        &RemoteKey::Unix("/run/weft.sock".into()),
        Stack::Unix,
        Duration::from_micros(50),
    );
    c
}

#[test]
fn rtt_is_smoothed_as_rfc_6298() {
    let mut c = PathCache::default();
    let r = host(0);
    assert_eq!(c.rtt_estimate(&r, Stack::Tcp), None);
    c.record_success(&r, Stack::Tcp, ms(80));
    assert_eq!(c.rtt_estimate(&r, Stack::Tcp), Some(ms(80)));
    assert_eq!(c.entry(&r, Stack::Tcp).unwrap().rttvar, ms(40));
    c.record_success(&r, Stack::Tcp, ms(160));
    // SRTT = 7/8 * 80 + 1/8 * 160; RTTVAR = 3/4 * 40 + 1/4 * |80 - 160|.
    assert_eq!(c.rtt_estimate(&r, Stack::Tcp), Some(ms(90)));
    assert_eq!(c.entry(&r, Stack::Tcp).unwrap().rttvar, ms(50));
    c.record_failure(&r, Stack::Tcp);
    let e = c.entry(&r, Stack::Tcp).unwrap();
    assert!(!e.last_succeeded);
    assert_eq!((e.successes, e.failures), (2, 1));
    assert_eq!(e.srtt, Some(ms(90)), "a failure keeps the RTT");
    c.record_success(&r, Stack::Yamux, ms(30));
    assert_eq!(c.best_rtt(&r), Some(ms(30)));
    // Ranks: success before unknown before failure.
    assert!(c.rank(&r, Stack::Yamux) < c.rank(&r, Stack::Udp));
    assert!(c.rank(&r, Stack::Udp) < c.rank(&r, Stack::Tcp));
}

#[test]
fn keys_are_canonical() {
    let mut c = PathCache::default();
    let upper = RemoteKey::Host {
        name: "Example.COM.".into(),
        port: 1,
    };
    let lower = RemoteKey::Host {
        name: "example.com".into(),
        port: 1,
    };
    assert!(c.record_success(&upper, Stack::Tcp, ms(1)));
    assert_eq!(c.rtt_estimate(&lower, Stack::Tcp), Some(ms(1)));
    assert_eq!(c.len(), 1);
    // Keys that could not be saved are not recorded.
    assert!(!c.record_failure(
        &RemoteKey::Host {
            name: "bad name".into(),
            port: 1
        },
        Stack::Tcp
    ));
    assert!(!c.record_failure(&RemoteKey::Unix("x".repeat(500)), Stack::Unix));
    assert_eq!(c.len(), 1);
    c.forget(&upper);
    assert!(c.is_empty());
}

#[test]
fn bounded_with_lru_eviction() {
    let mut c = PathCache::new(CacheConfig {
        max_entries: 3,
        ..CacheConfig::default()
    });
    for i in 0..3 {
        c.record_success(&host(i), Stack::Tcp, ms(10));
    }
    // Touch h0: h1 is now the least recently recorded.
    c.record_failure(&host(0), Stack::Tcp);
    c.record_success(&host(3), Stack::Tcp, ms(10));
    assert_eq!(c.len(), 3);
    assert!(c.entry(&host(1), Stack::Tcp).is_none());
    for i in [0, 2, 3] {
        assert!(c.entry(&host(i), Stack::Tcp).is_some(), "h{i}");
    }
    for i in 4..100 {
        c.record_failure(&host(i), Stack::Udp);
        assert!(c.len() <= 3);
    }
    let order: Vec<RemoteKey> = c.entries().into_iter().map(|(r, _, _)| r.clone()).collect();
    assert_eq!(order, [host(97), host(98), host(99)]);

    let mut none = PathCache::new(CacheConfig {
        max_entries: 0,
        ..CacheConfig::default()
    });
    assert!(!none.record_success(&host(0), Stack::Tcp, ms(1)));
    assert!(none.is_empty());
}

#[test]
fn save_restore_round_trip() {
    let c = sample();
    let bytes = c.save();
    assert_eq!(&bytes[..4], &MAGIC);
    assert_eq!(bytes[4], VERSION);
    let r = PathCache::restore(&bytes).unwrap();
    assert_eq!(r.save(), bytes);
    assert_eq!(r.len(), c.len());
    for (k, s, e) in c.entries() {
        assert_eq!(r.entry(k, s), Some(e));
    }
    // LRU order survives: the oldest is evicted first after restore.
    let mut r = PathCache::restore_with(
        CacheConfig {
            max_entries: 4,
            ..CacheConfig::default()
        },
        &bytes,
    )
    .unwrap();
    r.record_failure(&host(9), Stack::Tcp);
    assert!(r.entry(&host(1), Stack::SecureMux).is_none());
    // Empty caches too.
    let empty = PathCache::default().save();
    assert!(PathCache::restore(&empty).unwrap().is_empty());
}

#[test]
fn bad_magic_and_version() {
    let bytes = sample().save();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert_eq!(PathCache::restore(&b).unwrap_err(), RestoreError::BadMagic);
    assert_eq!(
        PathCache::restore(b"nope").unwrap_err(),
        RestoreError::BadMagic
    );
    assert_eq!(
        PathCache::restore(b"X").unwrap_err(),
        RestoreError::BadMagic
    );
    let mut b = bytes.clone();
    b[4] = 2;
    assert_eq!(
        PathCache::restore(&b).unwrap_err(),
        RestoreError::UnsupportedVersion(2)
    );
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = sample().save();
    for n in 0..bytes.len() {
        let e = PathCache::restore(&bytes[..n]).unwrap_err();
        let want_trunc = n < 13;
        if want_trunc {
            assert_eq!(e, RestoreError::Truncated, "cut at {n}");
        } else {
            assert!(
                matches!(e, RestoreError::ChecksumMismatch { .. }),
                "cut at {n}: {e:?}"
            );
        }
        // With a forged checksum the parser itself finds the cut.
        if n >= 13 {
            let mut cut = bytes[..n - 4].to_vec();
            cut.extend_from_slice(&[0; 4]);
            let e = PathCache::restore(&reseal(cut)).unwrap_err();
            assert!(
                matches!(e, RestoreError::Truncated | RestoreError::BadEntry { .. }),
                "forged cut at {n}: {e:?}"
            );
        }
    }
}

#[test]
fn every_flipped_bit_is_rejected() {
    let bytes = sample().save();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let e = PathCache::restore(&b).unwrap_err();
            match i {
                0..=3 => assert_eq!(e, RestoreError::BadMagic),
                4 => assert!(matches!(e, RestoreError::UnsupportedVersion(_))),
                _ => assert!(
                    matches!(e, RestoreError::ChecksumMismatch { .. }),
                    "byte {i}: {e:?}"
                ),
            }
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn too_many_entries() {
    let bytes = sample().save();
    let e = PathCache::restore_with(
        CacheConfig {
            max_entries: 3,
            ..CacheConfig::default()
        },
        &bytes,
    )
    .unwrap_err();
    assert_eq!(e, RestoreError::TooManyEntries { count: 4, max: 3 });
    // A huge declared count is refused before anything is allocated.
    let mut b = PathCache::default().save();
    b[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        PathCache::restore(&reseal(b)).unwrap_err(),
        RestoreError::TooManyEntries { .. }
    ));
    let mut b = PathCache::default().save();
    b[5..9].copy_from_slice(&200u32.to_le_bytes());
    assert_eq!(
        PathCache::restore(&reseal(b)).unwrap_err(),
        RestoreError::Truncated
    );
}

/// One saved entry for an IPv4 remote, so its fields sit at known offsets:
/// header 9 bytes, kind 1, address 4, port 2, stack, flags, srtt, rttvar,
/// successes, failures.
fn one_v4() -> Vec<u8> {
    let mut c = PathCache::default();
    c.record_success(
        &RemoteKey::Addr("192.0.2.1:80".parse().unwrap()),
        Stack::Tcp,
        ms(5),
    );
    c.save()
}

const KIND: usize = 9;
const STACK: usize = 16;
const FLAGS: usize = 17;
const SRTT: usize = 18;
const SUCCESSES: usize = 34;

fn bad_entry(edit: impl FnOnce(&mut Vec<u8>)) -> &'static str {
    let mut b = one_v4();
    edit(&mut b);
    match PathCache::restore(&reseal(b)) {
        Err(RestoreError::BadEntry { index: 0, reason }) => reason,
        other => panic!("expected a bad entry, got {other:?}"),
    }
}

#[test]
fn every_bad_entry_is_named() {
    assert_eq!(one_v4().len(), 9 + 1 + 4 + 2 + 1 + 1 + 8 + 8 + 4 + 4 + 4);
    assert_eq!(bad_entry(|b| b[KIND] = 9), "unknown remote kind");
    assert_eq!(bad_entry(|b| b[STACK] = 5), "unknown stack");
    assert_eq!(bad_entry(|b| b[FLAGS] |= 0x80), "unknown flags");
    assert_eq!(
        bad_entry(|b| b[FLAGS] = 1),
        "RTT values without the RTT flag"
    );
    assert_eq!(
        bad_entry(|b| b[SUCCESSES..SUCCESSES + 4].copy_from_slice(&[0; 4])),
        "an RTT without a success"
    );
    assert_eq!(
        bad_entry(|b| {
            b[FLAGS] = 0;
            b[SRTT..SRTT + 16].copy_from_slice(&[0; 16]);
        }),
        "last outcome not counted"
    );
    // A host entry with an uppercase, an invalid and a non-UTF-8 name.
    let mut c = PathCache::default();
    c.record_failure(
        &RemoteKey::Host {
            name: "ab.cd".into(),
            port: 1,
        },
        Stack::Udp,
    );
    let base = c.save();
    let edit = |at: usize, v: u8| {
        let mut b = base.clone();
        b[at] = v;
        match PathCache::restore(&reseal(b)) {
            Err(RestoreError::BadEntry { reason, .. }) => reason,
            other => panic!("{other:?}"),
        }
    };
    // kind at 9, length at 10, name from 11.
    assert_eq!(edit(11, b'A'), "host name is not in canonical form");
    assert_eq!(edit(11, b'_'), "invalid host name");
    assert_eq!(edit(11, 0xff), "host name is not UTF-8");
    assert!(matches!(
        PathCache::restore(&reseal({
            let mut b = base.clone();
            b[10] = 0;
            b
        })),
        Err(RestoreError::BadEntry { .. })
    ));
    // A Unix path longer than the limit.
    let mut c = PathCache::default();
    c.record_failure(&RemoteKey::Unix("/s".into()), Stack::Unix);
    let b = c.save();
    let e = PathCache::restore_with(
        CacheConfig {
            max_unix_path: 1,
            ..CacheConfig::default()
        },
        &b,
    );
    assert!(matches!(
        e,
        Err(RestoreError::BadEntry {
            reason: "invalid Unix path",
            ..
        })
    ));
    // The same remote and stack twice.
    let mut b = one_v4();
    let entry = b[9..b.len() - 4].to_vec();
    b.truncate(b.len() - 4);
    b.extend_from_slice(&entry);
    b[5..9].copy_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    assert_eq!(
        PathCache::restore(&reseal(b)).unwrap_err(),
        RestoreError::BadEntry {
            index: 1,
            reason: "duplicate remote and stack"
        }
    );
}

#[test]
fn trailing_bytes() {
    let mut b = one_v4();
    b.truncate(b.len() - 4);
    b.extend_from_slice(&[0; 3]);
    b.extend_from_slice(&[0; 4]);
    assert_eq!(
        PathCache::restore(&reseal(b)).unwrap_err(),
        RestoreError::TrailingBytes(3)
    );
}
