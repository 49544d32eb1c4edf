//! `downstream`: how long a client may take, and how many may be connected at once.
//!
//! These bounds are what stop a slow or stuck client from pinning a task or an upstream
//! connection: a request header must be complete within `header_timeout`, each read of the
//! request body and each write of the response must progress within `read_timeout` and
//! `write_timeout`, a kept-alive connection may idle for `idle_timeout`, and at most
//! `max_connections` client connections are served at once (see ARCHITECTURE.md, "Slow and
//! stuck clients"). Every key reloads.

use super::parse_duration;
use serde::Deserialize;
use std::time::Duration;

/// Default time a client has to send a complete request header: generous for any real client
/// on a LAN (nginx's `client_header_timeout` is 60 s for the open internet), short enough that
/// a header dribbled a byte at a time cannot hold a connection for long.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest wait for any single read of a request body: a client that stops sending its
/// declared body is cut after this (the same value as the vendor-side `timeouts.read`).
pub const DEFAULT_CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest time any single write to the client may take: a client that stops reading
/// the response releases the upstream connection after this.
pub const DEFAULT_CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default idle time of a kept-alive client connection between requests (Pingora's own value).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default most client connections served at once: far above what a gateway in front of vendor
/// APIs needs, far below the file-descriptor limits deployments set (65536 and more).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The `downstream` section as written.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileDownstream {
    /// Time from accepting a connection until its first request header is complete; on a
    /// kept-alive connection, from the end of the previous response, `idle_timeout` plus this.
    /// Default `10s`.
    pub header_timeout: Option<String>,
    /// Longest wait for any single read of the request body. Default `30s`.
    pub read_timeout: Option<String>,
    /// Longest time any single write to the client may take. Default `30s`.
    pub write_timeout: Option<String>,
    /// Idle time allowed between requests on a kept-alive connection (whole seconds, rounded
    /// up). Default `60s`.
    pub idle_timeout: Option<String>,
    /// Most client connections served at once; more get 503 `TOO_MANY_CONNECTIONS`. `0`: no
    /// limit. Default 10000.
    pub max_connections: Option<usize>,
}

/// Validated client-side bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Downstream {
    /// Time to a complete request header.
    pub header_timeout: Duration,
    /// Single read of the request body.
    pub read_timeout: Duration,
    /// Single write to the client.
    pub write_timeout: Duration,
    /// Idle time between requests on a kept-alive connection, whole seconds (at least 1).
    pub idle_timeout: Duration,
    /// Most connections served at once; 0 means no limit.
    pub max_connections: usize,
}

impl Default for Downstream {
    fn default() -> Self {
        Downstream {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            read_timeout: DEFAULT_CLIENT_READ_TIMEOUT,
            write_timeout: DEFAULT_CLIENT_WRITE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

// === impl Downstream ===

impl Downstream {
    /// Validates the section; every problem comes back as `(path, message)`.
    pub fn try_new(f: Option<&FileDownstream>) -> Result<Downstream, Vec<(String, String)>> {
        let mut d = Downstream::default();
        let Some(f) = f else { return Ok(d) };
        let mut errs = Vec::new();
        let mut dur = |v: &Option<String>, slot: &mut Duration, key: &str| {
            let Some(s) = v else { return };
            match parse_duration(s) {
                Ok(x) if x.is_zero() => errs.push((
                    format!("downstream.{key}"),
                    "must be greater than zero".to_string(),
                )),
                Ok(x) => *slot = x,
                Err(m) => errs.push((format!("downstream.{key}"), m)),
            }
        };
        dur(&f.header_timeout, &mut d.header_timeout, "header_timeout");
        dur(&f.read_timeout, &mut d.read_timeout, "read_timeout");
        dur(&f.write_timeout, &mut d.write_timeout, "write_timeout");
        dur(&f.idle_timeout, &mut d.idle_timeout, "idle_timeout");
        // Pingora keeps the keep-alive idle time in whole seconds.
        d.idle_timeout = Duration::from_secs(d.idle_timeout.as_secs_f64().ceil().max(1.0) as u64);
        if let Some(n) = f.max_connections {
            d.max_connections = n;
        }
        if errs.is_empty() {
            Ok(d)
        } else {
            Err(errs)
        }
    }

    /// Longest time a connection may take to deliver a complete request header: from accept
    /// for its first request (`header_timeout`), from the end of the previous response on a
    /// kept-alive one (`idle_timeout`: idle time and the next header together).
    pub fn header_deadline(&self, reused: bool) -> Duration {
        if reused {
            self.idle_timeout
        } else {
            self.header_timeout
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(y: &str) -> FileDownstream {
        yaml_serde::from_str(y).expect("yaml")
    }

    #[test]
    fn absent_section_gets_documented_defaults() {
        let d = Downstream::try_new(None).expect("valid");
        assert_eq!(d.header_timeout, DEFAULT_HEADER_TIMEOUT);
        assert_eq!(d.read_timeout, DEFAULT_CLIENT_READ_TIMEOUT);
        assert_eq!(d.write_timeout, DEFAULT_CLIENT_WRITE_TIMEOUT);
        assert_eq!(d.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        assert_eq!(d.max_connections, DEFAULT_MAX_CONNECTIONS);
    }

    #[test]
    fn values_are_parsed_and_idle_rounds_up_to_seconds() {
        let f = file("{header_timeout: 300ms, read_timeout: 1s, write_timeout: 2m, idle_timeout: 1500ms, max_connections: 0}");
        let d = Downstream::try_new(Some(&f)).expect("valid");
        assert_eq!(d.header_timeout, Duration::from_millis(300));
        assert_eq!(d.read_timeout, Duration::from_secs(1));
        assert_eq!(d.write_timeout, Duration::from_secs(120));
        assert_eq!(d.idle_timeout, Duration::from_secs(2));
        assert_eq!(d.max_connections, 0);
        assert_eq!(d.header_deadline(false), Duration::from_millis(300));
        assert_eq!(d.header_deadline(true), Duration::from_secs(2));
    }

    #[test]
    fn every_bad_value_is_reported_with_its_path() {
        let f = file("{header_timeout: 0s, read_timeout: soon, write_timeout: 5 parsecs}");
        let errs = Downstream::try_new(Some(&f)).expect_err("invalid");
        let paths: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "downstream.header_timeout",
                "downstream.read_timeout",
                "downstream.write_timeout"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(yaml_serde::from_str::<FileDownstream>("{read_timout: 1s}").is_err());
    }
}
