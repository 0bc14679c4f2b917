//! Raw bytes into `proto_core::mux::yamux::Header::decode`.
//!
//! Checked for every input:
//! - never panics; below 12 bytes the answer is `Incomplete`, from 12 on it
//!   depends on those 12 bytes only (trailing bytes change nothing);
//! - a decoded header re-encodes to exactly the 12 bytes it came from
//!   (byte-exact: the format has a single encoding, unknown flags kept);
//! - `Invalid` exactly when the version is not 0 or the type is above 3;
//! - streaming: decoding header after header, skipping Data bodies as the
//!   connection does, terminates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::mux::yamux::{Header, Type, HEADER_LEN};
use proto_core::wire::DecodeError;

fuzz_target!(|data: &[u8]| {
    let r = Header::decode(data);
    if data.len() < HEADER_LEN {
        assert_eq!(r, Err(DecodeError::Incomplete));
    } else {
        assert_eq!(
            Header::decode(&data[..HEADER_LEN]),
            r,
            "trailing bytes matter"
        );
        let valid = data[0] == 0 && data[1] <= 3;
        match r {
            Ok(h) => {
                assert!(valid);
                assert_eq!(
                    &h.encode()[..],
                    &data[..HEADER_LEN],
                    "encode(decode(x)) != x"
                );
                assert_eq!(Header::decode(&h.encode()), Ok(h), "decode(encode(h)) != h");
            }
            Err(DecodeError::Invalid(_)) => assert!(!valid),
            Err(e) => panic!("{e:?} on a full header"),
        }
    }
    let mut pos = 0usize;
    while let Ok(h) = Header::decode(&data[pos.min(data.len())..]) {
        pos += HEADER_LEN;
        if h.ty == Type::Data {
            pos = pos.saturating_add(h.length as usize);
        }
    }
});
