//! Path confinement: the one rule that keeps a request inside its route's upstream base path.
//!
//! Input is the request path left after the route prefix is stripped (`rest`, starting with `/`
//! or `?` or empty, query included). The rule, in order:
//!
//! 1. **Separators must be literal.** A backslash (`\`), an encoded slash (`%2F`/`%2f`), an
//!    encoded backslash (`%5C`/`%5c`) or a double-encoded dot, slash or backslash (`%252E`,
//!    `%252F`, `%255C`, any case) anywhere in the path part is rejected: some vendors' servers
//!    decode them into separators after errgate has looked, so no answer other than "no" is
//!    safe.
//! 2. **Dot segments are recognised decoded.** A segment is a dot segment when, after decoding
//!    `%2E`/`%2e` to `.`, it is `.` or `..` (so `.%2e`, `%2E%2e`, `%2e.` are all `..`). A segment
//!    whose part before a `;` is a dot segment (`..;x`, the Tomcat path-parameter trick) is
//!    rejected.
//! 3. **Dot segments are removed as RFC 3986 §5.2.4 says**, with the base path as the root: `.`
//!    disappears, `..` removes the segment before it. A `..` with nothing left to remove would
//!    step above the base path: the request is rejected instead of clamped.
//! 4. What is forwarded is the result: never the raw dot segments. Other percent-encodings (and
//!    the query) are forwarded unchanged, byte for byte.
//!
//! Rejections become 400 `PATH_NOT_ALLOWED` (`Problem::path_not_allowed`). Pure: no I/O.

use std::borrow::Cow;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathRejection {
    /// `\` or `%5C` in the path.
    #[error("the path contains a backslash, literal or percent-encoded")]
    Backslash,
    /// `%2F` in the path.
    #[error("the path contains a percent-encoded slash")]
    EncodedSlash,
    /// `%252E`, `%252F` or `%255C` in the path.
    #[error("the path contains a double-encoded dot, slash or backslash")]
    DoubleEncoded,
    /// A dot segment carrying `;` parameters.
    #[error("the path contains a dot segment with parameters")]
    DotWithParams,
    /// `..` would leave the route's upstream base path.
    #[error("the path leaves the route's upstream base path")]
    EscapesBase,
}

/// The confined form of `rest` (see the module doc), or why it is refused. Borrowed when
/// nothing had to change, which is the common case.
pub fn confine(rest: &str) -> Result<Cow<'_, str>, PathRejection> {
    let (path, query) = match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    check_bytes(path.as_bytes())?;
    // Fast path: no segment can be a dot segment without a `.` or an encoded one.
    if !path.contains('.') && !contains_encoded_dot(path.as_bytes()) {
        return Ok(Cow::Borrowed(rest));
    }
    let mut out: Vec<&str> = Vec::new();
    let mut changed = false;
    // `path` is empty or starts with `/`: every segment is preceded by a `/`.
    let segments = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty() {
        return Ok(Cow::Borrowed(rest));
    }
    let mut iter = segments.split('/').peekable();
    while let Some(seg) = iter.next() {
        let last = iter.peek().is_none();
        let param_head = seg.split(';').next().unwrap_or(seg);
        match dot_kind(param_head) {
            Some(_) if param_head.len() != seg.len() => return Err(PathRejection::DotWithParams),
            Some(Dot::One) => {
                changed = true;
                // "/a/." ends in a directory: keep the trailing slash (RFC 3986 §5.2.4 2.B).
                if last {
                    out.push("");
                }
            }
            Some(Dot::Two) => {
                changed = true;
                if out.pop().is_none() {
                    return Err(PathRejection::EscapesBase);
                }
                if last {
                    out.push("");
                }
            }
            None => out.push(seg),
        }
    }
    if !changed {
        return Ok(Cow::Borrowed(rest));
    }
    let mut s = String::with_capacity(rest.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() {
        s.push('/');
    }
    s.push_str(query);
    Ok(Cow::Owned(s))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dot {
    One,
    Two,
}

/// Whether a segment, with `%2E` decoded, is `.` or `..`.
fn dot_kind(seg: &str) -> Option<Dot> {
    let b = seg.as_bytes();
    let mut dots = 0usize;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'.' {
            i += 1;
        } else if is_encoded_dot(&b[i..]) {
            i += 3;
        } else {
            return None;
        }
        dots += 1;
        if dots > 2 {
            return None;
        }
    }
    match dots {
        1 => Some(Dot::One),
        2 => Some(Dot::Two),
        _ => None,
    }
}

fn is_encoded_dot(b: &[u8]) -> bool {
    b.len() >= 3 && b[0] == b'%' && b[1] == b'2' && b[2].eq_ignore_ascii_case(&b'e')
}

fn contains_encoded_dot(b: &[u8]) -> bool {
    b.windows(3).any(is_encoded_dot)
}

/// Rule 1: separators must be literal slashes.
fn check_bytes(b: &[u8]) -> Result<(), PathRejection> {
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'\\' => return Err(PathRejection::Backslash),
            b'%' => {
                let hex = |j: usize| b.get(i + j).map(u8::to_ascii_lowercase);
                match (hex(1), hex(2)) {
                    (Some(b'2'), Some(b'f')) => return Err(PathRejection::EncodedSlash),
                    (Some(b'5'), Some(b'c')) => return Err(PathRejection::Backslash),
                    (Some(b'2'), Some(b'5')) => {
                        if let (Some(x), Some(y)) = (hex(3), hex(4)) {
                            if matches!((x, y), (b'2', b'e') | (b'2', b'f') | (b'5', b'c')) {
                                return Err(PathRejection::DoubleEncoded);
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
