//! Both built-in `proto_core::taps` framers, alone and inside a
//! `taps::connection::Connection`, on arbitrary bytes in arbitrary
//! chunkings, and a round-trip model.
//!
//! Input: 4 bytes of setup, then a body read two ways.
//! - setup[0]: the framer (length prefix of 1, 2 or 4 bytes, or a one- or
//!   two-byte delimiter); setup[1]: its largest message (1..=1024);
//!   setup[2]: the connection's receive buffer (128..=4208 bytes);
//!   setup[3]: a seed for chunk sizes and receive request sizes.
//! - Raw: the body as received bytes. The framer alone must keep its step
//!   contract (asks only for more than is unread, skips and delivers only
//!   what is unread, progresses); in a connection fed mostly as
//!   `wants_input` says, nothing panics, held bytes stay within the
//!   documented bound, parts of a message come in order and no message is
//!   longer than the framer's limit.
//! - Round trip: the body as messages (`[len, prio, bytes...]`), sent on one
//!   connection and received on another through arbitrary chunking: the
//!   receiver gets exactly the messages the framer took, in priority
//!   order (FIFO within one), and both ends close cleanly.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use proto_core::taps::connection::{Config, Connection, Event, MESSAGE_OVERHEAD};
use proto_core::taps::framer::{Delimiter, Framer, LengthPrefix, ParseStep, PrefixWidth};
use proto_core::taps::message::{MessageProperties, MessageRef};
use proto_core::time::Instant;
use proto_core::wire::Machine;

/// A splitmix stream from the setup seed: chunk sizes, request sizes.
struct Knobs(u64);

impl Knobs {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % below.max(1)
    }
}

fn framer(kind: u8, max: usize) -> Box<dyn Framer> {
    match kind % 5 {
        0 => Box::new(LengthPrefix::new(PrefixWidth::U8, max)),
        1 => Box::new(LengthPrefix::new(PrefixWidth::U16, max)),
        2 => Box::new(LengthPrefix::new(PrefixWidth::U32, max)),
        3 => Box::new(Delimiter::new(Bytes::from_static(b"\n"), max).unwrap()),
        _ => Box::new(Delimiter::new(Bytes::from_static(b"\r\n"), max).unwrap()),
    }
}

/// The framer alone: every step within the contract, messages bounded.
fn framer_alone(f: &mut dyn Framer, body: &[u8], max: usize, k: &mut Knobs) {
    let mut unread: Vec<u8> = Vec::new();
    let mut msg_len = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        let n = (1 + k.next(64) as usize).min(rest.len());
        unread.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        // Each step consumes a byte, ends a message or waits: bounded.
        for _ in 0..=2 * unread.len() + 2 {
            match f.parse(&unread) {
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    return;
                }
                Ok(ParseStep::ParseInput { min_bytes }) => {
                    assert!(min_bytes > unread.len(), "asked for what is there");
                    break;
                }
                Ok(ParseStep::AdvanceReceiveCursor(n)) => {
                    assert!(n >= 1 && n <= unread.len());
                    unread.drain(..n);
                }
                Ok(ParseStep::DeliverAndAdvanceReceiveCursor {
                    len,
                    end_of_message,
                }) => {
                    assert!(len <= unread.len());
                    assert!(len > 0 || end_of_message, "no progress");
                    unread.drain(..len);
                    msg_len += len;
                    assert!(msg_len <= max, "message over the framer's limit");
                    if end_of_message {
                        msg_len = 0;
                    }
                }
                Ok(_) => unreachable!("a step this target does not know"),
            }
        }
    }
}

fn config(buffer: usize) -> Config {
    Config {
        max_buffered_receive_bytes: buffer,
        input_slack: 1024,
        max_receive_requests: 8,
        max_transmit_chunk: 97,
        ..Config::default()
    }
}

/// Raw bytes into a connection.
fn connection_raw(kind: u8, max: usize, buffer: usize, body: &[u8], k: &mut Knobs) {
    let t = Instant::ZERO;
    let mut c = Connection::new(config(buffer), framer(kind, max), t).unwrap();
    let mut rest = body;
    let mut offset = 0u64;
    let mut outstanding = 0usize;
    loop {
        while outstanding < 8
            && c.receive(1 + k.next(300) as usize, 1 + k.next(600) as usize)
                .is_ok()
        {
            outstanding += 1;
        }
        while let Some(ev) = c.poll_event() {
            match ev {
                Event::Received { data, context } | Event::ReceivedPartial { data, context } => {
                    outstanding -= 1;
                    assert_eq!(context.offset, offset);
                    assert_eq!(context.len, data.len());
                    offset = if context.end_of_message {
                        0
                    } else {
                        offset + data.len() as u64
                    };
                    assert!(offset as usize <= max);
                }
                Event::ConnectionError(why) => assert!(!why.to_string().is_empty()),
                _ => {}
            }
        }
        // The documented bound (this driver may ignore `wants_input`).
        assert!(c.buffered_receive_bytes() <= 2 * buffer + 1024 + MESSAGE_OVERHEAD);
        if rest.is_empty() || c.is_closed() {
            break;
        }
        // Mostly a driver that honours `wants_input`, sometimes one that
        // does not (the connection must then fail, not grow).
        if c.wants_input() || k.next(8) == 0 {
            let n = (1 + k.next(200) as usize).min(rest.len());
            let _ = c.handle_input(t, Bytes::copy_from_slice(&rest[..n]));
            rest = &rest[n..];
        } else if outstanding == 8 {
            // Every request answered nothing and input is paused: only a
            // misbehaving feed moves on.
            let _ = c.handle_input(t, Bytes::copy_from_slice(&rest[..1]));
            rest = &rest[1..];
        }
    }
    c.handle_transport_closed(t);
    while c.poll_event().is_some() {}
}

/// Messages from the body: `[len, prio, len bytes...]`.
fn messages(body: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let [len, prio, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        out.push((u32::from(prio % 4), tail[..n].to_vec()));
        rest = &tail[n..];
        if out.len() == 64 {
            break;
        }
    }
    out
}

fn round_trip(kind: u8, max: usize, buffer: usize, body: &[u8], k: &mut Knobs) {
    let t = Instant::ZERO;
    let mut a = Connection::new(config(buffer), framer(kind, max), t).unwrap();
    let mut b = Connection::new(config(buffer), framer(kind, max), t).unwrap();
    let mut taken = Vec::new();
    for (i, (prio, m)) in messages(body).into_iter().enumerate() {
        let props = MessageProperties {
            priority: prio,
            ..MessageProperties::default()
        };
        // Refusals (too long, holds the delimiter) are that send's alone.
        if a.send(t, MessageRef(i as u64), Bytes::from(m.clone()), props)
            .is_ok()
        {
            taken.push((prio, i, m));
        }
    }
    taken.sort_by_key(|&(p, i, _)| (p, i));
    a.close(t);
    let mut wire = Vec::new();
    while a.poll_transmit(&mut wire).is_some() {}
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut cur = Vec::new();
    let mut rest = &wire[..];
    let mut outstanding = 0;
    let mut ended = false;
    for _ in 0..wire.len() * 4 + 1024 {
        while outstanding < 8
            && b.receive(1 + k.next(300) as usize, 1 + k.next(600) as usize)
                .is_ok()
        {
            outstanding += 1;
        }
        while let Some(ev) = b.poll_event() {
            match ev {
                Event::Received { data, context } | Event::ReceivedPartial { data, context } => {
                    outstanding -= 1;
                    cur.extend_from_slice(&data);
                    if context.end_of_message {
                        got.push(std::mem::take(&mut cur));
                    }
                }
                Event::Closed => ended = true,
                Event::Ready => {}
                other => panic!("round trip: {other:?}"),
            }
        }
        if ended {
            break;
        }
        if b.wants_input() && !rest.is_empty() {
            let n = (1 + k.next(300) as usize).min(rest.len());
            b.handle_input(t, Bytes::copy_from_slice(&rest[..n]))
                .unwrap();
            rest = &rest[n..];
        } else if rest.is_empty() {
            b.handle_transport_closed(t);
        }
    }
    assert!(ended, "the receiver never closed");
    let want: Vec<Vec<u8>> = taken.into_iter().map(|(_, _, m)| m).collect();
    assert_eq!(got, want);
    let sent: usize = std::iter::from_fn(|| a.poll_event())
        .filter(|e| matches!(e, Event::Sent(_)))
        .count();
    assert_eq!(sent, want.len());
    assert!(a.is_closed());
}

fuzz_target!(|data: &[u8]| {
    let Some((setup, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let body = &body[..body.len().min(16 * 1024)];
    let max = 1 + usize::from(setup[1]) * 4;
    let buffer = 128 + usize::from(setup[2]) * 16;
    let mut k = Knobs(u64::from(setup[3]));
    framer_alone(framer(setup[0], max).as_mut(), body, max, &mut k);
    connection_raw(setup[0], max, buffer, body, &mut k);
    round_trip(setup[0], max, buffer, body, &mut k);
});
