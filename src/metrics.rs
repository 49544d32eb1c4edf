//! Prometheus metrics: names, buckets and typed handles in one place (contract §7).
//!
//! Label values come only from closed sets: route names from config, vendor ids and codes from
//! catalogs, canonical codes, fixed outcome/result strings. A vendor code missing from its
//! catalog is counted as `upstream_code="uncataloged"`. Production registers into
//! `pingora_prometheus::prometheus::default_registry()` (the registry Pingora's exporters
//! gather); tests pass a fresh `Registry`.

pub mod egress;
pub mod process;

use pingora_prometheus::prometheus::{
    self, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Latency buckets (seconds): 1 ms to 5 min. The top buckets reach past the longest time a
/// request can take with the defaults: one attempt is bounded by `timeouts.total` (60 s), and a
/// retried request by `retry.max_attempts` attempts plus waits within `retry.total_budget`
/// (2 × 60 s + 5 s = 125 s), so a request that hits a timeout lands in a finite bucket and
/// quantiles near the timeout stay meaningful instead of collapsing into `+Inf`.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// Name of the build-information gauge (`version` label, value 1).
pub const BUILD_INFO: &str = "errgate_build_info";

/// `upstream_code` label of a vendor code its catalog does not list.
pub const UNCATALOGED: &str = "uncataloged";
/// `upstream_code` label when the vendor sent no code (and for errgate's own errors).
pub const NO_CODE: &str = "none";
/// `route` label of requests that matched no route.
pub const NO_ROUTE: &str = "none";

/// How a request ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The vendor's response went through untouched.
    Passthrough,
    /// A vendor error was normalized.
    Normalized,
    /// errgate answered with its own error (label value `gateway`, fixed by the contract).
    Own,
}

impl Outcome {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passthrough => "passthrough",
            Outcome::Normalized => "normalized",
            Outcome::Own => "gateway",
        }
    }
}

/// All of errgate's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// `errgate_requests_total{route,outcome,status}`.
    pub requests: IntCounterVec,
    /// `errgate_errors_total{route,domain,code,reason,upstream_code}`.
    pub errors: IntCounterVec,
    /// `errgate_request_duration_seconds{route,outcome}`.
    pub duration: HistogramVec,
    /// `errgate_catalog_reloads_total{result}`.
    pub reloads: IntCounterVec,
    /// `errgate_upstream_duration_seconds{route}`: attempt start to response header.
    pub upstream_duration: HistogramVec,
    /// `errgate_requests_in_flight{route}`.
    pub in_flight: IntGaugeVec,
    /// `errgate_cooldowns_active`: keys currently held back (set at scrape time).
    pub cooldowns_active: IntGauge,
    /// `errgate_cooldown_rejections_total{route}`.
    pub cooldown_rejections: IntCounterVec,
    /// `errgate_retries_total{route,result}`.
    pub retries: IntCounterVec,
    /// `errgate_held_fallbacks_total{route,reason}`: held responses released unclassified.
    pub held_fallbacks: IntCounterVec,
    /// `errgate_held_responses_total{route}`: responses held back for scanning.
    pub held: IntCounterVec,
    /// `errgate_scanned_bytes_total{route}`.
    pub scanned_bytes: IntCounterVec,
    /// `errgate_uncataloged_codes_total{route,domain}`: vendor codes missing from catalogs.
    pub uncataloged: IntCounterVec,
    /// `errgate_retry_hints_rejected_total{route,reason}`: vendor retry hints not believed
    /// (beyond `retry_after_max`, in the past, malformed).
    pub hints_rejected: IntCounterVec,
    /// `errgate_mode_answers_total{route,mode,answer}`: which mode answered and how
    /// (passthrough, problem, annotated, untouched).
    pub mode_answers: IntCounterVec,
    /// `errgate_observe_would_total{route,action}`: what an `observe` route would have done
    /// (normalize, retry, cooldown).
    pub observe_would: IntCounterVec,
    /// `errgate_catalog_entries{vendor}`.
    pub catalog_entries: IntGaugeVec,
    /// `errgate_catalog_last_reload_success_timestamp_seconds`.
    pub last_reload_success: IntGauge,
    /// `errgate_build_info{version}` = 1.
    pub build_info: IntGaugeVec,
    /// Requests handled in total, any outcome (for quick sanity checks).
    pub handled: IntCounter,
    /// `errgate_access_log_dropped_total`: access log lines dropped under back-pressure or on
    /// write errors.
    pub access_log_dropped: IntCounter,
}

fn counter(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histogram(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )?;
    reg.register(Box::new(h.clone()))?;
    Ok(h)
}

// === impl Metrics ===

impl Metrics {
    /// Counts something an `observe` route would have done (`action`: normalize, retry,
    /// cooldown; a closed set).
    pub fn observe_would(&self, route: &str, action: &'static str) {
        self.observe_would.with_label_values(&[route, action]).inc();
    }

    /// Creates and registers every metric.
    pub fn register(reg: &Registry) -> prometheus::Result<Metrics> {
        let cooldowns_active = IntGauge::new(
            "errgate_cooldowns_active",
            "Cooldown keys currently holding traffic back.",
        )?;
        reg.register(Box::new(cooldowns_active.clone()))?;
        let last_reload_success = IntGauge::new(
            "errgate_catalog_last_reload_success_timestamp_seconds",
            "Unix time of the last successful catalog load.",
        )?;
        reg.register(Box::new(last_reload_success.clone()))?;
        let handled = IntCounter::new(
            "errgate_handled_requests_total",
            "Requests handled, any outcome.",
        )?;
        reg.register(Box::new(handled.clone()))?;
        let access_log_dropped = IntCounter::new(
            "errgate_access_log_dropped_total",
            "Access log lines dropped because the writer fell behind or failed.",
        )?;
        reg.register(Box::new(access_log_dropped.clone()))?;
        let m = Metrics {
            requests: counter(
                reg,
                "errgate_requests_total",
                "Requests by route, outcome and HTTP status sent.",
                &["route", "outcome", "status"],
            )?,
            errors: counter(
                reg,
                "errgate_errors_total",
                "Errors answered, by route, domain, canonical code, reason and vendor code.",
                &["route", "domain", "code", "reason", "upstream_code"],
            )?,
            duration: histogram(
                reg,
                "errgate_request_duration_seconds",
                "Time from request to the end of the response.",
                &["route", "outcome"],
            )?,
            reloads: counter(
                reg,
                "errgate_catalog_reloads_total",
                "Catalog reloads by result.",
                &["result"],
            )?,
            upstream_duration: histogram(
                reg,
                "errgate_upstream_duration_seconds",
                "Time from the start of an upstream attempt to its response header.",
                &["route"],
            )?,
            in_flight: gauge(
                reg,
                "errgate_requests_in_flight",
                "Requests being handled.",
                &["route"],
            )?,
            cooldowns_active,
            cooldown_rejections: counter(
                reg,
                "errgate_cooldown_rejections_total",
                "Requests answered 429 by errgate during a vendor cooldown.",
                &["route"],
            )?,
            retries: counter(
                reg,
                "errgate_retries_total",
                "Retry decisions by result.",
                &["route", "result"],
            )?,
            held_fallbacks: counter(
                reg,
                "errgate_held_fallbacks_total",
                "Held responses released without a decision, by reason.",
                &["route", "reason"],
            )?,
            held: counter(
                reg,
                "errgate_held_responses_total",
                "Responses held back until the scanner decided.",
                &["route"],
            )?,
            scanned_bytes: counter(
                reg,
                "errgate_scanned_bytes_total",
                "Response body bytes fed to the scanner.",
                &["route"],
            )?,
            uncataloged: counter(
                reg,
                "errgate_uncataloged_codes_total",
                "Vendor errors whose code is not in the catalog.",
                &["route", "domain"],
            )?,
            hints_rejected: counter(
                reg,
                "errgate_retry_hints_rejected_total",
                "Vendor retry hints not believed (beyond retry_after_max, in the past, malformed), by reason.",
                &["route", "reason"],
            )?,
            mode_answers: counter(
                reg,
                "errgate_mode_answers_total",
                "Requests by route mode and how they were answered (passthrough, problem, annotated, untouched).",
                &["route", "mode", "answer"],
            )?,
            observe_would: counter(
                reg,
                "errgate_observe_would_total",
                "What observe routes would have done (normalize, retry, cooldown).",
                &["route", "action"],
            )?,
            catalog_entries: gauge(
                reg,
                "errgate_catalog_entries",
                "Entries per vendor catalog in the serving set.",
                &["vendor"],
            )?,
            last_reload_success,
            build_info: gauge(
                reg,
                BUILD_INFO,
                "Always 1; the version label is errgate's version.",
                &["version"],
            )?,
            handled,
            access_log_dropped,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        // Both results exist from the start so `increase()` sees the first failure.
        for r in ["success", "failure"] {
            m.reloads.with_label_values(&[r]);
        }
        register_process_collector(reg)?;
        Ok(m)
    }
}

/// Registers the standard process metrics (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
/// `process_max_fds`, `process_start_time_seconds`, `process_threads`), read from `/proc/self`
/// at scrape time ([`process::ProcessCollector`]). Registering twice into one registry is
/// harmless. Linux only; elsewhere nothing is registered.
pub fn register_process_collector(reg: &Registry) -> prometheus::Result<()> {
    #[cfg(target_os = "linux")]
    match reg.register(Box::new(process::ProcessCollector::for_self()?)) {
        Ok(()) | Err(prometheus::Error::AlreadyReg) => {}
        Err(e) => return Err(e),
    }
    #[cfg(not(target_os = "linux"))]
    let _ = reg;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_build_info_process_metrics_and_long_buckets() {
        let reg = Registry::new();
        let m = Metrics::register(&reg).expect("register");
        m.duration
            .with_label_values(&["r", "gateway"])
            .observe(61.0);
        let families = reg.gather();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        #[cfg(target_os = "linux")]
        for want in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let info = families
            .iter()
            .find(|f| f.name() == BUILD_INFO)
            .expect("build info");
        let metric = &info.get_metric()[0];
        assert_eq!(metric.get_gauge().value(), 1.0);
        assert_eq!(metric.get_label()[0].name(), "version");
        assert_eq!(metric.get_label()[0].value(), env!("CARGO_PKG_VERSION"));
        // A 61 s request (past the default 60 s total timeout) lands in a finite bucket.
        let h = families
            .iter()
            .find(|f| f.name() == "errgate_request_duration_seconds")
            .expect("histogram");
        let buckets = h.get_metric()[0].get_histogram().get_bucket();
        let b120 = buckets
            .iter()
            .find(|b| b.upper_bound() == 120.0)
            .expect("120 s bucket");
        assert_eq!(b120.cumulative_count(), 1);
        let b60 = buckets
            .iter()
            .find(|b| b.upper_bound() == 60.0)
            .expect("60 s");
        assert_eq!(b60.cumulative_count(), 0);
    }
}

/// Metrics of the fleet cooldown store (`cooldown.store` set to a Redis URL); registered only
/// when a store is configured.
#[derive(Clone, Debug)]
pub struct CooldownStoreMetrics {
    /// `errgate_cooldown_store_connected`: 1 while holds are shared, 0 otherwise.
    pub connected: IntGauge,
    /// `errgate_cooldown_store_errors_total{op}`: failed Redis calls.
    pub errors: IntCounterVec,
    /// `errgate_cooldown_store_dropped_total`: holds not queued for Redis (queue full).
    pub dropped: IntCounter,
    /// `errgate_cooldown_store_written_total`: holds written and published.
    pub written: IntCounter,
    /// `errgate_cooldown_store_applied_total{source}`: holds learned from other replicas
    /// (`message` or `load`) that changed the local table.
    pub applied: IntCounterVec,
}

// === impl CooldownStoreMetrics ===

impl CooldownStoreMetrics {
    /// Creates and registers the store's metrics, every label value up front.
    pub fn register(reg: &Registry) -> prometheus::Result<Self> {
        let connected = IntGauge::new(
            "errgate_cooldown_store_connected",
            "1 while cooldown holds are shared through the store, 0 while degraded.",
        )?;
        reg.register(Box::new(connected.clone()))?;
        let dropped = IntCounter::new(
            "errgate_cooldown_store_dropped_total",
            "Cooldown holds not sent to the store because its queue was full.",
        )?;
        reg.register(Box::new(dropped.clone()))?;
        let written = IntCounter::new(
            "errgate_cooldown_store_written_total",
            "Cooldown holds written to the store and published.",
        )?;
        reg.register(Box::new(written.clone()))?;
        let m = Self {
            connected,
            errors: counter(
                reg,
                "errgate_cooldown_store_errors_total",
                "Failed cooldown store calls, by operation.",
                &["op"],
            )?,
            dropped,
            written,
            applied: counter(
                reg,
                "errgate_cooldown_store_applied_total",
                "Cooldown holds learned from other replicas, by source.",
                &["source"],
            )?,
        };
        for op in crate::cooldown_store::StoreOp::ALL {
            m.errors.with_label_values(&[op.as_str()]);
        }
        for s in ["message", "load"] {
            m.applied.with_label_values(&[s]);
        }
        Ok(m)
    }
}
