//! Driving one core through the contract while writing every call and
//! every output to the trace, and replaying such a record into a fresh
//! core. Both sides share the encodings below, so "replay matches" means
//! the fresh core answered every recorded call with the same bytes.

use super::core::{CmdError, CoreEvent, ReadOutcome, Role, SimCore, StreamId};
use super::trace::{tag, Record, Trace};
use crate::time::Instant;
use alloc::string::{String, ToString};
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

/// The cores a trace created: (core, host, role).
pub fn cores_in(records: &[Record<'_>]) -> Vec<(u32, u32, Role)> {
    records
        .iter()
        .filter(|r| r.tag == tag::CORE_NEW)
        .map(|r| {
            let role = if r.field(2) == Role::Acceptor as u64 {
                Role::Acceptor
            } else {
                Role::Dialer
            };
            (r.field(0) as u32, r.field(1) as u32, role)
        })
        .collect()
}

/// Replays core `id`'s recorded calls into the fresh core `make` builds,
/// checking every output against the record: byte-identical transmits,
/// identical events, command results, deadlines, and nothing extra at the
/// end of each drain.
pub fn replay<C: SimCore>(
    records: &[Record<'_>],
    id: u32,
    make: impl FnOnce(Role, Instant) -> C,
) -> Option<ReplayReport> {
    let mine = |r: &&Record<'_>| r.tag >= tag::CORE_NEW && r.field(0) == u64::from(id);
    let mut it = records.iter().filter(mine);
    let first = it.next().filter(|r| r.tag == tag::CORE_NEW)?;
    let role = if first.field(2) == Role::Acceptor as u64 {
        Role::Acceptor
    } else {
        Role::Dialer
    };
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
    for (i, r) in it.enumerate() {
        rep.records += 1;
        let now = Instant::from_nanos(r.time);
        let at = i as u64 + 1;
        let fail = |what: String| Some((at, what));
        if input_err && r.tag != tag::CORE_INPUT_ERROR {
            rep.mismatch = fail(String::from("replay rejected an input the run accepted"));
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
                let c = match r.field(1) {
                    cmd::OPEN => Command::Open,
                    cmd::WRITE => Command::Write(r.field(2), r.payload),
                    cmd::FINISH => Command::Finish(r.field(2)),
                    cmd::RESET => Command::Reset(r.field(2), r.field(3)),
                    cmd::READ => Command::Read(r.field(2), r.field(3) as usize),
                    cmd::DRAIN => Command::Drain,
                    cmd::EXTRA => Command::Extra {
                        op: r.field(4),
                        stream: r.field(2),
                        arg: r.field(3),
                        data: r.payload,
                    },
                    _ => Command::Close(r.field(3), r.payload),
                };
                let mut out = Vec::new();
                let res = apply(&mut core, now, &c, &mut out);
                pending_result = Some((res, out));
                None
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
            _ => None,
        };
        if m.is_some() {
            rep.mismatch = m;
            break;
        }
    }
    Some(rep)
}

// ------------------------------------------------------------ the recorded mux config

/// The `NOTE` record (first field) an adapter recording starts with; its
/// payload is the connection's [`mux::Config`](crate::mux::Config) as
/// [`encode_mux_config`] writes it.
pub const ADAPTER_CONFIG_NOTE: u64 = 3;

/// What an encoded mux config starts with; the version changes only if
/// the syntax does (new fields are new keys).
pub const MUX_CONFIG_PREFIX: &str = "mux config v1:";

/// Why a recorded mux config could not be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MuxConfigError {
    /// The text does not start with [`MUX_CONFIG_PREFIX`] (a recording
    /// from before configs were encoded, or not a config at all).
    NotEncoded,
    /// An item that is not `key=value`.
    Malformed(String),
    /// A key this build's `Config` has no field for (recorded by a newer
    /// build, or mistyped).
    UnknownKey(String),
    /// A key given twice.
    DuplicateKey(String),
    /// A value that does not parse for its key.
    BadValue(String),
    /// The values parse but make a config [`validate`](crate::mux::Config::validate) rejects.
    Invalid(crate::mux::ConfigError),
}

impl core::fmt::Display for MuxConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MuxConfigError::NotEncoded => {
                write!(f, "not an encoded mux config (no {MUX_CONFIG_PREFIX:?})")
            }
            MuxConfigError::Malformed(s) => write!(f, "mux config item {s:?} is not key=value"),
            MuxConfigError::UnknownKey(k) => write!(f, "unknown mux config key {k:?}"),
            MuxConfigError::DuplicateKey(k) => write!(f, "mux config key {k:?} given twice"),
            MuxConfigError::BadValue(kv) => write!(f, "bad mux config value in {kv:?}"),
            MuxConfigError::Invalid(e) => write!(f, "recorded mux config is invalid: {e}"),
        }
    }
}

impl core::error::Error for MuxConfigError {}

/// A mux config as one line of `key=value` items after
/// [`MUX_CONFIG_PREFIX`], for a recording's note: integers in decimal,
/// durations in nanoseconds with an `ns` suffix, an absent option as
/// `none`. [`decode_mux_config`] reads it back.
pub fn encode_mux_config(cfg: &crate::mux::Config) -> String {
    use core::fmt::Write;
    // Every field by name and no `..`: a field added to `Config` stops this
    // compiling until it gets a key here and in `decode_mux_config`.
    let crate::mux::Config {
        profile,
        max_unacked_opens,
        max_concurrent_flows,
        max_flow_window,
        conn_recv_budget,
        flow_send_buffer,
        conn_send_buffer,
        max_frame_payload,
        send_chunk,
        max_transmit,
        max_close_reason,
        max_queued_control,
        max_resets_per_sec,
        max_pings_per_sec,
        keepalive_interval,
        channel_timeout,
        idle_timeout,
        drain_timeout,
        max_outstanding_pings,
        spare_buffers,
    } = cfg;
    let dur = |d: &crate::time::Duration| alloc::format!("{}ns", d.as_nanos());
    let opt = |d: &Option<crate::time::Duration>| d.as_ref().map_or(String::from("none"), dur);
    let profile = match profile {
        crate::mux::Profile::Native => "native",
        crate::mux::Profile::Yamux => "yamux",
    };
    let items: [(&str, String); 20] = [
        ("profile", String::from(profile)),
        ("max_unacked_opens", max_unacked_opens.to_string()),
        ("max_concurrent_flows", max_concurrent_flows.to_string()),
        ("max_flow_window", max_flow_window.to_string()),
        ("conn_recv_budget", conn_recv_budget.to_string()),
        ("flow_send_buffer", flow_send_buffer.to_string()),
        ("conn_send_buffer", conn_send_buffer.to_string()),
        ("max_frame_payload", max_frame_payload.to_string()),
        ("send_chunk", send_chunk.to_string()),
        ("max_transmit", max_transmit.to_string()),
        ("max_close_reason", max_close_reason.to_string()),
        ("max_queued_control", max_queued_control.to_string()),
        ("max_resets_per_sec", max_resets_per_sec.to_string()),
        ("max_pings_per_sec", max_pings_per_sec.to_string()),
        ("keepalive_interval", opt(keepalive_interval)),
        ("channel_timeout", opt(channel_timeout)),
        ("idle_timeout", opt(idle_timeout)),
        ("drain_timeout", dur(drain_timeout)),
        ("max_outstanding_pings", max_outstanding_pings.to_string()),
        ("spare_buffers", spare_buffers.to_string()),
    ];
    let mut s = String::from(MUX_CONFIG_PREFIX);
    for (k, v) in items {
        let _ = write!(s, " {k}={v}");
    }
    s
}

/// Rebuilds the config [`encode_mux_config`] wrote. A missing key keeps
/// `Config::default()`'s value (a recording from a build with fewer
/// fields); an unknown or repeated key, a bad value or an invalid result
/// is an error, never a silently different config.
pub fn decode_mux_config(text: &str) -> Result<crate::mux::Config, MuxConfigError> {
    use crate::time::Duration;
    use core::str::FromStr;
    fn num<T: FromStr>(item: &str, v: &str) -> Result<T, MuxConfigError> {
        v.parse()
            .map_err(|_| MuxConfigError::BadValue(String::from(item)))
    }
    fn dur(item: &str, v: &str) -> Result<Duration, MuxConfigError> {
        let n = v
            .strip_suffix("ns")
            .ok_or_else(|| MuxConfigError::BadValue(String::from(item)))?;
        Ok(Duration::from_nanos(num(item, n)?))
    }
    fn opt(item: &str, v: &str) -> Result<Option<Duration>, MuxConfigError> {
        if v == "none" {
            Ok(None)
        } else {
            dur(item, v).map(Some)
        }
    }
    let body = text
        .strip_prefix(MUX_CONFIG_PREFIX)
        .ok_or(MuxConfigError::NotEncoded)?;
    let mut cfg = crate::mux::Config::default();
    let mut seen: Vec<&str> = Vec::new();
    for item in body.split_ascii_whitespace() {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| MuxConfigError::Malformed(String::from(item)))?;
        if seen.contains(&k) {
            return Err(MuxConfigError::DuplicateKey(String::from(k)));
        }
        seen.push(k);
        match k {
            "profile" => {
                cfg.profile = match v {
                    "native" => crate::mux::Profile::Native,
                    "yamux" => crate::mux::Profile::Yamux,
                    _ => return Err(MuxConfigError::BadValue(String::from(item))),
                }
            }
            "max_unacked_opens" => cfg.max_unacked_opens = num(item, v)?,
            "max_concurrent_flows" => cfg.max_concurrent_flows = num(item, v)?,
            "max_flow_window" => cfg.max_flow_window = num(item, v)?,
            "conn_recv_budget" => cfg.conn_recv_budget = num(item, v)?,
            "flow_send_buffer" => cfg.flow_send_buffer = num(item, v)?,
            "conn_send_buffer" => cfg.conn_send_buffer = num(item, v)?,
            "max_frame_payload" => cfg.max_frame_payload = num(item, v)?,
            "send_chunk" => cfg.send_chunk = num(item, v)?,
            "max_transmit" => cfg.max_transmit = num(item, v)?,
            "max_close_reason" => cfg.max_close_reason = num(item, v)?,
            "max_queued_control" => cfg.max_queued_control = num(item, v)?,
            "max_resets_per_sec" => cfg.max_resets_per_sec = num(item, v)?,
            "max_pings_per_sec" => cfg.max_pings_per_sec = num(item, v)?,
            "keepalive_interval" => cfg.keepalive_interval = opt(item, v)?,
            "channel_timeout" => cfg.channel_timeout = opt(item, v)?,
            "idle_timeout" => cfg.idle_timeout = opt(item, v)?,
            "drain_timeout" => cfg.drain_timeout = dur(item, v)?,
            "max_outstanding_pings" => cfg.max_outstanding_pings = num(item, v)?,
            "spare_buffers" => cfg.spare_buffers = num(item, v)?,
            _ => return Err(MuxConfigError::UnknownKey(String::from(k))),
        }
    }
    cfg.validate().map_err(MuxConfigError::Invalid)?;
    Ok(cfg)
}

/// The mux config an adapter recording was made with: `None` if the
/// trace is not an adapter recording (no [`ADAPTER_CONFIG_NOTE`]), else the
/// decoded config or why it cannot be rebuilt.
pub fn recorded_mux_config(
    records: &[Record<'_>],
) -> Option<Result<crate::mux::Config, MuxConfigError>> {
    let note = records
        .iter()
        .find(|r| r.tag == tag::NOTE && r.field(0) == ADAPTER_CONFIG_NOTE)?;
    Some(
        core::str::from_utf8(note.payload)
            .map_err(|_| MuxConfigError::NotEncoded)
            .and_then(decode_mux_config),
    )
}
