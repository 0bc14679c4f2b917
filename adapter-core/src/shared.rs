//! The state a driver and its handles share: one [`Layer`] (a machine and
//! the wakers of the tasks waiting on it) behind a mutex, the clock origin,
//! and the driver's own bookkeeping.

use proto_core::time::Instant as CoreInstant;
use proto_core::wire::Machine;
use smallvec::SmallVec;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

/// Wake-ups collected under the lock and run after it is released; inline
/// so the common case (one reader or writer) does not allocate.
#[derive(Debug, Default)]
pub struct Wakeups(SmallVec<[Waker; 4]>);

impl Wakeups {
    /// Wakes `w` once the lock is released.
    pub fn push(&mut self, w: Waker) {
        self.0.push(w);
    }

    /// Wakes every waker in `list` (emptying it).
    pub fn drain_from(&mut self, list: &mut Vec<Waker>) {
        self.0.extend(list.drain(..));
    }

    /// Wakes the waker in `slot`, if any (emptying it).
    pub fn take_from(&mut self, slot: &mut Option<Waker>) {
        self.0.extend(slot.take());
    }
}

/// Keeps `w` in `slot` (a clone only if it would wake another task).
pub(crate) fn set_waker(slot: &mut Option<Waker>, w: &Waker) {
    match slot {
        Some(old) if old.will_wake(w) => {}
        _ => *slot = Some(w.clone()),
    }
}

/// What a protocol layer puts behind the [`Driver`](crate::Driver): its
/// machine, and how that machine's events turn into wake-ups of the tasks
/// holding its handles. A new layer writes this and its handle type;
/// driving, timers, IO and recording are already done.
///
/// ```
/// use adapter_core::{Layer, Wakeups};
/// use proto_core::wire::{Machine, Rejected, TransmitBuf};
/// use proto_core::time::Instant;
///
/// struct Sink { closed: bool }
/// impl Machine for Sink {
///     fn handle_input(&mut self, _: Instant, _: bytes::Bytes) -> Result<(), Rejected> { Ok(()) }
///     fn handle_timeout(&mut self, _: Instant) {}
///     fn handle_transport_closed(&mut self, _: Instant) { self.closed = true }
///     fn poll_transmit(&mut self, _: &mut dyn TransmitBuf) -> Option<usize> { None }
///     fn poll_timeout(&self) -> Option<Instant> { None }
///     fn is_closed(&self) -> bool { self.closed }
///     fn close(&mut self, _: Instant, _: u64, _: &[u8]) { self.closed = true }
/// }
/// struct SinkLayer { sink: Sink, closed_waiters: Vec<std::task::Waker> }
/// impl Layer for SinkLayer {
///     type Machine = Sink;
///     fn machine(&mut self) -> &mut Sink { &mut self.sink }
///     fn machine_ref(&self) -> &Sink { &self.sink }
///     fn dispatch(&mut self, wake: &mut Wakeups) {
///         if self.sink.closed { wake.drain_from(&mut self.closed_waiters) }
///     }
/// }
/// ```
pub trait Layer: Send + 'static {
    /// The (possibly composed) machine the driver runs.
    type Machine: Machine;
    /// The machine.
    fn machine(&mut self) -> &mut Self::Machine;
    /// The machine, read-only.
    fn machine_ref(&self) -> &Self::Machine;
    /// Drains the machine's events into wake-ups; called under the lock
    /// after every input and every handle call.
    fn dispatch(&mut self, wake: &mut Wakeups);
    /// The transport failed (rather than ended); called before the machine
    /// hears `handle_transport_closed`.
    fn transport_failed(&mut self, _error: &io::Error) {}
    /// Once per driver pass, after transmitting (a recorder flushes here).
    fn end_of_pass(&mut self) {}
    /// The memory budget the machine draws from, if any: the driver
    /// charges its own queue of unwritten output to it too.
    fn budget(&self) -> Option<proto_core::budget::MemoryBudget> {
        None
    }
}

/// The state under the lock: the layer and the driver's bookkeeping.
#[derive(Debug)]
pub(crate) struct State<L> {
    pub layer: L,
    pub driver_waker: Option<Waker>,
    /// The core deadline the driver last armed its timer for.
    pub armed: Option<CoreInstant>,
    /// The driver stopped reading because the machine took no more input.
    pub input_paused: bool,
    wake: Wakeups,
}

impl<L: Layer> State<L> {
    /// The driver has work: bytes to send, a close to notice, or a timer
    /// to arm earlier than the one it has.
    fn driver_needed(&self) -> bool {
        let m = self.layer.machine_ref();
        m.wants_transmit()
            || m.is_closed()
            || (self.input_paused && m.wants_input())
            || match (m.poll_timeout(), self.armed) {
                (Some(d), Some(armed)) => d < armed,
                (Some(_), None) => true,
                (None, _) => false,
            }
    }
}

/// A layer behind a mutex, plus the clock origin: what a
/// [`Driver`](crate::Driver) and the layer's handles share.
#[derive(Debug)]
pub struct Shared<L> {
    state: Mutex<State<L>>,
    origin: Instant,
}

impl<L: Layer> Shared<L> {
    /// `layer`, with the clock origin `origin` (the machine's time zero).
    pub fn new(layer: L, origin: Instant) -> Self {
        Shared {
            state: Mutex::new(State {
                layer,
                driver_waker: None,
                armed: None,
                input_paused: false,
                wake: Wakeups::default(),
            }),
            origin,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<L>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The machine's clock: time since the origin.
    pub fn now(&self) -> CoreInstant {
        to_core(self.origin, Instant::now())
    }

    /// A machine deadline on the std clock.
    pub fn to_std(&self, t: CoreInstant) -> Instant {
        self.origin + Duration::from_nanos(t.as_nanos())
    }

    /// Runs `f` on the layer (a handle's command), then dispatches its
    /// events, wakes the tasks they concern (after unlocking), and wakes
    /// the driver when the machine has something for it.
    pub fn with<R>(&self, f: impl FnOnce(&mut L) -> R) -> R {
        self.run(true, |st| f(&mut st.layer))
    }

    /// The driver's own calls: like [`with`](Self::with) without waking
    /// the driver (it is running).
    pub(crate) fn with_driver<R>(&self, f: impl FnOnce(&mut State<L>) -> R) -> R {
        self.run(false, f)
    }

    fn run<R>(&self, wake_driver: bool, f: impl FnOnce(&mut State<L>) -> R) -> R {
        let mut guard = self.lock();
        let r = f(&mut guard);
        let st = &mut *guard;
        st.layer.dispatch(&mut st.wake);
        let wakers = std::mem::take(&mut st.wake);
        if wake_driver && st.driver_needed() {
            if let Some(w) = &st.driver_waker {
                w.wake_by_ref();
            }
        }
        drop(guard);
        for w in wakers.0 {
            w.wake();
        }
        r
    }
}

/// `t` as a machine instant measured from `origin` (what every driver
/// passes its machine as `now`).
pub fn to_core(origin: Instant, t: Instant) -> CoreInstant {
    let nanos = t.saturating_duration_since(origin).as_nanos();
    CoreInstant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
