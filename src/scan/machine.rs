//! The state machine: one byte-dispatch loop (`Scanner::run`) over the states [`St`], with
//! fast paths for untracked values, nesting (a bit-stack), and the one path that stashes a
//! UTF-8 sequence split by a chunk end (`Scanner::stash_utf8`).

use super::lex::*;
use super::spec::NO_NODE;
use super::{ScanError, Scanner, MAX_PATHS};
use std::str;

/// Kind of string being scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sk {
    /// Object key that cannot match a path: validate only.
    SkipKey,
    /// Value string not captured: validate only.
    SkipVal,
    /// Object key in a tracked object: decode and match against the trie.
    Key,
    /// Value string captured as a scalar: decode into the capture buffer.
    Cap,
}

/// Parser state between bytes. Data of the string, number and literal states
/// lives in scanner fields (`sk`, `ns`, `lit`, ...), keeping this a plain byte
/// so the dispatch stays cheap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum St {
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
    /// [`Scanner::feed_until`]: a stop field just completed; `run` returns here and the real
    /// next state is in `Scanner::resume`. Never stored in `Scanner::st`.
    Pause,
}

/// Kind of the scalar being captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ScalKind {
    Str,
    Num,
    Bool(bool),
    Null,
}

pub(super) const LITERALS: [&[u8]; 3] = [b"true", b"false", b"null"];

impl Scanner<'_> {
    #[inline(always)]
    pub(super) fn push(&mut self, obj: bool, pos: usize) -> Result<(), ScanError> {
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
    pub(super) fn set_deep(&mut self, k: usize, obj: bool) {
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
    pub(super) fn pop(&mut self) {
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
    pub(super) fn value_end(&mut self, buf: &[u8], e: usize) -> St {
        let next = if self.depth == 0 { St::End } else { St::After };
        if (self.scal_mask | self.raw_mask) != 0 {
            self.end_captures(buf, e);
            // Checked only where a capture ended: no cost on the hot path.
            if self.done & self.stop != 0 {
                self.resume = next;
                return St::Pause;
            }
        }
        next
    }

    /// Non-ASCII text starting at `buf[j]` inside a string of kind `sk`:
    /// validates UTF-8 up to the next delimiter. Returns the index to go on
    /// from, or `None` if an incomplete sequence was stashed at the chunk end.
    #[inline(never)]
    pub(super) fn utf8_run(
        &mut self,
        buf: &[u8],
        j: usize,
        sk: Sk,
    ) -> Result<Option<usize>, ScanError> {
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
                    self.stash_utf8(buf, j + v);
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
    pub(super) fn utf8_tail(
        &mut self,
        buf: &[u8],
        mut i: usize,
        sk: Sk,
    ) -> Result<(usize, bool), ScanError> {
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
    pub(super) fn str_resume(
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
    pub(super) fn after_value(&mut self, buf: &[u8], e: usize) -> (usize, St) {
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
    pub(super) fn fast_value(&mut self, buf: &[u8], i: usize) -> Result<(usize, St), ScanError> {
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
    pub(super) fn fast_lit(&mut self, buf: &[u8], i: usize, id: u8) -> (usize, St) {
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

    /// Stashes the incomplete UTF-8 sequence `buf[k..]` (1..=3 bytes) at the chunk end: the one
    /// stash path, for skipped strings (`str_resume`) and decoded ones (`utf8_run`) alike;
    /// `utf8_tail` completes it in the next chunk.
    #[cold]
    pub(super) fn stash_utf8(&mut self, buf: &[u8], k: usize) {
        let tail = buf.get(k..).unwrap_or_default();
        self.u8tail = [0; 4];
        for (d, s) in self.u8tail.iter_mut().zip(tail) {
            *d = *s;
        }
        self.u8len = tail.len().min(4) as u8;
        self.u8off = self.base + k as u64;
    }

    /// Scans one chunk; returns how many bytes were scanned (all of them unless a stop field of
    /// [`Scanner::feed_until`] completed). On error returns it (with its absolute offset).
    pub(super) fn run(&mut self, buf: &[u8]) -> Result<usize, ScanError> {
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
                St::Pause => break,
            }
        }
        if st == St::Pause {
            self.st = self.resume;
            return Ok(i);
        }
        self.st = st;
        Ok(n)
    }
}
