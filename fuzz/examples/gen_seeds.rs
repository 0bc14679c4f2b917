//! Writes the hand-written seed inputs into `fuzz/corpus/<target>/seed-*`.
//!
//! ```sh
//! cd fuzz && cargo run --example gen_seeds
//! ```
//!
//! Seeds are deterministic; re-running overwrites them with identical bytes.
//! Fuzzer-found inputs (minimized with `cargo fuzz cmin`) live beside them.

#[path = "../fuzz_targets/common/pair_ops.rs"]
mod pair_ops;

use arbitrary::{Arbitrary, Unstructured};
use pair_ops::{Code, Input, Op, Who};
use proto_core::mux::frame::{encode_control, encode_data_header, Control, DataHeader, PREFACE};
use proto_core::mux::{Config, Connection, Side};
use proto_core::time::Instant;
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    dir
}

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let path = corpus_dir(target).join(format!("seed-{name}"));
    std::fs::write(&path, bytes).expect("write seed");
}

// ------------------------------------------------------------ frame seeds

fn ctl(c: Control<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    encode_control(&mut v, &c);
    v
}

fn data(flow: u64, len: u64, fin: bool, side_channel: bool) -> Vec<u8> {
    let mut v = Vec::new();
    encode_data_header(
        &mut v,
        &DataHeader {
            flow,
            len,
            fin,
            side_channel,
        },
    );
    v
}

fn frame_seeds() {
    let t = "mux_frame_decode";
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("ping", ctl(Control::Ping(7))),
        ("pong-big", ctl(Control::Pong(u32::MAX as u64 + 5))),
        ("max-data", ctl(Control::MaxData(1 << 40))),
        (
            "max-flow-data",
            ctl(Control::MaxFlowData {
                flow: 300,
                max: 70000,
            }),
        ),
        ("max-flows", ctl(Control::MaxFlows(100))),
        (
            "reset-flow",
            ctl(Control::ResetFlow {
                flow: 4,
                code: 9,
                final_size: 1 << 31,
            }),
        ),
        (
            "stop-sending",
            ctl(Control::StopSending { flow: 6, code: 1 }),
        ),
        (
            "goaway",
            ctl(Control::GoAway {
                accepted_below: 10,
                code: 0,
            }),
        ),
        (
            "conn-close",
            ctl(Control::ConnectionClose {
                code: 1,
                reason: b"bad",
            }),
        ),
        (
            "app-close-long",
            ctl(Control::ApplicationClose {
                code: 77,
                reason: &[b'z'; 40],
            }),
        ),
        ("data", data(1, 5, false, false)),
        ("data-fin", data(2, 0, true, false)),
        ("data-side", data(3, 16384, false, true)),
        ("data-fin-side", data(1 << 20, 1 << 33, true, true)),
        // Non-minimal varints: 8-byte encodings of small values.
        ("nonminimal-ping", vec![0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0x07]),
        (
            "nonminimal-data",
            vec![
                0x10, 0x40, 0x01, 0x80, 0, 0, 0x05, b'h', b'e', b'l', b'l', b'o',
            ],
        ),
        (
            "truncated-reset",
            ctl(Control::ResetFlow {
                flow: 1 << 40,
                code: 2,
                final_size: 3,
            })[..9]
                .to_vec(),
        ),
        ("unknown-type", vec![0x03, 0x00]),
        ("unknown-type-hi", vec![0x20, 0x01, 0x02]),
        ("empty-close", vec![0x0a, 0x00, 0x00]),
        (
            "close-len-too-long",
            vec![0x0b, 0x00, 0x80, 0x00, 0x10, 0x00, b'x'],
        ),
    ];
    let mut stream = PREFACE.to_vec();
    for (_, s) in &seeds {
        stream.extend_from_slice(s);
    }
    for (name, s) in &seeds {
        write_seed(t, name, s);
    }
    write_seed(t, "stream", &stream[PREFACE.len()..]);
}

// ------------------------------------------------- connection input seeds

/// Header bytes for `mux_connection_input` (see the target's docs).
struct Hdr {
    acceptor: bool,
    preface: bool,
    tx: u8,
    zero_copy: bool,
    tight: bool,
    repeat: u8,
    eager: bool,
    local_flows: bool,
    plan: [u8; 8],
}

impl Default for Hdr {
    fn default() -> Self {
        Hdr {
            acceptor: true,
            preface: false,
            tx: 0,
            zero_copy: false,
            tight: false,
            repeat: 0,
            eager: true,
            local_flows: false,
            // Mixed chunk sizes, no actions.
            plan: [30, 3, 17, 1, 24, 8, 28, 12],
        }
    }
}

impl Hdr {
    fn bytes(&self, body: &[u8]) -> Vec<u8> {
        let f0 = self.acceptor as u8
            | (self.preface as u8) << 1
            | (self.tx & 3) << 2
            | (self.zero_copy as u8) << 4
            | (self.tight as u8) << 5
            | (self.repeat & 3) << 6;
        let f1 = self.eager as u8 | (self.local_flows as u8) << 1;
        let mut v = vec![f0, f1];
        v.extend_from_slice(&self.plan);
        v.extend_from_slice(body);
        v
    }
}

/// What an honest peer on `side` sends when a script drives it without
/// ever hearing back.
fn peer_stream(side: Side, script: impl FnOnce(&mut Connection, &mut Vec<u8>)) -> Vec<u8> {
    let mut c = Connection::new(Config::default(), side, Instant::ZERO).unwrap();
    let mut out = Vec::new();
    while c.poll_transmit(&mut out).is_some() {}
    script(&mut c, &mut out);
    while c.poll_transmit(&mut out).is_some() {}
    out
}

fn flush(c: &mut Connection, out: &mut Vec<u8>) {
    while c.poll_transmit(out).is_some() {}
    while c.poll_event().is_some() {}
}

fn input_seeds() {
    let t = "mux_connection_input";
    // Honest peers. The fuzzed side is the acceptor, so the peer dials.
    let hello = peer_stream(Side::Dialer, |c, out| {
        let f = c.open_flow().unwrap();
        c.flow(f).write(b"hello").unwrap();
        c.flow(f).finish().unwrap();
        flush(c, out);
    });
    write_seed(t, "honest-hello", &Hdr::default().bytes(&hello));
    write_seed(
        t,
        "honest-hello-bytewise",
        &Hdr {
            plan: [0; 8],
            zero_copy: true,
            ..Hdr::default()
        }
        .bytes(&hello),
    );

    let multi = peer_stream(Side::Dialer, |c, out| {
        let flows: Vec<_> = (0..3).map(|_| c.open_flow().unwrap()).collect();
        for (i, f) in flows.iter().enumerate() {
            c.flow(*f).write(&vec![i as u8; 2000]).unwrap();
        }
        flush(c, out);
        c.flow(flows[0]).finish().unwrap();
        c.flow(flows[1]).reset(42).unwrap();
        let _ = c.ping();
        let s = c.open_side_channel().unwrap();
        c.flow(s).write(b"side").unwrap();
        flush(c, out);
    });
    write_seed(t, "honest-multi", &Hdr::default().bytes(&multi));
    write_seed(
        t,
        "honest-multi-lazy-reader",
        &Hdr {
            eager: false,
            tx: 2,
            plan: [0x9e, 0x83, 0xd1, 0x01, 0xb8, 0x48, 0x5c, 0xec],
            ..Hdr::default()
        }
        .bytes(&multi),
    );

    let zero_copy = peer_stream(Side::Dialer, |c, out| {
        let f = c.open_flow().unwrap();
        c.flow(f).write(&vec![7u8; 12000]).unwrap();
        c.flow(f).finish().unwrap();
        flush(c, out);
    });
    write_seed(
        t,
        "honest-large-zero-copy",
        &Hdr {
            zero_copy: true,
            plan: [31; 8],
            ..Hdr::default()
        }
        .bytes(&zero_copy),
    );

    let drain = peer_stream(Side::Dialer, |c, out| {
        let f = c.open_flow().unwrap();
        c.flow(f).write(b"req").unwrap();
        flush(c, out);
        c.go_away(3);
        c.flow(f).finish().unwrap();
        flush(c, out);
    });
    write_seed(t, "honest-goaway", &Hdr::default().bytes(&drain));

    let close = peer_stream(Side::Dialer, |c, out| {
        let _ = c.open_flow().unwrap();
        flush(c, out);
        c.close(99, b"bye now");
    });
    write_seed(t, "honest-app-close", &Hdr::default().bytes(&close));

    // The fuzzed side dials and has local flows; the peer accepts.
    let acceptor = peer_stream(Side::Acceptor, |c, out| {
        let f = c.open_flow().unwrap();
        c.flow(f).write(b"from the acceptor").unwrap();
        flush(c, out);
    });
    let mut local = acceptor.clone();
    local.extend(ctl(Control::MaxFlowData {
        flow: 0,
        max: 1 << 20,
    }));
    local.extend(ctl(Control::MaxData(1 << 22)));
    local.extend(ctl(Control::StopSending { flow: 2, code: 8 }));
    local.extend(ctl(Control::MaxFlows(200)));
    local.extend(ctl(Control::GoAway {
        accepted_below: 2,
        code: 1,
    }));
    write_seed(
        t,
        "local-flows-credit",
        &Hdr {
            acceptor: false,
            local_flows: true,
            plan: [0x1e, 0xc3, 0x1e, 0xe0, 0x7e, 0x1e, 0x58, 0x1e],
            ..Hdr::default()
        }
        .bytes(&local),
    );

    // Timers: a short stream, then every action kind between bytes.
    write_seed(
        t,
        "timers",
        &Hdr {
            plan: [0x20, 0x41, 0x60, 0xe0, 0x80, 0xa0, 0xc0, 0x7f],
            ..Hdr::default()
        }
        .bytes(&hello),
    );
    write_seed(
        t,
        "tight-config",
        &Hdr {
            tight: true,
            tx: 1,
            plan: [0xe0, 0x41, 0x62, 0x1f, 0x80, 0xa0, 0xc5, 0x7f],
            ..Hdr::default()
        }
        .bytes(&multi),
    );

    // Hostile peers (the fuzzed side accepts, so peer flows are even).
    let h = |name: &str, frames: Vec<Vec<u8>>, hdr: Hdr| {
        let mut body = if hdr.preface {
            Vec::new()
        } else {
            PREFACE.to_vec()
        };
        for f in frames {
            body.extend(f);
        }
        write_seed(t, name, &hdr.bytes(&body));
    };
    let payload = |mut head: Vec<u8>, n: usize| {
        head.extend(std::iter::repeat_n(0x5a, n));
        head
    };
    h(
        "hostile-frame-too-large",
        vec![payload(data(0, 70_000, false, false), 100)],
        Hdr::default(),
    );
    h(
        "hostile-bad-flow-id",
        vec![payload(data(4, 3, false, false), 3)],
        Hdr::default(),
    );
    h(
        "hostile-flow-limit",
        (0..66).map(|i| data(2 * i, 0, false, false)).collect(),
        Hdr::default(),
    );
    h(
        "hostile-ping-flood",
        (0..120).map(|i| ctl(Control::Ping(i))).collect(),
        Hdr {
            plan: [31; 8],
            ..Hdr::default()
        },
    );
    h(
        "hostile-reset-final-size",
        vec![
            payload(data(0, 10, false, false), 10),
            ctl(Control::ResetFlow {
                flow: 0,
                code: 1,
                final_size: 5,
            }),
        ],
        Hdr::default(),
    );
    h(
        "hostile-data-after-fin",
        vec![
            payload(data(0, 4, true, false), 4),
            payload(data(0, 4, false, false), 4),
        ],
        Hdr::default(),
    );
    h(
        "hostile-bad-credit",
        vec![ctl(Control::MaxFlows(1 << 61))],
        Hdr::default(),
    );
    h(
        "hostile-long-close-reason",
        vec![ctl(Control::ConnectionClose {
            code: 2,
            reason: &[b'x'; 100],
        })],
        Hdr::default(),
    );
    h(
        "hostile-bad-preface",
        vec![b"WEFTMUX2".to_vec()],
        Hdr {
            preface: true,
            ..Hdr::default()
        },
    );
    h(
        "hostile-unknown-pong-and-stop",
        vec![
            ctl(Control::Pong(12345)),
            data(0, 0, false, true),
            ctl(Control::StopSending { flow: 0, code: 3 }),
            ctl(Control::StopSending { flow: 1, code: 3 }),
        ],
        Hdr::default(),
    );
    // Eight flows of 500-byte frames; the body repeats 300 times (1.2 MB),
    // which fills the 1 MiB budget unless the reader keeps up.
    let mut fill: Vec<Vec<u8>> = Vec::new();
    for i in 0..8 {
        fill.push(payload(data(2 * i, 500, false, false), 500));
    }
    let mut body = Vec::new();
    for f in fill {
        body.extend(f);
    }
    write_seed(
        t,
        "hostile-budget-fill",
        &Hdr {
            preface: true,
            repeat: 3,
            eager: false,
            plan: [29; 8],
            ..Hdr::default()
        }
        .bytes(&body),
    );
    write_seed(
        t,
        "budget-fill-eager-reader",
        &Hdr {
            preface: true,
            repeat: 3,
            eager: true,
            zero_copy: true,
            plan: [27, 29, 0x9d, 28, 29, 29, 0x3d, 29],
            ..Hdr::default()
        }
        .bytes(&body),
    );
}

// --------------------------------------------------------- pair op seeds

fn pair(name: &str, presets: (u8, u8), tx: (u8, u8), ops: Vec<Op>) {
    let input = Input {
        preset_a: presets.0,
        preset_b: presets.1,
        tx_a: tx.0,
        tx_b: tx.1,
        ops,
    };
    let bytes = input.encode();
    // The encoding must decode back to the same scenario.
    let back = Input::arbitrary_take_rest(Unstructured::new(&bytes)).expect("decodes");
    assert_eq!(back, input, "seed {name} does not round-trip");
    write_seed("mux_pair_ops", name, &bytes);
}

fn pair_seeds() {
    use Op::*;
    use Who::{A, B};
    let all = |from| DeliverAll {
        from,
        zero_copy: false,
    };
    let exchange = || vec![all(A), all(B), ReadAll { who: A }, ReadAll { who: B }];

    pair(
        "basic",
        (0, 0),
        (0, 0),
        vec![
            Open {
                who: A,
                side_channel: false,
            },
            Write {
                who: A,
                flow: 0,
                len: 1000,
                chunk: false,
            },
            Finish { who: A, flow: 0 },
            all(A),
            ReadAll { who: B },
        ],
    );

    let mut echo = vec![
        Open {
            who: A,
            side_channel: false,
        },
        Write {
            who: A,
            flow: 0,
            len: 5000,
            chunk: false,
        },
        all(A),
        Read {
            who: B,
            flow: 0,
            size: 777,
        },
        ReadChunk {
            who: B,
            flow: 0,
            max: 3000,
        },
        Write {
            who: B,
            flow: 0,
            len: 4000,
            chunk: false,
        },
        Finish { who: B, flow: 0 },
        Finish { who: A, flow: 0 },
    ];
    echo.extend(exchange());
    echo.extend(exchange());
    pair("echo", (1, 1), (1, 2), echo);

    // A bulk transfer against a slow reader: flow control and window updates.
    let mut bulk = vec![Open {
        who: A,
        side_channel: false,
    }];
    for _ in 0..6 {
        bulk.push(WriteBig {
            who: A,
            flow: 0,
            kib: 255,
        });
        bulk.push(Deliver {
            from: A,
            max: 60000,
            chunk: 1500,
            zero_copy: true,
        });
        bulk.push(Read {
            who: B,
            flow: 0,
            size: 40000,
        });
        bulk.push(Advance { step: 3 });
        bulk.push(all(B));
    }
    bulk.push(Finish { who: A, flow: 0 });
    pair("bulk-slow-reader", (0, 1), (2, 0), bulk);

    // RTT samples then growth: pings with time passing, then fast reads.
    let mut grow = vec![
        Open {
            who: A,
            side_channel: false,
        },
        Ping { who: A },
        Ping { who: B },
        Advance { step: 4 },
    ];
    grow.extend(exchange());
    for _ in 0..4 {
        grow.push(WriteBig {
            who: A,
            flow: 0,
            kib: 200,
        });
        grow.push(all(A));
        grow.push(ReadAll { who: B });
        grow.push(Advance { step: 2 });
        grow.push(all(B));
    }
    pair("window-growth", (0, 0), (0, 1), grow);

    let mut reset = vec![
        Open {
            who: A,
            side_channel: false,
        },
        Open {
            who: A,
            side_channel: true,
        },
        Write {
            who: A,
            flow: 0,
            len: 3000,
            chunk: false,
        },
        Write {
            who: A,
            flow: 1,
            len: 10,
            chunk: false,
        },
        Deliver {
            from: A,
            max: 500,
            chunk: 7,
            zero_copy: false,
        },
        Reset {
            who: A,
            flow: 0,
            code: Code::Small(7),
        },
        Reset {
            who: A,
            flow: 1,
            code: Code::Any(u64::MAX),
        },
    ];
    reset.extend(exchange());
    reset.extend(exchange());
    pair("reset", (0, 2), (0, 0), reset);

    let mut stop = vec![
        Open {
            who: A,
            side_channel: false,
        },
        Write {
            who: A,
            flow: 0,
            len: 2000,
            chunk: false,
        },
        all(A),
        Stop {
            who: B,
            flow: 0,
            code: Code::Small(9),
        },
        all(B),
        Write {
            who: A,
            flow: 0,
            len: 10,
            chunk: false,
        },
        Stop {
            who: A,
            flow: 0,
            code: Code::Any(1 << 63),
        },
    ];
    stop.extend(exchange());
    pair("stop", (1, 0), (1, 1), stop);

    // GOAWAY while B has a flow, and one of A's opens is in flight.
    let mut goaway = vec![
        Open {
            who: A,
            side_channel: false,
        },
        Write {
            who: A,
            flow: 0,
            len: 100,
            chunk: false,
        },
        all(A),
        GoAway {
            who: B,
            code: Code::Small(2),
        },
        Open {
            who: A,
            side_channel: false,
        },
        Write {
            who: A,
            flow: 1,
            len: 100,
            chunk: false,
        },
    ];
    goaway.extend(exchange());
    goaway.push(Finish { who: A, flow: 0 });
    goaway.push(Finish { who: B, flow: 0 });
    goaway.extend(exchange());
    goaway.extend(exchange());
    pair("goaway-drain", (0, 0), (2, 2), goaway);

    let mut close = vec![
        Open {
            who: B,
            side_channel: false,
        },
        Write {
            who: B,
            flow: 0,
            len: 300,
            chunk: false,
        },
        Close {
            who: B,
            code: Code::Small(4),
            reason: 90,
        },
    ];
    close.extend(exchange());
    pair("close", (0, 0), (0, 0), close);

    pair(
        "transport-closed",
        (0, 0),
        (0, 0),
        vec![
            Open {
                who: A,
                side_channel: false,
            },
            all(A),
            TransportClosed { who: B },
            Write {
                who: B,
                flow: 0,
                len: 10,
                chunk: false,
            },
            all(A),
        ],
    );

    pair(
        "timers",
        (0, 0),
        (0, 0),
        vec![
            Open {
                who: A,
                side_channel: false,
            },
            Advance { step: 9 },
            all(A),
            all(B),
            ToDeadline { who: A },
            all(A),
            all(B),
            Advance { step: 10 },
            ToDeadline { who: B },
        ],
    );

    pair(
        "idle-side-channel",
        (2, 2),
        (0, 0),
        vec![
            Open {
                who: B,
                side_channel: true,
            },
            Write {
                who: B,
                flow: 0,
                len: 50,
                chunk: false,
            },
            all(B),
            Advance { step: 8 },
            all(A),
            Advance { step: 8 },
            ToDeadline { who: A },
        ],
    );

    let mut limit = Vec::new();
    for _ in 0..70 {
        limit.push(Open {
            who: A,
            side_channel: false,
        });
    }
    limit.push(all(A));
    for i in 0..10 {
        limit.push(Finish { who: A, flow: i });
        limit.push(Finish { who: B, flow: i });
    }
    limit.extend(exchange());
    limit.extend(exchange());
    limit.push(Open {
        who: A,
        side_channel: false,
    });
    limit.extend(exchange());
    pair("flow-limit", (0, 0), (0, 0), limit);

    // Byte-sized frames and tiny transmits.
    let mut tiny = vec![
        Open {
            who: A,
            side_channel: false,
        },
        Write {
            who: A,
            flow: 0,
            len: 40,
            chunk: false,
        },
        Finish { who: A, flow: 0 },
        Deliver {
            from: A,
            max: 100,
            chunk: 1,
            zero_copy: false,
        },
    ];
    tiny.extend(exchange());
    pair("tiny-frames", (3, 3), (0, 2), tiny);

    // One write_chunk, sent before anything else is queued.
    let mut chunk = vec![
        Open {
            who: A,
            side_channel: false,
        },
        Write {
            who: A,
            flow: 0,
            len: 9000,
            chunk: true,
        },
        all(A),
        ReadChunk {
            who: B,
            flow: 0,
            max: 5000,
        },
        Finish { who: A, flow: 0 },
    ];
    chunk.extend(exchange());
    pair("write-chunk", (1, 0), (2, 2), chunk);

    // Both sides open at once, interleaved deliveries in odd chunks.
    let mut both = Vec::new();
    for w in [A, B, A, B] {
        both.push(Open {
            who: w,
            side_channel: false,
        });
        both.push(Write {
            who: w,
            flow: 0,
            len: 2500,
            chunk: false,
        });
    }
    for _ in 0..3 {
        both.push(Deliver {
            from: A,
            max: 1111,
            chunk: 333,
            zero_copy: true,
        });
        both.push(Deliver {
            from: B,
            max: 999,
            chunk: 100,
            zero_copy: false,
        });
        both.push(ReadAll { who: A });
        both.push(ReadAll { who: B });
    }
    for i in 0..4 {
        both.push(Finish { who: A, flow: i });
        both.push(Finish { who: B, flow: i });
    }
    both.extend(exchange());
    pair("both-directions", (1, 2), (1, 0), both);
}

fn main() {
    frame_seeds();
    input_seeds();
    pair_seeds();
    secure_seeds();
    sim_trace_seeds();
    admission_seeds();
    println!("seeds written under {}/corpus", env!("CARGO_MANIFEST_DIR"));
}

// ----------------------------------------------------------- secure seeds

/// What a dialer mux sends first and then with one flow carrying data:
/// plaintext for records.
fn mux_dialer_bytes() -> Vec<u8> {
    let now = Instant::ZERO;
    let mut conn = Connection::new(Config::default(), Side::Dialer, now).unwrap();
    let id = conn.open_flow().unwrap();
    conn.flow(id).write(b"hello through records").unwrap();
    conn.flow(id).finish().unwrap();
    let mut out = Vec::new();
    while conn.poll_transmit(&mut out).is_some() {}
    out
}

/// A record as the fuzz build's null cipher seals it: length, plaintext,
/// a zero tag.
fn null_record(plain: &[u8]) -> Vec<u8> {
    let mut r = ((plain.len() + 16) as u16).to_be_bytes().to_vec();
    r.extend_from_slice(plain);
    r.extend_from_slice(&[0; 16]);
    r
}

fn secure_seeds() {
    let t = "secure_responder";
    let mut msg1 = vec![0x00, 0, 32];
    msg1.extend_from_slice(&[9; 32]);
    write_seed(t, "msg1", &msg1);
    write_seed(t, "honest-empty", &[0x01]);
    write_seed(t, "strict-unblessed", &[0x03]);
    let mux = mux_dialer_bytes();
    let mut honest = vec![0x05 | 0x30];
    for part in mux.chunks(20) {
        honest.extend_from_slice(&null_record(part));
    }
    write_seed(t, "honest-records", &honest);
    let mut bad = vec![0x01];
    bad.extend_from_slice(&null_record(&mux));
    bad.extend_from_slice(&[0, 17, 1, 2, 3]);
    write_seed(t, "bad-record", &bad);

    let t = "secure_mux";
    for (name, flags, size) in [("whole", 0x0f, 255), ("bytes-rekey", 0x31, 7)] {
        let mut seed = vec![flags];
        for part in mux.chunks(size) {
            seed.push(part.len() as u8);
            seed.extend_from_slice(part);
        }
        write_seed(t, name, &seed);
    }
}

// ----------------------------------------------------------- sim trace seeds

/// `sim_trace_replay`: an adapter-style recording (config note, reads that
/// carry their data) and crafted malformed traces. The simulator's own
/// traces beside them come from the `sim` example (see the README).
fn sim_trace_seeds() {
    use proto_core::mux::config_text;
    use proto_core::mux::sim_core::extra;
    use proto_core::mux::Event;
    use proto_core::sim::driver::{self, CallLog, Command};
    use proto_core::sim::trace::{tag, Trace};
    use proto_core::sim::{CoreEvent, Role};

    const T: &str = "sim_trace_replay";
    for (name, profile) in [
        ("adapter-reads", proto_core::mux::Profile::Native),
        ("adapter-reads-yamux", proto_core::mux::Profile::Yamux),
    ] {
        let mut cfg = Config::default();
        cfg.profile = profile;
        cfg.send_chunk = 1000;
        let now = Instant::from_nanos(5_000);
        let mut t = Trace::new(true);
        t.record(
            tag::NOTE,
            now.as_nanos(),
            &[driver::ADAPTER_CONFIG_NOTE],
            config_text::encode_mux_config(&cfg).as_bytes(),
        );
        let rec = CallLog { id: 0 };
        rec.created(&mut t, now, 0, Role::Acceptor);
        let mut acc = Connection::new(cfg.clone(), Side::Acceptor, now).unwrap();
        let mut dial = Connection::new(cfg, Side::Dialer, now).unwrap();
        let f = dial.open_flow().unwrap();
        dial.flow(f).write(&[0x5a; 3000]).unwrap();
        dial.flow(f).finish().unwrap();
        let mut wire = Vec::new();
        while dial.poll_transmit(&mut wire).is_some() {}
        rec.input(&mut t, now, &wire);
        acc.handle_input(now, &wire).unwrap();
        let drain = |acc: &mut Connection, t: &mut Trace| {
            let mut opened = None;
            loop {
                let mut out = Vec::new();
                if acc.poll_transmit(&mut out).is_some() {
                    rec.transmit(t, now, &out);
                    continue;
                }
                let Some(ev) = acc.poll_event() else {
                    return opened;
                };
                if let Event::FlowOpened { id, .. } = ev {
                    opened = Some(id);
                }
                rec.event(t, now, CoreEvent::from(&ev));
            }
        };
        let id = drain(&mut acc, &mut t).unwrap();
        loop {
            let mut buf = [0u8; 700];
            let n = acc.flow(id).read(&mut buf).unwrap();
            let c = Command::Extra {
                op: extra::READ,
                stream: id.0,
                arg: n.max(1) as u64,
                data: &buf[..n],
            };
            rec.command(&mut t, now, &c, &Ok((n as u64, None)), b"");
            drain(&mut acc, &mut t);
            if n == 0 {
                break;
            }
        }
        let c = Command::Extra {
            op: extra::CLOSE,
            stream: 0,
            arg: 7,
            data: b"bye",
        };
        acc.close(7, b"bye");
        rec.command(&mut t, now, &c, &Ok((0, None)), b"");
        drain(&mut acc, &mut t);
        rec.transport_closed(&mut t, now);
        acc.handle_transport_closed(now);
        drain(&mut acc, &mut t);
        write_seed(T, name, &t.into_bytes().unwrap());
    }

    let crafted: &[(&str, &[(u8, &[u64], &[u8])])] = &[
        (
            "core-id-above-32-bits",
            &[
                (tag::CORE_NEW, &[1 << 32, 0, 0], b""),
                (tag::CORE_TIMEOUT, &[1 << 32], b""),
            ],
        ),
        (
            "record-before-creation",
            &[
                (tag::CORE_TIMEOUT, &[0], b""),
                (tag::CORE_NEW, &[0, 0, 0], b""),
            ],
        ),
        (
            "created-twice",
            &[
                (tag::CORE_NEW, &[0, 0, 0], b""),
                (tag::CORE_NEW, &[0, 0, 1], b""),
            ],
        ),
        (
            "unknown-command-and-role",
            &[
                (tag::CORE_NEW, &[0, 0, 2], b""),
                (tag::CORE_NEW, &[1, 0, 1], b""),
                (tag::CORE_COMMAND, &[1, 99, 0, 0], b""),
                (tag::CORE_RESULT, &[1, 0, 0], b""),
            ],
        ),
        (
            "huge-read-count-without-result",
            &[
                (tag::CORE_NEW, &[0, 0, 0], b""),
                (tag::CORE_COMMAND, &[0, 8, 1, u64::MAX, 6], b""),
                (tag::CORE_COMMAND, &[0, 5, 1, u64::MAX], b""),
                (tag::CORE_RESULT, &[0, 4, 0], b""),
                (tag::CORE_EVENT, &[0, 1, 1], b""),
            ],
        ),
        (
            "bad-config-note",
            &[
                (
                    tag::NOTE,
                    &[3],
                    b"mux config v1: max_transmit=18446744073709551615 send_chunk=0",
                ),
                (tag::CORE_NEW, &[0, 0, 1], b""),
                (tag::CORE_INPUT, &[0], b"garbage"),
            ],
        ),
    ];
    for (name, recs) in crafted {
        let mut t = Trace::new(true);
        for (i, (tg, f, p)) in recs.iter().enumerate() {
            t.record(*tg, i as u64 * 1_000_000, f, p);
        }
        write_seed(T, name, &t.into_bytes().unwrap());
    }
}

// -------------------------------------------------------- admission seeds

/// Config bytes then `[kind, arg]` ops, as `fuzz_targets/admission.rs`
/// reads them (kind % 7: 0-1 offer, 2 finished, 3 cancel, 4 forward,
/// 5 back, 6 timeout).
fn admission_seeds() {
    let refuse = [4u8, 2, 5, 3, 3, 64, 0, 8];
    let queue = [4u8, 2, 5, 3, 3, 64, 0b0000_1001, 4 * 4 + 3];
    let mut flood = Vec::new();
    for i in 0..24u8 {
        flood.extend([0, i % 2]);
    }
    flood.extend([0, 5, 2, 0, 2, 0, 6, 0, 4, 40, 6, 1, 0, 1]);
    for (name, head) in [("refuse", refuse), ("queue", queue)] {
        let mut input = head.to_vec();
        input.extend(&flood);
        write_seed("admission", &format!("flood-{name}"), &input);
    }
    // Many sources, IPv6 hosts in one /64, v4-mapped twins, time going back.
    let mut mixed = queue.to_vec();
    for arg in [0x80u8, 0x81, 0x82, 0xc1, 1, 2, 3, 4, 5, 6, 7] {
        mixed.extend([1, arg]);
    }
    mixed.extend([5, 200, 3, 1, 6, 0, 4, 255, 6, 0, 2, 0, 2, 1]);
    write_seed("admission", "sources", &mixed);
}
