//! One racing attempt: connect a candidate's socket and bring its protocol
//! stack up (the secure handshake, the mux), so that "connected" means the
//! whole stack is ready, as RFC 9623 races whole stacks.

use super::net::{Connected, Net};
use crate::secure::{spawn_secure_connection, Credentials};
use crate::{spawn_connection, Config, Connection, Profile, Side};
use proto_core::taps::candidate::{Candidate, Stack};
use proto_core::taps::endpoint::Endpoint;
use std::io;
use std::path::PathBuf;

/// What a won attempt hands over.
#[derive(Debug)]
pub enum Established {
    /// A byte stream (TCP, Unix): one message connection runs on it.
    Stream(Connected),
    /// A mux connection (secure, or yamux): message connections run on
    /// its flows, and cloning one opens another flow.
    Mux(Connection),
}

/// How to bring up the stacks that need more than a socket.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// The mux's settings (for `SecureMux` and `Yamux`; the yamux stack
    /// sets the profile itself).
    pub mux: Config,
    /// Who we are and whom we accept: needed by `SecureMux`.
    pub credentials: Option<Credentials>,
}

/// Connects `candidate` and brings its stack up.
pub async fn establish<N: Net>(
    net: N,
    candidate: Candidate,
    opts: &StackOptions,
) -> io::Result<Established> {
    match (candidate.stack, &candidate.endpoint) {
        (Stack::Tcp, Endpoint::Ip(addr)) => Ok(Established::Stream(net.connect_tcp(*addr).await?)),
        (Stack::Unix, Endpoint::Unix(path)) => Ok(Established::Stream(
            net.connect_unix(PathBuf::from(path)).await?,
        )),
        (Stack::SecureMux, Endpoint::Ip(addr)) => {
            let creds = opts.credentials.as_ref().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the secure mux stack needs credentials",
                )
            })?;
            let c = net.connect_tcp(*addr).await?;
            let conn = spawn_secure_connection(
                &net,
                c.transport,
                opts.mux.clone(),
                Side::Dialer,
                creds,
                &c.addresses,
            )
            .await?;
            Ok(Established::Mux(conn))
        }
        (Stack::Yamux, Endpoint::Ip(addr)) => {
            let c = net.connect_tcp(*addr).await?;
            let mut config = opts.mux.clone();
            config.profile = Profile::Yamux;
            Ok(Established::Mux(spawn_connection(
                &net,
                c.transport,
                config,
                Side::Dialer,
            )?))
        }
        (stack, endpoint) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the {stack} stack cannot run to {endpoint} in this adapter"),
        )),
    }
}
