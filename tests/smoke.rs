//! The README's promise: `errgate run` answers an unreachable vendor with UNAVAILABLE.
mod common;
use common::*;

#[test]
fn unreachable_vendor_gets_canonical_unavailable() {
    let dead = free_port();
    let up = format!("http://127.0.0.1:{dead}");
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &up))
        .start();
    let r = g.get("/pluralkit/systems/abc");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let v = r.json();
    assert_problem_schema(&v);
    assert_eq!(v["code"], "UNAVAILABLE");
    assert_eq!(v["domain"], "errgate");
    assert!(v["upstream"].is_null());
}
