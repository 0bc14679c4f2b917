//! Arbitrary offer / finished / cancel / time / timeout sequences into
//! `proto_core::admission::Admission`, against a model of the tickets held.
//!
//! Input: 8 bytes of config (small limits, so they are hit), then 2-byte
//! ops `[kind, arg]`. Time moves forward and, sometimes, backward (a
//! driver's clock is never trusted to be monotonic).
//!
//! Checked after every op:
//! - no panic; every refusal reason displays;
//! - in progress and queued, in total and per source, never exceed their
//!   limits, and equal the model's counts; the source table stays within
//!   `max_sources`;
//! - `poll_admit` yields only queued tickets, `poll_expired` only queued
//!   tickets whose deadline passed; `finished` / `cancel` report exactly
//!   the tickets held; forged and repeated tickets change nothing;
//! - at the end, finishing every ticket (and admitting what that frees)
//!   brings every count back to zero and leaves no deadline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::admission::{Admission, AdmissionConfig, Decision, Excess, Ticket};
use proto_core::time::{Duration, Instant};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Running(IpAddr),
    Queued(IpAddr, Instant),
}

struct Model {
    adm: Admission,
    held: BTreeMap<Ticket, Held>,
    now: Instant,
}

fn config(b: &[u8; 8]) -> AdmissionConfig {
    AdmissionConfig {
        max_in_progress: u32::from(b[0] % 8),
        max_in_progress_per_source: u32::from(b[1] % 4),
        rate_per_source: u32::from(b[2] % 16),
        burst_per_source: u32::from(b[3] % 8),
        max_sources: u32::from(b[4] % 6),
        ipv6_prefix: b[5] % 130,
        excess: if b[6] & 1 == 0 {
            Excess::Refuse
        } else {
            Excess::Queue
        },
        max_queued: u32::from((b[6] >> 1) % 8),
        max_queued_per_source: u32::from(b[7] % 4),
        queue_timeout: Duration::from_millis(u64::from(b[7] >> 2) * 25),
    }
}

fn ip(arg: u8) -> IpAddr {
    let n = arg & 0x7;
    if arg & 0x80 == 0 {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    } else if arg & 0x40 == 0 {
        // Same /64, different hosts.
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, u16::from(n)))
    } else {
        IpAddr::V6(Ipv4Addr::new(10, 0, 0, n).to_ipv6_mapped())
    }
}

impl Model {
    fn pick(&self, arg: u8) -> Option<Ticket> {
        if self.held.is_empty() {
            return None;
        }
        self.held
            .keys()
            .nth(usize::from(arg) % self.held.len())
            .copied()
    }

    fn drain(&mut self) {
        while let Some((t, why)) = self.adm.poll_expired() {
            let _ = why.to_string();
            match self.held.remove(&t) {
                Some(Held::Queued(_, deadline)) => assert!(deadline <= self.now, "early expiry"),
                other => panic!("expired {t:?} held as {other:?}"),
            }
        }
        while let Some(t) = self.adm.poll_admit(self.now) {
            match self.held.get(&t).copied() {
                Some(Held::Queued(ip, _)) => {
                    self.held.insert(t, Held::Running(ip));
                }
                other => panic!("admitted {t:?} held as {other:?}"),
            }
        }
    }

    fn check(&self) {
        let c = self.adm.config().clone();
        let s = self.adm.stats();
        let running = self
            .held
            .values()
            .filter(|h| matches!(h, Held::Running(_)))
            .count() as u32;
        let queued = self.held.len() as u32 - running;
        assert_eq!((s.in_progress, s.queued), (running, queued));
        assert!(s.in_progress <= c.max_in_progress);
        assert!(s.queued <= c.max_queued || c.excess == Excess::Refuse && s.queued == 0);
        assert!(s.sources <= c.max_sources);
        let mut per: BTreeMap<_, (u32, u32)> = BTreeMap::new();
        for h in self.held.values() {
            let (ip, q) = match *h {
                Held::Running(ip) => (ip, false),
                Held::Queued(ip, _) => (ip, true),
            };
            let e = per.entry(self.adm.source_of(ip)).or_default();
            if q {
                e.1 += 1
            } else {
                e.0 += 1
            }
        }
        for (src, (r, q)) in per {
            assert_eq!(self.adm.source_counts(src.addr()), (r, q), "{src}");
            assert!(r <= c.max_in_progress_per_source);
            assert!(q <= c.max_queued_per_source);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, ops)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(adm) = Admission::new(config(head)) else {
        return;
    };
    let mut m = Model {
        adm,
        held: BTreeMap::new(),
        now: Instant::ZERO,
    };
    for op in ops.chunks_exact(2).take(4096) {
        let (kind, arg) = (op[0], op[1]);
        match kind % 7 {
            0 | 1 => {
                let ip = ip(arg);
                match m.adm.offer(m.now, ip) {
                    Decision::Admit(t) => {
                        assert!(m.held.insert(t, Held::Running(ip)).is_none());
                    }
                    Decision::Queued(t) => {
                        let deadline = m.now.saturating_add(m.adm.config().queue_timeout);
                        assert!(m.held.insert(t, Held::Queued(ip, deadline)).is_none());
                    }
                    Decision::Refused(why) => {
                        let _ = why.to_string();
                    }
                }
            }
            2 => {
                if let Some(t) = m.pick(arg) {
                    assert!(m.adm.finished(m.now, t));
                    m.held.remove(&t);
                    assert!(!m.adm.finished(m.now, t));
                }
            }
            3 => {
                if let Some(t) = m.pick(arg) {
                    assert!(m.adm.cancel(t));
                    m.held.remove(&t);
                }
            }
            4 => {
                m.now = m
                    .now
                    .saturating_add(Duration::from_millis(u64::from(arg) * 7))
            }
            5 => {
                m.now = Instant::from_nanos(
                    m.now.as_nanos().saturating_sub(u64::from(arg) * 1_000_000),
                );
            }
            _ => {
                let forged = Ticket::from_id(u64::from(arg) + 1_000_000);
                assert!(!m.adm.finished(m.now, forged));
                if let Some(deadline) = m.adm.poll_timeout() {
                    if arg & 1 == 0 {
                        m.now = m.now.max(deadline);
                    }
                }
                m.adm.handle_timeout(m.now);
            }
        }
        m.drain();
        m.check();
    }
    while let Some(t) = m.pick(0) {
        assert!(m.adm.finished(m.now, t));
        m.held.remove(&t);
        m.drain();
        m.check();
    }
    let s = m.adm.stats();
    assert_eq!((s.in_progress, s.queued), (0, 0));
    assert_eq!(m.adm.poll_timeout(), None);
});
