//! Secure connections: the Noise XX handshake over a transport, then the
//! mux over encrypted records (`proto_core::secure`).
//!
//! [`spawn_secure_connection`] runs the handshake on the caller's task
//! (bounded by the handshake timeout), then starts the usual [`Driver`]
//! with the record layer stacked under the mux: bytes read are opened
//! and fed to the mux, the mux's output is sealed, several frames per
//! record. The handles then show what the handshake established
//! ([`Connection::security`], [`Flow::security`]).
//!
//! [`Driver`]: crate::Driver

use crate::runtime::{Runtime, Timer, Transport};
use crate::{Config, Connection, Flow, Side};
pub use proto_core::secure::{
    AllowAny, AllowKey, AllowNames, Blesser, Blessing, BlessingError, Config as SecureConfig,
    Endpoint, HandshakeError as SecureHandshakeError, Identity, PeerAuthorizer, PeerBlessings,
    PeerInfo, PublicKey, RejectReason, Rejection, TrustedRoots,
};
use proto_core::secure::{Established, Handshake, HandshakeError, HandshakeEvent, Params};
use proto_core::time::Instant as MuxInstant;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bytes read per call during the handshake (its messages are small).
const READ_BUF: usize = 16 * 1024;

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
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("identity", &self.identity)
            .field("roots", &self.roots)
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

/// What the handshake established, as a connection's handles show it.
#[derive(Debug, Clone)]
pub struct Security {
    local_key: PublicKey,
    peer: PeerInfo,
}

impl Security {
    /// Our static key.
    pub fn local_key(&self) -> PublicKey {
        self.local_key
    }

    /// The names of the blessings we presented to the peer.
    pub fn local_blessings(&self) -> &[String] {
        &self.peer.presented
    }

    /// The peer's static key, proven in the handshake.
    pub fn remote_key(&self) -> PublicKey {
        self.peer.key
    }

    /// The names of the peer's blessings that verified.
    pub fn remote_blessings(&self) -> &[String] {
        &self.peer.blessings.names
    }

    /// The names our authorizer granted the peer.
    pub fn granted(&self) -> &[String] {
        &self.peer.granted
    }

    /// Everything the handshake learnt about the peer.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
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
/// an RNG seed from the OS, and the clock origin of its `Instant`s.
fn start(
    side: Side,
    creds: &Credentials,
    addresses: &Addresses,
) -> io::Result<(Handshake, Instant)> {
    let mut rng_seed = [0u8; 32];
    getrandom::fill(&mut rng_seed).map_err(|e| io::Error::other(e.to_string()))?;
    let wall_clock_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let params = Params {
        identity: creds.identity.clone(),
        roots: creds.roots.clone(),
        authorizer: creds.authorizer.clone(),
        wall_clock_secs,
        rng_seed,
        local_address: addresses.local.clone(),
        remote_address: addresses.remote.clone(),
    };
    let origin = Instant::now();
    let hs = match side {
        Side::Dialer => Handshake::initiator(creds.config.clone(), params, MuxInstant::ZERO),
        Side::Acceptor => Handshake::responder(creds.config.clone(), params, MuxInstant::ZERO),
    }
    .map_err(handshake_error)?;
    Ok((hs, origin))
}

/// The handshake's outcome once it has one.
fn outcome(
    hs: &mut Option<Handshake>,
    creds: &Credentials,
) -> Option<io::Result<(Established, Security)>> {
    while let Some(ev) = hs.as_mut()?.poll_event() {
        match ev {
            HandshakeEvent::Complete => {
                let r = hs
                    .take()?
                    .finish()
                    .map_err(handshake_error)
                    .map(|established| {
                        let security = Security {
                            local_key: creds.identity.public_key(),
                            peer: established.peer.clone(),
                        };
                        (established, security)
                    });
                return Some(r);
            }
            HandshakeEvent::Failed(e) => return Some(Err(handshake_error(e))),
            _ => {}
        }
    }
    None
}

fn deadline(hs: &Handshake, origin: Instant) -> Option<Instant> {
    hs.poll_timeout()
        .map(|d| origin + Duration::from_nanos(d.as_nanos()))
}

/// Runs the handshake for `side` over `io`, with `timer` for its timeout;
/// the authorizer sees `addresses`.
pub async fn handshake<T: Transport, M: Timer>(
    io: &mut T,
    timer: &mut M,
    side: Side,
    creds: &Credentials,
    addresses: &Addresses,
) -> io::Result<(Established, Security)> {
    let (hs, origin) = start(side, creds, addresses)?;
    if let Some(d) = deadline(&hs, origin) {
        timer.reset(d);
    }
    let mut hs = Some(hs);
    let mut out = Vec::new();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let h = hs.as_mut().ok_or(io::ErrorKind::InvalidData)?;
        while h.poll_transmit(&mut out).is_some() {}
        // Writes race the deadline too: a peer that does not read must not
        // hold the handshake past its timeout.
        let mut written = 0;
        while written < out.len() {
            let n = before_deadline(
                timer,
                poll_fn(|cx| io.poll_write_vectored(cx, &[IoSlice::new(&out[written..])])),
            )
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        if !out.is_empty() {
            before_deadline(timer, poll_fn(|cx| io.poll_flush(cx))).await?;
            out.clear();
        }
        if let Some(r) = outcome(&mut hs, creds) {
            return r;
        }
        // Read, or time out.
        let got = poll_fn(|cx| {
            if let Poll::Ready(r) = io.poll_read(cx, &mut buf) {
                return Poll::Ready(Some(r));
            }
            if timer.poll_expired(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        let h = hs.as_mut().ok_or(io::ErrorKind::InvalidData)?;
        feed(h, got, &buf, origin)?;
    }
}

/// `op`'s result, or the handshake's `Timeout` if `timer` fires first.
async fn before_deadline<M: Timer, R>(
    timer: &mut M,
    op: impl Future<Output = io::Result<R>>,
) -> io::Result<R> {
    let mut op = std::pin::pin!(op);
    poll_fn(|cx| {
        if let Poll::Ready(r) = op.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if timer.poll_expired(cx).is_ready() {
            return Poll::Ready(Err(handshake_error(HandshakeError::Timeout)));
        }
        Poll::Pending
    })
    .await
}

/// Feeds a read of `buf` (`None`: the timer fired) to the handshake; its
/// failures come back as [`HandshakeEvent::Failed`].
fn feed(
    h: &mut Handshake,
    got: Option<io::Result<usize>>,
    buf: &[u8],
    origin: Instant,
) -> io::Result<()> {
    let now = crate::shared::to_mux(origin, Instant::now());
    match got {
        None => h.handle_timeout(now),
        Some(Ok(0)) => h.handle_transport_closed(),
        Some(Ok(n)) => {
            let _ = h.handle_input(now, &buf[..n]);
        }
        Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
        Some(Err(e)) => return Err(e),
    }
    Ok(())
}

/// [`handshake`] over a blocking stream: `set_read_timeout` bounds each
/// read by the handshake's deadline (a read that times out with
/// `WouldBlock` or `TimedOut` fires the handshake's timer). A stream
/// without read timeouts (or a write that blocks) needs a deadline from
/// outside as well: `adapter-std` arms a watchdog that shuts the stream
/// down at the handshake's timeout.
pub fn handshake_blocking<S: Read + Write>(
    stream: &mut S,
    mut set_read_timeout: impl FnMut(&S, Option<Duration>) -> io::Result<()>,
    side: Side,
    creds: &Credentials,
    addresses: &Addresses,
) -> io::Result<(Established, Security)> {
    let (hs, origin) = start(side, creds, addresses)?;
    let mut hs = Some(hs);
    let mut out = Vec::new();
    let mut buf = vec![0u8; READ_BUF];
    let r = loop {
        let h = hs.as_mut().ok_or(io::ErrorKind::InvalidData)?;
        while h.poll_transmit(&mut out).is_some() {}
        if !out.is_empty() {
            stream.write_all(&out)?;
            stream.flush()?;
            out.clear();
        }
        if let Some(r) = outcome(&mut hs, creds) {
            break r;
        }
        let h = hs.as_mut().ok_or(io::ErrorKind::InvalidData)?;
        let wait = deadline(h, origin).map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        set_read_timeout(stream, wait)?;
        let got = match stream.read(&mut buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            r => Some(r),
        };
        feed(h, got, &buf, origin)?;
    };
    set_read_timeout(stream, None)?;
    r
}

/// Runs the handshake over `io`, then starts the mux over records on
/// `runtime`: the secure counterpart of [`spawn_connection`](crate::spawn_connection).
/// The authorizer sees `addresses`. A refused peer is `PermissionDenied`
/// (see [`handshake_error`]).
pub async fn spawn_secure_connection<R: Runtime, T: Transport>(
    runtime: &R,
    mut io: T,
    config: Config,
    side: Side,
    creds: &Credentials,
    addresses: &Addresses,
) -> io::Result<Connection> {
    config.validate().map_err(crate::config_error)?;
    let mut timer = runtime.timer();
    let (established, security) = handshake(&mut io, &mut timer, side, creds, addresses).await?;
    let (conn, pump) = crate::Pump::new_secure(config, side, established, Arc::new(security))
        .map_err(crate::config_error)?;
    let driver = crate::Driver::with_pump(pump, io, timer);
    runtime.spawn(async move {
        let _ = driver.await;
    });
    Ok(conn)
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
    /// A path unique to this process and `tag`.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("weft-{tag}-{}", std::process::id()));
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
