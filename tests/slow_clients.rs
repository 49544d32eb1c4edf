//! Slow and stuck clients cannot pin errgate or a vendor connection: a client that stops
//! sending its body, stops reading the response, dribbles its header or idles is cut within the
//! `downstream.*` bounds, and the vendor side sees its connection closed (or never opened).
//! Connections beyond `downstream.max_connections` get 503 `TOO_MANY_CONNECTIONS`.
mod common;
use common::clients::{KeepAlive, RawVendor, VendorPlay};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const OK: &str = r#"{"id":"abcde","name":"ok"}"#;

fn gate(upstream: &str, downstream: serde_json::Value) -> Gate {
    GateConfig::new()
        .set("downstream", downstream)
        .route(RouteConfig::new("v", "pluralkit", "/v", upstream))
        .start()
}

#[test]
fn stalled_request_body_gets_408_and_the_vendor_connection_is_closed() {
    let v = RawVendor::start(VendorPlay::ReadUntilClose);
    let g = gate(&v.url(), json!({"read_timeout": "500ms"}));
    let mut c = TcpStream::connect(("127.0.0.1", g.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    c.write_all(b"POST /v/systems HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"members\"")
        .expect("write");
    let stalled = Instant::now();
    // The client keeps the connection open and sends nothing more; it reads the answer.
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    let took = stalled.elapsed();
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 408"), "answer: {text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let p: serde_json::Value = serde_json::from_str(body).expect("problem body");
    assert_problem_schema(&p);
    assert_eq!(p["reason"], "CLIENT_TIMEOUT", "answer: {text}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "answered after {took:?}, read_timeout is 500ms"
    );
    let conn = v
        .wait_closed(0, Duration::from_secs(5))
        .expect("the vendor connection stayed open after the client stalled");
    assert_eq!(v.snapshot().len(), 1, "the POST was sent again");
    assert!(conn.head.starts_with("POST /systems"), "{}", conn.head);
    assert_eq!(conn.body_bytes, 10, "the vendor saw the 10 bytes sent");
    let held = conn.closed.expect("closed") - stalled;
    assert!(
        held < Duration::from_secs(3),
        "the vendor connection was held {held:?} after the client stalled"
    );
}

#[test]
fn client_that_stops_reading_releases_the_vendor_connection_within_write_timeout() {
    const TOTAL: usize = 1 << 30;
    let v = RawVendor::start(VendorPlay::Stream { total: TOTAL });
    let g = gate(&v.url(), json!({"write_timeout": "500ms"}));
    let mut c = TcpStream::connect(("127.0.0.1", g.port)).expect("connect");
    c.write_all(b"GET /v/export HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    // Never read: the buffers between vendor and client fill up, then errgate's write stalls.
    let conn = v
        .wait_closed(0, Duration::from_secs(20))
        .unwrap_or_else(|| {
            panic!(
                "the vendor connection was still open 20 s after the client stopped reading: {:?}",
                v.snapshot()
            )
        });
    assert!(
        conn.sent < TOTAL,
        "the whole body went through: {}",
        conn.sent
    );
    let stuck = conn.closed.expect("closed") - conn.last_write.unwrap_or(conn.accepted);
    assert!(
        stuck < Duration::from_secs(3),
        "the vendor connection was held {stuck:?} after its last write; write_timeout is 500ms"
    );
    assert_eq!(v.snapshot().len(), 1, "the request was sent again");
    drop(c);
}

/// Writes a header a byte at a time (every 50 ms) until errgate closes the connection or
/// `limit` passes; how long errgate let it go on, or None.
fn dribble(c: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let mut r = c.try_clone().expect("clone");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 256];
        loop {
            match r.read(&mut b) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = tx.send(Instant::now());
    });
    let t0 = Instant::now();
    c.write_all(b"GET /v/systems HTTP/1.1\r\n").ok()?;
    let line = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut i = 0;
    while t0.elapsed() < limit {
        if let Ok(at) = rx.try_recv() {
            return Some(at - t0);
        }
        if c.write_all(&line[i % line.len()..i % line.len() + 1])
            .is_err()
        {
            break;
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    rx.recv_timeout(Duration::from_millis(500))
        .ok()
        .map(|at| at - t0)
}

#[test]
fn dribbled_header_is_cut_within_header_timeout() {
    let m = Mock::fixed(json(200, OK));
    let g = gate(&m.url(), json!({"header_timeout": "500ms"}));
    let mut c = TcpStream::connect(("127.0.0.1", g.port)).expect("connect");
    let cut = dribble(&mut c, Duration::from_secs(10))
        .expect("errgate kept reading a dribbled header for 10 s");
    assert!(
        cut >= Duration::from_millis(400) && cut < Duration::from_secs(3),
        "cut after {cut:?}; header_timeout is 500ms"
    );
    assert_eq!(m.hits(), 0, "the vendor saw a request");
    // errgate still serves.
    assert_eq!(g.get("/v/systems").status, 200);
}

#[test]
fn dribbled_header_on_a_kept_alive_connection_is_cut_within_idle_timeout() {
    let m = Mock::fixed(json(200, OK));
    let g = gate(
        &m.url(),
        json!({"header_timeout": "500ms", "idle_timeout": "1s"}),
    );
    let mut ka = KeepAlive::connect(g.port);
    assert_eq!(ka.get("/v/systems").expect("first").status, 200);
    let cut = dribble(&mut ka.stream, Duration::from_secs(10))
        .expect("errgate kept reading a dribbled header for 10 s");
    assert!(
        cut >= Duration::from_millis(800) && cut < Duration::from_secs(3),
        "cut after {cut:?}; idle_timeout 1s bounds idle time and header together"
    );
    assert_eq!(m.hits(), 1, "the dribbled request reached the vendor");
}

#[test]
fn idle_kept_alive_connection_is_closed_after_idle_timeout() {
    let m = Mock::fixed(json(200, OK));
    let g = gate(&m.url(), json!({"idle_timeout": "1s"}));
    let mut ka = KeepAlive::connect(g.port);
    assert_eq!(ka.get("/v/systems").expect("first").status, 200);
    let t0 = Instant::now();
    assert!(
        ka.closed_within(Duration::from_secs(10)),
        "an idle kept-alive connection stayed open 10 s"
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}; idle_timeout is 1s"
    );
}

#[test]
fn connections_beyond_max_connections_get_503_and_open_ones_keep_working() {
    let m = Mock::fixed(json(200, OK));
    let g = gate(&m.url(), json!({"max_connections": 2}));
    // The readiness probe's connections must be gone before counting.
    std::thread::sleep(Duration::from_millis(300));
    let mut a = KeepAlive::connect(g.port);
    let mut b = KeepAlive::connect(g.port);
    assert_eq!(a.get("/v/systems").expect("a").status, 200);
    assert_eq!(b.get("/v/systems").expect("b").status, 200);
    assert_eq!(m.hits(), 2);

    let mut c = KeepAlive::connect(g.port);
    let r = c.get("/v/systems").expect("c is answered");
    assert_eq!(r.status, 503, "{r:?}");
    let p = r.json();
    assert_problem_schema(&p);
    assert_eq!(p["reason"], "TOO_MANY_CONNECTIONS");
    assert_eq!(p["retryable"], true);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(
        r.header("connection").map(|v| v.to_ascii_lowercase()),
        Some("close".to_string())
    );
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "the connection over the limit stayed open"
    );
    assert_eq!(m.hits(), 2, "a request over the limit reached the vendor");

    // The open connections keep working.
    assert_eq!(a.get("/v/systems").expect("a again").status, 200);
    assert_eq!(m.hits(), 3);
    // A slot freed is a slot available.
    drop(b);
    std::thread::sleep(Duration::from_millis(300));
    let mut d = KeepAlive::connect(g.port);
    assert_eq!(d.get("/v/systems").expect("d").status, 200);
    assert_eq!(m.hits(), 4);
}

#[test]
fn a_kept_alive_connection_stays_open_while_requests_keep_coming() {
    // Each gap is under idle_timeout, their sum well over it: the connection's one watchdog is
    // moved forward for every request, not left at its first deadline.
    let m = Mock::fixed(json(200, OK));
    let g = gate(&m.url(), json!({"idle_timeout": "1s"}));
    let mut ka = KeepAlive::connect(g.port);
    for i in 0..4 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(600));
        }
        let r = ka
            .get("/v/systems")
            .unwrap_or_else(|e| panic!("request {i} on the kept-alive connection: {e}"));
        assert_eq!(r.status, 200, "request {i}");
    }
    assert_eq!(m.hits(), 4);
}

#[test]
fn a_slow_vendor_answer_is_not_cut_by_the_header_watchdog() {
    // The request header was complete long before the watchdog's deadline passes.
    let m = Mock::start(|_, _| {
        vec![
            Act::Sleep(Duration::from_millis(1200)),
            Act::Send(json(200, OK)),
        ]
    });
    let g = gate(
        &m.url(),
        json!({"header_timeout": "300ms", "idle_timeout": "1s"}),
    );
    let mut ka = KeepAlive::connect(g.port);
    for i in 0..2 {
        let r = ka
            .get("/v/systems")
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(r.status, 200, "request {i}");
    }
    assert_eq!(m.hits(), 2);
}
