//! Recording a live connection's core calls to a file (feature `record`),
//! in `proto_core::sim`'s trace format, so that `sim::driver::replay` (or
//! `cargo run -p proto-core --features sim --example sim -- --replay FILE`)
//! runs them again offline into a fresh core and checks every output byte.
//!
//! Turn it on by building with the `record` feature and setting
//! `WEFT_RECORD_DIR`: every connection then writes
//! `<dir>/weft-<pid>-<n>.trace`. Each input (received bytes, timeouts, end
//! of transport) is logged with the time the core was given, each command
//! with its result, each transmit and event as the check. Bytes are
//! written as they are logged (buffered, flushed once per driver pass), so
//! memory stays bounded and a crashed process leaves all but its last pass.
//! A file that cannot be created, or a disk that fails, stops the log,
//! never the connection.
//!
//! Every core call of the adapter goes through the functions below; without
//! the feature they are the bare calls.

use crate::shared::State;
use proto_core::mux::{
    Event, FlowId, IoChunks, OpenError, PingError, ReadError, TransmitBuf, WriteError,
};
use proto_core::time::Instant;

#[cfg(feature = "record")]
pub use recorder::Recorder;

#[cfg(feature = "record")]
mod recorder {
    use proto_core::sim::driver::CallLog;
    use proto_core::sim::trace::{tag, Trace};
    use std::fmt;
    use std::io::{self, BufWriter, Write};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A live connection's call log, streamed to a file.
    pub struct Recorder {
        pub(super) log: CallLog,
        pub(super) trace: Trace,
        pub(super) now: proto_core::time::Instant,
        out: BufWriter<std::fs::File>,
        failed: bool,
    }

    impl fmt::Debug for Recorder {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Recorder")
                .field("records", &self.trace.records())
                .finish_non_exhaustive()
        }
    }

    static COUNTER: AtomicU64 = AtomicU64::new(0);

    impl Recorder {
        /// Starts a log at `path`: the trace header, a note with the
        /// connection's config in `key=value` form
        /// (`sim::driver::encode_mux_config`; replay rebuilds it with
        /// `sim::driver::recorded_mux_config`), the core's creation.
        pub fn create(
            path: &std::path::Path,
            side: proto_core::mux::Side,
            config: &proto_core::mux::Config,
            now: proto_core::time::Instant,
        ) -> io::Result<Self> {
            let out = BufWriter::new(std::fs::File::create(path)?);
            let mut r = Recorder {
                log: CallLog { id: 0 },
                trace: Trace::new(true),
                now,
                out,
                failed: false,
            };
            let role = match side {
                proto_core::mux::Side::Dialer => proto_core::sim::Role::Dialer,
                proto_core::mux::Side::Acceptor => proto_core::sim::Role::Acceptor,
            };
            let cfg = proto_core::sim::driver::encode_mux_config(config);
            r.trace.record(
                tag::NOTE,
                now.as_nanos(),
                &[proto_core::sim::driver::ADAPTER_CONFIG_NOTE],
                cfg.as_bytes(),
            );
            r.log.created(&mut r.trace, now, 0, role);
            r.write();
            Ok(r)
        }

        /// From `WEFT_RECORD_DIR`, if set: `<dir>/weft-<pid>-<n>.trace`.
        pub(crate) fn from_env(
            side: proto_core::mux::Side,
            config: &proto_core::mux::Config,
            now: proto_core::time::Instant,
        ) -> Option<Self> {
            let dir = std::env::var_os("WEFT_RECORD_DIR")?;
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path =
                std::path::Path::new(&dir).join(format!("weft-{}-{n}.trace", std::process::id()));
            Recorder::create(&path, side, config, now).ok()
        }

        /// Moves logged bytes to the file (a failing disk stops the log,
        /// never the connection).
        pub(super) fn write(&mut self) {
            let bytes = self.trace.drain_bytes();
            if !self.failed && self.out.write_all(&bytes).is_err() {
                self.failed = true;
            }
        }

        pub(super) fn flush(&mut self) {
            self.write();
            if !self.failed && self.out.flush().is_err() {
                self.failed = true;
            }
        }
    }
}

/// Starts recording this connection if `WEFT_RECORD_DIR` asks for it.
#[allow(unused_variables)]
pub(crate) fn attach(st: &mut State, side: proto_core::mux::Side, now: Instant) {
    #[cfg(feature = "record")]
    {
        let config = st.conn.config().clone();
        st.rec = Recorder::from_env(side, &config, now);
    }
}

#[cfg(feature = "record")]
fn with_rec(st: &mut State, f: impl FnOnce(&mut Recorder)) {
    if let Some(r) = st.rec.as_mut() {
        f(r);
        r.write();
    }
}

#[cfg(feature = "record")]
fn command(
    st: &mut State,
    c: proto_core::sim::driver::Command<'_>,
    r: proto_core::sim::driver::CmdResult,
) {
    with_rec(st, |rec| {
        let now = rec.now;
        rec.log.command(&mut rec.trace, now, &c, &r, b"");
    });
}

/// Received bytes: opened as records first on a secure connection (the
/// log holds the mux's plaintext inputs, which is what replays). A record
/// that fails authentication closes the mux with
/// [`RECORD_FAILURE`](proto_core::secure::RECORD_FAILURE) and keeps the
/// reason as the transport error.
pub(crate) fn input(st: &mut State, now: Instant, data: bytes::Bytes) {
    let Some(mut records) = st.records.take() else {
        mux_input(st, now, data);
        return;
    };
    let opened = records.open(&data, |plain| mux_input(st, now, plain));
    st.records = Some(records);
    if let Err(e) = opened {
        if st.conn.is_closed() {
            return; // closed at the first bad record; this repeats it
        }
        close(
            st,
            proto_core::secure::RECORD_FAILURE,
            b"record authentication failed",
        );
        st.transport_error.get_or_insert(e.to_string());
    }
}

/// `handle_input_bytes`; false once the core refused input (it closed).
fn mux_input(st: &mut State, now: Instant, data: bytes::Bytes) -> bool {
    #[cfg(feature = "record")]
    with_rec(st, |r| {
        r.now = now;
        r.log.input(&mut r.trace, now, &data);
    });
    let failed = st.conn.handle_input_bytes(now, data).is_err();
    #[cfg(feature = "record")]
    if failed {
        with_rec(st, |r| r.log.input_error(&mut r.trace, now));
    }
    !failed
}

/// `handle_transport_closed`.
pub(crate) fn transport_closed(st: &mut State, now: Instant) {
    #[cfg(feature = "record")]
    with_rec(st, |r| {
        r.now = now;
        r.log.transport_closed(&mut r.trace, now);
    });
    st.conn.handle_transport_closed(now);
    #[cfg(feature = "record")]
    if let Some(r) = st.rec.as_mut() {
        r.flush();
    }
}

/// `handle_timeout`.
pub(crate) fn timeout(st: &mut State, now: Instant) {
    #[cfg(feature = "record")]
    with_rec(st, |r| {
        r.now = now;
        r.log.timeout(&mut r.trace, now);
    });
    st.conn.handle_timeout(now);
}

/// `poll_transmit` into `out` (sealed as records on a secure connection);
/// true if it gave something.
pub(crate) fn transmit(st: &mut State, out: &mut IoChunks) -> bool {
    let Some(mut records) = st.records.take() else {
        return mux_transmit(st, out, tail_of_chunks);
    };
    let more = records
        .transmit_with(
            |plain| mux_transmit(st, plain, |v: &mut Vec<u8>, n| v[v.len() - n..].to_vec()),
            out,
        )
        .is_some();
    st.records = Some(records);
    more
}

/// `poll_transmit` into any buffer, logging the bytes it appended
/// (`last(buf, n)` copies out its last `n` bytes, only when recording).
#[allow(unused_variables)]
fn mux_transmit<B: TransmitBuf>(
    st: &mut State,
    buf: &mut B,
    last: impl Fn(&mut B, usize) -> Vec<u8>,
) -> bool {
    let Some(n) = st.conn.poll_transmit(buf) else {
        return false;
    };
    #[cfg(feature = "record")]
    if st.rec.is_some() {
        let bytes = last(buf, n);
        with_rec(st, |r| {
            let now = r.now;
            r.log.transmit(&mut r.trace, now, &bytes);
        });
    }
    true
}

/// The last `n` bytes of `out`.
fn tail_of_chunks(out: &mut IoChunks, n: usize) -> Vec<u8> {
    let mut tail = Vec::with_capacity(n);
    let mut skip = out.len() - n;
    for c in out.chunks() {
        if skip >= c.len() {
            skip -= c.len();
            continue;
        }
        tail.extend_from_slice(&c[skip..]);
        skip = 0;
    }
    tail
}

/// Called once per driver pass: pushes the log to the file.
pub(crate) fn flush(_st: &mut State) {
    #[cfg(feature = "record")]
    if let Some(r) = _st.rec.as_mut() {
        r.flush();
    }
}

/// `poll_event`.
pub(crate) fn poll_event(st: &mut State) -> Option<Event> {
    let ev = st.conn.poll_event();
    #[cfg(feature = "record")]
    if let Some(e) = &ev {
        let ce = proto_core::sim::CoreEvent::from(e);
        with_rec(st, |r| {
            let now = r.now;
            r.log.event(&mut r.trace, now, ce);
        });
    }
    ev
}

/// `open_flow` / `open_side_channel`.
pub(crate) fn open(st: &mut State, side_channel: bool) -> Result<FlowId, OpenError> {
    let r = if side_channel {
        st.conn.open_side_channel()
    } else {
        st.conn.open_flow()
    };
    #[cfg(feature = "record")]
    {
        use proto_core::mux::sim_core::{extra, open_err};
        use proto_core::sim::driver::Command;
        let c = if side_channel {
            Command::Extra {
                op: extra::OPEN_SIDE_CHANNEL,
                stream: 0,
                arg: 0,
                data: b"",
            }
        } else {
            Command::Open
        };
        command(st, c, r.map(|id| (id.0, None)).map_err(open_err));
    }
    r
}

/// `go_away`.
pub(crate) fn go_away(st: &mut State, code: u64) {
    st.conn.go_away(code);
    #[cfg(feature = "record")]
    command(
        st,
        extra_cmd(proto_core::mux::sim_core::extra::GO_AWAY, 0, code, b""),
        Ok((0, None)),
    );
}

/// `close`.
pub(crate) fn close(st: &mut State, code: u64, reason: &[u8]) {
    st.conn.close(code, reason);
    #[cfg(feature = "record")]
    command(
        st,
        extra_cmd(proto_core::mux::sim_core::extra::CLOSE, 0, code, reason),
        Ok((0, None)),
    );
}

/// `ping`.
pub(crate) fn ping(st: &mut State) -> Result<u64, PingError> {
    let r = st.conn.ping();
    #[cfg(feature = "record")]
    command(
        st,
        extra_cmd(proto_core::mux::sim_core::extra::PING, 0, 0, b""),
        r.map(|v| (v, None))
            .map_err(|_| proto_core::sim::CmdError::Blocked),
    );
    r
}

/// `flow(id).reset(code)`.
pub(crate) fn reset(st: &mut State, id: FlowId, code: u64) -> Result<(), WriteError> {
    let r = st.conn.flow(id).reset(code);
    #[cfg(feature = "record")]
    command(
        st,
        proto_core::sim::driver::Command::Reset(id.0, code),
        r.map(|()| (0, None))
            .map_err(proto_core::mux::sim_core::write_err),
    );
    r
}

/// `flow(id).finish()`.
pub(crate) fn finish(st: &mut State, id: FlowId) -> Result<(), WriteError> {
    let r = st.conn.flow(id).finish();
    #[cfg(feature = "record")]
    command(
        st,
        proto_core::sim::driver::Command::Finish(id.0),
        r.map(|()| (0, None))
            .map_err(proto_core::mux::sim_core::write_err),
    );
    r
}

/// `flow(id).stop(code)`.
pub(crate) fn stop(st: &mut State, id: FlowId, code: u64) -> Result<(), ReadError> {
    let r = st.conn.flow(id).stop(code);
    #[cfg(feature = "record")]
    command(
        st,
        extra_cmd(proto_core::mux::sim_core::extra::STOP, id.0, code, b""),
        r.map(|()| (0, None))
            .map_err(proto_core::mux::sim_core::read_err),
    );
    r
}

/// What a read took out of a flow, for the log.
#[cfg_attr(not(feature = "record"), allow(dead_code))]
pub(crate) trait ReadLen {
    /// Bytes taken; 0 at end of data.
    fn read_len(&self) -> usize;
}

impl ReadLen for usize {
    fn read_len(&self) -> usize {
        *self
    }
}

impl ReadLen for Option<bytes::Bytes> {
    fn read_len(&self) -> usize {
        self.as_ref().map_or(0, |b| b.len())
    }
}

/// After a read (`read` or `read_chunk`): logged as a copying read of
/// exactly what it took, which leaves the core in the same state.
#[allow(unused_variables)]
pub(crate) fn read<T: ReadLen>(st: &mut State, id: FlowId, r: &Result<T, ReadError>) {
    #[cfg(feature = "record")]
    {
        let n = r.as_ref().map_or(0, |v| v.read_len()) as u64;
        command(
            st,
            extra_cmd(proto_core::mux::sim_core::extra::READ, id.0, n.max(1), b""),
            r.as_ref()
                .map(|_| (n, None))
                .map_err(|e| proto_core::mux::sim_core::read_err(*e)),
        );
    }
}

/// After a write of `data` (`write`, or `write_chunk` if `chunk`): logged
/// as a write of what it took (one byte when it was blocked).
#[allow(unused_variables)]
pub(crate) fn write(
    st: &mut State,
    id: FlowId,
    chunk: bool,
    data: &[u8],
    r: &Result<usize, WriteError>,
) {
    #[cfg(feature = "record")]
    {
        use proto_core::sim::driver::Command;
        let (taken, res) = match r {
            Ok(n) => (&data[..*n], Ok((*n as u64, None))),
            Err(WriteError::Blocked) => (
                &data[..data.len().min(1)],
                Err(proto_core::sim::CmdError::Blocked),
            ),
            Err(e) => (
                &data[..data.len().min(1)],
                Err(proto_core::mux::sim_core::write_err(*e)),
            ),
        };
        let c = if chunk {
            extra_cmd(
                proto_core::mux::sim_core::extra::WRITE_CHUNK,
                id.0,
                0,
                taken,
            )
        } else {
            Command::Write(id.0, taken)
        };
        command(st, c, res);
    }
}

#[cfg(feature = "record")]
fn extra_cmd(op: u64, stream: u64, arg: u64, data: &[u8]) -> proto_core::sim::driver::Command<'_> {
    proto_core::sim::driver::Command::Extra {
        op,
        stream,
        arg,
        data,
    }
}
