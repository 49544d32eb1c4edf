//! One request, end to end: admission, then the retry loop over attempts, then the answer.
//!
//! Resend rule (at most one send unless a resend is safe): an attempt that failed before any
//! byte of the request left errgate ([`Delivery::NotSent`]: resolution, connect or TLS handshake)
//! may be retried for any method; one whose request was written is retried only when the
//! request is idempotent (method or `Idempotency-Key`) and its body was kept. Every resend is
//! an attempt, counted in `errgate_retries_total{result="retry"}` and in the attempt count, and
//! must fit the route's retry budget.

use super::admission::{admit, RefusalKind, RequestFacts};
use super::exchange::{Attempt, Delivery, Exchange, Failure, OwnFailure, ReqBody};
use super::headers::problem_header;
use super::route_state::{RetryResult, RouteHandles};
use super::{clients, ctx::ErrorLabels, Gateway, RequestCtx};
use crate::metrics::{Outcome, NO_CODE};
use crate::mode::{self, ErrorForm, Mode};
use crate::problem::{self, Problem};
use crate::retry::{decide, RetryDecision};
use crate::state::Snapshot;
use bytes::Bytes;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub(super) async fn serve(gw: &Gateway, s: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
    let snap: Arc<Snapshot> = gw.shared.snapshot();
    let config = &snap.config;
    clients::apply(s, &config.downstream);
    if let Some(max) = clients::over_limit() {
        s.set_keepalive(None);
        let p = Problem::too_many_connections(max);
        return answer(s, ctx, &p, &config.problem_type_base, None).await;
    }
    // The request's start (read when Pingora made the context, right after the header) serves
    // admission, the first attempt's start and the retry loop's origin: only CPU time has
    // passed since, not worth a clock read.
    let admitted_at = ctx.started;
    let admitted = admit(
        config,
        &snap.catalogs,
        &gw.shared.cooldowns,
        &RequestFacts::of(s.req_header(), || Some(s.to_h1_raw())),
        admitted_at,
    );
    let route = match &admitted {
        Ok(a) => Some(a.route),
        Err(r) => r.route,
    };
    let handles = route.map(|r| gw.routes.get(&snap, r, &gw.metrics));
    if let (Some(r), Some(h)) = (route, &handles) {
        ctx.route = Some(r.name.clone());
        h.in_flight.inc();
        ctx.handles = Some(h.clone());
    }
    let a = match admitted {
        Ok(a) => a,
        Err(refusal) => {
            if let (RefusalKind::Cooldown, Some(h)) = (refusal.kind, &handles) {
                h.cooldown_rejections.inc();
                ctx.cooldown_hit = true;
            }
            // After ambiguous framing or a CONNECT the rest of the stream cannot be trusted to be
            // a next request.
            if matches!(refusal.kind, RefusalKind::Malformed)
                || s.req_header().method == http::Method::CONNECT
            {
                s.set_keepalive(None);
            }
            return answer(s, ctx, &refusal.problem, &config.problem_type_base, None).await;
        }
    };
    let Some(handles) = handles else {
        // Admitted requests always have a route.
        return Ok(());
    };
    let route = a.route;
    let method = s.req_header().method.clone();
    let req_headers = &s.req_header().headers;
    // `Accept` only matters on an annotate route; `X-Errgate-Retry` only when a retry could be
    // made (headers not read for nothing on every request).
    let wants_problem = route.mode == Mode::Annotate && mode::accepts_problem(req_headers);
    let form = mode::error_form(route.mode, wants_problem);
    let retry_allowed = route.mode != Mode::Observe
        && route.retry.enabled
        && !mode::retry_off_requested(req_headers);
    ctx.mode = Some(route.mode);
    if a.would_cooldown {
        gw.metrics.observe_would(&route.name, "cooldown");
    }
    let ex = Exchange {
        gw,
        config,
        route,
        vendor: a.vendor,
        handles: &handles,
        upstream_path: a.upstream_path,
        match_path: a.match_path,
        head_only: method == http::Method::HEAD,
        method,
        form,
        retry_allowed,
        framing: a.framing,
    };
    // Observe keeps the body as a retry would, only to count the retry it does not make.
    let mut body = ReqBody::new(
        a.idempotent && route.retry.enabled && (retry_allowed || route.mode == Mode::Observe),
    );
    let first = admitted_at;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        ctx.attempts = attempt;
        let start = if attempt == 1 { first } else { Instant::now() };
        let deadline = start + route.timeouts.total;
        let result = match ex.head(s, &mut body, start, deadline).await {
            Ok(answered) => {
                let took = start.elapsed();
                handles.upstream_duration.observe(took.as_secs_f64());
                ctx.add_upstream_time(took);
                ctx.upstream_status = answered
                    .session
                    .response_header()
                    .map(|h| h.status.as_u16());
                ex.respond(s, ctx, answered, deadline).await?
            }
            Err(f) => Attempt::Failed(f),
        };
        let mut failure = match result {
            Attempt::Passed => {
                if attempt > 1 {
                    handles.retry(RetryResult::Recovered);
                }
                return Ok(());
            }
            Attempt::Failed(f) => f,
        };
        let problem = failure.problem();
        // A rate-limit hint puts the key in cooldown for the hint's time.
        if let (Some(key), Some(h)) = (&a.cooldown_key, failure.hint()) {
            if problem.code == problem::Code::ResourceExhausted {
                let d = h.delay.min(config.retry_after_max);
                gw.shared.cooldowns.hold(key, d, Instant::now());
            }
        }
        let result = next_step(
            &ex,
            ctx,
            &handles,
            &failure,
            attempt,
            a.idempotent,
            &body,
            first.elapsed(),
        );
        match result {
            Step::Retry(wait) => {
                // A response kept for the vendor's form is not the answer: let it go.
                drop(failure.take_held());
                handles.retry(RetryResult::Retry);
                tokio::time::sleep(wait).await;
            }
            Step::Answer(label) => {
                if let Some(label) = label {
                    handles.retry(label);
                }
                let code = match &failure {
                    Failure::Own(_) => None,
                    Failure::Vendor(v) => {
                        ctx.upstream_code = v.upstream_code.clone();
                        Some(v.code_label.clone())
                    }
                };
                // A vendor echoing an injected credential never gets it to the client or the log.
                let redacted = route.redactor.redact_problem(failure.problem());
                let held = failure.take_held();
                let p = redacted.as_ref().unwrap_or(failure.problem());
                if let (Some(held), Some(code)) = (held, &code) {
                    return answer_in_vendor_form(&ex, s, ctx, p, code, held).await;
                }
                return answer_with(
                    s,
                    ctx,
                    p,
                    &config.problem_type_base,
                    code,
                    failure.vendor_headers(),
                )
                .await;
            }
        }
    }
}

/// A vendor error answered in the vendor's own form: `annotate` adds the canonical facts as
/// headers, `observe` adds nothing. The error is counted like a normalized one.
async fn answer_in_vendor_form(
    ex: &Exchange<'_>,
    s: &mut Session,
    ctx: &mut RequestCtx,
    p: &Problem,
    code: &str,
    held: Box<super::exchange::HeldResponse>,
) -> Result<()> {
    let extra = match ex.form {
        ErrorForm::Annotated => mode::annotation_headers(p, &ctx.request_id, &held.head.headers),
        _ => {
            ex.gw.metrics.observe_would(&ex.route.name, "normalize");
            Vec::new()
        }
    };
    ex.release_held(s, ctx, held, extra).await?;
    ctx.form = Some(ex.form);
    if ex.form == ErrorForm::Annotated {
        ctx.outcome = Outcome::Normalized;
    }
    ctx.error = Some(Box::new(ErrorLabels {
        domain: p.domain.clone(),
        code: p.code.as_str(),
        reason: p.reason.clone(),
        upstream_code: code.to_string(),
    }));
    Ok(())
}

/// After a failed attempt: resend after a wait, or answer (with the retry result to count).
enum Step {
    Retry(Duration),
    Answer(Option<RetryResult>),
}

/// The retry decision for a failed attempt: the policy, the resend rule and the route's budget.
#[allow(clippy::too_many_arguments)]
fn next_step(
    ex: &Exchange<'_>,
    ctx: &mut RequestCtx,
    handles: &RouteHandles,
    failure: &Failure,
    attempt: u32,
    idempotent: bool,
    body: &ReqBody,
    elapsed: Duration,
) -> Step {
    let policy = &ex.route.retry;
    let problem = failure.problem();
    let not_sent = failure.delivery() == Delivery::NotSent;
    // A pooled connection that failed before any answer is retried at once, not after backoff.
    let stale = matches!(failure, Failure::Own(OwnFailure { reused: true, .. }));
    let hint = match failure.hint() {
        Some(h) => Some(h.delay.min(ex.config.retry_after_max)),
        None if stale => Some(Duration::ZERO),
        None => None,
    };
    let decision = decide(
        policy,
        attempt,
        problem.retryable,
        idempotent || not_sent,
        body.replayable(),
        hint,
        elapsed,
        rand::random::<f64>(),
    );
    match decision {
        RetryDecision::Retry { .. } if !ex.retry_allowed => {
            // Observe counts what it would have done; a client's `X-Errgate-Retry: off` just
            // answers.
            if ex.route.mode == Mode::Observe {
                ex.gw.metrics.observe_would(&ex.route.name, "retry");
            }
            Step::Answer(None)
        }
        RetryDecision::Retry { wait } => {
            if ctx.retry_slot
                || handles.budget.try_acquire(
                    handles.in_flight.get(),
                    policy.budget_percent,
                    policy.budget_min_concurrency,
                )
            {
                ctx.retry_slot = true;
                Step::Retry(wait)
            } else {
                Step::Answer(Some(RetryResult::OverBudget))
            }
        }
        RetryDecision::GiveUp(why) => {
            if !(problem.retryable && policy.enabled) {
                return Step::Answer(None);
            }
            Step::Answer(Some(if attempt > 1 {
                RetryResult::Exhausted
            } else {
                RetryResult::GaveUp(why)
            }))
        }
    }
}

/// Writes a problem response and records its labels.
pub(super) async fn answer(
    s: &mut Session,
    ctx: &mut RequestCtx,
    p: &Problem,
    type_base: &str,
    upstream_code: Option<String>,
) -> Result<()> {
    answer_with(s, ctx, p, type_base, upstream_code, None).await
}

/// [`answer`], with the vendor's end-to-end headers riding along (rate-limit headers, so a
/// client that paces itself from them keeps doing so).
pub(super) async fn answer_with(
    s: &mut Session,
    ctx: &mut RequestCtx,
    p: &Problem,
    type_base: &str,
    upstream_code: Option<String>,
    vendor_headers: Option<&http::HeaderMap>,
) -> Result<()> {
    if ctx.request_id.is_empty() {
        ctx.begin(s.req_header());
    }
    let request_id = ctx.request_id.clone();
    if let Some(internal) = &p.internal {
        // The library's words (addresses, TLS names, OS errors) are for operators only.
        log::warn!(
            "request_id={request_id} route={} reason={} error={internal:?} {}",
            ctx.route.as_deref().unwrap_or(crate::metrics::NO_ROUTE),
            p.reason,
            "Answered an upstream failure; the client got a fixed sentence."
        );
    }
    let body = p.to_json(type_base, &request_id);
    let mut h = problem_header(p, &request_id, body.len())?;
    if let Some(vh) = vendor_headers {
        // `vendor_end_to_end` already left out every header `problem_header` sets.
        for (k, v) in vh {
            h.append_header(k.clone(), v.clone())?;
        }
    }
    if let Some(allow) = &p.allow {
        h.insert_header(http::header::ALLOW, allow.as_str())?;
    }
    ctx.status = p.status;
    ctx.outcome = if upstream_code.is_some() {
        Outcome::Normalized
    } else {
        Outcome::Own
    };
    ctx.error = Some(Box::new(ErrorLabels {
        domain: p.domain.clone(),
        code: p.code.as_str(),
        reason: p.reason.clone(),
        upstream_code: upstream_code.unwrap_or_else(|| NO_CODE.to_string()),
    }));
    // An unread request body makes the connection unusable for the next request.
    if !s.is_body_empty() && !s.is_body_done() {
        s.set_keepalive(None);
    }
    clients::write_header(s, Box::new(h)).await?;
    s.write_response_body(Some(Bytes::from(body)), true).await
}
