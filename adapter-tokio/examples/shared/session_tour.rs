//! Sessions on loopback: a webwire-style server, a client that logs in
//! (a session is created), a second client that restores it, a signal, an
//! error reply, and a graceful shutdown that lets a running request finish.

use std::sync::Arc;
use std::time::Duration;
use weft_session::store::MemoryStore;
use weft_session::{
    BoxFuture, Client, ClientError, ClientEvent, ClientOptions, Connection, Handler, HandlerError,
    Incoming, Payload, RequestError, Server, ServerOptions,
};

struct Tour;

impl Handler for Tour {
    fn on_signal(&self, conn: Connection, signal: Incoming) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = conn.signal("pong", signal.payload);
        })
    }

    fn on_request(
        &self,
        conn: Connection,
        req: Incoming,
    ) -> BoxFuture<'static, Result<Payload, HandlerError>> {
        Box::pin(async move {
            match &req.name[..] {
                b"login" => {
                    let user = String::from_utf8_lossy(&req.payload.data).into_owned();
                    let info = format!("{{\"user\":{user:?}}}");
                    conn.create_session(Some(&info))
                        .await
                        .map_err(HandlerError::internal)?;
                    Ok(Payload::utf8("welcome"))
                }
                b"slow" => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(Payload::utf8("finished"))
                }
                b"echo" => Ok(req.payload),
                _ => Err(HandlerError::reply("UNKNOWN", "no such request")),
            }
        })
    }
}

/// What the tour saw.
pub struct SessionTour {
    /// The first 8 characters of the session key.
    pub key_prefix: String,
    /// Whether the second client restored the same session.
    pub restored: bool,
    /// Connections holding the session once both clients were in.
    pub holders: usize,
    /// The signal's answer.
    pub pong: String,
    /// The error code an unknown request got.
    pub error_code: String,
    /// The running request's reply, received during shutdown.
    pub in_flight_reply: String,
    /// What a request sent during shutdown got.
    pub late_request: String,
}

async fn until<T>(
    client: &Client,
    what: &str,
    f: impl Fn(ClientEvent) -> Option<T>,
) -> Result<T, String> {
    let wait = async {
        while let Some(ev) = client.next_event().await {
            if let Some(t) = f(ev) {
                return Ok(t);
            }
        }
        Err("the client stopped".to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| format!("no {what} within 10 s"))?
}

/// Runs the tour.
pub async fn tour() -> Result<SessionTour, Box<dyn std::error::Error + Send + Sync>> {
    let server = Server::new(Tour, Arc::new(MemoryStore::new()), ServerOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/ws", listener.local_addr()?);
    tokio::spawn({
        let server = server.clone();
        async move { server.serve(listener).await }
    });

    let alice = Client::connect(ClientOptions::new(url.clone()));
    alice.request("login", Payload::utf8("alice")).await?;
    let created = until(&alice, "session created", |e| match e {
        ClientEvent::SessionCreated(s) => Some(s),
        _ => None,
    })
    .await?;

    let phone = Client::with_session(ClientOptions::new(url.clone()), Some(created.clone()));
    let restored = until(&phone, "restore outcome", |e| match e {
        ClientEvent::Restored(s) => Some(Ok(s)),
        ClientEvent::RestoreFailed(e) => Some(Err(e)),
        _ => None,
    })
    .await?;
    let holders = server.session_connections(&created.key).len();

    phone.signal("ping", Payload::utf8("hello"))?;
    let pong = until(&phone, "signal", |e| match e {
        ClientEvent::Signal(s) => Some(String::from_utf8_lossy(&s.payload.data).into_owned()),
        _ => None,
    })
    .await?;
    let error_code = match alice.request("nope", Payload::utf8("")).await {
        Err(ClientError::Request(RequestError::Error { code, .. })) => {
            String::from_utf8_lossy(&code).into_owned()
        }
        other => format!("{other:?}"),
    };

    let running = tokio::spawn({
        let alice = alice.clone();
        async move { alice.request("slow", Payload::utf8("")).await }
    });
    while server.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let stopping = tokio::spawn({
        let server = server.clone();
        async move { server.shutdown().await }
    });
    while !server.is_shutting_down() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let late_request = match phone.request("echo", Payload::utf8("late")).await {
        Err(ClientError::Request(RequestError::Shutdown)) => "shutdown reply".to_string(),
        other => format!("{other:?}"),
    };
    let in_flight_reply = match running.await? {
        Ok(p) => String::from_utf8_lossy(&p.data).into_owned(),
        Err(e) => e.to_string(),
    };
    stopping.await?;

    Ok(SessionTour {
        key_prefix: created.key.as_str()[..8].to_string(),
        restored: restored.map(|s| s.key == created.key).unwrap_or(false),
        holders,
        pong,
        error_code,
        in_flight_reply,
        late_request,
    })
}
