//! The yamux v0 wire format (hashicorp's `spec.md`, as spoken by libp2p's
//! and hashicorp's implementations): every frame starts with a 12-byte
//! big-endian header.
//!
//! | bytes | field | values |
//! |---|---|---|
//! | 0 | version | 0 |
//! | 1 | type | Data 0, WindowUpdate 1, Ping 2, GoAway 3 |
//! | 2-3 | flags | SYN 1, ACK 2, FIN 4, RST 8 |
//! | 4-7 | stream id | 0 for Ping and GoAway; client odd, server even |
//! | 8-11 | length | Data: payload bytes that follow; WindowUpdate: window delta; Ping: opaque value; GoAway: code |
//!
//! Only Data frames have a body; it follows the header and is streamed by
//! the connection, never buffered whole.

use crate::wire::DecodeError;

/// Encoded size of every header.
pub const HEADER_LEN: usize = 12;

/// The only version defined.
pub const VERSION: u8 = 0;

/// The length field of the first 256 KiB window every stream starts with.
pub const INITIAL_WINDOW: u32 = 256 * 1024;

/// Frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// Stream data; `length` payload bytes follow.
    Data,
    /// Adds `length` to the stream's send window.
    WindowUpdate,
    /// Liveness and RTT: SYN asks, ACK answers with the same opaque value.
    Ping,
    /// No new streams; `length` is a [`GoAwayCode`] value.
    GoAway,
}

impl Type {
    fn to_wire(self) -> u8 {
        match self {
            Type::Data => 0,
            Type::WindowUpdate => 1,
            Type::Ping => 2,
            Type::GoAway => 3,
        }
    }
}

/// Header flag bits.
pub mod flags {
    /// Opens a stream (or asks for a ping reply).
    pub const SYN: u16 = 0x1;
    /// Acknowledges a stream open (or answers a ping).
    pub const ACK: u16 = 0x2;
    /// Half-closes the sender's direction.
    pub const FIN: u16 = 0x4;
    /// Aborts the stream in both directions.
    pub const RST: u16 = 0x8;
}

/// GoAway codes.
pub mod go_away {
    /// Normal termination.
    pub const NORMAL: u32 = 0;
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// The sender hit an internal error.
    pub const INTERNAL_ERROR: u32 = 2;
}

/// One decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Frame type.
    pub ty: Type,
    /// Flag bits, unknown ones kept as received.
    pub flags: u16,
    /// Stream id (0 = the session).
    pub stream: u32,
    /// Payload length, window delta, ping value or GoAway code by type.
    pub length: u32,
}

impl Header {
    /// Whether every bit of `f` is set.
    pub fn has(&self, f: u16) -> bool {
        self.flags & f == f
    }

    /// The header as it goes on the wire.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION;
        b[1] = self.ty.to_wire();
        b[2..4].copy_from_slice(&self.flags.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }

    /// Decodes a header from the front of `buf`.
    ///
    /// `Incomplete` below 12 bytes; `Invalid` for a version other than 0
    /// or an unknown type. Flags are not judged here: which combinations
    /// are allowed depends on the type and the stream's state.
    pub fn decode(buf: &[u8]) -> Result<Header, DecodeError> {
        let Some(b) = buf.get(..HEADER_LEN) else {
            return Err(DecodeError::Incomplete);
        };
        if b[0] != VERSION {
            return Err(DecodeError::Invalid("yamux version is not 0"));
        }
        let ty = match b[1] {
            0 => Type::Data,
            1 => Type::WindowUpdate,
            2 => Type::Ping,
            3 => Type::GoAway,
            _ => return Err(DecodeError::Invalid("unknown yamux frame type")),
        };
        Ok(Header {
            ty,
            flags: u16::from_be_bytes([b[2], b[3]]),
            stream: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            length: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_byte_exact() {
        let h = Header {
            ty: Type::WindowUpdate,
            flags: flags::SYN | flags::FIN,
            stream: 0x0102_0304,
            length: 0x0a0b_0c0d,
        };
        assert_eq!(h.encode(), [0, 1, 0, 5, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(Header::decode(&h.encode()), Ok(h));
        assert!(h.has(flags::SYN) && h.has(flags::FIN) && !h.has(flags::ACK));
    }

    #[test]
    fn every_type_round_trips_and_short_input_is_incomplete() {
        for ty in [Type::Data, Type::WindowUpdate, Type::Ping, Type::GoAway] {
            let h = Header {
                ty,
                flags: 0xfff0 | flags::RST,
                stream: 7,
                length: u32::MAX,
            };
            let b = h.encode();
            assert_eq!(Header::decode(&b), Ok(h));
            for cut in 0..HEADER_LEN {
                assert_eq!(Header::decode(&b[..cut]), Err(DecodeError::Incomplete));
            }
        }
    }

    #[test]
    fn bad_version_and_type_are_invalid() {
        let mut b = Header {
            ty: Type::Ping,
            flags: flags::SYN,
            stream: 0,
            length: 1,
        }
        .encode();
        b[0] = 1;
        assert!(matches!(Header::decode(&b), Err(DecodeError::Invalid(_))));
        b[0] = 0;
        b[1] = 4;
        assert!(matches!(Header::decode(&b), Err(DecodeError::Invalid(_))));
    }
}
