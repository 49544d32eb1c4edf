//! The admin listener (contract §6): `GET /metrics`, `/healthz`, `/readyz`, `/catalogs`,
//! `/uncataloged`, `/cooldown` (fleet store state), `POST /-/reload`. Separate from the client
//! listener so metrics and reload never face clients.

use crate::cooldown_store::StoreStatus;
use crate::metrics::Metrics;
use crate::reloader::{publish_catalog_gauges, reload_now};
use crate::state::{ReloadOutcome, Shared};
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora_prometheus::prometheus::{Encoder, Registry, TextEncoder};
use std::sync::Arc;
use tokio::time::Instant;

/// The admin HTTP app.
pub struct AdminApp {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The registry `/metrics` gathers.
    pub registry: Registry,
    /// The fleet cooldown store's state, when `cooldown.store` is not `memory`.
    pub cooldown_store: Option<Arc<StoreStatus>>,
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Vec<u8>> {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    respond(status, "application/json", body)
}

// === impl AdminApp ===

impl AdminApp {
    fn metrics_text(&self) -> Response<Vec<u8>> {
        self.metrics
            .cooldowns_active
            .set(self.shared.cooldowns.active(Instant::now()) as i64);
        publish_catalog_gauges(&self.shared, &self.metrics);
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if let Err(e) = enc.encode(&self.registry.gather(), &mut buf) {
            return respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                e.to_string().into_bytes(),
            );
        }
        respond(StatusCode::OK, enc.format_type(), buf)
    }

    fn catalogs(&self) -> Response<Vec<u8>> {
        let snap = self.shared.snapshot();
        let status = self.shared.status();
        let loaded_at = snap
            .catalogs
            .loaded_at
            .and_then(|t| t.duration_since(std::time::SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let vendors: serde_json::Map<String, serde_json::Value> = snap
            .catalogs
            .meta
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    serde_json::json!({
                        "hash": m.hash,
                        "entries": m.entries,
                        "file": m.file,
                        "loaded_at_unix": loaded_at,
                        "last_reload_error": if status.last_error.is_empty() { serde_json::Value::Null } else { serde_json::json!(status.last_error) },
                    }),
                )
            })
            .collect();
        json(
            StatusCode::OK,
            &serde_json::json!({
                "catalog_dir": snap.config.catalog_dir.display().to_string(),
                "hash": snap.catalogs.hash,
                "loaded_at_unix": loaded_at,
                "vendors": vendors,
                "reload": status,
            }),
        )
    }

    /// `/readyz` body: ready either way (local holds keep deciding), but a store that does not
    /// share says so.
    fn ready_text(&self) -> String {
        match &self.cooldown_store {
            Some(st) if st.is_degraded() => format!(
                "ready (degraded: cooldown store {}, holds stay local)\n",
                st.state().as_str()
            ),
            _ => "ready\n".to_string(),
        }
    }

    /// `GET /cooldown`: the store's state and counters, and the local table's size.
    fn cooldown(&self) -> Response<Vec<u8>> {
        let active = self.shared.cooldowns.active(Instant::now());
        let mut v = match &self.cooldown_store {
            Some(st) => st.to_json(),
            None => serde_json::json!({"store": "memory", "degraded": false}),
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("active_local".to_string(), serde_json::json!(active));
            o.insert(
                "capacity".to_string(),
                serde_json::json!(self.shared.cooldowns.capacity()),
            );
        }
        json(StatusCode::OK, &v)
    }

    async fn reload(&self) -> Response<Vec<u8>> {
        let (r, m) = (self.shared.clone(), self.metrics.clone());
        let outcome = tokio::task::spawn_blocking(move || reload_now(&r, &m, "admin")).await;
        match outcome {
            Ok(ReloadOutcome::Unchanged) => {
                json(StatusCode::OK, &serde_json::json!({"result": "unchanged"}))
            }
            Ok(ReloadOutcome::Reloaded {
                config,
                catalogs,
                needs_restart,
            }) => json(
                StatusCode::OK,
                &serde_json::json!({"result": "reloaded", "config": config, "catalogs": catalogs, "needs_restart": needs_restart}),
            ),
            Ok(ReloadOutcome::Failed(errs)) => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &serde_json::json!({"result": "failed", "errors": errs}),
            ),
            Err(e) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &serde_json::json!({"result": "failed", "errors": [e.to_string()]}),
            ),
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let _ = session.drain_request_body().await;
        match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => self.metrics_text(),
            ("GET", "/healthz") => respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            ("GET", "/readyz") => {
                if !self
                    .shared
                    .reloader_ready
                    .load(std::sync::atomic::Ordering::Acquire)
                {
                    respond(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        b"starting: reloader not watching yet\n".to_vec(),
                    )
                } else if self.shared.snapshot().catalogs.is_empty() {
                    respond(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        b"no catalogs\n".to_vec(),
                    )
                } else {
                    respond(StatusCode::OK, "text/plain", self.ready_text().into_bytes())
                }
            }
            ("GET", "/cooldown") => self.cooldown(),
            ("GET", "/catalogs") => self.catalogs(),
            ("GET", "/uncataloged") => {
                let report = self.shared.uncataloged.report();
                match serde_json::to_value(&report) {
                    Ok(v) => json(StatusCode::OK, &v),
                    Err(e) => respond(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        e.to_string().into_bytes(),
                    ),
                }
            }
            ("POST", "/-/reload") => self.reload().await,
            (
                _,
                "/metrics" | "/healthz" | "/readyz" | "/catalogs" | "/uncataloged" | "/cooldown"
                | "/-/reload",
            ) => respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                b"method not allowed\n".to_vec(),
            ),
            _ => respond(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}
