//! The one contract every layer implements: a state machine driven over an
//! ordered byte stream.

use super::TransmitBuf;
use crate::time::Instant;
use bytes::Bytes;
use core::fmt;

/// A state machine that runs over an ordered, reliable byte stream (a TCP
/// or Unix socket, a mux flow, a simulated link), whatever its protocol.
///
/// Layers stack by wrapping one machine in another
/// ([`Secured<M>`](crate::secure::Secured) runs a handshake, then records,
/// then `M`; [`sim::Recorded<M>`](crate::sim) logs every call), so one
/// driver runs any stack: the adapters, the simulator, the fuzz targets and
/// the benches all drive the same composed types through this trait.
///
/// # Call order
///
/// After every input ([`handle_input`](Self::handle_input),
/// [`handle_timeout`](Self::handle_timeout),
/// [`handle_transport_closed`](Self::handle_transport_closed)) and after
/// every command a layer offers on its own type (open a flow, write, call,
/// close, ...), the driver drains [`poll_transmit`](Self::poll_transmit)
/// until it returns `None`, drains the layer's own events, then re-arms its
/// timer from [`poll_timeout`](Self::poll_timeout). Commands use the time
/// of the latest input. Once [`is_closed`](Self::is_closed) is true and
/// `poll_transmit` is empty, the machine has nothing more to say.
///
/// Events are not part of this trait: each layer's are its own type, read
/// by whoever holds the concrete machine (a handle, a test, a workload).
///
/// ```
/// use proto_core::wire::{Machine, Rejected, TransmitBuf};
/// use proto_core::time::Instant;
/// use bytes::Bytes;
///
/// /// Echoes every byte back until the peer ends the stream.
/// #[derive(Default)]
/// struct Echo { out: Vec<u8>, closed: bool }
///
/// impl Machine for Echo {
///     fn handle_input(&mut self, _now: Instant, data: Bytes) -> Result<(), Rejected> {
///         self.out.extend_from_slice(&data);
///         Ok(())
///     }
///     fn handle_timeout(&mut self, _now: Instant) {}
///     fn handle_transport_closed(&mut self, _now: Instant) { self.closed = true; }
///     fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
///         if self.out.is_empty() { return None; }
///         out.put_slice(&self.out);
///         Some(core::mem::take(&mut self.out).len())
///     }
///     fn poll_timeout(&self) -> Option<Instant> { None }
///     fn is_closed(&self) -> bool { self.closed }
///     fn close(&mut self, _now: Instant, _code: u64, _reason: &[u8]) { self.closed = true; }
/// }
///
/// let mut m = Echo::default();
/// m.handle_input(Instant::ZERO, Bytes::from_static(b"hi")).unwrap();
/// let mut wire = Vec::new();
/// while m.poll_transmit(&mut wire).is_some() {}
/// assert_eq!(wire, b"hi");
/// ```
pub trait Machine {
    /// Bytes from the transport, any chunking. `Bytes` so a layer may keep
    /// large payloads without copying. An `Err` means the machine refused
    /// them and has closed itself (its own accessors say why).
    fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), Rejected>;
    /// The deadline from [`poll_timeout`](Self::poll_timeout) passed
    /// (early calls are harmless).
    fn handle_timeout(&mut self, now: Instant);
    /// The transport's read side ended (EOF, error, reset).
    fn handle_transport_closed(&mut self, now: Instant);
    /// Appends bytes to send to `out`; returns how many, `None` when there
    /// is nothing. Call until `None`.
    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize>;
    /// The next deadline, if any.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether `poll_transmit` may have something: a cheap hint that lets a
    /// driver skip waking its IO task. The default always says yes.
    fn wants_transmit(&self) -> bool {
        true
    }
    /// Whether the machine takes more input now. A driver stops reading
    /// the transport while this is false (the transport's own flow control,
    /// TCP's window or a flow's credit, then holds the peer) and reads
    /// again once it is true: this is how a machine whose peer sends faster
    /// than its application or its output drains keeps memory bounded. A
    /// machine must still accept input given while false (at most one read
    /// buffer, in flight when it changed). The default always takes input.
    fn wants_input(&self) -> bool {
        true
    }
    /// Closed for good (after its last bytes are transmitted).
    fn is_closed(&self) -> bool;
    /// Closes now with an application `code` and `reason`, telling the peer
    /// if the protocol can (a layer below that failed uses this to make the
    /// layer above say goodbye).
    fn close(&mut self, now: Instant, code: u64, reason: &[u8]);
}

impl<M: Machine + ?Sized> Machine for alloc::boxed::Box<M> {
    fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), Rejected> {
        (**self).handle_input(now, data)
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now)
    }
    fn handle_transport_closed(&mut self, now: Instant) {
        (**self).handle_transport_closed(now)
    }
    fn poll_transmit(&mut self, out: &mut dyn TransmitBuf) -> Option<usize> {
        (**self).poll_transmit(out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn wants_transmit(&self) -> bool {
        (**self).wants_transmit()
    }
    fn wants_input(&self) -> bool {
        (**self).wants_input()
    }
    fn is_closed(&self) -> bool {
        (**self).is_closed()
    }
    fn close(&mut self, now: Instant, code: u64, reason: &[u8]) {
        (**self).close(now, code, reason)
    }
}

/// [`Machine::handle_input`] refused the bytes (the machine closed itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the machine rejected its input")
    }
}

impl core::error::Error for Rejected {}
