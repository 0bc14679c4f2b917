//! Initiate (RFC 9622 section 7.1): plan the preconnection in the core,
//! race its candidates, and run a message connection on the winner.

use super::context::Context;
use super::establish::{Established, StackOptions};
use super::message::{MessageConnection, MessageLayer};
use super::net::Net;
use super::racer::{race, RaceReport, Won};
use super::BoxFuture;
use crate::secure::{Addresses, Credentials};
use crate::shared::Shared;
use crate::spawn_layer;
use bytes::Bytes;
use proto_core::taps::candidate::Candidate;
use proto_core::taps::connection::Config as ConnectionConfig;
use proto_core::taps::connection::Connection as Core;
use proto_core::taps::endpoint::{Family, Resolution};
use proto_core::taps::framer::FramerFactory;
use proto_core::taps::message::MessageProperties;
use proto_core::taps::preconnection::{PlanContext, Preconnection, SecurityParameters};
use proto_core::taps::race::RacePlan;
use proto_core::time::Instant as CoreInstant;
use std::io;
use std::sync::Arc;

/// A connection that came out of a race, and how the race went.
#[derive(Debug)]
pub struct Initiated {
    /// The message connection, ready.
    pub connection: MessageConnection,
    /// Every resolution and attempt, with timings.
    pub report: RaceReport,
}

/// `InvalidInput` for a preconnection the core refused (no remote, a
/// property no stack satisfies, ...), with the core's reason.
pub(crate) fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// The adapter's credentials for weft security parameters.
pub(crate) fn credentials(security: &SecurityParameters) -> Option<Credentials> {
    match security {
        SecurityParameters::Weft(w) => Some(Credentials::new(
            w.identity.clone(),
            w.roots.clone(),
            w.authorizer.clone(),
        )),
        _ => None,
    }
}

/// Starts another connection of a group (a new race).
pub(crate) type Again = Arc<dyn Fn() -> BoxFuture<io::Result<Initiated>> + Send + Sync>;
/// Runs a message layer on a flow, on the connection's runtime.
pub(crate) type SpawnOnFlow =
    Arc<dyn Fn(crate::Flow, MessageLayer) -> Arc<Shared<MessageLayer>> + Send + Sync>;

/// What a connection knows of where it came from, and how to clone it.
pub(crate) struct Origin {
    pub candidate: Candidate,
    pub addresses: Option<Addresses>,
    /// The mux connection the message connection runs a flow of.
    pub mux: Option<crate::Connection>,
    pub again: Option<Again>,
    pub send_defaults: MessageProperties,
    pub framer: FramerFactory,
    pub connection_config: ConnectionConfig,
    pub spawn: SpawnOnFlow,
}

impl Origin {
    /// The origin of a connection on `candidate`, made by `pre` in `ctx`
    /// on `net` (addresses and mux filled in once known).
    pub(crate) fn new<N: Net>(
        net: &N,
        ctx: &Context,
        pre: &Preconnection,
        candidate: Candidate,
        again: Option<Again>,
    ) -> Origin {
        let net = net.clone();
        Origin {
            candidate,
            addresses: None,
            mux: None,
            again,
            send_defaults: pre.send_defaults(),
            framer: pre.framer().clone(),
            connection_config: ctx.settings().connection.clone(),
            spawn: Arc::new(move |flow, layer| spawn_layer(&net, flow, layer)),
        }
    }
}

impl Origin {
    /// A fresh message machine for a connection of this origin.
    pub(crate) fn machine(&self) -> io::Result<Core> {
        Core::new(
            self.connection_config.clone(),
            self.framer.make(),
            CoreInstant::ZERO,
        )
        .map_err(invalid)
    }
}

/// A message connection of `origin` on `flow`, one flow of its mux
/// connection (opened by us, or accepted by a listener).
pub(crate) fn on_flow(origin: &Arc<Origin>, flow: crate::Flow) -> io::Result<MessageConnection> {
    let layer = MessageLayer::new(origin.machine()?);
    Ok(MessageConnection::new(
        (origin.spawn)(flow, layer),
        origin.clone(),
    ))
}

/// Runs a message connection on an established stack: on the socket, or
/// on a new flow of the mux connection.
pub(crate) async fn message_connection<N: Net>(
    net: &N,
    established: Established,
    mut origin: Origin,
) -> io::Result<MessageConnection> {
    match established {
        Established::Stream(c) => {
            origin.addresses = Some(c.addresses);
            let layer = MessageLayer::new(origin.machine()?);
            let shared = spawn_layer(net, c.transport, layer);
            Ok(MessageConnection::new(shared, Arc::new(origin)))
        }
        Established::Mux(conn) => {
            let flow = conn.open_flow().await?;
            origin.mux = Some(conn);
            on_flow(&Arc::new(origin), flow)
        }
    }
}

/// Initiates `pre` on `net` (RFC 9622 Initiate): the core plans (which
/// stacks, in which order, from the properties and the cache), the race
/// runs, and the winner carries a message connection.
///
/// Returns a boxed future (`Send`, `'static`): the connection's Clone
/// starts this again.
pub fn initiate<N: Net>(
    net: &N,
    ctx: &Context,
    pre: &Preconnection,
) -> BoxFuture<io::Result<Initiated>> {
    let (net, ctx, pre) = (net.clone(), ctx.clone(), pre.clone());
    Box::pin(async move { run(&net, &ctx, &pre, None).await })
}

/// RFC 9622 InitiateWithSend: [`initiate`], with `data` as the
/// connection's first message. Racing may carry it on more than one
/// attempt, so it must be safely replayable (`props.safely_replayable`),
/// else `InvalidInput` before any IO. No stack here has a 0-RTT mode: the
/// message is queued the moment the winner is up, so it leaves in the
/// connection's first flight (on the mux stacks, with the flow's opening).
pub fn initiate_with_send<N: Net>(
    net: &N,
    ctx: &Context,
    pre: &Preconnection,
    data: Bytes,
    props: MessageProperties,
) -> BoxFuture<io::Result<Initiated>> {
    let (net, ctx, pre) = (net.clone(), ctx.clone(), pre.clone());
    Box::pin(async move { run(&net, &ctx, &pre, Some((data, props))).await })
}

async fn run<N: Net>(
    net: &N,
    ctx: &Context,
    pre: &Preconnection,
    first: Option<(Bytes, MessageProperties)>,
) -> io::Result<Initiated> {
    let plan = {
        let cache = ctx.cache();
        let plan_ctx = PlanContext {
            cache: Some(&cache),
            ..PlanContext::default()
        };
        match &first {
            Some((_, props)) => pre.initiate_with_send(&plan_ctx, props.safely_replayable),
            None => pre.initiate(&plan_ctx),
        }
        .map_err(invalid)?
    };
    let rtt = ctx.cache().best_rtt(&plan.remote_key);
    let (endpoints, resolving, host) = match &plan.remote.resolution {
        Resolution::Lookup { host, port } => (
            Vec::new(),
            vec![Family::V6, Family::V4],
            Some((host.clone(), *port)),
        ),
        Resolution::Ready(e) => (vec![e.clone()], Vec::new(), None),
        _ => return Err(invalid(io::Error::other("an unknown kind of remote"))),
    };
    let race_plan = RacePlan {
        stacks: plan.selection.stacks().to_vec(),
        endpoints,
        resolving,
        rtt_estimate: rtt,
    };
    let opts = Arc::new(StackOptions {
        mux: ctx.settings().mux.clone(),
        credentials: credentials(&plan.security),
    });
    let settings = ctx.settings().race.clone();
    match race(net, &ctx.inner.resolver, settings, race_plan, host, opts).await {
        Ok((won, report)) => {
            let Won {
                established,
                candidate,
                connect_time,
            } = won;
            ctx.cache()
                .record_success(&plan.remote_key, candidate.stack, connect_time);
            let again = {
                let (net, ctx, pre) = (net.clone(), ctx.clone(), pre.clone());
                Arc::new(move || initiate(&net, &ctx, &pre))
            };
            let origin = Origin::new(net, ctx, pre, candidate, Some(again));
            let connection = message_connection(net, established, origin).await?;
            if let Some((data, props)) = first {
                connection
                    .send_nowait(data, props)
                    .map_err(io::Error::other)?;
            }
            Ok(Initiated { connection, report })
        }
        Err(failed) => {
            let mut cache = ctx.cache();
            for a in &failed.report.attempts {
                cache.record_failure(&plan.remote_key, a.candidate.stack);
            }
            drop(cache);
            Err(failed.into())
        }
    }
}
