//! The mux as a [`SimCore`]: the simulator drives it with no glue; plus
//! the [`extra`] ops and error mappings an adapter's recorder needs to log
//! a live connection in the same form.
//!
//! Commands ignore the `now` they are given: the mux takes the time of its
//! latest input, as its contract says.

use super::config::{initial, Profile};
use super::config_text::MuxConfigError;
use super::{CloseReason, Connection, ErrorCode, Event, FlowId, OpenError, ReadError, WriteError};
use crate::sim::{
    BudgetUse, CmdError, CoreEvent, DeliveryMismatch, ReadOutcome, SimCore, StreamId,
};
use crate::time::Instant;
use alloc::vec::Vec;

impl SimCore for Connection {
    fn poll_event(&mut self) -> Option<CoreEvent> {
        Connection::poll_event(self).map(|e| CoreEvent::from(&e))
    }

    fn open(&mut self, _now: Instant) -> Result<StreamId, CmdError> {
        match self.open_flow() {
            Ok(id) => Ok(id.0),
            Err(e) => Err(open_err(e)),
        }
    }

    fn write(&mut self, _now: Instant, s: StreamId, data: &[u8]) -> Result<usize, CmdError> {
        match self.flow(FlowId(s)).write(data) {
            Ok(0) if !data.is_empty() => Err(CmdError::Blocked),
            Ok(n) => Ok(n),
            Err(e) => Err(write_err(e)),
        }
    }

    fn finish(&mut self, _now: Instant, s: StreamId) -> Result<(), CmdError> {
        self.flow(FlowId(s)).finish().map_err(write_err)
    }

    fn reset(&mut self, _now: Instant, s: StreamId, code: u64) -> Result<(), CmdError> {
        self.flow(FlowId(s)).reset(code).map_err(write_err)
    }

    fn read(
        &mut self,
        _now: Instant,
        s: StreamId,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<ReadOutcome, CmdError> {
        match self.flow(FlowId(s)).read_chunk(max) {
            Ok(Some(b)) => {
                out.extend_from_slice(&b);
                Ok(ReadOutcome::Data(b.len()))
            }
            Ok(None) => Ok(ReadOutcome::Fin),
            Err(e) => Err(read_err(e)),
        }
    }

    fn drain(&mut self, _now: Instant) {
        self.go_away(0)
    }

    fn extra(
        &mut self,
        _now: Instant,
        op: u64,
        s: StreamId,
        arg: u64,
        data: &[u8],
    ) -> Result<u64, CmdError> {
        match op {
            extra::OPEN_SIDE_CHANNEL => self.open_side_channel().map(|id| id.0).map_err(open_err),
            extra::STOP => self.flow(FlowId(s)).stop(arg).map(|()| 0).map_err(read_err),
            extra::PING => self.ping().map_err(|_| CmdError::Blocked),
            extra::GO_AWAY => {
                self.go_away(arg);
                Ok(0)
            }
            extra::EVICT => {
                self.evict(data);
                Ok(0)
            }
            extra::CLOSE => {
                Connection::close(self, arg, data);
                Ok(0)
            }
            extra::WRITE_CHUNK => match self
                .flow(FlowId(s))
                .write_chunk(bytes::Bytes::copy_from_slice(data))
            {
                Ok(n) => Ok(n as u64),
                Err(e) => Err(write_err(e)),
            },
            extra::READ => copying_read(self, s, arg, &mut Vec::new()),
            _ => Err(CmdError::Gone),
        }
    }

    /// The floor is what `budget.rs` calls the protocol floors, plus the
    /// writes a pressure check still lets in: the native initial connection
    /// window (the peer may fill it before any grant), or on yamux each
    /// open stream's initial window; `pressure_send_floor` unsent bytes
    /// and one `send_chunk` (the write that finds pressure below Shrink may
    /// take that much past it); and the per-flow state charge.
    fn budget_use(&self) -> Option<BudgetUse> {
        let cfg = self.config();
        cfg.budget.as_ref()?;
        let st = self.stats();
        let windows = match cfg.profile {
            Profile::Native => initial::CONN_WINDOW,
            Profile::Yamux => st.flows_open * initial::FLOW_WINDOW,
        };
        let writes = (cfg.pressure_send_floor + cfg.send_chunk) as u64;
        Some(BudgetUse {
            held: st.budget_held,
            floor: windows + writes + st.flows_open * super::connection::FLOW_STATE_BYTES,
        })
    }

    fn ping_op(&self) -> Option<u64> {
        Some(extra::PING)
    }

    fn closed_by_limit(&self) -> Option<&'static str> {
        let code = match self.close_reason()? {
            CloseReason::SendStall => return Some("send-stall"),
            CloseReason::Evicted { .. } => return Some("memory-budget"),
            CloseReason::ProtocolError(e) => e.code(),
            _ => return None,
        };
        match code {
            ErrorCode::PingFlood => Some("ping-flood"),
            ErrorCode::ResetFlood => Some("reset-flood"),
            ErrorCode::OpenFlood => Some("open-flood"),
            ErrorCode::ControlQueueFull => Some("control-queue-full"),
            _ => None,
        }
    }

    /// [`extra::READ`] with a non-empty `data` is a read whose recording
    /// holds the bytes it delivered: the replay reads and compares them.
    fn replay_extra(
        &mut self,
        now: Instant,
        op: u64,
        s: StreamId,
        arg: u64,
        data: &[u8],
    ) -> Result<Result<u64, CmdError>, DeliveryMismatch> {
        if op != extra::READ || data.is_empty() {
            return Ok(SimCore::extra(self, now, op, s, arg, data));
        }
        let offset = self.flow_stats(FlowId(s)).map_or(0, |st| st.bytes_read);
        let mut got = Vec::new();
        let r = copying_read(self, s, arg, &mut got);
        match DeliveryMismatch::find(s, offset, &got, data) {
            None => Ok(r),
            Some(m) => Err(m),
        }
    }
}

/// `flow(s).read(&mut [0; arg])`; `got` receives the bytes read. The
/// buffer is no larger than what the flow holds (at least one byte, so
/// an empty flow still reports end of data, a reset or "blocked" as the
/// recorded read did): the same read, whatever `arg` a trace claims.
fn copying_read(
    c: &mut Connection,
    s: StreamId,
    arg: u64,
    got: &mut Vec<u8>,
) -> Result<u64, CmdError> {
    let buffered = c
        .flow_stats(FlowId(s))
        .map_or(0, |st| st.bytes_received.saturating_sub(st.bytes_read));
    let len = usize::try_from(arg.min(buffered.max(1))).unwrap_or(usize::MAX);
    got.clear();
    got.resize(len, 0);
    match c.flow(FlowId(s)).read(got) {
        Ok(n) => {
            got.truncate(n);
            Ok(n as u64)
        }
        Err(e) => {
            got.clear();
            Err(read_err(e))
        }
    }
}

/// The mux's [`SimCore::extra`] ops: the parts of its API the stream
/// workload does not cover, so an adapter's recording replays exactly.
pub mod extra {
    /// `open_side_channel()`; the result is the flow id.
    pub const OPEN_SIDE_CHANNEL: u64 = 1;
    /// `flow(stream).stop(arg)`.
    pub const STOP: u64 = 2;
    /// `ping()`; the result is the opaque value.
    pub const PING: u64 = 3;
    /// `go_away(arg)`.
    pub const GO_AWAY: u64 = 4;
    /// `close(arg, data)`.
    pub const CLOSE: u64 = 5;
    /// `flow(stream).read(&mut [0; arg])`, copying; the result is the count
    /// (0 = end of data). The byte argument, if not empty, is what the read
    /// delivered: replay ([`SimCore::replay_extra`]) reads and compares it
    /// byte for byte. Empty, only the count is checked (older recordings).
    pub const READ: u64 = 6;
    /// `flow(stream).write_chunk(data)` (queues differently from `write`);
    /// the result is the count taken.
    pub const WRITE_CHUNK: u64 = 7;
    /// `evict(data)`: closed to make room in the memory budget.
    pub const EVICT: u64 = 8;
}

impl From<&Event> for CoreEvent {
    fn from(e: &Event) -> Self {
        match *e {
            Event::FlowOpened { id, .. } => CoreEvent::Opened(id.0),
            Event::Readable(id) => CoreEvent::Readable(id.0),
            Event::Writable(id) => CoreEvent::Writable(id.0),
            Event::FlowClosed(id) => CoreEvent::StreamClosed(id.0),
            Event::FlowCredit => CoreEvent::Credit,
            Event::GoAway { .. } => CoreEvent::Draining,
            Event::Closed(ref reason) => CoreEvent::Closed {
                clean: matches!(
                    reason,
                    CloseReason::Local { .. }
                        | CloseReason::Drained
                        | CloseReason::Application { .. }
                        | CloseReason::Transport {
                            code: ErrorCode::NoError,
                            ..
                        }
                ),
            },
            _ => CoreEvent::Other,
        }
    }
}

/// How an `open_flow` error reads as a [`CmdError`] (as [`SimCore::open`] maps it).
pub fn open_err(e: OpenError) -> CmdError {
    match e {
        OpenError::FlowLimit => CmdError::Blocked,
        _ => CmdError::Closed,
    }
}

/// How a read or stop error reads as a [`CmdError`].
pub fn read_err(e: ReadError) -> CmdError {
    match e {
        ReadError::Blocked => CmdError::Blocked,
        ReadError::Reset(c) => CmdError::Reset(c),
        ReadError::Closed => CmdError::Closed,
        _ => CmdError::Gone,
    }
}

/// How a write, finish or reset error reads as a [`CmdError`].
pub fn write_err(e: WriteError) -> CmdError {
    match e {
        WriteError::Blocked => CmdError::Blocked,
        WriteError::Stopped(c) => CmdError::Reset(c),
        WriteError::Closed => CmdError::Closed,
        _ => CmdError::Gone,
    }
}

/// The mux config an adapter recording was made with: `None` if the
/// trace is not an adapter recording (no [`ADAPTER_CONFIG_NOTE`](crate::sim::driver::ADAPTER_CONFIG_NOTE)), else the
/// decoded config or why it cannot be rebuilt.
pub fn recorded_mux_config(
    records: &[crate::sim::trace::Record<'_>],
) -> Option<Result<super::Config, MuxConfigError>> {
    let note = records.iter().find(|r| {
        r.tag == crate::sim::trace::tag::NOTE
            && r.field(0) == crate::sim::driver::ADAPTER_CONFIG_NOTE
    })?;
    Some(
        core::str::from_utf8(note.payload)
            .map_err(|_| MuxConfigError::NotEncoded)
            .and_then(super::config_text::decode_mux_config),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::{Config, Side};

    #[test]
    fn a_recorded_read_count_never_sizes_the_buffer_beyond_what_the_flow_holds() {
        let now = Instant::ZERO;
        let mut a = Connection::new(Config::default(), Side::Dialer, now).unwrap();
        let mut b = Connection::new(Config::default(), Side::Acceptor, now).unwrap();
        let id = a.open_flow().unwrap();
        a.flow(id).write(&[7; 100]).unwrap();
        let mut w = Vec::new();
        while a.poll_transmit(&mut w).is_some() {}
        b.handle_input(now, &w).unwrap();
        let mut got = Vec::new();
        // A flow that does not exist: one byte at most.
        let _ = copying_read(&mut b, 999, 1 << 40, &mut got);
        assert!(got.capacity() <= 8, "{}", got.capacity());
        // A flow holding 100 bytes: a 2^40 count reads those 100.
        let mut got = Vec::new();
        assert_eq!(copying_read(&mut b, id.0, 1 << 40, &mut got), Ok(100));
        assert!(got.capacity() <= 128, "{}", got.capacity());
        assert_eq!(got, [7; 100]);
    }
}
