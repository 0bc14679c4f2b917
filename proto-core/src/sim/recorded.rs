//! [`Recorded<M>`]: any machine with every call logged in the trace format,
//! so [`replay`](super::driver::replay) can run a live connection again
//! offline and check every output.

use super::core::{CoreEvent, Role};
use super::driver::{CallLog, CmdResult, Command};
use super::trace::{tag, Trace};
use crate::time::Instant;
use crate::wire::{Machine, Rejected, TransmitBuf};
use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

/// Where a [`Recorded`] machine's trace bytes go (a file, a buffer).
/// Writes are best effort: a sink that fails should stop storing, never
/// fail the connection.
pub trait TraceSink: Send {
    /// Appends trace bytes.
    fn write(&mut self, bytes: &[u8]);
    /// Pushes buffered bytes to storage (called once per driver pass).
    fn flush(&mut self) {}
}

impl TraceSink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// How a [`Recorded`] machine logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordOptions {
    /// Keep payload bytes (received, transmitted, written, read). When
    /// false every payload is replaced by its length (8 bytes,
    /// little-endian) and the trace starts with a [`REDACTED_NOTE`]: it
    /// shows the calls, their order, timing and sizes, but cannot be
    /// replayed. Default true.
    pub payloads: bool,
    /// A note to put first (a config the replay needs, as `(kind, text)`:
    /// the `NOTE` record's first field and its payload).
    pub note: Option<(u64, Vec<u8>)>,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            payloads: true,
            note: None,
        }
    }
}

/// The `NOTE` kind (first field) that marks a recording whose payloads
/// were replaced by their lengths.
pub const REDACTED_NOTE: u64 = 4;

struct Log {
    call: CallLog,
    trace: Trace,
    now: Instant,
    payloads: bool,
    sink: Box<dyn TraceSink>,
    scratch: Vec<u8>,
}

impl Log {
    /// `data`, or its length when payloads are redacted.
    fn payload<'a>(&self, data: &'a [u8], len: &'a mut [u8; 8]) -> &'a [u8] {
        if self.payloads {
            data
        } else {
            *len = (data.len() as u64).to_le_bytes();
            &len[..]
        }
    }

    fn push(&mut self) {
        let bytes = self.trace.drain_bytes();
        if !bytes.is_empty() {
            self.sink.write(&bytes);
        }
    }
}

/// A machine whose every call is logged to a [`TraceSink`] in the
/// simulator's trace format (or not at all: [`Recorded::off`] costs one
/// branch per call).
///
/// The contract's inputs and outputs are logged by its [`Machine`]
/// implementation; a layer's own commands and events go through
/// [`command`](Self::command) and [`event`](Self::event) (the mux wraps
/// its whole API this way, so a driver cannot bypass the log).
///
/// Recordings hold what this machine saw: stacked under
/// [`Secured`](crate::secure::Secured), that is the plaintext. Use
/// [`RecordOptions::payloads`] = false to keep sizes only.
///
/// ```
/// use proto_core::sim::{Recorded, RecordOptions, Role};
/// use proto_core::mux::{self, Side};
/// use proto_core::time::Instant;
/// use proto_core::wire::Machine;
///
/// let conn = mux::Connection::new(mux::Config::default(), Side::Dialer, Instant::ZERO).unwrap();
/// let mut rec = Recorded::new(conn, Box::new(Vec::new()), Role::Dialer, Instant::ZERO, RecordOptions::default());
/// let id = rec.open_flow().unwrap();
/// let mut wire = Vec::new();
/// while rec.poll_transmit(&mut wire).is_some() {}
/// assert!(rec.records() > 3); // creation, the open and its result, transmits
/// # let _ = id;
/// ```
pub struct Recorded<M> {
    inner: M,
    log: Option<Box<Log>>,
}

impl<M: fmt::Debug> fmt::Debug for Recorded<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorded")
            .field("inner", &self.inner)
            .field("records", &self.records())
            .finish()
    }
}

impl<M> Recorded<M> {
    /// `inner`, not recorded.
    pub fn off(inner: M) -> Self {
        Recorded { inner, log: None }
    }

    /// `inner`, recorded to `sink` as core 0 in `role`, created at `now`.
    pub fn new(
        inner: M,
        sink: Box<dyn TraceSink>,
        role: Role,
        now: Instant,
        options: RecordOptions,
    ) -> Self {
        let mut log = Box::new(Log {
            call: CallLog { id: 0 },
            trace: Trace::new(true),
            now,
            payloads: options.payloads,
            sink,
            scratch: Vec::new(),
        });
        if !options.payloads {
            log.trace
                .record(tag::NOTE, now.as_nanos(), &[REDACTED_NOTE], b"");
        }
        if let Some((kind, text)) = &options.note {
            log.trace.record(tag::NOTE, now.as_nanos(), &[*kind], text);
        }
        log.call.created(&mut log.trace, now, 0, role);
        log.push();
        Recorded {
            inner,
            log: Some(log),
        }
    }

    /// Whether calls are being logged.
    pub fn is_recording(&self) -> bool {
        self.log.is_some()
    }

    /// Records logged so far (0 when off).
    pub fn records(&self) -> u64 {
        self.log.as_ref().map_or(0, |l| l.trace.records())
    }

    /// The recorded machine, read-only: every call that changes it goes
    /// through the log.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// Runs a command on the machine and logs it: `describe` turns the
    /// command's outcome into the recorded command, its result, and the
    /// bytes it returned (checked on replay).
    pub fn command<'a, R>(
        &mut self,
        run: impl FnOnce(&mut M) -> R,
        describe: impl FnOnce(&R) -> (Command<'a>, CmdResult, &'a [u8]),
    ) -> R {
        let r = run(&mut self.inner);
        if self.log.is_some() {
            let (c, res, read) = describe(&r);
            self.log_command(c, res, read);
        }
        r
    }

    /// Runs `run` on the machine without logging: for a layer's wrapper
    /// that logs the call itself afterwards ([`log_only`](Self::log_only)),
    /// when the log needs bytes the call wrote into a caller's buffer.
    pub(crate) fn command_free<R>(&mut self, run: impl FnOnce(&mut M) -> R) -> R {
        run(&mut self.inner)
    }

    /// Logs a command that ran through [`command_free`](Self::command_free).
    pub(crate) fn log_only<'a>(
        &mut self,
        describe: impl FnOnce() -> (Command<'a>, CmdResult, &'a [u8]),
    ) {
        if self.log.is_some() {
            let (c, res, read) = describe();
            self.log_command(c, res, read);
        }
    }

    fn log_command(&mut self, c: Command<'_>, res: CmdResult, read: &[u8]) {
        let Some(log) = self.log.as_deref_mut() else {
            return;
        };
        let now = log.now;
        if log.payloads {
            log.call.command(&mut log.trace, now, &c, &res, read);
        } else {
            let mut a = [0u8; 8];
            let c = redact_command(c, &mut a);
            let b = (read.len() as u64).to_le_bytes();
            log.call.command(&mut log.trace, now, &c, &res, &b);
        }
        log.push();
    }

    /// Logs an event the machine gave (`describe`: as the simulator sees it).
    pub fn event<E>(&mut self, ev: Option<E>, describe: impl FnOnce(&E) -> CoreEvent) -> Option<E> {
        if let (Some(log), Some(e)) = (self.log.as_deref_mut(), &ev) {
            let now = log.now;
            log.call.event(&mut log.trace, now, describe(e));
            log.push();
        }
        ev
    }

    /// Pushes logged bytes to storage (the driver calls it once a pass).
    pub fn flush(&mut self) {
        if let Some(log) = self.log.as_deref_mut() {
            log.push();
            log.sink.flush();
        }
    }

    fn at(&mut self, now: Instant, f: impl FnOnce(&mut Log)) {
        if let Some(log) = self.log.as_deref_mut() {
            log.now = now;
            f(log);
            log.push();
        }
    }
}

fn redact_command<'a>(c: Command<'_>, len: &'a mut [u8; 8]) -> Command<'a> {
    match c {
        Command::Write(s, d) => {
            *len = (d.len() as u64).to_le_bytes();
            Command::Write(s, &len[..])
        }
        Command::Extra {
            op,
            stream,
            arg,
            data,
        } => {
            *len = (data.len() as u64).to_le_bytes();
            Command::Extra {
                op,
                stream,
                arg,
                data: &len[..],
            }
        }
        Command::Open => Command::Open,
        Command::Finish(s) => Command::Finish(s),
        Command::Reset(s, c) => Command::Reset(s, c),
        Command::Read(s, m) => Command::Read(s, m),
        Command::Drain => Command::Drain,
        Command::Close(c, reason) => {
            *len = (reason.len() as u64).to_le_bytes();
            Command::Close(c, &len[..])
        }
    }
}

/// Forwards to the real buffer and keeps a copy of what was appended.
struct Tee<'a> {
    out: &'a mut dyn TransmitBuf,
    copy: &'a mut Vec<u8>,
}

impl TransmitBuf for Tee<'_> {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.copy.extend_from_slice(bytes);
        self.out.put_slice(bytes);
    }
    fn put_bytes(&mut self, bytes: Bytes) {
        self.copy.extend_from_slice(&bytes);
        self.out.put_bytes(bytes);
    }
}

impl<M: Machine> Machine for Recorded<M> {
    fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), Rejected> {
        self.at(now, |log| {
            let mut len = [0u8; 8];
            let p = log.payload(&data, &mut len);
            log.call.input(&mut log.trace, now, p);
        });
        let r = self.inner.handle_input(now, data);
        if r.is_err() {
            self.at(now, |log| log.call.input_error(&mut log.trace, now));
        }
        r
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.at(now, |log| log.call.timeout(&mut log.trace, now));
        self.inner.handle_timeout(now)
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        self.at(now, |log| log.call.transport_closed(&mut log.trace, now));
        self.inner.handle_transport_closed(now);
        self.flush();
    }

    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
        let Some(log) = self.log.as_deref_mut() else {
            return self.inner.poll_transmit(out);
        };
        let mut copy = core::mem::take(&mut log.scratch);
        copy.clear();
        let r = self.inner.poll_transmit(&mut Tee {
            out,
            copy: &mut copy,
        });
        if r.is_some() {
            let now = log.now;
            let mut len = [0u8; 8];
            let p = log.payload(&copy, &mut len);
            log.call.transmit(&mut log.trace, now, p);
            log.push();
        }
        log.scratch = copy;
        r
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn wants_transmit(&self) -> bool {
        self.inner.wants_transmit()
    }

    fn wants_input(&self) -> bool {
        self.inner.wants_input()
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn close(&mut self, now: Instant, code: u64, reason: &[u8]) {
        self.inner.close(now, code, reason);
        self.at(now, |log| {
            let res: CmdResult = Ok((0, None));
            let mut len = [0u8; 8];
            let reason = log.payload(reason, &mut len);
            log.call.command(
                &mut log.trace,
                now,
                &Command::Close(code, reason),
                &res,
                b"",
            );
        });
    }
}
