//! Why a rendezvous link or the whole rendezvous failed.

use core::fmt;

/// A rendezvous error: for one link (the others go on) unless said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RendezvousError {
    /// The peer's first bytes are not a rendezvous hello.
    BadMagic,
    /// The peer speaks a rendezvous version this side does not.
    UnsupportedVersion(u8),
    /// Both sides drew the same tie-break value, so neither can decide.
    /// Fails the whole rendezvous: start over with a new draw.
    Tie,
    /// The peer announced a different tie-break value than on an earlier
    /// link (a confused or hostile peer); that link is closed.
    PeerValueChanged,
    /// Bytes arrived where the protocol allows none (the decider's peer
    /// talked before the choice).
    UnexpectedData,
    /// Bytes after the hello that are not the "chosen" message.
    BadChosen,
    /// More bytes after "chosen" than the handover keeps
    /// ([`RendezvousConfig::max_leftover`](super::RendezvousConfig::max_leftover)).
    LeftoverTooLarge,
    /// The hello (and, for the follower, the choice) did not complete
    /// within the handshake timeout.
    TimedOut,
    /// The transport closed before this link was chosen (normal for the
    /// links the decider drops).
    ClosedByPeer,
    /// [`Link::choose`](super::Link::choose) on a link that is not a
    /// decider's with its hello done.
    NotDecider,
    /// [`Rendezvous::add_link`](super::Rendezvous::add_link) over
    /// [`RendezvousConfig::max_links`](super::RendezvousConfig::max_links).
    TooManyLinks,
    /// [`Rendezvous::add_link`](super::Rendezvous::add_link) after the
    /// rendezvous ended.
    Finished,
    /// The whole rendezvous: every link ended and no more are coming.
    NoLink,
}

impl fmt::Display for RendezvousError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RendezvousError::BadMagic => {
                f.write_str("rendezvous: the peer's hello has a bad magic")
            }
            RendezvousError::UnsupportedVersion(v) => {
                write!(f, "rendezvous: unsupported version {v}")
            }
            RendezvousError::Tie => {
                f.write_str("rendezvous: both sides drew the same tie-break value; redraw")
            }
            RendezvousError::PeerValueChanged => {
                f.write_str("rendezvous: the peer's tie-break value differs between links")
            }
            RendezvousError::UnexpectedData => {
                f.write_str("rendezvous: the peer sent data before the choice")
            }
            RendezvousError::BadChosen => {
                f.write_str("rendezvous: expected the chosen message after the hello")
            }
            RendezvousError::LeftoverTooLarge => {
                f.write_str("rendezvous: too many bytes after the chosen message")
            }
            RendezvousError::TimedOut => f.write_str("rendezvous: handshake timed out"),
            RendezvousError::ClosedByPeer => {
                f.write_str("rendezvous: the link closed before it was chosen")
            }
            RendezvousError::NotDecider => {
                f.write_str("rendezvous: only the decider chooses, after the hello")
            }
            RendezvousError::TooManyLinks => f.write_str("rendezvous: too many candidate links"),
            RendezvousError::Finished => f.write_str("rendezvous: already ended"),
            RendezvousError::NoLink => {
                f.write_str("rendezvous: every candidate link failed before one was chosen")
            }
        }
    }
}

impl core::error::Error for RendezvousError {}
