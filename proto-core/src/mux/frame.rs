//! The native mux wire format: an 8-byte preface, then frames that each start
//! with a one-byte type followed by QUIC varints.
//!
//! | type | frame | fields |
//! |---|---|---|
//! | 0x01 | PING | opaque |
//! | 0x02 | PONG | opaque |
//! | 0x04 | MAX_DATA | max (absolute connection offset) |
//! | 0x05 | MAX_FLOW_DATA | flow, max (absolute flow offset) |
//! | 0x06 | MAX_FLOWS | max (cumulative count of flows the peer may open) |
//! | 0x07 | RESET_FLOW | flow, code, final size |
//! | 0x08 | STOP_SENDING | flow, code |
//! | 0x09 | GOAWAY | accepted below (every peer flow id below this was accepted), code |
//! | 0x0a | CONNECTION_CLOSE | code, reason length, reason |
//! | 0x0b | APPLICATION_CLOSE | code, reason length, reason |
//! | 0x10-0x13 | DATA | flow, length, payload; bit 0x01 = FIN, 0x02 = side channel |
//!
//! A flow is opened by the first DATA frame that names it (possibly empty);
//! a side sends its opens in id order, so a receiver sees ids in sequence.
//! DATA payloads are streamed: the decoder hands out payload bytes as they
//! arrive and never buffers a whole frame.

use crate::wire::{put_varint, varint_len, DecodeError, Reader};
use bytes::BufMut;

/// Sent first by both sides; a mismatch is `BadPreface`.
pub const PREFACE: &[u8; 8] = b"WEFTMUX1";

/// Frame type bytes.
pub(crate) mod ty {
    pub const PING: u8 = 0x01;
    pub const PONG: u8 = 0x02;
    pub const MAX_DATA: u8 = 0x04;
    pub const MAX_FLOW_DATA: u8 = 0x05;
    pub const MAX_FLOWS: u8 = 0x06;
    pub const RESET_FLOW: u8 = 0x07;
    pub const STOP_SENDING: u8 = 0x08;
    pub const GOAWAY: u8 = 0x09;
    pub const CONNECTION_CLOSE: u8 = 0x0a;
    pub const APPLICATION_CLOSE: u8 = 0x0b;
    pub const DATA: u8 = 0x10;
    pub const DATA_FIN: u8 = 0x01;
    pub const DATA_SIDE: u8 = 0x02;
}

/// Largest encoding of a DATA frame header (type + two 8-byte varints).
pub const MAX_DATA_HEADER: usize = 1 + 8 + 8;

/// A frame other than DATA, fully decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control<'a> {
    /// Asks the peer to echo `opaque` in a PONG.
    Ping(u64),
    /// The echo of a PING.
    Pong(u64),
    /// The peer may send connection data up to this absolute offset.
    MaxData(u64),
    /// The peer may send data on `flow` up to this absolute offset.
    MaxFlowData {
        /// Flow id.
        flow: u64,
        /// Absolute offset limit.
        max: u64,
    },
    /// The peer may open flows until it has opened this many in total.
    MaxFlows(u64),
    /// The sender abandons its side of `flow` at `final_size` bytes.
    ResetFlow {
        /// Flow id.
        flow: u64,
        /// Application error code.
        code: u64,
        /// Bytes the sender had sent on the flow.
        final_size: u64,
    },
    /// The receiver asks the sender to stop sending on `flow`.
    StopSending {
        /// Flow id.
        flow: u64,
        /// Application error code.
        code: u64,
    },
    /// No new flows: every flow of the receiver's with an id below
    /// `accepted_below` was accepted, the rest were not.
    GoAway {
        /// Exclusive bound of accepted flow ids.
        accepted_below: u64,
        /// Application code.
        code: u64,
    },
    /// The connection is closed with a transport error code.
    ConnectionClose {
        /// Transport code ([`crate::mux::ErrorCode`]).
        code: u64,
        /// UTF-8 is customary but not required.
        reason: &'a [u8],
    },
    /// The connection is closed by the application.
    ApplicationClose {
        /// Application code.
        code: u64,
        /// UTF-8 is customary but not required.
        reason: &'a [u8],
    },
}

/// The start of a DATA frame; its payload follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    /// Flow id.
    pub flow: u64,
    /// Payload length.
    pub len: u64,
    /// The frame ends the flow's data.
    pub fin: bool,
    /// Opening flag: the flow is a side channel.
    pub side_channel: bool,
}

/// One decoded frame head: a control frame, or a DATA header whose payload
/// is the next `len` bytes of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head<'a> {
    /// A control frame.
    Control(Control<'a>),
    /// A DATA frame header.
    Data(DataHeader),
}

/// Decodes one frame head from the front of `buf`, returning it and the
/// bytes it used. `max_reason` bounds CLOSE reasons.
pub fn decode_head(buf: &[u8], max_reason: usize) -> Result<(Head<'_>, usize), DecodeError> {
    let mut r = Reader::new(buf);
    let t = r.u8()?;
    let head = match t {
        ty::PING => Head::Control(Control::Ping(r.varint()?)),
        ty::PONG => Head::Control(Control::Pong(r.varint()?)),
        ty::MAX_DATA => Head::Control(Control::MaxData(r.varint()?)),
        ty::MAX_FLOW_DATA => Head::Control(Control::MaxFlowData {
            flow: r.varint()?,
            max: r.varint()?,
        }),
        ty::MAX_FLOWS => Head::Control(Control::MaxFlows(r.varint()?)),
        ty::RESET_FLOW => Head::Control(Control::ResetFlow {
            flow: r.varint()?,
            code: r.varint()?,
            final_size: r.varint()?,
        }),
        ty::STOP_SENDING => Head::Control(Control::StopSending {
            flow: r.varint()?,
            code: r.varint()?,
        }),
        ty::GOAWAY => Head::Control(Control::GoAway {
            accepted_below: r.varint()?,
            code: r.varint()?,
        }),
        ty::CONNECTION_CLOSE | ty::APPLICATION_CLOSE => {
            let code = r.varint()?;
            let len = r.varint()?;
            if len > max_reason as u64 {
                return Err(DecodeError::Invalid("close reason too long"));
            }
            let reason = r.bytes(len as usize)?;
            Head::Control(if t == ty::CONNECTION_CLOSE {
                Control::ConnectionClose { code, reason }
            } else {
                Control::ApplicationClose { code, reason }
            })
        }
        t if t & !(ty::DATA_FIN | ty::DATA_SIDE) == ty::DATA => Head::Data(DataHeader {
            flow: r.varint()?,
            len: r.varint()?,
            fin: t & ty::DATA_FIN != 0,
            side_channel: t & ty::DATA_SIDE != 0,
        }),
        _ => return Err(DecodeError::Invalid("unknown frame type")),
    };
    Ok((head, r.position()))
}

/// Whether `t` is a frame type this version decodes.
pub(crate) fn is_known_type(t: u8) -> bool {
    matches!(
        t,
        ty::PING | ty::PONG | ty::MAX_DATA..=ty::APPLICATION_CLOSE
    ) || t & !(ty::DATA_FIN | ty::DATA_SIDE) == ty::DATA
}

/// Appends `c` to `out`.
pub fn encode_control(out: &mut impl BufMut, c: &Control<'_>) {
    match *c {
        Control::Ping(v) => {
            out.put_u8(ty::PING);
            put_varint(out, v);
        }
        Control::Pong(v) => {
            out.put_u8(ty::PONG);
            put_varint(out, v);
        }
        Control::MaxData(v) => {
            out.put_u8(ty::MAX_DATA);
            put_varint(out, v);
        }
        Control::MaxFlowData { flow, max } => {
            out.put_u8(ty::MAX_FLOW_DATA);
            put_varint(out, flow);
            put_varint(out, max);
        }
        Control::MaxFlows(v) => {
            out.put_u8(ty::MAX_FLOWS);
            put_varint(out, v);
        }
        Control::ResetFlow {
            flow,
            code,
            final_size,
        } => {
            out.put_u8(ty::RESET_FLOW);
            put_varint(out, flow);
            put_varint(out, code);
            put_varint(out, final_size);
        }
        Control::StopSending { flow, code } => {
            out.put_u8(ty::STOP_SENDING);
            put_varint(out, flow);
            put_varint(out, code);
        }
        Control::GoAway {
            accepted_below,
            code,
        } => {
            out.put_u8(ty::GOAWAY);
            put_varint(out, accepted_below);
            put_varint(out, code);
        }
        Control::ConnectionClose { code, reason } | Control::ApplicationClose { code, reason } => {
            out.put_u8(if matches!(c, Control::ConnectionClose { .. }) {
                ty::CONNECTION_CLOSE
            } else {
                ty::APPLICATION_CLOSE
            });
            put_varint(out, code);
            put_varint(out, reason.len() as u64);
            out.put_slice(reason);
        }
    }
}

/// Appends a DATA frame header; the caller appends `h.len` payload bytes.
pub fn encode_data_header(out: &mut impl BufMut, h: &DataHeader) {
    let mut t = ty::DATA;
    if h.fin {
        t |= ty::DATA_FIN;
    }
    if h.side_channel {
        t |= ty::DATA_SIDE;
    }
    out.put_u8(t);
    put_varint(out, h.flow);
    put_varint(out, h.len);
}

/// Encoded size of a DATA header.
pub fn data_header_len(flow: u64, len: u64) -> usize {
    1 + varint_len(flow) + varint_len(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn round_trip(c: Control<'_>) {
        let mut out = Vec::new();
        encode_control(&mut out, &c);
        let (head, n) = decode_head(&out, 1024).unwrap();
        assert_eq!(n, out.len());
        assert_eq!(head, Head::Control(c));
        for cut in 0..out.len() {
            assert_eq!(decode_head(&out[..cut], 1024), Err(DecodeError::Incomplete));
        }
    }

    #[test]
    fn control_frames_round_trip() {
        round_trip(Control::Ping(7));
        round_trip(Control::Pong(u32::MAX as u64));
        round_trip(Control::MaxData(1 << 40));
        round_trip(Control::MaxFlowData { flow: 3, max: 99 });
        round_trip(Control::MaxFlows(100));
        round_trip(Control::ResetFlow {
            flow: 4,
            code: 9,
            final_size: 1000,
        });
        round_trip(Control::StopSending { flow: 6, code: 1 });
        round_trip(Control::GoAway {
            accepted_below: 10,
            code: 0,
        });
        round_trip(Control::ConnectionClose {
            code: 1,
            reason: b"bad",
        });
        round_trip(Control::ApplicationClose {
            code: 77,
            reason: b"",
        });
    }

    #[test]
    fn data_header_round_trips_with_flags() {
        for (fin, side_channel) in [(false, false), (true, false), (false, true), (true, true)] {
            let h = DataHeader {
                flow: 1234,
                len: 70000,
                fin,
                side_channel,
            };
            let mut out = Vec::new();
            encode_data_header(&mut out, &h);
            assert_eq!(out.len(), data_header_len(1234, 70000));
            assert_eq!(decode_head(&out, 0).unwrap(), (Head::Data(h), out.len()));
        }
    }

    #[test]
    fn rejects_unknown_type_and_long_reason() {
        assert!(matches!(
            decode_head(&[0x03], 10),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode_head(&[0x20], 10),
            Err(DecodeError::Invalid(_))
        ));
        let mut out = Vec::new();
        encode_control(
            &mut out,
            &Control::ConnectionClose {
                code: 0,
                reason: &[b'x'; 11],
            },
        );
        assert!(matches!(
            decode_head(&out, 10),
            Err(DecodeError::Invalid(_))
        ));
    }
}
