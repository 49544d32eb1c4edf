//! Vendor catalogs: immutable, indexed sets of documented errors, and the matching rule.
//!
//! A [`CatalogSet`] is built completely off the request path ([`load`]) and swapped in whole
//! by [`crate::state`]; requests hold an `Arc` of the set they started with. Matching: an entry matches
//! when its code (if any) equals the vendor code and all its conditions hold; the most
//! specific wins (code 8, status 4, method 2, path 2, message 1), ties to the earlier entry.

pub mod file;
pub mod load;

use crate::problem::Code;
use crate::retry::HintHeader;
use crate::scan::{CaptureKind, ScanSpec};
use regex::Regex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

pub use load::load_catalogs;

/// Specificity weights of the matching rule.
const WEIGHT_CODE: u8 = 8;
const WEIGHT_STATUS: u8 = 4;
const WEIGHT_METHOD: u8 = 2;
const WEIGHT_PATH: u8 = 2;
const WEIGHT_MESSAGE: u8 = 1;

/// A request path pattern: literal segments, `*` (one segment), `**` (the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    segs: Vec<Seg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    One,
    Rest,
}

// === impl PathPattern ===

impl PathPattern {
    /// Parses `/api/v1/*/**`; `**` only last.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        if !text.starts_with('/') {
            return Err(format!("path pattern `{text}` must start with /"));
        }
        let parts: Vec<&str> = text
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let mut segs = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            segs.push(match *p {
                "*" => Seg::One,
                "**" if i + 1 == parts.len() => Seg::Rest,
                "**" => return Err(format!("`**` must be the last segment in `{text}`")),
                lit if lit.contains('*') || lit.contains('{') => {
                    return Err(format!(
                        "segment `{lit}` in `{text}`: use a whole `*` segment for variable parts"
                    ))
                }
                lit => Seg::Lit(lit.to_string()),
            });
        }
        Ok(PathPattern {
            text: text.to_string(),
            segs,
        })
    }

    /// Whether `path` (no query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let mut it = path.split('/').filter(|s| !s.is_empty());
        for seg in &self.segs {
            match seg {
                Seg::Rest => return true,
                Seg::One => {
                    if it.next().is_none() {
                        return false;
                    }
                }
                Seg::Lit(l) => {
                    if it.next() != Some(l.as_str()) {
                        return false;
                    }
                }
            }
        }
        it.next().is_none()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Compiles a message template: `{name}` matches any text; case-insensitive, whole string.
pub fn compile_message_template(t: &str) -> Result<Regex, String> {
    let mut re = String::from("(?is)^\\s*");
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        re.push_str(&regex::escape(&rest[..open]));
        re.push_str(".*?");
        rest = &rest[open + close + 1..];
    }
    re.push_str(&regex::escape(rest));
    re.push_str("\\s*$");
    Regex::new(&re).map_err(|e| format!("message template `{t}`: {e}"))
}

/// One documented error, compiled.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Vendor code, if the vendor has codes.
    pub code: Option<String>,
    /// The status the vendor documents.
    pub vendor_status: Option<u16>,
    /// Required upstream status.
    pub match_status: Option<u16>,
    /// Required method (upper-case).
    pub match_method: Option<String>,
    /// Required path pattern.
    pub match_path: Option<PathPattern>,
    /// Message template as written.
    pub match_message: Option<String>,
    match_message_re: Option<Regex>,
    /// Canonical code.
    pub canonical: Code,
    /// Status errgate answers with.
    pub http_status: u16,
    /// Reason, unique within the vendor.
    pub reason: String,
    /// Whether a retry may succeed.
    pub retryable: bool,
    /// Default retry hint (ms) for rate-limit codes without one.
    pub retry_after_ms: Option<u64>,
    /// English explanation.
    pub detail: String,
    /// Vendor's original text.
    pub original: Option<String>,
    /// Why the mapping differs from the vendor's status.
    pub why: Option<String>,
    /// Documentation link.
    pub docs: Option<String>,
    weight: u8,
    /// `title_for_reason(reason)`, computed once at load: every error answer needs it.
    title: String,
}

/// What a lookup is asked about.
#[derive(Debug, Clone, Copy)]
pub struct LookupKey<'a> {
    /// Vendor code.
    pub code: Option<&'a str>,
    /// Upstream HTTP status.
    pub status: u16,
    /// Request method.
    pub method: &'a str,
    /// Request path below the route prefix, without query.
    pub path: &'a str,
    /// Vendor message.
    pub message: Option<&'a str>,
}

// === impl Entry ===

impl Entry {
    /// The problem title of this entry's reason (`title_for_reason`), computed at load.
    pub fn title(&self) -> &str {
        &self.title
    }

    fn matches(&self, k: &LookupKey<'_>) -> bool {
        if let Some(c) = &self.code {
            if k.code != Some(c.as_str()) {
                return false;
            }
        }
        if self.match_status.is_some_and(|s| s != k.status) {
            return false;
        }
        if let Some(m) = &self.match_method {
            if !m.eq_ignore_ascii_case(k.method) {
                return false;
            }
        }
        if let Some(p) = &self.match_path {
            if !p.matches(k.path) {
                return false;
            }
        }
        if let Some(re) = &self.match_message_re {
            match k.message {
                Some(msg) if re.is_match(msg) => {}
                _ => return false,
            }
        }
        true
    }

    /// The conditions as one comparable key (duplicates are unreachable rules).
    pub fn condition_key(&self) -> String {
        format!(
            "code={:?} status={:?} method={:?} path={:?} message={:?}",
            self.code,
            self.match_status,
            self.match_method,
            self.match_path.as_ref().map(|p| p.as_str()),
            self.match_message.as_ref().map(|m| m.to_ascii_lowercase())
        )
    }
}

/// How a 2xx body tells success from error.
#[derive(Debug, Clone)]
pub struct InBand {
    /// Scan field index of the deciding field.
    pub field: usize,
    /// The path as written.
    pub path: String,
    /// Values meaning success.
    pub success: Vec<String>,
    /// The exact first bytes of a body whose first key is the field with a success value in
    /// its plainest JSON form (`{"errCode":0`, `{"ActionStatus":"OK"`): a held body that starts
    /// with one of them, then a delimiter, is a success without running the scanner
    /// ([`InBand::success_prefix`]). Empty when the field is nested, captured raw or needs
    /// escaping.
    pub success_prefixes: Vec<Box<[u8]>>,
}

// === impl InBand ===

impl InBand {
    /// Compiles the in-band rule of a field at `path` captured as `kind`.
    pub(crate) fn new(field: usize, path: String, kind: CaptureKind, success: Vec<String>) -> Self {
        let success_prefixes = if kind == CaptureKind::Scalar && plain_top_level_key(&path) {
            success
                .iter()
                .flat_map(|v| success_literals(v))
                .map(|lit| {
                    format!("{{\"{path}\":{lit}")
                        .into_bytes()
                        .into_boxed_slice()
                })
                .collect()
        } else {
            Vec::new()
        };
        InBand {
            field,
            path,
            success,
            success_prefixes,
        }
    }

    /// The length of the success prefix `body` starts with, when the byte after it ends the
    /// value (`,`, `}` or JSON whitespace).
    ///
    /// Why this is exactly the scanner's decision: such a body is an object whose first key is
    /// the field (its only encoding without escapes) with a complete scalar value whose text is
    /// a success value, so the scanner, stopping at the in-band field, captures that value and
    /// [`crate::normalize::in_band_decision`] says success before reading further; `normalize`'s
    /// tests compare the two on every body and split.
    pub fn success_prefix(&self, body: &[u8]) -> Option<usize> {
        self.success_prefixes.iter().find_map(|p| {
            let after = body.get(p.len())?;
            (body.starts_with(p) && matches!(after, b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                .then_some(p.len())
        })
    }
}

/// A top-level key (no `.`) that JSON writes as itself between quotes, so a body's key equal
/// to it has exactly one escape-free encoding.
fn plain_top_level_key(path: &str) -> bool {
    !path.is_empty() && !path.contains('.') && plain_string(path)
}

/// The JSON literals whose captured text is `v` (see `normalize::captured_str`): a plain string,
/// the number as written when `v` is a JSON number, `true`, `false` or `null`.
fn success_literals(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if plain_string(v) {
        out.push(format!("\"{v}\""));
    }
    let number = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && serde_json::from_str::<serde_json::Number>(v).is_ok();
    if number || matches!(v, "true" | "false" | "null") {
        out.push(v.to_string());
    }
    out
}

/// Printable ASCII without `"` or `\`.
fn plain_string(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Scan field indices of the envelope parts.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// Vendor code.
    pub code: Option<usize>,
    /// Vendor message.
    pub message: Option<usize>,
    /// Extra detail.
    pub detail: Option<usize>,
    /// Body retry hint in ms.
    pub retry_after_ms: Option<usize>,
    /// Field-level errors (raw).
    pub errors: Option<usize>,
}

/// One vendor's compiled catalog.
#[derive(Debug)]
pub struct VendorCatalog {
    /// Vendor id.
    pub id: String,
    /// Human name.
    pub title: String,
    /// Documentation link.
    pub docs: Option<String>,
    /// What the scanner captures.
    pub spec: ScanSpec,
    /// Paths of the spec, as written, for `explain`.
    pub spec_paths: Vec<String>,
    /// Field indices.
    pub envelope: Envelope,
    /// In-band error signalling, if the vendor does it.
    pub in_band: Option<InBand>,
    /// Headers carrying retry hints, with the form of each.
    pub rate_limit_headers: Vec<HintHeader>,
    /// Entries in file order.
    pub entries: Vec<Entry>,
    by_code: HashMap<String, Vec<usize>>,
    codeless: Vec<usize>,
}

// === impl VendorCatalog ===

impl VendorCatalog {
    /// The best entry for a key, by the matching rule.
    pub fn lookup(&self, k: &LookupKey<'_>) -> Option<&Entry> {
        let coded = k
            .code
            .and_then(|c| self.by_code.get(c))
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        let mut best: Option<(u8, usize)> = None;
        for &i in coded.iter().chain(self.codeless.iter()) {
            let Some(e) = self.entries.get(i) else {
                continue;
            };
            if !e.matches(k) {
                continue;
            }
            let better = match best {
                None => true,
                Some((w, j)) => e.weight > w || (e.weight == w && i < j),
            };
            if better {
                best = Some((e.weight, i));
            }
        }
        best.and_then(|(_, i)| self.entries.get(i))
    }

    /// Whether some entry has this vendor code (a closed set, safe as a metric label).
    pub fn knows_code(&self, code: &str) -> bool {
        self.by_code.contains_key(code)
    }

    /// Whether the vendor signals errors inside 2xx bodies.
    pub fn is_in_band(&self) -> bool {
        self.in_band.is_some()
    }

    /// Entries whose code is `code` (for `explain`).
    pub fn entries_for_code<'a>(&'a self, code: &str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.by_code
            .get(code)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.entries.get(i))
    }
}

/// Builder input for one entry (from the file, after validation).
pub(crate) struct EntryParts {
    pub code: Option<String>,
    pub vendor_status: Option<u16>,
    pub match_status: Option<u16>,
    pub match_method: Option<String>,
    pub match_path: Option<PathPattern>,
    pub match_message: Option<(String, Regex)>,
    pub canonical: Code,
    pub http_status: u16,
    pub reason: String,
    pub retryable: bool,
    pub retry_after_ms: Option<u64>,
    pub detail: String,
    pub original: Option<String>,
    pub why: Option<String>,
    pub docs: Option<String>,
}

impl From<EntryParts> for Entry {
    fn from(p: EntryParts) -> Entry {
        let weight = p.code.as_ref().map_or(0, |_| WEIGHT_CODE)
            + p.match_status.map_or(0, |_| WEIGHT_STATUS)
            + p.match_method.as_ref().map_or(0, |_| WEIGHT_METHOD)
            + p.match_path.as_ref().map_or(0, |_| WEIGHT_PATH)
            + p.match_message.as_ref().map_or(0, |_| WEIGHT_MESSAGE);
        let (match_message, match_message_re) = match p.match_message {
            Some((t, re)) => (Some(t), Some(re)),
            None => (None, None),
        };
        Entry {
            title: crate::problem::title_for_reason(&p.reason),
            code: p.code,
            vendor_status: p.vendor_status,
            match_status: p.match_status,
            match_method: p.match_method,
            match_path: p.match_path,
            match_message,
            match_message_re,
            canonical: p.canonical,
            http_status: p.http_status,
            reason: p.reason,
            retryable: p.retryable,
            retry_after_ms: p.retry_after_ms,
            detail: p.detail,
            original: p.original,
            why: p.why,
            docs: p.docs,
            weight,
        }
    }
}

/// Builds a vendor catalog from validated parts; computes the scan spec (with the fallible
/// [`ScanSpec::try_new`]: too many envelope paths is a catalog problem, not a panic) and indices.
pub(crate) fn build_vendor(
    id: String,
    title: String,
    docs: Option<String>,
    envelope_paths: [Option<String>; 5],
    in_band: Option<(String, Vec<String>)>,
    rate_limit_headers: Vec<HintHeader>,
    entries: Vec<Entry>,
) -> Result<VendorCatalog, crate::scan::SpecError> {
    // Field order: code, message, detail, retry_after_ms, errors, then the in-band field if new.
    let mut paths: Vec<(String, CaptureKind)> = Vec::new();
    let mut idx = [None; 5];
    for (i, p) in envelope_paths.iter().enumerate() {
        if let Some(p) = p {
            let kind = if i == 4 {
                CaptureKind::Raw
            } else {
                CaptureKind::Scalar
            };
            idx[i] = Some(paths.len());
            paths.push((p.clone(), kind));
        }
    }
    let in_band = in_band.map(|(path, success)| {
        let field = match paths.iter().position(|(p, _)| *p == path) {
            Some(i) => i,
            None => {
                paths.push((path.clone(), CaptureKind::Scalar));
                paths.len() - 1
            }
        };
        let kind = paths.get(field).map_or(CaptureKind::Raw, |(_, k)| *k);
        InBand::new(field, path, kind, success)
    });
    let split: Vec<(Vec<&str>, CaptureKind)> = paths
        .iter()
        .map(|(p, k)| (p.split('.').collect::<Vec<_>>(), *k))
        .collect();
    let spec_in: Vec<(&[&str], CaptureKind)> =
        split.iter().map(|(v, k)| (v.as_slice(), *k)).collect();
    let spec = ScanSpec::try_new(&spec_in)?;
    let mut by_code: HashMap<String, Vec<usize>> = HashMap::new();
    let mut codeless = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match &e.code {
            Some(c) => by_code.entry(c.clone()).or_default().push(i),
            None => codeless.push(i),
        }
    }
    Ok(VendorCatalog {
        id,
        title,
        docs,
        spec,
        spec_paths: paths.into_iter().map(|(p, _)| p).collect(),
        envelope: Envelope {
            code: idx[0],
            message: idx[1],
            detail: idx[2],
            retry_after_ms: idx[3],
            errors: idx[4],
        },
        in_band,
        rate_limit_headers,
        entries,
        by_code,
        codeless,
    })
}

/// Load facts of one vendor's file, shown on `/catalogs`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VendorMeta {
    /// SHA-256 of the file, hex.
    pub hash: String,
    /// Number of entries.
    pub entries: usize,
    /// File it came from.
    pub file: String,
}

/// A complete, immutable set of catalogs: what one request sees from start to end.
#[derive(Debug, Default)]
pub struct CatalogSet {
    vendors: HashMap<String, Arc<VendorCatalog>>,
    /// Per-vendor load facts, sorted by id.
    pub meta: BTreeMap<String, VendorMeta>,
    /// Combined hash of every file (name + content); equal hashes mean equal sets.
    pub hash: String,
    /// When the set was built.
    pub loaded_at: Option<SystemTime>,
}

// === impl CatalogSet ===

impl CatalogSet {
    /// Builds a set.
    pub fn new(
        vendors: HashMap<String, Arc<VendorCatalog>>,
        meta: BTreeMap<String, VendorMeta>,
        hash: String,
        loaded_at: SystemTime,
    ) -> Self {
        CatalogSet {
            vendors,
            meta,
            hash,
            loaded_at: Some(loaded_at),
        }
    }

    /// One vendor's catalog.
    pub fn vendor(&self, id: &str) -> Option<&Arc<VendorCatalog>> {
        self.vendors.get(id)
    }

    /// Vendor ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.meta.keys().map(String::as_str)
    }

    /// Number of vendors.
    pub fn len(&self) -> usize {
        self.vendors.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.vendors.is_empty()
    }
}

#[cfg(test)]
mod tests;
