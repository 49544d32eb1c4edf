//! The normalizer: one pure function from what the vendor said to what errgate answers.
//!
//! `classify(vendor catalog, response facts, scan facts, now, cap) -> Verdict`. Used by the
//! proxy, `errgate normalize` and `errgate explain`, so all three agree by construction.
//! No I/O, no clock reads: `now` is a parameter.

use crate::catalog::{LookupKey, VendorCatalog};
use crate::decode::BodyScan;
use crate::problem::{truncate_chars, Code, Problem, Upstream};
use crate::retry::{client_hint, read_hint, RejectedHint, RetryHint};
use crate::scan::{Captured, ScanLimits, Scanner};
use http::HeaderMap;
use std::time::{Duration, SystemTime};

mod captured;

pub use captured::{decide_captured, Decision};

/// Reason of a vendor error whose code is not in its catalog.
pub const REASON_UNCATALOGED: &str = "UNCATALOGED_ERROR";
/// Reason of a vendor error that carried no usable code (HTML page, empty body...).
pub const REASON_UPSTREAM_HTTP: &str = "UPSTREAM_HTTP_ERROR";
/// Longest vendor message kept, in chars: bounded output from unbounded input.
pub const MAX_MESSAGE_CHARS: usize = 1024;

/// What errgate knows of the response besides its body.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFacts<'a> {
    /// Upstream HTTP status.
    pub status: u16,
    /// Upstream response headers.
    pub headers: &'a HeaderMap,
    /// Request method: upper case from the proxy; [`decide_captured`] takes any case.
    pub method: &'a str,
    /// Request path below the route prefix: without query from the proxy; [`decide_captured`]
    /// cuts one.
    pub path: &'a str,
}

/// How much of the body was seen, and in what shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyState {
    /// The whole body was scanned and is JSON.
    Complete,
    /// No body.
    Empty,
    /// Only a prefix was scanned (hold limit reached, or the vendor cut the body).
    Truncated,
    /// The body is not JSON (an HTML error page, plain text) or is broken JSON.
    NotJson,
    /// The content encoding could not be decoded.
    Undecodable,
}

/// The few fields the scanner pulled out, as plain values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanFacts {
    /// Vendor code as text.
    pub code: Option<String>,
    /// Vendor message.
    pub message: Option<String>,
    /// Extra detail (openim errDlt).
    pub detail: Option<String>,
    /// Body retry hint in ms, as literal text.
    pub retry_after_ms: Option<String>,
    /// Field-level errors, raw JSON bytes.
    pub errors: Option<Vec<u8>>,
    /// The in-band deciding field's value.
    pub in_band: Option<String>,
    /// Body shape; `None` means Complete.
    pub body: Option<BodyState>,
}

/// What errgate does with a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not an error: pass it through untouched.
    Pass,
    /// An error: answer with this problem. The hint is the uncapped one, for the cooldown.
    Error(Box<Problem>, Option<RetryHint>),
}

/// A captured scalar as text, borrowed (no allocation: `captured_text` and the in-band check
/// run on every held response).
fn captured_str(c: &Captured) -> Option<&str> {
    match c {
        Captured::Str(s) => Some(s),
        Captured::Num(n) => Some(n),
        Captured::Bool(true) => Some("true"),
        Captured::Bool(false) => Some("false"),
        Captured::Null => None,
        Captured::Raw(_) => None,
    }
}

fn captured_text(c: &Captured) -> Option<String> {
    captured_str(c).map(str::to_string)
}

/// [`in_band_value`], borrowed from the scanner.
fn in_band_str<'a>(vendor: &VendorCatalog, scanner: &'a Scanner<'_>) -> Option<&'a str> {
    let ib = vendor.in_band.as_ref()?;
    scanner.field(ib.field).and_then(|f| match &f.value {
        Captured::Null => Some("null"),
        v => captured_str(v),
    })
}

/// The value of an in-band field, as compared against the catalog's success values.
pub fn in_band_value(vendor: &VendorCatalog, scanner: &Scanner<'_>) -> Option<String> {
    in_band_str(vendor, scanner).map(str::to_string)
}

/// Early decision for a held 2xx of an in-band vendor: `Some(true)` pass now, `Some(false)` it is
/// an error (keep scanning for the rest of the envelope), `None` undecided.
pub fn in_band_decision(vendor: &VendorCatalog, scanner: &Scanner<'_>) -> Option<bool> {
    let ib = vendor.in_band.as_ref()?;
    if scanner.root_is_object() == Some(false) || scanner.error().is_some() {
        return Some(true);
    }
    let v = in_band_str(vendor, scanner)?;
    Some(ib.success.iter().any(|s| s.as_str() == v))
}

impl ScanFacts {
    /// Pulls the envelope fields out of a scanner.
    pub fn from_scanner(
        vendor: &VendorCatalog,
        scanner: &Scanner<'_>,
        body: BodyState,
    ) -> ScanFacts {
        let text = |i: Option<usize>| {
            i.and_then(|i| scanner.field(i))
                .and_then(|f| captured_text(&f.value))
        };
        let errors = vendor
            .envelope
            .errors
            .and_then(|i| scanner.field(i))
            .and_then(|f| match &f.value {
                Captured::Raw(b) if !f.truncated => Some(b.clone()),
                _ => None,
            });
        ScanFacts {
            code: vendor
                .envelope
                .code
                .and_then(|i| scanner.field(i))
                .and_then(|f| captured_str(&f.value))
                .map(|c| c.trim().to_string()),
            message: text(vendor.envelope.message),
            detail: text(vendor.envelope.detail),
            retry_after_ms: text(vendor.envelope.retry_after_ms),
            errors,
            in_band: in_band_value(vendor, scanner),
            body: Some(body),
        }
    }
}

/// Vendor field errors as the contract's `errors` array: an object of `field -> [errors]`
/// becomes `[{"field": .., ...error}]`; an array is kept; anything else is dropped.
fn errors_array(raw: &[u8]) -> Option<serde_json::Value> {
    use serde_json::Value;
    let v: Value = serde_json::from_slice(raw).ok()?;
    match v {
        Value::Array(a) => Some(Value::Array(a)),
        Value::Object(map) => {
            let mut out = Vec::new();
            for (field, errs) in map {
                let list = match errs {
                    Value::Array(a) => a,
                    other => vec![other],
                };
                for e in list {
                    let mut obj = serde_json::Map::new();
                    obj.insert("field".into(), Value::String(field.clone()));
                    match e {
                        Value::Object(m) => obj.extend(m),
                        Value::String(s) => {
                            obj.insert("message".into(), Value::String(s));
                        }
                        other => {
                            obj.insert("message".into(), Value::String(other.to_string()));
                        }
                    }
                    out.push(Value::Object(obj));
                }
            }
            Some(Value::Array(out))
        }
        _ => None,
    }
}

/// What a response status says on its own; [`must_hold`] and [`is_error`] both start here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusBand {
    /// 4xx/5xx: an error whatever the body says.
    Error,
    /// 2xx: an error only if the vendor reports errors in-band and the body says so.
    Success,
    /// 1xx/3xx: never an error.
    Other,
}

// === impl StatusBand ===

impl StatusBand {
    /// The band of `status`.
    pub fn of(status: u16) -> StatusBand {
        match status {
            400.. => StatusBand::Error,
            200..=299 => StatusBand::Success,
            _ => StatusBand::Other,
        }
    }
}

/// Whether a response may carry a vendor error and must be held while it is scanned: any
/// 4xx/5xx, and a 2xx JSON (or untyped/text) body from a vendor that reports errors in-band.
pub fn must_hold(
    vendor: &VendorCatalog,
    status: u16,
    headers: &HeaderMap,
    head_only: bool,
) -> bool {
    match StatusBand::of(status) {
        StatusBand::Error => return true,
        StatusBand::Other => return false,
        // No body to read.
        StatusBand::Success if status == 204 || status == 205 || head_only => return false,
        StatusBand::Success => {}
    }
    if !vendor.is_in_band() {
        return false;
    }
    match headers.get(http::header::CONTENT_TYPE) {
        None => true,
        Some(ct) => {
            let ct = ct.as_bytes();
            // The common case first, without a scan.
            (ct.len() >= 16 && ct[..16].eq_ignore_ascii_case(b"application/json"))
                || contains_ignore_case(ct, b"json")
                || ct.len() >= 10 && ct[..10].eq_ignore_ascii_case(b"text/plain")
                || contains_ignore_case(ct, b"javascript")
        }
    }
}

/// Whether `hay` contains `needle` (ASCII case-insensitive), without allocating.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The scan facts of a held body once reading stopped. `state` is what the reader knows
/// (Complete unless truncated or undecodable); `held_len` the raw bytes held.
pub fn held_facts(
    vendor: &VendorCatalog,
    scan: Option<&BodyScan<'_>>,
    state: BodyState,
    held_len: usize,
) -> ScanFacts {
    match scan {
        Some(sc) => {
            let scanner = sc.scanner();
            let state = if state != BodyState::Complete {
                state
            } else if held_len == 0 {
                BodyState::Empty
            } else if sc.over_limit() {
                BodyState::Truncated
            } else if scanner.error().is_some() {
                BodyState::NotJson
            } else {
                BodyState::Complete
            };
            ScanFacts::from_scanner(vendor, scanner, state)
        }
        None => ScanFacts {
            body: Some(state),
            ..Default::default()
        },
    }
}

/// What to do after a held chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStep {
    /// Keep reading and holding.
    More,
    /// Not an error (or undecidable): release what is held and stream the rest.
    Release,
    /// Stop reading: decide from what was read ([`Hold::classified`]).
    Decide,
}

/// The held-body decision, as a pure state machine fed chunk by chunk. The proxy, `errgate
/// normalize` and the tests all run this one type, so they decide alike.
///
/// A 2xx of an in-band vendor is released as soon as the in-band field says success; known
/// errors (an error status, or the in-band field said error) are read to the end or to
/// `hold_max`; an undecided 2xx at `hold_max` is released (a "hold_limit" fallback).
pub struct Hold<'v> {
    vendor: &'v VendorCatalog,
    scan: Option<BodyScan<'v>>,
    status: u16,
    state: BodyState,
    held: usize,
    hold_max: usize,
    known_error: bool,
    fallback: Option<&'static str>,
    /// Stop scanning at the in-band field (always on; the tests turn it off for a reference).
    early_stop: bool,
    /// The limits capture every success value whole, so a success prefix decides as the scan
    /// would (always, with [`ScanLimits::DEFAULT`]).
    prefix_ok: bool,
}

/// Decoded bytes scanned per compressed body, as a multiple of the hold limit.
///
/// Why 1: a compressed body is scanned as far as a plain one (`hold_max_bytes` of JSON), so a
/// decompression bomb costs about what a plain body at the hold limit costs (the decoding
/// stops there; figures in benches/load/README.md). Vendors put their error fields first.
const DECODE_BUDGET_FACTOR: u64 = 1;

impl<'v> Hold<'v> {
    /// Starts holding a response of `status` with this `Content-Encoding`.
    pub fn new(
        vendor: &'v VendorCatalog,
        status: u16,
        content_encoding: Option<&str>,
        hold_max: usize,
        limits: ScanLimits,
    ) -> Hold<'v> {
        let scan = BodyScan::new(
            content_encoding,
            &vendor.spec,
            limits,
            hold_max as u64 * DECODE_BUDGET_FACTOR,
        )
        .ok();
        let known_error = status >= 400;
        let (state, fallback) = match (&scan, known_error) {
            (None, false) => (BodyState::Undecodable, Some("undecodable")),
            (None, true) => (BodyState::Undecodable, None),
            _ => (BodyState::Complete, None),
        };
        Hold {
            vendor,
            scan,
            status,
            state,
            held: 0,
            hold_max,
            known_error,
            fallback,
            early_stop: true,
            prefix_ok: limits.max_depth >= 1
                && vendor.in_band.as_ref().is_some_and(|ib| {
                    ib.success
                        .iter()
                        .all(|v| v.len() <= limits.max_capture_bytes)
                }),
        }
    }

    /// The step before any chunk: an undecodable 2xx is released at once.
    pub fn first_step(&self) -> HoldStep {
        if self.fallback.is_some() {
            HoldStep::Release
        } else {
            HoldStep::More
        }
    }

    /// Feeds one raw (still encoded) chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> HoldStep {
        self.held += chunk.len();
        // While a 2xx is undecided the scanner stops right after the in-band field: a success
        // releases the body without scanning the rest (the common in-band case, issue #10);
        // otherwise the rest of the chunk is scanned before deciding, exactly as if it had been
        // fed whole.
        let stop = match (&self.vendor.in_band, self.known_error) {
            (Some(ib), false) if self.early_stop => Some(ib.field),
            _ => None,
        };
        if let (Some(ib), Some(sc), true) = (
            &self.vendor.in_band,
            self.scan.as_mut(),
            stop.is_some() && self.prefix_ok,
        ) {
            // The common in-band success (`{"errCode":0,...`) decided from its first bytes,
            // exactly as the scan below would decide it (`InBand::success_prefix`).
            if sc.decide_by_prefix(chunk, |c| ib.success_prefix(c)) {
                return HoldStep::Release;
            }
        }
        let mut unscanned = None;
        if let Some(sc) = self.scan.as_mut() {
            match sc.feed_until(chunk, stop) {
                Ok(r) => unscanned = r,
                Err(_) => self.state = BodyState::Undecodable,
            }
        }
        if !self.known_error {
            if self.state == BodyState::Undecodable {
                self.fallback = Some("undecodable");
                return HoldStep::Release;
            }
            if let Some(sc) = self.scan.as_mut() {
                let mut decision = in_band_decision(self.vendor, sc.scanner());
                if let (Some(rest), false) = (unscanned, decision == Some(true)) {
                    sc.scan_rest(chunk.get(rest).unwrap_or_default());
                    decision = in_band_decision(self.vendor, sc.scanner());
                }
                match decision {
                    Some(true) => return HoldStep::Release,
                    Some(false) => self.known_error = true,
                    None => {}
                }
            }
        }
        if self.held >= self.hold_max {
            self.state = BodyState::Truncated;
            if self.known_error {
                return HoldStep::Decide;
            }
            self.fallback = Some("hold_limit");
            return HoldStep::Release;
        }
        HoldStep::More
    }

    /// The body ended.
    pub fn end(&mut self) {
        if let Some(sc) = self.scan.as_mut() {
            if sc.finish().is_err() {
                self.state = BodyState::Undecodable;
            }
        }
    }

    /// The body stopped early (read error, stall). For a known error that is still an answer
    /// from what was read (`true`); otherwise the caller has no verdict (`false`).
    pub fn cut(&mut self) -> bool {
        if self.known_error {
            self.state = BodyState::Truncated;
        }
        self.known_error
    }

    /// Why a released response was not classified, if it was not.
    pub fn fallback(&self) -> Option<&'static str> {
        self.fallback
    }

    /// Raw bytes held so far.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Decoded bytes the scanner read.
    pub fn decoded_bytes(&self) -> u64 {
        self.scan.as_ref().map_or(0, |s| s.decoded_bytes())
    }

    /// The verdict from what was read, with the hints not believed, and the facts it rests on.
    pub fn classified(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        now: SystemTime,
        retry_after_max: Duration,
    ) -> (Classified, ScanFacts) {
        let facts = held_facts(self.vendor, self.scan.as_ref(), self.state, self.held);
        let rf = ResponseFacts {
            status: self.status,
            headers,
            method,
            path,
        };
        (
            classify_full(self.vendor, &rf, &facts, now, retry_after_max),
            facts,
        )
    }
}

/// Whether this response is an error at all, before looking at the catalog.
pub fn is_error(vendor: &VendorCatalog, status: u16, scan: &ScanFacts) -> bool {
    match StatusBand::of(status) {
        StatusBand::Error => true,
        StatusBand::Other => false,
        StatusBand::Success => match (&vendor.in_band, &scan.in_band) {
            (Some(ib), Some(v)) => !ib.success.iter().any(|s| s == v),
            _ => false,
        },
    }
}

/// A verdict and the retry hints read on the way and not believed (for the log and metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// What errgate does with the response.
    pub verdict: Verdict,
    /// Hints beyond `retry_after_max`, in the past or malformed; empty for a pass or for an
    /// error that takes no hint.
    pub rejected_hints: Vec<RejectedHint>,
}

/// The normalizer (see [`classify_full`]).
pub fn classify(
    vendor: &VendorCatalog,
    resp: &ResponseFacts<'_>,
    scan: &ScanFacts,
    now: SystemTime,
    retry_after_max: Duration,
) -> Verdict {
    classify_full(vendor, resp, scan, now, retry_after_max).verdict
}

/// The normalizer, with the rejected hints.
///
/// A retry hint is read only for an error that is a rate limit (`RESOURCE_EXHAUSTED`) or
/// retryable: a non-retryable answer carries no `retry_after_ms` and no `Retry-After`, even when
/// the vendor sends its rate-limit headers on every response (PluralKit does). Hint headers are
/// read in the form the catalog declares; a hint beyond `retry_after_max` or in the past is
/// rejected and the body's hint or the catalog default is used instead.
pub fn classify_full(
    vendor: &VendorCatalog,
    resp: &ResponseFacts<'_>,
    scan: &ScanFacts,
    now: SystemTime,
    retry_after_max: Duration,
) -> Classified {
    if !is_error(vendor, resp.status, scan) {
        return Classified {
            verdict: Verdict::Pass,
            rejected_hints: Vec::new(),
        };
    }
    classify_error(vendor, resp, scan, now, retry_after_max)
}

/// The mapping of a response already known to be an error (what [`classify_full`] does after
/// [`is_error`]); `errgate explain` calls it for a documented code without inventing a body.
pub fn classify_error(
    vendor: &VendorCatalog,
    resp: &ResponseFacts<'_>,
    scan: &ScanFacts,
    now: SystemTime,
    retry_after_max: Duration,
) -> Classified {
    let message = scan
        .message
        .as_deref()
        .map(|m| truncate_chars(m.trim(), MAX_MESSAGE_CHARS).to_string());
    let key = LookupKey {
        code: scan.code.as_deref(),
        status: resp.status,
        method: resp.method,
        path: resp.path,
        message: message.as_deref(),
    };
    let entry = vendor.lookup(&key);
    let (code, status, reason, title, retryable, detail, default_hint) = match entry {
        Some(e) => (
            e.canonical,
            e.http_status,
            e.reason.clone(),
            // Computed once at catalog load rather than per answer.
            e.title().to_string(),
            e.retryable,
            // Room for the vendor's detail suffix below: one allocation, no regrowth.
            with_room(&e.detail, scan.detail.as_deref().map_or(0, |d| d.len() + 3)),
            e.retry_after_ms.map(Duration::from_millis),
        ),
        None => {
            let code = if resp.status >= 400 {
                Code::from_http_status(resp.status)
            } else {
                Code::Unknown
            };
            let retryable = code.default_retryable() || matches!(resp.status, 429 | 503);
            let reason = if scan.code.is_some() {
                REASON_UNCATALOGED
            } else {
                REASON_UPSTREAM_HTTP
            };
            (
                code,
                code.default_status(),
                reason.to_string(),
                crate::problem::title_for_reason(reason),
                retryable,
                uncataloged_detail(vendor, resp.status, scan),
                None,
            )
        }
    };
    let reading = if retryable || code == Code::ResourceExhausted {
        read_hint(
            resp.headers,
            &vendor.rate_limit_headers,
            scan.retry_after_ms.as_deref(),
            default_hint,
            now,
            retry_after_max,
        )
    } else {
        Default::default()
    };
    let hint = reading.hint;
    let retry_after_ms = hint
        .as_ref()
        .map(|h| client_hint(h.delay, retry_after_max).0);
    let mut problem = Problem {
        status,
        title,
        detail,
        code,
        reason,
        domain: vendor.id.clone(),
        retryable,
        retry_after_ms,
        upstream: Some(Upstream {
            status: resp.status,
            code: scan.code.clone(),
            message,
        }),
        errors: scan.errors.as_deref().and_then(errors_array),
        allow: None,
        internal: None,
    };
    if let Some(d) = scan.detail.as_deref().filter(|d| !d.trim().is_empty()) {
        // `format!("{} ({})", detail, d)` by hand: the formatting machinery costs about 1 K
        // instructions per answer (issue #10); same text.
        let d = truncate_chars(d.trim(), MAX_MESSAGE_CHARS);
        let detail = &mut problem.detail;
        detail.reserve(d.len() + 3);
        detail.push_str(" (");
        detail.push_str(d);
        detail.push(')');
    }
    Classified {
        verdict: Verdict::Error(Box::new(problem), hint),
        rejected_hints: reading.rejected,
    }
}

/// `s` copied into a `String` with `extra` spare bytes.
fn with_room(s: &str, extra: usize) -> String {
    let mut out = String::with_capacity(s.len().saturating_add(extra));
    out.push_str(s);
    out
}

fn uncataloged_detail(vendor: &VendorCatalog, status: u16, scan: &ScanFacts) -> String {
    let what = match (scan.code.as_deref(), scan.body) {
        (Some(c), _) => format!("error code {c}, which its catalog does not list"),
        (None, Some(BodyState::Empty)) => "an empty body".to_string(),
        (None, Some(BodyState::NotJson)) => "a body that is not JSON".to_string(),
        (None, Some(BodyState::Undecodable)) => "a body errgate could not decode".to_string(),
        (None, Some(BodyState::Truncated)) => "a body too large to read whole".to_string(),
        (None, _) => "no error code".to_string(),
    };
    format!("{} answered HTTP {status} with {what}.", vendor.title)
}

#[cfg(test)]
mod tests;
