//! The secure layer on one core: complete Noise XX handshakes (both sides
//! in one thread), and one flow's throughput over encrypted records next
//! to the same flow in plaintext and to the cipher's own bound (a plain
//! ChaCha20-Poly1305 seal + open of the same bytes).

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proto_core::mux::{self, FlowId, IoChunks, Side};
use proto_core::secure::{
    AllowNames, Blesser, Config, Established, Handshake, Identity, Params, PeerAuthorizer, Secured,
    TrustedRoots,
};
use proto_core::time::Instant;
use proto_core::wire::Machine;

const SIZE: usize = 64 * 1024;

struct Fixture {
    client: Params,
    server: Params,
}

/// A root, a blessed client and server, each admitting only the other's
/// name: the full verification work of a real deployment.
fn fixture() -> Fixture {
    let root = Blesser::root("acme", [1; 32]).unwrap();
    let mut roots = TrustedRoots::new();
    let (n, k) = root.trusted_root();
    roots.add(&n, k);
    let mk = |secret: u8, name: &str, peer: &str, seed: u8| {
        let mut id = Identity::from_secret([secret; 32]);
        id.add_blessing(root.bless(name, id.public_key(), None).unwrap())
            .unwrap();
        let auth: Arc<dyn PeerAuthorizer> = Arc::new(AllowNames::new([peer]));
        Params {
            identity: id,
            roots: roots.clone(),
            authorizer: auth,
            wall_clock_secs: 1_700_000_000,
            rng_seed: [seed; 32],
            local_address: String::new(),
            remote_address: String::new(),
        }
    };
    Fixture {
        client: mk(10, "client", "acme:server", 1),
        server: mk(11, "server", "acme:client", 2),
    }
}

/// One complete handshake, both sides, messages passed in memory.
fn handshake(f: &Fixture) -> (Established, Established) {
    let now = Instant::ZERO;
    let mut c = Handshake::initiator(Config::default(), f.client.clone(), now).unwrap();
    let mut s = Handshake::responder(Config::default(), f.server.clone(), now).unwrap();
    let mut wire = Vec::with_capacity(1024);
    while c.poll_transmit(&mut wire).is_some() {}
    s.handle_input(now, &wire).unwrap();
    wire.clear();
    while s.poll_transmit(&mut wire).is_some() {}
    c.handle_input(now, &wire).unwrap();
    wire.clear();
    while c.poll_transmit(&mut wire).is_some() {}
    s.handle_input(now, &wire).unwrap();
    (c.finish().unwrap(), s.finish().unwrap())
}

fn handshakes(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("secure");
    g.throughput(Throughput::Elements(1));
    g.bench_function("handshake", |b| b.iter(|| black_box(handshake(&f))));
    g.finish();
}

/// The cipher's bound: seal then open 64 KiB with ChaCha20-Poly1305.
fn cipher_bound(c: &mut Criterion) {
    let aead = ChaCha20Poly1305::new(Key::from_slice(&[7; 32]));
    let mut buf = vec![0x5Au8; SIZE];
    let mut n = 0u64;
    let mut g = c.benchmark_group("secure");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("chacha20poly1305_seal_open", |b| {
        b.iter(|| {
            n += 1;
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&n.to_le_bytes());
            let nonce = Nonce::from_slice(&nonce);
            let tag = aead
                .encrypt_in_place_detached(nonce, b"", &mut buf)
                .unwrap();
            aead.decrypt_in_place_detached(nonce, b"", &mut buf, &tag)
                .unwrap();
            black_box(&mut buf);
        })
    });
    g.finish();
}

/// Both ends of one flow on one thread, through `Secured` (encrypted) or
/// bare muxes (plaintext), with the zero-copy API: `write_chunk`, the
/// output into one contiguous "wire", input, `read_chunk`.
enum Ends {
    Secure(Box<Secured<mux::Connection>>, Box<Secured<mux::Connection>>),
    Plain(Box<mux::Connection>, Box<mux::Connection>),
}

impl Ends {
    fn muxes(&mut self) -> (&mut mux::Connection, &mut mux::Connection) {
        match self {
            Ends::Secure(a, b) => (a.inner_mut(), b.inner_mut()),
            Ends::Plain(a, b) => (a, b),
        }
    }

    /// Moves everything `a` has to `b` and back until both are quiet.
    fn exchange(&mut self, wire: &mut Vec<u8>, out: &mut IoChunks) {
        let now = Instant::ZERO;
        for _ in 0..2 {
            match self {
                Ends::Secure(a, b) => {
                    // As an adapter does: sealed records into `IoChunks`
                    // (kept by reference), one copy to the "socket".
                    while a.poll_transmit(out).is_some() {}
                    let mut w = bytes::BytesMut::with_capacity(out.len());
                    for chunk in out.chunks() {
                        w.extend_from_slice(chunk);
                    }
                    let n = out.len();
                    out.advance(n);
                    if !w.is_empty() {
                        b.handle_input(now, w.freeze()).unwrap();
                    }
                    wire.clear();
                    while b.poll_transmit(wire).is_some() {}
                    if !wire.is_empty() {
                        a.handle_input(now, std::mem::take(wire).into()).unwrap();
                    }
                }
                Ends::Plain(a, b) => {
                    while a.poll_transmit(out).is_some() {}
                    let mut w = bytes::BytesMut::with_capacity(out.len());
                    for chunk in out.chunks() {
                        w.extend_from_slice(chunk);
                    }
                    let n = out.len();
                    out.advance(n);
                    if !w.is_empty() {
                        b.handle_input_bytes(now, w.freeze()).unwrap();
                    }
                    wire.clear();
                    while b.poll_transmit(wire).is_some() {}
                    if !wire.is_empty() {
                        // The mux's own `&[u8]` input, not the boxed `Machine`'s.
                        a.as_mut().handle_input(now, wire).unwrap();
                    }
                }
            }
            let (a, b) = self.muxes();
            while a.poll_event().is_some() {}
            while b.poll_event().is_some() {}
        }
    }
}

fn ends(secure: bool) -> (Ends, FlowId) {
    let now = Instant::ZERO;
    let a = mux::Connection::new(mux::Config::default(), Side::Dialer, now).unwrap();
    let b = mux::Connection::new(mux::Config::default(), Side::Acceptor, now).unwrap();
    let mut e = if secure {
        let (c, s) = handshake(&fixture());
        let (a, r) = Secured::established(c, a, now);
        r.unwrap();
        let (b, r) = Secured::established(s, b, now);
        r.unwrap();
        Ends::Secure(Box::new(a), Box::new(b))
    } else {
        Ends::Plain(Box::new(a), Box::new(b))
    };
    let id = e.muxes().0.open_flow().unwrap();
    let (mut wire, mut out) = (Vec::new(), IoChunks::default());
    for _ in 0..4 {
        e.exchange(&mut wire, &mut out);
    }
    (e, id)
}

fn one_flow(c: &mut Criterion) {
    let mut g = c.benchmark_group("secure");
    g.throughput(Throughput::Bytes(SIZE as u64));
    for (name, secure) in [("one_flow_encrypted", true), ("one_flow_plaintext", false)] {
        let (mut e, id) = ends(secure);
        let src = Bytes::from(vec![0x5Au8; SIZE]);
        let mut wire = Vec::with_capacity(2 * SIZE);
        let mut out = IoChunks::default();
        g.bench_function(name, |b| {
            b.iter(|| {
                let (a, _) = e.muxes();
                assert_eq!(a.flow(id).write_chunk(src.clone()).unwrap(), SIZE);
                e.exchange(&mut wire, &mut out);
                let (_, b) = e.muxes();
                let mut got = 0;
                while got < SIZE {
                    got += black_box(b.flow(id).read_chunk(usize::MAX).unwrap().unwrap()).len();
                }
                // The window update the reads released goes back.
                e.exchange(&mut wire, &mut out);
            })
        });
    }
    g.finish();
}

/// Loopback TCP through `adapter-tokio`, client and server on one
/// current-thread runtime: one flow carrying `BULK_TOTAL` bytes in 64 KiB
/// writes, encrypted (`connect`/`accept`) and plaintext (`client`/`server`).
fn loopback_one_flow(c: &mut Criterion) {
    use adapter_tokio::{Config as MuxConfig, Connection, Credentials};
    use benches::{
        build_runtime, client_bulk, serve, tcp_pair, time_on_runtime, RtMode, ServerRole,
    };
    use benches::{BULK_TOTAL, BULK_WRITE};

    let mut g = c.benchmark_group("secure_loopback");
    g.throughput(Throughput::Bytes(BULK_TOTAL as u64))
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(5));
    for (name, secure) in [
        ("st/one_flow_encrypted", true),
        ("st/one_flow_plaintext", false),
    ] {
        let rt = build_runtime(RtMode::St);
        let f = fixture();
        let creds = |p: Params| Credentials::new(p.identity, p.roots, p.authorizer);
        let (cc, sc) = (creds(f.client), creds(f.server));
        let client = rt.block_on(async move {
            let (a, b) = tcp_pair().await.unwrap();
            let (client, server) = if secure {
                let (c, s) = tokio::join!(
                    Connection::connect(a, MuxConfig::default(), &cc),
                    Connection::accept(b, MuxConfig::default(), &sc)
                );
                (c.unwrap(), s.unwrap())
            } else {
                (
                    Connection::client(a, MuxConfig::default()).unwrap(),
                    Connection::server(b, MuxConfig::default()).unwrap(),
                )
            };
            assert_eq!(client.security().is_some(), secure);
            tokio::spawn(async move {
                while let Ok(flow) = server.accept_flow().await {
                    tokio::spawn(serve(ServerRole::Bulk, flow));
                }
            });
            client
        });
        let mut client = Some(client);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let conn = client.take().unwrap();
                let (conn, t) = time_on_runtime(&rt, conn, |conn| async move {
                    for _ in 0..iters {
                        let mut flow = conn.open_flow().await?;
                        client_bulk(&mut flow, BULK_TOTAL, BULK_WRITE).await?;
                    }
                    Ok(conn)
                });
                client = Some(conn);
                t
            })
        });
        rt.block_on(async move { drop(client) });
    }
    g.finish();
}

criterion_group! {
    name = secure;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = handshakes, cipher_bound, one_flow, loopback_one_flow
}
criterion_main!(secure);
