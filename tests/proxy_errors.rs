//! Contract §2: every vendor error shape, end to end through the real gateway, becomes the one
//! canonical problem+json, however the body is framed, split or compressed.
mod common;
use common::*;

use serde_json::{json as j, Value};
use std::io::Write;
use std::time::{Duration, Instant};

/// Retry and cooldown off: one request, one vendor answer.
fn no_retry() -> GateConfig {
    GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .set("cooldown", json!({"enabled": false}))
}

/// Route `pk` (PluralKit, `/pluralkit`) to `m`, retry and cooldown off.
fn pk_gate(m: &Mock) -> Gate {
    no_retry()
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &m.url()))
        .start()
}

// ---------------------------------------------------------------- helpers

/// The answer to one request, checked for the invariants every canonical error has.
struct Problem {
    status: u16,
    retry_after: Option<String>,
    request_id: Option<String>,
    body: Vec<u8>,
    v: Value,
}

fn problem(r: Resp) -> Problem {
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "not a problem response: {} {}",
        r.status,
        r.text()
    );
    let v = r.json();
    assert_problem_schema(&v);
    assert_eq!(v["status"], j!(r.status), "body status != HTTP status");
    match (&v["retry_after_ms"], r.header("retry-after")) {
        (Value::Null, None) => {}
        (Value::Number(ms), Some(h)) => {
            let ms = ms.as_u64().expect("u64 ms");
            assert_eq!(
                h,
                ms.div_ceil(1000).max(1).to_string(),
                "Retry-After vs retry_after_ms"
            );
        }
        (ms, h) => panic!("retry_after_ms {ms} and Retry-After {h:?} must come together"),
    }
    Problem {
        status: r.status,
        retry_after: r.header("retry-after").map(str::to_string),
        request_id: r.header("x-request-id").map(str::to_string),
        body: r.body,
        v,
    }
}

/// GET with a fixed request id, so two answers to the same error are byte-identical.
fn get_problem(g: &Gate, path: &str) -> Problem {
    problem(g.req("GET", path, &[("X-Request-Id", "rid-fixed-1")], b""))
}

/// A mock playing script `n` for a request whose path ends in `/n`.
fn scripted(scripts: Vec<Vec<Act>>) -> Mock {
    Mock::start(move |req, _| {
        let n: usize = req
            .path
            .rsplit('/')
            .next()
            .and_then(|s| s.split('?').next())
            .and_then(|s| s.parse().ok())
            .expect("script number at the end of the path");
        scripts[n].clone()
    })
}

fn one_byte_splits(body: &[u8]) -> Vec<usize> {
    (1..body.len()).collect()
}

fn offset_of(body: &[u8], needle: &str) -> usize {
    body.windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle} not in body"))
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

fn deflate(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).expect("deflate");
    e.finish().expect("deflate")
}

fn brotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        w.write_all(b).expect("br");
    }
    out
}

fn assert_identical(base: &Problem, other: &Problem, what: &str) {
    assert_eq!(other.status, base.status, "{what}: status");
    assert_eq!(other.retry_after, base.retry_after, "{what}: Retry-After");
    assert_eq!(
        String::from_utf8_lossy(&other.body),
        String::from_utf8_lossy(&base.body),
        "{what}: canonical body differs"
    );
}

const PK_404: &str = r#"{"code":20002,"message":"Member not found."}"#;

// ---------------------------------------------------------------- one test per vendor shape

#[test]
fn pluralkit_404_member_not_found_becomes_canonical_not_found() {
    let m = Mock::fixed(json(404, PK_404));
    let g = pk_gate(&m);
    let p = get_problem(&g, "/pluralkit/members/abcde");
    assert_eq!(p.status, 404);
    let v = &p.v;
    assert_eq!(v["code"], "NOT_FOUND");
    assert_eq!(v["reason"], "MEMBER_NOT_FOUND");
    assert_eq!(v["domain"], "pluralkit");
    assert_eq!(v["title"], "Member not found");
    assert_eq!(v["detail"], "The member does not exist.");
    assert_eq!(
        v["type"],
        "https://errgate.dev/problems/pluralkit/member-not-found"
    );
    assert_eq!(v["retryable"], false);
    assert!(v.get("retry_after_ms").is_none());
    assert!(v.get("errors").is_none());
    assert_eq!(
        v["upstream"],
        j!({"status": 404, "code": "20002", "message": "Member not found."})
    );
    g.assert_metric(r#"errgate_errors_total{code="NOT_FOUND",domain="pluralkit",reason="MEMBER_NOT_FOUND",route="pk",upstream_code="20002"}"#, 1.0);
    g.assert_metric(
        r#"errgate_requests_total{outcome="normalized",route="pk",status="404"}"#,
        1.0,
    );
}

#[test]
fn pluralkit_400_field_errors_map_becomes_errors_array_with_field_keys() {
    let body = r#"{"code":40001,"message":"Error parsing JSON model","errors":{"name":[{"message":"Member name too long.","max_length":100,"actual_length":150}],"color":[{"message":"Invalid color."},{"message":"Must be hex."}]}}"#;
    let m = Mock::fixed(json(400, body));
    let g = pk_gate(&m);
    let p = problem(g.req("PATCH", "/pluralkit/members/x", &[], br#"{"name":"x"}"#));
    assert_eq!(p.status, 400);
    assert_eq!(p.v["code"], "INVALID_ARGUMENT");
    assert_eq!(p.v["reason"], "JSON_MODEL_INVALID");
    assert_eq!(p.v["upstream"]["code"], "40001");
    assert_eq!(p.v["upstream"]["message"], "Error parsing JSON model");
    let mut errs = p.v["errors"].as_array().expect("errors array").clone();
    errs.sort_by_key(|e| e.to_string());
    let mut want = vec![
        j!({"field": "name", "message": "Member name too long.", "max_length": 100, "actual_length": 150}),
        j!({"field": "color", "message": "Invalid color."}),
        j!({"field": "color", "message": "Must be hex."}),
    ];
    want.sort_by_key(|e| e.to_string());
    assert_eq!(errs, want);
}

#[test]
fn openim_inband_error_inside_200_gets_the_catalog_status() {
    let body =
        r#"{"errCode":1501,"errMsg":"TokenExpiredError","errDlt":": [1501]TokenExpiredError"}"#;
    let m = Mock::fixed(json(200, body));
    let g = no_retry()
        .route(RouteConfig::new("oi", "openim", "/openim", &m.url()))
        .start();
    let p = problem(g.req(
        "POST",
        "/openim/user/get_users",
        &[("X-Request-Id", "r1")],
        b"{}",
    ));
    assert_eq!(p.status, 401);
    assert_eq!(p.v["code"], "UNAUTHENTICATED");
    assert_eq!(p.v["reason"], "TOKEN_EXPIRED");
    assert_eq!(p.v["domain"], "openim");
    assert!(
        p.v["detail"]
            .as_str()
            .expect("detail")
            .starts_with("The token has expired."),
        "{}",
        p.v["detail"]
    );
    assert_eq!(
        p.v["upstream"],
        j!({"status": 200, "code": "1501", "message": "TokenExpiredError"})
    );
}

const TIM_60007: &str = r#"{"ActionStatus":"FAIL","ErrorCode":60007,"ErrorInfo":"rest 接口调用频率超过限制，请降低请求频率 。"}"#;

#[test]
fn tencent_im_inband_rate_limit_becomes_429_with_the_catalog_default_hint() {
    let m = Mock::fixed(json(200, TIM_60007));
    let g = no_retry()
        .route(RouteConfig::new("tim", "tencent-im", "/tim", &m.url()))
        .start();
    let p = problem(g.req("POST", "/tim/v4/openim/sendmsg", &[], b"{}"));
    assert_eq!(p.status, 429);
    assert_eq!(p.v["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(p.v["reason"], "REST_RATE_LIMITED");
    assert_eq!(p.v["retryable"], true);
    assert_eq!(p.v["retry_after_ms"], 1000);
    assert_eq!(p.retry_after.as_deref(), Some("1"));
    assert_eq!(
        p.v["upstream"],
        j!({"status": 200, "code": "60007", "message": "rest 接口调用频率超过限制，请降低请求频率 。"})
    );
}

#[test]
fn tencent_im_action_status_ok_passes_through_untouched() {
    let body =
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","MsgTime":1700000000,"MsgKey":"k"}"#;
    let m = Mock::fixed(response(
        200,
        &[
            ("Content-Type", "application/json"),
            ("X-Vendor-Trace", "ok"),
        ],
        body.as_bytes(),
    ));
    let g = no_retry()
        .route(RouteConfig::new("tim", "tencent-im", "/tim", &m.url()))
        .start();
    let r = g.req("POST", "/tim/v4/openim/sendmsg", &[], b"{}");
    assert_eq!(r.status, 200);
    assert_eq!(r.raw_body, body.as_bytes());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-vendor-trace"), Some("ok"));
}

#[test]
fn mantago_error_code_as_string_and_as_number_give_the_same_answer() {
    let as_str = r#"{"success":false,"errResponse":{"message":"Token is invalid or expired","code":"1004","botId":"b-1"}}"#;
    let as_num = r#"{"success":false,"errResponse":{"message":"Token is invalid or expired","code":1004,"botId":"b-1"}}"#;
    let m = scripted(vec![
        vec![Act::Send(json(200, as_str))],
        vec![Act::Send(json(200, as_num))],
        vec![Act::Send(json(
            200,
            r#"{"success":true,"data":{"messageId":"m1"}}"#,
        ))],
    ]);
    let g = no_retry()
        .route(RouteConfig::new("mg", "mantago", "/mantago", &m.url()))
        .start();
    let a = get_problem(&g, "/mantago/broadcast/0");
    assert_eq!(a.status, 401);
    assert_eq!(a.v["code"], "UNAUTHENTICATED");
    assert_eq!(a.v["reason"], "TOKEN_INVALID_OR_EXPIRED");
    assert_eq!(
        a.v["upstream"],
        j!({"status": 200, "code": "1004", "message": "Token is invalid or expired"})
    );
    let b = get_problem(&g, "/mantago/broadcast/1");
    assert_identical(&a, &b, "numeric code");
    let ok = g.get("/mantago/broadcast/2");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, br#"{"success":true,"data":{"messageId":"m1"}}"#);
}

#[test]
fn microcms_400_ip_address_rejected_becomes_403_permission_denied() {
    let m = Mock::fixed(json(400, r#"{"message":"IP address rejected."}"#));
    let g = no_retry()
        .route(RouteConfig::new("mc", "microcms", "/microcms", &m.url()))
        .start();
    let p = get_problem(&g, "/microcms/api/v1/contents/blogs");
    assert_eq!(p.status, 403);
    assert_eq!(p.v["code"], "PERMISSION_DENIED");
    assert_eq!(p.v["reason"], "IP_ADDRESS_REJECTED");
    assert_eq!(p.v["domain"], "microcms");
    assert_eq!(
        p.v["upstream"],
        j!({"status": 400, "code": null, "message": "IP address rejected."})
    );
}

#[test]
fn uncataloged_vendor_code_is_derived_from_status_and_counted_as_uncataloged() {
    let m = scripted(vec![
        vec![Act::Send(json(
            404,
            r#"{"code":29999,"message":"Something new."}"#,
        ))],
        vec![Act::Send(json(
            200,
            r#"{"errCode":98765,"errMsg":"NewError"}"#,
        ))],
    ]);
    let g = no_retry()
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &m.url()))
        .route(RouteConfig::new("oi", "openim", "/openim", &m.url()))
        .start();
    let p = get_problem(&g, "/pluralkit/x/0");
    assert_eq!(p.status, 404);
    assert_eq!(p.v["code"], "NOT_FOUND");
    assert_eq!(p.v["reason"], "UNCATALOGED_ERROR");
    assert_eq!(p.v["domain"], "pluralkit");
    assert_eq!(
        p.v["upstream"],
        j!({"status": 404, "code": "29999", "message": "Something new."})
    );
    g.assert_metric(r#"errgate_errors_total{code="NOT_FOUND",domain="pluralkit",reason="UNCATALOGED_ERROR",route="pk",upstream_code="uncataloged"}"#, 1.0);
    // An unknown in-band code inside a 200: an error whose kind errgate cannot tell.
    let p = get_problem(&g, "/openim/x/1");
    assert_eq!(p.status, 500);
    assert_eq!(p.v["code"], "UNKNOWN");
    assert_eq!(p.v["reason"], "UNCATALOGED_ERROR");
    assert_eq!(p.v["upstream"]["code"], "98765");
    let text = g.admin_get("/metrics").text();
    assert!(
        !text.contains("29999") && !text.contains("98765"),
        "a raw uncataloged code leaked into a metric label"
    );
}

#[test]
fn request_id_from_the_client_is_echoed_and_a_missing_one_is_generated() {
    let m = Mock::fixed(json(404, PK_404));
    let g = pk_gate(&m);
    let p = problem(g.req(
        "GET",
        "/pluralkit/m",
        &[("X-Request-Id", "client-req-42")],
        b"",
    ));
    assert_eq!(p.request_id.as_deref(), Some("client-req-42"));
    assert_eq!(p.v["request_id"], "client-req-42");

    let p = problem(g.get("/pluralkit/m"));
    let rid = p.request_id.clone().expect("generated X-Request-Id header");
    assert!(!rid.is_empty());
    assert_eq!(p.v["request_id"], j!(rid));

    let p2 = problem(g.get("/pluralkit/m"));
    assert_ne!(p2.request_id, p.request_id, "generated ids must differ");
}

// ---------------------------------------------------------------- awkward chunk splits

/// Answers `body` whole (Content-Length) as script 0, then split at each `splits[i]` as script
/// i+1, and asserts every canonical answer is byte-identical to the first.
fn assert_split_invariant(
    (name, vendor, prefix): (&str, &str, &str),
    status: u16,
    body: &str,
    splits: &[Vec<usize>],
) {
    let b = body.as_bytes();
    let mut scripts = vec![vec![Act::Send(json(status, body))]];
    for s in splits {
        scripts.push(chunked_split(
            status,
            &[("Content-Type", "application/json")],
            b,
            s,
        ));
    }
    let m = scripted(scripts);
    let g = no_retry()
        .route(RouteConfig::new(name, vendor, prefix, &m.url()))
        .start();
    let base = get_problem(&g, &format!("{prefix}/s/0"));
    for (i, s) in splits.iter().enumerate() {
        let p = get_problem(&g, &format!("{prefix}/s/{}", i + 1));
        assert_identical(&base, &p, &format!("split at {s:?}"));
    }
}

#[test]
fn error_split_inside_strings_escapes_surrogates_and_numbers_gives_the_same_answer() {
    let body = r#"{"code":20002,"message":"Member \u0041\ud83d\ude00 not found."}"#;
    let b = body.as_bytes();
    let low = offset_of(b, r"\ude00");
    let high = offset_of(b, r"\ud83d");
    let m = Mock::fixed(json(404, body));
    let g = pk_gate(&m);
    let p = get_problem(&g, "/pluralkit/m");
    assert_eq!(p.v["reason"], "MEMBER_NOT_FOUND");
    assert_eq!(p.v["upstream"]["message"], "Member A\u{1F600} not found.");
    drop(g);
    assert_split_invariant(
        ("pk", "pluralkit", "/pluralkit"),
        404,
        body,
        &[
            vec![offset_of(b, "Member") + 3],  // inside a string
            vec![offset_of(b, "message") + 3], // inside a key
            vec![offset_of(b, "20002") + 4],   // inside a number
            vec![offset_of(b, r"\u0041") + 1], // after the backslash
            vec![offset_of(b, r"\u0041") + 4], // inside the hex digits
            vec![low],                         // between the surrogates
            vec![high + 4, low + 1],           // inside both halves
            vec![1, 2, 3, low - 1, low, low + 2, b.len() - 1],
            one_byte_splits(b),
        ],
    );
}

#[test]
fn inband_error_split_inside_a_multibyte_utf8_char_gives_the_same_answer() {
    let b = TIM_60007.as_bytes();
    let ch = offset_of(b, "接"); // 3 bytes in UTF-8
    let comma = offset_of(b, "，");
    assert_split_invariant(
        ("tim", "tencent-im", "/tim"),
        200,
        TIM_60007,
        &[
            vec![ch + 1],
            vec![ch + 2],
            vec![ch + 1, ch + 2, comma + 1],
            vec![offset_of(b, "FAIL") + 2],
            vec![offset_of(b, "60007") + 3],
            one_byte_splits(b),
        ],
    );
}

#[test]
fn openim_inband_error_split_inside_the_code_gives_the_same_answer() {
    let body = r#"{"errCode":1501,"errMsg":"TokenExpiredError","errDlt":"token \"x\" expired\n"}"#;
    let b = body.as_bytes();
    assert_split_invariant(
        ("oi", "openim", "/openim"),
        200,
        body,
        &[
            vec![offset_of(b, "1501") + 2],
            vec![offset_of(b, "errCode") + 1, offset_of(b, "1501")],
            vec![offset_of(b, r#"\"x"#) + 1],
            one_byte_splits(b),
        ],
    );
}

// ---------------------------------------------------------------- compressed error bodies

#[test]
fn compressed_error_bodies_give_the_same_answer_as_plain() {
    let plain = PK_404.as_bytes();
    let gz = gzip(plain);
    let br = brotli(plain);
    let zl = deflate(plain);
    let enc = |e: &str, body: &[u8]| {
        response(
            404,
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", e),
            ],
            body,
        )
    };
    let chunked_enc = |e: &'static str, body: &[u8], splits: &[usize]| {
        chunked_split(
            404,
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", e),
            ],
            body,
            splits,
        )
    };
    let m = scripted(vec![
        vec![Act::Send(json(404, PK_404))],
        vec![Act::Send(enc("gzip", &gz))],
        vec![Act::Send(enc("br", &br))],
        vec![Act::Send(enc("deflate", &zl))],
        chunked_enc("gzip", &gz, &[1, 2, 10, 11, gz.len() - 4]),
        chunked_enc("br", &br, &(1..br.len()).collect::<Vec<_>>()),
        chunked_enc("gzip", &gz, &(1..gz.len()).collect::<Vec<_>>()),
    ]);
    let g = pk_gate(&m);
    let base = get_problem(&g, "/pluralkit/c/0");
    assert_eq!(base.v["reason"], "MEMBER_NOT_FOUND");
    let names = [
        "",
        "gzip",
        "br",
        "deflate",
        "gzip split",
        "br 1-byte",
        "gzip 1-byte",
    ];
    for (i, name) in names.iter().enumerate().skip(1) {
        let p = get_problem(&g, &format!("/pluralkit/c/{i}"));
        assert_identical(&base, &p, name);
    }
}

// ---------------------------------------------------------------- bodies that are not JSON

#[test]
fn html_502_from_a_load_balancer_becomes_unavailable_without_a_message() {
    let html = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body>\r\n</html>\r\n";
    let m = Mock::fixed(response(502, &[("Content-Type", "text/html")], html));
    let g = pk_gate(&m);
    let p = get_problem(&g, "/pluralkit/systems/x");
    assert_eq!(p.v["code"], "UNAVAILABLE");
    assert_eq!(
        p.status, 503,
        "UNAVAILABLE answers with its canonical status"
    );
    assert_eq!(p.v["domain"], "pluralkit");
    assert_eq!(p.v["retryable"], true);
    assert_eq!(p.v["reason"], "UPSTREAM_HTTP_ERROR");
    assert_eq!(
        p.v["upstream"],
        j!({"status": 502, "code": null, "message": null})
    );
    assert!(
        !String::from_utf8_lossy(&p.body).contains("nginx"),
        "the HTML page leaked into the answer"
    );
}

#[test]
fn empty_500_body_becomes_internal_with_null_code_and_message() {
    let m = Mock::fixed(response(500, &[("Content-Type", "application/json")], b""));
    let g = pk_gate(&m);
    let p = get_problem(&g, "/pluralkit/systems/x");
    assert_eq!(p.status, 500);
    assert_eq!(p.v["code"], "INTERNAL");
    assert_eq!(p.v["domain"], "pluralkit");
    assert_eq!(
        p.v["upstream"],
        j!({"status": 500, "code": null, "message": null})
    );
}

#[test]
fn truncated_json_error_body_still_gets_the_vendors_canonical_answer() {
    // Content-Length promises 200 bytes; the vendor sends a prefix and closes.
    let prefix = br#"{"code":20002,"message":"Member not fo"#;
    let mut raw =
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
            .to_vec();
    raw.extend_from_slice(prefix);
    let m = Mock::start(move |_, _| vec![Act::Send(raw.clone()), Act::Close]);
    let g = pk_gate(&m);
    let t0 = Instant::now();
    let p = get_problem(&g, "/pluralkit/members/x");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(p.v["domain"], "pluralkit", "{}", p.v);
    assert_eq!(p.status, 404);
    assert_eq!(p.v["code"], "NOT_FOUND");
    assert_eq!(p.v["upstream"]["status"], 404);
    assert_eq!(m.hits(), 1);
}

fn big_pk_error() -> String {
    let pad = "x".repeat(100 * 1024);
    format!(r#"{{"code":20002,"message":"Member not found.","pad":"{pad}"}}"#)
}

#[test]
fn error_body_larger_than_hold_limit_gets_a_canonical_answer() {
    let body = big_pk_error();
    let m = Mock::fixed(json(404, &body));
    let g = pk_gate(&m);
    let t0 = Instant::now();
    let p = get_problem(&g, "/pluralkit/members/x");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(p.status, 404);
    assert_eq!(p.v["code"], "NOT_FOUND");
    assert_eq!(p.v["domain"], "pluralkit");
    assert_eq!(p.v["upstream"]["status"], 404);
    assert!(
        p.body.len() < 8 * 1024,
        "the vendor body leaked into the answer"
    );
}

#[test]
fn error_body_larger_than_hold_limit_is_classified_from_the_prefix_read() {
    let body = big_pk_error();
    let m = Mock::start(move |_, _| {
        chunked_split(
            404,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            &[10, 30_000, 60_000, 90_000],
        )
    });
    let g = pk_gate(&m);
    let p = get_problem(&g, "/pluralkit/members/x");
    assert_eq!(p.status, 404);
    assert_eq!(p.v["reason"], "MEMBER_NOT_FOUND");
    assert_eq!(
        p.v["upstream"],
        j!({"status": 404, "code": "20002", "message": "Member not found."})
    );
}

#[test]
fn inband_error_larger_than_hold_limit_is_still_an_error() {
    // errCode comes first: the verdict (an error) is known long before the hold limit.
    let body = format!(
        r#"{{"errCode":1501,"errMsg":"TokenExpiredError","errDlt":"{}"}}"#,
        "d".repeat(100 * 1024)
    );
    let m = Mock::start(move |_, _| {
        chunked_split(
            200,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            &[20, 40_000, 80_000],
        )
    });
    let g = no_retry()
        .route(RouteConfig::new("oi", "openim", "/openim", &m.url()))
        .start();
    let r = g.req("POST", "/openim/user/get_users", &[], b"{}");
    assert_ne!(r.status, 200, "an OpenIM error passed through as HTTP 200");
    let p = problem(r);
    assert_eq!(p.status, 401);
    assert_eq!(p.v["reason"], "TOKEN_EXPIRED");
}
