//! Wire primitives shared by every codec: QUIC-style varints and a bounded
//! reader over a byte slice.

mod reader;
mod varint;

pub use reader::Reader;
pub use varint::{put_varint, varint_len, VARINT_MAX};

use core::fmt;

/// Why a slice of bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes are needed; nothing was consumed.
    Incomplete,
    /// The bytes can never decode (bad value, bad length, unknown type).
    Invalid(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete => f.write_str("incomplete input"),
            DecodeError::Invalid(what) => write!(f, "invalid encoding: {what}"),
        }
    }
}

impl core::error::Error for DecodeError {}
