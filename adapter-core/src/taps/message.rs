//! A message connection run by the one driver: [`MessageLayer`] turns the
//! core's events into wake-ups, [`MessageConnection`] is the handle
//! (RFC 9622's Send, Receive, Close, Abort and events, as async calls).

use super::initiate::{on_flow, Origin};
use crate::secure::Addresses;
use crate::shared::{set_waker, Layer, Shared, Wakeups};
use bytes::Bytes;
use proto_core::taps::candidate::Candidate;
use proto_core::taps::connection::{
    Connection as Core, ConnectionFailure, Event, ReceiveError, SendError,
};
use proto_core::taps::message::{MessageContext, MessageProperties, MessageRef};
use proto_core::taps::rendezvous::{Handover, LinkEvent, RendezvousError};
use proto_core::time::Instant;
use proto_core::wire::Machine;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{Poll, Waker};

/// What became of a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendOutcome {
    /// Its last byte went to the transport.
    Sent,
    /// Its lifetime passed before it was sent.
    Expired,
    /// It will not be sent.
    Failed(SendError),
}

/// A received message, or a piece of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The bytes.
    pub data: Bytes,
    /// Where they sit in their message (`end_of_message` false: a part).
    pub context: MessageContext,
}

/// The end state of a message connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// Closed cleanly.
    Closed,
    /// Failed or aborted.
    Failed(ConnectionFailure),
}

/// Events that are not a send outcome or a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// A notice from below that does not end the connection.
    SoftError(String),
}

/// A machine that carries a message connection: the plain one on a
/// stream, or one behind a rendezvous link ([`Handover`]), whose link
/// events the rendezvous coordinator reads.
pub trait MessageMachine: Machine + Send + 'static {
    /// The message connection.
    fn messages(&mut self) -> &mut Core;
    /// The message connection, read-only.
    fn messages_ref(&self) -> &Core;
    /// The next event of a rendezvous link below the messages (none on a
    /// plain connection).
    fn poll_link_event(&mut self) -> Option<LinkEvent> {
        None
    }
    /// Rendezvous: keep this link (the decider's choice).
    fn choose(&mut self, _now: Instant) -> Result<(), RendezvousError> {
        Err(RendezvousError::NotDecider)
    }
    /// Whether the message connection has the stream (always, without a
    /// rendezvous).
    fn is_handed_over(&self) -> bool {
        true
    }
}

impl MessageMachine for Core {
    fn messages(&mut self) -> &mut Core {
        self
    }
    fn messages_ref(&self) -> &Core {
        self
    }
}

impl MessageMachine for Handover<Core> {
    fn messages(&mut self) -> &mut Core {
        self.inner_mut()
    }
    fn messages_ref(&self) -> &Core {
        self.inner()
    }
    fn poll_link_event(&mut self) -> Option<LinkEvent> {
        self.link_mut().poll_event()
    }
    fn choose(&mut self, now: Instant) -> Result<(), RendezvousError> {
        Handover::choose(self, now)
    }
    fn is_handed_over(&self) -> bool {
        Handover::is_handed_over(self)
    }
}

/// Link events a layer holds for the rendezvous coordinator.
const MAX_LINK_EVENTS: usize = 8;

/// A message connection's machine and the wakers of the tasks waiting on it.
pub struct MessageLayer {
    conn: Box<dyn MessageMachine>,
    /// A rendezvous link's events, for the coordinator.
    pub(crate) link_events: Vec<LinkEvent>,
    /// The rendezvous coordinator, woken by link events and the end.
    pub(crate) coordinator: Option<Waker>,
    next_ref: u64,
    /// Outcomes awaited by a `send` (only refs someone waits for are kept).
    awaited: HashMap<MessageRef, (Option<SendOutcome>, Option<Waker>)>,
    received: VecDeque<Result<Received, ReceiveError>>,
    receivers: Vec<Waker>,
    notices: VecDeque<Notice>,
    notice_waiter: Option<Waker>,
    ready: bool,
    ended: Option<Ended>,
    end_waiters: Vec<Waker>,
}

impl fmt::Debug for MessageLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageLayer")
            .field("ready", &self.ready)
            .field("ended", &self.ended)
            .field("awaited", &self.awaited.len())
            .field("received", &self.received.len())
            .finish_non_exhaustive()
    }
}

impl MessageLayer {
    /// The layer around a message machine.
    pub fn new(conn: impl MessageMachine) -> Self {
        MessageLayer {
            conn: Box::new(conn),
            link_events: Vec::new(),
            coordinator: None,
            next_ref: 0,
            awaited: HashMap::new(),
            received: VecDeque::new(),
            receivers: Vec::new(),
            notices: VecDeque::new(),
            notice_waiter: None,
            ready: false,
            ended: None,
            end_waiters: Vec::new(),
        }
    }

    /// Queues one message under the next reference.
    fn queue(
        &mut self,
        now: Instant,
        data: Bytes,
        props: MessageProperties,
    ) -> Result<MessageRef, SendError> {
        let r = MessageRef(self.next_ref);
        self.next_ref += 1;
        self.conn.messages().send(now, r, data, props).map(|()| r)
    }

    fn finish(&mut self, outcome: MessageRef, what: SendOutcome, wake: &mut Wakeups) {
        if let Some(slot) = self.awaited.get_mut(&outcome) {
            slot.0 = Some(what);
            wake.take_from(&mut slot.1);
        }
    }
}

impl Layer for MessageLayer {
    type Machine = Box<dyn MessageMachine>;

    fn machine(&mut self) -> &mut Box<dyn MessageMachine> {
        &mut self.conn
    }

    fn machine_ref(&self) -> &Box<dyn MessageMachine> {
        &self.conn
    }

    fn dispatch(&mut self, wake: &mut Wakeups) {
        let mut for_coordinator = false;
        while let Some(ev) = self.conn.poll_link_event() {
            if self.link_events.len() < MAX_LINK_EVENTS {
                self.link_events.push(ev);
            }
            for_coordinator = true;
        }
        while let Some(ev) = self.conn.messages().poll_event() {
            match ev {
                Event::Ready => self.ready = true,
                Event::Sent(r) => self.finish(r, SendOutcome::Sent, wake),
                Event::Expired(r) => self.finish(r, SendOutcome::Expired, wake),
                Event::SendError { message, error } => {
                    self.finish(message, SendOutcome::Failed(error), wake)
                }
                Event::Received { data, context } | Event::ReceivedPartial { data, context } => {
                    self.received.push_back(Ok(Received { data, context }));
                    wake.drain_from(&mut self.receivers);
                }
                Event::ReceiveError { error, .. } => {
                    self.received.push_back(Err(error));
                    wake.drain_from(&mut self.receivers);
                }
                Event::SoftError { reason } => {
                    // The core's bound on undelivered soft errors holds here too.
                    if self.notices.len()
                        < self.conn.messages_ref().config().max_pending_soft_errors
                    {
                        self.notices
                            .push_back(Notice::SoftError(reason.into_owned()));
                    }
                    wake.take_from(&mut self.notice_waiter);
                }
                Event::Closed => self.ended = Some(Ended::Closed),
                Event::ConnectionError(f) => self.ended = Some(Ended::Failed(f)),
                _ => {}
            }
        }
        if self.ended.is_some() || self.conn.is_closed() {
            for_coordinator = true;
            wake.drain_from(&mut self.end_waiters);
            wake.drain_from(&mut self.receivers);
            wake.take_from(&mut self.notice_waiter);
            for slot in self.awaited.values_mut() {
                wake.take_from(&mut slot.1);
            }
        }
        if for_coordinator {
            wake.take_from(&mut self.coordinator);
        }
    }
}

/// Removes a send's slot when its future ends or is dropped, so outcomes
/// nobody waits for are not kept.
struct Awaiting<'a> {
    shared: &'a Shared<MessageLayer>,
    msgref: MessageRef,
}

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        self.shared.with(|l| l.awaited.remove(&self.msgref));
    }
}

/// A message connection (RFC 9622 section 9): send and receive messages,
/// close or abort, wait for the end. Clones of the handle share the
/// connection; [`clone_connection`](Self::clone_connection) is RFC 9622's
/// Clone (a new connection of the same group).
///
/// Dropping the last handle closes the connection gracefully (queued
/// messages still go out).
#[derive(Clone)]
pub struct MessageConnection {
    shared: Arc<Shared<MessageLayer>>,
    origin: Arc<Origin>,
    _last: Arc<CloseOnDrop>,
}

/// Closes the connection when the last handle goes.
struct CloseOnDrop(Arc<Shared<MessageLayer>>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let now = self.0.now();
        self.0.with(|l| l.conn.messages().close(now));
    }
}

impl fmt::Debug for MessageConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageConnection")
            .field("candidate", &self.origin.candidate)
            .field("addresses", &self.origin.addresses)
            .finish_non_exhaustive()
    }
}

fn closed_error(ended: &Option<Ended>) -> io::Error {
    match ended {
        Some(Ended::Failed(f)) => io::Error::new(io::ErrorKind::ConnectionAborted, f.clone()),
        _ => io::Error::new(
            io::ErrorKind::NotConnected,
            "the message connection is closed",
        ),
    }
}

impl MessageConnection {
    pub(crate) fn new(shared: Arc<Shared<MessageLayer>>, origin: Arc<Origin>) -> Self {
        MessageConnection {
            _last: Arc::new(CloseOnDrop(shared.clone())),
            shared,
            origin,
        }
    }

    /// The stack and endpoint this connection runs on.
    pub fn candidate(&self) -> &Candidate {
        &self.origin.candidate
    }

    /// Both ends' socket addresses (for a connection on a mux flow, the
    /// mux connection's socket).
    pub fn addresses(&self) -> Option<&Addresses> {
        self.origin.addresses.as_ref()
    }

    /// What the secure handshake established, on the secure stack.
    pub fn security(&self) -> Option<Arc<crate::Security>> {
        self.origin.mux.as_ref().and_then(|m| m.security())
    }

    /// The message properties [`send_default`](Self::send_default) uses:
    /// the preconnection's send parameters.
    pub fn send_defaults(&self) -> MessageProperties {
        self.origin.send_defaults
    }

    /// [`send`](Self::send) with the preconnection's send parameters.
    pub async fn send_default(&self, data: impl Into<Bytes>) -> SendOutcome {
        self.send(data, self.origin.send_defaults).await
    }

    /// RFC 9622's Clone: another connection of the same group, with the
    /// same properties. On a multistreaming stack it is a new flow of the
    /// same mux connection (no handshake, no race); otherwise a new race
    /// to the same remote. A connection that was accepted by a listener
    /// on a stack without multistreaming cannot clone (`Unsupported`).
    pub async fn clone_connection(&self) -> io::Result<MessageConnection> {
        if let Some(mux) = &self.origin.mux {
            let flow = mux.open_flow().await?;
            return on_flow(&self.origin, flow);
        }
        match &self.origin.again {
            Some(again) => Ok(again().await?.connection),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an accepted connection on a stack without multistreaming cannot clone",
            )),
        }
    }

    /// Queues `data` as one message without waiting for it to go out; the
    /// reference names it (nothing reports its outcome: use
    /// [`send`](Self::send) for that).
    pub fn send_nowait(
        &self,
        data: impl Into<Bytes>,
        props: MessageProperties,
    ) -> Result<MessageRef, SendError> {
        let data = data.into();
        let now = self.shared.now();
        self.shared.with(|l| l.queue(now, data, props))
    }

    /// Queues several messages at once (RFC 9622's batch): they reach the
    /// connection together, so their priorities order them even when the
    /// transport is idle. Stops at the first refused message (those before
    /// it stay queued) and returns the references of those queued.
    pub fn send_batch(
        &self,
        messages: impl IntoIterator<Item = (Bytes, MessageProperties)>,
    ) -> Result<Vec<MessageRef>, SendError> {
        let now = self.shared.now();
        self.shared.with(|l| {
            messages
                .into_iter()
                .map(|(data, props)| l.queue(now, data, props))
                .collect()
        })
    }

    /// Sends `data` as one message and waits until its last byte went to
    /// the transport (RFC 9622's Sent); `Expired` or the send error
    /// otherwise.
    pub async fn send(&self, data: impl Into<Bytes>, props: MessageProperties) -> SendOutcome {
        let data = data.into();
        let now = self.shared.now();
        // Events are dispatched after the closure: the slot is there in time.
        let sent = self.shared.with(|l| {
            let r = l.queue(now, data, props)?;
            l.awaited.insert(r, (None, None));
            Ok(r)
        });
        let msgref = match sent {
            Ok(r) => r,
            Err(e) => return SendOutcome::Failed(e),
        };
        let _slot = Awaiting {
            shared: &self.shared,
            msgref,
        };
        poll_fn(|cx| {
            self.shared.with(|l| {
                let ended = l.ended.is_some() || l.conn.is_closed();
                match l.awaited.get_mut(&msgref) {
                    Some((Some(o), _)) => Poll::Ready(o.clone()),
                    Some(_) if ended => {
                        Poll::Ready(SendOutcome::Failed(SendError::ConnectionFailed))
                    }
                    Some((None, w)) => {
                        set_waker(w, cx.waker());
                        Poll::Pending
                    }
                    None => Poll::Ready(SendOutcome::Failed(SendError::ConnectionFailed)),
                }
            })
        })
        .await
    }

    /// Receives the next message whole (up to `max_len` bytes; a longer
    /// one comes in parts, `context.end_of_message` false until its last).
    pub async fn receive(&self, max_len: usize) -> io::Result<Received> {
        self.receive_with(usize::MAX, max_len).await
    }

    /// RFC 9622's Receive with both limits: a message still arriving is
    /// delivered in part once `min_incomplete_length` of its bytes are here.
    pub async fn receive_with(
        &self,
        min_incomplete_length: usize,
        max_len: usize,
    ) -> io::Result<Received> {
        // One request answers one delivery (RFC 9622 section 9.3.1).
        let asked = self.shared.with(|l| {
            l.conn
                .messages()
                .receive(min_incomplete_length, max_len.max(1))
        });
        if let Err(e) = asked {
            // Nothing more will be asked for; what already arrived is still handed out.
            return match self.shared.with(|l| l.received.pop_front()) {
                Some(r) => r.map_err(receive_error),
                None => Err(io::Error::new(io::ErrorKind::NotConnected, e)),
            };
        }
        poll_fn(|cx| {
            self.shared.with(|l| match l.received.pop_front() {
                Some(r) => Poll::Ready(r.map_err(receive_error)),
                None if l.ended.is_some() || l.conn.is_closed() => {
                    Poll::Ready(Err(closed_error(&l.ended)))
                }
                None => {
                    l.receivers.push(cx.waker().clone());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Closes gracefully (RFC 9622 Close): queued messages go out first,
    /// then the connection ends with [`Ended::Closed`].
    pub fn close(&self) {
        let now = self.shared.now();
        self.shared.with(|l| l.conn.messages().close(now));
    }

    /// Ends at once (RFC 9622 Abort): queued messages fail.
    pub fn abort(&self) {
        let now = self.shared.now();
        self.shared.with(|l| l.conn.messages().abort(now));
    }

    /// Waits for the end: [`Ended::Closed`] or why it failed.
    pub async fn ended(&self) -> Ended {
        poll_fn(|cx| {
            self.shared.with(|l| match &l.ended {
                Some(e) => Poll::Ready(e.clone()),
                None if l.conn.is_closed() => Poll::Ready(Ended::Closed),
                None => {
                    l.end_waiters.push(cx.waker().clone());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// The next notice (a soft error), or `None` once the connection ended.
    pub async fn next_notice(&self) -> Option<Notice> {
        poll_fn(|cx| {
            self.shared.with(|l| match l.notices.pop_front() {
                Some(n) => Poll::Ready(Some(n)),
                None if l.ended.is_some() || l.conn.is_closed() => Poll::Ready(None),
                None => {
                    set_waker(&mut l.notice_waiter, cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Hands a soft error to the connection (what an adapter reports from
    /// below: an ICMP notice, a path change); it becomes a [`Notice`].
    pub fn soft_error(&self, reason: impl Into<String>) {
        let now = self.shared.now();
        let reason = reason.into();
        self.shared
            .with(|l| l.conn.messages().soft_error(now, reason));
    }

    /// Whether the connection has ended.
    pub fn is_ended(&self) -> bool {
        self.shared
            .with(|l| l.ended.is_some() || l.conn.is_closed())
    }
}

fn receive_error(e: ReceiveError) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, e)
}
