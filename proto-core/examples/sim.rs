//! Runs the standard simulated scenario over the mux, or replays a trace.
//!
//! ```sh
//! cargo run --release -p proto-core --features sim --example sim -- --seed 7
//! cargo run --release -p proto-core --features sim --example sim -- --seed 7 --trace /tmp/7.trace
//! cargo run --release -p proto-core --features sim --example sim -- --replay /tmp/7.trace
//! cargo run --release -p proto-core --features sim --example sim -- --sweep 0..1000
//! ```
//!
//! `--seed N` prints the configuration the seed picked, a summary, the
//! invariants that broke (if any) and the trace hash; a failing seed prints
//! the command that reproduces it. `--replay FILE` feeds every recorded
//! core's inputs into a fresh mux and reports whether every output matched
//! byte for byte (`--dump FILE [--core N]` prints the records to step
//! through); it also replays a live connection an adapter recorded
//! (run it with `WEFT_RECORD_DIR=dir`). `--hour` runs the benchmark scenario (10 hosts, one
//! simulated hour, every fault on); `--hosts N` and `--secs S` resize a run.

use proto_core::mux::{config_text, sim_core, Config, Connection, Side};
use proto_core::sim::{driver, trace, world, Role, Swarm};
use proto_core::time::{Duration, Instant};
use std::process::ExitCode;

fn mux(role: Role, now: Instant) -> Connection {
    let mut cfg = Config::default();
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.channel_timeout = Some(Duration::from_secs(4));
    cfg.drain_timeout = Duration::from_secs(10);
    Connection::new(cfg, side(role), now).expect("valid config")
}

fn side(role: Role) -> Side {
    match role {
        Role::Dialer => Side::Dialer,
        Role::Acceptor => Side::Acceptor,
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: sim --seed N [--hour] [--trace FILE] [--hosts N] [--secs S]\n       sim --sweep A..B\n       sim --replay FILE\n       sim --dump FILE [--core N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(file) = get("--replay") {
        return replay(&file);
    }
    if let Some(file) = get("--dump") {
        let core = match get("--core").map(|c| c.parse::<u32>().map_err(|e| (c, e))) {
            None => None,
            Some(Ok(c)) => Some(u64::from(c)),
            Some(Err((c, e))) => {
                eprintln!("sim --dump: --core {c:?} is not a core id: {e}");
                return ExitCode::from(2);
            }
        };
        return dump(&file, core);
    }
    if let Some(range) = get("--sweep") {
        let (a, b) = match parse_sweep(&range) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sim --sweep {range:?}: {e}");
                return ExitCode::from(2);
            }
        };
        let t0 = std::time::Instant::now();
        for seed in a..b {
            let cfg = Swarm::from_seed(seed);
            let o = world::run(&cfg, mux, false);
            if !o.violations.is_empty() {
                println!("{cfg}\n{o}");
                for v in &o.violations {
                    println!("VIOLATION {v}");
                }
                println!("reproduce: cargo run --release -p proto-core --features sim --example sim -- --seed {seed}");
                return ExitCode::FAILURE;
            }
        }
        println!("{} seeds passed in {:.1?}", b - a, t0.elapsed());
        return ExitCode::SUCCESS;
    }
    let Some(seed) = get("--seed").and_then(|s| s.parse::<u64>().ok()) else {
        return usage();
    };
    let mut cfg = if args.iter().any(|a| a == "--hour") {
        Swarm::hour(seed)
    } else {
        Swarm::from_seed(seed)
    };
    if let Some(h) = get("--hosts").and_then(|s| s.parse().ok()) {
        cfg.hosts = h;
    }
    if let Some(s) = get("--secs").and_then(|s| s.parse().ok()) {
        cfg.chaos = Duration::from_secs(s);
    }
    let file = get("--trace");
    println!("{cfg}");
    let t0 = std::time::Instant::now();
    let o = world::run(&cfg, mux, file.is_some());
    let wall = t0.elapsed();
    println!("{o}");
    println!("wall time         {wall:.2?}");
    if let (Some(f), Some(bytes)) = (&file, &o.trace) {
        if let Err(e) = std::fs::write(f, bytes) {
            eprintln!("cannot write {f}: {e}");
            return ExitCode::FAILURE;
        }
        println!("trace written to  {f} ({} bytes)", bytes.len());
    }
    if o.violations.is_empty() {
        println!("invariants        all held");
        ExitCode::SUCCESS
    } else {
        for v in &o.violations {
            println!("VIOLATION {v}");
        }
        println!(
            "reproduce: cargo run --release -p proto-core --features sim --example sim -- --seed {seed}"
        );
        ExitCode::FAILURE
    }
}

/// `A..B`: the seeds `A` to `B - 1`. Both decimal `u64`s, `A < B` (an
/// empty or reversed range runs nothing, which would read as a pass).
fn parse_sweep(range: &str) -> Result<(u64, u64), String> {
    let (a, b) = range
        .split_once("..")
        .ok_or_else(|| String::from("expected A..B (seeds A to B-1)"))?;
    let num = |s: &str| {
        s.parse::<u64>()
            .map_err(|e| format!("{s:?} is not a seed (0 to {}): {e}", u64::MAX))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a >= b {
        return Err(format!(
            "the range {a}..{b} has no seeds: A..B runs seeds A to B-1, so A must be below B"
        ));
    }
    Ok((a, b))
}

/// Prints records one per line (all, or one core's): time, tag, fields,
/// payload length and its first bytes. Step through a run with a pager.
fn dump(file: &str, core: Option<u64>) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let records = match trace::parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (i, r) in records.iter().enumerate() {
        let is_core = r.tag >= trace::tag::CORE_NEW;
        if core.is_some_and(|c| !is_core || r.field(0) != c) {
            continue;
        }
        let head: String = r
            .payload
            .iter()
            .take(24)
            .map(|b| format!("{b:02x}"))
            .collect();
        let text = if r.tag == trace::tag::NOTE {
            String::from_utf8_lossy(r.payload).into_owned()
        } else {
            head
        };
        let shown = writeln!(
            out,
            "{i:>8} {:>14.6}s {:<22} {:?} [{}] {}",
            r.time as f64 / 1e9,
            trace::tag_name(r.tag),
            r.fields,
            r.payload.len(),
            text
        );
        if shown.is_err() {
            break; // the pager quit
        }
    }
    ExitCode::SUCCESS
}

fn replay(file: &str) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let records = match trace::parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(r) = records
        .iter()
        .find(|r| r.tag == trace::tag::NOTE && r.field(0) == 0)
    {
        println!("{}", String::from_utf8_lossy(r.payload));
    }
    // An adapter's recording (`WEFT_RECORD_DIR`) carries the config its
    // connection ran with; replay rebuilds exactly that one.
    let adapter = match sim_core::recorded_mux_config(&records) {
        None => None,
        Some(Ok(cfg)) => {
            println!(
                "adapter recording: {}",
                config_text::encode_mux_config(&cfg)
            );
            Some(cfg)
        }
        Some(Err(e)) => {
            eprintln!("{file}: cannot rebuild the recorded mux config: {e}");
            return ExitCode::FAILURE;
        }
    };
    let make = |role: Role, now: Instant| match &adapter {
        // `recorded_mux_config` validated it, as `Connection::new` does.
        Some(cfg) => Connection::new(cfg.clone(), side(role), now).expect("validated config"),
        None => mux(role, now),
    };
    let cores = match driver::try_cores_in(&records) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{file}: cannot replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut bad = 0;
    let mut checked = 0;
    for (id, host, _) in &cores {
        let rep = match driver::replay(&records, *id, make) {
            Ok(rep) => rep,
            Err(e) => {
                eprintln!("{file}: cannot replay core {id}: {e}");
                return ExitCode::FAILURE;
            }
        };
        checked += rep.records;
        if let Some((at, what)) = &rep.mismatch {
            bad += 1;
            println!(
                "core {id} ({:?} on host {host}): MISMATCH at its record {at}: {what}",
                rep.role
            );
        }
    }
    println!(
        "replayed {} cores ({} of the trace's {} records): {}",
        cores.len(),
        checked,
        records.len(),
        if bad == 0 {
            "all outputs match"
        } else {
            "MISMATCH"
        }
    );
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
