//! The vendors' own SDKs against a scripted vendor, directly and through errgate: in `annotate`
//! and `observe` the application sees the same return values, exception classes, messages and
//! pacing; in `problem` the SDK still paces itself from the vendor's rate-limit headers.
//!
//! Prerequisites (installed by `.ci/install.d/30-sdks.sh`): python3 with the PyPI `pluralkit`
//! package. A missing prerequisite FAILS the test with a message saying what to install.
mod common;
use common::*;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Pacing window the scripted vendor announces on every response.
const WINDOW_MS: u128 = 400;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis()
}

/// PluralKit as scripted: every response carries its full rate-limit header set with
/// `Remaining: 0` and a reset `WINDOW_MS` ahead (Unix milliseconds), so the SDK waits before its
/// next call; `/members/abcde` 404 (20002), `/systems/zzzzz` 404 (20001), `/members/limit` 429.
fn pluralkit_vendor() -> Mock {
    Mock::start(|req, _| {
        let reset = (now_ms() + WINDOW_MS).to_string();
        let (status, body): (u16, &[u8]) = match req.path.as_str() {
            "/members/abcde" => (404, br#"{"message":"Member not found.","code":20002}"#),
            "/systems/zzzzz" => (404, br#"{"message":"System not found.","code":20001}"#),
            _ => (
                429,
                br#"{"message":"429: too many requests","retry_after":300,"scope":"generic","code":0}"#,
            ),
        };
        let headers = [
            ("Content-Type", "application/json"),
            ("X-RateLimit-Limit", "2"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", reset.as_str()),
            ("X-RateLimit-Scope", "generic"),
        ];
        vec![Act::Send(response(status, &headers, body))]
    })
}

/// Runs an SDK script (`program script base` in `tests/sdk/DIR`) and parses the JSON lines it
/// prints; `package` names what to install when the script reports it missing.
fn run_sdk(
    program: &str,
    dir: &str,
    script: &str,
    package: &str,
    base: &str,
) -> Vec<serde_json::Value> {
    let o = Command::new(program)
        .arg(script)
        .arg(base)
        .current_dir(repo().join("tests/sdk").join(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is required for the SDK tests (.ci/install.d/30-sdks.sh): {e}")
        });
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        !out.contains("\"missing\""),
        "the {package} is not installed; run `bash .ci/install.d/30-sdks.sh`:\n{out}"
    );
    assert!(
        o.status.success(),
        "SDK script failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn run_python(base: &str) -> Vec<serde_json::Value> {
    run_sdk(
        "python3",
        "python",
        "pluralkit_calls.py",
        "PyPI package `pluralkit`",
        base,
    )
}

/// What the application saw, without timings.
fn seen(lines: &[serde_json::Value]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
            (s("call"), s("exception"), s("message"))
        })
        .collect()
}

fn total_time(lines: &[serde_json::Value]) -> f64 {
    lines.last().and_then(|l| l["t"].as_f64()).unwrap_or(0.0)
}

#[test]
fn pluralkit_sdk_sees_the_same_through_annotate_and_observe() {
    let vendor = pluralkit_vendor();
    let direct = run_python(&vendor.url());
    let want = seen(&direct);
    assert_eq!(want.len(), 4, "{direct:#?}");
    assert_eq!(want[0].1, "MemberNotFound", "{direct:#?}");
    assert_eq!(want[0].2, "20002: Member not found.");
    assert_eq!(want[1].1, "SystemNotFound");
    // The SDK paced itself from X-RateLimit-Reset (Unix ms): three waits of ~WINDOW_MS.
    let paced = total_time(&direct);
    assert!(paced >= 0.9, "direct calls not paced: {direct:#?}");

    for mode in ["annotate", "observe"] {
        let g = GateConfig::new()
            .route(RouteConfig::new("pk", "pluralkit", "/pk", &vendor.url()).set("mode", mode))
            .start();
        let before = vendor.hits();
        let through = run_python(&format!("http://127.0.0.1:{}/pk", g.port));
        assert_eq!(seen(&through), want, "{mode}: {through:#?}");
        let t = total_time(&through);
        // Pacing: the SDK waits for each announced reset through errgate too (three waits of
        // WINDOW_MS at least). Absolute times vary with machine load, so the bound is the
        // vendor's window, not the direct run's wall time.
        assert!(
            t >= 0.9,
            "{mode}: not paced: direct {paced}s, through errgate {t}s"
        );
        // No retries and no cooldown answers: the vendor saw each call exactly once.
        assert_eq!(vendor.hits() - before, 4, "{mode}");
    }
}

#[test]
fn pluralkit_sdk_keeps_pacing_in_problem_mode() {
    let vendor = pluralkit_vendor();
    let g = GateConfig::new()
        .set("cooldown", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &vendor.url()))
        .start();
    let through = run_python(&format!("http://127.0.0.1:{}/pk", g.port));
    let got = seen(&through);
    // Same statuses, so the same exception classes; the rate-limit headers ride along on the
    // problem answers, so the SDK still waits for the reset (read as Unix milliseconds by both).
    assert_eq!(got[0].1, "MemberNotFound", "{through:#?}");
    assert_eq!(got[1].1, "SystemNotFound", "{through:#?}");
    assert!(total_time(&through) >= 0.9, "not paced: {through:#?}");
    // The 429's hint is the body's 300 ms or the reset ~400 ms away, never five minutes.
    let r = g.get("/pk/members/limit");
    assert_eq!(r.status, 429);
    let ms = r.json()["retry_after_ms"].as_u64().expect("hint");
    assert!(ms <= 1_000, "retry_after_ms {ms}");
    assert_eq!(r.header("x-ratelimit-scope"), Some("generic"));
    // A non-retryable error carries no hint.
    let r = g.get("/pk/members/abcde");
    assert_eq!(r.header("retry-after"), None);
    assert!(r.json().get("retry_after_ms").is_none());
}

/// microCMS's Content API as scripted.
fn microcms_vendor() -> Mock {
    Mock::start(|req, _| {
        let (status, body): (u16, &[u8]) = match req.path.as_str() {
            "/api/v1/blogs" => (
                200,
                br#"{"contents":[],"totalCount":0,"offset":0,"limit":10}"#,
            ),
            "/api/v1/blogs/missing" => (404, br#"{"message":"Content is not found."}"#),
            "/api/v1/blogs?limit=200" => (
                400,
                br#"{"message":"limit must be less than or equal to 100"}"#,
            ),
            _ => (500, br#"{"message":"Internal Server Error"}"#),
        };
        vec![Act::Send(response(
            status,
            &[("Content-Type", "application/json; charset=utf-8")],
            body,
        ))]
    })
}

fn run_node(base: &str) -> Vec<serde_json::Value> {
    run_sdk(
        "node",
        "node",
        "microcms_calls.mjs",
        "npm package `microcms-js-sdk`",
        base,
    )
}

#[test]
fn microcms_sdk_sees_the_same_through_annotate_and_observe() {
    let vendor = microcms_vendor();
    let direct = run_node(&vendor.url());
    assert_eq!(direct.len(), 4, "{direct:#?}");
    assert!(
        direct[0]["ok"]
            .as_str()
            .is_some_and(|s| s.contains("totalCount")),
        "{direct:#?}"
    );
    assert_eq!(direct[1]["status"], 404, "{direct:#?}");
    assert!(direct[1]["message"]
        .as_str()
        .is_some_and(|m| m.contains("Content is not found.")));
    assert_eq!(direct[3]["status"], 500, "{direct:#?}");
    for mode in ["annotate", "observe"] {
        let g = GateConfig::new()
            .route(RouteConfig::new("mc", "microcms", "/mc", &vendor.url()).set("mode", mode))
            .start();
        let before = vendor.hits();
        let through = run_node(&format!("http://127.0.0.1:{}/mc", g.port));
        assert_eq!(through, direct, "{mode}");
        // errgate did not add retries to the 500 (the SDK decides on its own retries).
        assert_eq!(vendor.hits() - before, 4, "{mode}");
    }
    // In problem mode the missing item is CONTENT_ITEM_NOT_FOUND, not a mistyped URL.
    let g = GateConfig::new()
        .route(RouteConfig::new("mc", "microcms", "/mc", &vendor.url()))
        .start();
    let r = g.get("/mc/api/v1/blogs/missing");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["reason"], "CONTENT_ITEM_NOT_FOUND");
}
