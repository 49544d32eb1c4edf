//! Reads a catalog directory into a complete [`CatalogSet`], collecting every problem with its
//! file and place. Touches the filesystem; everything after reading is pure.

use super::file::{FileCatalog, FileEntry};
use super::*;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::retry::{HintForm, HintHeader};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Largest catalog file read: catalogs are small; a huge file is a mistake, not a catalog.
pub const MAX_CATALOG_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The catalog files of a directory: `*.yaml`, `*.yml`, `*.json`, skipping hidden names (so a
/// Kubernetes ConfigMap's `..data` and timestamped directories are ignored; its symlinks are
/// followed). Sorted by name.
pub fn catalog_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let rd = std::fs::read_dir(dir).map_err(|e| Diagnostic {
        file: dir.display().to_string(),
        place: "(directory)".into(),
        message: format!("cannot read the catalog directory: {e}"),
    })?;
    let mut files = Vec::new();
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let ext_ok = [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e));
        let path = ent.path();
        if ext_ok && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every catalog in `dir` and builds a complete set, or returns every problem.
pub fn load_catalogs(dir: &Path, now: SystemTime) -> Result<CatalogSet, Diagnostics> {
    let files = catalog_files(dir).map_err(|e| Diagnostics(vec![e]))?;
    let mut errs = Vec::new();
    let mut inputs = Vec::new();
    for f in &files {
        let name = f.display().to_string();
        match std::fs::metadata(f) {
            Ok(m) if m.len() > MAX_CATALOG_FILE_BYTES => {
                errs.push(Diagnostic {
                    file: name,
                    place: "(file)".into(),
                    message: format!("larger than {MAX_CATALOG_FILE_BYTES} bytes"),
                });
                continue;
            }
            _ => {}
        }
        match std::fs::read(f) {
            Ok(bytes) => inputs.push((f.clone(), bytes)),
            Err(e) => errs.push(Diagnostic {
                file: name,
                place: "(file)".into(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    if files.is_empty() {
        errs.push(Diagnostic {
            file: dir.display().to_string(),
            place: "(directory)".into(),
            message: "holds no catalog files (*.yaml)".into(),
        });
    }
    match build_set(&inputs, now) {
        Ok(set) if errs.is_empty() => Ok(set),
        Ok(_) => Err(Diagnostics(errs)),
        Err(Diagnostics(more)) => {
            errs.extend(more);
            Err(Diagnostics(errs))
        }
    }
}

/// Builds a set from file contents (pure): `(path, bytes)` pairs.
pub fn build_set(
    inputs: &[(PathBuf, Vec<u8>)],
    now: SystemTime,
) -> Result<CatalogSet, Diagnostics> {
    let mut errs = Vec::new();
    let mut vendors = HashMap::new();
    let mut meta = BTreeMap::new();
    let mut all = Sha256::new();
    for (path, bytes) in inputs {
        let file = path.display().to_string();
        let hash = hex::encode(Sha256::digest(bytes));
        all.update(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        all.update(b"\0");
        all.update(hash.as_bytes());
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match parse_catalog(bytes, &file, &stem) {
            Ok(v) => {
                if vendors.contains_key(&v.id) {
                    errs.push(Diagnostic {
                        file,
                        place: "vendor".into(),
                        message: format!("vendor `{}` is defined by two files", v.id),
                    });
                    continue;
                }
                meta.insert(
                    v.id.clone(),
                    VendorMeta {
                        hash,
                        entries: v.entries.len(),
                        file,
                    },
                );
                vendors.insert(v.id.clone(), Arc::new(v));
            }
            Err(mut e) => errs.append(&mut e),
        }
    }
    if !errs.is_empty() {
        return Err(Diagnostics(errs));
    }
    Ok(CatalogSet::new(
        vendors,
        meta,
        hex::encode(all.finalize()),
        now,
    ))
}

fn is_upper_snake(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !s.ends_with('_')
        && !s.contains("__")
}

fn yaml_scalar_string(v: &crate::yaml::Value) -> Option<String> {
    match v {
        crate::yaml::Value::String(s) => Some(s.trim().to_string()),
        crate::yaml::Value::Number(n) => Some(n.to_string()),
        crate::yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn valid_path(p: &str) -> bool {
    !p.is_empty() && p.split('.').all(|s| !s.is_empty())
}

/// Parses and validates one catalog file.
pub fn parse_catalog(
    bytes: &[u8],
    file: &str,
    stem: &str,
) -> Result<VendorCatalog, Vec<Diagnostic>> {
    let err = |place: &str, message: String| Diagnostic {
        file: file.to_string(),
        place: place.to_string(),
        message,
    };
    let fc: FileCatalog =
        crate::yaml::parse_strict(bytes).map_err(|p| vec![err(&p.place, p.message)])?;
    let mut errs = Vec::new();
    if fc.schema != 1 {
        errs.push(err(
            "schema",
            format!(
                "schema {} is not supported; this errgate reads schema 1",
                fc.schema
            ),
        ));
    }
    if fc.vendor != stem {
        errs.push(err(
            "vendor",
            format!("`{}` must equal the file name `{stem}`", fc.vendor),
        ));
    }
    let env = &fc.envelope;
    let envelope_paths = [
        env.code.clone(),
        env.message.clone(),
        env.detail.clone(),
        env.retry_after_ms.clone(),
        env.errors.clone(),
    ];
    for (name, p) in ["code", "message", "detail", "retry_after_ms", "errors"]
        .iter()
        .zip(envelope_paths.iter())
    {
        if let Some(p) = p {
            if !valid_path(p) {
                errs.push(err(
                    &format!("envelope.{name}"),
                    format!("`{p}` is not a dot path like errResponse.code"),
                ));
            }
        }
    }
    let in_band = match &fc.in_band {
        None => None,
        Some(ib) => {
            if !valid_path(&ib.field) {
                errs.push(err(
                    "in_band.field",
                    format!("`{}` is not a dot path", ib.field),
                ));
            }
            let mut success = Vec::new();
            for (i, v) in ib.success.iter().enumerate() {
                match yaml_scalar_string(v) {
                    Some(s) => success.push(s),
                    None => errs.push(err(
                        &format!("in_band.success[{i}]"),
                        "must be a string, number or boolean".into(),
                    )),
                }
            }
            if success.is_empty() {
                errs.push(err(
                    "in_band.success",
                    "needs at least one success value".into(),
                ));
            }
            Some((ib.field.clone(), success))
        }
    };
    let rate_limit_headers = match &fc.rate_limit_headers {
        None => vec![HintHeader::new(
            "Retry-After",
            &[HintForm::DeltaSeconds, HintForm::HttpDate],
        )],
        Some(items) => hint_headers(items, &err, &mut errs),
    };
    if fc.entries.is_empty() {
        errs.push(err("entries", "a catalog needs at least one entry".into()));
    }
    let mut reasons = HashSet::new();
    let mut keys: HashMap<String, usize> = HashMap::new();
    let mut entries = Vec::with_capacity(fc.entries.len());
    for (i, fe) in fc.entries.iter().enumerate() {
        let place = format!("entries[{i}]");
        match entry(fe, &place, env.code.is_some(), env.message.is_some(), &err) {
            Ok(e) => {
                if !reasons.insert(e.reason.clone()) {
                    errs.push(err(
                        &format!("{place}.reason"),
                        format!("`{}` is used by another entry", e.reason),
                    ));
                }
                let key = e.condition_key();
                if let Some(j) = keys.get(&key) {
                    errs.push(err(
                        &place,
                        format!("unreachable: entries[{j}] has the same conditions ({key})"),
                    ));
                } else {
                    keys.insert(key, i);
                }
                entries.push(e);
            }
            Err(mut e) => errs.append(&mut e),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    build_vendor(
        fc.vendor.clone(),
        fc.title.clone().unwrap_or_else(|| fc.vendor.clone()),
        fc.docs.clone(),
        envelope_paths,
        in_band,
        rate_limit_headers,
        entries,
    )
    .map_err(|e| {
        vec![err(
            "envelope",
            format!("the scan paths cannot be compiled: {e}"),
        )]
    })
}

fn entry(
    fe: &FileEntry,
    place: &str,
    has_code_path: bool,
    has_message_path: bool,
    err: &dyn Fn(&str, String) -> Diagnostic,
) -> Result<Entry, Vec<Diagnostic>> {
    let mut errs = Vec::new();
    let code = match &fe.code {
        None => None,
        Some(v) => match yaml_scalar_string(v) {
            Some(s) if !s.is_empty() => Some(s),
            _ => {
                errs.push(err(
                    &format!("{place}.code"),
                    "must be a non-empty string or number".into(),
                ));
                None
            }
        },
    };
    if code.is_some() && !has_code_path {
        errs.push(err(
            &format!("{place}.code"),
            "unreachable: the catalog's envelope has no `code` path".into(),
        ));
    }
    let canonical = match Code::parse(fe.canonical.trim()) {
        Some(c) => c,
        None => {
            errs.push(err(
                &format!("{place}.canonical"),
                format!(
                    "`{}` is not a canonical code; use one of {}",
                    fe.canonical,
                    Code::ALL
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            Code::Unknown
        }
    };
    if !is_upper_snake(&fe.reason) {
        errs.push(err(
            &format!("{place}.reason"),
            format!("`{}` must be UPPER_SNAKE_CASE", fe.reason),
        ));
    }
    for (name, s) in [
        ("vendor_status", fe.vendor_status),
        ("http_status", fe.http_status),
        ("match.status", fe.match_.status),
    ] {
        if let Some(s) = s {
            if !(100..=599).contains(&s) {
                errs.push(err(
                    &format!("{place}.{name}"),
                    format!("{s} is not an HTTP status"),
                ));
            }
        }
    }
    if fe.http_status.is_some_and(|s| s < 400) {
        errs.push(err(
            &format!("{place}.http_status"),
            "an error must be answered with a 4xx or 5xx status".into(),
        ));
    }
    let detail = match fe.detail.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => d.to_string(),
        _ => {
            errs.push(err(
                &format!("{place}.detail"),
                "an English detail is required".into(),
            ));
            String::new()
        }
    };
    let match_method = match fe.match_.method.as_deref() {
        None => None,
        Some(m) => match http::Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()) {
            Ok(m) => Some(m.as_str().to_string()),
            Err(_) => {
                errs.push(err(
                    &format!("{place}.match.method"),
                    format!("`{m}` is not a method"),
                ));
                None
            }
        },
    };
    let match_path = match fe.match_.path.as_deref() {
        None => None,
        Some(p) => match PathPattern::parse(p) {
            Ok(p) => Some(p),
            Err(m) => {
                errs.push(err(&format!("{place}.match.path"), m));
                None
            }
        },
    };
    let match_message = match fe.match_.message.as_deref() {
        None => None,
        Some(t) => {
            if !has_message_path {
                errs.push(err(
                    &format!("{place}.match.message"),
                    "unreachable: the catalog's envelope has no `message` path".into(),
                ));
            }
            match compile_message_template(t) {
                Ok(re) => Some((t.to_string(), re)),
                Err(m) => {
                    errs.push(err(&format!("{place}.match.message"), m));
                    None
                }
            }
        }
    };
    if code.is_none()
        && fe.match_.status.is_none()
        && match_method.is_none()
        && match_path.is_none()
        && match_message.is_none()
    {
        errs.push(err(
            place,
            "has no condition: give a code or a match".into(),
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(EntryParts {
        code,
        vendor_status: fe.vendor_status,
        match_status: fe.match_.status,
        match_method,
        match_path,
        match_message,
        canonical,
        http_status: fe.http_status.unwrap_or_else(|| canonical.default_status()),
        reason: fe.reason.clone(),
        retryable: fe.retryable,
        retry_after_ms: fe.retry_after_ms,
        detail,
        original: fe.original.clone(),
        why: fe.why.clone(),
        docs: fe.docs.clone(),
    }
    .into())
}

/// The `rate_limit_headers` list: a name with a standard form, or `{name, form}` where `form` is
/// one form or a list of forms (at most one numeric, so syntax tells them apart).
fn hint_headers(
    items: &[crate::yaml::Value],
    err: &dyn Fn(&str, String) -> Diagnostic,
    errs: &mut Vec<Diagnostic>,
) -> Vec<HintHeader> {
    use crate::yaml::Value;
    let forms_list = HintForm::ALL.map(HintForm::as_str).join(", ");
    let mut out: Vec<HintHeader> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let place = format!("rate_limit_headers[{i}]");
        let parsed = match item {
            Value::String(name) => match HintHeader::standard(name) {
                Some(h) => Some(h),
                None => {
                    errs.push(err(
                        &place,
                        format!(
                            "`{name}` has no standard form; declare it as {{name: {name}, form: FORM}} with FORM one of {forms_list}"
                        ),
                    ));
                    None
                }
            },
            Value::Mapping(m) => {
                let mut name = None;
                let mut forms = None;
                for (k, v) in m {
                    match (k.as_str(), v) {
                        (Some("name"), Value::String(n)) => name = Some(n.clone()),
                        (Some("name"), _) => {
                            errs.push(err(&format!("{place}.name"), "must be a string".into()))
                        }
                        (Some("form"), v) => {
                            forms = Some(hint_forms(v, &place, &forms_list, err, errs))
                        }
                        (k, _) => errs.push(err(
                            &place,
                            format!(
                                "unknown key `{}`; expected `name` and `form`",
                                k.unwrap_or("?")
                            ),
                        )),
                    }
                }
                match (name, forms) {
                    (Some(n), Some(Some(f))) => Some(HintHeader { name: n, forms: f }),
                    (None, _) => {
                        errs.push(err(&place, "needs `name`".into()));
                        None
                    }
                    (_, None) => {
                        errs.push(err(&place, format!("needs `form`, one of {forms_list}")));
                        None
                    }
                    (_, Some(None)) => None,
                }
            }
            _ => {
                errs.push(err(
                    &place,
                    "must be a header name or {name: HEADER, form: FORM}".into(),
                ));
                None
            }
        };
        let Some(h) = parsed else { continue };
        if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
            errs.push(err(&place, format!("`{}` is not a header name", h.name)));
            continue;
        }
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&h.name)) {
            errs.push(err(&place, format!("`{}` is listed twice", h.name)));
            continue;
        }
        out.push(h);
    }
    out
}

/// One form or a list of forms; `None` after reporting a problem.
fn hint_forms(
    v: &crate::yaml::Value,
    place: &str,
    forms_list: &str,
    err: &dyn Fn(&str, String) -> Diagnostic,
    errs: &mut Vec<Diagnostic>,
) -> Option<Vec<HintForm>> {
    use crate::yaml::Value;
    let place = format!("{place}.form");
    let names: Vec<&Value> = match v {
        Value::Sequence(s) => s.iter().collect(),
        other => vec![other],
    };
    let before = errs.len();
    let mut forms = Vec::new();
    for n in names {
        match n.as_str().and_then(HintForm::parse) {
            Some(f) if forms.contains(&f) => {
                errs.push(err(&place, format!("`{f}` is listed twice")))
            }
            Some(f) => forms.push(f),
            None => errs.push(err(
                &place,
                format!(
                    "`{}` is not a hint form; use one of {forms_list}",
                    yaml_text(n)
                ),
            )),
        }
    }
    if forms.is_empty() && errs.len() == before {
        errs.push(err(&place, format!("needs at least one of {forms_list}")));
    }
    if forms.iter().filter(|f| f.is_numeric()).count() > 1 {
        errs.push(err(
            &place,
            "at most one numeric form (delta_seconds, unix_seconds, unix_millis): a bare number cannot say which it is".into(),
        ));
    }
    (errs.len() == before).then_some(forms)
}

fn yaml_text(v: &crate::yaml::Value) -> String {
    crate::yaml::to_string(v)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}
