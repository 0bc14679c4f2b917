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
//!
//! # Suite negotiation (protocol version 2)
//!
//! The initiator's first message carries its offer, the suites it accepts
//! in its order of preference, as the Noise payload of `-> e`: sent in the
//! clear but mixed into the handshake hash. The responder picks the first
//! suite of its own preference that was offered and sends the choice as
//! one byte in front of its Noise message. The initiator built one Noise
//! state per offered suite, all with the same ephemeral key (so its first
//! message is the same bytes under each), and carries on with the chosen
//! one. A man in the middle who edits the offer or the choice changes one
//! side's handshake hash, and the second message fails to decrypt.
//!
//! Version 1 (ChaCha20-Poly1305 only, no offer, the prologue
//! `weft secure 1`) is still spoken: a responder answers a first message
//! without an offer in version 1 when its `versions` include 1, and an
//! initiator whose `versions` end at 1 speaks it.

use super::authorizer::{Endpoint, PeerAuthorizer, PeerBlessings};
use super::blessing::{
    decode_blessings, encode_blessings, BlessingLimits, Identity, PublicKey, TrustedRoots,
};
use super::crypto::noise::{noise_params, KeyPair, Resolver, Seed};
use super::crypto::{CryptoBackend, Suite, SuiteList, HASH_LEN};
use super::error::HandshakeError;
use super::record::{RecordConfig, Records, MAX_RECORD, MAX_RECORD_PLAINTEXT};
use crate::time::{Duration, Instant};
use crate::wire::TransmitBuf;
use crate::wire::{put_varint, DecodeError, Reader};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroizing;

/// The newest protocol version this implementation speaks (2: suites
/// negotiated; 1: ChaCha20-Poly1305 only).
pub const PROTOCOL_VERSION: u16 = 2;
const PAYLOAD_VERSION: u8 = 1;
/// Mixed into the handshake hash: both sides must agree they speak weft's
/// framing of Noise, and which version of it, or the handshake fails.
const PROLOGUE_V1: &[u8] = b"weft secure 1";
const PROLOGUE_V2: &[u8] = b"weft secure 2";
/// Layout version of the initiator's suite offer.
const OFFER_VERSION: u8 = 1;
/// An X25519 public key, the whole of a version 1 first message.
const EPHEMERAL_LEN: usize = 32;
/// Room for the Noise overhead of a message around its payload: two keys
/// and two tags at most (XX's second message).
const NOISE_OVERHEAD: usize = 2 * 32 + 2 * 16;

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
    /// Protocol versions spoken, lowest and highest. Default 1..=2: an
    /// initiator speaks 2, a responder answers either.
    pub versions: (u16, u16),
    /// The cipher suites accepted, in order of preference. Default
    /// [`SuiteList::Auto`]: AES-256-GCM first where the CPU has AES
    /// instructions, ChaCha20-Poly1305 first otherwise.
    pub suites: SuiteList,
    /// Accept a peer that proves the same static key as ours (a node
    /// connected to itself, or its key stolen). Default `false`.
    pub allow_self_connection: bool,
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
            versions: (1, PROTOCOL_VERSION),
            suites: SuiteList::Auto,
            allow_self_connection: false,
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
        if self.versions.0 == 0 || self.versions.1 > PROTOCOL_VERSION {
            return Err(HandshakeError::Config("versions: only 1..=2 exist"));
        }
        if let SuiteList::Only(list) = &self.suites {
            if list.is_empty() {
                return Err(HandshakeError::Config("suites: the list is empty"));
            }
        }
        Ok(())
    }
}

/// Who we are and whom we trust, for one handshake (the randomness comes
/// separately, as a [`Seed`] that cannot be reused).
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
    /// Where the primitives come from; usually
    /// [`default_backend()`](super::crypto::default_backend).
    pub backend: &'static dyn CryptoBackend,
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
            .field("backend", &self.backend.name())
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
    /// The cipher suite in use.
    pub suite: Suite,
    /// The Noise handshake hash: equal on both ends, unique to this
    /// connection, for channel binding.
    pub handshake_hash: [u8; HASH_LEN],
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
    /// The initiator, before the answer: one state per offered suite.
    offered: Vec<(Suite, snow::HandshakeState)>,
    /// The state of the suite in use.
    noise: Option<(Suite, snow::HandshakeState)>,
    /// Version 1 on the wire (no offer, no choice byte).
    legacy: bool,
    config: Config,
    params: Params,
    /// Our ephemeral key pair, drawn once from the seed.
    ephemeral: KeyPair,
    /// Our static key, prepared once for every offered suite's state.
    static_key: KeyPair,
    deadline: Instant,
    step: Step,
    rx: Vec<u8>,
    tx: Vec<u8>,
    events: VecDeque<HandshakeEvent>,
    /// The peer and the rekey interval it announced.
    peer: Option<(PeerInfo, u64)>,
    presented: Vec<String>,
    /// Both directions' keys, once complete.
    keys: Option<Keys>,
    error: Option<HandshakeError>,
}

struct Keys {
    send: Zeroizing<[u8; 32]>,
    recv: Zeroizing<[u8; 32]>,
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
    /// The dialer's side; queues the first message at once. `seed` is 32
    /// fresh random bytes, used for this handshake only.
    pub fn initiator(
        config: Config,
        params: Params,
        seed: Seed,
        now: Instant,
    ) -> Result<Self, HandshakeError> {
        let mut h = Self::new(true, config, params, seed, now)?;
        let suites = h.our_suites();
        if h.config.versions.1 < 2 {
            if !suites.contains(&Suite::ChaChaPolyBlake2s) {
                return Err(HandshakeError::Config(
                    "version 1 speaks only ChaCha20-Poly1305: add it to the suites",
                ));
            }
            h.legacy = true;
            let state = h.build(Suite::ChaChaPolyBlake2s)?;
            h.noise = Some((Suite::ChaChaPolyBlake2s, state));
            h.write_noise(&[], None)?;
            return Ok(h);
        }
        let mut offer = Vec::with_capacity(2 + suites.len());
        offer.push(OFFER_VERSION);
        offer.push(suites.len() as u8);
        offer.extend(suites.iter().map(|s| s.id()));
        for &suite in &suites {
            let state = h.build(suite)?;
            h.offered.push((suite, state));
        }
        // The same ephemeral key and payload under every suite: the first
        // message is the same bytes whichever is chosen.
        let mut first = None;
        for (_, state) in &mut h.offered {
            let mut msg = alloc::vec![0u8; offer.len() + NOISE_OVERHEAD];
            let n = state
                .write_message(&offer, &mut msg)
                .map_err(|_| HandshakeError::Config("noise parameters"))?;
            msg.truncate(n);
            first.get_or_insert(msg);
        }
        let first = first.ok_or(HandshakeError::Config("suites: the list is empty"))?;
        h.frame(None, &first);
        Ok(h)
    }

    /// The acceptor's side. `seed` is 32 fresh random bytes, used for this
    /// handshake only.
    pub fn responder(
        config: Config,
        params: Params,
        seed: Seed,
        now: Instant,
    ) -> Result<Self, HandshakeError> {
        Self::new(false, config, params, seed, now)
    }

    fn new(
        initiator: bool,
        config: Config,
        params: Params,
        seed: Seed,
        now: Instant,
    ) -> Result<Self, HandshakeError> {
        config.validate()?;
        let ephemeral = KeyPair::new(params.backend, &seed.ephemeral_secret());
        let static_key = KeyPair::new(params.backend, params.identity.secret());
        Ok(Handshake {
            initiator,
            offered: Vec::new(),
            noise: None,
            legacy: false,
            deadline: now + config.handshake_timeout,
            config,
            params,
            ephemeral,
            static_key,
            step: if initiator {
                Step::AwaitResponder
            } else {
                Step::AwaitHello
            },
            rx: Vec::new(),
            tx: Vec::new(),
            events: VecDeque::new(),
            peer: None,
            presented: Vec::new(),
            keys: None,
            error: None,
        })
    }

    /// Our suites in order of preference.
    fn our_suites(&self) -> Vec<Suite> {
        self.config
            .suites
            .resolve(self.params.backend.aes_is_fast())
    }

    /// A Noise state for `suite`, with our keys and the prologue of the
    /// version in use.
    fn build(&self, suite: Suite) -> Result<snow::HandshakeState, HandshakeError> {
        let identity = &self.params.identity;
        let prologue = if self.legacy {
            PROLOGUE_V1
        } else {
            PROLOGUE_V2
        };
        let builder = snow::Builder::with_resolver(
            noise_params(suite),
            Resolver::boxed(
                self.params.backend,
                suite,
                self.static_key.clone(),
                self.ephemeral.clone(),
            ),
        )
        .local_private_key(identity.secret())
        .and_then(|b| b.prologue(prologue))
        .map_err(|_| HandshakeError::Config("static key"))?;
        if self.initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(|_| HandshakeError::Config("noise parameters"))
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
        match self.step {
            Step::AwaitHello => {
                let suite = self.choose(msg)?;
                let state = self.build(suite)?;
                self.noise = Some((suite, state));
                let offer = self.read_noise(msg)?;
                // The offer, already parsed from the clear; no more.
                if offer.len() != msg.len() - EPHEMERAL_LEN {
                    return Err(HandshakeError::BadPayload(DecodeError::Invalid(
                        "first message payload",
                    )));
                }
                let ours = self
                    .params
                    .authorizer
                    .blessings_for_peer(&[], self.params.identity.blessings());
                let payload = self.payload(&ours);
                let choice = (!self.legacy).then(|| suite.id());
                self.write_noise(&payload, choice)?;
                self.step = Step::AwaitInitiator;
                self.presented(&ours);
            }
            Step::AwaitResponder => {
                let body = if self.legacy {
                    msg
                } else {
                    let (&id, rest) = msg.split_first().ok_or(HandshakeError::Noise)?;
                    let at = self
                        .offered
                        .iter()
                        .position(|(s, _)| s.id() == id)
                        .ok_or(HandshakeError::UnofferedSuite(id))?;
                    let chosen = self.offered.swap_remove(at);
                    self.offered.clear();
                    self.noise = Some(chosen);
                    rest
                };
                let payload = self.read_noise(body)?;
                let granted = self.authorize(&payload)?;
                let ours = self
                    .params
                    .authorizer
                    .blessings_for_peer(&granted, self.params.identity.blessings());
                let payload = self.payload(&ours);
                self.presented(&ours);
                self.write_noise(&payload, None)?;
                self.complete()?;
            }
            Step::AwaitInitiator => {
                let payload = self.read_noise(msg)?;
                self.authorize(&payload)?;
                self.complete()?;
            }
            Step::Done | Step::Failed => return Err(HandshakeError::UnexpectedData),
        }
        Ok(())
    }

    /// The responder's choice of suite from the first message: version 1
    /// (just the ephemeral key) or version 2 (the key, then the offer).
    fn choose(&mut self, msg: &[u8]) -> Result<Suite, HandshakeError> {
        let ours = self.our_suites();
        if msg.len() < EPHEMERAL_LEN {
            return Err(HandshakeError::Noise);
        }
        if msg.len() == EPHEMERAL_LEN {
            if self.config.versions.0 > 1 {
                return Err(HandshakeError::VersionMismatch {
                    peer_min: 1,
                    peer_max: 1,
                });
            }
            self.legacy = true;
            return if ours.contains(&Suite::ChaChaPolyBlake2s) {
                Ok(Suite::ChaChaPolyBlake2s)
            } else {
                Err(HandshakeError::NoCommonSuite {
                    offered: alloc::vec![Suite::ChaChaPolyBlake2s.id()],
                })
            };
        }
        if self.config.versions.1 < 2 {
            return Err(HandshakeError::BadPayload(DecodeError::Invalid(
                "payload in first message",
            )));
        }
        let mut r = Reader::new(&msg[EPHEMERAL_LEN..]);
        let bad = HandshakeError::BadPayload;
        if r.u8().map_err(bad)? != OFFER_VERSION {
            return Err(bad(DecodeError::Invalid("suite offer version")));
        }
        let n = usize::from(r.u8().map_err(bad)?);
        let offered = r.bytes(n).map_err(bad)?.to_vec();
        if r.remaining() != 0 {
            return Err(bad(DecodeError::Invalid("bytes after the suite offer")));
        }
        ours.into_iter()
            .find(|s| offered.contains(&s.id()))
            .ok_or(HandshakeError::NoCommonSuite { offered })
    }

    /// Reads a Noise message; its payload.
    fn read_noise(&mut self, msg: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let (_, noise) = self.noise.as_mut().ok_or(HandshakeError::NotFinished)?;
        // The payload is never longer than the message.
        let mut out = alloc::vec![0u8; msg.len()];
        let n = noise.read_message(msg, &mut out).map_err(|e| match e {
            snow::Error::Dh => HandshakeError::WeakKey,
            _ => HandshakeError::Noise,
        })?;
        out.truncate(n);
        Ok(out)
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
        let (suite, noise) = self.noise.as_ref().ok_or(HandshakeError::NotFinished)?;
        let suite = *suite;
        let key = noise
            .get_remote_static()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .map(PublicKey)
            .ok_or(HandshakeError::Noise)?;
        if key == self.params.identity.public_key() && !self.config.allow_self_connection {
            return Err(HandshakeError::SelfConnection);
        }
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
        if r.remaining() != 0 {
            return Err(bad(DecodeError::Invalid(
                "bytes after the handshake payload",
            )));
        }
        let (our_min, our_max) = self.config.versions;
        let wire_version = if self.legacy { 1 } else { 2 };
        let version = our_max.min(peer_max);
        if peer_min > peer_max || version < our_min.max(peer_min) || version != wire_version {
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
                suite,
                handshake_hash: [0; HASH_LEN],
            },
            rekey_after,
        ));
        Ok(granted)
    }

    /// Writes a Noise message with `payload`, framed, behind the `choice`
    /// byte when there is one.
    fn write_noise(&mut self, payload: &[u8], choice: Option<u8>) -> Result<(), HandshakeError> {
        let (_, noise) = self.noise.as_mut().ok_or(HandshakeError::NotFinished)?;
        let mut msg = alloc::vec![0u8; payload.len() + NOISE_OVERHEAD];
        let n = noise
            .write_message(payload, &mut msg)
            .map_err(|e| match e {
                // The peer's ephemeral key has small order (`ee`, `se`).
                snow::Error::Dh => HandshakeError::WeakKey,
                _ => HandshakeError::Config("handshake payload too large (too many blessings)"),
            })?;
        if n + usize::from(choice.is_some()) > MAX_RECORD {
            return Err(HandshakeError::Config(
                "handshake payload too large (too many blessings)",
            ));
        }
        msg.truncate(n);
        self.frame(choice, &msg);
        Ok(())
    }

    fn frame(&mut self, choice: Option<u8>, msg: &[u8]) {
        let len = msg.len() + usize::from(choice.is_some());
        // Callers keep `len` within MAX_RECORD.
        self.tx.extend_from_slice(&(len as u16).to_be_bytes());
        self.tx.extend(choice);
        self.tx.extend_from_slice(msg);
    }

    fn complete(&mut self) -> Result<(), HandshakeError> {
        let (_, mut noise) = self.noise.take().ok_or(HandshakeError::NotFinished)?;
        // The peer was authorized before the last message: its info holds
        // the suite, and now the hash.
        let (peer, _) = self.peer.as_mut().ok_or(HandshakeError::NotFinished)?;
        if !noise.is_handshake_finished() {
            return Err(HandshakeError::Noise);
        }
        peer.handshake_hash.copy_from_slice(
            noise
                .get_handshake_hash()
                .get(..HASH_LEN)
                .ok_or(HandshakeError::Noise)?,
        );
        let (k1, k2) = noise.dangerously_get_raw_split();
        let (k1, k2) = (Zeroizing::new(k1), Zeroizing::new(k2));
        // k1 carries initiator -> responder.
        let (send, recv) = if self.initiator { (k1, k2) } else { (k2, k1) };
        self.keys = Some(Keys { send, recv });
        self.step = Step::Done;
        self.events.push_back(HandshakeEvent::Complete);
        Ok(())
    }

    fn fail(&mut self, e: HandshakeError) -> HandshakeError {
        self.step = Step::Failed;
        self.noise = None;
        self.offered.clear();
        self.keys = None;
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
        let (keys, (mut peer, peer_rekey)) = match (self.keys.take(), self.peer.take()) {
            (Some(k), Some(p)) => (k, p),
            _ => return Err(HandshakeError::NotFinished),
        };
        peer.presented = core::mem::take(&mut self.presented);
        Ok(Established {
            records: Records::new(
                self.params.backend,
                peer.suite,
                &keys.send,
                &keys.recv,
                &self.config.record,
                peer_rekey,
            ),
            peer,
            leftover: core::mem::take(&mut self.rx),
        })
    }
}
