//! The catalog file format (schema 1) as serde types; documented for operators in
//! `catalogs/README.md`. Unknown keys are rejected.

use serde::Deserialize;

/// A vendor catalog file, `catalogs/<vendor>.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCatalog {
    /// Format version; must be 1.
    pub schema: u32,
    /// Vendor id; must equal the file stem.
    pub vendor: String,
    /// Human name of the vendor API.
    pub title: Option<String>,
    /// The vendor's error documentation page.
    pub docs: Option<String>,
    /// JSON paths the scanner captures.
    #[serde(default)]
    pub envelope: FileEnvelope,
    /// Present for vendors that report errors inside 2xx bodies.
    pub in_band: Option<FileInBand>,
    /// Response headers carrying retry hints, each a name with a standard form (`Retry-After`,
    /// `RateLimit-Reset`) or `{name, form}` with the form declared. Default `[Retry-After]`.
    /// Kept as YAML values so the loader can say exactly what is wrong with an item.
    pub rate_limit_headers: Option<Vec<crate::yaml::Value>>,
    /// The vendor's documented errors.
    #[serde(default)]
    pub entries: Vec<FileEntry>,
}

/// Dot-separated JSON object paths.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileEnvelope {
    /// Vendor error code (number or string).
    pub code: Option<String>,
    /// Vendor message.
    pub message: Option<String>,
    /// Extra detail text.
    pub detail: Option<String>,
    /// Retry hint in milliseconds.
    pub retry_after_ms: Option<String>,
    /// Field-level errors, captured raw.
    pub errors: Option<String>,
}

/// How a 2xx body tells success from error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInBand {
    /// Path of the deciding field.
    pub field: String,
    /// Values (as strings) meaning success; the field absent also means "not an error".
    pub success: Vec<crate::yaml::Value>,
}

/// One documented error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Vendor code; a number is accepted and read as its decimal text.
    pub code: Option<crate::yaml::Value>,
    /// The HTTP status the vendor documents.
    pub vendor_status: Option<u16>,
    /// Extra conditions.
    #[serde(rename = "match", default)]
    pub match_: FileMatch,
    /// Canonical code name.
    pub canonical: String,
    /// Status override.
    pub http_status: Option<u16>,
    /// UPPER_SNAKE_CASE reason, unique within the vendor.
    pub reason: String,
    /// Whether a retry may succeed.
    pub retryable: bool,
    /// Default retry hint for rate-limit codes without one.
    pub retry_after_ms: Option<u64>,
    /// English explanation.
    pub detail: Option<String>,
    /// The vendor's original text.
    pub original: Option<String>,
    /// Why the canonical code or status differs from the vendor's.
    pub why: Option<String>,
    /// Per-entry documentation link.
    pub docs: Option<String>,
}

/// Conditions beyond the code.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileMatch {
    /// Upstream HTTP status.
    pub status: Option<u16>,
    /// Request method.
    pub method: Option<String>,
    /// Request path pattern (`*` one segment, `**` the rest).
    pub path: Option<String>,
    /// Message template (`{name}` matches any text).
    pub message: Option<String>,
}
