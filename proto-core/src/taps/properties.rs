//! What the application asks of a connection: RFC 9622 section 6.2's
//! selection properties, each with a preference level and the RFC's
//! default.
//!
//! ```
//! use proto_core::taps::properties::{Preference, Property, TransportProperties};
//!
//! let props = TransportProperties::default()
//!     .require(Property::PreserveMsgBoundaries)
//!     .prohibit(Property::Reliability)
//!     .prohibit(Property::PreserveOrder)
//!     .prohibit(Property::CongestionControl);
//! assert_eq!(props.get(Property::Multistreaming), Preference::Prefer);
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// How much the application wants a property (RFC 9622 section 6.2).
///
/// `Require` and `Prohibit` prune candidates; `Prefer` and `Avoid` only
/// order them; `NoPreference` has no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Preference {
    /// Select only stacks that provide the property; fail otherwise.
    Require,
    /// Rank stacks that provide the property first.
    Prefer,
    /// No effect on selection.
    NoPreference,
    /// Rank stacks that provide the property last.
    Avoid,
    /// Select only stacks that do not provide the property; fail otherwise.
    Prohibit,
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preference::Require => "Require",
            Preference::Prefer => "Prefer",
            Preference::NoPreference => "No Preference",
            Preference::Avoid => "Avoid",
            Preference::Prohibit => "Prohibit",
        })
    }
}

/// The selection properties whose value is a [`Preference`], in RFC 9622
/// section 6.2's order (which is also the tie-break order of
/// [`selection`](super::selection)).
///
/// `interface`, `multipath`, `advertisesAltaddr` and `direction` take other
/// values and have their own setters on [`TransportProperties`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Property {
    /// `reliability`: data arrives, or the connection fails. Default Require.
    Reliability,
    /// `preserveMsgBoundaries`: the receiver sees the sender's messages.
    /// Default No Preference.
    PreserveMsgBoundaries,
    /// `perMsgReliability`: reliability chosen per message. Default No
    /// Preference.
    PerMsgReliability,
    /// `preserveOrder`: data arrives in the order sent. Default Require.
    PreserveOrder,
    /// `zeroRttMsg`: data may go with the first flight. Default No Preference.
    ZeroRttMsg,
    /// `multistreaming`: several streams over one transport connection.
    /// Default Prefer.
    Multistreaming,
    /// `fullChecksumSend`: the checksum covers all data sent. Default Require.
    FullChecksumSend,
    /// `fullChecksumRecv`: the checksum covers all data received. Default
    /// Require.
    FullChecksumRecv,
    /// `congestionControl`: the connection is congestion controlled. Default
    /// Require.
    CongestionControl,
    /// `keepAlive`: the stack probes an idle peer. Default No Preference.
    KeepAlive,
    /// `useTemporaryLocalAddress`: privacy addresses (RFC 8981). Default
    /// Prefer; Avoid for listeners and rendezvous.
    UseTemporaryLocalAddress,
    /// `softErrorNotify`: ICMP soft errors reach the application. Default No
    /// Preference.
    SoftErrorNotify,
    /// `activeReadBeforeSend`: the initiator may read before it sends.
    /// Default No Preference.
    ActiveReadBeforeSend,
}

impl Property {
    /// Every preference-valued property, in RFC order.
    pub const ALL: [Property; 13] = [
        Property::Reliability,
        Property::PreserveMsgBoundaries,
        Property::PerMsgReliability,
        Property::PreserveOrder,
        Property::ZeroRttMsg,
        Property::Multistreaming,
        Property::FullChecksumSend,
        Property::FullChecksumRecv,
        Property::CongestionControl,
        Property::KeepAlive,
        Property::UseTemporaryLocalAddress,
        Property::SoftErrorNotify,
        Property::ActiveReadBeforeSend,
    ];

    /// The RFC's name (`preserveMsgBoundaries`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Property::Reliability => "reliability",
            Property::PreserveMsgBoundaries => "preserveMsgBoundaries",
            Property::PerMsgReliability => "perMsgReliability",
            Property::PreserveOrder => "preserveOrder",
            Property::ZeroRttMsg => "zeroRttMsg",
            Property::Multistreaming => "multistreaming",
            Property::FullChecksumSend => "fullChecksumSend",
            Property::FullChecksumRecv => "fullChecksumRecv",
            Property::CongestionControl => "congestionControl",
            Property::KeepAlive => "keepAlive",
            Property::UseTemporaryLocalAddress => "useTemporaryLocalAddress",
            Property::SoftErrorNotify => "softErrorNotify",
            Property::ActiveReadBeforeSend => "activeReadBeforeSend",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `multipath` (RFC 9622 section 6.2.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Multipath {
    /// One path only. The default for initiated and rendezvous connections.
    Disabled,
    /// Open further paths actively.
    Active,
    /// Accept further paths the peer opens. The default for listeners.
    Passive,
}

impl fmt::Display for Multipath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Multipath::Disabled => "Disabled",
            Multipath::Active => "Active",
            Multipath::Passive => "Passive",
        })
    }
}

/// `direction` (RFC 9622 section 6.2.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// Both ways. The default.
    Bidirectional,
    /// The local side only sends.
    UnidirectionalSend,
    /// The local side only receives.
    UnidirectionalReceive,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Bidirectional => "Bidirectional",
            Direction::UnidirectionalSend => "Unidirectional send",
            Direction::UnidirectionalReceive => "Unidirectional receive",
        })
    }
}

/// The selection properties of a preconnection (RFC 9622 section 6.2).
///
/// [`Default`] gives the RFC's defaults for an initiated connection;
/// [`for_listener`](Self::for_listener) and
/// [`for_rendezvous`](Self::for_rendezvous) the ones that differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportProperties {
    prefs: [Preference; 13],
    interfaces: Vec<(String, Preference)>,
    multipath: Multipath,
    advertises_altaddr: bool,
    direction: Direction,
}

impl Default for TransportProperties {
    fn default() -> Self {
        let mut prefs = [Preference::NoPreference; 13];
        for (p, v) in [
            (Property::Reliability, Preference::Require),
            (Property::PreserveOrder, Preference::Require),
            (Property::Multistreaming, Preference::Prefer),
            (Property::FullChecksumSend, Preference::Require),
            (Property::FullChecksumRecv, Preference::Require),
            (Property::CongestionControl, Preference::Require),
            (Property::UseTemporaryLocalAddress, Preference::Prefer),
        ] {
            prefs[p.index()] = v;
        }
        TransportProperties {
            prefs,
            interfaces: Vec::new(),
            multipath: Multipath::Disabled,
            advertises_altaddr: false,
            direction: Direction::Bidirectional,
        }
    }
}

impl TransportProperties {
    /// The RFC's defaults for an initiated connection (same as [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The defaults for a listener: `useTemporaryLocalAddress` Avoid (a
    /// listener is reached at a stable address) and `multipath` Passive.
    pub fn for_listener() -> Self {
        let mut p = Self::default();
        p.prefs[Property::UseTemporaryLocalAddress.index()] = Preference::Avoid;
        p.multipath = Multipath::Passive;
        p
    }

    /// The defaults for a rendezvous: `useTemporaryLocalAddress` Avoid;
    /// `multipath` stays Disabled.
    pub fn for_rendezvous() -> Self {
        let mut p = Self::default();
        p.prefs[Property::UseTemporaryLocalAddress.index()] = Preference::Avoid;
        p
    }

    /// Sets `property` to `preference`.
    #[must_use]
    pub fn set(mut self, property: Property, preference: Preference) -> Self {
        self.prefs[property.index()] = preference;
        self
    }

    /// Sets `property` to [`Preference::Require`].
    #[must_use]
    pub fn require(self, property: Property) -> Self {
        self.set(property, Preference::Require)
    }

    /// Sets `property` to [`Preference::Prefer`].
    #[must_use]
    pub fn prefer(self, property: Property) -> Self {
        self.set(property, Preference::Prefer)
    }

    /// Sets `property` to [`Preference::Avoid`].
    #[must_use]
    pub fn avoid(self, property: Property) -> Self {
        self.set(property, Preference::Avoid)
    }

    /// Sets `property` to [`Preference::Prohibit`].
    #[must_use]
    pub fn prohibit(self, property: Property) -> Self {
        self.set(property, Preference::Prohibit)
    }

    /// Sets `property` to [`Preference::NoPreference`].
    #[must_use]
    pub fn ignore(self, property: Property) -> Self {
        self.set(property, Preference::NoPreference)
    }

    /// The preference for `property`.
    pub fn get(&self, property: Property) -> Preference {
        self.prefs[property.index()]
    }

    /// `interface`: a preference for the named local interface (`en0`,
    /// `wlan0`). Setting a name again replaces its preference;
    /// `NoPreference` removes it. Default: no interface named.
    #[must_use]
    pub fn interface(mut self, name: &str, preference: Preference) -> Self {
        self.interfaces.retain(|(n, _)| n != name);
        if preference != Preference::NoPreference {
            self.interfaces.push((String::from(name), preference));
        }
        self
    }

    /// The named interfaces and their preferences, in the order set.
    pub fn interfaces(&self) -> &[(String, Preference)] {
        &self.interfaces
    }

    /// `multipath`. Default Disabled (Passive for listeners).
    #[must_use]
    pub fn multipath(mut self, multipath: Multipath) -> Self {
        self.multipath = multipath;
        self
    }

    /// The `multipath` value.
    pub fn multipath_value(&self) -> Multipath {
        self.multipath
    }

    /// `advertisesAltaddr`: advertise other local addresses to the peer.
    /// Default false.
    #[must_use]
    pub fn advertises_altaddr(mut self, advertise: bool) -> Self {
        self.advertises_altaddr = advertise;
        self
    }

    /// The `advertisesAltaddr` value.
    pub fn advertises_altaddr_value(&self) -> bool {
        self.advertises_altaddr
    }

    /// `direction`. Default Bidirectional.
    #[must_use]
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// The `direction` value.
    pub fn direction_value(&self) -> Direction {
        self.direction
    }
}
