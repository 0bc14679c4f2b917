//! The mux as a [`Machine`]: what lets `Secured<Connection>`, the
//! recorder, the simulator and the adapters' one driver run it.

use super::Connection;
use crate::time::Instant;
use crate::wire::{Machine, Rejected, TransmitBuf};
use bytes::Bytes;

impl Machine for Connection {
    fn handle_input(&mut self, now: Instant, data: Bytes) -> Result<(), Rejected> {
        self.handle_input_bytes(now, data).map_err(|_| Rejected)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now)
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        Connection::handle_transport_closed(self, now)
    }

    fn poll_transmit(&mut self, mut out: &mut dyn TransmitBuf) -> Option<usize> {
        Connection::poll_transmit(self, &mut out)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Connection::poll_timeout(self).map(|(t, _)| t)
    }

    fn wants_transmit(&self) -> bool {
        Connection::wants_transmit(self)
    }

    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }

    fn close(&mut self, _now: Instant, code: u64, reason: &[u8]) {
        Connection::close(self, code, reason)
    }
}
