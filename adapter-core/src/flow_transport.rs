//! A flow as a [`Transport`]: any byte-stream machine (RPC, sessions, a
//! test's echo) runs on one flow of a mux connection through the same
//! [`Driver`](crate::Driver) that runs it on a socket.

use crate::flow::Flow;
use crate::runtime::Transport;
use bytes::Bytes;
use proto_core::wire::IoChunks;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

impl Transport for Flow {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Flow::poll_read(self, cx, buf)
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        _recv: &mut crate::RecvBuffer,
    ) -> Poll<io::Result<Bytes>> {
        // The flow already holds received bytes as `Bytes`: no copy.
        // End of data is the empty chunk.
        self.poll_read_chunk(cx, usize::MAX)
            .map_ok(Option::unwrap_or_default)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty());
        match first {
            Some(b) => self.poll_write(cx, b),
            None => Poll::Ready(Ok(0)),
        }
    }

    fn poll_write_chunks(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut IoChunks,
    ) -> Poll<io::Result<usize>> {
        // Hand the machine's chunks to the flow by reference; what the
        // flow did not take goes back to the front.
        let Some(mut chunk) = out.pop_chunk() else {
            return Poll::Ready(Ok(0));
        };
        let r = self.poll_write_chunk(cx, &mut chunk);
        if !chunk.is_empty() {
            out.push_front(chunk);
        }
        r
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Flow::poll_flush(self, cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_finish(cx)
    }
}
