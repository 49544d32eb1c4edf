//! Helpers for the hostile-traffic corpus (tests/hostile.rs): raw bytes in, every response that
//! came back out, parsed; and config files with per-route keys.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One response parsed from a raw byte stream.
#[derive(Debug, Clone)]
pub struct RawResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::find_header(&self.headers, name)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What came back for a raw request.
#[derive(Debug)]
pub struct Exchange {
    /// Every complete response, in order (interim 1xx included).
    pub responses: Vec<RawResp>,
    /// Everything received.
    pub raw: Vec<u8>,
    /// The connection was closed by errgate (EOF or reset) rather than left open.
    pub closed: bool,
}

impl Exchange {
    /// The only final response; panics when there is not exactly one.
    pub fn one(&self) -> &RawResp {
        let finals: Vec<&RawResp> = self.responses.iter().filter(|r| r.status >= 200).collect();
        assert_eq!(
            finals.len(),
            1,
            "want exactly one final response, got {}: {}",
            finals.len(),
            String::from_utf8_lossy(&self.raw)
        );
        finals[0]
    }
}

/// Writes `bytes` to errgate on a fresh connection and reads until errgate closes it or
/// `quiet` passes without data.
pub fn exchange(port: u16, bytes: &[u8], quiet: Duration) -> Exchange {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(quiet)).expect("timeout");
    let _ = s.write_all(bytes);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let t0 = Instant::now();
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                break false
            }
            Err(_) => break true,
        }
        if t0.elapsed() > Duration::from_secs(30) {
            break false;
        }
    };
    Exchange {
        responses: parse_responses(&raw),
        raw,
        closed,
    }
}

/// Parses consecutive HTTP/1.1 responses (Content-Length, chunked, or to the end).
pub fn parse_responses(mut b: &[u8]) -> Vec<RawResp> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let mut hbuf = [httparse::EMPTY_HEADER; 64];
        let mut pr = httparse::Response::new(&mut hbuf);
        let Ok(httparse::Status::Complete(n)) = pr.parse(b) else {
            break;
        };
        let status = pr.code.unwrap_or(0);
        let headers: Vec<(String, String)> = pr
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        b = &b[n..];
        let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let body = if status < 200 || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(cl) = get("content-length").and_then(|v| v.trim().parse::<usize>().ok())
        {
            let take = cl.min(b.len());
            let body = b[..take].to_vec();
            b = &b[take..];
            body
        } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
                    b = &[];
                    break;
                };
                let size = std::str::from_utf8(&b[..nl]).unwrap_or("0");
                let n = usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16)
                    .unwrap_or(0);
                b = &b[nl + 2..];
                if n == 0 {
                    b = b.get(2..).unwrap_or(&[]);
                    break;
                }
                body.extend_from_slice(&b[..n.min(b.len())]);
                b = b.get(n + 2..).unwrap_or(&[]);
            }
            body
        } else {
            let body = b.to_vec();
            b = &[];
            body
        };
        out.push(RawResp {
            status,
            headers,
            body,
        });
    }
    out
}
