//! A `redis-server` child process for the tests that need a real Redis.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` child on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server, or returns `None` (after a loud skip line) when
    /// `redis-server` is not installed and `WEFT_REQUIRE_REDIS` is unset.
    pub fn start() -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            if std::env::var_os("WEFT_REQUIRE_REDIS").is_some() {
                panic!(
                    "WEFT_REQUIRE_REDIS is set but redis-server is not installed: \
                     install it (apt-get install -y redis-server)"
                );
            }
            // Straight to stderr: the test harness captures `eprintln!`.
            let _ = std::io::stderr().write_all(
                b"\n!!!! SKIPPED: redis-server is not installed; the Redis store was NOT tested. \
                  Install redis-server (set WEFT_REQUIRE_REDIS to make this a failure) !!!!\n",
            );
            return None;
        }
        // A port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = tempfile::tempdir().unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut server = RedisServer {
                child,
                port,
                _dir: dir,
            };
            if server.wait_for_ping() {
                return Some(server);
            }
        }
        panic!("redis-server did not answer PING on any port tried");
    }

    /// Polls with PING until the server answers or exits.
    fn wait_for_ping(&mut self) -> bool {
        for _ in 0..500 {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut reply = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain connection for inspecting the server.
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
