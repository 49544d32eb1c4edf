//! Capture and path tracking: matching keys against the spec's trie, starting and ending
//! captures, decoding captured strings (escapes, surrogates) into bounded buffers.

use super::machine::{ScalKind, Sk, St};
use super::spec::NO_NODE;
use super::{recycled_buffer, Captured, Field, ScanError, Scanner};

/// Appends `piece` to `buf`, keeping at most `max` bytes; sets `trunc` when something was dropped.
pub(super) fn append_bounded(buf: &mut Vec<u8>, piece: &[u8], max: usize, trunc: &mut bool) {
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

impl Scanner<'_> {
    #[cold]
    pub(super) fn end_captures(&mut self, buf: &[u8], e: usize) {
        let max = self.limits.max_capture_bytes;
        if self.scal_mask != 0 {
            let kind = self.scal_kind;
            match kind {
                ScalKind::Str => self.flush_hi(Sk::Cap),
                ScalKind::Num => {
                    let mut trunc = self.cap_trunc;
                    let x = self.extra();
                    let seg = buf.get(x.num_start..e).unwrap_or_default();
                    append_bounded(&mut x.cap_buf, seg, max, &mut trunc);
                    self.cap_trunc = trunc;
                }
                ScalKind::Bool(_) | ScalKind::Null => {}
            }
            let truncated = self.cap_trunc;
            self.cap_trunc = false;
            let mut m = self.scal_mask;
            self.scal_mask = 0;
            let mut done = 0;
            let x = self.extra();
            while m != 0 {
                let f = m.trailing_zeros() as usize;
                m &= m - 1;
                let Some(slot) = x.fields.get_mut(f) else {
                    continue;
                };
                // The text goes into the buffer the slot's previous value had (none is visible:
                // `done` says which slots are), so a recycled `Extra` needs no allocation.
                let text = |slot: &mut Option<Field>| {
                    let mut v = recycled_buffer(slot);
                    v.extend_from_slice(&x.cap_buf);
                    String::from_utf8(v)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                };
                let value = match kind {
                    ScalKind::Str => Captured::Str(text(slot)),
                    ScalKind::Num => Captured::Num(text(slot)),
                    ScalKind::Bool(b) => Captured::Bool(b),
                    ScalKind::Null => Captured::Null,
                };
                *slot = Some(Field { value, truncated });
                done |= 1 << f;
            }
            self.done |= done;
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
    pub(super) fn flush_segments(&mut self, buf: &[u8]) {
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
    pub(super) fn start_tracked(&mut self, buf: &[u8], i: usize) -> Result<(usize, St), ScanError> {
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
                    value: Captured::Raw(recycled_buffer(slot)),
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
    pub(super) fn flush_hi(&mut self, sk: Sk) {
        if self.pending_hi != 0 {
            self.pending_hi = 0;
            self.emit_piece(sk, "\u{FFFD}".as_bytes());
        }
    }

    /// Decoded string content for `Sk::Key` / `Sk::Cap` (after any pending surrogate).
    #[inline]
    pub(super) fn emit(&mut self, sk: Sk, piece: &[u8]) {
        self.flush_hi(sk);
        self.emit_piece(sk, piece);
    }

    pub(super) fn emit_piece(&mut self, sk: Sk, piece: &[u8]) {
        match sk {
            Sk::Key => self.match_key(piece),
            Sk::Cap => self.capture_str(piece),
            Sk::SkipKey | Sk::SkipVal => {}
        }
    }

    pub(super) fn match_key(&mut self, piece: &[u8]) {
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

    pub(super) fn capture_str(&mut self, piece: &[u8]) {
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
    pub(super) fn unicode_escape(&mut self, sk: Sk, code: u16) {
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

    pub(super) fn emit_char(&mut self, sk: Sk, c: char) {
        let mut tmp = [0u8; 4];
        self.emit_piece(sk, c.encode_utf8(&mut tmp).as_bytes());
    }

    /// A key in a tracked object ended: did it match a child node?
    pub(super) fn key_end(&mut self) -> St {
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
}
