//! The admission machine behind a mutex, with wakers: what lets an
//! adapter wait for its turn to handshake.

use crate::runtime::{Runtime, Timer};
use crate::shared::to_core;
use proto_core::admission::{Admission, AdmissionConfig, AdmissionStats, Decision, Reason, Ticket};
use proto_core::time::Instant as CoreInstant;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Handshake admission shared by a listener's tasks: [`offer`](Self::offer)
/// decides at once, a [`Queued`] entry waits for its turn, and a
/// [`Permit`] holds a handshake's place until dropped.
///
/// ```
/// use adapter_core::listener::AdmissionGate;
/// use adapter_core::proto_core::admission::{AdmissionConfig, Reason};
/// # use adapter_core::{Runtime, Timer};
/// # use std::{future::Future, task::{Context, Poll}, time::Instant};
/// # struct NoTimer;
/// # impl Timer for NoTimer { fn reset(&mut self, _: Instant) {} fn poll_expired(&mut self, _: &mut Context<'_>) -> Poll<()> { Poll::Pending } }
/// # struct Rt;
/// # impl Runtime for Rt { type Timer = NoTimer; fn timer(&self) -> NoTimer { NoTimer }
/// #   fn spawn<F: Future<Output = ()> + Send + 'static>(&self, _: F) {} }
/// let gate = AdmissionGate::new(AdmissionConfig {
///     max_in_progress_per_source: 1,
///     ..AdmissionConfig::default()
/// })?;
/// let ip = "192.0.2.1".parse().unwrap();
/// let permit = adapter_core::block_on(gate.admit(&Rt, ip)).unwrap();
/// let refused = adapter_core::block_on(gate.admit(&Rt, ip)).unwrap_err();
/// assert!(matches!(refused, Reason::SourceBusy { .. }));
/// drop(permit); // the handshake ended: its place is free
/// assert!(adapter_core::block_on(gate.admit(&Rt, ip)).is_ok());
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub struct AdmissionGate {
    state: Mutex<GateState>,
    origin: Instant,
}

#[derive(Debug)]
struct GateState {
    machine: Admission,
    slots: HashMap<Ticket, Slot>,
}

#[derive(Debug)]
enum Slot {
    Waiting(Option<Waker>),
    Admitted,
    Expired(Reason),
}

/// What [`AdmissionGate::offer`] decided.
#[derive(Debug)]
pub enum Offer<T> {
    /// Start the handshake now; drop the permit when it ends.
    Admitted(Permit),
    /// Wait for the [`Queued`] future (never read the connection meanwhile).
    Queued(Queued<T>),
    /// Close the connection unread.
    Refused(Reason),
}

fn lock(m: &Mutex<GateState>) -> MutexGuard<'_, GateState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AdmissionGate {
    /// A gate with these limits; a bad config is `InvalidInput`.
    pub fn new(config: AdmissionConfig) -> io::Result<Arc<AdmissionGate>> {
        let machine =
            Admission::new(config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Arc::new(AdmissionGate {
            state: Mutex::new(GateState {
                machine,
                slots: HashMap::new(),
            }),
            origin: Instant::now(),
        }))
    }

    /// Decides at once for a connection from `ip`; a queued entry gets a
    /// timer from `runtime` for its expiry.
    pub fn offer<R: Runtime>(self: &Arc<Self>, runtime: &R, ip: IpAddr) -> Offer<R::Timer> {
        let now = self.now();
        let mut st = lock(&self.state);
        match st.machine.offer(now, ip) {
            Decision::Admit(ticket) => Offer::Admitted(Permit {
                gate: self.clone(),
                ticket,
            }),
            Decision::Queued(ticket) => {
                st.slots.insert(ticket, Slot::Waiting(None));
                Offer::Queued(Queued {
                    gate: self.clone(),
                    ticket,
                    timer: runtime.timer(),
                    armed: None,
                    done: false,
                })
            }
            Decision::Refused(reason) => Offer::Refused(reason),
        }
    }

    /// A permit for a connection from `ip`, waiting in the queue if the
    /// config queues; the reason if refused or expired.
    pub async fn admit<R: Runtime>(
        self: &Arc<Self>,
        runtime: &R,
        ip: IpAddr,
    ) -> Result<Permit, Reason>
    where
        R::Timer: Unpin,
    {
        match self.offer(runtime, ip) {
            Offer::Admitted(p) => Ok(p),
            Offer::Queued(q) => q.await,
            Offer::Refused(r) => Err(r),
        }
    }

    /// The machine's counters now.
    pub fn stats(&self) -> AdmissionStats {
        lock(&self.state).machine.stats()
    }

    /// The limits.
    pub fn config(&self) -> AdmissionConfig {
        lock(&self.state).machine.config().clone()
    }

    fn now(&self) -> CoreInstant {
        to_core(self.origin, Instant::now())
    }

    fn to_std(&self, t: CoreInstant) -> Instant {
        self.origin
            .checked_add(Duration::from_nanos(t.as_nanos()))
            // Past what the platform's clock can hold: far enough to be never.
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
    }

    /// Runs the change `f` makes to the machine, then expires and admits
    /// what that allows, waking the waiters concerned (outside the lock).
    fn update<T>(&self, f: impl FnOnce(&mut GateState, CoreInstant) -> T) -> T {
        let now = self.now();
        let mut wake = Vec::new();
        let out = {
            let mut st = lock(&self.state);
            let out = f(&mut st, now);
            st.pump(now, &mut wake);
            out
        };
        for w in wake {
            w.wake();
        }
        out
    }
}

impl GateState {
    fn pump(&mut self, now: CoreInstant, wake: &mut Vec<Waker>) {
        if self.machine.poll_timeout().is_some_and(|d| d <= now) {
            self.machine.handle_timeout(now);
        }
        while let Some((ticket, reason)) = self.machine.poll_expired() {
            if let Some(slot) = self.slots.get_mut(&ticket) {
                if let Slot::Waiting(w) = std::mem::replace(slot, Slot::Expired(reason)) {
                    wake.extend(w);
                }
            }
        }
        while let Some(ticket) = self.machine.poll_admit(now) {
            match self.slots.get_mut(&ticket) {
                Some(slot) => {
                    if let Slot::Waiting(w) = std::mem::replace(slot, Slot::Admitted) {
                        wake.extend(w);
                    }
                }
                // Nobody waits for it (cannot happen: a queued ticket's
                // future withdraws it when dropped); free the place again.
                None => {
                    self.machine.finished(now, ticket);
                }
            }
        }
    }
}

/// A handshake's place. Dropping it tells the gate the handshake ended,
/// which may admit a queued one.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<AdmissionGate>,
    ticket: Ticket,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let ticket = self.ticket;
        self.gate.update(|st, now| st.machine.finished(now, ticket));
    }
}

/// A queued entry waiting for its turn: a permit, or the reason it
/// expired ([`Reason::QueueTimeout`]). Dropping it withdraws the entry.
#[derive(Debug)]
pub struct Queued<T> {
    gate: Arc<AdmissionGate>,
    ticket: Ticket,
    timer: T,
    armed: Option<CoreInstant>,
    done: bool,
}

impl<T: Timer + Unpin> Future for Queued<T> {
    type Output = Result<Permit, Reason>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // A few rounds at most: each is needed only when the timer fired,
        // and then the machine's next deadline has moved on.
        for _ in 0..4 {
            let ticket = this.ticket;
            let (slot, deadline) = this.gate.update(|st, _| {
                let slot = match st.slots.get_mut(&ticket) {
                    Some(Slot::Waiting(w)) => {
                        *w = Some(cx.waker().clone());
                        None
                    }
                    _ => st.slots.remove(&ticket),
                };
                (slot, st.machine.poll_timeout())
            });
            match slot {
                Some(Slot::Admitted) => {
                    this.done = true;
                    return Poll::Ready(Ok(Permit {
                        gate: this.gate.clone(),
                        ticket,
                    }));
                }
                Some(Slot::Expired(reason)) => {
                    this.done = true;
                    return Poll::Ready(Err(reason));
                }
                Some(Slot::Waiting(_)) | None => {}
            }
            let Some(deadline) = deadline else {
                return Poll::Pending;
            };
            if this.armed != Some(deadline) {
                this.timer.reset(this.gate.to_std(deadline));
                this.armed = Some(deadline);
            }
            if this.timer.poll_expired(cx).is_pending() {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T> Drop for Queued<T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let ticket = self.ticket;
        self.gate.update(|st, now| match st.slots.remove(&ticket) {
            Some(Slot::Admitted) => st.machine.finished(now, ticket),
            Some(Slot::Waiting(_)) => st.machine.cancel(ticket),
            _ => false,
        });
    }
}
