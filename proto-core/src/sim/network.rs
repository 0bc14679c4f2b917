//! [`Network`]: what the standard scenario ([`world`](super::world)) needs
//! from a network, so it runs on the simulator ([`Net`]) or on real
//! sockets (`adapter_tokio::lonet::LoSimNet`) unchanged.
//!
//! The calls are [`Net`]'s; a real network answers the fault injections it
//! cannot perform by doing nothing (the scenario then simply runs without
//! them, as a swarm configuration with those faults off would). Every id
//! argument may be foreign: an id the network does not know is
//! [`NetError::UnknownId`], never a panic.

use super::error::NetError;
use super::net::{
    Accept, Addr, ConnId, FaultKind, HostId, ListenerId, Net, NetEvent, NetStats, OpId, SocketId,
    TimerId,
};
use super::trace::Trace;
use crate::time::{Duration, Instant};
use alloc::vec::Vec;

/// A network the standard scenario can run on. See [`Net`] for what each
/// call means.
#[allow(missing_docs)]
pub trait Network {
    fn now(&self) -> Instant;
    /// Runs the next scheduled thing (blocking on a real network); false
    /// if nothing can ever happen again.
    fn step(&mut self) -> bool;
    fn poll_event(&mut self) -> Option<NetEvent>;
    fn set_timer(
        &mut self,
        host: Option<HostId>,
        at: Instant,
        token: u64,
    ) -> Result<TimerId, NetError>;
    fn cancel_timer(&mut self, id: TimerId);
    fn local_time(&self, host: HostId) -> Result<Instant, NetError>;
    fn global_time(&self, host: HostId, local: Instant) -> Result<Instant, NetError>;
    fn add_host(&mut self, name: &str) -> Result<HostId, NetError>;
    fn set_skew(&mut self, host: HostId, offset: Duration, ppm: i32) -> Result<(), NetError>;
    fn hosts(&self) -> Vec<HostId>;
    fn host_name(&self, host: HostId) -> Result<&str, NetError>;
    fn host_up(&self, host: HostId) -> bool;
    fn listen(&mut self, host: HostId, laddr: &str) -> Result<ListenerId, NetError>;
    fn accept(&mut self, l: ListenerId) -> Result<Accept, NetError>;
    fn dial(&mut self, host: HostId, raddr: &str) -> Result<OpId, NetError>;
    fn send(&mut self, c: ConnId, data: &[u8]) -> Result<(), NetError>;
    fn close(&mut self, c: ConnId) -> Result<(), NetError>;
    fn local_addr(&self, c: ConnId) -> Result<Addr, NetError>;
    /// The peer's address. The default knows none (`UnknownId`): the
    /// scenario then cannot tell which accepted connection is a greedy
    /// peer's.
    fn remote_addr(&self, _c: ConnId) -> Result<Addr, NetError> {
        Err(NetError::UnknownId)
    }
    fn bind(&mut self, host: HostId, port: u16) -> Result<SocketId, NetError>;
    fn send_to(&mut self, s: SocketId, to: Addr, data: &[u8]) -> Result<(), NetError>;
    fn partition(&mut self, from: HostId, to: HostId, both: bool) -> Result<(), NetError>;
    fn heal(&mut self);
    fn heal_all(&mut self);
    fn hold(&mut self, c: ConnId) -> Result<(), NetError>;
    fn release(&mut self, c: ConnId) -> Result<(), NetError>;
    fn inject_reset(&mut self, c: ConnId) -> Result<(), NetError>;
    fn inject_fin(&mut self, c: ConnId) -> Result<bool, NetError>;
    fn crash(&mut self, host: HostId) -> Result<(), NetError>;
    fn restart(&mut self, host: HostId) -> Result<bool, NetError>;
    fn trace_mut(&mut self) -> &mut Trace;
    fn take_trace(&mut self) -> Trace;
    fn stats(&self) -> NetStats;
    fn fault_counts(&self) -> [u64; FaultKind::ALL.len()];
}

impl Network for Net {
    fn now(&self) -> Instant {
        Net::now(self)
    }
    fn step(&mut self) -> bool {
        Net::step(self)
    }
    fn poll_event(&mut self) -> Option<NetEvent> {
        Net::poll_event(self)
    }
    fn set_timer(
        &mut self,
        host: Option<HostId>,
        at: Instant,
        token: u64,
    ) -> Result<TimerId, NetError> {
        Net::set_timer(self, host, at, token)
    }
    fn cancel_timer(&mut self, id: TimerId) {
        Net::cancel_timer(self, id)
    }
    fn local_time(&self, host: HostId) -> Result<Instant, NetError> {
        Net::local_time(self, host)
    }
    fn global_time(&self, host: HostId, local: Instant) -> Result<Instant, NetError> {
        Net::global_time(self, host, local)
    }
    fn add_host(&mut self, name: &str) -> Result<HostId, NetError> {
        Net::add_host(self, name)
    }
    fn set_skew(&mut self, host: HostId, offset: Duration, ppm: i32) -> Result<(), NetError> {
        Net::set_skew(self, host, offset, ppm)
    }
    fn hosts(&self) -> Vec<HostId> {
        Net::hosts(self).collect()
    }
    fn host_name(&self, host: HostId) -> Result<&str, NetError> {
        Net::host_name(self, host)
    }
    fn host_up(&self, host: HostId) -> bool {
        Net::host_up(self, host)
    }
    fn listen(&mut self, host: HostId, laddr: &str) -> Result<ListenerId, NetError> {
        Net::listen(self, host, laddr)
    }
    fn accept(&mut self, l: ListenerId) -> Result<Accept, NetError> {
        Net::accept(self, l)
    }
    fn dial(&mut self, host: HostId, raddr: &str) -> Result<OpId, NetError> {
        Net::dial(self, host, raddr)
    }
    fn send(&mut self, c: ConnId, data: &[u8]) -> Result<(), NetError> {
        Net::send(self, c, data)
    }
    fn close(&mut self, c: ConnId) -> Result<(), NetError> {
        Net::close(self, c)
    }
    fn local_addr(&self, c: ConnId) -> Result<Addr, NetError> {
        Net::local_addr(self, c)
    }
    fn remote_addr(&self, c: ConnId) -> Result<Addr, NetError> {
        Net::remote_addr(self, c)
    }
    fn bind(&mut self, host: HostId, port: u16) -> Result<SocketId, NetError> {
        Net::bind(self, host, port)
    }
    fn send_to(&mut self, s: SocketId, to: Addr, data: &[u8]) -> Result<(), NetError> {
        Net::send_to(self, s, to, data)
    }
    fn partition(&mut self, from: HostId, to: HostId, both: bool) -> Result<(), NetError> {
        Net::partition(self, from, to, both)
    }
    fn heal(&mut self) {
        Net::heal(self)
    }
    fn heal_all(&mut self) {
        Net::heal_all(self)
    }
    fn hold(&mut self, c: ConnId) -> Result<(), NetError> {
        Net::hold(self, c)
    }
    fn release(&mut self, c: ConnId) -> Result<(), NetError> {
        Net::release(self, c)
    }
    fn inject_reset(&mut self, c: ConnId) -> Result<(), NetError> {
        Net::inject_reset(self, c)
    }
    fn inject_fin(&mut self, c: ConnId) -> Result<bool, NetError> {
        Net::inject_fin(self, c)
    }
    fn crash(&mut self, host: HostId) -> Result<(), NetError> {
        Net::crash(self, host)
    }
    fn restart(&mut self, host: HostId) -> Result<bool, NetError> {
        Net::restart(self, host)
    }
    fn trace_mut(&mut self) -> &mut Trace {
        Net::trace_mut(self)
    }
    fn take_trace(&mut self) -> Trace {
        Net::take_trace(self)
    }
    fn stats(&self) -> NetStats {
        Net::stats(self)
    }
    fn fault_counts(&self) -> [u64; FaultKind::ALL.len()] {
        Net::fault_counts(self)
    }
}
