//! `FileConfig` -> `Config` (pure), collecting every problem with its field path.

use super::file::{FileAccessLog, FileConfig, FileCooldown, FileDns, FileRetry, FileTimeouts};
use super::*;
use crate::access_log::{AccessLogSettings, Format, Target};
use crate::cooldown_store::{
    check_prefix, StoreSettings, DEFAULT_STORE_PREFIX, DEFAULT_STORE_TIMEOUT,
};
use crate::mode::Mode;
use crate::retry::cooldown::DEFAULT_COOLDOWN_CAPACITY;
use crate::retry::{
    Backoff, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_JITTER, DEFAULT_RETRY_AFTER_MAX,
};
use std::collections::HashSet;
use std::net::SocketAddr;

struct Errors {
    file: String,
    list: Vec<Diagnostic>,
}

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.list
            .push(Diagnostic::new(self.file.clone(), path, message));
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

fn dns_settings(f: Option<&FileDns>, errs: &mut Errors) -> DnsSettings {
    let d = DnsSettings::default();
    let Some(f) = f else { return d };
    let out = DnsSettings {
        ttl: duration_or(&f.ttl, d.ttl, "dns.ttl", errs),
        negative_ttl: duration_or(&f.negative_ttl, d.negative_ttl, "dns.negative_ttl", errs),
    };
    for (name, v) in [("ttl", out.ttl), ("negative_ttl", out.negative_ttl)] {
        if v < Duration::from_millis(100) {
            errs.push(format!("dns.{name}"), "must be at least 100ms");
        }
    }
    out
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
    if path != "cooldown" {
        for (set, key) in [
            (f.store.is_some(), "store"),
            (f.store_prefix.is_some(), "store_prefix"),
            (f.store_timeout.is_some(), "store_timeout"),
            (f.store_password.is_some(), "store_password"),
        ] {
            if set {
                errs.push(
                    format!("{path}.{key}"),
                    "is a process-wide setting; set it under the top-level `cooldown`",
                );
            }
        }
    }
    c
}

/// The top-level `cooldown.store*` keys: `None` for `memory` (or when any is invalid; every
/// problem is reported).
fn cooldown_store(f: Option<&FileCooldown>, errs: &mut Errors) -> Option<StoreSettings> {
    let f = f?;
    let url = f.store.as_deref().map(str::trim).unwrap_or(STORE_MEMORY);
    let before = errs.list.len();
    let timeout = match f.store_timeout.as_deref().map(parse_duration) {
        None => DEFAULT_STORE_TIMEOUT,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            errs.push("cooldown.store_timeout", "must be greater than zero");
            DEFAULT_STORE_TIMEOUT
        }
        Some(Err(e)) => {
            errs.push("cooldown.store_timeout", e);
            DEFAULT_STORE_TIMEOUT
        }
    };
    let prefix = f.store_prefix.as_deref().unwrap_or(DEFAULT_STORE_PREFIX);
    if let Err(e) = check_prefix(prefix) {
        errs.push("cooldown.store_prefix", e);
    }
    let password = f.store_password.as_ref().and_then(|r| read_secret(r, errs));
    if url == STORE_MEMORY {
        return None;
    }
    let settings = match StoreSettings::try_new(url, password, DEFAULT_STORE_PREFIX, timeout) {
        Ok(s) => s,
        Err(e) => {
            errs.push("cooldown.store", e);
            return None;
        }
    };
    (errs.list.len() == before).then(|| StoreSettings {
        prefix: prefix.to_string(),
        ..settings
    })
}

/// The store password from a string, `{env: NAME}` or `{file: PATH}`, read now.
fn read_secret(r: &crate::secret::FileSecret, errs: &mut Errors) -> Option<String> {
    match r.resolve(|name| std::env::var(name).ok()) {
        Ok(v) => v.expose().to_str().ok().map(str::to_string),
        Err(e) => {
            errs.push("cooldown.store_password", e.to_string());
            None
        }
    }
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
    let ip = host.parse().ok();
    Some(Upstream {
        tls,
        ip,
        host,
        port,
        base_path,
        authority,
        ca_file: None,
        ca: None,
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

/// Reads `text` (structure: [`crate::yaml::parse_all`]) and validates what it holds. A
/// problem found by validation at or below a place that already had a structural problem is
/// left out: it would only repeat it (a route with an unknown key is not also missing its name).
pub(super) fn validate(text: &str, path: &Path) -> ConfigCheck {
    let file = path.display().to_string();
    let parsed = crate::yaml::parse_all::<FileConfig>(text);
    let structural: Vec<Diagnostic> = parsed
        .problems
        .into_iter()
        .map(|p| Diagnostic::new(&file, p.place, p.message))
        .collect();
    let Some(fc) = parsed.value else {
        return ConfigCheck {
            config: Err(Diagnostics(structural)),
            outline: None,
        };
    };
    let outline = outline(&fc, &file);
    let mut errs = Errors {
        file,
        list: Vec::new(),
    };
    let config = validate_file(&fc, path, &mut errs);
    let mut list = structural.clone();
    list.extend(errs.list.into_iter().filter(|d| {
        !structural
            .iter()
            .any(|s| is_at_or_below(&d.place, &s.place))
    }));
    ConfigCheck {
        config: if list.is_empty() {
            config.ok_or_else(Diagnostics::default)
        } else {
            Err(Diagnostics(list))
        },
        outline: Some(outline),
    }
}

fn is_at_or_below(place: &str, parent: &str) -> bool {
    place
        .strip_prefix(parent)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

fn outline(fc: &FileConfig, file: &str) -> Outline {
    let trimmed = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Outline {
        file: file.to_string(),
        catalog_dir: PathBuf::from(fc.catalog_dir.as_deref().unwrap_or(DEFAULT_CATALOG_DIR)),
        route_vendors: fc
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, trimmed(&r.vendor)?)))
            .collect(),
        ca_files: fc
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, r.tls_ca_file.clone()?)))
            .collect(),
        upstream_headers: fc
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.upstream_headers.is_empty())
            .map(|(i, r)| (i, r.upstream_headers.clone()))
            .collect(),
    }
}

/// The config, when `errs` stayed empty.
fn validate_file(fc: &FileConfig, path: &Path, errs: &mut Errors) -> Option<Config> {
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
        errs,
    );
    let catalog_poll_interval = duration_or(
        &fc.catalog_poll_interval,
        DEFAULT_CATALOG_POLL_INTERVAL,
        "catalog_poll_interval",
        errs,
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
        errs,
    );
    let cooldown_store = cooldown_store(fc.cooldown.as_ref(), errs);
    let base_retry = retry_policy(&RetryPolicy::default(), fc.retry.as_ref(), "retry", errs);
    let base_mode = match fc.mode.as_deref() {
        None => Mode::default(),
        Some(m) => parse_mode(m, "mode", errs),
    };
    let base_cooldown = cooldown(
        &CooldownSettings {
            enabled: true,
            key_header: None,
        },
        fc.cooldown.as_ref(),
        "cooldown",
        errs,
    );

    let dns = dns_settings(fc.dns.as_ref(), errs);

    if fc.routes.is_empty() {
        errs.push("routes", "at least one route is needed");
    }
    let access_log = access_log(fc.access_log.as_ref(), errs);
    let strip_top = match &fc.strip_request_headers {
        None => headers::default_strip_list(),
        Some(list) => {
            let mut problems = Vec::new();
            let l = headers::strip_list(list, "strip_request_headers", &mut problems);
            for (place, m) in problems {
                errs.push(place, m);
            }
            l
        }
    };
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
            Some(u) => parse_upstream(u, &format!("{p}.upstream"), errs),
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
            u.ca_file = Some(f.to_string());
        }
        // Names only: values (literals, variables, files) are resolved by the load step.
        for k in r.upstream_headers.keys() {
            if let Ok(name) = HeaderName::from_bytes(k.as_bytes()) {
                if crate::framing::injected_header_forbidden(&name) {
                    errs.push(
                        format!("{p}.upstream_headers.{name}"),
                        "is a hop-by-hop or framing header errgate sets itself (Connection, \
                         Content-Length, Transfer-Encoding, Host, TE, Trailer, Upgrade, \
                         Keep-Alive, Expect, Proxy-*); remove it",
                    );
                }
            } else {
                errs.push(
                    format!("{p}.upstream_headers.{k}"),
                    format!("`{k}` is not a valid header name"),
                );
            }
        }
        let mut problems = Vec::new();
        let own_strip = headers::strip_list(
            &r.strip_request_headers,
            &format!("{p}.strip_request_headers"),
            &mut problems,
        );
        for (place, m) in problems {
            errs.push(place, m);
        }
        let methods = match &r.methods {
            None => crate::methods::AllowedMethods::default(),
            Some(list) => match crate::methods::AllowedMethods::try_new(list) {
                Ok(m) => m,
                Err(e) => {
                    errs.push(format!("{p}.methods"), e.to_string());
                    crate::methods::AllowedMethods::default()
                }
            },
        };
        let t = timeouts(
            &base_timeouts,
            r.timeouts.as_ref(),
            &format!("{p}.timeouts"),
            errs,
        );
        let mut retry = retry_policy(&base_retry, r.retry.as_ref(), &format!("{p}.retry"), errs);
        let mode = match r.mode.as_deref() {
            None => base_mode,
            Some(m) => parse_mode(m, &format!("{p}.mode"), errs),
        };
        // Annotate: the application's SDK retries by itself, so errgate does not unless the
        // route says so in its own `retry` block.
        if mode == Mode::Annotate && r.retry.as_ref().and_then(|r| r.enabled).is_none() {
            retry.enabled = false;
        }
        let cd = cooldown(
            &base_cooldown,
            r.cooldown.as_ref(),
            &format!("{p}.cooldown"),
            errs,
        );
        if let Some(upstream) = upstream {
            routes.push(Route {
                index: i,
                name: name.into(),
                vendor,
                path_prefix,
                host,
                upstream,
                upstream_headers: Vec::new(),
                strip_request_headers: headers::route_strip_list(&strip_top, &own_strip),
                redactor: crate::redact::Redactor::default(),
                methods,
                timeouts: t,
                retry,
                cooldown: cd,
                mode,
                peer: Default::default(),
            });
        }
    }

    let downstream = downstream::Downstream::try_new(fc.downstream.as_ref()).unwrap_or_else(|e| {
        for (path, message) in e {
            errs.push(path, message);
        }
        downstream::Downstream::default()
    });
    let forward_proxy = match fc
        .forward_proxy
        .as_ref()
        .map(crate::egress::settings::validate)
    {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(problems)) => {
            for (place, message) in problems {
                errs.push(place, message);
            }
            None
        }
    };
    if !errs.list.is_empty() {
        return None;
    }
    Some(Config {
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
            .unwrap_or(DEFAULT_COOLDOWN_CAPACITY)
            .max(1),
        cooldown_store,
        downstream,
        dns,
        routes: RouteTable::new(routes),
        access_log,
        secret_files: Vec::new(),
        forward_proxy,
    })
}

/// A mode name, or an error naming the three.
fn parse_mode(m: &str, path: &str, errs: &mut Errors) -> Mode {
    Mode::parse(m).unwrap_or_else(|| {
        errs.push(
            path.to_string(),
            format!("`{m}` is not a mode; use problem, annotate or observe"),
        );
        Mode::default()
    })
}

fn access_log(f: Option<&FileAccessLog>, errs: &mut Errors) -> AccessLogSettings {
    let mut out = AccessLogSettings::default();
    let Some(f) = f else { return out };
    if let Some(t) = &f.target {
        match Target::parse(t) {
            Ok(t) => out.target = t,
            Err(m) => errs.push("access_log.target", m),
        }
    }
    if let Some(t) = &f.format {
        match Format::parse(t) {
            Ok(t) => out.format = t,
            Err(m) => errs.push("access_log.format", m),
        }
    }
    if let Some(q) = f.include_query {
        out.include_query = q;
    }
    match f.buffer_lines {
        Some(0) => errs.push("access_log.buffer_lines", "must be at least 1"),
        Some(n) => out.buffer = n,
        None => {}
    }
    out
}
