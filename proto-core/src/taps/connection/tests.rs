use super::*;
use crate::taps::framer::{Delimiter, LengthPrefix};
use alloc::string::ToString;
use alloc::vec::Vec;

fn conn(cfg: Config) -> Connection {
    Connection::new(cfg, Box::new(LengthPrefix::default()), Instant::ZERO).unwrap()
}

fn events(c: &mut Connection) -> Vec<Event> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

fn drain(c: &mut Connection) -> Vec<u8> {
    let mut w = Vec::new();
    while c.poll_transmit(&mut w).is_some() {}
    w
}

#[test]
fn ready_comes_first() {
    let mut c = conn(Config::default());
    assert_eq!(events(&mut c), [Event::Ready]);
}

#[test]
fn a_zero_limit_is_refused() {
    let cfg = Config {
        max_transmit_chunk: 0,
        ..Config::default()
    };
    let e = Connection::new(cfg, Box::new(Delimiter::default()), Instant::ZERO).unwrap_err();
    assert_eq!(
        e.to_string(),
        "taps connection config: max_transmit_chunk must be at least 1"
    );
}

#[test]
fn transmit_is_cut_at_the_chunk_limit() {
    let mut c = conn(Config {
        max_transmit_chunk: 3,
        ..Config::default()
    });
    let t = Instant::ZERO;
    c.send(
        t,
        MessageRef(1),
        Bytes::from_static(b"abcdef"),
        MessageProperties::default(),
    )
    .unwrap();
    let mut w = Vec::new();
    let mut calls = Vec::new();
    while let Some(n) = c.poll_transmit(&mut w) {
        calls.push(n);
    }
    assert_eq!(calls, [3, 3, 3, 1]);
    assert_eq!(w, b"\0\0\0\x06abcdef");
    assert_eq!(events(&mut c), [Event::Ready, Event::Sent(MessageRef(1))]);
    assert_eq!(c.queued_send_bytes(), 0);
}

#[test]
fn the_final_message_goes_last_and_bars_later_sends() {
    let mut c = conn(Config::default());
    let t = Instant::ZERO;
    let p = |priority, is_final| MessageProperties {
        priority,
        is_final,
        ..MessageProperties::default()
    };
    c.send(t, MessageRef(1), Bytes::from_static(b"a"), p(500, false))
        .unwrap();
    c.send(t, MessageRef(2), Bytes::from_static(b"b"), p(0, true))
        .unwrap();
    assert_eq!(
        c.send(t, MessageRef(3), Bytes::from_static(b"c"), p(0, false)),
        Err(SendError::AfterFinal)
    );
    drain(&mut c);
    assert!(c.final_sent());
    assert_eq!(
        events(&mut c),
        [
            Event::Ready,
            Event::Sent(MessageRef(1)),
            Event::Sent(MessageRef(2))
        ]
    );
}

#[test]
fn a_misbehaving_framer_fails_the_connection_instead_of_hanging() {
    struct Stuck;
    impl Framer for Stuck {
        fn name(&self) -> &'static str {
            "stuck"
        }
        fn parse(
            &mut self,
            _: &[u8],
        ) -> Result<crate::taps::framer::ParseStep, crate::taps::framer::FramerError> {
            Ok(crate::taps::framer::ParseStep::AdvanceReceiveCursor(0))
        }
        fn frame(
            &mut self,
            m: Bytes,
        ) -> Result<crate::taps::framer::Framed, crate::taps::framer::FramerError> {
            Ok(crate::taps::framer::Framed {
                body: m,
                ..Default::default()
            })
        }
    }
    let mut c = Connection::new(Config::default(), Box::new(Stuck), Instant::ZERO).unwrap();
    assert_eq!(
        c.handle_input(Instant::ZERO, Bytes::from_static(b"x")),
        Err(Rejected)
    );
    let ev = events(&mut c);
    let Some(Event::ConnectionError(ConnectionFailure::Framer(e))) = ev.last() else {
        panic!("{ev:?}")
    };
    assert_eq!(
        e.to_string(),
        "framer stuck: advanced by 0 bytes with 1 unread"
    );
    assert!(c.is_closed());
}

#[test]
fn poll_transmit_does_not_start_a_message_past_its_lifetime() {
    let mut c = conn(Config::default());
    let life = crate::time::Duration::from_millis(5);
    let props = MessageProperties {
        lifetime: Some(life),
        ..MessageProperties::default()
    };
    c.send(
        Instant::ZERO,
        MessageRef(1),
        Bytes::from_static(b"x"),
        props,
    )
    .unwrap();
    // A command at the deadline moves the connection's time without
    // expiring anything itself; the next transmit must not start it.
    c.soft_error(Instant::ZERO + life, "icmp");
    assert!(drain(&mut c).is_empty());
    assert_eq!(
        events(&mut c),
        [
            Event::Ready,
            Event::SoftError {
                reason: "icmp".into()
            },
            Event::Expired(MessageRef(1))
        ]
    );
}
