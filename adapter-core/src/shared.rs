//! The state every handle and the driver share: the sans-IO connection and
//! the wakers waiting on it.

use proto_core::mux::{self, CloseReason, Event, FlowId};
use proto_core::time::Instant as MuxInstant;
use smallvec::SmallVec;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

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

#[derive(Debug)]
pub(crate) struct State {
    pub conn: mux::Connection,
    /// Wakers of flows that have a handle.
    pub flows: HashMap<u64, FlowWakers>,
    /// Flows the peer opened that no `accept_flow` took yet.
    pub accept_queue: VecDeque<(FlowId, bool)>,
    pub accept_wakers: Vec<Waker>,
    /// `open_flow` calls waiting for flow credit.
    pub open_wakers: Vec<Waker>,
    /// Pings by opaque value, answered by the matching `Event::Rtt`.
    pub pings: BTreeMap<u64, PingSlot>,
    /// `ping` calls waiting because too many pings are outstanding.
    pub ping_wakers: Vec<Waker>,
    pub close_reason: Option<CloseReason>,
    pub close_wakers: Vec<Waker>,
    /// The peer's GOAWAY: (accepted_below, code).
    pub peer_goaway: Option<(u64, u64)>,
    pub driver_waker: Option<Waker>,
    /// The transport's error, if it failed rather than ended.
    pub transport_error: Option<String>,
    /// Live `Connection` handles; the last one to go sends GOAWAY.
    pub handles: usize,
    /// Something may need transmitting: wake the driver (if the core agrees
    /// or its timer must fire earlier than the one armed).
    pub kick: bool,
    /// The core deadline the driver last armed its timer for.
    pub armed: Option<MuxInstant>,
    /// The record layer under the mux, on a secure connection.
    pub records: Option<proto_core::secure::Records>,
    /// What the secure handshake established.
    pub security: Option<std::sync::Arc<crate::secure::Security>>,
    /// Wake-ups collected under the lock, run after it is released; inline
    /// so the common case (one reader or writer) does not allocate.
    to_wake: SmallVec<[Waker; 4]>,
    /// This connection's call log (`WEFT_RECORD_DIR`).
    #[cfg(feature = "record")]
    pub rec: Option<crate::record::Recorder>,
}

fn push_waker(list: &mut Vec<Waker>, w: &Waker) {
    if !list.iter().any(|x| x.will_wake(w)) {
        list.push(w.clone());
    }
}

pub(crate) fn set_waker(slot: &mut Option<Waker>, w: &Waker) {
    match slot {
        Some(old) if old.will_wake(w) => {}
        _ => *slot = Some(w.clone()),
    }
}

impl State {
    /// The driver has work: bytes to send, a close to notice, or a timer
    /// to arm earlier than the one it has.
    fn driver_needed(&self) -> bool {
        self.conn.wants_transmit()
            || self.conn.is_closed()
            || match (self.conn.poll_timeout(), self.armed) {
                (Some((d, _)), Some(armed)) => d < armed,
                (Some(_), None) => true,
                (None, _) => false,
            }
    }

    pub fn register_accept(&mut self, cx: &Context<'_>) {
        push_waker(&mut self.accept_wakers, cx.waker());
    }

    pub fn register_open(&mut self, cx: &Context<'_>) {
        push_waker(&mut self.open_wakers, cx.waker());
    }

    pub fn register_ping(&mut self, cx: &Context<'_>) {
        push_waker(&mut self.ping_wakers, cx.waker());
    }

    pub fn register_close(&mut self, cx: &Context<'_>) {
        push_waker(&mut self.close_wakers, cx.waker());
    }

    /// Drains `poll_event`, turning events into wake-ups.
    pub fn dispatch(&mut self) {
        while let Some(ev) = crate::record::poll_event(self) {
            match ev {
                Event::FlowOpened { id, side_channel } => {
                    if self.handles == 0 {
                        // Nobody will ever accept it.
                        let _ = crate::record::reset(self, id, 0);
                        let _ = crate::record::stop(self, id, 0);
                        self.kick = true;
                        continue;
                    }
                    self.accept_queue.push_back((id, side_channel));
                    self.to_wake.extend(self.accept_wakers.drain(..));
                }
                Event::Readable(id) => {
                    if let Some(w) = self.flows.get_mut(&id.0).and_then(|f| f.read.take()) {
                        self.to_wake.push(w);
                    }
                }
                Event::Writable(id) => {
                    if let Some(w) = self.flows.get_mut(&id.0).and_then(|f| f.write.take()) {
                        self.to_wake.push(w);
                    }
                }
                Event::FlowClosed(id) => {
                    if let Some(f) = self.flows.get_mut(&id.0) {
                        self.to_wake.extend(f.read.take());
                        self.to_wake.extend(f.write.take());
                    }
                }
                Event::FlowCredit => self.to_wake.extend(self.open_wakers.drain(..)),
                Event::Rtt { ping, rtt } => {
                    if let Some(slot) = self.pings.get_mut(&ping) {
                        slot.rtt = Some(rtt);
                        self.to_wake.extend(slot.waker.take());
                    }
                    self.to_wake.extend(self.ping_wakers.drain(..));
                }
                Event::GoAway {
                    accepted_below,
                    code,
                } => {
                    self.peer_goaway = Some((accepted_below, code));
                    self.to_wake.extend(self.open_wakers.drain(..));
                    self.to_wake.extend(self.accept_wakers.drain(..));
                }
                Event::Closed(reason) => {
                    self.close_reason = Some(reason);
                    self.wake_all();
                }
                _ => {}
            }
        }
    }

    fn wake_all(&mut self) {
        for f in self.flows.values_mut() {
            self.to_wake.extend(f.read.take());
            self.to_wake.extend(f.write.take());
        }
        self.to_wake.extend(self.accept_wakers.drain(..));
        self.to_wake.extend(self.open_wakers.drain(..));
        self.to_wake.extend(self.ping_wakers.drain(..));
        self.to_wake.extend(self.close_wakers.drain(..));
        for slot in self.pings.values_mut() {
            self.to_wake.extend(slot.waker.take());
        }
    }
}

/// The state behind a mutex, plus the clock origin.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    origin: Instant,
}

impl Shared {
    pub fn new(conn: mux::Connection, origin: Instant) -> Self {
        Shared {
            state: Mutex::new(State {
                conn,
                flows: HashMap::new(),
                accept_queue: VecDeque::new(),
                accept_wakers: Vec::new(),
                open_wakers: Vec::new(),
                pings: BTreeMap::new(),
                ping_wakers: Vec::new(),
                close_reason: None,
                close_wakers: Vec::new(),
                peer_goaway: None,
                driver_waker: None,
                transport_error: None,
                handles: 0,
                kick: false,
                armed: None,
                records: None,
                security: None,
                to_wake: SmallVec::new(),
                #[cfg(feature = "record")]
                rec: None,
            }),
            origin,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The core's clock: nanoseconds since the connection started.
    pub fn now(&self) -> MuxInstant {
        to_mux(self.origin, Instant::now())
    }

    /// A core deadline on the std clock.
    pub fn to_std(&self, t: MuxInstant) -> Instant {
        self.origin + Duration::from_nanos(t.as_nanos())
    }

    /// Runs `f` on the state, then dispatches events; wakes the tasks they
    /// concern (after unlocking) and the driver if `f` set `kick`.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        let r = f(&mut st);
        st.dispatch();
        let wakers = std::mem::take(&mut st.to_wake);
        if std::mem::take(&mut st.kick) && st.driver_needed() {
            if let Some(w) = &st.driver_waker {
                w.wake_by_ref();
            }
        }
        drop(st);
        for w in wakers {
            w.wake();
        }
        r
    }
}

pub(crate) fn to_mux(origin: Instant, t: Instant) -> MuxInstant {
    let nanos = t.saturating_duration_since(origin).as_nanos();
    MuxInstant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_core::mux::{Config, Side};

    /// A connection with nothing left to send, whose earliest timer is the
    /// idle timeout (10 s) and whose next is the keepalive (15 s).
    fn quiet() -> State {
        let mut config = Config::default();
        config.idle_timeout = Some(Duration::from_secs(10));
        let origin = Instant::now();
        let mut conn = mux::Connection::new(config, Side::Dialer, MuxInstant::ZERO).unwrap();
        let mut out = Vec::new();
        while conn.poll_transmit(&mut out).is_some() {}
        let shared = Shared::new(conn, origin);
        shared.state.into_inner().unwrap()
    }

    #[test]
    fn the_driver_is_woken_only_for_output_or_an_earlier_timer() {
        let mut st = quiet();
        let idle = MuxInstant::ZERO + Duration::from_secs(10);
        assert_eq!(st.conn.poll_timeout().map(|(d, _)| d), Some(idle));
        // Armed for exactly the core's deadline, nothing to send: sleep on.
        st.armed = Some(idle);
        assert!(!st.driver_needed());
        // A later timer is armed (say the idle timer just got enabled by
        // the last flow closing): the driver must re-arm earlier.
        st.armed = Some(MuxInstant::ZERO + Duration::from_secs(15));
        assert!(st.driver_needed());
        // Nothing armed at all, but a deadline exists.
        st.armed = None;
        assert!(st.driver_needed());
        // Bytes to send always wake it.
        st.armed = Some(idle);
        let _ = st.conn.ping();
        assert!(st.driver_needed());
    }
}
