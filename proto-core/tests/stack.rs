//! The composed stack the adapters ship, driven in the core alone:
//! `Secured<Recorded<mux::Connection>>`, handshake first, then records,
//! with the recording replayed offline and a redacted recording checked.

mod secure_common;

use bytes::Bytes;
use proto_core::mux::{self, Event, FlowId, Side};
use proto_core::secure::*;
use proto_core::sim::driver::{cores_in, replay};
use proto_core::sim::trace::parse;
use proto_core::sim::{RecordOptions, Recorded, Role, TraceSink, REDACTED_NOTE};
use proto_core::time::{Duration, Instant};
use proto_core::wire::Machine;
use secure_common::*;
use std::sync::{Arc, Mutex};

/// A sink the test can read after the machine is gone.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl TraceSink for Shared {
    fn write(&mut self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

type Stack = Secured<Recorded<mux::Connection>>;

fn stack(f: &Fixture, side: Side, sink: Option<(Shared, bool)>) -> Stack {
    let any: Arc<dyn PeerAuthorizer> = Arc::new(AllowAny);
    let now = Instant::ZERO;
    let hs = match side {
        Side::Dialer => Handshake::initiator(
            Config::default(),
            f.params(f.identity(10, "alice"), any),
            Seed::new([1; 32]),
            now,
        ),
        Side::Acceptor => Handshake::responder(
            Config::default(),
            f.params(f.identity(11, "server"), any),
            Seed::new([2; 32]),
            now,
        ),
    }
    .unwrap();
    let conn = mux::Connection::new(mux::Config::default(), side, now).unwrap();
    let role = match side {
        Side::Dialer => Role::Dialer,
        Side::Acceptor => Role::Acceptor,
    };
    let rec = match sink {
        Some((s, payloads)) => {
            let mut o = RecordOptions::default();
            o.payloads = payloads;
            Recorded::new(conn, Box::new(s), role, now, o)
        }
        None => Recorded::off(conn),
    };
    Secured::new(hs, rec)
}

/// Moves bytes both ways until quiet; returns the flows `b` accepted.
fn exchange(a: &mut Stack, b: &mut Stack, now: Instant) -> Vec<FlowId> {
    let mut opened = Vec::new();
    for _ in 0..8 {
        let mut w = Vec::new();
        while a.poll_transmit(&mut w).is_some() {}
        if !w.is_empty() {
            let _ = b.handle_input(now, Bytes::from(w));
        }
        let mut w = Vec::new();
        while b.poll_transmit(&mut w).is_some() {}
        if !w.is_empty() {
            let _ = a.handle_input(now, Bytes::from(w));
        }
        while a.inner_mut().poll_event().is_some() {}
        while let Some(ev) = b.inner_mut().poll_event() {
            if let Event::FlowOpened { id, .. } = ev {
                opened.push(id);
            }
        }
    }
    opened
}

fn talk(a: &mut Stack, b: &mut Stack) -> Vec<u8> {
    let now = Instant::ZERO;
    // Commands before the handshake ends wait for the keys.
    let id = a.inner_mut().open_flow().unwrap();
    a.inner_mut().write(id, b"hello over the stack").unwrap();
    a.inner_mut().finish(id).unwrap();
    let opened = exchange(a, b, now);
    assert!(a.is_established() && b.is_established());
    assert_eq!(opened, [id]);
    let mut got = vec![0u8; 64];
    let n = b.inner_mut().read(id, &mut got).unwrap();
    got.truncate(n);
    assert_eq!(b.inner_mut().read(id, &mut [0u8; 8]), Ok(0)); // FIN
    let later = now + Duration::from_millis(5);
    a.handle_timeout(later);
    b.handle_timeout(later);
    exchange(a, b, later);
    got
}

#[test]
fn the_shipped_stack_runs_handshake_then_mux_and_its_recording_replays() {
    let f = Fixture::new();
    let (ra, rb) = (Shared::default(), Shared::default());
    let mut a = stack(&f, Side::Dialer, Some((ra.clone(), true)));
    let mut b = stack(&f, Side::Acceptor, Some((rb.clone(), true)));
    assert_eq!(talk(&mut a, &mut b), b"hello over the stack");
    for (sink, side) in [(ra, Side::Dialer), (rb, Side::Acceptor)] {
        let bytes = sink.0.lock().unwrap().clone();
        let records = parse(&bytes).unwrap();
        let cores = cores_in(&records);
        assert_eq!(cores.len(), 1);
        let rep = replay(&records, cores[0].0, |_, now| {
            mux::Connection::new(mux::Config::default(), side, now).unwrap()
        })
        .unwrap();
        assert_eq!(rep.mismatch, None, "{side:?}");
        assert!(rep.inputs > 3, "{rep:?}");
    }
}

#[test]
fn a_flipped_byte_in_a_recording_fails_its_replay() {
    let f = Fixture::new();
    let rb = Shared::default();
    let mut a = stack(&f, Side::Dialer, None);
    let mut b = stack(&f, Side::Acceptor, Some((rb.clone(), true)));
    talk(&mut a, &mut b);
    let mut bytes = rb.0.lock().unwrap().clone();
    let at = bytes
        .windows(5)
        .position(|w| w == b"hello")
        .expect("the plaintext is in the recording");
    bytes[at] ^= 1;
    let records = parse(&bytes).unwrap();
    let rep = replay(&records, 0, |_, now| {
        mux::Connection::new(mux::Config::default(), Side::Acceptor, now).unwrap()
    })
    .unwrap();
    assert!(rep.mismatch.is_some(), "{rep:?}");
}

#[test]
fn a_redacted_recording_keeps_sizes_not_payloads() {
    let f = Fixture::new();
    let rb = Shared::default();
    let mut a = stack(&f, Side::Dialer, None);
    let mut b = stack(&f, Side::Acceptor, Some((rb.clone(), false)));
    assert_eq!(talk(&mut a, &mut b), b"hello over the stack");
    let bytes = rb.0.lock().unwrap().clone();
    assert!(!bytes.windows(5).any(|w| w == b"hello"));
    let records = parse(&bytes).unwrap();
    assert_eq!(records[0].field(0), REDACTED_NOTE);
    assert!(records.len() > 5);
}

#[test]
fn the_carried_mux_measures_its_first_rtt_from_the_records_not_from_its_creation() {
    let f = Fixture::new();
    let mut a = stack(&f, Side::Dialer, None);
    let mut b = stack(&f, Side::Acceptor, None);
    // A slow handshake: five seconds pass before anything is delivered,
    // then every exchange takes a millisecond.
    let mut now = Instant::ZERO + Duration::from_secs(5);
    for _ in 0..8 {
        let mut w = Vec::new();
        while a.poll_transmit(&mut w).is_some() {}
        if !w.is_empty() {
            now += Duration::from_millis(1);
            let _ = b.handle_input(now, Bytes::from(w));
        }
        let mut w = Vec::new();
        while b.poll_transmit(&mut w).is_some() {}
        if !w.is_empty() {
            now += Duration::from_millis(1);
            let _ = a.handle_input(now, Bytes::from(w));
        }
    }
    assert!(a.is_established() && b.is_established());
    for s in [&a, &b] {
        let rtt = s
            .inner()
            .inner()
            .smoothed_rtt()
            .expect("the first PING was answered");
        assert!(rtt < Duration::from_millis(100), "{rtt:?}");
    }
}
