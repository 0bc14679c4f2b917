//! A WebSocket connection's task: whole messages in binary frames between
//! the socket and the connection's machine.

use super::connection::{Machine, Spawner};
use super::ServerInner;
use crate::lock;
use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use proto_core::session::{CloseReason, ServerConnection, ServerEvent};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

/// What one pass over the machine produced.
struct Drained {
    out: Vec<Bytes>,
    events: Vec<ServerEvent>,
    deadline: Option<proto_core::time::Instant>,
    /// Nothing more will be queued; what was drained is the last.
    closed: bool,
}

fn drain(m: &Mutex<ServerConnection>) -> Drained {
    let mut m = lock(m);
    let mut out = Vec::new();
    while let Some(msg) = m.poll_message() {
        out.push(msg);
    }
    let mut events = Vec::new();
    while let Some(ev) = m.poll_event() {
        events.push(ev);
    }
    Drained {
        out,
        events,
        deadline: m.poll_timeout(),
        closed: m.is_closed(),
    }
}

impl ServerInner {
    /// Runs one WebSocket connection to its end.
    pub(crate) async fn run_websocket<S>(
        self: Arc<Self>,
        id: u64,
        ws: WebSocketStream<S>,
        remote: Option<SocketAddr>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let machine = ServerConnection::new(self.clock.now(), self.options.connection.clone());
        let spawn: Spawner = Arc::new(|f| {
            tokio::spawn(f);
        });
        let conn = self.open(
            id,
            Machine::Messages(Box::new(Mutex::new(machine))),
            remote,
            spawn,
        );
        let Some(m) = conn.messages() else {
            return;
        };
        let input = |f: &mut dyn FnMut(&mut ServerConnection, proto_core::time::Instant)| {
            let now = self.clock.now();
            f(&mut lock(m), now);
        };
        let (mut sink, mut stream) = ws.split();
        // One timer for the connection, moved when the deadline moves.
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        let mut armed = None;
        loop {
            // A wake-up queued by a command is stale now: this pass drains
            // everything (and a spare pass would poll the socket for nothing).
            let _ = conn.woken().now_or_never();
            let drained = drain(m);
            let wrote = !drained.out.is_empty();
            let mut failed = false;
            for msg in drained.out {
                if sink.feed(WsMessage::Binary(msg)).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if wrote && !failed && sink.flush().await.is_err() {
                failed = true;
            }
            let dispatched = !drained.events.is_empty();
            for ev in drained.events {
                conn.dispatch(ev);
            }
            if failed {
                input(&mut |m, now| m.handle_transport_closed(now));
            }
            if drained.closed {
                if wrote {
                    // The last messages went out: the next pass ends it.
                    continue;
                }
                break;
            }
            if dispatched && lock(m).has_messages() {
                // A handler answered at once: send it before waiting.
                continue;
            }
            let deadline = drained.deadline.map(|d| self.clock.deadline(d));
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(at);
                }
                armed = deadline;
            }
            tokio::select! {
                _ = conn.woken() => {}
                msg = stream.next() => match msg {
                    Some(Ok(WsMessage::Binary(data))) => {
                        let mut data = Some(data);
                        input(&mut |m, now| {
                            if let Some(d) = data.take() {
                                let _ = m.handle_message(now, d);
                            }
                        });
                    }
                    Some(Ok(WsMessage::Text(_))) => {
                        input(&mut |m, now| m.close(now, CloseReason::TextFrame));
                    }
                    // tungstenite queues the pong; a flush sends it.
                    Some(Ok(WsMessage::Ping(_))) => {
                        let _ = sink.flush().await;
                    }
                    Some(Ok(WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => {
                        input(&mut |m, now| m.handle_transport_closed(now));
                    }
                },
                _ = &mut sleep, if armed.is_some() => {
                    armed = None;
                    input(&mut |m, now| m.handle_timeout(now));
                }
            }
        }
        let _ = sink.close().await;
        self.finish(&conn);
    }
}
