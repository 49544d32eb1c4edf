//! `GET /uncataloged` through the real proxy: uncataloged codes and messages per route, counted,
//! with the route's injected secret redacted; `errgate catalog suggest --from-url` reads it.
mod common;
use common::*;
use std::process::Command;

const KEY: &str = "sk_live_0123456789abcdef";

#[test]
fn uncataloged_errors_are_listed_with_secrets_redacted_and_suggested() {
    let m = Mock::start(|req, _| {
        let body: &[u8] = match req.path.as_str() {
            // The vendor echoes the injected key back in its message.
            "/webhooks/a" => {
                br#"{"code":20011,"message":"Webhook not found for key sk_live_0123456789abcdef."}"#
            }
            "/members/a" => br#"{"code":20002,"message":"Member not found."}"#,
            _ => b"<html>bad gateway</html>",
        };
        let status = if req.path == "/other" { 502 } else { 404 };
        vec![Act::Send(response(
            status,
            &[("Content-Type", "application/json")],
            body,
        ))]
    });
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()).set(
            "upstream_headers",
            json!({"Authorization": format!("Bearer {KEY}")}),
        ))
        .start();
    for _ in 0..3 {
        assert_eq!(g.get("/pk/webhooks/a").status, 404);
    }
    assert_eq!(g.get("/pk/members/a").status, 404);
    assert_eq!(g.get("/pk/other").status, 503);
    // The key reached the vendor (so there was something to redact).
    let r = g.admin_get("/uncataloged");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let text = r.text();
    assert!(!text.contains(KEY), "secret leaked: {text}");
    let v = r.json();
    assert_eq!(v["overflow"], 0);
    assert_eq!(v["max_entries"], 1000);
    let entries = v["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{v:#}");
    let e = &entries[0];
    assert_eq!(e["route"], "pk");
    assert_eq!(e["vendor"], "pluralkit");
    assert_eq!(e["code"], "20011");
    assert_eq!(e["status"], 404);
    assert_eq!(e["count"], 3);
    assert_eq!(e["message"], "Webhook not found for key [redacted].");
    assert!(e["first_seen_unix"].as_u64() <= e["last_seen_unix"].as_u64());
    let e = &entries[1];
    assert_eq!(
        (e["code"].clone(), e["status"].clone()),
        (serde_json::Value::Null, 502.into())
    );

    let o = Command::new(env!("CARGO_BIN_EXE_errgate"))
        .args([
            "catalog",
            "suggest",
            "--config",
            "config/errgate.yaml",
            "--from-url",
            &format!("http://127.0.0.1:{}/uncataloged", g.admin),
        ])
        .current_dir(repo())
        .output()
        .expect("run suggest");
    let y = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{y}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(y.contains("# seen 3x on route pk, HTTP 404"), "{y}");
    assert!(
        y.contains("  - code: \"20011\"\n    vendor_status: 404\n    canonical: NOT_FOUND\n"),
        "{y}"
    );
    assert!(
        y.contains("original: \"Webhook not found for key [redacted].\""),
        "{y}"
    );
    assert!(y.contains("canonical: UNAVAILABLE"), "{y}");
    assert!(!y.contains(KEY));
}

#[test]
fn uncataloged_answers_only_get() {
    let m = Mock::fixed(json(200, "{}"));
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    assert_eq!(
        g.admin_get("/uncataloged").json()["entries"],
        serde_json::json!([])
    );
    let r = request(g.admin, "POST", "/uncataloged", &[], b"");
    assert_eq!(r.status, 405);
}
