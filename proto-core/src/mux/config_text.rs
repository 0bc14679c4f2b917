//! The mux config as one line of text (`key=value` items), for a
//! recording's config note ([`crate::sim::driver::ADAPTER_CONFIG_NOTE`]):
//! a replay rebuilds the exact config a live connection ran with. No serde:
//! the encoder names every field, so a new field does not compile until it
//! has a key.

use super::{Config, ConfigError, Profile};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// What an encoded mux config starts with; the version changes only if
/// the syntax does (new fields are new keys).
pub const MUX_CONFIG_PREFIX: &str = "mux config v1:";

/// Why a recorded mux config could not be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MuxConfigError {
    /// The text does not start with [`MUX_CONFIG_PREFIX`] (a recording
    /// from before configs were encoded, or not a config at all).
    NotEncoded,
    /// An item that is not `key=value`.
    Malformed(String),
    /// A key this build's `Config` has no field for (recorded by a newer
    /// build, or mistyped).
    UnknownKey(String),
    /// A key given twice.
    DuplicateKey(String),
    /// A value that does not parse for its key.
    BadValue(String),
    /// The values parse but make a config [`validate`](Config::validate) rejects.
    Invalid(ConfigError),
    /// A size or count above [`MAX_RECORDED_LIMIT`]: the mux adds to its
    /// limits and announces some of them as varints, so it cannot run with
    /// such a value (`validate` does not say so).
    OutOfRange(String),
}

/// The largest size or count a recorded mux config may hold (2^61 - 1):
/// half the largest varint, so that the mux's own arithmetic on its limits
/// (a receive window past the bytes read, one more flow as one closes, a
/// frame head's fixed part before a close reason) stays representable and
/// encodable for any run a file can describe.
pub const MAX_RECORDED_LIMIT: u64 = super::MAX_LIMIT;

impl core::fmt::Display for MuxConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MuxConfigError::NotEncoded => {
                write!(f, "not an encoded mux config (no {MUX_CONFIG_PREFIX:?})")
            }
            MuxConfigError::Malformed(s) => write!(f, "mux config item {s:?} is not key=value"),
            MuxConfigError::UnknownKey(k) => write!(f, "unknown mux config key {k:?}"),
            MuxConfigError::DuplicateKey(k) => write!(f, "mux config key {k:?} given twice"),
            MuxConfigError::BadValue(kv) => write!(f, "bad mux config value in {kv:?}"),
            MuxConfigError::Invalid(e) => write!(f, "recorded mux config is invalid: {e}"),
            MuxConfigError::OutOfRange(kv) => write!(
                f,
                "mux config value in {kv:?} is above {MAX_RECORDED_LIMIT}, more than the mux can run with"
            ),
        }
    }
}

impl core::error::Error for MuxConfigError {}

/// A mux config as one line of `key=value` items after
/// [`MUX_CONFIG_PREFIX`], for a recording's note: integers in decimal,
/// durations in nanoseconds with an `ns` suffix, an absent option as
/// `none`. [`decode_mux_config`] reads it back.
pub fn encode_mux_config(cfg: &Config) -> String {
    use core::fmt::Write;
    // Every field by name and no `..`: a field added to `Config` stops this
    // compiling until it gets a key here and in `decode_mux_config`.
    let Config {
        profile,
        max_unacked_opens,
        max_concurrent_flows,
        max_flow_window,
        conn_recv_budget,
        flow_send_buffer,
        conn_send_buffer,
        max_frame_payload,
        send_chunk,
        max_transmit,
        max_close_reason,
        max_queued_control,
        max_resets_per_sec,
        reset_burst,
        max_pings_per_sec,
        ping_burst,
        max_refused_opens_per_sec,
        refused_open_burst,
        send_stall_timeout,
        keepalive_interval,
        channel_timeout,
        idle_timeout,
        drain_timeout,
        max_outstanding_pings,
        spare_buffers,
        budget,
        pressure_window,
        pressure_send_floor,
    } = cfg;
    let dur = |d: &crate::time::Duration| alloc::format!("{}ns", d.as_nanos());
    let opt = |d: &Option<crate::time::Duration>| d.as_ref().map_or(String::from("none"), dur);
    let profile = match profile {
        Profile::Native => "native",
        Profile::Yamux => "yamux",
    };
    // A shared budget cannot be recorded, only its limit: a replay draws
    // from a fresh budget of that size, so it matches while the recording
    // saw no pressure (docs/decisions.md).
    let budget = budget
        .as_ref()
        .map_or(String::from("none"), |b| b.limit().to_string());
    let items: [(&str, String); 28] = [
        ("profile", String::from(profile)),
        ("max_unacked_opens", max_unacked_opens.to_string()),
        ("max_concurrent_flows", max_concurrent_flows.to_string()),
        ("max_flow_window", max_flow_window.to_string()),
        ("conn_recv_budget", conn_recv_budget.to_string()),
        ("flow_send_buffer", flow_send_buffer.to_string()),
        ("conn_send_buffer", conn_send_buffer.to_string()),
        ("max_frame_payload", max_frame_payload.to_string()),
        ("send_chunk", send_chunk.to_string()),
        ("max_transmit", max_transmit.to_string()),
        ("max_close_reason", max_close_reason.to_string()),
        ("max_queued_control", max_queued_control.to_string()),
        ("max_resets_per_sec", max_resets_per_sec.to_string()),
        ("reset_burst", reset_burst.to_string()),
        ("max_pings_per_sec", max_pings_per_sec.to_string()),
        ("ping_burst", ping_burst.to_string()),
        (
            "max_refused_opens_per_sec",
            max_refused_opens_per_sec.to_string(),
        ),
        ("refused_open_burst", refused_open_burst.to_string()),
        ("send_stall_timeout", opt(send_stall_timeout)),
        ("keepalive_interval", opt(keepalive_interval)),
        ("channel_timeout", opt(channel_timeout)),
        ("idle_timeout", opt(idle_timeout)),
        ("drain_timeout", dur(drain_timeout)),
        ("max_outstanding_pings", max_outstanding_pings.to_string()),
        ("spare_buffers", spare_buffers.to_string()),
        ("budget", budget),
        ("pressure_window", pressure_window.to_string()),
        ("pressure_send_floor", pressure_send_floor.to_string()),
    ];
    let mut s = String::from(MUX_CONFIG_PREFIX);
    for (k, v) in items {
        let _ = write!(s, " {k}={v}");
    }
    s
}

/// Rebuilds the config [`encode_mux_config`] wrote. A missing key keeps
/// `Config::default()`'s value (a recording from a build with fewer
/// fields); an unknown or repeated key, a bad value or an invalid result
/// is an error, never a silently different config.
pub fn decode_mux_config(text: &str) -> Result<Config, MuxConfigError> {
    use crate::time::Duration;
    use core::str::FromStr;
    fn num<T: FromStr>(item: &str, v: &str) -> Result<T, MuxConfigError> {
        v.parse()
            .map_err(|_| MuxConfigError::BadValue(String::from(item)))
    }
    /// A size or count: at most [`MAX_RECORDED_LIMIT`].
    fn size<T: TryFrom<u64>>(item: &str, v: &str) -> Result<T, MuxConfigError> {
        let n: u64 = num(item, v)?;
        if n > MAX_RECORDED_LIMIT {
            return Err(MuxConfigError::OutOfRange(String::from(item)));
        }
        T::try_from(n).map_err(|_| MuxConfigError::BadValue(String::from(item)))
    }
    fn dur(item: &str, v: &str) -> Result<Duration, MuxConfigError> {
        let n = v
            .strip_suffix("ns")
            .ok_or_else(|| MuxConfigError::BadValue(String::from(item)))?;
        Ok(Duration::from_nanos(num(item, n)?))
    }
    fn opt(item: &str, v: &str) -> Result<Option<Duration>, MuxConfigError> {
        if v == "none" {
            Ok(None)
        } else {
            dur(item, v).map(Some)
        }
    }
    let body = text
        .strip_prefix(MUX_CONFIG_PREFIX)
        .ok_or(MuxConfigError::NotEncoded)?;
    let mut cfg = Config::default();
    let mut seen: Vec<&str> = Vec::new();
    for item in body.split_ascii_whitespace() {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| MuxConfigError::Malformed(String::from(item)))?;
        if seen.contains(&k) {
            return Err(MuxConfigError::DuplicateKey(String::from(k)));
        }
        seen.push(k);
        match k {
            "profile" => {
                cfg.profile = match v {
                    "native" => Profile::Native,
                    "yamux" => Profile::Yamux,
                    _ => return Err(MuxConfigError::BadValue(String::from(item))),
                }
            }
            "max_unacked_opens" => cfg.max_unacked_opens = size(item, v)?,
            "max_concurrent_flows" => cfg.max_concurrent_flows = size(item, v)?,
            "max_flow_window" => cfg.max_flow_window = size(item, v)?,
            "conn_recv_budget" => cfg.conn_recv_budget = size(item, v)?,
            "flow_send_buffer" => cfg.flow_send_buffer = size(item, v)?,
            "conn_send_buffer" => cfg.conn_send_buffer = size(item, v)?,
            "max_frame_payload" => cfg.max_frame_payload = size(item, v)?,
            "send_chunk" => cfg.send_chunk = size(item, v)?,
            "max_transmit" => cfg.max_transmit = size(item, v)?,
            "max_close_reason" => cfg.max_close_reason = size(item, v)?,
            "max_queued_control" => cfg.max_queued_control = size(item, v)?,
            "max_resets_per_sec" => cfg.max_resets_per_sec = num(item, v)?,
            "reset_burst" => cfg.reset_burst = num(item, v)?,
            "max_pings_per_sec" => cfg.max_pings_per_sec = num(item, v)?,
            "ping_burst" => cfg.ping_burst = num(item, v)?,
            "max_refused_opens_per_sec" => cfg.max_refused_opens_per_sec = num(item, v)?,
            "refused_open_burst" => cfg.refused_open_burst = num(item, v)?,
            "send_stall_timeout" => cfg.send_stall_timeout = opt(item, v)?,
            "keepalive_interval" => cfg.keepalive_interval = opt(item, v)?,
            "channel_timeout" => cfg.channel_timeout = opt(item, v)?,
            "idle_timeout" => cfg.idle_timeout = opt(item, v)?,
            "drain_timeout" => cfg.drain_timeout = dur(item, v)?,
            "max_outstanding_pings" => cfg.max_outstanding_pings = size(item, v)?,
            "spare_buffers" => cfg.spare_buffers = size(item, v)?,
            "budget" => {
                cfg.budget = match v {
                    "none" => None,
                    v => Some(crate::budget::MemoryBudget::new(
                        crate::budget::BudgetConfig::with_limit(size(item, v)?),
                    )),
                }
            }
            "pressure_window" => cfg.pressure_window = size(item, v)?,
            "pressure_send_floor" => cfg.pressure_send_floor = size(item, v)?,
            _ => return Err(MuxConfigError::UnknownKey(String::from(k))),
        }
    }
    cfg.validate().map_err(MuxConfigError::Invalid)?;
    Ok(cfg)
}
