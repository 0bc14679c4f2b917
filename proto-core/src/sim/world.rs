//! The standard scenario: hosts that listen, dial each other and run echo
//! streams over any [`SimCore`], under swarm-chosen faults, with a chaos
//! phase, a heal, and a liveness deadline; every run checks the
//! invariants and hands back a trace hash.
//!
//! Streams carry self-describing content: 8 bytes of stream uid, 8 bytes
//! of length, then a pattern derived from the uid. The acceptor checks each
//! byte as it arrives and echoes it; the dialer checks the echo. So both
//! ends check "received is a prefix of sent" without the simulator knowing
//! any protocol.

use super::core::{CmdError, CoreEvent, ReadOutcome, Role, SimCore, StreamId};
use super::driver::{Command, Input, Traced};
use super::net::{
    Accept, ConnId, FaultKind, HostId, LinkConfig, ListenerId, Net, NetConfig, NetEvent, OpId,
    SocketId, TimerId,
};
use super::network::Network;
use super::rng::{label_hash, Rng};
use super::trace::tag;
use crate::budget::MemoryBudget;
use crate::time::{Duration, Instant};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The port every host's cores listen on.
pub const STREAM_PORT: u16 = 7;
/// The port every host's datagram socket binds.
pub const DATAGRAM_PORT: u16 = 9;
/// Size of the stream header (uid, length).
const HEADER: usize = 16;

/// One run's configuration. [`Swarm::from_seed`] picks which faults are on
/// and how often (swarm testing); `Display` prints all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swarm {
    /// The seed every random stream derives from.
    pub seed: u64,
    /// Hosts, named `h0`, `h1`, ...
    pub hosts: usize,
    /// Connections each host keeps dialed to others during chaos.
    pub conns_per_host: usize,
    /// Length of the chaos phase (faults and new streams).
    pub chaos: Duration,
    /// After the heal, everything must finish or fail within this.
    pub liveness: Duration,
    /// Mean time between workload ticks.
    pub tick: Duration,
    /// Largest stream (bytes, at least the 16-byte header).
    pub max_stream: u64,
    /// Stream link latency range.
    pub latency: (Duration, Duration),
    /// Bandwidth per direction, if limited.
    pub bandwidth: Option<u64>,
    /// Re-chunking of deliveries (0 = off).
    pub max_chunk: usize,
    /// Mean time between injected faults; `None` = no injected faults.
    pub fault_every: Option<Duration>,
    /// Longest partition, hold or crash.
    pub fault_len: Duration,
    /// Injected faults that are on.
    pub partition_one_way: bool,
    /// Two-way partitions on.
    pub partition_two_way: bool,
    /// Holds on.
    pub hold: bool,
    /// Network resets on.
    pub reset: bool,
    /// Transport closed under a core on.
    pub fin: bool,
    /// Host crashes (and restarts) on.
    pub crash: bool,
    /// Per-host clock skew on.
    pub skew: bool,
    /// Datagram link faults (per million): loss, duplicate, reorder, corrupt.
    pub datagram_ppm: [u32; 4],
    /// Datagram MTU (sizes go up to 1600, so a small MTU drops some).
    pub mtu: usize,
    /// The greedy peer: a host of its own that connects once during chaos,
    /// opens flows and writes into them, never reads any, and sends PINGs
    /// every this often. `None` = off.
    pub greedy: Option<Duration>,
    /// The limit in bytes of the memory budget every core shares (for
    /// cores that take one, see [`run_budgeted`]). Drawn with the greedy
    /// peer, whose point is to push it into pressure.
    pub budget: Option<usize>,
}

impl Swarm {
    /// No faults at all: a baseline.
    pub fn calm(seed: u64, hosts: usize) -> Self {
        Swarm {
            seed,
            hosts,
            conns_per_host: 1,
            chaos: Duration::from_secs(10),
            liveness: Duration::from_secs(40),
            tick: Duration::from_millis(100),
            max_stream: 64 * 1024,
            latency: (Duration::from_millis(1), Duration::from_millis(1)),
            bandwidth: None,
            max_chunk: 0,
            fault_every: None,
            fault_len: Duration::from_secs(2),
            partition_one_way: false,
            partition_two_way: false,
            hold: false,
            reset: false,
            fin: false,
            crash: false,
            skew: false,
            datagram_ppm: [0; 4],
            mtu: 2000,
            greedy: None,
            budget: None,
        }
    }

    /// The benchmark scenario: one simulated hour of 10 hosts, each keeping
    /// two connections dialed, opening echo streams of up to 64 KiB every
    /// ~0.5 s, with every fault kind on (~every 10 s, up to 5 s long) and
    /// lossy datagram links.
    pub fn hour(seed: u64) -> Self {
        Swarm {
            seed,
            hosts: 10,
            conns_per_host: 2,
            chaos: Duration::from_secs(3600),
            liveness: Duration::from_secs(40),
            tick: Duration::from_millis(500),
            max_stream: 64 * 1024,
            latency: (Duration::from_millis(1), Duration::from_millis(20)),
            bandwidth: Some(10_000_000),
            max_chunk: 1500,
            fault_every: Some(Duration::from_secs(10)),
            fault_len: Duration::from_secs(5),
            partition_one_way: true,
            partition_two_way: true,
            hold: true,
            reset: true,
            fin: true,
            crash: true,
            skew: true,
            datagram_ppm: [20_000, 20_000, 20_000, 20_000],
            mtu: 1200,
            greedy: None,
            budget: None,
        }
    }

    /// Swarm testing: the seed decides which faults are on, how often and
    /// how hard, as well as the sizes.
    pub fn from_seed(seed: u64) -> Self {
        let mut r = Rng::stream(seed, &[b"swarm"]);
        let mut on = |p: u32| r.chance(p * 10_000);
        let flags = [
            on(50),
            on(50),
            on(50),
            on(50),
            on(50),
            on(35),
            on(50),
            on(70),
        ];
        let any = flags[..6].iter().any(|f| *f);
        let hosts = r.range(2, 5) as usize;
        let lat_lo = r.range(100_000, 5_000_000);
        let lat_hi = lat_lo + r.range(0, 20_000_000);
        let bw = r.chance(400_000).then(|| r.range(200_000, 50_000_000));
        let chunk = if r.chance(500_000) {
            r.range(1, 4096) as usize
        } else {
            0
        };
        let dg = if flags[7] {
            [
                r.range(0, 200_000) as u32,
                r.range(0, 200_000) as u32,
                r.range(0, 200_000) as u32,
                r.range(0, 200_000) as u32,
            ]
        } else {
            [0; 4]
        };
        let conns_per_host = r.range(1, 2) as usize;
        let mut swarm = Swarm {
            seed,
            hosts,
            conns_per_host,
            chaos: Duration::from_millis(r.range(3_000, 15_000)),
            liveness: Duration::from_secs(40),
            tick: Duration::from_millis(r.range(20, 300)),
            max_stream: if r.chance(300_000) {
                r.range(300_000, 1_200_000)
            } else {
                r.range(16, 100_000)
            },
            latency: (Duration::from_nanos(lat_lo), Duration::from_nanos(lat_hi)),
            bandwidth: bw,
            max_chunk: chunk,
            fault_every: any.then(|| Duration::from_millis(r.range(100, 2_000))),
            fault_len: Duration::from_millis(r.range(200, 8_000)),
            partition_one_way: flags[0],
            partition_two_way: flags[1],
            hold: flags[2],
            reset: flags[3],
            fin: flags[4],
            crash: flags[5],
            skew: flags[6],
            datagram_ppm: dg,
            mtu: if r.chance(500_000) { 1200 } else { 2000 },
            greedy: None,
            budget: None,
        };
        // Its own stream, drawn after everything else: a seed without the
        // greedy peer is the run it was before the greedy peer existed.
        let mut g = Rng::stream(seed, &[b"greedy"]);
        if g.chance(300_000) {
            swarm.greedy = Some(Duration::from_millis(g.range(5, 200)));
            // Every connection is charged a protocol floor of about 1 MiB
            // (the native initial window) at birth: the limit is that for
            // each connection the workload keeps (both ends, plus the
            // greedy pair) and a little room, so some seeds stay calm and
            // others reach Hold, Shrink or Refuse once the greedy peer
            // pins its share.
            let conns = 2 * (hosts * conns_per_host + 1);
            let per_conn = g.range(1 << 20, 3 << 19) as usize;
            swarm.budget = Some(conns * per_conn);
        }
        swarm
    }

    fn link(&self) -> LinkConfig {
        LinkConfig {
            latency: self.latency,
            bandwidth: self.bandwidth,
            max_chunk: self.max_chunk,
            loss_ppm: self.datagram_ppm[0],
            duplicate_ppm: self.datagram_ppm[1],
            reorder_ppm: self.datagram_ppm[2],
            corrupt_ppm: self.datagram_ppm[3],
            mtu: self.mtu,
            ..LinkConfig::default()
        }
    }

    fn enabled_faults(&self) -> Vec<FaultKind> {
        let mut v = Vec::new();
        let pairs = [
            (self.partition_one_way, FaultKind::PartitionOneWay),
            (self.partition_two_way, FaultKind::PartitionTwoWay),
            (self.hold, FaultKind::Hold),
            (self.reset, FaultKind::Reset),
            (self.fin, FaultKind::Fin),
            (self.crash, FaultKind::Crash),
        ];
        for (on, k) in pairs {
            if on {
                v.push(k);
            }
        }
        v
    }
}

impl fmt::Display for Swarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        writeln!(f, "seed              {}", self.seed)?;
        writeln!(
            f,
            "hosts             {} x {} conns",
            self.hosts, self.conns_per_host
        )?;
        writeln!(
            f,
            "phases            chaos {:?}, then heal, liveness {:?}",
            self.chaos, self.liveness
        )?;
        writeln!(
            f,
            "workload          tick {:?}, streams up to {} bytes",
            self.tick, self.max_stream
        )?;
        writeln!(
            f,
            "stream links      latency {:?}..{:?}, bandwidth {}, rechunk {}",
            self.latency.0,
            self.latency.1,
            self.bandwidth
                .map_or(String::from("unlimited"), |b| format!("{b} B/s")),
            if self.max_chunk == 0 {
                String::from("off")
            } else {
                format!("1..={}", self.max_chunk)
            }
        )?;
        match self.fault_every {
            Some(e) => writeln!(
                f,
                "faults            every ~{e:?}, up to {:?} long",
                self.fault_len
            )?,
            None => writeln!(f, "faults            none injected")?,
        }
        writeln!(
            f,
            "  partition 1-way {}, 2-way {}, hold {}, reset {}, fin {}, crash {}, skew {}",
            on(self.partition_one_way),
            on(self.partition_two_way),
            on(self.hold),
            on(self.reset),
            on(self.fin),
            on(self.crash),
            on(self.skew)
        )?;
        write!(
            f,
            "datagram links    loss {} dup {} reorder {} corrupt {} (ppm), mtu {}",
            self.datagram_ppm[0],
            self.datagram_ppm[1],
            self.datagram_ppm[2],
            self.datagram_ppm[3],
            self.mtu
        )?;
        // Printed only when on: this text opens the trace, and a seed
        // without the greedy peer keeps its old trace.
        if let Some(every) = self.greedy {
            write!(f, "\ngreedy peer       pings every {every:?}")?;
        }
        if let Some(limit) = self.budget {
            write!(f, "\nmemory budget     {limit} bytes shared")?;
        }
        Ok(())
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The trace's hash.
    pub hash: u64,
    /// Records in the trace.
    pub records: u64,
    /// The trace, if kept.
    pub trace: Option<Vec<u8>>,
    /// Broken invariants, first ones first (empty: the run passed).
    pub violations: Vec<String>,
    /// Streams opened.
    pub streams: u64,
    /// Streams whose echo came back whole.
    pub completed: u64,
    /// Streams that failed (reset, connection lost).
    pub failed: u64,
    /// Payload bytes echoed back intact.
    pub bytes_echoed: u64,
    /// Connections made.
    pub connections: u64,
    /// Datagrams sent / delivered intact / detected corrupt.
    pub datagrams: [u64; 3],
    /// How often each fault fired, in [`FaultKind::ALL`] order.
    pub faults: [u64; FaultKind::ALL.len()],
    /// Virtual time at the end.
    pub end: Instant,
    /// Scheduler steps.
    pub steps: u64,
    /// The shared memory budget at the end, if the run had one.
    pub budget: Option<crate::budget::BudgetStats>,
    /// How each greedy peer's connection ended, seen from its victim: the
    /// limit it closed for, `"left"` (the greedy peer closed at the heal),
    /// `"crashed"` (the victim's host was down at the end) or `"open"`
    /// (which the liveness check reports).
    pub greedy_ends: BTreeMap<&'static str, u64>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "streams           {} opened, {} completed, {} failed; {} bytes echoed",
            self.streams, self.completed, self.failed, self.bytes_echoed
        )?;
        writeln!(
            f,
            "network           {} connections, {} steps, ended at {:?}",
            self.connections, self.steps, self.end
        )?;
        writeln!(
            f,
            "datagrams         {} sent, {} intact, {} detected corrupt",
            self.datagrams[0], self.datagrams[1], self.datagrams[2]
        )?;
        write!(f, "faults fired     ")?;
        for (k, n) in FaultKind::ALL.iter().zip(self.faults) {
            if n > 0 {
                write!(f, " {}={}", k.name(), n)?;
            }
        }
        writeln!(f)?;
        write!(
            f,
            "trace             {} records, hash {:016x}",
            self.records, self.hash
        )?;
        if let Some(b) = &self.budget {
            write!(
                f,
                "\nbudget            limit {}, peak {}, used {}, {} flows refused; greedy ends {:?}",
                b.limit, b.peak, b.used, b.flows_refused, self.greedy_ends
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowState {
    Open,
    Complete,
    Failed,
}

#[derive(Debug)]
struct FlowRec {
    len: u64,
    state: FlowState,
}

#[derive(Debug)]
enum St {
    Client {
        uid: u64,
        len: u64,
        written: u64,
        fin_sent: bool,
        echo: u64,
    },
    Server {
        hdr: Vec<u8>,
        got: u64,
        pending: Vec<u8>,
        got_fin: bool,
        fin_sent: bool,
    },
}

struct Slot<C> {
    t: Traced<C>,
    host: HostId,
    conn: ConnId,
    role: Role,
    alive: bool,
    transport: bool,
    draining: bool,
    timer: Option<(TimerId, Instant)>,
    streams: BTreeMap<StreamId, St>,
    /// A greedy peer's flows and the bytes written into each; `None` for
    /// every well-behaved core.
    greedy: Option<BTreeMap<StreamId, (u64, u64)>>,
    /// The other end of a greedy peer's connection (the victim).
    greedy_victim: bool,
}

const T_WORKLOAD: u64 = 1 << 32;
const T_FAULT: u64 = 2 << 32;
const T_HEAL: u64 = 3 << 32;
const T_END: u64 = 4 << 32;
const T_RELEASE: u64 = 5 << 32;
const T_RESTART: u64 = 6 << 32;
const T_PARTITION_END: u64 = 7 << 32;
const T_GREEDY: u64 = 8 << 32;
const T_GREEDY_TICK: u64 = 9 << 32;
/// Length the greedy peer's flows claim: they never end.
const GREEDY_LEN: u64 = 1 << 40;
/// Greedy flow uids live apart from the workload's, which count from 1.
const GREEDY_UID: u64 = 1 << 63;
/// PINGs the greedy peer tries per tick (the mux lets 8 wait for a PONG).
const GREEDY_PINGS: usize = 8;
const LOW: u64 = 0xffff_ffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Chaos,
    Settle,
    Done,
}

/// Runs the standard scenario over cores from `make`, on the simulator
/// (`N = Net`) or any other [`Network`].
pub struct World<C, F, N = Net> {
    cfg: Swarm,
    net: N,
    make: F,
    slots: Vec<Slot<C>>,
    by_conn: BTreeMap<ConnId, usize>,
    listeners: BTreeMap<HostId, ListenerId>,
    accepts: BTreeMap<OpId, HostId>,
    sockets: BTreeMap<HostId, SocketId>,
    dialing: BTreeMap<OpId, HostId>,
    flows: BTreeMap<u64, FlowRec>,
    wrng: Rng,
    frng: Rng,
    phase: Phase,
    violations: Vec<String>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    next_uid: u64,
    dgrams: [u64; 3],
    echoed: u64,
    budget: Option<MemoryBudget>,
    /// The budget peak already checked.
    budget_peak: usize,
    greedy_host: Option<HostId>,
    greedy_dials: BTreeSet<OpId>,
    greedy_fired: u64,
    grng: Rng,
    next_greedy_uid: u64,
}

/// Cap on violations kept (the first ones tell the story).
const MAX_VIOLATIONS: usize = 32;
/// Echo bytes an acceptor holds before it stops reading (backpressure).
const ECHO_BUFFER: usize = 64 * 1024;

/// Runs the standard scenario for `cfg` over cores built by `make`.
pub fn run<C: SimCore, F: FnMut(Role, Instant) -> C>(
    cfg: &Swarm,
    make: F,
    keep_trace: bool,
) -> Outcome {
    World::new(cfg.clone(), make, keep_trace).run()
}

/// [`run`], with `budget` the memory budget every core `make` builds
/// draws from: the run also checks the budget invariant (see
/// `docs/decisions.md`, sim). Cores report their part through
/// [`SimCore::budget_use`].
pub fn run_budgeted<C: SimCore, F: FnMut(Role, Instant) -> C>(
    cfg: &Swarm,
    make: F,
    budget: Option<MemoryBudget>,
    keep_trace: bool,
) -> Outcome {
    let mut w = World::new(cfg.clone(), make, keep_trace);
    w.budget_peak = budget.as_ref().map_or(0, |b| b.stats().peak);
    w.budget = budget;
    w.run()
}

/// Runs the standard scenario on another [`Network`] (real sockets, say):
/// the same hosts, workload and invariants; faults the network cannot
/// inject are skipped.
pub fn run_on<C: SimCore, F: FnMut(Role, Instant) -> C, N: Network>(
    cfg: &Swarm,
    make: F,
    net: N,
) -> Outcome {
    World::on(cfg.clone(), make, net).run()
}

impl<C: SimCore, F: FnMut(Role, Instant) -> C> World<C, F, Net> {
    /// Sets up the simulated network, hosts, listeners and timers.
    pub fn new(cfg: Swarm, make: F, keep_trace: bool) -> Self {
        let net_cfg = NetConfig {
            link: cfg.link(),
            ..NetConfig::default()
        };
        let net = Net::new(net_cfg, cfg.seed, keep_trace);
        World::on(cfg, make, net)
    }
}

impl<C: SimCore, F: FnMut(Role, Instant) -> C, N: Network> World<C, F, N> {
    /// A host's clock; the world only holds hosts the net handed out.
    fn clock(&self, host: HostId) -> Instant {
        self.net.local_time(host).unwrap_or_else(|_| self.net.now())
    }

    /// Sets up hosts, listeners and timers on `net`.
    pub fn on(cfg: Swarm, make: F, mut net: N) -> Self {
        // The trace says what produced it.
        let text = format!("{cfg}");
        net.trace_mut().record(tag::NOTE, 0, &[0], text.as_bytes());
        let w_seed = cfg.seed;
        let mut w = World {
            wrng: Rng::stream(cfg.seed, &[b"workload"]),
            frng: Rng::stream(cfg.seed, &[b"faults"]),
            cfg,
            net,
            make,
            slots: Vec::new(),
            by_conn: BTreeMap::new(),
            listeners: BTreeMap::new(),
            accepts: BTreeMap::new(),
            sockets: BTreeMap::new(),
            dialing: BTreeMap::new(),
            flows: BTreeMap::new(),
            phase: Phase::Chaos,
            violations: Vec::new(),
            buf: Vec::new(),
            scratch: Vec::new(),
            next_uid: 1,
            dgrams: [0; 3],
            echoed: 0,
            budget: None,
            budget_peak: 0,
            greedy_host: None,
            greedy_dials: BTreeSet::new(),
            greedy_fired: 0,
            grng: Rng::stream(w_seed, &[b"greedy", b"run"]),
            next_greedy_uid: 0,
        };
        for i in 0..w.cfg.hosts {
            let name = format!("h{i}");
            let h = w.net.add_host(&name).expect("fresh names");
            if w.cfg.skew {
                // The host's own stream: adding hosts moves no one else's clock.
                let mut hr = Rng::stream(w.cfg.seed, &[b"host", name.as_bytes()]);
                let off = Duration::from_nanos(hr.range(0, 10_000_000_000));
                let ppm = hr.range(0, 400) as i32 - 200;
                let _ = w.net.set_skew(h, off, ppm);
            }
            w.start_host(h);
        }
        let now = w.net.now();
        let _ = w.net.set_timer(None, now, T_WORKLOAD);
        if let Some(e) = w.cfg.fault_every {
            let at = now + e;
            let _ = w.net.set_timer(None, at, T_FAULT);
        }
        let heal = now + w.cfg.chaos;
        if w.cfg.greedy.is_some() {
            // Added after the others and never listening: nobody dials it,
            // and no other host's link or clock stream moves.
            w.greedy_host = w.net.add_host("greedy").ok();
            let at = w.grng.range(0, super::net::dur_ns_pub(w.cfg.chaos) / 2);
            let _ = w
                .net
                .set_timer(None, now + Duration::from_nanos(at), T_GREEDY);
        }
        let _ = w.net.set_timer(None, heal, T_HEAL);
        let _ = w.net.set_timer(None, heal + w.cfg.liveness, T_END);
        w
    }

    fn start_host(&mut self, h: HostId) {
        let l = self
            .net
            .listen(h, &format!(":{STREAM_PORT}"))
            .expect("a fresh host has the port free");
        self.listeners.insert(h, l);
        self.accept_all(h, l);
        if let Ok(s) = self.net.bind(h, DATAGRAM_PORT) {
            self.sockets.insert(h, s);
        }
    }

    fn accept_all(&mut self, h: HostId, l: ListenerId) {
        loop {
            match self.net.accept(l) {
                Ok(Accept::Ready(c)) => self.new_core(c, Role::Acceptor),
                Ok(Accept::Pending(op)) => {
                    self.accepts.insert(op, h);
                    return;
                }
                Err(_) => return,
            }
        }
    }

    fn violation(&mut self, s: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(s);
        }
    }

    /// Runs to the end of the liveness phase.
    pub fn run(mut self) -> Outcome {
        while self.phase != Phase::Done {
            if !self.net.step() {
                break;
            }
            while let Some(ev) = self.net.poll_event() {
                self.on_net(ev);
            }
        }
        let mut o = Outcome {
            hash: 0,
            records: 0,
            trace: None,
            violations: core::mem::take(&mut self.violations),
            streams: self.flows.len() as u64,
            completed: self
                .flows
                .values()
                .filter(|f| f.state == FlowState::Complete)
                .count() as u64,
            failed: self
                .flows
                .values()
                .filter(|f| f.state == FlowState::Failed)
                .count() as u64,
            bytes_echoed: self.echoed,
            connections: self.net.stats().connections,
            datagrams: self.dgrams,
            faults: self.net.fault_counts(),
            end: self.net.now(),
            steps: self.net.stats().steps,
            budget: self.budget.as_ref().map(|b| b.stats()),
            greedy_ends: self.greedy_ends(),
        };
        o.faults[FaultKind::GreedyPeer as usize] += self.greedy_fired;
        let trace = self.net.take_trace();
        o.hash = trace.hash();
        o.records = trace.records();
        o.trace = trace.into_bytes();
        o
    }

    fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Dialed { op, result } => {
                self.dialing.remove(&op);
                let greedy = self.greedy_dials.remove(&op);
                if let Ok(c) = result {
                    if greedy {
                        self.greedy_connected(c);
                    } else {
                        self.new_core(c, Role::Dialer);
                    }
                }
            }
            NetEvent::Accepted { op, result } => {
                let h = self.accepts.remove(&op);
                if let Ok(c) = result {
                    self.new_core(c, Role::Acceptor);
                    if let Some(h) = h {
                        if let Some(&l) = self.listeners.get(&h) {
                            self.accept_all(h, l);
                        }
                    }
                }
            }
            NetEvent::Incoming(_) => {}
            NetEvent::Data { conn, data } => {
                if let Some(&i) = self.by_conn.get(&conn) {
                    self.input(i, Input::Bytes(&data));
                }
            }
            NetEvent::Fin(conn) => {
                if let Some(&i) = self.by_conn.get(&conn) {
                    self.input(i, Input::TransportClosed);
                }
            }
            NetEvent::Reset(conn) | NetEvent::Down { conn, .. } => {
                if let Some(&i) = self.by_conn.get(&conn) {
                    self.slots[i].transport = false;
                    self.input(i, Input::TransportClosed);
                }
            }
            NetEvent::Datagram { data, .. } => self.check_datagram(&data),
            NetEvent::Timer {
                host: Some(_),
                token,
            } => {
                let i = token as usize;
                if i < self.slots.len() {
                    self.slots[i].timer = None;
                    self.input(i, Input::Timeout);
                }
            }
            NetEvent::Timer { host: None, token } => self.on_timer(token),
        }
    }

    fn new_core(&mut self, c: ConnId, role: Role) {
        // Ids come from the net itself, so the lookups cannot fail.
        let Ok(host) = self.net.local_addr(c).map(|a| a.host) else {
            return;
        };
        let victim = role == Role::Acceptor
            && self.greedy_host.is_some()
            && self.net.remote_addr(c).map(|a| a.host).ok() == self.greedy_host;
        let now = self.clock(host);
        let id = self.slots.len() as u32;
        let core = (self.make)(role, now);
        let t = Traced::created(core, id, host.0, role, now, self.net.trace_mut());
        self.slots.push(Slot {
            t,
            host,
            conn: c,
            role,
            alive: true,
            transport: true,
            draining: false,
            timer: None,
            streams: BTreeMap::new(),
            greedy: None,
            greedy_victim: victim,
        });
        self.by_conn.insert(c, id as usize);
        self.drive(id as usize);
    }

    fn input(&mut self, i: usize, input: Input<'_>) {
        if !self.slots[i].alive {
            return;
        }
        let now = self.clock(self.slots[i].host);
        self.slots[i].t.input(now, input, self.net.trace_mut());
        self.drive(i);
    }

    /// The contract's drain: transmits and events until both are empty,
    /// reacting to events (which may issue commands), then the timer.
    fn drive(&mut self, i: usize) {
        if !self.slots[i].alive {
            return;
        }
        let host = self.slots[i].host;
        loop {
            let now = self.clock(host);
            let mut buf = core::mem::take(&mut self.buf);
            while self.slots[i]
                .t
                .transmit(now, &mut buf, self.net.trace_mut())
            {
                if self.slots[i].transport && self.net.send(self.slots[i].conn, &buf).is_err() {
                    self.slots[i].transport = false;
                }
            }
            self.buf = buf;
            let Some(ev) = self.slots[i].t.event(now, self.net.trace_mut()) else {
                if self.should_drain(i) {
                    self.slots[i].draining = true;
                    let _ = self.cmd(i, Command::Drain);
                    continue;
                }
                break;
            };
            self.react(i, ev);
        }
        let now = self.clock(host);
        let s = &mut self.slots[i];
        let deadline = s.t.deadline(now, self.net.trace_mut());
        if s.t.core.is_closed() && s.transport {
            s.transport = false;
            let _ = self.net.close(s.conn);
        }
        let s = &mut self.slots[i];
        match (deadline, s.timer) {
            (Some(d), Some((_, armed))) if armed == d => {}
            (d, old) => {
                if let Some((id, _)) = old {
                    self.net.cancel_timer(id);
                }
                self.slots[i].timer = d.and_then(|d| {
                    let at = self.net.global_time(host, d).unwrap_or(d);
                    let id = self.net.set_timer(Some(host), at, i as u64).ok()?;
                    Some((id, d))
                });
            }
        }
        self.check_budget();
    }

    /// The budget invariant, after every drive (a core's shares only move
    /// inside calls into it): `used` is the sum of what the cores hold, and
    /// the peak, if it rose, is within the limit plus every core's floor.
    fn check_budget(&mut self) {
        let Some(b) = &self.budget else {
            return;
        };
        let st = b.stats();
        let (mut held, mut floors) = (0u64, 0u64);
        for s in &self.slots {
            if let Some(u) = s.t.core.budget_use() {
                held += u.held;
                floors += u.floor;
            }
        }
        if st.used as u64 != held {
            let m = format!("budget: {} bytes used but the cores hold {held}", st.used);
            self.violation(m);
        }
        if st.peak > self.budget_peak {
            self.budget_peak = st.peak;
            if st.peak as u64 > st.limit as u64 + floors {
                let m = format!(
                    "budget: peak {} is over the limit {} plus the floors {floors}",
                    st.peak, st.limit
                );
                self.violation(m);
            }
        }
    }

    fn cmd(&mut self, i: usize, c: Command<'_>) -> Result<(u64, Option<ReadOutcome>), CmdError> {
        let now = self.clock(self.slots[i].host);
        let mut out = core::mem::take(&mut self.scratch);
        out.clear();
        let r = self.slots[i]
            .t
            .command(now, &c, &mut out, self.net.trace_mut());
        self.scratch = out;
        r
    }

    fn react(&mut self, i: usize, ev: CoreEvent) {
        if self.slots[i].greedy.is_some() {
            return self.greedy_react(i, ev);
        }
        match ev {
            CoreEvent::Opened(s) => {
                self.slots[i].streams.insert(
                    s,
                    St::Server {
                        hdr: Vec::new(),
                        got: 0,
                        pending: Vec::new(),
                        got_fin: false,
                        fin_sent: false,
                    },
                );
                self.service_read(i, s);
            }
            CoreEvent::Readable(s) => self.service_read(i, s),
            CoreEvent::Writable(s) => {
                self.service_write(i, s);
                self.service_read(i, s);
            }
            CoreEvent::StreamClosed(s) => {
                if let Some(St::Client { uid, .. }) = self.slots[i].streams.remove(&s) {
                    self.fail_flow(uid);
                }
            }
            CoreEvent::Draining if !self.slots[i].draining => {
                self.slots[i].draining = true;
                let _ = self.cmd(i, Command::Drain);
            }
            CoreEvent::Closed { .. } => self.fail_streams(i),
            _ => {}
        }
    }

    fn fail_flow(&mut self, uid: u64) {
        if let Some(f) = self.flows.get_mut(&uid) {
            if f.state == FlowState::Open {
                f.state = FlowState::Failed;
            }
        }
    }

    fn fail_streams(&mut self, i: usize) {
        let uids: Vec<u64> = self.slots[i]
            .streams
            .values()
            .filter_map(|s| match s {
                St::Client { uid, .. } => Some(*uid),
                St::Server { .. } => None,
            })
            .collect();
        for u in uids {
            self.fail_flow(u);
        }
    }

    fn service_read(&mut self, i: usize, s: StreamId) {
        loop {
            let room = match self.slots[i].streams.get(&s) {
                None => return,
                Some(St::Server {
                    pending, got_fin, ..
                }) => {
                    if *got_fin || pending.len() >= ECHO_BUFFER {
                        return;
                    }
                    ECHO_BUFFER - pending.len()
                }
                Some(St::Client { .. }) => 64 * 1024,
            };
            let r = self.cmd(i, Command::Read(s, room));
            let data = core::mem::take(&mut self.scratch);
            match r {
                Ok((_, Some(ReadOutcome::Data(_)))) => self.got_bytes(i, s, &data),
                Ok(_) => {
                    self.got_fin(i, s);
                    self.scratch = data;
                    return;
                }
                Err(CmdError::Blocked) => {
                    self.scratch = data;
                    return;
                }
                Err(_) => {
                    if let Some(St::Client { uid, .. }) = self.slots[i].streams.get(&s) {
                        let u = *uid;
                        self.fail_flow(u);
                    }
                    self.slots[i].streams.remove(&s);
                    self.scratch = data;
                    return;
                }
            }
            self.scratch = data;
        }
    }

    fn got_bytes(&mut self, i: usize, s: StreamId, data: &[u8]) {
        let core = self.slots[i].t.id;
        let mut bad = None;
        match self.slots[i].streams.get_mut(&s) {
            Some(St::Client { uid, len, echo, .. }) => {
                for (k, &b) in data.iter().enumerate() {
                    let off = *echo + k as u64;
                    if off >= *len || b != content_byte(*uid, *len, off) {
                        bad = Some(format!(
                            "core {core} stream {s} (uid {uid}): echo byte {off} is wrong or beyond the {len} sent"
                        ));
                        break;
                    }
                }
                *echo += data.len() as u64;
                self.echoed += data.len() as u64;
            }
            Some(St::Server {
                hdr, got, pending, ..
            }) => {
                for &b in data {
                    if hdr.len() < HEADER {
                        hdr.push(b);
                    } else {
                        let (uid, len) = parse_header(hdr);
                        if *got >= len || b != content_byte(uid, len, *got) {
                            bad = Some(format!(
                                "core {core} stream {s} (uid {uid}): received byte {got} is wrong or beyond the {len} sent"
                            ));
                            break;
                        }
                    }
                    *got += 1;
                }
                pending.extend_from_slice(data);
            }
            None => {}
        }
        if let Some(b) = bad {
            self.violation(b);
        }
        self.service_write(i, s);
    }

    fn got_fin(&mut self, i: usize, s: StreamId) {
        let core = self.slots[i].t.id;
        let mut msg = None;
        let mut done = None;
        match self.slots[i].streams.get_mut(&s) {
            Some(St::Client { uid, len, echo, .. }) => {
                if *echo != *len {
                    msg = Some(format!(
                        "core {core} stream {s} (uid {uid}): echo ended cleanly after {echo} of {len} bytes"
                    ));
                } else {
                    done = Some(*uid);
                }
            }
            Some(St::Server {
                hdr, got, got_fin, ..
            }) => {
                *got_fin = true;
                let complete = hdr.len() == HEADER && parse_header(hdr).1 == *got;
                if !complete {
                    msg = Some(format!(
                        "core {core} stream {s}: data ended cleanly after {got} bytes, short of what was sent"
                    ));
                }
            }
            None => {}
        }
        if let Some(m) = msg {
            self.violation(m);
        }
        if let Some(u) = done {
            if let Some(f) = self.flows.get_mut(&u) {
                if f.state == FlowState::Open {
                    f.state = FlowState::Complete;
                }
            }
            self.slots[i].streams.remove(&s);
        } else {
            self.service_write(i, s);
        }
    }

    fn service_write(&mut self, i: usize, s: StreamId) {
        loop {
            let (c, finish) = match self.slots[i].streams.get_mut(&s) {
                Some(St::Client {
                    uid,
                    len,
                    written,
                    fin_sent,
                    ..
                }) => {
                    if *written < *len {
                        let n = (*len - *written).min(16 * 1024);
                        self.buf.clear();
                        let (u, l, w) = (*uid, *len, *written);
                        self.buf.extend((0..n).map(|k| content_byte(u, l, w + k)));
                        (true, false)
                    } else if !*fin_sent {
                        (false, true)
                    } else {
                        return;
                    }
                }
                Some(St::Server {
                    pending,
                    got_fin,
                    fin_sent,
                    ..
                }) => {
                    if !pending.is_empty() {
                        let n = pending.len().min(16 * 1024);
                        self.buf.clear();
                        self.buf.extend_from_slice(&pending[..n]);
                        (true, false)
                    } else if *got_fin && !*fin_sent {
                        (false, true)
                    } else {
                        return;
                    }
                }
                None => return,
            };
            if finish {
                let r = self.cmd(i, Command::Finish(s));
                match self.slots[i].streams.get_mut(&s) {
                    Some(St::Client { fin_sent, .. }) | Some(St::Server { fin_sent, .. }) => {
                        *fin_sent = true
                    }
                    None => {}
                }
                if r.is_err() {
                    self.write_failed(i, s);
                }
                if let Some(St::Server { .. }) = self.slots[i].streams.get(&s) {
                    self.slots[i].streams.remove(&s);
                }
                return;
            }
            debug_assert!(c);
            let data = core::mem::take(&mut self.buf);
            let r = self.cmd(i, Command::Write(s, &data));
            self.buf = data;
            match r {
                Ok((n, _)) => match self.slots[i].streams.get_mut(&s) {
                    Some(St::Client { written, .. }) => *written += n,
                    Some(St::Server { pending, .. }) => {
                        pending.drain(..n as usize);
                    }
                    None => return,
                },
                Err(CmdError::Blocked) => return,
                Err(_) => {
                    self.write_failed(i, s);
                    return;
                }
            }
        }
    }

    fn write_failed(&mut self, i: usize, s: StreamId) {
        match self.slots[i].streams.get(&s) {
            Some(St::Client { uid, .. }) => {
                let u = *uid;
                self.fail_flow(u);
                self.slots[i].streams.remove(&s);
            }
            Some(St::Server { .. }) => {
                self.slots[i].streams.remove(&s);
            }
            None => {}
        }
    }

    /// After the heal, a dialer with nothing left to do drains its connection.
    fn should_drain(&self, i: usize) -> bool {
        let s = &self.slots[i];
        self.phase == Phase::Settle
            && s.role == Role::Dialer
            && s.alive
            && !s.draining
            && s.streams.is_empty()
            && !s.t.core.is_closed()
    }

    fn maybe_finish_conn(&mut self, i: usize) {
        if self.should_drain(i) {
            self.drive(i);
        }
    }

    fn live_slots(&self, role: Option<Role>) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| {
                let s = &self.slots[i];
                s.alive
                    && s.transport
                    && !s.draining
                    && !s.t.core.is_closed()
                    && s.greedy.is_none()
                    && !s.greedy_victim
                    && role.is_none_or(|r| r == s.role)
            })
            .collect()
    }

    fn on_timer(&mut self, token: u64) {
        match token & !LOW {
            T_WORKLOAD => self.workload_tick(),
            T_FAULT => self.fault_tick(),
            T_HEAL => self.heal(),
            T_END => self.end(),
            T_RELEASE => {
                let c = ConnId((token & LOW) as u32);
                let _ = self.net.release(c);
            }
            T_RESTART => self.restart(HostId((token & LOW) as u32)),
            T_PARTITION_END => self.net.heal(),
            T_GREEDY => self.greedy_dial(),
            T_GREEDY_TICK => self.greedy_tick((token & LOW) as usize),
            _ => {}
        }
    }

    fn workload_tick(&mut self) {
        if self.phase != Phase::Chaos {
            return;
        }
        let hosts: Vec<HostId> = self.hosts();
        // Keep each host's dialed connections topped up.
        let h = hosts[self.wrng.below(hosts.len())];
        let mine = self
            .live_slots(Some(Role::Dialer))
            .into_iter()
            .filter(|&i| self.slots[i].host == h)
            .count()
            + self.dialing.values().filter(|&&d| d == h).count();
        if mine < self.cfg.conns_per_host && self.net.host_up(h) {
            let mut to = hosts[self.wrng.below(hosts.len())];
            if to == h {
                to = hosts[(to.0 as usize + 1) % hosts.len()];
            }
            if let Ok(op) = self.net.dial(
                h,
                &format!("{}:{STREAM_PORT}", self.net.host_name(to).unwrap_or("?")),
            ) {
                self.dialing.insert(op, h);
            }
        }
        // Open a stream on a random live dialer.
        let live = self.live_slots(Some(Role::Dialer));
        if !live.is_empty() && self.wrng.chance(700_000) {
            let i = live[self.wrng.below(live.len())];
            let len = self
                .wrng
                .range(HEADER as u64, self.cfg.max_stream.max(HEADER as u64));
            if let Ok((s, _)) = self.cmd(i, Command::Open) {
                let uid = self.next_uid;
                self.next_uid += 1;
                self.flows.insert(
                    uid,
                    FlowRec {
                        len,
                        state: FlowState::Open,
                    },
                );
                self.slots[i].streams.insert(
                    s,
                    St::Client {
                        uid,
                        len,
                        written: 0,
                        fin_sent: false,
                        echo: 0,
                    },
                );
                self.service_write(i, s);
            }
            self.drive(i);
        }
        // A datagram between two hosts.
        if self.wrng.chance(500_000) {
            let from = hosts[self.wrng.below(hosts.len())];
            let to = hosts[self.wrng.below(hosts.len())];
            let len = self.wrng.range(24, 1600) as usize;
            let uid = self.dgrams[0];
            if let Some(&s) = self.sockets.get(&from) {
                let d = datagram(uid, len);
                let addr = super::net::Addr {
                    host: to,
                    port: DATAGRAM_PORT,
                };
                if self.net.send_to(s, addr, &d).is_ok() {
                    self.dgrams[0] += 1;
                }
            }
        }
        let now = self.net.now();
        let mean = super::net::dur_ns_pub(self.cfg.tick);
        let next = now + Duration::from_nanos(self.wrng.range(1, mean.saturating_mul(2).max(1)));
        let _ = self.net.set_timer(None, next, T_WORKLOAD);
    }

    fn check_datagram(&mut self, d: &[u8]) {
        if d.len() < 24 {
            self.dgrams[2] += 1;
            return;
        }
        let (body, sum) = d.split_at(d.len() - 8);
        if label_hash(&[body]).to_le_bytes() != sum {
            self.dgrams[2] += 1;
            return;
        }
        let mut u = [0u8; 8];
        u.copy_from_slice(&body[..8]);
        let uid = u64::from_le_bytes(u);
        if uid >= self.dgrams[0] || datagram(uid, d.len()) != d {
            self.violation(format!("datagram uid {uid} was never sent as delivered"));
        } else {
            self.dgrams[1] += 1;
        }
    }

    fn fault_tick(&mut self) {
        if self.phase != Phase::Chaos {
            return;
        }
        let kinds = self.cfg.enabled_faults();
        let Some(every) = self.cfg.fault_every else {
            return;
        };
        let now = self.net.now();
        let next =
            now + Duration::from_nanos(self.frng.range(1, super::net::dur_ns_pub(every) * 2));
        let _ = self.net.set_timer(None, next, T_FAULT);
        if kinds.is_empty() {
            return;
        }
        let kind = kinds[self.frng.below(kinds.len())];
        // The fault schedule itself (when, which kind), whether or not the
        // fault finds a target: it depends on the fault stream alone.
        let t = now.as_nanos();
        self.net
            .trace_mut()
            .record(tag::NOTE, t, &[4, kind as u64], b"fault tick");
        let hosts: Vec<HostId> = self.hosts();
        let len = Duration::from_nanos(
            self.frng
                .range(1, super::net::dur_ns_pub(self.cfg.fault_len)),
        );
        let a = hosts[self.frng.below(hosts.len())];
        let mut b = hosts[self.frng.below(hosts.len())];
        if a == b {
            b = hosts[(b.0 as usize + 1) % hosts.len()];
        }
        let pick = self.frng.next_u64();
        let live = self.live_slots(None);
        let slot = (!live.is_empty()).then(|| live[(pick % live.len() as u64) as usize]);
        match kind {
            FaultKind::PartitionOneWay | FaultKind::PartitionTwoWay => {
                let _ = self.net.partition(a, b, kind == FaultKind::PartitionTwoWay);
                let _ = self.net.set_timer(None, now + len, T_PARTITION_END);
            }
            FaultKind::Hold => {
                if let Some(i) = slot {
                    let c = self.slots[i].conn;
                    let _ = self.net.hold(c);
                    let _ = self
                        .net
                        .set_timer(None, now + len, T_RELEASE | u64::from(c.0));
                }
            }
            FaultKind::Reset => {
                if let Some(i) = slot {
                    let _ = self.net.inject_reset(self.slots[i].conn);
                }
            }
            FaultKind::Fin => {
                if let Some(i) = slot {
                    if self.net.inject_fin(self.slots[i].conn) == Ok(true) {
                        self.slots[i].transport = false;
                        self.input(i, Input::TransportClosed);
                    }
                }
            }
            FaultKind::Crash if self.net.host_up(a) => {
                let _ = self.net.crash(a);
                for i in 0..self.slots.len() {
                    if self.slots[i].host == a && self.slots[i].alive {
                        self.slots[i].alive = false;
                        self.fail_streams(i);
                    }
                }
                self.listeners.remove(&a);
                self.sockets.remove(&a);
                self.dialing.retain(|_, h| *h != a);
                let _ = self
                    .net
                    .set_timer(None, now + len, T_RESTART | u64::from(a.0));
            }
            _ => {}
        }
    }

    fn restart(&mut self, h: HostId) {
        if self.net.restart(h) == Ok(true) {
            self.start_host(h);
        }
    }

    fn heal(&mut self) {
        let t = self.net.now().as_nanos();
        self.net.trace_mut().record(tag::NOTE, t, &[1], b"heal");
        self.phase = Phase::Settle;
        self.net.heal_all();
        let hosts: Vec<HostId> = self.hosts();
        for h in hosts {
            self.restart(h);
        }
        for i in 0..self.slots.len() {
            if self.slots[i].greedy.is_some() {
                self.greedy_leave(i);
            }
            self.maybe_finish_conn(i);
        }
    }

    fn end(&mut self) {
        let t = self.net.now().as_nanos();
        self.net
            .trace_mut()
            .record(tag::NOTE, t, &[2], b"liveness deadline");
        self.phase = Phase::Done;
        let open: Vec<(u64, u64)> = self
            .flows
            .iter()
            .filter(|(_, f)| f.state == FlowState::Open)
            .map(|(u, f)| (*u, f.len))
            .collect();
        for (u, len) in open.into_iter().take(8) {
            self.violation(format!(
                "liveness: stream uid {u} ({len} bytes) neither finished nor failed {:?} after the heal",
                self.cfg.liveness
            ));
        }
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            // A limit closing a well-behaved connection is a false alarm
            // that would cut off honest clients under load.
            if s.greedy.is_none() && !s.greedy_victim {
                if let Some(limit) = s.t.core.closed_by_limit() {
                    let m = format!(
                        "core {} ({:?}), not a greedy peer's, closed for {limit}",
                        s.t.id, s.role
                    );
                    self.violation(m);
                }
            }
            let s = &self.slots[i];
            if s.alive && !s.t.core.is_closed() {
                let m = format!(
                    "liveness: core {} ({:?} on {}) still open {:?} after the heal",
                    s.t.id,
                    s.role,
                    self.net.host_name(s.host).unwrap_or("?"),
                    self.cfg.liveness
                );
                self.violation(m);
            }
        }
    }
}

impl<C: SimCore, F: FnMut(Role, Instant) -> C, N: Network> World<C, F, N> {
    /// The hosts the workload and the other faults use: all but the
    /// greedy peer's.
    fn hosts(&self) -> Vec<HostId> {
        let mut h = self.net.hosts();
        h.retain(|x| Some(*x) != self.greedy_host);
        h
    }

    fn greedy_dial(&mut self) {
        let (Some(g), Phase::Chaos) = (self.greedy_host, self.phase) else {
            return;
        };
        let hosts = self.hosts();
        let to = hosts[self.grng.below(hosts.len())];
        if !self.net.host_up(to) {
            // A crashed victim: try again later, as a client would.
            let at = self.net.now() + self.cfg.greedy.unwrap_or(Duration::from_secs(1)) * 10;
            let _ = self.net.set_timer(None, at, T_GREEDY);
            return;
        }
        let addr = format!("{}:{STREAM_PORT}", self.net.host_name(to).unwrap_or("?"));
        if let Ok(op) = self.net.dial(g, &addr) {
            self.greedy_dials.insert(op);
        }
    }

    fn greedy_connected(&mut self, c: ConnId) {
        self.new_core(c, Role::Dialer);
        let i = self.slots.len() - 1;
        self.slots[i].greedy = Some(BTreeMap::new());
        self.greedy_fired += 1;
        let t = self.net.now().as_nanos();
        self.net.trace_mut().record(
            tag::NOTE,
            t,
            &[5, u64::from(self.slots[i].t.id)],
            b"greedy peer",
        );
        self.greedy_tick(i);
    }

    /// One more flow, every flow written until blocked, a volley of PINGs.
    fn greedy_tick(&mut self, i: usize) {
        let s = &self.slots[i];
        if self.phase != Phase::Chaos || !s.alive || s.t.core.is_closed() {
            return;
        }
        if let Ok((f, _)) = self.cmd(i, Command::Open) {
            let uid = GREEDY_UID | self.next_greedy_uid;
            self.next_greedy_uid += 1;
            if let Some(g) = &mut self.slots[i].greedy {
                g.insert(f, (uid, 0));
            }
        }
        let flows: Vec<StreamId> = self.slots[i]
            .greedy
            .as_ref()
            .map_or(Vec::new(), |g| g.keys().copied().collect());
        for f in flows {
            self.greedy_write(i, f);
        }
        if let Some(op) = self.slots[i].t.core.ping_op() {
            for _ in 0..GREEDY_PINGS {
                let c = Command::Extra {
                    op,
                    stream: 0,
                    arg: 0,
                    data: &[],
                };
                if self.cmd(i, c).is_err() {
                    break;
                }
            }
        }
        self.drive(i);
        if let Some(every) = self.cfg.greedy {
            let at = self.net.now() + every;
            let _ = self.net.set_timer(None, at, T_GREEDY_TICK | i as u64);
        }
    }

    /// Writes valid stream content (the victim checks every byte as for
    /// any stream) until the flow blocks.
    fn greedy_write(&mut self, i: usize, f: StreamId) {
        loop {
            let Some(&(uid, w)) = self.slots[i].greedy.as_ref().and_then(|g| g.get(&f)) else {
                return;
            };
            self.buf.clear();
            self.buf
                .extend((0..16 * 1024).map(|k| content_byte(uid, GREEDY_LEN, w + k)));
            let data = core::mem::take(&mut self.buf);
            let r = self.cmd(i, Command::Write(f, &data));
            self.buf = data;
            match r {
                Ok((n, _)) => {
                    if let Some(e) = self.slots[i].greedy.as_mut().and_then(|g| g.get_mut(&f)) {
                        e.1 += n;
                    }
                }
                Err(CmdError::Blocked) => return,
                Err(_) => {
                    // Refused (OVERLOADED) or reset: the greedy peer moves on.
                    if let Some(g) = &mut self.slots[i].greedy {
                        g.remove(&f);
                    }
                    return;
                }
            }
        }
    }

    /// Never reads: data, opens and ends are left where they are.
    fn greedy_react(&mut self, i: usize, ev: CoreEvent) {
        match ev {
            CoreEvent::Writable(f) => self.greedy_write(i, f),
            CoreEvent::StreamClosed(f) => {
                if let Some(g) = &mut self.slots[i].greedy {
                    g.remove(&f);
                }
            }
            _ => {}
        }
    }

    /// At the heal the greedy peer goes away, closing its connection: the
    /// victim's liveness is then checked like any other core's.
    fn greedy_leave(&mut self, i: usize) {
        let s = &self.slots[i];
        if s.alive && !s.t.core.is_closed() {
            let _ = self.cmd(i, Command::Close(0, &[]));
            self.drive(i);
        }
    }

    /// How each greedy connection ended, seen from its victim.
    fn greedy_ends(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for s in self.slots.iter().filter(|s| s.greedy_victim) {
            let k = match s.t.core.closed_by_limit() {
                Some(l) => l,
                None if s.t.core.is_closed() => "left",
                // Its host crashed with it: no reason to read.
                None if !s.alive => "crashed",
                None => "open",
            };
            *m.entry(k).or_insert(0) += 1;
        }
        m
    }
}

/// Byte `off` of stream `uid` of `len` bytes.
pub fn content_byte(uid: u64, len: u64, off: u64) -> u8 {
    match off {
        0..=7 => uid.to_le_bytes()[off as usize],
        8..=15 => len.to_le_bytes()[off as usize - 8],
        _ => {
            let x = off
                .wrapping_mul(0x9e37_79b9)
                .wrapping_add(uid.wrapping_mul(7919));
            (x ^ (x >> 13)) as u8
        }
    }
}

fn parse_header(h: &[u8]) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&h[..8]);
    b.copy_from_slice(&h[8..16]);
    (u64::from_le_bytes(a), u64::from_le_bytes(b))
}

fn datagram(uid: u64, len: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..len as u64 - 8)
        .map(|k| content_byte(uid, len as u64, k))
        .collect();
    let sum = label_hash(&[&d]);
    d.extend_from_slice(&sum.to_le_bytes());
    d
}
