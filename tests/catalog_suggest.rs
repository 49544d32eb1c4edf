//! `errgate catalog suggest`: from captured responses and from the admin listener's
//! `GET /uncataloged`, the suggested entries paste into the vendor's catalog and pass
//! `errgate check`; `explain` then knows the new code.
mod common;
use common::run::{errgate, show};
use common::*;

use std::path::{Path, PathBuf};

/// A copy of the shipped catalogs with the suggestions pasted at the end of each vendor's file
/// (every shipped catalog ends with its `entries:` list), and a config naming all five vendors.
fn paste(suggestions: &str, dir: &Path) -> PathBuf {
    let cats = dir.join("catalogs");
    copy_catalogs(&cats);
    // Sections start with `# --- VENDOR: paste under ...`.
    let mut vendor: Option<String> = None;
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in suggestions.lines() {
        if let Some(rest) = line.strip_prefix("# --- ") {
            if let Some((v, _)) = rest.split_once(": paste under") {
                vendor = Some(v.to_string());
                sections.push((v.to_string(), String::new()));
                continue;
            }
        }
        if let (Some(_), Some(last)) = (&vendor, sections.last_mut()) {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    assert!(!sections.is_empty(), "no sections in:\n{suggestions}");
    for (v, text) in sections {
        let f = cats.join(format!("{v}.yaml"));
        let mut body = std::fs::read_to_string(&f).expect("catalog");
        body.push('\n');
        body.push_str(&text);
        std::fs::write(&f, body).expect("write catalog");
    }
    let cfg = dir.join("errgate.yaml");
    ["mantago", "openim", "microcms", "tencent-im", "pluralkit"]
        .iter()
        .fold(GateConfig::new().unset("threads"), |c, v| {
            c.route(RouteConfig::new(
                v,
                v,
                &format!("/{v}"),
                "http://127.0.0.1:9",
            ))
        })
        .write(&cfg, 18080, 19090, &cats);
    cfg
}

#[test]
fn suggestions_from_captured_responses_paste_and_pass_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let captured = dir.path().join("captured.jsonl");
    std::fs::write(
        &captured,
        [
            r#"{"vendor":"pluralkit","status":404,"body":{"code":20011,"message":"Webhook not found."}}"#,
            r#"{"vendor":"pluralkit","status":404,"body":{"code":20011,"message":"Webhook not found."}}"#,
            // Cataloged: no suggestion.
            r#"{"vendor":"pluralkit","status":404,"body":{"code":20002,"message":"Member not found."}}"#,
            // A success: no suggestion.
            r#"{"vendor":"pluralkit","status":200,"body":{"id":"abcde"}}"#,
            // Known code 0 at a status the catalog does not list: keyed by status.
            r#"{"vendor":"pluralkit","status":409,"body":{"code":0,"message":"Conflict."}}"#,
            r#"{"vendor":"openim","status":200,"body":{"errCode":1801,"errMsg":"ServerInternalError","errDlt":""}}"#,
            r#"{"vendor":"microcms","status":418,"body":{"message":"I'm a teapot"}}"#,
        ]
        .join("\n"),
    )
    .expect("write");
    let o = errgate(&[
        "catalog",
        "suggest",
        "--config",
        "config/errgate.yaml",
        captured.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let y = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(y.contains("seen 2x on route pluralkit, HTTP 404"), "{y}");
    assert!(y.contains("- code: \"20011\""), "{y}");
    assert!(y.contains("reason: WEBHOOK_NOT_FOUND"), "{y}");
    assert!(y.contains("original: \"Webhook not found.\""), "{y}");
    assert!(!y.contains("20002"), "{y}");
    assert!(
        y.contains("- code: \"0\"\n    vendor_status: 409\n    match:\n      status: 409"),
        "{y}"
    );
    assert!(y.contains("- code: \"1801\""), "{y}");
    assert!(y.contains("message: \"I'm a teapot\""), "{y}");

    let cfg = paste(&y, dir.path());
    let cfg = cfg.to_str().expect("utf-8");
    let o = errgate(&["check", "--config", cfg]);
    assert_eq!(o.status.code(), Some(0), "{}\n{y}", show(&o));
    let o = errgate(&["explain", "pluralkit", "20011", "--config", cfg]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("WEBHOOK_NOT_FOUND"),
        "{}",
        show(&o)
    );
}

#[test]
fn suggest_reports_bad_input_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("bad.jsonl");
    std::fs::write(&f, "{\"vendor\":\"nope\",\"status\":400}\n").expect("write");
    let o = errgate(&["catalog", "suggest", f.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(64), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown vendor `nope`"));
    std::fs::write(&f, "not json\n").expect("write");
    let o = errgate(&["catalog", "suggest", f.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(64), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1"));
    let o = errgate(&["catalog", "suggest", "--from-url", "ftp://x/"]);
    assert_eq!(o.status.code(), Some(64), "{}", show(&o));
}
