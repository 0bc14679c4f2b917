//! Flow operations behind [`FlowMut`]: writes, reads, finish, reset and
//! stop, and forgetting a flow once both directions are done.

use super::*;

impl Connection {
    pub(super) fn flow_for_write(&mut self, id: u64) -> Result<&mut Flow, WriteError> {
        let closed = self.closed;
        let flow = self.flows.get_mut(&id).ok_or(WriteError::UnknownFlow)?;
        match flow.send_state {
            SendState::Reset {
                code,
                by_peer: true,
                ..
            } => Err(WriteError::Stopped(code)),
            SendState::Open if closed => Err(WriteError::Closed),
            SendState::Open => Ok(flow),
            _ => Err(WriteError::Finished),
        }
    }

    /// How many bytes `id` may buffer now; registers for `Writable` if none.
    pub(super) fn write_room(&mut self, id: u64, want: usize) -> Result<usize, WriteError> {
        let conn_room = self
            .fc
            .send_room(self.config.conn_send_buffer)
            .min(self.pressure_send_room());
        let flow_limit = self.config.flow_send_buffer;
        let flow = self.flow_for_write(id)?;
        let flow_room = flow_limit.saturating_sub(flow.send_buffered as usize);
        let room = flow_room.min(conn_room).min(want);
        if room == 0 && want > 0 {
            flow.set(flag::WANT_WRITABLE);
            if conn_room == 0 {
                self.sched.add_write_waiter(id);
            }
            return Err(WriteError::Blocked);
        }
        Ok(room)
    }

    pub(super) fn write(&mut self, id: u64, data: &[u8]) -> Result<usize, WriteError> {
        let n = self.write_room(id, data.len())?;
        if let Some(flow) = self.flows.get_mut(&id) {
            flow.push_send_slice(&data[..n], &mut self.pool);
        }
        self.fc.buffered(n);
        self.schedule(id);
        self.sync_budget();
        Ok(n)
    }

    pub(super) fn write_chunk(&mut self, id: u64, mut data: Bytes) -> Result<usize, WriteError> {
        let n = self.write_room(id, data.len())?;
        data.truncate(n);
        if let Some(flow) = self.flows.get_mut(&id) {
            if n > 0 {
                flow.push_send_bytes(data, &mut self.pool);
            }
        }
        self.fc.buffered(n);
        self.schedule(id);
        self.sync_budget();
        Ok(n)
    }

    pub(super) fn finish(&mut self, id: u64) -> Result<(), WriteError> {
        let flow = self.flow_for_write(id)?;
        flow.send_state = SendState::Fin { sent: false };
        self.schedule(id);
        Ok(())
    }

    pub(super) fn reset(&mut self, id: u64, code: u64) -> Result<(), WriteError> {
        let closed = self.closed;
        let flow = self.flows.get_mut(&id).ok_or(WriteError::UnknownFlow)?;
        if closed {
            return Err(WriteError::Closed);
        }
        match flow.send_state {
            SendState::Open | SendState::Fin { sent: false } => {}
            _ => return Err(WriteError::Finished),
        }
        flow.send_state = SendState::Reset {
            code: code.min(VARINT_MAX),
            sent: false,
            by_peer: false,
        };
        let dropped = flow.discard_send(&mut self.pool);
        self.fc.unbuffered(dropped);
        trace!(flow = id, code, "mux flow reset");
        if self.policy.reset_ends_receive() {
            // Nothing more will arrive: drop what did.
            let flow = self.flows.get_mut(&id).ok_or(WriteError::UnknownFlow)?;
            let dropped = match flow.recv_state {
                RecvState::Done(_) => 0,
                _ => {
                    flow.recv_state = RecvState::Done(End::Stopped);
                    flow.discard_recv(&mut self.pool)
                }
            };
            self.consumed(dropped);
        }
        self.schedule_ctrl(id);
        Ok(())
    }

    pub(super) fn stop(&mut self, id: u64, code: u64) -> Result<(), ReadError> {
        if self.policy.stop_mapping() == StopMapping::Rst {
            return self.stop_with_rst(id, code);
        }
        let flow = self.flows.get_mut(&id).ok_or(ReadError::UnknownFlow)?;
        let dropped = match flow.recv_state {
            RecvState::Open => {
                flow.recv_state = RecvState::Stopped {
                    code: code.min(VARINT_MAX),
                    sent: self.closed,
                };
                flow.discard_recv(&mut self.pool)
            }
            RecvState::Fin { .. } | RecvState::Reset { .. } => {
                flow.recv_state = RecvState::Done(End::Stopped);
                flow.discard_recv(&mut self.pool)
            }
            RecvState::Stopped { .. } | RecvState::Done(_) => return Ok(()),
        };
        self.consumed(dropped);
        self.schedule_ctrl(id);
        self.maybe_remove(id);
        Ok(())
    }

    /// yamux has no STOP_SENDING, only RST, which ends both directions. A
    /// reader that stops while the peer may still send discards what
    /// arrives and sends RST: at once if we are still writing (our sending
    /// ends too), or once our data and FIN are on the wire if we already
    /// finished, so a finished writer's data is never lost.
    pub(super) fn stop_with_rst(&mut self, id: u64, code: u64) -> Result<(), ReadError> {
        let closed = self.closed;
        let flow = self.flows.get_mut(&id).ok_or(ReadError::UnknownFlow)?;
        let rst = match flow.recv_state {
            RecvState::Open => true,
            RecvState::Fin { .. } | RecvState::Reset { .. } => false,
            RecvState::Stopped { .. } | RecvState::Done(_) => return Ok(()),
        };
        flow.recv_state = RecvState::Done(End::Stopped);
        let dropped = flow.discard_recv(&mut self.pool);
        let mut unsent = 0;
        if rst && !closed {
            match flow.send_state {
                SendState::Open | SendState::Fin { sent: true } => {
                    unsent = flow.discard_send(&mut self.pool);
                    flow.send_state = SendState::Reset {
                        code: code.min(VARINT_MAX),
                        sent: false,
                        by_peer: false,
                    };
                    if flow.has(flag::WANT_WRITABLE) {
                        flow.clear(flag::WANT_WRITABLE);
                        self.events.push_back(Event::Writable(FlowId(id)));
                    }
                }
                SendState::Fin { sent: false } => flow.set(flag::RST_AFTER_FIN),
                SendState::Reset { .. } => {}
            }
        }
        self.fc.unbuffered(unsent);
        self.consumed(dropped);
        self.schedule_ctrl(id);
        self.maybe_remove(id);
        Ok(())
    }

    pub(super) fn read(&mut self, id: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let flow = self.flows.get_mut(&id).ok_or(ReadError::UnknownFlow)?;
        flow.clear(flag::READABLE_SIGNALED);
        if buf.is_empty() {
            return Ok(0);
        }
        if flow.recv_buffered() > 0 {
            let n = flow.read_into(buf, &mut self.pool);
            self.after_read(id, n as u64);
            return Ok(n);
        }
        self.read_end(id).map(|()| 0)
    }

    pub(super) fn read_chunk(&mut self, id: u64, max: usize) -> Result<Option<Bytes>, ReadError> {
        let flow = self.flows.get_mut(&id).ok_or(ReadError::UnknownFlow)?;
        flow.clear(flag::READABLE_SIGNALED);
        if let Some(chunk) = flow.read_chunk(max.max(1), &mut self.pool) {
            self.after_read(id, chunk.len() as u64);
            return Ok(Some(chunk));
        }
        self.read_end(id).map(|()| None)
    }

    /// Nothing buffered: EOF, an error, or "wait".
    pub(super) fn read_end(&mut self, id: u64) -> Result<(), ReadError> {
        let closed = self.closed;
        let Some(flow) = self.flows.get_mut(&id) else {
            return Err(ReadError::UnknownFlow);
        };
        let r = match flow.recv_state {
            RecvState::Open if closed => Err(ReadError::Closed),
            RecvState::Open => Err(ReadError::Blocked),
            RecvState::Fin { final_size } if final_size == flow.read => {
                flow.recv_state = RecvState::Done(End::Eof);
                Ok(())
            }
            RecvState::Fin { .. } => Err(ReadError::Blocked),
            RecvState::Reset { code } => {
                flow.recv_state = RecvState::Done(End::Reset(code));
                Err(ReadError::Reset(code))
            }
            RecvState::Stopped { .. } | RecvState::Done(End::Stopped) => Err(ReadError::Stopped),
            RecvState::Done(End::Eof) => Ok(()),
            RecvState::Done(End::Reset(code)) => Err(ReadError::Reset(code)),
        };
        self.maybe_remove(id);
        r
    }

    pub(super) fn after_read(&mut self, id: u64, n: u64) {
        if let Some(flow) = self.flows.get_mut(&id) {
            if matches!(flow.recv_state, RecvState::Open)
                && flow.recv_max - flow.read < u64::from(flow.window) / 2
                && flow.raise(flag::WINDOW_UPDATE)
            {
                self.schedule_ctrl(id);
            }
        }
        self.consumed(n);
    }

    /// `n` received bytes left the buffers (read or discarded).
    pub(super) fn consumed(&mut self, n: u64) {
        let target = self.conn_window_target();
        self.fc.consumed(n, target);
        self.sync_budget();
    }

    /// Forgets a flow whose both directions are done.
    pub(super) fn maybe_remove(&mut self, id: u64) {
        if self.closed {
            return;
        }
        let Some(flow) = self.flows.get(&id) else {
            return;
        };
        if !(flow.send_done() && flow.recv_done()) {
            return;
        }
        let Some(flow) = self.flows.remove(&id) else {
            return;
        };
        self.fc.window_removed(u64::from(flow.window));
        self.sync_budget();
        self.health
            .flow_removed(flow.has(flag::SIDE_CHANNEL), self.now);
        if !flow.has(flag::LOCAL) {
            self.opens.peer_flow_ended();
        }
        if self.policy.acks_opens() && flow.has(flag::LOCAL) && !flow.has(flag::PEER_ACKED) {
            self.ack_arrived(); // the peer forgets it too
        }
        self.stats.flows_open = self.flows.len() as u64;
        self.events.push_back(Event::FlowClosed(FlowId(id)));
        trace!(flow = id, "mux flow closed");
        self.check_drained();
    }
}
