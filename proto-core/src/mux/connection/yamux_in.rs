//! yamux frames in: their translation onto the shared state machine (SYN
//! and bare FIN/RST opens, ACKs, RST for both directions, GoAway codes).

use super::*;

impl Connection {
    pub(super) fn on_yamux(&mut self, h: ym::Header) -> Result<(), ProtocolError> {
        match h.ty {
            ym::Type::Data | ym::Type::WindowUpdate => self.on_yamux_stream(h),
            ym::Type::Ping => {
                if h.stream != 0 {
                    return Err(ProtocolError::BadFlowId(h.stream.into()));
                }
                let v = u64::from(h.length);
                if h.has(yf::ACK) {
                    self.on_control(Control::Pong(v))
                } else if h.has(yf::SYN) {
                    self.on_control(Control::Ping(v))
                } else {
                    Err(ProtocolError::Malformed("yamux ping without SYN or ACK"))
                }
            }
            ym::Type::GoAway => {
                if h.stream != 0 {
                    return Err(ProtocolError::BadFlowId(h.stream.into()));
                }
                let code = match h.length {
                    ym::go_away::NORMAL => {
                        // No last-accepted id on this wire: every flow we
                        // opened counts as accepted, as yamux peers keep
                        // serving them.
                        let next = self.opens.local_next();
                        self.on_goaway(next, 0);
                        return Ok(());
                    }
                    ym::go_away::PROTOCOL_ERROR => ErrorCode::ProtocolViolation,
                    ym::go_away::INTERNAL_ERROR => ErrorCode::Internal,
                    other => ErrorCode::Unknown(other.into()),
                };
                trace!(?code, "yamux GoAway with an error");
                self.close_with(
                    false,
                    false,
                    0,
                    b"",
                    CloseReason::Transport {
                        code,
                        reason: Vec::new(),
                    },
                );
                Ok(())
            }
        }
    }

    /// A Data or WindowUpdate header: flags first (SYN, ACK, RST), then the
    /// window delta or the payload, then FIN.
    pub(super) fn on_yamux_stream(&mut self, h: ym::Header) -> Result<(), ProtocolError> {
        let id = u64::from(h.stream);
        let len = match h.ty {
            ym::Type::Data => u64::from(h.length),
            _ => 0,
        };
        let max = self.max_data_payload();
        if len > max {
            return Err(ProtocolError::FrameTooLarge { len, max });
        }
        if id == 0 {
            return Err(ProtocolError::BadFlowId(0));
        }
        let peer = self.opens.is_peer_id(id);
        let fresh = peer && !self.flows.contains_key(&id) && self.opens.peer_id_fresh(id);
        if h.has(yf::SYN) {
            if !peer {
                return Err(ProtocolError::BadFlowId(id));
            }
            self.yamux_open(id)?;
        } else if fresh && h.has(yf::RST) {
            // rust-yamux resets a stream it dropped unused without ever
            // opening it: the id is spent.
            self.claim_peer_id(id)?;
        } else if fresh {
            // ... and closes one it never wrote to with a bare FIN: take
            // that as the open it stands for.
            self.yamux_open(id)?;
        } else if !peer && id >= self.opens.local_next() {
            return Err(ProtocolError::BadFlowId(id));
        }
        if h.has(yf::ACK) && !peer {
            if let Some(flow) = self.flows.get_mut(&id) {
                if flow.raise(flag::PEER_ACKED) {
                    self.ack_arrived();
                }
            }
        }
        if h.has(yf::RST) {
            self.yamux_reset(id)?;
            if len > 0 {
                self.rx = Rx::Payload {
                    flow: DISCARD,
                    len,
                    remaining: len,
                    fin: false,
                };
            }
            return Ok(());
        }
        if h.ty == ym::Type::WindowUpdate {
            if let Some(flow) = self.flows.get_mut(&id) {
                let delta = u64::from(h.length);
                if flow.send_credit() + delta > u64::from(u32::MAX) {
                    return Err(ProtocolError::BadCredit);
                }
                if delta > 0 {
                    flow.send_max += delta;
                    self.schedule(id);
                }
            }
            if h.has(yf::FIN) {
                self.recv_fin(id);
            }
            return Ok(());
        }
        self.on_data_header(DataHeader {
            flow: id,
            len,
            fin: h.has(yf::FIN),
            side_channel: false,
        })
    }

    /// The peer's SYN for `id`: accept it, or refuse it with RST.
    pub(super) fn yamux_open(&mut self, id: u64) -> Result<(), ProtocolError> {
        self.claim_peer_id(id)?;
        let for_budget = self.refuses_flows();
        if for_budget {
            self.count_refused_flow();
        }
        if self.opens.refusing_peer() || !self.opens.peer_may_open() || for_budget {
            trace!(flow = id, "yamux open refused with RST");
            self.limits.refused_open(self.now, &self.config)?;
            return self.queue(Queued::Rst(id));
        }
        self.accept(id, false)
    }

    /// Marks peer id `id` used: it may not be opened again.
    pub(super) fn claim_peer_id(&mut self, id: u64) -> Result<(), ProtocolError> {
        if self.flows.contains_key(&id) {
            return Err(ProtocolError::BadFlowId(id)); // already open
        }
        self.opens
            .claim_peer_id(id, self.config.max_concurrent_flows)
    }

    /// The peer's RST: both directions of `id` end.
    pub(super) fn yamux_reset(&mut self, id: u64) -> Result<(), ProtocolError> {
        self.limits.reset(self.now, &self.config)?;
        let Some(flow) = self.flows.get_mut(&id) else {
            return Ok(());
        };
        let dropped = match flow.send_state {
            SendState::Open | SendState::Fin { sent: false } => {
                let dropped = flow.discard_send(&mut self.pool);
                flow.send_state = SendState::Reset {
                    code: 0,
                    sent: true,
                    by_peer: true,
                };
                dropped
            }
            SendState::Reset { code, by_peer, .. } => {
                // Our own RST need not follow: the stream is gone.
                flow.send_state = SendState::Reset {
                    code,
                    sent: true,
                    by_peer,
                };
                0
            }
            SendState::Fin { sent: true } => 0,
        };
        if flow.has(flag::WANT_WRITABLE) {
            flow.clear(flag::WANT_WRITABLE);
            self.events.push_back(Event::Writable(FlowId(id)));
        }
        self.fc.unbuffered(dropped);
        match flow.recv_state {
            RecvState::Open => {
                flow.recv_state = RecvState::Reset { code: 0 };
                if flow.raise(flag::READABLE_SIGNALED) {
                    self.events.push_back(Event::Readable(FlowId(id)));
                }
            }
            // After its FIN the peer's data is complete: the RST only
            // ends our direction (a stopped reader's way to say so).
            RecvState::Fin { .. } => {}
            RecvState::Stopped { .. } => flow.recv_state = RecvState::Done(End::Stopped),
            RecvState::Reset { .. } | RecvState::Done(_) => {}
        }
        self.maybe_remove(id);
        Ok(())
    }

    /// One of our opens was acknowledged (or forgotten by both sides).
    pub(super) fn ack_arrived(&mut self) {
        if self.opens.ack_arrived() {
            self.events.push_back(Event::FlowCredit);
        }
    }
}
