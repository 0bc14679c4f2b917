//! Planted bugs must be caught within a bounded number of seeds.
//!
//! A test-only wrapper core damages the mux's own output the way a buggy
//! core would: either it never sends window updates (MAX_DATA,
//! MAX_FLOW_DATA; the liveness check must notice the stalled streams), or
//! it flips one payload byte of its third non-empty DATA frame (the prefix
//! check must notice). The simulator is not told anything about frames.

mod sim_support;

use bytes::Bytes;
use proto_core::mux::frame::{decode_head, Control, Head, PREFACE};
use proto_core::mux::Connection;
use proto_core::sim::{
    world, CmdError, CoreEvent, ReadOutcome, Rejected, Role, SimCore, StreamId, Swarm,
};
use proto_core::time::Instant;
use proto_core::wire::{Machine, TransmitBuf};
use sim_support::mux;

#[derive(Clone, Copy, PartialEq)]
enum Bug {
    NoWindowUpdates,
    FlipDataByte,
}

/// The mux with a bug in its output.
struct Buggy {
    inner: Connection,
    bug: Bug,
    preface_left: usize,
    payload_left: u64,
    /// The next payload byte is the first of its frame.
    payload_start: bool,
    data_frames: u64,
    buf: Vec<u8>,
}

impl Buggy {
    fn new(bug: Bug, role: Role, now: Instant) -> Self {
        Buggy {
            inner: mux(role, now),
            bug,
            preface_left: PREFACE.len(),
            payload_left: 0,
            payload_start: false,
            data_frames: 0,
            buf: Vec::new(),
        }
    }

    /// Copies `frames` to `out`, with the bug applied.
    fn filter(&mut self, frames: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < frames.len() {
            let rest = &frames[i..];
            if self.preface_left > 0 || self.payload_left > 0 {
                let want = if self.preface_left > 0 {
                    self.preface_left
                } else {
                    self.payload_left as usize
                };
                let n = want.min(rest.len());
                let at = out.len();
                out.extend_from_slice(&rest[..n]);
                if self.preface_left == 0 && std::mem::take(&mut self.payload_start) {
                    self.data_frames += 1;
                    if self.bug == Bug::FlipDataByte && self.data_frames == 3 {
                        out[at] ^= 0x20;
                    }
                }
                if self.preface_left > 0 {
                    self.preface_left -= n;
                } else {
                    self.payload_left -= n as u64;
                }
                i += n;
                continue;
            }
            match decode_head(rest, usize::MAX) {
                Ok((head, used)) => {
                    match head {
                        Head::Control(Control::MaxData(_) | Control::MaxFlowData { .. })
                            if self.bug == Bug::NoWindowUpdates => {}
                        Head::Data(h) => {
                            out.extend_from_slice(&rest[..used]);
                            self.payload_left = h.len;
                            self.payload_start = h.len > 0;
                        }
                        _ => out.extend_from_slice(&rest[..used]),
                    }
                    i += used;
                }
                Err(_) => {
                    // The mux emits whole frames per transmit; keep anything else as is.
                    out.extend_from_slice(rest);
                    break;
                }
            }
        }
    }
}

impl Machine for Buggy {
    fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), Rejected> {
        Machine::handle_input(&mut self.inner, now, data)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Machine::handle_timeout(&mut self.inner, now)
    }
    fn handle_transport_closed(&mut self, now: Instant) {
        Machine::handle_transport_closed(&mut self.inner, now)
    }
    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
        let mut frames = std::mem::take(&mut self.buf);
        frames.clear();
        let r = Machine::poll_transmit(&mut self.inner, &mut frames);
        let mut kept = Vec::new();
        if r.is_some() {
            self.filter(&frames, &mut kept);
            out.put_slice(&kept);
        }
        self.buf = frames;
        r.map(|_| kept.len())
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Machine::poll_timeout(&self.inner)
    }
    fn is_closed(&self) -> bool {
        Machine::is_closed(&self.inner)
    }
    fn close(&mut self, now: Instant, code: u64, reason: &[u8]) {
        Machine::close(&mut self.inner, now, code, reason)
    }
}

impl SimCore for Buggy {
    fn poll_event(&mut self) -> Option<CoreEvent> {
        SimCore::poll_event(&mut self.inner)
    }
    fn open(&mut self, now: Instant) -> Result<StreamId, CmdError> {
        self.inner.open(now)
    }
    fn write(&mut self, now: Instant, s: StreamId, data: &[u8]) -> Result<usize, CmdError> {
        SimCore::write(&mut self.inner, now, s, data)
    }
    fn finish(&mut self, now: Instant, s: StreamId) -> Result<(), CmdError> {
        SimCore::finish(&mut self.inner, now, s)
    }
    fn reset(&mut self, now: Instant, s: StreamId, code: u64) -> Result<(), CmdError> {
        SimCore::reset(&mut self.inner, now, s, code)
    }
    fn read(
        &mut self,
        now: Instant,
        s: StreamId,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<ReadOutcome, CmdError> {
        SimCore::read(&mut self.inner, now, s, out, max)
    }
    fn drain(&mut self, now: Instant) {
        SimCore::drain(&mut self.inner, now)
    }
}

/// Seeds the sweep may take to catch the bug.
const BOUND: u64 = 40;

#[test]
fn dropped_window_updates_are_caught_within_a_bounded_number_of_seeds() {
    let caught = (0..BOUND).find_map(|seed| {
        let cfg = Swarm::from_seed(seed);
        let o = world::run(&cfg, |r, t| Buggy::new(Bug::NoWindowUpdates, r, t), false);
        (!o.violations.is_empty()).then_some((seed, o))
    });
    let (seed, o) = caught.unwrap_or_else(|| panic!("the planted bug survived {BOUND} seeds"));
    println!("caught at seed {seed}: {}", o.violations[0]);
    assert!(
        o.violations.iter().any(|v| v.starts_with("liveness")),
        "{:?}",
        o.violations
    );
    // The same seed with the real mux passes: the simulator blamed the bug.
    let good = world::run(&Swarm::from_seed(seed), mux, false);
    assert!(good.violations.is_empty(), "{:?}", good.violations);
}

#[test]
fn the_filter_really_drops_window_updates() {
    // Guard against a wrapper that silently stops dropping anything.
    let mut calm = Swarm::calm(5, 2);
    calm.max_stream = 2_000_000;
    let mut made = 0;
    let o = world::run(
        &calm,
        |role, now| {
            let c = Buggy::new(Bug::NoWindowUpdates, role, now);
            made += 1;
            c
        },
        false,
    );
    assert!(made > 0);
    assert!(
        !o.violations.is_empty(),
        "big streams must stall without window updates"
    );
}

#[test]
fn a_corrupted_data_byte_is_caught_by_the_prefix_check() {
    let caught = (0..BOUND).find_map(|seed| {
        let cfg = Swarm::from_seed(seed);
        let o = world::run(&cfg, |r, t| Buggy::new(Bug::FlipDataByte, r, t), false);
        (!o.violations.is_empty()).then_some((seed, o))
    });
    let (seed, o) = caught.unwrap_or_else(|| panic!("the planted bug survived {BOUND} seeds"));
    println!("caught at seed {seed}: {}", o.violations[0]);
    assert!(
        o.violations.iter().any(|v| v.contains("is wrong")),
        "{:?}",
        o.violations
    );
}
