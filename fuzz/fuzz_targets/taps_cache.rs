//! Raw bytes into `proto_core::taps::cache::PathCache::restore`, and
//! arbitrary endpoint specifiers into their validation.
//!
//! The first byte picks the mode.
//!
//! Restore (even first byte; the rest is the saved cache, restored under
//! the default config and under `max_entries` 0..=3, as is and with its
//! checksum recomputed so mutations reach the entry parser):
//! - never panics; accepted caches hold at most `max_entries` entries;
//! - the encoding is canonical: what restores re-saves to the same bytes;
//! - a restored cache keeps working: recording into it stays within the
//!   bound, and its save restores again;
//! - every error displays.
//!
//! Specifiers (odd first byte; the rest, through `arbitrary`, gives each
//! field or none, and local or remote):
//! - never panics; errors display;
//! - a host name to look up is canonical (lowercase, no trailing dot,
//!   valid, at most 253 bytes) and not an IP literal; a remote port is
//!   never 0; a Unix path is within the limit and has no NUL.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use proto_core::taps::cache::{CacheConfig, PathCache, RemoteKey};
use proto_core::taps::candidate::Stack;
use proto_core::taps::endpoint::{
    normalize_host_name, Endpoint, LocalBinding, LocalSpecifier, RemoteSpecifier, Resolution,
    SpecifierLimits,
};
use proto_core::time::Duration;
use std::net::IpAddr;

/// FNV-1a 32, as the format's checksum.
fn fnv(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

fn restore(data: &[u8]) {
    restore_checked(data);
    if data.len() >= 4 {
        let mut sealed = data.to_vec();
        let n = sealed.len() - 4;
        let sum = fnv(&sealed[..n]);
        sealed[n..].copy_from_slice(&sum.to_le_bytes());
        restore_checked(&sealed);
    }
}

fn restore_checked(data: &[u8]) {
    let configs = [
        CacheConfig::default(),
        CacheConfig {
            max_entries: 0,
            ..CacheConfig::default()
        },
        CacheConfig {
            max_entries: 1,
            ..CacheConfig::default()
        },
        CacheConfig {
            max_entries: 3,
            max_unix_path: 4,
        },
    ];
    for config in configs {
        let max = config.max_entries;
        match PathCache::restore_with(config, data) {
            Ok(mut cache) => {
                assert!(cache.len() <= max);
                assert_eq!(cache.save(), data, "not canonical");
                let remote = RemoteKey::Host {
                    name: "fuzz.example".into(),
                    port: 1,
                };
                cache.record_success(&remote, Stack::Tcp, Duration::from_millis(1));
                cache.record_failure(&remote, Stack::Udp);
                assert!(cache.len() <= max);
                let again = cache.save();
                let back = PathCache::restore_with(cache.config().clone(), &again)
                    .expect("a saved cache restores");
                assert_eq!(back.save(), again);
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Spec {
    local: bool,
    host: Option<String>,
    ip: Option<IpAddr>,
    port: Option<u16>,
    service: Option<String>,
    interface: Option<String>,
    unix: Option<String>,
}

fn check_host(h: &str) {
    assert!(h.len() <= 253);
    assert_eq!(
        normalize_host_name(h).as_deref(),
        Ok(h),
        "host not canonical"
    );
    assert!(h.parse::<IpAddr>().is_err());
}

fn specifier(data: &[u8]) {
    let Ok(s) = Spec::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let limits = SpecifierLimits::default();
    macro_rules! build {
        ($t:ty) => {{
            let mut b = <$t>::new();
            if let Some(h) = &s.host {
                b = b.with_host_name(h);
            }
            if let Some(ip) = s.ip {
                b = b.with_ip_address(ip);
            }
            if let Some(p) = s.port {
                b = b.with_port(p);
            }
            if let Some(v) = &s.service {
                b = b.with_service(v);
            }
            if let Some(i) = &s.interface {
                b = b.with_interface(i);
            }
            if let Some(u) = &s.unix {
                b = b.with_unix_path(u);
            }
            b
        }};
    }
    let unix_ok = |p: &str| !p.is_empty() && p.len() <= limits.max_unix_path && !p.contains('\0');
    if s.local {
        match build!(LocalSpecifier).validate(&limits) {
            Ok(v) => match v.binding {
                LocalBinding::Lookup { host, .. } => check_host(&host),
                LocalBinding::Unix(p) => assert!(unix_ok(&p)),
                _ => {}
            },
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    } else {
        match build!(RemoteSpecifier).validate(&limits) {
            Ok(v) => match v.resolution {
                Resolution::Lookup { host, port } => {
                    check_host(&host);
                    assert_ne!(port, 0);
                }
                Resolution::Ready(Endpoint::Ip(a)) => assert_ne!(a.port(), 0),
                Resolution::Ready(Endpoint::Unix(p)) => assert!(unix_ok(&p)),
                _ => {}
            },
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        restore(rest);
    } else {
        specifier(rest);
    }
});
