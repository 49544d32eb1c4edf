//! Retry hints, cooldown and retries, end to end through the real binary (contract §2, §7).
mod common;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Retries and cooldown off: each request is exactly one vendor call, answered as is.
/// Retry and cooldown off.
fn plain() -> GateConfig {
    GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .set("cooldown", json!({"enabled": false}))
}

/// PluralKit's rate-limiter answer, without a body hint.
const PK_429: &str = r#"{"message":"429: too many requests","code":0}"#;

fn pk429(headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    response(429, &h, body.as_bytes())
}

fn pk503(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    response(503, &h, br#"{"message":"Service Unavailable"}"#)
}

const OK_BODY: &str = r#"{"id":"abcde","name":"ok"}"#;

/// One gateway with route `pk` (PluralKit) in front of a mock answering `resp` to everything.
fn gate_fixed(resp: Vec<u8>, cfg: GateConfig) -> (Gate, Mock) {
    let m = Mock::fixed(resp);
    let g = cfg
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    (g, m)
}

fn retry_after_ms(r: &Resp) -> Option<u64> {
    r.json().get("retry_after_ms").and_then(|v| v.as_u64())
}

fn retry_after_header(r: &Resp) -> Option<u64> {
    r.header("retry-after").map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("Retry-After {v:?}"))
    })
}

/// A canonical rate-limit answer from PluralKit carrying a hint; returns the hint (ms, secs).
fn assert_pk_rate_limited(r: &Resp) -> (u64, u64) {
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let v = r.json();
    assert_problem_schema(&v);
    assert_eq!(v["domain"], "pluralkit");
    assert_eq!(v["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(v["reason"], "RATE_LIMITED");
    let ms = retry_after_ms(r).unwrap_or_else(|| panic!("no retry_after_ms: {v:#}"));
    let secs = retry_after_header(r).expect("Retry-After header");
    assert_eq!(
        secs,
        ms.div_ceil(1000).max(1),
        "Retry-After vs retry_after_ms"
    );
    (ms, secs)
}

#[test]
fn retry_after_delay_seconds() {
    let (g, m) = gate_fixed(pk429(&[("Retry-After", "2")], PK_429), plain());
    let r = g.get("/pk/systems/abc");
    assert_eq!(assert_pk_rate_limited(&r), (2000, 2));
    assert_eq!(m.hits(), 1);
}

#[test]
fn retry_after_http_date_in_the_future() {
    let m = Mock::start(|_, _| {
        let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
        vec![Act::Send(pk429(&[("Retry-After", &at)], PK_429))]
    });
    let g = plain()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let r = g.get("/pk/systems/abc");
    let (ms, secs) = assert_pk_rate_limited(&r);
    // The date has whole-second resolution: 3 s ahead, truncated, seen a moment later.
    assert!((1500..=3000).contains(&ms), "retry_after_ms {ms}");
    assert!((2..=3).contains(&secs), "Retry-After {secs}");
}

/// A PluralKit 429 without any hint errgate believes: still the canonical rate limit, no hint.
fn assert_pk_rate_limited_without_hint(r: &Resp) {
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert_problem_schema(&v);
    assert_eq!(v["reason"], "RATE_LIMITED");
    assert!(v.get("retry_after_ms").is_none(), "{v:#}");
    assert_eq!(r.header("retry-after"), None);
}

#[test]
fn retry_after_http_date_in_the_past_is_rejected_and_counted() {
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    let (g, _m) = gate_fixed(pk429(&[("Retry-After", &past)], PK_429), plain());
    assert_pk_rate_limited_without_hint(&g.get("/pk/systems/abc"));
    // With the body's own hint, that one is used instead.
    let body = r#"{"message":"429: too many requests","retry_after":1500,"code":0}"#;
    let (g2, _m2) = gate_fixed(pk429(&[("Retry-After", &past)], body), plain());
    assert_eq!(assert_pk_rate_limited(&g2.get("/pk/x")), (1500, 2));
}

#[test]
fn pluralkit_body_retry_after_millis() {
    let body =
        r#"{"message":"429: too many requests","retry_after":2543,"scope":"generic","code":0}"#;
    let (g, _m) = gate_fixed(pk429(&[], body), plain());
    let r = g.get("/pk/systems/abc");
    assert_eq!(assert_pk_rate_limited(&r), (2543, 3));
    assert_eq!(r.json()["retryable"], true);
    assert_eq!(
        r.json()["upstream"],
        json!({"status": 429, "code": "0", "message": "429: too many requests"})
    );
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[test]
fn pluralkit_x_ratelimit_reset_is_unix_millis() {
    let m = Mock::start(|req, _| {
        let reset = if req.path.ends_with("/future") {
            (now_unix_ms() + 2_500).to_string()
        } else {
            // A small number is a time in 1970 in this form: in the past, rejected.
            "7".to_string()
        };
        let headers = [
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", reset.as_str()),
            ("X-RateLimit-Scope", "generic"),
        ];
        vec![Act::Send(pk429(&headers, PK_429))]
    });
    let g = plain()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let (ms, secs) = assert_pk_rate_limited(&g.get("/pk/x/future"));
    // 2.5 s, not five minutes: the reset is milliseconds since the epoch.
    assert!((1_000..=2_500).contains(&ms), "retry_after_ms {ms}");
    assert!((1..=3).contains(&secs), "Retry-After {secs}");
    assert_pk_rate_limited_without_hint(&g.get("/pk/x/past"));
    assert_eq!(
        g.metric(r#"errgate_retry_hints_rejected_total{reason="in_past",route="pk"}"#),
        1.0
    );
    assert!(
        g.log_text().contains("Rejected a vendor retry hint."),
        "{}",
        g.log_text()
    );
}

#[test]
fn non_retryable_pluralkit_errors_carry_no_retry_hint() {
    let m = Mock::start(|_, _| {
        let reset = (now_unix_ms() + 2_500).to_string();
        let headers = [
            ("Content-Type", "application/json"),
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "9"),
            ("X-RateLimit-Reset", reset.as_str()),
            ("X-RateLimit-Scope", "generic"),
        ];
        vec![Act::Send(response(
            404,
            &headers,
            br#"{"message":"Member not found.","code":20002}"#,
        ))]
    });
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    for _ in 0..2 {
        let r = g.get("/pk/members/abc");
        assert_eq!(r.status, 404, "{}", r.text());
        let v = r.json();
        assert_eq!(v["reason"], "MEMBER_NOT_FOUND");
        assert!(v.get("retry_after_ms").is_none(), "{v:#}");
        assert_eq!(r.header("retry-after"), None);
    }
    // No cooldown either: both requests reached the vendor.
    assert_eq!(m.hits(), 2);
}

#[test]
fn malformed_retry_after_is_ignored() {
    let pk = Mock::start(|req, _| {
        let v = match req.path.rsplit('/').next() {
            Some("word") => "soon",
            Some("negative") => "-5",
            Some("fraction") => "1.5",
            _ => "Mon, 99 Foo 2020 99:99:99 GMT",
        };
        vec![Act::Send(pk429(&[("Retry-After", v)], PK_429))]
    });
    let mc = Mock::fixed(response(
        429,
        &[
            ("Content-Type", "application/json"),
            ("Retry-After", "soon"),
        ],
        br#"{"message":"Too Many Requests"}"#,
    ));
    let g = plain()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &pk.url()))
        .route(RouteConfig::new("mc", "microcms", "/mc", &mc.url()))
        .start();
    for case in ["word", "negative", "fraction", "date"] {
        let r = g.get(&format!("/pk/x/{case}"));
        assert_eq!(r.status, 429, "{case}: {}", r.text());
        let v = r.json();
        assert_problem_schema(&v);
        assert_eq!(v["reason"], "RATE_LIMITED", "{case}");
        assert!(v.get("retry_after_ms").is_none(), "{case}: {v:#}");
        assert_eq!(r.header("retry-after"), None, "{case}");
    }
    // microCMS's 429 entry has a catalog default, which applies when the header is unusable.
    let r = g.get("/mc/api/v1/contents");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["domain"], "microcms");
    assert_eq!(retry_after_ms(&r), Some(1000));
    assert_eq!(retry_after_header(&r), Some(1));
    // errgate keeps serving.
    assert_eq!(g.admin_get("/healthz").status, 200);
    assert_eq!(g.get("/pk/x/word").status, 429);
    assert_eq!(pk.hits(), 5);
}

#[test]
fn catalog_default_hints_for_rate_limit_codes() {
    let tim = Mock::start(|req, _| {
        let code = if req.path.ends_with("/60011") {
            60011
        } else {
            60007
        };
        let body = format!(r#"{{"ActionStatus":"FAIL","ErrorCode":{code},"ErrorInfo":"rate"}}"#);
        vec![Act::Send(json(200, &body))]
    });
    let mc = Mock::fixed(json(429, r#"{"message":"Too Many Requests"}"#));
    let g = plain()
        .route(RouteConfig::new("tim", "tencent-im", "/tim", &tim.url()))
        .route(RouteConfig::new("mc", "microcms", "/mc", &mc.url()))
        .start();
    for (path, reason, domain) in [
        ("/tim/v4/x/60007", "REST_RATE_LIMITED", "tencent-im"),
        ("/tim/v4/x/60011", "APPID_RATE_LIMITED", "tencent-im"),
        ("/mc/api/v1/contents", "RATE_LIMITED", "microcms"),
    ] {
        let r = g.get(path);
        assert_eq!(r.status, 429, "{path}: {}", r.text());
        let v = r.json();
        assert_problem_schema(&v);
        assert_eq!(v["reason"], reason, "{path}");
        assert_eq!(v["domain"], domain, "{path}");
        assert_eq!(v["code"], "RESOURCE_EXHAUSTED", "{path}");
        assert_eq!(v["retry_after_ms"], 1000, "{path}");
        assert_eq!(r.header("retry-after"), Some("1"), "{path}");
    }
}

#[test]
fn hint_beyond_retry_after_max_is_rejected_not_capped() {
    let m = Mock::start(|req, _| {
        if req.path.ends_with("/header") {
            vec![Act::Send(pk429(&[("Retry-After", "3600")], PK_429))]
        } else if req.path.ends_with("/both") {
            let body = r#"{"message":"429: too many requests","retry_after":2000,"code":0}"#;
            vec![Act::Send(pk429(&[("Retry-After", "3600")], body))]
        } else {
            let body = r#"{"message":"429: too many requests","retry_after":99999999,"code":0}"#;
            vec![Act::Send(pk429(&[], body))]
        }
    });
    let g = plain()
        .set("retry_after_max", "10s")
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    assert_pk_rate_limited_without_hint(&g.get("/pk/x/header"));
    assert_pk_rate_limited_without_hint(&g.get("/pk/x/body"));
    assert_eq!(assert_pk_rate_limited(&g.get("/pk/x/both")), (2000, 2));
    assert_eq!(
        g.metric(r#"errgate_retry_hints_rejected_total{reason="beyond_max",route="pk"}"#),
        3.0
    );
}

#[test]
fn cooldown_holds_back_until_the_hint_expires() {
    let m = Mock::start(|_, n| {
        if n == 0 {
            vec![Act::Send(pk429(&[("Retry-After", "2")], PK_429))]
        } else {
            vec![Act::Send(json(200, OK_BODY))]
        }
    });
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let r1 = g.get("/pk/systems/abc");
    let t1 = Instant::now();
    assert_eq!(assert_pk_rate_limited(&r1), (2000, 2));
    assert_eq!(m.hits(), 1);

    // Inside the window: errgate answers itself and the vendor never sees the request.
    let r2 = g.get("/pk/systems/abc");
    assert_eq!(r2.status, 429, "{}", r2.text());
    let v = r2.json();
    assert_problem_schema(&v);
    assert_eq!(v["domain"], "errgate");
    assert_eq!(v["reason"], "UPSTREAM_COOLDOWN");
    assert_eq!(v["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(v["retryable"], true);
    assert!(v["upstream"].is_null());
    let left = retry_after_ms(&r2).expect("retry_after_ms");
    assert!((1..=2000).contains(&left), "remaining {left}");
    let secs = retry_after_header(&r2).expect("Retry-After");
    assert!((1..=2).contains(&secs), "Retry-After {secs}");
    assert_eq!(m.hits(), 1, "the vendor was contacted during the cooldown");
    assert_eq!(
        g.metric(r#"errgate_cooldown_rejections_total{route="pk"}"#),
        1.0
    );

    // After the window the vendor is contacted again.
    std::thread::sleep(
        (t1 + Duration::from_millis(2200)).saturating_duration_since(Instant::now()),
    );
    let r3 = g.get("/pk/systems/abc");
    assert_eq!(r3.status, 200, "{}", r3.text());
    assert_eq!(r3.body, OK_BODY.as_bytes());
    assert_eq!(m.hits(), 2);
    assert_eq!(
        g.metric(r#"errgate_cooldown_rejections_total{route="pk"}"#),
        1.0
    );
}

#[test]
fn cooldown_is_keyed_by_the_configured_header() {
    let m = Mock::start(|req, _| {
        if req.header("x-api-key") == Some("key-a") {
            vec![Act::Send(pk429(&[("Retry-After", "30")], PK_429))]
        } else {
            vec![Act::Send(json(200, OK_BODY))]
        }
    });
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .set("cooldown", json!({"key_header": "x-api-key"}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let with_key = |k: &str| g.req("GET", "/pk/systems/abc", &[("X-Api-Key", k)], b"");
    assert_pk_rate_limited(&with_key("key-a"));
    assert_eq!(m.hits(), 1);
    let held = with_key("key-a");
    assert_eq!(held.status, 429);
    assert_eq!(held.json()["reason"], "UPSTREAM_COOLDOWN");
    assert_eq!(m.hits(), 1);
    // Another key, and no key at all, are not held back.
    let other = with_key("key-b");
    assert_eq!(other.status, 200, "{}", other.text());
    assert_eq!(m.hits(), 2);
    let none = g.get("/pk/systems/abc");
    assert_eq!(none.status, 200, "{}", none.text());
    assert_eq!(m.hits(), 3);
    // The first key is still held.
    assert_eq!(with_key("key-a").json()["reason"], "UPSTREAM_COOLDOWN");
    assert_eq!(m.hits(), 3);
    assert_eq!(
        g.metric(r#"errgate_cooldown_rejections_total{route="pk"}"#),
        2.0
    );
    // The key reached the vendor (it is only hashed inside errgate's table).
    let reqs = m.requests.lock().expect("requests");
    assert_eq!(reqs[0].header("x-api-key"), Some("key-a"));
}

/// A mock failing the first call with 503 + `Retry-After: 1`, then answering 200; it records
/// when each request arrived.
fn flaky_503() -> (Mock, Arc<Mutex<Vec<Instant>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let m = Mock::start(move |_, n| {
        s2.lock().expect("seen").push(Instant::now());
        if n == 0 {
            vec![Act::Send(pk503(&[("Retry-After", "1")]))]
        } else {
            vec![Act::Send(json(200, OK_BODY))]
        }
    });
    (m, seen)
}

#[test]
fn get_is_retried_after_the_hint_and_recovers() {
    let (m, seen) = flaky_503();
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let t0 = Instant::now();
    let r = g.get("/pk/systems/abc");
    let took = t0.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, OK_BODY.as_bytes());
    assert_eq!(m.hits(), 2);
    assert!(took >= Duration::from_secs(1), "answered after {took:?}");
    let seen = seen.lock().expect("seen").clone();
    let gap = seen[1] - seen[0];
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    assert_eq!(g.retries("pk", "retry"), 1.0);
    assert_eq!(g.retries("pk", "recovered"), 1.0);
    assert_eq!(
        g.metric(r#"errgate_requests_total{outcome="passthrough",route="pk",status="200"}"#),
        1.0
    );
}

#[test]
fn post_is_not_retried() {
    let (m, _) = flaky_503();
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let t0 = Instant::now();
    let r = g.req(
        "POST",
        "/pk/systems/abc/switches",
        &[("Content-Type", "application/json")],
        br#"{"members":["abcde"]}"#,
    );
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_problem_schema(&v);
    assert_eq!(v["code"], "UNAVAILABLE");
    assert_eq!(v["domain"], "pluralkit");
    assert_eq!(v["retryable"], true);
    assert_eq!(v["retry_after_ms"], 1000);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(m.hits(), 1);
    assert_eq!(g.retries("pk", "not_idempotent"), 1.0);
    assert_eq!(g.retries("pk", "retry"), 0.0);
}

#[test]
fn post_with_idempotency_key_is_retried_with_the_same_body() {
    let (m, _) = flaky_503();
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let body = br#"{"members":["abcde"]}"#;
    let r = g.req(
        "POST",
        "/pk/systems/abc/switches",
        &[
            ("Content-Type", "application/json"),
            ("Idempotency-Key", "k-1"),
        ],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.hits(), 2);
    let reqs = m.requests.lock().expect("requests");
    assert_eq!(reqs[0].body, body);
    assert_eq!(reqs[1].body, body);
}

#[test]
fn get_with_hint_over_max_wait_is_not_retried() {
    let (g, m) = gate_fixed(pk503(&[("Retry-After", "5")]), GateConfig::new());
    let t0 = Instant::now();
    let r = g.get("/pk/systems/abc");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["retry_after_ms"], 5000);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(m.hits(), 1);
    assert_eq!(g.retries("pk", "hint_too_long"), 1.0);
    assert_eq!(g.retries("pk", "retry"), 0.0);
}

#[test]
fn retries_exhausted_are_counted() {
    let (g, m) = gate_fixed(pk503(&[("Retry-After", "1")]), GateConfig::new());
    let r = g.get("/pk/systems/abc");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(m.hits(), 2, "default max_attempts is 2");
    assert_eq!(g.retries("pk", "retry"), 1.0);
    assert_eq!(g.retries("pk", "exhausted"), 1.0);
}

#[test]
fn gateway_error_without_hint_is_retried_with_backoff() {
    // The first connection is reset before any answer: errgate's own retryable UPSTREAM_RESET.
    let m = Mock::start(|_, n| {
        if n == 0 {
            vec![Act::Reset]
        } else {
            vec![Act::Send(json(200, OK_BODY))]
        }
    });
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let t0 = Instant::now();
    let r = g.get("/pk/systems/abc");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, OK_BODY.as_bytes());
    assert_eq!(m.hits(), 2);
    // Backoff without a hint is at most max_wait (2 s).
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(g.retries("pk", "retry"), 1.0);
    assert_eq!(g.retries("pk", "recovered"), 1.0);
}
