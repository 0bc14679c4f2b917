//! The machine a mux connection's driver runs: the mux, recorded (or not),
//! under the secure layer (or not). Composed in `proto-core`; this file
//! only picks the composition and where a recording goes.

use proto_core::mux;
use proto_core::secure::Secured;
use proto_core::sim::{RecordOptions, Recorded, Role, TraceSink};
use proto_core::time::Instant;
use proto_core::wire::{Machine, Rejected, TransmitBuf};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// A mux connection as the adapters run it: the machine of a
/// [`MuxLayer`](crate::MuxLayer).
#[derive(Debug)]
#[non_exhaustive]
pub enum MuxStack {
    /// Plaintext: the explicit opt-out.
    Plain(Recorded<mux::Connection>),
    /// Handshake, then records, then the mux.
    Secure(Secured<Recorded<mux::Connection>>),
}

impl MuxStack {
    /// The mux, with every command logged when recording.
    pub(crate) fn mux(&mut self) -> &mut Recorded<mux::Connection> {
        match self {
            MuxStack::Plain(m) => m,
            MuxStack::Secure(s) => s.inner_mut(),
        }
    }

    /// The mux, read-only.
    pub(crate) fn conn(&self) -> &mux::Connection {
        match self {
            MuxStack::Plain(m) => m.inner(),
            MuxStack::Secure(s) => s.inner().inner(),
        }
    }

    /// The secure layer, if any.
    pub(crate) fn secured(&self) -> Option<&Secured<Recorded<mux::Connection>>> {
        match self {
            MuxStack::Plain(_) => None,
            MuxStack::Secure(s) => Some(s),
        }
    }
}

macro_rules! both {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            MuxStack::Plain($m) => $e,
            MuxStack::Secure($m) => $e,
        }
    };
}

impl Machine for MuxStack {
    fn handle_input(&mut self, now: Instant, data: bytes::Bytes) -> Result<(), Rejected> {
        both!(self, m => Machine::handle_input(m, now, data))
    }
    fn handle_timeout(&mut self, now: Instant) {
        both!(self, m => m.handle_timeout(now))
    }
    fn handle_transport_closed(&mut self, now: Instant) {
        both!(self, m => m.handle_transport_closed(now))
    }
    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
        both!(self, m => m.poll_transmit(out))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        both!(self, m => m.poll_timeout())
    }
    fn wants_transmit(&self) -> bool {
        both!(self, m => m.wants_transmit())
    }
    fn wants_input(&self) -> bool {
        both!(self, m => m.wants_input())
    }
    fn is_closed(&self) -> bool {
        both!(self, m => m.is_closed())
    }
    fn close(&mut self, now: Instant, code: u64, reason: &[u8]) {
        both!(self, m => m.close(now, code, reason))
    }
}

/// The mux for a new connection, recorded when `WEFT_RECORD_DIR` names a
/// directory: each connection then writes `<dir>/weft-<pid>-<n>-<random>.trace`,
/// created exclusively (never through an existing file or link) and
/// readable by its owner only. `WEFT_RECORD_PAYLOADS=0` keeps sizes, not
/// payloads (such a trace shows the calls but cannot be replayed). A file
/// that cannot be created, or a disk that fails, stops the log, never the
/// connection.
pub(crate) fn recorded_mux(conn: mux::Connection, now: Instant) -> Recorded<mux::Connection> {
    let Some(dir) = std::env::var_os("WEFT_RECORD_DIR") else {
        return Recorded::off(conn);
    };
    let payloads = std::env::var_os("WEFT_RECORD_PAYLOADS").is_none_or(|v| v != "0");
    match FileSink::create(Path::new(&dir)) {
        Ok(sink) => record_to(conn, Box::new(sink), now, payloads),
        Err(_) => Recorded::off(conn),
    }
}

/// `conn` recorded to `sink`, its config in the first note (replay rebuilds it).
pub(crate) fn record_to(
    conn: mux::Connection,
    sink: Box<dyn TraceSink>,
    now: Instant,
    payloads: bool,
) -> Recorded<mux::Connection> {
    let role = match conn.side() {
        mux::Side::Dialer => Role::Dialer,
        mux::Side::Acceptor => Role::Acceptor,
    };
    let mut options = RecordOptions::default();
    options.payloads = payloads;
    options.note = Some((
        proto_core::sim::driver::ADAPTER_CONFIG_NOTE,
        proto_core::mux::config_text::encode_mux_config(conn.config()).into_bytes(),
    ));
    Recorded::new(conn, sink, role, now, options)
}

/// A trace file, written through a buffer.
struct FileSink {
    out: BufWriter<std::fs::File>,
    failed: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileSink {
    fn create(dir: &Path) -> std::io::Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut salt = [0u8; 4];
        getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
        let name = format!(
            "weft-{}-{n}-{:08x}.trace",
            std::process::id(),
            u32::from_le_bytes(salt)
        );
        let file = create_private(&dir.join(name))?;
        Ok(FileSink {
            out: BufWriter::new(file),
            failed: false,
        })
    }
}

/// Creates `path` new (an existing file or symbolic link there is an
/// error: `create_new` is `O_CREAT | O_EXCL`, which never follows a link),
/// readable and writable by the owner only.
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

impl TraceSink for FileSink {
    fn write(&mut self, bytes: &[u8]) {
        if !self.failed && self.out.write_all(bytes).is_err() {
            self.failed = true;
        }
    }
    fn flush(&mut self) {
        if !self.failed && self.out.flush().is_err() {
            self.failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_files_are_new_private_and_never_follow_links() {
        let dir = std::env::temp_dir().join(format!("weft-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("victim");
        std::fs::write(&target, b"keep me").unwrap();
        let link = dir.join("link.trace");
        let _ = std::fs::remove_file(&link);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let e = create_private(&link).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
            assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
            let fresh = dir.join("fresh.trace");
            let _ = std::fs::remove_file(&fresh);
            drop(create_private(&fresh).unwrap());
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let a = FileSink::create(&dir).unwrap();
        let b = FileSink::create(&dir).unwrap();
        drop((a, b));
        let traces = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name();
                n.to_string_lossy().starts_with("weft-")
            })
            .count();
        assert!(traces >= 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
