//! The canonical binary trace: every event of a run, in order.
//!
//! # Format
//!
//! A trace is the 8-byte magic [`MAGIC`] followed by records. Every record
//! is, all integers little-endian:
//!
//! ```text
//! tag: u8 | time: u64 (ns) | nfields: u8 | fields: nfields x u64 | len: u32 | payload: len bytes
//! ```
//!
//! `time` is the global virtual time for network records and the host's own
//! (skewed) clock for core records (the time the core itself was given).
//! Tags are the constants in [`tag`]. The encoding has no padding, no
//! maps and no pointers, so the same run gives the same bytes on every
//! platform and in every process; [`TraceHash`] digests them as they are
//! written, so a run that keeps no bytes still has a comparable hash.

use alloc::vec::Vec;

/// First bytes of every trace file.
pub const MAGIC: &[u8; 8] = b"WEFTSIM1";

/// Record tags. Network records are below 0x20, core records from 0x20.
pub mod tag {
    /// A host joined: fields `[host]`.
    pub const HOST_UP: u8 = 0x01;
    /// A host went down: fields `[host, 0 = closed | 1 = crashed]`.
    pub const HOST_DOWN: u8 = 0x02;
    /// A host came back after a crash: fields `[host]`.
    pub const HOST_RESTART: u8 = 0x03;
    /// A listener opened: fields `[host, port, listener]`.
    pub const LISTEN: u8 = 0x04;
    /// A dial started: fields `[op, from host, to host, port]`.
    pub const DIAL: u8 = 0x05;
    /// A stream connection was established: fields `[conn, peer conn, local port, peer port]`.
    pub const CONNECTED: u8 = 0x06;
    /// Stream bytes handed to a receiving socket: fields `[conn]`; payload the bytes.
    pub const DELIVER: u8 = 0x07;
    /// End of stream reached the receiver: fields `[conn]`.
    pub const FIN: u8 = 0x08;
    /// A reset reached the receiver: fields `[conn]`.
    pub const RST: u8 = 0x09;
    /// A fault fired: fields `[kind, a, b]` (see [`FaultKind`](crate::sim::FaultKind)).
    pub const FAULT: u8 = 0x0a;
    /// A datagram was delivered: fields `[socket, from host, from port]`; payload the bytes.
    pub const DATAGRAM: u8 = 0x0b;
    /// A timer fired: fields `[host or u64::MAX, token]`.
    pub const TIMER: u8 = 0x0c;
    /// An operation failed: fields `[op, error code]`.
    pub const OP_ERROR: u8 = 0x0d;
    /// A socket was closed by its owner: fields `[kind 0 conn | 1 listener | 2 datagram, id]`.
    pub const CLOSE: u8 = 0x0e;
    /// A pending operation completed: fields `[op, result id or error code, ok]`.
    pub const OP_DONE: u8 = 0x0f;
    /// A note: field 0 says what it is (0 = the scenario's configuration,
    /// 1 = heal, 2 = liveness deadline, 3 = an adapter recording's mux
    /// config, 4 = a fault tick with field 1 the fault kind); payload its text.
    pub const NOTE: u8 = 0x10;

    /// A core was created: fields `[core, host, role]`.
    pub const CORE_NEW: u8 = 0x20;
    /// Bytes given to `handle_input`: fields `[core]`; payload the bytes.
    pub const CORE_INPUT: u8 = 0x21;
    /// `handle_timeout` was called: fields `[core]`.
    pub const CORE_TIMEOUT: u8 = 0x22;
    /// `handle_transport_closed` was called: fields `[core]`.
    pub const CORE_TRANSPORT_CLOSED: u8 = 0x23;
    /// A workload command: fields `[core, command, stream, argument]`; payload written bytes.
    pub const CORE_COMMAND: u8 = 0x24;
    /// What `poll_transmit` gave: fields `[core]`; payload the bytes.
    pub const CORE_TRANSMIT: u8 = 0x25;
    /// What `poll_event` gave: fields `[core, kind, stream, detail]`.
    pub const CORE_EVENT: u8 = 0x26;
    /// A command's result: fields `[core, outcome, value]`; payload bytes read.
    pub const CORE_RESULT: u8 = 0x27;
    /// `handle_input` returned an error: fields `[core]`.
    pub const CORE_INPUT_ERROR: u8 = 0x28;
    /// `poll_timeout` after a drain: fields `[core, deadline or u64::MAX]`.
    pub const CORE_DEADLINE: u8 = 0x29;
}

/// A record tag's name, for dumps.
pub fn tag_name(t: u8) -> &'static str {
    match t {
        tag::HOST_UP => "host-up",
        tag::HOST_DOWN => "host-down",
        tag::HOST_RESTART => "host-restart",
        tag::LISTEN => "listen",
        tag::DIAL => "dial",
        tag::CONNECTED => "connected",
        tag::DELIVER => "deliver",
        tag::FIN => "fin",
        tag::RST => "rst",
        tag::FAULT => "fault",
        tag::DATAGRAM => "datagram",
        tag::TIMER => "timer",
        tag::OP_ERROR => "op-error",
        tag::CLOSE => "close",
        tag::OP_DONE => "op-done",
        tag::NOTE => "note",
        tag::CORE_NEW => "core-new",
        tag::CORE_INPUT => "core-input",
        tag::CORE_TIMEOUT => "core-timeout",
        tag::CORE_TRANSPORT_CLOSED => "core-transport-closed",
        tag::CORE_COMMAND => "core-command",
        tag::CORE_TRANSMIT => "core-transmit",
        tag::CORE_EVENT => "core-event",
        tag::CORE_RESULT => "core-result",
        tag::CORE_INPUT_ERROR => "core-input-error",
        tag::CORE_DEADLINE => "core-deadline",
        _ => "unknown",
    }
}

/// A streaming 64-bit digest of trace bytes: 8-byte words folded with a
/// multiply-xorshift, finished with SplitMix64. Depends only on the bytes,
/// not on how they were split between calls. Not cryptographic: it tells
/// two runs apart, it does not defend against forgery.
#[derive(Clone, Debug)]
pub struct TraceHash {
    h: u64,
    pending: [u8; 8],
    npending: usize,
    len: u64,
}

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash {
            h: 0x243f_6a88_85a3_08d3,
            pending: [0; 8],
            npending: 0,
            len: 0,
        }
    }
}

impl TraceHash {
    fn fold(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.h ^= self.h >> 29;
    }

    /// Adds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.npending > 0 {
            let take = (8 - self.npending).min(data.len());
            self.pending[self.npending..self.npending + take].copy_from_slice(&data[..take]);
            self.npending += take;
            data = &data[take..];
            if self.npending < 8 {
                return;
            }
            let w = u64::from_le_bytes(self.pending);
            self.fold(w);
            self.npending = 0;
        }
        let mut words = data.chunks_exact(8);
        for c in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.fold(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
    }

    /// The digest of everything added so far.
    pub fn finish(&self) -> u64 {
        let mut c = self.clone();
        if c.npending > 0 {
            let mut b = [0u8; 8];
            b[..c.npending].copy_from_slice(&c.pending[..c.npending]);
            c.fold(u64::from_le_bytes(b));
        }
        c.fold(c.len);
        let mut s = c.h;
        super::rng::splitmix64(&mut s)
    }
}

/// Where records go: always into the hash, and into a byte buffer when the
/// run keeps its trace (the sweep and the bench only hash).
#[derive(Clone, Debug)]
pub struct Trace {
    hash: TraceHash,
    bytes: Option<Vec<u8>>,
    records: u64,
    scratch: Vec<u8>,
}

impl Trace {
    /// A trace that keeps its bytes (`keep`) or only hashes them.
    pub fn new(keep: bool) -> Self {
        let mut t = Trace {
            hash: TraceHash::default(),
            bytes: keep.then(Vec::new),
            records: 0,
            scratch: Vec::new(),
        };
        t.hash.update(MAGIC);
        if let Some(b) = &mut t.bytes {
            b.extend_from_slice(MAGIC);
        }
        t
    }

    /// Appends one record.
    pub fn record(&mut self, tag: u8, time: u64, fields: &[u64], payload: &[u8]) {
        let s = &mut self.scratch;
        s.clear();
        s.push(tag);
        s.extend_from_slice(&time.to_le_bytes());
        // Callers pass a handful of fields; more is a bug in the simulator.
        debug_assert!(fields.len() <= usize::from(u8::MAX));
        s.push(fields.len() as u8);
        for f in fields {
            s.extend_from_slice(&f.to_le_bytes());
        }
        s.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.hash.update(s);
        self.hash.update(payload);
        if let Some(b) = &mut self.bytes {
            b.extend_from_slice(s);
            b.extend_from_slice(payload);
        }
        self.records += 1;
    }

    /// The digest of the trace so far.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// Records written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The bytes, if kept.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }

    /// Takes the bytes kept so far (the hash still covers them): a recorder
    /// writing to a file drains them as it goes, so memory stays bounded.
    pub fn drain_bytes(&mut self) -> Vec<u8> {
        self.bytes.as_mut().map(core::mem::take).unwrap_or_default()
    }

    /// Takes the bytes, if kept.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        self.bytes
    }
}

/// One decoded record, borrowing from the trace bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// See [`tag`].
    pub tag: u8,
    /// Virtual time (ns): global for network records, the host's for core records.
    pub time: u64,
    /// Up to 255 integer fields.
    pub fields: Vec<u64>,
    /// Bytes.
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// Field `i`, or 0 if the record has fewer.
    pub fn field(&self, i: usize) -> u64 {
        self.fields.get(i).copied().unwrap_or(0)
    }
}

/// A trace that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceError {
    /// The file does not start with [`MAGIC`].
    BadMagic,
    /// A record is cut short at this byte offset.
    Truncated(usize),
}

impl core::fmt::Display for TraceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TraceError::BadMagic => f.write_str("not a weft sim trace (bad magic)"),
            TraceError::Truncated(at) => write!(f, "trace truncated at byte {at}"),
        }
    }
}

impl core::error::Error for TraceError {}

/// Decodes every record of a trace.
pub fn parse(bytes: &[u8]) -> Result<Vec<Record<'_>>, TraceError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(TraceError::BadMagic);
    }
    let mut at = MAGIC.len();
    let mut out = Vec::new();
    let take = |at: &mut usize, n: usize| -> Result<&[u8], TraceError> {
        let end = at.checked_add(n).ok_or(TraceError::Truncated(*at))?;
        let s = bytes.get(*at..end).ok_or(TraceError::Truncated(*at))?;
        *at = end;
        Ok(s)
    };
    let u64_at = |s: &[u8]| {
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        u64::from_le_bytes(b)
    };
    while at < bytes.len() {
        let start = at;
        let tag = take(&mut at, 1)?[0];
        let time = u64_at(take(&mut at, 8)?);
        let n = usize::from(take(&mut at, 1)?[0]);
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            fields.push(u64_at(take(&mut at, 8)?));
        }
        let mut lb = [0u8; 4];
        lb.copy_from_slice(take(&mut at, 4)?);
        let len = u32::from_le_bytes(lb) as usize;
        let payload = take(&mut at, len).map_err(|_| TraceError::Truncated(start))?;
        out.push(Record {
            tag,
            time,
            fields,
            payload,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_split_points() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut a = TraceHash::default();
        a.update(&data);
        let mut b = TraceHash::default();
        for c in data.chunks(3) {
            b.update(c);
        }
        assert_eq!(a.finish(), b.finish());
        let mut c = TraceHash::default();
        c.update(&data[..99]);
        assert_ne!(a.finish(), c.finish());
        // Trailing zero bytes change the length, hence the digest.
        let mut d = TraceHash::default();
        d.update(&data);
        d.update(&[0]);
        assert_ne!(a.finish(), d.finish());
    }

    #[test]
    fn records_round_trip_and_hash_matches_bytes() {
        let mut t = Trace::new(true);
        t.record(tag::CORE_INPUT, 5, &[1], b"abc");
        t.record(tag::FIN, 9, &[2, 3], b"");
        let bytes = t.bytes().unwrap().to_vec();
        let recs = parse(&bytes).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].payload, b"abc");
        assert_eq!(recs[1].fields, [2, 3]);
        assert_eq!(recs[1].time, 9);
        let mut h = TraceHash::default();
        h.update(&bytes);
        assert_eq!(h.finish(), t.hash());
        assert_eq!(
            parse(&bytes[..bytes.len() - 1]),
            Err(TraceError::Truncated(8 + 25 + 1 + 8 + 1 + 16))
        );
        assert_eq!(parse(b"nope"), Err(TraceError::BadMagic));
    }
}
