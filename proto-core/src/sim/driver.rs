//! Driving one core through the contract while writing every call and
//! every output to the trace, and replaying such a record into a fresh
//! core. Both sides share the encodings below, so "replay matches" means
//! the fresh core answered every recorded call with the same bytes.

use super::core::{CmdError, CoreEvent, ReadOutcome, Role, SimCore, StreamId};
use super::trace::{tag, Record, Trace};
use crate::time::Instant;
use alloc::string::String;
use alloc::vec::Vec;

/// Command numbers in `CORE_COMMAND` records.
pub(crate) mod cmd {
    pub const OPEN: u64 = 1;
    pub const WRITE: u64 = 2;
    pub const FINISH: u64 = 3;
    pub const RESET: u64 = 4;
    pub const READ: u64 = 5;
    pub const DRAIN: u64 = 6;
    pub const CLOSE: u64 = 7;
    /// [`Command::Extra`]: fields `[core, EXTRA, stream, arg, op]`.
    pub const EXTRA: u64 = 8;
}

/// A workload command, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `open`.
    Open,
    /// `write`.
    Write(StreamId, &'a [u8]),
    /// `finish`.
    Finish(StreamId),
    /// `reset` with a code.
    Reset(StreamId, u64),
    /// `read` of at most this many bytes.
    Read(StreamId, usize),
    /// `drain`.
    Drain,
    /// `close` with a code and a reason (the payload; empty in the
    /// simulator's workloads).
    Close(u64, &'a [u8]),
    /// [`SimCore::extra`]: the core's own op number, a stream, an integer
    /// and a byte argument.
    Extra {
        /// The core's op number.
        op: u64,
        /// The stream, if the op has one.
        stream: StreamId,
        /// An integer argument.
        arg: u64,
        /// A byte argument.
        data: &'a [u8],
    },
}

/// A command's result: `value` is the stream opened, bytes written or
/// bytes read.
pub type CmdResult = Result<(u64, Option<ReadOutcome>), CmdError>;

fn enc_event(ev: CoreEvent) -> [u64; 2] {
    match ev {
        CoreEvent::Opened(s) => [1, s],
        CoreEvent::Readable(s) => [2, s],
        CoreEvent::Writable(s) => [3, s],
        CoreEvent::StreamClosed(s) => [4, s],
        CoreEvent::Credit => [5, 0],
        CoreEvent::Draining => [6, 0],
        CoreEvent::Closed { clean } => [7, u64::from(clean)],
        CoreEvent::Other => [8, 0],
    }
}

fn enc_result(r: &CmdResult) -> [u64; 2] {
    match r {
        Ok((v, None)) => [0, *v],
        Ok((v, Some(ReadOutcome::Data(_)))) => [0, *v],
        Ok((_, Some(ReadOutcome::Fin))) => [1, 0],
        Err(CmdError::Blocked) => [2, 0],
        Err(CmdError::Reset(c)) => [3, *c],
        Err(CmdError::Gone) => [4, 0],
        Err(CmdError::Closed) => [5, 0],
    }
}

/// The command's fields after the core id: three, or four for `Extra`.
fn enc_command(c: &Command<'_>) -> ([u64; 4], usize, &'static [u8]) {
    let three = |k, s, a| ([k, s, a, 0], 3, &b""[..]);
    match *c {
        Command::Open => three(cmd::OPEN, 0, 0),
        Command::Write(s, _) => three(cmd::WRITE, s, 0),
        Command::Finish(s) => three(cmd::FINISH, s, 0),
        Command::Reset(s, code) => three(cmd::RESET, s, code),
        Command::Read(s, max) => three(cmd::READ, s, max as u64),
        Command::Drain => three(cmd::DRAIN, 0, 0),
        Command::Close(code, _) => three(cmd::CLOSE, 0, code),
        Command::Extra {
            op, stream, arg, ..
        } => ([cmd::EXTRA, stream, arg, op], 4, &b""[..]),
    }
}

fn record_command(trace: &mut Trace, id: u32, now: Instant, c: &Command<'_>) {
    let (f, n, _) = enc_command(c);
    let payload: &[u8] = match c {
        Command::Write(_, d) | Command::Close(_, d) | Command::Extra { data: d, .. } => d,
        _ => b"",
    };
    let fields = [u64::from(id), f[0], f[1], f[2], f[3]];
    trace.record(tag::CORE_COMMAND, now.as_nanos(), &fields[..1 + n], payload);
}

fn record_result(trace: &mut Trace, id: u32, now: Instant, r: &CmdResult, read: &[u8]) {
    let [o, v] = enc_result(r);
    trace.record(
        tag::CORE_RESULT,
        now.as_nanos(),
        &[u64::from(id), o, v],
        read,
    );
}

/// Runs `c` on `core`; `out` receives bytes read.
pub fn apply<C: SimCore + ?Sized>(
    core: &mut C,
    now: Instant,
    c: &Command<'_>,
    out: &mut Vec<u8>,
) -> CmdResult {
    match *c {
        Command::Open => core.open(now).map(|s| (s, None)),
        Command::Write(s, d) => core.write(now, s, d).map(|n| (n as u64, None)),
        Command::Finish(s) => core.finish(now, s).map(|()| (0, None)),
        Command::Reset(s, code) => core.reset(now, s, code).map(|()| (0, None)),
        Command::Read(s, max) => core.read(now, s, out, max).map(|r| match r {
            ReadOutcome::Data(n) => (n as u64, Some(r)),
            ReadOutcome::Fin => (0, Some(r)),
        }),
        Command::Drain => {
            core.drain(now);
            Ok((0, None))
        }
        Command::Close(code, reason) => {
            crate::wire::Machine::close(core, now, code, reason);
            Ok((0, None))
        }
        Command::Extra {
            op,
            stream,
            arg,
            data,
        } => core.extra(now, op, stream, arg, data).map(|v| (v, None)),
    }
}

/// A core with the trace identity the driver records it under.
#[derive(Debug)]
pub struct Traced<C> {
    /// The core.
    pub core: C,
    /// Its number in the trace.
    pub id: u32,
}

/// A core input, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// `handle_input`.
    Bytes(&'a [u8]),
    /// `handle_timeout`.
    Timeout,
    /// `handle_transport_closed`.
    TransportClosed,
}

impl<C: SimCore> Traced<C> {
    fn log(&self) -> CallLog {
        CallLog { id: self.id }
    }

    /// Records the core's creation.
    pub fn created(
        core: C,
        id: u32,
        host: u32,
        role: Role,
        now: Instant,
        trace: &mut Trace,
    ) -> Self {
        CallLog { id }.created(trace, now, host, role);
        Traced { core, id }
    }

    /// Feeds one input and records it.
    pub fn input(&mut self, now: Instant, input: Input<'_>, trace: &mut Trace) {
        let log = self.log();
        match input {
            Input::Bytes(d) => {
                log.input(trace, now, d);
                if self
                    .core
                    .handle_input(now, bytes::Bytes::copy_from_slice(d))
                    .is_err()
                {
                    log.input_error(trace, now);
                }
            }
            Input::Timeout => {
                log.timeout(trace, now);
                self.core.handle_timeout(now);
            }
            Input::TransportClosed => {
                log.transport_closed(trace, now);
                self.core.handle_transport_closed(now);
            }
        }
    }

    /// Runs a command and records it with its result.
    pub fn command(
        &mut self,
        now: Instant,
        c: &Command<'_>,
        read_into: &mut Vec<u8>,
        trace: &mut Trace,
    ) -> CmdResult {
        let before = read_into.len();
        let r = apply(&mut self.core, now, c, read_into);
        self.log().command(trace, now, c, &r, &read_into[before..]);
        r
    }

    /// `poll_transmit`, recorded.
    pub fn transmit(&mut self, now: Instant, buf: &mut Vec<u8>, trace: &mut Trace) -> bool {
        buf.clear();
        if self.core.poll_transmit(buf).is_none() {
            return false;
        }
        self.log().transmit(trace, now, buf);
        true
    }

    /// `poll_event`, recorded.
    pub fn event(&mut self, now: Instant, trace: &mut Trace) -> Option<CoreEvent> {
        let ev = self.core.poll_event()?;
        self.log().event(trace, now, ev);
        Some(ev)
    }

    /// End of a drain: `poll_timeout`, recorded.
    pub fn deadline(&mut self, now: Instant, trace: &mut Trace) -> Option<Instant> {
        let d = self.core.poll_timeout();
        trace.record(
            tag::CORE_DEADLINE,
            now.as_nanos(),
            &[u64::from(self.id), d.map_or(u64::MAX, |t| t.as_nanos())],
            b"",
        );
        d
    }
}

/// Records the calls a driver makes on a core it does not hand to the
/// simulator (an adapter's live connection), in the same records as
/// [`Traced`], so [`replay`] checks them the same way. The driver calls
/// these right where it calls the core, in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLog {
    /// The core's number in the trace.
    pub id: u32,
}

impl CallLog {
    /// The core was created.
    pub fn created(&self, trace: &mut Trace, now: Instant, host: u32, role: Role) {
        trace.record(
            tag::CORE_NEW,
            now.as_nanos(),
            &[u64::from(self.id), u64::from(host), role as u64],
            b"",
        );
    }

    /// `handle_input(now, data)` is about to be called.
    pub fn input(&self, trace: &mut Trace, now: Instant, data: &[u8]) {
        trace.record(tag::CORE_INPUT, now.as_nanos(), &[u64::from(self.id)], data);
    }

    /// The last `handle_input` returned an error.
    pub fn input_error(&self, trace: &mut Trace, now: Instant) {
        trace.record(
            tag::CORE_INPUT_ERROR,
            now.as_nanos(),
            &[u64::from(self.id)],
            b"",
        );
    }

    /// `handle_timeout(now)` is about to be called.
    pub fn timeout(&self, trace: &mut Trace, now: Instant) {
        trace.record(
            tag::CORE_TIMEOUT,
            now.as_nanos(),
            &[u64::from(self.id)],
            b"",
        );
    }

    /// `handle_transport_closed(now)` is about to be called.
    pub fn transport_closed(&self, trace: &mut Trace, now: Instant) {
        trace.record(
            tag::CORE_TRANSPORT_CLOSED,
            now.as_nanos(),
            &[u64::from(self.id)],
            b"",
        );
    }

    /// A command ran with this result (`read`: bytes it returned, if the
    /// replayed command returns them too).
    pub fn command(
        &self,
        trace: &mut Trace,
        now: Instant,
        c: &Command<'_>,
        r: &CmdResult,
        read: &[u8],
    ) {
        record_command(trace, self.id, now, c);
        record_result(trace, self.id, now, r, read);
    }

    /// `poll_transmit` returned these bytes.
    pub fn transmit(&self, trace: &mut Trace, now: Instant, bytes: &[u8]) {
        trace.record(
            tag::CORE_TRANSMIT,
            now.as_nanos(),
            &[u64::from(self.id)],
            bytes,
        );
    }

    /// `poll_event` returned this event.
    pub fn event(&self, trace: &mut Trace, now: Instant, ev: CoreEvent) {
        let [k, s] = enc_event(ev);
        trace.record(
            tag::CORE_EVENT,
            now.as_nanos(),
            &[u64::from(self.id), k, s],
            b"",
        );
    }
}

/// What replaying a core's records found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// The core's number.
    pub core: u32,
    /// Its role.
    pub role: Role,
    /// Records checked.
    pub records: u64,
    /// Inputs, timeouts and commands re-applied.
    pub inputs: u64,
    /// The first disagreement, if any: record index and what differed.
    pub mismatch: Option<(u64, String)>,
}

/// Why a trace's core records cannot be replayed: the file is malformed
/// (a replay that runs and disagrees is a [`ReplayReport::mismatch`]
/// instead). `record` is the record's index in the trace, as `--dump`
/// numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayError {
    /// No record creates this core.
    NoSuchCore(u32),
    /// A core record names a core id that does not fit in 32 bits.
    CoreIdTooLarge {
        /// The record's index.
        record: usize,
        /// The id it names.
        id: u64,
    },
    /// A core's creation names a host id that does not fit in 32 bits.
    HostIdTooLarge {
        /// The record's index.
        record: usize,
        /// The host it names.
        host: u64,
    },
    /// A core's creation names a role that is neither dialer (0) nor
    /// acceptor (1).
    BadRole {
        /// The record's index.
        record: usize,
        /// The role it names.
        role: u64,
    },
    /// A core's record comes before the record that creates the core.
    BeforeCreation {
        /// The record's index.
        record: usize,
        /// The core it names.
        core: u32,
    },
    /// A core is created a second time.
    CreatedTwice {
        /// The index of the second creation.
        record: usize,
        /// The core.
        core: u32,
    },
    /// A core record has the wrong number of fields for its tag.
    FieldCount {
        /// The record's index.
        record: usize,
        /// Its tag.
        tag: u8,
        /// Fields it has.
        got: usize,
        /// Fields that tag has.
        want: usize,
    },
    /// A core record (tag from [`tag::CORE_NEW`]) with a tag this build
    /// does not know.
    UnknownTag {
        /// The record's index.
        record: usize,
        /// Its tag.
        tag: u8,
    },
    /// A command record with a command number this build does not know.
    UnknownCommand {
        /// The record's index.
        record: usize,
        /// The command number.
        command: u64,
    },
}

impl core::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ReplayError::NoSuchCore(c) => write!(f, "no record creates core {c}"),
            ReplayError::CoreIdTooLarge { record, id } => {
                write!(f, "record {record}: core id {id} does not fit in 32 bits")
            }
            ReplayError::HostIdTooLarge { record, host } => {
                write!(f, "record {record}: host id {host} does not fit in 32 bits")
            }
            ReplayError::BadRole { record, role } => write!(
                f,
                "record {record}: role {role} is neither dialer (0) nor acceptor (1)"
            ),
            ReplayError::BeforeCreation { record, core } => write!(
                f,
                "record {record}: a record of core {core} before the record that creates it"
            ),
            ReplayError::CreatedTwice { record, core } => {
                write!(f, "record {record}: core {core} is created a second time")
            }
            ReplayError::FieldCount {
                record,
                tag: t,
                got,
                want,
            } => write!(
                f,
                "record {record}: a {} record with {got} fields instead of {want}",
                super::trace::tag_name(t)
            ),
            ReplayError::UnknownTag { record, tag: t } => {
                write!(f, "record {record}: unknown core record tag {t:#04x}")
            }
            ReplayError::UnknownCommand { record, command } => {
                write!(f, "record {record}: unknown command number {command}")
            }
        }
    }
}

impl core::error::Error for ReplayError {}

/// The core a core record (tag from [`tag::CORE_NEW`]) belongs to, after
/// checking its tag, its number of fields, its command number and that
/// the id fits in 32 bits.
fn core_record(i: usize, r: &Record<'_>) -> Result<u32, ReplayError> {
    let want = match r.tag {
        tag::CORE_NEW | tag::CORE_EVENT | tag::CORE_RESULT => 3,
        tag::CORE_INPUT
        | tag::CORE_TIMEOUT
        | tag::CORE_TRANSPORT_CLOSED
        | tag::CORE_TRANSMIT
        | tag::CORE_INPUT_ERROR => 1,
        tag::CORE_DEADLINE => 2,
        tag::CORE_COMMAND => match r.fields.get(1) {
            Some(&cmd::EXTRA) => 5,
            Some(&(cmd::OPEN..=cmd::CLOSE)) => 4,
            Some(&command) => {
                return Err(ReplayError::UnknownCommand { record: i, command });
            }
            None => 4,
        },
        t => return Err(ReplayError::UnknownTag { record: i, tag: t }),
    };
    if r.fields.len() != want {
        return Err(ReplayError::FieldCount {
            record: i,
            tag: r.tag,
            got: r.fields.len(),
            want,
        });
    }
    u32::try_from(r.fields[0]).map_err(|_| ReplayError::CoreIdTooLarge {
        record: i,
        id: r.fields[0],
    })
}

/// A creation record's (host, role), checked.
fn creation(i: usize, r: &Record<'_>) -> Result<(u32, Role), ReplayError> {
    let host = u32::try_from(r.field(1)).map_err(|_| ReplayError::HostIdTooLarge {
        record: i,
        host: r.field(1),
    })?;
    let role = match r.field(2) {
        x if x == Role::Dialer as u64 => Role::Dialer,
        x if x == Role::Acceptor as u64 => Role::Acceptor,
        role => return Err(ReplayError::BadRole { record: i, role }),
    };
    Ok((host, role))
}

/// The cores a trace created: (core, host, role), after checking every
/// core record of the trace: known tags and command numbers, the right
/// number of fields, ids that fit, each core created once and before its
/// other records. The first problem is the error.
pub fn try_cores_in(records: &[Record<'_>]) -> Result<Vec<(u32, u32, Role)>, ReplayError> {
    let mut cores = Vec::new();
    let mut created = alloc::collections::BTreeSet::new();
    for (i, r) in records.iter().enumerate() {
        if r.tag < tag::CORE_NEW {
            continue;
        }
        let id = core_record(i, r)?;
        if r.tag == tag::CORE_NEW {
            let (host, role) = creation(i, r)?;
            if !created.insert(id) {
                return Err(ReplayError::CreatedTwice {
                    record: i,
                    core: id,
                });
            }
            cores.push((id, host, role));
        } else if !created.contains(&id) {
            return Err(ReplayError::BeforeCreation {
                record: i,
                core: id,
            });
        }
    }
    Ok(cores)
}

/// The cores a trace created: (core, host, role), in creation order. A
/// creation record that does not check out (an id or host that does not
/// fit in 32 bits, an unknown role, a core created again) is left out;
/// [`try_cores_in`] says what is wrong with a trace, and [`replay`]
/// refuses a core whose records are malformed.
pub fn cores_in(records: &[Record<'_>]) -> Vec<(u32, u32, Role)> {
    let mut cores: Vec<(u32, u32, Role)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r.tag != tag::CORE_NEW {
            continue;
        }
        if let (Ok(id), Ok((host, role))) = (core_record(i, r), creation(i, r)) {
            if !cores.iter().any(|c| c.0 == id) {
                cores.push((id, host, role));
            }
        }
    }
    cores
}

/// Replays core `id`'s recorded calls into the fresh core `make` builds,
/// checking every output against the record: byte-identical transmits,
/// identical events, command results (and the bytes a read delivered,
/// where the recording holds them: see [`SimCore::replay_extra`]),
/// deadlines, and nothing extra at the end of each drain. A trace whose
/// records of this core are malformed (see [`ReplayError`]) is an error;
/// what the replay finds is in the report.
pub fn replay<C: SimCore>(
    records: &[Record<'_>],
    id: u32,
    make: impl FnOnce(Role, Instant) -> C,
) -> Result<ReplayReport, ReplayError> {
    let mut mine = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.tag >= tag::CORE_NEW && r.field(0) == u64::from(id));
    let Some((i0, first)) = mine.next() else {
        return Err(ReplayError::NoSuchCore(id));
    };
    core_record(i0, first)?;
    if first.tag != tag::CORE_NEW {
        return Err(ReplayError::BeforeCreation {
            record: i0,
            core: id,
        });
    }
    let (_, role) = creation(i0, first)?;
    // Check the whole record before running the core, so that a malformed
    // trace is an error whatever the core does.
    for (i, r) in mine.clone() {
        core_record(i, r)?;
        if r.tag == tag::CORE_NEW {
            return Err(ReplayError::CreatedTwice {
                record: i,
                core: id,
            });
        }
    }
    let mut core = make(role, Instant::from_nanos(first.time));
    let mut rep = ReplayReport {
        core: id,
        role,
        records: 1,
        inputs: 0,
        mismatch: None,
    };
    let mut buf = Vec::new();
    let mut pending_result: Option<(CmdResult, Vec<u8>)> = None;
    let mut input_err = false;
    let mut at = 0;
    for (_, r) in mine {
        rep.records += 1;
        at += 1;
        let now = Instant::from_nanos(r.time);
        let fail = |what: String| Some((at, what));
        if input_err && r.tag != tag::CORE_INPUT_ERROR {
            rep.mismatch = fail(String::from("replay rejected an input the run accepted"));
            break;
        }
        if pending_result.is_some() && r.tag != tag::CORE_RESULT {
            rep.mismatch = fail(String::from("a command without its recorded result"));
            break;
        }
        let m = match r.tag {
            tag::CORE_INPUT => {
                rep.inputs += 1;
                // The error record, if any, follows; a missing one shows up
                // as the next record not matching.
                input_err = core
                    .handle_input(now, bytes::Bytes::copy_from_slice(r.payload))
                    .is_err();
                None
            }
            tag::CORE_INPUT_ERROR if core::mem::take(&mut input_err) => None,
            tag::CORE_INPUT_ERROR => fail(String::from(
                "recorded an input error the replay did not see",
            )),
            tag::CORE_TIMEOUT => {
                rep.inputs += 1;
                core.handle_timeout(now);
                None
            }
            tag::CORE_TRANSPORT_CLOSED => {
                rep.inputs += 1;
                core.handle_transport_closed(now);
                None
            }
            tag::CORE_COMMAND => {
                rep.inputs += 1;
                let (s, arg) = (r.field(2), r.field(3));
                let c = match r.field(1) {
                    cmd::OPEN => Command::Open,
                    cmd::WRITE => Command::Write(s, r.payload),
                    cmd::FINISH => Command::Finish(s),
                    cmd::RESET => Command::Reset(s, arg),
                    cmd::READ => Command::Read(s, usize::try_from(arg).unwrap_or(usize::MAX)),
                    cmd::DRAIN => Command::Drain,
                    cmd::CLOSE => Command::Close(arg, r.payload),
                    // `core_record` admitted nothing else.
                    _ => Command::Extra {
                        op: r.field(4),
                        stream: s,
                        arg,
                        data: r.payload,
                    },
                };
                let mut out = Vec::new();
                match c {
                    Command::Extra {
                        op,
                        stream,
                        arg,
                        data,
                    } => match core.replay_extra(now, op, stream, arg, data) {
                        Ok(res) => {
                            pending_result = Some((res.map(|v| (v, None)), out));
                            None
                        }
                        Err(m) => fail(alloc::format!("{m}")),
                    },
                    _ => {
                        let res = apply(&mut core, now, &c, &mut out);
                        pending_result = Some((res, out));
                        None
                    }
                }
            }
            tag::CORE_RESULT => match pending_result.take() {
                Some((res, out)) => {
                    let e = enc_result(&res);
                    if e != [r.field(1), r.field(2)] || out != r.payload {
                        fail(alloc::format!(
                            "command result {e:?} (+{} bytes) vs recorded {:?} (+{} bytes)",
                            out.len(),
                            [r.field(1), r.field(2)],
                            r.payload.len()
                        ))
                    } else {
                        None
                    }
                }
                None => fail(String::from("result without a command")),
            },
            tag::CORE_TRANSMIT => {
                buf.clear();
                match core.poll_transmit(&mut buf) {
                    Some(_) if buf == r.payload => None,
                    Some(_) => fail(alloc::format!(
                        "transmit of {} bytes differs from the recorded {}",
                        buf.len(),
                        r.payload.len()
                    )),
                    None => fail(String::from(
                        "recorded a transmit the replay did not produce",
                    )),
                }
            }
            tag::CORE_EVENT => match core.poll_event() {
                Some(ev) if enc_event(ev) == [r.field(1), r.field(2)] => None,
                other => fail(alloc::format!(
                    "event {other:?} vs recorded kind {} stream {}",
                    r.field(1),
                    r.field(2)
                )),
            },
            tag::CORE_DEADLINE => {
                buf.clear();
                if core.poll_transmit(&mut buf).is_some() {
                    fail(String::from(
                        "replay had more to transmit at the end of a drain",
                    ))
                } else if let Some(ev) = core.poll_event() {
                    fail(alloc::format!("replay had an extra event {ev:?}"))
                } else {
                    let d = core.poll_timeout().map_or(u64::MAX, |t| t.as_nanos());
                    (d != r.field(1)).then(|| {
                        (
                            at,
                            alloc::format!("deadline {d} vs recorded {}", r.field(1)),
                        )
                    })
                }
            }
            // `core_record` admitted no other tag.
            _ => None,
        };
        if m.is_some() {
            rep.mismatch = m;
            break;
        }
    }
    if rep.mismatch.is_none() {
        if input_err {
            rep.mismatch = Some((
                at,
                String::from("replay rejected the last input, which the run accepted"),
            ));
        } else if pending_result.is_some() {
            rep.mismatch = Some((at, String::from("the last command has no recorded result")));
        }
    }
    Ok(rep)
}

// ------------------------------------------------------------ notes

/// The `NOTE` record (first field) a recording of a live connection
/// starts with: its payload is the recorded core's config as text, in a
/// form the core's own module defines (the mux's: `mux::config_text`), so
/// a replay can rebuild the core exactly. The simulator carries it
/// without reading it.
pub const ADAPTER_CONFIG_NOTE: u64 = 3;

#[cfg(test)]
mod tests {
    //! Crafted traces: every malformed one is a [`ReplayError`] or a
    //! mismatch, never a panic, a silent pass or unbounded work.

    extern crate std;
    use alloc::string::ToString;

    use super::*;
    use crate::mux::{Config, Connection, Side};
    use crate::sim::trace::parse;

    fn mux(role: Role, now: Instant) -> Connection {
        let side = match role {
            Role::Dialer => Side::Dialer,
            Role::Acceptor => Side::Acceptor,
        };
        Connection::new(Config::default(), side, now).unwrap()
    }

    /// A trace of `(tag, fields, payload)` records at time 0.
    fn trace(recs: &[(u8, &[u64], &[u8])]) -> Vec<u8> {
        let mut t = Trace::new(true);
        for (tg, f, p) in recs {
            t.record(*tg, 0, f, p);
        }
        t.into_bytes().unwrap()
    }

    fn replay_err(bytes: &[u8], id: u32) -> ReplayError {
        let recs = parse(bytes).unwrap();
        replay(&recs, id, mux).unwrap_err()
    }

    #[test]
    fn a_core_id_above_32_bits_is_an_error_not_a_truncation() {
        let big = 1u64 << 32;
        let bytes = trace(&[
            (tag::CORE_NEW, &[big, 0, 0], b""),
            (tag::CORE_TIMEOUT, &[big], b""),
        ]);
        let recs = parse(&bytes).unwrap();
        // It used to be listed as core 0, which `replay` then did not find.
        assert_eq!(cores_in(&recs), []);
        assert_eq!(
            try_cores_in(&recs),
            Err(ReplayError::CoreIdTooLarge { record: 0, id: big })
        );
        assert_eq!(replay_err(&bytes, 0), ReplayError::NoSuchCore(0));
    }

    #[test]
    fn a_host_id_above_32_bits_or_an_unknown_role_is_an_error() {
        let bytes = trace(&[(tag::CORE_NEW, &[0, 1 << 32, 0], b"")]);
        let recs = parse(&bytes).unwrap();
        let e = ReplayError::HostIdTooLarge {
            record: 0,
            host: 1 << 32,
        };
        assert_eq!(try_cores_in(&recs), Err(e.clone()));
        assert_eq!(cores_in(&recs), []);
        assert_eq!(replay_err(&bytes, 0), e);
        // Role 2 used to replay as a dialer.
        let bytes = trace(&[(tag::CORE_NEW, &[0, 0, 2], b"")]);
        let e = ReplayError::BadRole { record: 0, role: 2 };
        assert_eq!(try_cores_in(&parse(&bytes).unwrap()), Err(e.clone()));
        assert_eq!(replay_err(&bytes, 0), e);
    }

    #[test]
    fn a_record_before_the_core_exists_is_an_error() {
        let bytes = trace(&[
            (tag::CORE_TIMEOUT, &[0], b""),
            (tag::CORE_NEW, &[0, 0, 0], b""),
        ]);
        let recs = parse(&bytes).unwrap();
        // `cores_in` lists the core; replaying it used to give `None`, which
        // the CLI's `expect` turned into a panic.
        assert_eq!(cores_in(&recs), [(0, 0, Role::Dialer)]);
        let e = ReplayError::BeforeCreation { record: 0, core: 0 };
        assert_eq!(try_cores_in(&recs), Err(e.clone()));
        assert_eq!(replay(&recs, 0, mux).unwrap_err(), e);
        assert_eq!(replay_err(&bytes, 7), ReplayError::NoSuchCore(7));
    }

    #[test]
    fn a_core_created_twice_is_an_error() {
        let bytes = trace(&[
            (tag::CORE_NEW, &[0, 0, 0], b""),
            (tag::CORE_NEW, &[0, 0, 1], b""),
        ]);
        let recs = parse(&bytes).unwrap();
        // It used to be listed (and replayed) twice.
        assert_eq!(cores_in(&recs), [(0, 0, Role::Dialer)]);
        let e = ReplayError::CreatedTwice { record: 1, core: 0 };
        assert_eq!(try_cores_in(&recs), Err(e.clone()));
        assert_eq!(replay(&recs, 0, mux).unwrap_err(), e);
    }

    #[test]
    fn a_record_with_missing_fields_is_an_error() {
        // An event record without its kind and stream used to compare as
        // kind 0 stream 0.
        let bytes = trace(&[
            (tag::CORE_NEW, &[0, 0, 0], b""),
            (tag::CORE_EVENT, &[0], b""),
        ]);
        let e = ReplayError::FieldCount {
            record: 1,
            tag: tag::CORE_EVENT,
            got: 1,
            want: 3,
        };
        assert_eq!(try_cores_in(&parse(&bytes).unwrap()), Err(e.clone()));
        assert_eq!(replay_err(&bytes, 0), e);
        // No fields at all: not even a core id.
        let bytes = trace(&[
            (tag::CORE_NEW, &[0, 0, 0], b""),
            (tag::CORE_TRANSMIT, &[], b"x"),
        ]);
        assert!(matches!(
            replay_err(&bytes, 0),
            ReplayError::FieldCount { record: 1, .. }
        ));
        // An extra command without its op.
        let bytes = trace(&[
            (tag::CORE_NEW, &[0, 0, 0], b""),
            (tag::CORE_COMMAND, &[0, cmd::EXTRA, 0, 0], b""),
        ]);
        assert_eq!(
            replay_err(&bytes, 0),
            ReplayError::FieldCount {
                record: 1,
                tag: tag::CORE_COMMAND,
                got: 4,
                want: 5
            }
        );
    }

    #[test]
    fn an_unknown_command_or_tag_is_an_error() {
        // Command 99 used to replay as a close.
        let bytes = trace(&[
            (tag::CORE_NEW, &[0, 0, 0], b""),
            (tag::CORE_COMMAND, &[0, 99, 0, 0], b""),
            (tag::CORE_RESULT, &[0, 0, 0], b""),
        ]);
        let e = ReplayError::UnknownCommand {
            record: 1,
            command: 99,
        };
        assert_eq!(try_cores_in(&parse(&bytes).unwrap()), Err(e.clone()));
        assert_eq!(replay_err(&bytes, 0), e);
        // A core record tag this build does not know used to be skipped.
        let bytes = trace(&[(tag::CORE_NEW, &[0, 0, 0], b""), (0x30, &[0], b"")]);
        let e = ReplayError::UnknownTag {
            record: 1,
            tag: 0x30,
        };
        assert_eq!(replay_err(&bytes, 0), e);
        assert!(e.to_string().contains("0x30"), "{e}");
    }

    #[test]
    fn a_command_without_its_result_is_a_mismatch() {
        let bytes = trace(&[
            (tag::CORE_NEW, &[0, 0, 0], b""),
            (tag::CORE_COMMAND, &[0, cmd::OPEN, 0, 0], b""),
            (tag::CORE_COMMAND, &[0, cmd::OPEN, 0, 0], b""),
            (tag::CORE_RESULT, &[0, 0, 1], b""),
        ]);
        let recs = parse(&bytes).unwrap();
        let rep = replay(&recs, 0, mux).unwrap();
        let (at, what) = rep.mismatch.expect("used to pass");
        assert_eq!(at, 2);
        assert!(what.contains("without its recorded result"), "{what}");
        // The last record being a command.
        let bytes = trace(&[
            (tag::CORE_NEW, &[0, 0, 0], b""),
            (tag::CORE_COMMAND, &[0, cmd::OPEN, 0, 0], b""),
        ]);
        let rep = replay(&parse(&bytes).unwrap(), 0, mux).unwrap();
        assert!(rep.mismatch.is_some(), "{rep:?}");
    }

    #[test]
    fn a_last_input_the_replay_rejects_is_a_mismatch() {
        // The run accepted this (no error record follows); the mux does
        // not. Being the last record used to hide it.
        let bytes = trace(&[
            (tag::CORE_NEW, &[0, 0, 0], b""),
            (tag::CORE_INPUT, &[0], b"not the mux preface at all"),
        ]);
        let rep = replay(&parse(&bytes).unwrap(), 0, mux).unwrap();
        let (_, what) = rep.mismatch.expect("used to pass");
        assert!(what.contains("rejected"), "{what}");
    }

    #[test]
    fn huge_read_counts_cost_what_the_flow_holds() {
        // 4000 recorded reads of 2^40 bytes on a flow that does not exist:
        // each used to allocate and zero 16 MiB (64 GB in all, many
        // seconds). Now each read gets a buffer no larger than what the
        // flow holds.
        let mut recs = alloc::vec![(tag::CORE_NEW, &[0u64, 0, 0][..], &b""[..])];
        let read = [0, cmd::EXTRA, 1, 1 << 40, crate::mux::sim_core::extra::READ];
        let gone = [0, 4, 0];
        for _ in 0..4000 {
            recs.push((tag::CORE_COMMAND, &read[..], b""));
            recs.push((tag::CORE_RESULT, &gone[..], b""));
        }
        let bytes = trace(&recs);
        let recs = parse(&bytes).unwrap();
        // The buffer bound itself is checked where it is computed
        // (`mux::sim_core`'s `copying_read` tests); here, that such a trace
        // replays at all.
        let rep = replay(&recs, 0, mux).unwrap();
        assert_eq!(rep.mismatch, None);
        assert_eq!(rep.inputs, 4000);
    }
}
