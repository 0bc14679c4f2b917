//! [`SimCore`]: what the simulator needs from a state machine that follows
//! the crate's sans-IO contract, and nothing about its protocol.
//!
//! The transport half mirrors the contract one to one. The workload half
//! speaks of *streams*: numbered, reliable byte streams a core multiplexes
//! (mux flows; a single-stream protocol has one). That is enough for the
//! simulator's workloads and invariants (bytes received are a prefix of
//! bytes sent) without knowing any wire format.

use crate::time::Instant;
use crate::wire::Machine;
pub use crate::wire::Rejected;
use alloc::vec::Vec;
use core::fmt;

/// A stream's number, as the core names it.
pub type StreamId = u64;

/// Which end of the transport connection a core sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// It dialed.
    Dialer,
    /// It accepted.
    Acceptor,
}

/// What a core tells the workload, protocol-neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreEvent {
    /// The peer opened a stream.
    Opened(StreamId),
    /// A stream has data, end of data or a reset to read.
    Readable(StreamId),
    /// A blocked write may proceed.
    Writable(StreamId),
    /// Both directions of the stream are done.
    StreamClosed(StreamId),
    /// A stream open that hit a limit may now succeed.
    Credit,
    /// The peer is draining: no new streams.
    Draining,
    /// The connection is closed; `clean` if by agreement (local close,
    /// drain finished), not by error, timeout or a broken transport.
    Closed {
        /// Closed by agreement.
        clean: bool,
    },
    /// Something the workload does not act on (an RTT sample, ...).
    Other,
}

/// Why a workload command did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CmdError {
    /// Not now (no credit, buffer full, nothing to read): retry after an event.
    Blocked,
    /// The stream was reset by the peer with this code.
    Reset(u64),
    /// The stream is done in this direction, unknown, or was refused.
    Gone,
    /// The connection is closed or draining.
    Closed,
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::Blocked => f.write_str("blocked"),
            CmdError::Reset(c) => write!(f, "stream reset with code {c}"),
            CmdError::Gone => f.write_str("stream gone"),
            CmdError::Closed => f.write_str("connection closed"),
        }
    }
}

impl core::error::Error for CmdError {}

/// What a read gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were appended.
    Data(usize),
    /// End of stream: every byte was read.
    Fin,
}

/// A state machine the simulator can run on a host: the crate's
/// [`Machine`] contract (its transport half) plus a protocol-neutral
/// workload interface. Call order is the contract's: after every input or
/// command the driver drains `poll_transmit` and `poll_event` until both
/// are `None`, then reads `poll_timeout`.
pub trait SimCore: Machine {
    /// The next event, protocol-neutral.
    fn poll_event(&mut self) -> Option<CoreEvent>;

    /// Opens a stream.
    fn open(&mut self, now: Instant) -> Result<StreamId, CmdError>;
    /// Writes what fits; 0 bytes is never returned for non-empty input
    /// (that is `Blocked`).
    fn write(&mut self, now: Instant, s: StreamId, data: &[u8]) -> Result<usize, CmdError>;
    /// Ends the stream's write side.
    fn finish(&mut self, now: Instant, s: StreamId) -> Result<(), CmdError>;
    /// Abandons the stream's write side with a code.
    fn reset(&mut self, now: Instant, s: StreamId, code: u64) -> Result<(), CmdError>;
    /// Appends up to `max` bytes to `out`.
    fn read(
        &mut self,
        now: Instant,
        s: StreamId,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<ReadOutcome, CmdError>;
    /// Stops accepting new streams and closes once every stream is done.
    fn drain(&mut self, now: Instant);

    /// A command only this kind of core has (numbered by the core; `data`
    /// is its byte argument). Recorded and replayed like the others, so a
    /// driver that uses more of a core's API than the workload above (an
    /// adapter recording a real connection) can still be replayed. The
    /// default knows none.
    fn extra(
        &mut self,
        _now: Instant,
        _op: u64,
        _stream: StreamId,
        _arg: u64,
        _data: &[u8],
    ) -> Result<u64, CmdError> {
        Err(CmdError::Gone)
    }

    /// Replays a recorded [`extra`](Self::extra) call. `data` is the byte
    /// argument as recorded: an input for most ops, but an op that
    /// *delivers* bytes (a read) may have recorded what it delivered there.
    /// Then the core performs the op and compares what it delivers with
    /// `data`; a difference is `Err`. Otherwise the result is `extra`'s.
    /// The default runs `extra` (no op of a core that does not override
    /// this is checked that way).
    fn replay_extra(
        &mut self,
        now: Instant,
        op: u64,
        stream: StreamId,
        arg: u64,
        data: &[u8],
    ) -> Result<Result<u64, CmdError>, DeliveryMismatch> {
        Ok(self.extra(now, op, stream, arg, data))
    }

    /// What this core holds in a shared memory budget, if it draws from
    /// one: the scenario checks the budget's totals against these. The
    /// default draws from none.
    fn budget_use(&self) -> Option<BudgetUse> {
        None
    }

    /// The [`extra`](Self::extra) op that sends a liveness probe (a PING)
    /// with no other effect, if the core has one: the greedy peer sends
    /// it to keep a connection busy without reading. The default has none.
    fn ping_op(&self) -> Option<u64> {
        None
    }

    /// The name of the limit this core closed for (a flood, a send stall,
    /// the memory budget), if it closed for one: how the scenario tells a
    /// greedy peer's connection ending for cause from one ending by
    /// accident. `None` while open or closed for any other reason.
    fn closed_by_limit(&self) -> Option<&'static str> {
        None
    }
}

/// A core's part of a shared memory budget (see [`SimCore::budget_use`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetUse {
    /// Bytes its share holds now.
    pub held: u64,
    /// The part of a share it may be charged whatever the budget says:
    /// what the protocol lets the peer send before any grant, plus what it
    /// lets a write put in under pressure. Over the limit by at most the
    /// sum of these is still within the budget's contract.
    pub floor: u64,
}

/// A replayed op delivered other bytes than the recording says it did
/// (found by [`SimCore::replay_extra`]: only the core knows which of its
/// ops deliver bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryMismatch {
    /// The stream read.
    pub stream: StreamId,
    /// Stream offset of the first byte that differs (bytes the stream had
    /// delivered before this op, plus `index`).
    pub offset: u64,
    /// Index of that byte in this op's delivery.
    pub index: usize,
    /// The byte the replay delivered there; `None` if it delivered fewer.
    pub replayed: Option<u8>,
    /// The byte the recording has there; `None` if it has fewer.
    pub recorded: Option<u8>,
    /// Bytes the replay delivered.
    pub replayed_len: usize,
    /// Bytes the recording has.
    pub recorded_len: usize,
}

impl DeliveryMismatch {
    /// Compares what a replayed op on `stream` delivered with what was
    /// recorded; `offset` is where in the stream the delivery started.
    /// `None` if they are equal.
    pub fn find(
        stream: StreamId,
        offset: u64,
        replayed: &[u8],
        recorded: &[u8],
    ) -> Option<DeliveryMismatch> {
        if replayed == recorded {
            return None;
        }
        let index = replayed
            .iter()
            .zip(recorded)
            .position(|(a, b)| a != b)
            .unwrap_or(replayed.len().min(recorded.len()));
        Some(DeliveryMismatch {
            stream,
            offset: offset.saturating_add(index as u64),
            index,
            replayed: replayed.get(index).copied(),
            recorded: recorded.get(index).copied(),
            replayed_len: replayed.len(),
            recorded_len: recorded.len(),
        })
    }
}

impl fmt::Display for DeliveryMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Byte(Option<u8>);
        impl fmt::Display for Byte {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Some(b) => write!(f, "0x{b:02x}"),
                    None => f.write_str("nothing"),
                }
            }
        }
        write!(
            f,
            "stream {} delivered other bytes than recorded: first difference at stream offset {} \
             (byte {} of this read): replay {}, recorded {} (replay delivered {} bytes, recorded {})",
            self.stream,
            self.offset,
            self.index,
            Byte(self.replayed),
            Byte(self.recorded),
            self.replayed_len,
            self.recorded_len
        )
    }
}

impl core::error::Error for DeliveryMismatch {}

impl<T: SimCore + ?Sized> SimCore for alloc::boxed::Box<T> {
    fn poll_event(&mut self) -> Option<CoreEvent> {
        (**self).poll_event()
    }
    fn open(&mut self, now: Instant) -> Result<StreamId, CmdError> {
        (**self).open(now)
    }
    fn write(&mut self, now: Instant, s: StreamId, data: &[u8]) -> Result<usize, CmdError> {
        (**self).write(now, s, data)
    }
    fn finish(&mut self, now: Instant, s: StreamId) -> Result<(), CmdError> {
        (**self).finish(now, s)
    }
    fn reset(&mut self, now: Instant, s: StreamId, code: u64) -> Result<(), CmdError> {
        (**self).reset(now, s, code)
    }
    fn read(
        &mut self,
        now: Instant,
        s: StreamId,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<ReadOutcome, CmdError> {
        (**self).read(now, s, out, max)
    }
    fn drain(&mut self, now: Instant) {
        (**self).drain(now)
    }
    fn extra(
        &mut self,
        now: Instant,
        op: u64,
        stream: StreamId,
        arg: u64,
        data: &[u8],
    ) -> Result<u64, CmdError> {
        (**self).extra(now, op, stream, arg, data)
    }
    fn replay_extra(
        &mut self,
        now: Instant,
        op: u64,
        stream: StreamId,
        arg: u64,
        data: &[u8],
    ) -> Result<Result<u64, CmdError>, DeliveryMismatch> {
        (**self).replay_extra(now, op, stream, arg, data)
    }
    fn budget_use(&self) -> Option<BudgetUse> {
        (**self).budget_use()
    }
    fn ping_op(&self) -> Option<u64> {
        (**self).ping_op()
    }
    fn closed_by_limit(&self) -> Option<&'static str> {
        (**self).closed_by_limit()
    }
}
