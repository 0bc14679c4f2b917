//! The Noise XX handshake as a sans-IO state machine.
//!
//! ```text
//! initiator (dialer)                    responder (acceptor)
//!   -> e                                  (nothing identifying)
//!                                       <- e, ee, s, es, payload(responder)
//!   verify + authorize the responder;
//!   refuse: stop here, nothing sent
//!   -> s, se, payload(initiator)
//!                                          verify + authorize the initiator
//! ```
//!
//! Each message travels as a 2-byte big-endian length and the Noise
//! message. A payload holds the protocol version range, record and mux
//! settings, and the blessings the sender chose to present.

use super::authorizer::{Endpoint, PeerAuthorizer, PeerBlessings};
use super::blessing::{
    decode_blessings, encode_blessings, BlessingLimits, Identity, PublicKey, TrustedRoots,
};
use super::crypto::{noise_params, Resolver};
use super::error::HandshakeError;
use super::record::{RecordConfig, Records, MAX_RECORD, MAX_RECORD_PLAINTEXT};
use crate::time::{Duration, Instant};
use crate::wire::TransmitBuf;
use crate::wire::{put_varint, DecodeError, Reader};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: u16 = 1;
const PAYLOAD_VERSION: u8 = 1;
/// Mixed into the handshake hash: both sides must agree they speak weft's
/// framing of Noise, or the handshake fails.
const PROLOGUE: &[u8] = b"weft secure 1";

/// Mux settings a peer announces in its handshake payload, for the other
/// side to see (the mux itself starts from the protocol's fixed initial
/// windows either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxSettings {
    /// The flows it lets its peer open at once.
    pub max_concurrent_flows: u64,
    /// Its largest per-flow receive window.
    pub max_flow_window: u64,
    /// Its connection receive budget.
    pub conn_recv_budget: u64,
}

/// Handshake and record settings. Every limit has a documented default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Longest handshake message accepted before the peer is known
    /// (bounds pre-handshake memory). Default 8 KiB; at most 65535.
    pub max_handshake_message: usize,
    /// Time from creation for the handshake to finish. Default 10 s.
    pub handshake_timeout: Duration,
    /// Protocol versions spoken, lowest and highest. Default 1..=1.
    pub versions: (u16, u16),
    /// Record layer settings.
    pub record: RecordConfig,
    /// Mux settings announced to the peer.
    pub mux: MuxSettings,
    /// Bounds on the peer's blessings.
    pub blessing_limits: BlessingLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_handshake_message: 8 * 1024,
            handshake_timeout: Duration::from_secs(10),
            versions: (PROTOCOL_VERSION, PROTOCOL_VERSION),
            record: RecordConfig::default(),
            mux: MuxSettings::default(),
            blessing_limits: BlessingLimits::default(),
        }
    }
}

impl Config {
    /// Checks the values are in range.
    pub fn validate(&self) -> Result<(), HandshakeError> {
        if !(64..=MAX_RECORD).contains(&self.max_handshake_message) {
            return Err(HandshakeError::Config(
                "max_handshake_message must be 64..=65535",
            ));
        }
        if !(1..=MAX_RECORD_PLAINTEXT).contains(&self.record.max_plaintext) {
            return Err(HandshakeError::Config(
                "record.max_plaintext must be 1..=65519",
            ));
        }
        if self.versions.0 > self.versions.1 {
            return Err(HandshakeError::Config("versions: lowest above highest"));
        }
        Ok(())
    }
}

/// Who we are and whom we trust, for one handshake.
#[derive(Clone)]
pub struct Params {
    /// Our static key and blessings.
    pub identity: Identity,
    /// Roots whose blessings we accept.
    pub roots: TrustedRoots,
    /// Decides whether the peer may connect and what we show it.
    pub authorizer: Arc<dyn PeerAuthorizer>,
    /// Wall-clock time, seconds since the Unix epoch, for certificate
    /// expiry (an input: the core reads no clock).
    pub wall_clock_secs: u64,
    /// Seed of the handshake's RNG (ephemeral keys): 32 fresh random bytes
    /// per handshake from the driver.
    pub rng_seed: [u8; 32],
    /// Our transport address, for the authorizer (may be empty).
    pub local_address: String,
    /// The peer's transport address, for the authorizer (may be empty).
    pub remote_address: String,
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Params")
            .field("identity", &self.identity)
            .field("roots", &self.roots)
            .field("wall_clock_secs", &self.wall_clock_secs)
            .field("local_address", &self.local_address)
            .field("remote_address", &self.remote_address)
            .finish_non_exhaustive()
    }
}

/// What the handshake learnt about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The static key the peer proved it holds.
    pub key: PublicKey,
    /// Its blessings, verified.
    pub blessings: PeerBlessings,
    /// The names our authorizer granted it.
    pub granted: Vec<String>,
    /// The names of the blessings we presented to it.
    pub presented: Vec<String>,
    /// The protocol version in use.
    pub version: u16,
    /// The mux settings it announced.
    pub mux: MuxSettings,
}

/// What the handshake reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeEvent {
    /// Done: drain `poll_transmit`, then call [`Handshake::finish`].
    Complete,
    /// Failed; nothing more will be sent.
    Failed(HandshakeError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Initiator: msg1 sent, waiting for msg2.
    AwaitResponder,
    /// Responder: waiting for msg1.
    AwaitHello,
    /// Responder: msg2 sent, waiting for msg3.
    AwaitInitiator,
    Done,
    Failed,
}

/// One side of a Noise XX handshake.
///
/// # Call order
///
/// As for every state machine in the crate: after creation and after every
/// [`handle_input`](Self::handle_input) / [`handle_timeout`](Self::handle_timeout),
/// drain [`poll_transmit`](Self::poll_transmit) to the transport and
/// [`poll_event`](Self::poll_event), then re-arm the timer from
/// [`poll_timeout`](Self::poll_timeout). After [`HandshakeEvent::Complete`]
/// (and the last transmit), [`finish`](Self::finish) gives the record layer,
/// what is known of the peer, and any bytes received past the handshake
/// (records to open next).
pub struct Handshake {
    initiator: bool,
    noise: Option<snow::HandshakeState>,
    config: Config,
    params: Params,
    deadline: Instant,
    step: Step,
    rx: Vec<u8>,
    tx: Vec<u8>,
    scratch: Vec<u8>,
    events: VecDeque<HandshakeEvent>,
    /// The peer and the rekey interval it announced.
    peer: Option<(PeerInfo, u64)>,
    presented: Vec<String>,
    transport: Option<snow::TransportState>,
    error: Option<HandshakeError>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("initiator", &self.initiator)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// A completed handshake, ready for records.
#[derive(Debug)]
pub struct Established {
    /// The record layer.
    pub records: Records,
    /// The peer.
    pub peer: PeerInfo,
    /// Bytes received after the handshake's last message: the first
    /// records, to pass to [`Records::open`].
    pub leftover: Vec<u8>,
}

impl Handshake {
    /// The dialer's side; queues the first message at once.
    pub fn initiator(config: Config, params: Params, now: Instant) -> Result<Self, HandshakeError> {
        let mut h = Self::new(true, config, params, now)?;
        h.write_noise(&[])?;
        Ok(h)
    }

    /// The acceptor's side.
    pub fn responder(config: Config, params: Params, now: Instant) -> Result<Self, HandshakeError> {
        Self::new(false, config, params, now)
    }

    fn new(
        initiator: bool,
        config: Config,
        params: Params,
        now: Instant,
    ) -> Result<Self, HandshakeError> {
        config.validate()?;
        let builder = snow::Builder::with_resolver(
            noise_params(),
            Resolver::boxed(
                params.rng_seed,
                (*params.identity.secret(), params.identity.public_key().0),
            ),
        )
        .local_private_key(params.identity.secret())
        .and_then(|b| b.prologue(PROLOGUE))
        .map_err(|_| HandshakeError::Config("static key"))?;
        let noise = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(|_| HandshakeError::Config("noise parameters"))?;
        Ok(Handshake {
            initiator,
            noise: Some(noise),
            deadline: now + config.handshake_timeout,
            config,
            params,
            step: if initiator {
                Step::AwaitResponder
            } else {
                Step::AwaitHello
            },
            rx: Vec::new(),
            tx: Vec::new(),
            scratch: vec![0; MAX_RECORD],
            events: VecDeque::new(),
            peer: None,
            presented: Vec::new(),
            transport: None,
            error: None,
        })
    }

    /// Whether this is the initiator (dialer).
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// Bytes from the transport, any chunking. Once failed, further input
    /// returns the error again.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), HandshakeError> {
        self.handle_timeout(now);
        match self.step {
            Step::Failed => return Err(self.last_error()),
            Step::Done => {
                // Records that follow the handshake, kept for `finish`
                // (bounded: a driver calls `finish` on completion).
                if self.rx.len() + data.len() > 2 * (MAX_RECORD + 2) {
                    return Err(self.fail(HandshakeError::UnexpectedData));
                }
                self.rx.extend_from_slice(data);
                return Ok(());
            }
            _ => {}
        }
        self.rx.extend_from_slice(data);
        while matches!(
            self.step,
            Step::AwaitHello | Step::AwaitResponder | Step::AwaitInitiator
        ) {
            if self.rx.len() < 2 {
                break;
            }
            let len = usize::from(u16::from_be_bytes([self.rx[0], self.rx[1]]));
            if len > self.config.max_handshake_message {
                return Err(self.fail(HandshakeError::MessageTooLarge { len }));
            }
            if self.rx.len() < 2 + len {
                break;
            }
            let msg: Vec<u8> = self.rx.drain(..2 + len).skip(2).collect();
            if let Err(e) = self.on_message(&msg) {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    fn on_message(&mut self, msg: &[u8]) -> Result<(), HandshakeError> {
        let noise = self.noise.as_mut().ok_or(HandshakeError::NotFinished)?;
        let n = noise
            .read_message(msg, &mut self.scratch)
            .map_err(|_| HandshakeError::Noise)?;
        match self.step {
            Step::AwaitHello => {
                // msg1 is `e` alone; a payload would travel in the clear.
                if n != 0 {
                    return Err(HandshakeError::BadPayload(DecodeError::Invalid(
                        "payload in first message",
                    )));
                }
                let ours = self
                    .params
                    .authorizer
                    .blessings_for_peer(&[], self.params.identity.blessings());
                let payload = self.payload(&ours);
                self.write_noise(&payload)?;
                self.step = Step::AwaitInitiator;
                self.presented(&ours);
            }
            Step::AwaitResponder => {
                let payload = self.scratch[..n].to_vec();
                let granted = self.authorize(&payload)?;
                let ours = self
                    .params
                    .authorizer
                    .blessings_for_peer(&granted, self.params.identity.blessings());
                let payload = self.payload(&ours);
                self.presented(&ours);
                self.write_noise(&payload)?;
                self.complete()?;
            }
            Step::AwaitInitiator => {
                let payload = self.scratch[..n].to_vec();
                self.authorize(&payload)?;
                self.complete()?;
            }
            Step::Done | Step::Failed => return Err(HandshakeError::UnexpectedData),
        }
        Ok(())
    }

    fn presented(&mut self, ours: &[super::Blessing]) {
        self.presented = ours.iter().map(|b| b.name()).collect();
    }

    /// Our payload: versions, record and mux settings, blessings.
    fn payload(&self, blessings: &[super::Blessing]) -> Vec<u8> {
        let c = &self.config;
        let mut p = Vec::with_capacity(64 + blessings.len() * 256);
        p.push(PAYLOAD_VERSION);
        p.extend_from_slice(&c.versions.0.to_be_bytes());
        p.extend_from_slice(&c.versions.1.to_be_bytes());
        put_varint(&mut p, c.record.rekey_after.min(crate::wire::VARINT_MAX));
        put_varint(
            &mut p,
            c.mux.max_concurrent_flows.min(crate::wire::VARINT_MAX),
        );
        put_varint(&mut p, c.mux.max_flow_window.min(crate::wire::VARINT_MAX));
        put_varint(&mut p, c.mux.conn_recv_budget.min(crate::wire::VARINT_MAX));
        encode_blessings(blessings, &mut p);
        p
    }

    /// Decodes the peer's payload, verifies its blessings against the key
    /// it proved, and runs the authorizer; the granted names.
    fn authorize(&mut self, payload: &[u8]) -> Result<Vec<String>, HandshakeError> {
        let noise = self.noise.as_ref().ok_or(HandshakeError::NotFinished)?;
        let key = noise
            .get_remote_static()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .map(PublicKey)
            .ok_or(HandshakeError::Noise)?;
        let mut r = Reader::new(payload);
        let bad = HandshakeError::BadPayload;
        if r.u8().map_err(bad)? != PAYLOAD_VERSION {
            return Err(bad(DecodeError::Invalid("handshake payload version")));
        }
        let peer_min = r.u16().map_err(bad)?;
        let peer_max = r.u16().map_err(bad)?;
        let rekey_after = r.varint().map_err(bad)?;
        let mux = MuxSettings {
            max_concurrent_flows: r.varint().map_err(bad)?,
            max_flow_window: r.varint().map_err(bad)?,
            conn_recv_budget: r.varint().map_err(bad)?,
        };
        let blessings = decode_blessings(&mut r, &self.config.blessing_limits).map_err(bad)?;
        let (our_min, our_max) = self.config.versions;
        let version = our_max.min(peer_max);
        if peer_min > peer_max || version < our_min.max(peer_min) {
            return Err(HandshakeError::VersionMismatch { peer_min, peer_max });
        }
        let verified = PeerBlessings::verify(
            &self.params.roots,
            &blessings,
            key,
            self.params.wall_clock_secs,
            &self.config.blessing_limits,
        );
        let local = Endpoint {
            address: self.params.local_address.clone(),
            key: self.params.identity.public_key(),
        };
        let remote = Endpoint {
            address: self.params.remote_address.clone(),
            key,
        };
        let granted = self
            .params
            .authorizer
            .authorize_peer(&local, &remote, &verified)
            .map_err(HandshakeError::Rejected)?;
        self.peer = Some((
            PeerInfo {
                key,
                blessings: verified,
                granted: granted.clone(),
                presented: Vec::new(),
                version,
                mux,
            },
            rekey_after,
        ));
        Ok(granted)
    }

    fn write_noise(&mut self, payload: &[u8]) -> Result<(), HandshakeError> {
        let noise = self.noise.as_mut().ok_or(HandshakeError::NotFinished)?;
        let n = noise
            .write_message(payload, &mut self.scratch)
            .map_err(|_| {
                HandshakeError::Config("handshake payload too large (too many blessings)")
            })?;
        self.tx.extend_from_slice(&(n as u16).to_be_bytes());
        self.tx.extend_from_slice(&self.scratch[..n]);
        Ok(())
    }

    fn complete(&mut self) -> Result<(), HandshakeError> {
        let noise = self.noise.take().ok_or(HandshakeError::NotFinished)?;
        let transport = noise
            .into_transport_mode()
            .map_err(|_| HandshakeError::Noise)?;
        self.transport = Some(transport);
        self.step = Step::Done;
        self.events.push_back(HandshakeEvent::Complete);
        Ok(())
    }

    fn fail(&mut self, e: HandshakeError) -> HandshakeError {
        self.step = Step::Failed;
        self.noise = None;
        self.transport = None;
        // A failed handshake sends nothing more: in particular, an
        // initiator that refused the responder never sends its identity.
        self.tx.clear();
        self.rx = Vec::new();
        self.error = Some(e.clone());
        self.events.push_back(HandshakeEvent::Failed(e.clone()));
        e
    }

    fn last_error(&self) -> HandshakeError {
        self.error.clone().unwrap_or(HandshakeError::NotFinished)
    }

    /// The transport ended (EOF or error) before completion.
    pub fn handle_transport_closed(&mut self) {
        if !matches!(self.step, Step::Done | Step::Failed) {
            self.fail(HandshakeError::TransportEnded);
        }
    }

    /// Fails the handshake with [`HandshakeError::Timeout`] once its
    /// deadline has passed (early calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.deadline && !matches!(self.step, Step::Done | Step::Failed) {
            self.fail(HandshakeError::Timeout);
        }
    }

    /// Handshake bytes are waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn wants_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// The handshake's deadline while it runs.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.step {
            Step::Done | Step::Failed => None,
            _ => Some(self.deadline),
        }
    }

    /// Appends the handshake bytes to send to `out`; returns how many,
    /// `None` when there are none.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut impl TransmitBuf) -> Option<usize> {
        if self.tx.is_empty() {
            return None;
        }
        out.put_slice(&self.tx);
        let n = self.tx.len();
        self.tx.clear();
        Some(n)
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<HandshakeEvent> {
        self.events.pop_front()
    }

    /// Whether the handshake completed.
    pub fn is_complete(&self) -> bool {
        self.step == Step::Done
    }

    /// The record layer and the peer, once complete and transmitted.
    pub fn finish(mut self) -> Result<Established, HandshakeError> {
        if self.step == Step::Failed {
            return Err(self.last_error());
        }
        if self.step != Step::Done || !self.tx.is_empty() {
            return Err(HandshakeError::NotFinished);
        }
        let (transport, (mut peer, peer_rekey)) = match (self.transport.take(), self.peer.take()) {
            (Some(t), Some(p)) => (t, p),
            _ => return Err(HandshakeError::NotFinished),
        };
        peer.presented = core::mem::take(&mut self.presented);
        Ok(Established {
            records: Records::new(transport, &self.config.record, peer_rekey),
            peer,
            leftover: core::mem::take(&mut self.rx),
        })
    }
}
