//! virtnet's own behaviour, tested the way go123 tests `xnet/virtnet`:
//! exact addresses on listen/dial/accept, the registry errors, and the
//! close matrix (close the network, a host, a listener or a connection
//! before and while each operation is pending; check the exact error).
//! Then the links: order under jitter and re-chunking, partitions, holds,
//! FIN, RST, crash and restart, bandwidth, datagram faults, clock skew.

use proto_core::sim::{
    Accept, Addr, ConnId, FaultKind, HostId, LinkConfig, ListenerId, Net, NetConfig, NetError,
    NetEvent, OpId,
};
use proto_core::time::{Duration, Instant};

fn net() -> Net {
    Net::new(NetConfig::default(), 1, false)
}

/// Runs the scheduler dry and returns every event.
fn run(net: &mut Net) -> Vec<NetEvent> {
    let mut evs = Vec::new();
    while net.step() {
        while let Some(e) = net.poll_event() {
            evs.push(e);
        }
    }
    while let Some(e) = net.poll_event() {
        evs.push(e);
    }
    evs
}

fn dialed(evs: &[NetEvent], op: OpId) -> Result<ConnId, NetError> {
    evs.iter()
        .find_map(|e| match e {
            NetEvent::Dialed { op: o, result } if *o == op => Some(*result),
            _ => None,
        })
        .expect("the dial completed")
}

fn accepted(evs: &[NetEvent], op: OpId) -> Result<ConnId, NetError> {
    evs.iter()
        .find_map(|e| match e {
            NetEvent::Accepted { op: o, result } if *o == op => Some(*result),
            _ => None,
        })
        .expect("the accept completed")
}

fn data(evs: &[NetEvent], c: ConnId) -> Vec<u8> {
    evs.iter()
        .filter_map(|e| match e {
            NetEvent::Data { conn, data } if *conn == c => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Two hosts `α`-like `a`, `b`; `b` listens on `b:1`; `a` dialed it.
struct Setup {
    net: Net,
    a: HostId,
    b: HostId,
    l: ListenerId,
    ca: ConnId,
    cb: ConnId,
}

fn connected() -> Setup {
    let mut net = net();
    let a = net.add_host("a").unwrap();
    let b = net.add_host("b").unwrap();
    let l = net.listen(b, "").unwrap();
    let op = net.dial(a, "b:1").unwrap();
    let evs = run(&mut net);
    let ca = dialed(&evs, op).unwrap();
    let Ok(Accept::Ready(cb)) = net.accept(l) else {
        panic!("a connection is queued")
    };
    Setup {
        net,
        a,
        b,
        l,
        ca,
        cb,
    }
}

fn addr(net: &Net, a: Addr) -> String {
    net.format_addr(a).unwrap()
}

#[test]
fn exact_addresses_on_listen_dial_accept() {
    let mut net = net();
    let a = net.add_host("α").unwrap();
    let b = net.add_host("β").unwrap();
    let l1 = net.listen(a, "").unwrap();
    let l2 = net.listen(a, "α:0").unwrap();
    let l3 = net.listen(b, ":5").unwrap();
    assert_eq!(addr(&net, net.listener_addr(l1).unwrap()), "α:1");
    assert_eq!(addr(&net, net.listener_addr(l2).unwrap()), "α:2");
    assert_eq!(addr(&net, net.listener_addr(l3).unwrap()), "β:5");

    // β dials α:1 and α:2: its ports are handed out lowest-first (5 is taken).
    let d1 = net.dial(b, "α:1").unwrap();
    let d2 = net.dial(b, "α:2").unwrap();
    let evs = run(&mut net);
    let c1 = dialed(&evs, d1).unwrap();
    let c2 = dialed(&evs, d2).unwrap();
    assert_eq!(addr(&net, net.local_addr(c1).unwrap()), "β:1");
    assert_eq!(addr(&net, net.remote_addr(c1).unwrap()), "α:1");
    assert_eq!(addr(&net, net.local_addr(c2).unwrap()), "β:2");
    assert_eq!(addr(&net, net.remote_addr(c2).unwrap()), "α:2");

    // The accepted ends keep the listening port.
    let Ok(Accept::Ready(s1)) = net.accept(l1) else {
        panic!()
    };
    let Ok(Accept::Ready(s2)) = net.accept(l2) else {
        panic!()
    };
    assert_eq!(addr(&net, net.local_addr(s1).unwrap()), "α:1");
    assert_eq!(addr(&net, net.remote_addr(s1).unwrap()), "β:1");
    assert_eq!(addr(&net, net.local_addr(s2).unwrap()), "α:2");
    assert_eq!(addr(&net, net.remote_addr(s2).unwrap()), "β:2");

    // α's next dial takes α:3: ports 1 and 2 hold listeners (and accepted
    // connections on them do not take new ports).
    let d3 = net.dial(a, "β:5").unwrap();
    let evs = run(&mut net);
    assert_eq!(
        addr(&net, net.local_addr(dialed(&evs, d3).unwrap()).unwrap()),
        "α:3"
    );

    // A closed connection gives its port back; the lowest free port is reused.
    net.close(c1).unwrap();
    let d4 = net.dial(b, "α:1").unwrap();
    let evs = run(&mut net);
    assert_eq!(
        addr(&net, net.local_addr(dialed(&evs, d4).unwrap()).unwrap()),
        "β:1"
    );
}

#[test]
fn listen_errors() {
    let mut net = net();
    let a = net.add_host("a").unwrap();
    net.add_host("b").unwrap();
    net.listen(a, ":7").unwrap();
    assert_eq!(net.listen(a, ":7"), Err(NetError::AddressInUse));
    assert_eq!(net.listen(a, "a:7"), Err(NetError::AddressInUse));
    assert_eq!(net.listen(a, "b:8"), Err(NetError::AddressNotListening));
    assert_eq!(net.listen(a, "a:x"), Err(NetError::InvalidAddress));
    assert_eq!(net.listen(a, "nonsense"), Err(NetError::InvalidAddress));
    let mut small = Net::new(
        NetConfig {
            max_ports: 2,
            ..NetConfig::default()
        },
        1,
        false,
    );
    let h = small.add_host("h").unwrap();
    small.listen(h, "").unwrap();
    small.listen(h, "").unwrap();
    assert_eq!(small.listen(h, ""), Err(NetError::AddressInUse));
    assert_eq!(small.listen(h, ":3"), Err(NetError::AddressInUse));
}

#[test]
fn registry_errors() {
    let mut net = net();
    let a = net.add_host("a").unwrap();
    assert_eq!(net.add_host("a"), Err(NetError::HostDuplicate));
    assert_eq!(net.query("a"), Ok(a));
    assert_eq!(net.query("zz"), Err(NetError::NoSuchHost));
    assert_eq!(net.dial(a, "zz:1"), Err(NetError::NoSuchHost));
    assert_eq!(net.dial(a, "a"), Err(NetError::InvalidAddress));
    net.close_registry();
    assert_eq!(net.query("a"), Err(NetError::RegistryDown));
    assert_eq!(net.add_host("c"), Err(NetError::RegistryDown));
    assert_eq!(net.dial(a, "a:1"), Err(NetError::RegistryDown));
    net.shutdown();
    assert_eq!(net.query("a"), Err(NetError::NetworkDown));
    assert_eq!(net.add_host("d"), Err(NetError::NetworkDown));
}

#[test]
fn dial_without_listener_is_refused() {
    let mut s = connected();
    let op = s.net.dial(s.a, "b:9").unwrap();
    let evs = run(&mut s.net);
    assert_eq!(dialed(&evs, op), Err(NetError::ConnectionRefused));
}

// ------------------------------------------------------------ the close matrix

#[derive(Debug, Clone, Copy, PartialEq)]
enum Close {
    Network,
    Host,
    Listener,
    Conn,
}

fn close(s: &mut Setup, what: Close) {
    match what {
        Close::Network => s.net.shutdown(),
        Close::Host => s.net.close_host(s.b).unwrap(),
        Close::Listener => s.net.close_listener(s.l).unwrap(),
        Close::Conn => s.net.close(s.cb).unwrap(),
    }
}

#[test]
fn close_before_each_operation() {
    use Close::*;
    // (what was closed, expected error) for operations on b's side.
    for (what, accept, listen, send, dial_from_b, close_again) in [
        (
            Network,
            NetError::NetworkDown,
            NetError::NetworkDown,
            NetError::NetworkDown,
            NetError::NetworkDown,
            NetError::NetworkDown,
        ),
        (
            Host,
            NetError::HostDown,
            NetError::HostDown,
            NetError::HostDown,
            NetError::HostDown,
            NetError::HostDown,
        ),
        (
            Listener,
            NetError::SocketDown,
            NetError::AddressInUse, // b:1 still carries the accepted connection
            NetError::SocketDown,   // (unused: the conn is open; see below)
            NetError::SocketDown,
            NetError::SocketDown,
        ),
        (
            Conn,
            NetError::SocketDown,
            NetError::AddressInUse,
            NetError::SocketDown,
            NetError::SocketDown,
            NetError::SocketDown,
        ),
    ] {
        let mut s = connected();
        close(&mut s, what);
        if what != Conn {
            assert_eq!(s.net.accept(s.l), Err(accept), "accept after {what:?}");
            assert_eq!(
                s.net.close_listener(s.l),
                Err(close_again),
                "close listener after {what:?}"
            );
        }
        if what != Listener {
            assert_eq!(s.net.send(s.cb, b"x"), Err(send), "send after {what:?}");
            assert_eq!(s.net.close(s.cb), Err(close_again), "close after {what:?}");
            assert_eq!(s.net.reset(s.cb), Err(close_again), "reset after {what:?}");
        } else {
            // Closing a listener leaves accepted connections alone.
            assert_eq!(s.net.send(s.cb, b"x"), Ok(()));
        }
        if matches!(what, Network | Host) {
            assert_eq!(
                s.net.listen(s.b, ":1"),
                Err(listen),
                "listen after {what:?}"
            );
            assert_eq!(
                s.net.dial(s.b, "a:1"),
                Err(dial_from_b),
                "dial after {what:?}"
            );
        } else {
            assert_eq!(
                s.net.listen(s.b, ":1"),
                Err(listen),
                "listen after {what:?}"
            );
        }
        // Dialing the closed side from a.
        let d = s.net.dial(s.a, "b:1");
        let evs = run(&mut s.net);
        match what {
            Network => assert_eq!(d, Err(NetError::NetworkDown)),
            Host | Listener => {
                assert_eq!(dialed(&evs, d.unwrap()), Err(NetError::ConnectionRefused))
            }
            Conn => assert!(dialed(&evs, d.unwrap()).is_ok(), "the listener is still up"),
        }
    }
}

#[test]
fn close_while_dial_is_pending() {
    for (what, want) in [
        (Close::Network, NetError::NetworkDown),
        (Close::Host, NetError::ConnectionRefused), // the destination host
        (Close::Listener, NetError::ConnectionRefused),
    ] {
        let mut s = connected();
        let op = s.net.dial(s.a, "b:1").unwrap();
        close(&mut s, what); // the SYN is still on the wire
        let evs = run(&mut s.net);
        assert_eq!(dialed(&evs, op), Err(want), "dial while {what:?} closes");
    }
    // The dialing host itself closes.
    let mut s = connected();
    let op = s.net.dial(s.a, "b:1").unwrap();
    s.net.close_host(s.a).unwrap();
    let evs = run(&mut s.net);
    assert_eq!(dialed(&evs, op), Err(NetError::HostDown));
    // Nothing was left half-open on b: the listener has no queued connection
    // except the first one, which was reset.
    assert!(matches!(s.net.accept(s.l), Ok(Accept::Pending(_))));
}

/// Dialing an address on a host that is down is `ConnectionRefused`, as in
/// go123 (`TestClose`, "host1.Dial vs host2.Close": the closed host keeps
/// its registry entry, its listener is shut, the dial is refused), whether
/// the host was closed or crashed, with or without a listener on the port,
/// by name or by address. The dialer's port is given back each time.
#[test]
fn dial_to_a_down_host_is_refused() {
    #[derive(Debug, Clone, Copy)]
    enum Down {
        Closed,
        Crashed,
    }
    for down in [Down::Closed, Down::Crashed] {
        for port in ["b:1", "b:7"] {
            for by_addr in [false, true] {
                let mut s = connected();
                match down {
                    Down::Closed => s.net.close_host(s.b).unwrap(),
                    Down::Crashed => s.net.crash(s.b).unwrap(),
                }
                let _ = run(&mut s.net);
                assert_eq!(s.net.query("b"), Ok(s.b), "a down host stays registered");
                // The port the dial will take: a's lowest free one.
                let probe = s.net.listen(s.a, "").unwrap();
                let free = s.net.listener_addr(probe).unwrap();
                s.net.close_listener(probe).unwrap();
                let op = if by_addr {
                    let to = s.net.parse_addr(port).unwrap();
                    s.net.dial_addr(s.a, to).unwrap()
                } else {
                    s.net.dial(s.a, port).unwrap()
                };
                let evs = run(&mut s.net);
                assert_eq!(
                    dialed(&evs, op),
                    Err(NetError::ConnectionRefused),
                    "dial {port} (by address: {by_addr}) to a {down:?} host"
                );
                let l = s.net.listen(s.a, "").unwrap();
                assert_eq!(s.net.listener_addr(l), Ok(free), "the port is free again");
            }
        }
    }
    // The close racing the dial: the SYN is on the wire when b goes down.
    for crash in [false, true] {
        let mut s = connected();
        let op = s.net.dial(s.a, "b:1").unwrap();
        if crash {
            s.net.crash(s.b).unwrap();
        } else {
            s.net.close_host(s.b).unwrap();
        }
        let evs = run(&mut s.net);
        assert_eq!(
            dialed(&evs, op),
            Err(NetError::ConnectionRefused),
            "crash: {crash}"
        );
    }
}

#[test]
fn close_while_accept_is_pending() {
    for (what, want) in [
        (Close::Network, NetError::NetworkDown),
        (Close::Host, NetError::HostDown),
        (Close::Listener, NetError::SocketDown),
    ] {
        let mut s = connected();
        let Ok(Accept::Pending(op)) = s.net.accept(s.l) else {
            panic!("nothing is queued")
        };
        close(&mut s, what);
        let evs = run(&mut s.net);
        assert_eq!(
            accepted(&evs, op),
            Err(want),
            "accept while {what:?} closes"
        );
    }
    // A pending accept completes with the next connection.
    let mut s = connected();
    let Ok(Accept::Pending(op)) = s.net.accept(s.l) else {
        panic!()
    };
    let d = s.net.dial(s.a, "b:1").unwrap();
    let evs = run(&mut s.net);
    let c = dialed(&evs, d).unwrap();
    let sc = accepted(&evs, op).unwrap();
    assert_eq!(s.net.remote_addr(sc).unwrap(), s.net.local_addr(c).unwrap());
}

#[test]
fn close_while_receive_is_pending() {
    // b's connection waits for data; then each close happens.
    for (what, want) in [
        (
            Close::Network,
            NetEvent::Down {
                conn: ConnId(0),
                err: NetError::NetworkDown,
            },
        ),
        (
            Close::Host,
            NetEvent::Down {
                conn: ConnId(0),
                err: NetError::HostDown,
            },
        ),
    ] {
        let mut s = connected();
        close(&mut s, what);
        let evs = run(&mut s.net);
        let want = match want {
            NetEvent::Down { err, .. } => NetEvent::Down { conn: s.cb, err },
            w => w,
        };
        assert!(evs.contains(&want), "{what:?}: {evs:?}");
        if what == Close::Host {
            // The peer of a closed host is reset.
            assert!(evs.contains(&NetEvent::Reset(s.ca)), "{evs:?}");
            assert_eq!(s.net.send(s.ca, b"x"), Err(NetError::SocketDown));
        } else {
            assert_eq!(s.net.send(s.ca, b"x"), Err(NetError::NetworkDown));
        }
    }
    // The peer closes: FIN after its data; our later sends are answered by a reset.
    let mut s = connected();
    s.net.send(s.ca, b"bye").unwrap();
    s.net.close(s.ca).unwrap();
    let evs = run(&mut s.net);
    assert_eq!(data(&evs, s.cb), b"bye");
    assert!(evs.contains(&NetEvent::Fin(s.cb)));
    s.net.send(s.cb, b"late").unwrap();
    let evs = run(&mut s.net);
    assert!(evs.contains(&NetEvent::Reset(s.cb)), "{evs:?}");
    assert_eq!(s.net.send(s.cb, b"x"), Err(NetError::SocketDown));
}

#[test]
fn write_after_shutdown_and_reset_errors() {
    let mut s = connected();
    s.net.shutdown_write(s.ca).unwrap();
    assert_eq!(s.net.send(s.ca, b"x"), Err(NetError::SocketDown));
    s.net.reset(s.cb).unwrap();
    let evs = run(&mut s.net);
    assert!(evs.contains(&NetEvent::Fin(s.cb)) || !evs.contains(&NetEvent::Reset(s.cb)));
    assert!(evs.contains(&NetEvent::Reset(s.ca)), "{evs:?}");
    assert_eq!(s.net.send(s.ca, b"x"), Err(NetError::SocketDown));
}

// ------------------------------------------------------------ links

#[test]
fn jitter_and_rechunking_keep_order() {
    let mut s = connected();
    let link = LinkConfig {
        latency: (Duration::from_micros(10), Duration::from_millis(50)),
        max_chunk: 7,
        ..LinkConfig::default()
    };
    s.net.set_link(s.a, s.b, link).unwrap();
    let sent: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    for piece in sent.chunks(37) {
        s.net.send(s.ca, piece).unwrap();
    }
    let evs = run(&mut s.net);
    assert_eq!(data(&evs, s.cb), sent);
    for e in &evs {
        if let NetEvent::Data { data, .. } = e {
            assert!((1..=7).contains(&data.len()));
        }
    }
    assert!(s.net.fault_counts()[FaultKind::Rechunk as usize] > 0);
}

#[test]
fn partitions_delay_bytes_and_heal_delivers_them() {
    let mut s = connected();
    s.net.partition(s.a, s.b, false).unwrap();
    s.net.send(s.ca, b"to b").unwrap();
    s.net.send(s.cb, b"to a").unwrap();
    let evs = run(&mut s.net);
    assert_eq!(data(&evs, s.cb), b"", "a -> b is cut");
    assert_eq!(data(&evs, s.ca), b"to a", "b -> a still works");
    s.net.partition(s.a, s.b, true).unwrap();
    s.net.send(s.cb, b" again").unwrap();
    let evs = run(&mut s.net);
    assert_eq!(data(&evs, s.ca), b"");
    s.net.heal();
    let evs = run(&mut s.net);
    assert_eq!(data(&evs, s.cb), b"to b");
    assert_eq!(data(&evs, s.ca), b" again");
    let f = s.net.fault_counts();
    assert_eq!(f[FaultKind::PartitionOneWay as usize], 1);
    assert_eq!(f[FaultKind::PartitionTwoWay as usize], 1);
    assert_eq!(f[FaultKind::Heal as usize], 1);
}

#[test]
fn hold_and_release() {
    let mut s = connected();
    s.net.hold(s.cb).unwrap();
    s.net.send(s.ca, b"held").unwrap();
    let evs = run(&mut s.net);
    assert!(data(&evs, s.cb).is_empty());
    s.net.release(s.cb).unwrap();
    let evs = run(&mut s.net);
    assert_eq!(data(&evs, s.cb), b"held");
}

#[test]
fn reset_loses_what_is_in_flight() {
    let mut s = connected();
    s.net.send(s.ca, b"lost").unwrap();
    s.net.inject_reset(s.ca).unwrap();
    let evs = run(&mut s.net);
    assert!(data(&evs, s.cb).is_empty(), "{evs:?}");
    assert!(evs.contains(&NetEvent::Reset(s.ca)));
    assert!(evs.contains(&NetEvent::Reset(s.cb)));
    assert_eq!(s.net.send(s.ca, b"x"), Err(NetError::SocketDown));
}

#[test]
fn fin_injected_under_one_end() {
    let mut s = connected();
    s.net.send(s.ca, b"last words").unwrap();
    assert!(s.net.inject_fin(s.ca).unwrap());
    let evs = run(&mut s.net);
    assert_eq!(data(&evs, s.cb), b"last words");
    assert!(evs.contains(&NetEvent::Fin(s.cb)));
    assert_eq!(s.net.send(s.ca, b"x"), Err(NetError::SocketDown));
    assert!(!s.net.inject_fin(s.ca).unwrap(), "already closed");
}

#[test]
fn crash_is_silent_and_restart_resets_old_connections() {
    let mut s = connected();
    let t = s.net.now() + Duration::from_secs(1);
    s.net.set_timer(Some(s.b), t, 42).unwrap();
    s.net.crash(s.b).unwrap();
    assert!(!s.net.host_up(s.b));
    s.net.send(s.ca, b"into the void").unwrap();
    let evs = run(&mut s.net);
    assert!(
        evs.is_empty(),
        "a crash says nothing, and its timers are gone: {evs:?}"
    );
    assert_eq!(s.net.listen(s.b, ""), Err(NetError::HostDown));
    assert!(s.net.restart(s.b).unwrap());
    assert!(!s.net.restart(s.b).unwrap(), "only a crashed host restarts");
    s.net.send(s.ca, b"hello?").unwrap();
    let evs = run(&mut s.net);
    assert!(evs.contains(&NetEvent::Reset(s.ca)), "{evs:?}");
    // The restarted host starts with every port free.
    let l = s.net.listen(s.b, "").unwrap();
    assert_eq!(
        s.net.format_addr(s.net.listener_addr(l).unwrap()).unwrap(),
        "b:1"
    );
}

#[test]
fn bandwidth_spaces_out_a_burst() {
    let mut s = connected();
    let link = LinkConfig {
        bandwidth: Some(1_000_000),
        ..LinkConfig::default()
    };
    s.net.set_link(s.a, s.b, link).unwrap();
    let t0 = s.net.now();
    for _ in 0..100 {
        s.net.send(s.ca, &[0u8; 10_000]).unwrap();
    }
    let evs = run(&mut s.net);
    assert_eq!(data(&evs, s.cb).len(), 1_000_000);
    // Virtual time: 1 MB at 1 MB/s takes one second plus the latency.
    assert_eq!(s.net.now() - t0, Duration::from_millis(1001));
}

#[test]
fn datagram_faults() {
    let mut net = net();
    let a = net.add_host("a").unwrap();
    let b = net.add_host("b").unwrap();
    let sa = net.bind(a, 0).unwrap();
    let sb = net.bind(b, 53).unwrap();
    let to = net.socket_addr(sb).unwrap();
    assert_eq!(net.bind(b, 53), Err(NetError::AddressInUse));
    let received = |net: &mut Net| -> Vec<Vec<u8>> {
        run(net)
            .into_iter()
            .filter_map(|e| match e {
                NetEvent::Datagram { socket, from, data } if socket == sb => {
                    assert_eq!(from.host, a);
                    Some(data)
                }
                _ => None,
            })
            .collect()
    };
    let msg = b"0123456789".to_vec();

    net.send_to(sa, to, &msg).unwrap();
    assert_eq!(received(&mut net), vec![msg.clone()], "a clean link");

    let set = |net: &mut Net, l: LinkConfig| net.set_link(a, b, l).unwrap();
    set(
        &mut net,
        LinkConfig {
            loss_ppm: 1_000_000,
            ..LinkConfig::default()
        },
    );
    net.send_to(sa, to, &msg).unwrap();
    assert!(received(&mut net).is_empty(), "lost");

    set(
        &mut net,
        LinkConfig {
            duplicate_ppm: 1_000_000,
            ..LinkConfig::default()
        },
    );
    net.send_to(sa, to, &msg).unwrap();
    assert_eq!(
        received(&mut net),
        vec![msg.clone(), msg.clone()],
        "duplicated"
    );

    set(
        &mut net,
        LinkConfig {
            corrupt_ppm: 1_000_000,
            ..LinkConfig::default()
        },
    );
    net.send_to(sa, to, &msg).unwrap();
    let got = received(&mut net);
    let flipped: u32 = got[0]
        .iter()
        .zip(&msg)
        .map(|(x, y)| (x ^ y).count_ones())
        .sum();
    assert_eq!(flipped, 1, "exactly one bit flipped");

    set(
        &mut net,
        LinkConfig {
            mtu: 5,
            ..LinkConfig::default()
        },
    );
    net.send_to(sa, to, &msg).unwrap();
    net.send_to(sa, to, b"tiny").unwrap();
    assert_eq!(
        received(&mut net),
        vec![b"tiny".to_vec()],
        "above the MTU is dropped"
    );

    set(
        &mut net,
        LinkConfig {
            reorder_ppm: 500_000,
            reorder_delay: Duration::from_millis(50),
            ..LinkConfig::default()
        },
    );
    for i in 0..50u8 {
        net.send_to(sa, to, &[i]).unwrap();
    }
    let got: Vec<u8> = received(&mut net).into_iter().map(|d| d[0]).collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, (0..50).collect::<Vec<u8>>(), "nothing lost");
    assert_ne!(got, sorted, "some overtaken");

    let f = net.fault_counts();
    for k in [
        FaultKind::Loss,
        FaultKind::Duplicate,
        FaultKind::Corrupt,
        FaultKind::MtuDrop,
        FaultKind::Reorder,
    ] {
        assert!(f[k as usize] > 0, "{}", k.name());
    }
    // A partition loses datagrams (no retransmission for them).
    set(&mut net, LinkConfig::default());
    net.partition(a, b, false).unwrap();
    net.send_to(sa, to, &msg).unwrap();
    assert!(received(&mut net).is_empty());
    net.heal();
    net.close_socket(sb).unwrap();
    assert_eq!(net.close_socket(sb), Err(NetError::SocketDown));
    assert_eq!(net.send_to(sb, to, &msg), Err(NetError::SocketDown));
}

#[test]
fn clock_skew_and_timers() {
    let mut net = net();
    let a = net.add_host("a").unwrap();
    net.set_skew(a, Duration::from_secs(100), 1000).unwrap(); // +100 s, 0.1 % fast
    assert_eq!(
        net.local_time(a).unwrap(),
        Instant::from_nanos(100_000_000_000)
    );
    net.advance_to(Instant::from_nanos(1_000_000_000));
    assert_eq!(
        net.local_time(a).unwrap(),
        Instant::from_nanos(101_001_000_000)
    );
    // A deadline in a's time maps to the first global instant it is reached.
    let local = Instant::from_nanos(103_003_000_000);
    let g = net.global_time(a, local).unwrap();
    assert_eq!(g, Instant::from_nanos(3_000_000_000));
    net.set_timer(Some(a), g, 7).unwrap();
    let evs = run(&mut net);
    assert_eq!(
        evs,
        vec![NetEvent::Timer {
            host: Some(a),
            token: 7
        }]
    );
    assert!(net.local_time(a).unwrap() >= local);
    // Slow clocks too.
    net.set_skew(a, Duration::ZERO, -500).unwrap();
    let g = net
        .global_time(a, Instant::from_nanos(10_000_000_000))
        .unwrap();
    assert!(g > Instant::from_nanos(10_000_000_000));
}

#[test]
fn cancelled_timers_do_not_fire_and_order_is_time_then_sequence() {
    let mut net = net();
    let t = Instant::from_nanos(5);
    let x = net.set_timer(None, t, 1).unwrap();
    net.set_timer(None, t, 2).unwrap();
    net.set_timer(None, Instant::from_nanos(4), 3).unwrap();
    net.set_timer(None, t, 4).unwrap();
    net.cancel_timer(x);
    let tokens: Vec<u64> = run(&mut net)
        .into_iter()
        .map(|e| match e {
            NetEvent::Timer { token, .. } => token,
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(tokens, [3, 2, 4]);
}

#[test]
fn a_new_host_does_not_shift_another_links_draws() {
    let arrivals = |extra: bool| {
        let mut net = Net::new(
            NetConfig {
                link: LinkConfig {
                    latency: (Duration::from_millis(1), Duration::from_millis(90)),
                    ..LinkConfig::default()
                },
                ..NetConfig::default()
            },
            99,
            false,
        );
        let a = net.add_host("a").unwrap();
        let b = net.add_host("b").unwrap();
        let l = net.listen(b, "").unwrap();
        if extra {
            // Another host with its own traffic, joined in the middle.
            let c = net.add_host("c").unwrap();
            let lc = net.listen(c, "").unwrap();
            net.dial(a, "c:1").unwrap();
            let _ = lc;
        }
        let op = net.dial(a, "b:1").unwrap();
        let mut times = Vec::new();
        let mut conn = None;
        while net.step() {
            while let Some(e) = net.poll_event() {
                match e {
                    NetEvent::Dialed { op: o, result } if o == op => conn = Some(result.unwrap()),
                    NetEvent::Data { .. } => times.push(Duration::ZERO),
                    _ => {}
                }
            }
        }
        let c = conn.unwrap();
        let Ok(Accept::Ready(_)) = net.accept(l) else {
            panic!()
        };
        times.clear();
        for _ in 0..20 {
            let sent = net.now();
            net.send(c, b"x").unwrap();
            // Step one item at a time so each arrival's time is seen.
            let until = sent + Duration::from_millis(200);
            while net.next_time().is_some_and(|t| t <= until) {
                net.step();
                while let Some(e) = net.poll_event() {
                    if let NetEvent::Data { .. } = e {
                        times.push(net.now() - sent);
                    }
                }
            }
            net.advance_to(until);
        }
        times
    };
    // With a host more, the a -> b link draws the same latencies.
    let without = arrivals(false);
    let with = arrivals(true);
    assert_eq!(without.len(), 20);
    assert_eq!(without, with);
}

#[test]
fn a_crash_drops_queued_connections_silently() {
    let mut net = net();
    let a = net.add_host("a").unwrap();
    let b = net.add_host("b").unwrap();
    net.listen(b, "").unwrap();
    let op = net.dial(a, "b:1").unwrap();
    let evs = run(&mut net);
    let c = dialed(&evs, op).unwrap(); // queued on b, never accepted
    net.crash(b).unwrap();
    assert!(run(&mut net).is_empty(), "nothing tells a about the crash");
    net.restart(b).unwrap();
    net.send(c, b"anyone?").unwrap();
    let evs = run(&mut net);
    assert_eq!(evs, vec![NetEvent::Reset(c)]);
}

// ------------------------------------------------------------ ids from elsewhere

/// Every operation given an id this network never handed out (here: ids
/// from a bigger network) fails with `UnknownId` instead of panicking, and
/// leaves the network as it was.
#[test]
fn foreign_ids_are_errors_not_panics() {
    // The bigger network: its third host, second listener and fourth
    // connection have no counterpart in `s`.
    let mut big = net();
    for n in ["x", "y", "z"] {
        big.add_host(n).unwrap();
    }
    let y = big.query("y").unwrap();
    let z = big.query("z").unwrap();
    big.listen(y, "").unwrap();
    let fl = big.listen(z, "").unwrap();
    big.dial(y, "z:1").unwrap();
    let op = big.dial(y, "z:1").unwrap();
    let fc = dialed(&run(&mut big), op).unwrap();
    assert_eq!(fc, ConnId(3));
    big.bind(z, 0).unwrap();
    let fs = big.bind(z, 0).unwrap();
    let fh = z;

    let mut s = connected();
    let before = s.net.trace().hash();
    let u = Err(NetError::UnknownId);
    let now = s.net.now();
    // Host ids.
    assert_eq!(s.net.listen(fh, ":0").err(), u.err());
    assert_eq!(s.net.dial(fh, "b:1").err(), u.err());
    let to = s.net.listener_addr(s.l).unwrap();
    assert_eq!(s.net.dial_addr(fh, to).err(), u.err());
    assert_eq!(s.net.bind(fh, 0).err(), u.err());
    assert_eq!(s.net.close_host(fh), u);
    assert_eq!(s.net.crash(fh), u);
    assert_eq!(s.net.restart(fh), Err(NetError::UnknownId));
    assert_eq!(s.net.partition(s.a, fh, true), u);
    assert_eq!(s.net.partition(fh, s.a, false), u);
    assert_eq!(s.net.set_link(fh, s.a, LinkConfig::default()), u);
    assert_eq!(s.net.set_skew(fh, Duration::from_millis(1), 3), u);
    assert_eq!(s.net.set_timer(Some(fh), now, 0).err(), u.err());
    assert_eq!(s.net.local_time(fh).err(), u.err());
    assert_eq!(s.net.global_time(fh, now).err(), u.err());
    assert_eq!(s.net.host_name(fh).err(), u.err());
    assert_eq!(s.net.format_addr(Addr { host: fh, port: 1 }).err(), u.err());
    assert!(!s.net.host_up(fh));
    // Listener ids.
    assert_eq!(s.net.accept(fl).err(), u.err());
    assert_eq!(s.net.close_listener(fl), u);
    assert_eq!(s.net.listener_addr(fl).err(), u.err());
    // Connection ids.
    assert_eq!(s.net.send(fc, b"x"), u);
    assert_eq!(s.net.shutdown_write(fc), u);
    assert_eq!(s.net.close(fc), u);
    assert_eq!(s.net.reset(fc), u);
    assert_eq!(s.net.hold(fc), u);
    assert_eq!(s.net.release(fc), u);
    assert_eq!(s.net.inject_reset(fc), u);
    assert_eq!(s.net.inject_fin(fc), Err(NetError::UnknownId));
    assert_eq!(s.net.local_addr(fc).err(), u.err());
    assert_eq!(s.net.remote_addr(fc).err(), u.err());
    // Socket ids (and a datagram to an unknown host from a real socket).
    assert_eq!(s.net.close_socket(fs), u);
    assert_eq!(s.net.socket_addr(fs).err(), u.err());
    assert_eq!(s.net.send_to(fs, to, b"x"), u);
    let mine = s.net.bind(s.a, 0).unwrap();
    let far = Addr { host: fh, port: 1 };
    assert_eq!(s.net.send_to(mine, far, b"x"), Err(NetError::NoSuchHost));
    assert_eq!(s.net.dial_addr(s.a, far).err(), Some(NetError::NoSuchHost));

    // Nothing moved: the existing connection still carries bytes both
    // ways, and the only trace records added are the refused operations.
    assert_ne!(s.net.trace().hash(), before, "the refusals are traced");
    s.net.send(s.ca, b"ping").unwrap();
    s.net.send(s.cb, b"pong").unwrap();
    let evs = run(&mut s.net);
    assert_eq!(data(&evs, s.cb), b"ping");
    assert_eq!(data(&evs, s.ca), b"pong");
    assert!(s.net.host_up(s.a) && s.net.host_up(s.b));
}

/// An id that was valid once (a closed connection or listener, a closed
/// socket, a host that was closed) keeps answering with the close's error,
/// never a panic, and never `UnknownId`.
#[test]
fn stale_ids_report_the_close() {
    let mut s = connected();
    let sock = s.net.bind(s.a, 0).unwrap();
    s.net.close_socket(sock).unwrap();
    s.net.close(s.ca).unwrap();
    s.net.close_listener(s.l).unwrap();
    assert_eq!(s.net.close_socket(sock), Err(NetError::SocketDown));
    assert_eq!(s.net.send(s.ca, b"x"), Err(NetError::SocketDown));
    assert_eq!(s.net.accept(s.l).err(), Some(NetError::SocketDown));
    // Addresses of closed things stay readable (they are what was).
    assert_eq!(addr(&s.net, s.net.local_addr(s.ca).unwrap()), "a:1");
    assert_eq!(addr(&s.net, s.net.listener_addr(s.l).unwrap()), "b:1");
    s.net.close_host(s.b).unwrap();
    assert_eq!(s.net.close_host(s.b), Err(NetError::HostDown));
    assert_eq!(s.net.send(s.cb, b"x"), Err(NetError::HostDown));
    assert_eq!(s.net.restart(s.b), Ok(false), "a closed host stays down");
    // Fault injections on stale ids are accepted and change nothing.
    assert_eq!(s.net.hold(s.cb), Ok(()));
    assert_eq!(s.net.inject_fin(s.cb), Ok(false));
    assert_eq!(s.net.crash(s.b), Ok(()));
}
