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
use super::event::{CloseReason, ConnectionStats, Event, FlowStats, TimerReason};
use super::flow::{flag, BufferPool, End, Flow, RecvState, SendState};
use super::flow_control::ConnFlowControl;
use super::frame::{Control, DataHeader, Head, MAX_DATA_HEADER, PREFACE};
use super::health::{smooth_rtt, Health};
use super::limits::RateLimits;
use super::opens::Opens;
use super::policy::{Policy, StopMapping};
use super::scheduler::{shrink_idle, Queued, Scheduler};
use super::transmit::TransmitBuf;
use super::yamux::{self as ym, flags as yf};
use super::{FlowId, Side, REFUSED};
use crate::time::{Duration, Instant};
use crate::wire::VARINT_MAX;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    Preface(u8),
    Head,
    Payload {
        flow: u64,
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
    drain: Drain,

    stats: ConnectionStats,
}

macro_rules! trace {
    ($($t:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::debug!($($t)*);
    };
}

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
        let (credit, credit_sent, recv_max) = if policy.has_credit_frames() {
            (
                initial::CONN_WINDOW,
                initial::CONN_WINDOW,
                config.conn_recv_budget,
            )
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
            limits: RateLimits::new(now),
            drain: Drain::default(),
            stats: ConnectionStats::default(),
            config,
        };
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
        self.stats.bytes_received += data.len() as u64;
        match self.decode(data, src) {
            Ok(()) => Ok(()),
            Err(e) => {
                trace!(error = %e, "mux protocol error");
                self.close_with(
                    true,
                    false,
                    e.code().to_wire(),
                    b"protocol error",
                    CloseReason::ProtocolError(e),
                );
                Err(InputError::Protocol(e))
            }
        }
    }

    /// The transport's read side ended (EOF or error): the connection is
    /// closed; buffered data stays readable.
    pub fn handle_transport_closed(&mut self, now: Instant) {
        self.tick(now);
        self.close_with(false, false, 0, b"", CloseReason::TransportEnded);
    }

    /// Call when the deadline from [`poll_timeout`](Self::poll_timeout) has
    /// passed (early or repeated calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        if self.closed {
            return;
        }
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
        let health = self.health.deadline(&self.config);
        match (health, self.drain.deadline()) {
            // The drain deadline only wins when strictly earlier.
            (Some((t, _)), Some(d)) if d < t => Some((d, TimerReason::Drain)),
            (None, Some(d)) => Some((d, TimerReason::Drain)),
            (best, _) => best,
        }
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
        self.stats.bytes_sent += n as u64;
        (n > 0).then_some(n)
    }

    fn room(&self, used: usize) -> usize {
        self.config.max_transmit.saturating_sub(used)
    }

    fn transmit_goaway(&mut self, out: &mut impl TransmitBuf) -> usize {
        let Some((accepted_below, code)) = self.drain.take_frame() else {
            return 0;
        };
        self.stats.frames_sent += 1;
        codec::put_goaway(out, self.policy, accepted_below, code)
    }

    fn transmit_connection_control(&mut self, out: &mut impl TransmitBuf) -> usize {
        let mut n = 0;
        while let Some(q) = self.sched.pop_queued() {
            if let Some(len) = codec::put_queued(out, self.policy, q) {
                n += len;
                self.stats.frames_sent += 1;
            }
        }
        if !self.policy.has_credit_frames() {
            return n;
        }
        if let Some(max) = self.fc.take_update() {
            n += codec::put_max_data(out, max);
            self.stats.frames_sent += 1;
            self.stats.window_updates_sent += 1;
        }
        if let Some(max) = self.opens.take_max_flows() {
            n += codec::put_max_flows(out, max);
            self.stats.frames_sent += 1;
        }
        n
    }

    fn transmit_opens(&mut self, out: &mut impl TransmitBuf, used: usize) -> usize {
        let mut n = 0;
        while let Some(id) = self.sched.front_open() {
            if self.room(used + n) < MAX_DATA_HEADER + 1 {
                break;
            }
            self.sched.pop_open();
            if self.opens.local_refused(id) {
                continue; // refused by GOAWAY before the peer saw it
            }
            let Some(flow) = self.flows.get_mut(&id) else {
                continue;
            };
            flow.set(flag::ANNOUNCED);
            let side_channel = flow.has(flag::SIDE_CHANNEL);
            n += self.emit_data(out, used + n, id, side_channel, true);
            self.after_send(id);
        }
        n
    }

    fn transmit_flow_control(&mut self, out: &mut impl TransmitBuf, used: usize) -> usize {
        let mut n = 0;
        while let Some(id) = self.sched.front_ctrl() {
            // MAX_FLOW_DATA + RESET_FLOW + STOP_SENDING at their largest.
            if self.room(used + n) < 64 {
                break;
            }
            self.sched.pop_ctrl();
            let now = self.now;
            let srtt = self.stats.srtt;
            let budget = self.config.conn_recv_budget;
            let max_window = self.config.max_flow_window;
            let policy = self.policy;
            let Some(flow) = self.flows.get_mut(&id) else {
                continue;
            };
            flow.clear(flag::IN_CTRL);
            // The first frame we send on a peer's flow acknowledges it.
            let mut ack = policy.acks_opens() && flow.has(flag::ACK_PENDING);
            if ack {
                flow.clear(flag::ACK_PENDING);
            }
            if flow.has(flag::WINDOW_UPDATE) {
                flow.clear(flag::WINDOW_UPDATE);
                if matches!(flow.recv_state, RecvState::Open) {
                    // Grow when the peer used half a window within two RTTs:
                    // the window, not the path, is what limits it.
                    let window = u64::from(flow.window);
                    let since = now.saturating_duration_since(flow.last_update);
                    let grown = self.fc.grow_window(window, max_window, budget, srtt, since);
                    if grown != window {
                        flow.window = grown as u32;
                        trace!(flow = id, window = flow.window, "mux window grown");
                    }
                    flow.last_update = now;
                    let max = flow.read + u64::from(flow.window);
                    if max > flow.recv_max {
                        let old = core::mem::replace(&mut flow.recv_max, max);
                        n += codec::put_window_update(out, policy, id, old, max, ack);
                        ack = false;
                        self.stats.frames_sent += 1;
                        self.stats.window_updates_sent += 1;
                    }
                }
            }
            if let SendState::Reset {
                code,
                sent: false,
                by_peer,
            } = flow.send_state
            {
                flow.send_state = SendState::Reset {
                    code,
                    sent: true,
                    by_peer,
                };
                n += codec::put_reset(out, policy, id, code, flow.sent, ack);
                ack = false;
                self.stats.frames_sent += 1;
            }
            if ack {
                n += codec::put_ack(out, id);
                self.stats.frames_sent += 1;
            }
            if let RecvState::Stopped { code, sent: false } = flow.recv_state {
                flow.recv_state = RecvState::Stopped { code, sent: true };
                n += codec::put_stop_sending(out, id, code);
                self.stats.frames_sent += 1;
            }
            self.maybe_remove(id);
        }
        n
    }

    fn transmit_data(&mut self, out: &mut impl TransmitBuf, used: usize) -> usize {
        let mut n = 0;
        while self.room(used + n) > MAX_DATA_HEADER {
            let Some(id) = self.sched.pop_ready() else {
                break;
            };
            let conn_credit = self.fc.send_credit();
            let Some(flow) = self.flows.get_mut(&id) else {
                continue;
            };
            if !flow.wants_send() {
                flow.clear(flag::IN_READY);
                continue;
            }
            if flow.send_buffered > 0 && flow.send_credit() == 0 {
                flow.clear(flag::IN_READY); // MAX_FLOW_DATA puts it back
                continue;
            }
            let fin_only = flow.send_buffered == 0;
            if !fin_only && conn_credit == 0 {
                self.sched.block_on_conn(id); // MAX_DATA puts it back
                continue;
            }
            flow.clear(flag::IN_READY);
            n += self.emit_data(out, used + n, id, false, false);
            self.after_send(id);
        }
        n
    }

    /// Emits one DATA frame for `id` with as much as credit and room allow.
    fn emit_data(
        &mut self,
        out: &mut impl TransmitBuf,
        used: usize,
        id: u64,
        side_channel: bool,
        open: bool,
    ) -> usize {
        let policy = self.policy;
        let room = self.room(used).saturating_sub(MAX_DATA_HEADER);
        let conn_credit = self.fc.send_credit();
        let chunk = self.config.send_chunk;
        let Some(flow) = self.flows.get_mut(&id) else {
            return 0;
        };
        let len = match flow.send_state {
            SendState::Reset { .. } => 0,
            _ => (flow.send_buffered as u64)
                .min(flow.send_credit())
                .min(conn_credit)
                .min(chunk as u64)
                .min(room as u64) as usize,
        };
        let fin =
            flow.send_state == SendState::Fin { sent: false } && len == flow.send_buffered as usize;
        let ack = policy.acks_opens() && flow.has(flag::ACK_PENDING);
        if ack {
            flow.clear(flag::ACK_PENDING);
        }
        let header = DataHeader {
            flow: id,
            len: len as u64,
            fin,
            side_channel,
        };
        let hlen = codec::put_data_header(out, policy, &header, open, ack);
        let mut taken = 0;
        while taken < len {
            // One piece per queued chunk: a frame may span several writes.
            let piece = flow.take_send(len - taken, &mut self.pool);
            if piece.is_empty() {
                break;
            }
            taken += piece.len();
            out.put_bytes(piece);
        }
        debug_assert_eq!(taken, len);
        if fin {
            flow.send_state = SendState::Fin { sent: true };
        }
        flow.frames_sent = flow.frames_sent.saturating_add(1);
        self.fc.on_sent(len);
        self.stats.data_sent += len as u64;
        self.stats.frames_sent += 1;
        hlen + len
    }

    /// After a flow sent something: reschedule, wake a blocked writer, and
    /// forget the flow if it is done.
    fn after_send(&mut self, id: u64) {
        let limit = self.config.flow_send_buffer;
        let Some(flow) = self.flows.get_mut(&id) else {
            return;
        };
        if flow.has(flag::RST_AFTER_FIN) && flow.send_state == (SendState::Fin { sent: true }) {
            // yamux: our data is out; now tell the peer we stopped reading.
            flow.clear(flag::RST_AFTER_FIN);
            flow.send_state = SendState::Reset {
                code: 0,
                sent: false,
                by_peer: false,
            };
            self.sched.schedule_ctrl(id, flow);
        }
        if flow.has(flag::WANT_WRITABLE) && (flow.send_buffered as usize) < limit {
            flow.clear(flag::WANT_WRITABLE);
            self.events.push_back(Event::Writable(FlowId(id)));
        }
        self.schedule(id);
        self.maybe_remove(id);
    }

    /// Puts an announced flow with something to send in the round-robin.
    fn schedule(&mut self, id: u64) {
        if let Some(flow) = self.flows.get_mut(&id) {
            self.sched.schedule(id, flow);
        }
    }

    fn schedule_ctrl(&mut self, id: u64) {
        if let Some(flow) = self.flows.get_mut(&id) {
            self.sched.schedule_ctrl(id, flow);
        }
    }

    fn wake_write_waiters(&mut self) {
        if self.fc.send_buffered() >= self.config.conn_send_buffer {
            return;
        }
        for id in self.sched.take_write_waiters() {
            if let Some(flow) = self.flows.get_mut(&id) {
                if flow.has(flag::WANT_WRITABLE) {
                    flow.clear(flag::WANT_WRITABLE);
                    self.events.push_back(Event::Writable(FlowId(id)));
                }
            }
        }
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
        self.events.push_back(Event::Closed(why));
    }

    /// Counters for the connection.
    pub fn stats(&self) -> ConnectionStats {
        let mut s = self.stats;
        s.send_credit = self.fc.send_credit();
        s.recv_window = self.fc.recv_window();
        s.flows_open = self.flows.len() as u64;
        s.recv_buffered = self.fc.recv_buffered();
        s.send_buffered = self.fc.send_buffered() as u64;
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

    // ------------------------------------------------------- flow operations

    fn flow_for_write(&mut self, id: u64) -> Result<&mut Flow, WriteError> {
        let closed = self.closed;
        let flow = self.flows.get_mut(&id).ok_or(WriteError::UnknownFlow)?;
        match flow.send_state {
            SendState::Reset {
                code,
                by_peer: true,
                ..
            } => Err(WriteError::Stopped(code)),
            SendState::Open if closed => Err(WriteError::Closed),
            SendState::Open => Ok(flow),
            _ => Err(WriteError::Finished),
        }
    }

    /// How many bytes `id` may buffer now; registers for `Writable` if none.
    fn write_room(&mut self, id: u64, want: usize) -> Result<usize, WriteError> {
        let conn_room = self.fc.send_room(self.config.conn_send_buffer);
        let flow_limit = self.config.flow_send_buffer;
        let flow = self.flow_for_write(id)?;
        let flow_room = flow_limit.saturating_sub(flow.send_buffered as usize);
        let room = flow_room.min(conn_room).min(want);
        if room == 0 && want > 0 {
            flow.set(flag::WANT_WRITABLE);
            if conn_room == 0 {
                self.sched.add_write_waiter(id);
            }
            return Err(WriteError::Blocked);
        }
        Ok(room)
    }

    fn write(&mut self, id: u64, data: &[u8]) -> Result<usize, WriteError> {
        let n = self.write_room(id, data.len())?;
        if let Some(flow) = self.flows.get_mut(&id) {
            flow.push_send_slice(&data[..n], &mut self.pool);
        }
        self.fc.buffered(n);
        self.schedule(id);
        Ok(n)
    }

    fn write_chunk(&mut self, id: u64, mut data: Bytes) -> Result<usize, WriteError> {
        let n = self.write_room(id, data.len())?;
        data.truncate(n);
        if let Some(flow) = self.flows.get_mut(&id) {
            if n > 0 {
                flow.push_send_bytes(data, &mut self.pool);
            }
        }
        self.fc.buffered(n);
        self.schedule(id);
        Ok(n)
    }

    fn finish(&mut self, id: u64) -> Result<(), WriteError> {
        let flow = self.flow_for_write(id)?;
        flow.send_state = SendState::Fin { sent: false };
        self.schedule(id);
        Ok(())
    }

    fn reset(&mut self, id: u64, code: u64) -> Result<(), WriteError> {
        let closed = self.closed;
        let flow = self.flows.get_mut(&id).ok_or(WriteError::UnknownFlow)?;
        if closed {
            return Err(WriteError::Closed);
        }
        match flow.send_state {
            SendState::Open | SendState::Fin { sent: false } => {}
            _ => return Err(WriteError::Finished),
        }
        flow.send_state = SendState::Reset {
            code: code.min(VARINT_MAX),
            sent: false,
            by_peer: false,
        };
        let dropped = flow.discard_send(&mut self.pool);
        self.fc.unbuffered(dropped);
        trace!(flow = id, code, "mux flow reset");
        if self.policy.reset_ends_receive() {
            // Nothing more will arrive: drop what did.
            let flow = self.flows.get_mut(&id).ok_or(WriteError::UnknownFlow)?;
            let dropped = match flow.recv_state {
                RecvState::Done(_) => 0,
                _ => {
                    flow.recv_state = RecvState::Done(End::Stopped);
                    flow.discard_recv(&mut self.pool)
                }
            };
            self.consumed(dropped);
        }
        self.schedule_ctrl(id);
        Ok(())
    }

    fn stop(&mut self, id: u64, code: u64) -> Result<(), ReadError> {
        if self.policy.stop_mapping() == StopMapping::Rst {
            return self.stop_with_rst(id, code);
        }
        let flow = self.flows.get_mut(&id).ok_or(ReadError::UnknownFlow)?;
        let dropped = match flow.recv_state {
            RecvState::Open => {
                flow.recv_state = RecvState::Stopped {
                    code: code.min(VARINT_MAX),
                    sent: self.closed,
                };
                flow.discard_recv(&mut self.pool)
            }
            RecvState::Fin { .. } | RecvState::Reset { .. } => {
                flow.recv_state = RecvState::Done(End::Stopped);
                flow.discard_recv(&mut self.pool)
            }
            RecvState::Stopped { .. } | RecvState::Done(_) => return Ok(()),
        };
        self.consumed(dropped);
        self.schedule_ctrl(id);
        self.maybe_remove(id);
        Ok(())
    }

    /// yamux has no STOP_SENDING, only RST, which ends both directions. A
    /// reader that stops while the peer may still send discards what
    /// arrives and sends RST: at once if we are still writing (our sending
    /// ends too), or once our data and FIN are on the wire if we already
    /// finished, so a finished writer's data is never lost.
    fn stop_with_rst(&mut self, id: u64, code: u64) -> Result<(), ReadError> {
        let closed = self.closed;
        let flow = self.flows.get_mut(&id).ok_or(ReadError::UnknownFlow)?;
        let rst = match flow.recv_state {
            RecvState::Open => true,
            RecvState::Fin { .. } | RecvState::Reset { .. } => false,
            RecvState::Stopped { .. } | RecvState::Done(_) => return Ok(()),
        };
        flow.recv_state = RecvState::Done(End::Stopped);
        let dropped = flow.discard_recv(&mut self.pool);
        let mut unsent = 0;
        if rst && !closed {
            match flow.send_state {
                SendState::Open | SendState::Fin { sent: true } => {
                    unsent = flow.discard_send(&mut self.pool);
                    flow.send_state = SendState::Reset {
                        code: code.min(VARINT_MAX),
                        sent: false,
                        by_peer: false,
                    };
                    if flow.has(flag::WANT_WRITABLE) {
                        flow.clear(flag::WANT_WRITABLE);
                        self.events.push_back(Event::Writable(FlowId(id)));
                    }
                }
                SendState::Fin { sent: false } => flow.set(flag::RST_AFTER_FIN),
                SendState::Reset { .. } => {}
            }
        }
        self.fc.unbuffered(unsent);
        self.consumed(dropped);
        self.schedule_ctrl(id);
        self.maybe_remove(id);
        Ok(())
    }

    fn read(&mut self, id: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let flow = self.flows.get_mut(&id).ok_or(ReadError::UnknownFlow)?;
        flow.clear(flag::READABLE_SIGNALED);
        if buf.is_empty() {
            return Ok(0);
        }
        if flow.recv_buffered() > 0 {
            let n = flow.read_into(buf, &mut self.pool);
            self.after_read(id, n as u64);
            return Ok(n);
        }
        self.read_end(id).map(|()| 0)
    }

    fn read_chunk(&mut self, id: u64, max: usize) -> Result<Option<Bytes>, ReadError> {
        let flow = self.flows.get_mut(&id).ok_or(ReadError::UnknownFlow)?;
        flow.clear(flag::READABLE_SIGNALED);
        if let Some(chunk) = flow.read_chunk(max.max(1), &mut self.pool) {
            self.after_read(id, chunk.len() as u64);
            return Ok(Some(chunk));
        }
        self.read_end(id).map(|()| None)
    }

    /// Nothing buffered: EOF, an error, or "wait".
    fn read_end(&mut self, id: u64) -> Result<(), ReadError> {
        let closed = self.closed;
        let Some(flow) = self.flows.get_mut(&id) else {
            return Err(ReadError::UnknownFlow);
        };
        let r = match flow.recv_state {
            RecvState::Open if closed => Err(ReadError::Closed),
            RecvState::Open => Err(ReadError::Blocked),
            RecvState::Fin { final_size } if final_size == flow.read => {
                flow.recv_state = RecvState::Done(End::Eof);
                Ok(())
            }
            RecvState::Fin { .. } => Err(ReadError::Blocked),
            RecvState::Reset { code } => {
                flow.recv_state = RecvState::Done(End::Reset(code));
                Err(ReadError::Reset(code))
            }
            RecvState::Stopped { .. } | RecvState::Done(End::Stopped) => Err(ReadError::Stopped),
            RecvState::Done(End::Eof) => Ok(()),
            RecvState::Done(End::Reset(code)) => Err(ReadError::Reset(code)),
        };
        self.maybe_remove(id);
        r
    }

    fn after_read(&mut self, id: u64, n: u64) {
        if let Some(flow) = self.flows.get_mut(&id) {
            if matches!(flow.recv_state, RecvState::Open)
                && flow.recv_max - flow.read < u64::from(flow.window) / 2
                && flow.raise(flag::WINDOW_UPDATE)
            {
                self.schedule_ctrl(id);
            }
        }
        self.consumed(n);
    }

    /// `n` received bytes left the buffers (read or discarded).
    fn consumed(&mut self, n: u64) {
        self.fc.consumed(n, self.config.conn_recv_budget);
    }

    /// Forgets a flow whose both directions are done.
    fn maybe_remove(&mut self, id: u64) {
        if self.closed {
            return;
        }
        let Some(flow) = self.flows.get(&id) else {
            return;
        };
        if !(flow.send_done() && flow.recv_done()) {
            return;
        }
        let Some(flow) = self.flows.remove(&id) else {
            return;
        };
        self.fc.window_removed(u64::from(flow.window));
        self.health
            .flow_removed(flow.has(flag::SIDE_CHANNEL), self.now);
        if !flow.has(flag::LOCAL) {
            self.opens.peer_flow_ended();
        }
        if self.policy.acks_opens() && flow.has(flag::LOCAL) && !flow.has(flag::PEER_ACKED) {
            self.ack_arrived(); // the peer forgets it too
        }
        self.stats.flows_open = self.flows.len() as u64;
        self.events.push_back(Event::FlowClosed(FlowId(id)));
        trace!(flow = id, "mux flow closed");
        self.check_drained();
    }

    // --------------------------------------------------------------- decoding

    fn decode(&mut self, data: &[u8], src: Option<&Bytes>) -> Result<(), ProtocolError> {
        let mut pos = 0;
        while pos < data.len() && !self.closed {
            match self.rx {
                Rx::Preface(got) => {
                    let got = got as usize;
                    let n = (PREFACE.len() - got).min(data.len() - pos);
                    if data[pos..pos + n] != PREFACE[got..got + n] {
                        return Err(ProtocolError::BadPreface);
                    }
                    pos += n;
                    self.rx = if got + n == PREFACE.len() {
                        Rx::Head
                    } else {
                        Rx::Preface((got + n) as u8)
                    };
                }
                Rx::Payload {
                    flow,
                    remaining,
                    fin,
                } => {
                    let n = remaining.min((data.len() - pos) as u64) as usize;
                    self.deliver(flow, &data[pos..pos + n], src);
                    pos += n;
                    let remaining = remaining - n as u64;
                    if remaining == 0 {
                        self.rx = Rx::Head;
                        if fin {
                            self.recv_fin(flow);
                        }
                    } else {
                        self.rx = Rx::Payload {
                            flow,
                            remaining,
                            fin,
                        };
                    }
                }
                Rx::Head if self.head_buf.is_empty() => match self.head(&data[pos..])? {
                    Some(used) => pos += used,
                    None => {
                        self.stash_head(&data[pos..])?;
                        pos = data.len();
                    }
                },
                Rx::Head => {
                    let had = self.head_buf.len();
                    let take = (self.head_cap() - had).min(data.len() - pos);
                    self.head_buf.extend_from_slice(&data[pos..pos + take]);
                    let buf = core::mem::take(&mut self.head_buf);
                    let r = self.head(&buf);
                    self.head_buf = buf;
                    match r? {
                        Some(used) => {
                            pos += used - had;
                            self.head_buf.clear();
                        }
                        None => {
                            if self.head_buf.len() >= self.head_cap() {
                                return Err(ProtocolError::Malformed("frame head too long"));
                            }
                            pos += take;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Decodes and handles one frame head at the front of `buf`: the bytes
    /// it used, or `None` when `buf` holds only part of it.
    fn head(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some((frame, used)) = codec::decode(self.policy, buf, self.config.max_close_reason)?
        else {
            return Ok(None);
        };
        self.stats.frames_received += 1;
        match frame {
            Frame::Native(Head::Data(h)) => self.on_data_header(h)?,
            Frame::Native(Head::Control(c)) => self.on_control(c)?,
            Frame::Yamux(h) => self.on_yamux(h)?,
        }
        Ok(Some(used))
    }

    fn head_cap(&self) -> usize {
        codec::head_cap(self.policy, self.config.max_close_reason)
    }

    fn stash_head(&mut self, rest: &[u8]) -> Result<(), ProtocolError> {
        if rest.len() >= self.head_cap() {
            return Err(ProtocolError::Malformed("frame head too long"));
        }
        self.head_buf.extend_from_slice(rest);
        Ok(())
    }

    fn max_data_payload(&self) -> u64 {
        self.policy.max_data_payload(&self.config)
    }

    fn on_yamux(&mut self, h: ym::Header) -> Result<(), ProtocolError> {
        match h.ty {
            ym::Type::Data | ym::Type::WindowUpdate => self.on_yamux_stream(h),
            ym::Type::Ping => {
                if h.stream != 0 {
                    return Err(ProtocolError::BadFlowId(h.stream.into()));
                }
                let v = u64::from(h.length);
                if h.has(yf::ACK) {
                    self.on_control(Control::Pong(v))
                } else if h.has(yf::SYN) {
                    self.on_control(Control::Ping(v))
                } else {
                    Err(ProtocolError::Malformed("yamux ping without SYN or ACK"))
                }
            }
            ym::Type::GoAway => {
                if h.stream != 0 {
                    return Err(ProtocolError::BadFlowId(h.stream.into()));
                }
                let code = match h.length {
                    ym::go_away::NORMAL => {
                        // No last-accepted id on this wire: every flow we
                        // opened counts as accepted, as yamux peers keep
                        // serving them.
                        let next = self.opens.local_next();
                        self.on_goaway(next, 0);
                        return Ok(());
                    }
                    ym::go_away::PROTOCOL_ERROR => ErrorCode::ProtocolViolation,
                    ym::go_away::INTERNAL_ERROR => ErrorCode::Internal,
                    other => ErrorCode::Unknown(other.into()),
                };
                trace!(?code, "yamux GoAway with an error");
                self.close_with(
                    false,
                    false,
                    0,
                    b"",
                    CloseReason::Transport {
                        code,
                        reason: Vec::new(),
                    },
                );
                Ok(())
            }
        }
    }

    /// A Data or WindowUpdate header: flags first (SYN, ACK, RST), then the
    /// window delta or the payload, then FIN.
    fn on_yamux_stream(&mut self, h: ym::Header) -> Result<(), ProtocolError> {
        let id = u64::from(h.stream);
        let len = match h.ty {
            ym::Type::Data => u64::from(h.length),
            _ => 0,
        };
        if len > self.max_data_payload() {
            return Err(ProtocolError::FrameTooLarge(len));
        }
        if id == 0 {
            return Err(ProtocolError::BadFlowId(0));
        }
        let peer = self.opens.is_peer_id(id);
        let fresh = peer && !self.flows.contains_key(&id) && self.opens.peer_id_fresh(id);
        if h.has(yf::SYN) {
            if !peer {
                return Err(ProtocolError::BadFlowId(id));
            }
            self.yamux_open(id)?;
        } else if fresh && h.has(yf::RST) {
            // rust-yamux resets a stream it dropped unused without ever
            // opening it: the id is spent.
            self.claim_peer_id(id)?;
        } else if fresh {
            // ... and closes one it never wrote to with a bare FIN: take
            // that as the open it stands for.
            self.yamux_open(id)?;
        } else if !peer && id >= self.opens.local_next() {
            return Err(ProtocolError::BadFlowId(id));
        }
        if h.has(yf::ACK) && !peer {
            if let Some(flow) = self.flows.get_mut(&id) {
                if flow.raise(flag::PEER_ACKED) {
                    self.ack_arrived();
                }
            }
        }
        if h.has(yf::RST) {
            self.yamux_reset(id)?;
            if len > 0 {
                self.rx = Rx::Payload {
                    flow: DISCARD,
                    remaining: len,
                    fin: false,
                };
            }
            return Ok(());
        }
        if h.ty == ym::Type::WindowUpdate {
            if let Some(flow) = self.flows.get_mut(&id) {
                let delta = u64::from(h.length);
                if flow.send_credit() + delta > u64::from(u32::MAX) {
                    return Err(ProtocolError::BadCredit);
                }
                if delta > 0 {
                    flow.send_max += delta;
                    self.schedule(id);
                }
            }
            if h.has(yf::FIN) {
                self.recv_fin(id);
            }
            return Ok(());
        }
        self.on_data_header(DataHeader {
            flow: id,
            len,
            fin: h.has(yf::FIN),
            side_channel: false,
        })
    }

    /// The peer's SYN for `id`: accept it, or refuse it with RST.
    fn yamux_open(&mut self, id: u64) -> Result<(), ProtocolError> {
        self.claim_peer_id(id)?;
        if self.opens.refusing_peer() || !self.opens.peer_may_open() {
            trace!(flow = id, "yamux open refused with RST");
            self.limits
                .reset(self.now, self.config.max_resets_per_sec)?;
            return self.queue(Queued::Rst(id));
        }
        self.accept(id, false)
    }

    /// Marks peer id `id` used: it may not be opened again.
    fn claim_peer_id(&mut self, id: u64) -> Result<(), ProtocolError> {
        if self.flows.contains_key(&id) {
            return Err(ProtocolError::BadFlowId(id)); // already open
        }
        self.opens
            .claim_peer_id(id, self.config.max_concurrent_flows)
    }

    /// The peer's RST: both directions of `id` end.
    fn yamux_reset(&mut self, id: u64) -> Result<(), ProtocolError> {
        self.limits
            .reset(self.now, self.config.max_resets_per_sec)?;
        let Some(flow) = self.flows.get_mut(&id) else {
            return Ok(());
        };
        let dropped = match flow.send_state {
            SendState::Open | SendState::Fin { sent: false } => {
                let dropped = flow.discard_send(&mut self.pool);
                flow.send_state = SendState::Reset {
                    code: 0,
                    sent: true,
                    by_peer: true,
                };
                dropped
            }
            SendState::Reset { code, by_peer, .. } => {
                // Our own RST need not follow: the stream is gone.
                flow.send_state = SendState::Reset {
                    code,
                    sent: true,
                    by_peer,
                };
                0
            }
            SendState::Fin { sent: true } => 0,
        };
        if flow.has(flag::WANT_WRITABLE) {
            flow.clear(flag::WANT_WRITABLE);
            self.events.push_back(Event::Writable(FlowId(id)));
        }
        self.fc.unbuffered(dropped);
        match flow.recv_state {
            RecvState::Open => {
                flow.recv_state = RecvState::Reset { code: 0 };
                if flow.raise(flag::READABLE_SIGNALED) {
                    self.events.push_back(Event::Readable(FlowId(id)));
                }
            }
            // After its FIN the peer's data is complete: the RST only
            // ends our direction (a stopped reader's way to say so).
            RecvState::Fin { .. } => {}
            RecvState::Stopped { .. } => flow.recv_state = RecvState::Done(End::Stopped),
            RecvState::Reset { .. } | RecvState::Done(_) => {}
        }
        self.maybe_remove(id);
        Ok(())
    }

    /// One of our opens was acknowledged (or forgotten by both sides).
    fn ack_arrived(&mut self) {
        if self.opens.ack_arrived() {
            self.events.push_back(Event::FlowCredit);
        }
    }

    fn on_data_header(&mut self, h: DataHeader) -> Result<(), ProtocolError> {
        if h.len > self.max_data_payload() {
            return Err(ProtocolError::FrameTooLarge(h.len));
        }
        self.fc.check_recv(h.len)?;
        let id = h.flow;
        if !self.policy.opens_in_id_order() {
            // Opens and unknown ids were settled by `on_yamux_stream`.
        } else if self.opens.is_peer_id(id) && id == self.opens.peer_next() {
            self.accept(id, h.side_channel)?;
        } else {
            self.opens.check_known(id)?;
        }
        if let Some(flow) = self.flows.get_mut(&id) {
            flow.frames_received = flow.frames_received.saturating_add(1);
            if flow.received + h.len > flow.recv_max {
                return Err(ProtocolError::FlowControl);
            }
            let end = flow.received + h.len;
            match flow.recv_state {
                RecvState::Fin { final_size } if end > final_size || h.fin && end != final_size => {
                    return Err(ProtocolError::FinalSize)
                }
                RecvState::Reset { .. } if h.len > 0 => return Err(ProtocolError::FinalSize),
                _ => {}
            }
        }
        self.rx = Rx::Payload {
            flow: id,
            remaining: h.len,
            fin: h.fin,
        };
        if h.len == 0 {
            self.rx = Rx::Head;
            if h.fin {
                self.recv_fin(id);
            }
        }
        Ok(())
    }

    /// The peer opens its next flow.
    fn accept(&mut self, id: u64, side_channel: bool) -> Result<(), ProtocolError> {
        if !self.opens.peer_may_open() {
            trace!(
                flow = id,
                limit = self.opens.peer_max(),
                "mux flow refused: limit"
            );
            return Err(ProtocolError::FlowLimit);
        }
        self.opens.opened_peer();
        if self.opens.peer_refused(id) {
            trace!(flow = id, "mux flow refused: GOAWAY sent");
            return Ok(()); // its data is discarded; the peer knows from GOAWAY
        }
        let mut flags = flag::ANNOUNCED;
        if side_channel {
            flags |= flag::SIDE_CHANNEL;
        }
        let ack = self.policy.acks_opens();
        if ack {
            flags |= flag::ACK_PENDING;
        }
        self.insert_flow(id, flags);
        if ack {
            // Acknowledge at once: the peer counts unacknowledged opens.
            self.schedule_ctrl(id);
        }
        self.stats.flows_accepted += 1;
        self.events.push_back(Event::FlowOpened {
            id: FlowId(id),
            side_channel,
        });
        trace!(flow = id, side_channel, "mux flow accepted");
        Ok(())
    }

    /// A piece of DATA payload for `id`.
    fn deliver(&mut self, id: u64, piece: &[u8], src: Option<&Bytes>) {
        let n = piece.len() as u64;
        self.fc.on_received(n);
        self.stats.data_received += n;
        let keep = match self.flows.get_mut(&id) {
            Some(flow) => {
                if matches!(flow.recv_state, RecvState::Open | RecvState::Fin { .. }) {
                    flow.push_recv(piece, src, &mut self.pool);
                    if flow.raise(flag::READABLE_SIGNALED) {
                        self.events.push_back(Event::Readable(FlowId(id)));
                    }
                    true
                } else {
                    flow.received += n;
                    flow.read += n;
                    false
                }
            }
            None => false,
        };
        if !keep {
            self.consumed(n); // nobody will read it: give the credit back
        }
    }

    fn recv_fin(&mut self, id: u64) {
        let Some(flow) = self.flows.get_mut(&id) else {
            return;
        };
        match flow.recv_state {
            RecvState::Open => {
                flow.recv_state = RecvState::Fin {
                    final_size: flow.received,
                };
                if flow.raise(flag::READABLE_SIGNALED) {
                    self.events.push_back(Event::Readable(FlowId(id)));
                }
            }
            RecvState::Stopped { .. } => {
                flow.recv_state = RecvState::Done(End::Stopped);
                self.maybe_remove(id);
            }
            _ => {}
        }
    }

    fn on_control(&mut self, c: Control<'_>) -> Result<(), ProtocolError> {
        match c {
            Control::Ping(v) => {
                self.limits.ping(self.now, self.config.max_pings_per_sec)?;
                self.queue(Queued::Pong(v))?;
            }
            Control::Pong(v) => {
                // Unknown values are ignored: they cost nothing to drop.
                if let Some(sample) = self.health.on_pong(v, self.now) {
                    self.stats.rtt = Some(sample);
                    self.stats.srtt = Some(smooth_rtt(self.stats.srtt, sample));
                    self.events.push_back(Event::Rtt {
                        ping: v,
                        rtt: sample,
                    });
                }
            }
            Control::MaxData(max) => {
                if self.fc.raise_send_max(max) {
                    self.sched.unblock_conn();
                }
            }
            Control::MaxFlowData { flow: id, max } => {
                self.opens.check_known(id)?;
                if let Some(flow) = self.flows.get_mut(&id) {
                    if max > flow.send_max {
                        flow.send_max = max;
                        self.schedule(id);
                    }
                }
            }
            Control::MaxFlows(max) => {
                if max > 1 << 60 {
                    return Err(ProtocolError::BadCredit);
                }
                if self.opens.raise_local_max(max) {
                    self.events.push_back(Event::FlowCredit);
                }
            }
            Control::ResetFlow {
                flow: id,
                code,
                final_size,
            } => {
                self.opens.check_known(id)?;
                self.limits
                    .reset(self.now, self.config.max_resets_per_sec)?;
                self.on_reset(id, code, final_size)?;
            }
            Control::StopSending { flow: id, code } => {
                self.opens.check_known(id)?;
                self.on_stop_sending(id, code);
            }
            Control::GoAway {
                accepted_below,
                code,
            } => self.on_goaway(accepted_below, code),
            Control::ConnectionClose { code, reason } => {
                let code = ErrorCode::from_wire(code);
                let reason = reason.to_vec();
                self.close_with(
                    false,
                    false,
                    0,
                    b"",
                    CloseReason::Transport { code, reason },
                );
            }
            Control::ApplicationClose { code, reason } => {
                let reason = reason.to_vec();
                self.close_with(
                    false,
                    true,
                    0,
                    b"",
                    CloseReason::Application { code, reason },
                );
            }
        }
        Ok(())
    }

    fn queue(&mut self, q: Queued) -> Result<(), ProtocolError> {
        self.sched.queue(q, self.config.max_queued_control)
    }

    fn on_reset(&mut self, id: u64, code: u64, final_size: u64) -> Result<(), ProtocolError> {
        let Some(flow) = self.flows.get_mut(&id) else {
            return Ok(());
        };
        if final_size != flow.received {
            return Err(ProtocolError::FinalSize);
        }
        match flow.recv_state {
            RecvState::Open | RecvState::Fin { .. } => {
                flow.recv_state = RecvState::Reset { code };
                if flow.raise(flag::READABLE_SIGNALED) {
                    self.events.push_back(Event::Readable(FlowId(id)));
                }
            }
            RecvState::Stopped { .. } => {
                flow.recv_state = RecvState::Done(End::Stopped);
                self.maybe_remove(id);
            }
            RecvState::Reset { .. } | RecvState::Done(_) => {}
        }
        Ok(())
    }

    fn on_stop_sending(&mut self, id: u64, code: u64) {
        let Some(flow) = self.flows.get_mut(&id) else {
            return;
        };
        if !matches!(
            flow.send_state,
            SendState::Open | SendState::Fin { sent: false }
        ) {
            return;
        }
        flow.send_state = SendState::Reset {
            code,
            sent: false,
            by_peer: true,
        };
        let dropped = flow.discard_send(&mut self.pool);
        if flow.has(flag::WANT_WRITABLE) {
            flow.clear(flag::WANT_WRITABLE);
            self.events.push_back(Event::Writable(FlowId(id)));
        }
        self.fc.unbuffered(dropped);
        self.schedule_ctrl(id);
    }

    fn on_goaway(&mut self, accepted_below: u64, code: u64) {
        if !self.drain.receive(self.now, self.config.drain_timeout) {
            return;
        }
        self.opens.refused_local_from(accepted_below);
        trace!(accepted_below, code, "mux GOAWAY received");
        self.events.push_back(Event::GoAway {
            accepted_below,
            code,
        });
        let refused: Vec<u64> = self
            .flows
            .range(accepted_below..)
            .filter(|(_, f)| f.has(flag::LOCAL))
            .map(|(&id, _)| id)
            .collect();
        for id in refused {
            let Some(flow) = self.flows.get_mut(&id) else {
                continue;
            };
            let dropped = flow.discard_send(&mut self.pool);
            self.fc.unbuffered(dropped);
            flow.send_state = SendState::Reset {
                code: REFUSED,
                sent: true,
                by_peer: true,
            };
            if matches!(flow.recv_state, RecvState::Open | RecvState::Fin { .. }) {
                flow.recv_state = RecvState::Reset { code: REFUSED };
            }
            self.events.push_back(Event::Readable(FlowId(id)));
            self.events.push_back(Event::Writable(FlowId(id)));
        }
        self.check_drained();
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
