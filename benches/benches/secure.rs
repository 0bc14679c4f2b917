//! The secure layer on one core, under each cipher suite and crypto
//! backend: complete Noise XX handshakes (both sides in one thread), the
//! backend's own seal + open of one record, the record layer doing the
//! same, and one flow's throughput over encrypted records next to the
//! same flow in plaintext.

use std::hint::black_box;

use adapter_tokio::Credentials;
use benches::tls::weft_credentials_with;
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proto_core::mux::{self, FlowId, IoChunks, Side};
use proto_core::secure::crypto::{CryptoBackend, Native, Portable};
use proto_core::secure::{
    Config, Established, Handshake, Params, Secured, Seed, Suite, SuiteList, MAX_RECORD_PLAINTEXT,
};
use proto_core::time::Instant;
use proto_core::wire::{extend_in_pieces, Machine, TransmitBuf};

const SIZE: usize = 64 * 1024;

const BACKENDS: [(&str, &dyn CryptoBackend); 2] = [("native", &Native), ("portable", &Portable)];
const SUITES: [(&str, Suite); 2] = [
    ("aes256gcm", Suite::AesGcmSha256),
    ("chacha20poly1305", Suite::ChaChaPolyBlake2s),
];

/// The client's and the server's credentials (`benches::tls`'s: a root,
/// a blessed client and server, each admitting only the other's name, the
/// full verification work of a real deployment), as the core's `Params`.
struct Fixture {
    client: Params,
    server: Params,
    config: Config,
}

fn fixture(backend: &'static dyn CryptoBackend, suite: Suite) -> Fixture {
    let (client, server) = weft_credentials_with(SuiteList::Only(vec![suite]));
    let params = |c: Credentials| Params {
        identity: c.identity,
        roots: c.roots,
        authorizer: c.authorizer,
        wall_clock_secs: 1_700_000_000,
        backend,
        local_address: String::new(),
        remote_address: String::new(),
    };
    Fixture {
        config: client.config.clone(),
        client: params(client),
        server: params(server),
    }
}

/// One complete handshake, both sides, messages passed in memory.
fn handshake(f: &Fixture) -> (Established, Established) {
    let now = Instant::ZERO;
    // Constant seeds: a benchmark, not a deployment.
    let (cs, ss) = (Seed::new([1; 32]), Seed::new([2; 32]));
    let mut c = Handshake::initiator(f.config.clone(), f.client.clone(), cs, now).unwrap();
    let mut s = Handshake::responder(f.config.clone(), f.server.clone(), ss, now).unwrap();
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
    let mut g = c.benchmark_group("secure");
    g.throughput(Throughput::Elements(1));
    for (bname, backend) in BACKENDS {
        for (sname, suite) in SUITES {
            let f = fixture(backend, suite);
            g.bench_function(format!("handshake/{bname}/{sname}"), |b| {
                b.iter(|| black_box(handshake(&f)))
            });
        }
    }
    g.finish();
}

/// The backend's own bound, and the record layer's cost over it: seal
/// then open one record of each size, through the `Aead` trait directly
/// and through `Records` (length prefix, nonce counter, in-place buffers).
fn record_layer(c: &mut Criterion) {
    let mut g = c.benchmark_group("secure");
    for size in [16 * 1024, MAX_RECORD_PLAINTEXT] {
        g.throughput(Throughput::Bytes(size as u64));
        // The two copies `records` makes besides the cipher: the layer
        // above writing into the record, and the "socket" handing it over.
        let src = vec![0x5Au8; size];
        let (mut record, mut socket) = (BytesMut::new(), BytesMut::new());
        g.bench_function(format!("copies/{size}"), |b| {
            b.iter(|| {
                record.reserve(size + 18);
                record.put_slice(&src);
                let r = record.split();
                socket.reserve(size + 18);
                extend_in_pieces(&mut socket, &r);
                drop(r);
                black_box(socket.split());
            })
        });
        for (bname, backend) in BACKENDS {
            for (sname, suite) in SUITES {
                let aead = backend.aead(suite, &[7; 32]);
                let mut buf = vec![0x5Au8; size];
                let mut n = 0u64;
                g.bench_function(format!("seal_open/{bname}/{sname}/{size}"), |b| {
                    b.iter(|| {
                        n += 1;
                        let tag = aead.seal_in_place(n, b"", &mut buf);
                        aead.open_in_place(n, b"", &mut buf, &tag).unwrap();
                        black_box(&mut buf);
                    })
                });
                let mut f = fixture(backend, suite);
                f.config.record.max_plaintext = size;
                let (c, s) = handshake(&f);
                let (mut tx, mut rx) = (c.records, s.records);
                let src = vec![0x5Au8; size];
                let mut out = IoChunks::default();
                let mut socket = BytesMut::new();
                g.bench_function(format!("records/{bname}/{sname}/{size}"), |b| {
                    b.iter(|| {
                        tx.transmit_with(
                            // As the mux writes: through `TransmitBuf`.
                            |buf: &mut BytesMut| {
                                buf.put_slice(&src);
                                true
                            },
                            &mut out,
                        )
                        .unwrap();
                        // The "socket": one copy into a reused buffer, which
                        // hands input over as a driver does (one owned buffer).
                        socket.reserve(out.len());
                        for chunk in out.chunks() {
                            extend_in_pieces(&mut socket, chunk);
                        }
                        let len = out.len();
                        out.advance(len);
                        let wire = socket.split();
                        let mut got = 0;
                        rx.open_owned(wire.freeze(), |p| {
                            got += p.len();
                            true
                        })
                        .unwrap();
                        assert_eq!(got, size);
                    })
                });
            }
        }
    }
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

fn ends(suite: Option<Suite>) -> (Ends, FlowId) {
    let now = Instant::ZERO;
    let a = mux::Connection::new(mux::Config::default(), Side::Dialer, now).unwrap();
    let b = mux::Connection::new(mux::Config::default(), Side::Acceptor, now).unwrap();
    let mut e = if let Some(suite) = suite {
        let (c, s) = handshake(&fixture(&Native, suite));
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
    for (name, suite) in [
        ("one_flow_encrypted/aes256gcm", Some(Suite::AesGcmSha256)),
        (
            "one_flow_encrypted/chacha20poly1305",
            Some(Suite::ChaChaPolyBlake2s),
        ),
        ("one_flow_plaintext", None),
    ] {
        let (mut e, id) = ends(suite);
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
    use adapter_tokio::{Config as MuxConfig, Connection};
    use benches::{
        build_runtime, client_bulk, serve, tcp_pair, time_on_runtime, RtMode, ServerRole,
    };
    use benches::{BULK_TOTAL, BULK_WRITE};

    let mut g = c.benchmark_group("secure_loopback");
    g.throughput(Throughput::Bytes(BULK_TOTAL as u64))
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(5));
    // Records of the default (largest) size, and of 16 KiB, to choose by.
    let aes = Some(Suite::AesGcmSha256);
    let chacha = Some(Suite::ChaChaPolyBlake2s);
    for (name, suite, record) in [
        ("st/one_flow_encrypted/aes256gcm", aes, MAX_RECORD_PLAINTEXT),
        ("st/one_flow_encrypted/aes256gcm/16k", aes, 16 * 1024),
        (
            "st/one_flow_encrypted/chacha20poly1305",
            chacha,
            MAX_RECORD_PLAINTEXT,
        ),
        ("st/one_flow_plaintext", None, MAX_RECORD_PLAINTEXT),
    ] {
        let secure = suite.is_some();
        let rt = build_runtime(RtMode::St);
        let (mut cc, mut sc) =
            weft_credentials_with(SuiteList::Only(vec![suite.unwrap_or(Suite::AesGcmSha256)]));
        cc.config.record.max_plaintext = record;
        sc.config.record.max_plaintext = record;
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
    targets = handshakes, record_layer, one_flow, loopback_one_flow
}
criterion_main!(secure);
