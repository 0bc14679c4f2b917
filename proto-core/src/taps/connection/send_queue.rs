//! Messages waiting to go out: by priority, then in the order sent, the
//! final message last, one message at a time on the stream.

use crate::taps::framer::Framed;
use crate::taps::message::MessageRef;
use crate::time::Instant;
use crate::wire::TransmitBuf;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use bytes::Bytes;

struct Queued {
    msgref: MessageRef,
    framed: Framed,
    deadline: Option<Instant>,
}

/// The message on the wire: its unsent header, body and trailer.
struct InProgress {
    msgref: MessageRef,
    parts: [Bytes; 3],
    is_final: bool,
}

/// The final message's key: after every other (no send is taken after it).
const FINAL_KEY: (u32, u64) = (u32::MAX, u64::MAX);

#[derive(Default)]
pub(super) struct SendQueue {
    /// Keyed (priority, sequence): iteration order is send order.
    queue: BTreeMap<(u32, u64), Queued>,
    /// (deadline, sequence) -> priority, for expiry and the timer.
    deadlines: BTreeMap<(Instant, u64), u32>,
    current: Option<InProgress>,
    next_seq: u64,
    queued_bytes: usize,
    final_taken: bool,
    final_sent: bool,
}

impl SendQueue {
    pub(super) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub(super) fn queued_messages(&self) -> usize {
        self.queue.len() + usize::from(self.current.is_some())
    }

    pub(super) fn final_taken(&self) -> bool {
        self.final_taken
    }

    pub(super) fn final_sent(&self) -> bool {
        self.final_sent
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.current.is_none()
    }

    pub(super) fn push(
        &mut self,
        msgref: MessageRef,
        framed: Framed,
        priority: u32,
        deadline: Option<Instant>,
        is_final: bool,
    ) {
        let key = if is_final {
            self.final_taken = true;
            FINAL_KEY
        } else {
            self.next_seq += 1;
            (priority, self.next_seq)
        };
        if let Some(d) = deadline {
            self.deadlines.insert((d, key.1), key.0);
        }
        self.queued_bytes += framed.len();
        self.queue.insert(
            key,
            Queued {
                msgref,
                framed,
                deadline,
            },
        );
    }

    /// Drops every queued message whose deadline is at or before `now`.
    pub(super) fn expire(&mut self, now: Instant, mut expired: impl FnMut(MessageRef)) {
        while let Some((&(d, seq), &prio)) = self.deadlines.first_key_value() {
            if d > now {
                break;
            }
            self.deadlines.remove(&(d, seq));
            if let Some(q) = self.queue.remove(&(prio, seq)) {
                self.queued_bytes -= q.framed.len();
                if (prio, seq) == FINAL_KEY {
                    // The final message never went: later sends may.
                    self.final_taken = false;
                }
                expired(q.msgref);
            }
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first_key_value().map(|(&(d, _), _)| d)
    }

    /// Hands out up to `budget` bytes; calls `sent` for each message whose
    /// last byte went. Returns the bytes handed out.
    pub(super) fn transmit(
        &mut self,
        out: &mut dyn TransmitBuf,
        mut budget: usize,
        mut sent: impl FnMut(MessageRef),
    ) -> usize {
        let mut n = 0;
        while budget > 0 {
            if self.current.is_none() {
                let Some(((prio, seq), q)) = self.queue.pop_first() else {
                    break;
                };
                if let Some(d) = q.deadline {
                    self.deadlines.remove(&(d, seq));
                }
                self.current = Some(InProgress {
                    msgref: q.msgref,
                    parts: [q.framed.header, q.framed.body, q.framed.trailer],
                    is_final: (prio, seq) == FINAL_KEY,
                });
            }
            let Some(cur) = self.current.as_mut() else {
                break;
            };
            for part in cur.parts.iter_mut() {
                if budget == 0 {
                    break;
                }
                if part.is_empty() {
                    continue;
                }
                let take = part.len().min(budget);
                let piece = part.split_to(take);
                out.put_bytes(piece);
                budget -= take;
                n += take;
                self.queued_bytes -= take;
            }
            if cur.parts.iter().any(|p| !p.is_empty()) {
                break;
            }
            let done = self.current.take();
            if let Some(done) = done {
                if done.is_final {
                    self.final_sent = true;
                }
                sent(done.msgref);
            }
        }
        n
    }

    /// Empties the queue; returns the messages it held in send order (the
    /// one in progress first).
    pub(super) fn drain(&mut self) -> Vec<MessageRef> {
        let mut all: Vec<MessageRef> = self.current.take().map(|c| c.msgref).into_iter().collect();
        all.extend(
            core::mem::take(&mut self.queue)
                .into_values()
                .map(|q| q.msgref),
        );
        self.deadlines.clear();
        self.queued_bytes = 0;
        all
    }
}
