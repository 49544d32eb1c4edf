//! The uncataloged-error recorder behind `GET /uncataloged` (admin): which vendor codes and
//! messages errgate has seen since start that no catalog entry matched, so catalogs can grow from
//! traffic (`errgate catalog suggest` turns the list into entries).
//!
//! Invariants:
//! - Bounded: at most [`MAX_ENTRIES`] distinct sightings are kept; later new ones are only
//!   counted in `overflow`. Samples are at most [`MAX_SAMPLE_CHARS`] characters.
//! - The secret values a route injects (`upstream_headers`) never reach the stored sample: a
//!   vendor that echoes the API key back in its message has it replaced by [`REDACTED`] before
//!   the message is kept.
//! - Time is a parameter; no clock reads.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// Most distinct (route, code, status[, message]) sightings kept.
///
/// Why: an uncataloged code is rare in a healthy setup; a thousand is far more than a catalog
/// author reviews at once, and bounds memory against a vendor that puts ids in its codes.
pub const MAX_ENTRIES: usize = 1_000;

/// Longest sample message kept, in characters.
pub const MAX_SAMPLE_CHARS: usize = 512;

/// Longest message used as part of the key of a code-less sighting, in characters.
const MAX_KEY_MESSAGE_CHARS: usize = 200;

/// Shortest secret (or secret token) that is redacted; shorter values would mangle ordinary
/// words of the message and are not credentials.
const MIN_SECRET_LEN: usize = 6;

/// What replaces a secret in a sample.
pub const REDACTED: &str = "[redacted]";

/// One uncataloged vendor error, as the proxy saw it.
#[derive(Debug, Clone, Copy)]
pub struct Sighting<'a> {
    /// Route name.
    pub route: &'a str,
    /// Vendor id.
    pub vendor: &'a str,
    /// The vendor's code, if its body had one.
    pub code: Option<&'a str>,
    /// The vendor's HTTP status.
    pub status: u16,
    /// The vendor's message, if any.
    pub message: Option<&'a str>,
}

/// One entry of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Route name.
    pub route: String,
    /// Vendor id.
    pub vendor: String,
    /// The vendor's code (`null` when it sent none).
    pub code: Option<String>,
    /// The vendor's HTTP status.
    pub status: u16,
    /// Times seen.
    pub count: u64,
    /// First seen, Unix seconds.
    pub first_seen_unix: u64,
    /// Last seen, Unix seconds.
    pub last_seen_unix: u64,
    /// One sample message, secrets redacted, bounded.
    pub message: Option<String>,
}

/// The `/uncataloged` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// When recording started (process start), Unix seconds.
    pub since_unix: u64,
    /// [`MAX_ENTRIES`].
    pub max_entries: usize,
    /// Sightings not kept because the table was full.
    pub overflow: u64,
    /// Entries sorted by route, then most frequent first.
    pub entries: Vec<Seen>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    route: String,
    vendor: String,
    code: Option<String>,
    status: u16,
    /// Only for code-less errors (microCMS): the message tells them apart.
    message: Option<String>,
}

#[derive(Debug)]
struct Inner {
    entries: HashMap<Key, Seen>,
    overflow: u64,
}

/// The recorder: shared by the proxy (records) and the admin listener (reports).
#[derive(Debug)]
pub struct Uncataloged {
    since: SystemTime,
    inner: Mutex<Inner>,
}

// === impl Uncataloged ===

impl Uncataloged {
    /// An empty recorder started at `since`.
    pub fn new(since: SystemTime) -> Uncataloged {
        Uncataloged {
            since,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                overflow: 0,
            }),
        }
    }

    /// Records one sighting at `now`. `secrets` are the values the route injects upstream;
    /// they are redacted from the message before anything is stored.
    pub fn record(&self, s: Sighting<'_>, secrets: &[&[u8]], now: SystemTime) {
        let message = s
            .message
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| redact(m, secrets));
        let key = Key {
            route: s.route.to_string(),
            vendor: s.vendor.to_string(),
            code: s.code.map(str::to_string),
            status: s.status,
            message: match s.code {
                Some(_) => None,
                None => message
                    .as_deref()
                    .map(|m| crate::problem::truncate_chars(m, MAX_KEY_MESSAGE_CHARS).to_string()),
            },
        };
        let at = unix(now);
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(seen) = inner.entries.get_mut(&key) {
            seen.count = seen.count.saturating_add(1);
            seen.last_seen_unix = at;
            if seen.message.is_none() {
                seen.message = message.map(bounded);
            }
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.overflow = inner.overflow.saturating_add(1);
            return;
        }
        let seen = Seen {
            route: key.route.clone(),
            vendor: key.vendor.clone(),
            code: key.code.clone(),
            status: key.status,
            count: 1,
            first_seen_unix: at,
            last_seen_unix: at,
            message: message.map(bounded),
        };
        inner.entries.insert(key, seen);
    }

    /// The report: every entry, sorted by route, then count (most first), code and status.
    pub fn report(&self) -> Report {
        let inner = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut entries: Vec<Seen> = inner.entries.values().cloned().collect();
        entries.sort_by(|a, b| {
            (
                &a.route,
                std::cmp::Reverse(a.count),
                &a.code,
                a.status,
                &a.message,
            )
                .cmp(&(
                    &b.route,
                    std::cmp::Reverse(b.count),
                    &b.code,
                    b.status,
                    &b.message,
                ))
        });
        Report {
            since_unix: unix(self.since),
            max_entries: MAX_ENTRIES,
            overflow: inner.overflow,
            entries,
        }
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn bounded(m: String) -> String {
    if m.chars().count() <= MAX_SAMPLE_CHARS {
        m
    } else {
        crate::problem::truncate_chars(&m, MAX_SAMPLE_CHARS).to_string()
    }
}

/// `message` with every secret replaced by [`REDACTED`]: each whole value, and each
/// whitespace-separated token of it (so `Bearer abc…` also hides `abc…` echoed alone), when at
/// least [`MIN_SECRET_LEN`] bytes long. Longest first, so a value containing another is
/// redacted whole.
pub fn redact(message: &str, secrets: &[&[u8]]) -> String {
    let mut needles: Vec<&str> = Vec::new();
    for s in secrets {
        let Ok(s) = std::str::from_utf8(s) else {
            continue;
        };
        let s = s.trim();
        needles.push(s);
        needles.extend(s.split_ascii_whitespace());
    }
    needles.retain(|n| n.len() >= MIN_SECRET_LEN);
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.dedup();
    let mut out = message.to_string();
    for n in needles {
        if out.contains(n) {
            out = out.replace(n, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    fn sight<'a>(code: Option<&'a str>, status: u16, message: Option<&'a str>) -> Sighting<'a> {
        Sighting {
            route: "pk",
            vendor: "pluralkit",
            code,
            status,
            message,
        }
    }

    #[test]
    fn counts_and_keeps_first_and_last_seen() {
        let u = Uncataloged::new(t(100));
        u.record(sight(Some("29999"), 404, Some("Nope.")), &[], t(110));
        u.record(sight(Some("29999"), 404, Some("Nope again.")), &[], t(120));
        u.record(sight(Some("29998"), 400, None), &[], t(130));
        let r = u.report();
        assert_eq!(r.since_unix, 100);
        assert_eq!(r.entries.len(), 2);
        let e = &r.entries[0];
        assert_eq!(
            (e.code.as_deref(), e.status, e.count),
            (Some("29999"), 404, 2)
        );
        assert_eq!((e.first_seen_unix, e.last_seen_unix), (110, 120));
        assert_eq!(e.message.as_deref(), Some("Nope."));
        assert_eq!(r.entries[1].message, None);
    }

    #[test]
    fn codeless_errors_are_told_apart_by_message() {
        let u = Uncataloged::new(t(0));
        u.record(sight(None, 404, Some("a")), &[], t(1));
        u.record(sight(None, 404, Some("b")), &[], t(1));
        u.record(sight(None, 404, Some("a")), &[], t(1));
        let r = u.report();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[0].count, 2);
    }

    #[test]
    fn secrets_are_redacted_before_storing() {
        let u = Uncataloged::new(t(0));
        let key: &[u8] = b"Bearer sk_live_0123456789";
        u.record(
            sight(
                Some("1"),
                401,
                Some("Token sk_live_0123456789 is invalid (got Bearer sk_live_0123456789)"),
            ),
            &[key, b"short"],
            t(1),
        );
        let m = u.report().entries[0].message.clone().expect("sample");
        assert!(!m.contains("sk_live"), "{m}");
        assert_eq!(m, "Token [redacted] is invalid (got [redacted])");
        // Short values are not treated as secrets.
        assert_eq!(redact("a short note", &[b"short"]), "a short note");
    }

    #[test]
    fn bounded_with_overflow_counted() {
        let u = Uncataloged::new(t(0));
        for i in 0..(MAX_ENTRIES + 5) {
            let code = i.to_string();
            u.record(sight(Some(&code), 400, None), &[], t(1));
        }
        // An existing key still counts after the table is full.
        u.record(sight(Some("0"), 400, None), &[], t(2));
        let r = u.report();
        assert_eq!(r.entries.len(), MAX_ENTRIES);
        assert_eq!(r.overflow, 5);
        assert_eq!(r.entries[0].count, 2);
    }

    #[test]
    fn long_samples_are_cut() {
        let u = Uncataloged::new(t(0));
        let long = "é".repeat(MAX_SAMPLE_CHARS * 3);
        u.record(sight(Some("1"), 400, Some(&long)), &[], t(1));
        let m = u.report().entries[0].message.clone().expect("sample");
        assert!(
            m.chars().count() <= MAX_SAMPLE_CHARS + 1,
            "{}",
            m.chars().count()
        );
    }
}
