//! The mux's API on a [`Recorded`] connection: every command and event goes
//! through the log, so whoever holds a `Recorded<Connection>` (the adapters'
//! handles) cannot bypass it. Without a sink each call is the bare call.

use super::sim_core::{extra, open_err, read_err, write_err};
use super::{Connection, Event, FlowId, OpenError, PingError, ReadError, WriteError};
use crate::sim::driver::{CmdResult, Command};
use crate::sim::{CmdError, CoreEvent, Recorded};
use bytes::Bytes;

fn ex(op: u64, stream: u64, arg: u64, data: &[u8]) -> Command<'_> {
    Command::Extra {
        op,
        stream,
        arg,
        data,
    }
}

fn unit<E: Copy>(r: &Result<(), E>, map: fn(E) -> CmdError) -> CmdResult {
    r.map(|()| (0, None)).map_err(map)
}

/// How a write is logged: what it took (one byte when it took nothing, so
/// the replayed write meets the same refusal).
fn written<'a>(data: &'a [u8], r: &Result<usize, WriteError>) -> (&'a [u8], CmdResult) {
    match r {
        Ok(n) => (&data[..*n], Ok((*n as u64, None))),
        Err(WriteError::Blocked) => (&data[..data.len().min(1)], Err(CmdError::Blocked)),
        Err(e) => (&data[..data.len().min(1)], Err(write_err(*e))),
    }
}

/// How a read is logged: a copying read of exactly what it delivered,
/// with the delivered bytes (replay checks them).
fn delivered<'a>(
    id: FlowId,
    data: &'a [u8],
    r: Result<(), ReadError>,
) -> (Command<'a>, CmdResult, &'a [u8]) {
    let n = data.len() as u64;
    (
        ex(extra::READ, id.0, n.max(1), data),
        r.map(|()| (n, None)).map_err(read_err),
        b"",
    )
}

impl Recorded<Connection> {
    /// [`Connection::open_flow`], logged.
    pub fn open_flow(&mut self) -> Result<FlowId, OpenError> {
        self.command(Connection::open_flow, |r| {
            (
                Command::Open,
                r.map(|id| (id.0, None)).map_err(open_err),
                b"",
            )
        })
    }

    /// [`Connection::open_side_channel`], logged.
    pub fn open_side_channel(&mut self) -> Result<FlowId, OpenError> {
        self.command(Connection::open_side_channel, |r| {
            (
                ex(extra::OPEN_SIDE_CHANNEL, 0, 0, b""),
                r.map(|id| (id.0, None)).map_err(open_err),
                b"",
            )
        })
    }

    /// [`Connection::ping`], logged.
    pub fn ping(&mut self) -> Result<u64, PingError> {
        self.command(Connection::ping, |r| {
            (
                ex(extra::PING, 0, 0, b""),
                r.map(|v| (v, None)).map_err(|_| CmdError::Blocked),
                b"",
            )
        })
    }

    /// [`Connection::go_away`], logged.
    pub fn go_away(&mut self, code: u64) {
        self.command(
            |c| c.go_away(code),
            |()| (ex(extra::GO_AWAY, 0, code, b""), Ok((0, None)), b""),
        )
    }

    /// [`Connection::evict`], logged.
    pub fn evict(&mut self, reason: &[u8]) {
        self.command(
            |c| c.evict(reason),
            |()| (ex(extra::EVICT, 0, 0, reason), Ok((0, None)), b""),
        )
    }

    /// [`Connection::poll_event`], logged.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.command_free(Connection::poll_event);
        self.event(ev, |e| CoreEvent::from(e))
    }

    /// `flow(id).write(data)`, logged.
    pub fn write(&mut self, id: FlowId, data: &[u8]) -> Result<usize, WriteError> {
        self.command(
            |c| c.flow(id).write(data),
            |r| {
                let (taken, res) = written(data, r);
                (Command::Write(id.0, taken), res, b"")
            },
        )
    }

    /// `flow(id).write_chunk(data)`, logged (the bytes are copied into the
    /// log only while recording).
    pub fn write_chunk(&mut self, id: FlowId, data: Bytes) -> Result<usize, WriteError> {
        let logged = data.clone();
        self.command(
            |c| c.flow(id).write_chunk(data),
            |r| {
                let (taken, res) = written(&logged, r);
                (ex(extra::WRITE_CHUNK, id.0, 0, taken), res, b"")
            },
        )
    }

    /// `flow(id).finish()`, logged.
    pub fn finish(&mut self, id: FlowId) -> Result<(), WriteError> {
        self.command(
            |c| c.flow(id).finish(),
            |r| (Command::Finish(id.0), unit(r, write_err), b""),
        )
    }

    /// `flow(id).reset(code)`, logged.
    pub fn reset(&mut self, id: FlowId, code: u64) -> Result<(), WriteError> {
        self.command(
            |c| c.flow(id).reset(code),
            |r| (Command::Reset(id.0, code), unit(r, write_err), b""),
        )
    }

    /// `flow(id).stop(code)`, logged.
    pub fn stop(&mut self, id: FlowId, code: u64) -> Result<(), ReadError> {
        self.command(
            |c| c.flow(id).stop(code),
            |r| (ex(extra::STOP, id.0, code, b""), unit(r, read_err), b""),
        )
    }

    /// `flow(id).read(buf)`, logged with the bytes it delivered.
    pub fn read(&mut self, id: FlowId, buf: &mut [u8]) -> Result<usize, ReadError> {
        let r = self.command_free(|c| c.flow(id).read(buf));
        let n = *r.as_ref().unwrap_or(&0);
        self.log_only(|| delivered(id, &buf[..n], r.map(|_| ())));
        r
    }

    /// `flow(id).read_chunk(max)`, logged with the bytes it delivered.
    pub fn read_chunk(&mut self, id: FlowId, max: usize) -> Result<Option<Bytes>, ReadError> {
        let r = self.command_free(|c| c.flow(id).read_chunk(max));
        let empty = Bytes::new();
        let data = match &r {
            Ok(Some(b)) => b,
            _ => &empty,
        };
        self.log_only(|| delivered(id, data, r.as_ref().map(|_| ()).map_err(|e| *e)));
        r
    }
}
