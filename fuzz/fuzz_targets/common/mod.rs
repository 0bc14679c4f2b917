//! Helpers shared by the mux fuzz targets.
#![allow(dead_code)]

use bytes::BytesMut;
use proto_core::mux::frame::{decode_head, Control, Head, PREFACE};
use proto_core::mux::{Config, Connection, IoChunks, TransmitBuf};
use proto_core::wire::DecodeError;

/// Bounded drain loops: a `poll_transmit` / `poll_event` that never returns
/// `None` is a bug, reported instead of hanging.
pub const MAX_POLLS: usize = 100_000;

/// Known proto-core bugs the harness should steer around, from the
/// comma-separated `WEFT_FUZZ_AVOID` environment variable. Empty by
/// default: every check is strict. Avoiding a bug means *not generating*
/// the triggering scenario; no assertion is relaxed. This exists only so a
/// long fuzzing session can look for further bugs while a known one waits
/// for its fix (see fuzz/README.md).
pub fn avoid(bug: &str) -> bool {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        std::env::var("WEFT_FUZZ_AVOID")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .iter()
    .any(|b| b == bug || b == "all")
}

/// `WEFT_FUZZ_TRACE=1` makes the targets describe what they do on stderr
/// (for reading a crash or checking a seed; slow, never set while fuzzing).
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("WEFT_FUZZ_TRACE").is_some_and(|v| v != "0"))
}

/// The small config the targets use so limits are actually hit.
pub fn small_config() -> Config {
    let mut c = Config::default();
    c.conn_recv_budget = 1024 * 1024;
    c.max_concurrent_flows = 64;
    c.max_close_reason = 64;
    c
}

/// Which `TransmitBuf` implementation drains `poll_transmit`.
#[derive(Debug, Clone, Copy)]
pub enum TxKind {
    Vec,
    BytesMut,
    IoChunks,
}

impl TxKind {
    pub fn from_byte(b: u8) -> Self {
        match b % 3 {
            0 => TxKind::Vec,
            1 => TxKind::BytesMut,
            _ => TxKind::IoChunks,
        }
    }
}

/// One `poll_transmit` call through the chosen buffer type; appends what
/// it produced to `out`. Checks the returned count and `max_transmit`.
/// The new bytes are also fed to `checker`.
pub fn transmit_once(
    conn: &mut Connection,
    kind: TxKind,
    out: &mut Vec<u8>,
    checker: &mut OutputChecker,
) -> Option<usize> {
    let max = conn.config().max_transmit;
    let start = out.len();
    let n = match kind {
        TxKind::Vec => {
            let mut buf = Vec::new();
            let n = conn.poll_transmit(&mut buf);
            check_count(n, buf.len());
            out.extend_from_slice(&buf);
            n
        }
        TxKind::BytesMut => {
            let mut buf = BytesMut::new();
            let n = conn.poll_transmit(&mut buf);
            check_count(n, buf.len());
            out.extend_from_slice(&buf);
            n
        }
        TxKind::IoChunks => {
            let mut buf = IoChunks::default();
            // Something already queued: the call must append after it.
            buf.put_slice(b"x");
            let n = conn.poll_transmit(&mut buf);
            check_count(n, buf.len() - 1);
            let total = buf.len();
            let mut flat = Vec::with_capacity(total);
            for c in buf.chunks() {
                flat.extend_from_slice(c);
            }
            assert_eq!(flat.len(), total, "IoChunks::len disagrees with chunks");
            out.extend_from_slice(&flat[1..]);
            buf.advance(total);
            assert!(buf.is_empty());
            n
        }
    };
    checker.feed(&out[start..]);
    if let Some(n) = n {
        // Documented: at most `max_transmit` per call. Tolerated: the
        // 8-byte preface on the first call, and the final CLOSE frame.
        if !checker.closed {
            assert!(
                n <= max + PREFACE.len(),
                "poll_transmit appended {n} > max_transmit {max}"
            );
        }
    }
    n
}

fn check_count(n: Option<usize>, appended: usize) {
    match n {
        Some(n) => {
            assert!(n > 0, "poll_transmit returned Some(0)");
            assert_eq!(n, appended, "poll_transmit count != bytes appended");
        }
        None => assert_eq!(appended, 0, "poll_transmit returned None but appended"),
    }
}

/// A passive parser of one connection's output stream: checks that what a
/// connection sends is well formed (preface, decodable frames, DATA no
/// longer than `send_chunk`, nothing after a CLOSE).
#[derive(Debug)]
pub struct OutputChecker {
    preface: usize,
    head: Vec<u8>,
    payload: u64,
    send_chunk: u64,
    max_reason: usize,
    closed: bool,
    /// The last control frame seen (type byte and first varint), for
    /// checking the CONNECTION_CLOSE code.
    pub last_close: Option<(bool, u64)>,
    pub frames: u64,
}

impl OutputChecker {
    pub fn new(config: &Config) -> Self {
        OutputChecker {
            preface: 0,
            head: Vec::new(),
            payload: 0,
            send_chunk: config.send_chunk as u64,
            max_reason: config.max_close_reason,
            closed: false,
            last_close: None,
            frames: 0,
        }
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            assert!(!self.closed, "bytes sent after a CLOSE frame");
            if self.preface < PREFACE.len() {
                let n = (PREFACE.len() - self.preface).min(data.len());
                assert_eq!(
                    &data[..n],
                    &PREFACE[self.preface..self.preface + n],
                    "output does not start with the preface"
                );
                self.preface += n;
                data = &data[n..];
                continue;
            }
            if self.payload > 0 {
                let n = (self.payload.min(data.len() as u64)) as usize;
                self.payload -= n as u64;
                data = &data[n..];
                continue;
            }
            let had = self.head.len();
            self.head
                .extend_from_slice(&data[..data.len().min(64 + self.max_reason)]);
            match decode_head(&self.head, self.max_reason) {
                Ok((head, used)) => {
                    self.frames += 1;
                    match head {
                        Head::Data(h) => {
                            assert!(
                                h.len <= self.send_chunk,
                                "sent DATA of {} > send_chunk {}",
                                h.len,
                                self.send_chunk
                            );
                            self.payload = h.len;
                        }
                        Head::Control(Control::ConnectionClose { code, .. }) => {
                            self.closed = true;
                            self.last_close = Some((false, code));
                        }
                        Head::Control(Control::ApplicationClose { code, .. }) => {
                            self.closed = true;
                            self.last_close = Some((true, code));
                        }
                        Head::Control(_) => {}
                    }
                    data = &data[used - had..];
                    self.head.clear();
                }
                Err(DecodeError::Incomplete) => {
                    let took = self.head.len() - had;
                    assert!(took == data.len(), "incomplete head with bytes left");
                    data = &[];
                }
                Err(e) => panic!(
                    "connection sent a malformed frame: {e:?} {:02x?}",
                    self.head
                ),
            }
        }
    }

    /// The stream ends on a frame boundary (nothing half-sent).
    pub fn at_boundary(&self) -> bool {
        self.head.is_empty() && self.payload == 0
    }
}
