//! A session server with a browser demo page.
//!
//! ```sh
//! cargo run -p weft-session --example session -- --listen 127.0.0.1:8080 --store /tmp/weft-sessions
//! ```
//!
//! Open `http://127.0.0.1:8080/`. `--redis redis://127.0.0.1/` keeps
//! sessions in Redis instead (several servers then share them). Shuts down
//! gracefully on SIGTERM, Ctrl-C or a `shutdown` line on stdin.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use weft_session::store::{RedbStore, RedisStore, SessionStore};
use weft_session::{
    BoxFuture, Connection, Handler, HandlerError, Incoming, Payload, Server, ServerOptions,
};

struct Demo;

fn text(p: &Payload) -> String {
    String::from_utf8_lossy(&p.data).into_owned()
}

fn user_of(conn: &Connection) -> Option<String> {
    let info = conn.session()?.info?;
    let v: serde_json::Value = serde_json::from_slice(&info).ok()?;
    v.get("user")?.as_str().map(str::to_owned)
}

impl Handler for Demo {
    fn on_signal(&self, conn: Connection, signal: Incoming) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if &signal.name[..] == b"notify" {
                let _ = conn.signal("notified", signal.payload);
            }
        })
    }

    fn on_request(
        &self,
        conn: Connection,
        req: Incoming,
    ) -> BoxFuture<'static, Result<Payload, HandlerError>> {
        Box::pin(async move {
            let ok = || Payload::utf8("ok");
            match &req.name[..] {
                b"login" => {
                    let name = text(&req.payload);
                    if name.is_empty() || name.len() > 64 {
                        return Err(HandlerError::reply("BAD_NAME", "a name of 1 to 64 bytes"));
                    }
                    conn.close_session().await.map_err(HandlerError::internal)?;
                    let info = serde_json::json!({ "user": name }).to_string();
                    conn.create_session(Some(&info))
                        .await
                        .map_err(HandlerError::internal)?;
                    Ok(ok())
                }
                b"whoami" => match user_of(&conn) {
                    Some(user) => Ok(Payload::utf8(user)),
                    None => Err(HandlerError::reply("NO_SESSION", "log in first")),
                },
                b"echo" => Ok(req.payload),
                b"fail" => Err(HandlerError::reply("DEMO_ERROR", "asked to fail")),
                b"slow" => {
                    let ms: u64 = text(&req.payload).trim().parse().unwrap_or(1000);
                    tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
                    Ok(Payload::utf8("done"))
                }
                b"logout" => {
                    conn.close_session().await.map_err(HandlerError::internal)?;
                    Ok(ok())
                }
                _ => Err(HandlerError::reply("UNKNOWN", "no such request")),
            }
        })
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:8080".into());
    let store: Arc<dyn SessionStore> = match arg(&args, "--redis") {
        Some(url) => Arc::new(RedisStore::connect(&url, "weft-demo").await?),
        None => {
            let dir = arg(&args, "--store").unwrap_or_else(|| {
                std::env::temp_dir()
                    .join("weft-session-demo")
                    .to_string_lossy()
                    .into_owned()
            });
            Arc::new(RedbStore::open(&dir).await?)
        }
    };
    let server = Server::new(Demo, store, ServerOptions::default());
    server.add_file(
        "/",
        "text/html; charset=utf-8",
        &include_bytes!("../web/index.html")[..],
    );
    server.add_file(
        "/webwire.js",
        "text/javascript; charset=utf-8",
        &include_bytes!("../web/webwire.js")[..],
    );
    server.add_file(
        "/demo.js",
        "text/javascript; charset=utf-8",
        &include_bytes!("../web/demo.js")[..],
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);

    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve(listener).await }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            line = stdin.next_line() => match line {
                Ok(Some(l)) if l.trim() == "shutdown" => break,
                Ok(Some(_)) => {}
                // stdin closed: keep serving until a signal.
                _ => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                    break;
                }
            },
        }
    }
    println!("shutting down ({} handlers running)", server.in_flight());
    server.shutdown().await;
    println!("shutdown complete");
    serving.abort();
    Ok(())
}
