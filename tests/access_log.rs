//! The access log and request/trace ids end to end through the real binary: one JSON line per
//! request with the fields the README lists, the query left out by default, the request id of a
//! problem the same in its header, its body and the log line, the trace id of a valid
//! `traceparent`, the text format, `off`, and the dropped-lines counter.
mod common;
use common::ops::*;
use common::*;
use std::path::Path;

const MEMBER_404: &str = r#"{"message":"Member not found.","code":20002}"#;
const PK_429: &str = r#"{"message":"429: too many requests","code":0}"#;
const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Route `pk` to the mock, retries off, `access_log` as `access_log(gate directory)` says.
fn gate(m: &Mock, access_log: impl FnOnce(&Path) -> serde_json::Value) -> Gate {
    let url = m.url();
    GateConfig::start_with(move |dir| {
        GateConfig::new()
            .set("retry", json!({"enabled": false}))
            .set("access_log", access_log(dir))
            .route(RouteConfig::new("pk", "pluralkit", "/pk", &url))
    })
}

/// The access log to [`ACCESS_LOG`] in the gate's directory, JSON lines.
fn to_file(dir: &Path) -> serde_json::Value {
    json!({"target": dir.join(ACCESS_LOG)})
}

#[test]
fn pass_through_is_logged_without_its_query() {
    let m = Mock::fixed(json(200, r#"{"id":"abcde"}"#));
    let g = gate(&m, to_file);
    let r = g.req(
        "GET",
        "/pk/systems/abcde?token=sk-query-secret",
        &[("X-Request-Id", "client-id-1"), ("traceparent", TRACE)],
        b"",
    );
    assert_eq!(r.status, 200);
    // A pass-through keeps the vendor's headers: errgate adds no X-Request-Id.
    assert_eq!(r.header("x-request-id"), None);
    let v = g.access_line("client-id-1");
    assert_eq!(v["route"], "pk");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/pk/systems/abcde");
    assert_eq!(v["status"], 200);
    assert_eq!(v["outcome"], "passthrough");
    assert_eq!(v["upstream_status"], 200);
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(v["attempts"], 1);
    assert_eq!(v["cooldown"], false);
    assert_eq!(v["bytes_out"], r.body.len());
    assert!(v["code"].is_null());
    assert!(v["duration_ms"].as_f64().is_some_and(|d| d > 0.0), "{v}");
    assert!(v["upstream_ms"].as_f64().is_some_and(|d| d > 0.0), "{v}");
    assert!(
        v["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:")),
        "{v}"
    );
    assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    let raw = std::fs::read_to_string(g.dir.path().join(ACCESS_LOG)).expect("log");
    assert!(!raw.contains("sk-query-secret"), "{raw}");
}

#[test]
fn a_problem_carries_one_request_id_in_header_body_and_log() {
    let m = Mock::fixed(json(404, MEMBER_404));
    let g = gate(&m, to_file);
    let body = br#"{"name":"x"}"#;
    let r = g.req(
        "POST",
        "/pk/members/abcde",
        &[(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )],
        body,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let id = r.header("x-request-id").expect("x-request-id").to_string();
    assert_eq!(id.len(), 32, "{id}");
    assert_eq!(r.json()["request_id"], id.as_str());
    let v = g.access_line(&id);
    assert_eq!(v["outcome"], "normalized");
    assert_eq!(v["status"], 404);
    assert_eq!(v["code"], "NOT_FOUND");
    assert_eq!(v["reason"], "MEMBER_NOT_FOUND");
    assert_eq!(v["domain"], "pluralkit");
    assert_eq!(v["upstream_status"], 404);
    assert_eq!(v["upstream_code"], "20002");
    assert_eq!(v["bytes_in"], body.len());
    assert_eq!(v["bytes_out"], r.body.len());
    // An all-zero trace id is invalid: not logged.
    assert!(v["trace_id"].is_null(), "{v}");
}

#[test]
fn a_valid_client_request_id_is_echoed_and_an_invalid_one_replaced() {
    let m = Mock::fixed(json(404, MEMBER_404));
    let g = gate(&m, to_file);
    let r = g.req("GET", "/pk/members/a", &[("X-Request-Id", "abc-42")], b"");
    assert_eq!(r.header("x-request-id"), Some("abc-42"));
    assert_eq!(r.json()["request_id"], "abc-42");
    let long = "x".repeat(129);
    let r = g.req("GET", "/pk/members/a", &[("X-Request-Id", &long)], b"");
    let id = r.header("x-request-id").expect("id").to_string();
    assert_ne!(id, long);
    assert_eq!(r.json()["request_id"], id.as_str());
    g.access_line(&id);
    g.access_line("abc-42");
}

#[test]
fn gateway_answers_and_cooldowns_are_logged() {
    let m = Mock::fixed(response(
        429,
        &[("Content-Type", "application/json"), ("Retry-After", "30")],
        PK_429.as_bytes(),
    ));
    let g = gate(&m, to_file);
    let r = g.req("GET", "/nowhere", &[("X-Request-Id", "r-none")], b"");
    assert_eq!(r.status, 404);
    let v = g.access_line("r-none");
    assert!(v["route"].is_null(), "{v}");
    assert_eq!(v["outcome"], "gateway");
    assert_eq!(v["reason"], "NO_ROUTE");
    assert_eq!(v["attempts"], 0);

    assert_eq!(
        g.req("GET", "/pk/a", &[("X-Request-Id", "r-429")], b"")
            .status,
        429
    );
    let r = g.req("GET", "/pk/a", &[("X-Request-Id", "r-cool")], b"");
    assert_eq!(r.status, 429);
    assert_eq!(m.hits(), 1, "the cooldown kept the vendor out");
    let v = g.access_line("r-cool");
    assert_eq!(v["cooldown"], true);
    assert_eq!(v["attempts"], 0);
    assert_eq!(v["reason"], "UPSTREAM_COOLDOWN");
    assert!(v["upstream_status"].is_null(), "{v}");
    let v = g.access_line("r-429");
    assert_eq!(v["cooldown"], false);
    assert_eq!(v["upstream_status"], 429);
    assert_eq!(g.metric("errgate_access_log_dropped_total"), 0.0);
}

#[test]
fn text_format_keeps_the_query_when_asked() {
    let m = Mock::fixed(json(200, "{}"));
    let g = gate(
        &m,
        |dir| json!({"target": dir.join(ACCESS_LOG), "format": "text", "include_query": true}),
    );
    assert_eq!(
        g.req("GET", "/pk/s?limit=5", &[("X-Request-Id", "t-1")], b"")
            .status,
        200
    );
    let path = g.dir.path().join(ACCESS_LOG);
    let t0 = std::time::Instant::now();
    let line = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("request_id=t-1 ")) {
            break l.to_string();
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(5), "{text}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(line.starts_with("time="), "{line}");
    // `=` in a value gets it quoted (logfmt).
    assert!(
        line.contains(r#" path="/pk/s?limit=5" status=200 "#),
        "{line}"
    );
    assert!(line.contains(" outcome=passthrough "), "{line}");
}

#[test]
fn off_writes_no_line() {
    let m = Mock::fixed(json(200, "{}"));
    let g = gate(&m, |_| json!({"target": "off"}));
    assert_eq!(g.get("/pk/s").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!g.dir.path().join(ACCESS_LOG).exists());
    assert!(!g.log_text().contains("\"request_id\""));
}

#[test]
fn on_by_default_to_stdout() {
    let m = Mock::fixed(json(200, "{}"));
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    assert_eq!(
        g.req("GET", "/pk/s", &[("X-Request-Id", "d-1")], b"")
            .status,
        200
    );
    let path = g.dir.path().join(STDOUT);
    let t0 = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("\"d-1\"")) {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            assert_eq!(v["request_id"], "d-1");
            assert_eq!(v["status"], 200);
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "stdout: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// logrotate's default (`create`): the file is moved away, SIGHUP makes errgate reopen its path;
/// lines after the signal go to the new file, none is lost, the gateway keeps serving.
#[test]
fn sighup_reopens_a_rotated_file() {
    let m = Mock::fixed(json(200, r#"{"id":"abcde"}"#));
    let g = gate(&m, to_file);
    let path = g.dir.path().join(ACCESS_LOG);
    let rotated = g.dir.path().join("access.log.1");
    assert_eq!(
        g.req(
            "GET",
            "/pk/systems/a",
            &[("X-Request-Id", "before-rotation")],
            b""
        )
        .status,
        200
    );
    g.access_line("before-rotation");
    std::fs::rename(&path, &rotated).expect("rotate");
    g.signal("HUP");
    let t0 = std::time::Instant::now();
    while !path.exists() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "SIGHUP did not reopen {}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        g.req(
            "GET",
            "/pk/systems/b",
            &[("X-Request-Id", "after-rotation")],
            b""
        )
        .status,
        200
    );
    let v = g.access_line("after-rotation");
    assert_eq!(v["status"], 200);
    let old = std::fs::read_to_string(&rotated).expect("rotated file");
    assert!(old.contains("before-rotation"), "{old}");
    assert!(!old.contains("after-rotation"), "{old}");
    assert_eq!(m.hits(), 2);
}
