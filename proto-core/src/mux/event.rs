//! What the connection tells its driver.

use super::error::{ErrorCode, ProtocolError};
use super::FlowId;
use crate::time::Duration;
use alloc::vec::Vec;

/// An event from [`Connection::poll_event`](super::Connection::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer opened a flow.
    FlowOpened {
        /// Its id.
        id: FlowId,
        /// It does not keep the connection from being idle.
        side_channel: bool,
    },
    /// Data, end of data, or a reset can be read on this flow. Emitted once
    /// until the next read.
    Readable(FlowId),
    /// A write that was blocked may now succeed (or fail for good if the
    /// peer stopped the flow). Emitted once after a blocked write.
    Writable(FlowId),
    /// Both directions of the flow are done; its id is forgotten.
    FlowClosed(FlowId),
    /// `open_flow` failed with `FlowLimit` and may now succeed.
    FlowCredit,
    /// A PONG arrived: a fresh round-trip sample for the PING whose opaque
    /// value was `ping` (as returned by `Connection::ping`; keepalive PINGs
    /// report theirs too).
    Rtt {
        /// The PING's opaque value.
        ping: u64,
        /// The round trip it measured.
        rtt: Duration,
    },
    /// The peer sent GOAWAY: no new flows; ours above `accepted_below` were
    /// refused (each also gets a reset with [`REFUSED`](super::REFUSED)).
    GoAway {
        /// Our flows with ids below this were accepted by the peer.
        accepted_below: u64,
        /// The peer's code.
        code: u64,
    },
    /// The connection is closed; no further events follow.
    Closed(CloseReason),
}

/// Why a connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// We called `close`.
    Local {
        /// Application code.
        code: u64,
    },
    /// The peer closed with a transport code.
    Transport {
        /// Its code.
        code: ErrorCode,
        /// Its reason text.
        reason: Vec<u8>,
    },
    /// The peer's application closed.
    Application {
        /// Its code.
        code: u64,
        /// Its reason text.
        reason: Vec<u8>,
    },
    /// The peer broke the protocol; we closed.
    ProtocolError(ProtocolError),
    /// Nothing arrived within `channel_timeout`.
    ChannelTimeout,
    /// No flows for `idle_timeout`.
    Idle,
    /// GOAWAY drain finished: every flow ended.
    Drained,
    /// GOAWAY drain took longer than `drain_timeout`.
    DrainTimeout,
    /// The driver reported that the byte stream ended, between frames.
    TransportEnded,
    /// We closed it to make room in the process memory budget (the
    /// connection held the most unread data when a new one needed room).
    Evicted {
        /// The reason text sent to the peer.
        reason: Vec<u8>,
    },
    /// The byte stream ended inside the preface or a frame: the peer's
    /// last frame was cut short (a crash, or a reset transport), which a
    /// clean end between frames is not.
    TruncatedFrame {
        /// Where the stream ended.
        part: FramePart,
        /// Bytes of that part that arrived.
        received: u64,
        /// Bytes of it still due, when known (a native frame head's length
        /// is only known once it is complete).
        missing: Option<u64>,
    },
    /// Output waited `send_stall_timeout` and the driver took none of it:
    /// the peer does not read.
    SendStall,
}

/// Which part of the stream a [`CloseReason::TruncatedFrame`] cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramePart {
    /// The native preface.
    Preface,
    /// A frame head (type and fields; yamux: the 12-byte header).
    Head,
    /// A DATA payload.
    Payload,
}

/// What a deadline from `poll_timeout` is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerReason {
    /// Send a keepalive PING.
    Keepalive,
    /// Close if nothing has been received.
    ChannelTimeout,
    /// Close because no flows are open.
    Idle,
    /// Close because a GOAWAY drain took too long.
    Drain,
    /// Close because output waited `send_stall_timeout` untaken.
    SendStall,
}

/// Connection counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Bytes handed out by `poll_transmit`.
    pub bytes_sent: u64,
    /// Bytes taken by `handle_input`.
    pub bytes_received: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Flow payload bytes sent.
    pub data_sent: u64,
    /// Flow payload bytes received.
    pub data_received: u64,
    /// Flows we opened.
    pub flows_opened: u64,
    /// Flows the peer opened.
    pub flows_accepted: u64,
    /// Flows currently in the table.
    pub flows_open: u64,
    /// Window updates (MAX_DATA, MAX_FLOW_DATA) sent.
    pub window_updates_sent: u64,
    /// Latest round-trip sample.
    pub rtt: Option<Duration>,
    /// Smoothed round-trip time.
    pub srtt: Option<Duration>,
    /// Connection bytes we may still send before the peer's next MAX_DATA
    /// (yamux profile: `u64::MAX`, the wire has no connection window).
    pub send_credit: u64,
    /// Connection bytes the peer may still send us (yamux profile: what
    /// `conn_recv_budget` still allows; the peer is bounded per flow).
    pub recv_window: u64,
    /// Bytes received but not yet read, over all flows (at most
    /// `conn_recv_budget`).
    pub recv_buffered: u64,
    /// Bytes written but not yet sent, over all flows.
    pub send_buffered: u64,
    /// Bytes this connection holds from the process memory budget
    /// ([`Config::budget`](super::Config::budget)): receive credit granted
    /// plus unread and unsent bytes; 0 without a budget.
    pub budget_held: u64,
    /// Peer flows refused because the memory budget was nearly spent.
    pub flows_refused: u64,
}

/// Per-flow counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowStats {
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Payload bytes read by the application.
    pub bytes_read: u64,
    /// Bytes written but not yet sent.
    pub send_buffered: u64,
    /// Bytes we may still send before the peer's next MAX_FLOW_DATA.
    pub send_credit: u64,
    /// Current receive window (grows with measured RTT).
    pub recv_window: u64,
    /// DATA frames sent.
    pub frames_sent: u64,
    /// DATA frames received.
    pub frames_received: u64,
}
