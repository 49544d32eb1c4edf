//! `FileConfig` -> `Config`, collecting every problem with its field path.

use super::file::{FileConfig, FileCooldown, FileRetry, FileRoute, FileTimeouts};
use super::*;
use crate::retry::Backoff;
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::net::SocketAddr;

/// Jitter of the default backoff: full jitter spreads retries of many clients.
const DEFAULT_BACKOFF_JITTER: f64 = 1.0;
/// Default first backoff step when the vendor gave no hint.
const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(100);

struct Errors {
    file: String,
    list: Vec<ConfigError>,
}

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            file: self.file.clone(),
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Parses a duration like `250ms`, `5s`, `1.5s`, `2m`, `1h`. A bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; write it like 250ms, 5s, 2m or 1h"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{s}`; use ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!("duration `{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn section<T: DeserializeOwned + Default>(
    map: &serde_yaml::Mapping,
    key: &str,
    errs: &mut Errors,
) -> Option<T> {
    let v = map.get(key)?;
    if v.is_null() {
        return None;
    }
    match serde_yaml::from_value::<T>(v.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            errs.push(key, e.to_string());
            None
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "listen",
    "admin_listen",
    "catalog_dir",
    "problem_type_base",
    "hold_max_bytes",
    "max_request_body_bytes",
    "retry_after_max",
    "catalog_poll_interval",
    "grace_period_seconds",
    "threads",
    "timeouts",
    "retry",
    "cooldown",
    "routes",
];

fn read_file_config(text: &str, errs: &mut Errors) -> FileConfig {
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            errs.push("(syntax)", e.to_string());
            return FileConfig::default();
        }
    };
    let map = match value {
        serde_yaml::Value::Mapping(m) => m,
        serde_yaml::Value::Null => {
            errs.push("(top)", "the file is empty; it needs at least `routes`");
            return FileConfig::default();
        }
        _ => {
            errs.push(
                "(top)",
                "the file must be a mapping of keys (listen, routes, ...)",
            );
            return FileConfig::default();
        }
    };
    for k in map.keys() {
        match k.as_str() {
            Some(k) if TOP_KEYS.contains(&k) => {}
            Some(k) => errs.push(
                k,
                format!("unknown key; expected one of: {}", TOP_KEYS.join(", ")),
            ),
            None => errs.push("(top)", "keys must be strings"),
        }
    }
    let mut fc = FileConfig {
        listen: section(&map, "listen", errs),
        admin_listen: section(&map, "admin_listen", errs),
        catalog_dir: section(&map, "catalog_dir", errs),
        problem_type_base: section(&map, "problem_type_base", errs),
        hold_max_bytes: section(&map, "hold_max_bytes", errs),
        max_request_body_bytes: section(&map, "max_request_body_bytes", errs),
        retry_after_max: section(&map, "retry_after_max", errs),
        catalog_poll_interval: section(&map, "catalog_poll_interval", errs),
        grace_period_seconds: section(&map, "grace_period_seconds", errs),
        threads: section(&map, "threads", errs),
        timeouts: section(&map, "timeouts", errs),
        retry: section(&map, "retry", errs),
        cooldown: section(&map, "cooldown", errs),
        routes: Vec::new(),
    };
    match map.get("routes") {
        None | Some(serde_yaml::Value::Null) => {}
        Some(serde_yaml::Value::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                match serde_yaml::from_value::<FileRoute>(item.clone()) {
                    Ok(r) => fc.routes.push(r),
                    Err(e) => {
                        errs.push(format!("routes[{i}]"), e.to_string());
                        // Keep positions stable for later messages.
                        fc.routes.push(FileRoute::default());
                    }
                }
            }
        }
        Some(_) => errs.push("routes", "must be a list of routes"),
    }
    fc
}

fn duration_or(v: &Option<String>, default: Duration, path: &str, errs: &mut Errors) -> Duration {
    match v {
        None => default,
        Some(s) => match parse_duration(s) {
            Ok(d) => d,
            Err(m) => {
                errs.push(path, m);
                default
            }
        },
    }
}

fn timeouts(base: &Timeouts, f: Option<&FileTimeouts>, path: &str, errs: &mut Errors) -> Timeouts {
    let Some(f) = f else { return *base };
    let t = Timeouts {
        connect: duration_or(&f.connect, base.connect, &format!("{path}.connect"), errs),
        read: duration_or(&f.read, base.read, &format!("{path}.read"), errs),
        total: duration_or(&f.total, base.total, &format!("{path}.total"), errs),
    };
    for (name, d) in [("connect", t.connect), ("read", t.read), ("total", t.total)] {
        if d.is_zero() {
            errs.push(format!("{path}.{name}"), "must be greater than zero");
        }
    }
    t
}

fn retry_policy(
    base: &RetryPolicy,
    f: Option<&FileRetry>,
    path: &str,
    errs: &mut Errors,
) -> RetryPolicy {
    let Some(f) = f else { return base.clone() };
    let mut p = base.clone();
    if let Some(e) = f.enabled {
        p.enabled = e;
    }
    if let Some(n) = f.max_attempts {
        if n == 0 {
            errs.push(
                format!("{path}.max_attempts"),
                "must be at least 1 (the first attempt counts)",
            );
        } else {
            p.max_attempts = n;
        }
    }
    p.max_wait = duration_or(&f.max_wait, p.max_wait, &format!("{path}.max_wait"), errs);
    p.total_budget = duration_or(
        &f.total_budget,
        p.total_budget,
        &format!("{path}.total_budget"),
        errs,
    );
    if let Some(b) = f.max_replay_body_bytes {
        p.max_replay_body = b;
    }
    if let Some(n) = f.budget_percent {
        if n > 100 {
            errs.push(
                format!("{path}.budget_percent"),
                "must be between 0 and 100",
            );
        } else {
            p.budget_percent = n;
        }
    }
    if let Some(n) = f.budget_min_concurrency {
        p.budget_min_concurrency = n;
    }
    if f.backoff_base.is_some() {
        let base_step = duration_or(
            &f.backoff_base,
            DEFAULT_BACKOFF_BASE,
            &format!("{path}.backoff_base"),
            errs,
        );
        match Backoff::try_new(base_step, p.max_wait.max(base_step), DEFAULT_BACKOFF_JITTER) {
            Ok(b) => p.backoff = b,
            Err(e) => errs.push(format!("{path}.backoff_base"), e.to_string()),
        }
    }
    p
}

fn cooldown(
    base: &CooldownSettings,
    f: Option<&FileCooldown>,
    path: &str,
    errs: &mut Errors,
) -> CooldownSettings {
    let Some(f) = f else { return base.clone() };
    let mut c = base.clone();
    if let Some(e) = f.enabled {
        c.enabled = e;
    }
    if let Some(h) = &f.key_header {
        match HeaderName::from_bytes(h.trim().to_ascii_lowercase().as_bytes()) {
            Ok(n) => c.key_header = Some(n),
            Err(_) => errs.push(
                format!("{path}.key_header"),
                format!("`{h}` is not a header name"),
            ),
        }
    }
    if f.max_keys.is_some() && path != "cooldown" {
        errs.push(
            format!("{path}.max_keys"),
            "is a process-wide setting; set it under the top-level `cooldown`",
        );
    }
    c
}

fn parse_upstream(s: &str, path: &str, errs: &mut Errors) -> Option<Upstream> {
    let uri: http::Uri = match s.parse() {
        Ok(u) => u,
        Err(e) => {
            errs.push(
                path,
                format!("`{s}` is not a URL ({e}); write it like https://api.example.com/v2"),
            );
            return None;
        }
    };
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            errs.push(path, format!("`{s}` needs an http:// or https:// scheme"));
            return None;
        }
    };
    let Some(host) = uri.host() else {
        errs.push(path, format!("`{s}` has no host"));
        return None;
    };
    if uri.query().is_some() {
        errs.push(path, "an upstream cannot carry a query string");
        return None;
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let authority = match uri.port_u16() {
        Some(p) => format!("{}:{p}", uri.host().unwrap_or(&host)),
        None => uri.host().unwrap_or(&host).to_string(),
    };
    let base_path = uri.path().trim_end_matches('/').to_string();
    Some(Upstream {
        tls,
        host,
        port,
        base_path,
        authority,
        ca: None,
    })
}

/// Reads a PEM file of CA certificates, checking each parses as X.509 (Pingora's wrapper
/// panics on bad DER, so nothing unchecked may reach it).
fn load_ca_file(path: &str) -> Result<TrustedCa, String> {
    use pingora::utils::tls::WrappedX509;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let mut ders = Vec::new();
    for item in rustls_pemfile::certs(&mut pem.as_slice()) {
        let der = item.map_err(|e| format!("`{path}` is not valid PEM: {e}"))?;
        x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| format!("`{path}` holds a certificate that does not parse: {e}"))?;
        ders.push(der.as_ref().to_vec());
    }
    if ders.is_empty() {
        return Err(format!("`{path}` holds no PEM certificate"));
    }
    let certs: Vec<WrappedX509> = ders
        .into_iter()
        .map(|d| WrappedX509::new(d, pingora::utils::tls::parse_x509))
        .collect();
    Ok(TrustedCa {
        file: path.to_string(),
        certs: std::sync::Arc::from(certs.into_boxed_slice()),
    })
}

fn normalize_prefix(p: &str) -> Result<String, String> {
    let p = p.trim();
    if !p.starts_with('/') {
        return Err(format!("`{p}` must start with /"));
    }
    if p.contains('?') || p.contains('#') {
        return Err(format!("`{p}` must be a path without query or fragment"));
    }
    let t = p.trim_end_matches('/');
    Ok(if t.is_empty() { "/".into() } else { t.into() })
}

pub(super) fn validate(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    let mut errs = Errors {
        file: path.display().to_string(),
        list: Vec::new(),
    };
    let fc = read_file_config(text, &mut errs);

    let listen = fc.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.into());
    if listen.parse::<SocketAddr>().is_err() {
        errs.push(
            "listen",
            format!("`{listen}` is not an address like 0.0.0.0:8080"),
        );
    }
    let admin_listen = fc
        .admin_listen
        .clone()
        .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.into());
    if admin_listen.parse::<SocketAddr>().is_err() {
        errs.push(
            "admin_listen",
            format!("`{admin_listen}` is not an address like 127.0.0.1:9090"),
        );
    } else if admin_listen == listen {
        errs.push("admin_listen", "must differ from `listen`");
    }
    let catalog_dir = PathBuf::from(fc.catalog_dir.as_deref().unwrap_or(DEFAULT_CATALOG_DIR));
    let problem_type_base = fc
        .problem_type_base
        .clone()
        .unwrap_or_else(|| crate::problem::DEFAULT_TYPE_BASE.into());
    if !(problem_type_base.starts_with("https://") || problem_type_base.starts_with("http://")) {
        errs.push("problem_type_base", "must be an absolute http(s) URI");
    }
    let hold_max_bytes = fc.hold_max_bytes.unwrap_or(DEFAULT_HOLD_MAX_BYTES);
    if !(1024..=16 * 1024 * 1024).contains(&hold_max_bytes) {
        errs.push("hold_max_bytes", "must be between 1024 and 16777216 bytes");
    }
    let retry_after_max = duration_or(
        &fc.retry_after_max,
        DEFAULT_RETRY_AFTER_MAX,
        "retry_after_max",
        &mut errs,
    );
    let catalog_poll_interval = duration_or(
        &fc.catalog_poll_interval,
        DEFAULT_CATALOG_POLL_INTERVAL,
        "catalog_poll_interval",
        &mut errs,
    );
    if catalog_poll_interval < Duration::from_millis(100) {
        errs.push("catalog_poll_interval", "must be at least 100ms");
    }

    let base_timeouts = timeouts(
        &Timeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            read: DEFAULT_READ_TIMEOUT,
            total: DEFAULT_TOTAL_TIMEOUT,
        },
        fc.timeouts.as_ref(),
        "timeouts",
        &mut errs,
    );
    let base_retry = retry_policy(
        &RetryPolicy::default(),
        fc.retry.as_ref(),
        "retry",
        &mut errs,
    );
    let base_cooldown = cooldown(
        &CooldownSettings {
            enabled: true,
            key_header: None,
        },
        fc.cooldown.as_ref(),
        "cooldown",
        &mut errs,
    );

    if fc.routes.is_empty() && !errs.list.iter().any(|e| e.path.starts_with("routes")) {
        errs.push("routes", "at least one route is needed");
    }
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    let mut routes = Vec::new();
    for (i, r) in fc.routes.iter().enumerate() {
        let p = format!("routes[{i}]");
        let name = match r.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => {
                if !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                {
                    errs.push(format!("{p}.name"), "use only letters, digits, -, _ and .");
                }
                if !names.insert(n.to_string()) {
                    errs.push(
                        format!("{p}.name"),
                        format!("`{n}` is used by another route"),
                    );
                }
                n.to_string()
            }
            _ => {
                errs.push(format!("{p}.name"), "is required");
                String::new()
            }
        };
        let vendor = match r.vendor.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => {
                errs.push(
                    format!("{p}.vendor"),
                    "is required (a catalog id such as pluralkit)",
                );
                String::new()
            }
        };
        let path_prefix = match r.path_prefix.as_deref() {
            Some(pp) => match normalize_prefix(pp) {
                Ok(pp) => pp,
                Err(m) => {
                    errs.push(format!("{p}.path_prefix"), m);
                    String::new()
                }
            },
            None => {
                errs.push(format!("{p}.path_prefix"), "is required, e.g. /pluralkit");
                String::new()
            }
        };
        let host = r.host.as_ref().map(|h| h.trim().to_ascii_lowercase());
        if !keys.insert((host.clone(), path_prefix.clone())) && !path_prefix.is_empty() {
            errs.push(
                format!("{p}.path_prefix"),
                format!("`{path_prefix}` is already routed by an earlier route"),
            );
        }
        let mut upstream = match r.upstream.as_deref() {
            Some(u) => parse_upstream(u, &format!("{p}.upstream"), &mut errs),
            None => {
                errs.push(
                    format!("{p}.upstream"),
                    "is required, e.g. https://api.example.com/v2",
                );
                None
            }
        };
        if let (Some(u), Some(f)) = (upstream.as_mut(), r.tls_ca_file.as_deref()) {
            if !u.tls {
                errs.push(
                    format!("{p}.tls_ca_file"),
                    "applies only to an https upstream",
                );
            }
            match load_ca_file(f) {
                Ok(ca) => u.ca = Some(ca),
                Err(m) => errs.push(format!("{p}.tls_ca_file"), m),
            }
        }
        let mut upstream_headers = Vec::new();
        for (k, v) in &r.upstream_headers {
            match (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                (Ok(k), Ok(v)) => upstream_headers.push((k, v)),
                _ => errs.push(
                    format!("{p}.upstream_headers.{k}"),
                    "is not a valid header name and value",
                ),
            }
        }
        let t = timeouts(
            &base_timeouts,
            r.timeouts.as_ref(),
            &format!("{p}.timeouts"),
            &mut errs,
        );
        let retry = retry_policy(
            &base_retry,
            r.retry.as_ref(),
            &format!("{p}.retry"),
            &mut errs,
        );
        let cd = cooldown(
            &base_cooldown,
            r.cooldown.as_ref(),
            &format!("{p}.cooldown"),
            &mut errs,
        );
        if let Some(upstream) = upstream {
            routes.push(Route {
                index: i,
                name: name.into(),
                vendor,
                path_prefix,
                host,
                upstream,
                upstream_headers,
                timeouts: t,
                retry,
                cooldown: cd,
            });
        }
    }

    if !errs.list.is_empty() {
        return Err(ConfigErrors(errs.list));
    }
    Ok(Config {
        path: path.to_path_buf(),
        listen,
        admin_listen,
        catalog_dir,
        problem_type_base,
        hold_max_bytes: hold_max_bytes as usize,
        max_request_body_bytes: fc
            .max_request_body_bytes
            .unwrap_or(DEFAULT_MAX_REQUEST_BODY_BYTES),
        retry_after_max,
        catalog_poll_interval,
        grace_period_seconds: fc
            .grace_period_seconds
            .unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS),
        threads: fc.threads.unwrap_or(0),
        cooldown_max_keys: fc
            .cooldown
            .as_ref()
            .and_then(|c| c.max_keys)
            .unwrap_or(DEFAULT_COOLDOWN_MAX_KEYS)
            .max(1),
        routes: RouteTable::new(routes),
    })
}
