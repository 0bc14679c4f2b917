//! Where a connection goes: endpoint specifiers (what the application
//! names, RFC 9622 section 6.1) and the concrete endpoints resolution
//! yields (what an attempt dials).

use alloc::string::String;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

/// An IP address family. Racing interleaves families (Happy Eyeballs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv6 (AAAA records).
    V6,
    /// IPv4 (A records).
    V4,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: &SocketAddr) -> Family {
        match addr {
            SocketAddr::V6(_) => Family::V6,
            SocketAddr::V4(_) => Family::V4,
        }
    }

    /// The other family.
    pub fn other(self) -> Family {
        match self {
            Family::V6 => Family::V4,
            Family::V4 => Family::V6,
        }
    }
}

/// A concrete endpoint an attempt connects to: what resolving a
/// [`RemoteSpecifier`] yields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A Unix socket path.
    Unix(String),
}

impl Endpoint {
    /// The IP family, `None` for a Unix socket.
    pub fn family(&self) -> Option<Family> {
        match self {
            Endpoint::Ip(a) => Some(Family::of(a)),
            Endpoint::Unix(_) => None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Ip(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

/// Limits on endpoint specifiers. [`Default`] gives the documented values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecifierLimits {
    /// Longest Unix socket path, in bytes. Default 107: `sun_path` is 108
    /// bytes on Linux, one of them the terminating NUL.
    pub max_unix_path: usize,
    /// Longest interface name, in bytes. Default 15 (Linux's `IFNAMSIZ`
    /// less the NUL).
    pub max_interface_name: usize,
}

impl Default for SpecifierLimits {
    fn default() -> Self {
        SpecifierLimits {
            max_unix_path: 107,
            max_interface_name: 15,
        }
    }
}

/// Well-known service names and their ports (the IANA registry's entries
/// weft's users name most). A service not listed needs an explicit port.
pub const SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("pop3", 110),
    ("imap", 143),
    ("ldap", 389),
    ("https", 443),
    ("submission", 587),
    ("ldaps", 636),
    ("domain-s", 853),
    ("imaps", 993),
    ("pop3s", 995),
    ("mqtt", 1883),
    ("postgresql", 5432),
    ("amqp", 5672),
    ("redis", 6379),
    ("http-alt", 8080),
    ("mqtt-tls", 8883),
];

/// The port of the well-known `service`, if listed in [`SERVICES`]
/// (ASCII case-insensitive).
pub fn service_port(service: &str) -> Option<u16> {
    SERVICES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(service))
        .map(|&(_, port)| port)
}

/// Why an endpoint specifier is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecifierError {
    /// A remote names neither a host name, an IP address nor a Unix path.
    NoAddress,
    /// An IP endpoint has neither a port nor a service.
    NoPort,
    /// Port 0 on a remote endpoint (nothing listens there).
    ZeroPort,
    /// The service is not in [`SERVICES`].
    UnknownService(String),
    /// A port and a service that maps to another port.
    PortServiceMismatch {
        /// The port given.
        port: u16,
        /// The service given.
        service: String,
        /// The service's port.
        service_port: u16,
    },
    /// Both a host name and an IP address.
    HostAndAddress,
    /// A Unix path together with a host name, address, port or service.
    UnixWithIp,
    /// The host name is longer than 253 bytes.
    HostNameTooLong(usize),
    /// The host name is not a valid DNS name (why).
    InvalidHostName(&'static str),
    /// The Unix path is empty, too long or holds a NUL.
    InvalidUnixPath(&'static str),
    /// The interface name is empty, too long, or holds a NUL, a `/` or
    /// white space.
    InvalidInterface(&'static str),
}

impl fmt::Display for SpecifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecifierError::NoAddress => {
                f.write_str("the remote endpoint names no host name, IP address or Unix path")
            }
            SpecifierError::NoPort => f.write_str("the endpoint has neither a port nor a service"),
            SpecifierError::ZeroPort => f.write_str("port 0 is not a valid remote port"),
            SpecifierError::UnknownService(s) => write!(
                f,
                "unknown service name {s:?} (not in the well-known table; give a port)"
            ),
            SpecifierError::PortServiceMismatch {
                port,
                service,
                service_port,
            } => write!(
                f,
                "port {port} contradicts service {service:?}, which is port {service_port}"
            ),
            SpecifierError::HostAndAddress => {
                f.write_str("the endpoint has both a host name and an IP address")
            }
            SpecifierError::UnixWithIp => f.write_str(
                "a Unix socket path cannot be combined with a host name, address, port or service",
            ),
            SpecifierError::HostNameTooLong(n) => {
                write!(f, "host name is {n} bytes long, more than 253")
            }
            SpecifierError::InvalidHostName(why) => write!(f, "invalid host name: {why}"),
            SpecifierError::InvalidUnixPath(why) => write!(f, "invalid Unix socket path: {why}"),
            SpecifierError::InvalidInterface(why) => write!(f, "invalid interface name: {why}"),
        }
    }
}

impl core::error::Error for SpecifierError {}

/// Checks `name` as a DNS host name (letters, digits and hyphens in labels
/// of 1 to 63 bytes, no hyphen at either end of a label, 253 bytes at
/// most, one trailing dot allowed) and returns it lowercased without the
/// trailing dot.
pub fn normalize_host_name(name: &str) -> Result<String, SpecifierError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(SpecifierError::InvalidHostName("empty"));
    }
    if trimmed.len() > 253 {
        return Err(SpecifierError::HostNameTooLong(trimmed.len()));
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(SpecifierError::InvalidHostName("empty label"));
        }
        if label.len() > 63 {
            return Err(SpecifierError::InvalidHostName(
                "label longer than 63 bytes",
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(SpecifierError::InvalidHostName(
                "only letters, digits, '-' and '.' are allowed",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(SpecifierError::InvalidHostName(
                "a label starts or ends with '-'",
            ));
        }
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// Checks a Unix socket path against `limits`.
pub fn check_unix_path(path: &str, limits: &SpecifierLimits) -> Result<(), SpecifierError> {
    if path.is_empty() {
        return Err(SpecifierError::InvalidUnixPath("empty"));
    }
    if path.len() > limits.max_unix_path {
        return Err(SpecifierError::InvalidUnixPath("longer than max_unix_path"));
    }
    if path.contains('\0') {
        return Err(SpecifierError::InvalidUnixPath("holds a NUL byte"));
    }
    Ok(())
}

/// Checks an interface name against `limits`: not empty, not too long, no
/// NUL, `/` or white space.
pub fn check_interface(name: &str, limits: &SpecifierLimits) -> Result<(), SpecifierError> {
    if name.is_empty() {
        return Err(SpecifierError::InvalidInterface("empty"));
    }
    if name.len() > limits.max_interface_name {
        return Err(SpecifierError::InvalidInterface(
            "longer than max_interface_name",
        ));
    }
    if name
        .chars()
        .any(|c| c == '\0' || c == '/' || c.is_whitespace())
    {
        return Err(SpecifierError::InvalidInterface(
            "holds a NUL, '/' or white space",
        ));
    }
    Ok(())
}

/// The identifiers both specifiers share (RFC 9622 section 6.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Fields {
    host_name: Option<String>,
    ip: Option<IpAddr>,
    port: Option<u16>,
    service: Option<String>,
    interface: Option<String>,
    unix_path: Option<String>,
}

/// An address that is either named (resolve it) or already an address.
enum Addr {
    None,
    Host(String),
    Ip(IpAddr),
    Unix(String),
}

impl Fields {
    /// Checks the fields; the address and the port (None: none given).
    fn check(&self, limits: &SpecifierLimits) -> Result<(Addr, Option<u16>), SpecifierError> {
        if let Some(i) = &self.interface {
            check_interface(i, limits)?;
        }
        if let Some(path) = &self.unix_path {
            if self.host_name.is_some()
                || self.ip.is_some()
                || self.port.is_some()
                || self.service.is_some()
            {
                return Err(SpecifierError::UnixWithIp);
            }
            check_unix_path(path, limits)?;
            return Ok((Addr::Unix(path.clone()), None));
        }
        let addr = match (&self.host_name, self.ip) {
            (Some(_), Some(_)) => return Err(SpecifierError::HostAndAddress),
            // A literal address given as a host name needs no lookup.
            (Some(h), None) => match h.parse::<IpAddr>() {
                Ok(ip) => Addr::Ip(ip),
                Err(_) => Addr::Host(normalize_host_name(h)?),
            },
            (None, Some(ip)) => Addr::Ip(ip),
            (None, None) => Addr::None,
        };
        let port = match (&self.service, self.port) {
            (Some(s), port) => {
                let sp =
                    service_port(s).ok_or_else(|| SpecifierError::UnknownService(s.clone()))?;
                if let Some(p) = port {
                    if p != sp {
                        return Err(SpecifierError::PortServiceMismatch {
                            port: p,
                            service: s.clone(),
                            service_port: sp,
                        });
                    }
                }
                Some(sp)
            }
            (None, port) => port,
        };
        Ok((addr, port))
    }
}

macro_rules! specifier_builders {
    ($ty:ident) => {
        impl $ty {
            /// An empty specifier.
            pub fn new() -> Self {
                Self::default()
            }

            /// `WithHostName`: a DNS name to resolve (or a literal address).
            #[must_use]
            pub fn with_host_name(mut self, name: &str) -> Self {
                self.0.host_name = Some(String::from(name));
                self
            }

            /// `WithIPAddress`.
            #[must_use]
            pub fn with_ip_address(mut self, ip: IpAddr) -> Self {
                self.0.ip = Some(ip);
                self
            }

            /// `WithPort`.
            #[must_use]
            pub fn with_port(mut self, port: u16) -> Self {
                self.0.port = Some(port);
                self
            }

            /// `WithService`: a well-known service name ([`SERVICES`]).
            #[must_use]
            pub fn with_service(mut self, service: &str) -> Self {
                self.0.service = Some(String::from(service));
                self
            }

            /// `WithInterface`: the local interface to use.
            #[must_use]
            pub fn with_interface(mut self, interface: &str) -> Self {
                self.0.interface = Some(String::from(interface));
                self
            }

            /// A Unix socket path (alone: no host, address, port or service).
            #[must_use]
            pub fn with_unix_path(mut self, path: &str) -> Self {
                self.0.unix_path = Some(String::from(path));
                self
            }

            /// The host name as given.
            pub fn host_name(&self) -> Option<&str> {
                self.0.host_name.as_deref()
            }

            /// The IP address as given.
            pub fn ip_address(&self) -> Option<IpAddr> {
                self.0.ip
            }

            /// The port as given.
            pub fn port(&self) -> Option<u16> {
                self.0.port
            }

            /// The service as given.
            pub fn service(&self) -> Option<&str> {
                self.0.service.as_deref()
            }

            /// The interface as given.
            pub fn interface(&self) -> Option<&str> {
                self.0.interface.as_deref()
            }

            /// The Unix path as given.
            pub fn unix_path(&self) -> Option<&str> {
                self.0.unix_path.as_deref()
            }

            /// Whether this names a Unix socket.
            pub fn is_unix(&self) -> bool {
                self.0.unix_path.is_some()
            }
        }
    };
}

/// Where to connect (RFC 9622's Remote Endpoint): a host name or an IP
/// address with a port or a service, or a Unix socket path.
///
/// ```
/// use proto_core::taps::endpoint::{RemoteSpecifier, Resolution};
/// let r = RemoteSpecifier::new().with_host_name("Example.COM.").with_service("https");
/// let v = r.validate(&Default::default()).unwrap();
/// assert_eq!(v.resolution, Resolution::Lookup { host: "example.com".into(), port: 443 });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RemoteSpecifier(Fields);

specifier_builders!(RemoteSpecifier);

/// What an adapter must do to get concrete endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resolution {
    /// Look up `host` (A and AAAA) and use `port` on every answer.
    Lookup {
        /// The lowercased host name.
        host: String,
        /// The port.
        port: u16,
    },
    /// Nothing to resolve: this is the endpoint.
    Ready(Endpoint),
}

/// A validated remote specifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValidRemote {
    /// What to resolve.
    pub resolution: Resolution,
    /// The interface to reach it through (an IPv6 link-local scope, say).
    pub interface: Option<String>,
}

impl ValidRemote {
    /// Whether the remote is a Unix socket.
    pub fn is_unix(&self) -> bool {
        matches!(self.resolution, Resolution::Ready(Endpoint::Unix(_)))
    }
}

impl RemoteSpecifier {
    /// Checks the specifier and says what must be resolved.
    pub fn validate(&self, limits: &SpecifierLimits) -> Result<ValidRemote, SpecifierError> {
        let (addr, port) = self.0.check(limits)?;
        let need_port = || match port {
            None => Err(SpecifierError::NoPort),
            Some(0) => Err(SpecifierError::ZeroPort),
            Some(p) => Ok(p),
        };
        let resolution = match addr {
            Addr::None => return Err(SpecifierError::NoAddress),
            Addr::Unix(p) => Resolution::Ready(Endpoint::Unix(p)),
            Addr::Host(host) => Resolution::Lookup {
                host,
                port: need_port()?,
            },
            Addr::Ip(ip) => Resolution::Ready(Endpoint::Ip(SocketAddr::new(ip, need_port()?))),
        };
        Ok(ValidRemote {
            resolution,
            interface: self.0.interface.clone(),
        })
    }
}

/// Where to listen or send from (RFC 9622's Local Endpoint). Everything is
/// optional: no address means every local address, no port an ephemeral
/// one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LocalSpecifier(Fields);

specifier_builders!(LocalSpecifier);

/// What a validated local specifier binds to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LocalBinding {
    /// Every local address (of the interface, if one is named); port 0
    /// asks for an ephemeral port.
    Any {
        /// The port (0: ephemeral).
        port: u16,
    },
    /// Look up `host` and bind its local addresses.
    Lookup {
        /// The lowercased host name.
        host: String,
        /// The port (0: ephemeral).
        port: u16,
    },
    /// This address and port.
    Addr(SocketAddr),
    /// This Unix socket path.
    Unix(String),
}

/// A validated local specifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValidLocal {
    /// What to bind.
    pub binding: LocalBinding,
    /// The interface to bind to.
    pub interface: Option<String>,
}

impl ValidLocal {
    /// Whether the local endpoint is a Unix socket.
    pub fn is_unix(&self) -> bool {
        matches!(self.binding, LocalBinding::Unix(_))
    }
}

impl LocalSpecifier {
    /// Checks the specifier and says what to bind.
    pub fn validate(&self, limits: &SpecifierLimits) -> Result<ValidLocal, SpecifierError> {
        let (addr, port) = self.0.check(limits)?;
        let port = port.unwrap_or(0);
        let binding = match addr {
            Addr::None => LocalBinding::Any { port },
            Addr::Unix(p) => LocalBinding::Unix(p),
            Addr::Host(host) => LocalBinding::Lookup { host, port },
            Addr::Ip(ip) => LocalBinding::Addr(SocketAddr::new(ip, port)),
        };
        Ok(ValidLocal {
            binding,
            interface: self.0.interface.clone(),
        })
    }
}
