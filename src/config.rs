//! Runtime configuration: loaded from YAML, validated, with every value already parsed.
//!
//! Pipeline: file text -> [`file::FileConfig`] (plain serde, `deny_unknown_fields`, read by
//! [`crate::yaml::parse_all`] so every unknown key and wrong type is reported, each alone)
//! -> [`validate`] (pure: required fields, ranges, URLs, durations, duplicates, every problem
//! with its path) -> load step (reads `tls_ca_file`s; resolves `upstream_headers` values from
//! the environment and secret files) -> [`Config`]. Nothing here panics on input. Only runtime
//! types reach the proxy.

mod ca;
pub mod downstream;
pub mod file;
pub mod headers;
mod secrets;
mod validate;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::retry::RetryPolicy;
use http::HeaderName;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use validate::parse_duration;

/// Default client listener.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default admin listener: loopback, because metrics and reload are not for clients.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
/// Default catalog directory. A relative `catalog_dir` (this default included) is resolved
/// against the working directory of the process, not the config file's directory.
pub const DEFAULT_CATALOG_DIR: &str = "catalogs";
/// Default hold limit: vendor error envelopes are small; 64 KiB bounds memory per request.
pub const DEFAULT_HOLD_MAX_BYTES: u64 = 64 * 1024;
/// Default request body limit: vendor API calls are small; uploads larger than this are refused.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// Default catalog poll interval: catches watcher misses within seconds at trivial cost.
pub const DEFAULT_CATALOG_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Default shutdown grace period: enough for slow vendor calls to finish.
pub const DEFAULT_GRACE_PERIOD_SECONDS: u64 = 30;
/// Default connect timeout (TCP + TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default timeout of a single read from the vendor.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default deadline to decide a response.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
/// `cooldown.store` value (and default) for holds kept in this process only.
pub const STORE_MEMORY: &str = "memory";

/// Default time a resolved upstream address is used before it is refreshed (`dns.ttl`): the
/// system resolver reports no record TTLs, so this is the TTL.
pub const DEFAULT_DNS_TTL: Duration = Duration::from_secs(30);
/// Default time a failed lookup is remembered, and the wait before a failed background refresh
/// is tried again (`dns.negative_ttl`): short, so a fixed resolver is noticed quickly.
pub const DEFAULT_DNS_NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Upstream name resolution settings (`dns.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsSettings {
    /// How long an answer is fresh.
    pub ttl: Duration,
    /// How long a failure is remembered.
    pub negative_ttl: Duration,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            ttl: DEFAULT_DNS_TTL,
            negative_ttl: DEFAULT_DNS_NEGATIVE_TTL,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Client listener address.
    pub listen: String,
    /// Admin listener address.
    pub admin_listen: String,
    /// Catalog directory as written (relative: against the working directory).
    pub catalog_dir: PathBuf,
    /// Base of problem `type` URIs.
    pub problem_type_base: String,
    /// Hold limit in bytes.
    pub hold_max_bytes: usize,
    /// Request body limit in bytes.
    pub max_request_body_bytes: u64,
    /// Cap on retry hints.
    pub retry_after_max: Duration,
    /// Catalog content-hash poll interval.
    pub catalog_poll_interval: Duration,
    /// Shutdown grace period in seconds.
    pub grace_period_seconds: u64,
    /// Worker threads; 0 means one per CPU.
    pub threads: usize,
    /// Most cooldown keys tracked at once.
    pub cooldown_max_keys: usize,
    /// Fleet cooldown store (`cooldown.store`); `None` is `memory`, this process only.
    pub cooldown_store: Option<crate::cooldown_store::StoreSettings>,
    /// Client-side bounds: header, read, write and idle timeouts, most connections.
    pub downstream: downstream::Downstream,
    /// Upstream name resolution.
    pub dns: DnsSettings,
    /// Routes, ordered for lookup.
    pub routes: RouteTable,
    /// The access log. Restart to change.
    pub access_log: crate::access_log::AccessLogSettings,
    /// Files that `upstream_headers` values were read from: the reloader hashes them with the
    /// config file and watches their directories.
    pub secret_files: Vec<PathBuf>,
    /// The forward-proxy listener and egress policy, when configured.
    pub forward_proxy: Option<crate::egress::settings::ForwardProxy>,
}

/// Where a route forwards to.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// https (TLS with SNI and verification) or http.
    pub tls: bool,
    /// Host name or IP literal.
    pub host: String,
    /// The host as an IP address when it is a literal (parsed once at load): never resolved.
    pub ip: Option<std::net::IpAddr>,
    /// Port.
    pub port: u16,
    /// Base path joined before the stripped request path, without a trailing slash.
    pub base_path: String,
    /// `Host` header value sent upstream.
    pub authority: String,
    /// `tls_ca_file` as written (relative: against the working directory).
    pub ca_file: Option<String>,
    /// Its certificates, trusted instead of the system roots; filled by the load step.
    pub ca: Option<TrustedCa>,
}

/// CA certificates from `tls_ca_file`, parsed and checked at load so a bad file is a config
/// error, never a failure on the request path.
#[derive(Clone)]
pub struct TrustedCa {
    /// The file they came from.
    pub file: String,
    /// Pingora's form of the certificates.
    pub certs: std::sync::Arc<pingora::protocols::tls::CaType>,
}

impl fmt::Debug for TrustedCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedCa({}, {} certs)", self.file, self.certs.len())
    }
}

impl PartialEq for TrustedCa {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file && self.certs.len() == other.certs.len()
    }
}

/// Timeouts of one route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// TCP + TLS connect.
    pub connect: Duration,
    /// Single read.
    pub read: Duration,
    /// Deadline to decide one attempt's response.
    pub total: Duration,
}

/// Cooldown settings of one route.
#[derive(Debug, Clone, PartialEq)]
pub struct CooldownSettings {
    /// Whether errgate holds traffic back while a rate-limit hint runs.
    pub enabled: bool,
    /// Header keying the cooldown, lower-case.
    pub key_header: Option<HeaderName>,
}

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Position in the config, a stable small integer for per-route state.
    pub index: usize,
    /// Unique name (shared cheaply with per-request state).
    pub name: std::sync::Arc<str>,
    /// Catalog id.
    pub vendor: String,
    /// Normalized prefix: starts with `/`, no trailing `/` unless it is `/`.
    pub path_prefix: String,
    /// Lower-case host without port, when the route is host-bound.
    pub host: Option<String>,
    /// Where it forwards.
    pub upstream: Upstream,
    /// Headers set on every upstream request; values are secrets (`Debug` prints `[redacted]`).
    pub upstream_headers: Vec<(HeaderName, crate::secret::Secret)>,
    /// Request headers removed before the vendor (the top-level list plus the route's own).
    pub strip_request_headers: Vec<HeaderName>,
    /// Redacts the injected header values from problems and log lines (built by the load step,
    /// once the values are resolved).
    pub redactor: crate::redact::Redactor,
    /// Methods forwarded; others get 405.
    pub methods: crate::methods::AllowedMethods,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Cooldown.
    pub cooldown: CooldownSettings,
    /// How vendor errors are answered (`problem`, `annotate`, `observe`). In `annotate`,
    /// `retry.enabled` is false unless the route's own `retry` block sets it; in `observe`,
    /// `retry` is only used to count what errgate would have done.
    pub mode: crate::mode::Mode,
    /// The Pingora peer last built for this route (per snapshot: a reload starts empty).
    pub peer: PeerCache,
}

/// The route's Pingora peer for its current address, built once instead of per request (a peer
/// is a few hundred bytes of options, a host `String` and the CA handle). Rebuilt when the
/// resolved address changes; a route cloned or reloaded starts with an empty cache.
#[derive(Default)]
pub struct PeerCache(arc_swap::ArcSwapOption<pingora::prelude::HttpPeer>);

impl PeerCache {
    /// The cached peer when it is for `addr`, else the one `build` makes (then cached).
    pub fn get_or_build(
        &self,
        addr: std::net::SocketAddr,
        build: impl FnOnce() -> pingora::prelude::HttpPeer,
    ) -> std::sync::Arc<pingora::prelude::HttpPeer> {
        if let Some(p) = &*self.0.load() {
            if p._address.as_inet() == Some(&addr) {
                return p.clone();
            }
        }
        let p = std::sync::Arc::new(build());
        self.0.store(Some(p.clone()));
        p
    }
}

impl Clone for PeerCache {
    fn clone(&self) -> Self {
        PeerCache::default()
    }
}

impl std::fmt::Debug for PeerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerCache")
    }
}

/// Routes in lookup order: host-bound first, then longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

// === impl RouteTable ===

impl RouteTable {
    /// Builds the table; `routes` keep their `index`.
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by(|a, b| {
            b.host
                .is_some()
                .cmp(&a.host.is_some())
                .then(b.path_prefix.len().cmp(&a.path_prefix.len()))
        });
        RouteTable { routes }
    }

    /// The route for a request, and the path left after stripping its prefix (always starting
    /// with `/` or empty). `host` is the request's Host (port and case ignored).
    pub fn find<'a, 'p>(
        &'a self,
        host: Option<&str>,
        path: &'p str,
    ) -> Option<(&'a Route, &'p str)> {
        let host = host.map(strip_port);
        self.routes.iter().find_map(|r| {
            if let Some(want) = &r.host {
                match host {
                    Some(h) if h.eq_ignore_ascii_case(want) => {}
                    _ => return None,
                }
            }
            strip_prefix_segment(path, &r.path_prefix).map(|rest| (r, rest))
        })
    }

    /// All routes, in lookup order.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Route> {
        self.routes.iter_mut()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return host
            .split(']')
            .next()
            .map_or(host, |h| h.trim_start_matches('['));
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// `path` without `prefix` when `prefix` ends on a segment boundary of `path`. The query is
/// part of `path` and a boundary too.
pub fn strip_prefix_segment<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    if prefix == "/" {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    match rest.as_bytes().first() {
        None | Some(b'/') | Some(b'?') => Some(rest),
        _ => None,
    }
}

impl Upstream {
    /// The upstream path for a request: base path + rest (rest keeps its query).
    pub fn join_path(&self, rest: &str) -> String {
        let mut out = String::with_capacity(self.base_path.len() + rest.len() + 1);
        out.push_str(&self.base_path);
        if rest.is_empty() || rest.starts_with('?') {
            if out.is_empty() {
                out.push('/');
            }
        } else if !rest.starts_with('/') {
            out.push('/');
        }
        out.push_str(rest);
        out
    }
}

/// Settings read once at start: a reload that changes them takes effect only after a restart.
/// Every other key is reloaded.
pub const RESTART_KEYS: [&str; 10] = [
    "listen",
    "admin_listen",
    "threads",
    "grace_period_seconds",
    "cooldown.max_keys",
    "catalog_poll_interval",
    "cooldown.store",
    "access_log",
    "forward_proxy.listen",
    "forward_proxy.tls_intercept",
];

// === impl Config ===

impl Config {
    /// The [`RESTART_KEYS`] whose value differs between `self` (serving) and `new`.
    pub fn restart_needed(&self, new: &Config) -> Vec<&'static str> {
        let changed = [
            self.listen != new.listen,
            self.admin_listen != new.admin_listen,
            self.threads != new.threads,
            self.grace_period_seconds != new.grace_period_seconds,
            self.cooldown_max_keys != new.cooldown_max_keys,
            self.catalog_poll_interval != new.catalog_poll_interval,
            self.cooldown_store != new.cooldown_store,
            self.access_log != new.access_log,
            self.forward_proxy.as_ref().map(|f| &f.listen)
                != new.forward_proxy.as_ref().map(|f| &f.listen),
            self.forward_proxy.as_ref().map(|f| &f.tls_intercept)
                != new.forward_proxy.as_ref().map(|f| &f.tls_intercept),
        ];
        RESTART_KEYS
            .iter()
            .zip(changed)
            .filter_map(|(k, c)| c.then_some(*k))
            .collect()
    }

    /// What the catalog cross-check needs from this config.
    pub fn outline(&self) -> Outline {
        let mut route_vendors: Vec<(usize, String)> = self
            .routes
            .iter()
            .map(|r| (r.index, r.vendor.clone()))
            .collect();
        route_vendors.sort();
        let mut ca_files: Vec<(usize, String)> = self
            .routes
            .iter()
            .filter_map(|r| Some((r.index, r.upstream.ca_file.clone()?)))
            .collect();
        ca_files.sort();
        Outline {
            file: self.path.display().to_string(),
            catalog_dir: self.catalog_dir.clone(),
            route_vendors,
            ca_files,
            // Only the catalog cross-check uses an outline made from a loaded config.
            upstream_headers: Vec::new(),
        }
    }
}

/// What a config file names for the catalog cross-check, known even when the file has
/// problems (so `check` reports catalog problems in the same run).
#[derive(Debug, Clone, PartialEq)]
pub struct Outline {
    /// The config file.
    pub file: String,
    /// `catalog_dir` as written, or the default.
    pub catalog_dir: PathBuf,
    /// `(position in routes, vendor)` of each route that names a vendor.
    pub route_vendors: Vec<(usize, String)>,
    /// `(position in routes, tls_ca_file)` of each route that names one.
    pub ca_files: Vec<(usize, String)>,
    /// `(position in routes, upstream_headers)` of each route that has some: the load step
    /// resolves them (variables, files), also when the rest of the file has problems.
    pub upstream_headers: Vec<(
        usize,
        std::collections::BTreeMap<String, crate::secret::FileSecret>,
    )>,
}

/// A config file read as far as it goes.
#[derive(Debug)]
pub struct ConfigCheck {
    /// The config, or every problem in the file.
    pub config: Result<Config, Diagnostics>,
    /// `None` when the file could not be read as a mapping at all.
    pub outline: Option<Outline>,
}

/// Reads, validates and loads a config file (the load step reads `tls_ca_file`s and resolves
/// `upstream_headers` values from the environment and secret files).
pub fn load_config(path: &Path) -> Result<Config, Diagnostics> {
    check_config(path).config
}

/// [`load_config`], also returning the outline when the file has problems.
pub fn check_config(path: &Path) -> ConfigCheck {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return ConfigCheck {
                config: Err(Diagnostic::new(
                    path.display().to_string(),
                    "(file)",
                    format!("cannot read: {e}"),
                )
                .into()),
                outline: None,
            }
        }
    };
    let mut checked = read_config(&text, path);
    let Some(outline) = &checked.outline else {
        return checked;
    };
    let mut load_errs = Vec::new();
    if let Err(e) = ca::load_trusted_cas(
        &outline.file,
        &outline.ca_files,
        checked.config.as_mut().ok(),
    ) {
        load_errs.extend(e.0);
    }
    if let Err(e) = secrets::load_upstream_headers(
        &outline.file,
        &outline.upstream_headers,
        checked.config.as_mut().ok(),
    ) {
        load_errs.extend(e.0);
    }
    if !load_errs.is_empty() {
        checked.config = match checked.config {
            Ok(_) => Err(Diagnostics(load_errs)),
            Err(mut errs) => {
                errs.0.append(&mut load_errs);
                Err(errs)
            }
        };
    }
    checked
}

/// Validates config text without touching the filesystem (`tls_ca_file`s are not read);
/// `path` names the file in problems.
pub fn parse_config(text: &str, path: &Path) -> Result<Config, Diagnostics> {
    read_config(text, path).config
}

/// [`parse_config`], also returning the outline when the text has problems.
pub fn read_config(text: &str, path: &Path) -> ConfigCheck {
    validate::validate(text, path)
}

#[cfg(test)]
mod tests;
