//! The access log: one line per request, JSON (default) or logfmt text, written by a dedicated
//! thread so a worker never waits on a slow disk or a blocked stdout pipe.
//!
//! A worker formats its [`Record`] into a reused thread-local buffer (hand-written: strings are
//! copied as they are unless they need JSON escaping, `itoa` for integers, the date part of the
//! time formatted once a second) and appends the line to a shared batch under a mutex held for
//! one copy. When `buffer_lines` lines are waiting the line is dropped and
//! `errgate_access_log_dropped_total` counts it: the request path never blocks on logging. The
//! writer thread is woken only by the first line after a quiet spell; while lines keep coming
//! it writes the gathered batch every few milliseconds with one call, on its own timer: per
//! request the log costs a format and a copy, not a channel message, a thread wake-up and a
//! `write` (measured in benches/load/README.md).
//! SIGHUP reopens a file target, for `logrotate`.
//!
//! The query string is left out by default (vendor APIs carry keys and personal data in it);
//! `include_query: true` keeps it.

use crate::json_out::{json_int as int, json_str};
use pingora_prometheus::prometheus::IntCounter;
use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// Lines queued for the writer before new ones are dropped: about a second of a busy gateway,
/// a few hundred KiB at most.
pub const DEFAULT_ACCESS_LOG_BUFFER: usize = 8192;
/// Initial size of a batch buffer.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// A batch buffer grown past this by a burst is shrunk back after it is written.
const MAX_IDLE_BUFFER_BYTES: usize = 1024 * 1024;
/// How long lines gather before the writer writes them: after the first line wakes it, and
/// between the writes of a busy log.
const LINGER: Duration = Duration::from_millis(5);
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
    pub client: Option<std::net::SocketAddr>,
}

/// Where the writer thread writes: the target, reopened on request (a file after `logrotate`
/// moved it), or any writer (tests).
enum Output {
    Stdout,
    Stderr,
    File(PathBuf, std::fs::File),
    Other(Box<dyn Write + Send>),
}

impl Output {
    fn open(target: &Target) -> std::io::Result<Option<Output>> {
        Ok(Some(match target {
            Target::Off => return Ok(None),
            Target::Stdout => Output::Stdout,
            Target::Stderr => Output::Stderr,
            Target::File(p) => Output::File(p.clone(), open_append(p)?),
        }))
    }

    fn write_batch(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(b)?;
                o.flush()
            }
            Output::Stderr => std::io::stderr().lock().write_all(b),
            Output::File(_, f) => f.write_all(b),
            Output::Other(w) => {
                w.write_all(b)?;
                w.flush()
            }
        }
    }

    /// Reopens a file target by its path; on failure the old file is kept.
    fn reopen(&mut self) {
        if let Output::File(p, f) = self {
            match open_append(p) {
                Ok(new) => *f = new,
                Err(e) => log::warn!(
                    "path={} error={e} Cannot reopen the access log; still writing to the old file.",
                    p.display()
                ),
            }
        }
    }
}

fn open_append(p: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
}

/// Lines waiting for the writer.
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
    /// The writer sleeps until a first line arrives (only that line wakes it).
    idle: bool,
    /// Every handle is gone: write what is left and stop.
    closed: bool,
    /// Reopen the file before the next write.
    reopen: bool,
}

/// The queue between workers and the writer thread.
struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
    max_lines: usize,
    dropped: IntCounter,
    /// How many times a worker woke the idle writer.
    wakeups: AtomicU64,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves plain bytes behind: keep using them.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one line, or drops and counts it when the queue is full. Never waits on I/O.
    fn push(&self, line: &[u8]) {
        let mut p = self.lock();
        if p.lines >= self.max_lines {
            drop(p);
            self.dropped.inc();
            return;
        }
        p.bytes.extend_from_slice(line);
        p.lines += 1;
        let wake = std::mem::take(&mut p.idle);
        drop(p);
        if wake {
            self.wakeups.fetch_add(1, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    fn signal(&self, f: impl FnOnce(&mut Pending)) {
        f(&mut self.lock());
        self.wake.notify_one();
    }
}

/// Closes the queue when the last [`AccessLog`] clone is dropped.
struct Handle(Arc<Queue>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.signal(|p| p.closed = true);
    }
}

thread_local! {
    /// Each worker formats into its own reused buffer, then copies the line into the queue.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(LINE_CAPACITY));
}

/// The access log handle shared by every worker (clones share one writer).
#[derive(Clone)]
pub struct AccessLog {
    /// The queue to the writer thread; `None` when off.
    queue: Option<Arc<Handle>>,
    format: Format,
    include_query: bool,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("on", &self.queue.is_some())
            .field("format", &self.format)
            .finish()
    }
}

// === impl AccessLog ===

impl AccessLog {
    /// A log that writes nothing.
    pub fn off() -> AccessLog {
        AccessLog {
            queue: None,
            format: Format::Json,
            include_query: false,
        }
    }

    /// Opens the target and starts the writer thread. `dropped` counts lines lost to
    /// back-pressure or write errors.
    pub fn start(settings: &AccessLogSettings, dropped: IntCounter) -> std::io::Result<AccessLog> {
        match Output::open(&settings.target)? {
            None => Ok(AccessLog::off()),
            Some(out) => AccessLog::with_output(settings, out, dropped),
        }
    }

    /// The log writing to any writer (for tests of back-pressure and write failures).
    pub fn to_writer(
        settings: &AccessLogSettings,
        w: Box<dyn Write + Send>,
        dropped: IntCounter,
    ) -> std::io::Result<AccessLog> {
        AccessLog::with_output(settings, Output::Other(w), dropped)
    }

    fn with_output(
        settings: &AccessLogSettings,
        out: Output,
        dropped: IntCounter,
    ) -> std::io::Result<AccessLog> {
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(WRITE_BUFFER_BYTES),
                lines: 0,
                idle: false,
                closed: false,
                reopen: false,
            }),
            wake: Condvar::new(),
            max_lines: settings.buffer.max(1),
            dropped,
            wakeups: AtomicU64::new(0),
        });
        let q = queue.clone();
        std::thread::Builder::new()
            .name("errgate-access-log".into())
            .spawn(move || write_loop(&q, out))?;
        Ok(AccessLog {
            queue: Some(Arc::new(Handle(queue))),
            format: settings.format,
            include_query: settings.include_query,
        })
    }

    /// How many times a line had to wake the idle writer thread (0 when off).
    #[cfg(test)]
    pub(crate) fn writer_wakeups(&self) -> u64 {
        self.queue
            .as_ref()
            .map_or(0, |h| h.0.wakeups.load(Ordering::Relaxed))
    }

    /// Whether lines are written at all.
    pub fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// Reopens a file target by its path before the next write (after `logrotate` moved the
    /// file away; sent on SIGHUP). Nothing for stdout and stderr.
    pub fn reopen(&self) {
        if let Some(h) = &self.queue {
            h.0.signal(|p| p.reopen = true);
        }
    }

    /// Formats and queues one line; never blocks on I/O. A full queue drops the line and
    /// counts it.
    pub fn log(&self, r: &Record<'_>) {
        let Some(h) = &self.queue else {
            return;
        };
        let format = |line: &mut Vec<u8>| match self.format {
            Format::Json => format_json(r, self.include_query, line),
            Format::Text => format_text(r, self.include_query, line),
        };
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                format(&mut line);
                h.0.push(&line);
            }
            Err(_) => {
                let mut line = Vec::with_capacity(LINE_CAPACITY);
                format(&mut line);
                h.0.push(&line);
            }
        });
    }
}

/// The writer thread. Idle, it sleeps until a line arrives (only the first line of a batch wakes
/// it); then it writes a batch every [`LINGER`]: it sleeps, takes the whole batch in one swap and
/// writes it with one call, and goes back to waiting only after a sleep that gathered nothing.
/// A busy gateway thus pays one timer wake-up and one `write` per [`LINGER`], not a wake-up per
/// batch from the workers nor a `write` per line, and a quiet one shows a line within a few
/// milliseconds.
fn write_loop(q: &Queue, mut out: Output) {
    let mut batch: Vec<u8> = Vec::with_capacity(WRITE_BUFFER_BYTES);
    let mut failing = false;
    let mut busy = false;
    loop {
        let linger = {
            let mut p = q.lock();
            if !busy {
                while p.lines == 0 && !p.closed && !p.reopen {
                    p.idle = true;
                    p = q.wake.wait(p).unwrap_or_else(PoisonError::into_inner);
                }
                p.idle = false;
            }
            // Closing writes what is left at once.
            !p.closed && (busy || p.lines > 0)
        };
        if linger {
            std::thread::sleep(LINGER);
        }
        let (lines, closed, reopen) = {
            let mut p = q.lock();
            std::mem::swap(&mut p.bytes, &mut batch);
            (
                std::mem::take(&mut p.lines),
                p.closed,
                std::mem::take(&mut p.reopen),
            )
        };
        busy = lines > 0;
        if reopen {
            out.reopen();
        }
        if lines > 0 {
            let ok = out.write_batch(&batch).is_ok();
            if !ok {
                q.dropped.inc_by(lines as u64);
                if !failing {
                    log::warn!(
                        "Access log write failed; lines are dropped and counted until it recovers."
                    );
                }
            }
            failing = !ok;
        }
        batch.clear();
        if batch.capacity() > MAX_IDLE_BUFFER_BYTES {
            batch.shrink_to(WRITE_BUFFER_BYTES);
        }
        if closed {
            return;
        }
    }
}

/// Appends `path` without its query unless `include_query`.
fn path_of(path: &str, include_query: bool) -> &str {
    if include_query {
        path
    } else {
        path.split_once('?').map_or(path, |(p, _)| p)
    }
}

/// `1.2.3.4:5` or `[::1]:5`, as `SocketAddr`'s `Display`; IPv4 without the formatting machinery.
fn addr(out: &mut Vec<u8>, a: std::net::SocketAddr) {
    match a {
        std::net::SocketAddr::V4(v4) => {
            for (i, o) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                int(out, o);
            }
            out.push(b':');
            int(out, v4.port());
        }
        v6 => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Milliseconds with microsecond precision: `12.345`.
fn millis(out: &mut Vec<u8>, d: Duration) {
    // u64 arithmetic (u128 division is a library call).
    let us = d
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()));
    int(out, us / 1000);
    out.push(b'.');
    let frac = (us % 1000) as u16;
    out.push(b'0' + (frac / 100) as u8);
    out.push(b'0' + (frac / 10 % 10) as u8);
    out.push(b'0' + (frac % 10) as u8);
}

/// A field's key as each format writes it before the value: `,"status":` and ` status=`.
struct Key {
    json: &'static [u8],
    text: &'static [u8],
}

macro_rules! key {
    ($k:literal) => {
        Key {
            json: concat!(",\"", $k, "\":").as_bytes(),
            text: concat!(" ", $k, "=").as_bytes(),
        }
    };
}

/// How one format writes a line's frame, its keys, strings, absent values and addresses;
/// integers, flags and durations are written the same in both. The fields themselves, and
/// their order, are [`write_fields`]'s, once for both formats.
trait Syntax {
    /// The line's start up to and including the time.
    fn open(out: &mut Vec<u8>, time: SystemTime);
    fn key(out: &mut Vec<u8>, k: &Key);
    fn str(out: &mut Vec<u8>, s: &str);
    fn none(out: &mut Vec<u8>);
    fn addr(out: &mut Vec<u8>, a: std::net::SocketAddr);
    /// The line's end, newline included.
    const CLOSE: &'static [u8];
}

/// One JSON object a line: `{"time":"…","request_id":"…",…}`; absent values are `null`.
struct Json;

impl Syntax for Json {
    fn open(out: &mut Vec<u8>, time: SystemTime) {
        out.extend_from_slice(b"{\"time\":\"");
        rfc3339_millis(out, time);
        out.push(b'"');
    }
    fn key(out: &mut Vec<u8>, k: &Key) {
        out.extend_from_slice(k.json);
    }
    fn str(out: &mut Vec<u8>, s: &str) {
        json_str(out, s);
    }
    fn none(out: &mut Vec<u8>) {
        out.extend_from_slice(b"null");
    }
    fn addr(out: &mut Vec<u8>, a: std::net::SocketAddr) {
        out.push(b'"');
        addr(out, a);
        out.push(b'"');
    }
    const CLOSE: &'static [u8] = b"}\n";
}

/// logfmt: `time=… request_id=… …`; a value is bare when it has no space, quote, `=` or
/// control character, else a JSON string; absent values are `-`.
struct Logfmt;

impl Syntax for Logfmt {
    fn open(out: &mut Vec<u8>, time: SystemTime) {
        out.extend_from_slice(b"time=");
        rfc3339_millis(out, time);
    }
    fn key(out: &mut Vec<u8>, k: &Key) {
        out.extend_from_slice(k.text);
    }
    fn str(out: &mut Vec<u8>, s: &str) {
        if !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=')
        {
            out.extend_from_slice(s.as_bytes())
        } else {
            json_str(out, s)
        }
    }
    fn none(out: &mut Vec<u8>) {
        out.push(b'-');
    }
    fn addr(out: &mut Vec<u8>, a: std::net::SocketAddr) {
        addr(out, a);
    }
    const CLOSE: &'static [u8] = b"\n";
}

/// Writes `k` and a value, or `k` and the format's absent value.
fn opt<S: Syntax, T>(
    out: &mut Vec<u8>,
    k: &Key,
    v: Option<T>,
    write: impl FnOnce(&mut Vec<u8>, T),
) {
    S::key(out, k);
    match v {
        Some(v) => write(out, v),
        None => S::none(out),
    }
}

/// The line's fields in their documented order (README, "Access log"), in syntax `S`.
fn write_fields<S: Syntax>(r: &Record<'_>, include_query: bool, out: &mut Vec<u8>) {
    S::open(out, r.time.unwrap_or(SystemTime::UNIX_EPOCH));
    S::key(out, &key!("request_id"));
    S::str(out, r.request_id);
    opt::<S, _>(out, &key!("trace_id"), r.trace_id, S::str);
    opt::<S, _>(out, &key!("route"), r.route, S::str);
    S::key(out, &key!("method"));
    S::str(out, r.method);
    S::key(out, &key!("path"));
    S::str(out, path_of(r.path, include_query));
    S::key(out, &key!("status"));
    int(out, r.status);
    S::key(out, &key!("outcome"));
    S::str(out, r.outcome);
    opt::<S, _>(out, &key!("code"), r.code, S::str);
    opt::<S, _>(out, &key!("reason"), r.reason, S::str);
    opt::<S, _>(out, &key!("domain"), r.domain, S::str);
    opt::<S, _>(out, &key!("upstream_status"), r.upstream_status, int);
    opt::<S, _>(out, &key!("upstream_code"), r.upstream_code, S::str);
    opt::<S, _>(out, &key!("mode"), r.mode, S::str);
    S::key(out, &key!("attempts"));
    int(out, r.attempts);
    S::key(out, &key!("cooldown"));
    out.extend_from_slice(if r.cooldown { b"true" } else { b"false" });
    S::key(out, &key!("duration_ms"));
    millis(out, r.duration);
    opt::<S, _>(out, &key!("upstream_ms"), r.upstream_duration, millis);
    S::key(out, &key!("bytes_in"));
    int(out, r.bytes_in);
    S::key(out, &key!("bytes_out"));
    int(out, r.bytes_out);
    opt::<S, _>(out, &key!("client"), r.client, S::addr);
    out.extend_from_slice(S::CLOSE);
}

/// Formats one JSON line (with the trailing newline).
pub fn format_json(r: &Record<'_>, include_query: bool, out: &mut Vec<u8>) {
    write_fields::<Json>(r, include_query, out);
}

/// Formats one logfmt line (with the trailing newline).
pub fn format_text(r: &Record<'_>, include_query: bool, out: &mut Vec<u8>) {
    write_fields::<Logfmt>(r, include_query, out);
}
thread_local! {
    /// The last second formatted by this thread and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: std::cell::Cell<(u64, [u8; 32], usize)> =
        const { std::cell::Cell::new((u64::MAX, [0; 32], 0)) };
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC); times before 1970 print as the epoch. The part up to the
/// seconds is formatted once a second per thread.
pub fn rfc3339_millis(out: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (cached, text, len) = SECOND.get();
    if cached != secs {
        let mut s = Vec::with_capacity(32);
        date_time(&mut s, secs);
        let mut text = [0u8; 32];
        let len = s.len().min(32);
        text[..len].copy_from_slice(&s[..len]);
        SECOND.set((secs, text, len));
        out.extend_from_slice(&text[..len]);
    } else {
        out.extend_from_slice(&text[..len]);
    }
    out.push(b'.');
    let ms = d.subsec_millis() as u64;
    out.push(b'0' + (ms / 100) as u8);
    out.push(b'0' + (ms / 10 % 10) as u8);
    out.push(b'0' + (ms % 10) as u8);
    out.push(b'Z');
}

/// `YYYY-MM-DDTHH:MM:SS` of whole seconds since the epoch.
fn date_time(out: &mut Vec<u8>, secs: u64) {
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
