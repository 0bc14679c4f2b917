//! lonet: the virtual network's host and registry API over real loopback
//! TCP (feature `lonet`), so a scenario written against named hosts runs
//! across processes on one machine. Modelled on go123's `xnet/lonet`.
//!
//! The registry is a text file every process appends to (one `write` per
//! line, `O_APPEND`) and reads whole: `host <name> <token>`,
//! `listen <name> <port> <real addr> <token>`, `unlisten <name> <port>
//! <token>`, `down <name> <token>`, `registry-down`. The first claim of a
//! name or a port wins, so two processes racing for one name agree on the
//! winner without a lock. Virtual ports are given out lowest-first per
//! host, and an accepted connection keeps the listening port, as in
//! `proto_core::sim::Net`. A dial sends one handshake line
//! (`lonet1 <from-host>:<from-port> <to-port>`) so the acceptor knows the
//! dialer's virtual address; the acceptor answers `ok`.
//!
//! Errors are `proto_core::sim::NetError`s, the same as the simulator's.

use adapter_core::proto_core::sim::NetError;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Longest handshake line accepted (hostile peers on loopback included).
const MAX_HANDSHAKE: usize = 512;

static TOKENS: AtomicU64 = AtomicU64::new(0);

fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}.{}.{nanos}",
        std::process::id(),
        TOKENS.fetch_add(1, Ordering::Relaxed)
    )
}

/// A network: the registry file shared by every process on it.
#[derive(Debug, Clone)]
pub struct LoNet {
    path: PathBuf,
}

/// The registry as read from the file.
#[derive(Debug, Default)]
struct View {
    down: bool,
    /// name -> (token, up)
    hosts: Vec<(String, String, bool)>,
    /// (name, port) -> (real address, token)
    listeners: Vec<(String, u16, String, String)>,
}

impl View {
    fn host(&self, name: &str) -> Option<&(String, String, bool)> {
        self.hosts.iter().find(|h| h.0 == name)
    }

    fn listener(&self, name: &str, port: u16) -> Option<&(String, u16, String, String)> {
        self.listeners.iter().find(|l| l.0 == name && l.1 == port)
    }
}

impl LoNet {
    /// Joins (or creates) the network whose registry is `path`.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<LoNet> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.as_ref())?;
        Ok(LoNet {
            path: path.as_ref().to_path_buf(),
        })
    }

    fn append(&self, line: &str) -> Result<(), NetError> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|_| NetError::RegistryDown)?;
        // One write per line: appends of a few dozen bytes do not interleave.
        f.write_all(format!("{line}\n").as_bytes())
            .map_err(|_| NetError::RegistryDown)
    }

    fn view(&self) -> Result<View, NetError> {
        let text = std::fs::read_to_string(&self.path).map_err(|_| NetError::RegistryDown)?;
        let mut v = View::default();
        for line in text.lines() {
            let w: Vec<&str> = line.split(' ').collect();
            match w.as_slice() {
                ["registry-down"] => v.down = true,
                ["host", name, tok] if v.host(name).is_none() => {
                    v.hosts.push((name.to_string(), tok.to_string(), true));
                }
                ["down", name, tok] => {
                    if let Some(h) = v.hosts.iter_mut().find(|h| h.0 == *name && h.1 == *tok) {
                        h.2 = false;
                    }
                }
                ["listen", name, port, addr, tok] => {
                    if let Ok(p) = port.parse::<u16>() {
                        if v.listener(name, p).is_none() {
                            v.listeners.push((
                                name.to_string(),
                                p,
                                addr.to_string(),
                                tok.to_string(),
                            ));
                        }
                    }
                }
                ["unlisten", name, port, tok] => {
                    if let Ok(p) = port.parse::<u16>() {
                        v.listeners
                            .retain(|l| !(l.0 == *name && l.1 == p && l.3 == *tok));
                    }
                }
                _ => {} // torn or unknown lines are ignored
            }
        }
        Ok(v)
    }

    fn live_view(&self) -> Result<View, NetError> {
        let v = self.view()?;
        if v.down {
            return Err(NetError::RegistryDown);
        }
        Ok(v)
    }

    /// Announces a host: `HostDuplicate` if the name is taken (by any
    /// process), `RegistryDown` once the registry is closed.
    pub fn new_host(&self, name: &str) -> Result<LoHost, NetError> {
        if name.is_empty() || name.contains([':', ' ', '\n']) {
            return Err(NetError::InvalidAddress);
        }
        if self.live_view()?.host(name).is_some() {
            return Err(NetError::HostDuplicate);
        }
        let tok = token();
        self.append(&format!("host {name} {tok}"))?;
        // Another process may have announced the same name in between: the
        // first line wins.
        match self.live_view()?.host(name) {
            Some(h) if h.1 == tok => {}
            _ => return Err(NetError::HostDuplicate),
        }
        let (down, _) = watch::channel(false);
        Ok(LoHost {
            inner: Arc::new(HostInner {
                net: self.clone(),
                name: name.to_string(),
                token: tok,
                down,
                ports: Mutex::new(BTreeSet::new()),
            }),
        })
    }

    /// Whether `name` is a live host.
    pub fn query(&self, name: &str) -> Result<(), NetError> {
        match self.live_view()?.host(name) {
            Some(_) => Ok(()),
            None => Err(NetError::NoSuchHost),
        }
    }

    /// Closes the registry for every process: announcing and dialing by
    /// name fail with `RegistryDown`; connections stay up.
    pub fn close_registry(&self) -> Result<(), NetError> {
        self.append("registry-down")
    }
}

#[derive(Debug)]
struct HostInner {
    net: LoNet,
    name: String,
    token: String,
    down: watch::Sender<bool>,
    /// Virtual ports in use by this process's sockets on the host.
    ports: Mutex<BTreeSet<u16>>,
}

impl HostInner {
    fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    fn take_port(&self, want: u16, view: &View) -> Result<u16, NetError> {
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let taken = |p: u16| ports.contains(&p) || view.listener(&self.name, p).is_some();
        let p = if want == 0 {
            (1..=u16::MAX)
                .find(|&p| !taken(p))
                .ok_or(NetError::AddressInUse)?
        } else if taken(want) {
            return Err(NetError::AddressInUse);
        } else {
            want
        };
        ports.insert(p);
        Ok(p)
    }

    fn free_port(&self, p: u16) {
        self.ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&p);
    }
}

/// A host on a [`LoNet`], owned by this process.
#[derive(Debug, Clone)]
pub struct LoHost {
    inner: Arc<HostInner>,
}

impl LoHost {
    /// The host's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Listens on `laddr` (`""`, `":port"` or `"name:port"`; port 0 picks
    /// the lowest free one).
    pub async fn listen(&self, laddr: &str) -> Result<LoListener, NetError> {
        let h = &self.inner;
        if h.is_down() {
            return Err(NetError::HostDown);
        }
        let (name, port) = match laddr.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().map_err(|_| NetError::InvalidAddress)?),
            None if laddr.is_empty() => ("", 0),
            None => return Err(NetError::InvalidAddress),
        };
        if !name.is_empty() && name != h.name {
            return Err(NetError::AddressNotListening);
        }
        let view = h.net.live_view()?;
        let port = h.take_port(port, &view)?;
        let tcp = match TcpListener::bind("127.0.0.1:0").await {
            Ok(t) => t,
            Err(_) => {
                h.free_port(port);
                return Err(NetError::AddressInUse);
            }
        };
        let real = tcp.local_addr().map_err(|_| NetError::AddressInUse)?;
        let tok = token();
        h.net
            .append(&format!("listen {} {port} {real} {tok}", h.name))?;
        match h.net.live_view()?.listener(&h.name, port) {
            Some(l) if l.3 == tok => {}
            _ => {
                h.free_port(port);
                return Err(NetError::AddressInUse);
            }
        }
        let (closed, _) = watch::channel(false);
        Ok(LoListener {
            host: self.clone(),
            port,
            token: tok,
            tcp,
            closed,
        })
    }

    /// Dials `raddr` (`name:port`).
    pub async fn dial(&self, raddr: &str) -> Result<LoConn, NetError> {
        let h = &self.inner;
        if h.is_down() {
            return Err(NetError::HostDown);
        }
        let (name, port) = raddr.rsplit_once(':').ok_or(NetError::InvalidAddress)?;
        let port: u16 = port.parse().map_err(|_| NetError::InvalidAddress)?;
        let view = h.net.live_view()?;
        let host = view.host(name).ok_or(NetError::NoSuchHost)?;
        if !host.2 {
            return Err(NetError::ConnectionRefused);
        }
        let real = view
            .listener(name, port)
            .map(|l| l.2.clone())
            .ok_or(NetError::ConnectionRefused)?;
        let local = h.take_port(0, &view)?;
        let guard = PortGuard {
            host: self.inner.clone(),
            port: local,
        };
        let mut tcp = TcpStream::connect(&real)
            .await
            .map_err(|_| NetError::ConnectionRefused)?;
        let _ = tcp.set_nodelay(true);
        tcp.write_all(format!("lonet1 {}:{local} {port}\n", h.name).as_bytes())
            .await
            .map_err(|_| NetError::ConnectionRefused)?;
        match read_line(&mut tcp).await {
            Some(reply) if reply == "ok" => {}
            _ => return Err(NetError::ConnectionRefused),
        }
        Ok(LoConn {
            stream: tcp,
            local: format!("{}:{local}", h.name),
            remote: format!("{name}:{port}"),
            _port: Some(guard),
        })
    }

    /// Closes the host for every process: its listeners stop (pending
    /// accepts fail with `HostDown`), others' dials to it are refused.
    pub fn close(&self) -> Result<(), NetError> {
        let h = &self.inner;
        if h.is_down() {
            return Err(NetError::HostDown);
        }
        h.down.send_replace(true);
        h.net.append(&format!("down {} {}", h.name, h.token))
    }
}

#[derive(Debug)]
struct PortGuard {
    host: Arc<HostInner>,
    port: u16,
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        self.host.free_port(self.port);
    }
}

/// Reads one handshake line byte by byte: what follows it is the mux's,
/// so nothing past the newline may be consumed.
async fn read_line(tcp: &mut TcpStream) -> Option<String> {
    let mut line = Vec::new();
    loop {
        let b = tcp.read_u8().await.ok()?;
        if b == b'\n' {
            return String::from_utf8(line).ok();
        }
        if line.len() >= MAX_HANDSHAKE {
            return None;
        }
        line.push(b);
    }
}

/// A listening socket on a [`LoHost`].
#[derive(Debug)]
pub struct LoListener {
    host: LoHost,
    port: u16,
    token: String,
    tcp: TcpListener,
    closed: watch::Sender<bool>,
}

impl LoListener {
    /// `name:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host.name(), self.port)
    }

    /// The next connection; `SocketDown` once the listener is closed,
    /// `HostDown` once its host is, also while waiting.
    pub async fn accept(&self) -> Result<LoConn, NetError> {
        let mut closed = self.closed.subscribe();
        let mut down = self.host.inner.down.subscribe();
        loop {
            if *down.borrow() {
                return Err(NetError::HostDown);
            }
            if *closed.borrow() {
                return Err(NetError::SocketDown);
            }
            tokio::select! {
                r = self.tcp.accept() => {
                    let Ok((tcp, _)) = r else { continue };
                    if let Some(c) = self.handshake(tcp).await {
                        return Ok(c);
                    }
                }
                _ = closed.changed() => {}
                _ = down.changed() => {}
            }
        }
    }

    async fn handshake(&self, mut tcp: TcpStream) -> Option<LoConn> {
        let _ = tcp.set_nodelay(true);
        let line = read_line(&mut tcp).await?;
        let rest = line.strip_prefix("lonet1 ")?;
        let (from, to) = rest.split_once(' ')?;
        if to.parse::<u16>().ok()? != self.port || !from.contains(':') {
            let _ = tcp.write_all(b"refused\n").await;
            return None;
        }
        tcp.write_all(b"ok\n").await.ok()?;
        Some(LoConn {
            stream: tcp,
            local: self.addr(),
            remote: from.to_string(),
            _port: None,
        })
    }

    /// Closes the listener: pending and later accepts fail with `SocketDown`
    /// and new dials are refused; accepted connections stay up.
    pub fn close(&self) -> Result<(), NetError> {
        if self.host.inner.is_down() {
            return Err(NetError::HostDown);
        }
        if self.closed.send_replace(true) {
            return Err(NetError::SocketDown);
        }
        self.host.inner.free_port(self.port);
        self.host.inner.net.append(&format!(
            "unlisten {} {} {}",
            self.host.name(),
            self.port,
            self.token
        ))
    }
}

impl Drop for LoListener {
    fn drop(&mut self) {
        if !*self.closed.borrow() && !self.host.inner.is_down() {
            let _ = self.close();
        }
    }
}

/// A connection between two virtual addresses over loopback TCP.
#[derive(Debug)]
pub struct LoConn {
    /// The socket (hand it to [`Connection::client`](crate::Connection::client), ...).
    pub stream: TcpStream,
    local: String,
    remote: String,
    _port: Option<PortGuard>,
}

impl LoConn {
    /// Our virtual address, `name:port`.
    pub fn local_addr(&self) -> &str {
        &self.local
    }

    /// The peer's virtual address.
    pub fn remote_addr(&self) -> &str {
        &self.remote
    }
}
