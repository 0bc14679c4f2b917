//! HTTP on the server's listener: WebSocket upgrades on one path (HTTP 503
//! once shutdown began), the files added with `Server::add_file`, 404
//! otherwise.

use super::{Server, ServerInner};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming as Body;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

impl Server {
    /// Serves HTTP on `listener` until [`shutdown`](Self::shutdown) has
    /// finished: WebSocket sessions on
    /// [`websocket_path`](super::ServerOptions::websocket_path), and the
    /// files added with [`add_file`](Self::add_file).
    pub async fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (tcp, addr) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let inner = self.inner.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let inner = inner.clone();
                    async move { Ok::<_, Infallible>(route(inner, req, addr)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    }

    /// Runs one session connection on a WebSocket the caller upgraded
    /// itself (with its own HTTP server).
    pub async fn serve_websocket<S>(&self, ws: WebSocketStream<S>, remote: Option<SocketAddr>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(id) = self.inner.admit() else {
            return;
        };
        self.inner.clone().run_websocket(id, ws, remote).await;
    }
}

/// tungstenite's read buffer, on both sides.
pub(crate) const READ_BUFFER: usize = 8 * 1024;

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn route(
    inner: Arc<ServerInner>,
    mut req: Request<Body>,
    addr: SocketAddr,
) -> Response<Full<Bytes>> {
    if req.uri().path() == inner.options.websocket_path {
        return upgrade(inner, &mut req, addr);
    }
    if req.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match inner.file(req.uri().path()) {
        Some((content_type, body)) => {
            let mut r = Response::new(Full::new(body));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        None => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn header_has(req: &Request<Body>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

fn upgrade(
    inner: Arc<ServerInner>,
    req: &mut Request<Body>,
    addr: SocketAddr,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET
        || !header_has(req, header::CONNECTION, "upgrade")
        || !header_has(req, header::UPGRADE, "websocket")
    {
        return plain(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade\n");
    }
    if req.headers().get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        let mut r = plain(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return plain(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key\n");
    };
    let accept = derive_accept_key(key.as_bytes());
    let Some(id) = inner.admit() else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down or full\n",
        );
    };
    let on_upgrade = hyper::upgrade::on(req);
    let max = inner.options.connection.max_message_size;
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        // tungstenite zero-fills its whole read buffer before each read:
        // 8 KiB instead of its 128 KiB default is most of a small
        // request's cost saved (BENCHMARKS.md, sessions).
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        inner.run_websocket(id, ws, Some(addr)).await;
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}
