//! The rendezvous messages: a fixed-size hello each way, then "chosen"
//! from the decider on the one link kept.
//!
//! ```text
//! hello:  "WRDV" (4) | version u8 (1) | tie-break u64 big-endian (8)
//! chosen: "WRDC" (4)
//! ```

use super::error::RendezvousError;

/// The hello's first bytes.
pub const HELLO_MAGIC: [u8; 4] = *b"WRDV";
/// The protocol version this side speaks.
pub const VERSION: u8 = 1;
/// A hello's length.
pub const HELLO_LEN: usize = 13;
/// The "chosen" message.
pub const CHOSEN: [u8; 4] = *b"WRDC";

/// The hello carrying `tie_break`.
pub fn encode_hello(tie_break: u64) -> [u8; HELLO_LEN] {
    let mut b = [0u8; HELLO_LEN];
    b[..4].copy_from_slice(&HELLO_MAGIC);
    b[4] = VERSION;
    b[5..].copy_from_slice(&tie_break.to_be_bytes());
    b
}

/// Checks a hello's first `partial.len()` bytes, so garbage fails early.
pub(super) fn check_hello_prefix(partial: &[u8]) -> Result<(), RendezvousError> {
    let n = partial.len().min(4);
    if partial[..n] != HELLO_MAGIC[..n] {
        return Err(RendezvousError::BadMagic);
    }
    match partial.get(4) {
        Some(&v) if v != VERSION => Err(RendezvousError::UnsupportedVersion(v)),
        _ => Ok(()),
    }
}

/// The tie-break value of a whole, checked hello.
pub(super) fn decode_hello(b: &[u8; HELLO_LEN]) -> Result<u64, RendezvousError> {
    check_hello_prefix(b)?;
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[5..]);
    Ok(u64::from_be_bytes(v))
}
