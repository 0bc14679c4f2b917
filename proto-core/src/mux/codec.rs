//! The one dispatch point between the connection and the two wire formats
//! (`frame.rs`, `yamux.rs`): frame writers for each thing the connection
//! sends, and the head decoder. Frames a wire lacks are never asked for
//! (the [`Policy`] says which), so writers for them exist in one format only.

use super::error::{ErrorCode, ProtocolError};
use super::frame::{
    data_header_len, decode_head, encode_control, encode_data_header, is_known_type, ty, Control,
    DataHeader, Head, MAX_DATA_HEADER,
};
use super::policy::Policy;
use super::scheduler::Queued;
use super::yamux::{self as ym, flags as yf};
use crate::wire::TransmitBuf;
use crate::wire::{DecodeError, Reader};
use alloc::vec::Vec;

/// Longest frame head the native decoder buffers: RESET_FLOW's three
/// varints, or a CLOSE's two plus its reason.
const HEAD_BASE: usize = 1 + 3 * 8;

/// One decoded frame head, in its wire's terms.
#[derive(Debug)]
pub(super) enum Frame<'a> {
    Native(Head<'a>),
    Yamux(ym::Header),
}

/// Decodes one frame head at the front of `buf`: the frame and the bytes it
/// used, or `None` when `buf` holds only part of it.
pub(super) fn decode(
    policy: Policy,
    buf: &[u8],
    max_reason: usize,
) -> Result<Option<(Frame<'_>, usize)>, ProtocolError> {
    let r = match policy {
        Policy::Native => decode_head(buf, max_reason).map(|(h, n)| (Frame::Native(h), n)),
        Policy::Yamux => ym::Header::decode(buf).map(|h| (Frame::Yamux(h), ym::HEADER_LEN)),
    };
    match r {
        Ok(f) => Ok(Some(f)),
        Err(DecodeError::Incomplete) => Ok(None),
        Err(DecodeError::Invalid(what)) => Err(decode_error(policy, buf, max_reason, what)),
    }
}

/// What made the head at the front of `buf` undecodable, with the values
/// the close reason names. The decoders report a static text only (they
/// are public and allocation-free), so the values are read back here.
fn decode_error(
    policy: Policy,
    buf: &[u8],
    max_reason: usize,
    what: &'static str,
) -> ProtocolError {
    match policy {
        Policy::Native => {
            let mut r = Reader::new(buf);
            let Ok(t) = r.u8() else {
                return ProtocolError::Malformed(what);
            };
            if !is_known_type(t) {
                return ProtocolError::UnknownFrameType(t);
            }
            if t == ty::CONNECTION_CLOSE || t == ty::APPLICATION_CLOSE {
                if let (Ok(_), Ok(len)) = (r.varint(), r.varint()) {
                    if len > max_reason as u64 {
                        return ProtocolError::CloseReasonTooLong {
                            len,
                            max: max_reason as u64,
                        };
                    }
                }
            }
            ProtocolError::Malformed(what)
        }
        Policy::Yamux => match *buf {
            [v, ..] if v != ym::VERSION => ProtocolError::BadYamuxVersion(v),
            [_, t, ..] => ProtocolError::UnknownFrameType(t),
            _ => ProtocolError::Malformed(what),
        },
    }
}

/// The most bytes a frame head can take: a partial head longer than this
/// is malformed, which bounds what a peer can make us buffer.
pub(super) fn head_cap(policy: Policy, max_reason: usize) -> usize {
    match policy {
        Policy::Native => HEAD_BASE + max_reason,
        Policy::Yamux => ym::HEADER_LEN,
    }
}

/// The close frame: native CONNECTION_CLOSE / APPLICATION_CLOSE with code
/// and reason; yamux GoAway with the nearest of its three codes.
pub(super) fn put_close(
    out: &mut impl TransmitBuf,
    policy: Policy,
    app: bool,
    code: u64,
    reason: &[u8],
) -> usize {
    if policy == Policy::Yamux {
        return put_yamux(out, ym::Type::GoAway, 0, 0, yamux_close_code(app, code));
    }
    let frame = if app {
        Control::ApplicationClose { code, reason }
    } else {
        Control::ConnectionClose { code, reason }
    };
    put_control(out, &frame)
}

/// Our GOAWAY. yamux's has neither a last-accepted id nor an app code.
pub(super) fn put_goaway(
    out: &mut impl TransmitBuf,
    policy: Policy,
    accepted_below: u64,
    code: u64,
) -> usize {
    match policy {
        Policy::Native => put_control(
            out,
            &Control::GoAway {
                accepted_below,
                code,
            },
        ),
        Policy::Yamux => put_yamux(out, ym::Type::GoAway, 0, 0, ym::go_away::NORMAL),
    }
}

/// A queued connection control frame; `None` for one this wire does not
/// have (RST refusals are only queued by the yamux profile).
pub(super) fn put_queued(out: &mut impl TransmitBuf, policy: Policy, q: Queued) -> Option<usize> {
    Some(match (policy, q) {
        (Policy::Native, Queued::Ping(v)) => put_control(out, &Control::Ping(v)),
        (Policy::Native, Queued::Pong(v)) => put_control(out, &Control::Pong(v)),
        (Policy::Native, Queued::Rst(_)) => return None,
        (Policy::Yamux, Queued::Ping(v)) => put_yamux(out, ym::Type::Ping, yf::SYN, 0, v as u32),
        (Policy::Yamux, Queued::Pong(v)) => put_yamux(out, ym::Type::Ping, yf::ACK, 0, v as u32),
        (Policy::Yamux, Queued::Rst(id)) => put_yamux(out, ym::Type::Data, yf::RST, id, 0),
    })
}

/// Native only (see [`Policy::has_credit_frames`]).
pub(super) fn put_max_data(out: &mut impl TransmitBuf, max: u64) -> usize {
    put_control(out, &Control::MaxData(max))
}

/// Native only (see [`Policy::has_credit_frames`]).
pub(super) fn put_max_flows(out: &mut impl TransmitBuf, max: u64) -> usize {
    put_control(out, &Control::MaxFlows(max))
}

/// A flow's receive limit moved from `old` to `new`: weft's offsets are
/// absolute (MAX_FLOW_DATA), yamux's WindowUpdate carries the difference,
/// and may carry the ACK of the peer's open.
pub(super) fn put_window_update(
    out: &mut impl TransmitBuf,
    policy: Policy,
    id: u64,
    old: u64,
    new: u64,
    ack: bool,
) -> usize {
    match policy {
        Policy::Native => put_control(out, &Control::MaxFlowData { flow: id, max: new }),
        Policy::Yamux => {
            let delta = (new - old) as u32;
            put_yamux(out, ym::Type::WindowUpdate, ack_flag(ack), id, delta)
        }
    }
}

/// Our reset of `id`: native RESET_FLOW with code and final size; yamux
/// RST (no code), which may carry the ACK of the peer's open.
pub(super) fn put_reset(
    out: &mut impl TransmitBuf,
    policy: Policy,
    id: u64,
    code: u64,
    final_size: u64,
    ack: bool,
) -> usize {
    match policy {
        Policy::Native => put_control(
            out,
            &Control::ResetFlow {
                flow: id,
                code,
                final_size,
            },
        ),
        Policy::Yamux => put_yamux(out, ym::Type::Data, yf::RST | ack_flag(ack), id, 0),
    }
}

/// yamux only: a bare ACK of the peer's open, when nothing else carried it.
pub(super) fn put_ack(out: &mut impl TransmitBuf, id: u64) -> usize {
    put_yamux(out, ym::Type::WindowUpdate, yf::ACK, id, 0)
}

/// Native only: yamux stops with RST (see [`Policy::stop_mapping`]).
pub(super) fn put_stop_sending(out: &mut impl TransmitBuf, id: u64, code: u64) -> usize {
    put_control(out, &Control::StopSending { flow: id, code })
}

/// A DATA header for `h.len` payload bytes that the caller appends. `open`
/// marks a flow's first frame (yamux SYN; native opens implicitly, with the
/// side-channel flag), `ack` acknowledges the peer's open (yamux).
pub(super) fn put_data_header(
    out: &mut impl TransmitBuf,
    policy: Policy,
    h: &DataHeader,
    open: bool,
    ack: bool,
) -> usize {
    match policy {
        Policy::Native => {
            let mut head = [0u8; MAX_DATA_HEADER];
            let mut w = &mut head[..];
            encode_data_header(&mut w, h);
            let hlen = data_header_len(h.flow, h.len);
            out.put_slice(&head[..hlen]);
            hlen
        }
        Policy::Yamux => {
            let mut flags = ack_flag(ack);
            if open {
                flags |= yf::SYN;
            }
            if h.fin {
                flags |= yf::FIN;
            }
            put_yamux(out, ym::Type::Data, flags, h.flow, h.len as u32)
        }
    }
}

fn ack_flag(ack: bool) -> u16 {
    if ack {
        yf::ACK
    } else {
        0
    }
}

/// Appends a yamux header; returns its length.
fn put_yamux(out: &mut impl TransmitBuf, ty: ym::Type, flags: u16, id: u64, length: u32) -> usize {
    let h = ym::Header {
        ty,
        flags,
        stream: id as u32,
        length,
    };
    out.put_slice(&h.encode());
    ym::HEADER_LEN
}

/// The yamux GoAway code for a close: yamux has three.
fn yamux_close_code(app: bool, code: u64) -> u32 {
    if app {
        return ym::go_away::NORMAL;
    }
    match ErrorCode::from_wire(code) {
        ErrorCode::NoError | ErrorCode::Idle => ym::go_away::NORMAL,
        // Our own timeouts and resource limits: the peer broke no rule.
        ErrorCode::ChannelTimeout
        | ErrorCode::DrainTimeout
        | ErrorCode::Internal
        | ErrorCode::SendStall
        | ErrorCode::MemoryBudget => ym::go_away::INTERNAL_ERROR,
        // Every rule the peer broke, floods and a full control queue too.
        _ => ym::go_away::PROTOCOL_ERROR,
    }
}

/// Encodes a control frame through a stack buffer (the sink need not be a
/// `BufMut`); returns its length.
fn put_control(out: &mut impl TransmitBuf, c: &Control<'_>) -> usize {
    if let Control::ConnectionClose { .. } | Control::ApplicationClose { .. } = c {
        // Rare and carries a reason of up to `max_close_reason` bytes.
        let mut v = Vec::new();
        encode_control(&mut v, c);
        out.put_slice(&v);
        return v.len();
    }
    let mut buf = [0u8; HEAD_BASE];
    let mut w = &mut buf[..];
    encode_control(&mut w, c);
    let len = HEAD_BASE - w.len();
    out.put_slice(&buf[..len]);
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yamux_close_codes() {
        let code = |app, c: ErrorCode| yamux_close_code(app, c.to_wire());
        assert_eq!(code(true, ErrorCode::Internal), ym::go_away::NORMAL);
        assert_eq!(code(false, ErrorCode::Idle), ym::go_away::NORMAL);
        assert_eq!(
            code(false, ErrorCode::DrainTimeout),
            ym::go_away::INTERNAL_ERROR
        );
        assert_eq!(
            code(false, ErrorCode::FlowControl),
            ym::go_away::PROTOCOL_ERROR
        );
        for flood in [
            ErrorCode::PingFlood,
            ErrorCode::ResetFlood,
            ErrorCode::OpenFlood,
            ErrorCode::ControlQueueFull,
        ] {
            assert_eq!(code(false, flood), ym::go_away::PROTOCOL_ERROR);
        }
        for ours in [ErrorCode::SendStall, ErrorCode::MemoryBudget] {
            assert_eq!(code(false, ours), ym::go_away::INTERNAL_ERROR);
        }
    }

    #[test]
    fn undecodable_heads_name_their_cause() {
        let native = |b: &[u8]| decode(Policy::Native, b, 8).err();
        assert_eq!(native(&[0x20]), Some(ProtocolError::UnknownFrameType(0x20)));
        assert_eq!(native(&[0x03]), Some(ProtocolError::UnknownFrameType(0x03)));
        let mut close = Vec::new();
        encode_control(
            &mut close,
            &Control::ConnectionClose {
                code: 0,
                reason: &[b'x'; 9],
            },
        );
        assert_eq!(
            native(&close[..3]),
            Some(ProtocolError::CloseReasonTooLong { len: 9, max: 8 })
        );
        let yamux = |b: &[u8]| decode(Policy::Yamux, b, 8).err();
        let mut h = [0u8; ym::HEADER_LEN];
        h[0] = 1;
        assert_eq!(yamux(&h), Some(ProtocolError::BadYamuxVersion(1)));
        h[0] = 0;
        h[1] = 7;
        assert_eq!(yamux(&h), Some(ProtocolError::UnknownFrameType(7)));
    }

    #[test]
    fn window_update_is_absolute_natively_and_a_delta_on_yamux() {
        let mut n = Vec::new();
        put_window_update(&mut n, Policy::Native, 4, 100, 300, false);
        let (head, used) = decode_head(&n, 0).unwrap();
        assert_eq!(used, n.len());
        assert_eq!(
            head,
            Head::Control(Control::MaxFlowData { flow: 4, max: 300 })
        );
        let mut y = Vec::new();
        put_window_update(&mut y, Policy::Yamux, 3, 100, 300, true);
        let h = ym::Header::decode(&y).unwrap();
        assert_eq!(
            (h.ty, h.flags, h.stream, h.length),
            (ym::Type::WindowUpdate, yf::ACK, 3, 200)
        );
    }

    #[test]
    fn yamux_data_header_flags() {
        let mut y = Vec::new();
        let h = DataHeader {
            flow: 5,
            len: 7,
            fin: true,
            side_channel: true, // local to the opener on yamux
        };
        assert_eq!(put_data_header(&mut y, Policy::Yamux, &h, true, false), 12);
        let d = ym::Header::decode(&y).unwrap();
        assert_eq!(
            (d.ty, d.flags, d.stream, d.length),
            (ym::Type::Data, yf::SYN | yf::FIN, 5, 7)
        );
    }

    #[test]
    fn decode_reports_partial_heads_and_bounds_them() {
        assert!(matches!(decode(Policy::Yamux, &[0; 11], 0), Ok(None)));
        assert!(matches!(
            decode(Policy::Yamux, &[0; 12], 0),
            Ok(Some((Frame::Yamux(_), 12)))
        ));
        assert_eq!(head_cap(Policy::Yamux, 100), 12);
        assert_eq!(head_cap(Policy::Native, 100), HEAD_BASE + 100);
        let mut v = Vec::new();
        assert_eq!(put_queued(&mut v, Policy::Native, Queued::Rst(3)), None);
        assert!(v.is_empty());
    }
}
