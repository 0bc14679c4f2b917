//! Why a handshake was not admitted, naming the limit and its value.

use super::Source;
use crate::time::Duration;
use core::fmt;

/// Why a handshake was refused (or, for [`Reason::QueueTimeout`], dropped
/// from the queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The source has `limit` handshakes in progress.
    SourceBusy {
        /// The source.
        source: Source,
        /// Handshakes it has in progress.
        in_progress: u32,
        /// [`max_in_progress_per_source`](super::AdmissionConfig::max_in_progress_per_source).
        limit: u32,
    },
    /// `limit` handshakes are in progress from all sources together.
    TotalBusy {
        /// Handshakes in progress.
        in_progress: u32,
        /// [`max_in_progress`](super::AdmissionConfig::max_in_progress).
        limit: u32,
    },
    /// The source's token bucket is empty.
    SourceRate {
        /// The source.
        source: Source,
        /// [`rate_per_source`](super::AdmissionConfig::rate_per_source).
        rate: u32,
        /// [`burst_per_source`](super::AdmissionConfig::burst_per_source).
        burst: u32,
    },
    /// The queue is full.
    QueueFull {
        /// Entries queued.
        queued: u32,
        /// [`max_queued`](super::AdmissionConfig::max_queued).
        limit: u32,
    },
    /// The source's share of the queue is full.
    SourceQueueFull {
        /// The source.
        source: Source,
        /// Its entries queued.
        queued: u32,
        /// [`max_queued_per_source`](super::AdmissionConfig::max_queued_per_source).
        limit: u32,
    },
    /// The table of sources is full and every source in it has something
    /// in progress or queued.
    TooManySources {
        /// [`max_sources`](super::AdmissionConfig::max_sources).
        limit: u32,
    },
    /// The entry waited its whole [`queue_timeout`](super::AdmissionConfig::queue_timeout).
    QueueTimeout {
        /// The source.
        source: Source,
        /// The timeout.
        timeout: Duration,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::SourceBusy {
                source,
                in_progress,
                limit,
            } => write!(
                f,
                "source {source} has {in_progress} handshakes in progress (limit {limit})"
            ),
            Reason::TotalBusy { in_progress, limit } => {
                write!(f, "{in_progress} handshakes in progress (limit {limit})")
            }
            Reason::SourceRate {
                source,
                rate,
                burst,
            } => write!(
                f,
                "source {source} started handshakes too fast (limit {rate}/s, burst {burst})"
            ),
            Reason::QueueFull { queued, limit } => {
                write!(f, "{queued} handshakes queued (limit {limit})")
            }
            Reason::SourceQueueFull {
                source,
                queued,
                limit,
            } => write!(
                f,
                "source {source} has {queued} handshakes queued (limit {limit})"
            ),
            Reason::TooManySources { limit } => write!(
                f,
                "{limit} sources tracked, each with handshakes in progress or queued (limit {limit})"
            ),
            Reason::QueueTimeout { source, timeout } => write!(
                f,
                "a handshake from source {source} waited in the queue for {timeout:?} (limit {timeout:?})"
            ),
        }
    }
}

impl core::error::Error for Reason {}

/// Refusals counted by [`Reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefusalCounts {
    /// [`Reason::SourceBusy`].
    pub source_busy: u64,
    /// [`Reason::TotalBusy`].
    pub total_busy: u64,
    /// [`Reason::SourceRate`].
    pub source_rate: u64,
    /// [`Reason::QueueFull`].
    pub queue_full: u64,
    /// [`Reason::SourceQueueFull`].
    pub source_queue_full: u64,
    /// [`Reason::TooManySources`].
    pub too_many_sources: u64,
    /// [`Reason::QueueTimeout`].
    pub queue_timeout: u64,
}

impl RefusalCounts {
    /// Counts one refusal.
    pub fn count(&mut self, reason: &Reason) {
        let n = match reason {
            Reason::SourceBusy { .. } => &mut self.source_busy,
            Reason::TotalBusy { .. } => &mut self.total_busy,
            Reason::SourceRate { .. } => &mut self.source_rate,
            Reason::QueueFull { .. } => &mut self.queue_full,
            Reason::SourceQueueFull { .. } => &mut self.source_queue_full,
            Reason::TooManySources { .. } => &mut self.too_many_sources,
            Reason::QueueTimeout { .. } => &mut self.queue_timeout,
        };
        *n = n.saturating_add(1);
    }

    /// All refusals together.
    pub fn total(&self) -> u64 {
        [
            self.source_busy,
            self.total_busy,
            self.source_rate,
            self.queue_full,
            self.source_queue_full,
            self.too_many_sources,
            self.queue_timeout,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }
}
