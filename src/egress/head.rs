//! The first request head on a forward-proxy connection: `CONNECT host:port` or an
//! absolute-form plain-HTTP request (`GET http://host[:port]/path`). Pure.

/// Largest request head read on the proxy listener.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields parsed.
const MAX_HEADERS: usize = 100;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// `CONNECT host:port`: a tunnel.
    Connect,
    /// An absolute-form `http://` request, forwarded as it is.
    Http,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Tunnel or plain request.
    pub ask: Ask,
    /// Destination host: lower case, no brackets, no trailing dot.
    pub host: String,
    /// Destination port.
    pub port: u16,
    /// Bytes of the head, CRLFCRLF included; what follows in the buffer is body or tunnel data.
    pub len: usize,
}

/// Why a head was not accepted (answered with 400, or 405 for origin-form).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Not HTTP/1.x, or a malformed head.
    #[error("malformed request head: {0}")]
    Malformed(String),
    /// Longer than [`MAX_HEAD_BYTES`].
    #[error("request head longer than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    /// A request that is not for a proxy (origin-form, or `https://` absolute-form).
    #[error("not a proxy request: {0}")]
    NotProxy(String),
}

/// Parses the head at the start of `buf`: `Ok(None)` when more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD_BYTES {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = split_authority(target, None)?;
        return Ok(Some(Head {
            ask: Ask::Connect,
            host,
            port,
            len,
        }));
    }
    let Some(rest) = strip_scheme(target, "http://") else {
        if strip_scheme(target, "https://").is_some() {
            return Err(HeadError::NotProxy(
                "https:// requests go through CONNECT".to_string(),
            ));
        }
        return Err(HeadError::NotProxy(format!(
            "`{method} {}` is not an absolute-form http:// request or CONNECT",
            truncate(target)
        )));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = split_authority(authority, Some(80))?;
    Ok(Some(Head {
        ask: Ask::Http,
        host,
        port,
        len,
    }))
}

fn strip_scheme<'a>(target: &'a str, scheme: &str) -> Option<&'a str> {
    let head = target.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &target[scheme.len()..])
}

fn truncate(s: &str) -> &str {
    crate::problem::truncate_chars(s, 64)
}

/// `host:port` (or `[v6]:port`); `default_port` applies when there is no port.
fn split_authority(a: &str, default_port: Option<u16>) -> Result<(String, u16), HeadError> {
    let bad = || HeadError::Malformed(format!("`{}` is not host:port", truncate(a)));
    if a.contains('@') {
        return Err(HeadError::Malformed(
            "user info in the authority".to_string(),
        ));
    }
    let (host, port) = if let Some(v6) = a.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        (h, after.strip_prefix(':'))
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        None => default_port.ok_or_else(bad)?,
    };
    let host = crate::egress::policy::normalize_host(host);
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    if !valid {
        return Err(bad());
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Option<Head>, HeadError> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn connect_with_host_and_port() {
        let raw =
            "CONNECT API.PluralKit.me:443 HTTP/1.1\r\nHost: api.pluralkit.me:443\r\n\r\n\x16\x03";
        let h = head(raw).expect("ok").expect("complete");
        assert_eq!(h.ask, Ask::Connect);
        assert_eq!((h.host.as_str(), h.port), ("api.pluralkit.me", 443));
        assert_eq!(&raw.as_bytes()[h.len..], b"\x16\x03");
    }

    #[test]
    fn connect_to_ipv6_literal() {
        let h = head("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n")
            .expect("ok")
            .expect("complete");
        assert_eq!((h.host.as_str(), h.port), ("::1", 8443));
    }

    #[test]
    fn connect_needs_a_port() {
        assert!(matches!(
            head("CONNECT example.com HTTP/1.1\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            head("CONNECT example.com:0 HTTP/1.1\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            head("CONNECT a@b:1 HTTP/1.1\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn absolute_form_http_defaults_to_port_80() {
        let h = head("GET http://Example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n")
            .expect("ok")
            .expect("complete");
        assert_eq!(h.ask, Ask::Http);
        assert_eq!((h.host.as_str(), h.port), ("example.com", 80));
        let h = head("POST http://example.com:8080 HTTP/1.1\r\n\r\n")
            .expect("ok")
            .expect("complete");
        assert_eq!(h.port, 8080);
    }

    #[test]
    fn origin_form_and_https_absolute_form_are_not_proxy_requests() {
        assert!(matches!(
            head("GET /x HTTP/1.1\r\n\r\n"),
            Err(HeadError::NotProxy(_))
        ));
        assert!(matches!(
            head("GET https://a/x HTTP/1.1\r\n\r\n"),
            Err(HeadError::NotProxy(_))
        ));
    }

    #[test]
    fn partial_heads_wait_until_the_limit() {
        assert_eq!(head("CONNECT a:443 HTTP/1.1\r\n"), Ok(None));
        let big = format!(
            "GET http://a/ HTTP/1.1\r\nX: {}\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(head(&big), Err(HeadError::TooLarge));
        assert!(matches!(
            head("\x00\x01garbage\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }
}
