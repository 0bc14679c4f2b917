//! Heap cost of mux state, measured with a counting allocator. One test
//! function so nothing else allocates concurrently in this binary.

use proto_core::mux::frame::{encode_data_header, DataHeader, PREFACE};
use proto_core::mux::{initial, Config, Connection, Event, FlowId, Side};
use proto_core::time::Instant;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn drain(c: &mut Connection, to: &mut Vec<u8>) {
    while c.poll_transmit(to).is_some() {}
    while c.poll_event().is_some() {}
}

#[test]
fn idle_flows_and_tiny_frames_cost_bounded_memory() {
    // --- An idle flow (open on both sides, nothing buffered) costs at most
    // 256 bytes of core state on each side.
    const FLOWS: u64 = 10_000;
    let mut cfg = Config::default();
    cfg.max_concurrent_flows = FLOWS * 2;
    let now = Instant::ZERO;
    let mut a = Connection::new(cfg.clone(), Side::Dialer, now).unwrap();
    let mut b = Connection::new(cfg.clone(), Side::Acceptor, now).unwrap();
    let mut wire = Vec::new();
    drain(&mut b, &mut wire);
    a.handle_input(now, &wire).unwrap();
    wire.clear();
    drain(&mut a, &mut wire);
    b.handle_input(now, &wire).unwrap();
    wire = Vec::with_capacity(1 << 20);
    drain(&mut b, &mut Vec::new());

    let before_a = live();
    let ids: Vec<FlowId> = (0..FLOWS).map(|_| a.open_flow().unwrap()).collect();
    wire.clear();
    while a.poll_transmit(&mut wire).is_some() {}
    let a_cost = (live() - before_a) as f64 / FLOWS as f64;
    let before_b = live();
    b.handle_input(now, &wire).unwrap();
    let mut opened = 0;
    while let Some(ev) = b.poll_event() {
        if matches!(ev, Event::FlowOpened { .. }) {
            opened += 1;
        }
    }
    assert_eq!(opened, FLOWS);
    let b_cost = (live() - before_b) as f64 / FLOWS as f64;
    // The transmit buffer is the driver's, not core state; it was sized up front.
    eprintln!("idle flow: dialer {a_cost:.0} B, acceptor {b_cost:.0} B");
    assert!(a_cost <= 256.0, "dialer: {a_cost} bytes per idle flow");
    assert!(b_cost <= 256.0, "acceptor: {b_cost} bytes per idle flow");
    drop(ids);

    // --- 1-byte frames on many unread flows: heap per buffered payload
    // byte stays small because small payloads are coalesced per flow.
    let mut cfg = Config::default();
    cfg.conn_recv_budget = initial::CONN_WINDOW;
    let mut c = Connection::new(cfg, Side::Acceptor, now).unwrap();
    c.handle_input(now, PREFACE).unwrap();
    let base = live();
    let mut held = 0u64;
    for round in 0..2000u64 {
        let mut w = Vec::new();
        for f in 0..initial::MAX_FLOWS {
            encode_data_header(
                &mut w,
                &DataHeader {
                    flow: f * 2,
                    len: 1,
                    fin: false,
                    side_channel: false,
                },
            );
            w.push(round as u8);
        }
        c.handle_input_bytes(now, bytes::Bytes::from(w)).unwrap();
        while c.poll_event().is_some() {}
        held += initial::MAX_FLOWS;
    }
    assert_eq!(c.stats().recv_buffered, held);
    let per_byte = (live() - base) as f64 / held as f64;
    eprintln!("tiny frames: {per_byte:.2} heap bytes per buffered byte");
    assert!(
        per_byte < 4.0,
        "{per_byte} heap bytes per buffered payload byte"
    );

    // --- Tiny `write_chunk`s are coalesced, not queued one `Bytes` each.
    let mut d = Connection::new(Config::default(), Side::Dialer, now).unwrap();
    let id = d.open_flow().unwrap();
    let one = bytes::Bytes::from_static(b"x");
    let base = live();
    let mut queued = 0u64;
    while d.flow(id).write_chunk(one.clone()).is_ok() {
        queued += 1;
    }
    assert_eq!(queued, Config::default().flow_send_buffer as u64);
    let per_byte = (live() - base) as f64 / queued as f64;
    eprintln!("tiny chunks: {per_byte:.2} heap bytes per queued byte");
    assert!(per_byte < 4.0, "{per_byte} heap bytes per queued byte");
}
