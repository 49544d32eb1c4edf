//! Per-request state: what the metrics and the access log need at the end, nothing more.

use super::route_state::RouteHandles;
use crate::ids::{self, TraceParent};
use crate::metrics::{Metrics, Outcome, NO_ROUTE};
use pingora::http::RequestHeader;
use std::sync::Arc;
use tokio::time::Instant;

/// Labels of an error answered, for `errgate_errors_total`.
#[derive(Debug, Clone)]
pub struct ErrorLabels {
    /// Vendor id or `errgate`.
    pub domain: String,
    /// Canonical code.
    pub code: &'static str,
    /// Reason.
    pub reason: String,
    /// Vendor code from the catalog, `uncataloged` or `none`.
    pub upstream_code: String,
}

/// One request's state.
pub struct RequestCtx {
    /// When errgate started handling it.
    pub started: Instant,
    /// Route name, `None` until routed.
    pub route: Option<Arc<str>>,
    /// How it ended.
    pub outcome: Outcome,
    /// Status sent.
    pub status: u16,
    /// Error labels when an error was answered (boxed, as the trace below: the context lives in
    /// Pingora's per-request future, which is moved byte for byte; successes carry neither).
    pub error: Option<Box<ErrorLabels>>,
    /// The route's handles; its in-flight gauge is decremented when recorded.
    pub handles: Option<Arc<RouteHandles>>,
    /// Whether this request holds a slot of the route's retry budget.
    pub retry_slot: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The request id: the client's valid `X-Request-Id` or a generated one (set by [`begin`]).
    ///
    /// [`begin`]: RequestCtx::begin
    pub request_id: String,
    /// The client's valid `traceparent`, if any.
    pub trace: Option<Box<TraceParent>>,
    /// The vendor's HTTP status of the last attempt that got a response header.
    pub upstream_status: Option<u16>,
    /// The vendor's own error code as it sent it (access log only; metrics use the closed label).
    pub upstream_code: Option<String>,
    /// Answered from a cooldown without contacting the vendor.
    pub cooldown_hit: bool,
    /// Time spent until the vendor's response header, summed over attempts.
    pub upstream_time: Option<std::time::Duration>,
    /// The route's mode, once routed.
    pub mode: Option<crate::mode::Mode>,
    /// The form a vendor error was answered in, when not the problem body.
    pub form: Option<crate::mode::ErrorForm>,
}

// === impl RequestCtx ===

impl RequestCtx {
    /// A fresh context.
    pub fn new() -> Self {
        RequestCtx {
            started: Instant::now(),
            route: None,
            outcome: Outcome::Own,
            status: 0,
            error: None,
            handles: None,
            retry_slot: false,
            attempts: 0,
            request_id: String::new(),
            trace: None,
            upstream_status: None,
            upstream_code: None,
            cooldown_hit: false,
            upstream_time: None,
            mode: None,
            form: None,
        }
    }

    /// Gives the request its ids, first thing: the client's valid `X-Request-Id` or a generated
    /// one, and the trace context of a valid `traceparent`.
    pub fn begin(&mut self, req: &RequestHeader) {
        self.request_id = ids::request_id(req.headers.get(&ids::REQUEST_ID).map(|v| v.as_bytes()));
        self.trace = req
            .headers
            .get(&ids::TRACEPARENT)
            .and_then(|v| ids::parse_traceparent(v.as_bytes()))
            .map(Box::new);
    }

    /// Adds one attempt's time to the vendor's response header.
    pub fn add_upstream_time(&mut self, d: std::time::Duration) {
        self.upstream_time = Some(self.upstream_time.unwrap_or_default() + d);
    }

    /// Counts the request in the metrics (called once, from `logging`, with the request's
    /// duration). A routed request uses
    /// its route's resolved series; only an unrouted one looks its series up by label.
    pub fn record(&mut self, m: &Metrics, elapsed: std::time::Duration) {
        let route = self.route.as_deref().unwrap_or(NO_ROUTE);
        let outcome = self.outcome;
        let status = self.status;
        let elapsed = elapsed.as_secs_f64();
        let status_label = || {
            let mut buf = itoa::Buffer::new();
            let s = if status == 0 { "0" } else { buf.format(status) };
            s.to_string()
        };
        match self.handles.take() {
            Some(h) => {
                h.in_flight.dec();
                if std::mem::take(&mut self.retry_slot) {
                    h.budget.release();
                }
                h.requests.with(
                    (outcome, status),
                    || {
                        m.requests
                            .with_label_values(&[route, outcome.as_str(), &status_label()])
                    },
                    |c| c.inc(),
                );
                h.duration.with(
                    outcome,
                    || m.duration.with_label_values(&[route, outcome.as_str()]),
                    |d| d.observe(elapsed),
                );
                if let Some(mode) = self.mode {
                    let answer = self.answered_as();
                    h.mode_answers.with(
                        (mode, answer),
                        || {
                            m.mode_answers
                                .with_label_values(&[route, mode.as_str(), answer])
                        },
                        |c| c.inc(),
                    );
                }
            }
            None => {
                m.requests
                    .with_label_values(&[route, outcome.as_str(), &status_label()])
                    .inc();
                m.duration
                    .with_label_values(&[route, outcome.as_str()])
                    .observe(elapsed);
                // No mode answer: `mode` is set only on a routed request, which has handles.
            }
        }
        if let Some(e) = &self.error {
            m.errors
                .with_label_values(&[route, &e.domain, e.code, &e.reason, &e.upstream_code])
                .inc();
        }
        m.handled.inc();
    }

    /// How the request was answered, for `errgate_mode_answers_total{answer}`: `passthrough`,
    /// `problem` (errgate's problem body), `annotated` or `untouched` (a vendor error in the
    /// vendor's form).
    pub fn answered_as(&self) -> &'static str {
        match (self.form, self.outcome) {
            (Some(f), _) => f.as_str(),
            (None, Outcome::Passthrough) => "passthrough",
            (None, _) => "problem",
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
