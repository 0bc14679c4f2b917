//! Connection settings and limits. Every limit that protects against a
//! hostile peer is a field here with its default documented.

use crate::budget::MemoryBudget;
use crate::time::Duration;
use core::fmt;

/// Protocol constants both sides assume before any credit frame arrives.
pub mod initial {
    /// Bytes a side may send on a new flow before the peer's first MAX_FLOW_DATA.
    pub const FLOW_WINDOW: u64 = 256 * 1024;
    /// Bytes a side may send on the connection before the peer's first MAX_DATA.
    pub const CONN_WINDOW: u64 = 1024 * 1024;
    /// Flows a side may open before the peer's first MAX_FLOWS.
    pub const MAX_FLOWS: u64 = 64;
    /// Every receiver accepts DATA payloads up to this size; senders never exceed it.
    pub const MIN_FRAME_PAYLOAD: usize = 16 * 1024;
}

/// Which wire format a [`Connection`](super::Connection) speaks. The state
/// machine, its API and its events are the same for both; only the codec and
/// the mapping of weft's semantics onto the wire differ.
///
/// # What the yamux profile cannot carry
///
/// yamux v0 has a 12-byte header and four frame types, so some native
/// features degrade (each is covered by a test in `tests/yamux_pair.rs`):
///
/// - **Ids**: the dialer is yamux's client (odd ids from 1), the acceptor
///   its server (even ids from 2). [`FlowId`](super::FlowId) is the wire id.
///   A peer may send its SYNs out of id order (rust-yamux opens lazily);
///   ids it skipped stay openable, at most `max_concurrent_flows` of them.
///   A bare FIN on a fresh id opens an empty flow (rust-yamux closes a
///   stream it never wrote to that way); a bare RST only spends the id.
/// - **Reset codes**: RST carries none. A peer's RST reads as
///   [`ReadError::Reset(0)`](super::ReadError::Reset) and fails writes with
///   [`WriteError::Stopped(0)`](super::WriteError::Stopped). Our own
///   [`reset`](super::FlowMut::reset) sends RST, which ends *both*
///   directions (reads then fail with `Stopped`);
///   [`stop`](super::FlowMut::stop) discards what arrives and, if the peer
///   may still send, sends RST: at once when we are still writing (then
///   writes fail with `Finished`), or after our queued data and FIN when we
///   already finished, so a finished writer's data is never lost. A RST
///   after the peer's FIN leaves that complete data readable to its end.
/// - **Side channels**: not on the wire; the flag stays local to the
///   opener (the acceptor sees a regular flow).
/// - **Connection window and flow credit**: yamux has neither on the wire.
///   We never block on a connection window; our receive side still grows
///   windows only within `conn_recv_budget`, but each new stream starts
///   with yamux's fixed 256 KiB, so unread data is bounded by
///   `max(conn_recv_budget, max_concurrent_flows * 256 KiB)`. Excess peer
///   opens are answered with RST (counted against
///   `max_refused_opens_per_sec` / `refused_open_burst`),
///   and our opens wait ([`OpenError::FlowLimit`](super::OpenError::FlowLimit),
///   then [`Event::FlowCredit`](super::Event::FlowCredit)) while
///   `max_unacked_opens` of them have no ACK yet.
/// - **GOAWAY**: carries no last-accepted id and no application code. A
///   received GoAway(normal) drains with every open flow treated as
///   accepted; GoAway(protocol error / internal error) closes with
///   [`CloseReason::Transport`](super::CloseReason::Transport) and
///   [`ErrorCode::ProtocolViolation`](super::ErrorCode::ProtocolViolation) /
///   [`ErrorCode::Internal`](super::ErrorCode::Internal). Our own
///   [`go_away`](super::Connection::go_away) drains locally (peer opens are
///   answered with RST, ours fail with `GoingAway`) and sends GoAway(normal)
///   only when the drain ends: rust-yamux ends the whole connection on
///   receiving a GoAway, which would abort the flows being drained.
/// - **Close**: there is no CLOSE frame; closing sends GoAway with code
///   normal (local close, drain, idle), protocol error (any
///   [`ProtocolError`](super::ProtocolError), floods and a full control
///   queue included) or internal error (channel and drain timeouts, a send
///   stall, the memory budget). The application code and reason text are
///   not sent, so the specific [`ErrorCode`](super::ErrorCode) of a limit
///   stays local.
/// - **Pings** carry 32-bit opaque values.
/// - **Frame size**: yamux peers may send a Data frame as large as the
///   window (hashicorp does), so frames up to `max_flow_window` are
///   accepted whatever `max_frame_payload` says; payloads are streamed,
///   never buffered whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// weft's own varint framing (see [`frame`](super::frame)).
    #[default]
    Native,
    /// yamux v0 (see [`yamux`](super::yamux)).
    Yamux,
}

/// Settings for a [`Connection`](super::Connection).
///
/// ```
/// use proto_core::mux::Config;
/// let mut config = Config::default();
/// config.max_concurrent_flows = 1000;
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The wire format. Default [`Profile::Native`].
    pub profile: Profile,
    /// yamux profile: flows we opened that the peer has not yet
    /// acknowledged (ACK) before further opens wait. Default 256, the
    /// backlog rust-yamux and go-yamux allow. Unused by the native profile.
    pub max_unacked_opens: u64,
    /// Concurrent flows the peer may have open towards us, granted as
    /// MAX_FLOWS credit. Default 256; at least [`initial::MAX_FLOWS`].
    pub max_concurrent_flows: u64,
    /// Largest receive window one flow may grow to. Default 16 MiB.
    pub max_flow_window: u64,
    /// Bytes received but not yet read, over all flows: the connection
    /// window and the cap on the sum of flow windows. Default 32 MiB; at
    /// least [`initial::CONN_WINDOW`].
    pub conn_recv_budget: u64,
    /// Bytes an application may have written but not yet sent, per flow.
    /// Default 256 KiB: data waiting here is data not yet in the socket, and
    /// a small buffer keeps the copy through it in the CPU cache.
    pub flow_send_buffer: usize,
    /// Same, over all flows. Default 1 MiB (with 100 busy flows, a larger
    /// one measurably slows bulk transfers by spilling out of the cache).
    pub conn_send_buffer: usize,
    /// Largest DATA payload accepted from the peer. Default 64 KiB; at least
    /// [`initial::MIN_FRAME_PAYLOAD`].
    pub max_frame_payload: u64,
    /// Largest DATA payload we send: smaller chunks interleave flows more
    /// finely. Default 16 KiB; at most [`initial::MIN_FRAME_PAYLOAD`].
    pub send_chunk: usize,
    /// Bytes one `poll_transmit` call appends at most. Default 256 KiB.
    pub max_transmit: usize,
    /// Longest CLOSE reason accepted (and sent: longer ones are cut).
    /// Default 1024.
    pub max_close_reason: usize,
    /// Control frames the peer made us owe it (PONGs; yamux: RSTs refusing
    /// its opens) that may wait unsent while the peer is not reading.
    /// Enforced only when such frames from an earlier input are still
    /// queued: the driver could not flush them, so the peer does not read.
    /// An input that finds none queued may queue what the buckets below
    /// allow (at most `ping_burst + refused_open_burst` frames), so a
    /// legitimate burst from a reading peer passes. Breaking it closes with
    /// [`ErrorCode::ControlQueueFull`](super::ErrorCode::ControlQueueFull).
    /// Default 64.
    pub max_queued_control: usize,
    /// Sustained rate of resets (RESET_FLOW, yamux RST) accepted from the
    /// peer, per second, refilling a bucket of `reset_burst`; beyond it the
    /// connection closes with
    /// [`ErrorCode::ResetFlood`](super::ErrorCode::ResetFlood). Default 1000.
    pub max_resets_per_sec: u32,
    /// Resets accepted at once before `max_resets_per_sec` applies.
    /// Default 1000: a peer may reset every one of `max_concurrent_flows`
    /// flows in one go.
    pub reset_burst: u32,
    /// Sustained rate of PINGs accepted from the peer, per second,
    /// refilling a bucket of `ping_burst`; beyond it the connection closes
    /// with [`ErrorCode::PingFlood`](super::ErrorCode::PingFlood). Default 100.
    pub max_pings_per_sec: u32,
    /// PINGs accepted at once before `max_pings_per_sec` applies. Default
    /// 256: a few hundred PINGs in one write are a burst, not a flood.
    pub ping_burst: u32,
    /// yamux: sustained rate of peer opens we refuse with RST (beyond
    /// `max_concurrent_flows`, or after our GOAWAY), per second, refilling
    /// a bucket of `refused_open_burst`; beyond it (a SYN flood) the
    /// connection closes with [`ErrorCode::OpenFlood`](super::ErrorCode::OpenFlood).
    /// Default 100. Unused by the native profile, where an open beyond the
    /// granted credit is already a protocol error.
    pub max_refused_opens_per_sec: u32,
    /// yamux: refused opens accepted at once. Default 256: yamux peers stop
    /// opening at 256 unacknowledged streams (an RST answers one), so a
    /// peer that merely overshoots our limit stays within it.
    pub refused_open_burst: u32,
    /// Close the connection with
    /// [`ErrorCode::SendStall`](super::ErrorCode::SendStall) when output has
    /// been waiting this long and the driver has taken none of it.
    ///
    /// "Waiting" is what [`wants_transmit`](super::Connection::wants_transmit)
    /// reports: control frames, and DATA the peer gave credit for. Data
    /// held back because the peer withholds credit is not waiting (that is
    /// the peer's backpressure, and flow credit is how it applies it). The
    /// wait counts from the first input or timer (calls that carry the
    /// time) that finds output waiting, and ends at any `poll_transmit`
    /// call. A driver that stops calling `poll_transmit` while its own
    /// queue to the transport is full (as weft's adapters do) therefore
    /// closes connections whose peer stopped reading, whatever else the
    /// peer keeps sending: PINGs do not keep it open. Default 30 s; `None`
    /// never closes; zero is refused.
    pub send_stall_timeout: Option<Duration>,
    /// Send a PING when nothing was received for this long. Default 15 s.
    pub keepalive_interval: Option<Duration>,
    /// Close the connection when nothing was received for this long.
    /// Default 30 s.
    pub channel_timeout: Option<Duration>,
    /// Close the connection after this long with no open flows other than
    /// side channels. Default: never.
    pub idle_timeout: Option<Duration>,
    /// After a GOAWAY, close anyway if flows have not finished within this.
    /// Default 30 s.
    pub drain_timeout: Duration,
    /// Our own PINGs awaiting a PONG. Default 8.
    pub max_outstanding_pings: usize,
    /// Emptied flow buffers kept for reuse (each at most 256 KiB of
    /// capacity), so busy flows do not allocate per write. Default 4.
    pub spare_buffers: usize,
    /// A memory budget shared with other connections (see
    /// [`budget`](crate::budget)): receive windows and send buffers are
    /// drawn from it. Default `None` here: the connection is bounded by its
    /// own limits only (the adapters give every connection a process-wide
    /// default budget when this is `None`).
    pub budget: Option<MemoryBudget>,
    /// Under memory pressure, the smallest receive window (per flow, and
    /// for the connection) a connection above its fair share shrinks to.
    /// Default 64 KiB; at least `send_chunk`.
    pub pressure_window: u64,
    /// Under memory pressure, bytes a connection above its fair share may
    /// still have written but unsent; further writes wait until they drain.
    /// Default 64 KiB (so every connection can always make progress).
    pub pressure_send_floor: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profile: Profile::Native,
            max_unacked_opens: 256,
            max_concurrent_flows: 256,
            max_flow_window: 16 * 1024 * 1024,
            conn_recv_budget: 32 * 1024 * 1024,
            flow_send_buffer: 256 * 1024,
            conn_send_buffer: 1024 * 1024,
            max_frame_payload: 64 * 1024,
            send_chunk: 16 * 1024,
            max_transmit: 256 * 1024,
            max_close_reason: 1024,
            max_queued_control: 64,
            max_resets_per_sec: 1000,
            reset_burst: 1000,
            max_pings_per_sec: 100,
            ping_burst: 256,
            max_refused_opens_per_sec: 100,
            refused_open_burst: 256,
            send_stall_timeout: Some(Duration::from_secs(30)),
            keepalive_interval: Some(Duration::from_secs(15)),
            channel_timeout: Some(Duration::from_secs(30)),
            idle_timeout: None,
            drain_timeout: Duration::from_secs(30),
            max_outstanding_pings: 8,
            spare_buffers: 4,
            budget: None,
            pressure_window: 64 * 1024,
            pressure_send_floor: 64 * 1024,
        }
    }
}

/// The largest size or count a [`Config`] may hold (2^61 - 1): half the
/// largest varint, so the mux's own arithmetic on its limits stays
/// representable and encodable.
pub const MAX_LIMIT: u64 = crate::wire::VARINT_MAX / 2;

/// A [`Config`] value that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_concurrent_flows` is below [`initial::MAX_FLOWS`].
    FlowLimitBelowInitial,
    /// `conn_recv_budget` is below [`initial::CONN_WINDOW`].
    BudgetBelowInitial,
    /// `max_flow_window` is below [`initial::FLOW_WINDOW`].
    FlowWindowBelowInitial,
    /// `max_frame_payload` is below [`initial::MIN_FRAME_PAYLOAD`].
    FramePayloadTooSmall,
    /// `send_chunk` is zero, above [`initial::MIN_FRAME_PAYLOAD`], or
    /// above `pressure_window`.
    BadSendChunk,
    /// `max_transmit` is too small to hold one full DATA frame.
    TransmitTooSmall,
    /// `flow_send_buffer`, `conn_send_buffer`, `max_queued_control`,
    /// `max_outstanding_pings`, `max_unacked_opens` or
    /// `pressure_send_floor` or `send_stall_timeout` is zero.
    ZeroLimit,
    /// `ping_burst`, `reset_burst` or `refused_open_burst` is zero while
    /// its rate is not: the bucket could never hold a token, so the rate
    /// would mean nothing.
    ZeroBurst,
    /// `flow_send_buffer` or `max_flow_window` is above 4 GiB - 1, or
    /// another size or count above [`MAX_LIMIT`].
    TooLarge,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::FlowLimitBelowInitial => {
                "max_concurrent_flows is below the protocol's initial flow credit"
            }
            ConfigError::BudgetBelowInitial => {
                "conn_recv_budget is below the protocol's initial connection window"
            }
            ConfigError::FlowWindowBelowInitial => {
                "max_flow_window is below the protocol's initial flow window"
            }
            ConfigError::FramePayloadTooSmall => "max_frame_payload is below the protocol minimum",
            ConfigError::BadSendChunk => {
                "send_chunk must be between 1 and the protocol minimum frame payload, and at most pressure_window"
            }
            ConfigError::TransmitTooSmall => "max_transmit cannot hold one full DATA frame",
            ConfigError::ZeroLimit => "a buffer or queue limit, or send_stall_timeout, is zero",
            ConfigError::ZeroBurst => "a rate limit has a nonzero rate but a burst of zero",
            ConfigError::TooLarge => {
                "flow_send_buffer and max_flow_window must fit in 32 bits, other limits in 2^61 - 1"
            }
        })
    }
}

impl core::error::Error for ConfigError {}

impl Config {
    /// Checks the values against the protocol's initial assumptions.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_concurrent_flows < initial::MAX_FLOWS {
            return Err(ConfigError::FlowLimitBelowInitial);
        }
        if self.conn_recv_budget < initial::CONN_WINDOW {
            return Err(ConfigError::BudgetBelowInitial);
        }
        if self.max_flow_window < initial::FLOW_WINDOW {
            return Err(ConfigError::FlowWindowBelowInitial);
        }
        if self.max_frame_payload < initial::MIN_FRAME_PAYLOAD as u64 {
            return Err(ConfigError::FramePayloadTooSmall);
        }
        if self.send_chunk == 0 || self.send_chunk > initial::MIN_FRAME_PAYLOAD {
            return Err(ConfigError::BadSendChunk);
        }
        if self.max_transmit < self.send_chunk + super::frame::MAX_DATA_HEADER {
            return Err(ConfigError::TransmitTooSmall);
        }
        if (self.pressure_window as usize) < self.send_chunk {
            return Err(ConfigError::BadSendChunk);
        }
        if self.flow_send_buffer == 0
            || self.pressure_send_floor == 0
            || self.conn_send_buffer == 0
            || self.max_queued_control == 0
            || self.max_outstanding_pings == 0
            || self.max_unacked_opens == 0
            || self.send_stall_timeout == Some(Duration::ZERO)
        {
            return Err(ConfigError::ZeroLimit);
        }
        let buckets = [
            (self.max_pings_per_sec, self.ping_burst),
            (self.max_resets_per_sec, self.reset_burst),
            (self.max_refused_opens_per_sec, self.refused_open_burst),
        ];
        if buckets.iter().any(|&(rate, burst)| rate > 0 && burst == 0) {
            return Err(ConfigError::ZeroBurst);
        }
        if self.flow_send_buffer > u32::MAX as usize
            || self.max_flow_window > u32::MAX as u64
            || self.pressure_window > u32::MAX as u64
        {
            return Err(ConfigError::TooLarge);
        }
        // The mux adds to its limits (a window past the bytes read, one
        // more flow as one closes) and announces some as varints: half the
        // largest varint leaves room for both.
        let sizes = [
            self.max_unacked_opens,
            self.max_concurrent_flows,
            self.conn_recv_budget,
            self.conn_send_buffer as u64,
            self.max_frame_payload,
            self.max_transmit as u64,
            self.max_close_reason as u64,
            self.max_queued_control as u64,
            self.max_outstanding_pings as u64,
            self.spare_buffers as u64,
        ];
        if sizes.iter().any(|&v| v > MAX_LIMIT) {
            return Err(ConfigError::TooLarge);
        }
        Ok(())
    }
}

/// What a handshake announces of a mux config (the secure layer carries it
/// without knowing the mux).
impl From<&Config> for crate::secure::MuxSettings {
    fn from(c: &Config) -> Self {
        crate::secure::MuxSettings {
            max_concurrent_flows: c.max_concurrent_flows,
            max_flow_window: c.max_flow_window,
            conn_recv_budget: c.conn_recv_budget,
        }
    }
}

impl Default for crate::secure::MuxSettings {
    fn default() -> Self {
        Self::from(&Config::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_beyond_what_the_wire_can_carry_are_refused() {
        let at = |budget, flows| Config {
            conn_recv_budget: budget,
            max_concurrent_flows: flows,
            ..Config::default()
        };
        let d = Config::default();
        assert_eq!(
            at(u64::MAX, d.max_concurrent_flows).validate(),
            Err(ConfigError::TooLarge)
        );
        assert_eq!(
            at(d.conn_recv_budget, MAX_LIMIT + 1).validate(),
            Err(ConfigError::TooLarge)
        );
        assert_eq!(at(MAX_LIMIT, MAX_LIMIT).validate(), Ok(()));
    }
}
