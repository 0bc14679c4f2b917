//! The secure layer as one machine: the handshake, then records, then the
//! layer it carries.

use super::error::{HandshakeError, InputError};
use super::handshake::{Established, Handshake, HandshakeEvent, PeerInfo};
use super::record::Records;
use super::RECORD_FAILURE;
use crate::time::Instant;
use crate::wire::{Machine, Rejected, TransmitBuf};
use alloc::boxed::Box;
use bytes::Bytes;

/// Any [`Machine`] `M` behind a Noise handshake and encrypted records, as
/// one machine: the handshake's messages first, then `M`'s bytes sealed
/// in records (several of its messages per record), and received records
/// opened and fed to `M`.
///
/// `M` exists from the start, so commands on it (open a flow, write) may
/// come before the handshake ends: its output waits, and goes out sealed
/// once the keys exist (with the initiator's last handshake message).
/// `M` sees no input, timeout or transport event until then.
///
/// A handshake failure closes this machine ([`is_closed`](Machine::is_closed),
/// [`handshake_error`](Self::handshake_error)) without a word more to the
/// peer. The first record that fails authentication ends input: `M` is
/// closed with [`RECORD_FAILURE`] and its goodbye still goes out sealed.
///
/// Call order is the [`Machine`] contract's; `M`'s events are read from
/// [`inner_mut`](Self::inner_mut).
///
/// ```
/// # extern crate std;
/// use proto_core::secure::*;
/// use proto_core::mux::{self, Side};
/// use proto_core::time::Instant;
/// use proto_core::wire::Machine;
/// use std::sync::Arc;
///
/// let params = |secret| Params {
///     identity: Identity::from_secret(secret), roots: TrustedRoots::new(),
///     authorizer: Arc::new(AllowAny), wall_clock_secs: 0, backend: default_backend(),
///     local_address: String::new(), remote_address: String::new(),
/// };
/// let now = Instant::ZERO;
/// let mux = |side| mux::Connection::new(mux::Config::default(), side, now).unwrap();
/// let mut c = Secured::new(Handshake::initiator(Config::default(), params([1; 32]), Seed::new([1; 32]), now).unwrap(), mux(Side::Dialer));
/// let mut s = Secured::new(Handshake::responder(Config::default(), params([2; 32]), Seed::new([2; 32]), now).unwrap(), mux(Side::Acceptor));
/// let flow = c.inner_mut().open_flow().unwrap(); // before the handshake ends
/// c.inner_mut().flow(flow).write(b"hi").unwrap();
/// for _ in 0..4 {
///     let mut wire = Vec::new();
///     while c.poll_transmit(&mut wire).is_some() {}
///     s.handle_input(now, wire.into()).unwrap();
///     let mut wire = Vec::new();
///     while s.poll_transmit(&mut wire).is_some() {}
///     c.handle_input(now, wire.into()).unwrap();
/// }
/// assert!(c.is_established() && s.is_established());
/// assert_eq!(s.peer().unwrap().key, Identity::from_secret([1; 32]).public_key());
/// let mut got = None;
/// while let Some(ev) = s.inner_mut().poll_event() {
///     if let mux::Event::FlowOpened { id, .. } = ev { got = Some(id) }
/// }
/// let mut buf = [0u8; 8];
/// assert_eq!(s.inner_mut().flow(got.unwrap()).read(&mut buf), Ok(2));
/// ```
#[derive(Debug)]
pub struct Secured<M> {
    phase: Phase,
    inner: M,
    peer: Option<Box<PeerInfo>>,
    /// The latest time an input brought (commands have none).
    now: Instant,
}

#[derive(Debug)]
enum Phase {
    Handshake(Box<Handshake>),
    Records(Box<Records>),
    /// The handshake failed (or the machine closed before it ended).
    Failed(HandshakeError),
}

impl<M: Machine> Secured<M> {
    /// `inner` behind `handshake` (an initiator's or a responder's).
    pub fn new(handshake: Handshake, inner: M) -> Self {
        Secured {
            phase: Phase::Handshake(Box::new(handshake)),
            inner,
            peer: None,
            now: Instant::ZERO,
        }
    }

    /// `inner` on the records of a handshake run separately; opens the
    /// bytes that arrived with its last message (their result is the
    /// second value: an error there has closed `inner` already).
    pub fn established(
        established: Established,
        inner: M,
        now: Instant,
    ) -> (Self, Result<(), InputError>) {
        let mut s = Secured {
            phase: Phase::Failed(HandshakeError::NotFinished),
            inner,
            peer: None,
            now,
        };
        let r = s.enter_records(now, established);
        (s, r)
    }

    /// The carried machine.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The carried machine, for its commands and events.
    pub fn inner_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// The peer, once the handshake established it.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_deref()
    }

    /// The handshake finished: records flow.
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Records(_))
    }

    /// Why the handshake failed, if it did.
    pub fn handshake_error(&self) -> Option<&HandshakeError> {
        match &self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The record layer, once established.
    pub fn records(&self) -> Option<&Records> {
        match &self.phase {
            Phase::Records(r) => Some(r),
            _ => None,
        }
    }

    /// Bytes from the transport, any chunking, with the precise error.
    pub fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), InputError> {
        self.now = self.now.max(now);
        match &mut self.phase {
            Phase::Handshake(hs) => {
                let r = hs.handle_input(now, &data);
                if let Err(e) = r {
                    self.phase = Phase::Failed(e.clone());
                    return Err(InputError::Handshake(e));
                }
                self.advance(now)
            }
            Phase::Records(records) => {
                let inner = &mut self.inner;
                let mut refused = false;
                let r = records.open_owned(data, |plain| {
                    refused = inner.handle_input(now, plain).is_err();
                    !refused
                });
                if let Err(e) = r {
                    self.fail_records(now);
                    return Err(InputError::Record(e));
                }
                if refused {
                    return Err(InputError::Inner);
                }
                Ok(())
            }
            Phase::Failed(e) => Err(InputError::Handshake(e.clone())),
        }
    }

    fn fail_records(&mut self, now: Instant) {
        if !self.inner.is_closed() {
            self.inner
                .close(now, RECORD_FAILURE, b"record authentication failed");
        }
    }

    /// Moves to records once the handshake is complete and its last
    /// message taken; reports a failure it recorded.
    fn advance(&mut self, now: Instant) -> Result<(), InputError> {
        let Phase::Handshake(hs) = &mut self.phase else {
            return Ok(());
        };
        while let Some(ev) = hs.poll_event() {
            if let HandshakeEvent::Failed(e) = ev {
                self.phase = Phase::Failed(e.clone());
                return Err(InputError::Handshake(e));
            }
        }
        if !hs.is_complete() || hs.wants_transmit() {
            return Ok(());
        }
        let Phase::Handshake(hs) =
            core::mem::replace(&mut self.phase, Phase::Failed(HandshakeError::NotFinished))
        else {
            return Ok(());
        };
        match hs.finish() {
            Ok(est) => self.enter_records(now, est),
            Err(e) => {
                self.phase = Phase::Failed(e.clone());
                Err(InputError::Handshake(e))
            }
        }
    }

    fn enter_records(&mut self, now: Instant, est: Established) -> Result<(), InputError> {
        let Established {
            records,
            peer,
            leftover,
            ..
        } = est;
        self.peer = Some(Box::new(peer));
        self.phase = Phase::Records(Box::new(records));
        // `M`'s clock starts with the records: it learns the time (its
        // first PING, sent now, measures from here, not from its creation).
        self.inner.handle_timeout(now);
        if leftover.is_empty() {
            return Ok(());
        }
        self.handle_input(now, leftover.into())
    }
}

impl<M: Machine> Machine for Secured<M> {
    fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), Rejected> {
        Secured::handle_input(self, now, data).map_err(|_| Rejected)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        match &mut self.phase {
            Phase::Handshake(hs) => {
                hs.handle_timeout(now);
                let _ = self.advance(now);
            }
            Phase::Records(_) => self.inner.handle_timeout(now),
            Phase::Failed(_) => {}
        }
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        self.now = self.now.max(now);
        match &mut self.phase {
            Phase::Handshake(hs) => {
                hs.handle_transport_closed();
                let _ = self.advance(now);
            }
            Phase::Records(_) => self.inner.handle_transport_closed(now),
            Phase::Failed(_) => {}
        }
    }

    fn poll_transmit(&mut self, mut out: &mut dyn TransmitBuf) -> Option<usize> {
        if let Phase::Handshake(hs) = &mut self.phase {
            let n = hs.poll_transmit(&mut out);
            // The initiator's last message is out: records may follow it
            // in the same pass.
            let _ = self.advance(self.now);
            if n.is_some() {
                return n;
            }
        }
        match &mut self.phase {
            Phase::Records(records) => {
                let inner = &mut self.inner;
                records.transmit_with(|plain| inner.poll_transmit(plain).is_some(), &mut out)
            }
            _ => None,
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Handshake(hs) => hs.poll_timeout(),
            Phase::Records(_) => self.inner.poll_timeout(),
            Phase::Failed(_) => None,
        }
    }

    fn wants_transmit(&self) -> bool {
        match &self.phase {
            Phase::Handshake(hs) => hs.wants_transmit(),
            Phase::Records(r) => r.pending_plaintext() > 0 || self.inner.wants_transmit(),
            Phase::Failed(_) => false,
        }
    }

    fn wants_input(&self) -> bool {
        match &self.phase {
            Phase::Records(_) => self.inner.wants_input(),
            _ => true,
        }
    }

    fn is_closed(&self) -> bool {
        match &self.phase {
            Phase::Handshake(_) => false,
            Phase::Records(_) => self.inner.is_closed(),
            Phase::Failed(_) => true,
        }
    }

    fn close(&mut self, now: Instant, code: u64, reason: &[u8]) {
        match self.phase {
            Phase::Records(_) => self.inner.close(now, code, reason),
            Phase::Handshake(_) => {
                // Nothing was promised to the peer yet: just stop.
                self.phase = Phase::Failed(HandshakeError::Closed);
                self.inner.close(now, code, reason);
            }
            Phase::Failed(_) => {}
        }
    }
}
