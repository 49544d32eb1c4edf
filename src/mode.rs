//! Route modes, for adopting errgate service by service: how a vendor error reaches the client.
//!
//! - [`Mode::Problem`] (the default): the RFC 9457 problem body with the canonical status.
//! - [`Mode::Annotate`]: the vendor's status, headers and body untouched; the canonical facts
//!   ride along as `X-Errgate-*` response headers. Applications written against the vendor's
//!   SDK see what they saw before; new code can read the headers.
//! - [`Mode::Observe`]: the response untouched; errgate only classifies, counts and logs. It
//!   neither retries nor answers from its cooldown, and counts what it would have done.
//!
//! Negotiation: a client that sends `Accept: application/problem+json` gets the problem body on
//! any route that is not `observe`. Retries are off in `annotate` unless the route's own `retry`
//! block turns them on, never made in `observe`, and a client that retries by itself turns
//! errgate's off for one request with `X-Errgate-Retry: off`.
//!
//! Pure: header maps and problems in, values out.

use crate::problem::Problem;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::fmt;

/// How a route answers vendor errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// The canonical problem+json (default).
    #[default]
    Problem,
    /// The vendor's response, with the canonical facts as headers.
    Annotate,
    /// The vendor's response untouched; classify, count and log only.
    Observe,
}

impl Mode {
    /// Every mode, for registering metric label values and for messages.
    pub const ALL: [Mode; 3] = [Mode::Problem, Mode::Annotate, Mode::Observe];

    /// The config and metric label name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Problem => "problem",
            Mode::Annotate => "annotate",
            Mode::Observe => "observe",
        }
    }

    /// Parses a config value.
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Request header with which a client turns errgate's retries off for one request
/// (`X-Errgate-Retry: off`); never forwarded to the vendor.
pub const RETRY_CONTROL_HEADER: &str = "x-errgate-retry";

/// [`RETRY_CONTROL_HEADER`] as a parsed name: a lookup by it skips parsing the name again.
pub static RETRY_CONTROL: http::HeaderName = http::HeaderName::from_static(RETRY_CONTROL_HEADER);

/// The problem+json media type a client asks for with `Accept`.
const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

/// Annotation header: canonical code.
pub const H_CODE: &str = "x-errgate-code";
/// Annotation header: reason.
pub const H_REASON: &str = "x-errgate-reason";
/// Annotation header: `true` / `false`.
pub const H_RETRYABLE: &str = "x-errgate-retryable";
/// Annotation header: the canonical HTTP status errgate would have answered with.
pub const H_STATUS: &str = "x-errgate-status";
/// Annotation header: domain (vendor id).
pub const H_DOMAIN: &str = "x-errgate-domain";
/// Annotation header: the retry hint in milliseconds, when known.
pub const H_RETRY_AFTER_MS: &str = "x-errgate-retry-after-ms";
/// Annotation header: errgate's request id (also in `X-Request-Id` unless the vendor set one).
pub const H_REQUEST_ID: &str = "x-errgate-request-id";

/// Whether the client turned errgate's retries off for this request: `X-Errgate-Retry` is
/// `off`, `false`, `no` or `0` (case-insensitive).
pub fn retry_off_requested(h: &HeaderMap) -> bool {
    h.get_all(&RETRY_CONTROL).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            let v = v.trim();
            ["off", "false", "no", "0"]
                .iter()
                .any(|o| v.eq_ignore_ascii_case(o))
        })
    })
}

/// Whether `Accept` names `application/problem+json` with a non-zero quality. Wildcards
/// (`*/*`, `application/*`) do not count: an SDK sending `*/*` must keep getting what it got.
pub fn accepts_problem(h: &HeaderMap) -> bool {
    h.get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';');
            let ty = parts.next().unwrap_or("").trim();
            if !ty.eq_ignore_ascii_case(PROBLEM_MEDIA_TYPE) {
                return false;
            }
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map(|(_, v)| v.trim().parse::<f32>().unwrap_or(1.0))
                .unwrap_or(1.0);
            q > 0.0
        })
}

/// How a vendor error is written to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorForm {
    /// The problem+json body with the canonical status.
    Problem,
    /// The vendor's response plus annotation headers.
    Annotated,
    /// The vendor's response untouched.
    Untouched,
}

impl ErrorForm {
    /// Metric label of an answer written in this form.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorForm::Problem => "problem",
            ErrorForm::Annotated => "annotated",
            ErrorForm::Untouched => "untouched",
        }
    }
}

/// The form for a route's mode and the client's `Accept` (see the module doc).
pub fn error_form(mode: Mode, wants_problem: bool) -> ErrorForm {
    match mode {
        Mode::Observe => ErrorForm::Untouched,
        Mode::Problem => ErrorForm::Problem,
        Mode::Annotate if wants_problem => ErrorForm::Problem,
        Mode::Annotate => ErrorForm::Annotated,
    }
}

/// The annotation headers for a vendor error answered in its own form. `vendor` is the vendor's
/// response header: its `Retry-After` and `X-Request-Id` are never replaced, so the vendor's
/// response stays as it was; errgate's own values then ride only in `X-Errgate-*`.
pub fn annotation_headers(
    p: &Problem,
    request_id: &str,
    vendor: &HeaderMap,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(8);
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.push((HeaderName::from_static(name), v));
        }
    };
    put(H_CODE, p.code.as_str().to_string());
    put(H_REASON, p.reason.clone());
    put(H_RETRYABLE, p.retryable.to_string());
    put(H_STATUS, p.status.to_string());
    put(H_DOMAIN, p.domain.clone());
    put(H_REQUEST_ID, request_id.to_string());
    if let Some(ms) = p.retry_after_ms {
        put(H_RETRY_AFTER_MS, ms.to_string());
    }
    if !vendor.contains_key(http::header::RETRY_AFTER) {
        if let Some(secs) = p.retry_after_secs() {
            put("retry-after", secs.to_string());
        }
    }
    if !vendor.contains_key(&crate::ids::REQUEST_ID) {
        put("x-request-id", request_id.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Code;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn modes_parse_and_print() {
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.as_str()), Some(m));
        }
        assert_eq!(Mode::parse("Problem"), None);
        assert_eq!(Mode::default(), Mode::Problem);
    }

    #[test]
    fn accept_negotiation() {
        assert!(accepts_problem(&headers(&[(
            "accept",
            "application/problem+json"
        )])));
        assert!(accepts_problem(&headers(&[(
            "accept",
            "application/json, Application/Problem+JSON;q=0.5"
        )])));
        assert!(!accepts_problem(&headers(&[(
            "accept",
            "application/problem+json;q=0"
        )])));
        assert!(!accepts_problem(&headers(&[("accept", "*/*")])));
        assert!(!accepts_problem(&headers(&[(
            "accept",
            "application/json"
        )])));
        assert!(!accepts_problem(&HeaderMap::new()));
        assert_eq!(error_form(Mode::Annotate, true), ErrorForm::Problem);
        assert_eq!(error_form(Mode::Annotate, false), ErrorForm::Annotated);
        assert_eq!(error_form(Mode::Observe, true), ErrorForm::Untouched);
        assert_eq!(error_form(Mode::Problem, false), ErrorForm::Problem);
    }

    #[test]
    fn retry_off_header() {
        for v in ["off", "OFF", " false ", "no", "0"] {
            let mut h = HeaderMap::new();
            h.insert(RETRY_CONTROL_HEADER, HeaderValue::from_str(v).expect("v"));
            assert!(retry_off_requested(&h), "{v}");
        }
        assert!(!retry_off_requested(&headers(&[("x-errgate-retry", "on")])));
        assert!(!retry_off_requested(&HeaderMap::new()));
    }

    #[test]
    fn annotations_carry_the_canonical_facts_without_replacing_vendor_headers() {
        let mut p = Problem::own(Code::ResourceExhausted, 429, "RATE_LIMITED", "d");
        p.domain = "pluralkit".into();
        p.retryable = true;
        p.retry_after_ms = Some(2500);
        let got = annotation_headers(&p, "rid", &HeaderMap::new());
        let get = |n: &str| {
            got.iter()
                .find(|(k, _)| k.as_str() == n)
                .map(|(_, v)| v.to_str().unwrap_or("?").to_string())
        };
        assert_eq!(get(H_CODE).as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(get(H_REASON).as_deref(), Some("RATE_LIMITED"));
        assert_eq!(get(H_RETRYABLE).as_deref(), Some("true"));
        assert_eq!(get(H_STATUS).as_deref(), Some("429"));
        assert_eq!(get(H_RETRY_AFTER_MS).as_deref(), Some("2500"));
        assert_eq!(get("retry-after").as_deref(), Some("3"));
        assert_eq!(get("x-request-id").as_deref(), Some("rid"));
        let vendor = headers(&[("retry-after", "9"), ("x-request-id", "v")]);
        let got = annotation_headers(&p, "rid", &vendor);
        assert!(got
            .iter()
            .all(|(k, _)| k != "retry-after" && k != "x-request-id"));
        assert!(got.iter().any(|(k, v)| k == H_REQUEST_ID && v == "rid"));
    }
}
