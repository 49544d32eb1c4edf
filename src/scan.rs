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
//!   when `max_depth` > 128, for the nesting bit-stack beyond 128 levels. The
//!   capture buffers are kept per thread between scanners (one spare set,
//!   emptied before it is kept, large buffers dropped), so a thread that scans
//!   body after body allocates them once, not once per body.
//! - Chunk boundaries may fall anywhere (inside strings, escapes, `\uXXXX`,
//!   numbers, literals, multi-byte UTF-8 sequences). The outcome — captured
//!   fields, error and error offset, `bytes_scanned` — does not depend on how
//!   the body was split.
//! - Never panics on any input; after the first error the scanner stays in
//!   that error state, ignores further input and keeps the fields it had
//!   completed. A field is visible only once its whole value was scanned.
//! - Nesting deeper than [`ScanLimits::max_depth`] is an error, so the cost of
//!   hostile input stays linear with tiny state.

//!
//! Layout: `scan/spec.rs` (what to capture, limits), `scan/lex.rs` (numbers, strings,
//! UTF-8), `scan/capture.rs` (key matching, captures), `scan/machine.rs` (the state machine
//! that drives them, nesting, the one UTF-8 stash). This file holds the scanner's state and
//! its public API.

mod capture;
mod lex;
mod machine;
mod spec;

use lex::NumSt;
use machine::{ScalKind, Sk, St};
use spec::NO_NODE;
use std::cell::Cell;
use std::fmt;

pub use spec::{
    CaptureKind, ScanLimits, ScanSpec, SpecError, DEFAULT_MAX_CAPTURE_BYTES, DEFAULT_MAX_DEPTH,
    MAX_PATHS,
};

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
    /// Capture buffers and deep nesting, taken on first use so that the
    /// scanner itself stays small and `new` does not allocate; given back to the
    /// thread's spare when the scanner is dropped.
    extra: Option<Box<Extra>>,
    /// Paths whose completion stops `run` early ([`Scanner::feed_until`]); 0 outside it.
    stop: u16,
    /// The state to go on in after a stop.
    resume: St,
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

/// Largest buffer (capture buffer, a field's value) a spare [`Extra`] keeps; larger ones are
/// dropped when the scanner ends, so what a thread keeps is bounded (about 5 KiB).
const SPARE_KEEP_BYTES: usize = 256;

thread_local! {
    /// The thread's spare capture state: taken by a scanner's first capture, given back
    /// emptied when the scanner is dropped (see [`Extra::recycle`]).
    static SPARE: Cell<Option<Box<Extra>>> = const { Cell::new(None) };
}

// === impl Extra ===

impl Extra {
    /// The thread's spare, or a new one. A spare was emptied before it was kept, so nothing of
    /// an earlier body is in it.
    fn take_spare() -> Box<Extra> {
        SPARE.with(Cell::take).unwrap_or_default()
    }

    /// Empties this state and keeps it as the thread's spare: the field values of the paths in
    /// `seen` (the only slots a scanner fills; the others are still empty from the spare) are
    /// cleared, their buffers kept for the next value when small; the capture buffer and the deep
    /// stack are emptied, and buffers over [`SPARE_KEEP_BYTES`] are dropped.
    fn recycle(mut self: Box<Self>, seen: u16) {
        let mut m = seen;
        while m != 0 {
            let f = m.trailing_zeros() as usize;
            m &= m - 1;
            let Some(slot) = self.fields.get_mut(f) else {
                continue;
            };
            match slot {
                Some(Field {
                    value: Captured::Str(s) | Captured::Num(s),
                    ..
                }) if s.capacity() <= SPARE_KEEP_BYTES => s.clear(),
                Some(Field {
                    value: Captured::Raw(v),
                    ..
                }) if v.capacity() <= SPARE_KEEP_BYTES => v.clear(),
                _ => *slot = None,
            }
        }
        if self.cap_buf.capacity() > SPARE_KEEP_BYTES {
            self.cap_buf = Vec::new();
        }
        self.cap_buf.clear();
        self.deep = Vec::new();
        self.raw_start = [0; MAX_PATHS];
        self.raw_depth = [0; MAX_PATHS];
        self.num_start = 0;
        // During thread exit the spare is gone: this state is just dropped.
        let _ = SPARE.try_with(|s| s.set(Some(self)));
    }
}

impl Drop for Scanner<'_> {
    fn drop(&mut self) {
        if let Some(x) = self.extra.take() {
            x.recycle(self.seen);
        }
    }
}

/// The buffer of a field's previous value, emptied, to hold its next one: with a recycled
/// [`Extra`] a captured value usually needs no allocation.
fn recycled_buffer(slot: &mut Option<Field>) -> Vec<u8> {
    let mut buf = match slot.take() {
        Some(Field {
            value: Captured::Str(s) | Captured::Num(s),
            ..
        }) => s.into_bytes(),
        Some(Field {
            value: Captured::Raw(v),
            ..
        }) => v,
        _ => Vec::new(),
    };
    buf.clear();
    buf
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
            stop: 0,
            resume: St::Root,
        }
    }

    /// The capture/deep-nesting state, taken on first use (the thread's spare, or new).
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Extra::take_spare)
    }

    /// Scans the next chunk of the body (any size, empty included). Returns
    /// [`Progress::Done`] once the top-level value ended or an error occurred
    /// (see [`Scanner::error`]); chunks fed after the value ended (even after
    /// [`Scanner::finish`]) are still checked for trailing non-whitespace.
    pub fn feed(&mut self, chunk: &[u8]) -> Progress {
        self.feed_until(chunk, 0).0
    }

    /// [`Scanner::feed`], but stops right after the value of a path in `stop` (bit `i` = path
    /// `i`) completes, if that happens inside `chunk`. Returns the progress and how many bytes of
    /// `chunk` were scanned: `chunk[n..]` was not looked at and may be fed next, with the same
    /// outcome as any other split of the body. Paths already complete do not stop the scan.
    ///
    /// Why: a held 2xx of an in-band vendor is released as soon as its in-band field says
    /// success; scanning the rest of the body first cost more than the decision (issue #10).
    pub fn feed_until(&mut self, chunk: &[u8], stop: u16) -> (Progress, usize) {
        let mut used = chunk.len();
        if self.error.is_none() {
            self.stop = stop & !self.done;
            let r = self.run(chunk);
            self.stop = 0;
            match r {
                Ok(n) => {
                    used = n;
                    let part = chunk.get(..n).unwrap_or_default();
                    if self.raw_mask != 0
                        || (self.scal_mask != 0 && self.scal_kind == ScalKind::Num)
                    {
                        self.flush_segments(part);
                    }
                    self.base += n as u64;
                }
                Err(e) => self.fail(e),
            }
        }
        let progress = if self.is_done() {
            Progress::Done
        } else {
            Progress::NeedMore
        };
        (progress, used)
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
}

#[cfg(test)]
mod tests;
