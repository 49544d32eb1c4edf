//! The hostile-traffic corpus (issue 11): each case states what the client gets AND what the
//! mock vendor saw (how many requests, which path, which headers). Request smuggling and
//! framing, path traversal, disallowed methods, compressed bombs, vendors that reset, stall or
//! lie about length at each phase (on a fresh and on a pooled upstream connection), and secrets
//! or internals that must not leak.
//!
//! Requests the HTTP/1 parser itself refuses (Pingora answers a bare 400 before errgate runs)
//! are marked `pingora` below; the rest are refused by errgate with a problem+json body.

mod common;

use common::hostile::{exchange, Exchange, RawResp};
use common::run::check_config;
use common::{free_port, json, Act, Gate, GateConfig, Mock, RouteConfig};
use std::io::Write;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(1500);
const OK_BODY: &str = r#"{"ok":true}"#;

fn ok_mock() -> Mock {
    Mock::fixed(json(200, OK_BODY))
}

/// Route `/v` -> the mock under base path `/base`, retries off so counts are exact.
fn route_v(m: &Mock) -> RouteConfig {
    RouteConfig::new("v", "pluralkit", "/v", &format!("{}/base", m.url()))
        .set("retry", json!({"enabled": false}))
        .set("timeouts", json!({"read": "800ms", "total": "3s"}))
}

/// A gateway with only [`route_v`].
fn gate_for(m: &Mock) -> Gate {
    GateConfig::new().route(route_v(m)).start()
}

fn send(g: &Gate, raw: &str) -> Exchange {
    exchange(g.port, raw.as_bytes(), QUIET)
}

/// A warm-up request that leaves a pooled upstream connection behind.
fn warm(g: &Gate) {
    let r = g.get("/v/warm");
    assert_eq!(r.status, 200, "{}", r.text());
}

fn problem(r: &RawResp, status: u16, reason: &str) -> serde_json::Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let v = r.json();
    assert_eq!(v["reason"], reason, "{v:#}");
    assert_eq!(v["status"], status);
    v
}

// ---------------------------------------------------------------- smuggling and framing

/// (name, raw request, want status, refused by Pingora's parser rather than errgate)
fn smuggling_cases() -> Vec<(&'static str, String, u16, bool)> {
    let h = "Host: a\r\n";
    vec![
        ("cl_then_te", format!("POST /v/x HTTP/1.1\r\n{h}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v/smuggled HTTP/1.1\r\n{h}\r\n"), 400, false),
        ("te_then_cl", format!("POST /v/x HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nGET /v/smuggled HTTP/1.1\r\n{h}\r\n"), 400, false),
        ("cl_duplicate_equal", format!("POST /v/x HTTP/1.1\r\n{h}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), 400, false),
        ("cl_duplicate_differing", format!("POST /v/x HTTP/1.1\r\n{h}Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc"), 400, true),
        ("cl_list_equal", format!("POST /v/x HTTP/1.1\r\n{h}Content-Length: 3, 3\r\n\r\nabc"), 400, false),
        ("cl_list_differing", format!("POST /v/x HTTP/1.1\r\n{h}Content-Length: 3, 30\r\n\r\nabc"), 400, true),
        ("cl_plus_sign", format!("POST /v/x HTTP/1.1\r\n{h}Content-Length: +3\r\n\r\nabc"), 400, true),
        ("te_gzip_chunked", format!("POST /v/x HTTP/1.1\r\n{h}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 400, false),
        ("te_chunked_twice_listed", format!("POST /v/x HTTP/1.1\r\n{h}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), 400, false),
        ("te_two_fields", format!("POST /v/x HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, false),
        ("te_identity", format!("POST /v/x HTTP/1.1\r\n{h}Transfer-Encoding: identity\r\n\r\n"), 400, true),
        ("te_xchunked", format!("POST /v/x HTTP/1.1\r\n{h}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"), 400, true),
        ("te_space_before_colon", format!("POST /v/x HTTP/1.1\r\n{h}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"), 400, true),
        ("te_on_http_1_0", format!("POST /v/x HTTP/1.0\r\n{h}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, true),
        ("te_obs_fold", format!("POST /v/x HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n identity\r\n\r\n0\r\n\r\n"), 400, true),
        ("header_obs_fold", format!("GET /v/x HTTP/1.1\r\n{h}X-A: 1\r\n 2\r\n\r\n"), 400, true),
        ("absolute_form_other_host", "GET http://evil.example/v/x HTTP/1.1\r\nHost: a\r\n\r\n".to_string(), 400, true),
        ("absolute_form_userinfo", "GET http://u@a/v/x HTTP/1.1\r\nHost: u@a\r\n\r\n".to_string(), 400, true),
        ("two_hosts", format!("GET /v/x HTTP/1.1\r\n{h}{h}\r\n"), 400, true),
        ("bad_chunk_size", format!("POST /v/x HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"), 400, false),
    ]
}

fn run_smuggling(pooled: bool) {
    let m = ok_mock();
    let g = gate_for(&m);
    for (name, raw, want, by_pingora) in smuggling_cases() {
        if pooled {
            warm(&g);
        }
        let before = m.hits();
        let ex = send(&g, &raw);
        let r = ex.one();
        assert_eq!(
            r.status,
            want,
            "{name}: {}",
            String::from_utf8_lossy(&ex.raw)
        );
        if !by_pingora {
            problem(r, want, "MALFORMED_REQUEST");
        }
        // Never forwarded, and nothing smuggled behind it.
        assert_eq!(m.hits(), before, "{name}: the vendor saw a request");
        // errgate still serves the next request normally (no desync on a pooled connection).
        let next = g.get("/v/after");
        assert_eq!(next.status, 200, "{name}: next request: {}", next.text());
        assert_eq!(m.hits(), before + 1, "{name}");
        let reqs = m.requests.lock().expect("lock");
        assert_eq!(
            reqs.last().map(|r| r.path.as_str()),
            Some("/base/after"),
            "{name}"
        );
    }
}

#[test]
fn smuggling_attempts_never_reach_a_fresh_upstream_connection() {
    run_smuggling(false);
}

#[test]
fn smuggling_attempts_never_reach_a_pooled_upstream_connection() {
    run_smuggling(true);
}

#[test]
fn the_vendor_sees_exactly_one_framing() {
    let m = ok_mock();
    let g = gate_for(&m);
    // Chunked from the client: chunked to the vendor, no Content-Length.
    let ex = send(
        &g,
        "POST /v/c HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(ex.one().status, 200);
    // Content-Length from the client: the same length, no Transfer-Encoding.
    let ex = send(
        &g,
        "POST /v/l HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 3\r\n\r\nxyz",
    );
    assert_eq!(ex.one().status, 200);
    let reqs = m.requests.lock().expect("lock").clone();
    assert_eq!(reqs.len(), 2);
    let framing = |i: usize| {
        let r = &reqs[i];
        let cl: Vec<&str> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.as_str())
            .collect();
        let te: Vec<&str> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
            .map(|(_, v)| v.as_str())
            .collect();
        (cl, te, r.body.clone())
    };
    assert_eq!(framing(0), (vec![], vec!["chunked"], b"abc".to_vec()));
    assert_eq!(framing(1), (vec!["3"], vec![], b"xyz".to_vec()));
}

#[test]
fn absolute_form_target_is_routed_by_its_authority_and_forwarded_in_origin_form() {
    let m = ok_mock();
    let g = gate_for(&m);
    let raw = format!(
        "GET http://127.0.0.1:{p}/v/abs?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nConnection: close\r\n\r\n",
        p = g.port
    );
    let ex = send(&g, &raw);
    assert_eq!(ex.one().status, 200);
    let reqs = m.requests.lock().expect("lock");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/base/abs?q=1");
    assert_eq!(reqs[0].header("host"), Some(m.addr.to_string().as_str()));
}

#[test]
fn expect_on_http_1_0_gets_no_interim_response_and_is_not_forwarded() {
    let m = ok_mock();
    let g = gate_for(&m);
    let ex = send(
        &g,
        "POST /v/e HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert!(
        ex.responses.iter().all(|r| r.status != 100),
        "100 Continue sent to an HTTP/1.0 client: {}",
        String::from_utf8_lossy(&ex.raw)
    );
    assert_eq!(ex.one().status, 200);
    let reqs = m.requests.lock().expect("lock");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body, b"abc");
    assert_eq!(reqs[0].header("expect"), None);
}

// ---------------------------------------------------------------- traversal

#[test]
fn traversal_is_refused_before_the_vendor_and_dot_segments_are_never_forwarded_raw() {
    let m = ok_mock();
    let g = gate_for(&m);
    let refused = [
        "/v/..",
        "/v/../x",
        "/v/../../etc/passwd",
        "/v/%2e%2e/x",
        "/v/%2E%2E/x",
        "/v/%2E%2e/x",
        "/v/.%2e/x",
        "/v/%2e./x",
        "/v/a/../../x",
        "/v/a/%2e%2e/%2e%2e/x",
        "/v/a%2fb",
        "/v/..%2F..%2Fx",
        "/v/a%5cb",
        "/v/..%5c..%5cx",
        "/v/..;/x",
        "/v/%252e%252e/x",
        "/v/a\\..\\..\\x",
    ];
    for p in refused {
        let ex = send(
            &g,
            &format!("GET {p} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        );
        let r = ex.one();
        assert_eq!(r.status, 400, "{p}: {}", r.text());
        if r.header("content-type") == Some("application/problem+json") {
            problem(r, 400, "PATH_NOT_ALLOWED");
        }
        assert_eq!(m.hits(), 0, "{p} reached the vendor");
    }
    let normalized = [
        ("/v/a/../b", "/base/b"),
        ("/v/./a", "/base/a"),
        ("/v/a/%2e%2e/b", "/base/b"),
        ("/v/a/.%2E/b?x=/../..", "/base/b?x=/../.."),
        ("/v/a/b/..", "/base/a/"),
    ];
    for (i, (p, want)) in normalized.iter().enumerate() {
        let ex = send(
            &g,
            &format!("GET {p} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(ex.one().status, 200, "{p}");
        let reqs = m.requests.lock().expect("lock");
        assert_eq!(reqs.len(), i + 1);
        assert_eq!(&reqs[i].path, want, "{p}");
    }
}

// ---------------------------------------------------------------- methods

#[test]
fn disallowed_methods_get_405_with_allow_and_are_never_forwarded() {
    let m = ok_mock();
    let up = format!("{}/base", m.url());
    let g = GateConfig::new()
        .route(RouteConfig::new("v", "pluralkit", "/v", &up))
        .route(
            RouteConfig::new("ro", "pluralkit", "/ro", &up).set("methods", json!(["GET", "HEAD"])),
        )
        .start();
    let default_allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
    for (method, path, allow) in [
        ("TRACE", "/v/x", default_allow),
        ("PROPFIND", "/v/x", default_allow),
        ("get", "/v/x", default_allow),
        ("POST", "/ro/x", "GET, HEAD"),
        ("DELETE", "/ro/x", "GET, HEAD"),
        ("TRACE", "/ro/x", "GET, HEAD"),
    ] {
        let ex = send(
            &g,
            &format!("{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        );
        let r = ex.one();
        let v = problem(r, 405, "METHOD_NOT_ALLOWED");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(v["retryable"], false);
        assert_eq!(m.hits(), 0, "{method} {path} reached the vendor");
    }
    // CONNECT, in authority form: 405 with Allow too, and the connection is closed.
    let ex = send(
        &g,
        "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n",
    );
    let r = ex.one();
    assert_eq!(r.status, 405, "{}", String::from_utf8_lossy(&ex.raw));
    assert!(r.header("allow").is_some(), "CONNECT answer lacks Allow");
    assert!(ex.closed, "CONNECT connection left open");
    assert_eq!(m.hits(), 0);
    // Allowed methods still go through.
    assert_eq!(g.req("GET", "/ro/x", &[], b"").status, 200);
    assert_eq!(g.req("PATCH", "/v/x", &[], b"{}").status, 200);
    assert_eq!(m.hits(), 2);
}

// ---------------------------------------------------------------- bombs

fn gzip_bomb() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b'0'; 1 << 20];
    e.write_all(b"{\"message\":\"").expect("gzip");
    for _ in 0..63 {
        e.write_all(&zeros).expect("gzip");
    }
    e.finish().expect("gzip")
}

fn brotli_bomb() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 1 << 16, 5, 22);
        w.write_all(b"{\"message\":\"").expect("br");
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..256 {
            w.write_all(&zeros).expect("br");
        }
    }
    out
}

#[test]
fn compressed_bombs_in_error_bodies_are_answered_from_the_status() {
    for (enc, bomb) in [("gzip", gzip_bomb()), ("br", brotli_bomb())] {
        assert!(
            bomb.len() <= 64 * 1024,
            "{enc} bomb is {} bytes",
            bomb.len()
        );
        let resp = common::response(
            500,
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", enc),
            ],
            &bomb,
        );
        let m = Mock::fixed(resp);
        let g = gate_for(&m);
        let ex = send(
            &g,
            "GET /v/bomb HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        let r = ex.one();
        assert_eq!(r.status, 500, "{enc}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(m.hits(), 1);
        // errgate keeps serving.
        let ex = send(
            &g,
            "GET /v/next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(ex.one().status, 500);
    }
}

// ---------------------------------------------------------------- vendor faults, every phase

/// What a faulty vendor does on the faulty request.
fn fault(kind: &str) -> Vec<Act> {
    let ok = json(200, OK_BODY);
    match kind {
        "reset_before_header" => vec![Act::Reset],
        "close_before_header" => vec![Act::Close],
        "stall_before_header" => vec![Act::Sleep(Duration::from_secs(3)), Act::Close],
        "partial_header_then_reset" => vec![Act::Send(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec()), Act::Reset],
        "garbage_header" => vec![Act::Send(b"SPDY/9 what\r\n\r\n".to_vec()), Act::Close],
        "error_body_short_then_close" => vec![
            Act::Send(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"code\":20002,".to_vec()),
            Act::Close,
        ],
        "error_body_stall" => vec![
            Act::Send(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"code\":20002,".to_vec()),
            Act::Sleep(Duration::from_secs(3)),
            Act::Close,
        ],
        // Says 2 bytes, sends a whole second response behind them: must never reach a client.
        "length_short_with_injected_response" => {
            let mut b = common::response(200, &[("Content-Type", "application/json")], b"{}");
            b.extend(json(200, r#"{"spoofed":true}"#));
            vec![Act::Send(b)]
        }
        _ => vec![Act::Send(ok)],
    }
}

/// (kind, status the client gets, or None when the connection is cut after a success header)
const FAULTS: &[(&str, Option<u16>)] = &[
    ("reset_before_header", Some(502)),
    ("close_before_header", Some(502)),
    ("stall_before_header", Some(504)),
    ("partial_header_then_reset", Some(502)),
    ("garbage_header", Some(502)),
    ("error_body_short_then_close", Some(404)),
    ("error_body_stall", Some(404)),
    ("length_short_with_injected_response", Some(200)),
];

fn run_faults(pooled: bool) {
    for (kind, want) in FAULTS {
        let faulty_hit = usize::from(pooled);
        let k = kind.to_string();
        let m = Mock::start(move |_, n| {
            if n == faulty_hit {
                fault(&k)
            } else {
                vec![Act::Send(json(200, OK_BODY))]
            }
        });
        let g = gate_for(&m);
        if pooled {
            // Keep-alive warm-up so the faulty request goes out on the pooled connection.
            let r = g.get("/v/warm");
            assert_eq!(r.status, 200);
        }
        let before = m.hits();
        let ex = send(
            &g,
            "GET /v/f HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        let r = ex.one();
        assert_eq!(
            Some(r.status),
            *want,
            "{kind} pooled={pooled}: {}",
            r.text()
        );
        if r.status >= 500 {
            let v = r.json();
            assert_eq!(v["domain"], "errgate", "{kind}");
        }
        if *kind == "length_short_with_injected_response" {
            assert_eq!(r.body, b"{}", "{kind}");
        }
        // Retries are off: the vendor saw the faulty request exactly once.
        assert_eq!(
            m.hits(),
            before + 1,
            "{kind} pooled={pooled}: vendor request count"
        );
        // The next request is answered by the vendor, never with bytes left from the fault.
        let next = g.get("/v/next");
        assert_eq!(next.status, 200, "{kind} pooled={pooled}: {}", next.text());
        assert_eq!(next.text(), OK_BODY, "{kind} pooled={pooled}");
    }
}

#[test]
fn faulty_vendors_on_a_fresh_connection() {
    run_faults(false);
}

#[test]
fn faulty_vendors_on_a_pooled_connection() {
    run_faults(true);
}

// ---------------------------------------------------------------- leaks

const SECRET: &str = "sk-live-5f2b9c0e7d1a4e3b";

#[test]
fn injected_secrets_echoed_by_the_vendor_are_redacted_from_bodies_and_logs() {
    let m = Mock::fixed(json(
        401,
        &format!(r#"{{"code":0,"message":"Invalid token Bearer {SECRET} (key {SECRET})"}}"#),
    ));
    let g = GateConfig::new()
        .route(route_v(&m).set(
            "upstream_headers",
            json!({"Authorization": format!("Bearer {SECRET}")}),
        ))
        .start();
    let ex = send(
        &g,
        "GET /v/me HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let r = ex.one();
    assert_eq!(r.status, 401, "{}", r.text());
    // The vendor did get the credential ...
    assert_eq!(
        m.requests.lock().expect("lock")[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    // ... but no client and no log line ever sees it.
    let text = r.text();
    assert!(!text.contains(SECRET), "secret in the problem body: {text}");
    assert!(text.contains("[redacted]"), "{text}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!g.log_text().contains(SECRET), "secret in the log");
}

#[test]
fn gateway_problems_carry_no_addresses_or_library_text_and_the_log_has_the_request_id() {
    // A closed port: connection refused.
    let closed = free_port();
    let g = GateConfig::new()
        .route(
            RouteConfig::new(
                "dead",
                "pluralkit",
                "/d",
                &format!("http://127.0.0.1:{closed}/base"),
            )
            .set("retry", json!({"enabled": false})),
        )
        .start();
    let ex = send(
        &g,
        "GET /d/x HTTP/1.1\r\nHost: a\r\nX-Request-Id: leak-check-1\r\nConnection: close\r\n\r\n",
    );
    let r = ex.one();
    let v = problem(r, 502, "UPSTREAM_UNAVAILABLE");
    let text = r.text();
    for bad in [
        "127.0.0.1",
        &closed.to_string(),
        "refused",
        "Connection",
        "os error",
        "errno",
        "ConnectRefused",
    ] {
        assert!(!text.contains(bad), "{bad:?} in {text}");
    }
    assert_eq!(v["request_id"], "leak-check-1");
    std::thread::sleep(Duration::from_millis(200));
    let log = g.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("leak-check-1") && l.to_ascii_lowercase().contains("refused")),
        "the library error is not logged with the request id:\n{log}"
    );
}

#[test]
fn check_refuses_framing_and_hop_by_hop_headers_in_upstream_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("errgate.yaml");
    let cat = common::repo().join("catalogs");
    GateConfig::new()
        .route(
            RouteConfig::new("v", "pluralkit", "/v", "http://127.0.0.1:1/base").set(
                "upstream_headers",
                json!({
                    "Content-Length": "5",
                    "Transfer-Encoding": "chunked",
                    "Host": "evil.example",
                    "Connection": "close",
                    "Proxy-Authorization": "x",
                    "X-Api-Key": "fine",
                }),
            ),
        )
        .write(&cfg, free_port(), free_port(), &cat);
    let (code, text) = check_config(&cfg, &[]);
    assert_eq!(code, 78, "{text}");
    for h in [
        "content-length",
        "transfer-encoding",
        "host",
        "connection",
        "proxy-authorization",
    ] {
        assert!(
            text.to_ascii_lowercase()
                .contains(&format!("upstream_headers.{h}")),
            "{h} not reported: {text}"
        );
    }
    assert!(
        !text
            .to_ascii_lowercase()
            .contains("upstream_headers.x-api-key"),
        "{text}"
    );
}
