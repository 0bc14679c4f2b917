//! What a secure handshake established, as a connection's handles show
//! it (its own module so that the mux layer, which records it, and the
//! secure entry points, which build that layer, do not import each other).

use proto_core::secure::{PeerInfo, PublicKey, Suite};

/// What the handshake established, as a connection's handles show it.
#[derive(Debug, Clone)]
pub struct Security {
    local_key: PublicKey,
    peer: PeerInfo,
}

impl Security {
    pub(crate) fn new(local_key: PublicKey, peer: PeerInfo) -> Self {
        Security { local_key, peer }
    }

    /// Our static key.
    pub fn local_key(&self) -> PublicKey {
        self.local_key
    }

    /// The names of the blessings we presented to the peer.
    pub fn local_blessings(&self) -> &[String] {
        &self.peer.presented
    }

    /// The peer's static key, proven in the handshake.
    pub fn remote_key(&self) -> PublicKey {
        self.peer.key
    }

    /// The names of the peer's blessings that verified.
    pub fn remote_blessings(&self) -> &[String] {
        &self.peer.blessings.names
    }

    /// The names our authorizer granted the peer.
    pub fn granted(&self) -> &[String] {
        &self.peer.granted
    }

    /// The cipher suite the handshake negotiated.
    pub fn suite(&self) -> Suite {
        self.peer.suite
    }

    /// The Noise handshake hash: the same on both ends and unique to this
    /// connection, for channel binding (sign it, or mix it into a token,
    /// to prove the token was made for this connection).
    pub fn handshake_hash(&self) -> &[u8; 32] {
        &self.peer.handshake_hash
    }

    /// The protocol version in use.
    pub fn version(&self) -> u16 {
        self.peer.version
    }

    /// Everything the handshake learnt about the peer.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }
}
