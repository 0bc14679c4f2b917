//! The send path: what `poll_transmit` puts on the wire, in order, and the
//! bookkeeping after each frame.

use super::*;

impl Connection {
    pub(super) fn room(&self, used: usize) -> usize {
        self.config.max_transmit.saturating_sub(used)
    }

    pub(super) fn transmit_goaway(&mut self, out: &mut impl TransmitBuf) -> usize {
        let Some((accepted_below, code)) = self.drain.take_frame() else {
            return 0;
        };
        self.stats.frames_sent += 1;
        codec::put_goaway(out, self.policy, accepted_below, code)
    }

    pub(super) fn transmit_connection_control(&mut self, out: &mut impl TransmitBuf) -> usize {
        let mut n = 0;
        while let Some(q) = self.sched.pop_queued() {
            if let Queued::Ping(v) = q {
                self.health.stamp_ping(v, self.now);
            }
            if let Some(len) = codec::put_queued(out, self.policy, q) {
                n += len;
                self.stats.frames_sent += 1;
            }
        }
        if !self.policy.has_credit_frames() {
            return n;
        }
        if let Some(max) = self.fc.take_update() {
            n += codec::put_max_data(out, max);
            self.stats.frames_sent += 1;
            self.stats.window_updates_sent += 1;
        }
        if let Some(max) = self.opens.take_max_flows() {
            n += codec::put_max_flows(out, max);
            self.stats.frames_sent += 1;
        }
        n
    }

    pub(super) fn transmit_opens(&mut self, out: &mut impl TransmitBuf, used: usize) -> usize {
        let mut n = 0;
        while let Some(id) = self.sched.front_open() {
            if self.room(used + n) < MAX_DATA_HEADER + 1 {
                break;
            }
            self.sched.pop_open();
            if self.opens.local_refused(id) {
                continue; // refused by GOAWAY before the peer saw it
            }
            let Some(flow) = self.flows.get_mut(&id) else {
                continue;
            };
            flow.set(flag::ANNOUNCED);
            let side_channel = flow.has(flag::SIDE_CHANNEL);
            n += self.emit_data(out, used + n, id, side_channel, true);
            self.after_send(id);
        }
        n
    }

    pub(super) fn transmit_flow_control(
        &mut self,
        out: &mut impl TransmitBuf,
        used: usize,
    ) -> usize {
        let mut n = 0;
        let may_grow = self.may_grow();
        let shrink_to = self.must_shrink().then_some(self.config.pressure_window);
        while let Some(id) = self.sched.front_ctrl() {
            // MAX_FLOW_DATA + RESET_FLOW + STOP_SENDING at their largest.
            if self.room(used + n) < 64 {
                break;
            }
            self.sched.pop_ctrl();
            let now = self.now;
            let srtt = self.stats.srtt;
            let budget = self.config.conn_recv_budget;
            let max_window = self.config.max_flow_window;
            let policy = self.policy;
            let Some(flow) = self.flows.get_mut(&id) else {
                continue;
            };
            flow.clear(flag::IN_CTRL);
            // The first frame we send on a peer's flow acknowledges it.
            let mut ack = policy.acks_opens() && flow.has(flag::ACK_PENDING);
            if ack {
                flow.clear(flag::ACK_PENDING);
            }
            if flow.has(flag::WINDOW_UPDATE) {
                flow.clear(flag::WINDOW_UPDATE);
                if matches!(flow.recv_state, RecvState::Open) {
                    // Grow when the peer used half a window within two RTTs:
                    // the window, not the path, is what limits it.
                    let window = u64::from(flow.window);
                    let since = now.saturating_duration_since(flow.last_update);
                    if let Some(floor) = shrink_to.filter(|&f| window > f) {
                        // Memory pressure: give back half, down to the floor.
                        let smaller = (window / 2).max(floor);
                        self.fc.window_removed(window - smaller);
                        flow.window = smaller as u32;
                        trace!(flow = id, window = flow.window, "mux window shrunk");
                    } else if may_grow {
                        let grown = self.fc.grow_window(window, max_window, budget, srtt, since);
                        if grown != window {
                            flow.window = grown as u32;
                            trace!(flow = id, window = flow.window, "mux window grown");
                        }
                    }
                    flow.last_update = now;
                    let max = flow.read + u64::from(flow.window);
                    if max > flow.recv_max {
                        let old = core::mem::replace(&mut flow.recv_max, max);
                        n += codec::put_window_update(out, policy, id, old, max, ack);
                        ack = false;
                        self.stats.frames_sent += 1;
                        self.stats.window_updates_sent += 1;
                    }
                }
            }
            if let SendState::Reset {
                code,
                sent: false,
                by_peer,
            } = flow.send_state
            {
                flow.send_state = SendState::Reset {
                    code,
                    sent: true,
                    by_peer,
                };
                n += codec::put_reset(out, policy, id, code, flow.sent, ack);
                ack = false;
                self.stats.frames_sent += 1;
            }
            if ack {
                n += codec::put_ack(out, id);
                self.stats.frames_sent += 1;
            }
            if let RecvState::Stopped { code, sent: false } = flow.recv_state {
                flow.recv_state = RecvState::Stopped { code, sent: true };
                n += codec::put_stop_sending(out, id, code);
                self.stats.frames_sent += 1;
            }
            self.maybe_remove(id);
        }
        n
    }

    pub(super) fn transmit_data(&mut self, out: &mut impl TransmitBuf, used: usize) -> usize {
        let mut n = 0;
        while self.room(used + n) > MAX_DATA_HEADER {
            let Some(id) = self.sched.pop_ready() else {
                break;
            };
            let conn_credit = self.fc.send_credit();
            let Some(flow) = self.flows.get_mut(&id) else {
                continue;
            };
            if !flow.wants_send() {
                flow.clear(flag::IN_READY);
                continue;
            }
            if flow.send_buffered > 0 && flow.send_credit() == 0 {
                flow.clear(flag::IN_READY); // MAX_FLOW_DATA puts it back
                continue;
            }
            let fin_only = flow.send_buffered == 0;
            if !fin_only && conn_credit == 0 {
                self.sched.block_on_conn(id); // MAX_DATA puts it back
                continue;
            }
            flow.clear(flag::IN_READY);
            n += self.emit_data(out, used + n, id, false, false);
            self.after_send(id);
        }
        n
    }

    /// Emits one DATA frame for `id` with as much as credit and room allow.
    pub(super) fn emit_data(
        &mut self,
        out: &mut impl TransmitBuf,
        used: usize,
        id: u64,
        side_channel: bool,
        open: bool,
    ) -> usize {
        let policy = self.policy;
        let room = self.room(used).saturating_sub(MAX_DATA_HEADER);
        let conn_credit = self.fc.send_credit();
        let chunk = self.config.send_chunk;
        let Some(flow) = self.flows.get_mut(&id) else {
            return 0;
        };
        let len = match flow.send_state {
            SendState::Reset { .. } => 0,
            _ => (flow.send_buffered as u64)
                .min(flow.send_credit())
                .min(conn_credit)
                .min(chunk as u64)
                .min(room as u64) as usize,
        };
        let fin =
            flow.send_state == SendState::Fin { sent: false } && len == flow.send_buffered as usize;
        let ack = policy.acks_opens() && flow.has(flag::ACK_PENDING);
        if ack {
            flow.clear(flag::ACK_PENDING);
        }
        let header = DataHeader {
            flow: id,
            len: len as u64,
            fin,
            side_channel,
        };
        let hlen = codec::put_data_header(out, policy, &header, open, ack);
        let mut taken = 0;
        while taken < len {
            // One piece per queued chunk: a frame may span several writes.
            let piece = flow.take_send(len - taken, &mut self.pool);
            if piece.is_empty() {
                break;
            }
            taken += piece.len();
            out.put_bytes(piece);
        }
        debug_assert_eq!(taken, len);
        if fin {
            flow.send_state = SendState::Fin { sent: true };
        }
        flow.frames_sent = flow.frames_sent.saturating_add(1);
        self.fc.on_sent(len);
        self.stats.data_sent += len as u64;
        self.stats.frames_sent += 1;
        hlen + len
    }

    /// After a flow sent something: reschedule, wake a blocked writer, and
    /// forget the flow if it is done.
    pub(super) fn after_send(&mut self, id: u64) {
        let limit = self.config.flow_send_buffer;
        let Some(flow) = self.flows.get_mut(&id) else {
            return;
        };
        if flow.has(flag::RST_AFTER_FIN) && flow.send_state == (SendState::Fin { sent: true }) {
            // yamux: our data is out; now tell the peer we stopped reading.
            flow.clear(flag::RST_AFTER_FIN);
            flow.send_state = SendState::Reset {
                code: 0,
                sent: false,
                by_peer: false,
            };
            self.sched.schedule_ctrl(id, flow);
        }
        if flow.has(flag::WANT_WRITABLE) && (flow.send_buffered as usize) < limit {
            flow.clear(flag::WANT_WRITABLE);
            self.events.push_back(Event::Writable(FlowId(id)));
        }
        self.schedule(id);
        self.maybe_remove(id);
    }

    /// Puts an announced flow with something to send in the round-robin.
    pub(super) fn schedule(&mut self, id: u64) {
        if let Some(flow) = self.flows.get_mut(&id) {
            self.sched.schedule(id, flow);
        }
    }

    pub(super) fn schedule_ctrl(&mut self, id: u64) {
        if let Some(flow) = self.flows.get_mut(&id) {
            self.sched.schedule_ctrl(id, flow);
        }
    }

    pub(super) fn wake_write_waiters(&mut self) {
        // Under memory pressure writers wait for the floor, not the buffer:
        // waking them earlier would only have them blocked again.
        let limit = match self.pressure_send_room() {
            usize::MAX => self.config.conn_send_buffer,
            _ => self
                .config
                .pressure_send_floor
                .min(self.config.conn_send_buffer),
        };
        if self.fc.send_buffered() >= limit {
            return;
        }
        for id in self.sched.take_write_waiters() {
            if let Some(flow) = self.flows.get_mut(&id) {
                if flow.has(flag::WANT_WRITABLE) {
                    flow.clear(flag::WANT_WRITABLE);
                    self.events.push_back(Event::Writable(FlowId(id)));
                }
            }
        }
    }
}
