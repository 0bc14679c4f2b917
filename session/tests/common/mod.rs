//! A test application and a raw peer that speaks the wire by hand.
#![allow(dead_code)]

pub mod redis_server;

use bytes::Bytes;
use proto_core::session::{Message, Payload, RequestId};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use weft_session::store::MemoryStore;
use weft_session::{BoxFuture, Connection, Handler, HandlerError, Incoming, Server, ServerOptions};

/// Counts what ran; `hold` requests wait until `release` is notified.
#[derive(Default)]
pub struct App {
    pub signals: AtomicUsize,
    pub requests: AtomicUsize,
    pub release: Notify,
}

pub fn utf8(s: &str) -> Payload {
    Payload::utf8(Bytes::copy_from_slice(s.as_bytes()))
}

pub struct Shared(pub Arc<App>);

impl Handler for Shared {
    fn on_signal(&self, conn: Connection, signal: Incoming) -> BoxFuture<'static, ()> {
        let app = self.0.clone();
        Box::pin(async move {
            app.signals.fetch_add(1, Ordering::SeqCst);
            match &signal.name[..] {
                b"ping" => {
                    let _ = conn.signal("pong", signal.payload);
                }
                b"hold" => app.release.notified().await,
                _ => {}
            }
        })
    }

    fn on_request(
        &self,
        conn: Connection,
        req: Incoming,
    ) -> BoxFuture<'static, Result<Payload, HandlerError>> {
        let app = self.0.clone();
        Box::pin(async move {
            app.requests.fetch_add(1, Ordering::SeqCst);
            match &req.name[..] {
                b"echo" => Ok(req.payload),
                b"fail" => Err(HandlerError::reply("E_TEST", "failed on purpose")),
                b"internal" => Err(HandlerError::internal("a secret detail")),
                b"panic" => panic!("handler panicked on purpose"),
                b"hold" => {
                    app.release.notified().await;
                    Ok(utf8("released"))
                }
                b"login" => {
                    let info = format!(
                        "{{\"user\":\"{}\"}}",
                        String::from_utf8_lossy(&req.payload.data)
                    );
                    conn.create_session(Some(&info))
                        .await
                        .map_err(HandlerError::internal)?;
                    Ok(utf8("ok"))
                }
                b"logout" => {
                    conn.close_session().await.map_err(HandlerError::internal)?;
                    Ok(utf8("ok"))
                }
                b"sleep" => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(utf8("slept"))
                }
                _ => Err(HandlerError::reply("UNKNOWN", "no such request")),
            }
        })
    }
}

pub fn server_with(options: ServerOptions) -> (Server, Arc<App>, Arc<MemoryStore>) {
    let app = Arc::new(App::default());
    let store = Arc::new(MemoryStore::default());
    let server = Server::new(Shared(app.clone()), store.clone(), options);
    (server, app, store)
}

/// Serves WebSocket sessions on a loopback port; returns `ws://.../ws`.
pub async fn listen(server: &Server) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener).await });
    format!("ws://{addr}/ws")
}

/// A peer that writes and reads length-prefixed messages by hand.
pub struct RawPeer<S> {
    pub io: S,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawPeer<S> {
    pub async fn send(&mut self, msg: &Message) {
        let mut body = Vec::new();
        msg.encode(&mut body).unwrap();
        self.send_raw(&body).await;
    }

    pub async fn send_raw(&mut self, body: &[u8]) {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.io.write_all(&frame).await.unwrap();
    }

    /// The next message, or `None` at the end of the stream.
    pub async fn recv(&mut self) -> Option<Message> {
        let mut len = [0u8; 4];
        self.io.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.io.read_exact(&mut body).await.ok()?;
        Some(Message::decode(Bytes::from(body)).expect("the server sent a valid message"))
    }

    /// Skips messages until one answers `id`.
    pub async fn reply_to(&mut self, id: RequestId) -> Option<Message> {
        loop {
            let m = self.recv().await?;
            let answers = match &m {
                Message::Reply { id: r, .. }
                | Message::ErrorReply { id: r, .. }
                | Message::Special { id: r, .. } => *r == id,
                _ => false,
            };
            if answers {
                return Some(m);
            }
        }
    }
}

/// A server connection on one end of an in-memory pipe; the raw peer on
/// the other.
pub fn pipe(server: &Server) -> RawPeer<tokio::io::DuplexStream> {
    let (a, b) = tokio::io::duplex(256 * 1024);
    let s = server.clone();
    tokio::spawn(async move { s.serve_stream(b, None).await });
    RawPeer { io: a }
}

pub fn request(id: u64, name: &str, payload: Payload) -> Message {
    Message::Request {
        id: RequestId(id.to_be_bytes()),
        name: Bytes::copy_from_slice(name.as_bytes()),
        payload,
    }
}
