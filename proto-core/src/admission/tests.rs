use super::*;
use crate::time::{Duration, Instant};
use alloc::string::ToString;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn at(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

fn machine(config: AdmissionConfig) -> Admission {
    Admission::new(config).expect("valid config")
}

fn queueing() -> AdmissionConfig {
    AdmissionConfig {
        excess: Excess::Queue,
        ..AdmissionConfig::default()
    }
}

fn admit(adm: &mut Admission, now: Instant, ip: IpAddr) -> Ticket {
    match adm.offer(now, ip) {
        Decision::Admit(t) => t,
        other => panic!("expected admission, got {other:?}"),
    }
}

fn queued(adm: &mut Admission, now: Instant, ip: IpAddr) -> Ticket {
    match adm.offer(now, ip) {
        Decision::Queued(t) => t,
        other => panic!("expected queueing, got {other:?}"),
    }
}

fn refused(adm: &mut Admission, now: Instant, ip: IpAddr) -> Reason {
    match adm.offer(now, ip) {
        Decision::Refused(r) => r,
        other => panic!("expected refusal, got {other:?}"),
    }
}

#[test]
fn per_source_concurrency_is_limited_and_named() {
    let mut adm = machine(AdmissionConfig::default());
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let tickets: Vec<_> = (0..8).map(|_| admit(&mut adm, at(0), ip)).collect();
    let why = refused(&mut adm, at(0), ip);
    assert_eq!(
        why.to_string(),
        "source 127.0.0.1 has 8 handshakes in progress (limit 8)"
    );
    // Another source is not held back by the first one's limit.
    admit(&mut adm, at(0), v4(2));
    assert!(adm.finished(at(0), tickets[0]));
    admit(&mut adm, at(0), ip);
    assert_eq!(adm.stats().refused.source_busy, 1);
}

#[test]
fn total_concurrency_is_limited() {
    let mut adm = machine(AdmissionConfig {
        max_in_progress: 3,
        ..AdmissionConfig::default()
    });
    let t: Vec<_> = (1..=3).map(|i| admit(&mut adm, at(0), v4(i))).collect();
    let why = refused(&mut adm, at(0), v4(4));
    assert_eq!(why.to_string(), "3 handshakes in progress (limit 3)");
    adm.finished(at(1), t[1]);
    admit(&mut adm, at(1), v4(4));
    assert_eq!(adm.stats().in_progress, 3);
}

#[test]
fn rate_allows_a_burst_then_the_sustained_rate() {
    let mut adm = machine(AdmissionConfig {
        rate_per_source: 10,
        burst_per_source: 4,
        ..AdmissionConfig::default()
    });
    let ip = v4(1);
    for _ in 0..4 {
        let t = admit(&mut adm, at(0), ip);
        adm.finished(at(0), t);
    }
    let why = refused(&mut adm, at(0), ip);
    assert_eq!(
        why.to_string(),
        "source 10.0.0.1 started handshakes too fast (limit 10/s, burst 4)"
    );
    // Refusals take no token: the next one is back after one interval.
    refused(&mut adm, at(99), ip);
    let t = admit(&mut adm, at(100), ip);
    adm.finished(at(100), t);
    refused(&mut adm, at(150), ip);
    // After a quiet second the whole burst is back.
    for _ in 0..4 {
        let t = admit(&mut adm, at(1_500), ip);
        adm.finished(at(1_500), t);
    }
    assert_eq!(adm.stats().refused.source_rate, 3);
}

#[test]
fn unknown_and_repeated_tickets_are_ignored() {
    let mut adm = machine(AdmissionConfig::default());
    let t = admit(&mut adm, at(0), v4(1));
    assert!(adm.finished(at(0), t));
    assert!(!adm.finished(at(0), t));
    assert!(!adm.cancel(t));
    assert!(!adm.finished(at(0), Ticket::from_id(12_345)));
    assert_eq!(adm.stats().in_progress, 0);
}

#[test]
fn finished_sources_with_full_buckets_are_forgotten() {
    let mut adm = machine(AdmissionConfig::default());
    let t = admit(&mut adm, at(0), v4(1));
    assert_eq!(adm.stats().sources, 1);
    // The token taken at 0 is back after 1/32 s: then the source is idle
    // and indistinguishable from a new one.
    adm.finished(at(100), t);
    assert_eq!(adm.stats().sources, 0);
}

#[test]
fn queue_is_bounded_per_source_and_in_total() {
    let mut adm = machine(AdmissionConfig {
        max_in_progress_per_source: 1,
        max_queued: 3,
        max_queued_per_source: 2,
        ..queueing()
    });
    admit(&mut adm, at(0), v4(1));
    queued(&mut adm, at(0), v4(1));
    queued(&mut adm, at(0), v4(1));
    let why = refused(&mut adm, at(0), v4(1));
    assert_eq!(
        why.to_string(),
        "source 10.0.0.1 has 2 handshakes queued (limit 2)"
    );
    admit(&mut adm, at(0), v4(2));
    queued(&mut adm, at(0), v4(2));
    admit(&mut adm, at(0), v4(3));
    assert_eq!(
        refused(&mut adm, at(0), v4(3)).to_string(),
        "3 handshakes queued (limit 3)"
    );
    let s = adm.stats();
    assert_eq!(
        (s.queued, s.refused.queue_full, s.refused.source_queue_full),
        (3, 1, 1)
    );
}

#[test]
fn queued_entries_start_in_turn_across_sources() {
    let mut adm = machine(AdmissionConfig {
        max_in_progress: 1,
        max_queued_per_source: 16,
        ..queueing()
    });
    let first = admit(&mut adm, at(0), v4(1));
    // A floods the queue first; B and C queue one each after it.
    let a: Vec<_> = (0..5).map(|_| queued(&mut adm, at(0), v4(0xa))).collect();
    let b = queued(&mut adm, at(0), v4(0xb));
    let c = queued(&mut adm, at(0), v4(0xc));
    assert_eq!(adm.poll_admit(at(1)), None, "no free slot yet");
    adm.finished(at(1), first);
    let mut order = Vec::new();
    while let Some(t) = adm.poll_admit(at(1)).or_else(|| {
        let last = *order.last()?;
        adm.finished(at(1), last);
        adm.poll_admit(at(1))
    }) {
        order.push(t);
    }
    assert_eq!(order, [a[0], b, c, a[1], a[2], a[3], a[4]]);
    assert_eq!(adm.stats().admitted_from_queue, 7);
}

#[test]
fn a_new_offer_never_jumps_its_own_sources_queue() {
    let mut adm = machine(AdmissionConfig {
        max_in_progress_per_source: 1,
        ..queueing()
    });
    let t = admit(&mut adm, at(0), v4(1));
    let q = queued(&mut adm, at(0), v4(1));
    adm.finished(at(0), t);
    // A slot is free but `q` is waiting: the newcomer queues behind it.
    let later = queued(&mut adm, at(0), v4(1));
    assert_eq!(adm.poll_admit(at(0)), Some(q));
    assert_eq!(adm.poll_admit(at(0)), None);
    adm.finished(at(0), q);
    assert_eq!(adm.poll_admit(at(0)), Some(later));
}

#[test]
fn queued_entries_expire() {
    let mut adm = machine(AdmissionConfig {
        max_in_progress_per_source: 1,
        queue_timeout: Duration::from_secs(2),
        ..queueing()
    });
    let run = admit(&mut adm, at(0), v4(1));
    let q1 = queued(&mut adm, at(0), v4(1));
    let q2 = queued(&mut adm, at(500), v4(1));
    assert_eq!(adm.poll_timeout(), Some(at(2_000)));
    adm.handle_timeout(at(1_999));
    assert_eq!(adm.poll_expired(), None);
    adm.handle_timeout(at(2_000));
    let (t, why) = adm.poll_expired().expect("q1 expired");
    assert_eq!(t, q1);
    assert_eq!(
        why.to_string(),
        "a handshake from source 10.0.0.1 waited in the queue for 2s (limit 2s)"
    );
    assert!(!adm.holds(q1) && adm.holds(q2));
    assert_eq!(adm.poll_timeout(), Some(at(2_500)));
    adm.finished(at(2_100), run);
    assert_eq!(adm.poll_admit(at(2_100)), Some(q2));
    assert_eq!(adm.poll_timeout(), None);
    let s = adm.stats();
    assert_eq!((s.refused.queue_timeout, s.queued), (1, 0));
}

#[test]
fn a_rate_limited_queue_wakes_when_a_token_is_back() {
    let mut adm = machine(AdmissionConfig {
        rate_per_source: 4,
        burst_per_source: 1,
        ..queueing()
    });
    let t = admit(&mut adm, at(0), v4(1));
    adm.finished(at(0), t);
    let q = queued(&mut adm, at(10), v4(1));
    assert_eq!(adm.poll_admit(at(10)), None);
    assert_eq!(adm.poll_timeout(), Some(at(250)));
    adm.handle_timeout(at(250));
    assert_eq!(adm.poll_admit(at(250)), Some(q));
}

#[test]
fn cancel_withdraws_a_queued_entry() {
    let mut adm = machine(AdmissionConfig {
        max_in_progress_per_source: 1,
        ..queueing()
    });
    let run = admit(&mut adm, at(0), v4(1));
    let q = queued(&mut adm, at(0), v4(1));
    assert!(adm.cancel(q));
    assert_eq!(adm.poll_timeout(), None);
    adm.finished(at(0), run);
    assert_eq!(adm.poll_admit(at(0)), None);
    let s = adm.stats();
    assert_eq!((s.queued, s.cancelled, s.in_progress), (0, 1, 0));
}

#[test]
fn the_source_table_is_bounded() {
    let mut adm = machine(AdmissionConfig {
        max_sources: 2,
        ..AdmissionConfig::default()
    });
    let busy = admit(&mut adm, at(0), v4(1));
    let idle = admit(&mut adm, at(0), v4(2));
    let why = refused(&mut adm, at(0), v4(3));
    assert_eq!(
        why.to_string(),
        "2 sources tracked, each with handshakes in progress or queued (limit 2)"
    );
    // v4(2) finishes but its bucket is not yet full again, so it stays
    // tracked; it is idle, so a new source may take its place.
    adm.finished(at(1), idle);
    assert_eq!(adm.stats().sources, 2);
    admit(&mut adm, at(1), v4(3));
    let s = adm.stats();
    assert_eq!(
        (s.sources, s.forgotten, s.refused.too_many_sources),
        (2, 1, 1)
    );
    adm.finished(at(1), busy);
}

#[test]
fn forgetting_prefers_full_buckets() {
    let mut adm = machine(AdmissionConfig {
        max_sources: 2,
        rate_per_source: 1,
        ..AdmissionConfig::default()
    });
    let a = admit(&mut adm, at(0), v4(1));
    let b = admit(&mut adm, at(500), v4(2));
    adm.cancel(a);
    adm.cancel(b);
    // At 1.2 s, v4(1)'s bucket is full again and v4(2)'s is not.
    admit(&mut adm, at(1_200), v4(3));
    assert_eq!(adm.source_counts(v4(2)), (0, 0));
    // v4(2) is still tracked (its bucket remembers the token it took).
    for _ in 0..63 {
        let t = admit(&mut adm, at(1_200), v4(2));
        adm.cancel(t);
    }
    refused(&mut adm, at(1_200), v4(2));
}

#[test]
fn ipv6_sources_are_prefixes() {
    let mut adm = machine(AdmissionConfig {
        max_in_progress_per_source: 1,
        ..AdmissionConfig::default()
    });
    let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    admit(&mut adm, at(0), a);
    let why = refused(&mut adm, at(0), b);
    assert_eq!(
        why.to_string(),
        "source 2001:db8:1:2::/64 has 1 handshakes in progress (limit 1)"
    );
    admit(&mut adm, at(0), other);
    // A v4-mapped address is its IPv4 source.
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped());
    admit(&mut adm, at(0), v4(7));
    refused(&mut adm, at(0), mapped);
    assert_eq!(
        Source::of(IpAddr::V6(Ipv6Addr::LOCALHOST), 128).to_string(),
        "::1"
    );
    assert_eq!(
        Source::of(IpAddr::V6(Ipv6Addr::LOCALHOST), 0).to_string(),
        "::/0"
    );
}

#[test]
fn zero_limits_are_config_errors() {
    let bad = AdmissionConfig {
        rate_per_source: 0,
        ..AdmissionConfig::default()
    };
    let e = Admission::new(bad).unwrap_err();
    assert_eq!(e.to_string(), "admission limit rate_per_source is zero");
    let bad = AdmissionConfig {
        max_queued: 0,
        ..queueing()
    };
    assert_eq!(
        Admission::new(bad).unwrap_err(),
        AdmissionConfigError::Zero("max_queued")
    );
    // Refuse mode never uses the queue limits.
    Admission::new(AdmissionConfig {
        max_queued: 0,
        ..AdmissionConfig::default()
    })
    .unwrap();
    let bad = AdmissionConfig {
        ipv6_prefix: 129,
        ..AdmissionConfig::default()
    };
    assert_eq!(
        Admission::new(bad).unwrap_err(),
        AdmissionConfigError::Ipv6Prefix(129)
    );
}

#[test]
fn unlimited_admits_a_flood() {
    let mut adm = machine(AdmissionConfig::unlimited());
    let t: Vec<_> = (0..10_000).map(|_| admit(&mut adm, at(0), v4(1))).collect();
    for t in t {
        adm.finished(at(0), t);
    }
    assert_eq!(adm.stats().in_progress, 0);
}

#[test]
fn everything_returns_to_zero() {
    let mut adm = machine(AdmissionConfig {
        max_in_progress: 4,
        max_in_progress_per_source: 2,
        ..queueing()
    });
    let mut held = Vec::new();
    for i in 0..20u8 {
        match adm.offer(at(u64::from(i)), v4(i % 3)) {
            Decision::Admit(t) | Decision::Queued(t) => held.push(t),
            Decision::Refused(_) => {}
        }
    }
    while let Some(t) = held.pop() {
        adm.finished(at(100), t);
        while let Some(t) = adm.poll_admit(at(100)) {
            held.push(t);
        }
    }
    let s = adm.stats();
    assert_eq!((s.in_progress, s.queued, s.sources), (0, 0, 0));
    assert_eq!(adm.poll_timeout(), None);
}
