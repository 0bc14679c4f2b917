//! The order candidates are tried in: stacks outermost, and inside each
//! stack the endpoints with their families interleaved (RFC 8305 section
//! 4: `first_family_count` of the preferred family, then one of each in
//! turn, the rest of the longer list at the end).

use crate::taps::candidate::{Candidate, Stack};
use crate::taps::endpoint::{Endpoint, Family};
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

/// The endpoints a race knows, per family, in preference order, each
/// family bounded.
#[derive(Debug, Default)]
pub(super) struct Endpoints {
    v6: Vec<SocketAddr>,
    v4: Vec<SocketAddr>,
    unix: Vec<String>,
}

impl Endpoints {
    /// Adds `ep` at the end of its family; duplicates and endpoints over
    /// `max` per family are dropped. Whether it was added.
    pub(super) fn add(&mut self, ep: &Endpoint, max: usize) -> bool {
        match ep {
            Endpoint::Ip(a) => {
                let list = match Family::of(a) {
                    Family::V6 => &mut self.v6,
                    Family::V4 => &mut self.v4,
                };
                push_bounded(list, *a, max)
            }
            Endpoint::Unix(p) => {
                if self.unix.len() >= max || self.unix.contains(p) {
                    return false;
                }
                self.unix.push(p.clone());
                true
            }
        }
    }

    /// Endpoints kept, all families together.
    pub(super) fn len(&self) -> usize {
        self.v6.len() + self.v4.len() + self.unix.len()
    }

    /// Every candidate, in the order they are tried.
    pub(super) fn candidates<'a>(
        &'a self,
        stacks: &'a [Stack],
        preferred: Family,
        first_family_count: usize,
    ) -> impl Iterator<Item = Candidate> + 'a {
        let (pref, other) = match preferred {
            Family::V6 => (&self.v6[..], &self.v4[..]),
            Family::V4 => (&self.v4[..], &self.v6[..]),
        };
        stacks.iter().flat_map(move |&stack| {
            let ip = (stack != Stack::Unix)
                .then(|| Interleave::new(pref, other, first_family_count))
                .into_iter()
                .flatten()
                .map(Endpoint::Ip);
            let unix = self
                .unix
                .iter()
                .filter(move |_| stack == Stack::Unix)
                .map(|p| Endpoint::Unix(p.clone()));
            ip.chain(unix)
                .map(move |endpoint| Candidate { stack, endpoint })
        })
    }
}

fn push_bounded(list: &mut Vec<SocketAddr>, a: SocketAddr, max: usize) -> bool {
    if list.len() >= max || list.contains(&a) {
        return false;
    }
    list.push(a);
    true
}

/// `first` of `pref` (0 counts as 1), then `other` and `pref` in turn.
struct Interleave<'a> {
    pref: &'a [SocketAddr],
    other: &'a [SocketAddr],
    first_left: usize,
    other_next: bool,
}

impl<'a> Interleave<'a> {
    fn new(pref: &'a [SocketAddr], other: &'a [SocketAddr], first: usize) -> Self {
        Interleave {
            pref,
            other,
            first_left: first.max(1),
            other_next: true,
        }
    }
}

impl Iterator for Interleave<'_> {
    type Item = SocketAddr;

    fn next(&mut self) -> Option<SocketAddr> {
        let take_other = if self.first_left > 0 {
            self.first_left -= 1;
            self.pref.is_empty()
        } else {
            let o = self.other_next;
            self.other_next = !self.other_next;
            if o {
                !self.other.is_empty()
            } else {
                self.pref.is_empty()
            }
        };
        let list = if take_other {
            &mut self.other
        } else {
            &mut self.pref
        };
        let (&head, rest) = list.split_first()?;
        *list = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn v6(n: u16) -> SocketAddr {
        SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n).into(), 443)
    }
    fn v4(n: u8) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::new(192, 0, 2, n).into(), 443)
    }

    #[test]
    fn interleave_follows_rfc_8305_section_4() {
        let p = [v6(1), v6(2), v6(3)];
        let o = [v4(1), v4(2)];
        let one: Vec<_> = Interleave::new(&p, &o, 1).collect();
        assert_eq!(one, [v6(1), v4(1), v6(2), v4(2), v6(3)]);
        let two: Vec<_> = Interleave::new(&p, &o, 2).collect();
        assert_eq!(two, [v6(1), v6(2), v4(1), v6(3), v4(2)]);
        let none: Vec<_> = Interleave::new(&[], &o, 2).collect();
        assert_eq!(none, [v4(1), v4(2)]);
        let short: Vec<_> = Interleave::new(&p[..1], &o, 1).collect();
        assert_eq!(short, [v6(1), v4(1), v4(2)]);
    }

    #[test]
    fn stacks_outermost_unix_only_on_unix() {
        let mut e = Endpoints::default();
        assert!(e.add(&Endpoint::Ip(v4(1)), 4));
        assert!(!e.add(&Endpoint::Ip(v4(1)), 4));
        assert!(e.add(&Endpoint::Ip(v6(1)), 4));
        assert!(e.add(&Endpoint::Unix("/s".into()), 4));
        let order: Vec<_> = e
            .candidates(&[Stack::Unix, Stack::Tcp], Family::V6, 1)
            .map(|c| (c.stack, c.endpoint))
            .collect();
        assert_eq!(
            order,
            [
                (Stack::Unix, Endpoint::Unix("/s".into())),
                (Stack::Tcp, Endpoint::Ip(v6(1))),
                (Stack::Tcp, Endpoint::Ip(v4(1))),
            ]
        );
        assert!(!e.add(&Endpoint::Ip(v4(2)), 1));
    }
}
