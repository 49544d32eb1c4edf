//! Fleet helpers: a real `redis-server` on a free loopback port (no persistence), killed by
//! `Drop`; a minimal RESP client for checks; and waiting on a gateway's `/cooldown` state.

use super::*;
use std::process::Stdio;

/// A `redis-server` child process on 127.0.0.1; killed on drop. Restartable on the same port.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts `redis-server` on a free port; panics with a clear message when it is missing
    /// (CI installs it with `.ci/install.d/20-redis.sh`).
    pub fn start() -> Redis {
        let mut dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..4 {
            let port = free_port();
            let mut r = Redis {
                child: None,
                port,
                dir,
            };
            if r.spawn() {
                return r;
            }
            dir = std::mem::replace(&mut r.dir, tempfile::tempdir().expect("tempdir"));
        }
        panic!("redis-server did not start after 4 tries");
    }

    /// Starts it again on the same port (after `kill`), with an empty data set.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill only");
        let t0 = Instant::now();
        // The port was just freed; another test may grab it in between, but that is rare and
        // then the assertion below says so.
        while t0.elapsed() < Duration::from_secs(5) {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).expect("log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: the fleet tests need a real Redis \
                 (apt-get install redis-server, or run .ci/install.d/20-redis.sh)"
            ),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if self
                .command(&["PING"])
                .is_ok_and(|r| r.starts_with("+PONG"))
            {
                self.child = Some(child);
                return true;
            }
            if matches!(child.try_wait(), Ok(Some(_))) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// One command over RESP; the raw reply text.
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes())?;
        let mut buf = vec![0u8; 64 * 1024];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The gateway's `GET /cooldown` JSON.
pub fn cooldown_status(g: &Gate) -> serde_json::Value {
    g.admin_get("/cooldown").json()
}

/// Waits (at most `limit`) until the gateway's store state is `state`; panics with the last
/// status otherwise.
pub fn wait_store_state(g: &Gate, state: &str, limit: Duration) {
    let t0 = Instant::now();
    let mut last = serde_json::Value::Null;
    while t0.elapsed() < limit {
        last = cooldown_status(g);
        if last["state"] == state {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("store did not become {state} within {limit:?}: {last}");
}

/// Waits (at most `limit`) until the gateway holds at least `n` keys locally.
pub fn wait_active_local(g: &Gate, n: u64, limit: Duration) {
    let t0 = Instant::now();
    let mut last = serde_json::Value::Null;
    while t0.elapsed() < limit {
        last = cooldown_status(g);
        if last["active_local"].as_u64().is_some_and(|a| a >= n) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("fewer than {n} holds arrived within {limit:?}: {last}");
}
