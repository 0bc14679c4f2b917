//! Loopback TCP benches of the baselines `weft` compares itself to.
//!
//! Ids are `<workload>/<st|mt>/<baseline>`, e.g. `bulk_1flow/st/raw_tcp`.
//! To add `weft`, add one `bench_on(...)` line per workload below, calling the
//! `benches::weft::{setup_*, bulk, open_rate, pingpong}` functions that mirror
//! `benches::raw_tcp` / `benches::yamux_mux`.

use benches::{bench_on, configure, raw_tcp, weft, yamux_mux, RtMode, BULK_FLOWS, BULK_TOTAL};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

fn bulk_group(c: &mut Criterion, name: &str, flows: usize) {
    let mut g = c.benchmark_group(name);
    configure(&mut g);
    // One iteration moves 64 MiB (tens of ms): flat sampling keeps the
    // iteration count (and run time) bounded.
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(BULK_TOTAL as u64));
    for mode in RtMode::ALL {
        // raw TCP: one connection regardless of `flows` (raw TCP has no
        // streams); see `benches::raw_tcp`.
        bench_on(
            &mut g,
            mode,
            "raw_tcp",
            || raw_tcp::setup_bulk(flows),
            |mut f, iters| async move {
                for _ in 0..iters {
                    raw_tcp::bulk(&mut f, BULK_TOTAL).await?;
                }
                Ok(f)
            },
        );
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
            "weft",
            || weft::setup_bulk(flows),
            |mut f, iters| async move {
                for _ in 0..iters {
                    weft::bulk(&mut f, BULK_TOTAL).await?;
                }
                Ok(f)
            },
        );
        // The same transfer on weft's zero-copy API (write_chunk/read_chunk).
        bench_on(
            &mut g,
            mode,
            "weft_zero_copy",
            || weft::setup_bulk_zero_copy(flows),
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
    let mut g = c.benchmark_group("open_rate");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    for mode in RtMode::ALL {
        // raw TCP: one new TCP connection per "stream" (connect + 1 byte +
        // close); see `benches::raw_tcp`.
        bench_on(
            &mut g,
            mode,
            "raw_tcp",
            raw_tcp::setup_open_rate,
            |mut f, iters| async move {
                raw_tcp::open_rate(&mut f, iters as usize).await?;
                Ok(f)
            },
        );
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
            "weft",
            weft::setup_open_rate,
            |mut f, iters| async move {
                weft::open_rate(&mut f, iters as usize).await?;
                Ok(f)
            },
        );
    }
    g.finish();
}

fn pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("pingpong");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    for mode in RtMode::ALL {
        bench_on(
            &mut g,
            mode,
            "raw_tcp",
            raw_tcp::setup_pingpong,
            |mut f, iters| async move {
                raw_tcp::pingpong(&mut f, iters as usize).await?;
                Ok(f)
            },
        );
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
            "weft",
            weft::setup_pingpong,
            |mut f, iters| async move {
                weft::pingpong(&mut f, iters as usize).await?;
                Ok(f)
            },
        );
    }
    g.finish();
}

criterion_group!(loopback, bulk_1flow, bulk_100flows, open_rate, pingpong);
criterion_main!(loopback);
