//! The mux as a [`SimCore`]: the simulator drives it with no glue.
//!
//! Commands ignore the `now` they are given: the mux takes the time of its
//! latest input, as its contract says.

use super::{CloseReason, Connection, ErrorCode, Event, FlowId, OpenError, ReadError, WriteError};
use crate::sim::{CmdError, CoreEvent, ReadOutcome, Rejected, SimCore, StreamId};
use crate::time::Instant;
use alloc::vec::Vec;

impl SimCore for Connection {
    fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), Rejected> {
        Connection::handle_input(self, now, data).map_err(|_| Rejected)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now)
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        Connection::handle_transport_closed(self, now)
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<usize> {
        Connection::poll_transmit(self, out)
    }

    fn poll_event(&mut self) -> Option<CoreEvent> {
        Some(match Connection::poll_event(self)? {
            Event::FlowOpened { id, .. } => CoreEvent::Opened(id.0),
            Event::Readable(id) => CoreEvent::Readable(id.0),
            Event::Writable(id) => CoreEvent::Writable(id.0),
            Event::FlowClosed(id) => CoreEvent::StreamClosed(id.0),
            Event::FlowCredit => CoreEvent::Credit,
            Event::GoAway { .. } => CoreEvent::Draining,
            Event::Closed(reason) => CoreEvent::Closed {
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
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Connection::poll_timeout(self).map(|(t, _)| t)
    }

    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }

    fn open(&mut self, _now: Instant) -> Result<StreamId, CmdError> {
        match self.open_flow() {
            Ok(id) => Ok(id.0),
            Err(OpenError::FlowLimit) => Err(CmdError::Blocked),
            Err(_) => Err(CmdError::Closed),
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
            Err(ReadError::Blocked) => Err(CmdError::Blocked),
            Err(ReadError::Reset(c)) => Err(CmdError::Reset(c)),
            Err(ReadError::Closed) => Err(CmdError::Closed),
            Err(_) => Err(CmdError::Gone),
        }
    }

    fn drain(&mut self, _now: Instant) {
        self.go_away(0)
    }

    fn close(&mut self, _now: Instant, code: u64) {
        Connection::close(self, code, b"")
    }
}

fn write_err(e: WriteError) -> CmdError {
    match e {
        WriteError::Blocked => CmdError::Blocked,
        WriteError::Stopped(c) => CmdError::Reset(c),
        WriteError::Closed => CmdError::Closed,
        _ => CmdError::Gone,
    }
}
