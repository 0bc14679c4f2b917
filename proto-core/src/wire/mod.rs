//! Wire primitives shared by every layer: the machine contract
//! ([`Machine`]), the transmit buffers it writes into ([`TransmitBuf`],
//! [`IoChunks`]), QUIC-style varints and a bounded reader over a byte slice.

mod copy;
mod machine;
mod reader;
mod transmit;
mod varint;

pub use copy::{copy_in_pieces, extend_in_pieces, COPY_PIECE};
pub use machine::{Machine, Rejected};
pub use reader::Reader;
pub use transmit::{IoChunks, TransmitBuf};
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
