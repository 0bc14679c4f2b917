//! Rendezvous cases (RFC 9622 section 7.3), run unchanged on every
//! adapter's [`Net`](crate::taps::Net) through the
//! [`TapsHarness`](super::taps::TapsHarness): two peers that know each
//! other's endpoints end up on one connection, the same on both sides,
//! whether they start together or apart; a peer that never shows up is a
//! clear error. They assert outcomes, never how long anything took.

use super::taps::{sleep, within, TapsHarness, LIMIT};
use crate::taps::{
    rendezvous_with, Context, MessageConnection, Net, RendezvousOptions, Rendezvoused, SendOutcome,
};
use proto_core::taps::candidate::Stack;
use proto_core::taps::endpoint::{LocalSpecifier, RemoteSpecifier};
use proto_core::taps::preconnection::{Preconnection, SecurityParameters};
use proto_core::taps::properties::{Property, TransportProperties};
use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Both futures to the end, polled together.
async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Two distinct free ports on 127.0.0.1.
fn two_ports() -> (u16, u16) {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("another free port");
    let ports = (
        a.local_addr().expect("addr").port(),
        b.local_addr().expect("addr").port(),
    );
    (ports.0, ports.1)
}

fn plain() -> TransportProperties {
    TransportProperties::new().prohibit(Property::Multistreaming)
}

/// A peer listening on 127.0.0.1:`ours` that meets `remote`.
fn peer(ours: u16, remote: RemoteSpecifier) -> Preconnection {
    Preconnection::new(plain(), SecurityParameters::Disabled)
        .with_local(
            LocalSpecifier::new()
                .with_ip_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
                .with_port(ours),
        )
        .with_remote(remote)
}

fn at(port: u16) -> RemoteSpecifier {
    RemoteSpecifier::new()
        .with_ip_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .with_port(port)
}

/// `localhost`: the resolver answers `::1` (nobody listens there, so that
/// dial is refused throughout) and `127.0.0.1`.
fn localhost(port: u16) -> RemoteSpecifier {
    RemoteSpecifier::new()
        .with_host_name("localhost")
        .with_port(port)
}

fn options() -> RendezvousOptions {
    RendezvousOptions::default()
}

/// The two survivors are the two ends of one socket, one side decided,
/// and messages go both ways over it.
async fn check_pair<N: Net>(net: &N, a: &Rendezvoused, b: &Rendezvoused, (pa, pb): (u16, u16)) {
    let (ca, cb) = (&a.connection, &b.connection);
    let (aa, ab) = (
        ca.addresses().expect("a socket"),
        cb.addresses().expect("a socket"),
    );
    assert_eq!(aa.local, ab.remote, "{ca:?} {cb:?}");
    assert_eq!(aa.remote, ab.local, "{ca:?} {cb:?}");
    // One end is a listener's: the survivor was accepted by one side.
    let ports: Vec<u16> = [&aa.local, &aa.remote]
        .iter()
        .map(|s| s.parse::<SocketAddr>().expect("an IP address").port())
        .collect();
    assert!(
        ports.contains(&pa) || ports.contains(&pb),
        "{ports:?} vs listeners {pa}, {pb}"
    );
    assert_ne!(a.role, b.role, "exactly one side decides");
    assert!(a.links >= 1 && b.links >= 1);
    assert_eq!(ca.candidate().stack, Stack::Tcp);
    exchange(net, ca, cb, "from a").await;
    exchange(net, cb, ca, "from b").await;
    exchange(net, ca, cb, "from a again").await;
}

async fn exchange<N: Net>(net: &N, from: &MessageConnection, to: &MessageConnection, text: &str) {
    let sent = within(
        net,
        "send",
        from.send(text.as_bytes().to_vec(), Default::default()),
    )
    .await;
    assert_eq!(sent, SendOutcome::Sent);
    let got = within(net, "receive", to.receive(1 << 16))
        .await
        .expect("a message");
    assert_eq!(&got.data[..], text.as_bytes());
    assert!(got.context.end_of_message);
}

/// After a rendezvous the listener goes: soon nothing accepts at
/// `port` (a runtime may close it on another thread, so this waits for
/// it, bounded by [`LIMIT`]).
async fn listener_released<N: Net>(net: &N, port: u16) {
    within(net, "the listener closes", async {
        loop {
            match std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return,
                _ => sleep(net, Duration::from_millis(20)).await,
            }
        }
    })
    .await
}

/// Both peers rendezvous at once (each dials the other's listener, so
/// two candidate connections come up): exactly one survives, the same
/// one on both sides.
pub fn rendezvous_concurrently<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let (pa, pb) = two_ports();
        let a = rendezvous_with(&net, &ctx, &peer(pa, at(pb)), options());
        let b = rendezvous_with(&net, &ctx, &peer(pb, at(pa)), options());
        let (a, b) = within(&net, "rendezvous", both(a, b)).await;
        let (a, b) = (a.expect("side a"), b.expect("side b"));
        check_pair(&net, &a, &b, (pa, pb)).await;
        listener_released(&net, pa).await;
        listener_released(&net, pb).await;
        a.connection.close();
        assert_eq!(
            within(&net, "b sees the end", b.connection.ended()).await,
            crate::taps::Ended::Closed
        );
    }));
}

/// The second peer starts a little later, so the first one's dials are
/// refused until then; both still meet on one connection. The first
/// peer names the second by host name (`localhost`, both families).
pub fn rendezvous_with_a_late_peer<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let (pa, pb) = two_ports();
        let a = rendezvous_with(&net, &ctx, &peer(pa, localhost(pb)), options());
        let late = net.clone();
        let b_ctx = ctx.clone();
        let b = async move {
            sleep(&late, Duration::from_millis(400)).await;
            rendezvous_with(&late, &b_ctx, &peer(pb, at(pa)), options()).await
        };
        let (a, b) = within(&net, "rendezvous", both(a, b)).await;
        let (a, b) = (a.expect("side a"), b.expect("side b"));
        check_pair(&net, &a, &b, (pa, pb)).await;
    }));
}

/// A stranger connects to one peer's listener first and speaks no
/// rendezvous: that candidate is closed, and
/// the real peer still meets it on one connection.
pub fn a_stray_connection_is_closed_and_the_rendezvous_goes_on<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let (pa, pb) = two_ports();
        let a = rendezvous_with(&net, &ctx, &peer(pa, at(pb)), options());
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let put = slot.clone();
        std::thread::spawn(move || {
            let r = stray(pa);
            *put.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        });
        let late = net.clone();
        let b_ctx = ctx.clone();
        let b = async move {
            // The real peer comes once the stray was dealt with.
            let heard = within(&late, "the stray's end", async {
                loop {
                    if let Some(r) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        return r;
                    }
                    sleep(&late, Duration::from_millis(10)).await;
                }
            })
            .await;
            let r = rendezvous_with(&late, &b_ctx, &peer(pb, at(pa)), options()).await;
            (heard, r)
        };
        let (a, (heard, b)) = within(&net, "rendezvous", both(a, b)).await;
        match heard {
            // At most this side's hello (none if the stray's bytes
            // were read before it went out), then the end.
            Ok(bytes) => assert!(
                bytes.len() <= 13 && b"WRDV".starts_with(&bytes[..bytes.len().min(4)]),
                "{bytes:?}"
            ),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
        }
        let (a, b) = (a.expect("side a"), b.expect("side b"));
        check_pair(&net, &a, &b, (pa, pb)).await;
    }));
}

/// Connects to 127.0.0.1:`port` (retrying until it listens), sends a
/// line that is no rendezvous hello, and reads until the other side
/// closes.
fn stray(port: u16) -> io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut s = loop {
        match std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(s) => break s,
            Err(e) if started.elapsed() > LIMIT => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    s.set_read_timeout(Some(LIMIT))?;
    s.write_all(b"GET / HTTP/1.1\r\n\r\n")?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)?;
    Ok(got)
}

/// Nobody at the remote: a clear `TimedOut` error once the configured
/// timeout passes, naming the last refusal, and the listener is released.
pub fn rendezvous_without_a_peer_fails<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let (pa, pb) = two_ports();
        let mut opts = options();
        opts.rendezvous.handshake_timeout = Duration::from_millis(800);
        let r = within(
            &net,
            "lonely rendezvous",
            rendezvous_with(&net, &ctx, &peer(pa, at(pb)), opts),
        )
        .await;
        let e = r.expect_err("nobody to meet");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        let text = e.to_string();
        assert!(text.contains("rendezvous"), "{text}");
        assert!(text.contains("refused"), "{text}");
        listener_released(&net, pa).await;
    }));
}

/// Both endpoints are Unix socket paths: the peers meet on one Unix
/// stream connection and messages go both ways.
pub fn rendezvous_on_unix_sockets<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            ^ u128::from(std::process::id());
        let dir = std::env::temp_dir();
        let (pa, pb) = (
            dir.join(format!("weft-rdv-{stamp}-a.sock")),
            dir.join(format!("weft-rdv-{stamp}-b.sock")),
        );
        let _ = (std::fs::remove_file(&pa), std::fs::remove_file(&pb));
        let side = |ours: &std::path::Path, theirs: &std::path::Path| {
            Preconnection::new(plain(), SecurityParameters::Disabled)
                .with_local(LocalSpecifier::new().with_unix_path(&ours.to_string_lossy()))
                .with_remote(RemoteSpecifier::new().with_unix_path(&theirs.to_string_lossy()))
        };
        let a = rendezvous_with(&net, &ctx, &side(&pa, &pb), options());
        let b = rendezvous_with(&net, &ctx, &side(&pb, &pa), options());
        let (a, b) = within(&net, "unix rendezvous", both(a, b)).await;
        let _ = (std::fs::remove_file(&pa), std::fs::remove_file(&pb));
        let (a, b) = (a.expect("side a"), b.expect("side b"));
        assert_ne!(a.role, b.role, "exactly one side decides");
        let (ca, cb) = (&a.connection, &b.connection);
        assert_eq!(ca.candidate().stack, Stack::Unix);
        exchange(&net, ca, cb, "over a unix socket").await;
        exchange(&net, cb, ca, "and back").await;
    }));
}

/// A rendezvous needs a local endpoint: refused at once.
pub fn rendezvous_without_a_local_endpoint_is_refused<H: TapsHarness>(h: &H) {
    let net = h.net();
    h.block_on(Box::pin(async move {
        let ctx = Context::new();
        let pre = Preconnection::new(plain(), SecurityParameters::Disabled).with_remote(at(9));
        let e = within(
            &net,
            "invalid rendezvous",
            rendezvous_with(&net, &ctx, &pre, options()),
        )
        .await
        .expect_err("no local endpoint");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    }));
}

/// Expands to one `#[test]` per rendezvous case for a
/// [`TapsHarness`](crate::conformance::taps::TapsHarness) expression.
#[macro_export]
macro_rules! taps_rendezvous_conformance_tests {
    ($harness:expr) => {
        $crate::taps_rendezvous_conformance_tests!(@cases $harness;
            rendezvous_concurrently,
            rendezvous_with_a_late_peer,
            a_stray_connection_is_closed_and_the_rendezvous_goes_on,
            rendezvous_without_a_peer_fails,
            rendezvous_on_unix_sockets,
            rendezvous_without_a_local_endpoint_is_refused,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::taps_rendezvous::$case(&$harness);
            }
        )*
    };
}
