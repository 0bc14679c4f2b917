//! The decisions in which the two wire profiles differ, beside the codec
//! (`codec.rs`): one place answering "what does this wire do here", so the
//! connection asks `self.policy.x()` instead of testing the profile.
//!
//! A `Copy` enum, matched inline: no indirection on the per-frame paths.

use super::config::{Config, Profile};
use super::Side;

/// The wire profile's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policy {
    /// weft's framing: preface, connection window, MAX_FLOWS, ids in order.
    Native,
    /// yamux v0: none of those; SYN/ACK opens, RST for both directions.
    Yamux,
}

/// What `stop` puts on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopMapping {
    /// STOP_SENDING: only the peer's direction ends.
    StopSending,
    /// RST, which ends both directions (yamux has nothing finer).
    Rst,
}

impl Policy {
    pub fn of(profile: Profile) -> Self {
        match profile {
            Profile::Native => Policy::Native,
            Profile::Yamux => Policy::Yamux,
        }
    }

    /// The id of the first flow `side` opens; later ones step by 2.
    pub fn first_id(self, side: Side) -> u64 {
        side.first_id(match self {
            Policy::Native => Profile::Native,
            Policy::Yamux => Profile::Yamux,
        })
    }

    /// Each side starts with a preface (native `WEFTMUX1`).
    pub fn has_preface(self) -> bool {
        self == Policy::Native
    }

    /// Every frame head has this length (yamux's 12 bytes); `None` where
    /// the length depends on the fields (native varints).
    pub fn fixed_head_len(self) -> Option<usize> {
        match self {
            Policy::Native => None,
            Policy::Yamux => Some(super::yamux::HEADER_LEN),
        }
    }

    /// The wire carries connection-level credit (MAX_DATA) and flow-count
    /// credit (MAX_FLOWS). Without them the limits start unbounded and the
    /// connection never blocks on them nor announces them.
    pub fn has_credit_frames(self) -> bool {
        self == Policy::Native
    }

    /// Opens are acknowledged (yamux ACK): we ACK the peer's at once, and
    /// our own count as unacknowledged until the peer's ACK.
    pub fn acks_opens(self) -> bool {
        self == Policy::Yamux
    }

    /// How many of our opens may await an ACK before `open_flow` blocks.
    pub fn max_unacked_opens(self, config: &Config) -> u64 {
        match self {
            Policy::Native => u64::MAX, // no ACKs: never the limit
            Policy::Yamux => config.max_unacked_opens,
        }
    }

    /// The largest flow id the wire can carry (yamux ids are 32 bits;
    /// native varint ids run out long after the flow credit would).
    pub fn max_flow_id(self) -> u64 {
        match self {
            Policy::Native => u64::MAX,
            Policy::Yamux => u64::from(u32::MAX),
        }
    }

    /// The bits a ping value keeps on the wire.
    pub fn ping_mask(self) -> u64 {
        match self {
            Policy::Native => u64::MAX,
            Policy::Yamux => u64::from(u32::MAX), // yamux pings carry 32 bits
        }
    }

    /// A peer's open arrives as the next id in sequence (native); yamux
    /// opens come out of id order, announced by SYN (or a bare FIN/RST).
    pub fn opens_in_id_order(self) -> bool {
        self == Policy::Native
    }

    /// Our GOAWAY refuses the peer's opens from the returned id on. yamux
    /// peers open lazily, out of id order, and learn nothing from our
    /// GoAway: every later open is refused with RST.
    pub fn refuse_peer_from(self, accepted_below: u64) -> u64 {
        match self {
            Policy::Native => accepted_below,
            Policy::Yamux => 0,
        }
    }

    /// Our GOAWAY goes on the wire when we start draining. yamux peers
    /// (rust-yamux) end the whole connection on GoAway, which would abort
    /// the flows we mean to drain: there ours goes out with the close.
    pub fn goaway_at_drain_start(self) -> bool {
        self == Policy::Native
    }

    /// Our reset also ends our receive side: yamux's RST ends both
    /// directions, so nothing more will arrive.
    pub fn reset_ends_receive(self) -> bool {
        self == Policy::Yamux
    }

    pub fn stop_mapping(self) -> StopMapping {
        match self {
            Policy::Native => StopMapping::StopSending,
            Policy::Yamux => StopMapping::Rst,
        }
    }

    /// Largest DATA payload accepted. yamux peers may fill a whole window
    /// in one frame (hashicorp's does); payloads are streamed, so the
    /// window, not the frame, is what bounds memory.
    pub fn max_data_payload(self, config: &Config) -> u64 {
        match self {
            Policy::Native => config.max_frame_payload,
            Policy::Yamux => config.max_frame_payload.max(config.max_flow_window),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_profile() {
        let n = Policy::of(Profile::Native);
        let y = Policy::of(Profile::Yamux);
        assert_eq!(
            (n.first_id(Side::Dialer), n.first_id(Side::Acceptor)),
            (0, 1)
        );
        assert_eq!(
            (y.first_id(Side::Dialer), y.first_id(Side::Acceptor)),
            (1, 2)
        );
        assert_eq!(y.max_flow_id(), u64::from(u32::MAX));
    }

    #[test]
    fn yamux_accepts_frames_as_large_as_a_window() {
        let c = Config {
            max_frame_payload: 16 * 1024,
            max_flow_window: 1 << 20,
            ..Config::default()
        };
        assert_eq!(Policy::Native.max_data_payload(&c), 16 * 1024);
        assert_eq!(Policy::Yamux.max_data_payload(&c), 1 << 20);
        // A config whose frames exceed its window keeps the frame size.
        let c = Config {
            max_frame_payload: 2 << 20,
            ..c
        };
        assert_eq!(Policy::Yamux.max_data_payload(&c), 2 << 20);
    }

    #[test]
    fn goaway_semantics_differ() {
        assert_eq!(Policy::Native.refuse_peer_from(7), 7);
        assert_eq!(Policy::Yamux.refuse_peer_from(7), 0);
        assert!(Policy::Native.goaway_at_drain_start());
        assert!(!Policy::Yamux.goaway_at_drain_start());
    }

    #[test]
    fn only_yamux_counts_unacked_opens() {
        let c = Config {
            max_unacked_opens: 3,
            ..Config::default()
        };
        assert_eq!(Policy::Native.max_unacked_opens(&c), u64::MAX);
        assert_eq!(Policy::Yamux.max_unacked_opens(&c), 3);
        assert!(Policy::Yamux.acks_opens() && !Policy::Native.acks_opens());
        assert_eq!(Policy::Yamux.ping_mask(), u64::from(u32::MAX));
    }
}
