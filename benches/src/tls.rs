//! weft's secure layer next to TLS 1.3 (rustls 0.23 with its default
//! aws-lc-rs provider, through tokio-rustls) over loopback TCP: the
//! fixtures of `benches/tls_compare.rs` and of its smoke test.
//!
//! Each stack is set up by one small function, so that a change to weft's
//! secure API touches only [`weft_credentials`] and [`weft_pair`]:
//!
//! * [`rustls_configs`] / [`rustls_pair`]: self-signed ECDSA P-256
//!   certificates from `rcgen`, verified for real against a root store that
//!   holds them; TLS 1.3 only, no session tickets, no resumption.
//! * [`weft_credentials`] / [`weft_pair`]: a root, a blessed client and a
//!   blessed server, each authorizing only the other's name (the fixture of
//!   `benches/secure.rs`), default secure settings.
//!
//! # Workloads
//!
//! * bulk ([`setup_bulk`], [`bulk`]): one long-lived connection (one flow
//!   for weft). Per call the client writes an 8-byte big-endian length `n`,
//!   then `n` bytes in [`BULK_WRITE`]-sized writes; the server reads them
//!   into one 64 KiB buffer and answers with 8 bytes: `n`, or with `check`
//!   an FNV-1a hash of what it read (the smoke test's "arrived intact").
//! * handshake ([`setup_handshake`], [`handshake`]): per call a new TCP
//!   connection to a listening server, the full handshake on both sides,
//!   and one byte from the server the client must read, so both sides have
//!   finished (a TLS 1.3 server finishes on the client's Finished; weft's
//!   responder on the third message).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use adapter_tokio::secure::{
    AllowNames, Blesser, Identity, PeerAuthorizer, Suite, SuiteList, TrustedRoots,
};
use adapter_tokio::{Config, Connection, Credentials};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::{loopback_listener, read_batch, tcp_pair, TaskGuard, BULK_WRITE};

/// Bytes moved per `tls_bulk` iteration (16 MiB).
pub const TLS_BULK_TOTAL: usize = 16 * 1024 * 1024;

/// The name the rustls server certificate is issued for and the client asks for.
pub const TLS_SERVER_NAME: &str = "localhost";

/// Client side of a rustls connection over TCP.
pub type ClientTls = tokio_rustls::client::TlsStream<TcpStream>;
/// Server side of a rustls connection over TCP.
pub type ServerTls = tokio_rustls::server::TlsStream<TcpStream>;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

// ---------------------------------------------------------------------------
// Set-up: one function per stack
// ---------------------------------------------------------------------------

/// A fresh self-signed ECDSA P-256 certificate for `name` and its key.
fn self_signed(name: &str) -> io::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(other)?;
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .map_err(other)?
        .self_signed(&key)
        .map_err(other)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key))
}

/// TLS 1.3 client and server configs with fresh certificates: the client
/// trusts exactly the server's certificate; with `mutual` the client also
/// presents one, which the server verifies the same way. `suite` forces
/// one cipher suite on both sides (`None`: the provider's default order).
/// Session tickets and resumption are off, so every handshake is full.
pub fn rustls_configs(
    suite: Option<SupportedCipherSuite>,
    mutual: bool,
) -> io::Result<(Arc<ClientConfig>, Arc<ServerConfig>)> {
    let mut provider = aws_lc_rs::default_provider();
    if let Some(suite) = suite {
        provider.cipher_suites = vec![suite];
    }
    let provider = Arc::new(provider);
    let tls13 = &[&rustls::version::TLS13];
    let roots = |cert: &CertificateDer<'static>| -> io::Result<RootCertStore> {
        let mut r = RootCertStore::empty();
        r.add(cert.clone()).map_err(other)?;
        Ok(r)
    };

    let (server_cert, server_key) = self_signed(TLS_SERVER_NAME)?;
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(tls13)
        .map_err(other)?
        .with_root_certificates(roots(&server_cert)?);
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(tls13)
        .map_err(other)?;
    let (mut client, server) = if mutual {
        let (client_cert, client_key) = self_signed("client.localhost")?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&client_cert)?), provider)
                .build()
                .map_err(other)?;
        (
            client
                .with_client_auth_cert(vec![client_cert], client_key)
                .map_err(other)?,
            server.with_client_cert_verifier(verifier),
        )
    } else {
        (client.with_no_client_auth(), server.with_no_client_auth())
    };
    let mut server = server
        .with_single_cert(vec![server_cert], server_key)
        .map_err(other)?;
    client.resumption = rustls::client::Resumption::disabled();
    server.send_tls13_tickets = 0;
    Ok((Arc::new(client), Arc::new(server)))
}

/// A connected rustls pair over loopback TCP (`TCP_NODELAY`), both
/// handshakes complete.
pub async fn rustls_pair(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> io::Result<(ClientTls, ServerTls)> {
    let (a, b) = tcp_pair().await?;
    let name = ServerName::try_from(TLS_SERVER_NAME).map_err(other)?;
    let (c, s) = tokio::join!(
        TlsConnector::from(client.clone()).connect(name, a),
        TlsAcceptor::from(server.clone()).accept(b)
    );
    Ok((c?, s?))
}

/// weft credentials `(client, server)`: a root `acme` blessing `client` and
/// `server`, each authorizing only the other's name, default secure config.
pub fn weft_credentials() -> (Credentials, Credentials) {
    weft_credentials_with(SuiteList::Auto)
}

/// As [`weft_credentials`], both sides accepting only `suites`.
pub fn weft_credentials_with(suites: SuiteList) -> (Credentials, Credentials) {
    let root = Blesser::root("acme", [1; 32]).expect("valid root name");
    let mut roots = TrustedRoots::new();
    let (name, key) = root.trusted_root();
    roots.add(&name, key);
    let mk = |secret: u8, me: &str, peer: &str| {
        let mut id = Identity::from_secret([secret; 32]);
        id.add_blessing(root.bless(me, id.public_key(), None).expect("valid name"))
            .expect("bound to this key");
        let auth: Arc<dyn PeerAuthorizer> = Arc::new(AllowNames::new([peer]));
        let mut c = Credentials::new(id, roots.clone(), auth);
        c.config.suites = suites.clone();
        c
    };
    (
        mk(10, "client", "acme:server"),
        mk(11, "server", "acme:client"),
    )
}

/// A connected weft pair `(client, server)` over loopback TCP with the
/// default mux `Config`: secure with `creds` (`(client, server)`, see
/// [`weft_credentials`]), plaintext with `None`.
pub async fn weft_pair(
    creds: Option<&(Credentials, Credentials)>,
) -> io::Result<(Connection, Connection)> {
    let (a, b) = tcp_pair().await?;
    match creds {
        Some((cc, sc)) => {
            let (c, s) = tokio::join!(
                Connection::connect(a, Config::default(), cc),
                Connection::accept(b, Config::default(), sc)
            );
            Ok((c?, s?))
        }
        None => Ok((
            Connection::client(a, Config::default())?,
            Connection::server(b, Config::default())?,
        )),
    }
}

// ---------------------------------------------------------------------------
// Bulk
// ---------------------------------------------------------------------------

/// The contenders of `tls_bulk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkStack {
    /// rustls, TLS13_AES_256_GCM_SHA384 forced.
    RustlsAes256Gcm,
    /// rustls, TLS13_CHACHA20_POLY1305_SHA256 forced.
    RustlsChacha20,
    /// One encrypted weft flow, default settings (AES-256-GCM where the CPU
    /// has AES instructions).
    WeftSecure,
    /// One encrypted weft flow, ChaCha20-Poly1305 forced.
    WeftChacha20,
    /// One plaintext weft flow.
    WeftPlain,
}

impl BulkStack {
    /// Every contender, in bench order.
    pub const ALL: [BulkStack; 5] = [
        BulkStack::RustlsAes256Gcm,
        BulkStack::RustlsChacha20,
        BulkStack::WeftSecure,
        BulkStack::WeftChacha20,
        BulkStack::WeftPlain,
    ];

    /// The benchmark id's last part.
    pub fn name(self) -> &'static str {
        match self {
            BulkStack::RustlsAes256Gcm => "rustls_aes256gcm",
            BulkStack::RustlsChacha20 => "rustls_chacha20",
            BulkStack::WeftSecure => "weft_secure",
            BulkStack::WeftChacha20 => "weft_chacha20",
            BulkStack::WeftPlain => "weft_plain",
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Fixture for `tls_bulk`: the client end of one connection (or flow);
/// the server runs in a task.
pub struct Bulk {
    stream: Box<dyn Stream>,
    payload: Box<[u8]>,
    check: bool,
    // Fields drop in order: the flow before its connection, the server last.
    _conn: Option<Connection>,
    _server: TaskGuard,
}

impl std::fmt::Debug for Bulk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bulk")
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

/// FNV-1a, folded over a byte stream (the smoke test's checksum).
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Server half of bulk: per length header, read that many bytes and reply
/// with the count (or, with `check`, their hash). Returns at EOF.
async fn serve_sink<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, check: bool) -> io::Result<()> {
    let mut buf = vec![0u8; BULK_WRITE];
    loop {
        let mut h = FNV_START;
        let Some(total) = read_batch(&mut s, &mut buf, |piece| {
            if check {
                h = fnv1a(h, piece);
            }
        })
        .await?
        else {
            break;
        };
        s.write_all(&(if check { h } else { total }).to_be_bytes())
            .await?;
        s.flush().await?;
    }
    s.shutdown().await
}

/// Connects `stack` (not timed); with `check` the server hashes what it
/// reads and [`bulk`] compares that with what was sent.
pub async fn setup_bulk(stack: BulkStack, check: bool) -> io::Result<Bulk> {
    let mut server = TaskGuard::default();
    let (stream, conn): (Box<dyn Stream>, _) = match stack {
        BulkStack::RustlsAes256Gcm | BulkStack::RustlsChacha20 => {
            let suite = if stack == BulkStack::RustlsAes256Gcm {
                aws_lc_rs::cipher_suite::TLS13_AES_256_GCM_SHA384
            } else {
                aws_lc_rs::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256
            };
            let (cc, sc) = rustls_configs(Some(suite), false)?;
            let (c, s) = rustls_pair(&cc, &sc).await?;
            if c.get_ref().1.negotiated_cipher_suite() != Some(suite) {
                return Err(other("rustls did not negotiate the forced suite"));
            }
            server.push(tokio::spawn(async move {
                let _ = serve_sink(s, check).await;
            }));
            (Box::new(c), None)
        }
        BulkStack::WeftSecure | BulkStack::WeftChacha20 | BulkStack::WeftPlain => {
            let secure = stack != BulkStack::WeftPlain;
            let suites = match stack {
                BulkStack::WeftChacha20 => SuiteList::Only(vec![Suite::ChaChaPolyBlake2s]),
                _ => SuiteList::Auto,
            };
            let creds = secure.then(|| weft_credentials_with(suites));
            let (c, s) = weft_pair(creds.as_ref()).await?;
            if c.security().is_some() != secure || s.security().is_some() != secure {
                return Err(other("weft connection security differs from the request"));
            }
            server.push(tokio::spawn(async move {
                // `s` lives in this task: the flow needs its connection.
                if let Ok(flow) = s.accept_flow().await {
                    let _ = serve_sink(flow, check).await;
                }
            }));
            (Box::new(c.open_flow().await?), Some(c))
        }
    };
    // Period 251 does not divide the write size: misplaced bytes change the hash.
    let payload = (0..BULK_WRITE).map(|i| (i % 251) as u8).collect();
    Ok(Bulk {
        stream,
        payload,
        check,
        _conn: conn,
        _server: server,
    })
}

/// Sends `total` bytes and waits for the server's reply, which says it has
/// read them all; an error if the reply is not the count (or the hash).
pub async fn bulk(f: &mut Bulk, total: usize) -> io::Result<()> {
    let s = &mut f.stream;
    s.write_all(&(total as u64).to_be_bytes()).await?;
    let (mut left, mut h) = (total, FNV_START);
    while left > 0 {
        let chunk = &f.payload[..left.min(BULK_WRITE)];
        s.write_all(chunk).await?;
        if f.check {
            h = fnv1a(h, chunk);
        }
        left -= chunk.len();
    }
    s.flush().await?;
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply).await?;
    let want = if f.check { h } else { total as u64 };
    if u64::from_be_bytes(reply) != want {
        return Err(other("bulk: the server's count or hash differs"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------

/// The contenders of `tls_handshake`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeStack {
    /// rustls, server certificate only (the usual TLS deployment).
    Rustls,
    /// rustls with a client certificate too: both sides authenticated,
    /// as weft's handshake always is.
    RustlsMutual,
    /// weft's secure handshake, blessings checked both ways.
    Weft,
}

impl HandshakeStack {
    /// Every contender, in bench order.
    pub const ALL: [HandshakeStack; 3] = [
        HandshakeStack::Rustls,
        HandshakeStack::RustlsMutual,
        HandshakeStack::Weft,
    ];

    /// The benchmark id's last part.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeStack::Rustls => "rustls",
            HandshakeStack::RustlsMutual => "rustls_mutual",
            HandshakeStack::Weft => "weft",
        }
    }
}

enum Dialer {
    Rustls(TlsConnector),
    Weft(Box<Credentials>),
}

/// Fixture for `tls_handshake`: a listening server (its accept loop in a
/// task, one task per connection) and the client's credentials.
pub struct Handshakes {
    addr: SocketAddr,
    dialer: Dialer,
    _server: TaskGuard,
}

impl std::fmt::Debug for Handshakes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshakes")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Waits for the peer to close (or fail): the server's connection task
/// ends with its connection instead of holding the socket open.
async fn until_closed<S: AsyncRead + Unpin>(mut s: S) {
    let mut b = [0u8; 1];
    while matches!(s.read(&mut b).await, Ok(n) if n > 0) {}
}

/// Binds the listener and spawns its accept loop (not timed).
pub async fn setup_handshake(stack: HandshakeStack) -> io::Result<Handshakes> {
    let (listener, addr) = loopback_listener().await?;
    let mut server = TaskGuard::default();
    let dialer = match stack {
        HandshakeStack::Rustls | HandshakeStack::RustlsMutual => {
            let (cc, sc) = rustls_configs(None, stack == HandshakeStack::RustlsMutual)?;
            let acceptor = TlsAcceptor::from(sc);
            server.push(tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        tcp.set_nodelay(true)?;
                        let mut tls = acceptor.accept(tcp).await?;
                        tls.write_all(&[1]).await?;
                        tls.flush().await?;
                        until_closed(tls).await;
                        io::Result::Ok(())
                    });
                }
            }));
            Dialer::Rustls(TlsConnector::from(cc))
        }
        HandshakeStack::Weft => {
            let (cc, sc) = weft_credentials();
            let sc = Arc::new(sc);
            server.push(tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let sc = sc.clone();
                    tokio::spawn(async move {
                        tcp.set_nodelay(true)?;
                        let conn = Connection::accept(tcp, Config::default(), &sc).await?;
                        let mut flow = conn.open_flow().await?;
                        flow.write_all(&[1]).await?;
                        flow.flush().await?;
                        until_closed(flow).await;
                        io::Result::Ok(())
                    });
                }
            }));
            Dialer::Weft(Box::new(cc))
        }
    };
    Ok(Handshakes {
        addr,
        dialer,
        _server: server,
    })
}

/// One TCP connect + full handshake + the server's byte; then closes.
/// An error unless the peer was verified (rustls: the certificate, and
/// TLS 1.3; weft: the server was granted its blessed name).
pub async fn handshake(f: &Handshakes) -> io::Result<()> {
    let tcp = TcpStream::connect(f.addr).await?;
    tcp.set_nodelay(true)?;
    let mut b = [0u8; 1];
    match &f.dialer {
        Dialer::Rustls(connector) => {
            let name = ServerName::try_from(TLS_SERVER_NAME).map_err(other)?;
            let mut tls = connector.connect(name, tcp).await?;
            tls.read_exact(&mut b).await?;
            if tls.get_ref().1.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
                return Err(other("rustls: not TLS 1.3"));
            }
        }
        Dialer::Weft(creds) => {
            let conn = Connection::connect(tcp, Config::default(), creds).await?;
            let mut flow = conn.accept_flow().await?;
            flow.read_exact(&mut b).await?;
            let security = conn.security().ok_or_else(|| other("weft: not secure"))?;
            if security.granted() != ["acme:server"] {
                return Err(other("weft: server not granted its name"));
            }
        }
    }
    if b != [1] {
        return Err(other("handshake: wrong confirmation byte"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The smoke test's "arrived intact" rests on this: the server's reply
    // depends on the bytes themselves, not only on how many there were.
    #[tokio::test(flavor = "current_thread")]
    async fn server_replies_with_the_hash_of_what_it_read() {
        assert_eq!(fnv1a(FNV_START, b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut replies = Vec::new();
        for sent in [&b"abc"[..], b"abd"] {
            let (mut c, s) = tokio::io::duplex(1024);
            let server = tokio::spawn(serve_sink(s, true));
            c.write_all(&3u64.to_be_bytes()).await.unwrap();
            c.write_all(sent).await.unwrap();
            let mut r = [0u8; 8];
            c.read_exact(&mut r).await.unwrap();
            assert_eq!(u64::from_be_bytes(r), fnv1a(FNV_START, sent));
            replies.push(r);
            drop(c);
            server.await.unwrap().unwrap();
        }
        assert_ne!(replies[0], replies[1]);
    }
}
