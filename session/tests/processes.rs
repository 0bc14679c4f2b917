//! Real server processes (the `session` example): two of them sharing one
//! Redis, where a client restores on the second what it created on the
//! first; and one restarted on its redb directory.

mod common;

use common::redis_server::RedisServer;
use common::utf8;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use weft_session::{Client, ClientEvent, ClientOptions};

/// The `session` example, which `cargo test` builds next to the tests.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("session");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p weft-session --example session`",
        path.display()
    );
    path
}

/// A server process, killed on drop.
struct Process {
    child: Child,
    url: String,
}

impl Process {
    fn start(args: &[&str]) -> Process {
        let mut child = Command::new(example())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the session example");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server exited before listening")
                .unwrap();
            if let Some(addr) = line.strip_prefix("listening on http://") {
                break addr.to_owned();
            }
        };
        // Keep reading its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Process {
            child,
            url: format!("ws://{addr}/ws"),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn next_session_event(client: &Client) -> ClientEvent {
    let wait = async {
        loop {
            let e = client.next_event().await.expect("client stopped");
            if matches!(
                e,
                ClientEvent::SessionCreated(_)
                    | ClientEvent::Restored(_)
                    | ClientEvent::RestoreFailed(_)
            ) {
                return e;
            }
        }
    };
    // Only turns a hang into a failure.
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("no session event")
}

#[tokio::test]
async fn two_server_processes_share_sessions_through_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = Process::start(&["--redis", &url]);
    let b = Process::start(&["--redis", &url]);

    let on_a = Client::connect(ClientOptions::new(a.url.clone()));
    on_a.request("login", utf8("grace")).await.unwrap();
    let ClientEvent::SessionCreated(created) = next_session_event(&on_a).await else {
        panic!("no session created on A");
    };

    let on_b = Client::with_session(ClientOptions::new(b.url.clone()), Some(created.clone()));
    let ev = next_session_event(&on_b).await;
    let ClientEvent::Restored(restored) = ev else {
        panic!("B could not restore A's session: {ev:?}");
    };
    assert_eq!(restored.key, created.key);
    assert_eq!(
        &on_b.request("whoami", utf8("")).await.unwrap().data[..],
        b"grace"
    );

    // Logging out on B closes it for A's store too: a new client on A
    // cannot restore it.
    on_b.request("logout", utf8("")).await.unwrap();
    let again = Client::with_session(ClientOptions::new(a.url.clone()), Some(created));
    let ev = next_session_event(&again).await;
    assert!(
        matches!(
            ev,
            ClientEvent::RestoreFailed(weft_session::RequestError::SessionNotFound)
        ),
        "{ev:?}"
    );
}

#[tokio::test]
async fn a_restarted_server_restores_from_its_redb_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap().to_owned();
    let created = {
        let server = Process::start(&["--store", &store]);
        let client = Client::connect(ClientOptions::new(server.url.clone()));
        client.request("login", utf8("hopper")).await.unwrap();
        let ClientEvent::SessionCreated(created) = next_session_event(&client).await else {
            panic!("no session created");
        };
        created
        // The process is killed here (no graceful shutdown).
    };
    let server = Process::start(&["--store", &store]);
    let client = Client::with_session(
        ClientOptions::new(server.url.clone()),
        Some(created.clone()),
    );
    let ev = next_session_event(&client).await;
    let ClientEvent::Restored(restored) = ev else {
        panic!("not restored after a restart: {ev:?}");
    };
    assert_eq!(restored.key, created.key);
    assert_eq!(
        &client.request("whoami", utf8("")).await.unwrap().data[..],
        b"hopper"
    );
}
