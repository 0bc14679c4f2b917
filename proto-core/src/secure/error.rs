//! The secure layer's errors.

use super::authorizer::Rejection;
use crate::wire::DecodeError;
use core::fmt;

/// Why a record could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// A record failed authentication: tampered, replayed, reordered,
    /// truncated or from someone else. Nothing after it is delivered.
    Authentication,
    /// More plaintext than one record carries.
    TooLarge,
    /// 2^64 records under one key: the connection must end.
    NonceExhausted,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordError::Authentication => "record authentication failed",
            RecordError::TooLarge => "record plaintext too large",
            RecordError::NonceExhausted => "record nonces exhausted",
        })
    }
}

impl core::error::Error for RecordError {}

/// Why input to a [`Secured`](super::Secured) machine failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// The handshake failed (now or earlier); nothing more is sent.
    Handshake(HandshakeError),
    /// The record layer failed; the carried machine is closed.
    Record(RecordError),
    /// The carried machine rejected the plaintext (and closed; its own
    /// accessors say why).
    Inner,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Handshake(e) => write!(f, "{e}"),
            InputError::Record(e) => write!(f, "{e}"),
            InputError::Inner => f.write_str("the secured layer rejected its input"),
        }
    }
}

impl core::error::Error for InputError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            InputError::Handshake(e) => Some(e),
            InputError::Record(e) => Some(e),
            InputError::Inner => None,
        }
    }
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A handshake message longer than [`Config::max_handshake_message`](super::Config::max_handshake_message).
    MessageTooLarge {
        /// Its announced length.
        len: usize,
    },
    /// A handshake message failed Noise processing (bad key material,
    /// failed decryption: tampering or a man in the middle).
    Noise,
    /// The peer's handshake payload did not decode.
    BadPayload(DecodeError),
    /// No protocol version both sides speak.
    VersionMismatch {
        /// The peer's range.
        peer_min: u16,
        /// The peer's range.
        peer_max: u16,
    },
    /// Our authorizer refused the peer (its reasons inside).
    Rejected(Rejection),
    /// The handshake did not finish within [`Config::handshake_timeout`](super::Config::handshake_timeout).
    Timeout,
    /// The transport ended before the handshake finished.
    TransportEnded,
    /// Bytes after the handshake from a peer that may not send yet.
    UnexpectedData,
    /// [`Handshake::finish`](super::Handshake::finish) before completion.
    NotFinished,
    /// A config value out of range (which one inside).
    Config(&'static str),
    /// Closed locally before the handshake finished.
    Closed,
    /// The initiator offered no suite we accept (its offer's suite ids inside).
    NoCommonSuite {
        /// The ids it offered (see [`Suite::id`](super::crypto::Suite::id)).
        offered: alloc::vec::Vec<u8>,
    },
    /// The responder chose a suite we did not offer (an attempted downgrade,
    /// or a broken peer).
    UnofferedSuite(u8),
    /// A Diffie-Hellman result was all zero: the peer sent a key of small
    /// order.
    WeakKey,
    /// The peer proved our own static key (see
    /// [`Config::allow_self_connection`](super::Config::allow_self_connection)).
    SelfConnection,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::MessageTooLarge { len } => {
                write!(f, "handshake message of {len} bytes too large")
            }
            HandshakeError::Noise => f.write_str("handshake message failed authentication"),
            HandshakeError::BadPayload(e) => write!(f, "bad handshake payload: {e}"),
            HandshakeError::VersionMismatch { peer_min, peer_max } => {
                write!(
                    f,
                    "no common protocol version (peer speaks {peer_min}..={peer_max})"
                )
            }
            HandshakeError::Rejected(r) => write!(f, "{r}"),
            HandshakeError::Timeout => f.write_str("handshake timed out"),
            HandshakeError::TransportEnded => f.write_str("transport ended during the handshake"),
            HandshakeError::UnexpectedData => f.write_str("unexpected data during the handshake"),
            HandshakeError::NotFinished => f.write_str("handshake not finished"),
            HandshakeError::Config(what) => write!(f, "bad secure config: {what}"),
            HandshakeError::Closed => f.write_str("closed before the handshake finished"),
            HandshakeError::NoCommonSuite { offered } => {
                write!(f, "no common cipher suite (peer offered ids {offered:?})")
            }
            HandshakeError::UnofferedSuite(id) => {
                write!(f, "peer chose cipher suite {id}, which we did not offer")
            }
            HandshakeError::WeakKey => f.write_str("peer sent a key of small order"),
            HandshakeError::SelfConnection => f.write_str("peer holds our own static key"),
        }
    }
}

impl core::error::Error for HandshakeError {}
