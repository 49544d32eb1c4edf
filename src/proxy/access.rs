//! Glue from a finished request to its access log line: reads the session (method, path, body
//! byte counts, client address) and [`RequestCtx`], builds an [`access_log::Record`], hands it
//! to the non-blocking [`AccessLog`].

use super::RequestCtx;
use crate::access_log::{AccessLog, Record};
use pingora::proxy::Session;
use std::time::SystemTime;

/// Writes the request's access log line (nothing when the log is off).
pub(super) fn log(log: &AccessLog, s: &Session, ctx: &RequestCtx, duration: std::time::Duration) {
    if !log.is_on() {
        return;
    }
    let req = s.req_header();
    let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let err = ctx.error.as_ref();
    log.log(&Record {
        time: Some(SystemTime::now()),
        request_id: &ctx.request_id,
        trace_id: ctx.trace.as_ref().map(|t| t.trace_id_str()),
        route: ctx.route.as_deref(),
        method: req.method.as_str(),
        path,
        status: ctx.status,
        outcome: ctx.outcome.as_str(),
        code: err.map(|e| e.code),
        reason: err.map(|e| e.reason.as_str()),
        domain: err.map(|e| e.domain.as_str()),
        upstream_status: ctx.upstream_status,
        upstream_code: ctx.upstream_code.as_deref(),
        attempts: ctx.attempts,
        cooldown: ctx.cooldown_hit,
        mode: ctx.mode.map(|m| m.as_str()),
        duration,
        upstream_duration: ctx.upstream_time,
        bytes_in: s.body_bytes_read() as u64,
        bytes_out: s.body_bytes_sent() as u64,
        client: s.client_addr().and_then(|a| a.as_inet()).copied(),
    });
}
