//! Conformance of `errgate::scan` against JSONTestSuite (nst/JSONTestSuite, `test_parsing`).
//!
//! The corpus is read from `../shared/data/JSONTestSuite/test_parsing` relative to the crate
//! root (or `$ERRGATE_SHARED_DIR/data/...`) and never copied into the repo; when it is absent
//! the test fails.
//! For every `y_`/`n_` file the scanner's verdict (fed whole, and fed one byte at a time) must
//! equal `serde_json::from_slice::<serde_json::Value>`'s; `i_` files must merely not panic.

use std::path::Path;

use errgate::scan::{ScanLimits, ScanSpec, Scanner, DEFAULT_MAX_CAPTURE_BYTES};

/// Above serde_json's own recursion limit (128), so depth never decides a verdict here.
const SUITE_MAX_DEPTH: usize = 1024;

fn limits() -> ScanLimits {
    ScanLimits {
        max_depth: SUITE_MAX_DEPTH,
        max_capture_bytes: DEFAULT_MAX_CAPTURE_BYTES,
    }
}

fn verdict_chunked(spec: &ScanSpec, data: &[u8], chunk: usize) -> bool {
    let mut sc = Scanner::new(spec, limits());
    for piece in data.chunks(chunk.max(1)) {
        sc.feed(piece);
    }
    sc.finish().is_ok()
}

#[test]
fn scanner_agrees_with_serde_json_on_json_test_suite() {
    // `shared/` beside the clone, or where ERRGATE_SHARED_DIR says (a worktree elsewhere).
    let shared = std::env::var_os("ERRGATE_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("data/JSONTestSuite/test_parsing");
    // A missing corpus fails the test: a conformance check that did not run must not pass.
    assert!(
        dir.is_dir(),
        "JSONTestSuite not found at {} (shared/ beside the clone, or set ERRGATE_SHARED_DIR)",
        dir.display()
    );
    // A spec that tracks a few plausible keys, so the capture paths run too.
    let spec = ScanSpec::new(&[
        (&["a"], errgate::scan::CaptureKind::Scalar),
        (&[""], errgate::scan::CaptureKind::Raw),
        (&["asd"], errgate::scan::CaptureKind::Scalar),
    ]);
    let empty = ScanSpec::new(&[]);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("read test_parsing dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "no files in {}", dir.display());

    let (mut checked, mut informative) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    for path in &entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(path).expect("read test file");
        let expected = serde_json::from_slice::<serde_json::Value>(&data).is_ok();
        for s in [&spec, &empty] {
            let whole = verdict_chunked(s, &data, data.len());
            let bytewise = verdict_chunked(s, &data, 1);
            if name.starts_with("i_") {
                continue;
            }
            if whole != expected || bytewise != expected {
                mismatches.push(format!(
                    "{name}: serde_json valid={expected}, scanner whole={whole} 1-byte={bytewise}"
                ));
            }
        }
        if name.starts_with("i_") {
            informative += 1;
        } else {
            assert!(
                name.starts_with("y_") || name.starts_with("n_"),
                "unexpected file {name}"
            );
            checked += 1;
        }
    }
    println!("JSONTestSuite: {checked} y_/n_ files checked, {informative} i_ files run");
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}
