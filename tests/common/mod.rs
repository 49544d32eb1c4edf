//! Hermetic integration harness: the real `errgate` binary on free loopback ports, mock vendors
//! as real HTTP/1.1 servers on 127.0.0.1 port 0 that play scripted byte-level responses, and a
//! raw HTTP client that keeps response bytes exactly as received.
#![allow(dead_code)]

pub mod clients;
pub mod config;
#[allow(unused_imports)]
pub use config::{copy_catalogs, GateConfig, RouteConfig};
#[allow(unused_imports)]
pub use serde_json::json;
pub mod egress;
pub mod fleet;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repo root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind :0")
}

/// The value of the first header called `name` (any case).
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parsed headers as owned (name, value) pairs, values decoded lossily.
fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- mock vendor

/// A request as the mock vendor received it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// One step of a scripted response.
#[derive(Debug, Clone)]
pub enum Act {
    /// Write these bytes (one write call).
    Send(Vec<u8>),
    /// Wait.
    Sleep(Duration),
    /// Close the connection (FIN).
    Close,
    /// Reset the connection (RST via SO_LINGER 0).
    Reset,
}

type Handler = dyn Fn(&Req, usize) -> Vec<Act> + Send + Sync;

/// A mock vendor on 127.0.0.1:0. `hits` counts requests received, `connections` the
/// connections accepted.
pub struct Mock {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<Req>>>,
    pub connections: Arc<AtomicUsize>,
}

impl Mock {
    /// Starts a server calling `handler(request, hit_number_from_0)` for each request.
    pub fn start(handler: impl Fn(&Req, usize) -> Vec<Act> + Send + Sync + 'static) -> Mock {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind mock");
        let addr = l.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let connections = Arc::new(AtomicUsize::new(0));
        let (h2, r2, c2) = (hits.clone(), requests.clone(), connections.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                c2.fetch_add(1, Ordering::SeqCst);
                let (handler, hits, reqs) = (handler.clone(), h2.clone(), r2.clone());
                std::thread::spawn(move || serve_conn(conn, &*handler, &hits, &reqs));
            }
        });
        Mock {
            addr,
            hits,
            requests,
            connections,
        }
    }

    /// A mock answering every request with the same bytes.
    pub fn fixed(resp: Vec<u8>) -> Mock {
        Mock::start(move |_, _| vec![Act::Send(resp.clone())])
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let mut hbuf = [httparse::EMPTY_HEADER; 64];
    let mut pr = httparse::Request::new(&mut hbuf);
    pr.parse(&head).ok()?;
    let method = pr.method?.to_string();
    let path = pr.path?.to_string();
    let headers = owned_headers(pr.headers);
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(cl) = get("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        body.resize(cl, 0);
        r.read_exact(&mut body).ok()?;
    } else if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(Req {
        method,
        path,
        headers,
        body,
    })
}

fn serve_conn(conn: TcpStream, handler: &Handler, hits: &AtomicUsize, reqs: &Mutex<Vec<Req>>) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    while let Some(req) = read_request(&mut r) {
        let n = hits.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut v) = reqs.lock() {
            v.push(req.clone());
        }
        for act in handler(&req, n) {
            match act {
                Act::Send(b) => {
                    if w.write_all(&b).is_err() {
                        return;
                    }
                    let _ = w.flush();
                }
                Act::Sleep(d) => std::thread::sleep(d),
                Act::Close => {
                    let _ = w.shutdown(Shutdown::Both);
                    return;
                }
                Act::Reset => {
                    let _ = socket2::SockRef::from(&w).set_linger(Some(Duration::ZERO));
                    return;
                }
            }
        }
    }
}

/// A full response with Content-Length.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// A JSON response.
pub fn json(status: u16, body: &str) -> Vec<u8> {
    response(
        status,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// The head of a chunked response.
pub fn chunked_head(status: u16, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    out
}

/// One chunk in chunked encoding.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// A chunked response whose body is split at `splits` (byte offsets), one write per chunk
/// with a short pause so each arrives as its own read.
pub fn chunked_split(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    splits: &[usize],
) -> Vec<Act> {
    let mut acts = vec![Act::Send(chunked_head(status, headers))];
    let mut last = 0;
    for &s in splits.iter().chain(std::iter::once(&body.len())) {
        let s = s.min(body.len());
        if s > last {
            acts.push(Act::Send(chunk(&body[last..s])));
            acts.push(Act::Sleep(Duration::from_millis(5)));
            last = s;
        }
    }
    acts.push(Act::Send(b"0\r\n\r\n".to_vec()));
    acts
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

// ---------------------------------------------------------------- errgate process

/// A running `errgate run` with its own config and a private copy of the repo catalogs.
pub struct Gate {
    child: Child,
    pub port: u16,
    pub admin: u16,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Gate {
    fn spawn(
        dir: tempfile::TempDir,
        yaml: &str,
        port: u16,
        admin: u16,
        env: &[(String, String)],
    ) -> Result<Gate, (tempfile::TempDir, String)> {
        let cfg = dir.path().join("errgate.yaml");
        std::fs::write(&cfg, yaml).expect("write config");
        let log = dir.path().join("errgate.log");
        let logf = std::fs::File::create(&log).expect("log");
        let outf = std::fs::File::create(dir.path().join(ops::STDOUT)).expect("stdout");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_errgate"));
        cmd.args(["run", "--config"])
            .arg(&cfg)
            .arg("--pid-file")
            .arg(dir.path().join("errgate.pid"))
            .arg("--upgrade-sock")
            .arg(dir.path().join("upgrade.sock"))
            .env("RUST_LOG", "info")
            .stdout(outf)
            .stderr(logf);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn errgate");
        let mut g = Gate {
            child,
            port,
            admin,
            dir,
            log,
        };
        if g.wait_ready() {
            return Ok(g);
        }
        let _ = g.child.kill();
        let _ = g.child.wait();
        let text = g.log_text();
        let dir = std::mem::replace(&mut g.dir, tempfile::tempdir().expect("tempdir"));
        Err((dir, text))
    }

    /// Ready, or false when the process exited or 20 s passed.
    fn wait_ready(&mut self) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(r) = try_get(self.admin, "/readyz") {
                if r.status == 200 && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return true;
                }
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn catalog_dir(&self) -> PathBuf {
        self.dir.path().join("catalogs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("errgate.yaml")
    }

    /// GET through the gateway.
    pub fn get(&self, path: &str) -> Resp {
        request(self.port, "GET", path, &[], b"")
    }

    /// Any request through the gateway.
    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(self.port, method, path, headers, body)
    }

    /// GET on the admin listener.
    pub fn admin_get(&self, path: &str) -> Resp {
        request(self.admin, "GET", path, &[], b"")
    }

    /// The value of one metric series on /metrics (exact label set as printed), 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        let text = self.admin_get("/metrics").text();
        metric_value(&text, series)
    }

    /// `errgate_retries_total{result, route}`: retry decisions of one kind on one route.
    pub fn retries(&self, route: &str, result: &str) -> f64 {
        self.metric(&format!(
            r#"errgate_retries_total{{result="{result}",route="{route}"}}"#
        ))
    }

    /// Asserts that a metric reaches `want` (recorded when the request is logged, possibly
    /// just after the client got the response: polled for at most 3 s).
    #[track_caller]
    pub fn assert_metric(&self, series: &str, want: f64) {
        let t0 = Instant::now();
        let mut got = self.metric(series);
        while got != want && t0.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(20));
            got = self.metric(series);
        }
        assert_eq!(got, want, "{series}");
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a series value from a Prometheus text exposition; labels must be given in the order
/// the exposition prints them (alphabetical).
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, v) = l.rsplit_once(' ')?;
            (name == series).then(|| v.parse::<f64>().ok()).flatten()
        })
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------- raw client

/// A response with its raw bytes.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Everything received after the header block, as sent.
    pub raw_body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&b[..nl]).ok()?;
        let n = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        b = &b[nl + 2..];
        if n == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..n)?);
        b = b.get(n + 2..)?;
    }
}

/// One request on a fresh connection (`Connection: close`), reading to EOF.
pub fn try_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header block in {} bytes", all.len())))?;
    let mut hbuf = [httparse::EMPTY_HEADER; 64];
    let mut pr = httparse::Response::new(&mut hbuf);
    pr.parse(&all[..end + 4]).map_err(std::io::Error::other)?;
    let status = pr.code.unwrap_or(0);
    let headers = owned_headers(pr.headers);
    let raw_body = all[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(&raw_body).ok_or_else(|| std::io::Error::other("bad chunked body"))?
    } else {
        raw_body.clone()
    };
    Ok(Resp {
        status,
        headers,
        body,
        raw_body,
    })
}

/// Like `try_request`, panicking on I/O errors.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    try_request(port, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on :{port} failed: {e}"))
}

fn try_get(port: u16, path: &str) -> std::io::Result<Resp> {
    try_request(port, "GET", path, &[], b"")
}

/// Asserts a canonical problem body against the JSON Schema of contract §2 kept in the repo.
pub fn assert_problem_schema(v: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/problem.schema.json"))
            .expect("schema"),
    )
    .expect("schema json");
    let compiled = jsonschema::JSONSchema::compile(&schema).expect("compile schema");
    let msgs: Vec<String> = match compiled.validate(v) {
        Ok(()) => Vec::new(),
        Err(errs) => errs
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect(),
    };
    assert!(
        msgs.is_empty(),
        "problem body violates the schema: {msgs:?}\n{v:#}"
    );
}

/// Path of a file under tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// Whether a path exists (for optional data).
pub fn exists(p: &Path) -> bool {
    p.exists()
}
pub mod hostile;
pub mod ops;
pub mod run;
