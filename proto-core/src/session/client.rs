//! The client's end of one webwire connection.
//!
//! # Call order
//!
//! After every input ([`handle_message`](ClientConnection::handle_message),
//! [`handle_timeout`](ClientConnection::handle_timeout),
//! [`handle_transport_closed`](ClientConnection::handle_transport_closed))
//! and every command ([`request`](ClientConnection::request),
//! [`signal`](ClientConnection::signal), ...): drain
//! [`poll_message`](ClientConnection::poll_message), drain
//! [`poll_event`](ClientConnection::poll_event), then re-arm the timer
//! from [`poll_timeout`](ClientConnection::poll_timeout).
//!
//! # Rules
//!
//! - The server's first message must be its accept configuration, within
//!   [`ClientConfig::accept_timeout`], of major version 2
//!   ([`ClientEvent::Ready`]). Commands before it are queued and sent in
//!   order.
//! - A heartbeat goes out when nothing was sent for 3/4 of the server's
//!   announced read timeout (none if it announced zero).
//! - Every request has a deadline ([`ClientConfig::request_timeout`]); at
//!   most [`ClientConfig::max_pending_requests`] wait at once. Each ends in
//!   exactly one [`ClientEvent::Reply`]: the server's answer,
//!   [`RequestError::Timeout`], or [`RequestError::Disconnected`] the
//!   moment the connection closes. A reply arriving after its request
//!   timed out is ignored.
//! - Requests are numbered 1, 2, 3, ... (ids are the number big-endian).

use super::close::CloseReason;
use super::info::{InfoLimits, SessionInfo};
use super::key::SessionKey;
use super::message::{
    AcceptConf, EncodeError, Message, Payload, RequestId, SpecialReply, PROTOCOL_VERSION,
};
use crate::time::{Duration, Instant};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use bytes::Bytes;
use core::fmt;

/// A client connection's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// How long a request waits for its reply. Default 60 s (webwire's
    /// default request timeout).
    pub request_timeout: Duration,
    /// Requests waiting at once; more are refused with
    /// [`ClientError::TooManyPending`]. Default 128, the server's default.
    pub max_pending_requests: usize,
    /// How long the server may take to send its accept configuration.
    /// Default 10 s.
    pub accept_timeout: Duration,
    /// The largest frame read. Default 16 MiB.
    pub max_message_size: usize,
    /// Limits on session JSON from the server.
    pub info_limits: InfoLimits,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            request_timeout: Duration::from_secs(60),
            max_pending_requests: 128,
            accept_timeout: Duration::from_secs(10),
            max_message_size: 16 * 1024 * 1024,
            info_limits: InfoLimits::default(),
        }
    }
}

/// How a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The application's error.
    Error {
        /// Printable ASCII.
        code: Bytes,
        /// UTF-8.
        message: Bytes,
    },
    /// The server is shutting down and did not run it.
    Shutdown,
    /// The server failed internally.
    InternalError,
    /// No session has that key.
    SessionNotFound,
    /// The session has as many connections as it may.
    MaxSessionConnectionsReached,
    /// The server has sessions turned off.
    SessionsDisabled,
    /// No reply within the request timeout.
    Timeout,
    /// The connection closed first.
    Disconnected,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Error { code, message } => write!(
                f,
                "{}: {}",
                core::str::from_utf8(code).unwrap_or("?"),
                core::str::from_utf8(message).unwrap_or("?")
            ),
            RequestError::Shutdown => f.write_str("the server is shutting down"),
            RequestError::InternalError => f.write_str("internal server error"),
            RequestError::SessionNotFound => f.write_str("session not found"),
            RequestError::MaxSessionConnectionsReached => {
                f.write_str("the session has its maximum of connections")
            }
            RequestError::SessionsDisabled => f.write_str("sessions are disabled"),
            RequestError::Timeout => f.write_str("request timed out"),
            RequestError::Disconnected => f.write_str("disconnected"),
        }
    }
}

impl core::error::Error for RequestError {}

/// What the server said, or that the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server's accept configuration: the connection is ready.
    Ready(AcceptConf),
    /// A request ended.
    Reply {
        /// Its id (as returned when it was sent).
        id: RequestId,
        /// The reply's payload, or why there is none. A restore request's
        /// payload is the session JSON ([`SessionInfo::from_json`]).
        result: Result<Payload, RequestError>,
    },
    /// A signal from the server.
    Signal {
        /// Its name.
        name: Bytes,
        /// Its payload.
        payload: Payload,
    },
    /// The server created a session for this connection.
    SessionCreated(SessionInfo),
    /// The server closed this connection's session.
    SessionClosed,
    /// The connection closed (last event; every waiting request got
    /// [`RequestError::Disconnected`] just before).
    Closed(CloseReason),
}

/// Why a client command or input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection is closed.
    Closed,
    /// This input closed the connection, for this reason.
    Protocol(CloseReason),
    /// [`ClientConfig::max_pending_requests`] requests are waiting.
    TooManyPending {
        /// The limit.
        max: usize,
    },
    /// The message cannot be written (nothing was sent).
    Encode(EncodeError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Closed => f.write_str("the connection is closed"),
            ClientError::Protocol(r) => write!(f, "connection closed: {r}"),
            ClientError::TooManyPending { max } => {
                write!(f, "{max} requests are already waiting")
            }
            ClientError::Encode(e) => write!(f, "cannot encode: {e}"),
        }
    }
}

impl core::error::Error for ClientError {}

/// One connection to a server, client side. See the [module docs](self).
#[derive(Debug)]
pub struct ClientConnection {
    config: ClientConfig,
    out: VecDeque<Bytes>,
    events: VecDeque<ClientEvent>,
    /// Waiting requests and their deadlines, both ways round.
    pending: BTreeMap<RequestId, Instant>,
    deadlines: BTreeSet<(Instant, RequestId)>,
    next_id: u64,
    accept_deadline: Option<Instant>,
    server: Option<AcceptConf>,
    heartbeat_every: Option<Duration>,
    last_sent: Instant,
    closed: Option<CloseReason>,
}

impl ClientConnection {
    /// A new connection at `now`, waiting for the accept configuration.
    pub fn new(now: Instant, config: ClientConfig) -> Self {
        ClientConnection {
            accept_deadline: Some(now.saturating_add(config.accept_timeout)),
            config,
            out: VecDeque::new(),
            events: VecDeque::new(),
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            next_id: 1,
            server: None,
            heartbeat_every: None,
            last_sent: now,
            closed: None,
        }
    }

    /// The config.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The server's accept configuration, once received.
    pub fn server_conf(&self) -> Option<&AcceptConf> {
        self.server.as_ref()
    }

    fn send(&mut self, now: Instant, msg: &Message) -> Result<(), ClientError> {
        if self.closed.is_some() {
            return Err(ClientError::Closed);
        }
        let bytes = msg.to_bytes().map_err(ClientError::Encode)?;
        self.out.push_back(bytes);
        self.last_sent = now;
        Ok(())
    }

    fn start(
        &mut self,
        now: Instant,
        build: impl FnOnce(RequestId) -> Message,
    ) -> Result<RequestId, ClientError> {
        if self.closed.is_some() {
            return Err(ClientError::Closed);
        }
        if self.pending.len() >= self.config.max_pending_requests {
            return Err(ClientError::TooManyPending {
                max: self.config.max_pending_requests,
            });
        }
        let id = RequestId::from_u64(self.next_id);
        self.send(now, &build(id))?;
        self.next_id += 1;
        let deadline = now.saturating_add(self.config.request_timeout);
        self.pending.insert(id, deadline);
        self.deadlines.insert((deadline, id));
        Ok(id)
    }

    /// Sends a request; its outcome comes as a [`ClientEvent::Reply`].
    ///
    /// # Errors
    /// Closed, too many waiting, or a bad name or payload.
    pub fn request(
        &mut self,
        now: Instant,
        name: impl Into<Bytes>,
        payload: Payload,
    ) -> Result<RequestId, ClientError> {
        let name = name.into();
        self.start(now, |id| Message::Request { id, name, payload })
    }

    /// Asks the server to restore the session of `key`. Success is a reply
    /// whose payload is the session JSON.
    ///
    /// # Errors
    /// Closed or too many waiting.
    pub fn restore_session(
        &mut self,
        now: Instant,
        key: &SessionKey,
    ) -> Result<RequestId, ClientError> {
        let key = Bytes::copy_from_slice(key.as_bytes());
        self.start(now, |id| Message::RestoreSession { id, key })
    }

    /// Asks the server to close this connection's session.
    ///
    /// # Errors
    /// Closed or too many waiting.
    pub fn close_session(&mut self, now: Instant) -> Result<RequestId, ClientError> {
        self.start(now, |id| Message::CloseSession { id })
    }

    /// Sends a signal.
    ///
    /// # Errors
    /// Closed, or a bad name or payload.
    pub fn signal(
        &mut self,
        now: Instant,
        name: impl Into<Bytes>,
        payload: Payload,
    ) -> Result<(), ClientError> {
        self.send(
            now,
            &Message::Signal {
                name: name.into(),
                payload,
            },
        )
    }

    fn finish(&mut self, id: RequestId, result: Result<Payload, RequestError>) {
        if let Some(deadline) = self.pending.remove(&id) {
            self.deadlines.remove(&(deadline, id));
            self.events.push_back(ClientEvent::Reply { id, result });
        }
    }

    fn shut(&mut self, why: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        for (id, _) in core::mem::take(&mut self.pending) {
            self.events.push_back(ClientEvent::Reply {
                id,
                result: Err(RequestError::Disconnected),
            });
        }
        self.deadlines.clear();
        self.accept_deadline = None;
        self.heartbeat_every = None;
        self.events.push_back(ClientEvent::Closed(why.clone()));
        self.closed = Some(why);
    }

    fn fail(&mut self, why: CloseReason) -> ClientError {
        self.shut(why.clone());
        ClientError::Protocol(why)
    }

    /// One frame from the server.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] if this frame closed the connection,
    /// [`ClientError::Closed`] if it was closed already.
    pub fn handle_message(&mut self, _now: Instant, frame: Bytes) -> Result<(), ClientError> {
        if self.closed.is_some() {
            return Err(ClientError::Closed);
        }
        if frame.len() > self.config.max_message_size {
            return Err(self.fail(CloseReason::MessageTooLarge {
                len: frame.len(),
                max: self.config.max_message_size,
            }));
        }
        let msg = Message::decode(frame).map_err(|e| self.fail(CloseReason::Malformed(e)))?;
        let unexpected = CloseReason::Unexpected {
            type_byte: msg.type_byte(),
        };
        if self.server.is_none() {
            let Message::AcceptConf(conf) = msg else {
                return Err(self.fail(unexpected));
            };
            if conf.major != PROTOCOL_VERSION.0 {
                return Err(self.fail(CloseReason::UnsupportedVersion {
                    major: conf.major,
                    minor: conf.minor,
                }));
            }
            self.accept_deadline = None;
            self.heartbeat_every = (conf.read_timeout_ms != 0)
                .then(|| Duration::from_millis(u64::from(conf.read_timeout_ms) * 3 / 4));
            self.server = Some(conf.clone());
            self.events.push_back(ClientEvent::Ready(conf));
            return Ok(());
        }
        match msg {
            Message::Reply { id, payload } => self.finish(id, Ok(payload)),
            Message::ErrorReply { id, code, message } => {
                self.finish(id, Err(RequestError::Error { code, message }))
            }
            Message::Special { id, reply } => {
                let e = match reply {
                    SpecialReply::Shutdown => RequestError::Shutdown,
                    SpecialReply::InternalError => RequestError::InternalError,
                    SpecialReply::SessionNotFound => RequestError::SessionNotFound,
                    SpecialReply::MaxSessionConnectionsReached => {
                        RequestError::MaxSessionConnectionsReached
                    }
                    SpecialReply::SessionsDisabled => RequestError::SessionsDisabled,
                };
                self.finish(id, Err(e))
            }
            Message::Signal { name, payload } => {
                self.events.push_back(ClientEvent::Signal { name, payload })
            }
            Message::SessionCreated { json } => {
                match SessionInfo::from_json_with(&json, &self.config.info_limits) {
                    Ok(info) => self.events.push_back(ClientEvent::SessionCreated(info)),
                    Err(e) => return Err(self.fail(CloseReason::BadSession(e))),
                }
            }
            Message::SessionClosed => self.events.push_back(ClientEvent::SessionClosed),
            _ => return Err(self.fail(unexpected)),
        }
        Ok(())
    }

    fn heartbeat_due(&self) -> Option<Instant> {
        self.heartbeat_every
            .map(|every| self.last_sent.saturating_add(every))
    }

    /// A deadline passed (early calls are harmless): the accept timeout,
    /// request timeouts, the heartbeat.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if self.accept_deadline.is_some_and(|d| now >= d) {
            self.shut(CloseReason::AcceptTimeout);
            return;
        }
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.finish(id, Err(RequestError::Timeout));
        }
        if self.heartbeat_due().is_some_and(|d| now >= d) {
            // Built by the machine: always encodes.
            let _ = self.send(now, &Message::Heartbeat);
        }
    }

    /// The transport ended: every waiting request fails now with
    /// [`RequestError::Disconnected`].
    pub fn handle_transport_closed(&mut self, _now: Instant) {
        self.shut(CloseReason::TransportClosed);
    }

    /// Closes now with `why` (usually [`CloseReason::Local`]); every
    /// waiting request fails with [`RequestError::Disconnected`].
    pub fn close(&mut self, _now: Instant, why: CloseReason) {
        self.shut(why);
    }

    /// The next frame to send.
    #[must_use]
    pub fn poll_message(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    /// Whether a frame is queued.
    pub fn has_messages(&self) -> bool {
        !self.out.is_empty()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The earliest of the accept deadline, the first request deadline and
    /// the next heartbeat.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.accept_deadline,
            self.deadlines.first().map(|&(d, _)| d),
            self.heartbeat_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Requests waiting for a reply.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Closed for good.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Why it closed.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }
}
