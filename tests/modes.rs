//! Route modes through the real binary: `annotate` (vendor status, headers and body untouched,
//! canonical facts as `X-Errgate-*` headers), `observe` (untouched; no retries, no cooldown
//! answers, counted), the `Accept: application/problem+json` rule and `X-Errgate-Retry: off`.
mod common;
use common::*;
use std::time::{SystemTime, UNIX_EPOCH};

fn reset_ms() -> String {
    (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 2_000)
        .to_string()
}

/// A PluralKit mock: `/members/x` 404 (20002), `/switches` 400 (40005, catalog 409), `/boom`
/// 500, `/limited` 429 with `Retry-After: 2`, anything else 200; PluralKit's full rate-limit
/// header set on every response.
fn pk_mock() -> Mock {
    Mock::start(|req, _| {
        let (status, body): (u16, &[u8]) = match req.path.as_str() {
            "/members/x" => (404, br#"{"message":"Member not found.","code":20002}"#),
            "/switches" => (
                400,
                br#"{"message":"Switch with provided timestamp already exists.","code":40005}"#,
            ),
            "/boom" => (
                500,
                br#"{"message":"Internal server error, try again later","code":0}"#,
            ),
            "/limited" => (
                429,
                br#"{"message":"429: too many requests","retry_after":2000,"code":0}"#,
            ),
            _ => (200, br#"{"id":"abcde"}"#),
        };
        let reset = reset_ms();
        let mut headers = vec![
            ("Content-Type", "application/json; charset=utf-8"),
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "4"),
            ("X-RateLimit-Reset", reset.as_str()),
            ("X-RateLimit-Scope", "generic"),
            ("X-Vendor-Trace", "t-1"),
        ];
        if status == 429 {
            headers.push(("Retry-After", "2"));
        }
        vec![Act::Send(response(status, &headers, body))]
    })
}

fn vendor_body(path: &str) -> &'static [u8] {
    match path {
        "/members/x" => br#"{"message":"Member not found.","code":20002}"#,
        "/switches" => {
            br#"{"message":"Switch with provided timestamp already exists.","code":40005}"#
        }
        "/boom" => br#"{"message":"Internal server error, try again later","code":0}"#,
        _ => br#"{"message":"429: too many requests","retry_after":2000,"code":0}"#,
    }
}

fn assert_vendor_response(r: &Resp, status: u16, path: &str) {
    assert_eq!(r.status, status, "{path}: {}", r.text());
    assert_eq!(r.body, vendor_body(path), "{path}: body changed");
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{path}"
    );
    for (k, v) in [
        ("x-ratelimit-limit", "10"),
        ("x-ratelimit-remaining", "4"),
        ("x-ratelimit-scope", "generic"),
        ("x-vendor-trace", "t-1"),
    ] {
        assert_eq!(r.header(k), Some(v), "{path}: {k}");
    }
}

#[test]
fn annotate_keeps_the_vendor_response_and_adds_the_canonical_facts() {
    let m = pk_mock();
    let g = GateConfig::new()
        .set("cooldown", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()).set("mode", "annotate"))
        .start();
    let r = g.get("/pk/members/x");
    assert_vendor_response(&r, 404, "/members/x");
    assert_eq!(r.header("x-errgate-code"), Some("NOT_FOUND"));
    assert_eq!(r.header("x-errgate-reason"), Some("MEMBER_NOT_FOUND"));
    assert_eq!(r.header("x-errgate-retryable"), Some("false"));
    assert_eq!(r.header("x-errgate-domain"), Some("pluralkit"));
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
    assert_eq!(r.header("retry-after"), None, "non-retryable: no hint");

    // The catalog's 409 does not change the status the SDK sees.
    let r = g.get("/pk/switches");
    assert_vendor_response(&r, 400, "/switches");
    assert_eq!(r.header("x-errgate-code"), Some("ALREADY_EXISTS"));
    assert_eq!(r.header("x-errgate-status"), Some("409"));

    // Retryable, but annotate does not retry unless the route says so.
    let before = m.hits();
    let r = g.get("/pk/boom");
    assert_vendor_response(&r, 500, "/boom");
    assert_eq!(r.header("x-errgate-retryable"), Some("true"));
    assert_eq!(m.hits() - before, 1, "annotate retried");

    // The vendor's own Retry-After is kept as it was; errgate's hint rides in X-Errgate-*.
    let r = g.get("/pk/limited");
    assert_vendor_response(&r, 429, "/limited");
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.header("x-errgate-retry-after-ms"), Some("2000"));

    // Successes pass through untouched, without annotations.
    let r = g.get("/pk/systems/abc");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &br#"{"id":"abcde"}"#[..])
    );
    assert_eq!(r.header("x-errgate-code"), None);

    // A client that asks for problem+json gets it on an annotate route.
    let r = g.req(
        "GET",
        "/pk/switches",
        &[("Accept", "application/problem+json")],
        b"",
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["upstream"]["status"], 400);
    assert_eq!(r.header("x-ratelimit-limit"), Some("10"));

    assert_eq!(
        g.metric(r#"errgate_mode_answers_total{answer="annotated",mode="annotate",route="pk"}"#),
        4.0
    );
    assert_eq!(
        g.metric(r#"errgate_mode_answers_total{answer="problem",mode="annotate",route="pk"}"#),
        1.0
    );
    assert_eq!(
        g.metric(r#"errgate_errors_total{code="NOT_FOUND",domain="pluralkit",reason="MEMBER_NOT_FOUND",route="pk",upstream_code="20002"}"#),
        1.0
    );
}

#[test]
fn annotate_retries_when_the_route_says_so() {
    let m = pk_mock();
    let g = GateConfig::new()
        .route(
            RouteConfig::new("pk", "pluralkit", "/pk", &m.url())
                .set("mode", "annotate")
                .set("retry", json!({"enabled": true, "max_attempts": 2})),
        )
        .start();
    let r = g.get("/pk/boom");
    assert_vendor_response(&r, 500, "/boom");
    assert_eq!(m.hits(), 2, "the route asked for retries");
}

#[test]
fn observe_leaves_everything_untouched_and_counts_what_it_would_have_done() {
    let m = pk_mock();
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()).set("mode", "observe"))
        .start();
    for (path, status) in [("/members/x", 404), ("/switches", 400), ("/boom", 500)] {
        let r = g.req(
            "GET",
            &format!("/pk{path}"),
            &[("Accept", "application/problem+json")],
            b"",
        );
        assert_vendor_response(&r, status, path);
        assert!(
            r.headers
                .iter()
                .all(|(k, _)| !k.to_ascii_lowercase().starts_with("x-errgate")),
            "{path}: {:?}",
            r.headers
        );
    }
    assert_eq!(m.hits(), 3, "observe retried");
    assert_eq!(
        g.metric(r#"errgate_observe_would_total{action="retry",route="pk"}"#),
        1.0
    );
    // A rate limit: passed on, and the next request still reaches the vendor.
    let r = g.get("/pk/limited");
    assert_vendor_response(&r, 429, "/limited");
    let r = g.get("/pk/systems/abc");
    assert_eq!(r.status, 200);
    assert_eq!(m.hits(), 5, "observe answered from its cooldown");
    assert_eq!(
        g.metric(r#"errgate_observe_would_total{action="cooldown",route="pk"}"#),
        1.0
    );
    assert_eq!(
        g.metric(r#"errgate_observe_would_total{action="normalize",route="pk"}"#),
        4.0
    );
    assert_eq!(
        g.metric(r#"errgate_mode_answers_total{answer="untouched",mode="observe",route="pk"}"#),
        4.0
    );
    assert_eq!(
        g.metric(r#"errgate_errors_total{code="INTERNAL",domain="pluralkit",reason="INTERNAL_ERROR",route="pk",upstream_code="0"}"#),
        1.0
    );
}

#[test]
fn a_client_turns_errgate_retries_off_per_request() {
    let m = pk_mock();
    let g = GateConfig::new()
        .set("cooldown", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let r = g.req("GET", "/pk/boom", &[("X-Errgate-Retry", "off")], b"");
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(m.hits(), 1, "retried despite X-Errgate-Retry: off");
    // errgate's own header never reaches the vendor.
    let seen = m.requests.lock().expect("requests").clone();
    assert!(
        seen.iter().all(|r| r.header("x-errgate-retry").is_none()),
        "{seen:?}"
    );
    let r = g.get("/pk/boom");
    assert_eq!(r.status, 500);
    assert_eq!(
        m.hits(),
        3,
        "problem mode retries a retryable GET by default"
    );
    assert_eq!(
        g.metric(r#"errgate_mode_answers_total{answer="problem",mode="problem",route="pk"}"#),
        2.0
    );
}
