//! `errgate explain VENDOR CODE [--status N]`: the catalog entry and the canonical answer,
//! computed by the same normalizer the proxy uses.

use super::ConfigArg;
use crate::catalog::{Entry, VendorCatalog};
use crate::config::Config;
use crate::normalize::{classify_error, BodyState, ResponseFacts, ScanFacts, Verdict};
use std::process::ExitCode;
use std::time::SystemTime;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Vendor id (catalog file stem).
    pub vendor: String,
    /// Vendor code; for vendors without codes (microcms) a reason such as CONTENT_NOT_FOUND.
    pub code: String,
    /// Upstream HTTP status, for vendors that key codes by status (pluralkit code 0).
    #[arg(long)]
    pub status: Option<u16>,
    #[command(flatten)]
    cfg: ConfigArg,
}

fn print_entry(e: &Entry) {
    println!("entry:");
    if let Some(c) = &e.code {
        println!("  code: {c}");
    }
    if let Some(s) = e.vendor_status {
        println!("  vendor_status: {s}");
    }
    if let Some(s) = e.match_status {
        println!("  match.status: {s}");
    }
    if let Some(m) = &e.match_method {
        println!("  match.method: {m}");
    }
    if let Some(p) = &e.match_path {
        println!("  match.path: {}", p.as_str());
    }
    if let Some(m) = &e.match_message {
        println!("  match.message: {m:?}");
    }
    println!("  canonical: {}", e.canonical.as_str());
    println!("  http_status: {}", e.http_status);
    println!("  reason: {}", e.reason);
    println!("  retryable: {}", e.retryable);
    if let Some(ms) = e.retry_after_ms {
        println!("  retry_after_ms: {ms}");
    }
    println!("  detail: {:?}", e.detail);
    if let Some(o) = &e.original {
        println!("  original: {o:?}");
    }
    if let Some(w) = &e.why {
        println!("  why: {w:?}");
    }
    if let Some(d) = &e.docs {
        println!("  docs: {d}");
    }
}

/// Upstream status assumed for an error whose status nothing gives: an in-band vendor reports
/// its errors in a 200; otherwise a bare "error" status, which maps to nothing more specific.
const UNSTATED_ERROR_STATUS: u16 = 500;

/// The one rule for the upstream status an explanation assumes: `--status`, else the entry's
/// `match.status`, else its `vendor_status`, else 200 for an in-band vendor and
/// [`UNSTATED_ERROR_STATUS`] otherwise.
fn upstream_status(vendor: &VendorCatalog, e: Option<&Entry>, asked: Option<u16>) -> u16 {
    asked
        .or(e.and_then(|e| e.match_status))
        .or(e.and_then(|e| e.vendor_status))
        .unwrap_or(if vendor.is_in_band() {
            200
        } else {
            UNSTATED_ERROR_STATUS
        })
}

/// Prints the entry and the answer.
pub fn run(args: Args) -> ExitCode {
    args.cfg.with_vendor(&args.vendor, |config, vendor| {
        explain(&args, config, vendor)
    })
}

fn explain(args: &Args, config: &Config, vendor: &VendorCatalog) -> ExitCode {
    let code = args.code.trim();
    let mut candidates: Vec<&Entry> = vendor.entries_for_code(code).collect();
    let by_reason = candidates.is_empty();
    if by_reason {
        candidates = vendor
            .entries
            .iter()
            .filter(|e| e.reason.eq_ignore_ascii_case(code))
            .collect();
    }
    if let Some(st) = args.status {
        let exact: Vec<&Entry> = candidates
            .iter()
            .copied()
            .filter(|e| e.match_status.is_none_or(|s| s == st))
            .collect();
        candidates = exact;
    }
    let headers = http::HeaderMap::new();
    // The proxy's classification of a complete response, printed through its renderer.
    let answer = |status: u16, method: &str, path: &str, scan: &ScanFacts| {
        let rf = ResponseFacts {
            status,
            headers: &headers,
            method,
            path,
        };
        let c = classify_error(vendor, &rf, scan, SystemTime::now(), config.retry_after_max);
        print_answer(&c.verdict, &config.problem_type_base);
    };
    if candidates.is_empty() {
        // Not in the catalog: show what errgate derives from the status.
        let status = upstream_status(vendor, None, args.status);
        println!("vendor: {} ({})", vendor.id, vendor.title);
        println!("entry: none; `{code}` is not in the catalog, so the answer is derived from HTTP {status}");
        let scan = ScanFacts {
            code: Some(code.to_string()),
            body: Some(BodyState::Complete),
            ..Default::default()
        };
        answer(status, "GET", "/", &scan);
        return ExitCode::SUCCESS;
    }
    for e in candidates {
        println!("vendor: {} ({})", vendor.id, vendor.title);
        print_entry(e);
        let status = upstream_status(vendor, Some(e), args.status);
        let scan = ScanFacts {
            code: e.code.clone(),
            message: e.original.clone(),
            body: Some(BodyState::Complete),
            ..Default::default()
        };
        let path = e
            .match_path
            .as_ref()
            .map(|p| p.as_str().replace("**", "x").replace('*', "x"))
            .unwrap_or_else(|| "/".into());
        let method = e.match_method.clone().unwrap_or_else(|| "GET".into());
        println!("answer (upstream HTTP {status}):");
        answer(status, &method, &path, &scan);
        println!();
    }
    ExitCode::SUCCESS
}

/// Prints the answer through the proxy's renderer ([`crate::problem::Problem::to_text`]).
fn print_answer(v: &Verdict, type_base: &str) {
    match v {
        // classify_error always answers; a pass would mean the mapping changed.
        Verdict::Pass => println!("passes through untouched"),
        Verdict::Error(p, _) => print!("{}", p.to_text(type_base, "explain")),
    }
    println!();
}
