//! Retry hints read in the form each vendor's catalog declares, with implausible hints rejected.
//!
//! A catalog lists the headers that carry a retry hint together with their *form*
//! ([`HintForm`]): `X-RateLimit-Reset` is a Unix time in milliseconds at PluralKit, a Unix time
//! in seconds at GitHub and a delta in seconds elsewhere, and nothing in the value tells them
//! apart reliably. errgate never guesses from magnitude.
//!
//! Pure: `now` (wall clock, for dates and Unix times) and the cap are parameters.
//!
//! Invariants:
//! - A hint beyond `max` or a point in time already past is *rejected*: it is reported in
//!   [`HintReading::rejected`] (the proxy logs and counts it) and the next source is tried, so an
//!   unbelievable hint never turns into a long cooldown.
//! - Malformed values are rejected the same way (reason `malformed`), never an error.
//! - All arithmetic saturates; no input panics.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use super::{parse_body_millis, HintSource, RetryHint};

/// How a hint header's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HintForm {
    /// A non-negative integer number of seconds to wait (`Retry-After: 120`, `RateLimit-Reset`).
    DeltaSeconds,
    /// An HTTP-date (RFC 9110 §5.6.7) at which to retry.
    HttpDate,
    /// A Unix time in seconds at which the limit resets (GitHub's `X-RateLimit-Reset`).
    UnixSeconds,
    /// A Unix time in milliseconds at which the limit resets (PluralKit's `X-RateLimit-Reset`).
    UnixMillis,
}

impl HintForm {
    /// Every form.
    pub const ALL: [HintForm; 4] = [
        HintForm::DeltaSeconds,
        HintForm::HttpDate,
        HintForm::UnixSeconds,
        HintForm::UnixMillis,
    ];

    /// The name used in catalog files.
    pub fn as_str(self) -> &'static str {
        match self {
            HintForm::DeltaSeconds => "delta_seconds",
            HintForm::HttpDate => "http_date",
            HintForm::UnixSeconds => "unix_seconds",
            HintForm::UnixMillis => "unix_millis",
        }
    }

    /// Parses a catalog form name.
    pub fn parse(s: &str) -> Option<HintForm> {
        HintForm::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Whether the value is a bare integer (the numeric forms cannot be told apart by syntax).
    pub fn is_numeric(self) -> bool {
        !matches!(self, HintForm::HttpDate)
    }

    /// Whether the value is a point in time (may be in the past) rather than a delay.
    pub fn is_point_in_time(self) -> bool {
        !matches!(self, HintForm::DeltaSeconds)
    }
}

impl fmt::Display for HintForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header a catalog lists as carrying a retry hint, with the forms its value may take.
///
/// Several forms are tried in order; a list holds at most one numeric form (validated at load),
/// so the forms are told apart by syntax (digits vs a date), never by magnitude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintHeader {
    /// Header name as written in the catalog (matched case-insensitively).
    pub name: String,
    /// The forms its value may take; never empty.
    pub forms: Vec<HintForm>,
}

impl HintHeader {
    /// A header with the given forms.
    pub fn new(name: impl Into<String>, forms: &[HintForm]) -> HintHeader {
        HintHeader {
            name: name.into(),
            forms: forms.to_vec(),
        }
    }

    /// The forms a header listed by name alone takes: the standard ones where a standard
    /// exists (`Retry-After`: RFC 9110 delay-seconds or HTTP-date; `RateLimit-Reset`:
    /// draft-ietf-httpapi-ratelimit-headers delta seconds). `X-RateLimit-Reset` has no standard;
    /// a schema-1 catalog that names it alone gets `unix_seconds` (GitHub's convention), so a
    /// vendor sending milliseconds there produces hints beyond the cap, which are rejected.
    /// Any other name has no default (`None`): the catalog must declare its form.
    pub fn standard(name: &str) -> Option<HintHeader> {
        let forms: &[HintForm] = if name.eq_ignore_ascii_case("retry-after") {
            &[HintForm::DeltaSeconds, HintForm::HttpDate]
        } else if name.eq_ignore_ascii_case("ratelimit-reset") {
            &[HintForm::DeltaSeconds]
        } else if name.eq_ignore_ascii_case("x-ratelimit-reset") {
            &[HintForm::UnixSeconds]
        } else {
            return None;
        };
        Some(HintHeader::new(name, forms))
    }
}

/// Why a hint was not believed (closed set; a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The delay is longer than `retry_after_max`.
    BeyondMax,
    /// The point in time has already passed.
    InPast,
    /// The value is not in the declared form.
    Malformed,
}

impl RejectReason {
    /// Every variant, for registering metric label values up front.
    pub const ALL: [RejectReason; 3] = [
        RejectReason::BeyondMax,
        RejectReason::InPast,
        RejectReason::Malformed,
    ];

    /// Stable snake_case label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::BeyondMax => "beyond_max",
            RejectReason::InPast => "in_past",
            RejectReason::Malformed => "malformed",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hint that was read and not believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedHint {
    /// Where it came from.
    pub source: HintSource,
    /// The header name (as listed in the catalog), or the body field for a body hint.
    pub name: String,
    /// The value, bounded to [`REJECTED_VALUE_MAX`] bytes for logging.
    pub value: String,
    /// Why it was rejected.
    pub reason: RejectReason,
}

/// Bytes of a rejected value kept for the log line.
pub const REJECTED_VALUE_MAX: usize = 64;

/// The outcome of reading one response's hints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HintReading {
    /// The hint believed, if any (uncapped, but never above the `max` it was read with).
    pub hint: Option<RetryHint>,
    /// Hints read and rejected on the way, in the order they were tried.
    pub rejected: Vec<RejectedHint>,
}

/// Parses one value in one form: `Ok(delay)`, or why not.
///
/// Whitespace is trimmed. Numbers are non-negative ASCII integers (saturating). A point in time
/// before `now` is [`RejectReason::InPast`]; exactly `now` is a zero delay.
pub fn parse_form(form: HintForm, value: &[u8], now: SystemTime) -> Result<Duration, RejectReason> {
    let v = value.trim_ascii();
    match form {
        HintForm::DeltaSeconds => digits(v)
            .map(Duration::from_secs)
            .ok_or(RejectReason::Malformed),
        HintForm::HttpDate => {
            let at = std::str::from_utf8(v)
                .ok()
                .and_then(|s| httpdate::parse_http_date(s).ok())
                .ok_or(RejectReason::Malformed)?;
            at.duration_since(now).map_err(|_| RejectReason::InPast)
        }
        HintForm::UnixSeconds => {
            let n = digits(v).ok_or(RejectReason::Malformed)?;
            until_epoch_offset(Duration::from_secs(n), now)
        }
        HintForm::UnixMillis => {
            let n = digits(v).ok_or(RejectReason::Malformed)?;
            until_epoch_offset(Duration::from_millis(n), now)
        }
    }
}

/// Reads the hint of one response, trying in order:
///
/// 1. each listed header, in catalog order (case-insensitive name; every value of a repeated
///    header; each declared form in turn, the first that parses decides the value);
/// 2. the body's milliseconds value `body_ms` (literal number text);
/// 3. `catalog_default`.
///
/// A value that parses but is beyond `max` or in the past is rejected, like a malformed one, and
/// the next source is tried. The catalog default is the catalog author's own number and is
/// taken as written (`errgate check` bounds it).
pub fn read_hint(
    headers: &HeaderMap,
    listed: &[HintHeader],
    body_ms: Option<&str>,
    catalog_default: Option<Duration>,
    now: SystemTime,
    max: Duration,
) -> HintReading {
    let mut rejected = Vec::new();
    let mut reject = |source, name: &str, value: &[u8], reason| {
        let shown = &value[..value.len().min(REJECTED_VALUE_MAX)];
        rejected.push(RejectedHint {
            source,
            name: name.to_string(),
            value: String::from_utf8_lossy(shown).into_owned(),
            reason,
        });
    };
    for h in listed {
        let source = if h.name.eq_ignore_ascii_case("retry-after") {
            HintSource::RetryAfterHeader
        } else {
            HintSource::RateLimitReset
        };
        for value in headers.get_all(h.name.as_str()) {
            let bytes = value.as_bytes();
            // The first form that parses decides; syntax (digits vs date) tells them apart.
            let mut outcome = Err(RejectReason::Malformed);
            for &form in &h.forms {
                outcome = parse_form(form, bytes, now);
                if outcome != Err(RejectReason::Malformed) {
                    break;
                }
            }
            match outcome {
                Ok(delay) if delay <= max => {
                    return HintReading {
                        hint: Some(RetryHint { delay, source }),
                        rejected,
                    }
                }
                Ok(_) => reject(source, &h.name, bytes, RejectReason::BeyondMax),
                Err(reason) => reject(source, &h.name, bytes, reason),
            }
        }
    }
    if let Some(text) = body_ms {
        match parse_body_millis(text) {
            Some(delay) if delay <= max => {
                return HintReading {
                    hint: Some(RetryHint {
                        delay,
                        source: HintSource::BodyMillis,
                    }),
                    rejected,
                }
            }
            Some(_) => reject(
                HintSource::BodyMillis,
                "body",
                text.as_bytes(),
                RejectReason::BeyondMax,
            ),
            None => reject(
                HintSource::BodyMillis,
                "body",
                text.as_bytes(),
                RejectReason::Malformed,
            ),
        }
    }
    HintReading {
        hint: catalog_default.map(|delay| RetryHint {
            delay,
            source: HintSource::CatalogDefault,
        }),
        rejected,
    }
}

/// A non-empty run of ASCII digits as a `u64`, saturating; anything else => `None`.
fn digits(d: &[u8]) -> Option<u64> {
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0u64, |acc, &b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Time from `now` until the instant `offset` after the Unix epoch; `InPast` when it has passed.
fn until_epoch_offset(offset: Duration, now: SystemTime) -> Result<Duration, RejectReason> {
    match now.duration_since(UNIX_EPOCH) {
        Ok(since) if offset < since => Err(RejectReason::InPast),
        Ok(since) => Ok(offset - since),
        Err(before) => Ok(offset.saturating_add(before.duration())),
    }
}

#[cfg(test)]
mod tests;
