//! Rendezvous (RFC 9622 section 7.3): both peers listen on their local
//! endpoint and dial the other's, every candidate connection runs the
//! core's rendezvous handshake ([`Handover`] of a [`Link`] and then the
//! message connection) through the one driver, and the core's
//! [`Rendezvous`] coordinator says which link survives. The survivor is
//! handed back as a [`RendezvousConnection`]; every other candidate is
//! closed.
//!
//! Only the plain stacks run here: TCP, or a Unix stream socket when both
//! endpoints are paths. Security and multistreaming are not offered on a
//! rendezvous yet (a preconnection that requires them is refused).
//!
//! The survivor's driver runs `Handover<Connection>` from its first byte
//! (the message connection cannot start on a socket another driver read
//! from), so its handle is [`RendezvousConnection`], with the message
//! calls of [`MessageConnection`](super::MessageConnection) over that
//! machine.

use super::context::Context;
use super::initiate::invalid;
use super::listen::bind;
use super::message::{Ended, Received, SendOutcome};
use super::net::{Accept, Connected, Net};
use super::BoxFuture;
use crate::runtime::Timer;
use crate::secure::Addresses;
use crate::shared::{set_waker, Layer, Shared, Wakeups};
use crate::spawn_layer;
use bytes::Bytes;
use proto_core::taps::candidate::{Candidate, Stack};
use proto_core::taps::connection::{
    Config as ConnectionConfig, Connection as Core, Event, ReceiveError, SendError,
};
use proto_core::taps::endpoint::{Endpoint, Family, Resolution};
use proto_core::taps::framer::FramerFactory;
use proto_core::taps::message::{MessageProperties, MessageRef};
use proto_core::taps::preconnection::{PlanContext, Preconnection};
use proto_core::taps::rendezvous::{
    Decision, Handover, LinkEvent, LinkId, Rendezvous, RendezvousConfig, RendezvousError,
    RendezvousEvent, Role,
};
use proto_core::time::Instant as CoreInstant;
use proto_core::wire::Machine;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
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
    pub connection: RendezvousConnection,
    /// Whether this side decided (lower tie-break) or followed.
    pub role: Role,
    /// Candidate links this side ran (accepted and dialed).
    pub links: u64,
}

/// Events a link holds for the coordinator: a hello, "chosen", a failure.
const MAX_LINK_EVENTS: usize = 8;

/// One candidate connection under the driver: the handover machine, the
/// link events the coordinator has not taken yet, and the message side's
/// waiters once it is the survivor.
struct LinkLayer {
    machine: Handover<Core>,
    link_events: Vec<LinkEvent>,
    coordinator: Option<Waker>,
    next_ref: u64,
    awaited: HashMap<MessageRef, (Option<SendOutcome>, Option<Waker>)>,
    received: VecDeque<Result<Received, ReceiveError>>,
    receivers: Vec<Waker>,
    ended: Option<Ended>,
    end_waiters: Vec<Waker>,
}

impl LinkLayer {
    fn new(machine: Handover<Core>) -> Self {
        LinkLayer {
            machine,
            link_events: Vec::new(),
            coordinator: None,
            next_ref: 0,
            awaited: HashMap::new(),
            received: VecDeque::new(),
            receivers: Vec::new(),
            ended: None,
            end_waiters: Vec::new(),
        }
    }

    fn finish(&mut self, r: MessageRef, what: SendOutcome, wake: &mut Wakeups) {
        if let Some(slot) = self.awaited.get_mut(&r) {
            slot.0 = Some(what);
            wake.take_from(&mut slot.1);
        }
    }

    fn is_ended(&self) -> bool {
        self.ended.is_some() || self.machine.is_closed()
    }
}

impl Layer for LinkLayer {
    type Machine = Handover<Core>;

    fn machine(&mut self) -> &mut Handover<Core> {
        &mut self.machine
    }

    fn machine_ref(&self) -> &Handover<Core> {
        &self.machine
    }

    fn dispatch(&mut self, wake: &mut Wakeups) {
        let mut for_coordinator = false;
        while let Some(ev) = self.machine.link_mut().poll_event() {
            if self.link_events.len() < MAX_LINK_EVENTS {
                self.link_events.push(ev);
            }
            for_coordinator = true;
        }
        while let Some(ev) = self.machine.inner_mut().poll_event() {
            match ev {
                Event::Sent(r) => self.finish(r, SendOutcome::Sent, wake),
                Event::Expired(r) => self.finish(r, SendOutcome::Expired, wake),
                Event::SendError { message, error } => {
                    self.finish(message, SendOutcome::Failed(error), wake)
                }
                Event::Received { data, context } | Event::ReceivedPartial { data, context } => {
                    // One delivery per receive request: the core bounds these.
                    self.received.push_back(Ok(Received { data, context }));
                    wake.drain_from(&mut self.receivers);
                }
                Event::ReceiveError { error, .. } => {
                    self.received.push_back(Err(error));
                    wake.drain_from(&mut self.receivers);
                }
                Event::Closed => self.ended = Some(Ended::Closed),
                Event::ConnectionError(f) => self.ended = Some(Ended::Failed(f)),
                _ => {}
            }
        }
        if self.is_ended() {
            for_coordinator = true;
            wake.drain_from(&mut self.end_waiters);
            wake.drain_from(&mut self.receivers);
            for slot in self.awaited.values_mut() {
                wake.take_from(&mut slot.1);
            }
        }
        if for_coordinator {
            wake.take_from(&mut self.coordinator);
        }
    }
}

/// The message connection on the surviving link of a rendezvous (RFC
/// 9622's Connection after Rendezvous): send and receive messages, close
/// or abort, wait for the end. Clones share the connection; dropping the
/// last one closes it gracefully.
#[derive(Clone)]
pub struct RendezvousConnection {
    shared: Arc<Shared<LinkLayer>>,
    candidate: Arc<Candidate>,
    addresses: Arc<Addresses>,
    send_defaults: MessageProperties,
    _last: Arc<CloseOnDrop>,
}

struct CloseOnDrop(Arc<Shared<LinkLayer>>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let now = self.0.now();
        self.0.with(|l| l.machine.inner_mut().close(now));
    }
}

impl fmt::Debug for RendezvousConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RendezvousConnection")
            .field("candidate", &self.candidate)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl RendezvousConnection {
    /// The stack and the peer's endpoint.
    pub fn candidate(&self) -> &Candidate {
        &self.candidate
    }

    /// Both ends' socket addresses: the peer's survivor has them
    /// reversed.
    pub fn addresses(&self) -> &Addresses {
        &self.addresses
    }

    /// The preconnection's send parameters.
    pub fn send_defaults(&self) -> MessageProperties {
        self.send_defaults
    }

    /// Sends `data` as one message and waits until its last byte went to
    /// the transport; `Expired` or the send error otherwise.
    pub async fn send(&self, data: impl Into<Bytes>, props: MessageProperties) -> SendOutcome {
        let data = data.into();
        let now = self.shared.now();
        let sent = self.shared.with(|l| {
            let r = MessageRef(l.next_ref);
            l.next_ref += 1;
            l.awaited.insert(r, (None, None));
            match l.machine.inner_mut().send(now, r, data, props) {
                Ok(()) => Ok(r),
                Err(e) => {
                    l.awaited.remove(&r);
                    Err(e)
                }
            }
        });
        let msgref = match sent {
            Ok(r) => r,
            Err(e) => return SendOutcome::Failed(e),
        };
        let _slot = Awaiting {
            shared: &self.shared,
            msgref,
        };
        poll_fn(|cx| {
            self.shared.with(|l| {
                let ended = l.is_ended();
                match l.awaited.get_mut(&msgref) {
                    Some((Some(o), _)) => Poll::Ready(o.clone()),
                    Some(_) if ended => {
                        Poll::Ready(SendOutcome::Failed(SendError::ConnectionFailed))
                    }
                    Some((None, w)) => {
                        set_waker(w, cx.waker());
                        Poll::Pending
                    }
                    None => Poll::Ready(SendOutcome::Failed(SendError::ConnectionFailed)),
                }
            })
        })
        .await
    }

    /// Receives the next message whole (up to `max_len` bytes; a longer
    /// one comes in parts, `context.end_of_message` false until its last).
    pub async fn receive(&self, max_len: usize) -> io::Result<Received> {
        let asked = self
            .shared
            .with(|l| l.machine.inner_mut().receive(usize::MAX, max_len.max(1)));
        if let Err(e) = asked {
            return match self.shared.with(|l| l.received.pop_front()) {
                Some(r) => r.map_err(receive_error),
                None => Err(io::Error::new(io::ErrorKind::NotConnected, e)),
            };
        }
        poll_fn(|cx| {
            self.shared.with(|l| match l.received.pop_front() {
                Some(r) => Poll::Ready(r.map_err(receive_error)),
                None if l.is_ended() => Poll::Ready(Err(closed_error(&l.ended))),
                None => {
                    l.receivers.push(cx.waker().clone());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Closes gracefully: queued messages go out first.
    pub fn close(&self) {
        let now = self.shared.now();
        self.shared.with(|l| l.machine.inner_mut().close(now));
    }

    /// Ends at once: queued messages fail.
    pub fn abort(&self) {
        let now = self.shared.now();
        self.shared.with(|l| l.machine.inner_mut().abort(now));
    }

    /// Waits for the end: [`Ended::Closed`] or why it failed.
    pub async fn ended(&self) -> Ended {
        poll_fn(|cx| {
            self.shared.with(|l| match &l.ended {
                Some(e) => Poll::Ready(e.clone()),
                None if l.machine.is_closed() => Poll::Ready(Ended::Closed),
                None => {
                    l.end_waiters.push(cx.waker().clone());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Whether the connection has ended.
    pub fn is_ended(&self) -> bool {
        self.shared.with(|l| l.is_ended())
    }
}

/// Removes a send's slot when its future ends or is dropped.
struct Awaiting<'a> {
    shared: &'a Shared<LinkLayer>,
    msgref: MessageRef,
}

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        self.shared.with(|l| l.awaited.remove(&self.msgref));
    }
}

fn closed_error(ended: &Option<Ended>) -> io::Error {
    match ended {
        Some(Ended::Failed(f)) => io::Error::new(io::ErrorKind::ConnectionAborted, f.clone()),
        _ => io::Error::new(io::ErrorKind::NotConnected, "the connection is closed"),
    }
}

fn receive_error(e: ReceiveError) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, e)
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
    links: BTreeMap<LinkId, (Arc<Shared<LinkLayer>>, Addresses)>,
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
        let layer = LinkLayer::new(Handover::new(link, core));
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
                    l.machine.is_closed() && !l.machine.is_handed_over(),
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
                        let _ = shared.with(|l| l.machine.choose(now));
                    }
                }
                Decision::Close(id) => {
                    if let Some((shared, _)) = self.links.remove(&id) {
                        let now = shared.now();
                        shared.with(|l| l.machine.close(now, 0, b"not chosen"));
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
            shared.with(|l| l.machine.close(now, 0, b"rendezvous ended"));
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
            Ok(Rendezvoused {
                connection: RendezvousConnection {
                    _last: Arc::new(CloseOnDrop(shared.clone())),
                    shared,
                    candidate: Arc::new(Candidate {
                        stack,
                        endpoint: peer,
                    }),
                    addresses: Arc::new(addresses),
                    send_defaults: pre.send_defaults(),
                },
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
