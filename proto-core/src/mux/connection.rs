//! The mux connection state machine: the coordinator of its sub-states
//! (flow control, scheduler, open credit, health, drain, rate limits) and
//! the flow table they share. Where the wire profiles differ it asks the
//! [`Policy`]; frames go through the one dispatch point in `codec`.

use super::codec::{self, Frame};
use super::config::{initial, Config, ConfigError};
use super::drain::Drain;
use super::error::{
    ErrorCode, InputError, OpenError, PingError, ProtocolError, ReadError, WriteError,
};
use super::event::{CloseReason, ConnectionStats, Event, FlowStats, FramePart, TimerReason};
use super::flow::{flag, BufferPool, End, Flow, RecvState, SendState};
use super::flow_control::ConnFlowControl;
use super::frame::{Control, DataHeader, Head, MAX_DATA_HEADER, PREFACE};
use super::health::{smooth_rtt, Health};
use super::limits::RateLimits;
use super::opens::Opens;
use super::policy::{Policy, StopMapping};
use super::scheduler::{shrink_idle, Queued, Scheduler};
use super::stall::SendStall;
use super::yamux::{self as ym, flags as yf};
use super::{FlowId, Side, REFUSED};
use crate::budget::Share;
use crate::time::{Duration, Instant};
use crate::wire::TransmitBuf;
use crate::wire::VARINT_MAX;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::ToString;
use alloc::vec::Vec;
use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    Preface(u8),
    Head,
    Payload {
        flow: u64,
        /// The payload's whole length: what a truncation report needs.
        len: u64,
        remaining: u64,
        fin: bool,
    },
}

#[derive(Debug)]
struct CloseFrame {
    app: bool,
    code: u64,
    reason: Vec<u8>,
    sent: bool,
}

/// A multiplexed connection: many flows over one ordered byte stream.
///
/// # The sans-IO contract
///
/// The connection does no IO, reads no clock and spawns nothing. Its driver:
///
/// 1. feeds received bytes to [`handle_input`](Self::handle_input) (any
///    chunking), calls [`handle_timeout`](Self::handle_timeout) when the
///    deadline from [`poll_timeout`](Self::poll_timeout) passes, and issues
///    commands ([`open_flow`](Self::open_flow), [`flow`](Self::flow)`.write`, ...);
/// 2. after **every** input or command, drains
///    [`poll_transmit`](Self::poll_transmit) (writing the bytes to the
///    transport) and [`poll_event`](Self::poll_event) until both return `None`;
/// 3. re-arms its timer from [`poll_timeout`](Self::poll_timeout).
///
/// Commands take the time of the latest input as "now". Same inputs, same
/// outputs, byte for byte.
///
/// ```
/// use proto_core::mux::{Config, Connection, Event, Side};
/// use proto_core::time::Instant;
///
/// let now = Instant::ZERO;
/// let mut a = Connection::new(Config::default(), Side::Dialer, now).unwrap();
/// let mut b = Connection::new(Config::default(), Side::Acceptor, now).unwrap();
///
/// let id = a.open_flow().unwrap();
/// a.flow(id).write(b"hello").unwrap();
/// a.flow(id).finish().unwrap();
///
/// let mut wire = Vec::new();
/// while a.poll_transmit(&mut wire).is_some() {}
/// b.handle_input(now, &wire).unwrap();
///
/// let mut got = None;
/// while let Some(ev) = b.poll_event() {
///     if let Event::FlowOpened { id, .. } = ev { got = Some(id) }
/// }
/// let mut buf = [0u8; 16];
/// let n = b.flow(got.unwrap()).read(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"hello");
/// assert_eq!(b.flow(got.unwrap()).read(&mut buf), Ok(0)); // FIN
/// ```
#[derive(Debug)]
pub struct Connection {
    config: Config,
    /// What the wire profile does where the two differ.
    policy: Policy,
    side: Side,
    now: Instant,
    closed: bool,
    flows: BTreeMap<u64, Flow>,
    pool: BufferPool,

    /// Flow ids and open credit, both sides.
    opens: Opens,

    /// Connection-level flow control.
    fc: ConnFlowControl,

    sched: Scheduler,
    close_frame: Option<CloseFrame>,
    preface_sent: bool,

    rx: Rx,
    head_buf: Vec<u8>,

    events: VecDeque<Event>,

    health: Health,
    limits: RateLimits,
    stall: SendStall,
    drain: Drain,

    stats: ConnectionStats,

    /// This connection's part of the process memory budget, if any.
    share: Option<Share>,

    /// Why it closed, kept after the `Closed` event: a driver that sees
    /// many connections (the simulator's invariants) asks for it later.
    close_reason: Option<CloseReason>,
}

macro_rules! trace {
    ($($t:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::debug!($($t)*);
    };
}

// The coordinator's private paths, one file each (after `trace!`, which
// they use).
mod flow_ops;
mod pressure;
#[cfg(feature = "sim")]
pub(super) use pressure::FLOW_STATE_BYTES;
mod recv;
mod send;
mod yamux_in;

impl Connection {
    /// A connection on `side` of a byte stream, at time `now`.
    ///
    /// The preface, a first PING (for the RTT) and our credit frames are
    /// queued at once: drain [`poll_transmit`](Self::poll_transmit).
    pub fn new(config: Config, side: Side, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let policy = Policy::of(config.profile);
        // Without credit frames on the wire (yamux), both sides' limits
        // start unbounded: nothing blocks on them and nothing announces them.
        // With a shared budget the connection window starts at what the peer
        // may use anyway and grows with the flows (`conn_window_target`).
        let recv_target = match config.budget {
            Some(_) => initial::CONN_WINDOW,
            None => config.conn_recv_budget,
        };
        let (credit, credit_sent, recv_max) = if policy.has_credit_frames() {
            (initial::CONN_WINDOW, initial::CONN_WINDOW, recv_target)
        } else {
            (u64::MAX, u64::MAX, u64::MAX)
        };
        let flows_credit = if policy.has_credit_frames() {
            initial::MAX_FLOWS
        } else {
            u64::MAX
        };
        let mut c = Connection {
            policy,
            side,
            now,
            closed: false,
            flows: BTreeMap::new(),
            pool: BufferPool::new(config.spare_buffers),
            opens: Opens::new(
                policy.first_id(side),
                policy.first_id(side.peer()),
                flows_credit,
                config.max_concurrent_flows,
                flows_credit,
            ),
            fc: ConnFlowControl::new(credit, recv_max, credit_sent),
            sched: Scheduler::default(),
            close_frame: None,
            preface_sent: !policy.has_preface(),
            rx: if policy.has_preface() {
                Rx::Preface(0)
            } else {
                Rx::Head
            },
            head_buf: Vec::new(),
            events: VecDeque::new(),
            health: Health::new(now),
            limits: RateLimits::new(),
            stall: SendStall::default(),
            drain: Drain::default(),
            stats: ConnectionStats::default(),
            share: config.budget.as_ref().map(|b| b.share()),
            close_reason: None,
            config,
        };
        c.sync_budget();
        // The first PING measures the RTT that window growth needs.
        let _ = c.ping();
        Ok(c)
    }

    /// Which side of the stream this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The connection has closed (see [`Event::Closed`]); buffered flow data
    /// can still be read.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Why the connection closed (the reason its [`Event::Closed`]
    /// carried); `None` while it is open.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// A GOAWAY was sent or received: no new flows.
    pub fn is_draining(&self) -> bool {
        self.drain.is_draining()
    }

    // ---------------------------------------------------------------- inputs

    /// Bytes received from the transport, in any chunking.
    ///
    /// On a protocol error the connection closes: a CONNECTION_CLOSE is
    /// queued for [`poll_transmit`](Self::poll_transmit) and
    /// [`Event::Closed`] is emitted. Data already delivered stays readable.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), InputError> {
        self.input(now, data, None)
    }

    /// Like [`handle_input`](Self::handle_input), but large payloads are
    /// kept as slices of `data` instead of being copied.
    pub fn handle_input_bytes(&mut self, now: Instant, data: Bytes) -> Result<(), InputError> {
        self.input(now, &data, Some(&data))
    }

    fn input(&mut self, now: Instant, data: &[u8], src: Option<&Bytes>) -> Result<(), InputError> {
        self.tick(now);
        if self.closed {
            return Err(InputError::Closed);
        }
        if data.is_empty() {
            return Ok(());
        }
        self.health.on_input(now);
        self.stall.observe(now, self.wants_transmit());
        self.sched.start_input();
        self.stats.bytes_received += data.len() as u64;
        let r = self.decode(data, src);
        self.sync_budget();
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                trace!(error = %e, "mux protocol error");
                // The peer's log should say which rule and which value.
                let reason = e.to_string();
                self.close_with(
                    true,
                    false,
                    e.code().to_wire(),
                    reason.as_bytes(),
                    CloseReason::ProtocolError(e),
                );
                Err(InputError::Protocol(e))
            }
        }
    }

    /// The transport's read side ended (EOF or error): the connection is
    /// closed; buffered data stays readable. Ending inside a frame closes
    /// with [`CloseReason::TruncatedFrame`], between frames with
    /// [`CloseReason::TransportEnded`].
    pub fn handle_transport_closed(&mut self, now: Instant) {
        self.tick(now);
        let why = self.truncated().unwrap_or(CloseReason::TransportEnded);
        self.close_with(false, false, 0, b"", why);
    }

    /// What the stream ended inside of, if not at a frame boundary.
    fn truncated(&self) -> Option<CloseReason> {
        let (part, received, missing) = match self.rx {
            Rx::Preface(0) => return None,
            Rx::Preface(got) => (
                FramePart::Preface,
                u64::from(got),
                Some((PREFACE.len() - usize::from(got)) as u64),
            ),
            Rx::Head if self.head_buf.is_empty() => return None,
            Rx::Head => {
                let got = self.head_buf.len();
                let missing = self.policy.fixed_head_len().map(|n| (n - got) as u64);
                (FramePart::Head, got as u64, missing)
            }
            Rx::Payload { len, remaining, .. } => {
                (FramePart::Payload, len - remaining, Some(remaining))
            }
        };
        Some(CloseReason::TruncatedFrame {
            part,
            received,
            missing,
        })
    }

    /// Call when the deadline from [`poll_timeout`](Self::poll_timeout) has
    /// passed (early or repeated calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        if self.closed {
            return;
        }
        // Before the deadline is read: a stall deadline armed from a stale
        // time is stamped here instead of firing.
        self.stall.observe(now, self.wants_transmit());
        let Some((deadline, reason)) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        trace!(?reason, "mux timer fired");
        match reason {
            TimerReason::ChannelTimeout => self.close_with(
                true,
                false,
                ErrorCode::ChannelTimeout.to_wire(),
                b"channel timeout",
                CloseReason::ChannelTimeout,
            ),
            TimerReason::Idle => self.close_with(
                true,
                false,
                ErrorCode::Idle.to_wire(),
                b"idle",
                CloseReason::Idle,
            ),
            TimerReason::Drain => self.close_with(
                true,
                false,
                ErrorCode::DrainTimeout.to_wire(),
                b"drain timeout",
                CloseReason::DrainTimeout,
            ),
            TimerReason::Keepalive => {
                self.health.keepalive_fired();
                let _ = self.ping();
            }
            TimerReason::SendStall => {
                if !self.stall.stalled(now, self.config.send_stall_timeout) {
                    return;
                }
                let reason = alloc::format!(
                    "send stalled: no output taken for send_stall_timeout {:?}",
                    self.config.send_stall_timeout.unwrap_or_default()
                );
                self.close_with(
                    true,
                    false,
                    ErrorCode::SendStall.to_wire(),
                    reason.as_bytes(),
                    CloseReason::SendStall,
                );
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    // --------------------------------------------------------------- outputs

    /// The next deadline and what it is for; `None` when closed or nothing
    /// is timed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, TimerReason)> {
        if self.closed {
            return None;
        }
        // Called after every command by drivers: plain comparisons only.
        let mut best = self.health.deadline(&self.config);
        // Later reasons win only when strictly earlier.
        let mut consider = |t: Option<Instant>, why: TimerReason| {
            if let Some(t) = t {
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, why));
                }
            }
        };
        consider(self.drain.deadline(), TimerReason::Drain);
        let stall = self.stall.deadline(
            self.now,
            self.wants_transmit(),
            self.config.send_stall_timeout,
        );
        consider(stall, TimerReason::SendStall);
        best
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) may have bytes to
    /// send: lets a driver skip waking its IO task after a command that
    /// queued nothing (most reads, for instance). Conservative: `true` can
    /// still be followed by a `None` (a flow blocked on credit).
    #[must_use]
    pub fn wants_transmit(&self) -> bool {
        match &self.close_frame {
            Some(close) => !close.sent,
            None if self.closed => false,
            None => {
                !self.preface_sent
                    || self.sched.has_work()
                    || self.drain.has_frame()
                    || self.fc.update_due()
                    || self.opens.max_flows_due()
            }
        }
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front();
        if ev.is_none() {
            shrink_idle(&mut self.events);
        }
        ev
    }

    /// Appends bytes to send to `out` (at most `max_transmit` per call) and
    /// returns how many; `None` when there is nothing to send.
    ///
    /// Order: preface, connection control frames, flow opens (in id order;
    /// a GOAWAY never overtakes an open issued before it), per-flow control
    /// frames, then DATA round-robin across flows in chunks of `send_chunk`.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut impl TransmitBuf) -> Option<usize> {
        let mut n = 0;
        if let Some(sent) = self.close_frame.as_ref().map(|c| c.sent) {
            if sent {
                return None;
            }
            if !self.preface_sent {
                self.preface_sent = true;
                out.put_slice(PREFACE);
                n += PREFACE.len();
            }
            // A drain that ended at once still tells the peer about it.
            n += self.transmit_goaway(out);
            let close = self.close_frame.as_mut()?;
            close.sent = true;
            n += codec::put_close(out, self.policy, close.app, close.code, &close.reason);
            self.stats.frames_sent += 1;
            self.stats.bytes_sent += n as u64;
            return Some(n);
        }
        if self.closed {
            return None;
        }
        // Taken or not, nothing waits untaken once the driver asks.
        self.stall.taken();
        if !self.preface_sent {
            self.preface_sent = true;
            out.put_slice(PREFACE);
            n += PREFACE.len();
        }
        n += self.transmit_connection_control(out);
        n += self.transmit_opens(out, n);
        if !self.sched.opens_pending() {
            // After the opens: GOAWAY must not overtake flows opened before it.
            n += self.transmit_goaway(out);
        }
        n += self.transmit_flow_control(out, n);
        n += self.transmit_data(out, n);
        self.wake_write_waiters();
        self.sched.shrink();
        self.sync_budget();
        self.stats.bytes_sent += n as u64;
        (n > 0).then_some(n)
    }

    // -------------------------------------------------------------- commands

    /// Opens a flow. Data written to it goes out with the opening frame: no
    /// round trip.
    pub fn open_flow(&mut self) -> Result<FlowId, OpenError> {
        self.open(false)
    }

    /// Opens a side-channel flow: it does not keep the connection from being
    /// idle.
    pub fn open_side_channel(&mut self) -> Result<FlowId, OpenError> {
        self.open(true)
    }

    fn open(&mut self, side_channel: bool) -> Result<FlowId, OpenError> {
        if self.closed {
            return Err(OpenError::Closed);
        }
        if self.is_draining() {
            return Err(OpenError::GoingAway);
        }
        if !self
            .opens
            .try_reserve(self.policy.max_unacked_opens(&self.config))
        {
            trace!(
                limit = self.opens.local_max(),
                "mux open blocked by flow credit"
            );
            return Err(OpenError::FlowLimit);
        }
        let id = self.opens.local_next();
        if id > self.policy.max_flow_id() {
            return Err(OpenError::FlowLimit);
        }
        self.opens.opened_local(self.policy.acks_opens());
        let mut flags = flag::LOCAL;
        if side_channel {
            flags |= flag::SIDE_CHANNEL;
        }
        self.insert_flow(id, flags);
        self.sched.push_open(id);
        self.stats.flows_opened += 1;
        trace!(flow = id, side_channel, "mux flow opened");
        Ok(FlowId(id))
    }

    fn insert_flow(&mut self, id: u64, flags: u16) {
        let window = initial::FLOW_WINDOW;
        self.flows
            .insert(id, Flow::new(flags, initial::FLOW_WINDOW, window, self.now));
        self.fc.window_added(window);
        self.health.flow_added(flags & flag::SIDE_CHANNEL != 0);
        self.stats.flows_open = self.flows.len() as u64;
    }

    /// A view of one flow for reading, writing and closing it.
    pub fn flow(&mut self, id: FlowId) -> FlowMut<'_> {
        FlowMut {
            conn: self,
            id: id.0,
        }
    }

    /// Sends a PING; its PONG yields [`Event::Rtt`]. Returns the opaque value.
    pub fn ping(&mut self) -> Result<u64, PingError> {
        if self.closed {
            return Err(PingError::Closed);
        }
        let v = self.health.start_ping(
            self.now,
            self.config.max_outstanding_pings,
            self.policy.ping_mask(),
        )?;
        self.sched.queue_ping(v);
        Ok(v)
    }

    /// Starts a graceful drain: tells the peer which of its flows we
    /// accepted, refuses new ones, and closes once every flow has ended (or
    /// after `drain_timeout`).
    pub fn go_away(&mut self, code: u64) {
        if self.closed || self.drain.sent() {
            return;
        }
        let accepted_below = self.opens.peer_next();
        let code = code.min(VARINT_MAX);
        self.opens
            .refuse_peer_from(self.policy.refuse_peer_from(accepted_below));
        let frame = self
            .policy
            .goaway_at_drain_start()
            .then_some((accepted_below, code));
        self.drain.send(self.now, self.config.drain_timeout, frame);
        trace!(accepted_below, code, "mux GOAWAY sent");
        self.check_drained();
    }

    fn check_drained(&mut self) {
        if self.drain.is_complete(self.flows.is_empty()) && !self.closed {
            self.close_with(
                true,
                false,
                ErrorCode::NoError.to_wire(),
                b"drained",
                CloseReason::Drained,
            );
        }
    }

    /// Closes the connection now with an application `code` and `reason`
    /// (cut to `max_close_reason`). Unsent data is dropped; use
    /// [`go_away`](Self::go_away) to drain instead.
    pub fn close(&mut self, code: u64, reason: &[u8]) {
        self.close_with(true, true, code, reason, CloseReason::Local { code });
    }

    /// Closes the connection to make room in the process memory budget
    /// (the last resort, chosen by whoever sees every connection: the
    /// adapters). The peer gets [`ErrorCode::MemoryBudget`] and `reason`.
    /// Unlike other closes, data received and not yet read is dropped:
    /// freeing it is the point. Reads of a flow that lost data fail with
    /// `Reset(OVERLOADED)`, never a clean end.
    pub fn evict(&mut self, reason: &[u8]) {
        if self.closed {
            return;
        }
        if let Some(share) = &self.share {
            share.budget().note_eviction();
        }
        let mut dropped = 0;
        for flow in self.flows.values_mut() {
            let lost = flow.discard_recv(&mut self.pool);
            if lost > 0 {
                flow.recv_state = RecvState::Done(End::Reset(super::OVERLOADED));
            }
            dropped += lost;
        }
        self.consumed(dropped);
        let r = reason[..reason.len().min(self.config.max_close_reason)].to_vec();
        self.close_with(
            true,
            false,
            ErrorCode::MemoryBudget.to_wire(),
            reason,
            CloseReason::Evicted { reason: r },
        );
    }

    fn close_with(&mut self, send: bool, app: bool, code: u64, reason: &[u8], why: CloseReason) {
        if self.closed {
            return;
        }
        trace!(?why, "mux connection closed");
        self.closed = true;
        let reason = &reason[..reason.len().min(self.config.max_close_reason)];
        self.close_frame = send.then(|| CloseFrame {
            app,
            code: code.min(VARINT_MAX),
            reason: reason.to_vec(),
            sent: false,
        });
        self.sched.clear();
        if !matches!(why, CloseReason::Drained) {
            self.drain.drop_frame();
        }
        for (&id, flow) in self.flows.iter_mut() {
            // Wake every waiter so it sees the close.
            self.events.push_back(Event::Readable(FlowId(id)));
            if flow.has(flag::WANT_WRITABLE) {
                self.events.push_back(Event::Writable(FlowId(id)));
            }
        }
        self.close_reason = Some(why.clone());
        self.events.push_back(Event::Closed(why));
        self.sync_budget();
    }

    /// Counters for the connection.
    pub fn stats(&self) -> ConnectionStats {
        let mut s = self.stats;
        s.send_credit = self.fc.send_credit();
        s.recv_window = self.fc.recv_window();
        s.flows_open = self.flows.len() as u64;
        s.recv_buffered = self.fc.recv_buffered();
        s.send_buffered = self.fc.send_buffered() as u64;
        s.budget_held = self.share.as_ref().map_or(0, |s| s.held() as u64);
        if !self.policy.has_credit_frames() {
            // No connection window on this wire: report what the local
            // budget still allows (the peer is bounded by flow windows).
            s.recv_window = self.config.conn_recv_budget.saturating_sub(s.recv_buffered);
        }
        s
    }

    /// Counters for one flow, if it is still known.
    pub fn flow_stats(&self, id: FlowId) -> Option<FlowStats> {
        let f = self.flows.get(&id.0)?;
        Some(FlowStats {
            bytes_sent: f.sent,
            bytes_received: f.received,
            bytes_read: f.read,
            send_buffered: u64::from(f.send_buffered),
            send_credit: f.send_credit(),
            recv_window: u64::from(f.window),
            frames_sent: u64::from(f.frames_sent),
            frames_received: u64::from(f.frames_received),
        })
    }

    /// The smoothed round-trip time, once a PONG has arrived.
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.stats.srtt
    }

    /// Ids of the flows still in the table, in order.
    pub fn flow_ids(&self) -> impl Iterator<Item = FlowId> + '_ {
        self.flows.keys().map(|&id| FlowId(id))
    }
}

/// Payload of a frame whose flow is gone: counted, then dropped. No flow
/// has this id (yamux ids are 32 bits, native ones 62).
const DISCARD: u64 = u64::MAX;

/// A borrowed view of one flow, from [`Connection::flow`].
#[derive(Debug)]
pub struct FlowMut<'a> {
    conn: &'a mut Connection,
    id: u64,
}

impl FlowMut<'_> {
    /// The flow's id.
    pub fn id(&self) -> FlowId {
        FlowId(self.id)
    }

    /// Copies as much of `data` as the send buffers take; returns how much.
    /// `Err(Blocked)` when nothing fits: wait for [`Event::Writable`].
    pub fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        self.conn.write(self.id, data)
    }

    /// Like [`write`](Self::write) without copying: keeps (a prefix of)
    /// `data` by reference; returns how many bytes it took.
    pub fn write_chunk(&mut self, data: Bytes) -> Result<usize, WriteError> {
        self.conn.write_chunk(self.id, data)
    }

    /// Ends the send direction after the buffered data (FIN).
    pub fn finish(&mut self) -> Result<(), WriteError> {
        self.conn.finish(self.id)
    }

    /// Abandons the send direction with an application `code`: unsent data
    /// is dropped and the peer's reads fail with `Reset(code)`.
    pub fn reset(&mut self, code: u64) -> Result<(), WriteError> {
        self.conn.reset(self.id, code)
    }

    /// Stops reading: buffered and future data is discarded and the peer is
    /// asked to stop sending (its writes fail with `Stopped(code)`).
    pub fn stop(&mut self, code: u64) -> Result<(), ReadError> {
        self.conn.stop(self.id, code)
    }

    /// Copies buffered data into `buf`. `Ok(0)` means end of data (FIN);
    /// `Err(Blocked)` means wait for [`Event::Readable`].
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        self.conn.read(self.id, buf)
    }

    /// Takes up to `max` buffered bytes without copying. `Ok(None)` means
    /// end of data; `Err(Blocked)` means wait for [`Event::Readable`].
    pub fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, ReadError> {
        self.conn.read_chunk(self.id, max)
    }

    /// Counters for this flow.
    pub fn stats(&self) -> Option<FlowStats> {
        self.conn.flow_stats(FlowId(self.id))
    }
}
