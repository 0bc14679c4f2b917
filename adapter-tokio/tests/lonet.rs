//! lonet: the virtual network's host/registry API over loopback TCP, with
//! the registry in a file. Exact addresses, the registry errors, closes
//! racing accept, the mux over a lonet connection, and two processes
//! meeting through one registry file.

use adapter_core::proto_core::mux::{Config as MuxConfig, Connection as Core, Side};
use adapter_core::proto_core::sim::{world, NetError, Role, Swarm};
use adapter_core::proto_core::time::{Duration, Instant};
use adapter_tokio::lonet::{LoHost, LoNet, LoNetConfig, LoSimNet};
use adapter_tokio::{Config, Connection};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn registry(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("weft-lonet-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[tokio::test(flavor = "current_thread")]
async fn exact_addresses() {
    let path = registry("addr");
    // Two handles on one file stand in for two processes.
    let n1 = LoNet::open(&path).unwrap();
    let n2 = LoNet::open(&path).unwrap();
    let a = n1.new_host("α").unwrap();
    let b = n2.new_host("β").unwrap();
    let l1 = a.listen("").await.unwrap();
    let l2 = a.listen("α:0").await.unwrap();
    let l5 = b.listen(":5").await.unwrap();
    assert_eq!(l1.addr(), "α:1");
    assert_eq!(l2.addr(), "α:2");
    assert_eq!(l5.addr(), "β:5");

    let (c1, s1) = tokio::join!(b.dial("α:1"), l1.accept());
    let (c1, s1) = (c1.unwrap(), s1.unwrap());
    assert_eq!((c1.local_addr(), c1.remote_addr()), ("β:1", "α:1"));
    assert_eq!((s1.local_addr(), s1.remote_addr()), ("α:1", "β:1"));
    let (c2, s2) = tokio::join!(b.dial("α:2"), l2.accept());
    let (c2, s2) = (c2.unwrap(), s2.unwrap());
    assert_eq!((c2.local_addr(), s2.remote_addr()), ("β:2", "β:2"));
    // A closed connection gives its port back.
    drop(c1);
    let (c3, _s3) = tokio::join!(b.dial("α:1"), l1.accept());
    assert_eq!(c3.unwrap().local_addr(), "β:1");
    drop((s1, c2, s2));
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn registry_and_listen_errors() {
    let path = registry("errors");
    let n1 = LoNet::open(&path).unwrap();
    let n2 = LoNet::open(&path).unwrap();
    let a = n1.new_host("a").unwrap();
    assert_eq!(n2.new_host("a").unwrap_err(), NetError::HostDuplicate);
    assert_eq!(n2.query("a"), Ok(()));
    assert_eq!(n2.query("zz"), Err(NetError::NoSuchHost));
    assert_eq!(a.dial("zz:1").await.unwrap_err(), NetError::NoSuchHost);
    assert_eq!(
        a.dial("a:9").await.unwrap_err(),
        NetError::ConnectionRefused
    );
    let _l = a.listen(":7").await.unwrap();
    assert_eq!(a.listen(":7").await.unwrap_err(), NetError::AddressInUse);
    assert_eq!(
        a.listen("b:8").await.unwrap_err(),
        NetError::AddressNotListening
    );
    assert_eq!(
        a.listen("nonsense").await.unwrap_err(),
        NetError::InvalidAddress
    );
    n2.close_registry().unwrap();
    assert_eq!(n1.query("a"), Err(NetError::RegistryDown));
    assert_eq!(n1.new_host("c").unwrap_err(), NetError::RegistryDown);
    assert_eq!(a.dial("a:7").await.unwrap_err(), NetError::RegistryDown);
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn closes_before_and_while_accepting() {
    let path = registry("close");
    let net = LoNet::open(&path).unwrap();
    let a = net.new_host("a").unwrap();
    let b = net.new_host("b").unwrap();

    // Listener closed while an accept waits.
    let l = a.listen("").await.unwrap();
    let (r, ()) = tokio::join!(l.accept(), async {
        tokio::task::yield_now().await;
        l.close().unwrap();
    });
    assert_eq!(r.unwrap_err(), NetError::SocketDown);
    assert_eq!(l.accept().await.unwrap_err(), NetError::SocketDown);
    assert_eq!(l.close().unwrap_err(), NetError::SocketDown);
    assert_eq!(
        b.dial("a:1").await.unwrap_err(),
        NetError::ConnectionRefused
    );
    // The port is free again.
    let l = a.listen(":1").await.unwrap();

    // Host closed while an accept waits.
    let (r, ()) = tokio::join!(l.accept(), async {
        tokio::task::yield_now().await;
        a.close().unwrap();
    });
    assert_eq!(r.unwrap_err(), NetError::HostDown);
    assert_eq!(a.listen("").await.unwrap_err(), NetError::HostDown);
    assert_eq!(a.dial("b:1").await.unwrap_err(), NetError::HostDown);
    assert_eq!(a.close().unwrap_err(), NetError::HostDown);
    assert_eq!(
        b.dial("a:1").await.unwrap_err(),
        NetError::ConnectionRefused
    );
    std::fs::remove_file(&path).unwrap();
}

async fn echo_server(host: LoHost) {
    let l = host.listen("").await.unwrap();
    serve_echo(l.accept().await.unwrap()).await;
}

async fn serve_echo(c: adapter_tokio::lonet::LoConn) {
    let conn = Connection::server(c.stream, Config::default()).unwrap();
    let mut f = conn.accept_flow().await.unwrap();
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).await.unwrap();
    f.write_all(&buf).await.unwrap();
    f.shutdown().await.unwrap();
    conn.closed().await;
}

async fn echo_client(host: &LoHost, to: &str) -> Vec<u8> {
    let c = host.dial(to).await.unwrap();
    let conn = Connection::client(c.stream, Config::default()).unwrap();
    let mut f = conn.open_flow().await.unwrap();
    f.write_all(b"over lonet").await.unwrap();
    f.shutdown().await.unwrap();
    let mut got = Vec::new();
    f.read_to_end(&mut got).await.unwrap();
    conn.go_away(0);
    conn.closed().await;
    got
}

#[tokio::test(flavor = "current_thread")]
async fn the_mux_runs_over_lonet() {
    let path = registry("mux");
    let net = LoNet::open(&path).unwrap();
    let s = net.new_host("server").unwrap();
    let c = net.new_host("client").unwrap();
    let l = s.listen("").await.unwrap();
    let serve = async {
        let conn = l.accept().await.unwrap();
        assert_eq!(conn.remote_addr(), "client:1");
        serve_echo(conn).await;
    };
    let (got, ()) = tokio::join!(echo_client(&c, "server:1"), serve);
    assert_eq!(got, b"over lonet");
    std::fs::remove_file(&path).unwrap();
}

/// The child half of the cross-process test: announces `child`, serves one
/// echo over the mux, exits.
#[tokio::test(flavor = "current_thread")]
async fn child_process_server() {
    let Some(path) = std::env::var_os("WEFT_LONET_CHILD") else {
        return;
    };
    let net = LoNet::open(path).unwrap();
    echo_server(net.new_host("child").unwrap()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn two_processes_meet_through_the_registry_file() {
    let path = registry("procs");
    let net = LoNet::open(&path).unwrap();
    let me = net.new_host("parent").unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_server", "--test-threads=1"])
        .env("WEFT_LONET_CHILD", &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the test binary runs");
    // The child announces itself and listens on child:1.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if net.query("child").is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child never announced itself"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let got = loop {
        match me.dial("child:1").await {
            Ok(c) => {
                assert_eq!(c.remote_addr(), "child:1");
                let conn = Connection::client(c.stream, Config::default()).unwrap();
                let mut f = conn.open_flow().await.unwrap();
                f.write_all(b"across processes").await.unwrap();
                f.shutdown().await.unwrap();
                let mut got = Vec::new();
                f.read_to_end(&mut got).await.unwrap();
                conn.go_away(0);
                conn.closed().await;
                break got;
            }
            Err(NetError::ConnectionRefused) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "child:1 never listened"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(got, b"across processes");
    // Wait without blocking the runtime: our driver still has to finish
    // the close with the child.
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(&path).unwrap();
}

fn mux(role: Role, now: Instant) -> Core {
    let mut cfg = MuxConfig::default();
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.channel_timeout = Some(Duration::from_secs(4));
    let side = if role == Role::Dialer {
        Side::Dialer
    } else {
        Side::Acceptor
    };
    Core::new(cfg, side, now).unwrap()
}

/// One scenario, two networks: the simulator's standard scenario (hosts
/// h0..h2 dialing each other, echo streams checked byte by byte, drain and
/// close after the heal) runs unchanged on real loopback sockets.
#[test]
fn the_standard_scenario_runs_on_loopback_too() {
    let mut cfg = Swarm::calm(7, 3);
    cfg.chaos = Duration::from_secs(1);
    cfg.liveness = Duration::from_secs(6);
    cfg.tick = Duration::from_millis(40);
    cfg.max_stream = 200_000;

    let simulated = world::run(&cfg, mux, false);
    assert!(
        simulated.violations.is_empty(),
        "{:?}",
        simulated.violations
    );

    let path = registry("world");
    let real = world::run_on(&cfg, mux, LoSimNet::new(&path).unwrap());
    println!("simulated:\n{simulated}\nloopback:\n{real}");
    assert!(real.violations.is_empty(), "{:?}", real.violations);
    assert!(real.streams >= 5, "{real}");
    assert_eq!(real.completed, real.streams, "{real}");
    assert!(real.connections >= 3, "{real}");
    std::fs::remove_file(&path).unwrap();
}

/// The registry file is bounded: new claims stop at the configured size
/// with `RegistryFull` (the file never passes it), releases still go
/// through, and the registry keeps answering.
#[tokio::test(flavor = "current_thread")]
async fn the_registry_file_is_bounded() {
    assert_eq!(LoNetConfig::default().max_registry_bytes, 1 << 20);
    let path = registry("bounded");
    let mut cfg = LoNetConfig::default();
    cfg.max_registry_bytes = 600;
    let net = LoNet::open_with(&path, cfg.clone()).unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    let a = net.new_host("a").unwrap();
    let mut listeners = Vec::new();
    let full = loop {
        match a.listen("").await {
            Ok(l) => listeners.push(l),
            Err(e) => break e,
        }
        assert!(listeners.len() < 100, "the limit never bit");
    };
    assert_eq!(full, NetError::RegistryFull);
    assert!(listeners.len() >= 3, "{} listeners fit", listeners.len());
    assert!(size() <= cfg.max_registry_bytes, "{} bytes", size());
    assert_eq!(net.new_host("b").unwrap_err(), NetError::RegistryFull);
    assert!(size() <= cfg.max_registry_bytes);
    assert_eq!(a.listen(":99").await.unwrap_err(), NetError::RegistryFull);
    // Still a working registry: lookups, dials and accepts.
    assert_eq!(net.query("a"), Ok(()));
    let first = listeners[0].addr();
    let (c, s) = tokio::join!(a.dial(&first), listeners[0].accept());
    assert_eq!(c.unwrap().remote_addr(), first);
    drop(s.unwrap());
    // Releases are appended past the limit, bounded by the claims.
    for l in &listeners {
        l.close().unwrap();
    }
    a.close().unwrap();
    net.close_registry().unwrap();
    net.close_registry().unwrap();
    assert!(
        size() <= 2 * cfg.max_registry_bytes,
        "releases at most double it: {} bytes",
        size()
    );
    // The closes were seen: the registry reads as closed.
    assert_eq!(net.query("a"), Err(NetError::RegistryDown));
    std::fs::remove_file(&path).unwrap();
}
