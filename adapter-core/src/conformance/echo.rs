//! The reference byte-stream machine ([`proto_core::sim::echo::Echo`]) as
//! a [`Layer`], with a small async handle: what any byte-stream protocol
//! (RPC, sessions) needs to run on a socket or on one mux flow through the
//! one [`Driver`](crate::Driver).

use crate::shared::{set_waker, Layer, Shared, Wakeups};
use bytes::Bytes;
use proto_core::sim::echo::{Echo, EchoError, EchoRole};
use proto_core::wire::Machine;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, Waker};

/// An [`Echo`] machine and the wakers of the tasks waiting on it.
#[derive(Debug)]
pub struct EchoLayer {
    echo: Echo,
    reply: Option<Waker>,
    closed: Option<Waker>,
    /// `outstanding()` at the last dispatch: a drop means replies arrived.
    outstanding: usize,
}

impl EchoLayer {
    /// An echo end accepting messages of at most `max_message` bytes.
    pub fn new(role: EchoRole, max_message: usize) -> Self {
        EchoLayer {
            echo: Echo::new(role, max_message),
            reply: None,
            closed: None,
            outstanding: 0,
        }
    }
}

impl Layer for EchoLayer {
    type Machine = Echo;

    fn machine(&mut self) -> &mut Echo {
        &mut self.echo
    }

    fn machine_ref(&self) -> &Echo {
        &self.echo
    }

    fn dispatch(&mut self, wake: &mut Wakeups) {
        let outstanding = self.echo.outstanding();
        let closed = self.echo.is_closed();
        if outstanding < self.outstanding || closed {
            wake.take_from(&mut self.reply);
        }
        if closed {
            wake.take_from(&mut self.closed);
        }
        self.outstanding = outstanding;
    }
}

/// The handle of an [`EchoLayer`] run by a driver (one task waits on
/// replies, one on the close; clones share the layer).
#[derive(Debug, Clone)]
pub struct EchoHandle(pub Arc<Shared<EchoLayer>>);

impl EchoHandle {
    /// Queues `msg`; the driver sends it.
    pub fn send(&self, msg: &[u8]) -> Result<(), EchoError> {
        self.0.with(|l| l.echo.send(msg))
    }

    /// The next reply, or `None` once the machine closed with no reply left.
    pub async fn reply(&self) -> Option<Bytes> {
        poll_fn(|cx| {
            self.0.with(|l| match l.echo.poll_reply() {
                Some(r) => Poll::Ready(Some(r)),
                None if l.echo.is_closed() => Poll::Ready(None),
                None => {
                    set_waker(&mut l.reply, cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Waits for the machine to close; its error, if it stopped for one.
    pub async fn closed(&self) -> Option<EchoError> {
        poll_fn(|cx| {
            self.0.with(|l| {
                if l.echo.is_closed() {
                    Poll::Ready(l.echo.error())
                } else {
                    set_waker(&mut l.closed, cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Closes the machine with `code` (nothing more is sent); the driver
    /// then ends the transport.
    pub fn close(&self, code: u64) {
        let now = self.0.now();
        self.0.with(|l| l.echo.close(now, code, b""));
    }

    /// Messages sent whose reply has not arrived.
    pub fn outstanding(&self) -> usize {
        self.0.with(|l| l.echo.outstanding())
    }

    /// The driver has ended: it held the only other reference to the
    /// layer (so only meaningful while this handle has no clones).
    pub fn driver_ended(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }
}
