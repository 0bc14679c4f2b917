//! The demo example, compiled in: with no arguments it runs encrypted and
//! each side is granted the other's name; `--insecure` is the opt-out.

#[allow(dead_code)]
#[path = "../examples/demo.rs"]
mod demo;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn no_arguments_means_encrypted() {
    let o = demo::options(args(&[]), None).unwrap().unwrap();
    assert!(o.secure);
    assert_eq!(o.bytes_per_flow, demo::BYTES_PER_FLOW);
    let o = demo::options(args(&["--insecure"]), Some("20000".into()))
        .unwrap()
        .unwrap();
    assert_eq!(
        o,
        demo::Options {
            secure: false,
            bytes_per_flow: 20000
        }
    );
    assert!(demo::options(args(&["--bogus"]), None).is_err());
    assert!(demo::options(args(&[]), Some("12".into())).is_err());
}

/// Both modes run to the end, small; the secure one fails unless each
/// side was granted the other's `demo:` name (checked inside `demo`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_in_both_modes() {
    for secure in [true, false] {
        demo::demo(secure, 64 * 1024).await.unwrap();
    }
}
