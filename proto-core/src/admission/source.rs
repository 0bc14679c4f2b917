//! What the limits are kept per: an address, or an IPv6 prefix.

use core::fmt;
use core::net::{IpAddr, Ipv6Addr};

/// A source of connections: an IPv4 address, or an IPv6 address cut to a
/// prefix. IPv4-mapped IPv6 addresses count as their IPv4 address, so a
/// dual-stack listener sees one source per client either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source {
    addr: IpAddr,
    prefix: u8,
}

impl Source {
    /// `ip`'s source when IPv6 sources are `ipv6_prefix` bits long (at
    /// most 128).
    pub fn of(ip: IpAddr, ipv6_prefix: u8) -> Source {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source {
                addr: IpAddr::V4(v4),
                prefix: 32,
            },
            IpAddr::V6(v6) => {
                let prefix = ipv6_prefix.min(128);
                let mask = u128::MAX.checked_shl(u32::from(128 - prefix)).unwrap_or(0);
                Source {
                    addr: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                    prefix,
                }
            }
        }
    }

    /// The address (the prefix's first address for IPv6).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Prefix length in bits (32 for IPv4).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V6(_) if self.prefix < 128 => write!(f, "{}/{}", self.addr, self.prefix),
            _ => write!(f, "{}", self.addr),
        }
    }
}
