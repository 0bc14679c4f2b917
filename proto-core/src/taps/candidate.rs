//! The leaves of the candidate tree: a protocol stack on an endpoint.

use super::endpoint::Endpoint;
use core::fmt;

/// A protocol stack weft can run a connection on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Stack {
    /// TCP, messages delimited by a framer.
    Tcp,
    /// TCP + weft's Noise secure layer + the native mux: multistreaming,
    /// a message per flow or framed on a flow.
    SecureMux,
    /// TCP + the mux speaking yamux v0 (plaintext).
    Yamux,
    /// UDP: unreliable, message boundaries kept.
    Udp,
    /// A Unix stream socket, messages delimited by a framer.
    Unix,
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stack::Tcp => "tcp",
            Stack::SecureMux => "tcp+secure+mux",
            Stack::Yamux => "tcp+yamux",
            Stack::Udp => "udp",
            Stack::Unix => "unix",
        })
    }
}

/// One attempt's target: a stack on an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Candidate {
    /// The protocol stack.
    pub stack: Stack,
    /// Where it connects.
    pub endpoint: Endpoint,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.stack, self.endpoint)
    }
}
