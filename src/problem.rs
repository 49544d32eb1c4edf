//! RFC 9457 problem+json: the one wire format for every error that leaves errgate.
//!
//! Invariants: `status` in the body equals the HTTP status; `type` is stable per
//! (domain, reason); `title` is stable per reason; `Retry-After` (whole seconds, rounded up,
//! at least 1) is sent exactly when `retry_after_ms` is present. Pure: no I/O, no clock.

use crate::json_out::{json_int, json_opt_str, json_str, needs_escape};
use http::{HeaderName, HeaderValue};
use serde::Serialize;

/// `Content-Type` of every canonical error response.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// Default base of the `type` URI; configurable with `problem_type_base`.
pub const DEFAULT_TYPE_BASE: &str = "https://errgate.dev/problems";

/// The domain of errors errgate makes itself.
pub const GATEWAY_DOMAIN: &str = "errgate";

/// Canonical error codes (google.rpc.Code, AIP-193).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Code {
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Code {
    /// Every code, for tests and for `check` messages.
    pub const ALL: [Code; 16] = [
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The code's name as on the wire and in metrics, e.g. `NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// Parses a code name (`NOT_FOUND`).
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The HTTP status a code gets unless its catalog entry overrides it (contract §2).
    pub fn default_status(self) -> u16 {
        match self {
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::Unauthenticated => 401,
            Code::PermissionDenied => 403,
            Code::NotFound => 404,
            Code::Aborted | Code::AlreadyExists => 409,
            Code::ResourceExhausted => 429,
            Code::Cancelled => 499,
            Code::Internal | Code::DataLoss | Code::Unknown => 500,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::DeadlineExceeded => 504,
        }
    }

    /// The code an HTTP error status stands for when nothing more is known (AIP-193 mapping).
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::NotFound,
            409 => Code::Aborted,
            412 => Code::FailedPrecondition,
            416 => Code::OutOfRange,
            429 => Code::ResourceExhausted,
            499 => Code::Cancelled,
            501 => Code::Unimplemented,
            502 | 503 => Code::Unavailable,
            504 => Code::DeadlineExceeded,
            405..=499 => Code::FailedPrecondition,
            500..=599 => Code::Internal,
            _ => Code::Unknown,
        }
    }

    /// Whether a client may retry an error of this code unchanged, when the catalog does not say.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            Code::Unavailable | Code::DeadlineExceeded | Code::Aborted
        )
    }
}

/// What the vendor said, echoed in `upstream`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upstream {
    /// The vendor's HTTP status.
    pub status: u16,
    /// The vendor's code as a string, `None` if it has none.
    pub code: Option<String>,
    /// The vendor's message verbatim, `None` if none.
    pub message: Option<String>,
}

/// One canonical error, before it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// HTTP status sent, equal to `status` in the body.
    pub status: u16,
    /// Short English summary, stable per reason.
    pub title: String,
    /// English explanation of this occurrence.
    pub detail: String,
    /// Canonical code.
    pub code: Code,
    /// UPPER_SNAKE_CASE, unique within the domain.
    pub reason: String,
    /// Vendor id, or `errgate`.
    pub domain: String,
    /// Whether the same request may succeed later.
    pub retryable: bool,
    /// Retry hint in milliseconds, already capped; `None` when no hint is known.
    pub retry_after_ms: Option<u64>,
    /// What the vendor said; `None` for errors errgate made itself.
    pub upstream: Option<Upstream>,
    /// Field-level problems the vendor listed, when it did.
    pub errors: Option<serde_json::Value>,
    /// The `Allow` header of a 405 answer.
    pub allow: Option<String>,
    /// What went wrong in library words (socket addresses, TLS names, OS errors): written to the
    /// log with the request id, never to the client.
    pub internal: Option<String>,
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'static str,
    reason: &'a str,
    domain: &'a str,
    retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    upstream: &'a Option<Upstream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: &'a Option<serde_json::Value>,
    request_id: &'a str,
}

// === impl Problem ===

impl Problem {
    /// An error errgate made itself (domain `errgate`, no `upstream`).
    pub fn own(code: Code, status: u16, reason: &str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            title: title_for_reason(reason),
            detail: detail.into(),
            code,
            reason: reason.to_string(),
            domain: GATEWAY_DOMAIN.to_string(),
            retryable: code.default_retryable(),
            retry_after_ms: None,
            upstream: None,
            errors: None,
            allow: None,
            internal: None,
        }
    }

    /// This problem with library words for the log (see [`Problem::internal`]).
    pub fn with_internal(mut self, internal: impl Into<String>) -> Problem {
        self.internal = Some(internal.into());
        self
    }

    /// No route matches the request (404).
    pub fn no_route(path: &str) -> Problem {
        Problem::own(
            Code::NotFound,
            404,
            "NO_ROUTE",
            format!("No route matches the path {}.", truncate_chars(path, 200)),
        )
    }

    /// The vendor could not be reached (502, retryable). `why` (resolver, socket or TLS text)
    /// goes to the log only: the client gets a fixed sentence.
    pub fn upstream_unavailable(route: &str, why: &str) -> Problem {
        Problem::own(
            Code::Unavailable,
            502,
            "UPSTREAM_UNAVAILABLE",
            format!(
                "The vendor of route {route} could not be reached; the request was not \
                 answered. Retry later; errgate's log has the cause under this request_id."
            ),
        )
        .with_internal(why)
    }

    /// The vendor broke the exchange after it started (502, retryable). `why` goes to the log
    /// only.
    pub fn upstream_reset(route: &str, why: &str) -> Problem {
        Problem::own(
            Code::Unavailable,
            502,
            "UPSTREAM_RESET",
            format!(
                "The vendor of route {route} broke the connection before answering; the \
                 request may have reached it. errgate's log has the cause under this request_id."
            ),
        )
        .with_internal(why)
    }

    /// The vendor answered too slowly (504, retryable). `what` goes to the log only.
    pub fn upstream_timeout(route: &str, what: &str) -> Problem {
        Problem::own(
            Code::DeadlineExceeded,
            504,
            "UPSTREAM_TIMEOUT",
            format!(
                "The vendor of route {route} did not answer in time; the request may have \
                 reached it."
            ),
        )
        .with_internal(what)
    }

    /// The request body is larger than `max_request_body_bytes` (413).
    pub fn request_too_large(limit: u64) -> Problem {
        let mut p = Problem::own(
            Code::InvalidArgument,
            413,
            "REQUEST_TOO_LARGE",
            format!("The request body is larger than the limit of {limit} bytes."),
        );
        p.retryable = false;
        p
    }

    /// The request could not be read or forwarded as HTTP (400).
    pub fn malformed_request(why: &str) -> Problem {
        Problem::own(
            Code::InvalidArgument,
            400,
            "MALFORMED_REQUEST",
            format!("The request is malformed: {why}."),
        )
    }

    /// The request path would leave the route's upstream base path, or uses encoded separators
    /// (400, see `confine`).
    pub fn path_not_allowed(why: crate::confine::PathRejection) -> Problem {
        let mut p = Problem::own(
            Code::InvalidArgument,
            400,
            "PATH_NOT_ALLOWED",
            format!(
                "The request path is not allowed: {why}. Send a path under the route's prefix \
                 without dot segments that climb above it, encoded slashes or backslashes."
            ),
        );
        p.retryable = false;
        p
    }

    /// The route does not allow the request's method (405; the answer carries `Allow`).
    pub fn method_not_allowed(method: &str, allow: &str) -> Problem {
        let mut p = Problem::method_not_allowed_inner(method, allow);
        p.allow = Some(allow.to_string());
        p
    }

    fn method_not_allowed_inner(method: &str, allow: &str) -> Problem {
        let mut p = Problem::own(
            Code::FailedPrecondition,
            405,
            "METHOD_NOT_ALLOWED",
            format!(
                "The method {} is not allowed on this route; allowed: {allow}.",
                truncate_chars(method, 32)
            ),
        );
        p.retryable = false;
        p
    }

    /// The client stopped sending its request body for longer than `downstream.read_timeout`
    /// (408; the vendor connection, if any, is closed, and the request is never resent).
    pub fn client_timeout(what: &str) -> Problem {
        let mut p = Problem::own(
            Code::DeadlineExceeded,
            408,
            "CLIENT_TIMEOUT",
            format!("The client was too slow: {what}."),
        );
        p.retryable = false;
        p
    }

    /// The client connection is over `downstream.max_connections` (503, retryable soon; the
    /// connection is closed after this answer).
    pub fn too_many_connections(max: usize) -> Problem {
        let mut p = Problem::own(
            Code::Unavailable,
            503,
            "TOO_MANY_CONNECTIONS",
            format!("errgate is serving its limit of {max} client connections; retry shortly on a new connection."),
        );
        p.retry_after_ms = Some(1000);
        p
    }

    /// The vendor asked to hold traffic back and the hold has not expired (429).
    pub fn cooldown(route: &str, remaining_ms: u64) -> Problem {
        let mut p = Problem::own(
            Code::ResourceExhausted,
            429,
            "UPSTREAM_COOLDOWN",
            format!(
                "The vendor of route {route} asked to hold back traffic; errgate answers for it \
                 until the hint expires."
            ),
        );
        p.retryable = true;
        p.retry_after_ms = Some(remaining_ms);
        p
    }

    /// `Retry-After` header value: whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_ms.map(|ms| ms.div_ceil(1000).max(1))
    }

    /// The response head of this problem's answer, in order: `Content-Type`, `Cache-Control`,
    /// `Retry-After` (when a hint is known), `X-Request-Id`. The one renderer: the proxy writes
    /// it (adding `Content-Length`), `explain` and `normalize` print it. The status is
    /// `self.status`. A request id that is not a valid header value is left out (errgate's own
    /// ids always are).
    pub fn response_headers(&self, request_id: &str) -> Vec<(HeaderName, HeaderValue)> {
        let mut h = Vec::with_capacity(4);
        self.each_response_header(request_id, |k, v| h.push((k, v)));
        h
    }

    /// [`Problem::response_headers`] handed one by one to `f`, in the same order: the proxy
    /// puts them straight into its header map without a `Vec` in between.
    pub fn each_response_header(
        &self,
        request_id: &str,
        mut f: impl FnMut(HeaderName, HeaderValue),
    ) {
        // Constants, so the names and values are checked at compile time, not per answer.
        const CONTENT_TYPE_VALUE: HeaderValue = HeaderValue::from_static(CONTENT_TYPE);
        const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
        f(http::header::CONTENT_TYPE, CONTENT_TYPE_VALUE);
        f(http::header::CACHE_CONTROL, NO_STORE);
        if let Some(secs) = self.retry_after_secs() {
            f(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            f(crate::ids::REQUEST_ID.clone(), v);
        }
    }

    /// The answer as text, the way `explain` and `normalize` print it: `HTTP <status>`, the
    /// [`Problem::response_headers`], a blank line, the pretty JSON body.
    pub fn to_text(&self, type_base: &str, request_id: &str) -> String {
        let mut out = format!("HTTP {}\n", self.status);
        for (k, v) in self.response_headers(request_id) {
            out.push_str(&canonical_header_case(k.as_str()));
            out.push_str(": ");
            out.push_str(&String::from_utf8_lossy(v.as_bytes()));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(
            &self.to_json_pretty(type_base, request_id),
        ));
        out
    }

    /// The `type` URI: `{base}/{domain}/{reason in kebab case}`.
    pub fn type_uri(&self, base: &str) -> String {
        let mut s = String::with_capacity(base.len() + self.domain.len() + self.reason.len() + 2);
        s.push_str(base.trim_end_matches('/'));
        s.push('/');
        s.push_str(&self.domain);
        s.push('/');
        for c in self.reason.chars() {
            s.push(if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            });
        }
        s
    }

    fn wire<'a>(&'a self, type_base: &str, request_id: &'a str) -> Wire<'a> {
        Wire {
            type_uri: self.type_uri(type_base),
            title: &self.title,
            status: self.status,
            detail: &self.detail,
            code: self.code.as_str(),
            reason: &self.reason,
            domain: &self.domain,
            retryable: self.retryable,
            retry_after_ms: self.retry_after_ms,
            upstream: &self.upstream,
            errors: &self.errors,
            request_id,
        }
    }

    /// The JSON body, compact (what the proxy sends).
    ///
    /// Hand-written rather than `serde_json::to_writer(&self.wire(..))`: this runs on every error
    /// answer, and the derive's per-field serializer calls and the `type` URI's own `String` cost
    /// about 4 K instructions a request (issue #10). The bytes are exactly serde_json's compact
    /// output (same key order, same escaping: strings that need escaping and the `errors` value
    /// still go through serde_json); `to_json_matches_serde_json` checks it over varied problems.
    pub fn to_json(&self, type_base: &str, request_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            256 + self.title.len()
                + self.detail.len()
                + type_base.len()
                + 2 * self.reason.len()
                + request_id.len(),
        );
        out.extend_from_slice(b"{\"type\":");
        self.type_uri_json(&mut out, type_base);
        out.extend_from_slice(b",\"title\":");
        json_str(&mut out, &self.title);
        out.extend_from_slice(b",\"status\":");
        json_int(&mut out, self.status);
        out.extend_from_slice(b",\"detail\":");
        json_str(&mut out, &self.detail);
        out.extend_from_slice(b",\"code\":\"");
        // Code names are plain ASCII capitals and underscores: nothing to escape.
        out.extend_from_slice(self.code.as_str().as_bytes());
        out.extend_from_slice(b"\",\"reason\":");
        json_str(&mut out, &self.reason);
        out.extend_from_slice(b",\"domain\":");
        json_str(&mut out, &self.domain);
        out.extend_from_slice(if self.retryable {
            b",\"retryable\":true"
        } else {
            b",\"retryable\":false"
        });
        if let Some(ms) = self.retry_after_ms {
            out.extend_from_slice(b",\"retry_after_ms\":");
            json_int(&mut out, ms);
        }
        out.extend_from_slice(b",\"upstream\":");
        match &self.upstream {
            None => out.extend_from_slice(b"null"),
            Some(u) => {
                out.extend_from_slice(b"{\"status\":");
                json_int(&mut out, u.status);
                out.extend_from_slice(b",\"code\":");
                json_opt_str(&mut out, u.code.as_deref());
                out.extend_from_slice(b",\"message\":");
                json_opt_str(&mut out, u.message.as_deref());
                out.push(b'}');
            }
        }
        if let Some(errors) = &self.errors {
            out.extend_from_slice(b",\"errors\":");
            // An already-valid Value written into a Vec cannot fail; on the impossible error the
            // field would be cut, so fall back to the serde path for the whole body.
            if serde_json::to_writer(&mut out, errors).is_err() {
                return self.to_json_serde(type_base, request_id);
            }
        }
        out.extend_from_slice(b",\"request_id\":");
        json_str(&mut out, request_id);
        out.push(b'}');
        out
    }

    /// The `type` URI as a JSON string, written in place (no intermediate `String` unless a part
    /// needs escaping).
    fn type_uri_json(&self, out: &mut Vec<u8>, base: &str) {
        let base = base.trim_end_matches('/');
        if needs_escape(base) || needs_escape(&self.domain) || needs_escape(&self.reason) {
            json_str(out, &self.type_uri(base));
            return;
        }
        out.push(b'"');
        out.extend_from_slice(base.as_bytes());
        out.push(b'/');
        out.extend_from_slice(self.domain.as_bytes());
        out.push(b'/');
        // `type_uri`'s kebab case, byte-wise: `to_ascii_lowercase` leaves non-ASCII bytes alone,
        // so the UTF-8 stays valid.
        out.extend(self.reason.bytes().map(|b| {
            if b == b'_' {
                b'-'
            } else {
                b.to_ascii_lowercase()
            }
        }));
        out.push(b'"');
    }

    /// The compact body through serde (the reference `to_json` must match).
    fn to_json_serde(&self, type_base: &str, request_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        // Serializing plain strings, numbers and an already-valid Value cannot fail.
        match serde_json::to_writer(&mut out, &self.wire(type_base, request_id)) {
            Ok(()) => out,
            Err(_) => b"{}".to_vec(),
        }
    }

    /// The JSON body, indented for people (`explain`, `normalize`).
    pub fn to_json_pretty(&self, type_base: &str, request_id: &str) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.wire(type_base, request_id))
            .unwrap_or_else(|_| b"{}".to_vec())
    }
}

/// A stable English title from a reason: `MEMBER_NOT_FOUND` -> `Member not found`.
pub fn title_for_reason(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for word in reason.split('_').filter(|w| !w.is_empty()) {
        if out.is_empty() {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.push(first.to_ascii_uppercase());
                out.extend(chars.map(|c| c.to_ascii_lowercase()));
            }
        } else {
            out.push(' ');
            out.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        }
    }
    out
}

/// At most `max` chars of `s`, never splitting a char.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    // A string of at most `max` bytes has at most `max` chars: no need to walk it.
    if s.len() <= max {
        return s;
    }
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `content-type` -> `Content-Type`, for printing.
fn canonical_header_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn response_head_has_type_cache_control_hint_and_id_in_order() {
        let p = Problem::cooldown("r", 1500);
        let h = p.response_headers("rid");
        let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "cache-control",
                "retry-after",
                "x-request-id"
            ]
        );
        assert_eq!(h[0].1, CONTENT_TYPE);
        assert_eq!(h[2].1, "2");
        let text = p.to_text(DEFAULT_TYPE_BASE, "rid");
        assert!(
            text.starts_with("HTTP 429\nContent-Type: application/problem+json\nCache-Control: no-store\nRetry-After: 2\nX-Request-Id: rid\n\n{"),
            "{text}"
        );
        let no_hint = Problem::upstream_timeout("r", "slow");
        assert!(no_hint
            .response_headers("rid")
            .iter()
            .all(|(k, _)| k != http::header::RETRY_AFTER));
    }

    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_at_least_one() {
        let mut p = Problem::cooldown("r", 1);
        assert_eq!(p.retry_after_secs(), Some(1));
        p.retry_after_ms = Some(1000);
        assert_eq!(p.retry_after_secs(), Some(1));
        p.retry_after_ms = Some(1001);
        assert_eq!(p.retry_after_secs(), Some(2));
        p.retry_after_ms = Some(0);
        assert_eq!(p.retry_after_secs(), Some(1));
        p.retry_after_ms = None;
        assert_eq!(p.retry_after_secs(), None);
    }

    #[test]
    fn type_uri_is_stable_per_domain_and_reason() {
        let p = Problem::no_route("/x");
        assert_eq!(
            p.type_uri("https://e.example/p/"),
            "https://e.example/p/errgate/no-route"
        );
    }

    #[test]
    fn title_is_derived_from_reason() {
        assert_eq!(title_for_reason("MEMBER_NOT_FOUND"), "Member not found");
        assert_eq!(title_for_reason("X"), "X");
    }

    #[test]
    fn body_status_equals_http_status_and_upstream_is_null_for_own_errors() {
        let p = Problem::upstream_unavailable("pk", "connection refused");
        let v: serde_json::Value =
            serde_json::from_slice(&p.to_json(DEFAULT_TYPE_BASE, "rid")).expect("valid json");
        assert_eq!(v["status"], 502);
        assert_eq!(v["code"], "UNAVAILABLE");
        assert_eq!(v["domain"], "errgate");
        assert!(v["upstream"].is_null());
        assert!(v.get("retry_after_ms").is_none());
        assert_eq!(v["request_id"], "rid");
    }

    #[test]
    fn gateway_details_carry_no_library_text() {
        let why =
            "Connection refused (os error 111) connecting to 10.1.2.3:443 sni api.vendor.example";
        for p in [
            Problem::upstream_unavailable("pk", why),
            Problem::upstream_reset("pk", why),
            Problem::upstream_timeout("pk", why),
        ] {
            let body = String::from_utf8(p.to_json(DEFAULT_TYPE_BASE, "rid")).expect("utf-8");
            for bad in [
                "refused",
                "os error",
                "10.1.2.3",
                "443",
                "api.vendor.example",
            ] {
                assert!(!body.contains(bad), "{bad} in {body}");
            }
            assert_eq!(p.internal.as_deref(), Some(why));
        }
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let p = Problem::method_not_allowed("TRACE", "GET, HEAD");
        assert_eq!(p.status, 405);
        assert_eq!(p.allow.as_deref(), Some("GET, HEAD"));
        assert!(!p.retryable);
        let v: serde_json::Value =
            serde_json::from_slice(&p.to_json(DEFAULT_TYPE_BASE, "r")).expect("json");
        assert!(v.get("allow").is_none() && v.get("internal").is_none());
    }

    fn vendor_problem(text: &str, code: Option<&str>, hint: Option<u64>) -> Problem {
        let mut p = Problem::own(Code::ResourceExhausted, 429, "RATE_LIMITED", text);
        p.domain = "open_im".to_string();
        p.title = format!("Title {text}");
        p.retry_after_ms = hint;
        p.upstream = Some(Upstream {
            status: 200,
            code: code.map(str::to_string),
            message: Some(text.to_string()),
        });
        p
    }

    #[test]
    fn to_json_matches_serde_json() {
        let texts = [
            "",
            "plain",
            "quote \" and backslash \\ and slash /",
            "controls \u{0} \u{1} \u{8} \t \n \u{b} \u{c} \r \u{1f} del \u{7f}",
            "unicode é ü 中文 \u{2028} \u{2029} 🦀 \u{FFFD}",
            "</script><b>&amp;</b>",
        ];
        let mut problems = vec![
            Problem::no_route("/x"),
            Problem::cooldown("r", 1500),
            Problem::method_not_allowed("TRACE", "GET, HEAD"),
            Problem::upstream_timeout("pk", "slow"),
            Problem::request_too_large(10),
        ];
        for t in texts {
            problems.push(vendor_problem(t, Some(t), Some(0)));
            problems.push(vendor_problem(t, None, None));
            problems.push(vendor_problem(t, Some("1501"), Some(u64::MAX)));
            let mut p = Problem::own(Code::Internal, 500, t, t);
            p.reason = format!("{t}_X_y");
            p.domain = t.to_string();
            problems.push(p);
        }
        let mut with_errors = vendor_problem("e", Some("E"), None);
        with_errors.errors = Some(serde_json::json!([
            {"field": "name", "message": "too \"long\"\n", "n": 1.5, "ok": true, "x": null},
            {"field": "é🦀", "nested": {"b": [1, 2, {"c": "\u{1}"}], "a": -0.0}}
        ]));
        problems.push(with_errors);
        let mut empty_errors = vendor_problem("e", None, Some(7));
        empty_errors.errors = Some(serde_json::json!([]));
        problems.push(empty_errors);
        for p in &problems {
            for base in [
                DEFAULT_TYPE_BASE,
                "https://e.example/p/",
                "",
                "https://e.example/\"q\"\\",
            ] {
                for rid in ["rid", "", "a\"b", "01J0ABCDEF-é"] {
                    let fast = p.to_json(base, rid);
                    let serde = p.to_json_serde(base, rid);
                    assert_eq!(
                        String::from_utf8_lossy(&fast),
                        String::from_utf8_lossy(&serde),
                        "{p:?} base={base:?} rid={rid:?}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn to_json_matches_serde_json_for_any_text(
            title in ".*",
            detail in ".*",
            reason in ".*",
            domain in ".*",
            code in proptest::option::of(".*"),
            message in proptest::option::of(".*"),
            rid in ".*",
            base in ".*",
            status in proptest::num::u16::ANY,
            hint in proptest::option::of(proptest::num::u64::ANY),
            retryable in proptest::bool::ANY,
            own in proptest::bool::ANY,
        ) {
            let mut p = Problem::own(Code::Unavailable, status, &reason, detail);
            p.title = title;
            p.reason = reason;
            p.domain = domain;
            p.retryable = retryable;
            p.retry_after_ms = hint;
            if !own {
                p.upstream = Some(Upstream { status, code, message });
            }
            proptest::prop_assert_eq!(p.to_json(&base, &rid), p.to_json_serde(&base, &rid));
        }
    }

    #[test]
    fn every_code_round_trips_its_name() {
        for c in Code::ALL {
            assert_eq!(Code::parse(c.as_str()), Some(c));
        }
        assert_eq!(Code::parse("NOPE"), None);
    }

    #[test]
    fn truncate_never_splits_a_char() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("ab", 5), "ab");
    }
}
