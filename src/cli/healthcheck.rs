//! `errgate healthcheck [--url URL] [--timeout DURATION]`: one HTTP/1.1 GET to an admin URL,
//! exit 0 when it answers 200 and 1 otherwise. The container image has no curl; this is its
//! `HEALTHCHECK` and can serve as a Kubernetes exec probe.
//!
//! Deliberately minimal: plain `http://host:port/path` only (the admin listener has no TLS), a
//! blocking socket with the timeout applied to connect, write and read, and only the status
//! line is read.

use super::EXIT_USAGE;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Default URL: the admin listener's readiness endpoint on loopback.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9090/readyz";

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// URL to GET (`http://host:port/path`).
    #[arg(long, default_value = DEFAULT_URL)]
    url: String,
    /// Time allowed for each of connect, send and receive (`250ms`, `2s`).
    #[arg(long, default_value = "2s", value_parser = parse_timeout)]
    timeout: Duration,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s).map_err(|e| e.to_string())
}

/// A parsed `http://` URL.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// `host:port` as written (default port 80), for `Host` and connecting.
    pub authority: String,
    /// `host` without port, brackets kept for IPv6.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

/// Parses `http://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: no host, or userinfo (not supported)"));
    }
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(format!("{url}: the path has spaces or control characters"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url}: unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("{url}: bad port {p:?}"))?,
            None if after.is_empty() => 80,
            None => return Err(format!("{url}: bad authority {authority:?}")),
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("{url}: bad port {p:?}"))?,
            ),
            None => (authority.to_string(), 80),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("{url}: no host"));
    }
    Ok(Target {
        authority: authority.to_string(),
        host,
        port,
        path,
    })
}

/// The status code from the first line of an HTTP/1.x response.
pub fn parse_status(head: &[u8]) -> Option<u16> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?.trim_end();
    let mut words = line.split(' ');
    let version = words.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = words.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

fn addrs(t: &Target) -> std::io::Result<Vec<SocketAddr>> {
    let host = t.host.trim_start_matches('[').trim_end_matches(']');
    Ok((host, t.port).to_socket_addrs()?.collect())
}

/// Sends the GET and returns the status code.
pub fn probe(t: &Target, timeout: Duration) -> Result<u16, String> {
    let addrs = addrs(t).map_err(|e| format!("resolve {}: {e}", t.host))?;
    let mut last = format!("resolve {}: no addresses", t.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return exchange(s, t, timeout),
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    Err(last)
}

fn exchange(mut s: TcpStream, t: &Target, timeout: Duration) -> Result<u16, String> {
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: errgate-healthcheck\r\nConnection: close\r\n\r\n",
        t.path, t.authority
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    // The status line fits easily; read until it is complete.
    let mut buf = [0u8; 512];
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    parse_status(&buf[..n]).ok_or_else(|| {
        format!(
            "not an HTTP/1 response: {:?}",
            String::from_utf8_lossy(&buf[..n.min(64)])
        )
    })
}

/// Exit 0 when the URL answers 200; 1 (with the reason on stderr) otherwise; 64 for a bad URL.
pub fn run(args: Args) -> ExitCode {
    let t = match parse_url(&args.url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("errgate healthcheck: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match probe(&t, args.timeout) {
        Ok(200) => {
            println!("{}: 200", args.url);
            ExitCode::SUCCESS
        }
        Ok(code) => {
            eprintln!("errgate healthcheck: {}: status {code}", args.url);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("errgate healthcheck: {}: {e}", args.url);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = parse_url("http://127.0.0.1:9090/readyz").expect("ok");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 9090, "/readyz")
        );
        let t = parse_url("http://localhost").expect("ok");
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = parse_url("http://[::1]:9/x?y=1").expect("ok");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("[::1]", 9, "/x?y=1")
        );
        for bad in [
            "https://x/",
            "http://",
            "http://h:99999/",
            "http://h:x/",
            "http://u@h/",
            "http://[::1/",
            "http://h/a b",
            "ftp://h",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1 2000 OK\r\n"), None);
    }
}
