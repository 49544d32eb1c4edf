//! `errgate catalog suggest [--from-url URL | FILE]`: catalog entries to review and paste, from
//! the admin listener's `GET /uncataloged` list or from a file of captured vendor responses.
//!
//! Each suggestion carries the canonical code a status-only mapping gives (the same mapping the
//! proxy uses for an uncataloged error), the vendor's message as `original`, and a reason made
//! from the message; the output is valid catalog YAML that `errgate check` accepts once pasted
//! under `entries:` of the vendor's file. Review every field: the mapping is a starting point.

use super::{ConfigArg, EXIT_CONFIG, EXIT_USAGE};
use crate::catalog::{CatalogSet, VendorCatalog};
use crate::normalize::{
    decide_captured, ResponseFacts, Verdict, REASON_UNCATALOGED, REASON_UPSTREAM_HTTP,
};
use crate::problem::Code;
use crate::uncataloged::{Report, Seen};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Largest input read (file or URL), in bytes: a `/uncataloged` list is bounded well below it.
const MAX_INPUT_BYTES: usize = 32 * 1024 * 1024;
/// Connect and read timeout of `--from-url`.
const URL_TIMEOUT: Duration = Duration::from_secs(10);
/// Words of the message used for a suggested reason.
const REASON_WORDS: usize = 6;

/// `errgate catalog ...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: CatalogCommand,
}

/// Catalog subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Print catalog entries to review and paste, from `GET /uncataloged` output or captured
    /// responses.
    Suggest(SuggestArgs),
}

/// `errgate catalog suggest`.
#[derive(Debug, clap::Args)]
pub struct SuggestArgs {
    /// Read the list from the admin listener, e.g. `http://127.0.0.1:9090/uncataloged`.
    #[arg(long, conflicts_with = "file")]
    pub from_url: Option<String>,
    /// A saved `/uncataloged` JSON document, or captured responses: a JSON array or JSON Lines of
    /// `{"vendor", "status", "body", "method"?, "path"?, "headers"?}` (`body` a JSON value or
    /// string). Stdin when neither this nor `--from-url` is given.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    cfg: ConfigArg,
}

/// Runs `errgate catalog`.
pub fn run(args: Args) -> ExitCode {
    match args.command {
        CatalogCommand::Suggest(a) => suggest(a),
    }
}

fn suggest(args: SuggestArgs) -> ExitCode {
    let input = match (&args.from_url, &args.file) {
        (Some(url), _) => http_get(url),
        (None, Some(f)) => read_bounded(std::fs::File::open(f).map_err(|e| e.to_string()), f),
        (None, None) => {
            let mut buf = Vec::new();
            std::io::stdin()
                .take(MAX_INPUT_BYTES as u64 + 1)
                .read_to_end(&mut buf)
                .map(|_| buf)
                .map_err(|e| format!("cannot read stdin: {e}"))
        }
    };
    let input = match input {
        Ok(b) if b.len() > MAX_INPUT_BYTES => {
            eprintln!("input larger than {MAX_INPUT_BYTES} bytes");
            return ExitCode::from(EXIT_USAGE);
        }
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // The catalogs are needed to read captured bodies, and help with unique reasons.
    let loaded = crate::state::check_all(&args.cfg.config, SystemTime::now());
    let seen = match (parse_report(&input), &loaded) {
        (Some(r), _) => r.entries,
        (None, Ok((config, catalogs))) => match captured(&input, catalogs, config.hold_max_bytes) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        (None, Err(errs)) => {
            for e in errs {
                eprintln!("{e}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let catalogs = loaded.as_ref().ok().map(|(_, c)| c);
    let out = suggest_yaml(&seen, catalogs);
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(out.as_bytes()).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn read_bounded(
    f: Result<std::fs::File, String>,
    path: &std::path::Path,
) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    f.and_then(|f| {
        f.take(MAX_INPUT_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| e.to_string())
    })
    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(buf)
}

/// The input as a `/uncataloged` document, if it is one.
pub fn parse_report(input: &[u8]) -> Option<Report> {
    serde_json::from_slice::<Report>(input).ok()
}

/// One captured response.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Captured {
    vendor: String,
    status: u16,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    route: Option<String>,
}

/// Runs captured responses through the proxy's own decision code and keeps the uncataloged ones.
fn captured(input: &[u8], catalogs: &CatalogSet, hold_max: usize) -> Result<Vec<Seen>, String> {
    let text = std::str::from_utf8(input).map_err(|_| "input is not UTF-8".to_string())?;
    let items: Vec<Captured> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| format!("captured responses: {e}"))?
    } else {
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            v.push(
                serde_json::from_str(line)
                    .map_err(|e| format!("line {}: not a captured response: {e}", i + 1))?,
            );
        }
        v
    };
    let mut out: Vec<Seen> = Vec::new();
    for (i, c) in items.iter().enumerate() {
        let vendor = catalogs
            .vendor(&c.vendor)
            .ok_or_else(|| format!("item {}: unknown vendor `{}`", i + 1, c.vendor))?;
        let Some((code, message)) = uncataloged_of(vendor, c, hold_max) else {
            continue;
        };
        let route = c.route.clone().unwrap_or_else(|| c.vendor.clone());
        match out.iter_mut().find(|s| {
            s.route == route
                && s.code == code
                && s.status == c.status
                && (code.is_some() || s.message == message)
        }) {
            Some(s) => s.count += 1,
            None => out.push(Seen {
                route,
                vendor: c.vendor.clone(),
                code,
                status: c.status,
                count: 1,
                first_seen_unix: 0,
                last_seen_unix: 0,
                message,
            }),
        }
    }
    Ok(out)
}

/// `(code, message)` when the response is an error no entry matches.
fn uncataloged_of(
    vendor: &VendorCatalog,
    c: &Captured,
    hold_max: usize,
) -> Option<(Option<String>, Option<String>)> {
    let mut headers = http::HeaderMap::new();
    for (k, v) in &c.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    if !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    let body = match &c.body {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => s.clone().into_bytes(),
        Some(v) => serde_json::to_vec(v).unwrap_or_default(),
    };
    let resp = ResponseFacts {
        status: c.status,
        headers: &headers,
        method: c.method.as_deref().unwrap_or("GET"),
        path: c.path.as_deref().unwrap_or("/"),
    };
    let verdict = decide_captured(
        vendor,
        &resp,
        body.chunks(16 * 1024),
        hold_max,
        SystemTime::now(),
        Duration::MAX,
    )
    .into_verdict();
    match verdict {
        Verdict::Error(p, _)
            if p.reason == REASON_UNCATALOGED || p.reason == REASON_UPSTREAM_HTTP =>
        {
            let up = p.upstream.as_ref();
            Some((
                up.and_then(|u| u.code.clone()),
                up.and_then(|u| u.message.clone()),
            ))
        }
        _ => None,
    }
}

/// Catalog YAML for the sightings, grouped by vendor, ready to review and paste under `entries:`.
///
/// `catalogs` (when the config loads) keeps suggested reasons unique against existing entries and
/// adds `match.status` where the vendor's code already exists for other statuses.
pub fn suggest_yaml(seen: &[Seen], catalogs: Option<&CatalogSet>) -> String {
    let mut by_vendor: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
    for s in seen {
        by_vendor.entry(s.vendor.as_str()).or_default().push(s);
    }
    if by_vendor.is_empty() {
        return "# No uncataloged vendor errors: nothing to suggest.\n".to_string();
    }
    let mut out = String::new();
    for (vendor_id, list) in by_vendor {
        let vendor = catalogs.and_then(|c| c.vendor(vendor_id));
        let mut used: HashSet<String> = vendor
            .map(|v| v.entries.iter().map(|e| e.reason.clone()).collect())
            .unwrap_or_default();
        let mut emitted: HashSet<(Option<String>, u16, Option<String>)> = HashSet::new();
        out.push_str(&format!(
            "# --- {vendor_id}: paste under `entries:` in catalogs/{vendor_id}.yaml, then review\n\
             # --- canonical, reason, retryable and detail and run `errgate check`.\n"
        ));
        for s in list {
            // The same code from two routes of one vendor is one entry.
            let key = (
                s.code.clone(),
                s.status,
                s.code.is_none().then(|| s.message.clone()).flatten(),
            );
            if !emitted.insert(key) {
                continue;
            }
            out.push_str(&entry_yaml(s, vendor, &mut used));
        }
    }
    out
}

fn entry_yaml(
    s: &Seen,
    vendor: Option<&std::sync::Arc<VendorCatalog>>,
    used: &mut HashSet<String>,
) -> String {
    let in_band_ok = (200..300).contains(&s.status);
    let canonical = if s.status >= 400 {
        Code::from_http_status(s.status)
    } else {
        Code::Unknown
    };
    let retryable = canonical.default_retryable() || matches!(s.status, 429 | 503);
    let base = reason_from(s);
    let mut reason = base.clone();
    let mut n = 2;
    while used.contains(&reason) {
        reason = format!("{base}_{n}");
        n += 1;
    }
    used.insert(reason.clone());
    let q = |t: &str| serde_json::to_string(t).unwrap_or_else(|_| "\"\"".into());
    let mut e = String::new();
    let when = if s.last_seen_unix > 0 {
        format!(
            ", last {}",
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(s.last_seen_unix))
        )
    } else {
        String::new()
    };
    e.push_str(&format!(
        "  # seen {}x on route {}, HTTP {}{when}\n",
        s.count, s.route, s.status
    ));
    match &s.code {
        Some(c) => e.push_str(&format!("  - code: {}\n", q(c))),
        None => e.push_str(
            "  - vendor_status: {status}\n"
                .replace("{status}", &s.status.to_string())
                .as_str(),
        ),
    }
    if s.code.is_some() {
        e.push_str(&format!("    vendor_status: {}\n", s.status));
    }
    let code_known = match (&s.code, vendor) {
        (Some(c), Some(v)) => v.knows_code(c),
        _ => false,
    };
    let mut conditions = Vec::new();
    if (s.code.is_none() || code_known) && !in_band_ok {
        conditions.push(format!("status: {}", s.status));
    }
    if s.code.is_none() {
        if let Some(m) = &s.message {
            conditions.push(format!("message: {}", q(m)));
        }
    }
    if !conditions.is_empty() {
        e.push_str("    match:\n");
        for c in conditions {
            e.push_str(&format!("      {c}\n"));
        }
    }
    e.push_str(&format!("    canonical: {}\n", canonical.as_str()));
    e.push_str(&format!("    reason: {reason}\n"));
    e.push_str(&format!("    retryable: {retryable}\n"));
    let detail = match &s.message {
        Some(m) => format!("TODO: explain for clients. The vendor said: {m}"),
        None => format!(
            "TODO: explain for clients. The vendor answered HTTP {} without a message.",
            s.status
        ),
    };
    e.push_str(&format!("    detail: {}\n", q(&detail)));
    if let Some(m) = &s.message {
        e.push_str(&format!("    original: {}\n", q(m)));
    }
    e
}

/// An UPPER_SNAKE_CASE reason from the message's first words; from the code or status when the
/// message has no ASCII words (a Chinese message, none at all).
fn reason_from(s: &Seen) -> String {
    let words: Vec<String> = s
        .message
        .as_deref()
        .unwrap_or("")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(REASON_WORDS)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let from_words = words.join("_");
    if from_words
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
    {
        return from_words;
    }
    match &s.code {
        Some(c) => {
            let c: String = c
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() {
                        ch.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("VENDOR_ERROR_{c}")
        }
        None => format!("HTTP_{}_ERROR", s.status),
    }
}

/// A small blocking `GET` over plain HTTP/1.1 (the admin listener is plain HTTP).
fn http_get(url: &str) -> Result<Vec<u8>, String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: only http:// URLs (the admin listener) are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/uncataloged"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("`{url}`: no host"));
    }
    let addr_text = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = addr_text
        .to_socket_addrs()
        .map_err(|e| format!("`{url}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{url}`: the host has no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, URL_TIMEOUT).map_err(|e| format!("`{url}`: {e}"))?;
    let _ = stream.set_read_timeout(Some(URL_TIMEOUT));
    let _ = stream.set_write_timeout(Some(URL_TIMEOUT));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("`{url}`: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_INPUT_BYTES as u64 + 64 * 1024)
        .read_to_end(&mut raw)
        .map_err(|e| format!("`{url}`: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("`{url}`: not an HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("`{url}`: not an HTTP response"))?;
    if status != 200 {
        return Err(format!("`{url}`: HTTP {status}"));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        dechunk(body).ok_or_else(|| format!("`{url}`: broken chunked body"))
    } else {
        Ok(body.to_vec())
    }
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(code: Option<&str>, status: u16, message: Option<&str>) -> Seen {
        Seen {
            route: "pk".into(),
            vendor: "pluralkit".into(),
            code: code.map(Into::into),
            status,
            count: 3,
            first_seen_unix: 1,
            last_seen_unix: 2,
            message: message.map(Into::into),
        }
    }

    #[test]
    fn suggestion_takes_the_status_mapping_and_the_message() {
        let y = suggest_yaml(
            &[seen(Some("20011"), 404, Some("Webhook not found."))],
            None,
        );
        assert!(
            y.contains("  - code: \"20011\"\n    vendor_status: 404\n"),
            "{y}"
        );
        assert!(y.contains("canonical: NOT_FOUND"), "{y}");
        assert!(y.contains("reason: WEBHOOK_NOT_FOUND"), "{y}");
        assert!(y.contains("retryable: false"), "{y}");
        assert!(y.contains("original: \"Webhook not found.\""), "{y}");
    }

    #[test]
    fn codeless_suggestion_matches_status_and_message() {
        let mut s = seen(None, 503, Some("Service busy"));
        s.vendor = "microcms".into();
        let y = suggest_yaml(&[s], None);
        assert!(
            y.contains("match:\n      status: 503\n      message: \"Service busy\""),
            "{y}"
        );
        assert!(y.contains("canonical: UNAVAILABLE"), "{y}");
        assert!(y.contains("retryable: true"), "{y}");
    }

    #[test]
    fn reasons_are_unique_and_never_empty() {
        let y = suggest_yaml(
            &[
                seen(Some("1"), 400, Some("Bad thing")),
                seen(Some("2"), 400, Some("Bad thing")),
                seen(Some("3"), 400, Some("请求错误")),
                seen(Some("x-9"), 400, None),
            ],
            None,
        );
        for r in [
            "BAD_THING",
            "BAD_THING_2",
            "VENDOR_ERROR_3",
            "VENDOR_ERROR_X_9",
        ] {
            assert!(y.contains(&format!("reason: {r}\n")), "{r}: {y}");
        }
    }

    #[test]
    fn report_round_trips() {
        let r = Report {
            since_unix: 1,
            max_entries: 1000,
            overflow: 0,
            entries: vec![seen(Some("1"), 400, None)],
        };
        let bytes = serde_json::to_vec(&r).expect("json");
        assert_eq!(parse_report(&bytes), Some(r));
        assert_eq!(parse_report(b"{\"vendor\":\"x\"}"), None);
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
        assert_eq!(dechunk(b"zz\r\n"), None);
    }
}
