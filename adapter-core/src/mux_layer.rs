//! The mux's [`Layer`]: its stack, and the wakers of the tasks waiting on
//! its flows, accepts, opens, pings, handshake and close.

use crate::security::Security;
pub(crate) use crate::shared::set_waker;
use crate::shared::{Layer, Wakeups};
use crate::stack::MuxStack;
use proto_core::mux::{CloseReason, Event, FlowId};
use proto_core::secure::PublicKey;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

/// Wakers of the one task reading and the one task writing a flow.
#[derive(Debug, Default)]
pub(crate) struct FlowWakers {
    pub read: Option<Waker>,
    pub write: Option<Waker>,
    /// Live halves (reader, writer) of the flow's handle.
    pub halves: u8,
}

/// A `ping()` awaiting its PONG.
#[derive(Debug, Default)]
pub(crate) struct PingSlot {
    pub waker: Option<Waker>,
    pub rtt: Option<Duration>,
}

/// Where a secure connection's handshake stands, for `connect`/`accept`.
#[derive(Debug, Clone)]
pub(crate) enum Handshake {
    /// Plaintext, or established.
    Done,
    Running,
    Failed(proto_core::secure::HandshakeError),
}

/// The mux connection behind a [`Connection`](crate::Connection)'s handles:
/// what its [`Driver`](crate::Driver) runs.
#[derive(Debug)]
pub struct MuxLayer {
    pub(crate) stack: MuxStack,
    /// Wakers of flows that have a handle.
    pub(crate) flows: HashMap<u64, FlowWakers>,
    /// Flows the peer opened that no `accept_flow` took yet.
    pub(crate) accept_queue: VecDeque<(FlowId, bool)>,
    pub(crate) accept_wakers: Vec<Waker>,
    /// `open_flow` calls waiting for flow credit.
    pub(crate) open_wakers: Vec<Waker>,
    /// Pings by opaque value, answered by the matching `Event::Rtt`.
    pub(crate) pings: BTreeMap<u64, PingSlot>,
    /// `ping` calls waiting because too many pings are outstanding.
    pub(crate) ping_wakers: Vec<Waker>,
    pub(crate) close_reason: Option<CloseReason>,
    pub(crate) close_wakers: Vec<Waker>,
    /// The peer's GOAWAY: (accepted_below, code).
    pub(crate) peer_goaway: Option<(u64, u64)>,
    /// The transport's error, if it failed rather than ended (or the
    /// record layer's, if a record failed).
    pub(crate) transport_error: Option<String>,
    /// Live `Connection` handles; the last one to go sends GOAWAY.
    pub(crate) handles: usize,
    /// What the secure handshake established.
    pub(crate) security: Option<Arc<Security>>,
    pub(crate) handshake: Handshake,
    pub(crate) handshake_wakers: Vec<Waker>,
    /// Our static key, on a secure connection.
    pub(crate) local_key: Option<PublicKey>,
}

fn push_waker(list: &mut Vec<Waker>, w: &Waker) {
    if !list.iter().any(|x| x.will_wake(w)) {
        list.push(w.clone());
    }
}

impl MuxLayer {
    pub(crate) fn new(stack: MuxStack, local_key: Option<PublicKey>) -> Self {
        let handshake = match stack {
            MuxStack::Plain(_) => Handshake::Done,
            MuxStack::Secure(_) => Handshake::Running,
        };
        MuxLayer {
            stack,
            flows: HashMap::new(),
            accept_queue: VecDeque::new(),
            accept_wakers: Vec::new(),
            open_wakers: Vec::new(),
            pings: BTreeMap::new(),
            ping_wakers: Vec::new(),
            close_reason: None,
            close_wakers: Vec::new(),
            peer_goaway: None,
            transport_error: None,
            handles: 0,
            security: None,
            handshake,
            handshake_wakers: Vec::new(),
            local_key,
        }
    }

    pub(crate) fn register_accept(&mut self, cx: &Context<'_>) {
        push_waker(&mut self.accept_wakers, cx.waker());
    }

    pub(crate) fn register_open(&mut self, cx: &Context<'_>) {
        push_waker(&mut self.open_wakers, cx.waker());
    }

    pub(crate) fn register_ping(&mut self, cx: &Context<'_>) {
        push_waker(&mut self.ping_wakers, cx.waker());
    }

    pub(crate) fn register_close(&mut self, cx: &Context<'_>) {
        push_waker(&mut self.close_wakers, cx.waker());
    }

    pub(crate) fn register_handshake(&mut self, cx: &Context<'_>) {
        push_waker(&mut self.handshake_wakers, cx.waker());
    }

    /// Notices the handshake's end (the secure layer's state).
    fn watch_handshake(&mut self, wake: &mut Wakeups) {
        if !matches!(self.handshake, Handshake::Running) {
            return;
        }
        let Some(sec) = self.stack.secured() else {
            return;
        };
        if let Some(e) = sec.handshake_error() {
            self.handshake = Handshake::Failed(e.clone());
        } else if let (Some(peer), Some(key)) = (sec.peer(), self.local_key) {
            self.security = Some(Arc::new(Security::new(key, peer.clone())));
            self.handshake = Handshake::Done;
        } else {
            return;
        }
        wake.drain_from(&mut self.handshake_wakers);
    }

    fn wake_all(&mut self, wake: &mut Wakeups) {
        for f in self.flows.values_mut() {
            wake.take_from(&mut f.read);
            wake.take_from(&mut f.write);
        }
        wake.drain_from(&mut self.accept_wakers);
        wake.drain_from(&mut self.open_wakers);
        wake.drain_from(&mut self.ping_wakers);
        wake.drain_from(&mut self.close_wakers);
        wake.drain_from(&mut self.handshake_wakers);
        for slot in self.pings.values_mut() {
            wake.take_from(&mut slot.waker);
        }
    }
}

impl Layer for MuxLayer {
    type Machine = MuxStack;

    fn machine(&mut self) -> &mut MuxStack {
        &mut self.stack
    }

    fn machine_ref(&self) -> &MuxStack {
        &self.stack
    }

    fn budget(&self) -> Option<proto_core::budget::MemoryBudget> {
        self.stack.conn().config().budget.clone()
    }

    fn transport_failed(&mut self, e: &io::Error) {
        if self.transport_error.is_none() && !self.stack.conn().is_closed() {
            self.transport_error = Some(e.to_string());
        }
    }

    fn end_of_pass(&mut self) {
        self.stack.mux().flush();
    }

    fn dispatch(&mut self, wake: &mut Wakeups) {
        self.watch_handshake(wake);
        if self.transport_error.is_none() {
            if let Some(e) = self
                .stack
                .secured()
                .and_then(|s| s.records())
                .and_then(|r| r.input_error())
            {
                self.transport_error = Some(e.to_string());
            }
        }
        while let Some(ev) = self.stack.mux().poll_event() {
            match ev {
                Event::FlowOpened { id, side_channel } => {
                    if self.handles == 0 {
                        // Nobody will ever accept it.
                        let _ = self.stack.mux().reset(id, 0);
                        let _ = self.stack.mux().stop(id, 0);
                        continue;
                    }
                    self.accept_queue.push_back((id, side_channel));
                    wake.drain_from(&mut self.accept_wakers);
                }
                Event::Readable(id) => {
                    if let Some(f) = self.flows.get_mut(&id.0) {
                        wake.take_from(&mut f.read);
                    }
                }
                Event::Writable(id) => {
                    if let Some(f) = self.flows.get_mut(&id.0) {
                        wake.take_from(&mut f.write);
                    }
                }
                Event::FlowClosed(id) => {
                    if let Some(f) = self.flows.get_mut(&id.0) {
                        wake.take_from(&mut f.read);
                        wake.take_from(&mut f.write);
                    }
                }
                Event::FlowCredit => wake.drain_from(&mut self.open_wakers),
                Event::Rtt { ping, rtt } => {
                    if let Some(slot) = self.pings.get_mut(&ping) {
                        slot.rtt = Some(rtt);
                        wake.take_from(&mut slot.waker);
                    }
                    wake.drain_from(&mut self.ping_wakers);
                }
                Event::GoAway {
                    accepted_below,
                    code,
                } => {
                    self.peer_goaway = Some((accepted_below, code));
                    wake.drain_from(&mut self.open_wakers);
                    wake.drain_from(&mut self.accept_wakers);
                }
                Event::Closed(reason) => {
                    self.close_reason = Some(reason);
                    self.wake_all(wake);
                }
                _ => {}
            }
        }
        // A secure connection whose handshake failed never starts its mux:
        // it is closed all the same.
        if self.close_reason.is_none() && matches!(self.handshake, Handshake::Failed(_)) {
            self.close_reason = Some(CloseReason::TransportEnded);
            self.wake_all(wake);
        }
    }
}
