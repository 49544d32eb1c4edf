//! Request header settings of a route: the headers removed before the vendor
//! (`strip_request_headers`) and the headers errgate sets (`upstream_headers`, whose values may
//! be secrets from the environment or a file).
//!
//! Each function returns its value and pushes `(place, message)` problems; messages name the
//! variable or file, never a secret value.

use crate::secret::{FileSecret, Secret};
use http::HeaderName;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Request headers removed before the vendor unless `strip_request_headers` says otherwise:
/// context that belongs to the calling company, not to a third party. Trace context
/// (`traceparent`, `tracestate`, `baggage`: internal span ids and whatever services put in
/// baggage), cookies (internal sessions), and the proxy headers that reveal internal addresses
/// and host names (`forwarded`, `x-forwarded-*`, `x-real-ip`). `X-Request-Id` is kept: an
/// opaque id the vendor may log, which helps when a support ticket quotes it. `Authorization`
/// is kept: clients that hold their own vendor key send it there.
pub const DEFAULT_STRIP_REQUEST_HEADERS: &[&str] = &[
    "cookie",
    "traceparent",
    "tracestate",
    "baggage",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// A header list problem: (place, message).
pub type Problem = (String, String);

/// Header names of a `strip_request_headers` list, lower-cased, without duplicates.
pub fn strip_list(names: &[String], place: &str, problems: &mut Vec<Problem>) -> Vec<HeaderName> {
    let mut out: Vec<HeaderName> = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        match HeaderName::from_bytes(n.trim().as_bytes()) {
            Ok(h) if !out.contains(&h) => out.push(h),
            Ok(_) => {}
            Err(_) => problems.push((
                format!("{place}[{i}]"),
                format!("`{n}` is not a valid header name"),
            )),
        }
    }
    out
}

/// The default strip list.
pub fn default_strip_list() -> Vec<HeaderName> {
    DEFAULT_STRIP_REQUEST_HEADERS
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect()
}

/// A route's effective strip list: the top-level list plus the route's own additions.
pub fn route_strip_list(top: &[HeaderName], route: &[HeaderName]) -> Vec<HeaderName> {
    let mut out = top.to_vec();
    for h in route {
        if !out.contains(h) {
            out.push(h.clone());
        }
    }
    out
}

/// Resolved `upstream_headers`, and the secret files they were read from.
#[derive(Debug, Default)]
pub struct UpstreamHeaders {
    /// Header name and value, in the config's order.
    pub headers: Vec<(HeaderName, Secret)>,
    /// Files read (`{file: PATH}` values), for the reloader to hash and watch.
    pub files: Vec<PathBuf>,
}

/// Resolves a route's `upstream_headers` (`env` looks variables up).
pub fn upstream_headers(
    map: &BTreeMap<String, FileSecret>,
    place: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> UpstreamHeaders {
    let mut out = UpstreamHeaders::default();
    for (k, v) in map {
        let p = format!("{place}.{k}");
        if let Some(f) = v.file() {
            out.files.push(f.to_path_buf());
        }
        let name = match HeaderName::from_bytes(k.as_bytes()) {
            Ok(n) => n,
            Err(_) => {
                problems.push((p, format!("`{k}` is not a valid header name")));
                continue;
            }
        };
        match v.resolve(env) {
            Ok(s) => out.headers.push((name, s)),
            Err(e) => problems.push((p, e.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_lists_lowercase_dedupe_and_report_bad_names() {
        let mut p = Vec::new();
        let l = strip_list(
            &[
                "X-Internal-Auth".into(),
                "x-internal-auth".into(),
                "bad name".into(),
            ],
            "routes[0].strip_request_headers",
            &mut p,
        );
        assert_eq!(l, vec![HeaderName::from_static("x-internal-auth")]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "routes[0].strip_request_headers[2]");
    }

    #[test]
    fn route_lists_add_to_the_top_level_one() {
        let top = default_strip_list();
        let r = route_strip_list(&top, &[HeaderName::from_static("x-a"), top[0].clone()]);
        assert_eq!(r.len(), top.len() + 1);
        assert!(r.contains(&HeaderName::from_static("cookie")));
        assert!(r.contains(&HeaderName::from_static("x-a")));
    }

    #[test]
    fn upstream_headers_resolve_and_name_what_is_missing() {
        let mut map = BTreeMap::new();
        map.insert("X-Lit".to_string(), FileSecret::Literal("v".into()));
        map.insert(
            "Authorization".to_string(),
            FileSecret::Env {
                env: "TOKEN".into(),
            },
        );
        map.insert(
            "X-Key".to_string(),
            FileSecret::File {
                file: "/nonexistent/errgate-key".into(),
            },
        );
        let mut p = Vec::new();
        let env = |n: &str| (n == "TOKEN").then(|| "Bearer t".to_string());
        let h = upstream_headers(&map, "routes[0].upstream_headers", &env, &mut p);
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.files, vec![PathBuf::from("/nonexistent/errgate-key")]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "routes[0].upstream_headers.X-Key");
        assert!(p[0].1.contains("/nonexistent/errgate-key"), "{}", p[0].1);
        let mut p = Vec::new();
        upstream_headers(&map, "r", &|_| None, &mut p);
        assert!(p
            .iter()
            .any(|(pl, m)| pl == "r.Authorization" && m.contains("TOKEN")));
    }
}
