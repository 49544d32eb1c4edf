//! Bounded loopback load while the PluralKit catalog is swapped over and over (valid variants
//! A and B, and every 5th swap an invalid file): every answer must come from a valid catalog.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const MIN_REQUESTS: usize = 20_000;
const SWAPS: usize = 100;
/// Clients stop by this time whatever happens; the whole test stays under 90 s.
const DEADLINE: Duration = Duration::from_secs(75);

const REASON_A: &str = "MEMBER_NOT_FOUND";
const REASON_B: &str = "MEMBER_MISSING_B";
const MEMBER_404: &str = r#"{"message":"Member not found.","code":20002}"#;
const OK_BODY: &str = r#"{"id":"abcde","name":"Load","privacy":null}"#;

/// A minimal HTTP/1.1 keep-alive client for Content-Length and chunked responses.
struct Conn {
    port: u16,
    r: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn new(port: u16) -> Conn {
        Conn { port, r: None }
    }

    fn get(&mut self, path: &str) -> Result<(u16, Vec<u8>), String> {
        if self.r.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            self.r = Some(BufReader::new(s));
        }
        let res = self.exchange(path);
        match &res {
            Ok((_, _, keep)) if *keep => {}
            _ => self.r = None,
        }
        res.map(|(s, b, _)| (s, b))
    }

    fn exchange(&mut self, path: &str) -> Result<(u16, Vec<u8>, bool), String> {
        let port = self.port;
        let r = self.r.as_mut().ok_or("no connection")?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        r.get_mut()
            .write_all(req.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| format!("status: {e}"))?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let (mut len, mut chunked, mut keep) = (None, false, true);
        loop {
            let mut h = String::new();
            r.read_line(&mut h).map_err(|e| format!("header: {e}"))?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h
                .split_once(':')
                .ok_or_else(|| format!("bad header {h:?}"))?;
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => len = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => keep = !v.contains("close"),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).map_err(|e| format!("chunk: {e}"))?;
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| format!("bad chunk size {size:?}"))?;
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk)
                    .map_err(|e| format!("chunk: {e}"))?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = len {
            body.resize(n, 0);
            r.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
        } else {
            r.read_to_end(&mut body).map_err(|e| format!("body: {e}"))?;
            keep = false;
        }
        Ok((status, body, keep))
    }
}

fn variant(reason: &str) -> String {
    let text = std::fs::read_to_string(repo().join("catalogs/pluralkit.yaml")).expect("catalog");
    let old = format!("    reason: {REASON_A}\n");
    assert_eq!(text.matches(&old).count(), 1);
    text.replace(&old, &format!("    reason: {reason}\n"))
}

/// Checks one answer; `Err` describes what is wrong.
fn check(path: &str, status: u16, body: &[u8]) -> Result<Option<bool>, String> {
    if path.ends_with("/ok") {
        return if status == 200 && body == OK_BODY.as_bytes() {
            Ok(None)
        } else {
            Err(format!(
                "{path}: {status} {}",
                String::from_utf8_lossy(body)
            ))
        };
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "{path}: {status} not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })?;
    let ok = status == 404
        && v["code"] == "NOT_FOUND"
        && v["domain"] == "pluralkit"
        && v["upstream"]["code"] == "20002";
    match v["reason"].as_str() {
        Some(REASON_A) if ok => Ok(Some(true)),
        Some(REASON_B) if ok => Ok(Some(false)),
        _ => Err(format!("{path}: {status} {v}")),
    }
}

#[test]
fn load_while_catalogs_swap() {
    let m = Mock::start(|req, _| {
        if req.path.ends_with("/ok") {
            vec![Act::Send(json(200, OK_BODY))]
        } else {
            vec![Act::Send(json(404, MEMBER_404))]
        }
    });
    let g = GateConfig::new()
        .set("catalog_poll_interval", "1s")
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let port = g.port;
    let t0 = Instant::now();
    let total = Arc::new(AtomicUsize::new(0));
    let swapping_done = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new((0usize, Vec::<String>::new())));
    let seen = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);

    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (total, done, failures, seen) = (
            total.clone(),
            swapping_done.clone(),
            failures.clone(),
            seen.clone(),
        );
        clients.push(std::thread::spawn(move || {
            let mut conn = Conn::new(port);
            let mut i = 0usize;
            while t0.elapsed() < DEADLINE
                && !(done.load(Ordering::SeqCst) && total.load(Ordering::SeqCst) >= MIN_REQUESTS)
            {
                let path = if (i + c) % 5 == 4 {
                    format!("/pk/members/c{c}/ok")
                } else {
                    format!("/pk/members/c{c}x{i}")
                };
                i += 1;
                let res = conn
                    .get(&path)
                    .and_then(|(status, body)| check(&path, status, &body));
                total.fetch_add(1, Ordering::SeqCst);
                match res {
                    Ok(Some(a)) => {
                        seen[usize::from(!a)].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let mut f = failures.lock().expect("failures");
                        f.0 += 1;
                        if f.1.len() < 5 {
                            f.1.push(e);
                        }
                    }
                }
            }
        }));
    }

    // The swapper: write-and-rename, A and B alternating, every 5th an invalid file.
    let (a, b) = (variant(REASON_A), variant(REASON_B));
    let invalid = "schema: 1\nvendor: pluralkit\nentries: [ {code: \"20002\"\n";
    let target = g.catalog_dir().join("pluralkit.yaml");
    let tmp = g.catalog_dir().join(".pluralkit.yaml.tmp");
    let mut swaps = 0;
    let mut invalid_swaps = 0;
    while swaps < SWAPS && t0.elapsed() < DEADLINE {
        swaps += 1;
        let (text, pause) = if swaps % 5 == 0 {
            invalid_swaps += 1;
            (invalid, 450)
        } else if swaps % 2 == 0 {
            (b.as_str(), 120)
        } else {
            (a.as_str(), 120)
        };
        std::fs::write(&tmp, text).expect("write temp");
        std::fs::rename(&tmp, &target).expect("rename");
        std::thread::sleep(Duration::from_millis(pause));
    }
    // End on a valid catalog.
    std::fs::write(&tmp, &a).expect("write temp");
    std::fs::rename(&tmp, &target).expect("rename");
    let swap_time = t0.elapsed();
    swapping_done.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client thread");
    }
    let took = t0.elapsed();
    let total = total.load(Ordering::SeqCst);
    let (failed, samples) = failures.lock().expect("failures").clone();
    let (seen_a, seen_b) = (
        seen[0].load(Ordering::SeqCst),
        seen[1].load(Ordering::SeqCst),
    );
    let ok = g.metric(r#"errgate_catalog_reloads_total{result="success"}"#);
    let bad = g.metric(r#"errgate_catalog_reloads_total{result="failure"}"#);
    println!(
        "load: {total} requests in {:.1} s ({:.0} req/s) by {CLIENTS} clients; {swaps} swaps \
         ({invalid_swaps} invalid) in {:.1} s; reason A {seen_a}, B {seen_b}; reloads ok {ok}, \
         failed {bad}; failed requests {failed}",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        swap_time.as_secs_f64()
    );
    assert_eq!(failed, 0, "failed requests, first ones: {samples:#?}");
    assert!(swaps >= SWAPS, "only {swaps} swaps before the deadline");
    assert!(total >= MIN_REQUESTS, "only {total} requests in {took:?}");
    assert!(seen_a > 0 && seen_b > 0, "A {seen_a}, B {seen_b}");
    assert!(ok >= 1.0 && bad >= 1.0, "reloads: ok {ok}, failed {bad}");
    assert_eq!(m.hits(), total, "every request reached the vendor once");
    assert!(took < Duration::from_secs(90), "{took:?}");
}
