//! In-memory reference points (no I/O).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SIZE: usize = 64 * 1024;

/// Baseline `memcpy_64k`: copy a 64 KiB buffer into another.
fn memcpy_64k(c: &mut Criterion) {
    let src = vec![0xA5u8; SIZE];
    let mut dst = vec![0u8; SIZE];
    let mut g = c.benchmark_group("in_memory");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        })
    });
    g.finish();
}

criterion_group!(in_memory, memcpy_64k);
criterion_main!(in_memory);
