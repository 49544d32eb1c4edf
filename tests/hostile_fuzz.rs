//! Randomized differential runs (issue 11, item 12):
//!
//! 1. the streaming scanner against `serde_json` on JSON-shaped and arbitrary bytes, fed whole
//!    and in random splits: same verdict, same captured top-level scalars, never a panic;
//! 2. arbitrary upstream responses (any status, any or a corrupt `Content-Encoding`, bombs,
//!    truncated streams, random bytes) through the proxy's own decode -> scan -> normalize path
//!    (`normalize::Hold`) for every shipped vendor: no panic, the held and decoded bytes stay
//!    within the hold limit and the decode budget, and every error verdict renders a valid
//!    problem whose body status equals its HTTP status.
//!
//! Bounded in CI by a fixed case count; run longer by hand with `ERRGATE_FUZZ_CASES`, e.g.
//! `ERRGATE_FUZZ_CASES=200000 cargo test --release --test hostile_fuzz`.

use errgate::catalog::{load_catalogs, CatalogSet};
use errgate::normalize::{Hold, HoldStep, Verdict};
use errgate::scan::{CaptureKind, Captured, ScanLimits, ScanSpec, Scanner};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Cases per property in CI.
const CI_CASES: u32 = 512;
/// The proxy's hold limit default and decode budget factor (`normalize::Hold`).
const HOLD_MAX: usize = 64 * 1024;
const DECODE_BUDGET: u64 = HOLD_MAX as u64 * 4;

fn cases() -> u32 {
    std::env::var("ERRGATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_CASES)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

fn catalogs() -> &'static CatalogSet {
    static SET: OnceLock<CatalogSet> = OnceLock::new();
    SET.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalogs");
        load_catalogs(&dir, SystemTime::now()).expect("the repo's catalogs load")
    })
}

// ------------------------------------------------------------ scanner vs serde_json

/// serde_json rejects a few things the scanner accepts on purpose (see src/scan/tests.rs).
fn serde_only_rejection(e: &serde_json::Error) -> bool {
    let m = e.to_string();
    m.contains("surrogate")
        || m.contains("end of hex escape")
        || m.contains("out of range")
        || m.contains("recursion")
}

/// JSON-ish values rendered as text, then maybe mutated.
fn json_text() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("code".to_string()),
                    Just("message".to_string()),
                    "[a-z]{0,4}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let edits = prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 0..3);
    (value, edits).prop_map(|(v, edits)| {
        let mut t = serde_json::to_vec(&v).unwrap_or_default();
        const BYTES: &[u8] = b"\"\\u{}[],:0-.eE+ \t\x00\x1f\x7f\x80\xbf\xc3\xed\xf0\xffa";
        for (pos, b, op) in edits {
            let b = BYTES[b as usize % BYTES.len()];
            let pos = if t.is_empty() { 0 } else { pos % (t.len() + 1) };
            match op {
                0 => t.insert(pos, b),
                1 if pos < t.len() => t[pos] = b,
                2 if pos < t.len() => {
                    t.remove(pos);
                }
                _ => t.truncate(pos),
            }
        }
        t
    })
}

fn scan(
    spec: &ScanSpec,
    data: &[u8],
    cuts: &[usize],
) -> (bool, Option<Captured>, Option<Captured>) {
    let mut sc = Scanner::new(
        spec,
        ScanLimits {
            max_depth: 1024,
            max_capture_bytes: 1 << 20,
        },
    );
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts {
        sc.feed(&data[at..c.max(at)]);
        at = c.max(at);
    }
    sc.feed(&data[at..]);
    let ok = sc.finish().is_ok();
    let f = |i| sc.field(i).map(|f| f.value.clone());
    (ok, f(0), f(1))
}

fn serde_scalar(v: &Value, key: &str) -> Option<Captured> {
    match v.as_object()?.get(key)? {
        Value::String(s) => Some(Captured::Str(s.clone())),
        Value::Bool(b) => Some(Captured::Bool(*b)),
        Value::Null => Some(Captured::Null),
        _ => None,
    }
}

#[test]
fn scanner_agrees_with_serde_json_on_random_documents() {
    let spec = ScanSpec::new(&[
        (&["code"][..], CaptureKind::Scalar),
        (&["message"][..], CaptureKind::Scalar),
    ]);
    let input = prop_oneof![
        4 => json_text(),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    let mut r = runner();
    r.run(
        &(input, prop::collection::vec(any::<usize>(), 0..4)),
        |(text, cuts)| {
            let whole = scan(&spec, &text, &[]);
            let split = scan(&spec, &text, &cuts);
            prop_assert_eq!(&whole, &split, "split changed the result");
            match serde_json::from_slice::<Value>(&text) {
                Ok(v) => {
                    prop_assert!(
                        whole.0,
                        "scanner refused valid JSON {:?}",
                        String::from_utf8_lossy(&text)
                    );
                    // Captured string/bool/null scalars equal serde's reading of the same key.
                    if let Some(s) = serde_scalar(&v, "code") {
                        prop_assert_eq!(whole.1.as_ref(), Some(&s));
                    }
                    if let Some(s) = serde_scalar(&v, "message") {
                        prop_assert_eq!(whole.2.as_ref(), Some(&s));
                    }
                }
                Err(e) if serde_only_rejection(&e) => {}
                Err(e) => prop_assert!(
                    !whole.0,
                    "scanner accepted what serde refused ({}): {:?}",
                    e,
                    String::from_utf8_lossy(&text)
                ),
            }
            Ok(())
        },
    )
    .expect("scanner differential");
}

// ------------------------------------------------- arbitrary upstream responses

#[derive(Debug, Clone)]
enum Enc {
    None,
    Gzip,
    Deflate,
    Br,
    /// Declared gzip, sent plain.
    LyingGzip,
    /// An encoding errgate does not decode.
    Unknown,
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(b);
    e.finish().unwrap_or_default()
}

fn deflate(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(b);
    e.finish().unwrap_or_default()
}

fn br(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 1, 20);
        let _ = w.write_all(b);
    }
    out
}

/// Bodies: vendor-shaped JSON, random bytes, or a bomb (large zero run).
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_text(),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => (1usize..3).prop_map(|half_mib| {
            let mut b = b"{\"message\":\"".to_vec();
            b.resize(half_mib << 19, b'a');
            b
        }),
        1 => (0i64..100_000, "\\PC{0,40}").prop_map(|(c, m)| {
            serde_json::to_vec(&serde_json::json!({"code": c, "message": m, "ErrorCode": c, "ActionStatus": "FAIL", "errCode": c, "errMsg": m})).unwrap_or_default()
        }),
    ]
}

fn encoding() -> impl Strategy<Value = Enc> {
    prop_oneof![
        Just(Enc::None),
        Just(Enc::Gzip),
        Just(Enc::Deflate),
        Just(Enc::Br),
        Just(Enc::LyingGzip),
        Just(Enc::Unknown)
    ]
}

#[test]
fn arbitrary_upstream_responses_through_decode_scan_normalize() {
    let set = catalogs();
    let vendors: Vec<String> = ["mantago", "openim", "microcms", "tencent-im", "pluralkit"]
        .iter()
        .filter(|v| set.vendor(v).is_some())
        .map(|v| v.to_string())
        .collect();
    assert_eq!(vendors.len(), 5, "every shipped catalog loads");
    let statuses = prop_oneof![Just(200u16), Just(404), Just(429), Just(500), 100u16..600];
    let strategy = (
        0..vendors.len(),
        statuses,
        encoding(),
        body(),
        1usize..20_000,
        0usize..3,
    );
    let mut r = runner();
    r.run(&strategy, |(vi, status, enc, body, chunk, cut)| {
        let vendor = set.vendor(&vendors[vi]).expect("vendor");
        let (name, wire) = match enc {
            Enc::None => (None, body.clone()),
            Enc::Gzip => (Some("gzip"), gzip(&body)),
            Enc::Deflate => (Some("deflate"), deflate(&body)),
            Enc::Br => (Some("br"), br(&body)),
            Enc::LyingGzip => (Some("gzip"), body.clone()),
            Enc::Unknown => (Some("zstd"), body.clone()),
        };
        // A truncated stream: cut the wire bytes short (a vendor that lies about its length).
        let wire = match cut {
            1 => wire[..wire.len() / 2].to_vec(),
            _ => wire,
        };
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        if let Some(n) = name {
            headers.insert("content-encoding", HeaderValue::from_static(n));
        }
        let mut hold = Hold::new(vendor, status, name, HOLD_MAX, ScanLimits::default());
        let mut step = hold.first_step();
        let mut fed = 0usize;
        let mut ended = false;
        for c in wire.chunks(chunk) {
            if step != HoldStep::More {
                break;
            }
            step = hold.feed(c);
            fed += c.len();
        }
        if step == HoldStep::More {
            if cut == 2 {
                hold.cut();
            } else {
                hold.end();
                ended = true;
            }
        }
        // Bounded memory and work: at most one chunk past the hold limit is held, and the
        // decoder never produced more than its budget.
        prop_assert!(hold.held_bytes() <= HOLD_MAX + chunk);
        prop_assert!(hold.held_bytes() == fed);
        prop_assert!(hold.decoded_bytes() <= DECODE_BUDGET);
        if step != HoldStep::Release {
            let (classified, _facts) = hold.classified(
                "GET",
                "/x",
                &headers,
                SystemTime::now(),
                Duration::from_secs(300),
            );
            if let Verdict::Error(p, _) = classified.verdict {
                let json = p.to_json("https://errgate.dev/problems", "rid");
                let v: Value = serde_json::from_slice(&json)
                    .map_err(|e| TestCaseError::fail(format!("problem is not JSON: {e}")))?;
                prop_assert_eq!(v["status"].as_u64(), Some(u64::from(p.status)));
                prop_assert!((400..600).contains(&p.status), "status {}", p.status);
            }
        }
        let _ = ended;
        Ok(())
    })
    .expect("upstream response path");
}
