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
//!
//! The registry only grows (closes are lines too; rewriting it in place
//! would race other processes' appends), so it is bounded instead: a new
//! claim (`host`, `listen`) that would take the file past
//! [`LoNetConfig::max_registry_bytes`] fails with `RegistryFull`, while
//! releases (`unlisten`, `down`) always go through, so hosts and listeners
//! can still close. At most [`READ_FACTOR`] times the limit is read back.
//! It is meant for test networks, one file per run. Its lines are parsed
//! leniently (a torn or unknown line is skipped) and a handshake line is
//! capped at 512 bytes.

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

/// How much of the registry file is read back, as a multiple of
/// [`LoNetConfig::max_registry_bytes`]: claims fill at most one limit and
/// each claim has at most one release, so well-behaved processes stay
/// within two; what lies past this is ignored.
pub const READ_FACTOR: u64 = 3;

/// Limits of a lonet registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoNetConfig {
    /// Size of the registry file past which new claims (hosts, listeners)
    /// are refused with `RegistryFull`. Default 1 MiB (some ten thousand
    /// claims; every registry operation reads the whole file).
    pub max_registry_bytes: u64,
}

impl Default for LoNetConfig {
    fn default() -> Self {
        LoNetConfig {
            max_registry_bytes: 1 << 20,
        }
    }
}

/// A network: the registry file shared by every process on it.
#[derive(Debug, Clone)]
pub struct LoNet {
    path: PathBuf,
    config: LoNetConfig,
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
    /// Joins (or creates) the network whose registry is `path`, with the
    /// default [`LoNetConfig`].
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<LoNet> {
        LoNet::open_with(path, LoNetConfig::default())
    }

    /// Like [`open`](Self::open), with limits. Every process on one
    /// registry should use the same.
    pub fn open_with(path: impl AsRef<Path>, config: LoNetConfig) -> std::io::Result<LoNet> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.as_ref())?;
        Ok(LoNet {
            path: path.as_ref().to_path_buf(),
            config,
        })
    }

    /// Appends a new claim if the file has room for it. Two processes may
    /// both pass the check and overshoot by a line each; that is the slack.
    fn claim(&self, line: &str) -> Result<(), NetError> {
        let len = std::fs::metadata(&self.path)
            .map_err(|_| NetError::RegistryDown)?
            .len();
        if len + line.len() as u64 + 1 > self.config.max_registry_bytes {
            return Err(NetError::RegistryFull);
        }
        self.append(line)
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
        use std::io::Read as _;
        let cap = self.config.max_registry_bytes.saturating_mul(READ_FACTOR);
        let mut raw = Vec::new();
        std::fs::File::open(&self.path)
            .and_then(|f| f.take(cap).read_to_end(&mut raw))
            .map_err(|_| NetError::RegistryDown)?;
        // A line cut by the cap is torn and skipped like any other.
        let text = String::from_utf8_lossy(&raw);
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
        self.claim(&format!("host {name} {tok}"))?;
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
        // Once is enough: repeated closes add no lines.
        if self.view()?.down {
            return Ok(());
        }
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
        if let Err(e) = h
            .net
            .claim(&format!("listen {} {port} {real} {tok}", h.name))
        {
            h.free_port(port);
            return Err(e);
        }
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

pub use sim_net::LoSimNet;

/// The simulator's [`Network`](adapter_core::proto_core::sim::Network) over
/// lonet, so `proto_core::sim::world::run_on` runs the standard scenario
/// on real loopback sockets.
mod sim_net {
    use super::{LoConn, LoHost, LoListener, LoNet};
    use adapter_core::proto_core::sim::net::{FaultKind, NetStats};
    use adapter_core::proto_core::sim::trace::{tag, Trace};
    use adapter_core::proto_core::sim::{
        Accept, Addr, ConnId, HostId, ListenerId, NetError, NetEvent, Network, OpId, SocketId,
        TimerId,
    };
    use adapter_core::proto_core::time::{Duration, Instant};
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    enum Ev {
        Dialed(OpId, Result<LoConn, NetError>),
        Accepted(OpId, Result<LoConn, NetError>),
        Data(ConnId, Vec<u8>),
        Fin(ConnId),
        Reset(ConnId),
    }

    enum Out {
        Data(Vec<u8>),
        Close,
    }

    struct Conn {
        local: Addr,
        out: Option<mpsc::UnboundedSender<Out>>,
    }

    /// Real time, real sockets, the [`Network`] calls. No skew and no
    /// injected faults: those calls do nothing. Datagrams are not offered
    /// (`bind` fails with `AddressNotListening`).
    pub struct LoSimNet {
        rt: tokio::runtime::Runtime,
        net: LoNet,
        start: std::time::Instant,
        /// Host names by id; `Some` for hosts this process owns.
        hosts: Vec<(String, Option<LoHost>)>,
        listeners: Vec<Arc<LoListener>>,
        conns: Vec<Conn>,
        tx: mpsc::UnboundedSender<Ev>,
        rx: mpsc::UnboundedReceiver<Ev>,
        events: VecDeque<NetEvent>,
        timers: BTreeMap<(u64, u64), (TimerId, Option<HostId>, u64)>,
        timer_keys: BTreeMap<TimerId, (u64, u64)>,
        next: u64,
        trace: Trace,
        stats: NetStats,
    }

    impl std::fmt::Debug for LoSimNet {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("LoSimNet")
                .field("hosts", &self.hosts.len())
                .field("conns", &self.conns.len())
                .finish_non_exhaustive()
        }
    }

    impl LoSimNet {
        fn host_entry(&self, host: HostId) -> Result<&(String, Option<LoHost>), NetError> {
            self.hosts.get(host.0 as usize).ok_or(NetError::UnknownId)
        }

        fn conn_entry(&self, c: ConnId) -> Result<&Conn, NetError> {
            self.conns.get(c.0 as usize).ok_or(NetError::UnknownId)
        }

        /// A network on the lonet registry at `path`, with its own
        /// single-threaded tokio runtime (call from outside any runtime).
        pub fn new(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (tx, rx) = mpsc::unbounded_channel();
            Ok(LoSimNet {
                rt,
                net: LoNet::open(path)?,
                start: std::time::Instant::now(),
                hosts: Vec::new(),
                listeners: Vec::new(),
                conns: Vec::new(),
                tx,
                rx,
                events: VecDeque::new(),
                timers: BTreeMap::new(),
                timer_keys: BTreeMap::new(),
                next: 0,
                trace: Trace::new(false),
                stats: NetStats::default(),
            })
        }

        fn elapsed(&self) -> u64 {
            self.start.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64
        }

        fn host_id(&mut self, name: &str) -> HostId {
            if let Some(i) = self.hosts.iter().position(|h| h.0 == name) {
                return HostId(i as u32);
            }
            self.hosts.push((name.to_string(), None));
            HostId(self.hosts.len() as u32 - 1)
        }

        fn addr(&mut self, s: &str) -> Addr {
            let (name, port) = s.rsplit_once(':').unwrap_or((s, "0"));
            Addr {
                host: self.host_id(name),
                port: port.parse().unwrap_or(0),
            }
        }

        fn op(&mut self) -> OpId {
            self.next += 1;
            OpId(self.next)
        }

        /// Starts the reader and writer tasks of a new connection.
        fn adopt(&mut self, c: LoConn) -> ConnId {
            let id = ConnId(self.conns.len() as u32);
            let local = self.addr(c.local_addr());
            let (mut rd, mut wr) = c.stream.into_split();
            let tx = self.tx.clone();
            self.rt.spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) => {
                            let _ = tx.send(Ev::Fin(id));
                            return;
                        }
                        Ok(n) => {
                            if tx.send(Ev::Data(id, buf[..n].to_vec())).is_err() {
                                return;
                            }
                        }
                        Err(_) => {
                            let _ = tx.send(Ev::Reset(id));
                            return;
                        }
                    }
                }
            });
            let (otx, mut orx) = mpsc::unbounded_channel::<Out>();
            self.rt.spawn(async move {
                while let Some(m) = orx.recv().await {
                    match m {
                        Out::Data(d) => {
                            if wr.write_all(&d).await.is_err() {
                                return;
                            }
                        }
                        Out::Close => break,
                    }
                }
                let _ = wr.shutdown().await;
            });
            self.conns.push(Conn {
                local,
                out: Some(otx),
            });
            id
        }

        fn handle(&mut self, ev: Ev) {
            let now = self.elapsed();
            match ev {
                Ev::Dialed(op, r) => {
                    // Counted once per connection, at the dialer, as `Net` does.
                    let result = r.map(|c| {
                        self.stats.connections += 1;
                        self.adopt(c)
                    });
                    self.events.push_back(NetEvent::Dialed { op, result });
                }
                Ev::Accepted(op, r) => {
                    let result = r.map(|c| self.adopt(c));
                    self.events.push_back(NetEvent::Accepted { op, result });
                }
                Ev::Data(conn, data) => {
                    self.stats.bytes_delivered += data.len() as u64;
                    self.trace
                        .record(tag::DELIVER, now, &[u64::from(conn.0)], &data);
                    self.events.push_back(NetEvent::Data { conn, data });
                }
                Ev::Fin(c) => self.events.push_back(NetEvent::Fin(c)),
                Ev::Reset(c) => self.events.push_back(NetEvent::Reset(c)),
            }
        }
    }

    impl Network for LoSimNet {
        fn now(&self) -> Instant {
            Instant::from_nanos(self.elapsed())
        }

        fn step(&mut self) -> bool {
            self.stats.steps += 1;
            if let Ok(ev) = self.rx.try_recv() {
                self.handle(ev);
                return true;
            }
            let first = self.timers.first_key_value().map(|(k, _)| *k);
            if let Some((at, seq)) = first {
                if at <= self.elapsed() {
                    let (id, host, token) = self.timers.remove(&(at, seq)).expect("first key");
                    self.timer_keys.remove(&id);
                    self.trace.record(tag::TIMER, at, &[token], b"");
                    self.events.push_back(NetEvent::Timer { host, token });
                    return true;
                }
            }
            let wait = first.map(|(at, _)| self.start + std::time::Duration::from_nanos(at));
            let rx = &mut self.rx;
            let ev = self.rt.block_on(async {
                match wait {
                    Some(t) => tokio::select! {
                        ev = rx.recv() => ev,
                        _ = tokio::time::sleep_until(t.into()) => None,
                    },
                    None => rx.recv().await,
                }
            });
            if let Some(ev) = ev {
                self.handle(ev);
            }
            // A timer that came due is fired by the next step.
            true
        }

        fn poll_event(&mut self) -> Option<NetEvent> {
            self.events.pop_front()
        }

        fn set_timer(
            &mut self,
            host: Option<HostId>,
            at: Instant,
            token: u64,
        ) -> Result<TimerId, NetError> {
            if let Some(h) = host {
                self.host_entry(h)?;
            }
            self.next += 1;
            let id = TimerId(self.next);
            let key = (at.as_nanos(), self.next);
            self.timers.insert(key, (id, host, token));
            self.timer_keys.insert(id, key);
            Ok(id)
        }

        fn cancel_timer(&mut self, id: TimerId) {
            if let Some(k) = self.timer_keys.remove(&id) {
                self.timers.remove(&k);
            }
        }

        fn local_time(&self, host: HostId) -> Result<Instant, NetError> {
            self.host_entry(host)?;
            Ok(self.now())
        }

        fn global_time(&self, host: HostId, local: Instant) -> Result<Instant, NetError> {
            self.host_entry(host)?;
            Ok(local)
        }

        fn add_host(&mut self, name: &str) -> Result<HostId, NetError> {
            let h = self.net.new_host(name)?;
            let id = self.host_id(name);
            self.hosts[id.0 as usize].1 = Some(h);
            Ok(id)
        }

        fn set_skew(&mut self, host: HostId, _offset: Duration, _ppm: i32) -> Result<(), NetError> {
            self.host_entry(host).map(|_| ())
        }

        fn hosts(&self) -> Vec<HostId> {
            (0..self.hosts.len() as u32)
                .map(HostId)
                .filter(|h| self.hosts[h.0 as usize].1.is_some())
                .collect()
        }

        fn host_name(&self, host: HostId) -> Result<&str, NetError> {
            Ok(&self.host_entry(host)?.0)
        }

        fn host_up(&self, host: HostId) -> bool {
            self.host_entry(host).is_ok_and(|h| h.1.is_some())
        }

        fn listen(&mut self, host: HostId, laddr: &str) -> Result<ListenerId, NetError> {
            let h = self.host_entry(host)?.1.clone().ok_or(NetError::HostDown)?;
            let l = self.rt.block_on(h.listen(laddr))?;
            self.listeners.push(Arc::new(l));
            Ok(ListenerId(self.listeners.len() as u32 - 1))
        }

        fn accept(&mut self, l: ListenerId) -> Result<Accept, NetError> {
            let op = self.op();
            let li = self
                .listeners
                .get(l.0 as usize)
                .ok_or(NetError::UnknownId)?
                .clone();
            let tx = self.tx.clone();
            self.rt.spawn(async move {
                let r = li.accept().await;
                let _ = tx.send(Ev::Accepted(op, r));
            });
            Ok(Accept::Pending(op))
        }

        fn dial(&mut self, host: HostId, raddr: &str) -> Result<OpId, NetError> {
            let h = self.host_entry(host)?.1.clone().ok_or(NetError::HostDown)?;
            let op = self.op();
            let tx = self.tx.clone();
            let raddr = raddr.to_string();
            self.rt.spawn(async move {
                let r = h.dial(&raddr).await;
                let _ = tx.send(Ev::Dialed(op, r));
            });
            Ok(op)
        }

        fn send(&mut self, c: ConnId, data: &[u8]) -> Result<(), NetError> {
            let out = self
                .conns
                .get(c.0 as usize)
                .ok_or(NetError::UnknownId)?
                .out
                .as_ref()
                .ok_or(NetError::SocketDown)?;
            self.stats.segments += 1;
            out.send(Out::Data(data.to_vec()))
                .map_err(|_| NetError::ConnectionReset)
        }

        fn close(&mut self, c: ConnId) -> Result<(), NetError> {
            let out = self
                .conns
                .get_mut(c.0 as usize)
                .ok_or(NetError::UnknownId)?
                .out
                .take()
                .ok_or(NetError::SocketDown)?;
            let _ = out.send(Out::Close);
            Ok(())
        }

        fn local_addr(&self, c: ConnId) -> Result<Addr, NetError> {
            Ok(self.conn_entry(c)?.local)
        }

        fn bind(&mut self, _host: HostId, _port: u16) -> Result<SocketId, NetError> {
            Err(NetError::AddressNotListening)
        }

        fn send_to(&mut self, _s: SocketId, _to: Addr, _data: &[u8]) -> Result<(), NetError> {
            Err(NetError::SocketDown)
        }

        // Faults a real network cannot inject: no-ops, but ids are still checked.
        fn partition(&mut self, from: HostId, to: HostId, _both: bool) -> Result<(), NetError> {
            self.host_entry(from)?;
            self.host_entry(to).map(|_| ())
        }
        fn heal(&mut self) {}
        fn heal_all(&mut self) {}
        fn hold(&mut self, c: ConnId) -> Result<(), NetError> {
            self.conn_entry(c).map(|_| ())
        }
        fn release(&mut self, c: ConnId) -> Result<(), NetError> {
            self.conn_entry(c).map(|_| ())
        }
        fn inject_reset(&mut self, c: ConnId) -> Result<(), NetError> {
            self.conn_entry(c).map(|_| ())
        }
        fn inject_fin(&mut self, c: ConnId) -> Result<bool, NetError> {
            self.conn_entry(c).map(|_| false)
        }
        fn crash(&mut self, host: HostId) -> Result<(), NetError> {
            self.host_entry(host).map(|_| ())
        }
        fn restart(&mut self, host: HostId) -> Result<bool, NetError> {
            self.host_entry(host).map(|_| false)
        }

        fn trace_mut(&mut self) -> &mut Trace {
            &mut self.trace
        }

        fn take_trace(&mut self) -> Trace {
            std::mem::replace(&mut self.trace, Trace::new(false))
        }

        fn stats(&self) -> NetStats {
            self.stats
        }

        fn fault_counts(&self) -> [u64; FaultKind::ALL.len()] {
            [0; FaultKind::ALL.len()]
        }
    }
}
