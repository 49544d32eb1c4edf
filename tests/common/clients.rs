//! Slow and stuck clients: a raw mock vendor that records when errgate closes its connection,
//! and a kept-alive raw client.
//!
//! `RawVendor` is a plain `TcpListener` on 127.0.0.1:0 (one thread per connection) that plays
//! one of a few scripts and notes, per connection, the request header it read, how many body
//! bytes arrived, how many response bytes it wrote, and the moment errgate's side went away (a
//! read returned EOF or an error, or a write failed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the raw vendor does with each connection.
#[derive(Debug, Clone, Copy)]
pub enum VendorPlay {
    /// Read the request header, then read the body until errgate closes; never answer.
    ReadUntilClose,
    /// Read the request header, answer 200 `application/octet-stream` with this
    /// Content-Length, and write it in 64 KiB writes until a write fails.
    Stream { total: usize },
}

/// One connection as the raw vendor saw it.
#[derive(Debug, Clone)]
pub struct VendorConn {
    pub accepted: Instant,
    /// The request header block, as text.
    pub head: String,
    /// Request body bytes received.
    pub body_bytes: usize,
    /// Response bytes written.
    pub sent: usize,
    /// The last successful write.
    pub last_write: Option<Instant>,
    /// When errgate's side went away (EOF, reset, failed write).
    pub closed: Option<Instant>,
}

/// The raw vendor.
pub struct RawVendor {
    pub addr: SocketAddr,
    pub conns: Arc<Mutex<Vec<VendorConn>>>,
}

impl RawVendor {
    pub fn start(play: VendorPlay) -> RawVendor {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind raw vendor");
        let addr = l.local_addr().expect("addr");
        let conns: Arc<Mutex<Vec<VendorConn>>> = Arc::new(Mutex::new(Vec::new()));
        let c2 = conns.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let idx = {
                    let mut v = c2.lock().expect("conns");
                    v.push(VendorConn {
                        accepted: Instant::now(),
                        head: String::new(),
                        body_bytes: 0,
                        sent: 0,
                        last_write: None,
                        closed: None,
                    });
                    v.len() - 1
                };
                let conns = c2.clone();
                std::thread::spawn(move || play_conn(s, play, &conns, idx));
            }
        });
        RawVendor { addr, conns }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of the connections so far.
    pub fn snapshot(&self) -> Vec<VendorConn> {
        self.conns.lock().expect("conns").clone()
    }

    /// Waits up to `limit` for connection `i` to be closed by errgate; its record then.
    pub fn wait_closed(&self, i: usize, limit: Duration) -> Option<VendorConn> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(c) = self.snapshot().get(i) {
                if c.closed.is_some() {
                    return Some(c.clone());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

fn update(conns: &Mutex<Vec<VendorConn>>, i: usize, f: impl FnOnce(&mut VendorConn)) {
    if let Ok(mut v) = conns.lock() {
        if let Some(c) = v.get_mut(i) {
            f(c);
        }
    }
}

fn play_conn(s: TcpStream, play: VendorPlay, conns: &Mutex<Vec<VendorConn>>, i: usize) {
    let Ok(mut w) = s.try_clone() else { return };
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => {
                update(conns, i, |c| c.closed = Some(Instant::now()));
                return;
            }
            Ok(_) => {}
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let declared = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    update(conns, i, |c| c.head = head.clone());
    match play {
        VendorPlay::ReadUntilClose => {
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => update(conns, i, |c| c.body_bytes += n),
                }
            }
            update(conns, i, |c| c.closed = Some(Instant::now()));
        }
        VendorPlay::Stream { total } => {
            let mut body = vec![0u8; declared];
            if r.read_exact(&mut body).is_err() {
                update(conns, i, |c| c.closed = Some(Instant::now()));
                return;
            }
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
            );
            if w.write_all(h.as_bytes()).is_err() {
                update(conns, i, |c| c.closed = Some(Instant::now()));
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                if w.write_all(&chunk[..n]).is_err() {
                    update(conns, i, |c| c.closed = Some(Instant::now()));
                    return;
                }
                sent += n;
                update(conns, i, |c| {
                    c.sent = sent;
                    c.last_write = Some(Instant::now());
                });
            }
            // Everything was written: wait for errgate to close (or to reuse the connection).
            let mut buf = [0u8; 1024];
            let _ = r.read(&mut buf);
            update(conns, i, |c| c.closed = Some(Instant::now()));
        }
    }
}

/// A client connection kept alive across requests.
pub struct KeepAlive {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

/// A response read off a kept-alive connection.
#[derive(Debug)]
pub struct KaResp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl KaResp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl KeepAlive {
    pub fn connect(port: u16) -> KeepAlive {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        KeepAlive { stream, reader }
    }

    /// Sends a GET and reads one response (Content-Length or chunked framing).
    pub fn get(&mut self, path: &str) -> std::io::Result<KaResp> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: errgate\r\n\r\n");
        self.stream.write_all(req.as_bytes())?;
        self.read_response()
    }

    /// Reads one response.
    pub fn read_response(&mut self) -> std::io::Result<KaResp> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("connection closed; header so far: {head:?}"),
                ));
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut r = KaResp {
            status,
            head,
            body: Vec::new(),
        };
        if let Some(n) = r.header("content-length").and_then(|v| v.parse().ok()) {
            r.body.resize(n, 0);
            self.reader.read_exact(&mut r.body)?;
        } else if r
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                r.body.extend_from_slice(&chunk[..n]);
            }
        }
        Ok(r)
    }

    /// True when the server closed the connection (EOF or reset) within `limit`.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(limit));
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}
