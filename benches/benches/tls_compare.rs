//! weft's secure layer side by side with TLS 1.3 (rustls 0.23, aws-lc-rs,
//! through tokio-rustls) over loopback TCP, client and server on one
//! current-thread runtime. Fixtures: `benches::tls`.
//!
//! * `tls_bulk/st/<stack>`: 16 MiB per iteration in 64 KiB writes over one
//!   long-lived connection (one flow for weft), until the server confirms.
//! * `tls_handshake/st/<stack>`: TCP connect + full handshake (no tickets,
//!   no resumption) + one byte from the server, one connection at a time.
//!
//! `cargo bench -p benches --bench tls_compare [-- <filter>]`

use benches::tls::{
    bulk, handshake, setup_bulk, setup_handshake, BulkStack, HandshakeStack, TLS_BULK_TOTAL,
};
use benches::{bench_on, configure, RtMode};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

fn tls_bulk(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls_bulk");
    configure(&mut g);
    // An iteration is tens of ms: flat sampling bounds the run time.
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(TLS_BULK_TOTAL as u64));
    for stack in BulkStack::ALL {
        bench_on(
            &mut g,
            RtMode::St,
            stack.name(),
            || setup_bulk(stack, false),
            |mut f, iters| async move {
                for _ in 0..iters {
                    bulk(&mut f, TLS_BULK_TOTAL).await?;
                }
                Ok(f)
            },
        );
    }
    g.finish();
}

fn tls_handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls_handshake");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    for stack in HandshakeStack::ALL {
        bench_on(
            &mut g,
            RtMode::St,
            stack.name(),
            || setup_handshake(stack),
            |f, iters| async move {
                for _ in 0..iters {
                    handshake(&f).await?;
                }
                Ok(f)
            },
        );
    }
    g.finish();
}

criterion_group!(tls_compare, tls_bulk, tls_handshake);
criterion_main!(tls_compare);
