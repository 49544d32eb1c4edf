//! The access log: one line per request, JSON (default) or logfmt text, written by a dedicated
//! thread so a worker never waits on a slow disk or a blocked stdout pipe.
//!
//! A worker formats its [`Record`] into a fresh buffer (hand-written, `serde_json` only for
//! string escaping, `itoa` for integers) and hands it over a bounded channel with `try_send`. When
//! the channel is full the line is dropped and `errgate_access_log_dropped_total` counts it: the
//! request path never blocks on logging. The writer thread drains whatever is queued into one
//! buffered write and flushes when the queue is empty, so a quiet gateway's lines are visible at
//! once and a busy one pays one `write` per batch.
//!
//! The query string is left out by default (vendor APIs carry keys and personal data in it);
//! `include_query: true` keeps it.

use pingora_prometheus::prometheus::IntCounter;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

/// Lines queued for the writer before new ones are dropped: about a second of a busy gateway,
/// a few hundred KiB at most.
pub const DEFAULT_ACCESS_LOG_BUFFER: usize = 8192;
/// Size of the writer's output buffer.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Typical line length, the initial capacity of a line buffer.
const LINE_CAPACITY: usize = 448;

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// Standard output (the default: containers collect it).
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
    /// No access log.
    Off,
    /// Appended to this file (created if missing).
    File(PathBuf),
}

impl Target {
    /// `stdout`, `stderr`, `off`, or a file path.
    pub fn parse(s: &str) -> Result<Target, String> {
        match s.trim() {
            "" => Err("is empty: use stdout, stderr, off or a file path".into()),
            "stdout" | "-" => Ok(Target::Stdout),
            "stderr" => Ok(Target::Stderr),
            "off" => Ok(Target::Off),
            p => Ok(Target::File(PathBuf::from(p))),
        }
    }
}

/// Line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line (the default).
    #[default]
    Json,
    /// logfmt: `key=value` pairs, values quoted when needed.
    Text,
}

impl Format {
    /// `json` or `text`.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s.trim() {
            "json" => Ok(Format::Json),
            "text" => Ok(Format::Text),
            other => Err(format!("`{other}` is not a format: use json or text")),
        }
    }
}

/// Validated access log settings (`access_log:` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSettings {
    /// Where lines go. Default stdout.
    pub target: Target,
    /// Line format. Default JSON.
    pub format: Format,
    /// Whether `path` keeps the query string. Default false.
    pub include_query: bool,
    /// Lines queued before dropping. Default [`DEFAULT_ACCESS_LOG_BUFFER`].
    pub buffer: usize,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        AccessLogSettings {
            target: Target::Stdout,
            format: Format::Json,
            include_query: false,
            buffer: DEFAULT_ACCESS_LOG_BUFFER,
        }
    }
}

/// One request, as logged. Borrowed from the request's state at the end of the request.
#[derive(Debug, Clone, Default)]
pub struct Record<'a> {
    /// When the request ended.
    pub time: Option<SystemTime>,
    /// The request id (the client's or generated).
    pub request_id: &'a str,
    /// Trace id of a valid `traceparent`.
    pub trace_id: Option<&'a str>,
    /// Route name, `None` when no route matched.
    pub route: Option<&'a str>,
    /// Request method.
    pub method: &'a str,
    /// Request path, with its query (cut unless `include_query`).
    pub path: &'a str,
    /// Status sent to the client (0: none sent).
    pub status: u16,
    /// `passthrough`, `normalized` or `gateway`.
    pub outcome: &'a str,
    /// Canonical code of an answered error.
    pub code: Option<&'a str>,
    /// Reason of an answered error.
    pub reason: Option<&'a str>,
    /// Domain of an answered error (vendor id or `errgate`).
    pub domain: Option<&'a str>,
    /// The vendor's HTTP status of the last attempt.
    pub upstream_status: Option<u16>,
    /// The vendor's own error code, as the vendor sent it.
    pub upstream_code: Option<&'a str>,
    /// Attempts made (0: the vendor was not contacted).
    pub attempts: u32,
    /// Answered from a cooldown without contacting the vendor.
    pub cooldown: bool,
    /// The route's mode (`problem`, `annotate`, `observe`), once routed.
    pub mode: Option<&'a str>,
    /// Time from the start of the request to the end of the response.
    pub duration: Duration,
    /// Time spent waiting for the vendor's response headers, all attempts summed.
    pub upstream_duration: Option<Duration>,
    /// Request body bytes read from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// Client address.
    pub client: Option<&'a str>,
}

/// The access log handle shared by every worker.
pub struct AccessLog {
    /// The queue to the writer thread and the counter of dropped lines; `None` when off.
    tx: Option<(SyncSender<Vec<u8>>, IntCounter)>,
    format: Format,
    include_query: bool,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("on", &self.tx.is_some())
            .field("format", &self.format)
            .finish()
    }
}

// === impl AccessLog ===

impl AccessLog {
    /// A log that writes nothing.
    pub fn off() -> AccessLog {
        AccessLog {
            tx: None,
            format: Format::Json,
            include_query: false,
        }
    }

    /// Opens the target and starts the writer thread. `dropped` counts lines lost to
    /// back-pressure or write errors.
    pub fn start(settings: &AccessLogSettings, dropped: IntCounter) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = match &settings.target {
            Target::Off => return Ok(AccessLog::off()),
            Target::Stdout => Box::new(std::io::stdout()),
            Target::Stderr => Box::new(std::io::stderr()),
            Target::File(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(settings.buffer.max(1));
        let d = dropped.clone();
        std::thread::Builder::new()
            .name("errgate-access-log".into())
            .spawn(move || write_loop(rx, out, &d))?;
        Ok(AccessLog {
            tx: Some((tx, dropped)),
            format: settings.format,
            include_query: settings.include_query,
        })
    }

    /// Whether lines are written at all.
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Formats and queues one line; never blocks. A full queue drops the line and counts it.
    pub fn log(&self, r: &Record<'_>) {
        let Some((tx, dropped)) = &self.tx else {
            return;
        };
        let mut line = Vec::with_capacity(LINE_CAPACITY);
        match self.format {
            Format::Json => format_json(r, self.include_query, &mut line),
            Format::Text => format_text(r, self.include_query, &mut line),
        }
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => dropped.inc(),
        }
    }
}

/// The writer thread: drains the queue into one buffered write, flushes when it is empty.
fn write_loop(rx: Receiver<Vec<u8>>, out: Box<dyn Write + Send>, dropped: &IntCounter) {
    let mut w = std::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, out);
    let mut failing = false;
    while let Ok(first) = rx.recv() {
        let mut batch = 1u64;
        let mut ok = w.write_all(&first).is_ok();
        while let Ok(line) = rx.try_recv() {
            batch += 1;
            ok &= w.write_all(&line).is_ok();
        }
        ok &= w.flush().is_ok();
        if !ok {
            dropped.inc_by(batch);
            if !failing {
                log::warn!(
                    "Access log write failed; lines are dropped and counted until it recovers."
                );
            }
        }
        failing = !ok;
    }
    let _ = w.flush();
}

/// Appends `path` without its query unless `include_query`.
fn path_of(path: &str, include_query: bool) -> &str {
    if include_query {
        path
    } else {
        path.split_once('?').map_or(path, |(p, _)| p)
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail; serde_json escapes quotes, backslashes and controls.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Milliseconds with microsecond precision: `12.345`.
fn millis(out: &mut Vec<u8>, d: Duration) {
    let us = d.as_micros();
    int(out, us / 1000);
    out.push(b'.');
    let frac = (us % 1000) as u16;
    out.push(b'0' + (frac / 100) as u8);
    out.push(b'0' + (frac / 10 % 10) as u8);
    out.push(b'0' + (frac % 10) as u8);
}

/// Formats one JSON line (with the trailing newline).
pub fn format_json(r: &Record<'_>, include_query: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"time\":\"");
    rfc3339_millis(out, r.time.unwrap_or(SystemTime::UNIX_EPOCH));
    out.extend_from_slice(b"\",\"request_id\":");
    json_str(out, r.request_id);
    out.extend_from_slice(b",\"trace_id\":");
    json_opt_str(out, r.trace_id);
    out.extend_from_slice(b",\"route\":");
    json_opt_str(out, r.route);
    out.extend_from_slice(b",\"method\":");
    json_str(out, r.method);
    out.extend_from_slice(b",\"path\":");
    json_str(out, path_of(r.path, include_query));
    out.extend_from_slice(b",\"status\":");
    int(out, r.status);
    out.extend_from_slice(b",\"outcome\":");
    json_str(out, r.outcome);
    out.extend_from_slice(b",\"code\":");
    json_opt_str(out, r.code);
    out.extend_from_slice(b",\"reason\":");
    json_opt_str(out, r.reason);
    out.extend_from_slice(b",\"domain\":");
    json_opt_str(out, r.domain);
    out.extend_from_slice(b",\"upstream_status\":");
    match r.upstream_status {
        Some(s) => int(out, s),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"upstream_code\":");
    json_opt_str(out, r.upstream_code);
    out.extend_from_slice(b",\"mode\":");
    json_opt_str(out, r.mode);
    out.extend_from_slice(b",\"attempts\":");
    int(out, r.attempts);
    out.extend_from_slice(if r.cooldown {
        b",\"cooldown\":true"
    } else {
        b",\"cooldown\":false"
    });
    out.extend_from_slice(b",\"duration_ms\":");
    millis(out, r.duration);
    out.extend_from_slice(b",\"upstream_ms\":");
    match r.upstream_duration {
        Some(d) => millis(out, d),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"bytes_in\":");
    int(out, r.bytes_in);
    out.extend_from_slice(b",\"bytes_out\":");
    int(out, r.bytes_out);
    out.extend_from_slice(b",\"client\":");
    json_opt_str(out, r.client);
    out.extend_from_slice(b"}\n");
}

/// A logfmt value: bare when it has no space, quote, `=` or control character, else a JSON
/// string; `-` for none.
fn text_val(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(b'-'),
        Some(s)
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=') =>
        {
            out.extend_from_slice(s.as_bytes())
        }
        Some(s) => json_str(out, s),
    }
}

/// Formats one logfmt line (with the trailing newline).
pub fn format_text(r: &Record<'_>, include_query: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"time=");
    rfc3339_millis(out, r.time.unwrap_or(SystemTime::UNIX_EPOCH));
    let pairs: [(&[u8], Option<&str>); 5] = [
        (b" request_id=", Some(r.request_id)),
        (b" trace_id=", r.trace_id),
        (b" route=", r.route),
        (b" method=", Some(r.method)),
        (b" path=", Some(path_of(r.path, include_query))),
    ];
    for (k, v) in pairs {
        out.extend_from_slice(k);
        text_val(out, v);
    }
    out.extend_from_slice(b" status=");
    int(out, r.status);
    let pairs: [(&[u8], Option<&str>); 6] = [
        (b" outcome=", Some(r.outcome)),
        (b" code=", r.code),
        (b" reason=", r.reason),
        (b" domain=", r.domain),
        (b" upstream_code=", r.upstream_code),
        (b" mode=", r.mode),
    ];
    for (k, v) in pairs {
        out.extend_from_slice(k);
        text_val(out, v);
    }
    out.extend_from_slice(b" upstream_status=");
    match r.upstream_status {
        Some(s) => int(out, s),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" attempts=");
    int(out, r.attempts);
    out.extend_from_slice(if r.cooldown {
        b" cooldown=true"
    } else {
        b" cooldown=false"
    });
    out.extend_from_slice(b" duration_ms=");
    millis(out, r.duration);
    out.extend_from_slice(b" upstream_ms=");
    match r.upstream_duration {
        Some(d) => millis(out, d),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" bytes_in=");
    int(out, r.bytes_in);
    out.extend_from_slice(b" bytes_out=");
    int(out, r.bytes_out);
    out.extend_from_slice(b" client=");
    text_val(out, r.client);
    out.push(b'\n');
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC); times before 1970 print as the epoch.
pub fn rfc3339_millis(out: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    let two = |out: &mut Vec<u8>, n: u64| {
        out.push(b'0' + (n / 10 % 10) as u8);
        out.push(b'0' + (n % 10) as u8);
    };
    int(out, y);
    out.push(b'-');
    two(out, m);
    out.push(b'-');
    two(out, dd);
    out.push(b'T');
    two(out, rem / 3600);
    out.push(b':');
    two(out, rem / 60 % 60);
    out.push(b':');
    two(out, rem % 60);
    out.push(b'.');
    let ms = d.subsec_millis() as u64;
    out.push(b'0' + (ms / 100) as u8);
    two(out, ms % 100);
    out.push(b'Z');
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe as i64 + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests;
