//! Replaying one core's recorded inputs into a fresh core gives
//! byte-identical outputs; a different core or a tampered input is caught.

mod sim_support;

use proto_core::mux::{config_text, sim_core, Connection};
use proto_core::sim::trace::{parse, tag, MAGIC};
use proto_core::sim::{driver, world, Role, Swarm};
use proto_core::time::{Duration, Instant};
use sim_support::{mux, mux_config, side};

fn recorded(seed: u64) -> Vec<u8> {
    let o = world::run(&Swarm::from_seed(seed), mux, true);
    assert!(o.violations.is_empty(), "{:?}", o.violations);
    o.trace.unwrap()
}

#[test]
fn every_core_replays_byte_for_byte() {
    for seed in [3, 8] {
        let bytes = recorded(seed);
        let recs = parse(&bytes).unwrap();
        let cores = driver::cores_in(&recs);
        assert!(cores.len() >= 4, "seed {seed}: {} cores", cores.len());
        let mut inputs = 0;
        for (id, _, _) in &cores {
            let rep = driver::replay(&recs, *id, mux).unwrap();
            assert_eq!(rep.mismatch, None, "seed {seed} core {id}");
            inputs += rep.inputs;
        }
        assert!(inputs > 100, "seed {seed}: only {inputs} inputs");
    }
}

#[test]
fn a_differently_configured_core_does_not_match() {
    let bytes = recorded(3);
    let recs = parse(&bytes).unwrap();
    let other = |role: Role, now: Instant| {
        let mut cfg = mux_config();
        cfg.keepalive_interval = Some(Duration::from_millis(1500));
        Connection::new(cfg, side(role), now).unwrap()
    };
    let mismatches = driver::cores_in(&recs)
        .iter()
        .filter(|(id, _, _)| {
            driver::replay(&recs, *id, other)
                .unwrap()
                .mismatch
                .is_some()
        })
        .count();
    assert!(mismatches > 0, "replay must notice a different core");
}

#[test]
fn a_tampered_input_is_caught() {
    let mut bytes = recorded(3);
    // Find the first CORE_INPUT record with a payload and flip a byte of it.
    let recs = parse(&bytes).unwrap();
    let target = recs
        .iter()
        .find(|r| r.tag == tag::CORE_INPUT && r.payload.len() > 8)
        .map(|r| {
            (
                r.field(0),
                r.payload.as_ptr() as usize - bytes.as_ptr() as usize,
            )
        })
        .unwrap();
    drop(recs);
    let (core, off) = target;
    bytes[off] ^= 0xff; // the first preface byte
    let recs = parse(&bytes).unwrap();
    let rep = driver::replay(&recs, core as u32, mux).unwrap();
    assert!(rep.mismatch.is_some(), "core {core}: {rep:?}");
    assert!(parse(&bytes[MAGIC.len() - 1..]).is_err());
}

// ------------------------------------------------------------ the recorded mux config

/// A config with every field away from its default.
fn every_field_changed() -> proto_core::mux::Config {
    let mut c = proto_core::mux::Config::default();
    c.profile = proto_core::mux::Profile::Yamux;
    c.max_unacked_opens = 17;
    c.max_concurrent_flows = 300;
    c.max_flow_window = 20 << 20;
    c.conn_recv_budget = 40 << 20;
    c.flow_send_buffer = 100_000;
    c.conn_send_buffer = 900_000;
    c.max_frame_payload = 30_000;
    c.send_chunk = 1234;
    c.max_transmit = 70_000;
    c.max_close_reason = 99;
    c.max_queued_control = 33;
    c.max_resets_per_sec = 77;
    c.reset_burst = 78;
    c.max_pings_per_sec = 55;
    c.ping_burst = 56;
    c.max_refused_opens_per_sec = 57;
    c.refused_open_burst = 58;
    c.send_stall_timeout = None;
    c.keepalive_interval = None;
    c.channel_timeout = Some(Duration::from_nanos(12_345_678_901));
    c.idle_timeout = Some(Duration::from_millis(4500));
    c.drain_timeout = Duration::from_micros(3);
    c.max_outstanding_pings = 3;
    c.spare_buffers = 0;
    c
}

#[test]
fn the_mux_config_round_trips_through_its_note() {
    let c = every_field_changed();
    let text = config_text::encode_mux_config(&c);
    assert!(text.starts_with(config_text::MUX_CONFIG_PREFIX), "{text}");
    let back = config_text::decode_mux_config(&text).unwrap();
    // Debug shows every field, so equal Debug means equal configs.
    assert_eq!(format!("{back:?}"), format!("{c:?}"));
    let def = proto_core::mux::Config::default();
    assert_ne!(format!("{back:?}"), format!("{def:?}"), "every field moved");
    // Each field on its own: the decoded value is the one that was encoded.
    for item in text[config_text::MUX_CONFIG_PREFIX.len()..].split_whitespace() {
        let one = format!("{} {item}", config_text::MUX_CONFIG_PREFIX);
        let got = config_text::decode_mux_config(&one).unwrap();
        assert!(
            config_text::encode_mux_config(&got).contains(item),
            "{item} did not survive on its own"
        );
    }
}

#[test]
fn a_bad_mux_config_note_is_a_clear_error() {
    use config_text::{decode_mux_config as dec, MuxConfigError as E, MUX_CONFIG_PREFIX as P};
    // Missing keys keep the default (a recording from a build with fewer fields).
    let d = dec(&format!("{P} send_chunk=2000")).unwrap();
    assert_eq!(d.send_chunk, 2000);
    assert_eq!(
        d.max_transmit,
        proto_core::mux::Config::default().max_transmit
    );
    assert!(dec(P).is_ok(), "no keys at all is the default config");
    // A recording from before configs were encoded.
    assert_eq!(
        dec("adapter mux config: Config { send_chunk: 16384 }").err(),
        Some(E::NotEncoded)
    );
    assert_eq!(
        dec(&format!("{P} colour=blue")).err(),
        Some(E::UnknownKey("colour".into()))
    );
    assert_eq!(
        dec(&format!("{P} send_chunk=1 send_chunk=2")).err(),
        Some(E::DuplicateKey("send_chunk".into()))
    );
    assert_eq!(
        dec(&format!("{P} send_chunk")).err(),
        Some(E::Malformed("send_chunk".into()))
    );
    for bad in [
        "send_chunk=-1",
        "send_chunk=lots",
        "drain_timeout=5",
        "drain_timeout=none",
        "idle_timeout=5s",
        "profile=quic",
    ] {
        assert_eq!(
            dec(&format!("{P} {bad}")).err(),
            Some(E::BadValue(bad.into())),
            "{bad}"
        );
    }
    assert_eq!(
        dec(&format!("{P} send_chunk=0")).err(),
        Some(E::Invalid(proto_core::mux::ConfigError::BadSendChunk))
    );
    // Each error names what is wrong.
    let msg = dec(&format!("{P} colour=blue")).unwrap_err().to_string();
    assert!(msg.contains("colour"), "{msg}");
}

/// The CLI's path for an adapter recording: the config note is found in the
/// trace and rebuilt; a trace without one is not an adapter recording.
#[test]
fn a_recording_names_its_config() {
    let c = every_field_changed();
    let mut t = proto_core::sim::trace::Trace::new(true);
    let note = config_text::encode_mux_config(&c);
    t.record(
        tag::NOTE,
        0,
        &[driver::ADAPTER_CONFIG_NOTE],
        note.as_bytes(),
    );
    let bytes = t.into_bytes().unwrap();
    let recs = parse(&bytes).unwrap();
    let got = sim_core::recorded_mux_config(&recs).unwrap().unwrap();
    assert_eq!(format!("{got:?}"), format!("{c:?}"));
    let plain = recorded(3);
    assert!(sim_core::recorded_mux_config(&parse(&plain).unwrap()).is_none());
}

// ------------------------------------------------------------ reads that carry their data

/// What the recorded side's reads delivered, as the recorder logs them.
#[derive(Clone, Copy)]
enum ReadLog {
    /// The bytes the read took, in the command's `data` (the check applies).
    Data,
    /// The count only, `data` empty (recordings from before the check).
    CountOnly,
}

/// A recording made by hand the way `adapter-core`'s recorder makes one:
/// a config note, the core's creation, then every input, transmit, event
/// and command through `CallLog`. The recorded core is the acceptor; the
/// dialer (not recorded) opens one flow and sends `PAYLOAD`, which the
/// acceptor reads in 8-byte reads until end of data, each logged as an
/// `extra::READ` command: stream = the flow, arg = bytes taken (at least
/// 1), data = per `log`, result `Ok(bytes taken)`. Returns the trace and
/// the flow's id.
fn recorded_reads(log: ReadLog) -> (Vec<u8>, u64) {
    use driver::{CallLog, Command};
    use proto_core::mux::sim_core::extra;
    use proto_core::mux::{Event, Side};
    use proto_core::sim::trace::Trace;

    let cfg = mux_config();
    let now = Instant::from_nanos(1_000);
    let mut t = Trace::new(true);
    t.record(
        tag::NOTE,
        now.as_nanos(),
        &[driver::ADAPTER_CONFIG_NOTE],
        config_text::encode_mux_config(&cfg).as_bytes(),
    );
    let rec = CallLog { id: 0 };
    rec.created(&mut t, now, 0, Role::Acceptor);
    let mut acc = Connection::new(cfg.clone(), Side::Acceptor, now).unwrap();
    let mut dial = Connection::new(cfg, Side::Dialer, now).unwrap();
    let f = dial.open_flow().unwrap();
    assert_eq!(dial.flow(f).write(PAYLOAD).unwrap(), PAYLOAD.len());
    dial.flow(f).finish().unwrap();

    let mut wire = Vec::new();
    while dial.poll_transmit(&mut wire).is_some() {}
    rec.input(&mut t, now, &wire);
    acc.handle_input(now, &wire).unwrap();
    // The adapter's drain: transmits and events, each logged; returns the
    // flow the peer opened, if one was announced.
    let drain = |acc: &mut Connection, t: &mut Trace| {
        let mut opened = None;
        loop {
            let mut out = Vec::new();
            if acc.poll_transmit(&mut out).is_some() {
                rec.transmit(t, now, &out);
                continue;
            }
            let Some(ev) = acc.poll_event() else {
                return opened;
            };
            if let Event::FlowOpened { id, .. } = ev {
                opened = Some(id);
            }
            rec.event(t, now, proto_core::sim::CoreEvent::from(&ev));
        }
    };
    let id = drain(&mut acc, &mut t).expect("the dialer's flow arrived");
    let mut got = Vec::new();
    loop {
        let mut buf = [0u8; 8];
        let n = acc.flow(id).read(&mut buf).unwrap();
        let data = match log {
            ReadLog::Data => &buf[..n],
            ReadLog::CountOnly => &[][..],
        };
        let c = Command::Extra {
            op: extra::READ,
            stream: id.0,
            arg: n.max(1) as u64,
            data,
        };
        rec.command(&mut t, now, &c, &Ok((n as u64, None)), b"");
        drain(&mut acc, &mut t);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, PAYLOAD);
    (t.into_bytes().unwrap(), id.0)
}

const PAYLOAD: &[u8] = b"bytes the recorded side read, 8 at a time";

/// Replays core 0 the way the CLI does: with the recording's config.
fn replay_recording(bytes: &[u8]) -> driver::ReplayReport {
    let recs = parse(bytes).unwrap();
    let cfg = sim_core::recorded_mux_config(&recs).unwrap().unwrap();
    assert_eq!(driver::try_cores_in(&recs).unwrap().len(), 1);
    driver::replay(&recs, 0, |role, now| {
        Connection::new(cfg.clone(), side(role), now).unwrap()
    })
    .unwrap()
}

/// The `data` of the `k`th READ command: its offset in the trace bytes.
fn read_data_offset(bytes: &[u8], k: usize) -> (usize, usize) {
    let recs = parse(bytes).unwrap();
    let r = recs
        .iter()
        .filter(|r| r.tag == tag::CORE_COMMAND && r.field(1) == 8 && !r.payload.is_empty())
        .nth(k)
        .expect("enough reads with data");
    (
        r.payload.as_ptr() as usize - bytes.as_ptr() as usize,
        r.payload.len(),
    )
}

#[test]
fn a_read_that_carries_its_data_replays() {
    let (bytes, _) = recorded_reads(ReadLog::Data);
    let rep = replay_recording(&bytes);
    assert_eq!(rep.mismatch, None);
    // Every read was replayed: 6 with data, 1 at end of data.
    let reads = PAYLOAD.len().div_ceil(8) as u64 + 1;
    assert!(rep.inputs > reads, "{rep:?}");
    // A count-only recording (before reads carried data) still replays.
    let (old, _) = recorded_reads(ReadLog::CountOnly);
    assert_eq!(replay_recording(&old).mismatch, None);
}

#[test]
fn a_flipped_byte_in_read_data_fails_the_replay() {
    let (bytes, stream) = recorded_reads(ReadLog::Data);
    // The second read took stream bytes 8..16; flip its fourth byte.
    let (off, len) = read_data_offset(&bytes, 1);
    assert_eq!(len, 8);
    let mut bad = bytes.clone();
    bad[off + 3] ^= 0x20;
    let rep = replay_recording(&bad);
    let (_, what) = rep.mismatch.expect("the flipped byte is caught");
    let want = format!(
        "stream {stream} delivered other bytes than recorded: first difference at stream \
         offset 11 (byte 3 of this read): replay 0x{:02x}, recorded 0x{:02x}",
        PAYLOAD[11],
        PAYLOAD[11] ^ 0x20
    );
    assert!(what.starts_with(&want), "{what}\nwanted {want}");
    // The same flip in a count-only recording is not visible (nothing to
    // compare): the check applies exactly when the recorder logs the data.
    let (old, _) = recorded_reads(ReadLog::CountOnly);
    assert!(parse(&old)
        .unwrap()
        .iter()
        .all(|r| r.tag != tag::CORE_COMMAND || r.payload.is_empty()));
}

#[test]
fn read_data_of_the_wrong_length_fails_the_replay() {
    // A recording whose last data-carrying read claims one byte more than
    // the stream held: the replay delivers fewer bytes.
    let (bytes, stream) = recorded_reads(ReadLog::Data);
    let recs = parse(&bytes).unwrap();
    let mut t = proto_core::sim::trace::Trace::new(true);
    let last = recs
        .iter()
        .rposition(|r| r.tag == tag::CORE_COMMAND && !r.payload.is_empty())
        .unwrap();
    for (i, r) in recs.iter().enumerate() {
        let mut payload = r.payload.to_vec();
        if i == last {
            payload.push(b'!');
        }
        t.record(r.tag, r.time, &r.fields, &payload);
    }
    let rep = replay_recording(&t.into_bytes().unwrap());
    let (_, what) = rep.mismatch.expect("the extra byte is caught");
    let at = PAYLOAD.len();
    assert!(
        what.contains(&format!("stream {stream} "))
            && what.contains(&format!("stream offset {at} "))
            && what.contains("replay nothing, recorded 0x21"),
        "{what}"
    );
}

#[test]
fn a_mux_config_the_mux_cannot_run_with_is_refused() {
    use config_text::{decode_mux_config as dec, MuxConfigError as E, MUX_CONFIG_PREFIX as P};
    // `Config::validate` accepts these, but the mux then overflows (a
    // window past the bytes read, a head's fixed part plus the reason) or
    // announces a limit no varint carries: replaying such a recording
    // panicked in the mux.
    for item in [
        "conn_recv_budget=18446744073709551615",
        "max_concurrent_flows=4611686018427387904",
        "max_close_reason=18446744073709551615",
        "max_transmit=2305843009213693952",
    ] {
        assert_eq!(
            dec(&format!("{P} {item}")).err(),
            Some(E::OutOfRange(item.into())),
            "{item}"
        );
    }
    let top = config_text::MAX_RECORDED_LIMIT;
    let ok = dec(&format!(
        "{P} conn_recv_budget={top} max_concurrent_flows={top}"
    ))
    .unwrap();
    assert_eq!(ok.conn_recv_budget, top);
    let msg = dec(&format!("{P} conn_recv_budget={}", top + 1))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("conn_recv_budget") && msg.contains(&top.to_string()),
        "{msg}"
    );
    // In a recording: the CLI's path refuses it before replaying.
    let (bytes, _) = recorded_reads(ReadLog::Data);
    let recs = parse(&bytes).unwrap();
    let mut t = proto_core::sim::trace::Trace::new(true);
    for r in &recs {
        let big = format!("{P} conn_recv_budget=18446744073709551615");
        let payload = if r.tag == tag::NOTE {
            big.as_bytes()
        } else {
            r.payload
        };
        t.record(r.tag, r.time, &r.fields, payload);
    }
    let bytes = t.into_bytes().unwrap();
    assert!(matches!(
        sim_core::recorded_mux_config(&parse(&bytes).unwrap()),
        Some(Err(E::OutOfRange(_)))
    ));
}
