//! A message connection over an ordered byte stream (RFC 9622 sections 9
//! to 11): messages sent with properties, framed by a [`Framer`], received
//! on request, as a [`Machine`] any driver runs on a socket or a mux flow.
//!
//! # Sending
//!
//! [`Connection::send`] frames a message at once (so a framer's refusal is
//! that call's error) and queues it. Messages leave by
//! [`MessageProperties::priority`], lower first, in the order sent within
//! a priority; a message already started is finished before another one
//! starts (on a byte stream, interleaving would corrupt both). A message
//! whose lifetime passes before its first byte is handed to
//! `poll_transmit` is dropped with [`Event::Expired`]; its deadline is in
//! `poll_timeout`, and "passes" means `now >= send time + lifetime`, for
//! the `now` of every input and command (`poll_transmit` uses the latest).
//! [`Event::Sent`] follows the message's last byte into `poll_transmit`.
//! A final message goes after every message queued before it; later
//! sends fail.
//!
//! # Receiving
//!
//! Every [`Connection::receive`] request is answered by one
//! [`Event::Received`] (a whole message up to `max_length` bytes) or
//! [`Event::ReceivedPartial`] (the next `max_length` bytes of a longer
//! one, or, of a message still arriving, what is there once it is at
//! least `min_incomplete_length` bytes or the receive buffer is full).
//! Messages nobody asked for yet are held up to
//! [`Config::max_buffered_receive_bytes`]; past it `wants_input` turns
//! false and the transport holds the peer.
//!
//! # Ending
//!
//! - [`Connection::close`]: no more sends, nothing more received; what
//!   is queued goes out, then [`Event::Closed`].
//! - [`Connection::abort`]: every queued message gets
//!   [`Event::SendError`] ([`SendError::Aborted`]), then
//!   [`Event::ConnectionError`] ([`ConnectionFailure::Aborted`]): RFC 9622
//!   section 10 has Abort end without delivering what remains and report
//!   it as a connection error.
//! - The peer ends its stream at a message boundary: no more sends;
//!   what is queued goes out and what was received is delivered (as the
//!   application asks for it), then [`Event::Closed`].
//! - The peer ends inside a message: [`Event::ReceiveError`]
//!   ([`ReceiveError::Truncated`]) for it (after every whole message
//!   before it is delivered), `SendError`s for what is queued, then
//!   [`Event::ConnectionError`] ([`ConnectionFailure::Truncated`]). Never
//!   a silently short message.
//! - The framer cannot parse the stream: `SendError`s, then
//!   `ConnectionError` with [`ConnectionFailure::Framer`], naming the
//!   framer and why.
//!
//! The [`Machine`] contract has no half-close, so a sent final message
//! cannot end the sending direction on the transport by itself: the
//! connection refuses further sends and closes once the peer ends too
//! (or on `close`).
//!
//! # Event order (RFC 9622 section 11, and what this adds)
//!
//! 1. [`Event::Ready`] is the first event, so no `Received` comes before
//!    it.
//! 2. Exactly one of [`Event::Closed`] and [`Event::ConnectionError`] is
//!    the last event; nothing follows it. Events are a FIFO, so `Closed`
//!    never overtakes an event produced before it.
//! 3. [`Event::Sent`] events come in the order the messages went onto the
//!    stream (priority order, then send order), which is the order of
//!    their bytes.
//! 4. Each message taken by `send` gets exactly one of `Sent`, `Expired`
//!    and `SendError`, before the last event (a refused `send` returns
//!    its error and has no event).
//! 5. Each receive request gets at most one `Received`,
//!    `ReceivedPartial` or `ReceiveError`; messages and the parts of a
//!    message come in stream order, the last part with `end_of_message`.
//!
//! ```
//! use bytes::Bytes;
//! use proto_core::taps::connection::{Config, Connection, Event};
//! use proto_core::taps::framer::LengthPrefix;
//! use proto_core::taps::message::{MessageProperties, MessageRef};
//! use proto_core::time::Instant;
//! use proto_core::wire::Machine;
//!
//! let t = Instant::ZERO;
//! let mut a = Connection::new(Config::default(), Box::new(LengthPrefix::default()), t).unwrap();
//! let mut b = Connection::new(Config::default(), Box::new(LengthPrefix::default()), t).unwrap();
//! a.send(t, MessageRef(1), Bytes::from_static(b"hello"), MessageProperties::default()).unwrap();
//! b.receive(1, usize::MAX).unwrap();
//! let mut wire = Vec::new();
//! while a.poll_transmit(&mut wire).is_some() {}
//! b.handle_input(t, wire.into()).unwrap();
//! assert_eq!(a.poll_event(), Some(Event::Ready));
//! assert_eq!(a.poll_event(), Some(Event::Sent(MessageRef(1))));
//! assert_eq!(b.poll_event(), Some(Event::Ready));
//! let Some(Event::Received { data, .. }) = b.poll_event() else { panic!() };
//! assert_eq!(&data[..], b"hello");
//! ```

mod config;
mod event;
mod receive;
mod send_queue;
#[cfg(test)]
mod tests;

pub use config::{Config, ConfigError, MESSAGE_OVERHEAD};
pub use event::{ConnectionFailure, Event, ReceiveError, ReceiveRequestError, SendError};

use crate::taps::framer::Framer;
use crate::taps::message::{MessageProperties, MessageRef};
use crate::time::Instant;
use crate::wire::{Machine, Rejected, TransmitBuf};
use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use bytes::Bytes;
use receive::{Receiver, Request};
use send_queue::SendQueue;

/// A message-oriented connection on an established ordered byte stream.
/// See the [module docs](self) for the rules.
pub struct Connection {
    config: Config,
    framer: Box<dyn Framer>,
    send: SendQueue,
    rx: Receiver,
    events: VecDeque<Event>,
    pending_soft_errors: usize,
    dropped_soft_errors: u64,
    now: Instant,
    /// Local `close` called: sends refused, input discarded.
    closing: bool,
    /// The transport's read side ended.
    peer_ended: bool,
    /// `Closed` or `ConnectionError` is queued: nothing follows.
    ended: bool,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("framer", &self.framer.name())
            .field("queued_messages", &self.send.queued_messages())
            .field("queued_bytes", &self.send.queued_bytes())
            .field("held_received", &self.rx.held())
            .field("closing", &self.closing)
            .field("peer_ended", &self.peer_ended)
            .field("ended", &self.ended)
            .finish()
    }
}

impl Connection {
    /// A connection on a stream established at `now`, framing with
    /// `framer`. Its first event is [`Event::Ready`].
    ///
    /// # Errors
    /// A config limit that cannot work ([`Config::validate`]).
    pub fn new(config: Config, framer: Box<dyn Framer>, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut events = VecDeque::new();
        events.push_back(Event::Ready);
        Ok(Connection {
            config,
            framer,
            send: SendQueue::default(),
            rx: Receiver::default(),
            events,
            pending_soft_errors: 0,
            dropped_soft_errors: 0,
            now,
            closing: false,
            peer_ended: false,
            ended: false,
        })
    }

    /// The limits.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The framer's name.
    pub fn framer_name(&self) -> &'static str {
        self.framer.name()
    }

    /// Queues `data` as one message. Its [`Event::Sent`] (or `Expired`,
    /// or `SendError`) carries `msgref`.
    ///
    /// # Errors
    /// The message is refused now (nothing is queued and no event will
    /// name it): the framer refused it, a queue limit, `no_segmentation`
    /// over [`Config::max_unsegmented_len`], a final message went already,
    /// or the connection is closing or ended.
    pub fn send(
        &mut self,
        now: Instant,
        msgref: MessageRef,
        data: Bytes,
        props: MessageProperties,
    ) -> Result<(), SendError> {
        self.set_time(now);
        if self.ended {
            return Err(SendError::ConnectionFailed);
        }
        if self.closing || self.peer_ended {
            return Err(SendError::Closing);
        }
        if self.send.final_taken() || self.send.final_sent() {
            return Err(SendError::AfterFinal);
        }
        if props.no_segmentation && data.len() > self.config.max_unsegmented_len {
            return Err(SendError::NoSegmentation {
                len: data.len(),
                limit: self.config.max_unsegmented_len,
            });
        }
        if self.send.queued_messages() >= self.config.max_queued_messages {
            return Err(SendError::TooManyMessages {
                limit: self.config.max_queued_messages,
            });
        }
        let queued = self.send.queued_bytes();
        let limit = self.config.max_queued_send_bytes;
        let framed = self.framer.frame(data).map_err(SendError::Framer)?;
        if queued.saturating_add(framed.len()) > limit {
            return Err(SendError::QueueFull {
                queued,
                len: framed.len(),
                limit,
            });
        }
        let deadline = props.lifetime.map(|l| now.saturating_add(l));
        self.send
            .push(msgref, framed, props.priority, deadline, props.is_final);
        self.expire(now);
        Ok(())
    }

    /// Asks for the next message (RFC 9622 Receive): answered by one
    /// [`Event::Received`] or [`Event::ReceivedPartial`] of at most
    /// `max_length` bytes (at least 1); a message still arriving is
    /// delivered in part once `min_incomplete_length` of its bytes are
    /// here (`usize::MAX`: only whole, or `max_length`, pieces).
    ///
    /// # Errors
    /// Too many requests outstanding, or the connection closed.
    pub fn receive(
        &mut self,
        min_incomplete_length: usize,
        max_length: usize,
    ) -> Result<(), ReceiveRequestError> {
        if self.ended || self.closing {
            return Err(ReceiveRequestError::Closed);
        }
        if self.rx.requests.len() >= self.config.max_receive_requests {
            return Err(ReceiveRequestError::TooMany {
                limit: self.config.max_receive_requests,
            });
        }
        self.rx.requests.push_back(Request {
            min_incomplete: min_incomplete_length,
            max_len: max_length,
        });
        self.progress();
        Ok(())
    }

    /// Closes gracefully: no more sends or receives; queued messages go
    /// out, then [`Event::Closed`].
    pub fn close(&mut self, now: Instant) {
        self.set_time(now);
        if self.ended || self.closing {
            return;
        }
        self.closing = true;
        self.rx.clear();
        self.expire(now);
        self.progress();
    }

    /// Ends now: queued messages get [`SendError::Aborted`], then
    /// [`Event::ConnectionError`] with [`ConnectionFailure::Aborted`].
    /// Nothing more is transmitted.
    pub fn abort(&mut self, now: Instant) {
        self.set_time(now);
        self.fail(ConnectionFailure::Aborted, SendError::Aborted);
    }

    /// A notice from below that does not end the connection (an ICMP
    /// message, say). Becomes [`Event::SoftError`]; beyond
    /// [`Config::max_pending_soft_errors`] undelivered, dropped and
    /// counted ([`Connection::dropped_soft_errors`]).
    pub fn soft_error(&mut self, now: Instant, reason: impl Into<Cow<'static, str>>) {
        self.set_time(now);
        if self.ended {
            return;
        }
        if self.pending_soft_errors >= self.config.max_pending_soft_errors {
            self.dropped_soft_errors += 1;
            return;
        }
        self.pending_soft_errors += 1;
        self.events.push_back(Event::SoftError {
            reason: reason.into(),
        });
    }

    /// Soft errors dropped because too many were undelivered.
    pub fn dropped_soft_errors(&self) -> u64 {
        self.dropped_soft_errors
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        if matches!(ev, Event::SoftError { .. }) {
            self.pending_soft_errors -= 1;
        }
        Some(ev)
    }

    /// Framed bytes waiting to be sent.
    pub fn queued_send_bytes(&self) -> usize {
        self.send.queued_bytes()
    }

    /// Received bytes held for the application (with the per-message
    /// overhead).
    pub fn buffered_receive_bytes(&self) -> usize {
        self.rx.held()
    }

    /// Whether the final message went out.
    pub fn final_sent(&self) -> bool {
        self.send.final_sent()
    }

    fn set_time(&mut self, now: Instant) {
        self.now = now;
    }

    fn expire(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        let events = &mut self.events;
        self.send
            .expire(now, |m| events.push_back(Event::Expired(m)));
        self.check_closed();
    }

    /// Every queued message fails with `send_err`, then the connection
    /// ends with `why`.
    fn fail(&mut self, why: ConnectionFailure, send_err: SendError) {
        if self.ended {
            return;
        }
        for m in self.send.drain() {
            self.events.push_back(Event::SendError {
                message: m,
                error: send_err.clone(),
            });
        }
        self.rx.clear();
        self.events.push_back(Event::ConnectionError(why));
        self.ended = true;
    }

    /// Parses what arrived, answers requests, and ends the connection
    /// when both directions are done.
    fn progress(&mut self) {
        if self.ended || self.closing {
            self.check_closed();
            return;
        }
        let limit = self.config.max_buffered_receive_bytes;
        if let Err(e) = self.rx.parse(self.framer.as_mut(), limit) {
            self.fail(ConnectionFailure::Framer(e), SendError::ConnectionFailed);
            return;
        }
        let full = self.rx.held() >= limit;
        self.rx.deliver(full, &mut self.events);
        if self.peer_ended {
            match self.rx.end_state(self.framer.as_ref()) {
                None | Some(Ok(())) => {}
                Some(Err((context, received))) => {
                    // Answers a request if one waits; reported either way.
                    self.rx.requests.pop_front();
                    self.events.push_back(Event::ReceiveError {
                        context,
                        error: ReceiveError::Truncated { received },
                    });
                    self.fail(ConnectionFailure::Truncated, SendError::ConnectionFailed);
                    return;
                }
            }
        }
        self.check_closed();
    }

    fn check_closed(&mut self) {
        if self.ended || !self.send.is_empty() {
            return;
        }
        let done = if self.closing {
            true
        } else if self.peer_ended {
            matches!(self.rx.end_state(self.framer.as_ref()), Some(Ok(())))
        } else {
            false
        };
        if done {
            self.rx.clear();
            self.events.push_back(Event::Closed);
            self.ended = true;
        }
    }
}

impl Machine for Connection {
    fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), Rejected> {
        self.set_time(now);
        self.expire(now);
        if self.ended {
            return Err(Rejected);
        }
        if self.closing || self.peer_ended {
            // After Close nothing more is received (RFC 9622 section 10).
            return Ok(());
        }
        self.rx.push_input(&data);
        let limit = self
            .config
            .max_buffered_receive_bytes
            .saturating_add(self.config.input_slack);
        if self.rx.held() > limit {
            let held = self.rx.held();
            self.fail(
                ConnectionFailure::ReceiveOverrun { held, limit },
                SendError::ConnectionFailed,
            );
            return Err(Rejected);
        }
        self.progress();
        if self.ended && !matches!(self.events.back(), Some(Event::Closed)) {
            return Err(Rejected);
        }
        Ok(())
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.set_time(now);
        self.expire(now);
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        self.set_time(now);
        self.expire(now);
        if self.ended || self.peer_ended {
            return;
        }
        self.peer_ended = true;
        self.progress();
    }

    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
        if self.ended {
            return None;
        }
        // Nothing whose lifetime passed by the latest input's time starts.
        self.expire(self.now);
        let events = &mut self.events;
        let n = self
            .send
            .transmit(out, self.config.max_transmit_chunk, |m| {
                events.push_back(Event::Sent(m))
            });
        self.check_closed();
        (n > 0).then_some(n)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        self.send.next_deadline()
    }

    fn wants_transmit(&self) -> bool {
        !self.ended && !self.send.is_empty()
    }

    fn wants_input(&self) -> bool {
        if self.ended {
            return false;
        }
        // Also when only input can move the receiver on (a message's
        // overhead, a framer's partial header): holding back would hang.
        self.closing
            || self.peer_ended
            || self.rx.held() < self.config.max_buffered_receive_bytes
            || self.rx.needs_input()
    }

    fn is_closed(&self) -> bool {
        self.ended
    }

    /// The enclosing layer closes this one: as [`Connection::abort`], with
    /// [`ConnectionFailure::ClosedBelow`] (a byte stream has no way to
    /// send `code` or `reason` to the peer).
    fn close(&mut self, now: Instant, code: u64, _reason: &[u8]) {
        self.set_time(now);
        self.fail(
            ConnectionFailure::ClosedBelow { code },
            SendError::ConnectionFailed,
        );
    }
}
