//! Liveness and timing: PINGs in flight and the RTT they measure, the
//! keepalive and channel timers, and the idle timer.

use super::config::Config;
use super::error::PingError;
use super::event::TimerReason;
use crate::time::{Duration, Instant};
use alloc::collections::VecDeque;

/// What the connection knows about the peer's liveness and its own idleness.
#[derive(Debug)]
pub(super) struct Health {
    /// Counter behind ping values; values are never reused while in flight
    /// because at most `max_outstanding_pings` are, far fewer than 2^32.
    next_ping: u64,
    /// Our PINGs awaiting a PONG, oldest first, with when they were queued.
    /// An RTT sample includes the time a PING waited in our own queue: the
    /// driver drains `poll_transmit` after every command, so that wait is
    /// part of what the application sees.
    pings: VecDeque<(u64, Instant)>,
    /// Any input counts as a sign of life, not just PONGs: a busy peer
    /// needs no keepalive.
    last_recv: Instant,
    /// One keepalive PING per silence: re-armed by the next input, so a
    /// dead peer gets one PING and then the channel timeout.
    keepalive_sent: bool,
    /// Flows that keep the connection from being idle (side channels don't).
    regular_flows: u64,
    /// Since when no regular flow exists; `None` while one does.
    idle_since: Option<Instant>,
}

impl Health {
    pub fn new(now: Instant) -> Self {
        Health {
            next_ping: 0,
            pings: VecDeque::new(),
            last_recv: now,
            keepalive_sent: false,
            regular_flows: 0,
            idle_since: Some(now),
        }
    }

    /// Bytes arrived at `now`.
    pub fn on_input(&mut self, now: Instant) {
        self.last_recv = now;
        self.keepalive_sent = false;
    }

    /// The keepalive timer fired: its PING is being sent.
    pub fn keepalive_fired(&mut self) {
        self.keepalive_sent = true;
    }

    /// Registers a PING sent at `now`; returns its value, cut to the bits
    /// in `mask` (the wire's width).
    pub fn start_ping(
        &mut self,
        now: Instant,
        max_outstanding: usize,
        mask: u64,
    ) -> Result<u64, PingError> {
        if self.pings.len() >= max_outstanding {
            return Err(PingError::TooMany);
        }
        let v = self.next_ping & mask;
        self.next_ping += 1;
        self.pings.push_back((v, now));
        Ok(v)
    }

    /// The PING `v` is going on the wire at `now`: its RTT counts from
    /// here, not from when it was queued (a mux carried by a handshake
    /// queues its first PING long before it can send it).
    pub fn stamp_ping(&mut self, v: u64, now: Instant) {
        if let Some(p) = self.pings.iter_mut().find(|p| p.0 == v) {
            p.1 = p.1.max(now);
        }
    }

    /// A PONG with `v`: the RTT sample, or `None` for a value we are not
    /// waiting for (dropped: it costs nothing).
    pub fn on_pong(&mut self, v: u64, now: Instant) -> Option<Duration> {
        let i = self.pings.iter().position(|&(p, _)| p == v)?;
        let (_, sent) = self.pings.remove(i).unwrap_or((v, now));
        Some(now.saturating_duration_since(sent))
    }

    pub fn flow_added(&mut self, side_channel: bool) {
        if !side_channel {
            self.regular_flows += 1;
            self.idle_since = None;
        }
    }

    pub fn flow_removed(&mut self, side_channel: bool, now: Instant) {
        if !side_channel {
            self.regular_flows -= 1;
            if self.regular_flows == 0 {
                self.idle_since = Some(now);
            }
        }
    }

    /// The earliest of the channel, keepalive and idle deadlines. On a tie
    /// the earlier-listed reason wins: a channel timeout closes, which
    /// makes a keepalive at the same instant pointless.
    pub fn deadline(&self, c: &Config) -> Option<(Instant, TimerReason)> {
        let mut best: Option<(Instant, TimerReason)> = None;
        let mut consider = |t: Instant, why: TimerReason| {
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, why));
            }
        };
        if let Some(d) = c.channel_timeout {
            consider(self.last_recv + d, TimerReason::ChannelTimeout);
        }
        if let (Some(d), false) = (c.keepalive_interval, self.keepalive_sent) {
            consider(self.last_recv + d, TimerReason::Keepalive);
        }
        if let (Some(d), Some(since)) = (c.idle_timeout, self.idle_since) {
            consider(since + d, TimerReason::Idle);
        }
        best
    }
}

/// The smoothed RTT after `sample`: the first sample, then an EWMA with
/// weight 1/8 (as TCP and QUIC), so one delayed PONG moves it little.
pub(super) fn smooth_rtt(srtt: Option<Duration>, sample: Duration) -> Duration {
    match srtt {
        None => sample,
        Some(s) => (s * 7 + sample) / 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    fn config(keepalive: Option<u64>, channel: Option<u64>, idle: Option<u64>) -> Config {
        Config {
            keepalive_interval: keepalive.map(Duration::from_millis),
            channel_timeout: channel.map(Duration::from_millis),
            idle_timeout: idle.map(Duration::from_millis),
            ..Config::default()
        }
    }

    #[test]
    fn keepalive_deadline_follows_the_last_input() {
        let c = config(Some(100), None, None);
        let mut h = Health::new(at(0));
        assert_eq!(h.deadline(&c), Some((at(100), TimerReason::Keepalive)));
        h.on_input(at(70));
        assert_eq!(h.deadline(&c), Some((at(170), TimerReason::Keepalive)));
    }

    #[test]
    fn one_keepalive_per_silence() {
        let c = config(Some(100), Some(300), None);
        let mut h = Health::new(at(0));
        h.keepalive_fired();
        // Only the channel timeout is left until the peer says something.
        assert_eq!(h.deadline(&c), Some((at(300), TimerReason::ChannelTimeout)));
        h.on_input(at(150));
        assert_eq!(h.deadline(&c), Some((at(250), TimerReason::Keepalive)));
    }

    #[test]
    fn channel_timeout_wins_a_tie_with_keepalive() {
        let c = config(Some(100), Some(100), None);
        let h = Health::new(at(0));
        assert_eq!(h.deadline(&c), Some((at(100), TimerReason::ChannelTimeout)));
    }

    #[test]
    fn idle_counts_only_without_regular_flows() {
        let c = config(None, None, Some(50));
        let mut h = Health::new(at(0));
        assert_eq!(h.deadline(&c), Some((at(50), TimerReason::Idle)));
        h.flow_added(true); // a side channel keeps nothing alive
        assert_eq!(h.deadline(&c), Some((at(50), TimerReason::Idle)));
        h.flow_added(false);
        h.flow_added(false);
        assert_eq!(h.deadline(&c), None);
        h.flow_removed(false, at(20));
        assert_eq!(h.deadline(&c), None);
        h.flow_removed(true, at(25));
        assert_eq!(h.deadline(&c), None);
        h.flow_removed(false, at(30));
        assert_eq!(h.deadline(&c), Some((at(80), TimerReason::Idle)));
    }

    #[test]
    fn pong_yields_an_rtt_once() {
        let mut h = Health::new(at(0));
        let a = h.start_ping(at(10), 4, u64::MAX).unwrap();
        let b = h.start_ping(at(20), 4, u64::MAX).unwrap();
        assert_ne!(a, b);
        assert_eq!(h.on_pong(b, at(50)), Some(Duration::from_millis(30)));
        assert_eq!(h.on_pong(b, at(60)), None); // answered already
        assert_eq!(h.on_pong(99, at(60)), None); // never sent
        assert_eq!(h.on_pong(a, at(70)), Some(Duration::from_millis(60)));
    }

    #[test]
    fn outstanding_pings_are_capped() {
        let mut h = Health::new(at(0));
        let a = h.start_ping(at(0), 2, u64::MAX).unwrap();
        h.start_ping(at(0), 2, u64::MAX).unwrap();
        assert_eq!(h.start_ping(at(0), 2, u64::MAX), Err(PingError::TooMany));
        h.on_pong(a, at(1));
        assert!(h.start_ping(at(1), 2, u64::MAX).is_ok());
    }

    #[test]
    fn ping_values_are_cut_to_the_mask() {
        let mut h = Health::new(at(0));
        h.next_ping = u64::from(u32::MAX) + 3;
        assert_eq!(h.start_ping(at(0), 4, u64::from(u32::MAX)), Ok(2));
    }

    #[test]
    fn srtt_is_a_one_eighth_ewma() {
        let ms = Duration::from_millis;
        assert_eq!(smooth_rtt(None, ms(80)), ms(80));
        assert_eq!(smooth_rtt(Some(ms(80)), ms(160)), ms(90));
        assert_eq!(smooth_rtt(Some(ms(80)), ms(0)), ms(70));
    }
}
