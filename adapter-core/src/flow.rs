//! Flow handles: poll functions any runtime's IO traits can wrap, and
//! async conveniences on top.

use crate::error::{read_error, write_error};
use crate::mux_layer::{set_waker, FlowWakers, MuxLayer};
use crate::shared::Shared;
use bytes::{Buf, Bytes};
use proto_core::mux::{Connection as Mux, FlowId, FlowStats, ReadError, WriteError};
use proto_core::sim::Recorded;
use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    Open,
    Eof,
    Failed(ReadError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteEnd {
    Open,
    Finished,
    Failed(WriteError),
}

/// Call with the state locked: registers the flow's waker slots.
pub(crate) fn new_flow(
    shared: &Arc<Shared<MuxLayer>>,
    flows: &mut HashMap<u64, FlowWakers>,
    id: FlowId,
    side_channel: bool,
) -> Flow {
    flows.insert(
        id.0,
        FlowWakers {
            halves: 2,
            ..FlowWakers::default()
        },
    );
    Flow {
        reader: FlowReader {
            shared: shared.clone(),
            id,
            end: ReadEnd::Open,
        },
        writer: FlowWriter {
            shared: shared.clone(),
            id,
            end: WriteEnd::Open,
        },
        side_channel,
    }
}

fn stats(shared: &Shared<MuxLayer>, id: FlowId) -> Option<FlowStats> {
    shared.with(|st| st.stack.conn().flow_stats(id))
}

/// Drops one half's waker slot; forgets the flow's slots with the last half.
fn release_half(flows: &mut HashMap<u64, FlowWakers>, id: FlowId, read: bool) {
    if let Some(w) = flows.get_mut(&id.0) {
        if read {
            w.read = None;
        } else {
            w.write = None;
        }
        w.halves -= 1;
        if w.halves == 0 {
            flows.remove(&id.0);
        }
    }
}

/// One multiplexed flow: a reliable byte stream in each direction.
///
/// Runtime adapters wrap it to implement their `AsyncRead`/`AsyncWrite`;
/// the async methods here work on any executor. [`split`](Self::split)
/// gives the two directions to two tasks.
///
/// Dropping a flow finishes its send side (FIN after the buffered data) if
/// it is still open, and stops its receive side (the peer's writes fail) if
/// the end of data was not read.
///
/// ```no_run
/// # async fn f(conn: adapter_core::Connection) -> std::io::Result<()> {
/// let mut flow = conn.open_flow().await?;
/// flow.write_all(b"hello").await?;
/// flow.finish()?;
/// let reply = flow.read_to_end(1 << 20).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Flow {
    // Dropped first: the FIN is requested before the reader's stop, which
    // under the yamux profile sends RST and must not overtake queued data.
    writer: FlowWriter,
    reader: FlowReader,
    side_channel: bool,
}

/// The receive direction of a [`Flow`], from [`Flow::split`].
///
/// Dropping it before the end of data stops the flow (the peer's writes
/// fail with code 0).
pub struct FlowReader {
    shared: Arc<Shared<MuxLayer>>,
    id: FlowId,
    end: ReadEnd,
}

/// The send direction of a [`Flow`], from [`Flow::split`].
///
/// Dropping it finishes the flow (FIN after the buffered data) unless it
/// was finished or reset.
pub struct FlowWriter {
    shared: Arc<Shared<MuxLayer>>,
    id: FlowId,
    end: WriteEnd,
}

impl fmt::Debug for FlowReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowReader")
            .field("id", &self.id)
            .field("end", &self.end)
            .finish()
    }
}

impl fmt::Debug for FlowWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowWriter")
            .field("id", &self.id)
            .field("end", &self.end)
            .finish()
    }
}

impl Flow {
    /// The connection state the flow shares (for `Flow::security`).
    pub(crate) fn shared(&self) -> &Arc<Shared<MuxLayer>> {
        &self.reader.shared
    }

    /// The flow's id (even for flows the dialer opened).
    pub fn id(&self) -> FlowId {
        self.reader.id
    }

    /// The flow does not keep the connection from being idle.
    pub fn is_side_channel(&self) -> bool {
        self.side_channel
    }

    /// Counters for the flow; `None` once both directions ended and the
    /// connection forgot it.
    pub fn stats(&self) -> Option<FlowStats> {
        stats(&self.reader.shared, self.reader.id)
    }

    /// The two directions, for two tasks.
    ///
    /// ```no_run
    /// # async fn f(flow: adapter_core::Flow) -> std::io::Result<()> {
    /// let (mut rx, mut tx) = flow.split();
    /// // e.g. one task writes while another reads
    /// tx.write_all(b"request").await?;
    /// tx.finish()?;
    /// let reply = rx.read_to_end(1 << 20).await?;
    /// # Ok(()) }
    /// ```
    pub fn split(self) -> (FlowReader, FlowWriter) {
        (self.reader, self.writer)
    }

    /// The receive direction.
    pub fn reader(&mut self) -> &mut FlowReader {
        &mut self.reader
    }

    /// The send direction.
    pub fn writer(&mut self) -> &mut FlowWriter {
        &mut self.writer
    }

    /// See [`FlowReader::poll_read`].
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.reader.poll_read(cx, buf)
    }

    /// See [`FlowReader::poll_read_chunk`].
    pub fn poll_read_chunk(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<io::Result<Option<Bytes>>> {
        self.reader.poll_read_chunk(cx, max)
    }

    /// See [`FlowWriter::poll_write`].
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.writer.poll_write(cx, buf)
    }

    /// See [`FlowWriter::poll_write_chunk`].
    pub fn poll_write_chunk(
        &mut self,
        cx: &mut Context<'_>,
        data: &mut Bytes,
    ) -> Poll<io::Result<usize>> {
        self.writer.poll_write_chunk(cx, data)
    }

    /// See [`FlowWriter::poll_flush`].
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.poll_flush(cx)
    }

    /// See [`FlowWriter::poll_finish`].
    pub fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.poll_finish(cx)
    }

    /// See [`FlowWriter::finish`].
    pub fn finish(&mut self) -> io::Result<()> {
        self.writer.finish()
    }

    /// See [`FlowWriter::reset`].
    pub fn reset(&mut self, code: u64) -> io::Result<()> {
        self.writer.reset(code)
    }

    /// See [`FlowReader::stop`].
    pub fn stop(&mut self, code: u64) -> io::Result<()> {
        self.reader.stop(code)
    }

    /// See [`FlowReader::read`].
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf).await
    }

    /// See [`FlowReader::read_exact`].
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.reader.read_exact(buf).await
    }

    /// See [`FlowReader::read_to_end`].
    pub async fn read_to_end(&mut self, limit: usize) -> io::Result<Vec<u8>> {
        self.reader.read_to_end(limit).await
    }

    /// See [`FlowReader::read_chunk`].
    pub async fn read_chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        self.reader.read_chunk(max).await
    }

    /// See [`FlowWriter::write`].
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf).await
    }

    /// See [`FlowWriter::write_all`].
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_all(buf).await
    }

    /// See [`FlowWriter::write_chunk`].
    pub async fn write_chunk(&mut self, data: Bytes) -> io::Result<()> {
        self.writer.write_chunk(data).await
    }
}

impl FlowReader {
    /// The flow's id.
    pub fn id(&self) -> FlowId {
        self.id
    }

    /// Counters for the flow (see [`Flow::stats`]).
    pub fn stats(&self) -> Option<FlowStats> {
        stats(&self.shared, self.id)
    }

    /// Reads into `buf`. `Ok(0)` (for a non-empty `buf`) is the end of data.
    /// A peer reset is `ConnectionReset` (see [`reset_code`](crate::reset_code)),
    /// a closed connection `ConnectionAborted`, both after any data that
    /// arrived before them.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.poll_with(cx, |m, id| m.read(id, buf), |n| *n == 0)
    }

    /// Takes up to `max` received bytes without copying; `Ok(None)` is the
    /// end of data.
    pub fn poll_read_chunk(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<io::Result<Option<Bytes>>> {
        self.poll_with(cx, |m, id| m.read_chunk(id, max), |c| c.is_none())
    }

    fn poll_with<T: Default>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut Recorded<Mux>, FlowId) -> Result<T, ReadError>,
        is_end: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match self.end {
            ReadEnd::Eof => return Poll::Ready(Ok(T::default())),
            ReadEnd::Failed(e) => return Poll::Ready(Err(read_error(e))),
            ReadEnd::Open => {}
        }
        let id = self.id;
        let r = self.shared.with(|st| {
            let r = op(st.stack.mux(), id);
            if let Err(ReadError::Blocked) = r {
                if let Some(w) = st.flows.get_mut(&id.0) {
                    set_waker(&mut w.read, cx.waker());
                }
            }
            r
        });
        match r {
            Ok(v) => {
                if is_end(&v) {
                    self.end = ReadEnd::Eof;
                }
                Poll::Ready(Ok(v))
            }
            Err(ReadError::Blocked) => Poll::Pending,
            Err(e) => {
                self.end = ReadEnd::Failed(e);
                Poll::Ready(Err(read_error(e)))
            }
        }
    }

    /// Stops reading: buffered and later data is discarded and the peer's
    /// writes fail with `BrokenPipe` carrying `code` (see [`stop_code`](crate::stop_code)).
    pub fn stop(&mut self, code: u64) -> io::Result<()> {
        let id = self.id;
        let r = self.shared.with(|st| st.stack.mux().stop(id, code));
        if self.end == ReadEnd::Open {
            self.end = ReadEnd::Failed(ReadError::Stopped);
        }
        match r {
            Ok(()) | Err(ReadError::UnknownFlow) => Ok(()),
            Err(e) => Err(read_error(e)),
        }
    }

    /// Reads into `buf`; `Ok(0)` is the end of data.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Reads exactly `buf.len()` bytes; `UnexpectedEof` if the data ends first.
    pub async fn read_exact(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read(buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Reads until the end of data; fails with `InvalidData` beyond `limit` bytes.
    pub async fn read_to_end(&mut self, limit: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = self.read_chunk(64 * 1024).await? {
            if out.len() + chunk.len() > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "flow data exceeds the read limit",
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Takes up to `max` received bytes without copying; `None` at the end of data.
    pub async fn read_chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        poll_fn(|cx| self.poll_read_chunk(cx, max)).await
    }
}

impl FlowWriter {
    /// The flow's id.
    pub fn id(&self) -> FlowId {
        self.id
    }

    /// Counters for the flow (see [`Flow::stats`]).
    pub fn stats(&self) -> Option<FlowStats> {
        stats(&self.shared, self.id)
    }

    /// Writes a prefix of `buf` into the send buffer; returns its length.
    /// Pending while the flow's or the connection's send buffer is full.
    /// A flow the peer stopped fails with `BrokenPipe` (see
    /// [`stop_code`](crate::stop_code)).
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_with(cx, |m, id| m.write(id, buf))
    }

    /// Like [`poll_write`](Self::poll_write) without copying: takes a
    /// prefix of `data` by reference and advances `data` past it.
    pub fn poll_write_chunk(
        &mut self,
        cx: &mut Context<'_>,
        data: &mut Bytes,
    ) -> Poll<io::Result<usize>> {
        let chunk = data.clone();
        let r = self.poll_with(cx, |m, id| m.write_chunk(id, chunk));
        if let Poll::Ready(Ok(n)) = r {
            data.advance(n);
        }
        r
    }

    fn poll_with(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut Recorded<Mux>, FlowId) -> Result<usize, WriteError>,
    ) -> Poll<io::Result<usize>> {
        match self.end {
            WriteEnd::Finished => return Poll::Ready(Err(write_error(WriteError::Finished))),
            WriteEnd::Failed(e) => return Poll::Ready(Err(write_error(e))),
            WriteEnd::Open => {}
        }
        let id = self.id;
        let r = self.shared.with(|st| {
            let r = op(st.stack.mux(), id);
            if let Err(WriteError::Blocked) = r {
                if let Some(w) = st.flows.get_mut(&id.0) {
                    set_waker(&mut w.write, cx.waker());
                }
            }
            r
        });
        match r {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(WriteError::Blocked) => Poll::Pending,
            Err(e) => {
                self.end = WriteEnd::Failed(e);
                Poll::Ready(Err(write_error(e)))
            }
        }
    }

    /// Ready at once: written data is already the connection's to send (its
    /// send buffers are bounded by the config; writes wait when they are full).
    pub fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.end {
            WriteEnd::Failed(e) => Poll::Ready(Err(write_error(e))),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Poll form of [`finish`](Self::finish) (ready at once), for `poll_shutdown`/`poll_close`.
    pub fn poll_finish(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.finish())
    }

    /// Ends the send side after the buffered data (FIN); the peer reads
    /// end of data. Finishing twice is fine.
    pub fn finish(&mut self) -> io::Result<()> {
        match self.end {
            WriteEnd::Finished => return Ok(()),
            WriteEnd::Failed(e) => return Err(write_error(e)),
            WriteEnd::Open => {}
        }
        let id = self.id;
        let r = self.shared.with(|st| st.stack.mux().finish(id));
        match r {
            Ok(()) => {
                self.end = WriteEnd::Finished;
                Ok(())
            }
            Err(e) => {
                self.end = WriteEnd::Failed(e);
                Err(write_error(e))
            }
        }
    }

    /// Abandons the send side: unsent data is dropped and the peer's reads
    /// fail with `ConnectionReset` carrying `code` (see [`reset_code`](crate::reset_code)).
    pub fn reset(&mut self, code: u64) -> io::Result<()> {
        if let WriteEnd::Failed(e) = self.end {
            return Err(write_error(e));
        }
        let id = self.id;
        let r = self.shared.with(|st| st.stack.mux().reset(id, code));
        self.end = WriteEnd::Failed(WriteError::Finished);
        r.map_err(write_error)
    }

    /// Writes a prefix of `buf`; returns its length (waits while buffers are full).
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Writes all of `data` without copying it (the connection keeps
    /// references until the bytes are on the wire).
    pub async fn write_chunk(&mut self, mut data: Bytes) -> io::Result<()> {
        while !data.is_empty() {
            poll_fn(|cx| self.poll_write_chunk(cx, &mut data)).await?;
        }
        Ok(())
    }
}

impl Drop for FlowReader {
    fn drop(&mut self) {
        let (id, stop) = (self.id, self.end == ReadEnd::Open);
        self.shared.with(|st| {
            release_half(&mut st.flows, id, true);
            if stop {
                let _ = st.stack.mux().stop(id, 0);
            }
        });
    }
}

impl Drop for FlowWriter {
    fn drop(&mut self) {
        let (id, finish) = (self.id, self.end == WriteEnd::Open);
        self.shared.with(|st| {
            release_half(&mut st.flows, id, false);
            if finish {
                let _ = st.stack.mux().finish(id);
            }
        });
    }
}
