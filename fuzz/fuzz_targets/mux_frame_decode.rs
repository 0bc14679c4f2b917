//! Raw bytes into `proto_core::mux::frame::decode_head`.
//!
//! Checked for every input and several `max_reason` limits:
//! - never panics; the consumed length is within the input;
//! - a decoded head re-encodes (`encode_control` / `encode_data_header`) to
//!   bytes that decode to the same head, consuming exactly the encoding;
//!   the re-encoding is never longer than what was consumed (varints on the
//!   wire may be non-minimal, ours are minimal);
//! - decoding `data[..used]` gives the same result, and every strict prefix
//!   of a frame head is `Incomplete` (the connection's streaming decoder
//!   relies on that to stash partial heads);
//! - a larger `max_reason` never rejects what a smaller one accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::mux::frame::{
    data_header_len, decode_head, encode_control, encode_data_header, Head, MAX_DATA_HEADER,
};
use proto_core::wire::DecodeError;

const MAX_REASONS: [usize; 5] = [0, 1, 16, 1024, 65536];

fn check(data: &[u8], max_reason: usize) -> Result<(Head<'_>, usize), DecodeError> {
    let r = decode_head(data, max_reason);
    match &r {
        Ok((head, used)) => {
            let used = *used;
            assert!(
                used >= 1 && used <= data.len(),
                "used {used} of {}",
                data.len()
            );

            // The frame alone decodes the same.
            assert_eq!(decode_head(&data[..used], max_reason), r, "frame alone");

            // Every strict prefix is Incomplete (all of them for short heads,
            // a sample for long CLOSE reasons).
            let cuts: Vec<usize> = if used <= 64 {
                (0..used).collect()
            } else {
                vec![0, 1, 2, used / 2, used - 2, used - 1]
            };
            for cut in cuts {
                assert_eq!(
                    decode_head(&data[..cut], max_reason),
                    Err(DecodeError::Incomplete),
                    "prefix {cut} of a {used}-byte head"
                );
            }

            // Re-encode and decode again.
            let mut enc = Vec::new();
            match head {
                Head::Control(c) => encode_control(&mut enc, c),
                Head::Data(h) => {
                    encode_data_header(&mut enc, h);
                    assert_eq!(enc.len(), data_header_len(h.flow, h.len));
                    assert!(enc.len() <= MAX_DATA_HEADER);
                }
            }
            assert!(
                enc.len() <= used,
                "re-encoding ({}) longer than the input head ({used})",
                enc.len()
            );
            assert_eq!(
                decode_head(&enc, max_reason),
                Ok((head.clone(), enc.len())),
                "decode(encode(x)) != x"
            );
            // A trailing byte must not change the result.
            let n = enc.len();
            enc.push(0xff);
            assert_eq!(
                decode_head(&enc, max_reason),
                Ok((head.clone(), n)),
                "trailing byte changed the result"
            );
        }
        Err(DecodeError::Incomplete) => {
            // Incomplete input can only be a prefix of a valid head: the
            // longest are RESET_FLOW (type + 3 varints) and CLOSE (type + 2
            // varints + reason).
            let longest = (1 + 3 * 8).max(1 + 2 * 8 + max_reason);
            assert!(data.len() < longest, "Incomplete on {} bytes", data.len());
        }
        Err(DecodeError::Invalid(_)) => {}
        Err(_) => {}
    }
    r
}

fuzz_target!(|data: &[u8]| {
    let mut prev: Option<Result<(Head<'_>, usize), DecodeError>> = None;
    for max_reason in MAX_REASONS {
        let r = check(data, max_reason);
        if let Some(Ok(p)) = &prev {
            // Monotonic in max_reason.
            assert_eq!(r.as_ref(), Ok(p), "larger max_reason changed the result");
        }
        prev = Some(r);
    }
    // Streaming use: decode frame after frame until the input runs out,
    // skipping DATA payloads, as the connection does.
    let mut pos = 0;
    let mut frames = 0;
    while pos < data.len() && frames < 4096 {
        match decode_head(&data[pos..], 1024) {
            Ok((Head::Data(h), used)) => {
                pos += used;
                pos = pos.saturating_add(usize::try_from(h.len).unwrap_or(usize::MAX));
            }
            Ok((_, used)) => pos += used,
            Err(_) => break,
        }
        frames += 1;
    }
});
