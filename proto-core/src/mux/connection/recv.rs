//! The receive path: the byte-level decoder (preface, heads, streamed
//! payloads) and the handling of native frames, which the yamux path
//! (`yamux_in.rs`) reuses after translating its frames.

use super::*;

impl Connection {
    pub(super) fn decode(&mut self, data: &[u8], src: Option<&Bytes>) -> Result<(), ProtocolError> {
        let mut pos = 0;
        while pos < data.len() && !self.closed {
            match self.rx {
                Rx::Preface(got) => {
                    let got = got as usize;
                    let n = (PREFACE.len() - got).min(data.len() - pos);
                    if data[pos..pos + n] != PREFACE[got..got + n] {
                        return Err(ProtocolError::BadPreface);
                    }
                    pos += n;
                    self.rx = if got + n == PREFACE.len() {
                        Rx::Head
                    } else {
                        Rx::Preface((got + n) as u8)
                    };
                }
                Rx::Payload {
                    flow,
                    len,
                    remaining,
                    fin,
                } => {
                    let n = remaining.min((data.len() - pos) as u64) as usize;
                    self.deliver(flow, &data[pos..pos + n], src);
                    pos += n;
                    let remaining = remaining - n as u64;
                    if remaining == 0 {
                        self.rx = Rx::Head;
                        if fin {
                            self.recv_fin(flow);
                        }
                    } else {
                        self.rx = Rx::Payload {
                            flow,
                            len,
                            remaining,
                            fin,
                        };
                    }
                }
                Rx::Head if self.head_buf.is_empty() => match self.head(&data[pos..])? {
                    Some(used) => pos += used,
                    None => {
                        self.stash_head(&data[pos..])?;
                        pos = data.len();
                    }
                },
                Rx::Head => {
                    let had = self.head_buf.len();
                    let take = (self.head_cap() - had).min(data.len() - pos);
                    self.head_buf.extend_from_slice(&data[pos..pos + take]);
                    let buf = core::mem::take(&mut self.head_buf);
                    let r = self.head(&buf);
                    self.head_buf = buf;
                    match r? {
                        Some(used) => {
                            pos += used - had;
                            self.head_buf.clear();
                        }
                        None => {
                            if self.head_buf.len() >= self.head_cap() {
                                return Err(ProtocolError::Malformed("frame head too long"));
                            }
                            pos += take;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Decodes and handles one frame head at the front of `buf`: the bytes
    /// it used, or `None` when `buf` holds only part of it.
    pub(super) fn head(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some((frame, used)) = codec::decode(self.policy, buf, self.config.max_close_reason)?
        else {
            return Ok(None);
        };
        self.stats.frames_received += 1;
        match frame {
            Frame::Native(Head::Data(h)) => self.on_data_header(h)?,
            Frame::Native(Head::Control(c)) => self.on_control(c)?,
            Frame::Yamux(h) => self.on_yamux(h)?,
        }
        Ok(Some(used))
    }

    pub(super) fn head_cap(&self) -> usize {
        codec::head_cap(self.policy, self.config.max_close_reason)
    }

    pub(super) fn stash_head(&mut self, rest: &[u8]) -> Result<(), ProtocolError> {
        if rest.len() >= self.head_cap() {
            return Err(ProtocolError::Malformed("frame head too long"));
        }
        self.head_buf.extend_from_slice(rest);
        Ok(())
    }

    pub(super) fn max_data_payload(&self) -> u64 {
        self.policy.max_data_payload(&self.config)
    }

    pub(super) fn on_data_header(&mut self, h: DataHeader) -> Result<(), ProtocolError> {
        let max = self.max_data_payload();
        if h.len > max {
            return Err(ProtocolError::FrameTooLarge { len: h.len, max });
        }
        self.fc.check_recv(h.len)?;
        let id = h.flow;
        if !self.policy.opens_in_id_order() {
            // Opens and unknown ids were settled by `on_yamux_stream`.
        } else if self.opens.is_peer_id(id) && id == self.opens.peer_next() {
            self.accept(id, h.side_channel)?;
        } else {
            self.opens.check_known(id)?;
        }
        if let Some(flow) = self.flows.get_mut(&id) {
            flow.frames_received = flow.frames_received.saturating_add(1);
            if flow.received + h.len > flow.recv_max {
                return Err(ProtocolError::FlowControl);
            }
            let end = flow.received + h.len;
            match flow.recv_state {
                RecvState::Fin { final_size } if end > final_size || h.fin && end != final_size => {
                    return Err(ProtocolError::FinalSize)
                }
                RecvState::Reset { .. } if h.len > 0 => return Err(ProtocolError::FinalSize),
                _ => {}
            }
        }
        self.rx = Rx::Payload {
            flow: id,
            len: h.len,
            remaining: h.len,
            fin: h.fin,
        };
        if h.len == 0 {
            self.rx = Rx::Head;
            if h.fin {
                self.recv_fin(id);
            }
        }
        Ok(())
    }

    /// The peer opens its next flow.
    pub(super) fn accept(&mut self, id: u64, side_channel: bool) -> Result<(), ProtocolError> {
        if !self.opens.peer_may_open() {
            trace!(
                flow = id,
                limit = self.opens.peer_max(),
                "mux flow refused: limit"
            );
            return Err(ProtocolError::FlowLimit(self.config.max_concurrent_flows));
        }
        self.opens.opened_peer();
        if self.opens.peer_refused(id) {
            trace!(flow = id, "mux flow refused: GOAWAY sent");
            return Ok(()); // its data is discarded; the peer knows from GOAWAY
        }
        let mut flags = flag::ANNOUNCED;
        if side_channel {
            flags |= flag::SIDE_CHANNEL;
        }
        let ack = self.policy.acks_opens();
        if ack {
            flags |= flag::ACK_PENDING;
        }
        if self.refuses_flows() {
            self.refuse_for_budget(id, flags);
            return Ok(());
        }
        self.insert_flow(id, flags);
        if ack {
            // Acknowledge at once: the peer counts unacknowledged opens.
            self.schedule_ctrl(id);
        }
        self.stats.flows_accepted += 1;
        self.events.push_back(Event::FlowOpened {
            id: FlowId(id),
            side_channel,
        });
        trace!(flow = id, side_channel, "mux flow accepted");
        Ok(())
    }

    /// A piece of DATA payload for `id`.
    pub(super) fn deliver(&mut self, id: u64, piece: &[u8], src: Option<&Bytes>) {
        let n = piece.len() as u64;
        self.fc.on_received(n);
        self.stats.data_received += n;
        let keep = match self.flows.get_mut(&id) {
            Some(flow) => {
                if matches!(flow.recv_state, RecvState::Open | RecvState::Fin { .. }) {
                    flow.push_recv(piece, src, &mut self.pool);
                    if flow.raise(flag::READABLE_SIGNALED) {
                        self.events.push_back(Event::Readable(FlowId(id)));
                    }
                    true
                } else {
                    flow.received += n;
                    flow.read += n;
                    false
                }
            }
            None => false,
        };
        if !keep {
            self.consumed(n); // nobody will read it: give the credit back
        }
    }

    pub(super) fn recv_fin(&mut self, id: u64) {
        let Some(flow) = self.flows.get_mut(&id) else {
            return;
        };
        match flow.recv_state {
            RecvState::Open => {
                flow.recv_state = RecvState::Fin {
                    final_size: flow.received,
                };
                if flow.raise(flag::READABLE_SIGNALED) {
                    self.events.push_back(Event::Readable(FlowId(id)));
                }
            }
            RecvState::Stopped { .. } => {
                flow.recv_state = RecvState::Done(End::Stopped);
                self.maybe_remove(id);
            }
            _ => {}
        }
    }

    pub(super) fn on_control(&mut self, c: Control<'_>) -> Result<(), ProtocolError> {
        match c {
            Control::Ping(v) => {
                self.limits.ping(self.now, &self.config)?;
                self.queue(Queued::Pong(v))?;
            }
            Control::Pong(v) => {
                // Unknown values are ignored: they cost nothing to drop.
                if let Some(sample) = self.health.on_pong(v, self.now) {
                    self.stats.rtt = Some(sample);
                    self.stats.srtt = Some(smooth_rtt(self.stats.srtt, sample));
                    self.events.push_back(Event::Rtt {
                        ping: v,
                        rtt: sample,
                    });
                }
            }
            Control::MaxData(max) => {
                if self.fc.raise_send_max(max) {
                    self.sched.unblock_conn();
                }
            }
            Control::MaxFlowData { flow: id, max } => {
                self.opens.check_known(id)?;
                if let Some(flow) = self.flows.get_mut(&id) {
                    if max > flow.send_max {
                        flow.send_max = max;
                        self.schedule(id);
                    }
                }
            }
            Control::MaxFlows(max) => {
                if max > 1 << 60 {
                    return Err(ProtocolError::BadCredit);
                }
                if self.opens.raise_local_max(max) {
                    self.events.push_back(Event::FlowCredit);
                }
            }
            Control::ResetFlow {
                flow: id,
                code,
                final_size,
            } => {
                self.opens.check_known(id)?;
                self.limits.reset(self.now, &self.config)?;
                self.on_reset(id, code, final_size)?;
            }
            Control::StopSending { flow: id, code } => {
                self.opens.check_known(id)?;
                self.on_stop_sending(id, code);
            }
            Control::GoAway {
                accepted_below,
                code,
            } => self.on_goaway(accepted_below, code),
            Control::ConnectionClose { code, reason } => {
                let code = ErrorCode::from_wire(code);
                let reason = reason.to_vec();
                self.close_with(
                    false,
                    false,
                    0,
                    b"",
                    CloseReason::Transport { code, reason },
                );
            }
            Control::ApplicationClose { code, reason } => {
                let reason = reason.to_vec();
                self.close_with(
                    false,
                    true,
                    0,
                    b"",
                    CloseReason::Application { code, reason },
                );
            }
        }
        Ok(())
    }

    pub(super) fn queue(&mut self, q: Queued) -> Result<(), ProtocolError> {
        self.sched.queue(q, self.config.max_queued_control)
    }

    pub(super) fn on_reset(
        &mut self,
        id: u64,
        code: u64,
        final_size: u64,
    ) -> Result<(), ProtocolError> {
        let Some(flow) = self.flows.get_mut(&id) else {
            return Ok(());
        };
        if final_size != flow.received {
            return Err(ProtocolError::FinalSize);
        }
        match flow.recv_state {
            RecvState::Open | RecvState::Fin { .. } => {
                flow.recv_state = RecvState::Reset { code };
                if flow.raise(flag::READABLE_SIGNALED) {
                    self.events.push_back(Event::Readable(FlowId(id)));
                }
            }
            RecvState::Stopped { .. } => {
                flow.recv_state = RecvState::Done(End::Stopped);
                self.maybe_remove(id);
            }
            RecvState::Reset { .. } | RecvState::Done(_) => {}
        }
        Ok(())
    }

    pub(super) fn on_stop_sending(&mut self, id: u64, code: u64) {
        let Some(flow) = self.flows.get_mut(&id) else {
            return;
        };
        if !matches!(
            flow.send_state,
            SendState::Open | SendState::Fin { sent: false }
        ) {
            return;
        }
        flow.send_state = SendState::Reset {
            code,
            sent: false,
            by_peer: true,
        };
        let dropped = flow.discard_send(&mut self.pool);
        if flow.has(flag::WANT_WRITABLE) {
            flow.clear(flag::WANT_WRITABLE);
            self.events.push_back(Event::Writable(FlowId(id)));
        }
        self.fc.unbuffered(dropped);
        self.schedule_ctrl(id);
    }

    pub(super) fn on_goaway(&mut self, accepted_below: u64, code: u64) {
        if !self.drain.receive(self.now, self.config.drain_timeout) {
            return;
        }
        self.opens.refused_local_from(accepted_below);
        trace!(accepted_below, code, "mux GOAWAY received");
        self.events.push_back(Event::GoAway {
            accepted_below,
            code,
        });
        let refused: Vec<u64> = self
            .flows
            .range(accepted_below..)
            .filter(|(_, f)| f.has(flag::LOCAL))
            .map(|(&id, _)| id)
            .collect();
        for id in refused {
            let Some(flow) = self.flows.get_mut(&id) else {
                continue;
            };
            let dropped = flow.discard_send(&mut self.pool);
            self.fc.unbuffered(dropped);
            flow.send_state = SendState::Reset {
                code: REFUSED,
                sent: true,
                by_peer: true,
            };
            if matches!(flow.recv_state, RecvState::Open | RecvState::Fin { .. }) {
                flow.recv_state = RecvState::Reset { code: REFUSED };
            }
            self.events.push_back(Event::Readable(FlowId(id)));
            self.events.push_back(Event::Writable(FlowId(id)));
        }
        self.check_drained();
    }
}
