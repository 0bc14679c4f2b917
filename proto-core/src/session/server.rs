//! The server's end of one webwire connection: messages in, messages out.
//!
//! [`ServerConnection`] knows the protocol's rules; the adapter runs the
//! handlers, the session store and the [`Registry`](super::Registry).
//!
//! # Call order
//!
//! After every input ([`handle_message`](ServerConnection::handle_message),
//! [`handle_timeout`](ServerConnection::handle_timeout),
//! [`handle_transport_closed`](ServerConnection::handle_transport_closed))
//! and every command ([`reply`](ServerConnection::reply),
//! [`signal`](ServerConnection::signal), ...): drain
//! [`poll_message`](ServerConnection::poll_message) (each is one frame to
//! send), drain [`poll_event`](ServerConnection::poll_event), then re-arm
//! the timer from [`poll_timeout`](ServerConnection::poll_timeout).
//!
//! # Rules
//!
//! - The accept configuration is the first message out.
//! - Any message from the client, heartbeats included, pushes the read
//!   deadline to `now + read_timeout`; at the deadline the connection
//!   closes with [`CloseReason::ReadTimeout`]. A heartbeat costs a
//!   comparison and a store, however often it comes.
//! - Every request (named, restore, close-session) is in flight from its
//!   arrival until the application replies; [`in_flight`](ServerConnection::in_flight)
//!   counts them. A request reusing an in-flight id closes the connection
//!   ([`CloseReason::DuplicateRequestId`]).
//! - Beyond [`ServerConfig::max_pending_requests`] in flight, a new request
//!   is answered with the internal-error special reply at once, without an
//!   event: webwire has no "busy" reply, internal error is what the client
//!   already handles as "the server could not do it", and the connection
//!   (and its other requests) lives on.
//! - After [`begin_shutdown`](ServerConnection::begin_shutdown) every new
//!   request is answered with the shutdown special reply by the machine
//!   (no event), late signals are dropped (no event), and replies to
//!   requests in flight still go out: the adapter waits until
//!   `in_flight() == 0`.
//! - A restore request whose key is not a well-formed
//!   [`SessionKey`] is answered session-not-found by the
//!   machine (no event, no lookup). With sessions disabled, restore and
//!   close-session requests are answered sessions-disabled.
//! - A frame over [`ServerConfig::max_message_size`], a malformed frame or
//!   a message only a server sends closes the connection with a
//!   [`CloseReason`] saying which.

use super::close::CloseReason;
use super::info::SessionInfo;
use super::key::SessionKey;
use super::message::{
    AcceptConf, EncodeError, Message, Payload, RequestId, SpecialReply, PROTOCOL_VERSION,
};
use crate::time::{Duration, Instant};
use alloc::collections::{BTreeSet, VecDeque};
use bytes::Bytes;
use core::fmt;

/// A server connection's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// A client silent this long is disconnected; announced in the accept
    /// configuration so the client heartbeats at 3/4 of it. Default 60 s
    /// (webwire's). Zero: no read timeout (and no heartbeats).
    pub read_timeout: Duration,
    /// The message buffer size announced in the accept configuration.
    /// Default 1 MiB, the same as `max_message_size`.
    pub message_buffer_size: u32,
    /// The largest frame read; larger closes the connection. Default
    /// 1 MiB: far above webwire's messages in practice, and what one
    /// connection may make the server hold at once.
    pub max_message_size: usize,
    /// Requests in flight at once; beyond it a request gets the
    /// internal-error reply. Default 128: many more than a client waiting
    /// for each reply keeps, few enough that one connection cannot tie up
    /// a server's handler slots.
    pub max_pending_requests: usize,
    /// The subprotocol name announced. Default empty.
    pub subprotocol: Bytes,
    /// Whether restore and close-session requests are served. Default true.
    pub sessions_enabled: bool,
    /// Unsent bytes past which [`ServerConnection::signal`] refuses
    /// (`SessionError::Backlog`): a client that stops reading cannot make
    /// the server's signals pile up. Replies are always queued (their
    /// number is bounded by `max_pending_requests`). Default 4 MiB.
    pub max_queued_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            read_timeout: Duration::from_secs(60),
            message_buffer_size: 1024 * 1024,
            max_message_size: 1024 * 1024,
            max_pending_requests: 128,
            subprotocol: Bytes::new(),
            sessions_enabled: true,
            max_queued_bytes: 4 * 1024 * 1024,
        }
    }
}

/// What the client asked for, or that the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A request: run its handler, then [`ServerConnection::reply`],
    /// [`ServerConnection::reply_error`] or
    /// [`ServerConnection::reply_internal_error`].
    Request {
        /// Its id (for the reply).
        id: RequestId,
        /// Its name (printable ASCII, may be empty).
        name: Bytes,
        /// Its payload.
        payload: Payload,
    },
    /// A signal: run its handler; nothing is sent back.
    Signal {
        /// Its name.
        name: Bytes,
        /// Its payload.
        payload: Payload,
    },
    /// Restore the session of `key`: look it up, attach this connection in
    /// the registry, then reply with the session JSON
    /// ([`SessionInfo::to_json`] as a UTF-8 reply) or a special reply
    /// (session not found, max session connections reached).
    RestoreSession {
        /// The request's id.
        id: RequestId,
        /// The key, already checked to be well formed.
        key: SessionKey,
    },
    /// Close this connection's session, then reply (an empty reply).
    CloseSession {
        /// The request's id.
        id: RequestId,
    },
    /// The connection closed (last event).
    Closed(CloseReason),
}

/// Why a command or an input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The connection is closed.
    Closed,
    /// This input closed the connection, for this reason.
    Protocol(CloseReason),
    /// No request with this id is in flight (already replied, or never
    /// received).
    UnknownRequest(RequestId),
    /// The message cannot be written (nothing was queued).
    Encode(EncodeError),
    /// Sessions are disabled in this server's config.
    SessionsDisabled,
    /// A signal would pass [`ServerConfig::max_queued_bytes`] unsent (the
    /// client is not reading); nothing was queued.
    Backlog {
        /// Bytes queued now.
        queued: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Closed => f.write_str("the connection is closed"),
            SessionError::Protocol(r) => write!(f, "connection closed: {r}"),
            SessionError::UnknownRequest(id) => {
                write!(f, "no request {:02x?} in flight", id.0)
            }
            SessionError::Encode(e) => write!(f, "cannot encode: {e}"),
            SessionError::SessionsDisabled => f.write_str("sessions are disabled"),
            SessionError::Backlog { queued, max } => write!(
                f,
                "{queued} bytes already wait for the client (limit {max}): signal not sent"
            ),
        }
    }
}

impl core::error::Error for SessionError {}

/// One client connection, server side. See the [module docs](self).
#[derive(Debug)]
pub struct ServerConnection {
    config: ServerConfig,
    out: VecDeque<Bytes>,
    /// Bytes in `out`.
    out_bytes: usize,
    events: VecDeque<ServerEvent>,
    in_flight: BTreeSet<RequestId>,
    read_deadline: Option<Instant>,
    shutting_down: bool,
    closed: Option<CloseReason>,
}

impl ServerConnection {
    /// A new connection at `now`; the accept configuration is queued.
    pub fn new(now: Instant, config: ServerConfig) -> Self {
        let conf = Message::AcceptConf(AcceptConf {
            major: PROTOCOL_VERSION.0,
            minor: PROTOCOL_VERSION.1,
            read_timeout_ms: u32::try_from(config.read_timeout.as_millis()).unwrap_or(u32::MAX),
            message_buffer_size: config.message_buffer_size,
            subprotocol: config.subprotocol.clone(),
        });
        let mut c = ServerConnection {
            out: VecDeque::new(),
            out_bytes: 0,
            events: VecDeque::new(),
            in_flight: BTreeSet::new(),
            read_deadline: None,
            shutting_down: false,
            closed: None,
            config,
        };
        c.push(&conf);
        c.touch(now);
        c
    }

    /// The config.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    fn touch(&mut self, now: Instant) {
        if self.config.read_timeout != Duration::ZERO {
            self.read_deadline = Some(now.saturating_add(self.config.read_timeout));
        }
    }

    /// Queues a message the machine built itself (always valid).
    fn push(&mut self, msg: &Message) {
        if let Ok(b) = msg.to_bytes() {
            self.out_bytes += b.len();
            self.out.push_back(b);
        }
    }

    fn special(&mut self, id: RequestId, reply: SpecialReply) {
        self.push(&Message::Special { id, reply });
    }

    fn fail(&mut self, why: CloseReason) -> SessionError {
        self.shut(why.clone());
        SessionError::Protocol(why)
    }

    fn shut(&mut self, why: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        self.in_flight.clear();
        self.read_deadline = None;
        self.events.push_back(ServerEvent::Closed(why.clone()));
        self.closed = Some(why);
    }

    /// A new request `id`: `Ok(true)` if the application gets it,
    /// `Ok(false)` if the machine answered it.
    fn admit(&mut self, id: RequestId) -> Result<bool, SessionError> {
        if self.in_flight.contains(&id) {
            return Err(self.fail(CloseReason::DuplicateRequestId(id)));
        }
        if self.shutting_down {
            self.special(id, SpecialReply::Shutdown);
            return Ok(false);
        }
        if self.in_flight.len() >= self.config.max_pending_requests {
            self.special(id, SpecialReply::InternalError);
            return Ok(false);
        }
        Ok(true)
    }

    /// One frame from the client.
    ///
    /// # Errors
    /// [`SessionError::Protocol`] if this frame closed the connection (the
    /// reason is also the [`ServerEvent::Closed`] event),
    /// [`SessionError::Closed`] if it was closed already.
    pub fn handle_message(&mut self, now: Instant, frame: Bytes) -> Result<(), SessionError> {
        if self.closed.is_some() {
            return Err(SessionError::Closed);
        }
        if frame.len() > self.config.max_message_size {
            return Err(self.fail(CloseReason::MessageTooLarge {
                len: frame.len(),
                max: self.config.max_message_size,
            }));
        }
        let msg = Message::decode(frame).map_err(|e| self.fail(CloseReason::Malformed(e)))?;
        self.touch(now);
        match msg {
            Message::Heartbeat => {}
            Message::Signal { name, payload } => {
                if !self.shutting_down {
                    self.events.push_back(ServerEvent::Signal { name, payload });
                }
            }
            Message::Request { id, name, payload } => {
                if self.admit(id)? {
                    self.in_flight.insert(id);
                    self.events
                        .push_back(ServerEvent::Request { id, name, payload });
                }
            }
            Message::RestoreSession { id, key } => {
                if self.admit(id)? {
                    if !self.config.sessions_enabled {
                        self.special(id, SpecialReply::SessionsDisabled);
                    } else if let Ok(key) = SessionKey::parse(&key) {
                        self.in_flight.insert(id);
                        self.events
                            .push_back(ServerEvent::RestoreSession { id, key });
                    } else {
                        self.special(id, SpecialReply::SessionNotFound);
                    }
                }
            }
            Message::CloseSession { id } => {
                if self.admit(id)? {
                    if self.config.sessions_enabled {
                        self.in_flight.insert(id);
                        self.events.push_back(ServerEvent::CloseSession { id });
                    } else {
                        self.special(id, SpecialReply::SessionsDisabled);
                    }
                }
            }
            other => {
                return Err(self.fail(CloseReason::Unexpected {
                    type_byte: other.type_byte(),
                }))
            }
        }
        Ok(())
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) passed
    /// (early calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.read_deadline.is_some_and(|d| now >= d) {
            self.shut(CloseReason::ReadTimeout);
        }
    }

    /// The transport ended.
    pub fn handle_transport_closed(&mut self, _now: Instant) {
        self.shut(CloseReason::TransportClosed);
    }

    /// Closes now with `why` (usually [`CloseReason::Local`]); what is
    /// queued can still be sent. Nothing is in flight afterwards.
    pub fn close(&mut self, _now: Instant, why: CloseReason) {
        self.shut(why);
    }

    /// The next frame to send.
    #[must_use]
    pub fn poll_message(&mut self) -> Option<Bytes> {
        let b = self.out.pop_front()?;
        self.out_bytes -= b.len();
        Some(b)
    }

    /// Whether a frame is queued.
    pub fn has_messages(&self) -> bool {
        !self.out.is_empty()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The read deadline, while open.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.read_deadline
    }

    /// Closed for good.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Why it closed.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// Requests (named, restore, close-session) the application has not
    /// replied to yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether [`begin_shutdown`](Self::begin_shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// From now on new requests get the shutdown reply and signals are
    /// dropped; requests in flight may still be replied to.
    pub fn begin_shutdown(&mut self) {
        self.shutting_down = true;
    }

    fn answer(&mut self, id: RequestId, msg: Message) -> Result<(), SessionError> {
        if self.closed.is_some() {
            return Err(SessionError::Closed);
        }
        if !self.in_flight.contains(&id) {
            return Err(SessionError::UnknownRequest(id));
        }
        let bytes = msg.to_bytes().map_err(SessionError::Encode)?;
        self.in_flight.remove(&id);
        self.out_bytes += bytes.len();
        self.out.push_back(bytes);
        Ok(())
    }

    /// Replies to request `id` with `payload`.
    ///
    /// # Errors
    /// Closed, unknown id, or an odd-length UTF-16 payload (the request
    /// stays in flight).
    pub fn reply(&mut self, id: RequestId, payload: Payload) -> Result<(), SessionError> {
        self.answer(id, Message::Reply { id, payload })
    }

    /// Replies to request `id` with an application error: `code` is 1 to
    /// 255 bytes of printable ASCII, `message` UTF-8.
    ///
    /// # Errors
    /// Closed, unknown id, or a bad code or message (the request stays in
    /// flight).
    pub fn reply_error(
        &mut self,
        id: RequestId,
        code: impl Into<Bytes>,
        message: impl Into<Bytes>,
    ) -> Result<(), SessionError> {
        self.answer(
            id,
            Message::ErrorReply {
                id,
                code: code.into(),
                message: message.into(),
            },
        )
    }

    /// Replies "internal error": what any failure other than an
    /// application error becomes on the wire (log the details locally).
    ///
    /// # Errors
    /// Closed or unknown id.
    pub fn reply_internal_error(&mut self, id: RequestId) -> Result<(), SessionError> {
        self.reply_special(id, SpecialReply::InternalError)
    }

    /// Replies to a restore request with the session: its JSON as a
    /// UTF-8 reply, as webwire does.
    ///
    /// # Errors
    /// Closed or unknown id.
    pub fn reply_session(
        &mut self,
        id: RequestId,
        session: &SessionInfo,
    ) -> Result<(), SessionError> {
        self.reply(id, Payload::utf8(session.to_json()))
    }

    /// Replies with a special reply (session not found, max session
    /// connections reached, ...).
    ///
    /// # Errors
    /// Closed or unknown id.
    pub fn reply_special(
        &mut self,
        id: RequestId,
        reply: SpecialReply,
    ) -> Result<(), SessionError> {
        self.answer(id, Message::Special { id, reply })
    }

    fn send(&mut self, msg: Message) -> Result<(), SessionError> {
        if self.closed.is_some() {
            return Err(SessionError::Closed);
        }
        let bytes = msg.to_bytes().map_err(SessionError::Encode)?;
        self.out_bytes += bytes.len();
        self.out.push_back(bytes);
        Ok(())
    }

    /// Sends a signal to the client.
    ///
    /// # Errors
    /// Closed, a bad name or payload, or the backlog is full.
    pub fn signal(&mut self, name: impl Into<Bytes>, payload: Payload) -> Result<(), SessionError> {
        let max = self.config.max_queued_bytes;
        if self.closed.is_none() && self.out_bytes.saturating_add(payload.data.len()) > max {
            return Err(SessionError::Backlog {
                queued: self.out_bytes,
                max,
            });
        }
        self.send(Message::Signal {
            name: name.into(),
            payload,
        })
    }

    /// Tells the client its session was created.
    ///
    /// # Errors
    /// Closed, or sessions disabled.
    pub fn session_created(&mut self, session: &SessionInfo) -> Result<(), SessionError> {
        if !self.config.sessions_enabled {
            return Err(SessionError::SessionsDisabled);
        }
        self.send(Message::SessionCreated {
            json: session.to_json().into(),
        })
    }

    /// Tells the client its session was closed.
    ///
    /// # Errors
    /// Closed.
    pub fn session_closed(&mut self) -> Result<(), SessionError> {
        self.send(Message::SessionClosed)
    }
}
