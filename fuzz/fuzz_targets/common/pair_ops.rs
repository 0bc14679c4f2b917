//! The `mux_pair_ops` input: shared by the fuzz target and by
//! `examples/gen_seeds.rs`, which writes hand-written op sequences as seed
//! files through [`Input::encode`] (checked to decode back identically).
#![allow(dead_code)]

use arbitrary::Arbitrary;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    A,
    B,
}

impl Who {
    pub fn idx(self) -> usize {
        match self {
            Who::A => 0,
            Who::B => 1,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Small(u8),
    Any(u64),
}

impl Code {
    pub fn get(self) -> u64 {
        match self {
            Code::Small(c) => u64::from(c),
            Code::Any(c) => c,
        }
    }
}

/// One step of the scenario. `flow` picks among the flows the side knows
/// (its own and the peer's it was told about), modulo their number.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Open {
        who: Who,
        side_channel: bool,
    },
    Write {
        who: Who,
        flow: u8,
        len: u16,
        chunk: bool,
    },
    WriteBig {
        who: Who,
        flow: u8,
        kib: u8,
    },
    Finish {
        who: Who,
        flow: u8,
    },
    Reset {
        who: Who,
        flow: u8,
        code: Code,
    },
    Stop {
        who: Who,
        flow: u8,
        code: Code,
    },
    Read {
        who: Who,
        flow: u8,
        size: u16,
    },
    ReadChunk {
        who: Who,
        flow: u8,
        max: u16,
    },
    ReadAll {
        who: Who,
    },
    Ping {
        who: Who,
    },
    GoAway {
        who: Who,
        code: Code,
    },
    Close {
        who: Who,
        code: Code,
        reason: u8,
    },
    TransportClosed {
        who: Who,
    },
    /// Advance virtual time by `STEPS_MS[step % 12]` and fire both timers.
    Advance {
        step: u8,
    },
    /// Jump to this side's `poll_timeout` deadline and fire both timers.
    ToDeadline {
        who: Who,
    },
    /// Move up to `max` bytes (0 moves nothing) of `from`'s output to the
    /// other side, `chunk` bytes per `handle_input`.
    Deliver {
        from: Who,
        max: u16,
        chunk: u16,
        zero_copy: bool,
    },
    DeliverAll {
        from: Who,
        zero_copy: bool,
    },
}

#[derive(Arbitrary, Debug, PartialEq, Eq)]
pub struct Input {
    pub preset_a: u8,
    pub preset_b: u8,
    pub tx_a: u8,
    pub tx_b: u8,
    pub ops: Vec<Op>,
}

// ------------------------------------------------------------ encoding
//
// The inverse of arbitrary 1.x's derive, for writing seeds: integers are
// little-endian, bool is a byte, an enum variant is a u32 `t` with
// `(t * count) >> 32 == index`, and the trailing `Vec` (take-rest) is each
// element preceded by a `1` byte.

fn who(out: &mut Vec<u8>, w: Who) {
    variant(out, w.idx(), 2);
}

fn variant(out: &mut Vec<u8>, index: usize, count: usize) {
    let t = ((index as u64) << 32).div_ceil(count as u64) as u32;
    out.extend_from_slice(&t.to_le_bytes());
}

fn code(out: &mut Vec<u8>, c: Code) {
    match c {
        Code::Small(v) => {
            variant(out, 0, 2);
            out.push(v);
        }
        Code::Any(v) => {
            variant(out, 1, 2);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

impl Op {
    const COUNT: usize = 17;

    pub fn encode(&self, out: &mut Vec<u8>) {
        let v = |out: &mut Vec<u8>, i| variant(out, i, Self::COUNT);
        match *self {
            Op::Open {
                who: w,
                side_channel,
            } => {
                v(out, 0);
                who(out, w);
                out.push(side_channel as u8);
            }
            Op::Write {
                who: w,
                flow,
                len,
                chunk,
            } => {
                v(out, 1);
                who(out, w);
                out.push(flow);
                out.extend_from_slice(&len.to_le_bytes());
                out.push(chunk as u8);
            }
            Op::WriteBig { who: w, flow, kib } => {
                v(out, 2);
                who(out, w);
                out.push(flow);
                out.push(kib);
            }
            Op::Finish { who: w, flow } => {
                v(out, 3);
                who(out, w);
                out.push(flow);
            }
            Op::Reset {
                who: w,
                flow,
                code: c,
            } => {
                v(out, 4);
                who(out, w);
                out.push(flow);
                code(out, c);
            }
            Op::Stop {
                who: w,
                flow,
                code: c,
            } => {
                v(out, 5);
                who(out, w);
                out.push(flow);
                code(out, c);
            }
            Op::Read { who: w, flow, size } => {
                v(out, 6);
                who(out, w);
                out.push(flow);
                out.extend_from_slice(&size.to_le_bytes());
            }
            Op::ReadChunk { who: w, flow, max } => {
                v(out, 7);
                who(out, w);
                out.push(flow);
                out.extend_from_slice(&max.to_le_bytes());
            }
            Op::ReadAll { who: w } => {
                v(out, 8);
                who(out, w);
            }
            Op::Ping { who: w } => {
                v(out, 9);
                who(out, w);
            }
            Op::GoAway { who: w, code: c } => {
                v(out, 10);
                who(out, w);
                code(out, c);
            }
            Op::Close {
                who: w,
                code: c,
                reason,
            } => {
                v(out, 11);
                who(out, w);
                code(out, c);
                out.push(reason);
            }
            Op::TransportClosed { who: w } => {
                v(out, 12);
                who(out, w);
            }
            Op::Advance { step } => {
                v(out, 13);
                out.push(step);
            }
            Op::ToDeadline { who: w } => {
                v(out, 14);
                who(out, w);
            }
            Op::Deliver {
                from,
                max,
                chunk,
                zero_copy,
            } => {
                v(out, 15);
                who(out, from);
                out.extend_from_slice(&max.to_le_bytes());
                out.extend_from_slice(&chunk.to_le_bytes());
                out.push(zero_copy as u8);
            }
            Op::DeliverAll { from, zero_copy } => {
                v(out, 16);
                who(out, from);
                out.push(zero_copy as u8);
            }
        }
    }
}

impl Input {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.preset_a, self.preset_b, self.tx_a, self.tx_b];
        for op in &self.ops {
            out.push(1);
            op.encode(&mut out);
        }
        out
    }
}
