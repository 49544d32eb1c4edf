//! Vendor faults (dead, reset, silent, stalled, cut) and errgate's own refusals: each gets the
//! right canonical answer or an honest cut connection, within bounded time, and errgate keeps
//! serving afterwards.
mod common;
use common::*;

use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Retry and cooldown off, short timeouts.
fn timeouts() -> GateConfig {
    GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .set("cooldown", json!({"enabled": false}))
        .set(
            "timeouts",
            json!({"connect": "1s", "read": "500ms", "total": "1s"}),
        )
}

/// Route `pk` (PluralKit, `/pluralkit`) to `m` with [`timeouts`].
fn pk_gate(m: &Mock) -> Gate {
    timeouts()
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &m.url()))
        .start()
}

// ---------------------------------------------------------------- helpers

fn ok_json() -> Vec<u8> {
    json(200, r#"{"id":"ok"}"#)
}

/// Asserts a canonical error of errgate's own making and returns its body.
fn gateway_problem(r: &Resp, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let v = r.json();
    assert_problem_schema(&v);
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["domain"], "errgate", "{v}");
    assert!(v["upstream"].is_null(), "{v}");
    v
}

fn assert_serves_next(g: &Gate, path: &str) {
    let r = g.get(path);
    assert_eq!(
        r.status,
        200,
        "errgate did not serve the next request: {}",
        r.text()
    );
    assert_eq!(r.body, br#"{"id":"ok"}"#);
}

/// How a raw read ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Orderly close.
    Eof,
    /// Connection reset or another I/O error.
    Broken(ErrorKind),
    /// Nothing more arrived within the client's timeout, connection still open.
    Stuck,
}

/// A response read by hand, keeping whatever arrived before the connection ended.
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
    end: End,
    elapsed: Duration,
}

fn raw_request(port: u16, req: &[u8], timeout: Duration) -> Raw {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(timeout)).expect("timeout");
    s.write_all(req).expect("write request");
    let mut all = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let end = loop {
        match s.read(&mut buf) {
            Ok(0) => break End::Eof,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break End::Stuck
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break End::Broken(e.kind()),
        }
    };
    // No header block (nothing arrived): status 0, everything in `head`.
    let split = all.windows(4).position(|w| w == b"\r\n\r\n");
    let head_end = split.unwrap_or(all.len());
    let head = String::from_utf8_lossy(&all[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Raw {
        status,
        head,
        body: split.map_or_else(Vec::new, |i| all[i + 4..].to_vec()),
        end,
        elapsed: t0.elapsed(),
    }
}

/// A GET read by hand; the client gives up (`End::Stuck`) after 4 s without data.
fn raw_get(port: u16, path: &str) -> Raw {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    raw_request(port, req.as_bytes(), Duration::from_secs(4))
}

// ---------------------------------------------------------------- connect / header faults

/// The README's promise: an unreachable vendor is answered with a canonical UNAVAILABLE.
#[test]
fn dead_upstream_gets_502_upstream_unavailable_and_errgate_keeps_serving() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let good = Mock::fixed(ok_json());
    let g = timeouts()
        .route(RouteConfig::new("dead", "pluralkit", "/dead", &dead))
        .route(RouteConfig::new(
            "pk",
            "pluralkit",
            "/pluralkit",
            &good.url(),
        ))
        .start();
    let t0 = Instant::now();
    let r = g.req("GET", "/dead/systems/x", &[("X-Request-Id", "dead-1")], b"");
    assert!(t0.elapsed() < Duration::from_secs(5));
    let v = gateway_problem(&r, 502, "UNAVAILABLE");
    assert_eq!(v["reason"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(v["retryable"], true);
    assert_eq!(v["request_id"], "dead-1");
    assert_eq!(r.header("x-request-id"), Some("dead-1"));
    assert_serves_next(&g, "/pluralkit/systems/x");
    g.assert_metric(
        r#"errgate_requests_total{outcome="gateway",route="dead",status="502"}"#,
        1.0,
    );
    g.assert_metric(r#"errgate_errors_total{code="UNAVAILABLE",domain="errgate",reason="UPSTREAM_UNAVAILABLE",route="dead",upstream_code="none"}"#, 1.0);
    g.assert_metric(
        r#"errgate_requests_total{outcome="passthrough",route="pk",status="200"}"#,
        1.0,
    );
}

#[test]
fn upstream_resetting_or_closing_before_answering_gets_502_unavailable() {
    let m = Mock::start(|_, hit| match hit {
        0 => vec![Act::Reset],
        1 => vec![Act::Close],
        2 => vec![
            Act::Send(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec()),
            Act::Reset,
        ],
        _ => vec![Act::Send(ok_json())],
    });
    let g = pk_gate(&m);
    for what in ["reset", "close", "reset inside the header"] {
        let r = g.get("/pluralkit/systems/x");
        let v = gateway_problem(&r, 502, "UNAVAILABLE");
        let reason = v["reason"].as_str().expect("reason");
        assert!(
            reason == "UPSTREAM_RESET" || reason == "UPSTREAM_UNAVAILABLE",
            "{what}: {reason}"
        );
    }
    assert_eq!(m.hits(), 3);
    assert_serves_next(&g, "/pluralkit/systems/x");
    g.assert_metric(
        r#"errgate_requests_total{outcome="gateway",route="pk",status="502"}"#,
        3.0,
    );
}

#[test]
fn silent_upstream_gets_504_deadline_exceeded_within_the_timeout() {
    let m = Mock::start(|_, hit| match hit {
        0 => vec![Act::Sleep(Duration::from_secs(10)), Act::Close],
        _ => vec![Act::Send(ok_json())],
    });
    let g = pk_gate(&m);
    let t0 = Instant::now();
    let r = g.get("/pluralkit/systems/x");
    let took = t0.elapsed();
    let v = gateway_problem(&r, 504, "DEADLINE_EXCEEDED");
    assert_eq!(v["reason"], "UPSTREAM_TIMEOUT");
    assert_eq!(v["retryable"], true);
    assert!(took < Duration::from_secs(5), "504 took {took:?}");
    assert_serves_next(&g, "/pluralkit/systems/x");
    g.assert_metric(
        r#"errgate_requests_total{outcome="gateway",route="pk",status="504"}"#,
        1.0,
    );
}

#[test]
fn held_error_whose_body_stalls_is_answered_from_the_vendor_status_within_the_timeout() {
    // The header says 404 (held for scanning), then the body never completes.
    let m = Mock::start(|_, hit| {
        match hit {
        0 => vec![
            Act::Send(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":"
                    .to_vec(),
            ),
            Act::Sleep(Duration::from_secs(10)),
            Act::Close,
        ],
        _ => vec![Act::Send(ok_json())],
    }
    });
    let g = pk_gate(&m);
    let t0 = Instant::now();
    let r = g.get("/pluralkit/members/x");
    let took = t0.elapsed();
    // The vendor did answer 404: once the body stalls past the read timeout, errgate answers
    // from the vendor's status and what it read, without waiting for the vendor.
    assert_eq!(r.status, 404, "{}", r.text());
    let v = r.json();
    assert_problem_schema(&v);
    assert_eq!(v["code"], "NOT_FOUND", "{v}");
    assert_eq!(v["domain"], "pluralkit", "{v}");
    assert_eq!(v["upstream"]["status"], 404, "{v}");
    assert!(took < Duration::from_secs(5), "answer took {took:?}");
    assert_serves_next(&g, "/pluralkit/systems/x");
}

// ---------------------------------------------------------------- faults after a success header

/// A 200 with Content-Length 100000 whose body stops after 1000 bytes; the vendor then waits
/// `stall` and closes.
fn stalling_success(stall: Duration) -> Mock {
    Mock::start(move |_, hit| match hit {
        0 => {
            let mut head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n".to_vec();
            head.extend_from_slice(&[b'a'; 1000]);
            vec![Act::Send(head), Act::Sleep(stall), Act::Close]
        }
        _ => vec![Act::Send(ok_json())],
    })
}

fn assert_cut_success(r: &Raw, bound: Duration) {
    assert_ne!(
        r.end,
        End::Stuck,
        "the client was left hanging on a stalled body ({:?}, {} header bytes, {} body bytes)",
        r.elapsed,
        r.head.len(),
        r.body.len()
    );
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains("content-length: 100000"),
        "{}",
        r.head
    );
    assert!(r.elapsed < bound, "cut took {:?}", r.elapsed);
    assert!(r.body.len() < 100_000, "a stalled body cannot be complete");
    assert!(r.body.iter().all(|&b| b == b'a'), "body bytes changed");
}

#[test]
fn passthrough_body_cut_by_a_stalled_vendor_reaches_the_client_as_a_cut() {
    let m = stalling_success(Duration::from_millis(300));
    let g = pk_gate(&m);
    let r = raw_get(g.port, "/pluralkit/export");
    assert_cut_success(&r, Duration::from_secs(4));
    assert_serves_next(&g, "/pluralkit/systems/x");
    g.assert_metric(
        r#"errgate_requests_total{outcome="passthrough",route="pk",status="200"}"#,
        2.0,
    );
}

#[test]
fn passthrough_body_stall_is_cut_by_the_read_timeout() {
    // read: 500ms; the vendor stalls for 10 s, longer than the client waits (4 s).
    let m = stalling_success(Duration::from_secs(10));
    let g = pk_gate(&m);
    let r = raw_get(g.port, "/pluralkit/export");
    assert_cut_success(&r, Duration::from_secs(4));
    assert_serves_next(&g, "/pluralkit/systems/x");
}

#[test]
fn read_timeout_bounds_the_wait_for_the_response_header() {
    let m = Mock::start(|_, hit| match hit {
        0 => vec![Act::Sleep(Duration::from_secs(10)), Act::Close],
        _ => vec![Act::Send(ok_json())],
    });
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .set(
            "timeouts",
            json!({"connect": "1s", "read": "300ms", "total": "8s"}),
        )
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &m.url()))
        .start();
    let t0 = Instant::now();
    let r = g.get("/pluralkit/systems/x");
    let took = t0.elapsed();
    let v = gateway_problem(&r, 504, "DEADLINE_EXCEEDED");
    assert_eq!(v["reason"], "UPSTREAM_TIMEOUT");
    assert!(
        took < Duration::from_secs(3),
        "read: 300ms, yet the 504 took {took:?}"
    );
}

#[test]
fn upstream_reset_mid_body_after_success_header_cuts_the_client_connection() {
    let m = Mock::start(|_, hit| match hit {
        0 => vec![
            Act::Send(chunked_head(200, &[("Content-Type", "application/json")])),
            Act::Send(chunk(br#"{"items":[1,2,3,"#)),
            Act::Sleep(Duration::from_millis(50)),
            Act::Reset,
        ],
        _ => vec![Act::Send(ok_json())],
    });
    let g = pk_gate(&m);
    let r = raw_get(g.port, "/pluralkit/systems/x/members");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_ne!(
        r.end,
        End::Stuck,
        "the client was left hanging after the reset"
    );
    assert!(
        r.elapsed < Duration::from_secs(5),
        "cut took {:?}",
        r.elapsed
    );
    assert!(
        !r.body.ends_with(b"0\r\n\r\n"),
        "a body cut by the vendor was terminated as if complete: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert_serves_next(&g, "/pluralkit/systems/x");
    g.assert_metric(
        r#"errgate_requests_total{outcome="passthrough",route="pk",status="200"}"#,
        2.0,
    );
}

// ---------------------------------------------------------------- errgate's own refusals

#[test]
fn request_body_above_the_limit_gets_413_without_contacting_the_vendor() {
    let m = Mock::fixed(ok_json());
    let g = timeouts()
        .set("max_request_body_bytes", 1024)
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &m.url()))
        .start();
    let r = g.req("POST", "/pluralkit/members", &[], &[b'x'; 2048]);
    let v = gateway_problem(&r, 413, "INVALID_ARGUMENT");
    assert_eq!(v["reason"], "REQUEST_TOO_LARGE");
    assert_eq!(v["retryable"], false);

    // Declared far above the limit, body never sent: refused on the header alone.
    let req = format!(
        "POST /pluralkit/members HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 50000000\r\n\r\n",
        g.port
    );
    let raw = raw_request(g.port, req.as_bytes(), Duration::from_secs(5));
    assert_eq!(raw.status, 413, "{}", raw.head);
    assert_ne!(raw.end, End::Stuck);
    assert_eq!(
        m.hits(),
        0,
        "the vendor was contacted for an oversized request"
    );

    // At the limit it goes through.
    let r = g.req("POST", "/pluralkit/members", &[], &[b'y'; 1024]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.hits(), 1);
    let reqs = m.requests.lock().expect("lock").clone();
    assert_eq!(reqs[0].body, vec![b'y'; 1024]);
    g.assert_metric(
        r#"errgate_requests_total{outcome="gateway",route="pk",status="413"}"#,
        2.0,
    );
}
