//! A real connection recorded with `WEFT_RECORD_DIR` replays offline into a
//! fresh core with byte-identical outputs and the same bytes delivered to
//! every read.

use adapter_core::proto_core::mux::Side;
use adapter_core::proto_core::mux::{config_text, sim_core, Config, Connection as Core};
use adapter_core::proto_core::sim::{driver, trace, Role};
use adapter_core::secure::{suite_credentials, Addresses, Suite};
use adapter_tokio::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// One test in this binary: `WEFT_RECORD_DIR` is process-wide, so the
// plaintext and the encrypted runs take turns.
#[tokio::test(flavor = "current_thread")]
async fn recorded_connections_replay_byte_for_byte() {
    // A config far from the default: small DATA frames and transmits, no
    // keepalive. The recording carries it, and replay rebuilds it from
    // there, as the CLI's `--replay` does.
    let mut small = Config::default();
    small.send_chunk = 1000;
    small.max_transmit = 4096;
    small.keepalive_interval = None;
    small.drain_timeout = std::time::Duration::from_millis(7_500);
    small.max_concurrent_flows = 100;
    record_and_replay(None, small).await;
    // On a secure connection the log holds the mux's plaintext inputs and
    // outputs (records are opened before and sealed after), so the same
    // replay reproduces it without keys, under either suite.
    for suite in Suite::ALL {
        record_and_replay(Some(suite), Config::default()).await;
    }
}

/// Replays core `id` the way the CLI's `--replay` does: with the config the
/// recording names.
fn replay_as_cli(recs: &[trace::Record<'_>], id: u32) -> driver::ReplayReport {
    let cfg = sim_core::recorded_mux_config(recs)
        .expect("an adapter recording names its config")
        .expect("the recorded config decodes");
    driver::replay(recs, id, |role, now| {
        Core::new(cfg.clone(), side(role), now).unwrap()
    })
    .unwrap()
}

fn side(role: Role) -> Side {
    match role {
        Role::Dialer => Side::Dialer,
        Role::Acceptor => Side::Acceptor,
    }
}

async fn record_and_replay(suite: Option<Suite>, config: Config) {
    let secure = suite.is_some();
    let default = config_text::encode_mux_config(&Config::default());
    let custom = config_text::encode_mux_config(&config) != default;
    let dir =
        std::env::temp_dir().join(format!("weft-record-test-{}-{suite:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_var("WEFT_RECORD_DIR", &dir);

    let (a, b) = tokio::io::duplex(16 * 1024);
    let (client, server) = if let Some(suite) = suite {
        let addrs = |l: &str, r: &str| Addresses {
            local: l.into(),
            remote: r.into(),
        };
        let cfg2 = config.clone();
        let server = tokio::spawn(async move {
            let creds = suite_credentials(Side::Acceptor, suite);
            Connection::accept_with(b, addrs("s", "c"), cfg2, &creds).await
        });
        let creds = suite_credentials(Side::Dialer, suite);
        let client = Connection::connect_with(a, addrs("c", "s"), config.clone(), &creds)
            .await
            .unwrap();
        (client, server.await.unwrap().unwrap())
    } else {
        (
            Connection::client(a, config.clone()).unwrap(),
            Connection::server(b, config.clone()).unwrap(),
        )
    };
    assert_eq!(client.security().is_some(), secure);
    assert_eq!(client.security().map(|s| s.suite()), suite);
    let echo = tokio::spawn(async move {
        let mut n = 0;
        while let Ok(mut f) = server.accept_flow().await {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).await.unwrap();
            f.write_all(&buf).await.unwrap();
            f.shutdown().await.unwrap();
            n += 1;
        }
        n
    });
    for i in 0..5u32 {
        let f = client.open_flow().await.unwrap();
        let data: Vec<u8> = (0..(i * 70_000 + 10)).map(|k| (k * 7 + i) as u8).collect();
        let (mut r, mut w) = f.split();
        let writer = tokio::spawn(async move {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
            data
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, writer.await.unwrap());
    }
    client.ping().await.unwrap();
    client.go_away(0);
    client.closed().await;
    assert_eq!(echo.await.unwrap(), 5);
    drop(client);
    std::env::remove_var("WEFT_RECORD_DIR");

    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let recs = trace::parse(&bytes).unwrap();
        let cores = driver::cores_in(&recs);
        assert_eq!(cores.len(), 1);
        let recorded = sim_core::recorded_mux_config(&recs).unwrap().unwrap();
        // The adapter gave the connection the process default budget.
        let mut expected = config.clone();
        expected.budget = Some(adapter_core::default_budget());
        assert_eq!(
            config_text::encode_mux_config(&recorded),
            config_text::encode_mux_config(&expected),
            "the recording names the connection's own config"
        );
        let rep = replay_as_cli(&recs, cores[0].0);
        assert_eq!(rep.mismatch, None, "{}", f.display());
        assert!(rep.inputs > 20, "{}: {} inputs", f.display(), rep.inputs);
        if custom {
            // The config matters: the default one does not reproduce the run.
            let rep = driver::replay(&recs, cores[0].0, |role, now| {
                Core::new(Config::default(), side(role), now).unwrap()
            })
            .unwrap();
            assert!(rep.mismatch.is_some(), "{}", f.display());
        }
        // A tampered input is noticed.
        let first_input = recs
            .iter()
            .position(|r| r.tag == trace::tag::CORE_INPUT && r.payload.len() > 8)
            .unwrap();
        let off = recs[first_input].payload.as_ptr() as usize - bytes.as_ptr() as usize;
        let mut bad = bytes.clone();
        bad[off + 3] ^= 0x40;
        let rep = replay_as_cli(&trace::parse(&bad).unwrap(), cores[0].0);
        assert!(rep.mismatch.is_some(), "{}", f.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
