//! Request headers removed before the vendor (`strip_request_headers`), proven on the vendor's
//! side: the mock records every header it receives.
mod common;
use common::*;

const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Two routes on one mock: `a` adds `x-internal-auth` to the list, `b` does not.
fn gate(m: &Mock, cfg: GateConfig) -> Gate {
    let url = m.url();
    cfg.route(
        RouteConfig::new("a", "pluralkit", "/a", &url)
            .set("strip_request_headers", json!(["X-Internal-Auth"]))
            .set("upstream_headers", json!({"X-Api-Key": "injected"})),
    )
    .route(RouteConfig::new("b", "pluralkit", "/b", &url))
    .start()
}

const SENT: &[(&str, &str)] = &[
    ("Cookie", "session=internal"),
    ("traceparent", TRACE),
    ("tracestate", "vendorx=1"),
    ("baggage", "user=42"),
    ("X-Forwarded-For", "10.1.2.3"),
    ("X-Internal-Auth", "svc-token"),
    ("Authorization", "Bearer client-vendor-key"),
    ("X-Request-Id", "rid-7"),
    ("X-Api-Key", "from-client"),
];

fn seen(m: &Mock, i: usize) -> Req {
    m.requests.lock().expect("lock")[i].clone()
}

#[test]
fn default_list_and_route_additions_never_reach_the_vendor() {
    let m = Mock::fixed(json(200, "{}"));
    let g = gate(&m, GateConfig::new());
    assert_eq!(g.req("GET", "/a/x", SENT, b"").status, 200);
    assert_eq!(g.req("GET", "/b/x", SENT, b"").status, 200);
    let (a, b) = (seen(&m, 0), seen(&m, 1));
    for h in [
        "cookie",
        "traceparent",
        "tracestate",
        "baggage",
        "x-forwarded-for",
    ] {
        assert_eq!(a.header(h), None, "route a forwarded {h}");
        assert_eq!(b.header(h), None, "route b forwarded {h}");
    }
    assert_eq!(a.header("x-internal-auth"), None);
    // The route-level list adds to the top-level one for its route only.
    assert_eq!(b.header("x-internal-auth"), Some("svc-token"));
    // Headers the vendor needs still arrive; errgate's own upstream_headers win.
    assert_eq!(a.header("authorization"), Some("Bearer client-vendor-key"));
    assert_eq!(a.header("x-request-id"), Some("rid-7"));
    assert_eq!(a.header("x-api-key"), Some("injected"));
    assert_eq!(b.header("x-api-key"), Some("from-client"));
}

#[test]
fn an_empty_top_level_list_forwards_what_the_default_strips() {
    let m = Mock::fixed(json(200, "{}"));
    let g = gate(
        &m,
        GateConfig::new().set("strip_request_headers", json!([])),
    );
    assert_eq!(g.req("GET", "/b/x", SENT, b"").status, 200);
    let b = seen(&m, 0);
    assert_eq!(b.header("cookie"), Some("session=internal"));
    assert_eq!(b.header("traceparent"), Some(TRACE));
}

#[test]
fn stripped_headers_stay_out_on_retries_too() {
    // First attempt 503 (retryable), second 200: both attempts are checked.
    let m = Mock::start(|_, n| {
        if n == 0 {
            vec![Act::Send(json(503, r#"{"message":"busy","code":0}"#))]
        } else {
            vec![Act::Send(json(200, "{}"))]
        }
    });
    let g = gate(
        &m,
        GateConfig::new().set("retry", json!({"backoff_base": "1ms"})),
    );
    let r = g.req("GET", "/a/x", SENT, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.hits(), 2);
    for i in 0..2 {
        let seen = seen(&m, i);
        assert_eq!(seen.header("cookie"), None);
        assert_eq!(seen.header("x-internal-auth"), None);
    }
}
