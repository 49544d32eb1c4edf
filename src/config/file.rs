//! The config file as written by operators (contract §4): serde types only.
//!
//! Every struct denies unknown keys so a typo is an error with its path, not a silent default;
//! adding a key is adding a field here (and reading it in `validate`). Defaults live as named
//! consts in [`crate::config`] and in the module that owns the setting ([`crate::retry`],
//! [`crate::retry::cooldown`]); these types keep `Option`s so validation can tell "absent"
//! from "set". Keys marked "Restart to change" are [`crate::config::RESTART_KEYS`].

use crate::secret::FileSecret;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Top level of `errgate.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Client listener, `host:port`. Default `0.0.0.0:8080`. Restart to change.
    pub listen: Option<String>,
    /// Admin listener (metrics, health, catalogs, reload). Default `127.0.0.1:9090`. Restart to change.
    pub admin_listen: Option<String>,
    /// Directory with one catalog file per vendor id; a relative path is resolved against the
    /// working directory (not the config file's directory). Default `catalogs`.
    pub catalog_dir: Option<String>,
    /// Base URI of the problem `type` field. Default `https://errgate.dev/problems`.
    pub problem_type_base: Option<String>,
    /// Largest response prefix (bytes) held back while the scanner decides. Default 65536.
    pub hold_max_bytes: Option<u64>,
    /// Largest request body forwarded, in bytes; larger requests get 413. Default 16 MiB.
    pub max_request_body_bytes: Option<u64>,
    /// Cap on any retry hint errgate honours or echoes, e.g. `5m`. Default 5 minutes.
    pub retry_after_max: Option<String>,
    /// Interval of the catalog content-hash check that catches missed file events. Default `10s`.
    /// Restart to change.
    pub catalog_poll_interval: Option<String>,
    /// Seconds Pingora waits for in-flight requests on shutdown. Default 30. Restart to change.
    pub grace_period_seconds: Option<u64>,
    /// Worker threads of the client listener. Default: number of CPUs. Restart to change.
    pub threads: Option<usize>,
    /// Default mode of every route: `problem` (default), `annotate` or `observe` (see
    /// [`crate::mode`]).
    pub mode: Option<String>,
    /// Defaults for every route's timeouts.
    pub timeouts: Option<FileTimeouts>,
    /// Defaults for every route's retry policy.
    pub retry: Option<FileRetry>,
    /// Defaults for every route's cooldown.
    pub cooldown: Option<FileCooldown>,
    /// Client-side timeouts and the connection limit.
    pub downstream: Option<super::downstream::FileDownstream>,
    /// The access log. Default: JSON lines to stdout.
    pub access_log: Option<FileAccessLog>,
    /// Request headers removed before any vendor (routes add their own). Default
    /// [`crate::config::headers::DEFAULT_STRIP_REQUEST_HEADERS`]; `[]` removes none.
    pub strip_request_headers: Option<Vec<String>>,
    /// Upstream name resolution.
    pub dns: Option<FileDns>,
    /// The routes, matched by path prefix (and optionally host).
    #[serde(default)]
    pub routes: Vec<FileRoute>,
    /// Forward-proxy listener and egress policy ([`crate::egress`]); absent: off.
    pub forward_proxy: Option<crate::egress::settings::FileForwardProxy>,
}

/// One route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    /// Unique name; the `route` label in metrics.
    pub name: Option<String>,
    /// Catalog id classifying this route's responses.
    pub vendor: Option<String>,
    /// Path prefix, matched on a segment boundary and stripped before forwarding.
    pub path_prefix: Option<String>,
    /// Optional Host the request must carry (case-insensitive, port ignored).
    pub host: Option<String>,
    /// `http(s)://host[:port][/base/path]`.
    pub upstream: Option<String>,
    /// PEM file of CA certificates trusted for this https upstream instead of the system roots
    /// (a private CA, or a vendor's pinned issuer). Relative to the working directory.
    pub tls_ca_file: Option<String>,
    /// Extra headers set on every upstream request (for example an API key injected by the
    /// gateway). Each value is a string, `{env: NAME}` or `{file: PATH}` (re-read on reload).
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, FileSecret>,
    /// Request headers removed before this route's vendor, in addition to the top-level list.
    #[serde(default)]
    pub strip_request_headers: Vec<String>,
    /// How this route answers vendor errors: `problem`, `annotate` or `observe`. Default: the
    /// top-level `mode`.
    pub mode: Option<String>,
    /// Methods forwarded to the vendor; any other gets 405 with `Allow`, never forwarded.
    /// Default GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS. TRACE and CONNECT are refused here.
    pub methods: Option<Vec<String>>,
    /// Per-route timeout overrides.
    pub timeouts: Option<FileTimeouts>,
    /// Per-route retry overrides.
    pub retry: Option<FileRetry>,
    /// Per-route cooldown overrides.
    pub cooldown: Option<FileCooldown>,
}

/// Timeouts, as durations like `250ms`, `5s`, `1m`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileTimeouts {
    /// TCP + TLS connect. Default `5s`.
    pub connect: Option<String>,
    /// Longest wait for any single read from the vendor. Default `30s`.
    pub read: Option<String>,
    /// Deadline from the start of an attempt until errgate has decided the response
    /// (header received and, for held responses, the scan done). Default `60s`.
    pub total: Option<String>,
}

/// Retry policy knobs.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileRetry {
    /// Retry idempotent requests on retryable errors. Default true.
    pub enabled: Option<bool>,
    /// Attempts in all, the first included. Default 2.
    pub max_attempts: Option<u32>,
    /// Longest single wait before a retry. Default `2s`.
    pub max_wait: Option<String>,
    /// Longest time from the first attempt until the last retry starts. Default `5s`.
    pub total_budget: Option<String>,
    /// Largest request body kept for replay, in bytes. Default 65536.
    pub max_replay_body_bytes: Option<usize>,
    /// First backoff step when the vendor gave no hint. Default `100ms`.
    pub backoff_base: Option<String>,
    /// Share (percent) of the route's requests in flight that may be in a retry. Default 20.
    pub budget_percent: Option<u32>,
    /// Retries in flight always allowed. Default 3.
    pub budget_min_concurrency: Option<u32>,
}

/// Upstream name resolution (system resolver: /etc/hosts, /etc/resolv.conf, nsswitch).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileDns {
    /// How long a resolved address is used before a background refresh; a stale answer keeps
    /// serving while the refresh runs or when it fails. Default `30s`.
    pub ttl: Option<String>,
    /// How long a failed lookup is remembered (and the wait before a failed refresh is
    /// retried). Default `5s`.
    pub negative_ttl: Option<String>,
}

/// Cooldown knobs.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileCooldown {
    /// Answer 429 without contacting the vendor while its rate-limit hint runs. Default true.
    pub enabled: Option<bool>,
    /// Request header whose value keys the cooldown (stored hashed), e.g. `Authorization`.
    /// Default: none, the route is the key.
    pub key_header: Option<String>,
    /// Most keys tracked at once per process (top level only). Default 10000. Restart to change.
    pub max_keys: Option<usize>,
    /// Where holds are shared: `memory` (default: this process only) or a `redis://` /
    /// `rediss://` URL shared by a fleet. Top level only; a change needs a restart.
    pub store: Option<String>,
    /// Key and channel prefix in the store. Default `errgate`.
    pub store_prefix: Option<String>,
    /// Timeout of each store call. Default `500ms`.
    pub store_timeout: Option<String>,
    /// Store password: a string, `{env: NAME}` or `{file: PATH}`; overrides one in the URL.
    pub store_password: Option<crate::secret::FileSecret>,
}

/// The access log.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileAccessLog {
    /// `stdout` (default), `stderr`, `off`, or a file path (appended to, created if missing).
    /// Restart to change.
    pub target: Option<String>,
    /// `json` (default) or `text` (logfmt). Restart to change.
    pub format: Option<String>,
    /// Keep the query string in `path`. Default false: queries often carry keys. Restart to change.
    pub include_query: Option<bool>,
    /// Lines queued for the writer before new ones are dropped (and counted in
    /// `errgate_access_log_dropped_total`). Default 8192. Restart to change.
    pub buffer_lines: Option<usize>,
}
