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

use std::future::Future;
use std::io;
use std::time::Duration;

use adapter_tokio::Profile;
use benches::{build_runtime, time_on_runtime, weft, yamux_mux, RtMode, BULK_FLOWS, BULK_TOTAL};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};

/// Registers `<group>/<mode>/<name>`: `setup` once (not timed), then
/// `work(fixture, iters)` per sample in a task on a runtime of flavour `mode`.
fn bench_on<T, S, SF, W, WF>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    mode: RtMode,
    name: &str,
    setup: S,
    mut work: W,
) where
    T: Send + 'static,
    S: FnOnce() -> SF,
    SF: Future<Output = io::Result<T>>,
    W: FnMut(T, u64) -> WF,
    WF: Future<Output = io::Result<T>> + Send + 'static,
{
    let rt = build_runtime(mode);
    let mut fixture = Some(rt.block_on(setup()).expect("bench setup failed"));
    g.bench_function(format!("{}/{name}", mode.name()), |b| {
        b.iter_custom(|iters| {
            let f = fixture.take().expect("fixture lost by a failed sample");
            let (f, elapsed) = time_on_runtime(&rt, f, |f| work(f, iters));
            fixture = Some(f);
            elapsed
        })
    });
    rt.block_on(async move { drop(fixture) });
    drop(rt);
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

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
