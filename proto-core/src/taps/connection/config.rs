//! The connection's limits, each with its default and why.

use core::fmt;

/// Limits of a [`Connection`](super::Connection). Every limit is a field;
/// [`Default`] gives the values documented on each. The framer's own
/// limits (largest message) are the framer's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Framed bytes waiting to be sent (the message in progress included).
    /// A send over it fails with [`SendError::QueueFull`](super::SendError::QueueFull).
    /// Default 4 MiB: several large messages, and a bound on what an
    /// application that sends faster than the network can pile up.
    pub max_queued_send_bytes: usize,
    /// Messages waiting to be sent. Default 4,096: bounds the per-message
    /// bookkeeping (and the events owed) when messages are tiny.
    pub max_queued_messages: usize,
    /// Received bytes held for the application (messages not yet asked
    /// for, the unparsed rest), each held message counting
    /// [`MESSAGE_OVERHEAD`] more. At the limit the connection stops taking
    /// input (`wants_input` is false) so the transport holds the peer.
    /// Default 1 MiB.
    pub max_buffered_receive_bytes: usize,
    /// Input the connection still takes after it asked for none (the
    /// driver's read in flight). More than this over
    /// `max_buffered_receive_bytes` fails the connection. Default 256 KiB
    /// (twice the driver's read buffer). Parsing turns unread bytes into
    /// held messages, each with its overhead, only up to
    /// `max_buffered_receive_bytes`, so a connection holds at most
    /// `2 * max_buffered_receive_bytes + input_slack + MESSAGE_OVERHEAD`.
    pub input_slack: usize,
    /// Receive requests outstanding at once. Default 64.
    pub max_receive_requests: usize,
    /// Largest message sent with `no_segmentation`: a byte stream cannot
    /// keep a message in one packet, so only messages that fit one
    /// typical segment are taken. Default 1,400 bytes (an Ethernet MTU
    /// less IP and TCP headers, with room for options).
    pub max_unsegmented_len: usize,
    /// Bytes one `poll_transmit` call hands out at most, so a driver's
    /// high-water mark is honoured without a huge message going out in
    /// one piece. Default 64 KiB.
    pub max_transmit_chunk: usize,
    /// Soft-error events held undelivered; more are counted and dropped.
    /// Default 16.
    pub max_pending_soft_errors: usize,
}

/// What each held received message costs beyond its bytes, so a flood of
/// empty messages is bounded too.
pub const MESSAGE_OVERHEAD: usize = 64;

impl Default for Config {
    fn default() -> Self {
        Config {
            max_queued_send_bytes: 4 * 1024 * 1024,
            max_queued_messages: 4096,
            max_buffered_receive_bytes: 1024 * 1024,
            input_slack: 256 * 1024,
            max_receive_requests: 64,
            max_unsegmented_len: 1400,
            max_transmit_chunk: 64 * 1024,
            max_pending_soft_errors: 16,
        }
    }
}

impl Config {
    /// Checks the limits can work together.
    ///
    /// # Errors
    /// A limit too small for progress: a zero where one is needed, or a
    /// receive buffer under `2 * MESSAGE_OVERHEAD`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let zero = [
            (
                self.max_buffered_receive_bytes,
                "max_buffered_receive_bytes",
            ),
            (self.max_receive_requests, "max_receive_requests"),
            (self.max_transmit_chunk, "max_transmit_chunk"),
            (self.max_queued_messages, "max_queued_messages"),
        ];
        for (v, name) in zero {
            if v == 0 {
                return Err(ConfigError {
                    field: name,
                    min: 1,
                });
            }
        }
        // Room for a held message's overhead and some of its bytes, so a
        // message in progress can always be delivered in part.
        if self.max_buffered_receive_bytes < 2 * MESSAGE_OVERHEAD {
            return Err(ConfigError {
                field: "max_buffered_receive_bytes",
                min: 2 * MESSAGE_OVERHEAD,
            });
        }
        Ok(())
    }
}

/// A [`Config`] field that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// Its smallest workable value.
    pub min: usize,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "taps connection config: {} must be at least 1",
            self.field
        )
    }
}

impl core::error::Error for ConfigError {}
