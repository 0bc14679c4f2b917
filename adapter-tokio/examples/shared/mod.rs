//! Helpers the examples share (a directory module, so cargo does not take
//! it for an example of its own). Each example uses part of it.
#![allow(dead_code)]

pub mod session_tour;
pub mod taps_tour;

/// `len` pseudo-random bytes from `seed` (xorshift), for checkable payloads.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}
