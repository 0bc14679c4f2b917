//! Secure connections: the Noise XX handshake over a transport, then the
//! mux over encrypted records (`proto_core::secure`).
//!
//! [`spawn_secure_connection`] starts the usual [`Driver`] on
//! `proto_core::secure::Secured<mux>`: the handshake is the machine's
//! first state (its timeout the first deadline), then records carry the
//! mux, several frames per record. The handles then show what the
//! handshake established ([`Connection::security`], [`Flow::security`]).
//!
//! [`Driver`]: crate::Driver

use crate::mux_layer::{Handshake as HandshakeState, MuxLayer};
use crate::runtime::{Runtime, Transport};
pub use crate::security::Security;
use crate::shared::Shared;
use crate::stack::{recorded_mux, MuxStack};
use crate::{Config, Connection, Flow, Side};
pub use proto_core::secure::{
    default_backend, AllowAny, AllowKey, AllowNames, Blesser, Blessing, BlessingError,
    Config as SecureConfig, CryptoBackend, Endpoint, HandshakeError as SecureHandshakeError,
    Identity, PeerAuthorizer, PeerBlessings, PeerInfo, PublicKey, RejectReason, Rejection, Suite,
    SuiteList, TrustedRoots,
};
use proto_core::secure::{Handshake, HandshakeError, Params, Secured, Seed};
use proto_core::time::Instant as MuxInstant;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Who we are, whom we trust, and who may connect.
#[derive(Clone)]
pub struct Credentials {
    /// Our static key and blessings.
    pub identity: Identity,
    /// Roots whose blessings we accept.
    pub roots: TrustedRoots,
    /// Decides who may connect and which blessings we show.
    pub authorizer: Arc<dyn PeerAuthorizer>,
    /// Handshake and record settings.
    pub config: SecureConfig,
    /// Where the primitives come from. Default: the native backend (ring
    /// and aws-lc) with the `native-crypto` feature (on by default), the
    /// portable one (RustCrypto) otherwise.
    pub backend: &'static dyn CryptoBackend,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("identity", &self.identity)
            .field("roots", &self.roots)
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials with the default handshake config.
    pub fn new(
        identity: Identity,
        roots: TrustedRoots,
        authorizer: Arc<dyn PeerAuthorizer>,
    ) -> Self {
        Credentials {
            identity,
            roots,
            authorizer,
            config: SecureConfig::default(),
            backend: default_backend(),
        }
    }
}

/// The transport addresses of a connection's two ends, handed to the
/// [`PeerAuthorizer`] as [`Endpoint::address`].
///
/// The adapters fill them from the socket for TCP (`ip:port`, as
/// [`SocketAddr`]'s `Display` writes it) and Unix sockets (see
/// [`Addresses::unix`]); for any other transport the caller passes them
/// explicitly (the adapters' `connect_with` / `accept_with`), so an
/// authorizer never sees an address nobody chose.
///
/// ```
/// use adapter_core::secure::Addresses;
/// let a = Addresses::tcp("127.0.0.1:1".parse().unwrap(), "10.0.0.2:4000".parse().unwrap());
/// assert_eq!(a.remote, "10.0.0.2:4000");
/// let mem = Addresses::new("mem:server", "mem:client");
/// assert_eq!(mem.local, "mem:server");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// Our end's address.
    pub local: String,
    /// The peer's address.
    pub remote: String,
}

impl Addresses {
    /// Addresses chosen by the caller (any transport).
    pub fn new(local: impl Into<String>, remote: impl Into<String>) -> Self {
        Addresses {
            local: local.into(),
            remote: remote.into(),
        }
    }

    /// A TCP connection's two ends.
    pub fn tcp(local: SocketAddr, remote: SocketAddr) -> Self {
        Addresses::new(local.to_string(), remote.to_string())
    }

    /// A Unix socket's two ends, from their paths (`as_pathname()`):
    /// `unix:` followed by the path, or by nothing for an end without a
    /// path (unnamed, as a connecting client's usually is, or in Linux's
    /// abstract namespace).
    pub fn unix(local: Option<&Path>, remote: Option<&Path>) -> Self {
        let show = |p: Option<&Path>| match p {
            Some(p) => format!("unix:{}", p.display()),
            None => "unix:".to_owned(),
        };
        Addresses::new(show(local), show(remote))
    }
}

impl Connection {
    /// What the handshake established; `None` on a plaintext connection.
    pub fn security(&self) -> Option<Arc<Security>> {
        self.shared.with(|st| st.security.clone())
    }
}

impl Flow {
    /// What its connection's handshake established; `None` on plaintext.
    pub fn security(&self) -> Option<Arc<Security>> {
        self.shared().with(|st| st.security.clone())
    }
}

/// A handshake failure as an `io::Error` (inner: [`SecureHandshakeError`]):
/// `PermissionDenied` for a refused peer, `TimedOut`, `UnexpectedEof`, or
/// `InvalidData`.
pub fn handshake_error(e: HandshakeError) -> io::Error {
    let kind = match e {
        HandshakeError::Rejected(_) => io::ErrorKind::PermissionDenied,
        HandshakeError::Timeout => io::ErrorKind::TimedOut,
        HandshakeError::TransportEnded => io::ErrorKind::UnexpectedEof,
        HandshakeError::Config(_) => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

/// A handshake for `side`, with the wall clock (certificate expiry) and
/// an RNG seed from the OS, starting at the machine instant `now`.
fn start(
    side: Side,
    creds: &Credentials,
    addresses: &Addresses,
    now: MuxInstant,
) -> io::Result<Handshake> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(e.to_string()))?;
    let seed = Seed::new(seed);
    // A clock before the epoch reads 0, "unknown": certificates with
    // validity times then fail (closed), not pass.
    let wall_clock_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let params = Params {
        identity: creds.identity.clone(),
        roots: creds.roots.clone(),
        authorizer: creds.authorizer.clone(),
        wall_clock_secs,
        backend: creds.backend,
        local_address: addresses.local.clone(),
        remote_address: addresses.remote.clone(),
    };
    match side {
        Side::Dialer => Handshake::initiator(creds.config.clone(), params, seed, now),
        Side::Acceptor => Handshake::responder(creds.config.clone(), params, seed, now),
    }
    .map_err(handshake_error)
}

/// Starts a secure connection over `io` on `runtime` and waits for its
/// handshake: one driver runs `Secured<mux>` from the first handshake byte
/// (the handshake is the first state of the machine, its timeout the
/// machine's first deadline). The authorizer sees `addresses`. A refused
/// peer is `PermissionDenied`, a handshake that does not finish in
/// [`SecureConfig::handshake_timeout`] is `TimedOut` (see [`handshake_error`]).
pub async fn spawn_secure_connection<R: Runtime, T: Transport>(
    runtime: &R,
    io: T,
    config: Config,
    side: Side,
    creds: &Credentials,
    addresses: &Addresses,
) -> io::Result<Connection> {
    config.validate().map_err(crate::config_error)?;
    let mut config = config;
    crate::budget::prepare(&mut config);
    let budget = config.budget.clone();
    let origin = Instant::now();
    let t0 = crate::shared::to_core(origin, origin);
    let hs = start(side, creds, addresses, t0)?;
    let conn = proto_core::mux::Connection::new(config, side, t0).map_err(crate::config_error)?;
    let stack = MuxStack::Secure(Secured::new(hs, recorded_mux(conn, t0)));
    let layer = MuxLayer::new(stack, Some(creds.identity.public_key()));
    let shared = Arc::new(Shared::new(layer, origin));
    if let Some(b) = &budget {
        crate::budget::register(b, &shared);
    }
    let handle = Connection::from_shared(shared.clone(), side);
    Connection::spawn(runtime, shared.clone(), io);
    // A caller that stops waiting (a race's loser, a timeout) abandons the
    // handshake: close the socket now rather than at the handshake timeout.
    let abandon = Abandon(Some(&shared));
    poll_fn(|cx| {
        shared.with(|st| match &st.handshake {
            HandshakeState::Done => Poll::Ready(Ok(())),
            HandshakeState::Failed(e) => Poll::Ready(Err(handshake_error(e.clone()))),
            HandshakeState::Running => {
                st.register_handshake(cx);
                Poll::Pending
            }
        })
    })
    .await?;
    abandon.disarm();
    Ok(handle)
}

/// Closes a connection whose handshake nobody waits for any more.
struct Abandon<'a>(Option<&'a Arc<Shared<MuxLayer>>>);

impl Abandon<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            let now = shared.now();
            shared.with(|st| {
                if matches!(st.handshake, HandshakeState::Running) {
                    proto_core::wire::Machine::close(&mut st.stack, now, 0, b"handshake abandoned");
                }
            });
        }
    }
}

/// Fixed test credentials (feature `conformance`): a root `weft-test`,
/// the client blessed `weft-test:client` and admitting only
/// `weft-test:server`, the server the reverse. Fixed keys: for tests only.
#[cfg(feature = "conformance")]
pub fn test_credentials(side: Side) -> Credentials {
    let root = Blesser::root("weft-test", [0x7e; 32]).expect("valid root name");
    let mut roots = TrustedRoots::new();
    let (name, key) = root.trusted_root();
    roots.add(&name, key);
    let (secret, me, peer) = match side {
        Side::Dialer => ([0xc1; 32], "client", "weft-test:server"),
        Side::Acceptor => ([0x5e; 32], "server", "weft-test:client"),
    };
    let mut identity = Identity::from_secret(secret);
    identity
        .add_blessing(
            root.bless(me, identity.public_key(), None)
                .expect("valid name"),
        )
        .expect("bound to this key");
    Credentials::new(identity, roots, Arc::new(AllowNames::new([peer])))
}

/// [`test_credentials`] accepting only `suite` (feature `conformance`).
#[cfg(feature = "conformance")]
pub fn suite_credentials(side: Side, suite: Suite) -> Credentials {
    let mut c = test_credentials(side);
    c.config.suites = SuiteList::Only(vec![suite]);
    c
}

/// Panics unless `client` and `server`, made with [`test_credentials`],
/// are encrypted and granted each other's test names (feature `conformance`).
#[cfg(feature = "conformance")]
pub fn assert_test_pair(client: &Connection, server: &Connection) {
    let (c, s) = (client.security(), server.security());
    let (c, s) = (c.expect("client is secure"), s.expect("server is secure"));
    assert_eq!(c.granted(), ["weft-test:server"]);
    assert_eq!(s.granted(), ["weft-test:client"]);
    assert_eq!(c.remote_key(), s.local_key());
    assert_eq!(s.remote_key(), c.local_key());
}

/// A test authorizer (feature `conformance`): records the endpoints it
/// is shown and, if made with [`admitting`](Self::admitting), refuses
/// every peer at another remote address. It grants the peer's valid names.
#[cfg(feature = "conformance")]
#[derive(Debug, Default)]
pub struct RecordingAuthorizer {
    admit_remote: Option<String>,
    seen: std::sync::Mutex<Vec<(Endpoint, Endpoint)>>,
}

#[cfg(feature = "conformance")]
impl RecordingAuthorizer {
    /// Admits any peer, recording what it saw.
    pub fn any() -> Arc<Self> {
        Arc::default()
    }

    /// Admits only a peer whose transport address is `remote`.
    pub fn admitting(remote: impl Into<String>) -> Arc<Self> {
        Arc::new(RecordingAuthorizer {
            admit_remote: Some(remote.into()),
            seen: Default::default(),
        })
    }

    /// Every `(local, remote)` pair shown so far, in order.
    pub fn seen(&self) -> Vec<(Endpoint, Endpoint)> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The one `(local address, remote address)` pair shown (panics unless
    /// exactly one call happened).
    pub fn only_addresses(&self) -> Addresses {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "one authorization, saw {seen:?}");
        Addresses::new(seen[0].0.address.clone(), seen[0].1.address.clone())
    }
}

#[cfg(feature = "conformance")]
impl PeerAuthorizer for RecordingAuthorizer {
    fn authorize_peer(
        &self,
        local: &Endpoint,
        remote: &Endpoint,
        remote_blessings: &PeerBlessings,
    ) -> Result<Vec<String>, Rejection> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((local.clone(), remote.clone()));
        match &self.admit_remote {
            Some(a) if *a != remote.address => Err(Rejection {
                reasons: vec![RejectReason::AddressNotAllowed(remote.address.clone())],
            }),
            _ => Ok(remote_blessings.names.clone()),
        }
    }
}

/// [`test_credentials`] for `side` with `authorizer` in place of the
/// name check (feature `conformance`).
#[cfg(feature = "conformance")]
pub fn test_credentials_with(side: Side, authorizer: Arc<dyn PeerAuthorizer>) -> Credentials {
    let mut c = test_credentials(side);
    c.authorizer = authorizer;
    c
}

/// Panics unless the client's and the server's [`RecordingAuthorizer`]s
/// each saw one handshake with these addresses, each from its own side
/// (feature `conformance`).
#[cfg(feature = "conformance")]
pub fn assert_addresses_seen(
    client_auth: &RecordingAuthorizer,
    server_auth: &RecordingAuthorizer,
    client: &str,
    server: &str,
) {
    assert_eq!(client_auth.only_addresses(), Addresses::new(client, server));
    assert_eq!(server_auth.only_addresses(), Addresses::new(server, client));
}

/// Panics unless `e` is a handshake refused only because the peer was at
/// `remote` (a [`RecordingAuthorizer::admitting`] another address;
/// feature `conformance`).
#[cfg(feature = "conformance")]
pub fn assert_address_refused(e: &io::Error, remote: &str) {
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    match e.get_ref().and_then(|e| e.downcast_ref()) {
        Some(HandshakeError::Rejected(r)) => assert_eq!(
            r.reasons,
            [RejectReason::AddressNotAllowed(remote.to_owned())]
        ),
        other => panic!("not a refusal: {other:?}"),
    }
}

/// A fresh path for a Unix socket in its own temporary directory, removed
/// on drop (feature `conformance`).
#[cfg(feature = "conformance")]
#[derive(Debug)]
pub struct TempSocketPath {
    dir: std::path::PathBuf,
    /// Where to bind.
    pub path: std::path::PathBuf,
}

#[cfg(feature = "conformance")]
impl TempSocketPath {
    /// A path unique to this process, `tag` and this call (tests running
    /// in parallel each get their own).
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("weft-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        TempSocketPath { dir, path }
    }

    /// The address the adapters give the bound end (`unix:<path>`).
    pub fn address(&self) -> String {
        format!("unix:{}", self.path.display())
    }
}

#[cfg(feature = "conformance")]
impl Drop for TempSocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
