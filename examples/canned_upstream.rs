//! A small, fast canned upstream for the load benchmark: HTTP/1.1 keep-alive on loopback, fixed
//! responses by path, each pre-rendered (header + body) into one buffer written with one call.
//!
//! | path         | response |
//! |--------------|----------|
//! | `/small`     | 200, a ~200 B JSON success (a PluralKit member) |
//! | `/large`     | 200, a 1 MiB JSON success (Content-Length) |
//! | `/large-chunked` | the same 1 MiB JSON, `Transfer-Encoding: chunked` (16 KiB chunks) |
//! | `/error`     | 404, PluralKit `{"code":20002,"message":"Member not found."}` |
//! | `/inband`    | 200, OpenIM `{"errCode":1501,"errMsg":"token expired",...}` (in-band error) |
//! | `/inband-ok` | 200, OpenIM `{"errCode":0,...}` (in-band success) |
//! | `/inband-large-ok` | 200, a 1 MiB OpenIM in-band success `{"errCode":0,"errMsg":"","data":{...}}` (Content-Length) |
//! | other        | 404 `{"code":0,"message":"404: Not Found"}` |
//!
//! Any prefix before the last of these names is ignored (`/pluralkit/small` = `/small`), so it can
//! also sit behind a proxy that does not strip prefixes. Query strings are ignored.
//!
//! `cargo run --release --example canned_upstream -- ADDR [THREADS]`, e.g. `127.0.0.1:18080 1`.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SMALL: &str = r#"{"id":"exmpl","uuid":"ee8e5a4b-7b8d-4f6e-9e3a-2f1c0d9b8a71","name":"Alice","display_name":"Alice A.","color":"ff6699","birthday":"2000-01-01","pronouns":"she/her","created":"2020-01-01T00:00:00Z"}"#;
const ERROR: &str = r#"{"code":20002,"message":"Member not found."}"#;
const INBAND: &str =
    r#"{"errCode":1501,"errMsg":"token expired","errDlt":": TokenExpired","data":null}"#;
const INBAND_OK: &str = r#"{"errCode":0,"errMsg":"","errDlt":"","data":{"userID":"u1001","nickname":"alice","faceURL":"","createTime":1700000000000}}"#;
const NOT_FOUND: &str = r#"{"code":0,"message":"404: Not Found"}"#;
const LARGE_LEN: usize = 1 << 20;

/// A 1 MiB JSON success: an array of member objects, padded to exactly `LARGE_LEN` bytes.
fn large_body() -> Vec<u8> {
    let mut s = String::with_capacity(LARGE_LEN);
    s.push_str(r#"{"members":["#);
    let mut i = 0u32;
    loop {
        let m = format!(
            r#"{{"id":"m{i:05}","name":"Member {i}","pronouns":"they/them","color":"00aaff","tags":["a","b"],"n":{i}}}"#
        );
        // Room for the separator, the closing `],"pad":""}` and a little padding.
        if s.len() + m.len() + 1 + 16 > LARGE_LEN {
            break;
        }
        if i > 0 {
            s.push(',');
        }
        s.push_str(&m);
        i += 1;
    }
    s.push_str(r#"],"pad":""#);
    while s.len() < LARGE_LEN - 2 {
        s.push(' ');
    }
    s.push_str(r#""}"#);
    debug_assert_eq!(s.len(), LARGE_LEN);
    s.into_bytes()
}

/// A 1 MiB OpenIM in-band success: the envelope first (as OpenIM writes it), then the data.
fn inband_large_body() -> Vec<u8> {
    let members = large_body();
    let mut s = br#"{"errCode":0,"errMsg":"","errDlt":"","data":"#.to_vec();
    s.extend_from_slice(&members);
    s.push(b'}');
    s
}

fn response(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nServer: canned\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn chunked(status: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nServer: canned\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for c in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

struct Canned {
    small: Vec<u8>,
    large: Vec<u8>,
    large_chunked: Vec<u8>,
    error: Vec<u8>,
    inband: Vec<u8>,
    inband_ok: Vec<u8>,
    inband_large_ok: Vec<u8>,
    not_found: Vec<u8>,
}

impl Canned {
    fn new() -> Canned {
        let large = large_body();
        Canned {
            small: response("200 OK", SMALL.as_bytes()),
            large_chunked: chunked("200 OK", &large, 16 * 1024),
            large: response("200 OK", &large),
            error: response("404 Not Found", ERROR.as_bytes()),
            inband: response("200 OK", INBAND.as_bytes()),
            inband_ok: response("200 OK", INBAND_OK.as_bytes()),
            inband_large_ok: response("200 OK", &inband_large_body()),
            not_found: response("404 Not Found", NOT_FOUND.as_bytes()),
        }
    }

    fn for_path(&self, path: &[u8]) -> &[u8] {
        let path = path.split(|&b| b == b'?').next().unwrap_or(path);
        let last = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        match last {
            b"small" => &self.small,
            b"large" => &self.large,
            b"large-chunked" => &self.large_chunked,
            b"error" => &self.error,
            b"inband" => &self.inband,
            b"inband-ok" => &self.inband_ok,
            b"inband-large-ok" => &self.inband_large_ok,
            _ => &self.not_found,
        }
    }
}

async fn serve(mut sock: TcpStream, canned: Arc<Canned>) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::new();
    loop {
        // Answer every complete request in the buffer (pipelining), then write once.
        let mut consumed = 0usize;
        let mut close = false;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[consumed..]) {
                Ok(httparse::Status::Complete(n)) => {
                    let mut body_len = 0usize;
                    for h in req.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            body_len = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                        } else if h.name.eq_ignore_ascii_case("connection")
                            && h.value.eq_ignore_ascii_case(b"close")
                        {
                            close = true;
                        }
                    }
                    if buf.len() - consumed < n + body_len {
                        break; // body not complete yet
                    }
                    let resp = canned.for_path(req.path.unwrap_or("/").as_bytes());
                    if out.is_empty() && resp.len() > 64 * 1024 {
                        sock.write_all(resp).await?;
                    } else {
                        out.extend_from_slice(resp);
                    }
                    consumed += n + body_len;
                    if close {
                        break;
                    }
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => {
                    sock.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
                    return Ok(());
                }
            }
        }
        if !out.is_empty() {
            sock.write_all(&out).await?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        buf.drain(..consumed);
        if buf.len() > 1 << 20 {
            return Ok(()); // a client sending nonsense
        }
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(4096);
        }
        let len = buf.len();
        let cap = buf.capacity();
        buf.resize(cap, 0);
        let n = sock.read(&mut buf[len..]).await?;
        buf.truncate(len + n);
        if n == 0 {
            return Ok(());
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: canned_upstream ADDR [THREADS]";
    let addr = args.next().expect(usage);
    let threads: usize = args.next().map_or(1, |t| t.parse().expect(usage));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let canned = Arc::new(Canned::new());
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("canned_upstream listening on {addr}");
        loop {
            let (sock, _) = listener.accept().await?;
            let canned = canned.clone();
            tokio::spawn(async move {
                let _ = serve(sock, canned).await;
            });
        }
    })
}
