//! Lexing without state of its own: whitespace, plain string runs (eight bytes at a time),
//! numbers (the RFC 8259 grammar as a resumable [`NumSt`]), escapes and UTF-8 validation.
//! Every function takes a chunk and an index and returns where it stopped, so the state
//! machine can resume at a chunk boundary.

/// Position inside a number, per the RFC 8259 grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NumSt {
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
    pub(super) fn is_terminal(self) -> bool {
        matches!(self, NumSt::Zero | NumSt::Int | NumSt::Frac | NumSt::Exp)
    }
}

pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
pub(super) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` equal to `b` (plus possible false
/// positives only above a true positive, which never matter for "first").
#[inline(always)]
pub(super) fn eq_mask(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * b as u64);
    x.wrapping_sub(ONES) & !x
}

/// High bit set for `"`, `\` and bytes < 0x20 in `w` (same caveat as [`eq_mask`]).
#[inline(always)]
pub(super) fn delim_mask(w: u64) -> u64 {
    (eq_mask(w, b'"') | eq_mask(w, b'\\') | (w.wrapping_sub(ONES * 0x20) & !w)) & HIGHS
}

#[inline(always)]
pub(super) fn is_delim(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Index of the first `"`, `\`, control byte or non-ASCII byte at or after `i`, or `buf.len()`.
#[inline(always)]
pub(super) fn skip_plain(buf: &[u8], i: usize) -> usize {
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
pub(super) fn skip_text(buf: &[u8], mut i: usize) -> usize {
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
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

#[inline(always)]
pub(super) fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while let Some(&b) = buf.get(i) {
        if !is_ws(b) {
            break;
        }
        i += 1;
    }
    i
}

#[inline(always)]
pub(super) fn skip_digits(buf: &[u8], mut i: usize) -> usize {
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
pub(super) fn scan_num(
    buf: &[u8],
    mut i: usize,
    mut ns: NumSt,
) -> Result<(usize, NumSt, bool), usize> {
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
pub(super) fn hex_val(b: u8) -> Option<u16> {
    match b {
        b'0'..=b'9' => Some(u16::from(b - b'0')),
        b'a'..=b'f' => Some(u16::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u16::from(b - b'A' + 10)),
        _ => None,
    }
}

/// Total length of the UTF-8 sequence led by `b` (only called on valid lead bytes).
pub(super) fn utf8_seq_len(b: u8) -> usize {
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
pub(super) fn utf8_char(buf: &[u8], j: usize) -> Result<usize, ()> {
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
pub(super) fn utf8_char_near_end(buf: &[u8], j: usize) -> Result<usize, ()> {
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
pub(super) enum StrStop {
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
pub(super) fn skip_str(buf: &[u8], mut i: usize) -> (usize, StrStop) {
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
pub(super) fn skip_utf8(buf: &[u8], j: usize) -> (usize, Option<StrStop>) {
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
