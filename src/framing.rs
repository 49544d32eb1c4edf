//! Request framing: what reaches the vendor has exactly one framing, and a client's ambiguous
//! framing is refused with 400 before the vendor sees anything.
//!
//! Pingora's H1 reader (0.9.1, `v1/server.rs::read_request` + `validate_request`) already
//! rejects differing `Content-Length` values, unparseable ones, `Transfer-Encoding` on HTTP/1.0,
//! a final transfer coding other than `chunked`, multiple `Host` fields and absolute-form targets
//! whose authority differs from `Host`; it *accepts* `Content-Length` together with
//! `Transfer-Encoding` (removing the `Content-Length`), identical duplicate or comma-listed
//! `Content-Length` values, and codings before `chunked` (`gzip, chunked`). errgate refuses those
//! too ([`check_request_framing`]): a gateway in front of credentials has no reason to guess.
//!
//! Also here: the header names `upstream_headers` may never set ([`injected_header_forbidden`]).
//! Pure.

use http::header::{self, HeaderMap, HeaderName};
use http::Version;

/// How a client request's body is framed, once accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body-framing header: no body (HTTP/1.x) or the stream's end (HTTP/2).
    None,
    /// One `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked` alone.
    Chunked,
}

/// Why a request's framing is refused (400 `MALFORMED_REQUEST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Both `Content-Length` and `Transfer-Encoding`.
    #[error("the request has both Content-Length and Transfer-Encoding")]
    LengthAndChunked,
    /// More than one `Content-Length` field or a comma-separated list.
    #[error("the request has more than one Content-Length")]
    DuplicateLength,
    /// `Content-Length` that is not a plain decimal number.
    #[error("the request's Content-Length is not a decimal number")]
    InvalidLength,
    /// A `Transfer-Encoding` other than exactly `chunked`.
    #[error("the request's Transfer-Encoding is not exactly `chunked`")]
    UnsupportedTransferEncoding,
    /// `Transfer-Encoding` on HTTP/1.0 or HTTP/2.
    #[error("Transfer-Encoding is not allowed in this HTTP version")]
    TransferEncodingNotAllowed,
}

/// Checks a client request's framing headers. `raw_head` is the request head as received on
/// HTTP/1 (Pingora's `to_h1_raw`): Pingora removes `Content-Length` from the parsed header when
/// `Transfer-Encoding` is present, so the raw bytes are the only place it is still visible. It is
/// read only when `Transfer-Encoding` is present.
pub fn check_request_framing(
    version: Version,
    headers: &HeaderMap,
    raw_head: impl FnOnce() -> Option<bytes::Bytes>,
) -> Result<RequestFraming, FramingError> {
    let mut te = headers.get_all(header::TRANSFER_ENCODING).iter();
    if let Some(first) = te.next() {
        if version != Version::HTTP_11 {
            return Err(FramingError::TransferEncodingNotAllowed);
        }
        if te.next().is_some()
            || !first
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"chunked")
        {
            return Err(FramingError::UnsupportedTransferEncoding);
        }
        if headers.contains_key(header::CONTENT_LENGTH)
            || raw_head().is_some_and(|raw| raw_has_field(&raw, b"content-length"))
        {
            return Err(FramingError::LengthAndChunked);
        }
        return Ok(RequestFraming::Chunked);
    }
    let mut cl = headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = cl.next() else {
        return Ok(RequestFraming::None);
    };
    if cl.next().is_some() || first.as_bytes().contains(&b',') {
        return Err(FramingError::DuplicateLength);
    }
    let v = first.as_bytes().trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(FramingError::InvalidLength);
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(RequestFraming::Length)
        .ok_or(FramingError::InvalidLength)
}

/// Whether a raw HTTP/1 head has a header field named `name` (lower-case ASCII), at the start
/// of a line, case-insensitive.
fn raw_has_field(raw: &[u8], name: &[u8]) -> bool {
    raw.split(|&b| b == b'\n').skip(1).any(|line| {
        line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name)
            && matches!(line[name.len()], b':' | b' ' | b'\t')
    })
}

/// Header names `upstream_headers` may not set: hop-by-hop and framing fields errgate owns
/// (RFC 9110 §7.6.1, RFC 9112 §6), plus `Host` (the route's upstream sets it) and `Expect`.
pub const INJECTED_FORBIDDEN: &[&str] = &[
    "connection",
    "content-length",
    "transfer-encoding",
    "host",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "expect",
];

/// Whether `upstream_headers` may not set this header (the list above, and every `Proxy-*`).
pub fn injected_header_forbidden(name: &HeaderName) -> bool {
    let n = name.as_str();
    INJECTED_FORBIDDEN.contains(&n) || n.starts_with("proxy-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::HeaderValue;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        m
    }

    fn check(v: Version, pairs: &[(&str, &str)]) -> Result<RequestFraming, FramingError> {
        check_request_framing(v, &h(pairs), || None)
    }

    #[test]
    fn one_framing_is_accepted() {
        let v = Version::HTTP_11;
        assert_eq!(check(v, &[]), Ok(RequestFraming::None));
        assert_eq!(
            check(v, &[("content-length", "12")]),
            Ok(RequestFraming::Length(12))
        );
        assert_eq!(
            check(v, &[("content-length", " 0 ")]),
            Ok(RequestFraming::Length(0))
        );
        assert_eq!(
            check(v, &[("transfer-encoding", "chunked")]),
            Ok(RequestFraming::Chunked)
        );
        assert_eq!(
            check(v, &[("transfer-encoding", "Chunked")]),
            Ok(RequestFraming::Chunked)
        );
        assert_eq!(
            check(Version::HTTP_2, &[("content-length", "3")]),
            Ok(RequestFraming::Length(3))
        );
    }

    #[test]
    fn duplicated_or_listed_lengths_are_refused_even_when_equal() {
        let v = Version::HTTP_11;
        let dup = Err(FramingError::DuplicateLength);
        assert_eq!(
            check(v, &[("content-length", "5"), ("content-length", "5")]),
            dup
        );
        assert_eq!(
            check(v, &[("content-length", "5"), ("content-length", "6")]),
            dup
        );
        assert_eq!(check(v, &[("content-length", "5, 5")]), dup);
        assert_eq!(check(v, &[("content-length", "5,6")]), dup);
        for bad in ["+5", "-1", "0x10", "5 5", "", "99999999999999999999", "1e3"] {
            assert_eq!(
                check(v, &[("content-length", bad)]),
                Err(FramingError::InvalidLength),
                "{bad}"
            );
        }
    }

    #[test]
    fn transfer_encoding_must_be_exactly_chunked_on_http_1_1() {
        let v = Version::HTTP_11;
        let bad = Err(FramingError::UnsupportedTransferEncoding);
        for te in [
            "gzip, chunked",
            "chunked, chunked",
            "identity",
            "gzip",
            "chunked;q=1",
            "xchunked",
        ] {
            assert_eq!(check(v, &[("transfer-encoding", te)]), bad, "{te}");
        }
        assert_eq!(
            check(
                v,
                &[
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked")
                ]
            ),
            bad
        );
        for v in [Version::HTTP_10, Version::HTTP_2, Version::HTTP_09] {
            assert_eq!(
                check(v, &[("transfer-encoding", "chunked")]),
                Err(FramingError::TransferEncodingNotAllowed)
            );
        }
    }

    #[test]
    fn length_with_chunked_is_refused_even_after_pingora_removed_the_length() {
        let v = Version::HTTP_11;
        assert_eq!(
            check(
                v,
                &[("transfer-encoding", "chunked"), ("content-length", "3")]
            ),
            Err(FramingError::LengthAndChunked)
        );
        let raw = Bytes::from_static(
            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length : 3\r\n\r\n",
        );
        let te = h(&[("transfer-encoding", "chunked")]);
        assert_eq!(
            check_request_framing(v, &te, || Some(raw)),
            Err(FramingError::LengthAndChunked)
        );
        let raw = Bytes::from_static(
            b"POST /x HTTP/1.1\r\nX-Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(
            check_request_framing(v, &te, || Some(raw)),
            Ok(RequestFraming::Chunked)
        );
    }

    #[test]
    fn injected_headers_may_not_touch_framing_or_hop_by_hop_fields() {
        for n in [
            "connection",
            "content-length",
            "transfer-encoding",
            "host",
            "te",
            "trailer",
            "upgrade",
            "keep-alive",
            "proxy-authorization",
            "proxy-connection",
            "expect",
        ] {
            let name = HeaderName::from_bytes(n.as_bytes()).expect("name");
            assert!(injected_header_forbidden(&name), "{n}");
        }
        for n in ["authorization", "x-api-key", "user-agent", "accept"] {
            let name = HeaderName::from_bytes(n.as_bytes()).expect("name");
            assert!(!injected_header_forbidden(&name), "{n}");
        }
    }
}
