//! Rendezvous (RFC 9622 section 7.3): both peers listen on their local
//! endpoint and dial the other's, every candidate connection runs the
//! core's rendezvous handshake ([`Handover`] of a [`Link`] and then the
//! message connection) through the one driver, and the core's
//! [`Rendezvous`] coordinator says which link survives. The survivor is
//! handed back as a [`MessageConnection`]; every other candidate is
//! closed.
//!
//! Only the plain stacks run here: TCP, or a Unix stream socket when both
//! endpoints are paths. Security and multistreaming are not offered on a
//! rendezvous yet (a preconnection that requires them is refused).
//!
//! The survivor's driver runs `Handover<Connection>` from its first byte
//! (the message connection cannot start on a socket another driver read
//! from); [`MessageLayer`] runs any [`MessageMachine`], so the handle is
//! the usual [`MessageConnection`]. It cannot Clone (no multistreaming,
//! and no race to repeat).
use super::context::Context;
use super::initiate::invalid;
use super::initiate::Origin;
use super::listen::bind;
use super::message::{MessageConnection, MessageLayer};
use super::net::{Accept, Connected, Net};
use super::BoxFuture;
use crate::runtime::Timer;
use crate::secure::Addresses;
use crate::shared::{set_waker, Layer, Shared};
use crate::spawn_layer;
use proto_core::taps::candidate::{Candidate, Stack};
use proto_core::taps::connection::{Config as ConnectionConfig, Connection as Core};
use proto_core::taps::endpoint::{Endpoint, Family, Resolution};
use proto_core::taps::framer::FramerFactory;
use proto_core::taps::preconnection::{PlanContext, Preconnection};
use proto_core::taps::rendezvous::{
    Decision, Handover, LinkId, Rendezvous, RendezvousConfig, RendezvousError, RendezvousEvent,
    Role,
};
use proto_core::time::Instant as CoreInstant;
use proto_core::wire::Machine;
use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How a rendezvous runs; [`Default`] gives the values documented on
/// each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RendezvousOptions {
    /// The core's limits. Its `handshake_timeout` (default 10 s) also
    /// bounds the whole rendezvous: binding, dialing, every link's
    /// handshake.
    pub rendezvous: RendezvousConfig,
    /// The pause before dialing again after a refused dial (the peer may
    /// not listen yet). Default 100 ms: a peer starting a moment later is
    /// found within a few round trips without flooding it with SYNs.
    pub redial_pause: Duration,
}

impl Default for RendezvousOptions {
    fn default() -> Self {
        RendezvousOptions {
            rendezvous: RendezvousConfig::default(),
            redial_pause: Duration::from_millis(100),
        }
    }
}

/// The outcome of a rendezvous: the surviving connection and how it came
/// about.
#[derive(Debug)]
pub struct Rendezvoused {
    /// The message connection on the surviving link.
    pub connection: MessageConnection,
    /// Whether this side decided (lower tie-break) or followed.
    pub role: Role,
    /// Candidate links this side ran (accepted and dialed).
    pub links: u64,
}

/// Rendezvous with `pre` on `net` (RFC 9622 Rendezvous) with the default
/// [`RendezvousOptions`]: `pre` needs a local and a remote endpoint.
///
/// Returns a boxed future (`Send`, `'static`). The connection runs the
/// plain stack only (TCP, or Unix when both endpoints are paths).
///
/// ```no_run
/// use adapter_core::taps::{rendezvous, Context, Net};
/// use proto_core::taps::endpoint::{LocalSpecifier, RemoteSpecifier};
/// use proto_core::taps::preconnection::{Preconnection, SecurityParameters};
/// use proto_core::taps::properties::{Property, TransportProperties};
///
/// async fn meet<N: Net>(net: &N) -> std::io::Result<()> {
///     let props = TransportProperties::new().prohibit(Property::Multistreaming);
///     let pre = Preconnection::new(props, SecurityParameters::Disabled)
///         .with_local(LocalSpecifier::new().with_port(7000))
///         .with_remote(RemoteSpecifier::new().with_host_name("peer.example").with_port(7000));
///     let met = rendezvous(net, &Context::new(), &pre).await?;
///     met.connection.send(b"hello".to_vec(), Default::default()).await;
///     Ok(())
/// }
/// ```
pub fn rendezvous<N: Net>(
    net: &N,
    ctx: &Context,
    pre: &Preconnection,
) -> BoxFuture<io::Result<Rendezvoused>> {
    rendezvous_with(net, ctx, pre, RendezvousOptions::default())
}

/// [`rendezvous`] with these options (a shorter timeout, say).
pub fn rendezvous_with<N: Net>(
    net: &N,
    ctx: &Context,
    pre: &Preconnection,
    options: RendezvousOptions,
) -> BoxFuture<io::Result<Rendezvoused>> {
    let (net, ctx, pre) = (net.clone(), ctx.clone(), pre.clone());
    Box::pin(async move { run(&net, &ctx, &pre, options).await })
}

/// Where to dial the peer.
enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

async fn targets(ctx: &Context, remote: &Resolution) -> io::Result<Vec<Target>> {
    match remote {
        Resolution::Ready(Endpoint::Ip(a)) => Ok(vec![Target::Tcp(*a)]),
        Resolution::Ready(Endpoint::Unix(p)) => Ok(vec![Target::Unix(PathBuf::from(p))]),
        Resolution::Lookup { host, port } => {
            let mut out = Vec::new();
            let mut last = None;
            for family in [Family::V6, Family::V4] {
                match ctx.inner.resolver.resolve(host, *port, family).await {
                    Ok(addrs) => out.extend(addrs.into_iter().map(Target::Tcp)),
                    Err(e) => last = Some(e),
                }
            }
            match (out.is_empty(), last) {
                (false, _) => Ok(out),
                (true, Some(e)) => Err(e),
                (true, None) => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("rendezvous: {host} has no address"),
                )),
            }
        }
        _ => Err(invalid(io::Error::other("an unknown kind of remote"))),
    }
}

/// Dials `target` until it answers, pausing after each refusal (the peer
/// may not listen yet); the caller's timeout ends it.
/// Each refusal is noted in `refused` for the timeout's error.
fn dial<N: Net>(
    net: N,
    target: Target,
    pause: Duration,
    refused: Arc<Mutex<Option<String>>>,
) -> BoxFuture<io::Result<Connected>> {
    Box::pin(async move {
        loop {
            let attempt = match &target {
                Target::Tcp(a) => net.connect_tcp(*a).await,
                Target::Unix(p) => net.connect_unix(p.clone()).await,
            };
            match attempt {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    ) =>
                {
                    *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    let mut t = net.timer();
                    t.reset(Instant::now() + pause);
                    poll_fn(|cx| t.poll_expired(cx)).await;
                }
                other => return other,
            }
        }
    })
}

/// What the coordinator task holds.
struct Candidates<N: Net> {
    net: N,
    rdv: Rendezvous,
    links: BTreeMap<LinkId, (Arc<Shared<MessageLayer>>, Addresses)>,
    made: u64,
    connection: ConnectionConfig,
    framer: FramerFactory,
}

impl<N: Net> Candidates<N> {
    /// Runs the handshake on a new candidate connection (or closes it when
    /// the coordinator takes no more).
    fn add(&mut self, c: Connected, waker: &Waker) -> io::Result<()> {
        let Ok((id, link)) = self.rdv.add_link(CoreInstant::ZERO) else {
            return Ok(());
        };
        let core = Core::new(
            self.connection.clone(),
            self.framer.make(),
            CoreInstant::ZERO,
        )
        .map_err(invalid)?;
        let layer = MessageLayer::new(Handover::new(link, core));
        let shared = spawn_layer(&self.net, c.transport, layer);
        shared.with(|l| set_waker(&mut l.coordinator, waker));
        self.links.insert(id, (shared, c.addresses));
        self.made += 1;
        Ok(())
    }

    /// Hands every link's news to the coordinator and applies its
    /// decisions; the outcome once there is one.
    fn step(&mut self, waker: &Waker) -> Option<RendezvousEvent> {
        let ids: Vec<LinkId> = self.links.keys().copied().collect();
        for id in ids {
            let Some((shared, _)) = self.links.get(&id) else {
                continue;
            };
            let (events, closed) = shared.with(|l| {
                set_waker(&mut l.coordinator, waker);
                (
                    std::mem::take(&mut l.link_events),
                    l.machine_ref().is_closed() && !l.machine_ref().is_handed_over(),
                )
            });
            for ev in &events {
                self.rdv.on_link_event(id, ev);
            }
            if closed {
                self.rdv.on_link_closed(id);
                self.links.remove(&id);
            }
            self.apply();
        }
        self.rdv.poll_event()
    }

    fn apply(&mut self) {
        while let Some(d) = self.rdv.poll_decision() {
            match d {
                Decision::Choose(id) => {
                    if let Some((shared, _)) = self.links.get(&id) {
                        let now = shared.now();
                        // The coordinator only chooses a decider's link
                        // with its hello done, which `choose` accepts.
                        let _ = shared.with(|l| l.machine().choose(now));
                    }
                }
                Decision::Close(id) => {
                    if let Some((shared, _)) = self.links.remove(&id) {
                        let now = shared.now();
                        shared.with(|l| l.machine().close(now, 0, b"not chosen"));
                    }
                }
                _ => {}
            }
        }
    }

    /// Closes every link still held.
    fn close_all(&mut self) {
        for (_, (shared, _)) in std::mem::take(&mut self.links) {
            let now = shared.now();
            shared.with(|l| l.machine().close(now, 0, b"rendezvous ended"));
        }
    }
}

async fn run<N: Net>(
    net: &N,
    ctx: &Context,
    pre: &Preconnection,
    options: RendezvousOptions,
) -> io::Result<Rendezvoused> {
    let timeout = options.rendezvous.handshake_timeout;
    let mut timer = net.timer();
    timer.reset(Instant::now() + timeout);
    let refused: Arc<Mutex<Option<String>>> = Arc::default();
    let timed_out = |last: Option<io::Error>| {
        let last = last
            .map(|e| e.to_string())
            .or_else(|| refused.lock().unwrap_or_else(|p| p.into_inner()).take());
        let detail = last
            .map(|l| format!(" (last socket error: {l})"))
            .unwrap_or_default();
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("rendezvous: no link survived within {timeout:?}{detail}"),
        )
    };
    let plan = pre.rendezvous(&PlanContext::default()).map_err(invalid)?;
    let unix = plan.local.is_unix();
    let stack = if unix { Stack::Unix } else { Stack::Tcp };
    if !plan.selection.stacks().contains(&stack) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "rendezvous runs the {stack} stack only, which the properties and security exclude"
            ),
        ));
    }
    let mut tie = [0u8; 8];
    getrandom::fill(&mut tie).map_err(|e| io::Error::other(e.to_string()))?;
    let tie_break = u64::from_le_bytes(tie);
    let mut accept: Box<dyn Accept> = bind(net, &plan.local.binding)?;
    let targets = {
        let mut resolving = std::pin::pin!(targets(ctx, &plan.remote.resolution));
        poll_fn(|cx| match resolving.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => timer.poll_expired(cx).map(|()| Err(timed_out(None))),
        })
        .await?
    };
    // More targets than links could not all be kept anyway.
    let mut targets = targets;
    targets.truncate(options.rendezvous.max_links.max(1));
    let peer = match &targets[0] {
        Target::Tcp(a) => Endpoint::Ip(*a),
        Target::Unix(p) => Endpoint::Unix(p.to_string_lossy().into_owned()),
    };
    let mut dials: Vec<BoxFuture<io::Result<Connected>>> = targets
        .into_iter()
        .map(|t| dial(net.clone(), t, options.redial_pause, refused.clone()))
        .collect();
    let mut side = Candidates {
        net: net.clone(),
        rdv: Rendezvous::new(options.rendezvous, tie_break),
        links: BTreeMap::new(),
        made: 0,
        connection: ctx.settings().connection.clone(),
        framer: pre.framer().clone(),
    };
    let mut last_error: Option<io::Error> = None;
    let outcome = poll_fn(|cx| {
        // Candidates keep coming until the outcome: accepted and dialed.
        while let Poll::Ready(r) = accept.poll_accept(cx) {
            match r {
                Ok(c) => side.add(c, cx.waker())?,
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        let mut i = 0;
        while i < dials.len() {
            match dials[i].as_mut().poll(cx) {
                Poll::Ready(r) => {
                    drop(dials.swap_remove(i));
                    match r {
                        Ok(c) => side.add(c, cx.waker())?,
                        Err(e) => last_error = Some(e),
                    }
                }
                Poll::Pending => i += 1,
            }
        }
        if let Some(ev) = side.step(cx.waker()) {
            return Poll::Ready(Ok(ev));
        }
        timer
            .poll_expired(cx)
            .map(|()| Err(timed_out(last_error.take())))
    })
    .await;
    let outcome: RendezvousEvent = match outcome {
        Ok(ev) => ev,
        Err(e) => {
            side.close_all();
            return Err(e);
        }
    };
    drop(dials);
    drop(accept);
    match outcome {
        RendezvousEvent::Established { link, role } => {
            let Some((shared, addresses)) = side.links.remove(&link) else {
                side.close_all();
                return Err(io::Error::other("rendezvous: the survivor closed"));
            };
            side.close_all();
            shared.with(|l| l.coordinator = None);
            let candidate = Candidate {
                stack,
                endpoint: peer,
            };
            let mut origin = Origin::new(net, ctx, pre, candidate, None);
            origin.addresses = Some(addresses);
            Ok(Rendezvoused {
                connection: MessageConnection::new(shared, Arc::new(origin)),
                role,
                links: side.made,
            })
        }
        RendezvousEvent::Failed(e) => {
            side.close_all();
            // A tie is the core's error as is (2^-64: the caller may retry).
            if e == RendezvousError::Tie {
                return Err(io::Error::other(e));
            }
            let detail = last_error
                .map(|l| format!(" (last socket error: {l})"))
                .unwrap_or_default();
            Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("{e}{detail}"),
            ))
        }
        _ => {
            side.close_all();
            Err(io::Error::other("rendezvous: an unknown outcome"))
        }
    }
}
