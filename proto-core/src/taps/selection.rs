//! From what the application asks to an ordered candidate tree (RFC 9623
//! section 4): paths (local interfaces), then protocol stacks; endpoints,
//! the leaves, come from resolution and are ordered by the racing core.
//!
//! # What each stack provides
//!
//! | property               | tcp | tcp+secure+mux | tcp+yamux | udp | unix |
//! |------------------------|-----|----------------|-----------|-----|------|
//! | reliability            | yes | yes            | yes       | no  | yes  |
//! | preserveMsgBoundaries  | no  | no             | no        | yes | no   |
//! | perMsgReliability      | no  | no             | no        | no  | no   |
//! | preserveOrder          | yes | yes            | yes       | no  | yes  |
//! | zeroRttMsg             | no  | no             | no        | no  | no   |
//! | multistreaming         | no  | yes            | yes       | no  | no   |
//! | fullChecksumSend/Recv  | yes | yes            | yes       | yes | yes  |
//! | congestionControl      | yes | yes            | yes       | no  | yes  |
//! | keepAlive              | yes | yes            | yes       | no  | no   |
//! | useTemporaryLocalAddress | yes | yes          | yes       | yes | no   |
//! | softErrorNotify        | no  | no             | no        | no  | no   |
//! | activeReadBeforeSend   | yes | yes            | yes       | no  | yes  |
//! | encryption, peer authentication | no | yes   | no        | no  | no   |
//!
//! Why: UDP's checksum covers the whole datagram. A Unix socket never
//! crosses a wire, so it has nothing to corrupt (full checksum) and no
//! network to congest (its kernel buffers push back), but it has no local
//! address to make temporary and no keepalive. Message boundaries are the
//! stack's own: a framer on a stream gives messages to the application but
//! does not make the stack preserve them. No stack offers `zeroRttMsg`
//! (weft's Noise XX handshake and TCP without Fast Open carry no early
//! data), `perMsgReliability`, `softErrorNotify`, `multipath` Active or
//! `advertisesAltaddr` today: requiring them fails at once. `direction`
//! prunes nothing (every stack can leave one direction unused).
//!
//! # The rules
//!
//! 1. Prune: a stack is dropped when it lacks a Require'd property or has
//!    a Prohibit'ed one; when weft security is configured, every stack but
//!    tcp+secure+mux; when security is disabled, tcp+secure+mux; for a Unix
//!    path every IP stack, for an IP endpoint the Unix stack. Each dropped
//!    stack is reported with the first constraint that dropped it.
//! 2. If nothing is left, fail with the smallest set of constraints that
//!    no stack satisfies together (a single property when one alone is
//!    impossible), the first such set in RFC property order.
//! 3. Order what is left (RFC 9622 section 6.2: sort by Prefer, break
//!    ties with Avoid): more satisfied Prefers first; then fewer provided
//!    Avoids; then, property by property in RFC order, the stack that
//!    satisfies a Prefer (or lacks an Avoid) the other does not; then the
//!    cache's rank (last attempt succeeded, then lower smoothed RTT); then
//!    the stack order of [`Stack`].
//! 4. Paths: a Require'd interface gives only required paths (those the
//!    host has, if the caller listed its interfaces); otherwise the listed
//!    interfaces less the Prohibit'ed ones, Prefer'ed first and Avoid'ed
//!    last, or, with none listed, the Prefer'ed interfaces then the
//!    system's default path. Every path gets the same stack order.

use super::cache::{PathCache, RemoteKey};
use super::candidate::{Candidate, Stack};
use super::endpoint::Endpoint;
use super::properties::{Multipath, Preference, Property, TransportProperties};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Every stack, in tie-break order.
pub const ALL_STACKS: [Stack; 5] = [
    Stack::SecureMux,
    Stack::Yamux,
    Stack::Tcp,
    Stack::Udp,
    Stack::Unix,
];

/// Whether `stack` provides `property` (the table in the
/// [module](self) docs).
pub fn provides(stack: Stack, property: Property) -> bool {
    use Property as P;
    use Stack as S;
    let stream = matches!(stack, S::Tcp | S::SecureMux | S::Yamux | S::Unix);
    let tcp = matches!(stack, S::Tcp | S::SecureMux | S::Yamux);
    match property {
        P::Reliability | P::PreserveOrder | P::ActiveReadBeforeSend => stream,
        P::PreserveMsgBoundaries => stack == S::Udp,
        P::Multistreaming => matches!(stack, S::SecureMux | S::Yamux),
        P::FullChecksumSend | P::FullChecksumRecv => true,
        P::CongestionControl => stream,
        P::KeepAlive => tcp,
        P::UseTemporaryLocalAddress => stack != S::Unix,
        P::PerMsgReliability | P::ZeroRttMsg | P::SoftErrorNotify => false,
    }
}

/// Whether `stack` encrypts and authenticates (weft's secure layer).
pub fn is_secure(stack: Stack) -> bool {
    stack == Stack::SecureMux
}

/// What security the preconnection configured, as selection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityMode {
    /// Plaintext: tcp+secure+mux is excluded.
    Disabled,
    /// weft's secure layer: only tcp+secure+mux qualifies.
    Weft,
}

/// What the remote (or, for a listener, the local) endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointKind {
    /// A host name or an IP address.
    Ip,
    /// A Unix socket path.
    Unix,
}

/// One reason a stack may not be used: a requirement of the application
/// or of its endpoint or security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Constraint {
    /// A property set to Require or Prohibit.
    Property(Property, Preference),
    /// `multipath` Active: no stack opens further paths.
    Multipath(Multipath),
    /// `advertisesAltaddr` true: no stack advertises other addresses.
    AdvertisesAltaddr,
    /// A Require'd interface: Unix sockets have none.
    InterfaceRequired,
    /// The security parameters.
    Security(SecurityMode),
    /// The endpoint's kind.
    Endpoint(EndpointKind),
}

impl Constraint {
    /// Whether `stack` satisfies this constraint.
    pub fn admits(&self, stack: Stack) -> bool {
        match *self {
            Constraint::Property(p, Preference::Require) => provides(stack, p),
            Constraint::Property(p, Preference::Prohibit) => !provides(stack, p),
            Constraint::Property(..) => true,
            Constraint::Multipath(m) => m != Multipath::Active,
            Constraint::AdvertisesAltaddr => false,
            Constraint::InterfaceRequired => stack != Stack::Unix,
            Constraint::Security(SecurityMode::Weft) => is_secure(stack),
            Constraint::Security(SecurityMode::Disabled) => !is_secure(stack),
            Constraint::Endpoint(EndpointKind::Unix) => stack == Stack::Unix,
            Constraint::Endpoint(EndpointKind::Ip) => stack != Stack::Unix,
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::Property(p, v) => write!(f, "{p}={v}"),
            Constraint::Multipath(m) => write!(f, "multipath={m}"),
            Constraint::AdvertisesAltaddr => f.write_str("advertisesAltaddr=true"),
            Constraint::InterfaceRequired => f.write_str("interface=Require"),
            Constraint::Security(SecurityMode::Weft) => {
                f.write_str("security=weft (only tcp+secure+mux encrypts)")
            }
            Constraint::Security(SecurityMode::Disabled) => f.write_str("security=disabled"),
            Constraint::Endpoint(EndpointKind::Ip) => f.write_str("endpoint=IP"),
            Constraint::Endpoint(EndpointKind::Unix) => f.write_str("endpoint=Unix path"),
        }
    }
}

/// Why selection found nothing to try.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectionError {
    /// No stack satisfies these constraints together (the smallest such
    /// set; one element when a single property is impossible).
    Unsatisfiable(Vec<Constraint>),
    /// A Require'd interface is not among the host's interfaces.
    InterfaceUnavailable(String),
    /// Every listed interface is Prohibit'ed.
    NoPath,
}

impl fmt::Display for SelectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectionError::Unsatisfiable(c) => {
                f.write_str("no protocol stack satisfies ")?;
                for (i, c) in c.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" together with ")?;
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            SelectionError::InterfaceUnavailable(i) => {
                write!(f, "required interface {i:?} is not available")
            }
            SelectionError::NoPath => f.write_str("every available interface is prohibited"),
        }
    }
}

impl core::error::Error for SelectionError {}

/// A path: where an attempt leaves from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Path {
    /// The system's choice (honouring
    /// [`Selection::prohibited_interfaces`] is the adapter's job).
    Default,
    /// This named interface.
    Interface(String),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Default => f.write_str("default path"),
            Path::Interface(i) => write!(f, "interface {i}"),
        }
    }
}

/// A stack selection dropped, and why (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// The stack.
    pub stack: Stack,
    /// The first constraint it failed.
    pub reason: Constraint,
}

impl fmt::Display for Pruned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pruned by {}", self.stack, self.reason)
    }
}

/// One branch of the tree: a path and its stacks, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// The path.
    pub path: Path,
    /// The stacks to try on it, best first.
    pub stacks: Vec<Stack>,
}

/// The candidate tree down to stacks, for the racing core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Paths, best first, each with its ordered stacks.
    pub branches: Vec<Branch>,
    /// Stacks dropped and why.
    pub pruned: Vec<Pruned>,
    /// Interfaces the default path must not use.
    pub prohibited_interfaces: Vec<String>,
    /// `useTemporaryLocalAddress`, for the adapter choosing a source
    /// address.
    pub temporary_address: Preference,
}

impl Selection {
    /// The stacks in order (the same on every path).
    pub fn stacks(&self) -> &[Stack] {
        self.branches.first().map_or(&[], |b| &b.stacks)
    }

    /// The leaves once endpoints are known: each path, each stack, each
    /// endpoint the stack can reach (IP stacks IP endpoints, the Unix stack
    /// Unix paths), in tree order. Interleaving families is the racing
    /// core's job.
    pub fn candidates(&self, endpoints: &[Endpoint]) -> Vec<(Path, Candidate)> {
        let mut out = Vec::new();
        for b in &self.branches {
            for &stack in &b.stacks {
                for e in endpoints {
                    let unix = matches!(e, Endpoint::Unix(_));
                    if unix == (stack == Stack::Unix) {
                        out.push((
                            b.path.clone(),
                            Candidate {
                                stack,
                                endpoint: e.clone(),
                            },
                        ));
                    }
                }
            }
        }
        out
    }
}

/// What selection needs besides the properties.
#[derive(Debug, Clone, Copy)]
pub struct SelectionInput<'a> {
    /// The transport properties.
    pub properties: &'a TransportProperties,
    /// The security configured.
    pub security: SecurityMode,
    /// What the endpoint is.
    pub endpoint: EndpointKind,
    /// The cache and the remote's key, to rank stacks by past outcomes.
    pub cache: Option<(&'a PathCache, &'a RemoteKey)>,
    /// The host's interfaces, if the caller knows them (empty: unknown).
    pub interfaces: &'a [String],
}

/// The active constraints, in RFC property order then the others.
pub fn constraints(input: &SelectionInput<'_>) -> Vec<Constraint> {
    let props = input.properties;
    let mut c = Vec::new();
    for p in Property::ALL {
        let v = props.get(p);
        if matches!(v, Preference::Require | Preference::Prohibit) {
            c.push(Constraint::Property(p, v));
        }
    }
    if props
        .interfaces()
        .iter()
        .any(|(_, v)| *v == Preference::Require)
    {
        c.push(Constraint::InterfaceRequired);
    }
    if props.multipath_value() == Multipath::Active {
        c.push(Constraint::Multipath(Multipath::Active));
    }
    if props.advertises_altaddr_value() {
        c.push(Constraint::AdvertisesAltaddr);
    }
    c.push(Constraint::Security(input.security));
    c.push(Constraint::Endpoint(input.endpoint));
    c
}

fn mask(c: &Constraint) -> u8 {
    ALL_STACKS
        .iter()
        .enumerate()
        .filter(|(_, s)| c.admits(**s))
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// The smallest subset of `cs` no stack satisfies, first in order. Some
/// set of at most five exists when all of `cs` together is unsatisfiable
/// (one constraint per stack suffices), so the search stops there.
fn smallest_conflict(cs: &[Constraint]) -> Vec<Constraint> {
    let masks: Vec<u8> = cs.iter().map(mask).collect();
    let n = cs.len();
    for k in 1..=ALL_STACKS.len().min(n) {
        let mut idx: Vec<usize> = (0..k).collect();
        loop {
            let m = idx.iter().fold(0x1f, |m, &i| m & masks[i]);
            if m == 0 {
                return idx.iter().map(|&i| cs[i]).collect();
            }
            // Next combination in lexicographic order.
            let mut i = k;
            while i > 0 && idx[i - 1] == n - k + (i - 1) {
                i -= 1;
            }
            if i == 0 {
                break;
            }
            idx[i - 1] += 1;
            for j in i..k {
                idx[j] = idx[j - 1] + 1;
            }
        }
    }
    cs.to_vec()
}

/// Per property in RFC order: 2 satisfies a Prefer (or lacks an Avoid),
/// 0 violates it, 1 no preference; higher is better.
fn pref_key(props: &TransportProperties, stack: Stack) -> (u32, u32, [u8; 13]) {
    let mut prefers = 0;
    let mut avoids = 0;
    let mut lex = [1u8; 13];
    for (i, p) in Property::ALL.into_iter().enumerate() {
        let has = provides(stack, p);
        match props.get(p) {
            Preference::Prefer => {
                prefers += u32::from(has);
                lex[i] = if has { 2 } else { 0 };
            }
            Preference::Avoid => {
                avoids += u32::from(has);
                lex[i] = if has { 0 } else { 2 };
            }
            _ => {}
        }
    }
    (prefers, avoids, lex)
}

/// Builds the candidate tree (see the [module](self) docs for the rules).
pub fn select(input: &SelectionInput<'_>) -> Result<Selection, SelectionError> {
    let cs = constraints(input);
    let mut kept = Vec::new();
    let mut pruned = Vec::new();
    for stack in ALL_STACKS {
        match cs.iter().find(|c| !c.admits(stack)) {
            Some(&reason) => pruned.push(Pruned { stack, reason }),
            None => kept.push(stack),
        }
    }
    if kept.is_empty() {
        return Err(SelectionError::Unsatisfiable(smallest_conflict(&cs)));
    }
    let props = input.properties;
    kept.sort_by(|&a, &b| {
        let (pa, aa, la) = pref_key(props, a);
        let (pb, ab, lb) = pref_key(props, b);
        pb.cmp(&pa)
            .then(aa.cmp(&ab))
            .then(lb.cmp(&la))
            .then_with(|| match input.cache {
                Some((cache, remote)) => cache.rank(remote, a).cmp(&cache.rank(remote, b)),
                None => core::cmp::Ordering::Equal,
            })
    });
    let paths = paths(input)?;
    let prohibited_interfaces = props
        .interfaces()
        .iter()
        .filter(|(_, v)| *v == Preference::Prohibit)
        .map(|(n, _)| n.clone())
        .collect();
    Ok(Selection {
        branches: paths
            .into_iter()
            .map(|path| Branch {
                path,
                stacks: kept.clone(),
            })
            .collect(),
        pruned,
        prohibited_interfaces,
        temporary_address: props.get(Property::UseTemporaryLocalAddress),
    })
}

fn paths(input: &SelectionInput<'_>) -> Result<Vec<Path>, SelectionError> {
    if input.endpoint == EndpointKind::Unix {
        return Ok(alloc::vec![Path::Default]);
    }
    let named = input.properties.interfaces();
    let with = |want: Preference| {
        named
            .iter()
            .filter(move |(_, v)| *v == want)
            .map(|(n, _)| n)
    };
    let known = &input.interfaces;
    let available = |n: &String| known.is_empty() || known.contains(n);
    let required: Vec<&String> = with(Preference::Require).collect();
    if let Some(first) = required.first() {
        let paths: Vec<Path> = required
            .iter()
            .filter(|n| available(n))
            .map(|n| Path::Interface((*n).clone()))
            .collect();
        if paths.is_empty() {
            return Err(SelectionError::InterfaceUnavailable((*first).clone()));
        }
        return Ok(paths);
    }
    if known.is_empty() {
        let mut paths: Vec<Path> = with(Preference::Prefer)
            .map(|n| Path::Interface(n.clone()))
            .collect();
        paths.push(Path::Default);
        return Ok(paths);
    }
    let level = |n: &String| {
        named
            .iter()
            .find(|(m, _)| m == n)
            .map_or(Preference::NoPreference, |(_, v)| *v)
    };
    let mut paths: Vec<(u8, Path)> = known
        .iter()
        .filter_map(|n| {
            let rank = match level(n) {
                Preference::Prohibit => return None,
                Preference::Prefer => 0,
                Preference::Avoid => 2,
                _ => 1,
            };
            Some((rank, Path::Interface(n.clone())))
        })
        .collect();
    if paths.is_empty() {
        return Err(SelectionError::NoPath);
    }
    paths.sort_by_key(|(r, _)| *r);
    Ok(paths.into_iter().map(|(_, p)| p).collect())
}
