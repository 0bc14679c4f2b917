//! The record layer stacked under the mux: one object for a driver.

use super::error::InputError;
use super::handshake::PeerInfo;
use super::record::Records;
use crate::mux::{self, TransmitBuf};
use crate::time::Instant;

/// A [`mux::Connection`] whose bytes travel in [`Records`]: input is
/// opened and fed to the mux; the mux's output is sealed, several frames
/// per record.
///
/// Same call order as the mux: after every input or command, drain
/// [`poll_transmit`](Self::poll_transmit) and the mux's events
/// (`secured.mux.poll_event()`), then re-arm from `mux.poll_timeout()`.
#[derive(Debug)]
pub struct Secured {
    /// The record layer.
    pub records: Records,
    /// The mux riding on it (commands, events and timers go to it directly).
    pub mux: mux::Connection,
    /// The peer, as the handshake established it.
    pub peer: PeerInfo,
}

impl Secured {
    /// Stacks `mux` on an established handshake's records and opens the
    /// bytes that arrived with the handshake's last message (their result
    /// is the second value: an error there has closed the mux already).
    pub fn new(
        established: super::Established,
        mux: mux::Connection,
        now: Instant,
    ) -> (Self, Result<(), InputError>) {
        let super::Established {
            records,
            peer,
            leftover,
        } = established;
        let mut s = Secured { records, mux, peer };
        let r = s.handle_input(now, &leftover);
        (s, r)
    }

    /// Bytes from the transport, any chunking.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), InputError> {
        self.records.input_to_mux(now, data, &mut self.mux)
    }

    /// Appends one sealed record of mux output to `out`; `None` when the
    /// mux has nothing to send.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut impl TransmitBuf) -> Option<usize> {
        self.records.transmit_from_mux(&mut self.mux, out)
    }
}
