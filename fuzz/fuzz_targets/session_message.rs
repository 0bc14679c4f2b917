//! The webwire codec (`proto_core::session::Message`) on arbitrary frames.
//!
//! Input: the whole frame. Checks: decoding never panics; a frame that
//! decodes encodes back to exactly the same bytes (`encoded_len` agrees),
//! and decoding that encoding gives the same message; every error
//! displays. The same bytes as a byte stream into
//! `Framed<ServerConnection>` (u32 length prefixes, 1 KiB limit), cut in
//! chunks of 1..=8 bytes by the first byte: no panic, never more than one
//! frame held, nothing accepted after a rejection.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use proto_core::session::{Framed, Message, ServerConfig, ServerConnection};
use proto_core::time::Instant;
use proto_core::wire::Machine;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    match Message::decode(frame) {
        Ok(msg) => {
            let mut out = Vec::new();
            msg.encode(&mut out).expect("a decoded message encodes");
            assert_eq!(out.len(), msg.encoded_len());
            assert_eq!(out, data, "the encoding is the frame");
            let again = Message::decode(Bytes::from(out)).expect("its encoding decodes");
            assert_eq!(again, msg);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    let mut framed = Framed::new(ServerConnection::new(
        Instant::ZERO,
        ServerConfig {
            max_message_size: 1024,
            ..ServerConfig::default()
        },
    ));
    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0) % 8);
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        let rejected = framed
            .handle_input(Instant::ZERO, Bytes::copy_from_slice(piece))
            .is_err();
        assert!(framed.buffered() <= 4 + 1024);
        while framed.poll_transmit(&mut out).is_some() {}
        while framed.inner_mut().poll_event().is_some() {}
        if rejected {
            assert!(framed.is_closed());
            assert!(framed
                .handle_input(Instant::ZERO, Bytes::from_static(b"x"))
                .is_err());
            break;
        }
    }
});
