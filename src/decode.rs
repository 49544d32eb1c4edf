//! Feeds a held response body to the scanner, decoding `Content-Encoding` on the way.
//!
//! Bounded in memory and CPU: at most `max_decoded` decoded bytes reach the scanner (a small
//! compressed body can expand enormously); past that the scan is marked truncated and decoding
//! *stops*: the sink refuses further output, which makes the decoder return at once, and later
//! chunks are not decoded at all. A 64 KiB gzip or brotli bomb therefore costs about as much as
//! decoding the budget (`cargo bench --bench decode`, figures in benches/README.md). The encoded bytes themselves are
//! never changed: when a response passes through, the client gets the original encoding.
//! Pure apart from in-memory decompression.

use crate::scan::{ScanLimits, ScanSpec, Scanner};
use std::io::Write;

/// The sink's error once the decoded-byte budget is spent.
const BUDGET_REACHED: &str = "decoded-byte budget reached";

/// Bytes the brotli decoder buffers internally.
const BROTLI_BUFFER: usize = 4096;

/// The smallest brotli window (WBITS, 18..=24) that holds `max_decoded` bytes of output.
///
/// Why: a brotli stream declares its window (up to 16 MiB) in its first bits, and the decoder
/// allocates a ring buffer of that size before decoding anything: for a bomb that is most of
/// the cost. errgate never decodes more than `max_decoded` bytes, and while the output is
/// shorter than the window every back-reference and dictionary reference decodes the same
/// (RFC 7932 §4: the largest distance is min(window - 16, bytes so far)), so a window of at
/// least `max_decoded + 16` bytes gives the same output up to the budget.
fn brotli_window_bits(max_decoded: u64) -> u8 {
    let need = max_decoded.saturating_add(16);
    let mut bits = 18u8;
    while bits < 24 && (1u64 << bits) < need {
        bits += 1;
    }
    bits
}

/// The first byte of a brotli stream with its WBITS lowered to `wbits` when it declares a
/// larger window in the 4-bit form (WBITS 18..=24: bit 0 set, bits 1-3 = WBITS - 17). Other
/// forms (WBITS 16, 17 and 10..=15) are already small and are left alone.
fn shrink_brotli_window(first: u8, wbits: u8) -> u8 {
    let n = (first >> 1) & 0b111;
    let want = wbits.saturating_sub(17).clamp(1, 7);
    if first & 1 == 1 && n != 0 && n > want {
        (first & !0b1110) | (want << 1)
    } else {
        first
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A `Content-Encoding` errgate does not decode.
    #[error("unsupported content encoding `{0}`")]
    Unsupported(String),
    /// The compressed stream is corrupt.
    #[error("corrupt {0} stream")]
    Corrupt(&'static str),
}

/// The scanner plus a decoded-byte budget.
pub struct Sink<'s> {
    scanner: Scanner<'s>,
    decoded: u64,
    max_decoded: u64,
    over_limit: bool,
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (take, _) = self.scan_within_budget(buf, 0);
        if take < buf.len() {
            // Stop the decoder: it returns this error from its `write` without decoding more.
            // `BodyScan` tells it apart from a corrupt stream by `over_limit`.
            return Err(std::io::Error::other(BUDGET_REACHED));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink<'_> {
    /// Counts what of `buf` fits the budget (setting `over_limit` when not all of it does) and
    /// scans it, the scanner stopping right after a path of `stop` completes
    /// ([`Scanner::feed_until`]; 0 scans all). Returns how many bytes were counted, and the range
    /// counted but not scanned if the scanner stopped.
    fn scan_within_budget(
        &mut self,
        buf: &[u8],
        stop: u16,
    ) -> (usize, Option<std::ops::Range<usize>>) {
        let take = self.room(buf.len());
        let mut scanned = take;
        if take > 0 && !self.scanner.is_done() {
            scanned = self
                .scanner
                .feed_until(buf.get(..take).unwrap_or_default(), stop)
                .1;
        }
        self.count(take, buf.len());
        (take, (scanned < take).then_some(scanned..take))
    }

    /// How much of `len` bytes fits the budget.
    fn room(&self, len: usize) -> usize {
        (len as u64).min(self.max_decoded.saturating_sub(self.decoded)) as usize
    }

    /// Counts `take` of `len` bytes, setting `over_limit` when not all of them fit.
    fn count(&mut self, take: usize, len: usize) {
        self.decoded += take as u64;
        if take < len {
            self.over_limit = true;
        }
    }
}

enum Inner<'s> {
    Identity(Sink<'s>),
    Gzip(Box<flate2::write::MultiGzDecoder<Sink<'s>>>),
    Deflate(Box<flate2::write::ZlibDecoder<Sink<'s>>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Sink<'s>>>),
}

/// A body being scanned.
pub struct BodyScan<'s> {
    inner: Inner<'s>,
    encoding: &'static str,
    corrupt: bool,
    /// For brotli: the largest window the decoder is allowed to allocate, until the stream
    /// header (first byte) has been seen.
    brotli_window: Option<u8>,
}

// === impl BodyScan ===

impl<'s> BodyScan<'s> {
    /// Starts a scan for a body with this `Content-Encoding` (None or `identity` = plain).
    pub fn new(
        content_encoding: Option<&str>,
        spec: &'s ScanSpec,
        limits: ScanLimits,
        max_decoded: u64,
    ) -> Result<BodyScan<'s>, DecodeError> {
        let sink = Sink {
            scanner: Scanner::new(spec, limits),
            decoded: 0,
            max_decoded,
            over_limit: false,
        };
        let enc = content_encoding.map(|e| e.trim().to_ascii_lowercase());
        let (inner, encoding) = match enc.as_deref() {
            None | Some("") | Some("identity") => (Inner::Identity(sink), "identity"),
            Some("gzip") | Some("x-gzip") => (
                Inner::Gzip(Box::new(flate2::write::MultiGzDecoder::new(sink))),
                "gzip",
            ),
            Some("deflate") => (
                Inner::Deflate(Box::new(flate2::write::ZlibDecoder::new(sink))),
                "deflate",
            ),
            Some("br") => (
                Inner::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                    sink,
                    BROTLI_BUFFER,
                ))),
                "br",
            ),
            Some(other) => return Err(DecodeError::Unsupported(other.to_string())),
        };
        let brotli_window =
            matches!(inner, Inner::Brotli(_)).then(|| brotli_window_bits(max_decoded));
        Ok(BodyScan {
            inner,
            encoding,
            corrupt: false,
            brotli_window,
        })
    }

    /// For a plain body's first chunk: when `decide` finds the answer in the chunk's first bytes
    /// (returning how many it read, all within the decoded-byte budget), counts the chunk as
    /// [`BodyScan::feed_until`] would and returns true without scanning it; the caller then
    /// feeds nothing more. Otherwise (an encoded body, a later chunk, no answer) nothing happens.
    pub fn decide_by_prefix(
        &mut self,
        chunk: &[u8],
        decide: impl FnOnce(&[u8]) -> Option<usize>,
    ) -> bool {
        let Inner::Identity(s) = &mut self.inner else {
            return false;
        };
        if s.decoded != 0 || self.corrupt {
            return false;
        }
        match decide(chunk) {
            // The answer's bytes and the delimiter after them were within the budget.
            Some(n) if (n as u64) < s.max_decoded => {
                let take = s.room(chunk.len());
                s.count(take, chunk.len());
                true
            }
            _ => false,
        }
    }

    /// Feeds one encoded chunk. Once the decoded-byte budget is spent this returns at once
    /// without decoding.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        if self.corrupt {
            return Err(DecodeError::Corrupt(self.encoding));
        }
        if self.over_limit() {
            return Ok(());
        }
        let r = match &mut self.inner {
            Inner::Identity(s) => s.write_all(chunk),
            Inner::Gzip(d) => d.write_all(chunk),
            Inner::Deflate(d) => d.write_all(chunk),
            Inner::Brotli(d) => match (self.brotli_window.take(), chunk.split_first()) {
                (Some(wbits), Some((&first, rest))) => d
                    .write_all(&[shrink_brotli_window(first, wbits)])
                    .and_then(|()| d.write_all(rest)),
                (window, _) => {
                    self.brotli_window = window;
                    d.write_all(chunk)
                }
            },
        };
        match r {
            Ok(()) => Ok(()),
            // The budget stopped the decoder: not the stream's fault.
            Err(_) if self.over_limit() => Ok(()),
            Err(_) => {
                self.corrupt = true;
                Err(DecodeError::Corrupt(self.encoding))
            }
        }
    }

    /// [`BodyScan::feed`], letting the scanner stop right after path `stop` completes when the
    /// body is plain (encoded bodies are fed whole). Returns the range of `chunk` counted in
    /// [`BodyScan::decoded_bytes`] but not scanned yet, if the scanner stopped: hand it to
    /// [`BodyScan::scan_rest`] to go on as if the chunk had been fed whole.
    pub fn feed_until(
        &mut self,
        chunk: &[u8],
        stop: Option<usize>,
    ) -> Result<Option<std::ops::Range<usize>>, DecodeError> {
        let mask = stop
            .filter(|&i| i < crate::scan::MAX_PATHS)
            .map_or(0, |i| 1u16 << i);
        match &mut self.inner {
            Inner::Identity(s) if mask != 0 && !self.corrupt && !s.over_limit => {
                // Counted as `write` counts it; over the budget `over_limit` is set as `write` sets it.
                Ok(s.scan_within_budget(chunk, mask).1)
            }
            _ => self.feed(chunk).map(|()| None),
        }
    }

    /// Scans the part of a chunk [`BodyScan::feed_until`] left unscanned (already counted).
    pub fn scan_rest(&mut self, rest: &[u8]) {
        self.sink_mut().scanner.feed(rest);
    }

    /// The end of the body: flushes the decoder and finishes the scan.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if self.corrupt {
            return Err(DecodeError::Corrupt(self.encoding));
        }
        if self.over_limit() {
            // Decoding stopped at the budget; the rest of the stream is never decoded.
            return Ok(());
        }
        let r = match &mut self.inner {
            Inner::Identity(_) => Ok(()),
            Inner::Gzip(d) => d.try_finish(),
            Inner::Deflate(d) => d.try_finish(),
            Inner::Brotli(d) => d.flush(),
        };
        if r.is_err() && self.over_limit() {
            return Ok(());
        }
        if r.is_err() {
            self.corrupt = true;
            return Err(DecodeError::Corrupt(self.encoding));
        }
        let sink = self.sink_mut();
        if !sink.over_limit {
            let _ = sink.scanner.finish();
        }
        Ok(())
    }

    fn sink(&self) -> &Sink<'s> {
        match &self.inner {
            Inner::Identity(s) => s,
            Inner::Gzip(d) => d.get_ref(),
            Inner::Deflate(d) => d.get_ref(),
            Inner::Brotli(d) => d.get_ref(),
        }
    }

    fn sink_mut(&mut self) -> &mut Sink<'s> {
        match &mut self.inner {
            Inner::Identity(s) => s,
            Inner::Gzip(d) => d.get_mut(),
            Inner::Deflate(d) => d.get_mut(),
            Inner::Brotli(d) => d.get_mut(),
        }
    }

    /// The scanner.
    pub fn scanner(&self) -> &Scanner<'s> {
        &self.sink().scanner
    }

    /// Decoded bytes fed to the scanner.
    pub fn decoded_bytes(&self) -> u64 {
        self.sink().decoded
    }

    /// Whether decoded output went past the budget.
    pub fn over_limit(&self) -> bool {
        self.sink().over_limit
    }

    /// Whether the encoded stream was corrupt.
    pub fn is_corrupt(&self) -> bool {
        self.corrupt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::CaptureKind;
    use crate::scan::Captured;

    fn spec() -> ScanSpec {
        ScanSpec::new(&[(&["code"][..], CaptureKind::Scalar)])
    }

    fn limits() -> ScanLimits {
        ScanLimits::default()
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn gzip_body_is_decoded_for_the_scanner_in_small_chunks() {
        let s = spec();
        let z = gzip(br#"{"code":20002,"message":"Member not found."}"#);
        let mut b = BodyScan::new(Some("gzip"), &s, limits(), 1 << 20).expect("gzip supported");
        for c in z.chunks(3) {
            b.feed(c).expect("valid gzip");
        }
        b.finish().expect("finish");
        assert!(
            matches!(&b.scanner().field(0).map(|f| &f.value), Some(Captured::Num(n)) if n == "20002")
        );
    }

    #[test]
    fn brotli_window_is_lowered_only_when_larger_than_the_budget_needs() {
        assert_eq!(brotli_window_bits(64 * 1024), 18);
        assert_eq!(brotli_window_bits(1 << 18), 19);
        assert_eq!(brotli_window_bits(1), 18);
        assert_eq!(brotli_window_bits(u64::MAX), 24);
        // WBITS 24 (bit 0 set, n = 7) lowered to 19 (n = 2); the other bits are kept.
        assert_eq!(shrink_brotli_window(0b1111_1111, 19), 0b1111_0101);
        // WBITS 18 (n = 1) is already small.
        assert_eq!(shrink_brotli_window(0b0000_0011, 19), 0b0000_0011);
        // WBITS 16 (bit 0 clear) and the 7-bit forms (n = 0) are left alone.
        assert_eq!(shrink_brotli_window(0b1111_1110, 19), 0b1111_1110);
        assert_eq!(shrink_brotli_window(0b1111_0001, 19), 0b1111_0001);
    }

    #[test]
    fn large_window_brotli_decodes_the_same_under_a_lowered_window() {
        let plain: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("{{\"k\":{}}}", i % 977).into_bytes())
            .collect();
        let mut enc = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut enc, 4096, 9, 24);
            w.write_all(&plain).expect("compress");
        }
        for budget in [1u64 << 10, 1 << 16, 1 << 18, 1 << 20] {
            let window = brotli_window_bits(budget);
            let mut lowered = enc.clone();
            lowered[0] = shrink_brotli_window(lowered[0], window);
            assert_ne!(
                lowered[0], enc[0],
                "the test stream must declare a large window"
            );
            let mut out = Vec::new();
            let mut d = brotli_decompressor::DecompressorWriter::new(&mut out, 4096);
            // Decoding past the window may fail; what was decoded up to the budget must match.
            let _ = d.write_all(&lowered);
            let _ = d.flush();
            drop(d);
            let n = (budget as usize).min(plain.len());
            assert!(out.len() >= n, "decoded {} of {n}", out.len());
            assert_eq!(&out[..n], &plain[..n], "budget {budget}");
        }
    }

    #[test]
    fn brotli_body_is_decoded() {
        let s = spec();
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(br#"{"code":"7"}"#).expect("write");
        }
        let mut b = BodyScan::new(Some("br"), &s, limits(), 1 << 20).expect("br supported");
        b.feed(&out).expect("valid br");
        b.finish().expect("finish");
        assert!(
            matches!(&b.scanner().field(0).map(|f| &f.value), Some(Captured::Str(v)) if v == "7")
        );
    }

    #[test]
    fn decompression_bomb_stops_at_the_budget() {
        let s = spec();
        let mut body = b"[".to_vec();
        body.extend(std::iter::repeat_n(b"0,".as_slice(), 500_000).flatten());
        body.extend(b"0]");
        let z = gzip(&body);
        let mut b = BodyScan::new(Some("gzip"), &s, limits(), 4096).expect("gzip");
        b.feed(&z).expect("valid gzip");
        b.finish().expect("finish");
        assert!(b.over_limit());
        assert_eq!(b.decoded_bytes(), 4096);
    }

    fn brotli(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
            w.write_all(b).expect("write");
        }
        out
    }

    /// A bomb: `n` bytes of zeros compressed.
    fn zeros(n: usize) -> Vec<u8> {
        vec![b'0'; n]
    }

    #[test]
    fn decoding_stops_at_the_budget_for_every_encoding_and_chunking() {
        let s = spec();
        let plain = zeros(8 << 20);
        let bodies = [("gzip", gzip(&plain)), ("br", brotli(&plain))];
        for (enc, z) in &bodies {
            for chunk in [1usize, 7, 4096, z.len()] {
                let mut b = BodyScan::new(Some(enc), &s, limits(), 10_000).expect("supported");
                for c in z.chunks(chunk) {
                    b.feed(c).expect("not corrupt");
                }
                b.finish().expect("finish");
                assert!(b.over_limit(), "{enc} {chunk}");
                assert!(!b.is_corrupt(), "{enc} {chunk}");
                assert_eq!(b.decoded_bytes(), 10_000, "{enc} {chunk}");
            }
        }
    }

    #[test]
    fn a_body_exactly_at_the_budget_is_not_over_it() {
        let s = spec();
        let body = br#"{"code":1}"#;
        let mut b = BodyScan::new(Some("gzip"), &s, limits(), body.len() as u64).expect("gzip");
        b.feed(&gzip(body)).expect("valid");
        b.finish().expect("finish");
        assert!(!b.over_limit());
        assert_eq!(b.decoded_bytes(), body.len() as u64);
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let s = spec();
        let mut b = BodyScan::new(Some("gzip"), &s, limits(), 1 << 20).expect("gzip");
        let r = b
            .feed(b"\x1f\x8b\x08\x00garbage garbage garbage")
            .and_then(|_| b.finish());
        assert!(r.is_err());
    }

    #[test]
    fn unknown_encoding_is_reported() {
        let s = spec();
        assert!(matches!(
            BodyScan::new(Some("zstd"), &s, limits(), 10),
            Err(DecodeError::Unsupported(_))
        ));
    }
}
