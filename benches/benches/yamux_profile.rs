//! weft speaking yamux (`Profile::Yamux`) against the `yamux` crate: the same
//! wire format, the same workloads as `loopback.rs` (one flow bulk, 100
//! flows bulk, open rate, ping-pong), single- and multi-threaded.
//!
//! Ids are `yamux_profile/<workload>/<st|mt>/<yamux|weft_yamux>`; the ratio
//! weft_yamux / yamux is what `BENCHMARKS.md` reports against the targets
//! (>= 2x throughput on 1 and 100 streams, >= 3x open rate, >= 2x ping-pong).
//!
//! ```text
//! cargo bench -p benches --bench yamux_profile
//! ```

use adapter_tokio::Profile;
use benches::{bench_on, configure, weft, yamux_mux, RtMode, BULK_FLOWS, BULK_TOTAL};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

fn bulk_group(c: &mut Criterion, name: &str, flows: usize) {
    let mut g = c.benchmark_group(format!("yamux_profile/{name}"));
    configure(&mut g);
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(BULK_TOTAL as u64));
    for mode in RtMode::ALL {
        bench_on(
            &mut g,
            mode,
            "yamux",
            || yamux_mux::setup_bulk(flows),
            |mut f, iters| async move {
                for _ in 0..iters {
                    yamux_mux::bulk(&mut f, BULK_TOTAL).await?;
                }
                Ok(f)
            },
        );
        bench_on(
            &mut g,
            mode,
            "weft_yamux",
            || weft::setup_bulk_profile(flows, Profile::Yamux),
            |mut f, iters| async move {
                for _ in 0..iters {
                    weft::bulk(&mut f, BULK_TOTAL).await?;
                }
                Ok(f)
            },
        );
    }
    g.finish();
}

fn bulk_1flow(c: &mut Criterion) {
    bulk_group(c, "bulk_1flow", 1);
}

fn bulk_100flows(c: &mut Criterion) {
    bulk_group(c, "bulk_100flows", BULK_FLOWS);
}

fn open_rate(c: &mut Criterion) {
    let mut g = c.benchmark_group("yamux_profile/open_rate");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    for mode in RtMode::ALL {
        bench_on(
            &mut g,
            mode,
            "yamux",
            yamux_mux::setup_open_rate,
            |mut f, iters| async move {
                yamux_mux::open_rate(&mut f, iters as usize).await?;
                Ok(f)
            },
        );
        bench_on(
            &mut g,
            mode,
            "weft_yamux",
            || weft::setup_open_rate_profile(Profile::Yamux),
            |mut f, iters| async move {
                weft::open_rate(&mut f, iters as usize).await?;
                Ok(f)
            },
        );
    }
    g.finish();
}

fn pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("yamux_profile/pingpong");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    for mode in RtMode::ALL {
        bench_on(
            &mut g,
            mode,
            "yamux",
            yamux_mux::setup_pingpong,
            |mut f, iters| async move {
                yamux_mux::pingpong(&mut f, iters as usize).await?;
                Ok(f)
            },
        );
        bench_on(
            &mut g,
            mode,
            "weft_yamux",
            || weft::setup_pingpong_profile(Profile::Yamux),
            |mut f, iters| async move {
                weft::pingpong(&mut f, iters as usize).await?;
                Ok(f)
            },
        );
    }
    g.finish();
}

criterion_group!(
    yamux_profile,
    bulk_1flow,
    bulk_100flows,
    open_rate,
    pingpong
);
criterion_main!(yamux_profile);
