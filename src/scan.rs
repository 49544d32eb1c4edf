//! Push-fed, sans-IO streaming JSON scanner for upstream response bodies.
//!
//! Role: the proxy feeds a response body to a [`Scanner`] one chunk at a time,
//! as the chunks arrive. The scanner validates the body as strict RFC 8259 JSON
//! and captures the values found at a few configured object-key paths (a
//! [`ScanSpec`]), e.g. `["errCode"]` or `["errResponse", "code"]`. Everything
//! else is skipped without being materialised: keys are decoded and matched
//! only inside objects on a configured path, all other strings are just
//! validated.
//!
//! Acceptance is that of `serde_json::from_slice::<serde_json::Value>`
//! (invalid UTF-8 and a leading BOM are rejected too), except that lone UTF-16
//! surrogate escapes are accepted (decoded as U+FFFD), numbers are checked
//! against the grammar only (not against the `f64` range), and the nesting
//! limit is [`ScanLimits::max_depth`] instead of 128.
//!
//! Capture rules: keys match on their unescaped text; the first occurrence of
//! a path decides its field (a later repeat is ignored, even when the first
//! value was a container that a [`CaptureKind::Scalar`] path skips); paths
//! never go through arrays.
//!
//! Invariants:
//! - Never builds a tree and never buffers the body: per-scanner state is a
//!   fixed-size struct plus the capture buffers. Heap allocation happens only
//!   for captured values (bounded by [`ScanLimits::max_capture_bytes`] each) and,
//!   when `max_depth` > 128, for the nesting bit-stack beyond 128 levels.
//! - Chunk boundaries may fall anywhere (inside strings, escapes, `\uXXXX`,
//!   numbers, literals, multi-byte UTF-8 sequences). The outcome — captured
//!   fields, error and error offset, `bytes_scanned` — does not depend on how
//!   the body was split.
//! - Never panics on any input; after the first error the scanner stays in
//!   that error state, ignores further input and keeps the fields it had
//!   completed. A field is visible only once its whole value was scanned.
//! - Nesting deeper than [`ScanLimits::max_depth`] is an error, so the cost of
//!   hostile input stays linear with tiny state.

use std::fmt;
use std::str;

/// Maximum number of paths in one [`ScanSpec`]; keeps the per-scanner bookkeeping in `u16` masks.
pub const MAX_PATHS: usize = 16;
/// Default nesting limit: vendor error envelopes are shallow, and a bound stops hostile nesting.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Default cap per captured value (message, code, field errors): enough for any vendor error
/// message or code, small enough to bound memory per request. The proxy, the CLI, the tests and
/// the benches all scan with [`ScanLimits::default`].
pub const DEFAULT_MAX_CAPTURE_BYTES: usize = 8 * 1024;

/// What to capture at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaptureKind {
    /// A string (unescaped), number (literal text), boolean or null; an object
    /// or array found at the path is skipped and not captured.
    Scalar,
    /// The exact input bytes of the value, whatever its type.
    Raw,
}

/// Why a [`ScanSpec`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// More than [`MAX_PATHS`] paths were given.
    TooManyPaths {
        /// Number of paths given.
        given: usize,
    },
    /// The path at this index has no keys.
    EmptyPath {
        /// Index of the offending path.
        index: usize,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::TooManyPaths { given } => {
                write!(
                    f,
                    "scan spec has {given} paths, at most {MAX_PATHS} allowed"
                )
            }
            SpecError::EmptyPath { index } => write!(f, "scan spec path {index} has no keys"),
        }
    }
}

impl std::error::Error for SpecError {}

const NO_NODE: u32 = u32::MAX;

/// One node of the key trie: the object reached by following `key` from `parent`.
#[derive(Clone, Debug)]
struct Node {
    key: Box<[u8]>,
    parent: u32,
    children: Vec<u32>,
    /// Path indices captured as [`CaptureKind::Scalar`] at this node.
    scalar: u16,
    /// Path indices captured as [`CaptureKind::Raw`] at this node.
    raw: u16,
}

/// Compiled set of paths. A path is a sequence of object keys from the root,
/// e.g. `["errResponse","code"]`. Paths only go through objects (no array
/// indices). At most [`MAX_PATHS`] paths; each has at least one key.
#[derive(Clone, Debug)]
pub struct ScanSpec {
    /// Key trie; node 0 is the root object.
    nodes: Vec<Node>,
    kinds: Vec<CaptureKind>,
}

impl ScanSpec {
    /// Compiles `paths`; field `i` of a [`Scanner`] refers to `paths[i]`.
    ///
    /// # Panics
    /// If the spec is invalid (see [`ScanSpec::try_new`]); specs are static
    /// configuration, never request input.
    pub fn new(paths: &[(&[&str], CaptureKind)]) -> ScanSpec {
        match ScanSpec::try_new(paths) {
            Ok(spec) => spec,
            Err(e) => panic!("invalid ScanSpec: {e}"),
        }
    }

    /// Compiles `paths`, rejecting more than [`MAX_PATHS`] paths or an empty path.
    pub fn try_new(paths: &[(&[&str], CaptureKind)]) -> Result<ScanSpec, SpecError> {
        if paths.len() > MAX_PATHS {
            return Err(SpecError::TooManyPaths { given: paths.len() });
        }
        let mut nodes = vec![Node {
            key: Box::default(),
            parent: NO_NODE,
            children: Vec::new(),
            scalar: 0,
            raw: 0,
        }];
        let mut kinds = Vec::with_capacity(paths.len());
        for (index, (path, kind)) in paths.iter().enumerate() {
            if path.is_empty() {
                return Err(SpecError::EmptyPath { index });
            }
            let mut cur = 0usize;
            for key in path.iter() {
                let found = nodes[cur]
                    .children
                    .iter()
                    .copied()
                    .find(|&c| &*nodes[c as usize].key == key.as_bytes());
                cur = match found {
                    Some(c) => c as usize,
                    None => {
                        let id = nodes.len();
                        nodes.push(Node {
                            key: key.as_bytes().into(),
                            parent: cur as u32,
                            children: Vec::new(),
                            scalar: 0,
                            raw: 0,
                        });
                        nodes[cur].children.push(id as u32);
                        id
                    }
                };
            }
            let bit = 1u16 << index;
            match kind {
                CaptureKind::Scalar => nodes[cur].scalar |= bit,
                CaptureKind::Raw => nodes[cur].raw |= bit,
            }
            kinds.push(*kind);
        }
        Ok(ScanSpec { nodes, kinds })
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// True when the spec has no paths (the scanner then only validates).
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Capture kind of path `i`.
    pub fn kind(&self, i: usize) -> Option<CaptureKind> {
        self.kinds.get(i).copied()
    }

    fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.get(id as usize)
    }
}

/// Resource limits of one scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanLimits {
    /// Maximum nesting of objects/arrays; deeper input is [`ScanError::DepthExceeded`].
    pub max_depth: usize,
    /// Maximum bytes kept per captured value; longer values are cut and marked truncated.
    pub max_capture_bytes: usize,
}

impl ScanLimits {
    /// The limits every scan runs with: the proxy, the CLI, the tests and the benches.
    pub const DEFAULT: ScanLimits = ScanLimits {
        max_depth: DEFAULT_MAX_DEPTH,
        max_capture_bytes: DEFAULT_MAX_CAPTURE_BYTES,
    };
}

impl Default for ScanLimits {
    /// [`ScanLimits::DEFAULT`].
    fn default() -> Self {
        ScanLimits::DEFAULT
    }
}

/// A captured value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Captured {
    /// A string, unescaped (`\uXXXX` surrogate pairs joined; lone surrogates become U+FFFD).
    Str(String),
    /// A number's literal text, e.g. `"-12.5e3"`.
    Num(String),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// [`CaptureKind::Raw`]: the exact bytes of the value as in the input.
    Raw(Vec<u8>),
}

/// A captured value and whether it was cut at `max_capture_bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The value (at most `max_capture_bytes` bytes of content).
    pub value: Captured,
    /// The value was longer than `max_capture_bytes`; `value` holds its first
    /// bytes (cut on a char boundary for strings).
    pub truncated: bool,
}

/// Result of [`Scanner::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The top-level value has not ended yet; feed more.
    NeedMore,
    /// The top-level value ended (anything after it must be whitespace) or an error occurred.
    Done,
}

/// Why the body is not acceptable JSON (or not within limits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanError {
    /// Invalid JSON (grammar, escape, control character or UTF-8) at this body offset.
    Syntax {
        /// Offset of the offending byte (the lead byte for bad UTF-8).
        offset: u64,
    },
    /// An object/array opened here would exceed `max_depth`.
    DepthExceeded {
        /// Offset of the opening bracket.
        offset: u64,
    },
    /// Non-whitespace after the top-level value.
    TrailingData {
        /// Offset of the first trailing byte.
        offset: u64,
    },
    /// [`Scanner::finish`] was called before the top-level value ended.
    Truncated,
    /// The body was empty or whitespace only.
    Empty,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Syntax { offset } => write!(f, "invalid JSON at byte {offset}"),
            ScanError::DepthExceeded { offset } => {
                write!(f, "JSON nesting too deep at byte {offset}")
            }
            ScanError::TrailingData { offset } => {
                write!(f, "trailing data after JSON value at byte {offset}")
            }
            ScanError::Truncated => f.write_str("JSON body ended before the value was complete"),
            ScanError::Empty => f.write_str("empty JSON body"),
        }
    }
}

impl std::error::Error for ScanError {}

/// Kind of string being scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sk {
    /// Object key that cannot match a path: validate only.
    SkipKey,
    /// Value string not captured: validate only.
    SkipVal,
    /// Object key in a tracked object: decode and match against the trie.
    Key,
    /// Value string captured as a scalar: decode into the capture buffer.
    Cap,
}

/// Position inside a number, per the RFC 8259 grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumSt {
    Start,
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

impl NumSt {
    fn is_terminal(self) -> bool {
        matches!(self, NumSt::Zero | NumSt::Int | NumSt::Frac | NumSt::Exp)
    }
}

/// Parser state between bytes. Data of the string, number and literal states
/// lives in scanner fields (`sk`, `ns`, `lit`, ...), keeping this a plain byte
/// so the dispatch stays cheap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Nothing but whitespace seen yet.
    Root,
    /// Expecting a value.
    Value,
    /// Expecting the value of a key that matched a path.
    ValueT,
    /// After `[`: a value or `]`.
    ArrFirst,
    /// After `{`: a key or `}`.
    ObjFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a key that matched a path: `:`.
    ColonT,
    /// After a value inside a container: `,` or the closing bracket.
    After,
    /// Inside a string of kind `sk`.
    Str,
    /// After a backslash in a string.
    Esc,
    /// Inside `\uXXXX` (`uni_cnt` digits read, value `uni_acc`).
    Uni,
    /// Inside a multi-byte UTF-8 sequence split by a chunk boundary (`u8tail`).
    Utf8,
    /// Inside a number (`ns`).
    Num,
    /// Inside `true`/`false`/`null` (`lit`, `lit_pos`).
    Lit,
    /// The top-level value ended; only whitespace may follow.
    End,
}

/// Kind of the scalar being captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScalKind {
    Str,
    Num,
    Bool(bool),
    Null,
}

const LITERALS: [&[u8]; 3] = [b"true", b"false", b"null"];

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` equal to `b` (plus possible false
/// positives only above a true positive, which never matter for "first").
#[inline(always)]
fn eq_mask(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * b as u64);
    x.wrapping_sub(ONES) & !x
}

/// High bit set for `"`, `\` and bytes < 0x20 in `w` (same caveat as [`eq_mask`]).
#[inline(always)]
fn delim_mask(w: u64) -> u64 {
    (eq_mask(w, b'"') | eq_mask(w, b'\\') | (w.wrapping_sub(ONES * 0x20) & !w)) & HIGHS
}

#[inline(always)]
fn is_delim(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Index of the first `"`, `\`, control byte or non-ASCII byte at or after `i`, or `buf.len()`.
#[inline(always)]
fn skip_plain(buf: &[u8], i: usize) -> usize {
    let Some(rest) = buf.get(i..) else {
        return buf.len();
    };
    let mut at = i;
    let mut chunks = rest.chunks_exact(8);
    for c in chunks.by_ref() {
        let Ok(w) = <[u8; 8]>::try_from(c) else { break };
        let w = u64::from_le_bytes(w);
        let m = delim_mask(w) | (w & HIGHS);
        if m != 0 {
            return at + (m.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    for &b in chunks.remainder() {
        if is_delim(b) || b >= 0x80 {
            return at;
        }
        at += 1;
    }
    at
}

/// Index of the first `"`, `\` or control byte at or after `i` (non-ASCII passes), or `buf.len()`.
#[inline]
fn skip_text(buf: &[u8], mut i: usize) -> usize {
    while let Some(w) = buf.get(i..i + 8) {
        let Ok(w) = <[u8; 8]>::try_from(w) else { break };
        let m = delim_mask(u64::from_le_bytes(w));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if is_delim(b) {
            break;
        }
        i += 1;
    }
    i
}

#[inline(always)]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

#[inline(always)]
fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while let Some(&b) = buf.get(i) {
        if !is_ws(b) {
            break;
        }
        i += 1;
    }
    i
}

#[inline(always)]
fn skip_digits(buf: &[u8], mut i: usize) -> usize {
    // Word at a time: high bit set for each byte that is not an ASCII digit
    // (false positives only above a true one, from the carry).
    while let Some(&[b0, b1, b2, b3, b4, b5, b6, b7]) = buf.get(i..i + 8) {
        let x = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]) ^ (ONES * 0x30);
        let m = (x.wrapping_add(ONES * 0x76) | x) & HIGHS;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        i += 1;
    }
    i
}

/// Scans number bytes from `i` in state `ns`. Returns the index reached, the
/// state there and whether the number ended (the byte at the index is not
/// part of it), or the index of an invalid byte.
#[inline(always)]
fn scan_num(buf: &[u8], mut i: usize, mut ns: NumSt) -> Result<(usize, NumSt, bool), usize> {
    while let Some(&b) = buf.get(i) {
        ns = match (ns, b) {
            (NumSt::Start, b'-') => NumSt::Minus,
            (NumSt::Start | NumSt::Minus, b'0') => NumSt::Zero,
            (NumSt::Start | NumSt::Minus | NumSt::Int, b'1'..=b'9') | (NumSt::Int, b'0') => {
                i = skip_digits(buf, i + 1);
                ns = NumSt::Int;
                continue;
            }
            (NumSt::Zero | NumSt::Int, b'.') => NumSt::Dot,
            (NumSt::Dot | NumSt::Frac, b'0'..=b'9') => {
                i = skip_digits(buf, i + 1);
                ns = NumSt::Frac;
                continue;
            }
            (NumSt::Zero | NumSt::Int | NumSt::Frac, b'e' | b'E') => NumSt::E,
            (NumSt::E, b'+' | b'-') => NumSt::ESign,
            (NumSt::E | NumSt::ESign | NumSt::Exp, b'0'..=b'9') => {
                i = skip_digits(buf, i + 1);
                ns = NumSt::Exp;
                continue;
            }
            (s, _) if s.is_terminal() => return Ok((i, s, true)),
            _ => return Err(i),
        };
        i += 1;
    }
    Ok((i, ns, false))
}

#[inline(always)]
fn hex_val(b: u8) -> Option<u16> {
    match b {
        b'0'..=b'9' => Some(u16::from(b - b'0')),
        b'a'..=b'f' => Some(u16::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u16::from(b - b'A' + 10)),
        _ => None,
    }
}

/// Total length of the UTF-8 sequence led by `b` (only called on valid lead bytes).
fn utf8_seq_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

/// Validates the UTF-8 sequence whose lead byte (>= 0x80) is at `buf[j]`,
/// with the same acceptance as `std::str::from_utf8` (no overlongs, no
/// surrogates, nothing above U+10FFFF). Returns its length, `Ok(0)` if the
/// buffer ends inside a so-far valid sequence, or `Err(())` if invalid.
#[inline(always)]
fn utf8_char(buf: &[u8], j: usize) -> Result<usize, ()> {
    if let Some(&[b0, b1, b2, b3]) = buf.get(j..j + 4) {
        // All bytes present: decide without the incomplete-sequence cases.
        let cont = |b: u8| b & 0xC0 == 0x80;
        return if b0 < 0xC2 {
            Err(())
        } else if b0 < 0xE0 {
            if cont(b1) {
                Ok(2)
            } else {
                Err(())
            }
        } else if b0 < 0xF0 {
            let lo = if b0 == 0xE0 { 0xA0 } else { 0x80 };
            let hi = if b0 == 0xED { 0x9F } else { 0xBF };
            if (lo..=hi).contains(&b1) && cont(b2) {
                Ok(3)
            } else {
                Err(())
            }
        } else if b0 < 0xF5 {
            let lo = if b0 == 0xF0 { 0x90 } else { 0x80 };
            let hi = if b0 == 0xF4 { 0x8F } else { 0xBF };
            if (lo..=hi).contains(&b1) && cont(b2) && cont(b3) {
                Ok(4)
            } else {
                Err(())
            }
        } else {
            Err(())
        };
    }
    utf8_char_near_end(buf, j)
}

/// [`utf8_char`] when fewer than 4 bytes remain: also reports incomplete sequences.
#[cold]
fn utf8_char_near_end(buf: &[u8], j: usize) -> Result<usize, ()> {
    let Some(&b0) = buf.get(j) else {
        return Ok(0);
    };
    let (len, lo, hi) = match b0 {
        0xC2..=0xDF => (2, 0x80, 0xBF),
        0xE0 => (3, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
        0xED => (3, 0x80, 0x9F),
        0xF0 => (4, 0x90, 0xBF),
        0xF1..=0xF3 => (4, 0x80, 0xBF),
        0xF4 => (4, 0x80, 0x8F),
        _ => return Err(()),
    };
    match buf.get(j + 1) {
        None => return Ok(0),
        Some(&b1) if b1 < lo || b1 > hi => return Err(()),
        Some(_) => {}
    }
    for k in 2..len {
        match buf.get(j + k) {
            None => return Ok(0),
            Some(&b) if b & 0xC0 != 0x80 => return Err(()),
            Some(_) => {}
        }
    }
    Ok(len)
}

/// Where [`skip_str`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StrStop {
    /// At the index after the closing quote.
    Closed,
    /// At the chunk end, inside plain text.
    ChunkEnd,
    /// After a backslash whose escape the fast path leaves to the byte-wise
    /// states (chunk end or invalid escape).
    Escape,
    /// At an incomplete UTF-8 sequence that runs to the chunk end.
    Utf8Tail,
    /// At an invalid byte (control character or bad UTF-8 lead).
    Invalid,
}

/// Skips a string body that is only validated, from `buf[i]`, through plain
/// runs, simple escapes and non-ASCII text, in one go.
#[inline(always)]
fn skip_str(buf: &[u8], mut i: usize) -> (usize, StrStop) {
    loop {
        let j = skip_plain(buf, i);
        let Some(&c) = buf.get(j) else {
            return (j, StrStop::ChunkEnd);
        };
        match c {
            b'"' => return (j + 1, StrStop::Closed),
            b'\\' => match buf.get(j + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i = j + 2,
                Some(b'u')
                    if buf
                        .get(j + 2..j + 6)
                        .is_some_and(|h| h.iter().all(|&x| hex_val(x).is_some())) =>
                {
                    i = j + 6
                }
                _ => return (j + 1, StrStop::Escape),
            },
            // A lone 2-byte char (accented Latin letter) inside ASCII text.
            0xC2..=0xDF
                if matches!(buf.get(j + 1..j + 3),
                    Some(&[c1, c2]) if c1 & 0xC0 == 0x80 && c2 < 0x80) =>
            {
                i = j + 2;
            }
            0x80..=0xFF => match skip_utf8(buf, j) {
                (k, None) => i = k,
                (k, Some(stop)) => return (k, stop),
            },
            _ => return (j, StrStop::Invalid),
        }
    }
}

/// Validates the run of non-ASCII chars starting at `buf[j]`; returns the
/// index after it, or where and why it stopped.
#[inline(never)]
fn skip_utf8(buf: &[u8], j: usize) -> (usize, Option<StrStop>) {
    let mut k = j;
    loop {
        match utf8_char(buf, k) {
            Ok(0) => return (k, Some(StrStop::Utf8Tail)),
            Ok(len) => k += len,
            Err(()) => return (k, Some(StrStop::Invalid)),
        }
        if buf.get(k).is_none_or(|&x| x < 0x80) {
            return (k, None);
        }
    }
}

/// Appends `piece` to `buf`, keeping at most `max` bytes; sets `trunc` when something was dropped.
fn append_bounded(buf: &mut Vec<u8>, piece: &[u8], max: usize, trunc: &mut bool) {
    if piece.is_empty() || *trunc {
        return;
    }
    let room = max.saturating_sub(buf.len());
    if piece.len() <= room {
        buf.extend_from_slice(piece);
    } else {
        buf.extend_from_slice(piece.get(..room).unwrap_or_default());
        *trunc = true;
    }
}

/// Streaming JSON scanner; see the module docs. Construction does not allocate.
#[derive(Debug)]
pub struct Scanner<'s> {
    spec: &'s ScanSpec,
    limits: ScanLimits,
    st: St,
    /// Kind of the string being scanned (states `Str`, `Esc`, `Uni`, `Utf8`).
    sk: Sk,
    /// Number grammar position (state `Num`).
    ns: NumSt,
    /// Literal index into `LITERALS` and bytes matched (state `Lit`).
    lit: u8,
    lit_pos: u8,
    /// `\uXXXX` digits read and value so far (state `Uni`).
    uni_cnt: u8,
    uni_acc: u16,
    /// Body offset of the start of the chunk being scanned (= bytes consumed before it).
    base: u64,
    error: Option<ScanError>,
    root_obj: Option<bool>,

    // Nesting: number of open containers, type of the innermost one, and a
    // bit-stack (1 = object) for the first 128 levels (deeper: `Extra::deep`).
    depth: u32,
    top_obj: bool,
    stack: u128,

    // Path tracking: `cur_node` is the trie node of the innermost tracked
    // object, at depth `cur_depth` (0 = none); tracked objects form the chain
    // of depths 1..=cur_depth.
    cur_node: u32,
    cur_depth: u32,
    /// Trie node whose key just matched; its value comes next.
    pending_node: u32,
    /// Candidate children (bit j = children[j]) still matching the key being read.
    key_cands: u16,
    key_pos: u32,

    // String decoding (only for `Sk::Key` / `Sk::Cap`).
    pending_hi: u16,
    u8tail: [u8; 4],
    u8len: u8,
    u8off: u64,

    // Captures.
    /// Paths whose first occurrence was seen.
    seen: u16,
    /// Paths whose field is complete and visible.
    done: u16,
    /// Paths being captured as the current scalar.
    scal_mask: u16,
    scal_kind: ScalKind,
    cap_trunc: bool,
    /// Paths being captured raw.
    raw_mask: u16,
    /// Capture buffers and deep nesting, allocated on first use so that the
    /// scanner itself stays small and `new` does not allocate.
    extra: Option<Box<Extra>>,
}

/// The parts of the scanner state needed only while capturing or nesting
/// deeper than 128 levels.
#[derive(Debug, Default)]
struct Extra {
    fields: [Option<Field>; MAX_PATHS],
    /// Where the current segment of each raw capture starts in the current chunk.
    raw_start: [usize; MAX_PATHS],
    /// Depth of the container holding each raw-captured value.
    raw_depth: [u32; MAX_PATHS],
    /// Start of the current number capture segment in the current chunk.
    num_start: usize,
    /// The scalar being captured (unescaped string or number text).
    cap_buf: Vec<u8>,
    /// Container-type bits (1 = object) for nesting levels beyond 128.
    deep: Vec<u64>,
}

impl<'s> Scanner<'s> {
    /// A scanner for one body, capturing the paths of `spec`.
    pub fn new(spec: &'s ScanSpec, limits: ScanLimits) -> Self {
        Scanner {
            spec,
            limits,
            st: St::Root,
            sk: Sk::SkipVal,
            ns: NumSt::Start,
            lit: 0,
            lit_pos: 0,
            uni_cnt: 0,
            uni_acc: 0,
            base: 0,
            error: None,
            root_obj: None,
            depth: 0,
            top_obj: false,
            stack: 0,
            cur_node: NO_NODE,
            cur_depth: 0,
            pending_node: NO_NODE,
            key_cands: 0,
            key_pos: 0,
            pending_hi: 0,
            u8tail: [0; 4],
            u8len: 0,
            u8off: 0,
            seen: 0,
            done: 0,
            scal_mask: 0,
            scal_kind: ScalKind::Null,
            cap_trunc: false,
            raw_mask: 0,
            extra: None,
        }
    }

    /// The capture/deep-nesting state, allocated on first use.
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Scans the next chunk of the body (any size, empty included). Returns
    /// [`Progress::Done`] once the top-level value ended or an error occurred
    /// (see [`Scanner::error`]); chunks fed after the value ended (even after
    /// [`Scanner::finish`]) are still checked for trailing non-whitespace.
    pub fn feed(&mut self, chunk: &[u8]) -> Progress {
        if self.error.is_none() {
            match self.run(chunk) {
                Ok(()) => {
                    if self.raw_mask != 0
                        || (self.scal_mask != 0 && self.scal_kind == ScalKind::Num)
                    {
                        self.flush_segments(chunk);
                    }
                    self.base += chunk.len() as u64;
                }
                Err(e) => self.fail(e),
            }
        }
        if self.is_done() {
            Progress::Done
        } else {
            Progress::NeedMore
        }
    }

    /// Signals the end of the body. `Ok` iff the body was one complete JSON
    /// value (plus whitespace) and no error occurred.
    pub fn finish(&mut self) -> Result<(), ScanError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.st {
            St::End => Ok(()),
            St::Num if self.depth == 0 && self.ns.is_terminal() => {
                self.st = self.value_end(&[], 0);
                Ok(())
            }
            St::Root => {
                self.fail(ScanError::Empty);
                Err(ScanError::Empty)
            }
            _ => {
                self.fail(ScanError::Truncated);
                Err(ScanError::Truncated)
            }
        }
    }

    /// The captured field of path `i` (index into the spec's paths), once its
    /// value was completely scanned. The first occurrence of a path wins;
    /// `None` if the path was absent, held a container under
    /// [`CaptureKind::Scalar`], or its value was cut short by an error.
    pub fn field(&self, i: usize) -> Option<&Field> {
        if i < MAX_PATHS && self.done & (1 << i) != 0 {
            self.extra.as_ref()?.fields.get(i)?.as_ref()
        } else {
            None
        }
    }

    /// Moves the completed field of path `i` out of the scanner.
    pub fn take_field(&mut self, i: usize) -> Option<Field> {
        if i < MAX_PATHS && self.done & (1 << i) != 0 {
            self.done &= !(1 << i);
            self.extra.as_mut()?.fields.get_mut(i)?.take()
        } else {
            None
        }
    }

    /// The error, if one occurred (including from [`Scanner::finish`]).
    pub fn error(&self) -> Option<&ScanError> {
        self.error.as_ref()
    }

    /// Bytes consumed: everything fed, or up to the offending byte after an error with an offset.
    pub fn bytes_scanned(&self) -> u64 {
        self.base
    }

    /// Whether the top-level value is an object; `None` until its first byte was seen.
    pub fn root_is_object(&self) -> Option<bool> {
        self.root_obj
    }

    /// True once the top-level value ended or an error occurred.
    pub fn is_done(&self) -> bool {
        self.error.is_some() || self.st == St::End
    }

    fn fail(&mut self, e: ScanError) {
        if let ScanError::Syntax { offset }
        | ScanError::DepthExceeded { offset }
        | ScanError::TrailingData { offset } = e
        {
            self.base = offset;
        }
        self.error = Some(e);
    }

    #[inline(always)]
    fn syntax(&self, pos: usize) -> ScanError {
        ScanError::Syntax {
            offset: self.base + pos as u64,
        }
    }

    #[inline(always)]
    fn push(&mut self, obj: bool, pos: usize) -> Result<(), ScanError> {
        let k = self.depth;
        if k as usize >= self.limits.max_depth || k == u32::MAX {
            return Err(ScanError::DepthExceeded {
                offset: self.base + pos as u64,
            });
        }
        if k < 128 {
            let bit = 1u128 << k;
            if obj {
                self.stack |= bit;
            } else {
                self.stack &= !bit;
            }
        } else {
            self.set_deep(k as usize - 128, obj);
        }
        self.depth = k + 1;
        self.top_obj = obj;
        Ok(())
    }

    #[cold]
    fn set_deep(&mut self, k: usize, obj: bool) {
        let idx = k / 64;
        let deep = &mut self.extra().deep;
        while deep.len() <= idx {
            deep.push(0);
        }
        if let Some(w) = deep.get_mut(idx) {
            let bit = 1u64 << (k % 64);
            if obj {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    }

    /// Pops the innermost container (caller checked its type).
    #[inline(always)]
    fn pop(&mut self) {
        if self.depth == self.cur_depth && self.depth > 0 {
            self.cur_depth -= 1;
            self.cur_node = self.spec.node(self.cur_node).map_or(NO_NODE, |n| n.parent);
        }
        self.depth = self.depth.saturating_sub(1);
        self.top_obj = match self.depth {
            0 => false,
            d if d <= 128 => (self.stack >> (d - 1)) & 1 != 0,
            d => {
                let k = (d - 1 - 128) as usize;
                self.extra
                    .as_ref()
                    .and_then(|x| x.deep.get(k / 64))
                    .is_some_and(|w| (w >> (k % 64)) & 1 != 0)
            }
        };
    }

    /// A value ended; `e` is its exclusive end in `buf`. Returns the next state.
    #[inline(always)]
    fn value_end(&mut self, buf: &[u8], e: usize) -> St {
        if (self.scal_mask | self.raw_mask) != 0 {
            self.end_captures(buf, e);
        }
        if self.depth == 0 {
            St::End
        } else {
            St::After
        }
    }

    #[cold]
    fn end_captures(&mut self, buf: &[u8], e: usize) {
        let max = self.limits.max_capture_bytes;
        if self.scal_mask != 0 {
            let value = match self.scal_kind {
                ScalKind::Str => {
                    self.flush_hi(Sk::Cap);
                    let bytes = std::mem::take(&mut self.extra().cap_buf);
                    Captured::Str(
                        String::from_utf8(bytes)
                            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    )
                }
                ScalKind::Num => {
                    let mut trunc = self.cap_trunc;
                    let x = self.extra();
                    let seg = buf.get(x.num_start..e).unwrap_or_default();
                    append_bounded(&mut x.cap_buf, seg, max, &mut trunc);
                    let bytes = std::mem::take(&mut x.cap_buf);
                    self.cap_trunc = trunc;
                    Captured::Num(
                        String::from_utf8(bytes)
                            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    )
                }
                ScalKind::Bool(b) => Captured::Bool(b),
                ScalKind::Null => Captured::Null,
            };
            let trunc = self.cap_trunc;
            self.cap_trunc = false;
            let mut value = Some(value);
            let mut m = self.scal_mask;
            self.scal_mask = 0;
            while m != 0 {
                let f = m.trailing_zeros() as usize;
                m &= m - 1;
                let v = if m == 0 { value.take() } else { value.clone() };
                if let (Some(slot), Some(v)) = (self.extra().fields.get_mut(f), v) {
                    *slot = Some(Field {
                        value: v,
                        truncated: trunc,
                    });
                    self.done |= 1 << f;
                }
            }
        }
        let mut m = self.raw_mask;
        let depth = self.depth;
        while m != 0 {
            let f = m.trailing_zeros() as usize;
            m &= m - 1;
            let x = self.extra();
            if x.raw_depth.get(f) != Some(&depth) {
                continue;
            }
            let start = x.raw_start.get(f).copied().unwrap_or(0);
            let seg = buf.get(start..e).unwrap_or_default();
            if let Some(Some(Field {
                value: Captured::Raw(v),
                truncated,
            })) = x.fields.get_mut(f)
            {
                append_bounded(v, seg, max, truncated);
            }
            self.raw_mask &= !(1 << f);
            self.done |= 1 << f;
        }
    }

    /// End of chunk: move the pending parts of raw and number captures into their buffers.
    #[cold]
    fn flush_segments(&mut self, buf: &[u8]) {
        let max = self.limits.max_capture_bytes;
        if self.scal_mask != 0 && self.scal_kind == ScalKind::Num {
            let mut trunc = self.cap_trunc;
            let x = self.extra();
            let seg = buf.get(x.num_start..).unwrap_or_default();
            append_bounded(&mut x.cap_buf, seg, max, &mut trunc);
            x.num_start = 0;
            self.cap_trunc = trunc;
        }
        let mut m = self.raw_mask;
        while m != 0 {
            let f = m.trailing_zeros() as usize;
            m &= m - 1;
            let x = self.extra();
            let start = x.raw_start.get(f).copied().unwrap_or(0);
            let seg = buf.get(start..).unwrap_or_default();
            if let Some(Some(Field {
                value: Captured::Raw(v),
                truncated,
            })) = x.fields.get_mut(f)
            {
                append_bounded(v, seg, max, truncated);
            }
            if let Some(s) = x.raw_start.get_mut(f) {
                *s = 0;
            }
        }
    }

    /// The value after a matched key starts at `buf[i]` (not whitespace):
    /// start its captures and, for an object on a longer path, track it.
    #[cold]
    fn start_tracked(&mut self, buf: &[u8], i: usize) -> Result<(usize, St), ScanError> {
        let node_id = self.pending_node;
        self.pending_node = NO_NODE;
        let Some(node) = self.spec.node(node_id) else {
            return Ok((i, St::Value));
        };
        let has_children = !node.children.is_empty();
        let fresh_s = node.scalar & !self.seen;
        let fresh_r = node.raw & !self.seen;
        self.seen |= fresh_s | fresh_r;
        let Some(&b) = buf.get(i) else {
            return Ok((i, St::ValueT));
        };
        let mut m = fresh_r;
        let depth = self.depth;
        while m != 0 {
            let f = m.trailing_zeros() as usize;
            m &= m - 1;
            let x = self.extra();
            if let (Some(slot), Some(s), Some(d)) = (
                x.fields.get_mut(f),
                x.raw_start.get_mut(f),
                x.raw_depth.get_mut(f),
            ) {
                *slot = Some(Field {
                    value: Captured::Raw(Vec::new()),
                    truncated: false,
                });
                *s = i;
                *d = depth;
                self.raw_mask |= 1 << f;
            }
        }
        if fresh_s != 0 {
            let kind = match b {
                b'"' => Some(ScalKind::Str),
                b'-' | b'0'..=b'9' => Some(ScalKind::Num),
                b't' => Some(ScalKind::Bool(true)),
                b'f' => Some(ScalKind::Bool(false)),
                b'n' => Some(ScalKind::Null),
                _ => None,
            };
            if let Some(kind) = kind {
                self.scal_mask = fresh_s;
                self.scal_kind = kind;
                self.cap_trunc = false;
                let x = self.extra();
                x.cap_buf.clear();
                x.num_start = i;
                if kind == ScalKind::Str {
                    self.pending_hi = 0;
                    self.sk = Sk::Cap;
                    return Ok((i + 1, St::Str));
                }
            }
        }
        if b == b'{' && has_children {
            self.push(true, i)?;
            self.cur_node = node_id;
            self.cur_depth = self.depth;
            return Ok((i + 1, St::ObjFirst));
        }
        Ok((i, St::Value))
    }

    /// Emits a lone high surrogate still pending as U+FFFD.
    fn flush_hi(&mut self, sk: Sk) {
        if self.pending_hi != 0 {
            self.pending_hi = 0;
            self.emit_piece(sk, "\u{FFFD}".as_bytes());
        }
    }

    /// Decoded string content for `Sk::Key` / `Sk::Cap` (after any pending surrogate).
    #[inline]
    fn emit(&mut self, sk: Sk, piece: &[u8]) {
        self.flush_hi(sk);
        self.emit_piece(sk, piece);
    }

    fn emit_piece(&mut self, sk: Sk, piece: &[u8]) {
        match sk {
            Sk::Key => self.match_key(piece),
            Sk::Cap => self.capture_str(piece),
            Sk::SkipKey | Sk::SkipVal => {}
        }
    }

    fn match_key(&mut self, piece: &[u8]) {
        if self.key_cands == 0 {
            return;
        }
        let Some(node) = self.spec.node(self.cur_node) else {
            self.key_cands = 0;
            return;
        };
        let pos = self.key_pos as usize;
        let end = pos.saturating_add(piece.len());
        let mut m = self.key_cands;
        while m != 0 {
            let j = m.trailing_zeros();
            m &= m - 1;
            let ok = node
                .children
                .get(j as usize)
                .and_then(|&c| self.spec.node(c))
                .and_then(|c| c.key.get(pos..end))
                .is_some_and(|k| k == piece);
            if !ok {
                self.key_cands &= !(1 << j);
            }
        }
        // Keys are at most u32::MAX bytes long, so a longer one matched nothing.
        self.key_pos = u32::try_from(end).unwrap_or(u32::MAX);
    }

    fn capture_str(&mut self, piece: &[u8]) {
        if self.cap_trunc || piece.is_empty() {
            return;
        }
        let max = self.limits.max_capture_bytes;
        let buf = &mut self.extra().cap_buf;
        let room = max.saturating_sub(buf.len());
        if piece.len() <= room {
            buf.extend_from_slice(piece);
        } else {
            // `piece` starts on a char boundary: back off to one.
            let mut k = room;
            while k > 0 && piece.get(k).is_some_and(|&b| b & 0xC0 == 0x80) {
                k -= 1;
            }
            buf.extend_from_slice(piece.get(..k).unwrap_or_default());
            self.cap_trunc = true;
        }
    }

    /// A `\uXXXX` escape decoded to `code` in a decoding string.
    fn unicode_escape(&mut self, sk: Sk, code: u16) {
        if self.pending_hi != 0 {
            let hi = self.pending_hi;
            self.pending_hi = 0;
            if (0xDC00..=0xDFFF).contains(&code) {
                let c = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(code) - 0xDC00);
                self.emit_char(sk, char::from_u32(c).unwrap_or('\u{FFFD}'));
                return;
            }
            self.emit_char(sk, '\u{FFFD}');
        }
        if (0xD800..=0xDBFF).contains(&code) {
            self.pending_hi = code;
        } else {
            self.emit_char(sk, char::from_u32(u32::from(code)).unwrap_or('\u{FFFD}'));
        }
    }

    fn emit_char(&mut self, sk: Sk, c: char) {
        let mut tmp = [0u8; 4];
        self.emit_piece(sk, c.encode_utf8(&mut tmp).as_bytes());
    }

    /// A key in a tracked object ended: did it match a child node?
    fn key_end(&mut self) -> St {
        self.flush_hi(Sk::Key);
        let mut m = self.key_cands;
        self.key_cands = 0;
        let Some(node) = self.spec.node(self.cur_node) else {
            return St::Colon;
        };
        while m != 0 {
            let j = m.trailing_zeros() as usize;
            m &= m - 1;
            if let Some(&c) = node.children.get(j) {
                if self
                    .spec
                    .node(c)
                    .is_some_and(|n| n.key.len() == self.key_pos as usize)
                {
                    self.pending_node = c;
                    return St::ColonT;
                }
            }
        }
        St::Colon
    }

    /// Non-ASCII text starting at `buf[j]` inside a string of kind `sk`:
    /// validates UTF-8 up to the next delimiter. Returns the index to go on
    /// from, or `None` if an incomplete sequence was stashed at the chunk end.
    #[inline(never)]
    fn utf8_run(&mut self, buf: &[u8], j: usize, sk: Sk) -> Result<Option<usize>, ScanError> {
        let k = skip_text(buf, j);
        let seg = buf.get(j..k).unwrap_or_default();
        match str::from_utf8(seg) {
            Ok(_) => {
                if matches!(sk, Sk::Key | Sk::Cap) {
                    self.emit(sk, seg);
                }
                Ok(Some(k))
            }
            Err(e) => {
                let v = e.valid_up_to();
                if matches!(sk, Sk::Key | Sk::Cap) {
                    self.emit(sk, seg.get(..v).unwrap_or_default());
                }
                let tail = seg.get(v..).unwrap_or_default();
                if e.error_len().is_none() && k == buf.len() && tail.len() < 4 {
                    self.u8tail = [0; 4];
                    for (d, s) in self.u8tail.iter_mut().zip(tail) {
                        *d = *s;
                    }
                    self.u8len = tail.len() as u8;
                    self.u8off = self.base + (j + v) as u64;
                    Ok(None)
                } else {
                    Err(self.syntax(j + v))
                }
            }
        }
    }

    /// Continues a UTF-8 sequence split across chunks. Returns the new index
    /// and whether the sequence is complete.
    #[cold]
    fn utf8_tail(&mut self, buf: &[u8], mut i: usize, sk: Sk) -> Result<(usize, bool), ScanError> {
        let need = utf8_seq_len(self.u8tail[0]);
        while (self.u8len as usize) < need {
            let Some(&b) = buf.get(i) else {
                return Ok((i, false));
            };
            if let Some(slot) = self.u8tail.get_mut(self.u8len as usize) {
                *slot = b;
            }
            self.u8len += 1;
            i += 1;
            let cur = self.u8tail.get(..self.u8len as usize).unwrap_or_default();
            if let Err(e) = str::from_utf8(cur) {
                if e.error_len().is_some() {
                    return Err(ScanError::Syntax { offset: self.u8off });
                }
            }
        }
        if matches!(sk, Sk::Key | Sk::Cap) {
            let tail = self.u8tail;
            self.emit(sk, tail.get(..need).unwrap_or_default());
        }
        Ok((i, true))
    }

    /// Resumes the byte-wise machine where [`skip_str`] stopped short of the closing quote.
    #[cold]
    fn str_resume(
        &mut self,
        buf: &[u8],
        k: usize,
        stop: StrStop,
    ) -> Result<(usize, St), ScanError> {
        match stop {
            StrStop::Closed => Ok((k, St::After)),
            StrStop::ChunkEnd => Ok((k, St::Str)),
            StrStop::Escape => Ok((k, St::Esc)),
            StrStop::Utf8Tail => {
                self.stash_utf8(buf, k);
                Ok((buf.len(), St::Utf8))
            }
            StrStop::Invalid => Err(self.syntax(k)),
        }
    }

    /// A value ended at `e`: finish captures, and consume a directly following
    /// `,` (the common case) so the next member starts without a dispatch.
    #[inline(always)]
    fn after_value(&mut self, buf: &[u8], e: usize) -> (usize, St) {
        let st = self.value_end(buf, e);
        if st == St::After && buf.get(e) == Some(&b',') {
            (e + 1, if self.top_obj { St::Key } else { St::Value })
        } else {
            (e, st)
        }
    }

    /// Fast path for an untracked value at `buf[i]`: whole strings, numbers
    /// and literals in one go. Anything else (containers, whitespace, errors,
    /// values cut by the chunk end) is handed back to the state machine.
    #[inline(always)]
    fn fast_value(&mut self, buf: &[u8], i: usize) -> Result<(usize, St), ScanError> {
        match buf.get(i) {
            Some(&b'"') => {
                self.sk = Sk::SkipVal;
                match skip_str(buf, i + 1) {
                    (e, StrStop::Closed) => Ok(self.after_value(buf, e)),
                    (k, stop) => self.str_resume(buf, k, stop),
                }
            }
            Some(&(b'-' | b'0'..=b'9')) => match scan_num(buf, i, NumSt::Start) {
                Ok((j, _, true)) => Ok(self.after_value(buf, j)),
                Ok((j, ns, false)) => {
                    self.ns = ns;
                    Ok((j, St::Num))
                }
                Err(p) => Err(self.syntax(p)),
            },
            Some(&b't') => Ok(self.fast_lit(buf, i, 0)),
            Some(&b'f') => Ok(self.fast_lit(buf, i, 1)),
            Some(&b'n') => Ok(self.fast_lit(buf, i, 2)),
            _ => Ok((i, St::Value)),
        }
    }

    #[inline(always)]
    fn fast_lit(&mut self, buf: &[u8], i: usize, id: u8) -> (usize, St) {
        let lit = LITERALS.get(id as usize).copied().unwrap_or_default();
        if buf.get(i..i + lit.len()) == Some(lit) {
            self.after_value(buf, i + lit.len())
        } else {
            // Split by the chunk end or invalid: the byte-wise state finds out.
            self.lit = id;
            self.lit_pos = 0;
            (i, St::Lit)
        }
    }

    /// Stashes the incomplete UTF-8 sequence `buf[k..]` (1..=3 bytes) at the chunk end.
    #[cold]
    fn stash_utf8(&mut self, buf: &[u8], k: usize) {
        let tail = buf.get(k..).unwrap_or_default();
        self.u8tail = [0; 4];
        for (d, s) in self.u8tail.iter_mut().zip(tail) {
            *d = *s;
        }
        self.u8len = tail.len().min(4) as u8;
        self.u8off = self.base + k as u64;
    }

    /// Scans one chunk. On error returns it (with its absolute offset).
    fn run(&mut self, buf: &[u8]) -> Result<(), ScanError> {
        let n = buf.len();
        let mut i = 0usize;
        let mut st = self.st;
        while let Some(&b) = buf.get(i) {
            match st {
                St::ObjFirst | St::Key => match b {
                    b'"' if self.depth != self.cur_depth => {
                        // Untracked key: skip it, its colon and a simple value in one go.
                        self.sk = Sk::SkipKey;
                        match skip_str(buf, i + 1) {
                            (e, StrStop::Closed) if buf.get(e) == Some(&b':') => {
                                (i, st) = self.fast_value(buf, e + 1)?;
                            }
                            (e, StrStop::Closed) => {
                                i = e;
                                st = St::Colon;
                            }
                            (k, stop) => (i, st) = self.str_resume(buf, k, stop)?,
                        }
                    }
                    b'"' => {
                        // Key of a tracked object: decode and match it.
                        self.key_cands = self.spec.node(self.cur_node).map_or(0, |n| {
                            (1u32 << n.children.len().min(MAX_PATHS)).wrapping_sub(1) as u16
                        });
                        self.key_pos = 0;
                        self.pending_hi = 0;
                        self.sk = Sk::Key;
                        i += 1;
                        st = St::Str;
                    }
                    b'}' if st == St::ObjFirst => {
                        self.pop();
                        (i, st) = self.after_value(buf, i + 1);
                    }
                    b' ' | b'\n' | b'\r' | b'\t' => i = skip_ws(buf, i + 1),
                    _ => return Err(self.syntax(i)),
                },
                St::Value | St::ArrFirst => match b {
                    b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                        (i, st) = self.fast_value(buf, i)?;
                    }
                    b'{' => {
                        self.push(true, i)?;
                        i += 1;
                        st = St::ObjFirst;
                    }
                    b'[' => {
                        self.push(false, i)?;
                        i += 1;
                        st = St::ArrFirst;
                    }
                    b']' if st == St::ArrFirst => {
                        self.pop();
                        (i, st) = self.after_value(buf, i + 1);
                    }
                    b' ' | b'\n' | b'\r' | b'\t' => i = skip_ws(buf, i + 1),
                    _ => return Err(self.syntax(i)),
                },
                St::After => match b {
                    b',' => {
                        i += 1;
                        st = if self.top_obj { St::Key } else { St::Value };
                    }
                    b'}' if self.top_obj => {
                        self.pop();
                        (i, st) = self.after_value(buf, i + 1);
                    }
                    b']' if !self.top_obj => {
                        self.pop();
                        (i, st) = self.after_value(buf, i + 1);
                    }
                    b' ' | b'\n' | b'\r' | b'\t' => i = skip_ws(buf, i + 1),
                    _ => return Err(self.syntax(i)),
                },
                St::Colon | St::ColonT => match b {
                    b':' if st == St::Colon => (i, st) = self.fast_value(buf, i + 1)?,
                    b':' => {
                        i += 1;
                        st = St::ValueT;
                    }
                    b' ' | b'\n' | b'\r' | b'\t' => i = skip_ws(buf, i + 1),
                    _ => return Err(self.syntax(i)),
                },
                St::Str if matches!(self.sk, Sk::SkipKey | Sk::SkipVal) => match skip_str(buf, i) {
                    (e, StrStop::Closed) if self.sk == Sk::SkipVal => {
                        (i, st) = self.after_value(buf, e);
                    }
                    (e, StrStop::Closed) if buf.get(e) == Some(&b':') => {
                        (i, st) = self.fast_value(buf, e + 1)?;
                    }
                    (e, StrStop::Closed) => {
                        i = e;
                        st = St::Colon;
                    }
                    (k, stop) => (i, st) = self.str_resume(buf, k, stop)?,
                },
                St::Str => {
                    let sk = self.sk;
                    let decoding = matches!(sk, Sk::Key | Sk::Cap);
                    let j = skip_plain(buf, i);
                    if decoding && j > i {
                        self.emit(sk, buf.get(i..j).unwrap_or_default());
                    }
                    let Some(&c) = buf.get(j) else {
                        i = n;
                        continue;
                    };
                    match c {
                        b'"' => match sk {
                            Sk::SkipKey => {
                                i = j + 1;
                                st = St::Colon;
                            }
                            Sk::Key => {
                                i = j + 1;
                                st = self.key_end();
                            }
                            Sk::SkipVal | Sk::Cap => (i, st) = self.after_value(buf, j + 1),
                        },
                        b'\\' => {
                            i = j + 1;
                            st = St::Esc;
                        }
                        0x80..=0xFF => match self.utf8_run(buf, j, sk)? {
                            Some(k) => i = k,
                            None => {
                                i = n;
                                st = St::Utf8;
                            }
                        },
                        _ => return Err(self.syntax(j)),
                    }
                }
                St::Esc => {
                    let sk = self.sk;
                    let dec = match b {
                        b'"' | b'\\' | b'/' => b,
                        b'b' => 0x08,
                        b'f' => 0x0C,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            i += 1;
                            self.uni_cnt = 0;
                            self.uni_acc = 0;
                            st = St::Uni;
                            continue;
                        }
                        _ => return Err(self.syntax(i)),
                    };
                    if matches!(sk, Sk::Key | Sk::Cap) {
                        self.emit(sk, &[dec]);
                    }
                    i += 1;
                    st = St::Str;
                }
                St::Uni => {
                    while let Some(&h) = buf.get(i) {
                        let Some(v) = hex_val(h) else {
                            return Err(self.syntax(i));
                        };
                        self.uni_acc = (self.uni_acc << 4) | v;
                        self.uni_cnt += 1;
                        i += 1;
                        if self.uni_cnt == 4 {
                            let sk = self.sk;
                            if matches!(sk, Sk::Key | Sk::Cap) {
                                self.unicode_escape(sk, self.uni_acc);
                            }
                            st = St::Str;
                            break;
                        }
                    }
                }
                St::Utf8 => {
                    let (j, complete) = self.utf8_tail(buf, i, self.sk)?;
                    i = j;
                    if complete {
                        st = St::Str;
                    }
                }
                St::Num => match scan_num(buf, i, self.ns) {
                    Ok((j, _, true)) => (i, st) = self.after_value(buf, j),
                    Ok((j, ns, false)) => {
                        i = j;
                        self.ns = ns;
                    }
                    Err(p) => return Err(self.syntax(p)),
                },
                St::Lit => {
                    let lit = LITERALS.get(self.lit as usize).copied().unwrap_or_default();
                    while let (Some(&c), Some(&want)) = (buf.get(i), lit.get(self.lit_pos as usize))
                    {
                        if c != want {
                            return Err(self.syntax(i));
                        }
                        i += 1;
                        self.lit_pos += 1;
                    }
                    if self.lit_pos as usize >= lit.len() {
                        (i, st) = self.after_value(buf, i);
                    }
                }
                St::ValueT => match b {
                    b' ' | b'\n' | b'\r' | b'\t' => i = skip_ws(buf, i + 1),
                    _ => (i, st) = self.start_tracked(buf, i)?,
                },
                St::Root => match b {
                    b' ' | b'\n' | b'\r' | b'\t' => i = skip_ws(buf, i + 1),
                    b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                        self.root_obj = Some(b == b'{');
                        if b == b'{' && !self.spec.is_empty() {
                            self.push(true, i)?;
                            self.cur_node = 0;
                            self.cur_depth = 1;
                            i += 1;
                            st = St::ObjFirst;
                        } else {
                            st = St::Value;
                        }
                    }
                    _ => return Err(self.syntax(i)),
                },
                St::End => match b {
                    b' ' | b'\n' | b'\r' | b'\t' => i = skip_ws(buf, i + 1),
                    _ => {
                        return Err(ScanError::TrailingData {
                            offset: self.base + i as u64,
                        })
                    }
                },
            }
        }
        self.st = st;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
