//! Pingora glue: `Gateway` implements `ProxyHttp`; every phase reads from `Session`/`CTX`, calls
//! pure code, writes the result back.
//!
//! errgate answers from `request_filter`, driving Pingora's own HTTP `Connector` (pooling, TLS,
//! H1/H2) in [`serve`], because Pingora writes the response header before body filters run
//! and a vendor error inside a 200 must change the status (see ARCHITECTURE.md, "Deciding before
//! the header is sent"). `upstream_peer` is therefore never reached.

mod access;
mod admission;
mod body;
mod clients;
pub mod ctx;
mod exchange;
pub mod headers;
mod heartbeat;
mod resolve;
pub mod route_state;
mod serve;
mod upstream;
mod wait;

use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::state::Shared;
use async_trait::async_trait;
use pingora::connectors::http::v1::Connector;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};
use std::sync::Arc;

pub use clients::ClientLimits;
pub use ctx::RequestCtx;
use resolve::Resolver;

/// Idle connections kept per process for reuse across requests.
pub const UPSTREAM_POOL_SIZE: usize = 256;

/// The gateway service: shared state for every request.
pub struct Gateway {
    /// Config + catalogs snapshot, cooldowns.
    pub shared: Arc<Shared>,
    /// Metric handles.
    pub metrics: Arc<Metrics>,
    /// The access log (off unless [`Gateway::with_access_log`] set one).
    pub access_log: AccessLog,
    /// HTTP/1.1 only: errgate's peers never offer h2 in ALPN.
    connector: Connector,
    resolver: Resolver,
    routes: route_state::RouteStates,
}

// === impl Gateway ===

impl Gateway {
    /// Builds the service.
    pub fn new(shared: Arc<Shared>, metrics: Arc<Metrics>) -> Gateway {
        let mut opts = pingora::connectors::ConnectorOptions::new(UPSTREAM_POOL_SIZE);
        opts.keepalive_pool_size = UPSTREAM_POOL_SIZE;
        Gateway {
            shared,
            metrics,
            access_log: AccessLog::off(),
            connector: Connector::new(Some(opts)),
            resolver: Resolver::default(),
            routes: route_state::RouteStates::default(),
        }
    }

    /// Writes an access log line per request to `log`.
    pub fn with_access_log(mut self, log: AccessLog) -> Gateway {
        self.access_log = log;
        self
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    /// The request header is complete: the connection's header deadline stands down.
    async fn early_request_filter(&self, _s: &mut Session, _c: &mut RequestCtx) -> Result<()> {
        clients::header_received();
        Ok(())
    }

    /// Handles the whole exchange: route, cooldown, upstream attempts, hold-and-scan, answer.
    /// Always returns `Ok(true)` (response sent) unless the client connection failed.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.begin(session.req_header());
        serve::serve(self, session, ctx).await?;
        Ok(true)
    }

    /// Never reached: `request_filter` always answers.
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        Error::e_explain(
            ErrorType::InternalError,
            "errgate forwards from request_filter",
        )
    }

    /// An error that escaped the exchange still leaves as problem+json when nothing was written
    /// yet; a dead client connection gets nothing.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let client_gone = e.esource() == &pingora::ErrorSource::Downstream
            && matches!(
                e.etype(),
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed
            )
            // A client that stopped reading gets nothing more (only client writes are timed here).
            || e.etype() == &ErrorType::WriteTimedout;
        if client_gone || session.response_written().is_some() {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        log::warn!("request failed outside the exchange: {e}");
        let p = crate::problem::Problem::own(
            crate::problem::Code::Internal,
            500,
            "INTERNAL_ERROR",
            "errgate could not handle the request; the error is logged.",
        );
        let base = self.shared.snapshot().config.problem_type_base.clone();
        let code = match serve::answer(session, ctx, &p, &base, None).await {
            Ok(()) => 500,
            Err(_) => 0,
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Records the request's metrics and writes its access log line.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let duration = ctx.started.elapsed();
        ctx.record(&self.metrics, duration);
        access::log(&self.access_log, session, ctx, duration);
    }
}
