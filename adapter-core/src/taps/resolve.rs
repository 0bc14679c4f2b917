//! Name resolution for racing: a [`Resolver`] answers one address family
//! at a time, so the racing core sees AAAA and A answers arrive apart
//! (Happy Eyeballs' resolution delay acts on that).

use super::thread_future::on_thread;
use super::BoxFuture;
use proto_core::taps::endpoint::Family;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves a host name to the addresses of one family.
///
/// The default, [`SystemResolver`], asks the system (`getaddrinfo`, so
/// `/etc/hosts` and the configured DNS) on a short-lived thread. A
/// resolver that talks DNS itself (or a test's scripted one) implements
/// this to answer each family when its answer really arrives.
///
/// ```
/// use adapter_core::taps::{BoxFuture, Resolver};
/// use proto_core::taps::endpoint::Family;
/// use std::net::SocketAddr;
///
/// /// Always answers with one IPv4 address.
/// struct Fixed;
/// impl Resolver for Fixed {
///     fn resolve(&self, _: &str, port: u16, family: Family) -> BoxFuture<std::io::Result<Vec<SocketAddr>>> {
///         let addrs = match family {
///             Family::V4 => vec![SocketAddr::from(([192, 0, 2, 1], port))],
///             Family::V6 => vec![],
///         };
///         Box::pin(async move { Ok(addrs) })
///     }
/// }
/// ```
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `family` for `host`, with `port`; empty when the
    /// name has none of that family.
    fn resolve(
        &self,
        host: &str,
        port: u16,
        family: Family,
    ) -> BoxFuture<io::Result<Vec<SocketAddr>>>;
}

/// The system resolver (`getaddrinfo`), one lookup per family query on its
/// own thread, each filtered to its family.
///
/// `localhost` and names under `.localhost` are answered without asking
/// the system, with the loopback address of the family asked (`::1`,
/// `127.0.0.1`), as RFC 6761 section 6.3 lets a resolver do (browsers do
/// the same): racing to "localhost" then means both families on every
/// host, whatever its hosts file lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

/// Whether RFC 6761 reserves `host` for loopback.
fn is_localhost(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

impl Resolver for SystemResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
        family: Family,
    ) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        if is_localhost(host) {
            let ip: std::net::IpAddr = match family {
                Family::V6 => std::net::Ipv6Addr::LOCALHOST.into(),
                Family::V4 => std::net::Ipv4Addr::LOCALHOST.into(),
            };
            return Box::pin(std::future::ready(Ok(vec![SocketAddr::new(ip, port)])));
        }
        let host = host.to_owned();
        Box::pin(on_thread("weft-resolve", move |_| {
            let addrs = (host.as_str(), port).to_socket_addrs()?;
            let mut out: Vec<SocketAddr> = addrs.filter(|a| Family::of(a) == family).collect();
            out.dedup();
            Ok(out)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_answers_per_family() {
        let v4 = crate::block_on(SystemResolver.resolve("localhost", 7, Family::V4)).unwrap();
        assert!(v4.iter().all(|a| a.is_ipv4() && a.port() == 7), "{v4:?}");
        assert!(
            v4.contains(&SocketAddr::from(([127, 0, 0, 1], 7))),
            "{v4:?}"
        );
        let v6 = crate::block_on(SystemResolver.resolve("localhost", 7, Family::V6)).unwrap();
        assert!(v6.iter().all(|a| a.is_ipv6()), "{v6:?}");
    }

    #[test]
    fn unknown_name_is_an_error() {
        let r = crate::block_on(SystemResolver.resolve("no-such-host.invalid", 7, Family::V4));
        assert!(r.is_err());
    }
}
