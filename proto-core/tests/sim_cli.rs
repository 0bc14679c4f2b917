//! The `sim` example as a user runs it: bad arguments and hostile trace
//! files end with a clear message and a non-zero exit, never a panic or a
//! bogus pass. Runs the example binary `cargo test` builds beside the test
//! binaries (`target/<profile>/examples/sim`).
#![cfg(feature = "sim")]

use proto_core::sim::trace::{tag, Trace};
use std::path::PathBuf;
use std::process::{Command, Output};

fn sim_binary() -> PathBuf {
    // target/<profile>/deps/sim_cli-<hash> -> target/<profile>/examples/sim
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir
        .join("examples")
        .join(format!("sim{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} missing: run `cargo test -p proto-core --features sim` (it builds the example)",
        bin.display()
    );
    bin
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(sim_binary()).args(args).output().unwrap();
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn sweep_ranges_are_validated() {
    for (range, says) in [
        ("10..5", "has no seeds"),
        ("5..5", "has no seeds"),
        ("1..x", "\"x\" is not a seed"),
        ("-1..5", "\"-1\" is not a seed"),
        ("0..18446744073709551616", "is not a seed"),
        ("7", "expected A..B"),
    ] {
        let (code, out, err) = run(&["--sweep", range]);
        assert_eq!(code, Some(2), "--sweep {range}: {out}{err}");
        assert!(err.contains(says), "--sweep {range}: {err}");
        assert!(!out.contains("passed"), "--sweep {range}: {out}");
    }
    let (code, out, err) = run(&["--sweep", "4..5"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("1 seeds passed"), "{out}");
}

/// Writes `recs` as a trace file and runs `--replay` and `--dump` on it.
fn crafted(name: &str, recs: &[(u8, &[u64], &[u8])]) -> [(Option<i32>, String, String); 2] {
    let mut t = Trace::new(true);
    for (tg, f, p) in recs {
        t.record(*tg, 0, f, p);
    }
    let path = std::env::temp_dir().join(format!("weft-sim-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, t.bytes().unwrap()).unwrap();
    let p = path.to_str().unwrap();
    let r = [run(&["--replay", p]), run(&["--dump", p])];
    std::fs::remove_file(&path).unwrap();
    r
}

#[test]
fn hostile_traces_are_refused_without_a_panic() {
    let big = 1u64 << 32;
    for (name, recs, says) in [
        (
            "big-id",
            &[
                (tag::CORE_NEW, &[big, 0, 0][..], &b""[..]),
                (tag::CORE_TIMEOUT, &[big][..], &b""[..]),
            ][..],
            "core id 4294967296 does not fit in 32 bits",
        ),
        (
            "before-creation",
            &[
                (tag::CORE_TIMEOUT, &[3][..], &b""[..]),
                (tag::CORE_NEW, &[3, 0, 0][..], &b""[..]),
            ][..],
            "a record of core 3 before the record that creates it",
        ),
        (
            "created-twice",
            &[
                (tag::CORE_NEW, &[0, 0, 0][..], &b""[..]),
                (tag::CORE_NEW, &[0, 0, 1][..], &b""[..]),
            ][..],
            "core 0 is created a second time",
        ),
    ] {
        let [(code, out, err), (dcode, dout, derr)] = crafted(name, recs);
        // A panic exits with 101.
        assert_eq!(code, Some(1), "{name}: {out}{err}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(!out.contains("all outputs match"), "{name}: {out}");
        assert_eq!(dcode, Some(0), "{name}: --dump {dout}{derr}");
        assert_eq!(dout.lines().count(), recs.len(), "{name}: {dout}");
    }
}

#[test]
fn dump_refuses_a_core_that_is_not_a_number() {
    let (code, _, err) = run(&["--dump", "/nonexistent", "--core", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a core id"), "{err}");
}
