//! An `arbitrary` scenario run through the simulator: hosts, listeners,
//! dials, accepts, sends, closes, and every fault (partitions, holds,
//! resets, FINs, crashes and restarts, skew, datagram faults), with the
//! scheduler stepped in between; optionally a short standard scenario over
//! the mux with a fuzz-chosen swarm configuration.
//!
//! Checks: no panic and no unbounded loop; on every connection the bytes
//! delivered are a prefix of the bytes the peer sent (in order, nothing
//! invented, re-chunking aside); nothing is delivered after FIN or reset;
//! completions name operations that were started, once each; a dialed
//! connection lives on the dialer with the dialed address as its remote, an
//! accepted one keeps the listening port; datagrams arrive only as sent or
//! with one flipped bit; the standard scenario keeps its invariants; an id
//! the network never handed out gets `UnknownId` from every operation.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use proto_core::mux::{Config, Connection, Side};
use proto_core::sim::{
    world, Accept, Addr, ConnId, HostId, LinkConfig, ListenerId, Net, NetConfig, NetError,
    NetEvent, OpId, Role, SocketId, Swarm,
};
use proto_core::time::{Duration, Instant};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Arbitrary, Debug)]
enum Op {
    Listen {
        host: u8,
        port: u8,
    },
    Dial {
        host: u8,
        to: u8,
        port: u8,
    },
    Accept {
        listener: u8,
    },
    Send {
        conn: u8,
        len: u16,
    },
    ShutdownWrite {
        conn: u8,
    },
    Close {
        conn: u8,
    },
    Reset {
        conn: u8,
    },
    CloseListener {
        listener: u8,
    },
    CloseHost {
        host: u8,
    },
    Crash {
        host: u8,
    },
    Restart {
        host: u8,
    },
    Partition {
        a: u8,
        b: u8,
        both: bool,
    },
    Heal,
    Hold {
        conn: u8,
    },
    Release {
        conn: u8,
    },
    InjectReset {
        conn: u8,
    },
    InjectFin {
        conn: u8,
    },
    Skew {
        host: u8,
        offset_ms: u16,
        ppm: i16,
    },
    Bind {
        host: u8,
    },
    SendTo {
        socket: u8,
        to: u8,
        len: u16,
    },
    Timer {
        host: Option<u8>,
        after_ms: u16,
    },
    Step {
        n: u8,
    },
    AdvanceMs {
        ms: u16,
    },
    Shutdown,
    CloseRegistry,
    /// An operation given an id this network never handed out (from a
    /// bigger network, or made up).
    Foreign {
        what: u8,
        id: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct LinkIn {
    lat_lo_us: u16,
    lat_span_us: u16,
    bandwidth_kb: Option<u16>,
    max_chunk: u8,
    ppm: [u8; 4],
    mtu: u16,
}

#[derive(Arbitrary, Debug)]
struct SwarmIn {
    seed: u64,
    hosts: u8,
    chaos_ms: u16,
    flags: u8,
    fault_every_ms: u16,
    fault_len_ms: u16,
    max_stream: u32,
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    hosts: u8,
    link: LinkIn,
    ops: Vec<Op>,
    world: Option<SwarmIn>,
}

const MAX_OPS: usize = 300;

#[derive(Default)]
struct Model {
    /// Bytes each connection end sent, in order.
    sent: BTreeMap<ConnId, Vec<u8>>,
    /// Bytes each end received.
    got: BTreeMap<ConnId, Vec<u8>>,
    ended: BTreeSet<ConnId>,
    peer: BTreeMap<ConnId, ConnId>,
    dials: BTreeMap<OpId, (HostId, Addr)>,
    accepts: BTreeMap<OpId, ListenerId>,
    conns: Vec<ConnId>,
    listeners: Vec<ListenerId>,
    sockets: Vec<SocketId>,
    datagrams: Vec<Vec<u8>>,
    counter: u64,
}

fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[i as usize % v.len()])
}

fn drain(net: &mut Net, m: &mut Model) {
    while let Some(e) = net.poll_event() {
        match e {
            NetEvent::Dialed { op, result } => {
                let (from, to) = m.dials.remove(&op).expect("completes a started dial, once");
                if let Ok(c) = result {
                    assert_eq!(net.local_addr(c).unwrap().host, from);
                    assert_eq!(net.remote_addr(c), Ok(to));
                    m.conns.push(c);
                    link_peer(net, m, c);
                }
            }
            NetEvent::Accepted { op, result } => {
                let l = m
                    .accepts
                    .remove(&op)
                    .expect("completes a started accept, once");
                if let Ok(c) = result {
                    assert_eq!(net.local_addr(c), net.listener_addr(l));
                    assert!(net.local_addr(c).is_ok());
                    m.conns.push(c);
                    link_peer(net, m, c);
                }
            }
            NetEvent::Data { conn, data } => {
                assert!(!data.is_empty());
                assert!(!m.ended.contains(&conn), "data after FIN or reset");
                let got = m.got.entry(conn).or_default();
                got.extend_from_slice(&data);
                if let Some(p) = m.peer.get(&conn) {
                    let sent = m.sent.get(p).map_or(&[][..], |v| &v[..]);
                    assert!(
                        sent.starts_with(got),
                        "received is not a prefix of what the peer sent"
                    );
                }
            }
            NetEvent::Fin(c) | NetEvent::Reset(c) | NetEvent::Down { conn: c, .. } => {
                m.ended.insert(c);
            }
            NetEvent::Datagram { data, .. } => {
                let ok = m.datagrams.iter().any(|d| {
                    d.len() == data.len()
                        && d.iter()
                            .zip(&data)
                            .map(|(x, y)| (x ^ y).count_ones())
                            .sum::<u32>()
                            <= 1
                });
                assert!(ok, "a datagram nobody sent");
            }
            _ => {}
        }
    }
}

/// The two ends of a connection are allocated together: the peer is the
/// end whose addresses mirror ours.
fn link_peer(net: &Net, m: &mut Model, c: ConnId) {
    for cand in [ConnId(c.0 ^ 1)] {
        if net.local_addr(cand).is_ok()
            && net.local_addr(cand) == net.remote_addr(c)
            && net.remote_addr(cand) == net.local_addr(c)
        {
            m.peer.insert(c, cand);
            m.peer.insert(cand, c);
        }
    }
}

/// Every id-taking operation with an id far past anything this network
/// handed out: each one fails with `UnknownId` (never a panic) and changes
/// nothing the model tracks.
fn foreign(net: &mut Net, hosts: &[HostId], what: u8, id: u16) {
    let raw = (1 << 20) + u32::from(id);
    let (fh, fc) = (HostId(raw), ConnId(raw));
    let (fl, fs) = (ListenerId(raw), SocketId(raw));
    let mine = hosts[usize::from(what) % hosts.len()];
    let unknown = Err(NetError::UnknownId);
    let at = net.now();
    match what % 24 {
        0 => assert_eq!(net.listen(fh, ":0").err(), unknown.err()),
        1 => assert_eq!(net.dial(fh, "h0:1").err(), unknown.err()),
        2 => assert_eq!(net.accept(fl).err(), unknown.err()),
        3 => assert_eq!(net.close_listener(fl), unknown),
        4 => assert_eq!(net.send(fc, b"x"), unknown),
        5 => assert_eq!(net.shutdown_write(fc), unknown),
        6 => assert_eq!(net.close(fc), unknown),
        7 => assert_eq!(net.reset(fc), unknown),
        8 => assert_eq!(net.hold(fc), unknown),
        9 => assert_eq!(net.release(fc), unknown),
        10 => assert_eq!(net.inject_reset(fc), unknown),
        11 => assert_eq!(net.inject_fin(fc), Err(NetError::UnknownId)),
        12 => assert_eq!(net.close_host(fh), unknown),
        13 => assert_eq!(net.crash(fh), unknown),
        14 => assert_eq!(net.restart(fh), Err(NetError::UnknownId)),
        15 => assert_eq!(net.partition(mine, fh, true), unknown),
        16 => assert_eq!(net.set_skew(fh, Duration::from_millis(1), 5), unknown),
        17 => assert_eq!(net.bind(fh, 0).err(), unknown.err()),
        18 => assert_eq!(net.close_socket(fs), unknown),
        19 => {
            let to = Addr {
                host: mine,
                port: 1,
            };
            assert_eq!(net.send_to(fs, to, b"x"), unknown);
        }
        20 => assert_eq!(net.set_timer(Some(fh), at, 0).err(), unknown.err()),
        21 => {
            assert_eq!(net.local_time(fh).err(), unknown.err());
            assert_eq!(net.global_time(fh, at).err(), unknown.err());
            assert!(!net.host_up(fh));
        }
        22 => {
            assert_eq!(net.local_addr(fc).err(), unknown.err());
            assert_eq!(net.remote_addr(fc).err(), unknown.err());
            assert_eq!(net.listener_addr(fl).err(), unknown.err());
            assert_eq!(net.socket_addr(fs).err(), unknown.err());
        }
        _ => {
            assert_eq!(net.host_name(fh).err(), unknown.err());
            let a = Addr { host: fh, port: 1 };
            assert_eq!(net.format_addr(a).err(), unknown.err());
            assert_eq!(net.set_link(mine, fh, LinkConfig::default()), unknown);
        }
    }
}

fn mux(role: Role, now: Instant) -> Connection {
    let mut cfg = Config::default();
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.channel_timeout = Some(Duration::from_secs(4));
    cfg.drain_timeout = Duration::from_secs(10);
    let side = if role == Role::Dialer {
        Side::Dialer
    } else {
        Side::Acceptor
    };
    Connection::new(cfg, side, now).unwrap()
}

fuzz_target!(|input: Input| {
    let l = &input.link;
    let lo = u64::from(l.lat_lo_us) + 1;
    let link = LinkConfig {
        latency: (
            Duration::from_micros(lo),
            Duration::from_micros(lo + u64::from(l.lat_span_us)),
        ),
        bandwidth: l.bandwidth_kb.map(|k| u64::from(k) * 1000 + 1),
        max_chunk: usize::from(l.max_chunk),
        loss_ppm: u32::from(l.ppm[0]) * 3900,
        duplicate_ppm: u32::from(l.ppm[1]) * 3900,
        reorder_ppm: u32::from(l.ppm[2]) * 3900,
        corrupt_ppm: u32::from(l.ppm[3]) * 3900,
        mtu: usize::from(l.mtu),
        ..LinkConfig::default()
    };
    let mut net = Net::new(
        NetConfig {
            link,
            backlog: 4,
            ..NetConfig::default()
        },
        input.seed,
        false,
    );
    let nh = 1 + input.hosts % 4;
    let hosts: Vec<HostId> = (0..nh)
        .map(|i| net.add_host(&format!("h{i}")).unwrap())
        .collect();
    let mut m = Model::default();
    for op in input.ops.iter().take(MAX_OPS) {
        let h = |i: u8| hosts[i as usize % hosts.len()];
        match *op {
            Op::Listen { host, port } => {
                if let Ok(l) = net.listen(h(host), &format!(":{}", port % 8)) {
                    m.listeners.push(l);
                }
            }
            Op::Dial { host, to, port } => {
                let to = Addr {
                    host: h(to),
                    port: u16::from(port % 8),
                };
                let name = format!("{}:{}", net.host_name(to.host).unwrap(), to.port);
                if let Ok(op) = net.dial(h(host), &name) {
                    m.dials.insert(op, (h(host), to));
                }
            }
            Op::Accept { listener } => {
                if let Some(l) = pick(&m.listeners, listener) {
                    match net.accept(l) {
                        Ok(Accept::Ready(c)) => {
                            assert_eq!(net.local_addr(c), net.listener_addr(l));
                            assert!(net.local_addr(c).is_ok());
                            m.conns.push(c);
                            link_peer(&net, &mut m, c);
                        }
                        Ok(Accept::Pending(op)) => {
                            m.accepts.insert(op, l);
                        }
                        Err(_) => {}
                    }
                }
            }
            Op::Send { conn, len } => {
                if let Some(c) = pick(&m.conns, conn) {
                    let data: Vec<u8> = (0..len % 3000)
                        .map(|_| {
                            m.counter += 1;
                            (m.counter.wrapping_mul(0x9e37_79b9) >> 7) as u8
                        })
                        .collect();
                    if net.send(c, &data).is_ok() {
                        m.sent.entry(c).or_default().extend_from_slice(&data);
                    }
                }
            }
            Op::ShutdownWrite { conn } => {
                if let Some(c) = pick(&m.conns, conn) {
                    let _ = net.shutdown_write(c);
                }
            }
            Op::Close { conn } => {
                if let Some(c) = pick(&m.conns, conn) {
                    let _ = net.close(c);
                }
            }
            Op::Reset { conn } => {
                if let Some(c) = pick(&m.conns, conn) {
                    let _ = net.reset(c);
                }
            }
            Op::CloseListener { listener } => {
                if let Some(l) = pick(&m.listeners, listener) {
                    let _ = net.close_listener(l);
                }
            }
            Op::CloseHost { host } => {
                let _ = net.close_host(h(host));
            }
            Op::Crash { host } => net.crash(h(host)).unwrap(),
            Op::Restart { host } => {
                net.restart(h(host)).unwrap();
            }
            Op::Partition { a, b, both } => net.partition(h(a), h(b), both).unwrap(),
            Op::Heal => net.heal(),
            Op::Hold { conn } => {
                if let Some(c) = pick(&m.conns, conn) {
                    net.hold(c).unwrap();
                }
            }
            Op::Release { conn } => {
                if let Some(c) = pick(&m.conns, conn) {
                    net.release(c).unwrap();
                }
            }
            Op::InjectReset { conn } => {
                if let Some(c) = pick(&m.conns, conn) {
                    net.inject_reset(c).unwrap();
                }
            }
            Op::InjectFin { conn } => {
                if let Some(c) = pick(&m.conns, conn) {
                    net.inject_fin(c).unwrap();
                }
            }
            Op::Skew {
                host,
                offset_ms,
                ppm,
            } => net
                .set_skew(
                    h(host),
                    Duration::from_millis(u64::from(offset_ms)),
                    i32::from(ppm),
                )
                .unwrap(),
            Op::Bind { host } => {
                if let Ok(s) = net.bind(h(host), 0) {
                    m.sockets.push(s);
                }
            }
            Op::SendTo { socket, to, len } => {
                if let (Some(s), Some(t)) = (pick(&m.sockets, socket), pick(&m.sockets, to)) {
                    let d: Vec<u8> = (0..len % 2000).map(|i| (i as u8) ^ socket).collect();
                    m.datagrams.push(d.clone());
                    let _ = net.send_to(s, net.socket_addr(t).unwrap(), &d);
                }
            }
            Op::Timer { host, after_ms } => {
                let at = net.now() + Duration::from_millis(u64::from(after_ms));
                net.set_timer(host.map(h), at, 0).unwrap();
            }
            Op::Step { n } => {
                for _ in 0..n {
                    net.step();
                }
            }
            Op::AdvanceMs { ms } => {
                let t = net.now() + Duration::from_millis(u64::from(ms));
                net.advance_to(t);
            }
            Op::Shutdown => net.shutdown(),
            Op::CloseRegistry => net.close_registry(),
            Op::Foreign { what, id } => foreign(&mut net, &hosts, what, id),
        }
        drain(&mut net, &mut m);
    }
    // Heal and run dry: the queue must empty (bounded work).
    net.heal_all();
    for _ in 0..1_000_000 {
        if !net.step() {
            break;
        }
        drain(&mut net, &mut m);
    }
    assert!(net.next_time().is_none(), "the scheduler did not run dry");

    if let Some(w) = &input.world {
        let mut cfg = Swarm::from_seed(w.seed);
        cfg.hosts = 2 + usize::from(w.hosts % 3);
        cfg.chaos = Duration::from_millis(u64::from(w.chaos_ms % 3000));
        // Channel timeout is 4 s: 15 s after the heal is plenty, and cheaper.
        cfg.liveness = Duration::from_secs(15);
        cfg.max_stream = u64::from(w.max_stream % 300_000);
        cfg.partition_one_way = w.flags & 1 != 0;
        cfg.partition_two_way = w.flags & 2 != 0;
        cfg.hold = w.flags & 4 != 0;
        cfg.reset = w.flags & 8 != 0;
        cfg.fin = w.flags & 16 != 0;
        cfg.crash = w.flags & 32 != 0;
        cfg.skew = w.flags & 64 != 0;
        cfg.fault_every = (w.flags & 0x7f != 0)
            .then(|| Duration::from_millis(50 + u64::from(w.fault_every_ms % 2000)));
        cfg.fault_len = Duration::from_millis(1 + u64::from(w.fault_len_ms % 8000));
        let o = world::run(&cfg, mux, false);
        assert!(o.violations.is_empty(), "{cfg}\n{:#?}", o.violations);
    }
});
