//! Decompression cost is bounded: a 64 KiB gzip or brotli bomb (a compressed error body that
//! expands to tens of MiB or more) costs about what a plain 64 KiB error body costs, because
//! `BodyScan` stops decoding at the decoded-byte budget (hold limit x 4, as the proxy sets it).
//!
//! `cargo bench --bench decode` (add `-- --quick` for a fast run). Figures: benches/README.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use errgate::catalog::{load_catalogs, CatalogSet};
use errgate::decode::BodyScan;
use errgate::scan::ScanLimits;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

/// The proxy's limits.
const LIMITS: ScanLimits = ScanLimits::DEFAULT;
const HOLD_MAX: u64 = 64 * 1024;
/// What the proxy decodes at most: the hold limit (`normalize::DECODE_BUDGET_FACTOR` is 1).
const DECODE_BUDGET: u64 = HOLD_MAX;
/// The size of each body as it arrives (compressed for the bombs).
const BODY: usize = 64 * 1024;
/// Upstream read size the proxy sees on a busy connection.
const CHUNK: usize = 16 * 1024;

fn catalogs() -> CatalogSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalogs");
    load_catalogs(&dir, SystemTime::now()).expect("the repo's catalogs load")
}

/// A plain 64 KiB JSON error body: a PluralKit-style envelope with a long message.
fn plain_error() -> Vec<u8> {
    let head = br#"{"code":20002,"message":""#;
    let tail = br#""}"#;
    let mut b = head.to_vec();
    b.extend(std::iter::repeat_n(b'x', BODY - head.len() - tail.len()));
    b.extend(tail);
    b
}

/// A JSON array of zeros, `n` bytes long: valid JSON, so the scanner works on all of it.
fn zeros_json(n: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(n);
    b.push(b'[');
    while b.len() + 2 < n {
        b.extend_from_slice(b"0,");
    }
    b.extend_from_slice(b"0]");
    b
}

/// The largest gzip of zeros JSON that fits in 64 KiB (about 64 MiB decoded).
fn gzip_bomb() -> (Vec<u8>, usize) {
    let plain = zeros_json(63 << 20);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&plain).expect("gzip");
    let z = e.finish().expect("gzip");
    assert!(z.len() <= BODY, "gzip bomb is {} bytes", z.len());
    (z, plain.len())
}

/// A brotli bomb: zeros JSON that expands to 256 MiB.
fn brotli_bomb() -> (Vec<u8>, usize) {
    let plain = zeros_json(256 << 20);
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 1 << 16, 5, 22);
        w.write_all(&plain).expect("brotli");
    }
    assert!(out.len() <= BODY, "brotli bomb is {} bytes", out.len());
    (out, plain.len())
}

fn scan_all(spec: &errgate::scan::ScanSpec, enc: Option<&str>, body: &[u8]) -> u64 {
    let mut s = BodyScan::new(enc, spec, LIMITS, DECODE_BUDGET).expect("supported encoding");
    for c in body.chunks(CHUNK) {
        if s.feed(c).is_err() {
            break;
        }
    }
    let _ = s.finish();
    s.decoded_bytes()
}

fn bench(c: &mut Criterion) {
    let set = catalogs();
    let vendor = set.vendor("pluralkit").expect("pluralkit catalog");
    let spec = &vendor.spec;
    let plain = plain_error();
    let (gz, gz_plain) = gzip_bomb();
    let (br, br_plain) = brotli_bomb();
    eprintln!(
        "gzip bomb: {} bytes -> {} MiB; brotli bomb: {} bytes -> {} MiB; budget {} KiB",
        gz.len(),
        gz_plain >> 20,
        br.len(),
        br_plain >> 20,
        DECODE_BUDGET >> 10
    );
    let mut g = c.benchmark_group("decode_64k");
    g.throughput(Throughput::Bytes(BODY as u64));
    g.bench_function("plain_error", |b| {
        b.iter(|| black_box(scan_all(spec, None, black_box(&plain))))
    });
    g.bench_function("gzip_bomb", |b| {
        b.iter(|| black_box(scan_all(spec, Some("gzip"), black_box(&gz))))
    });
    g.bench_function("brotli_bomb", |b| {
        b.iter(|| black_box(scan_all(spec, Some("br"), black_box(&br))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
