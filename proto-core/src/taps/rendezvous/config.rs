//! The rendezvous limits.

use crate::time::Duration;

/// Rendezvous limits; [`Default`] gives the values documented on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RendezvousConfig {
    /// From a link's creation until its hello (and, for the follower,
    /// the choice) must have arrived. Default 10 s: several round trips
    /// on any path a rendezvous is worth trying on.
    pub handshake_timeout: Duration,
    /// Candidate links open at once. Default 16: every listen/dial pair
    /// of a few addresses per side.
    pub max_links: usize,
    /// Bytes kept for the message connection after "chosen" (what
    /// followed in the same read, and reads given while the link no
    /// longer wants input). Default 128 KiB: one driver read buffer.
    pub max_leftover: usize,
}

impl Default for RendezvousConfig {
    fn default() -> Self {
        RendezvousConfig {
            handshake_timeout: Duration::from_secs(10),
            max_links: 16,
            max_leftover: 128 * 1024,
        }
    }
}
