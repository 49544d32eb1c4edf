//! `upstream_headers` values from the environment and from files: they reach the vendor, a
//! rotated file (write-and-rename, and a Kubernetes Secret `..data` symlink swap) changes what
//! the vendor sees with zero failed requests in between, `check` names a missing variable, and
//! the value never shows in `check` output, `/catalogs`, the access log, the process log or
//! problem bodies.
mod common;
use common::ops::*;
use common::run::check_config;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ENV_SECRET: &str = "sk-env-4f1d2c9a";
const FILE_SECRET_1: &str = "sk-file-one-7b3e";
const FILE_SECRET_2: &str = "sk-file-two-9c8d";
/// How long a rotation may take to be seen by the vendor (file watcher + debounce).
const BOUND: Duration = Duration::from_secs(10);

/// `upstream_headers` with `Authorization` from `ERRGATE_TEST_PK_TOKEN` and `X-Api-Key` from
/// `key_file`.
fn secret_headers(key_file: &Path) -> serde_json::Value {
    json!({
        "Authorization": {"env": "ERRGATE_TEST_PK_TOKEN"},
        "X-Api-Key": {"file": key_file},
    })
}

fn gate_with(m: &Mock, key_file: PathBuf) -> Gate {
    let url = m.url();
    GateConfig::start_with(move |dir| {
        let mut headers = secret_headers(&key_file);
        headers["X-Plain"] = json!("plain-value");
        GateConfig::new()
            .set("catalog_poll_interval", "60s")
            .set("access_log", json!({"target": dir.join(ACCESS_LOG)}))
            .route(
                RouteConfig::new("pk", "pluralkit", "/pk", &url).set("upstream_headers", headers),
            )
            .env("ERRGATE_TEST_PK_TOKEN", ENV_SECRET)
    })
}

fn last_key(m: &Mock) -> Option<String> {
    m.requests
        .lock()
        .expect("lock")
        .last()
        .and_then(|r| r.header("x-api-key").map(str::to_string))
}

#[test]
fn env_and_file_values_reach_the_vendor() {
    let keys = tempfile::tempdir().expect("tmp");
    let key = keys.path().join("api-key");
    std::fs::write(&key, format!("{FILE_SECRET_1}\n")).expect("write");
    let m = Mock::fixed(json(200, "{}"));
    let g = gate_with(&m, key);
    assert_eq!(g.get("/pk/s").status, 200);
    let seen = m.requests.lock().expect("lock")[0].clone();
    assert_eq!(seen.header("authorization"), Some(ENV_SECRET));
    assert_eq!(seen.header("x-api-key"), Some(FILE_SECRET_1));
    assert_eq!(seen.header("x-plain"), Some("plain-value"));
}

/// Sends requests without pause until stopped; returns every status.
fn hammer(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u16>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        while !stop.load(Ordering::SeqCst) && out.len() < 20_000 {
            out.push(
                try_request(port, "GET", "/pk/s", &[], b"")
                    .map(|r| r.status)
                    .unwrap_or(0),
            );
        }
        out
    })
}

/// Rotates with `rotate`, then checks that the vendor switches from the old to the new value
/// once and for good, and that no request failed meanwhile.
fn rotation_without_failures(key_path: PathBuf, rotate: impl FnOnce()) {
    let m = Mock::fixed(json(200, "{}"));
    let g = gate_with(&m, key_path);
    assert_eq!(g.get("/pk/s").status, 200);
    assert_eq!(last_key(&m).as_deref(), Some(FILE_SECRET_1));
    let stop = Arc::new(AtomicBool::new(false));
    let client = hammer(g.port, stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    rotate();
    let t0 = Instant::now();
    while last_key(&m).as_deref() != Some(FILE_SECRET_2) {
        assert!(
            t0.elapsed() < BOUND,
            "the vendor never saw the rotated key; log:\n{}",
            g.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let statuses = client.join().expect("client");
    assert!(statuses.len() > 5, "only {} requests", statuses.len());
    let failed = statuses.iter().filter(|&&s| s != 200).count();
    assert_eq!(failed, 0, "{failed} of {} requests failed", statuses.len());
    let seen: Vec<String> = m
        .requests
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.header("x-api-key").unwrap_or("").to_string())
        .collect();
    let first_new = seen
        .iter()
        .position(|k| k == FILE_SECRET_2)
        .expect("new key seen");
    let odd: Vec<(usize, &String)> = seen
        .iter()
        .enumerate()
        .filter(|(_, k)| *k != FILE_SECRET_1 && *k != FILE_SECRET_2)
        .collect();
    assert!(odd.is_empty(), "unexpected keys (index, key): {odd:?}");
    assert!(seen[..first_new].iter().all(|k| k == FILE_SECRET_1));
    assert!(
        seen[first_new..].iter().all(|k| k == FILE_SECRET_2),
        "the old key came back after the switch"
    );
    assert_no_secret_shown(&g);
}

#[test]
fn write_and_rename_rotation_changes_the_key_without_a_failed_request() {
    let keys = tempfile::tempdir().expect("tmp");
    let key = keys.path().join("api-key");
    std::fs::write(&key, FILE_SECRET_1).expect("write");
    let k2 = key.clone();
    rotation_without_failures(key, move || {
        let tmp = k2.with_file_name(".api-key.tmp");
        std::fs::write(&tmp, format!("{FILE_SECRET_2}\n")).expect("write");
        std::fs::rename(&tmp, &k2).expect("rename");
    });
}

#[test]
fn kubernetes_secret_data_swap_changes_the_key_without_a_failed_request() {
    // The layout kubelet writes: api-key -> ..data/api-key, ..data -> ..<timestamp>/.
    let keys = tempfile::tempdir().expect("tmp");
    let d = keys.path().to_path_buf();
    std::fs::create_dir(d.join("..2026_11_30_10_00_00.1")).expect("mkdir");
    std::fs::write(d.join("..2026_11_30_10_00_00.1/api-key"), FILE_SECRET_1).expect("write");
    std::os::unix::fs::symlink("..2026_11_30_10_00_00.1", d.join("..data")).expect("link");
    std::os::unix::fs::symlink("..data/api-key", d.join("api-key")).expect("link");
    let d2 = d.clone();
    rotation_without_failures(d.join("api-key"), move || {
        std::fs::create_dir(d2.join("..2026_11_30_10_05_00.2")).expect("mkdir");
        std::fs::write(d2.join("..2026_11_30_10_05_00.2/api-key"), FILE_SECRET_2).expect("write");
        std::os::unix::fs::symlink("..2026_11_30_10_05_00.2", d2.join("..data_tmp")).expect("link");
        std::fs::rename(d2.join("..data_tmp"), d2.join("..data")).expect("swap");
        std::fs::remove_dir_all(d2.join("..2026_11_30_10_00_00.1")).expect("rm old");
    });
}

#[test]
fn an_invalid_rotated_value_keeps_the_last_good_key_serving() {
    let keys = tempfile::tempdir().expect("tmp");
    let key = keys.path().join("api-key");
    std::fs::write(&key, FILE_SECRET_1).expect("write");
    let m = Mock::fixed(json(200, "{}"));
    let g = gate_with(&m, key.clone());
    // A control character cannot go in a header: the reload fails, the old key keeps serving.
    std::fs::write(&key, format!("bad\u{1}{FILE_SECRET_2}")).expect("write");
    // POST /-/reload rather than SIGHUP: a signal that arrives before the reloader has installed
    // its handler would end the process.
    let r = request(g.admin, "POST", "/-/reload", &[], b"");
    assert!(!r.text().contains(FILE_SECRET_2), "{}", r.text());
    let t0 = Instant::now();
    while g.metric("errgate_catalog_reloads_total{result=\"failure\"}") < 1.0 {
        assert!(
            t0.elapsed() < BOUND,
            "no failed reload; log:\n{}",
            g.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(g.get("/pk/s").status, 200);
    assert_eq!(last_key(&m).as_deref(), Some(FILE_SECRET_1));
    let log = g.log_text();
    assert!(log.contains(&key.display().to_string()), "{log}");
    assert!(!log.contains(FILE_SECRET_2), "{log}");
    let status = g.admin_get("/catalogs").text();
    assert!(status.contains("not a valid header value"), "{status}");
    assert_no_secret_shown(&g);
}

/// Neither value appears in `/catalogs`, the access log, the process log or a problem body.
fn assert_no_secret_shown(g: &Gate) {
    let problem = g.get("/nowhere").text();
    let places = [
        ("/catalogs", g.admin_get("/catalogs").text()),
        ("/metrics", g.admin_get("/metrics").text()),
        (
            "access log",
            std::fs::read_to_string(g.dir.path().join(ACCESS_LOG)).unwrap_or_default(),
        ),
        ("process log", g.log_text()),
        ("problem body", problem),
    ];
    for (place, text) in places {
        for s in [ENV_SECRET, FILE_SECRET_1, FILE_SECRET_2] {
            assert!(!text.contains(s), "{place} shows a secret:\n{text}");
        }
    }
}

#[test]
fn a_vendor_error_problem_does_not_carry_the_key() {
    let keys = tempfile::tempdir().expect("tmp");
    let key = keys.path().join("api-key");
    std::fs::write(&key, FILE_SECRET_1).expect("write");
    let m = Mock::fixed(json(
        401,
        r#"{"message":"401: Missing or invalid Authorization header","code":0}"#,
    ));
    let g = gate_with(&m, key);
    let r = g.get("/pk/s");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_no_secret_shown(&g);
}

#[test]
fn check_names_a_missing_variable_and_an_unreadable_file_but_never_a_value() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("api-key");
    let cfg = dir.path().join("errgate.yaml");
    GateConfig::new()
        .route(
            RouteConfig::new("pk", "pluralkit", "/pk", "http://127.0.0.1:9")
                .set("upstream_headers", secret_headers(&key)),
        )
        .write(&cfg, free_port(), free_port(), &repo().join("catalogs"));

    let (code, out) = check_config(&cfg, &[]);
    assert_eq!(code, 78, "{out}");
    assert!(out.contains(&cfg.display().to_string()), "{out}");
    assert!(
        out.contains("routes[0].upstream_headers.Authorization"),
        "{out}"
    );
    assert!(out.contains("ERRGATE_TEST_PK_TOKEN"), "{out}");
    assert!(
        out.contains("routes[0].upstream_headers.X-Api-Key"),
        "{out}"
    );
    assert!(out.contains(&key.display().to_string()), "{out}");

    std::fs::write(&key, FILE_SECRET_1).expect("write");
    let (code, out) = check_config(&cfg, &[("ERRGATE_TEST_PK_TOKEN", ENV_SECRET)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains(ENV_SECRET) && !out.contains(FILE_SECRET_1),
        "{out}"
    );
}
