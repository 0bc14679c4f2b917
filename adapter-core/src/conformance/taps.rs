//! Transport-services cases, run unchanged on every adapter's [`Net`]:
//! races on loopback past a tar pit, a refused and a slow candidate,
//! messages both ways, Clone, Unix sockets, the RTT cache, and sockets
//! released after every race. They assert what happened and in which
//! order, never how long it took (the exact timings are the racing
//! core's simulated tests).

use super::BoxFuture;
use crate::secure::test_credentials;
use crate::taps::{
    initiate, listen, AttemptOutcome, Context, Ended, Initiated, Listener, MessageConnection, Net,
    SendOutcome, TarPit,
};
use crate::Side;
use proto_core::taps::candidate::Stack;
use proto_core::taps::endpoint::{Endpoint, LocalSpecifier, RemoteSpecifier};
use proto_core::taps::message::MessageProperties;
use proto_core::taps::preconnection::{Preconnection, SecurityParameters};
use proto_core::taps::properties::{Property, TransportProperties};
use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// What an adapter gives the TAPS cases: its sockets and a way to run a
/// test's future to the end.
pub trait TapsHarness: Send + Sync + 'static {
    /// The adapter's runtime.
    type Net: Net;
    /// A runtime handle.
    fn net(&self) -> Self::Net;
    /// Runs `task` to completion (inside the runtime).
    fn block_on(&self, task: BoxFuture<()>);
}

/// Every wait in these cases is bounded by this.
pub(super) const LIMIT: Duration = Duration::from_secs(20);

pub(super) async fn sleep<N: Net>(net: &N, d: Duration) {
    use crate::runtime::Timer;
    let mut t = net.timer();
    t.reset(Instant::now() + d);
    poll_fn(|cx| t.poll_expired(cx)).await
}

/// `fut`, or a panic naming `what` if it takes longer than [`LIMIT`].
pub(super) async fn within<N: Net, T>(net: &N, what: &str, fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    let mut timer = pin!(sleep(net, LIMIT));
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        if timer.as_mut().poll(cx).is_ready() {
            panic!("{what}: no result within {LIMIT:?}");
        }
        Poll::Pending
    })
    .await
}

fn plain() -> TransportProperties {
    TransportProperties::new().prohibit(Property::Multistreaming)
}

fn plain_listener() -> TransportProperties {
    TransportProperties::for_listener().prohibit(Property::Multistreaming)
}

fn weft_security(side: Side) -> SecurityParameters {
    let c = test_credentials(side);
    SecurityParameters::weft(c.identity, c.roots, c.authorizer)
}

fn local(ip: IpAddr, port: u16) -> LocalSpecifier {
    LocalSpecifier::new().with_ip_address(ip).with_port(port)
}

fn localhost(port: u16) -> RemoteSpecifier {
    RemoteSpecifier::new()
        .with_host_name("localhost")
        .with_port(port)
}

fn port_of(l: &Listener) -> u16 {
    l.local_addr()
        .parse::<SocketAddr>()
        .expect("an IP listener")
        .port()
}

/// Echoes every message of every connection `listener` accepts, upper-cased.
fn serve_upper<N: Net>(net: &N, listener: Listener) {
    let spawner = net.clone();
    net.spawn(async move {
        while let Ok(conn) = listener.accept().await {
            spawner.spawn(async move {
                while let Ok(m) = conn.receive(1 << 20).await {
                    let up = m.data.to_ascii_uppercase();
                    if conn.send(up, MessageProperties::default()).await != SendOutcome::Sent {
                        break;
                    }
                }
            });
        }
    });
}

async fn round_trip<N: Net>(net: &N, conn: &MessageConnection, text: &str) {
    let sent = within(
        net,
        "send",
        conn.send(text.as_bytes().to_vec(), Default::default()),
    )
    .await;
    assert_eq!(sent, SendOutcome::Sent);
    let reply = within(net, "reply", conn.receive(1 << 20))
        .await
        .expect("a reply");
    assert_eq!(&reply.data[..], text.to_ascii_uppercase().as_bytes());
    assert!(reply.context.end_of_message);
}

/// A listener on 127.0.0.1 with `props`/`security`, and a tar pit on
/// `[::1]` at the same port, so `localhost` races a blackholed address
/// first.
fn listener_and_pit<N: Net>(
    net: &N,
    ctx: &Context,
    props: TransportProperties,
    security: SecurityParameters,
) -> (Listener, TarPit) {
    for _ in 0..50 {
        let pre = Preconnection::new(props.clone(), security.clone())
            .with_local(local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let l = listen(net, ctx, &pre).expect("listen");
        let port = port_of(&l);
        if let Ok(pit) = TarPit::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
            return (l, pit);
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

fn v6(port: u16) -> Endpoint {
    Endpoint::Ip(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))
}

fn v4(port: u16) -> Endpoint {
    Endpoint::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// `localhost` resolves to `::1` (a tar pit) and `127.0.0.1` (the
/// server): the `::1` attempt starts first, the next starts no earlier
/// than the attempt delay after it, wins, and the first is cancelled;
/// then messages go both ways.
pub fn race_past_a_tar_pit<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let (l, _pit) =
            listener_and_pit(&net, &ctx, plain_listener(), SecurityParameters::Disabled);
        let port = port_of(&l);
        serve_upper(&net, l);
        let pre =
            Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(localhost(port));
        let Initiated { connection, report } = within(&net, "race", initiate(&net, &ctx, &pre))
            .await
            .expect("a winner");
        let a = &report.attempts;
        assert_eq!(a.len(), 2, "{report}");
        assert_eq!(a[0].candidate.endpoint, v6(port), "{report}");
        assert_eq!(a[0].outcome, AttemptOutcome::Cancelled, "{report}");
        assert_eq!(a[1].candidate.endpoint, v4(port), "{report}");
        assert_eq!(a[1].outcome, AttemptOutcome::Won, "{report}");
        assert_eq!(a[1].candidate.stack, Stack::Tcp);
        // A timer never fires early: the second attempt waited the delay.
        assert!(
            a[1].started - a[0].started >= report.attempt_delay,
            "{report}"
        );
        assert_eq!(
            a[0].ended, a[1].ended,
            "the loser is cancelled when the winner connects"
        );
        assert_eq!(connection.candidate().endpoint, v4(port));
        round_trip(&net, &connection, "hello over the winner").await;
    }));
}

/// A refused first candidate: the next attempt starts at once, in the
/// same step that saw the refusal, not after the attempt delay.
pub fn refused_attempt_starts_the_next_at_once<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        // Only 127.0.0.1 listens: ::1 at the same port refuses.
        let pre = Preconnection::new(plain_listener(), SecurityParameters::Disabled)
            .with_local(local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let l = listen(&net, &ctx, &pre).expect("listen");
        let port = port_of(&l);
        serve_upper(&net, l);
        let pre = Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(localhost(port));
        let Initiated { connection, report } =
            within(&net, "race", initiate(&net, &ctx, &pre)).await.expect("a winner");
        let a = &report.attempts;
        assert_eq!(a.len(), 2, "{report}");
        assert!(
            matches!(&a[0].outcome, AttemptOutcome::Failed(e) if e.to_lowercase().contains("refused")),
            "{report}"
        );
        assert_eq!(a[1].started, a[0].ended, "the next attempt starts with the failure: {report}");
        assert_eq!(a[1].outcome, AttemptOutcome::Won);
        round_trip(&net, &connection, "after a refusal").await;
    }));
}

/// A slow candidate: `::1` accepts TCP but never answers the secure
/// handshake; the next attempt starts after the attempt delay, its
/// handshake completes, it wins, and the slow one is cancelled. The
/// winner is authenticated.
pub fn slow_handshake_loses_to_the_next_candidate<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let (l, silent, port) = loop {
            let pre = Preconnection::new(
                TransportProperties::for_listener(),
                weft_security(Side::Acceptor),
            )
            .with_local(local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
            let l = listen(&net, &ctx, &pre).expect("listen");
            let port = port_of(&l);
            if let Ok(s) =
                std::net::TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))
            {
                break (l, s, port);
            }
        };
        assert_eq!(l.stack(), Stack::SecureMux);
        serve_upper(&net, l);
        let pre = Preconnection::new(TransportProperties::new(), weft_security(Side::Dialer))
            .with_remote(localhost(port));
        let Initiated { connection, report } = within(&net, "race", initiate(&net, &ctx, &pre))
            .await
            .expect("a winner");
        let a = &report.attempts;
        assert_eq!(a.len(), 2, "{report}");
        assert_eq!(
            (a[0].candidate.stack, &a[0].candidate.endpoint),
            (Stack::SecureMux, &v6(port))
        );
        assert_eq!(a[0].outcome, AttemptOutcome::Cancelled, "{report}");
        assert_eq!(a[1].outcome, AttemptOutcome::Won, "{report}");
        assert!(
            a[1].started - a[0].started >= report.attempt_delay,
            "{report}"
        );
        let granted = connection.security().expect("secure").granted().to_vec();
        assert_eq!(granted, ["weft-test:server"]);
        round_trip(&net, &connection, "encrypted").await;
        // The abandoned handshake's socket closes now, not at the
        // handshake timeout (10 s).
        if v6_sockets_to(port).is_some() {
            let mut left = v6_sockets_to(port).unwrap_or_default();
            for _ in 0..100 {
                if left.is_empty() {
                    break;
                }
                sleep(&net, Duration::from_millis(20)).await;
                left = v6_sockets_to(port).unwrap_or_default();
            }
            assert!(
                left.is_empty(),
                "the slow attempt's socket is still open: {left:?}"
            );
        }
        drop(silent);
    }));
}

/// Nothing listens anywhere: the race fails once, naming every attempt.
pub fn every_failure_is_listed<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let pre =
            Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(localhost(port));
        let e = within(&net, "race", initiate(&net, &Context::new(), &pre))
            .await
            .expect_err("nothing listens");
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains(&format!("[::1]:{port}")), "{text}");
        assert!(text.contains("refused"), "{text}");
    }));
}

/// A property no stack offers fails before any IO, naming it.
pub fn unsatisfiable_properties_fail_at_once<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let pre = Preconnection::new(
            TransportProperties::new().require(Property::ZeroRttMsg),
            SecurityParameters::Disabled,
        )
        .with_remote(localhost(9));
        let e = initiate(&net, &Context::new(), &pre)
            .await
            .expect_err("no stack sends 0-RTT");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("zeroRttMsg"), "{e}");
    }));
}

/// Clone on a multistreaming stack (yamux here) is a new flow of the same
/// mux connection; both clones talk independently.
pub fn clone_on_a_multistreaming_stack_is_a_new_flow<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let pre = Preconnection::new(
            TransportProperties::for_listener(),
            SecurityParameters::Disabled,
        )
        .with_local(local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let l = listen(&net, &ctx, &pre).expect("listen");
        assert_eq!(l.stack(), Stack::Yamux);
        let port = port_of(&l);
        serve_upper(&net, l);
        let remote = RemoteSpecifier::new()
            .with_ip_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .with_port(port);
        let pre = Preconnection::new(TransportProperties::new(), SecurityParameters::Disabled)
            .with_remote(remote);
        let first = within(&net, "race", initiate(&net, &ctx, &pre))
            .await
            .expect("up")
            .connection;
        assert_eq!(first.candidate().stack, Stack::Yamux);
        let second = within(&net, "clone", first.clone_connection())
            .await
            .expect("clone");
        assert_eq!(
            first.addresses(),
            second.addresses(),
            "one socket under both"
        );
        round_trip(&net, &second, "second flow").await;
        round_trip(&net, &first, "first flow").await;
    }));
}

/// Clone without multistreaming is a new race: another socket.
pub fn clone_without_multistreaming_is_a_new_race<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let pre = Preconnection::new(plain_listener(), SecurityParameters::Disabled)
            .with_local(local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let l = listen(&net, &ctx, &pre).expect("listen");
        let port = port_of(&l);
        serve_upper(&net, l);
        let remote = RemoteSpecifier::new()
            .with_ip_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .with_port(port);
        let pre = Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(remote);
        let first = within(&net, "race", initiate(&net, &ctx, &pre))
            .await
            .expect("up")
            .connection;
        let second = within(&net, "clone", first.clone_connection())
            .await
            .expect("clone");
        assert_ne!(first.addresses(), second.addresses(), "a new socket");
        round_trip(&net, &second, "second socket").await;
        round_trip(&net, &first, "first socket").await;
    }));
}

/// A Unix socket path selects the Unix stack; messages go both ways.
pub fn unix_socket_messages<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let dir = std::env::temp_dir().join(format!(
            "weft-taps-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("s.sock");
        let path_str = path.to_str().expect("utf-8 path");
        let ctx = Context::new();
        let pre = Preconnection::new(
            TransportProperties::for_listener(),
            SecurityParameters::Disabled,
        )
        .with_local(LocalSpecifier::new().with_unix_path(path_str));
        let l = listen(&net, &ctx, &pre).expect("listen");
        assert_eq!(l.stack(), Stack::Unix);
        serve_upper(&net, l);
        let pre = Preconnection::new(TransportProperties::new(), SecurityParameters::Disabled)
            .with_remote(RemoteSpecifier::new().with_unix_path(path_str));
        let c = within(&net, "race", initiate(&net, &ctx, &pre))
            .await
            .expect("up")
            .connection;
        assert_eq!(c.candidate().stack, Stack::Unix);
        round_trip(&net, &c, "over a unix socket").await;
        let _ = std::fs::remove_dir_all(&dir);
    }));
}

/// After one race the context knows the remote's RTT; saved and restored
/// in a new context, it sets the attempt delay from the RTT (at its
/// 100 ms floor on loopback) instead of the 250 ms default.
pub fn cached_rtt_sets_the_attempt_delay<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let pre = Preconnection::new(plain_listener(), SecurityParameters::Disabled)
            .with_local(local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let l = listen(&net, &ctx, &pre).expect("listen");
        let port = port_of(&l);
        serve_upper(&net, l);
        let pre =
            Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(localhost(port));
        let first = within(&net, "race", initiate(&net, &ctx, &pre))
            .await
            .expect("up");
        assert_eq!(first.report.attempt_delay, Duration::from_millis(250));
        let saved = ctx.save_cache();
        let fresh = Context::new();
        fresh.restore_cache(&saved).expect("restores");
        let second = within(&net, "race", initiate(&net, &fresh, &pre))
            .await
            .expect("up");
        assert_eq!(
            second.report.attempt_delay,
            Duration::from_millis(100),
            "{}",
            second.report
        );
        assert!(
            fresh.restore_cache(&saved[..saved.len() - 1]).is_err(),
            "a cut file is refused"
        );
        round_trip(&net, &second.connection, "cached").await;
    }));
}

/// This process's sockets whose peer port is `port`, with their TCP
/// states (from `/proc`), or `None` where `/proc` does not say.
fn sockets_to(port: u16) -> Option<Vec<u8>> {
    sockets_in(port, &["/proc/net/tcp", "/proc/net/tcp6"])
}

/// Like [`sockets_to`], IPv6 only.
fn v6_sockets_to(port: u16) -> Option<Vec<u8>> {
    sockets_in(port, &["/proc/net/tcp6"])
}

fn sockets_in(port: u16, tables: &[&str]) -> Option<Vec<u8>> {
    let mut ours = std::collections::HashSet::new();
    for fd in std::fs::read_dir("/proc/self/fd").ok()? {
        let link = std::fs::read_link(fd.ok()?.path()).ok();
        if let Some(l) = link.as_ref().and_then(|l| l.to_str()) {
            if let Some(inode) = l.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                ours.insert(inode.to_owned());
            }
        }
    }
    let mut states = Vec::new();
    for table in tables {
        let text = std::fs::read_to_string(table).ok()?;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(rem), Some(st), Some(inode)) = (f.get(2), f.get(3), f.get(9)) else {
                continue;
            };
            let rport = rem
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if rport == Some(port) && ours.contains(*inode) {
                states.push(u8::from_str_radix(st, 16).unwrap_or(0));
            }
        }
    }
    Some(states)
}

/// Five races past a tar pit, then every connection dropped: no attempt
/// socket of this process to the port is left (the tar pit's own filler
/// connection aside), neither the cancelled SYN_SENT ones nor the winners.
pub fn sockets_released_after_races<H: TapsHarness>(h: &H) {
    if sockets_to(0).is_none() {
        return; // no /proc here: nothing to count with
    }
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let (l, _pit) =
            listener_and_pit(&net, &ctx, plain_listener(), SecurityParameters::Disabled);
        let port = port_of(&l);
        serve_upper(&net, l);
        let baseline = sockets_to(port).expect("proc").len();
        let pre =
            Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(localhost(port));
        for i in 0..5 {
            let c = within(&net, "race", initiate(&net, &ctx, &pre))
                .await
                .expect("up")
                .connection;
            round_trip(&net, &c, &format!("race {i}")).await;
            c.close();
            within(&net, "close", c.ended()).await;
        }
        let mut left = sockets_to(port).expect("proc");
        for _ in 0..200 {
            if left.len() <= baseline {
                break;
            }
            sleep(&net, Duration::from_millis(25)).await;
            left = sockets_to(port).expect("proc");
        }
        assert!(
            left.len() <= baseline,
            "sockets still open to port {port}: states {left:?} (baseline {baseline})"
        );
    }));
}

/// Dropping the last handle of a connection closes it: the server's
/// next receive ends instead of waiting forever.
pub fn dropping_the_last_handle_closes<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let pre = Preconnection::new(plain_listener(), SecurityParameters::Disabled)
            .with_local(local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let l = listen(&net, &ctx, &pre).expect("listen");
        let port = port_of(&l);
        let pre = Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(
            RemoteSpecifier::new()
                .with_ip_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
                .with_port(port),
        );
        let client = within(&net, "race", initiate(&net, &ctx, &pre))
            .await
            .expect("up")
            .connection;
        let copy = client.clone();
        let sent = within(
            &net,
            "send",
            copy.send(&b"last words"[..], Default::default()),
        )
        .await;
        assert_eq!(sent, SendOutcome::Sent);
        let server = within(&net, "accept", l.accept()).await.expect("accepted");
        drop(client);
        assert!(!copy.is_ended(), "a clone of the handle keeps it open");
        drop(copy);
        let m = within(&net, "message", server.receive(64))
            .await
            .expect("the message");
        assert_eq!(&m.data[..], b"last words");
        let end = within(&net, "end", server.receive(64)).await;
        assert!(end.is_err(), "the peer closed: {end:?}");
        assert_eq!(within(&net, "ended", server.ended()).await, Ended::Closed);
    }));
}

/// InitiateWithSend: the first message goes as soon as the winner is up,
/// and only a safely replayable one is accepted (before any IO).
pub fn initiate_with_send_sends_first<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let pre = Preconnection::new(plain_listener(), SecurityParameters::Disabled)
            .with_local(local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let l = listen(&net, &ctx, &pre).expect("listen");
        let port = port_of(&l);
        serve_upper(&net, l);
        let pre =
            Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(localhost(port));
        let unsafe_props = MessageProperties::default();
        let e = crate::taps::initiate_with_send(&net, &ctx, &pre, "get".into(), unsafe_props)
            .await
            .expect_err("not safely replayable");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("safely replayable"), "{e}");
        let props = MessageProperties {
            safely_replayable: true,
            ..MessageProperties::default()
        };
        let c = within(
            &net,
            "race",
            crate::taps::initiate_with_send(&net, &ctx, &pre, "idempotent get".into(), props),
        )
        .await
        .expect("up")
        .connection;
        let reply = within(&net, "reply", c.receive(1 << 10))
            .await
            .expect("a reply");
        assert_eq!(&reply.data[..], b"IDEMPOTENT GET");
    }));
}

/// A listener holds at most `listen_backlog` connections nobody accepted:
/// the rest are closed at once and counted, the held one is still handed
/// out.
pub fn listen_backlog_closes_the_excess<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::with(
            std::sync::Arc::new(crate::taps::SystemResolver),
            crate::taps::Settings {
                listen_backlog: 1,
                ..Default::default()
            },
        );
        let pre = Preconnection::new(plain_listener(), SecurityParameters::Disabled)
            .with_local(local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let l = listen(&net, &ctx, &pre).expect("listen");
        let pre = Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(
            RemoteSpecifier::new()
                .with_ip_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
                .with_port(port_of(&l)),
        );
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(
                within(&net, "race", initiate(&net, &ctx, &pre))
                    .await
                    .expect("up"),
            );
        }
        for _ in 0..400 {
            if l.refused() >= 2 {
                break;
            }
            sleep(&net, Duration::from_millis(10)).await;
        }
        assert_eq!(l.refused(), 2, "one held, two closed");
        let held = within(&net, "accept", l.accept())
            .await
            .expect("the held one");
        assert!(!held.is_ended());
        drop(clients);
    }));
}

/// Expands to one `#[test]` per TAPS case for a [`TapsHarness`].
#[macro_export]
macro_rules! taps_conformance_tests {
    ($harness:expr) => {
        $crate::taps_conformance_tests!(@cases $harness;
            race_past_a_tar_pit,
            refused_attempt_starts_the_next_at_once,
            slow_handshake_loses_to_the_next_candidate,
            every_failure_is_listed,
            unsatisfiable_properties_fail_at_once,
            clone_on_a_multistreaming_stack_is_a_new_flow,
            clone_without_multistreaming_is_a_new_race,
            unix_socket_messages,
            cached_rtt_sets_the_attempt_delay,
            sockets_released_after_races,
            dropping_the_last_handle_closes,
            initiate_with_send_sends_first,
            listen_backlog_closes_the_excess,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::taps::$case(&$harness);
            }
        )*
    };
}
