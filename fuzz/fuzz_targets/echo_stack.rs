//! Hostile-peer input into the composed stacks a byte-stream layer runs in:
//! the echo machine directly, on one flow of a mux (`mux::OnFlow`), and
//! behind the secure layer (`Secured<OnFlow<Echo>>`, handshake first).
//!
//! Input layout (every byte string is a valid input):
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | bits0-1 stack: 0 echo, 1 echo on a flow, 2 echo on a flow behind `Secured`, 3 like 1 with a native preface prepended; bit2 drain output after every chunk (else never: a peer that does not read); bits3-4 max message 0/7/64/4096 |
//! | 1 | chunk size (1..=256) |
//! | 2.. | the peer's bytes (repeated 1/8/64 times by bits 5-6 of byte 0) |
//!
//! Checked: no panic; drains terminate; after the machine refused input it
//! is closed; the echo server's output is a sequence of whole messages no
//! longer than its maximum; its backlog stays bounded (it stops taking
//! input instead of buffering without limit); a message over the maximum
//! is an error, never an echo.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use proto_core::mux::{self, frame::PREFACE, OnFlow, Side};
use proto_core::secure::{
    AllowAny, Config as SecureConfig, Handshake, Identity, Params, Secured, Seed, TrustedRoots,
};
use proto_core::sim::echo::{Echo, EchoRole};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use std::sync::Arc;

const MAX_POLLS: usize = 100_000;

fn conn() -> mux::Connection {
    mux::Connection::new(mux::Config::default(), Side::Acceptor, Instant::ZERO).unwrap()
}

fn responder() -> Handshake {
    let params = Params {
        identity: Identity::from_secret([9; 32]),
        roots: TrustedRoots::new(),
        authorizer: Arc::new(AllowAny),
        wall_clock_secs: 0,
        backend: &proto_core::secure::crypto::InsecureNullCipher,
        local_address: String::new(),
        remote_address: String::new(),
    };
    Handshake::responder(
        SecureConfig::default(),
        params,
        Seed::new([3; 32]),
        Instant::ZERO,
    )
    .unwrap()
}

/// Checks the bytes an echo server sent directly on the wire: whole
/// messages within the maximum.
fn check_echo_wire(wire: &[u8], max: usize) {
    let mut rest = wire;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        assert!(len <= max, "echoed a message of {len} > {max}");
        assert!(
            rest.len() >= 4 + len,
            "a partial message at the end of output"
        );
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty(), "a partial length prefix in output");
}

fn run<M: Machine>(
    mut m: M,
    input: &[u8],
    chunk: usize,
    drain: bool,
    direct: Option<usize>,
    check: impl Fn(&M),
) -> M {
    let mut now = Instant::ZERO;
    let mut out = Vec::new();
    let mut refused = false;
    for piece in input.chunks(chunk) {
        now += Duration::from_millis(1);
        if m.wants_input() || refused {
            if m.handle_input(now, Bytes::copy_from_slice(piece)).is_err() {
                refused = true;
            }
        }
        check(&m);
        if refused && direct.is_some() {
            assert!(m.is_closed() || m.wants_transmit(), "refused but open");
        }
        if drain {
            let mut polls = 0;
            while m.poll_transmit(&mut out).is_some() {
                polls += 1;
                assert!(polls < MAX_POLLS, "poll_transmit does not end");
            }
        }
        if m.poll_timeout().is_some_and(|d| d <= now) {
            m.handle_timeout(now);
        }
    }
    m.handle_transport_closed(now);
    let mut polls = 0;
    while m.poll_transmit(&mut out).is_some() {
        polls += 1;
        assert!(polls < MAX_POLLS, "poll_transmit does not end");
    }
    if let Some(max) = direct {
        check_echo_wire(&out, max);
    }
    m
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let flags = data[0];
    let chunk = usize::from(data[1]) + 1;
    let drain = flags & 4 != 0;
    let max = [0usize, 7, 64, 4096][usize::from((flags >> 3) & 3)];
    let repeat = [1usize, 8, 64, 1][usize::from((flags >> 5) & 3)];
    let mut body = Vec::with_capacity(data.len() * repeat);
    if flags & 3 == 3 {
        body.extend_from_slice(PREFACE);
    }
    for _ in 0..repeat {
        body.extend_from_slice(&data[2..]);
    }
    let server = Echo::new(EchoRole::Server, max);
    let backlog = server.max_backlog();
    match flags & 3 {
        0 => {
            // Input is only given while the machine wants it, as the driver
            // does: the backlog then never passes the limit by more than one
            // input's worth of echoes (plus one message completed by it).
            let bound = backlog + chunk + 4 + max;
            run(server, &body, chunk, drain, Some(max), |m: &Echo| {
                assert!(m.backlog() <= bound, "backlog {} > {bound}", m.backlog());
            });
        }
        1 | 3 => {
            // The flow's credit bounds what the mux buffers; the echo's
            // backlog is bounded as above (it is fed only while it wants).
            let bound = backlog + 64 * 1024 + 4 + max;
            run(
                OnFlow::new(conn(), server).unwrap(),
                &body,
                chunk,
                drain,
                None,
                |m: &OnFlow<Echo>| {
                    assert!(
                        m.inner().backlog() <= bound,
                        "backlog {} > {bound}",
                        m.inner().backlog()
                    );
                },
            );
        }
        _ => {
            let m = run(
                Secured::new(responder(), OnFlow::new(conn(), server).unwrap()),
                &body,
                chunk,
                drain,
                None,
                |_| {},
            );
            // Forged handshakes rarely pass; one that failed sends nothing more.
            if m.handshake_error().is_some() {
                assert!(m.is_closed());
            }
        }
    }
});
