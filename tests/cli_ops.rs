//! CLI conventions on the real binary: usage errors (clap's own included) exit 64, `--help` and
//! `--version` exit 0 on stdout, the process log goes to stderr under `RUST_LOG` as text or
//! JSON lines, and `errgate healthcheck` against a real admin listener and a mock.
mod common;
use common::run::{errgate_env as errgate, show};
use common::*;

use std::process::Command;

const EXIT_USAGE: i32 = 64;
const EXIT_CONFIG: i32 = 78;

#[test]
fn clap_usage_errors_exit_64() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["check", "--no-such-flag"],
        &["explain"],
        &["explain", "pluralkit", "20002", "--status", "abc"],
        &["--log-format", "xml", "check"],
        &["healthcheck", "--timeout", "soon"],
        &["run", "--config"],
    ] {
        let o = errgate(args, &[]);
        assert_eq!(o.status.code(), Some(EXIT_USAGE), "{args:?}\n{}", show(&o));
        assert!(
            o.stdout.is_empty(),
            "{args:?}: usage errors go to stderr\n{}",
            show(&o)
        );
        assert!(!o.stderr.is_empty(), "{args:?}: says why\n{}", show(&o));
    }
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let o = errgate(&["--version"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("errgate {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [&["--help"][..], &["-h"], &["help"], &["check", "--help"]] {
        let o = errgate(args, &[]);
        assert_eq!(o.status.code(), Some(0), "{args:?}\n{}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage:"),
            "{args:?}\n{}",
            show(&o)
        );
    }
}

/// A config that fails validation: `run` logs each problem and exits 78 without binding.
fn broken_config() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.yaml");
    // Literal YAML on purpose: the unknown key is what makes it fail.
    std::fs::write(&cfg, "listen: 127.0.0.1:1\nbogus_key: 1\nroutes: []\n").expect("write");
    let p = cfg.display().to_string();
    (dir, p)
}

#[test]
fn json_process_log_is_one_object_per_stderr_line() {
    let (_dir, cfg) = broken_config();
    for how in ["flag", "env"] {
        let o = if how == "flag" {
            errgate(&["run", "--log-format", "json", "--config", &cfg], &[])
        } else {
            errgate(
                &["run", "--config", &cfg],
                &[("ERRGATE_LOG_FORMAT", "json")],
            )
        };
        assert_eq!(o.status.code(), Some(EXIT_CONFIG), "{how}\n{}", show(&o));
        assert!(
            o.stdout.is_empty(),
            "{how}: logs go to stderr\n{}",
            show(&o)
        );
        let text = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines.is_empty(), "{how}\n{}", show(&o));
        for l in &lines {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{how}: {e}: {l:?}"));
            assert_eq!(v["level"], "ERROR", "{l}");
            assert_eq!(v["target"], "errgate::cli::run", "{l}");
            assert!(v["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
            assert_eq!(v["msg"], "Cannot start: invalid configuration.", "{l}");
            assert!(v["problem"].is_string(), "{l}");
        }
        assert!(text.contains("bogus_key"), "{how}\n{text}");
    }
}

#[test]
fn text_log_on_stderr_and_rust_log_filters() {
    let (_dir, cfg) = broken_config();
    let o = errgate(&["run", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(EXIT_CONFIG), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(
        text.contains("ERROR") && text.contains("Cannot start: invalid configuration."),
        "{}",
        show(&o)
    );
    assert!(serde_json::from_str::<serde_json::Value>(text.lines().next().unwrap_or("")).is_err());
    let o = errgate(&["run", "--config", &cfg], &[("RUST_LOG", "off")]);
    assert_eq!(o.status.code(), Some(EXIT_CONFIG), "{}", show(&o));
    assert!(
        o.stderr.is_empty(),
        "RUST_LOG=off silences the log\n{}",
        show(&o)
    );
}

#[test]
fn healthcheck_against_a_running_gateway() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &dead))
        .start();
    let ready = format!("http://127.0.0.1:{}/readyz", g.admin);
    let o = errgate(&["healthcheck", "--url", &ready], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let missing = format!("http://127.0.0.1:{}/no-such-page", g.admin);
    let o = errgate(&["healthcheck", "--url", &missing], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("status 404"),
        "{}",
        show(&o)
    );
}

#[test]
fn healthcheck_fails_on_503_refused_and_silence() {
    let m = Mock::fixed(response(503, &[], b"no catalogs\n"));
    let o = errgate(
        &["healthcheck", "--url", &format!("{}/readyz", m.url())],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(m.hits(), 1, "exactly one GET reached the server");
    let req = m.requests.lock().expect("lock")[0].clone();
    assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/readyz"));
    assert_eq!(req.header("host"), Some(m.addr.to_string().as_str()));

    let closed = format!("http://127.0.0.1:{}/readyz", free_port());
    let o = errgate(&["healthcheck", "--url", &closed], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));

    // A listener that accepts and never answers: the timeout ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/readyz", silent.local_addr().expect("addr"));
    let t0 = std::time::Instant::now();
    let o = errgate(&["healthcheck", "--url", &url, "--timeout", "300ms"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t0.elapsed()
    );

    let o = errgate(
        &["healthcheck", "--url", "https://127.0.0.1:9090/readyz"],
        &[],
    );
    assert_eq!(o.status.code(), Some(EXIT_USAGE), "{}", show(&o));
}

/// `errgate run` started on free ports with extra environment; killed on drop.
struct Running {
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// `cfg` is written with its own listeners and the repo's catalogs, plus route `pk` to a
    /// closed port.
    fn start(env: &[(&str, &str)], cfg: GateConfig) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = format!("http://127.0.0.1:{}", free_port());
        let path = dir.path().join("errgate.yaml");
        cfg.route(RouteConfig::new("pk", "pluralkit", "/pk", &dead))
            .write(&path, free_port(), free_port(), &repo().join("catalogs"));
        let cfg = path;
        let log = dir.path().join("log");
        let mut c = Command::new(env!("CARGO_BIN_EXE_errgate"));
        c.args(["run", "--config"])
            .arg(&cfg)
            .arg("--pid-file")
            .arg(dir.path().join("pid"))
            .arg("--upgrade-sock")
            .arg(dir.path().join("sock"))
            .env_remove("ERRGATE_THREADS")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"));
        for (k, v) in env {
            c.env(k, v);
        }
        Running {
            child: c.spawn().expect("spawn"),
            log,
            _dir: dir,
        }
    }

    /// Waits (bounded) for a log line containing `needle`, or for the process to exit.
    fn wait_log(&mut self, needle: &str) -> (String, Option<i32>) {
        let t0 = std::time::Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains(needle) {
                return (text, None);
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                let text = std::fs::read_to_string(&self.log).unwrap_or_default();
                return (text, st.code());
            }
            if t0.elapsed() > std::time::Duration::from_secs(20) {
                return (text, None);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[test]
fn errgate_threads_env_sets_the_worker_threads() {
    let mut r = Running::start(
        &[("ERRGATE_THREADS", "3")],
        GateConfig::new().set("threads", 7),
    );
    let (log, _) = r.wait_log("Starting errgate.");
    assert!(log.contains(" threads=3 "), "env overrides config:\n{log}");
    drop(r);
    let mut r = Running::start(&[], GateConfig::new().set("threads", 7));
    let (log, _) = r.wait_log("Starting errgate.");
    assert!(log.contains(" threads=7 "), "config without env:\n{log}");
}

#[test]
fn bad_errgate_threads_is_a_config_error() {
    let mut r = Running::start(
        &[("ERRGATE_THREADS", "250m")],
        GateConfig::new().unset("threads"),
    );
    let (log, code) = r.wait_log("never printed");
    assert_eq!(code, Some(EXIT_CONFIG), "{log}");
    assert!(log.contains("ERRGATE_THREADS"), "{log}");
}
