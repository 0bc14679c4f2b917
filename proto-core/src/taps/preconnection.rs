//! A preconnection (RFC 9622 section 6): endpoints, transport properties
//! and security, turned into validated plans without any IO.
//!
//! ```
//! use proto_core::taps::endpoint::{RemoteSpecifier, Resolution};
//! use proto_core::taps::preconnection::{Preconnection, SecurityParameters, PlanContext};
//! use proto_core::taps::candidate::Stack;
//!
//! let pre = Preconnection::new(Default::default(), SecurityParameters::Disabled)
//!     .with_remote(RemoteSpecifier::new().with_host_name("example.com").with_port(7000));
//! let plan = pre.initiate(&PlanContext::default()).unwrap();
//! assert_eq!(plan.remote.resolution, Resolution::Lookup { host: "example.com".into(), port: 7000 });
//! // multistreaming is Prefer'ed by default: yamux before plain TCP.
//! assert_eq!(plan.selection.stacks(), &[Stack::Yamux, Stack::Tcp]);
//! ```

use super::cache::{PathCache, RemoteKey};
use super::endpoint::{
    check_interface, LocalSpecifier, RemoteSpecifier, SpecifierError, SpecifierLimits, ValidLocal,
    ValidRemote,
};
use super::framer::FramerFactory;
use super::message::MessageProperties;
use super::properties::TransportProperties;
use super::selection::{
    select, EndpointKind, SecurityMode, Selection, SelectionError, SelectionInput,
};
use crate::secure::{Identity, PeerAuthorizer, TrustedRoots};
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;

/// weft's security: who we are, whom we trust, who may connect.
#[derive(Clone)]
pub struct WeftSecurity {
    /// Our identity (static key and blessings).
    pub identity: Identity,
    /// The roots peers' blessings must chain to.
    pub roots: TrustedRoots,
    /// Decides which peers are accepted.
    pub authorizer: Arc<dyn PeerAuthorizer>,
}

impl fmt::Debug for WeftSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeftSecurity")
            .field("identity", &self.identity)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

/// The security parameters of a preconnection (RFC 9622 section 6.3).
/// Cloning is cheap (one reference count).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SecurityParameters {
    /// No security: plaintext stacks only. RFC 9622's
    /// `DisabledSecurityParameters`.
    Disabled,
    /// weft's secure layer: only tcp+secure+mux qualifies.
    Weft(Arc<WeftSecurity>),
}

impl SecurityParameters {
    /// weft's security from its parts.
    pub fn weft(
        identity: Identity,
        roots: TrustedRoots,
        authorizer: Arc<dyn PeerAuthorizer>,
    ) -> Self {
        SecurityParameters::Weft(Arc::new(WeftSecurity {
            identity,
            roots,
            authorizer,
        }))
    }

    /// What selection needs to know.
    pub fn mode(&self) -> SecurityMode {
        match self {
            SecurityParameters::Disabled => SecurityMode::Disabled,
            SecurityParameters::Weft(_) => SecurityMode::Weft,
        }
    }
}

/// What a plan may consult besides the preconnection (all optional).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanContext<'a> {
    /// Past outcomes, to rank stacks.
    pub cache: Option<&'a PathCache>,
    /// The host's interface names, if known.
    pub interfaces: &'a [String],
    /// Limits on endpoint specifiers (default if `None`).
    pub limits: Option<&'a SpecifierLimits>,
}

/// Why a preconnection cannot act.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PreconnectionError {
    /// Initiate and rendezvous need a remote endpoint.
    NoRemote,
    /// Listen and rendezvous need a local endpoint.
    NoLocal,
    /// The remote specifier is invalid.
    Remote(SpecifierError),
    /// The local specifier is invalid.
    Local(SpecifierError),
    /// An interface named in the transport properties is invalid.
    Interface(SpecifierError),
    /// One endpoint is a Unix path and the other an IP endpoint.
    MixedEndpoints,
    /// No candidate satisfies the properties and security.
    Selection(SelectionError),
    /// `initiate_with_send` with a message not marked safely replayable:
    /// racing may send the first message on several attempts.
    NotSafelyReplayable,
}

impl fmt::Display for PreconnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreconnectionError::NoRemote => f.write_str("no remote endpoint specified"),
            PreconnectionError::NoLocal => f.write_str("no local endpoint specified"),
            PreconnectionError::Remote(e) => write!(f, "remote endpoint: {e}"),
            PreconnectionError::Local(e) => write!(f, "local endpoint: {e}"),
            PreconnectionError::Interface(e) => write!(f, "transport properties: {e}"),
            PreconnectionError::MixedEndpoints => {
                f.write_str("one endpoint is a Unix socket path and the other an IP endpoint")
            }
            PreconnectionError::Selection(e) => write!(f, "{e}"),
            PreconnectionError::NotSafelyReplayable => f.write_str(
                "a message sent with the first flight must be safely replayable \
                 (racing may send it on more than one attempt)",
            ),
        }
    }
}

impl core::error::Error for PreconnectionError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            PreconnectionError::Remote(e)
            | PreconnectionError::Local(e)
            | PreconnectionError::Interface(e) => Some(e),
            PreconnectionError::Selection(e) => Some(e),
            _ => None,
        }
    }
}

/// What `initiate` (and `initiate_with_send`) will do.
#[derive(Debug, Clone)]
pub struct InitiatePlan {
    /// The remote and what to resolve.
    pub remote: ValidRemote,
    /// The cache key of the remote (to record outcomes under).
    pub remote_key: RemoteKey,
    /// Where to send from, if the application said.
    pub local: Option<ValidLocal>,
    /// The ordered candidate tree.
    pub selection: Selection,
    /// The security to run.
    pub security: SecurityParameters,
    /// Whether a first message goes with establishment
    /// (`initiate_with_send`); it was checked to be safely replayable.
    pub send_first_message: bool,
}

/// What `listen` will do.
#[derive(Debug, Clone)]
pub struct ListenPlan {
    /// What to bind.
    pub local: ValidLocal,
    /// Restricts accepted peers to this remote, if given.
    pub remote: Option<ValidRemote>,
    /// The stacks to listen with, best first.
    pub selection: Selection,
    /// The security to run.
    pub security: SecurityParameters,
}

/// What `rendezvous` will do.
#[derive(Debug, Clone)]
pub struct RendezvousPlan {
    /// What to bind.
    pub local: ValidLocal,
    /// The peer and what to resolve.
    pub remote: ValidRemote,
    /// The cache key of the remote.
    pub remote_key: RemoteKey,
    /// The ordered candidate tree.
    pub selection: Selection,
    /// The security to run.
    pub security: SecurityParameters,
}

/// A preconnection: what the application asks for, before any IO.
#[derive(Debug, Clone)]
pub struct Preconnection {
    local: Option<LocalSpecifier>,
    remote: Option<RemoteSpecifier>,
    properties: TransportProperties,
    security: SecurityParameters,
    /// Message properties for sends that give none (RFC 9622's send
    /// parameters on the preconnection).
    send_defaults: MessageProperties,
    /// Framers for the connections it makes (RFC 9622 `AddFramer`).
    framer: FramerFactory,
}

impl Preconnection {
    /// A preconnection with `properties` and `security`, no endpoints yet.
    pub fn new(properties: TransportProperties, security: SecurityParameters) -> Self {
        Preconnection {
            local: None,
            remote: None,
            properties,
            security,
            send_defaults: MessageProperties::default(),
            framer: FramerFactory::default(),
        }
    }

    /// Sets the message properties used by sends that give none.
    #[must_use]
    pub fn with_send_defaults(mut self, props: MessageProperties) -> Self {
        self.send_defaults = props;
        self
    }

    /// The message properties used by sends that give none.
    pub fn send_defaults(&self) -> MessageProperties {
        self.send_defaults
    }

    /// Sets the framer each connection gets (default: a 4-byte length
    /// prefix).
    #[must_use]
    pub fn with_framer(mut self, framer: FramerFactory) -> Self {
        self.framer = framer;
        self
    }

    /// What makes each connection's framer.
    pub fn framer(&self) -> &FramerFactory {
        &self.framer
    }

    /// Sets the local endpoint.
    #[must_use]
    pub fn with_local(mut self, local: LocalSpecifier) -> Self {
        self.local = Some(local);
        self
    }

    /// Sets the remote endpoint.
    #[must_use]
    pub fn with_remote(mut self, remote: RemoteSpecifier) -> Self {
        self.remote = Some(remote);
        self
    }

    /// The local endpoint.
    pub fn local(&self) -> Option<&LocalSpecifier> {
        self.local.as_ref()
    }

    /// The remote endpoint.
    pub fn remote(&self) -> Option<&RemoteSpecifier> {
        self.remote.as_ref()
    }

    /// The transport properties.
    pub fn properties(&self) -> &TransportProperties {
        &self.properties
    }

    /// The transport properties, to change.
    pub fn properties_mut(&mut self) -> &mut TransportProperties {
        &mut self.properties
    }

    /// The security parameters.
    pub fn security(&self) -> &SecurityParameters {
        &self.security
    }

    fn valid_remote(&self, ctx: &PlanContext<'_>) -> Result<ValidRemote, PreconnectionError> {
        let limits = ctx.limits.cloned().unwrap_or_default();
        self.remote
            .as_ref()
            .ok_or(PreconnectionError::NoRemote)?
            .validate(&limits)
            .map_err(PreconnectionError::Remote)
    }

    fn valid_local(&self, ctx: &PlanContext<'_>) -> Result<Option<ValidLocal>, PreconnectionError> {
        let limits = ctx.limits.cloned().unwrap_or_default();
        self.local
            .as_ref()
            .map(|l| l.validate(&limits).map_err(PreconnectionError::Local))
            .transpose()
    }

    fn select(
        &self,
        ctx: &PlanContext<'_>,
        unix: bool,
        key: Option<&RemoteKey>,
    ) -> Result<Selection, PreconnectionError> {
        let limits = ctx.limits.cloned().unwrap_or_default();
        for (name, _) in self.properties.interfaces() {
            check_interface(name, &limits).map_err(PreconnectionError::Interface)?;
        }
        select(&SelectionInput {
            properties: &self.properties,
            security: self.security.mode(),
            endpoint: if unix {
                EndpointKind::Unix
            } else {
                EndpointKind::Ip
            },
            cache: ctx.cache.zip(key),
            interfaces: ctx.interfaces,
        })
        .map_err(PreconnectionError::Selection)
    }

    /// Plans an active open (RFC 9622 `Initiate`): needs a remote.
    pub fn initiate(&self, ctx: &PlanContext<'_>) -> Result<InitiatePlan, PreconnectionError> {
        let remote = self.valid_remote(ctx)?;
        let local = self.valid_local(ctx)?;
        if local
            .as_ref()
            .is_some_and(|l| l.is_unix() != remote.is_unix())
        {
            return Err(PreconnectionError::MixedEndpoints);
        }
        let remote_key = RemoteKey::of(&remote);
        let selection = self.select(ctx, remote.is_unix(), Some(&remote_key))?;
        Ok(InitiatePlan {
            remote,
            remote_key,
            local,
            selection,
            security: self.security.clone(),
            send_first_message: false,
        })
    }

    /// Plans `InitiateWithSend`: an active open whose first message goes
    /// with establishment. Racing may send that message on more than one
    /// attempt, so it must be safely replayable (the message property of
    /// the same name), else this fails.
    pub fn initiate_with_send(
        &self,
        ctx: &PlanContext<'_>,
        safely_replayable: bool,
    ) -> Result<InitiatePlan, PreconnectionError> {
        if !safely_replayable {
            return Err(PreconnectionError::NotSafelyReplayable);
        }
        let mut plan = self.initiate(ctx)?;
        plan.send_first_message = true;
        Ok(plan)
    }

    /// Plans a passive open (RFC 9622 `Listen`): needs a local. A remote,
    /// if set, restricts who may connect.
    pub fn listen(&self, ctx: &PlanContext<'_>) -> Result<ListenPlan, PreconnectionError> {
        let local = self.valid_local(ctx)?.ok_or(PreconnectionError::NoLocal)?;
        let remote = match self.remote {
            Some(_) => Some(self.valid_remote(ctx)?),
            None => None,
        };
        if remote
            .as_ref()
            .is_some_and(|r| r.is_unix() != local.is_unix())
        {
            return Err(PreconnectionError::MixedEndpoints);
        }
        let selection = self.select(ctx, local.is_unix(), None)?;
        Ok(ListenPlan {
            local,
            remote,
            selection,
            security: self.security.clone(),
        })
    }

    /// Plans a simultaneous open (RFC 9622 `Rendezvous`): needs both.
    pub fn rendezvous(&self, ctx: &PlanContext<'_>) -> Result<RendezvousPlan, PreconnectionError> {
        let remote = self.valid_remote(ctx)?;
        let local = self.valid_local(ctx)?.ok_or(PreconnectionError::NoLocal)?;
        if local.is_unix() != remote.is_unix() {
            return Err(PreconnectionError::MixedEndpoints);
        }
        let remote_key = RemoteKey::of(&remote);
        let selection = self.select(ctx, remote.is_unix(), Some(&remote_key))?;
        Ok(RendezvousPlan {
            local,
            remote,
            remote_key,
            selection,
            security: self.security.clone(),
        })
    }
}
