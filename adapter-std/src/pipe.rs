//! An in-memory, bounded, bidirectional byte pipe with the [`Stream`]
//! interface, for tests and for connecting two endpoints in one process.

use crate::Stream;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Bytes each direction holds before writers block.
pub const PIPE_CAPACITY: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Buffer {
    data: VecDeque<u8>,
    /// The writing end is done: readers see EOF once the data is read.
    write_closed: bool,
    /// The reading end is gone: writers fail with `BrokenPipe`.
    read_closed: bool,
}

#[derive(Debug, Default)]
struct Direction {
    buf: Mutex<Buffer>,
    cond: Condvar,
}

impl Direction {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close_write(&self) {
        self.lock().write_closed = true;
        self.cond.notify_all();
    }

    fn close_read(&self) {
        self.lock().read_closed = true;
        self.cond.notify_all();
    }
}

/// One end's two directions; closes both when its last clone goes.
#[derive(Debug)]
struct End {
    rx: Arc<Direction>,
    tx: Arc<Direction>,
    write_timeout: Mutex<Option<Duration>>,
    read_timeout: Mutex<Option<Duration>>,
}

impl Drop for End {
    fn drop(&mut self) {
        self.tx.close_write();
        self.rx.close_read();
    }
}

/// One end of a [`pipe`]. Clones (from [`Stream::try_clone`]) share the
/// end; it closes when the last clone is dropped.
///
/// ```
/// use std::io::{Read, Write};
/// let (mut a, mut b) = adapter_std::pipe();
/// a.write_all(b"ping").unwrap();
/// let mut buf = [0u8; 4];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"ping");
/// ```
#[derive(Debug, Clone)]
pub struct PipeStream {
    end: Arc<End>,
}

/// Two connected in-memory streams, each direction holding
/// [`PIPE_CAPACITY`] bytes before writes block.
pub fn pipe() -> (PipeStream, PipeStream) {
    let ab = Arc::new(Direction::default());
    let ba = Arc::new(Direction::default());
    let a = PipeStream {
        end: Arc::new(End {
            rx: ba.clone(),
            tx: ab.clone(),
            write_timeout: Mutex::new(None),
            read_timeout: Mutex::new(None),
        }),
    };
    let b = PipeStream {
        end: Arc::new(End {
            rx: ab,
            tx: ba,
            write_timeout: Mutex::new(None),
            read_timeout: Mutex::new(None),
        }),
    };
    (a, b)
}

impl Read for PipeStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let timeout = *self
            .end
            .read_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let deadline = timeout.map(|t| Instant::now() + t);
        let rx = &self.end.rx;
        let mut b = rx.lock();
        loop {
            if b.read_closed {
                return Ok(0);
            }
            if !b.data.is_empty() {
                let n = out.len().min(b.data.len());
                for (o, v) in out.iter_mut().zip(b.data.drain(..n)) {
                    *o = v;
                }
                rx.cond.notify_all();
                return Ok(n);
            }
            if b.write_closed {
                return Ok(0);
            }
            b = match deadline {
                None => rx.cond.wait(b).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    rx.cond
                        .wait_timeout(b, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

impl Write for PipeStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(data)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        let timeout = *self
            .end
            .write_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let deadline = timeout.map(|t| Instant::now() + t);
        let tx = &self.end.tx;
        let mut b = tx.lock();
        loop {
            if b.read_closed || b.write_closed {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let room = PIPE_CAPACITY - b.data.len();
            if room > 0 {
                let mut n = 0;
                for buf in bufs {
                    let k = buf.len().min(room - n);
                    b.data.extend(&buf[..k]);
                    n += k;
                    if n == room {
                        break;
                    }
                }
                tx.cond.notify_all();
                return Ok(n);
            }
            b = match deadline {
                None => tx.cond.wait(b).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    tx.cond
                        .wait_timeout(b, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for PipeStream {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(self.clone())
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.end.tx.close_write();
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.end.rx.close_read();
        }
        Ok(())
    }
}

impl PipeStream {
    /// Bounds how long a blocked `write` waits (it then fails with
    /// `TimedOut`); `None` waits forever.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        *self
            .end
            .write_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = timeout;
        Ok(())
    }
    /// Bounds how long a blocked `read` waits (it then fails with
    /// `TimedOut`); `None` waits forever.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        *self
            .end
            .read_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = timeout;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn bounded_and_closing() {
        let (mut a, mut b) = pipe();
        let big = vec![7u8; PIPE_CAPACITY * 3];
        let writer = thread::spawn(move || {
            a.write_all(&big).unwrap();
            a.shutdown(Shutdown::Write).unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), PIPE_CAPACITY * 3);
        let mut a = writer.join().unwrap();
        drop(b);
        assert_eq!(a.write(b"x").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn reads_time_out_when_asked() {
        let (mut a, mut b) = pipe();
        a.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            a.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        // Data already there is read regardless; no timeout again waits.
        b.write_all(b"data").unwrap();
        assert_eq!(a.read(&mut buf).unwrap(), 4);
        a.set_read_timeout(None).unwrap();
        let reader = thread::spawn(move || a.read(&mut buf).map(|n| (n, buf)));
        b.write_all(b"late").unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), (4, *b"late"));
    }
}
