//! The webwire codec (`proto_core::session::Message`) on arbitrary frames.
//!
//! Input: the whole frame. Checks: decoding never panics; a frame that
//! decodes encodes back to exactly the same bytes (`encoded_len` agrees),
//! and decoding that encoding gives the same message; every error
//! displays.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use proto_core::session::Message;

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
});
