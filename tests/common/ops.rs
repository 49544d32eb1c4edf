//! Harness additions for access log, ids, removed headers and secrets tests: errgate started on a
//! config the test writes in full (route-level keys included) with extra environment variables,
//! and readers for the access log file.

use super::*;
use std::process::Command;

/// The config lines every test needs: listeners, catalogs and threads.
pub fn base_yaml(port: u16, admin: u16, dir: &Path) -> String {
    format!(
        "listen: 127.0.0.1:{port}\nadmin_listen: 127.0.0.1:{admin}\ncatalog_dir: {}\nthreads: 2\n",
        dir.join("catalogs").display()
    )
}

/// The file errgate's stdout goes to, under the gate's directory.
pub const STDOUT: &str = "stdout.log";

/// The access log file name under the gate's directory.
pub const ACCESS_LOG: &str = "access.log";

impl Gate {
    /// Starts errgate on the config `yaml(port, admin, dir)` returns (`dir` holds a copy of the
    /// repo catalogs under `catalogs/`), with `env` added to its environment. Retries on port
    /// races like [`Gate::start`].
    pub fn start_custom(yaml: impl Fn(u16, u16, &Path) -> String, env: &[(&str, &str)]) -> Gate {
        let mut dir = tempfile::tempdir().expect("tempdir");
        let cat = dir.path().join("catalogs");
        std::fs::create_dir(&cat).expect("mkdir");
        for f in std::fs::read_dir(repo().join("catalogs")).expect("catalogs") {
            let f = f.expect("entry").path();
            if f.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&f, cat.join(f.file_name().expect("name"))).expect("copy");
            }
        }
        let mut last_log = String::new();
        for _ in 0..4 {
            let (port, admin) = (free_port(), free_port());
            let text = yaml(port, admin, dir.path());
            let cfg = dir.path().join("errgate.yaml");
            std::fs::write(&cfg, &text).expect("write config");
            let log = dir.path().join("errgate.log");
            let logf = std::fs::File::create(&log).expect("log");
            let outf = std::fs::File::create(dir.path().join(STDOUT)).expect("stdout");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_errgate"));
            cmd.args(["run", "--config"])
                .arg(&cfg)
                .arg("--pid-file")
                .arg(dir.path().join("errgate.pid"))
                .arg("--upgrade-sock")
                .arg(dir.path().join("upgrade.sock"))
                .env("RUST_LOG", "info")
                .stdout(outf)
                .stderr(logf);
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().expect("spawn errgate");
            let mut g = Gate {
                child,
                port,
                admin,
                dir,
                log,
            };
            if g.wait_ready() {
                return g;
            }
            let _ = g.child.kill();
            let _ = g.child.wait();
            last_log = g.log_text();
            dir = std::mem::replace(&mut g.dir, tempfile::tempdir().expect("tempdir"));
        }
        panic!("errgate did not start after 4 tries; log:\n{last_log}");
    }

    /// The access log lines written so far, parsed as JSON.
    pub fn access_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join(ACCESS_LOG))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Waits (up to 5 s) until the access log has a line with this request id, and returns it.
    pub fn access_line(&self, request_id: &str) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            if let Some(v) = self
                .access_lines()
                .into_iter()
                .find(|v| v["request_id"] == request_id)
            {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "no access log line for {request_id}; log:\n{}",
                std::fs::read_to_string(self.dir.path().join(ACCESS_LOG)).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
