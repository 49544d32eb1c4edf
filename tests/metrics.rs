//! The admin listener and the metrics of contract §6 and §7, with exact counts for known traffic.
mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MEMBER_404: &str = r#"{"message":"Member not found.","code":20002}"#;
const OK_BODY: &str = r#"{"id":"abcde","name":"ok"}"#;

fn pk_entries() -> usize {
    let text = std::fs::read_to_string(repo().join("catalogs/pluralkit.yaml")).expect("catalog");
    let v: yaml_serde::Value = yaml_serde::from_str(&text).expect("yaml");
    v["entries"].as_sequence().expect("entries").len()
}

/// Waits (bounded) until the series has the value, then asserts it: metrics are recorded when
/// the request is logged, which may trail the client reading the response.
fn assert_metric(g: &Gate, series: &str, want: f64) {
    let t0 = Instant::now();
    let mut text = String::new();
    while t0.elapsed() < Duration::from_secs(3) {
        text = g.admin_get("/metrics").text();
        if metric_value(&text, series) == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{series} = {}, wanted {want}; exposition:\n{text}",
        metric_value(&text, series)
    );
}

/// A gateway with route `pk` (a mock: `/ok` answers 200, the rest PluralKit's 404 20002) and
/// route `dead` (nothing listens), retries off.
fn gate() -> (Gate, Mock) {
    let m = Mock::start(|req, _| {
        if req.path.ends_with("/ok") {
            vec![Act::Send(json(200, OK_BODY))]
        } else {
            vec![Act::Send(json(404, MEMBER_404))]
        }
    });
    let dead = format!("http://127.0.0.1:{}", free_port());
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .route(RouteConfig::new("dead", "pluralkit", "/dead", &dead))
        .start();
    (g, m)
}

#[test]
fn counters_match_known_traffic() {
    let (g, m) = gate();
    let (n, mm, k) = (5, 3, 2);
    for _ in 0..n {
        let r = g.get("/pk/systems/ok");
        assert_eq!((r.status, r.body.as_slice()), (200, OK_BODY.as_bytes()));
    }
    for _ in 0..mm {
        let r = g.get("/pk/members/abcde");
        assert_eq!(r.status, 404);
        assert_eq!(r.json()["reason"], "MEMBER_NOT_FOUND");
    }
    for _ in 0..k {
        let r = g.get("/dead/systems/abc");
        assert_eq!(r.status, 502, "{}", r.text());
        assert_eq!(r.json()["reason"], "UPSTREAM_UNAVAILABLE");
    }
    let r = g.get("/nowhere");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["reason"], "NO_ROUTE");
    assert_eq!(m.hits(), n + mm);

    let (n, mm, k) = (n as f64, mm as f64, k as f64);
    for (series, want) in [
        (
            r#"errgate_requests_total{outcome="passthrough",route="pk",status="200"}"#,
            n,
        ),
        (
            r#"errgate_requests_total{outcome="normalized",route="pk",status="404"}"#,
            mm,
        ),
        (
            r#"errgate_requests_total{outcome="gateway",route="dead",status="502"}"#,
            k,
        ),
        (
            r#"errgate_requests_total{outcome="gateway",route="none",status="404"}"#,
            1.0,
        ),
        (
            r#"errgate_errors_total{code="NOT_FOUND",domain="pluralkit",reason="MEMBER_NOT_FOUND",route="pk",upstream_code="20002"}"#,
            mm,
        ),
        (
            r#"errgate_errors_total{code="UNAVAILABLE",domain="errgate",reason="UPSTREAM_UNAVAILABLE",route="dead",upstream_code="none"}"#,
            k,
        ),
        (
            r#"errgate_errors_total{code="NOT_FOUND",domain="errgate",reason="NO_ROUTE",route="none",upstream_code="none"}"#,
            1.0,
        ),
        (
            r#"errgate_request_duration_seconds_count{outcome="passthrough",route="pk"}"#,
            n,
        ),
        (
            r#"errgate_request_duration_seconds_count{outcome="normalized",route="pk"}"#,
            mm,
        ),
        (
            r#"errgate_request_duration_seconds_count{outcome="gateway",route="dead"}"#,
            k,
        ),
        (
            r#"errgate_request_duration_seconds_count{outcome="gateway",route="none"}"#,
            1.0,
        ),
        (
            r#"errgate_request_duration_seconds_bucket{outcome="passthrough",route="pk",le="+Inf"}"#,
            n,
        ),
        (r#"errgate_handled_requests_total"#, n + mm + k + 1.0),
        (
            r#"errgate_catalog_entries{vendor="pluralkit"}"#,
            pk_entries() as f64,
        ),
    ] {
        assert_metric(&g, series, want);
    }

    let text = g.admin_get("/metrics").text();
    // Passthrough successes are not errors; no other error series appeared.
    let error_series = text
        .lines()
        .filter(|l| l.starts_with("errgate_errors_total{"))
        .count();
    assert_eq!(error_series, 3, "{text}");
    for (name, kind) in [
        ("errgate_requests_total", "counter"),
        ("errgate_errors_total", "counter"),
        ("errgate_request_duration_seconds", "histogram"),
        ("errgate_catalog_entries", "gauge"),
    ] {
        assert!(
            text.lines().any(|l| l == format!("# TYPE {name} {kind}")),
            "no `# TYPE {name} {kind}` in:\n{text}"
        );
    }
    promtool_check(&text);
}

/// Every series of contract §7 is visible from the start, so `increase()`/`rate()` see the
/// first event (deploy/prometheus/rules.yml alerts on
/// `increase(errgate_catalog_reloads_total{result="failure"}[15m]) > 0`).
#[test]
fn reload_counter_series_exist_from_the_start() {
    let (g, _m) = gate();
    let text = g.admin_get("/metrics").text();
    assert!(
        text.lines()
            .any(|l| l == "# TYPE errgate_catalog_reloads_total counter"),
        "{text}"
    );
    for result in ["success", "failure"] {
        let series = format!("errgate_catalog_reloads_total{{result=\"{result}\"}} 0");
        assert!(
            text.lines().any(|l| l == series),
            "no `{series}` in:\n{text}"
        );
    }
}

#[test]
fn reload_counter_counts_failures_and_successes() {
    let (g, _m) = gate();
    let f = g.catalog_dir().join("pluralkit.yaml");
    let good = std::fs::read_to_string(&f).expect("catalog");
    let wait = |series: &str| {
        let t0 = Instant::now();
        while g.metric(series) < 1.0 {
            assert!(t0.elapsed() < Duration::from_secs(10), "{series} stays 0");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    std::fs::write(&f, "entries: [\n").expect("break");
    wait(r#"errgate_catalog_reloads_total{result="failure"}"#);
    std::fs::write(
        &f,
        good.replace("reason: MEMBER_NOT_FOUND\n", "reason: MEMBER_GONE\n"),
    )
    .expect("fix");
    wait(r#"errgate_catalog_reloads_total{result="success"}"#);
    let text = g.admin_get("/metrics").text();
    assert!(
        text.lines()
            .any(|l| l == "# TYPE errgate_catalog_reloads_total counter"),
        "{text}"
    );
    promtool_check(&text);
}

#[test]
fn admin_endpoints() {
    let (g, _m) = gate();
    let r = g.admin_get("/healthz");
    assert_eq!(r.status, 200);
    let r = g.admin_get("/readyz");
    assert_eq!(r.status, 200);

    let r = g.admin_get("/catalogs");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    let v = r.json();
    let vendors = v["vendors"].as_object().expect("vendors");
    for id in ["mantago", "openim", "microcms", "tencent-im", "pluralkit"] {
        let meta = &vendors[id];
        let hash = meta["hash"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: {v:#}"));
        let file = std::fs::read(repo().join(format!("catalogs/{id}.yaml"))).expect("catalog");
        assert_eq!(hash, hex_sha256(&file), "{id}: content hash");
        assert!(
            meta["entries"].as_u64().is_some_and(|n| n > 0),
            "{id}: {v:#}"
        );
        assert!(meta["loaded_at_unix"].as_u64().is_some(), "{id}: {v:#}");
        assert!(meta.get("last_reload_error").is_some(), "{id}: {v:#}");
    }
    assert_eq!(
        vendors["pluralkit"]["entries"].as_u64(),
        Some(pk_entries() as u64)
    );
    assert_eq!(vendors.len(), 5);

    let r = request(g.admin, "POST", "/-/reload", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"], "unchanged");

    let r = request(g.admin, "POST", "/metrics", &[], b"");
    assert_eq!(r.status, 405);
    let r = request(g.admin, "DELETE", "/catalogs", &[], b"");
    assert_eq!(r.status, 405);
    let r = request(g.admin, "GET", "/-/reload", &[], b"");
    assert_eq!(r.status, 405);
    let r = g.admin_get("/no-such-thing");
    assert_eq!(r.status, 404);

    let r = g.admin_get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        r.header("content-type")
    );
}

fn hex_sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// promtool from PATH, or where deploy/validate.sh unpacks it.
fn promtool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    }) {
        return Some(p);
    }
    let tools = std::env::var_os("ERRGATE_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|c| c.join("errgate-deploy-tools"))
        })?;
    let p = tools.join("prometheus/usr/bin/promtool");
    p.is_file().then_some(p)
}

fn promtool_check(exposition: &str) {
    // A missing tool fails the test: a check that did not run must not pass.
    let Some(tool) = promtool() else {
        panic!(
            "promtool not found on PATH or under $ERRGATE_TOOLS_DIR / ~/.cache/errgate-deploy-tools \
             (bash deploy/validate.sh unpacks it)"
        );
    };
    let mut child = Command::new(&tool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(exposition.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("promtool check metrics: ok ({})", tool.display());
}
