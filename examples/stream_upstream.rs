//! An upstream that streams a large JSON success body for the streaming-memory benchmark
//! (`benches/load/stream_rss.sh`): `{"errCode":0,"errMsg":"","data":"aaaa…"}` with `SIZE` bytes,
//! chunked, written from one reused 64 KiB buffer. Valid for both a status-signalling and an
//! in-band vendor route (errCode 0 = success).
//!
//! `cargo run --release --example stream_upstream -- ADDR SIZE_BYTES`

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

const CHUNK: usize = 64 * 1024;

fn serve(conn: TcpStream, size: u64) -> std::io::Result<()> {
    let mut r = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    loop {
        // Read one request head (no body expected).
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
        }
        let head = b"{\"errCode\":0,\"errMsg\":\"\",\"data\":\"";
        let tail = b"\"}";
        w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        w.write_all(format!("{:x}\r\n", head.len()).as_bytes())?;
        w.write_all(head)?;
        w.write_all(b"\r\n")?;
        let filler = vec![b'a'; CHUNK];
        let mut left = size.saturating_sub((head.len() + tail.len()) as u64);
        let size_line = format!("{CHUNK:x}\r\n");
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            if n == CHUNK {
                w.write_all(size_line.as_bytes())?;
            } else {
                w.write_all(format!("{n:x}\r\n").as_bytes())?;
            }
            w.write_all(&filler[..n])?;
            w.write_all(b"\r\n")?;
            left -= n as u64;
        }
        w.write_all(format!("{:x}\r\n", tail.len()).as_bytes())?;
        w.write_all(tail)?;
        w.write_all(b"\r\n0\r\n\r\n")?;
        w.flush()?;
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18090".into());
    let size: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1 << 30);
    let l = TcpListener::bind(&addr)?;
    eprintln!("stream_upstream on {addr}, {size} bytes per response");
    for conn in l.incoming() {
        let conn = conn?;
        std::thread::spawn(move || serve(conn, size));
    }
    Ok(())
}
