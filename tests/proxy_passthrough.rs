//! Contract §3: responses that are not errors reach the client exactly as the vendor sent them
//! (status, end-to-end headers, body bytes), and requests reach the vendor intact.
mod common;
use common::clients::KeepAlive;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------- helpers

/// Deterministic pseudo-random bytes (xorshift64*).
fn prng_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Deterministic JSON-ish records (valid JSON array elements, escapes and non-ASCII included),
/// at least `n` bytes long.
fn json_records(n: usize, seed: u64) -> String {
    let r = prng_bytes(n / 4 + 64, seed);
    let mut s = String::with_capacity(n + 256);
    let mut i = 0usize;
    while s.len() < n {
        if i > 0 {
            s.push(',');
        }
        let a = r[i % r.len()];
        let b = r[(i * 7 + 3) % r.len()];
        s.push_str(&format!(
            r#"{{"id":{i},"name":"m{a:02x}{b:02x} \"q\" \u00e9 ü","score":{}.{},"tags":["t{}","x"],"ok":{}}}"#,
            a as u32 * 13,
            b,
            a % 17,
            a % 2 == 0
        ));
        i += 1;
    }
    s
}

/// A chunked response played as several writes, with chunk sizes varying from 1 byte up.
fn chunked_acts(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<Act> {
    let sizes = [1usize, 7, 4096, 65_536, 13, 100_000, 32_768, 250_000];
    let mut acts = vec![Act::Send(chunked_head(status, headers))];
    let (mut pos, mut k) = (0usize, 0usize);
    let mut write = Vec::new();
    while pos < body.len() {
        let n = sizes[k % sizes.len()].min(body.len() - pos);
        write.extend_from_slice(&chunk(&body[pos..pos + n]));
        pos += n;
        k += 1;
        if write.len() >= 256 * 1024 {
            acts.push(Act::Send(std::mem::take(&mut write)));
        }
    }
    write.extend_from_slice(b"0\r\n\r\n");
    acts.push(Act::Send(write));
    acts
}

fn header_values<'a>(r: &'a Resp, name: &str) -> Vec<&'a str> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn req_has(req: &Req, name: &str) -> bool {
    req.headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(name))
}

fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: body length differs");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first differing byte at offset {i}");
    }
}

fn pk_gate(upstream: &str) -> Gate {
    GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", upstream))
        .start()
}

fn oi_gate(upstream: &str) -> Gate {
    GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("oi", "openim", "/openim", upstream))
        .start()
}

// ---------------------------------------------------------------- upstream connection pool

#[test]
fn sequential_requests_reuse_one_vendor_connection() {
    // A held and released success, a held error answered as a problem and a streamed success
    // (not JSON, so not held), one after another: each response is read to its end, so its
    // connection goes back to the pool and the next request takes it instead of opening another.
    let m = Mock::start(|_, n| {
        let resp = match n % 3 {
            0 => json(200, r#"{"errCode":0,"errMsg":"","data":{"ok":true}}"#),
            1 => json(
                200,
                r#"{"errCode":1501,"errMsg":"token expired","errDlt":""}"#,
            ),
            _ => response(200, &[("Content-Type", "text/plain")], b"plain"),
        };
        vec![Act::Send(resp)]
    });
    let g = oi_gate(&m.url());
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(g.get("/openim/user/get_users").status);
        // The connection is back in the pool shortly after the response is written.
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(statuses, [200, 401, 200, 200, 401, 200]);
    assert_eq!(m.hits(), 6, "every request reached the vendor once");
    assert_eq!(
        m.connections(),
        1,
        "six sequential requests opened more than one vendor connection"
    );
}

// ---------------------------------------------------------------- big bodies

#[test]
fn status_signalling_vendor_multi_mib_chunked_success_is_byte_identical_with_headers() {
    let body = prng_bytes(4 * MIB + 123, 0x5eed_0001);
    let b2 = body.clone();
    let m = Mock::start(move |_, _| {
        chunked_acts(
            200,
            &[
                ("Content-Type", "application/octet-stream"),
                ("X-Vendor-Trace", "trace-7f3a; span=9"),
                ("Set-Cookie", "a=1; Path=/; HttpOnly"),
                ("Set-Cookie", "b=2; Path=/x; Secure"),
                ("ETag", "\"v1-abc\""),
                ("Cache-Control", "private, max-age=60"),
            ],
            &b2,
        )
    });
    let g = pk_gate(&m.url());
    let r = g.get("/pluralkit/systems/abc/members");
    assert_eq!(r.status, 200);
    assert_same_bytes(&r.body, &body, "4 MiB chunked pass-through");
    assert_eq!(r.header("x-vendor-trace"), Some("trace-7f3a; span=9"));
    assert_eq!(
        header_values(&r, "set-cookie"),
        vec!["a=1; Path=/; HttpOnly", "b=2; Path=/x; Secure"]
    );
    assert_eq!(r.header("etag"), Some("\"v1-abc\""));
    assert_eq!(r.header("cache-control"), Some("private, max-age=60"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    g.assert_metric(
        r#"errgate_requests_total{outcome="passthrough",route="pk",status="200"}"#,
        1.0,
    );
}

#[test]
fn success_statuses_201_and_206_pass_with_their_status_and_headers() {
    let partial = prng_bytes(1000, 7);
    let p2 = partial.clone();
    let m = Mock::start(move |req, _| {
        if req.method == "POST" {
            vec![Act::Send(response(
                201,
                &[
                    ("Content-Type", "application/json"),
                    ("Location", "/v2/members/newid"),
                    ("X-Vendor-Trace", "t201"),
                ],
                br#"{"id":"newid","name":"x"}"#,
            ))]
        } else {
            vec![Act::Send(response(
                206,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", "bytes 1000-1999/5000"),
                    ("Accept-Ranges", "bytes"),
                ],
                &p2,
            ))]
        }
    });
    let g = pk_gate(&m.url());
    let r = g.req(
        "POST",
        "/pluralkit/members",
        &[("Content-Type", "application/json")],
        br#"{"name":"x"}"#,
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.body, br#"{"id":"newid","name":"x"}"#);
    assert_eq!(r.header("location"), Some("/v2/members/newid"));
    assert_eq!(r.header("x-vendor-trace"), Some("t201"));

    let r = g.req(
        "GET",
        "/pluralkit/blob",
        &[("Range", "bytes=1000-1999")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, partial);
    assert_eq!(r.header("content-range"), Some("bytes 1000-1999/5000"));
    assert_eq!(r.header("content-length"), Some("1000"));
}

#[test]
fn content_length_success_passes_byte_identical_with_its_length() {
    let body = prng_bytes(MIB + 1, 0xc1);
    let b2 = body.clone();
    let m = Mock::start(move |_, _| {
        vec![Act::Send(response(
            200,
            &[
                ("Content-Type", "application/octet-stream"),
                ("X-Vendor-Trace", "cl"),
            ],
            &b2,
        ))]
    });
    let g = pk_gate(&m.url());
    let r = g.get("/pluralkit/export");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1048577"));
    assert!(r.header("transfer-encoding").is_none());
    assert_same_bytes(&r.raw_body, &body, "Content-Length pass-through");
    assert_eq!(r.header("x-vendor-trace"), Some("cl"));
}

fn openim_big_success() -> Vec<u8> {
    let mut s = String::from(r#"{"errCode":0,"errMsg":"","errDlt":"","data":{"total":1,"items":["#);
    s.push_str(&json_records(4 * MIB, 0x0b1));
    s.push_str("]}}");
    s.into_bytes()
}

#[test]
fn inband_vendor_multi_mib_success_with_errcode_zero_is_byte_identical() {
    let body = openim_big_success();
    let b2 = body.clone();
    let m = Mock::start(move |_, _| {
        chunked_acts(
            200,
            &[
                ("Content-Type", "application/json; charset=utf-8"),
                ("X-Vendor-Trace", "oi-trace"),
                ("Set-Cookie", "s=1"),
                ("ETag", "W/\"big\""),
            ],
            &b2,
        )
    });
    let g = oi_gate(&m.url());
    let r = g.req(
        "POST",
        "/openim/user/get_users",
        &[],
        br#"{"pagination":{}}"#,
    );
    assert_eq!(
        r.status,
        200,
        "{}",
        String::from_utf8_lossy(&r.body[..200.min(r.body.len())])
    );
    assert_same_bytes(&r.body, &body, "openim 4 MiB in-band success");
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("x-vendor-trace"), Some("oi-trace"));
    assert_eq!(r.header("set-cookie"), Some("s=1"));
    assert_eq!(r.header("etag"), Some("W/\"big\""));
}

#[test]
fn inband_success_is_released_when_errcode_zero_is_seen_not_at_the_hold_limit() {
    // errCode comes first: the scanner knows the verdict after a few bytes, so the response
    // must be released on that verdict, not by the hold-limit fallback.
    let body = openim_big_success();
    let b2 = body.clone();
    let m =
        Mock::start(move |_, _| chunked_acts(200, &[("Content-Type", "application/json")], &b2));
    let g = oi_gate(&m.url());
    let r = g.req("POST", "/openim/user/get_users", &[], b"{}");
    assert_eq!(r.status, 200);
    assert_same_bytes(&r.body, &body, "openim in-band success");
    assert_eq!(
        g.metric(r#"errgate_held_responses_total{route="oi"}"#),
        1.0,
        "a 2xx JSON from an in-band vendor is held"
    );
    assert_eq!(
        g.metric(r#"errgate_held_fallbacks_total{reason="hold_limit",route="oi"}"#),
        0.0,
        "released by the hold-limit fallback although errCode 0 was in the first bytes"
    );
}

#[test]
fn inband_content_length_success_passes_with_its_length() {
    let body = br#"{"errCode":0,"errMsg":"","errDlt":"","data":{"users":[{"userID":"u1","nickname":"\u4e2d\u6587 ok"}]}}"#;
    let m = Mock::fixed(response(
        200,
        &[
            ("Content-Type", "application/json"),
            ("X-Vendor-Trace", "small"),
        ],
        body,
    ));
    let g = oi_gate(&m.url());
    let r = g.req("POST", "/openim/user/get_users_info", &[], b"{}");
    assert_eq!(r.status, 200);
    assert_eq!(r.raw_body, body);
    assert_eq!(
        r.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(r.header("x-vendor-trace"), Some("small"));
}

#[test]
fn inband_success_with_errcode_after_the_hold_limit_passes_by_fallback_and_is_counted() {
    // 100 KiB of data before errCode: more than hold_max_bytes (64 KiB) must be held to see
    // the verdict, so errgate releases the response unclassified and counts the fallback.
    let mut s = String::from(r#"{"data":{"items":["#);
    s.push_str(&json_records(100 * 1024, 0xfa11));
    s.push_str(r#"]},"errCode":0,"errMsg":""}"#);
    let body = s.into_bytes();
    assert!(body.len() > 100 * 1024);
    let b2 = body.clone();
    let m =
        Mock::start(move |_, _| chunked_acts(200, &[("Content-Type", "application/json")], &b2));
    let g = oi_gate(&m.url());
    let r = g.req("POST", "/openim/msg/pull", &[], b"{}");
    assert_eq!(r.status, 200);
    assert_same_bytes(&r.body, &body, "hold-limit fallback");
    assert_eq!(
        g.metric(r#"errgate_held_fallbacks_total{reason="hold_limit",route="oi"}"#),
        1.0
    );
}

// ---------------------------------------------------------------- non-JSON, bodiless, 3xx, HEAD

#[test]
fn inband_vendor_non_json_success_passes_untouched_without_holding() {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    png.extend(prng_bytes(300_000, 0x9e9));
    let p2 = png.clone();
    let m = Mock::start(move |_, _| {
        chunked_acts(
            200,
            &[("Content-Type", "image/png"), ("X-Vendor-Trace", "png")],
            &p2,
        )
    });
    let g = oi_gate(&m.url());
    let r = g.get("/openim/object/avatar.png");
    assert_eq!(r.status, 200);
    assert_same_bytes(&r.body, &png, "png pass-through");
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.header("x-vendor-trace"), Some("png"));
    assert_eq!(
        g.metric(r#"errgate_held_responses_total{route="oi"}"#),
        0.0,
        "a non-JSON 2xx cannot be an in-band error and must stream"
    );
}

/// `write(2)` calls made by process `pid` so far (`syscw` in /proc/PID/io; socket sends and
/// receives are not counted there).
fn write_calls(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("read /proc/PID/io");
    io.lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("syscw in /proc/PID/io")
}

/// A proxied request costs no system call besides its sockets': in particular errgate does not
/// wake its own timer driver. tokio writes to the driver's eventfd whenever a timer is armed
/// that is due before the driver's next wake, which each request's vendor timers were (one
/// `write` per request, one request at a time) until the heartbeat of src/proxy/heartbeat.rs.
#[test]
fn sequential_requests_make_no_write_system_calls() {
    let m = Mock::fixed(json(200, r#"{"id":"abcde"}"#));
    let g = GateConfig::new()
        .set("access_log", json!({"target": "off"}))
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &m.url()))
        .start();
    let mut c = KeepAlive::connect(g.port);
    for _ in 0..5 {
        assert_eq!(c.get("/pluralkit/systems/x").expect("warm-up").status, 200);
    }
    let before = write_calls(g.pid());
    let n = 200;
    for _ in 0..n {
        let r = c.get("/pluralkit/systems/x").expect("request");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let writes = write_calls(g.pid()) - before;
    assert!(
        writes < n / 10,
        "{writes} write(2) calls for {n} requests: something wakes a thread per request"
    );
}

#[test]
fn no_content_204_passes_with_headers_for_both_vendor_kinds() {
    let raw = b"HTTP/1.1 204 No Content\r\nX-Vendor-Trace: nc\r\nETag: \"e204\"\r\n\r\n".to_vec();
    let m = Mock::fixed(raw);
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &m.url()))
        .route(RouteConfig::new("oi", "openim", "/openim", &m.url()))
        .start();
    for path in ["/pluralkit/members/x", "/openim/user/x"] {
        let r = g.req("DELETE", path, &[], b"");
        assert_eq!(r.status, 204, "{path}: {}", r.text());
        assert!(r.raw_body.is_empty(), "{path}: 204 with a body");
        assert_eq!(r.header("x-vendor-trace"), Some("nc"), "{path}");
        assert_eq!(r.header("etag"), Some("\"e204\""), "{path}");
    }
}

#[test]
fn not_modified_304_passes_with_its_validators() {
    let m = Mock::start(|_, _| {
        vec![Act::Send(
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v7\"\r\nCache-Control: max-age=30\r\n\r\n"
                .to_vec(),
        )]
    });
    let g = pk_gate(&m.url());
    let r = g.req(
        "GET",
        "/pluralkit/systems/x",
        &[("If-None-Match", "\"v7\"")],
        b"",
    );
    assert_eq!(r.status, 304);
    assert!(r.raw_body.is_empty());
    assert_eq!(r.header("etag"), Some("\"v7\""));
    assert_eq!(r.header("cache-control"), Some("max-age=30"));
    let reqs = m.requests.lock().expect("lock").clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("if-none-match"), Some("\"v7\""));
}

#[test]
fn redirect_passes_with_location_and_body() {
    let body = b"<a href=\"https://cdn.example/x\">moved</a>";
    let m = Mock::fixed(response(
        302,
        &[
            ("Location", "https://cdn.example/x?sig=a%2Fb"),
            ("Content-Type", "text/html"),
        ],
        body,
    ));
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &m.url()))
        .route(RouteConfig::new("oi", "openim", "/openim", &m.url()))
        .start();
    for path in ["/pluralkit/avatar", "/openim/object/x"] {
        let r = g.get(path);
        assert_eq!(r.status, 302, "{path}");
        assert_eq!(
            r.header("location"),
            Some("https://cdn.example/x?sig=a%2Fb")
        );
        assert_eq!(r.raw_body, body, "{path}");
    }
}

#[test]
fn head_passes_the_vendor_headers_without_a_body() {
    let m = Mock::start(|_, _| {
        vec![Act::Send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12345\r\nETag: \"h\"\r\nX-Vendor-Trace: head\r\n\r\n"
                .to_vec(),
        )]
    });
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &m.url()))
        .route(RouteConfig::new("oi", "openim", "/openim", &m.url()))
        .start();
    for path in ["/pluralkit/systems/x", "/openim/user/x"] {
        let r = g.req("HEAD", path, &[], b"");
        assert_eq!(r.status, 200, "{path}");
        assert!(r.raw_body.is_empty(), "{path}: HEAD answered with a body");
        assert_eq!(r.header("content-length"), Some("12345"), "{path}");
        assert_eq!(r.header("etag"), Some("\"h\""), "{path}");
        assert_eq!(r.header("x-vendor-trace"), Some("head"), "{path}");
    }
    let reqs = m.requests.lock().expect("lock").clone();
    let methods: Vec<&str> = reqs.iter().map(|q| q.method.as_str()).collect();
    assert_eq!(methods, vec!["HEAD", "HEAD"]);
}

// ---------------------------------------------------------------- the request side

#[test]
fn request_method_path_query_body_and_end_to_end_headers_reach_the_vendor() {
    let m = Mock::fixed(json(200, r#"{"ok":true}"#));
    let up = format!("{}/v2", m.url());
    let g = pk_gate(&up);
    let r = g.req(
        "PATCH",
        "/pluralkit/systems/x?a=1&b=%20c&a=2",
        &[
            ("Authorization", "Bearer tok-123"),
            ("Content-Type", "application/json"),
            ("X-Custom", "v1"),
            ("X-Custom", "v2"),
            ("Connection", "X-Hop-Only"),
            ("X-Hop-Only", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ],
        br#"{"name":"new"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, br#"{"ok":true}"#);
    let reqs = m.requests.lock().expect("lock").clone();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(q.method, "PATCH");
    assert_eq!(q.path, "/v2/systems/x?a=1&b=%20c&a=2");
    assert_eq!(q.body, br#"{"name":"new"}"#);
    assert_eq!(q.header("host"), Some(m.addr.to_string().as_str()));
    assert_eq!(q.header("authorization"), Some("Bearer tok-123"));
    assert_eq!(q.header("content-type"), Some("application/json"));
    let custom: Vec<&str> = q
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-custom"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        custom,
        vec!["v1", "v2"],
        "repeated headers keep their values and order"
    );
    for hop in ["keep-alive", "te", "x-hop-only", "proxy-authorization"] {
        assert!(
            !req_has(q, hop),
            "hop-by-hop header {hop} was forwarded: {:?}",
            q.headers
        );
    }
    for (k, v) in &q.headers {
        if k.eq_ignore_ascii_case("connection") {
            assert!(
                !v.to_ascii_lowercase().contains("x-hop-only"),
                "client Connection header forwarded: {v}"
            );
        }
    }
}

#[test]
fn prefix_is_stripped_and_joined_with_the_upstream_base_path() {
    let m = Mock::fixed(json(200, "{}"));
    let with_base = format!("{}/v2", m.url());
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new(
            "pk",
            "pluralkit",
            "/pluralkit",
            &with_base,
        ))
        .route(RouteConfig::new("oi", "openim", "/im/openim", &m.url()))
        .start();
    let cases = [
        ("/pluralkit/systems/x?a=1", "/v2/systems/x?a=1"),
        ("/pluralkit", "/v2"),
        ("/pluralkit/", "/v2/"),
        ("/pluralkit?x=1", "/v2?x=1"),
        ("/pluralkit/a%41b/c", "/v2/a%41b/c"),
        ("/im/openim/user/get?q=%E4%B8%AD", "/user/get?q=%E4%B8%AD"),
        ("/im/openim", "/"),
    ];
    for (path, _) in cases {
        let r = g.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let got: Vec<String> = m
        .requests
        .lock()
        .expect("lock")
        .iter()
        .map(|q| q.path.clone())
        .collect();
    let want: Vec<&str> = cases.iter().map(|(_, w)| *w).collect();
    assert_eq!(got, want);
    // An encoded slash is refused, not forwarded (path confinement, see tests/hostile.rs).
    let r = g.get("/pluralkit/a%2Fb/c");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(m.requests.lock().expect("lock").len(), want.len());
}

#[test]
fn prefix_matches_only_on_a_segment_boundary() {
    let m = Mock::fixed(json(200, "{}"));
    let g = pk_gate(&m.url());
    for path in [
        "/pluralkitx",
        "/pluralkitx/systems/x",
        "/pluralkit-v2/x",
        "/plural",
    ] {
        let r = g.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let v = r.json();
        assert_problem_schema(&v);
        assert_eq!(v["code"], "NOT_FOUND");
        assert_eq!(v["reason"], "NO_ROUTE");
        assert_eq!(v["domain"], "errgate");
        assert!(v["upstream"].is_null());
    }
    assert_eq!(m.hits(), 0, "an unmatched path reached the vendor");
    assert_eq!(g.get("/pluralkit/x").status, 200);
    assert_eq!(m.hits(), 1);
}

#[test]
fn large_post_body_is_forwarded_intact() {
    let body = prng_bytes(MIB + 17, 0xb0d1);
    let m = Mock::fixed(json(200, r#"{"stored":true}"#));
    let g = pk_gate(&m.url());
    let r = g.req(
        "POST",
        "/pluralkit/upload",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let reqs = m.requests.lock().expect("lock").clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_same_bytes(&reqs[0].body, &body, "1 MiB request body");
}

/// Sends a chunked POST by hand and returns (status, body) of the answer.
fn chunked_post(port: u16, path: &str, body: &[u8], piece: usize) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write head");
    for c in body.chunks(piece) {
        s.write_all(&chunk(c)).expect("write chunk");
    }
    s.write_all(b"0\r\n\r\n").expect("write end");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read");
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header block");
    let line = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, all[end + 4..].to_vec())
}

#[test]
fn chunked_request_body_is_forwarded_intact() {
    let body = prng_bytes(300_000, 0xc4c4);
    let m = Mock::fixed(json(200, "{}"));
    let g = pk_gate(&m.url());
    let (status, _) = chunked_post(g.port, "/pluralkit/upload", &body, 7_777);
    assert_eq!(status, 200);
    let reqs = m.requests.lock().expect("lock").clone();
    assert_eq!(reqs.len(), 1);
    assert_same_bytes(&reqs[0].body, &body, "chunked request body");
}

#[test]
fn hop_by_hop_response_headers_are_not_passed_to_the_client() {
    let m = Mock::fixed(response(
        200,
        &[
            ("Content-Type", "application/json"),
            ("Connection", "X-Vendor-Hop"),
            ("X-Vendor-Hop", "internal"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("Proxy-Authenticate", "Basic realm=x"),
            ("X-Vendor-Trace", "kept"),
        ],
        br#"{"ok":true}"#,
    ));
    let g = pk_gate(&m.url());
    let r = g.get("/pluralkit/systems/x");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"ok":true}"#);
    assert_eq!(r.header("x-vendor-trace"), Some("kept"));
    for hop in ["x-vendor-hop", "keep-alive", "proxy-authenticate"] {
        assert!(
            r.header(hop).is_none(),
            "{hop} reached the client: {:?}",
            r.headers
        );
    }
}

/// GETs `path` by hand; returns when `marker` had fully arrived (from the request start) and
/// the whole de-chunked body.
fn time_to_marker(port: u16, path: &str, marker: &[u8]) -> (Option<Duration>, Vec<u8>) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let (mut all, mut buf, mut seen) = (Vec::new(), [0u8; 16 * 1024], None);
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                all.extend_from_slice(&buf[..n]);
                if seen.is_none() && all.windows(marker.len()).any(|w| w == marker) {
                    seen = Some(t0.elapsed());
                }
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header block");
    let mut body = Vec::new();
    let mut rest = &all[end + 4..];
    loop {
        let nl = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).expect("hex"), 16)
            .expect("chunk size");
        if n == 0 {
            break;
        }
        body.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
        rest = &rest[nl + 2 + n + 2..];
    }
    (seen, body)
}

/// The vendor sends its header and a first chunk, pauses 3 s, then sends the rest.
fn pausing_vendor(first: &'static str, rest: &'static str) -> Mock {
    Mock::start(move |_, _| {
        let mut w = chunked_head(200, &[("Content-Type", "application/json")]);
        w.extend_from_slice(&chunk(first.as_bytes()));
        let mut tail = chunk(rest.as_bytes());
        tail.extend_from_slice(b"0\r\n\r\n");
        vec![
            Act::Send(w),
            Act::Sleep(Duration::from_secs(3)),
            Act::Send(tail),
        ]
    })
}

#[test]
fn chunked_success_is_streamed_as_it_arrives() {
    let (first, rest) = (r#"{"members":[{"id":"FIRST"},"#, r#"{"id":"LAST"}]}"#);
    let m = pausing_vendor(first, rest);
    let g = pk_gate(&m.url());
    let (seen, body) = time_to_marker(g.port, "/pluralkit/systems/x/members", b"FIRST");
    assert_eq!(body, format!("{first}{rest}").as_bytes());
    let seen = seen.expect("first chunk never arrived");
    assert!(
        seen < Duration::from_secs(2),
        "the first chunk reached the client only after {seen:?}, when the vendor finished"
    );
}

#[test]
fn inband_success_is_streamed_once_errcode_zero_is_seen() {
    let (first, rest) = (
        r#"{"errCode":0,"errMsg":"","data":{"FIRST":["#,
        r#"1,2,3],"LAST":true}}"#,
    );
    let m = pausing_vendor(first, rest);
    let g = oi_gate(&m.url());
    let (seen, body) = time_to_marker(g.port, "/openim/msg/pull", b"FIRST");
    assert_eq!(body, format!("{first}{rest}").as_bytes());
    let seen = seen.expect("first chunk never arrived");
    assert!(
        seen < Duration::from_secs(2),
        "the success was held for {seen:?}, until the vendor finished"
    );
}
