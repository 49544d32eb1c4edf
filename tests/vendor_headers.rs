//! The vendor's end-to-end headers survive a rewrite: rate-limit headers ride along on the
//! problem answer, framing/representation and hop-by-hop headers do not.
mod common;
use common::*;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[test]
fn pluralkit_rate_limit_headers_ride_along_on_problem_answers() {
    let m = Mock::start(|req, _| {
        let reset = (now_ms() + 2_000).to_string();
        let (status, body): (u16, &[u8]) = if req.path.ends_with("/limited") {
            (
                429,
                br#"{"message":"429: too many requests","retry_after":2000,"code":0}"#,
            )
        } else {
            (404, br#"{"message":"Member not found.","code":20002}"#)
        };
        let headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Language", "en"),
            ("ETag", "\"abc\""),
            ("Connection", "x-hop"),
            ("X-Hop", "1"),
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "3"),
            ("X-RateLimit-Reset", reset.as_str()),
            ("X-RateLimit-Scope", "generic"),
            ("RateLimit-Policy", "10;w=1"),
            ("Retry-After", "120"),
            ("X-Request-Id", "vendor-id"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ];
        vec![Act::Send(response(status, &headers, body))]
    });
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .set("cooldown", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    for path in ["/pk/members/x", "/pk/x/limited"] {
        let r = g.get(path);
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        for (k, v) in [
            ("x-ratelimit-limit", "10"),
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-scope", "generic"),
            ("ratelimit-policy", "10;w=1"),
        ] {
            assert_eq!(r.header(k), Some(v), "{path}: {k}");
        }
        assert!(r.header("x-ratelimit-reset").is_some(), "{path}");
        let cookies: Vec<&str> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cookies, ["a=1", "b=2"], "{path}");
        for gone in ["content-language", "etag", "x-hop"] {
            assert_eq!(r.header(gone), None, "{path}: {gone} kept");
        }
        assert_ne!(r.header("x-request-id"), Some("vendor-id"), "{path}");
        assert_eq!(
            r.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .count(),
            1
        );
    }
    // Non-retryable: the vendor's Retry-After does not ride along and errgate adds none.
    let r = g.get("/pk/members/x");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("retry-after"), None);
    // The 429 carries errgate's own hint (2 s from the body; the header's 120 s is believed
    // and is read first, within retry_after_max).
    let r = g.get("/pk/x/limited");
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("120"));
}
