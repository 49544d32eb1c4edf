//! Request and trace ids, pure: the request id every request gets at its start (the client's
//! `X-Request-Id` when it is sane, else a generated one) and the W3C Trace Context
//! `traceparent` header, parsed and validated.
//!
//! Generation is cheap on purpose (it runs for every request, successes included): 128 bits from
//! the thread-local `rand` generator written as 32 lower-case hex digits into a fixed buffer, no
//! `format!` machinery.

/// Longest client `X-Request-Id` echoed; a longer one is replaced by a generated id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request header carrying the request id (in and out).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The W3C Trace Context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// [`REQUEST_ID_HEADER`] as a parsed name: a lookup by it skips parsing the name again.
pub static REQUEST_ID: http::HeaderName = http::HeaderName::from_static(REQUEST_ID_HEADER);

/// [`TRACEPARENT_HEADER`] as a parsed name.
pub static TRACEPARENT: http::HeaderName = http::HeaderName::from_static(TRACEPARENT_HEADER);

/// The client's request id when it is printable ASCII (no spaces) of 1..=128 bytes after
/// trimming surrounding whitespace, else `None`.
pub fn parse_request_id(value: &[u8]) -> Option<&str> {
    let v = value.trim_ascii();
    if v.is_empty() || v.len() > MAX_REQUEST_ID_LEN || !v.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    std::str::from_utf8(v).ok()
}

/// A fresh request id: 128 random bits as 32 lower-case hex digits.
pub fn generate_request_id() -> String {
    hex32(rand::random::<u128>())
}

/// The request id for a request: the client's valid one, or a generated one.
pub fn request_id(client: Option<&[u8]>) -> String {
    match client.and_then(parse_request_id) {
        Some(v) => v.to_string(),
        None => generate_request_id(),
    }
}

fn hex32(n: u128) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Byte by byte into a fixed buffer, then one copy: pushing 32 chars one at a time cost
    // about 550 instructions per request.
    let mut buf = [0u8; 32];
    for (pair, b) in buf.chunks_exact_mut(2).zip(n.to_be_bytes()) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    // Hex digits are ASCII: never the empty fallback.
    String::from_utf8(buf.to_vec()).unwrap_or_default()
}

/// A valid `traceparent` (W3C Trace Context level 1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// Version byte (`00` today; higher versions are parsed by the version-00 rules).
    pub version: u8,
    /// 16-byte trace id as 32 lower-case hex digits; never all zero.
    pub trace_id: [u8; 32],
    /// 8-byte parent span id as 16 lower-case hex digits; never all zero.
    pub parent_id: [u8; 16],
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// The trace id as text.
    pub fn trace_id_str(&self) -> &str {
        // Parsing admitted only ASCII hex digits.
        std::str::from_utf8(&self.trace_id).unwrap_or("")
    }
}

fn is_lower_hex(b: &u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(b)
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    if two.len() != 2 || !two.iter().all(is_lower_hex) {
        return None;
    }
    let d = |c: u8| {
        if c.is_ascii_digit() {
            c - b'0'
        } else {
            c - b'a' + 10
        }
    };
    Some(d(two[0]) << 4 | d(two[1]))
}

/// Parses a `traceparent` value: `version-traceid-parentid-flags`, lower-case hex, version
/// `ff` invalid, trace id and parent id not all zero. Version `00` must be exactly 55 bytes; a
/// higher version may carry more fields after a `-` (the spec's forward compatibility rule).
pub fn parse_traceparent(value: &[u8]) -> Option<TraceParent> {
    let v = value.trim_ascii();
    if v.len() < 55 {
        return None;
    }
    let version = hex_byte(&v[0..2])?;
    if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let (trace, parent) = (&v[3..35], &v[36..52]);
    if !trace.iter().all(is_lower_hex) || !parent.iter().all(is_lower_hex) {
        return None;
    }
    if trace.iter().all(|&b| b == b'0') || parent.iter().all(|&b| b == b'0') {
        return None;
    }
    let flags = hex_byte(&v[53..55])?;
    let mut trace_id = [0u8; 32];
    trace_id.copy_from_slice(trace);
    let mut parent_id = [0u8; 16];
    parent_id.copy_from_slice(parent);
    Some(TraceParent {
        version,
        trace_id,
        parent_id,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn keeps_a_sane_client_id() {
        assert_eq!(request_id(Some(b" abc-123 ")), "abc-123");
        let long = "a".repeat(MAX_REQUEST_ID_LEN);
        assert_eq!(request_id(Some(long.as_bytes())), long);
    }

    #[test]
    fn replaces_an_insane_client_id() {
        for bad in [
            &b""[..],
            b"   ",
            b"has space",
            b"tab\there",
            "caf\u{e9}".as_bytes(),
            &[b'a'; MAX_REQUEST_ID_LEN + 1],
        ] {
            let id = request_id(Some(bad));
            assert_eq!(id.len(), 32, "{bad:?}");
            assert!(id.bytes().all(|b| is_lower_hex(&b)));
        }
    }

    #[test]
    fn generated_ids_are_hex_and_differ() {
        let (a, b) = (generate_request_id(), generate_request_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| is_lower_hex(&b)));
        assert_ne!(a, b);
        assert_eq!(hex32(0xab), format!("{:032x}", 0xab));
        assert_eq!(hex32(u128::MAX), "f".repeat(32));
    }

    #[test]
    fn parses_a_valid_traceparent() {
        let t = parse_traceparent(GOOD.as_bytes()).expect("valid");
        assert_eq!(t.version, 0);
        assert_eq!(t.trace_id_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(&t.parent_id, b"00f067aa0ba902b7");
        assert_eq!(t.flags, 1);
    }

    #[test]
    fn future_versions_may_carry_more_fields() {
        let v = format!("01{}-extra", &GOOD[2..]);
        assert!(parse_traceparent(v.as_bytes()).is_some());
        let v = format!("01{}", &GOOD[2..]);
        assert!(parse_traceparent(v.as_bytes()).is_some());
        let v = format!("01{}x", &GOOD[2..]);
        assert!(parse_traceparent(v.as_bytes()).is_none());
    }

    #[test]
    fn rejects_invalid_traceparents() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn no_panic_on_any_short_input() {
        for n in 0..GOOD.len() {
            let _ = parse_traceparent(&GOOD.as_bytes()[..n]);
            let _ = parse_traceparent(&vec![b'-'; n]);
        }
    }
}
