//! Received bytes on their way to the application: unparsed input, the
//! messages the framer cut out, and the application's receive requests.

use super::config::MESSAGE_OVERHEAD;
use super::event::Event;
use crate::taps::framer::{Framer, FramerError, ParseStep};
use crate::taps::message::MessageContext;
use alloc::collections::VecDeque;
use alloc::format;
use bytes::{Buf, BytesMut};

/// A message as far as it has arrived and not been delivered.
struct Held {
    data: BytesMut,
    end: bool,
}

#[derive(Clone, Copy)]
pub(super) struct Request {
    pub(super) min_incomplete: usize,
    pub(super) max_len: usize,
}

#[derive(Default)]
pub(super) struct Receiver {
    raw: BytesMut,
    held: VecDeque<Held>,
    /// Bytes in `held` plus `MESSAGE_OVERHEAD` per entry.
    held_cost: usize,
    pub(super) requests: VecDeque<Request>,
    /// Index of the front held message, and its bytes delivered already.
    index: u64,
    offset: u64,
    /// The framer asked for more input than there is.
    blocked: bool,
}

impl Receiver {
    /// Bytes held, parsed or not, with the per-message overhead.
    pub(super) fn held(&self) -> usize {
        self.raw.len() + self.held_cost
    }

    pub(super) fn push_input(&mut self, data: &[u8]) {
        self.raw.extend_from_slice(data);
        self.blocked = false;
    }

    pub(super) fn clear(&mut self) {
        *self = Receiver {
            index: self.index,
            ..Receiver::default()
        };
    }

    /// Nothing held can be delivered and the framer waits for bytes:
    /// only input moves this receiver on, whatever it holds.
    pub(super) fn needs_input(&self) -> bool {
        self.blocked && self.held.iter().all(|h| !h.end && h.data.is_empty())
    }

    fn has_complete(&self) -> bool {
        self.held.iter().any(|h| h.end)
    }

    /// Runs the framer over the unread bytes while parsed messages hold
    /// less than `limit`.
    pub(super) fn parse(
        &mut self,
        framer: &mut dyn Framer,
        limit: usize,
    ) -> Result<(), FramerError> {
        let bug = |framer: &dyn Framer, what: alloc::string::String| {
            FramerError::new(framer.name(), what)
        };
        // Blocked: nothing new to show the framer since it asked for more.
        while !self.blocked && self.held_cost < limit {
            match framer.parse(&self.raw)? {
                ParseStep::ParseInput { min_bytes } => {
                    if min_bytes > limit {
                        // More than may be held: input would stop for good.
                        return Err(bug(
                            framer,
                            format!(
                                "asked for {min_bytes} bytes, over the receive buffer of {limit}"
                            ),
                        ));
                    }
                    if min_bytes <= self.raw.len() {
                        // Calling again would get the same answer: a hang.
                        return Err(bug(
                            framer,
                            format!("asked for {min_bytes} bytes with {} unread", self.raw.len()),
                        ));
                    }
                    self.blocked = true;
                    return Ok(());
                }
                ParseStep::AdvanceReceiveCursor(n) => {
                    if n == 0 || n > self.raw.len() {
                        return Err(bug(
                            framer,
                            format!("advanced by {n} bytes with {} unread", self.raw.len()),
                        ));
                    }
                    self.raw.advance(n);
                }
                ParseStep::DeliverAndAdvanceReceiveCursor {
                    len,
                    end_of_message,
                } => {
                    if len > self.raw.len() || len == 0 && !end_of_message {
                        return Err(bug(
                            framer,
                            format!(
                                "delivered {len} bytes (end of message: {end_of_message}) with {} unread",
                                self.raw.len()
                            ),
                        ));
                    }
                    let data = self.raw.split_to(len);
                    self.held_cost += len;
                    match self.held.back_mut() {
                        Some(open) if !open.end => {
                            open.data.unsplit(data);
                            open.end = end_of_message;
                        }
                        _ => {
                            self.held_cost += MESSAGE_OVERHEAD;
                            self.held.push_back(Held {
                                data,
                                end: end_of_message,
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Answers receive requests from the held messages. `full`: the
    /// buffer is at its limit, so an incomplete message goes out in part
    /// whatever the request's minimum.
    pub(super) fn deliver(&mut self, full: bool, events: &mut VecDeque<Event>) {
        while let (Some(req), Some(front)) = (self.requests.front().copied(), self.held.front_mut())
        {
            let avail = front.data.len();
            let max_len = req.max_len.max(1);
            let context = |len: usize, end: bool, offset: u64, index: u64| MessageContext {
                message: index,
                offset,
                len,
                end_of_message: end,
            };
            if front.end && avail <= max_len {
                let data = core::mem::take(&mut front.data).freeze();
                let ctx = context(avail, true, self.offset, self.index);
                let ev = if self.offset == 0 {
                    Event::Received { data, context: ctx }
                } else {
                    Event::ReceivedPartial { data, context: ctx }
                };
                self.held.pop_front();
                self.held_cost -= avail + MESSAGE_OVERHEAD;
                self.index += 1;
                self.offset = 0;
                self.requests.pop_front();
                events.push_back(ev);
                continue;
            }
            let take = if avail >= max_len {
                max_len
            } else if !front.end && avail > 0 && (avail >= req.min_incomplete || full) {
                avail
            } else {
                break;
            };
            let data = front.data.split_to(take).freeze();
            self.held_cost -= take;
            events.push_back(Event::ReceivedPartial {
                data,
                context: context(take, false, self.offset, self.index),
            });
            self.offset += take as u64;
            self.requests.pop_front();
        }
    }

    /// After the stream ended: `None` while messages remain to deliver or
    /// parse; else whether it ended cleanly (`Ok`) or inside a message
    /// (`Err` with the context and the bytes of it that arrived).
    pub(super) fn end_state(
        &self,
        framer: &dyn Framer,
    ) -> Option<Result<(), (MessageContext, u64)>> {
        if !self.blocked || self.has_complete() {
            return None;
        }
        let open = self.held.front().filter(|h| !h.end);
        if open.is_none() && framer.at_message_boundary(&self.raw) {
            return Some(Ok(()));
        }
        let received = open.map_or(0, |h| self.offset + h.data.len() as u64);
        let ctx = MessageContext {
            message: self.index,
            offset: received,
            len: 0,
            end_of_message: false,
        };
        Some(Err((ctx, received)))
    }
}
