//! In memory, no sockets: two mux cores wired back to back, one flow,
//! 64 KiB writes, next to a plain memcpy of the same bytes.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proto_core::mux::{Config, Connection, FlowId, IoChunks, Side};
use proto_core::time::Instant;

const SIZE: usize = 64 * 1024;

/// Baseline: copy a 64 KiB buffer into another.
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

/// A connected pair with one open flow known to both sides.
fn pair() -> (Connection, Connection, FlowId) {
    let now = Instant::ZERO;
    let mut a = Connection::new(Config::default(), Side::Dialer, now).unwrap();
    let mut b = Connection::new(Config::default(), Side::Acceptor, now).unwrap();
    let id = a.open_flow().unwrap();
    let mut wire = Vec::new();
    for _ in 0..4 {
        wire.clear();
        while a.poll_transmit(&mut wire).is_some() {}
        b.handle_input(now, &wire).unwrap();
        wire.clear();
        while b.poll_transmit(&mut wire).is_some() {}
        a.handle_input(now, &wire).unwrap();
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
    }
    (a, b, id)
}

/// The plain API: `write(&[u8])`, `poll_transmit` into a `Vec`,
/// `handle_input(&[u8])`, `read(&mut [u8])`: every byte is copied 3 times.
fn weft_copy(c: &mut Criterion) {
    let (mut a, mut b, id) = pair();
    let src = vec![0x5Au8; SIZE];
    let mut dst = vec![0u8; SIZE];
    let mut wire = Vec::with_capacity(SIZE * 2);
    let mut back = Vec::with_capacity(1024);
    let now = Instant::ZERO;
    let mut g = c.benchmark_group("in_memory");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("weft_copy", |bch| {
        bch.iter(|| {
            assert_eq!(a.flow(id).write(black_box(&src)).unwrap(), SIZE);
            wire.clear();
            while a.poll_transmit(&mut wire).is_some() {}
            b.handle_input(now, &wire).unwrap();
            let mut got = 0;
            while got < SIZE {
                got += b.flow(id).read(&mut dst[got..]).unwrap();
            }
            while b.poll_event().is_some() {}
            back.clear();
            while b.poll_transmit(&mut back).is_some() {}
            if !back.is_empty() {
                a.handle_input(now, &back).unwrap();
            }
            while a.poll_event().is_some() {}
            black_box(&mut dst);
        })
    });
    g.finish();
}

/// The zero-copy API: `write_chunk(Bytes)`, `poll_transmit` into
/// [`IoChunks`], one copy into a contiguous "wire" (what a socket would do),
/// `handle_input_bytes`, `read_chunk`: every byte is copied once.
fn weft_zero_copy(c: &mut Criterion) {
    let (mut a, mut b, id) = pair();
    let src = Bytes::from(vec![0x5Au8; SIZE]);
    let mut out = IoChunks::default();
    let mut back = Vec::with_capacity(1024);
    let now = Instant::ZERO;
    let mut g = c.benchmark_group("in_memory");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("weft_zero_copy", |bch| {
        bch.iter(|| {
            assert_eq!(a.flow(id).write_chunk(src.clone()).unwrap(), SIZE);
            while a.poll_transmit(&mut out).is_some() {}
            let mut wire = bytes::BytesMut::with_capacity(out.len());
            for chunk in out.chunks() {
                wire.extend_from_slice(chunk);
            }
            let n = out.len();
            out.advance(n);
            b.handle_input_bytes(now, wire.freeze()).unwrap();
            let mut got = 0;
            while got < SIZE {
                got += black_box(b.flow(id).read_chunk(usize::MAX).unwrap().unwrap()).len();
            }
            while b.poll_event().is_some() {}
            back.clear();
            while b.poll_transmit(&mut back).is_some() {}
            if !back.is_empty() {
                a.handle_input(now, &back).unwrap();
            }
            while a.poll_event().is_some() {}
        })
    });
    g.finish();
}

criterion_group! {
    name = in_memory;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = memcpy_64k, weft_copy, weft_zero_copy
}
criterion_main!(in_memory);
