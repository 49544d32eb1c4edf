//! Header policy, pure: what goes to the vendor and what goes back to the client (the request
//! id itself is `crate::ids`).
//!
//! No `Session`, no sockets: every function takes header values and returns header values, so
//! the rules are unit-tested here without a proxy.

use crate::framing::RequestFraming;
use crate::problem::Problem;
use crate::secret::Secret;
use http::header::{self, HeaderName};
use http::HeaderMap;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{OrErr, Result};

/// Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded in either direction.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Whether `name` is hop-by-hop: a fixed one, or listed in the message's `Connection`.
pub fn is_hop_by_hop(name: &HeaderName, listed: &[String]) -> bool {
    HOP_BY_HOP.contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
        || listed.iter().any(|l| l.eq_ignore_ascii_case(name.as_str()))
}

/// Header names listed in `Connection` (they are hop-by-hop too).
pub fn connection_listed(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty() && s != "close" && s != "keep-alive")
        .collect()
}

/// What the vendor is sent, beyond the client's end-to-end headers.
pub struct UpstreamTarget<'a> {
    /// Request method.
    pub method: &'a http::Method,
    /// Path and query on the vendor (the route's base path joined with the client's rest).
    pub path: &'a str,
    /// `Host` for the vendor.
    pub authority: &'a str,
    /// Headers the route injects (credentials); they replace the client's.
    pub inject: &'a [(HeaderName, Secret)],
    /// Client headers never sent to this vendor (`strip_request_headers`, lower-case).
    pub strip: &'a [HeaderName],
    /// Whether a body follows (adds chunked framing when the client gave none).
    pub has_body: bool,
    /// The client's framing, checked at admission (`crate::framing`).
    pub framing: crate::framing::RequestFraming,
}

/// The request header sent to the vendor: the client's end-to-end headers (no hop-by-hop,
/// `Host`, `Expect` or framing, none the route strips), the vendor's `Host`, the route's
/// injected headers, and exactly one framing header set by errgate: the client's
/// `Content-Length`, or `chunked` for a chunked (or, on HTTP/2, unframed) body.
pub fn upstream_request(req: &RequestHeader, to: &UpstreamTarget<'_>) -> Result<RequestHeader> {
    let listed = connection_listed(&req.headers);
    let mut up = RequestHeader::build(
        to.method.clone(),
        to.path.as_bytes(),
        Some(req.headers.len() + 2),
    )?;
    for (name, value) in req.headers.iter() {
        if is_hop_by_hop(name, &listed)
            || name == header::HOST
            || name == header::EXPECT
            || name == crate::mode::RETRY_CONTROL
            || to.strip.contains(name)
            || name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        up.append_header(name.clone(), value.clone())?;
    }
    // The client's `Host` was skipped above: appended, not inserted (no removal to do).
    up.append_header(header::HOST, to.authority)?;
    for (k, v) in to.inject {
        up.insert_header(k.clone(), v.expose().clone())?;
    }
    match to.framing {
        RequestFraming::Length(n) => {
            up.insert_header(header::CONTENT_LENGTH, n)?;
        }
        RequestFraming::Chunked => {
            up.insert_header(header::TRANSFER_ENCODING, "chunked")?;
        }
        RequestFraming::None if to.has_body => {
            up.insert_header(header::TRANSFER_ENCODING, "chunked")?;
        }
        RequestFraming::None => {}
    }
    Ok(up)
}

/// The response header sent to the client for a pass-through: the vendor's, minus hop-by-hop
/// (takes it by value: the held path owns its copy already).
pub fn client_header(mut out: Box<ResponseHeader>) -> Box<ResponseHeader> {
    let listed = connection_listed(&out.headers);
    // Most vendor responses carry no hop-by-hop header at all: nothing to collect then.
    if !out.headers.keys().any(|n| is_hop_by_hop(n, &listed)) {
        return out;
    }
    let remove: Vec<HeaderName> = out
        .headers
        .keys()
        .filter(|n| is_hop_by_hop(n, &listed))
        .cloned()
        .collect();
    for n in remove {
        out.remove_header(&n);
    }
    out
}

/// Vendor response headers that do not ride along on a problem answer: framing and
/// representation metadata of the vendor's body (which the problem body replaces), and the
/// headers errgate sets itself (`Retry-After` is the canonical hint, present only when the
/// error is retryable).
const NOT_KEPT_ON_PROBLEM: &[HeaderName] = &[
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LOCATION,
    header::CONTENT_RANGE,
    header::CONTENT_DISPOSITION,
    header::CONTENT_SECURITY_POLICY,
    header::TRANSFER_ENCODING,
    header::ETAG,
    header::LAST_MODIFIED,
    header::ACCEPT_RANGES,
    header::CACHE_CONTROL,
    header::EXPIRES,
    header::RETRY_AFTER,
    header::DATE,
];

/// The vendor's end-to-end response headers kept on a problem answer (rate-limit headers such
/// as `X-RateLimit-*` and `RateLimit-*`, vendor request ids, cookies): everything except
/// hop-by-hop headers, the body's framing and representation headers, `Content-*`, and the
/// headers errgate sets itself (`Retry-After`, `Cache-Control`, `X-Request-Id`).
pub fn vendor_end_to_end(h: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(h);
    let mut out = HeaderMap::new();
    for (name, value) in h {
        // The cheap `content-` prefix test first: it drops the most common vendor headers
        // (`Content-Type`, `Content-Length`) before the list comparisons. `HeaderName`s are
        // lower-case, so the request id compares as is.
        if name.as_str().starts_with("content-")
            || is_hop_by_hop(name, &listed)
            || NOT_KEPT_ON_PROBLEM.contains(name)
            || name.as_str() == crate::ids::REQUEST_ID_HEADER
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Room in a problem answer's header map: errgate's own headers (at most 6 with `Allow`),
/// Pingora's `Date` and `Connection`, and a few vendor rate-limit headers, without regrowing.
const PROBLEM_HEADER_CAPACITY: usize = 12;

/// The response header of a problem answer with a body of `body_len` bytes.
///
/// Built as a plain `http` header map and converted (`ResponseHeader::from(Parts)`, no
/// case-preserving name map) rather than with `ResponseHeader::build` + `insert_header`: that
/// keeps a second map of names and re-parses every `HeaderName` from bytes, about 3 K
/// instructions per error answer (issue #10). The wire bytes are the same: Pingora writes the
/// standard names title-cased (`Content-Type`) in both forms and the others as given, and
/// errgate's names are lower-case `HeaderName`s either way.
pub fn problem_header(p: &Problem, request_id: &str, body_len: usize) -> Result<ResponseHeader> {
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = http::StatusCode::from_u16(p.status)
        .or_err(pingora::ErrorType::InvalidHTTPHeader, "invalid status")?;
    let mut headers = HeaderMap::with_capacity(PROBLEM_HEADER_CAPACITY);
    let mut full = false;
    p.each_response_header(request_id, |k, v| {
        full |= headers.try_insert(k, v).is_err();
    });
    // Digits copied into an exact-size value rather than `HeaderValue::from(usize)`, which
    // formats into a 20-byte buffer and shrinks it when frozen (about 300 instructions more).
    let length = http::HeaderValue::from_str(itoa::Buffer::new().format(body_len)).or_err(
        pingora::ErrorType::InvalidHTTPHeader,
        "invalid content length",
    )?;
    full |= headers.try_insert(header::CONTENT_LENGTH, length).is_err();
    if full {
        return pingora::Error::e_explain(
            pingora::ErrorType::InvalidHTTPHeader,
            "problem header map full",
        );
    }
    parts.headers = headers;
    Ok(ResponseHeader::from(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/x", None).expect("request");
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).expect("header");
        }
        r
    }

    #[test]
    fn upstream_request_drops_hop_by_hop_and_listed_headers() {
        let r = req(&[
            ("connection", "x-private, close"),
            ("x-private", "1"),
            ("keep-alive", "5"),
            ("te", "trailers"),
            ("host", "client.example"),
            ("expect", "100-continue"),
            ("x-keep", "yes"),
        ]);
        let inject = [(
            HeaderName::from_static("authorization"),
            Secret::new(http::HeaderValue::from_static("Bearer k")),
        )];
        let up = upstream_request(
            &r,
            &UpstreamTarget {
                method: &http::Method::POST,
                path: "/base/x?q=1",
                authority: "vendor.example",
                inject: &inject,
                strip: &[],
                has_body: true,
                framing: RequestFraming::None,
            },
        )
        .expect("upstream request");
        assert_eq!(up.uri.to_string(), "/base/x?q=1");
        assert_eq!(up.method, http::Method::POST);
        for gone in ["connection", "x-private", "keep-alive", "te", "expect"] {
            assert!(up.headers.get(gone).is_none(), "{gone} forwarded");
        }
        assert_eq!(up.headers["host"], "vendor.example");
        assert_eq!(up.headers["x-keep"], "yes");
        assert_eq!(up.headers["authorization"], "Bearer k");
        assert_eq!(up.headers["transfer-encoding"], "chunked");
    }

    #[test]
    fn injected_header_replaces_the_clients() {
        let r = req(&[("authorization", "Bearer client")]);
        let inject = [(
            HeaderName::from_static("authorization"),
            Secret::new(http::HeaderValue::from_static("Bearer gateway")),
        )];
        let up = upstream_request(
            &r,
            &UpstreamTarget {
                method: &http::Method::GET,
                path: "/",
                authority: "v",
                inject: &inject,
                strip: &[],
                has_body: false,
                framing: RequestFraming::None,
            },
        )
        .expect("upstream request");
        let all: Vec<_> = up.headers.get_all("authorization").iter().collect();
        assert_eq!(all, ["Bearer gateway"]);
        assert!(up.headers.get("transfer-encoding").is_none());
    }

    #[test]
    fn stripped_headers_are_not_forwarded_but_injected_ones_are() {
        let r = req(&[
            ("cookie", "s=1"),
            ("x-internal-auth", "t"),
            ("x-api-key", "client"),
            ("x-keep", "1"),
        ]);
        let strip = [
            HeaderName::from_static("cookie"),
            HeaderName::from_static("x-internal-auth"),
            HeaderName::from_static("x-api-key"),
        ];
        let inject = [(
            HeaderName::from_static("x-api-key"),
            Secret::new(http::HeaderValue::from_static("gateway")),
        )];
        let up = upstream_request(
            &r,
            &UpstreamTarget {
                method: &http::Method::GET,
                path: "/",
                authority: "v",
                inject: &inject,
                strip: &strip,
                has_body: false,
                framing: RequestFraming::None,
            },
        )
        .expect("upstream request");
        assert!(up.headers.get("cookie").is_none());
        assert!(up.headers.get("x-internal-auth").is_none());
        assert_eq!(up.headers["x-api-key"], "gateway");
        assert_eq!(up.headers["x-keep"], "1");
    }

    #[test]
    fn the_vendor_gets_exactly_one_framing_header() {
        let r = req(&[("content-length", "3"), ("transfer-encoding", "chunked")]);
        let up = |framing, has_body| {
            upstream_request(
                &r,
                &UpstreamTarget {
                    method: &http::Method::POST,
                    path: "/",
                    authority: "v",
                    inject: &[],
                    strip: &[],
                    has_body,
                    framing,
                },
            )
            .expect("upstream request")
        };
        let framing = |h: &RequestHeader| {
            (
                h.headers.get_all("content-length").iter().count(),
                h.headers.get_all("transfer-encoding").iter().count(),
            )
        };
        let l = up(RequestFraming::Length(3), true);
        assert_eq!(framing(&l), (1, 0));
        assert_eq!(l.headers["content-length"], "3");
        assert_eq!(framing(&up(RequestFraming::Chunked, true)), (0, 1));
        assert_eq!(framing(&up(RequestFraming::None, true)), (0, 1));
        assert_eq!(framing(&up(RequestFraming::None, false)), (0, 0));
    }

    #[test]
    fn client_header_drops_hop_by_hop() {
        let mut r = ResponseHeader::build(200, None).expect("response");
        r.append_header("connection", "x-hop").expect("h");
        r.append_header("x-hop", "1").expect("h");
        r.append_header("set-cookie", "a=1").expect("h");
        r.append_header("set-cookie", "b=2").expect("h");
        let out = client_header(Box::new(r));
        assert!(out.headers.get("connection").is_none());
        assert!(out.headers.get("x-hop").is_none());
        assert_eq!(out.headers.get_all("set-cookie").iter().count(), 2);
    }

    /// The header as `ResponseHeader::build` + `insert_header` made it before (the reference).
    fn problem_header_case_preserving(p: &Problem, request_id: &str, len: usize) -> ResponseHeader {
        let mut h = ResponseHeader::build(p.status, Some(6)).expect("header");
        for (name, value) in p.response_headers(request_id) {
            h.insert_header(name, value).expect("insert");
        }
        h.insert_header(header::CONTENT_LENGTH, len)
            .expect("insert");
        h
    }

    #[test]
    fn problem_header_wire_bytes_are_those_of_the_case_preserving_build() {
        let mut vendor = HeaderMap::new();
        vendor.append("x-ratelimit-remaining", "0".parse().expect("v"));
        vendor.append(header::SERVER, "vendor".parse().expect("v"));
        vendor.append(header::SET_COOKIE, "a=1".parse().expect("v"));
        vendor.append(header::SET_COOKIE, "b=2".parse().expect("v"));
        let mut no_allow = Problem::cooldown("r", 1500);
        no_allow.allow = None;
        for (p, rid) in [
            (Problem::cooldown("r", 1500), "rid"),
            (Problem::upstream_timeout("r", "slow"), "01J0ABC"),
            (Problem::method_not_allowed("TRACE", "GET"), "bad\nid"),
            (no_allow, ""),
        ] {
            let mut fast = problem_header(&p, rid, 123).expect("header");
            let mut slow = problem_header_case_preserving(&p, rid, 123);
            for h in [&mut fast, &mut slow] {
                // What `serve::answer_with` and Pingora add afterwards.
                for (k, v) in &vendor {
                    h.append_header(k.clone(), v.clone()).expect("append");
                }
                if let Some(allow) = &p.allow {
                    h.insert_header(header::ALLOW, allow.as_str())
                        .expect("allow");
                }
                h.insert_header(header::DATE, "Mon, 30 Nov 2026 13:00:00 GMT")
                    .expect("date");
                h.insert_header(header::CONNECTION, "keep-alive")
                    .expect("connection");
            }
            let (mut a, mut b) = (bytes::BytesMut::new(), bytes::BytesMut::new());
            fast.header_to_h1_wire(&mut a);
            slow.header_to_h1_wire(&mut b);
            assert_eq!(
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b),
                "{p:?}"
            );
            assert_eq!(fast.status, slow.status);
            assert_eq!(fast.version, slow.version);
            assert!(String::from_utf8_lossy(&a).starts_with(
                "Content-Type: application/problem+json\r\nCache-Control: no-store\r\n"
            ));
        }
    }

    #[test]
    fn problem_header_carries_type_length_and_id() {
        let p = Problem::cooldown("r", 1500);
        let h = problem_header(&p, "rid", 10).expect("header");
        assert_eq!(h.status.as_u16(), 429);
        assert_eq!(h.headers["content-type"], crate::problem::CONTENT_TYPE);
        assert_eq!(h.headers["content-length"], "10");
        assert_eq!(h.headers["retry-after"], "2");
        assert_eq!(h.headers["x-request-id"], "rid");
    }
}
