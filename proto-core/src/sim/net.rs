//! virtnet: named hosts, a registry, stream and datagram sockets, links
//! with faults, and the discrete-event scheduler that runs them.
//!
//! The model follows go123's `xnet/virtnet`: hosts announce themselves in a
//! registry; a host listens on a port, dials `name:port`, accepts; ports are
//! given out lowest-first per host and an accepted connection keeps the
//! listening port, as in TCP. It goes further: links have latency,
//! bandwidth and re-chunking; segments carry sequence numbers and are put
//! back in order by the receiver, so holds and partitions delay bytes but
//! never lose or reorder them (a reset does lose what is in flight, as in
//! TCP); hosts can crash and restart; datagram sockets see loss,
//! duplication, reordering, corruption and MTU drops; each host has its
//! own skewed clock.
//!
//! Everything is driven by [`Net::step`], which runs the next scheduled
//! item (ordered by time, then by the sequence it was scheduled in) and
//! leaves what it caused in [`Net::poll_event`]. Operations that take a
//! round trip ([`Net::dial`], a waiting [`Net::accept`]) return an [`OpId`]
//! and complete with an event; every error is reported on the operation it
//! hit, also when a close races it.
//!
//! Ids ([`HostId`], [`ConnId`], [`ListenerId`], [`SocketId`]) are plain
//! indices. Every call that takes one answers an id this network never
//! handed out with [`NetError::UnknownId`] (accessors and fault injections
//! included), never a panic; a stale id reports the close that made it so.

use super::error::NetError;
use super::rng::Rng;
use super::trace::{tag, Trace};
use crate::time::{Duration, Instant};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A host, by the order it joined (stable for a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub u32);
/// A stream connection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u32);
/// A listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerId(pub u32);
/// A datagram socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub u32);
/// A pending operation (dial or accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);
/// A scheduled timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub u64);

/// A socket address: a host and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr {
    /// The host.
    pub host: HostId,
    /// The port (1..=65535; 0 only in requests, meaning "pick one").
    pub port: u16,
}

/// How a link treats what crosses it. One default for every host pair, and
/// optional overrides per (source, destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// One-way latency, drawn uniformly from this range for each segment.
    /// Default 1 ms..=1 ms.
    pub latency: (Duration, Duration),
    /// Bytes per second a direction carries; `None` (default) = unlimited.
    pub bandwidth: Option<u64>,
    /// Stream deliveries are cut into pieces of 1..=`max_chunk` bytes
    /// (consecutive segments are first joined). 0 (default) = deliver as
    /// segments arrive.
    pub max_chunk: usize,
    /// Datagram loss, per million. Default 0.
    pub loss_ppm: u32,
    /// Datagram duplication, per million. Default 0.
    pub duplicate_ppm: u32,
    /// Datagrams delayed by up to [`reorder_delay`](Self::reorder_delay) so
    /// later ones overtake them, per million. Default 0.
    pub reorder_ppm: u32,
    /// Extra delay for a reordered datagram. Default 10 ms.
    pub reorder_delay: Duration,
    /// Datagrams with one bit flipped, per million. Default 0.
    pub corrupt_ppm: u32,
    /// Datagrams larger than this are dropped. Default 1500.
    pub mtu: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: (Duration::from_millis(1), Duration::from_millis(1)),
            bandwidth: None,
            max_chunk: 0,
            loss_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_delay: Duration::from_millis(10),
            corrupt_ppm: 0,
            mtu: 1500,
        }
    }
}

/// Limits of the network itself; each bounds memory a scenario can make
/// the simulator hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Connections a listener queues before refusing dials. Default 128.
    pub backlog: usize,
    /// Ports per host above which listen/dial/bind fail with
    /// `AddressInUse`. Default 65535.
    pub max_ports: u16,
    /// Hosts the registry takes. Default 4096.
    pub max_hosts: usize,
    /// The link every host pair uses unless overridden.
    pub link: LinkConfig,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            backlog: 128,
            max_ports: u16::MAX,
            max_hosts: 4096,
            link: LinkConfig::default(),
        }
    }
}

/// A fault the network injected or a test asked for; counted in
/// [`Net::fault_counts`] and written to the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u8)]
pub enum FaultKind {
    /// A stream delivery was cut into several pieces.
    Rechunk = 0,
    /// A segment waited for bandwidth.
    Bandwidth,
    /// A connection's incoming side was held.
    Hold,
    /// A held connection was released.
    Release,
    /// One direction between two hosts was cut.
    PartitionOneWay,
    /// Both directions between two hosts were cut.
    PartitionTwoWay,
    /// A segment or dial waited at a partition or hold.
    Parked,
    /// Partitions were healed.
    Heal,
    /// The network reset a connection (both ends see a reset).
    Reset,
    /// One end's transport was closed under it (the peer sees FIN).
    Fin,
    /// A host crashed.
    Crash,
    /// A crashed host came back.
    Restart,
    /// A host's clock was skewed.
    Skew,
    /// A datagram was lost.
    Loss,
    /// A datagram was duplicated.
    Duplicate,
    /// A datagram was delayed past later ones.
    Reorder,
    /// A datagram had a bit flipped.
    Corrupt,
    /// A datagram was above the MTU and dropped.
    MtuDrop,
    /// A greedy peer connected (the scenario's fault, not the network's:
    /// it opens flows, writes, never reads, and sends PINGs).
    GreedyPeer,
}

impl FaultKind {
    /// Every kind, in order.
    pub const ALL: [FaultKind; 19] = [
        FaultKind::Rechunk,
        FaultKind::Bandwidth,
        FaultKind::Hold,
        FaultKind::Release,
        FaultKind::PartitionOneWay,
        FaultKind::PartitionTwoWay,
        FaultKind::Parked,
        FaultKind::Heal,
        FaultKind::Reset,
        FaultKind::Fin,
        FaultKind::Crash,
        FaultKind::Restart,
        FaultKind::Skew,
        FaultKind::Loss,
        FaultKind::Duplicate,
        FaultKind::Reorder,
        FaultKind::Corrupt,
        FaultKind::MtuDrop,
        FaultKind::GreedyPeer,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Rechunk => "rechunk",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::Hold => "hold",
            FaultKind::Release => "release",
            FaultKind::PartitionOneWay => "partition-one-way",
            FaultKind::PartitionTwoWay => "partition-two-way",
            FaultKind::Parked => "parked",
            FaultKind::Heal => "heal",
            FaultKind::Reset => "reset",
            FaultKind::Fin => "fin",
            FaultKind::Crash => "crash",
            FaultKind::Restart => "restart",
            FaultKind::Skew => "skew",
            FaultKind::Loss => "loss",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Reorder => "reorder",
            FaultKind::Corrupt => "corrupt",
            FaultKind::MtuDrop => "mtu-drop",
            FaultKind::GreedyPeer => "greedy-peer",
        }
    }
}

/// The result of [`Net::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// A connection was waiting.
    Ready(ConnId),
    /// None yet: [`NetEvent::Accepted`] with this op completes it.
    Pending(OpId),
}

/// What happened in the network, from [`Net::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetEvent {
    /// A dial completed.
    Dialed {
        /// The op [`Net::dial`] returned.
        op: OpId,
        /// The connection, or why not.
        result: Result<ConnId, NetError>,
    },
    /// A waiting accept completed.
    Accepted {
        /// The op [`Net::accept`] returned.
        op: OpId,
        /// The connection, or why not.
        result: Result<ConnId, NetError>,
    },
    /// A connection is queued on a listener that nobody was accepting on.
    Incoming(ListenerId),
    /// Bytes arrived on a connection, in order.
    Data {
        /// The receiving connection.
        conn: ConnId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The peer ended its side (after all its bytes).
    Fin(ConnId),
    /// The connection was reset; bytes in flight are lost.
    Reset(ConnId),
    /// The connection died with its host or the network.
    Down {
        /// The connection.
        conn: ConnId,
        /// `HostDown` or `NetworkDown`.
        err: NetError,
    },
    /// A datagram arrived.
    Datagram {
        /// The receiving socket.
        socket: SocketId,
        /// Who sent it.
        from: Addr,
        /// The bytes (possibly corrupted by the link).
        data: Vec<u8>,
    },
    /// A timer fired.
    Timer {
        /// The host it belongs to (`None`: the scenario's own).
        host: Option<HostId>,
        /// The caller's token.
        token: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostState {
    Up,
    Closed,
    Crashed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Skew {
    offset: u64,
    ppm: i32,
}

#[derive(Debug)]
struct Host {
    name: String,
    state: HostState,
    incarnation: u32,
    ports: BTreeMap<u16, PortUse>,
    skew: Skew,
}

#[derive(Debug, Default, Clone, Copy)]
struct PortUse {
    listener: Option<ListenerId>,
    conns: u32,
    socket: Option<SocketId>,
}

#[derive(Debug)]
struct Listener {
    addr: Addr,
    open: bool,
    backlog: VecDeque<ConnId>,
    waiting: VecDeque<OpId>,
}

#[derive(Debug, Clone)]
enum SegKind {
    Data(Vec<u8>),
    Fin,
}

#[derive(Debug)]
struct Conn {
    local: Addr,
    remote: Addr,
    peer: ConnId,
    incarnation: u32,
    /// Visible to its owner (the dial completed / it was accepted).
    established: bool,
    /// The owner still has the socket.
    open: bool,
    write_shut: bool,
    reset: bool,
    held: bool,
    tx_seq: u64,
    rx_next: u64,
    rx_ooo: BTreeMap<u64, SegKind>,
    busy_until: u64,
}

#[derive(Debug)]
struct Socket {
    addr: Addr,
    open: bool,
}

#[derive(Debug)]
struct Dial {
    from: HostId,
    incarnation: u32,
    local_port: u16,
}

#[derive(Debug, Clone)]
enum Item {
    Segment {
        from: HostId,
        to: ConnId,
        seq: u64,
        kind: SegKind,
    },
    Rst {
        from: HostId,
        to: ConnId,
    },
    Syn {
        op: OpId,
        from: HostId,
        to: Addr,
    },
    SynAck {
        op: OpId,
        from: HostId,
        to: HostId,
        server: ConnId,
        client: ConnId,
    },
    DialFail {
        op: OpId,
        from: HostId,
        to: HostId,
        err: NetError,
    },
    Datagram {
        from: Addr,
        to: Addr,
        data: Vec<u8>,
    },
    Timer {
        id: TimerId,
        host: Option<(HostId, u32)>,
        token: u64,
    },
}

impl Item {
    /// The (source, destination) hosts of something that crosses a link.
    fn route(&self) -> Option<(HostId, HostId)> {
        match self {
            Item::Segment { .. } | Item::Rst { .. } | Item::Timer { .. } => None,
            Item::Syn { from, to, .. } => Some((*from, to.host)),
            Item::SynAck { from, to, .. } | Item::DialFail { from, to, .. } => Some((*from, *to)),
            Item::Datagram { from, to, .. } => Some((from.host, to.host)),
        }
    }
}

/// Counters of what the network carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// Scheduled items run.
    pub steps: u64,
    /// Stream segments sent.
    pub segments: u64,
    /// Stream bytes delivered.
    pub bytes_delivered: u64,
    /// Datagrams delivered.
    pub datagrams_delivered: u64,
    /// Connections established.
    pub connections: u64,
}

/// The virtual network. See the [module docs](self).
pub struct Net {
    config: NetConfig,
    seed: u64,
    now: u64,
    down: bool,
    registry_down: bool,
    hosts: Vec<Host>,
    names: BTreeMap<String, HostId>,
    listeners: Vec<Listener>,
    conns: Vec<Conn>,
    sockets: Vec<Socket>,
    dials: BTreeMap<OpId, Dial>,
    accepts: BTreeMap<OpId, ListenerId>,
    next_op: u64,
    queue: BTreeMap<(u64, u64), Item>,
    next_seq: u64,
    timers: BTreeMap<TimerId, (u64, u64)>,
    parked: Vec<Item>,
    partitions: BTreeMap<(HostId, HostId), ()>,
    links: BTreeMap<(HostId, HostId), LinkConfig>,
    link_rngs: BTreeMap<(HostId, HostId), Rng>,
    events: VecDeque<NetEvent>,
    faults: [u64; FaultKind::ALL.len()],
    stats: NetStats,
    trace: Trace,
}

impl fmt::Debug for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Net")
            .field("now", &self.now)
            .field("hosts", &self.hosts.len())
            .field("conns", &self.conns.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Net {
    /// An empty network. `seed` names the random streams of its links;
    /// `keep_trace` keeps the trace bytes (the hash is always computed).
    pub fn new(config: NetConfig, seed: u64, keep_trace: bool) -> Self {
        Net {
            config,
            seed,
            now: 0,
            down: false,
            registry_down: false,
            hosts: Vec::new(),
            names: BTreeMap::new(),
            listeners: Vec::new(),
            conns: Vec::new(),
            sockets: Vec::new(),
            dials: BTreeMap::new(),
            accepts: BTreeMap::new(),
            next_op: 0,
            queue: BTreeMap::new(),
            next_seq: 0,
            timers: BTreeMap::new(),
            parked: Vec::new(),
            partitions: BTreeMap::new(),
            links: BTreeMap::new(),
            link_rngs: BTreeMap::new(),
            events: VecDeque::new(),
            faults: [0; FaultKind::ALL.len()],
            stats: NetStats::default(),
            trace: Trace::new(keep_trace),
        }
    }

    // ------------------------------------------------------------ time

    /// Global virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    /// The time of the next scheduled item, if any.
    pub fn next_time(&self) -> Option<Instant> {
        self.queue
            .keys()
            .next()
            .map(|(t, _)| Instant::from_nanos(*t))
    }

    /// Runs the next scheduled item; false if nothing is scheduled.
    pub fn step(&mut self) -> bool {
        let Some(((t, _), item)) = self.queue.pop_first() else {
            return false;
        };
        self.now = self.now.max(t);
        self.stats.steps += 1;
        self.run(item);
        true
    }

    /// Runs every item scheduled up to `t`, then sets the clock to `t`.
    /// Events pile up in [`poll_event`](Self::poll_event).
    pub fn advance_to(&mut self, t: Instant) {
        while self.next_time().is_some_and(|n| n <= t) {
            self.step();
        }
        self.now = self.now.max(t.as_nanos());
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<NetEvent> {
        self.events.pop_front()
    }

    fn schedule(&mut self, at: u64, item: Item) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.insert((at, seq), item);
        seq
    }

    /// Fires [`NetEvent::Timer`] at global time `at`. A host's timer is
    /// dropped if the host goes down before then (a crash loses them).
    ///
    /// # Errors
    /// `UnknownId` if `host` is not one of this network's.
    pub fn set_timer(
        &mut self,
        host: Option<HostId>,
        at: Instant,
        token: u64,
    ) -> Result<TimerId, NetError> {
        let id = TimerId(self.next_seq);
        let host = match host {
            Some(h) => Some((h, self.host(h)?.incarnation)),
            None => None,
        };
        let at = at.as_nanos().max(self.now);
        let seq = self.schedule(at, Item::Timer { id, host, token });
        self.timers.insert(id, (at, seq));
        Ok(id)
    }

    /// Cancels a timer; harmless if it already fired.
    pub fn cancel_timer(&mut self, id: TimerId) {
        if let Some(key) = self.timers.remove(&id) {
            self.queue.remove(&key);
        }
    }

    /// A host's clock: global time shifted by its offset and drifting by
    /// its ppm.
    pub fn local_time(&self, host: HostId) -> Result<Instant, NetError> {
        let s = self.host(host)?.skew;
        Ok(Instant::from_nanos(local_of(s, self.now)))
    }

    /// The earliest global time at which `host`'s clock reads `local`.
    pub fn global_time(&self, host: HostId, local: Instant) -> Result<Instant, NetError> {
        let s = self.host(host)?.skew;
        let l = local.as_nanos();
        if l <= s.offset {
            return Ok(Instant::ZERO);
        }
        let mut g = ((u128::from(l - s.offset) * 1_000_000) / (1_000_000 + s.ppm as i128) as u128)
            .min(u128::from(u64::MAX)) as u64;
        // Integer division may land a nanosecond or two short.
        while local_of(s, g) < l && g < u64::MAX {
            g += 1;
        }
        Ok(Instant::from_nanos(g))
    }

    /// Sets a host's clock skew: it reads `offset` more than the global
    /// clock at time zero and drifts by `ppm` (clamped to ±100 000).
    pub fn set_skew(&mut self, host: HostId, offset: Duration, ppm: i32) -> Result<(), NetError> {
        self.host(host)?;
        let h = &mut self.hosts[host.0 as usize];
        h.skew = Skew {
            offset: offset.as_nanos().min(u128::from(u64::MAX / 4)) as u64,
            ppm: ppm.clamp(-100_000, 100_000),
        };
        self.fault(FaultKind::Skew, u64::from(host.0), ppm as u64);
        Ok(())
    }

    // ------------------------------------------------------------ registry and hosts

    /// Adds a host and announces it in the registry.
    pub fn add_host(&mut self, name: &str) -> Result<HostId, NetError> {
        if self.down {
            return Err(self.op_err(0, NetError::NetworkDown));
        }
        if self.registry_down {
            return Err(self.op_err(0, NetError::RegistryDown));
        }
        if self.names.contains_key(name) {
            return Err(self.op_err(0, NetError::HostDuplicate));
        }
        if self.hosts.len() >= self.config.max_hosts || name.is_empty() || name.contains(':') {
            return Err(self.op_err(0, NetError::InvalidAddress));
        }
        let id = HostId(self.hosts.len() as u32);
        self.hosts.push(Host {
            name: String::from(name),
            state: HostState::Up,
            incarnation: 0,
            ports: BTreeMap::new(),
            skew: Skew::default(),
        });
        self.names.insert(String::from(name), id);
        self.trace
            .record(tag::HOST_UP, self.now, &[u64::from(id.0)], name.as_bytes());
        Ok(id)
    }

    /// Looks a host up by name.
    pub fn query(&self, name: &str) -> Result<HostId, NetError> {
        if self.down {
            return Err(NetError::NetworkDown);
        }
        if self.registry_down {
            return Err(NetError::RegistryDown);
        }
        self.names.get(name).copied().ok_or(NetError::NoSuchHost)
    }

    /// A host's name.
    pub fn host_name(&self, host: HostId) -> Result<&str, NetError> {
        Ok(&self.host(host)?.name)
    }

    /// Hosts, in the order they joined.
    pub fn hosts(&self) -> impl Iterator<Item = HostId> {
        (0..self.hosts.len() as u32).map(HostId)
    }

    /// Whether the host is up (false for an unknown id).
    pub fn host_up(&self, host: HostId) -> bool {
        !self.down && self.host(host).is_ok_and(|h| h.state == HostState::Up)
    }

    /// Closes the registry: later `add_host`, `query` and `dial` by name fail
    /// with `RegistryDown`; existing connections are untouched.
    pub fn close_registry(&mut self) {
        self.registry_down = true;
    }

    /// `addr` as `name:port`.
    pub fn format_addr(&self, addr: Addr) -> Result<String, NetError> {
        Ok(alloc::format!(
            "{}:{}",
            self.host_name(addr.host)?,
            addr.port
        ))
    }

    /// Parses `name:port` through the registry.
    pub fn parse_addr(&self, s: &str) -> Result<Addr, NetError> {
        let (name, port) = s.rsplit_once(':').ok_or(NetError::InvalidAddress)?;
        let port: u16 = port.parse().map_err(|_| NetError::InvalidAddress)?;
        Ok(Addr {
            host: self.query(name)?,
            port,
        })
    }

    /// `host` if this network has it; ids are plain indices, so one from
    /// another network is only caught when it is out of this one's range.
    fn host(&self, host: HostId) -> Result<&Host, NetError> {
        self.hosts.get(host.0 as usize).ok_or(NetError::UnknownId)
    }

    fn conn(&self, c: ConnId) -> Result<&Conn, NetError> {
        self.conns.get(c.0 as usize).ok_or(NetError::UnknownId)
    }

    fn listener(&self, l: ListenerId) -> Result<&Listener, NetError> {
        self.listeners.get(l.0 as usize).ok_or(NetError::UnknownId)
    }

    fn socket(&self, s: SocketId) -> Result<&Socket, NetError> {
        self.sockets.get(s.0 as usize).ok_or(NetError::UnknownId)
    }

    /// Checks an id given by the caller; an unknown one is traced as `op`'s
    /// error.
    fn known<T>(&mut self, op: u64, r: Result<T, NetError>) -> Result<T, NetError> {
        r.map_err(|e| self.op_err(op, e))
    }

    fn host_err(&self, host: HostId) -> Option<NetError> {
        if self.down {
            Some(NetError::NetworkDown)
        } else if self.host(host).map_or(true, |h| h.state != HostState::Up) {
            Some(NetError::HostDown)
        } else {
            None
        }
    }

    fn op_err(&mut self, op: u64, e: NetError) -> NetError {
        self.trace
            .record(tag::OP_ERROR, self.now, &[op, u64::from(e.code())], b"");
        e
    }

    fn fault(&mut self, kind: FaultKind, a: u64, b: u64) {
        self.faults[kind as usize] += 1;
        self.trace
            .record(tag::FAULT, self.now, &[kind as u64, a, b], b"");
    }

    /// How often each fault fired, in [`FaultKind::ALL`] order.
    pub fn fault_counts(&self) -> [u64; FaultKind::ALL.len()] {
        self.faults
    }

    /// Counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The trace, for drivers that add their own records (cores, workload).
    pub fn trace_mut(&mut self) -> &mut Trace {
        &mut self.trace
    }

    /// Takes the trace out (the net keeps an empty hashing one).
    pub fn take_trace(&mut self) -> Trace {
        core::mem::replace(&mut self.trace, Trace::new(false))
    }

    // ------------------------------------------------------------ ports

    fn alloc_port(&mut self, host: HostId, want: u16) -> Result<u16, NetError> {
        let max = self.config.max_ports;
        let h = &mut self.hosts[host.0 as usize];
        if want != 0 {
            if want > max || h.ports.contains_key(&want) {
                return Err(NetError::AddressInUse);
            }
            return Ok(want);
        }
        // Lowest free port: the used ones are a sorted map.
        let mut p: u16 = 1;
        for &used in h.ports.keys() {
            if used != p {
                break;
            }
            if p == max {
                return Err(NetError::AddressInUse);
            }
            p += 1;
        }
        if p > max {
            return Err(NetError::AddressInUse);
        }
        Ok(p)
    }

    fn port_mut(&mut self, addr: Addr) -> &mut PortUse {
        self.hosts[addr.host.0 as usize]
            .ports
            .entry(addr.port)
            .or_default()
    }

    fn release_port(&mut self, addr: Addr, what: fn(&mut PortUse)) {
        let ports = &mut self.hosts[addr.host.0 as usize].ports;
        if let Some(u) = ports.get_mut(&addr.port) {
            what(u);
            if u.listener.is_none() && u.conns == 0 && u.socket.is_none() {
                ports.remove(&addr.port);
            }
        }
    }

    // ------------------------------------------------------------ listen / accept

    /// Listens on `laddr` (`host:port`, `:port` or empty for the host
    /// itself; port 0 picks the lowest free one).
    pub fn listen(&mut self, host: HostId, laddr: &str) -> Result<ListenerId, NetError> {
        let r = self.host(host).map(|_| ());
        self.known(1, r)?;
        if let Some(e) = self.host_err(host) {
            return Err(self.op_err(1, e));
        }
        let (name, port) = match laddr.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().map_err(|_| NetError::InvalidAddress)),
            None if laddr.is_empty() => ("", Ok(0)),
            None => ("", Err(NetError::InvalidAddress)),
        };
        let port = port.map_err(|e| self.op_err(1, e))?;
        if !name.is_empty() && name != self.hosts[host.0 as usize].name {
            return Err(self.op_err(1, NetError::AddressNotListening));
        }
        let port = self.alloc_port(host, port).map_err(|e| self.op_err(1, e))?;
        let id = ListenerId(self.listeners.len() as u32);
        let addr = Addr { host, port };
        self.port_mut(addr).listener = Some(id);
        self.listeners.push(Listener {
            addr,
            open: true,
            backlog: VecDeque::new(),
            waiting: VecDeque::new(),
        });
        self.trace.record(
            tag::LISTEN,
            self.now,
            &[u64::from(host.0), u64::from(port), u64::from(id.0)],
            b"",
        );
        Ok(id)
    }

    /// The address a listener listens on.
    pub fn listener_addr(&self, l: ListenerId) -> Result<Addr, NetError> {
        Ok(self.listener(l)?.addr)
    }

    fn listener_err(&self, l: ListenerId) -> Option<NetError> {
        let Ok(li) = self.listener(l) else {
            return Some(NetError::UnknownId);
        };
        self.host_err(li.addr.host)
            .or((!li.open).then_some(NetError::SocketDown))
    }

    /// Takes a queued connection, or registers a waiting accept.
    pub fn accept(&mut self, l: ListenerId) -> Result<Accept, NetError> {
        if let Some(e) = self.listener_err(l) {
            return Err(self.op_err(2, e));
        }
        let li = &mut self.listeners[l.0 as usize];
        if let Some(c) = li.backlog.pop_front() {
            self.conns[c.0 as usize].established = true;
            self.deliver_ready(c);
            return Ok(Accept::Ready(c));
        }
        let op = self.new_op();
        self.listeners[l.0 as usize].waiting.push_back(op);
        self.accepts.insert(op, l);
        Ok(Accept::Pending(op))
    }

    fn new_op(&mut self) -> OpId {
        self.next_op += 1;
        OpId(self.next_op)
    }

    /// Closes a listener: waiting accepts fail with `SocketDown`, queued
    /// connections are reset.
    pub fn close_listener(&mut self, l: ListenerId) -> Result<(), NetError> {
        if let Some(e) = self.listener_err(l) {
            return Err(self.op_err(3, e));
        }
        self.trace
            .record(tag::CLOSE, self.now, &[1, u64::from(l.0)], b"");
        self.shut_listener(l, NetError::SocketDown, true);
        Ok(())
    }

    fn shut_listener(&mut self, l: ListenerId, err: NetError, notify: bool) {
        let li = &mut self.listeners[l.0 as usize];
        li.open = false;
        let waiting: Vec<OpId> = li.waiting.drain(..).collect();
        let backlog: Vec<ConnId> = li.backlog.drain(..).collect();
        let addr = li.addr;
        for op in waiting {
            self.accepts.remove(&op);
            if notify {
                self.complete(NetEvent::Accepted {
                    op,
                    result: Err(err),
                });
            }
        }
        for c in backlog {
            if notify {
                self.abort_conn(c, true);
            } else {
                // A crash: the queued connection just vanishes.
                self.drop_socket(c);
            }
        }
        self.release_port(addr, |u| u.listener = None);
    }

    fn complete(&mut self, ev: NetEvent) {
        let (op, v, ok) = match &ev {
            NetEvent::Dialed { op, result } | NetEvent::Accepted { op, result } => match result {
                Ok(c) => (op.0, u64::from(c.0), 1),
                Err(e) => (op.0, u64::from(e.code()), 0),
            },
            _ => (0, 0, 0),
        };
        self.trace.record(tag::OP_DONE, self.now, &[op, v, ok], b"");
        self.events.push_back(ev);
    }

    // ------------------------------------------------------------ dial

    fn link(&self, from: HostId, to: HostId) -> &LinkConfig {
        self.links.get(&(from, to)).unwrap_or(&self.config.link)
    }

    /// Overrides the link from `from` to `to` (one direction).
    pub fn set_link(&mut self, from: HostId, to: HostId, link: LinkConfig) -> Result<(), NetError> {
        self.host(from)?;
        self.host(to)?;
        self.links.insert((from, to), link);
        Ok(())
    }

    /// Sets the default link for every pair without an override.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.config.link = link;
    }

    fn link_rng(&mut self, from: HostId, to: HostId) -> &mut Rng {
        let seed = self.seed;
        let (a, b) = (
            self.hosts[from.0 as usize].name.as_bytes(),
            self.hosts[to.0 as usize].name.as_bytes(),
        );
        // Keyed by names, so a new host leaves every other link's draws alone.
        self.link_rngs
            .entry((from, to))
            .or_insert_with(|| Rng::stream(seed, &[b"link", a, b]))
    }

    fn latency(&mut self, from: HostId, to: HostId) -> u64 {
        let (lo, hi) = self.link(from, to).latency;
        let (lo, hi) = (dur_ns(lo), dur_ns(hi));
        self.link_rng(from, to).range(lo, hi)
    }

    /// Dials `raddr` (`name:port`) from `host`. Completes with
    /// [`NetEvent::Dialed`] after a round trip.
    pub fn dial(&mut self, host: HostId, raddr: &str) -> Result<OpId, NetError> {
        let r = self.host(host).map(|_| ());
        self.known(4, r)?;
        if let Some(e) = self.host_err(host) {
            return Err(self.op_err(4, e));
        }
        let to = self.parse_addr(raddr).map_err(|e| self.op_err(4, e))?;
        self.dial_addr(host, to)
    }

    /// Like [`dial`](Self::dial), by address (no registry lookup).
    pub fn dial_addr(&mut self, host: HostId, to: Addr) -> Result<OpId, NetError> {
        let r = self.host(host).map(|_| ());
        self.known(4, r)?;
        if let Some(e) = self.host_err(host) {
            return Err(self.op_err(4, e));
        }
        if to.host.0 as usize >= self.hosts.len() {
            return Err(self.op_err(4, NetError::NoSuchHost));
        }
        let local_port = self.alloc_port(host, 0).map_err(|e| self.op_err(4, e))?;
        // The port is taken now, so the acceptor sees the exact address.
        self.port_mut(Addr {
            host,
            port: local_port,
        })
        .conns += 1;
        let op = self.new_op();
        self.dials.insert(
            op,
            Dial {
                from: host,
                incarnation: self.hosts[host.0 as usize].incarnation,
                local_port,
            },
        );
        self.trace.record(
            tag::DIAL,
            self.now,
            &[
                op.0,
                u64::from(host.0),
                u64::from(to.host.0),
                u64::from(to.port),
            ],
            b"",
        );
        let at = self.now + self.latency(host, to.host);
        self.schedule(at, Item::Syn { op, from: host, to });
        Ok(op)
    }

    fn fail_dial(&mut self, op: OpId, err: NetError) {
        self.fail_dial_port(op, err, true);
    }

    fn fail_dial_port(&mut self, op: OpId, err: NetError, release: bool) {
        if let Some(d) = self.dials.remove(&op) {
            if release && self.hosts[d.from.0 as usize].incarnation == d.incarnation {
                self.release_port(
                    Addr {
                        host: d.from,
                        port: d.local_port,
                    },
                    |u| u.conns -= 1,
                );
            }
            self.complete(NetEvent::Dialed {
                op,
                result: Err(err),
            });
        }
    }

    // ------------------------------------------------------------ connections

    /// The connection's own address.
    pub fn local_addr(&self, c: ConnId) -> Result<Addr, NetError> {
        Ok(self.conn(c)?.local)
    }

    /// The peer's address.
    pub fn remote_addr(&self, c: ConnId) -> Result<Addr, NetError> {
        Ok(self.conn(c)?.remote)
    }

    fn conn_err(&self, c: ConnId) -> Option<NetError> {
        let Ok(k) = self.conn(c) else {
            return Some(NetError::UnknownId);
        };
        if self.down {
            return Some(NetError::NetworkDown);
        }
        let h = &self.hosts[k.local.host.0 as usize];
        if h.state != HostState::Up || h.incarnation != k.incarnation {
            return Some(NetError::HostDown);
        }
        if !k.open {
            return Some(NetError::SocketDown);
        }
        None
    }

    /// Sends bytes on a connection (they arrive in order, possibly
    /// re-chunked, unless the connection is reset).
    pub fn send(&mut self, c: ConnId, data: &[u8]) -> Result<(), NetError> {
        if let Some(e) = self.conn_err(c) {
            return Err(self.op_err(5, e));
        }
        let k = &self.conns[c.0 as usize];
        if k.reset {
            return Err(self.op_err(5, NetError::ConnectionReset));
        }
        if k.write_shut {
            return Err(self.op_err(5, NetError::SocketDown));
        }
        if data.is_empty() {
            return Ok(());
        }
        self.send_segment(c, SegKind::Data(data.to_vec()));
        Ok(())
    }

    fn send_segment(&mut self, c: ConnId, kind: SegKind) {
        let (from, to_host, peer) = {
            let k = &self.conns[c.0 as usize];
            (k.local.host, k.remote.host, k.peer)
        };
        let len = match &kind {
            SegKind::Data(d) => d.len() as u64,
            SegKind::Fin => 0,
        };
        let mut start = self.now;
        if let Some(bw) = self.link(from, to_host).bandwidth.filter(|b| *b > 0) {
            let k = &mut self.conns[c.0 as usize];
            if k.busy_until > start {
                start = k.busy_until;
            }
            let tx = ((u128::from(len) * 1_000_000_000) / u128::from(bw)) as u64;
            k.busy_until = start.saturating_add(tx);
            if k.busy_until > self.now {
                self.faults[FaultKind::Bandwidth as usize] += 1;
            }
            start = k.busy_until;
        }
        let k = &mut self.conns[c.0 as usize];
        let seq = k.tx_seq;
        k.tx_seq += 1;
        self.stats.segments += 1;
        let at = start.saturating_add(self.latency(from, to_host));
        self.schedule(
            at,
            Item::Segment {
                from,
                to: peer,
                seq,
                kind,
            },
        );
    }

    /// Ends our side of the stream after what was sent (TCP FIN).
    pub fn shutdown_write(&mut self, c: ConnId) -> Result<(), NetError> {
        if let Some(e) = self.conn_err(c) {
            return Err(self.op_err(6, e));
        }
        let k = &mut self.conns[c.0 as usize];
        if k.write_shut || k.reset {
            return Ok(());
        }
        k.write_shut = true;
        self.send_segment(c, SegKind::Fin);
        Ok(())
    }

    /// Closes the socket: FIN to the peer if not sent yet; anything that
    /// arrives later is answered with a reset.
    pub fn close(&mut self, c: ConnId) -> Result<(), NetError> {
        if let Some(e) = self.conn_err(c) {
            return Err(self.op_err(7, e));
        }
        self.trace
            .record(tag::CLOSE, self.now, &[0, u64::from(c.0)], b"");
        let _ = self.shutdown_write(c);
        self.drop_socket(c);
        Ok(())
    }

    /// Aborts the connection: the peer gets a reset and loses what is in
    /// flight.
    pub fn reset(&mut self, c: ConnId) -> Result<(), NetError> {
        if let Some(e) = self.conn_err(c) {
            return Err(self.op_err(8, e));
        }
        self.trace
            .record(tag::CLOSE, self.now, &[3, u64::from(c.0)], b"");
        self.abort_conn(c, true);
        Ok(())
    }

    fn drop_socket(&mut self, c: ConnId) {
        let k = &mut self.conns[c.0 as usize];
        if !k.open {
            return;
        }
        k.open = false;
        let (local, inc) = (k.local, k.incarnation);
        if self.hosts[local.host.0 as usize].incarnation == inc {
            self.release_port(local, |u| u.conns -= 1);
        }
    }

    /// Drops our socket and, if `rst`, sends a reset to the peer.
    fn abort_conn(&mut self, c: ConnId, rst: bool) {
        let k = &self.conns[c.0 as usize];
        let (from, to_host, peer, reset) = (k.local.host, k.remote.host, k.peer, k.reset);
        if rst && !reset {
            let at = self.now + self.latency(from, to_host);
            self.schedule(at, Item::Rst { from, to: peer });
        }
        self.conns[c.0 as usize].reset = true;
        self.drop_socket(c);
    }

    /// Holds everything arriving at `c` until [`release`](Self::release).
    pub fn hold(&mut self, c: ConnId) -> Result<(), NetError> {
        if !self.conn(c)?.held {
            self.conns[c.0 as usize].held = true;
            self.fault(FaultKind::Hold, u64::from(c.0), 0);
        }
        Ok(())
    }

    /// Delivers what was held at `c`.
    pub fn release(&mut self, c: ConnId) -> Result<(), NetError> {
        if self.conn(c)?.held {
            self.conns[c.0 as usize].held = false;
            self.fault(FaultKind::Release, u64::from(c.0), 0);
            self.unpark();
        }
        Ok(())
    }

    /// The network resets a connection: both ends see [`NetEvent::Reset`]
    /// and lose what is in flight.
    pub fn inject_reset(&mut self, c: ConnId) -> Result<(), NetError> {
        let peer = self.conn(c)?.peer;
        self.fault(FaultKind::Reset, u64::from(c.0), u64::from(peer.0));
        for x in [c, peer] {
            let k = &self.conns[x.0 as usize];
            if k.open && !k.reset {
                let from = k.remote.host;
                self.schedule(self.now, Item::Rst { from, to: x });
            }
        }
        Ok(())
    }

    /// One end's transport is closed under its owner (as if its process
    /// closed the socket): the peer sees FIN, then resets for anything it
    /// sends. Returns whether the connection was open.
    pub fn inject_fin(&mut self, c: ConnId) -> Result<bool, NetError> {
        if self.conn(c)?.reset || self.conn_err(c).is_some() {
            return Ok(false);
        }
        self.fault(FaultKind::Fin, u64::from(c.0), 0);
        let _ = self.shutdown_write(c);
        self.drop_socket(c);
        Ok(true)
    }

    // ------------------------------------------------------------ partitions

    /// Cuts `from -> to` (and `to -> from` if `both`). Stream segments and
    /// dials wait at the cut (as TCP retransmits); datagrams are lost.
    pub fn partition(&mut self, from: HostId, to: HostId, both: bool) -> Result<(), NetError> {
        self.host(from)?;
        self.host(to)?;
        self.partitions.insert((from, to), ());
        if both {
            self.partitions.insert((to, from), ());
        }
        let kind = if both {
            FaultKind::PartitionTwoWay
        } else {
            FaultKind::PartitionOneWay
        };
        self.fault(kind, u64::from(from.0), u64::from(to.0));
        Ok(())
    }

    /// Heals every partition and delivers what waited.
    pub fn heal(&mut self) {
        if !self.partitions.is_empty() {
            self.partitions.clear();
            self.fault(FaultKind::Heal, 0, 0);
        }
        self.unpark();
    }

    /// Releases every hold and heals every partition.
    pub fn heal_all(&mut self) {
        for i in 0..self.conns.len() {
            if self.conns[i].held {
                self.conns[i].held = false;
                self.fault(FaultKind::Release, i as u64, 0);
            }
        }
        self.heal();
    }

    fn cut(&self, from: HostId, to: HostId) -> bool {
        self.partitions.contains_key(&(from, to))
    }

    fn unpark(&mut self) {
        let parked = core::mem::take(&mut self.parked);
        for item in parked {
            // A fresh trip: the retransmission after the cut heals.
            let at = match item.route() {
                Some((a, b)) => self.now + self.latency(a, b),
                None => {
                    let (a, b) = match &item {
                        Item::Segment { from, to, .. } | Item::Rst { from, to } => {
                            (*from, self.conns[to.0 as usize].local.host)
                        }
                        _ => unreachable!("only link items are parked"),
                    };
                    self.now + self.latency(a, b)
                }
            };
            self.schedule(at, item);
        }
    }

    // ------------------------------------------------------------ hosts going down

    /// Closes a host: its pending operations fail with `HostDown`, its
    /// connections report [`NetEvent::Down`] and their peers are reset.
    /// A closed host stays down.
    pub fn close_host(&mut self, host: HostId) -> Result<(), NetError> {
        let r = self.host(host).map(|_| ());
        self.known(9, r)?;
        if let Some(e) = self.host_err(host) {
            return Err(self.op_err(9, e));
        }
        self.trace
            .record(tag::HOST_DOWN, self.now, &[u64::from(host.0), 0], b"");
        self.take_down(host, true, NetError::HostDown);
        self.hosts[host.0 as usize].state = HostState::Closed;
        Ok(())
    }

    /// Crashes a host: everything on it vanishes without a word (no events,
    /// no resets, timers lost); what arrives while it is down is dropped.
    pub fn crash(&mut self, host: HostId) -> Result<(), NetError> {
        if self.host(host)?.state != HostState::Up || self.down {
            return Ok(());
        }
        self.fault(FaultKind::Crash, u64::from(host.0), 0);
        self.take_down(host, false, NetError::HostDown);
        self.hosts[host.0 as usize].state = HostState::Crashed;
        Ok(())
    }

    /// Restarts a crashed host with no sockets; segments for its old
    /// connections are answered with resets.
    pub fn restart(&mut self, host: HostId) -> Result<bool, NetError> {
        self.host(host)?;
        let h = &mut self.hosts[host.0 as usize];
        if self.down || h.state != HostState::Crashed {
            return Ok(false);
        }
        h.state = HostState::Up;
        h.incarnation += 1;
        h.ports.clear();
        self.fault(FaultKind::Restart, u64::from(host.0), 0);
        Ok(true)
    }

    fn take_down(&mut self, host: HostId, notify: bool, err: NetError) {
        for i in 0..self.listeners.len() {
            let l = ListenerId(i as u32);
            if self.listeners[i].addr.host == host && self.listeners[i].open {
                self.shut_listener(l, err, notify);
            }
        }
        let dials: Vec<OpId> = self
            .dials
            .iter()
            .filter(|(_, d)| d.from == host)
            .map(|(op, _)| *op)
            .collect();
        for op in dials {
            if notify {
                self.fail_dial(op, err);
            } else {
                self.dials.remove(&op);
            }
        }
        let inc = self.hosts[host.0 as usize].incarnation;
        for i in 0..self.conns.len() {
            let c = ConnId(i as u32);
            let k = &self.conns[i];
            if k.local.host != host || k.incarnation != inc || !k.open {
                continue;
            }
            let visible = k.established && !k.reset;
            if notify {
                self.abort_conn(c, true);
            } else {
                // A crash says nothing: the socket is just gone, and the
                // restarted host answers the peer's next segment with a reset.
                self.drop_socket(c);
            }
            if notify && visible {
                self.events.push_back(NetEvent::Down { conn: c, err });
            }
        }
        for i in 0..self.sockets.len() {
            if self.sockets[i].addr.host == host {
                self.sockets[i].open = false;
            }
        }
        self.hosts[host.0 as usize].ports.clear();
    }

    /// Shuts the whole network down: every pending operation fails and
    /// every connection reports `Down` with `NetworkDown`; nothing more is
    /// delivered. Timers still fire.
    pub fn shutdown(&mut self) {
        if self.down {
            return;
        }
        self.trace
            .record(tag::HOST_DOWN, self.now, &[u64::MAX, 0], b"");
        let ops: Vec<OpId> = self.dials.keys().copied().collect();
        for op in ops {
            self.fail_dial(op, NetError::NetworkDown);
        }
        for i in 0..self.listeners.len() {
            if self.listeners[i].open {
                self.shut_listener(ListenerId(i as u32), NetError::NetworkDown, true);
            }
        }
        for i in 0..self.conns.len() {
            let k = &self.conns[i];
            let host_ok = self.hosts[k.local.host.0 as usize].state == HostState::Up
                && self.hosts[k.local.host.0 as usize].incarnation == k.incarnation;
            if k.open && k.established && !k.reset && host_ok {
                self.events.push_back(NetEvent::Down {
                    conn: ConnId(i as u32),
                    err: NetError::NetworkDown,
                });
            }
            self.conns[i].open = false;
        }
        self.down = true;
        self.parked.clear();
        self.queue
            .retain(|_, item| matches!(item, Item::Timer { .. }));
    }

    // ------------------------------------------------------------ datagrams

    /// Binds a datagram socket (`port` 0 picks one).
    pub fn bind(&mut self, host: HostId, port: u16) -> Result<SocketId, NetError> {
        let r = self.host(host).map(|_| ());
        self.known(10, r)?;
        if let Some(e) = self.host_err(host) {
            return Err(self.op_err(10, e));
        }
        let port = self
            .alloc_port(host, port)
            .map_err(|e| self.op_err(10, e))?;
        let id = SocketId(self.sockets.len() as u32);
        let addr = Addr { host, port };
        self.port_mut(addr).socket = Some(id);
        self.sockets.push(Socket { addr, open: true });
        Ok(id)
    }

    /// The socket's address.
    pub fn socket_addr(&self, s: SocketId) -> Result<Addr, NetError> {
        Ok(self.socket(s)?.addr)
    }

    /// Closes a datagram socket.
    pub fn close_socket(&mut self, s: SocketId) -> Result<(), NetError> {
        let r = self.socket(s).map(|k| k.addr);
        let addr = self.known(11, r)?;
        if let Some(e) = self.host_err(addr.host) {
            return Err(self.op_err(11, e));
        }
        if !self.sockets[s.0 as usize].open {
            return Err(self.op_err(11, NetError::SocketDown));
        }
        self.sockets[s.0 as usize].open = false;
        self.release_port(addr, |u| u.socket = None);
        Ok(())
    }

    /// Sends a datagram; the link may lose, duplicate, delay, corrupt it or
    /// drop it for size. Nothing listening at `to`: silently dropped.
    pub fn send_to(&mut self, s: SocketId, to: Addr, data: &[u8]) -> Result<(), NetError> {
        let r = self.socket(s).map(|k| k.addr);
        let from = self.known(12, r)?;
        if let Some(e) = self.host_err(from.host) {
            return Err(self.op_err(12, e));
        }
        if !self.sockets[s.0 as usize].open {
            return Err(self.op_err(12, NetError::SocketDown));
        }
        if to.host.0 as usize >= self.hosts.len() {
            return Err(self.op_err(12, NetError::NoSuchHost));
        }
        let link = self.link(from.host, to.host).clone();
        if data.len() > link.mtu {
            self.fault(FaultKind::MtuDrop, u64::from(s.0), data.len() as u64);
            return Ok(());
        }
        let rng = self.link_rng(from.host, to.host);
        let lost = rng.chance(link.loss_ppm);
        let dup = rng.chance(link.duplicate_ppm);
        let reorder = rng.chance(link.reorder_ppm);
        let corrupt = rng.chance(link.corrupt_ppm) && !data.is_empty();
        let bit = rng.range(0, (data.len() as u64 * 8).max(1) - 1);
        let extra = rng.range(0, dur_ns(link.reorder_delay));
        if lost {
            self.fault(FaultKind::Loss, u64::from(s.0), 0);
            return Ok(());
        }
        let mut data = data.to_vec();
        if corrupt {
            data[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.fault(FaultKind::Corrupt, u64::from(s.0), bit);
        }
        let mut at = self.now + self.latency(from.host, to.host);
        if reorder {
            at += extra;
            self.fault(FaultKind::Reorder, u64::from(s.0), extra);
        }
        let copies = if dup {
            self.fault(FaultKind::Duplicate, u64::from(s.0), 0);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at2 = at + self.latency(from.host, to.host) * u64::from(dup);
            self.schedule(
                at2,
                Item::Datagram {
                    from,
                    to,
                    data: data.clone(),
                },
            );
        }
        Ok(())
    }

    // ------------------------------------------------------------ running items

    fn run(&mut self, item: Item) {
        if let Item::Timer { id, host, token } = item {
            self.timers.remove(&id);
            if let Some((h, inc)) = host {
                let hs = &self.hosts[h.0 as usize];
                if hs.state != HostState::Up || hs.incarnation != inc {
                    return;
                }
            }
            let hv = host.map_or(u64::MAX, |(h, _)| u64::from(h.0));
            self.trace.record(tag::TIMER, self.now, &[hv, token], b"");
            self.events.push_back(NetEvent::Timer {
                host: host.map(|(h, _)| h),
                token,
            });
            return;
        }
        if self.down {
            return;
        }
        // Cuts and holds make link items wait, not vanish (datagrams do vanish).
        let route = match &item {
            Item::Segment { from, to, .. } | Item::Rst { from, to } => {
                let k = &self.conns[to.0 as usize];
                if k.held {
                    self.park(item);
                    return;
                }
                Some((*from, k.local.host))
            }
            other => other.route(),
        };
        if let Some((a, b)) = route {
            if self.cut(a, b) {
                if matches!(item, Item::Datagram { .. }) {
                    self.fault(FaultKind::Loss, u64::from(a.0), u64::from(b.0));
                } else {
                    self.park(item);
                }
                return;
            }
        }
        match item {
            Item::Segment { to, seq, kind, .. } => self.arrive_segment(to, seq, kind),
            Item::Rst { to, .. } => self.arrive_rst(to),
            Item::Syn { op, from, to } => self.arrive_syn(op, from, to),
            Item::SynAck {
                op, server, client, ..
            } => self.arrive_synack(op, server, client),
            Item::DialFail { op, err, .. } => self.fail_dial(op, err),
            Item::Datagram { from, to, data } => self.arrive_datagram(from, to, data),
            Item::Timer { .. } => unreachable!("handled above"),
        }
    }

    fn park(&mut self, item: Item) {
        self.faults[FaultKind::Parked as usize] += 1;
        self.parked.push(item);
    }

    /// Whether segments for `c` reach a live socket; if its host restarted
    /// or the owner closed it, the sender gets a reset.
    fn receiver_alive(&mut self, c: ConnId, reply_rst: bool) -> bool {
        let k = &self.conns[c.0 as usize];
        let h = &self.hosts[k.local.host.0 as usize];
        if h.state != HostState::Up {
            return false; // a dead host says nothing
        }
        if h.incarnation == k.incarnation && k.open && !k.reset {
            return true;
        }
        if reply_rst && !k.reset {
            let (from, to, peer) = (k.local.host, k.remote.host, k.peer);
            self.conns[c.0 as usize].reset = true;
            let at = self.now + self.latency(from, to);
            self.schedule(at, Item::Rst { from, to: peer });
        }
        false
    }

    fn arrive_segment(&mut self, c: ConnId, seq: u64, kind: SegKind) {
        if !self.receiver_alive(c, true) {
            return;
        }
        let k = &mut self.conns[c.0 as usize];
        if seq >= k.rx_next {
            k.rx_ooo.insert(seq, kind);
        }
        if k.established {
            self.deliver_ready(c);
        }
    }

    fn deliver_ready(&mut self, c: ConnId) {
        let mut ready = Vec::new();
        let mut fin = false;
        let k = &mut self.conns[c.0 as usize];
        while let Some(kind) = k.rx_ooo.remove(&k.rx_next) {
            k.rx_next += 1;
            match kind {
                SegKind::Data(d) => ready.extend_from_slice(&d),
                SegKind::Fin => {
                    fin = true;
                    break;
                }
            }
        }
        let (from, to) = (k.remote.host, k.local.host);
        if !ready.is_empty() {
            let max = self.link(from, to).max_chunk;
            self.stats.bytes_delivered += ready.len() as u64;
            let mut rest = &ready[..];
            let mut pieces = 0u64;
            while !rest.is_empty() {
                let n = if max == 0 {
                    rest.len()
                } else {
                    let cap = rest.len().min(max) as u64;
                    self.link_rng(from, to).range(1, cap) as usize
                };
                self.trace
                    .record(tag::DELIVER, self.now, &[u64::from(c.0)], &rest[..n]);
                self.events.push_back(NetEvent::Data {
                    conn: c,
                    data: rest[..n].to_vec(),
                });
                rest = &rest[n..];
                pieces += 1;
            }
            if pieces > 1 {
                self.faults[FaultKind::Rechunk as usize] += 1;
            }
        }
        if fin {
            self.trace
                .record(tag::FIN, self.now, &[u64::from(c.0)], b"");
            self.events.push_back(NetEvent::Fin(c));
        }
    }

    fn arrive_rst(&mut self, c: ConnId) {
        if !self.receiver_alive(c, false) {
            return;
        }
        let k = &mut self.conns[c.0 as usize];
        k.reset = true;
        k.rx_ooo.clear();
        let visible = k.established;
        self.trace
            .record(tag::RST, self.now, &[u64::from(c.0)], b"");
        self.drop_socket(c);
        if visible {
            self.events.push_back(NetEvent::Reset(c));
        }
    }

    fn arrive_syn(&mut self, op: OpId, from: HostId, to: Addr) {
        let Some(d) = self.dials.get(&op) else {
            return;
        };
        let local_port = d.local_port;
        let incarnation = d.incarnation;
        let refuse = |net: &mut Net, err| {
            let at = net.now + net.latency(to.host, from);
            net.schedule(
                at,
                Item::DialFail {
                    op,
                    from: to.host,
                    to: from,
                    err,
                },
            );
        };
        if self.hosts[to.host.0 as usize].state != HostState::Up {
            refuse(self, NetError::ConnectionRefused);
            return;
        }
        let lid = self.hosts[to.host.0 as usize]
            .ports
            .get(&to.port)
            .and_then(|u| u.listener);
        let Some(lid) = lid.filter(|l| self.listeners[l.0 as usize].open) else {
            refuse(self, NetError::ConnectionRefused);
            return;
        };
        let li = &self.listeners[lid.0 as usize];
        if li.waiting.is_empty() && li.backlog.len() >= self.config.backlog {
            refuse(self, NetError::ConnectionRefused);
            return;
        }
        let server = ConnId(self.conns.len() as u32);
        let client = ConnId(server.0 + 1);
        let caddr = Addr {
            host: from,
            port: local_port,
        };
        let new = |local: Addr, remote: Addr, peer: ConnId, inc: u32| Conn {
            local,
            remote,
            peer,
            incarnation: inc,
            established: false,
            open: true,
            write_shut: false,
            reset: false,
            held: false,
            tx_seq: 0,
            rx_next: 0,
            rx_ooo: BTreeMap::new(),
            busy_until: 0,
        };
        let sinc = self.hosts[to.host.0 as usize].incarnation;
        self.conns.push(new(to, caddr, client, sinc));
        self.conns.push(new(caddr, to, server, incarnation));
        self.port_mut(to).conns += 1;
        let li = &mut self.listeners[lid.0 as usize];
        if let Some(aop) = li.waiting.pop_front() {
            self.accepts.remove(&aop);
            self.conns[server.0 as usize].established = true;
            self.complete(NetEvent::Accepted {
                op: aop,
                result: Ok(server),
            });
        } else {
            li.backlog.push_back(server);
            self.events.push_back(NetEvent::Incoming(lid));
        }
        let at = self.now + self.latency(to.host, from);
        self.schedule(
            at,
            Item::SynAck {
                op,
                from: to.host,
                to: from,
                server,
                client,
            },
        );
    }

    fn arrive_synack(&mut self, op: OpId, server: ConnId, client: ConnId) {
        if self.dials.remove(&op).is_none() {
            // The dialer gave up (its host went down): the acceptor's end is reset.
            self.conns[client.0 as usize].open = false;
            self.receiver_alive(client, true);
            return;
        }
        if self.conns[client.0 as usize].reset {
            // Reset before the handshake finished (its listener closed with
            // it queued): the socket already gave its port back.
            self.dials.insert(
                op,
                Dial {
                    from: self.conns[client.0 as usize].local.host,
                    incarnation: 0,
                    local_port: 0,
                },
            );
            self.fail_dial_port(op, NetError::ConnectionRefused, false);
            return;
        }
        self.stats.connections += 1;
        let k = &mut self.conns[client.0 as usize];
        k.established = true;
        let (l, r) = (k.local, k.remote);
        self.trace.record(
            tag::CONNECTED,
            self.now,
            &[
                u64::from(client.0),
                u64::from(server.0),
                u64::from(l.port),
                u64::from(r.port),
            ],
            b"",
        );
        self.complete(NetEvent::Dialed {
            op,
            result: Ok(client),
        });
        self.deliver_ready(client);
    }

    fn arrive_datagram(&mut self, from: Addr, to: Addr, data: Vec<u8>) {
        let h = &self.hosts[to.host.0 as usize];
        if h.state != HostState::Up {
            return;
        }
        let Some(s) = h.ports.get(&to.port).and_then(|u| u.socket) else {
            return;
        };
        if !self.sockets[s.0 as usize].open {
            return;
        }
        self.stats.datagrams_delivered += 1;
        self.trace.record(
            tag::DATAGRAM,
            self.now,
            &[u64::from(s.0), u64::from(from.host.0), u64::from(from.port)],
            &data,
        );
        self.events.push_back(NetEvent::Datagram {
            socket: s,
            from,
            data,
        });
    }
}

pub(crate) fn dur_ns_pub(d: Duration) -> u64 {
    dur_ns(d)
}

fn dur_ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

fn local_of(s: Skew, g: u64) -> u64 {
    let drift = (i128::from(g) * i128::from(s.ppm)) / 1_000_000;
    let l = i128::from(g) + drift + i128::from(s.offset);
    l.clamp(0, i128::from(u64::MAX)) as u64
}
