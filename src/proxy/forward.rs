//! One request, end to end: route -> cooldown -> attempts (connect, send, read the header) ->
//! pass through, or hold and scan until the vendor's verdict is known -> answer.
//!
//! Responses that cannot be errors (2xx from status-signalling vendors, non-JSON 2xx, 1xx/3xx)
//! are streamed as they arrive: no holding, no scanning, no copies (`Bytes` move from the
//! upstream session to the downstream one). Responses that may be errors are held, header and
//! body chunks, up to `hold_max_bytes`, while the scanner reads them.

use super::{ctx::ErrorLabels, Gateway, RequestCtx};
use crate::catalog::VendorCatalog;
use crate::config::{Config, Route};
use crate::metrics::{Outcome, NO_CODE, UNCATALOGED};
use crate::normalize::{self, Hold, HoldStep, Verdict};
use crate::problem::{self, Problem};
use crate::retry::cooldown::CooldownKey;
use crate::retry::{decide, is_idempotent, RetryDecision, RetryHint};
use crate::runtime::Snapshot;
use crate::scan::ScanLimits;
use bytes::Bytes;
use http::header;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::HttpTask;
use pingora::proxy::Session;
use pingora::{ErrorType, Result};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Scanner depth limit: vendor envelopes are shallow; this bounds the state per request.
const SCAN_MAX_DEPTH: usize = 64;
/// Largest captured value (message, code, errors) in bytes.
const SCAN_MAX_CAPTURE_BYTES: usize = 8 * 1024;
/// Idle time a released upstream connection stays in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most already-readable body chunks written together in one downstream write.
const STREAM_BATCH: usize = 8;
/// Longest `X-Request-Id` echoed; a longer one is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded in either direction.
const HOP_BY_HOP: &[header::HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

fn is_hop_by_hop(name: &header::HeaderName, listed: &[String]) -> bool {
    HOP_BY_HOP.contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
        || listed.iter().any(|l| l.eq_ignore_ascii_case(name.as_str()))
}

/// Header names listed in `Connection` (they are hop-by-hop too).
fn connection_listed(h: &http::HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty() && s != "close" && s != "keep-alive")
        .collect()
}

/// Why an attempt failed before a verdict.
enum Failure {
    /// errgate's own error (connect, timeout, reset, too large).
    Gateway(Box<Problem>),
    /// The vendor's error, normalized.
    Vendor(Box<Problem>, Option<RetryHint>, String),
}

/// The request body: streamed on the first attempt, kept for replay when small enough.
struct ReqBody {
    saved: Vec<Bytes>,
    saved_len: usize,
    keep: bool,
    consumed: bool,
    total: u64,
}

impl ReqBody {
    fn replayable(&self) -> bool {
        self.consumed && self.keep
    }
}

/// What one attempt produced.
enum Attempt {
    /// The response went to the client (pass-through).
    Passed,
    /// An error to answer or retry.
    Failed(Failure),
}

/// Everything an attempt needs that does not change between attempts.
struct Exchange<'a> {
    gw: &'a Gateway,
    config: &'a Config,
    route: &'a Route,
    vendor: &'a VendorCatalog,
    upstream_path: String,
    match_path: String,
    method: http::Method,
    head_only: bool,
}

pub(super) async fn serve(gw: &Gateway, s: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
    let snap: Arc<Snapshot> = gw.runtime.snapshot();
    let config = &snap.config;
    let req = s.req_header();
    let host = req
        .uri
        .host()
        .or_else(|| req.headers.get(header::HOST).and_then(|h| h.to_str().ok()));
    let pq = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let Some((route, rest)) = config.routes.find(host, pq) else {
        let p = Problem::no_route(req.uri.path());
        return answer(s, ctx, &p, &config.problem_type_base, None).await;
    };
    ctx.route = Some(route.name.clone());
    let gauge = gw.metrics.in_flight.with_label_values(&[&route.name]);
    gauge.inc();
    ctx.in_flight = Some(gauge);
    let Some(vendor) = snap.catalogs.vendor(&route.vendor) else {
        // Cross-checked at load; only a bug reaches this.
        let p = Problem::gateway(
            problem::Code::Internal,
            500,
            "NO_CATALOG",
            format!(
                "Route {} names vendor {} without a catalog.",
                route.name, route.vendor
            ),
        );
        return answer(s, ctx, &p, &config.problem_type_base, None).await;
    };
    let upstream_path = route.upstream.join_path(rest);
    let match_path = rest.split('?').next().unwrap_or("").to_string();
    let method = req.method.clone();
    let idempotent = is_idempotent(&method, &req.headers);

    // Cooldown: the vendor asked to hold back traffic for this key.
    let cooldown_key = route.cooldown.enabled.then(|| {
        let v = route
            .cooldown
            .key_header
            .as_ref()
            .and_then(|h| req.headers.get(h))
            .map(|v| v.as_bytes());
        CooldownKey::new(route.index, v)
    });
    if let Some(key) = &cooldown_key {
        if let Some(left) = gw.runtime.cooldowns.remaining(key, Instant::now()) {
            gw.metrics
                .cooldown_rejections
                .with_label_values(&[&route.name])
                .inc();
            let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
            let p = Problem::cooldown(&route.name, ms);
            return answer(s, ctx, &p, &config.problem_type_base, None).await;
        }
    }

    // Refuse an over-limit body before contacting the vendor when its length is declared.
    let declared = req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_request_body_bytes) {
        let p = Problem::request_too_large(config.max_request_body_bytes);
        return answer(s, ctx, &p, &config.problem_type_base, None).await;
    }

    let ex = Exchange {
        gw,
        config,
        route,
        vendor,
        upstream_path,
        match_path,
        head_only: method == http::Method::HEAD,
        method,
    };
    let mut body = ReqBody {
        saved: Vec::new(),
        saved_len: 0,
        keep: idempotent && route.retry.enabled,
        consumed: false,
        total: 0,
    };
    let first = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        ctx.attempts = attempt;
        let result = ex.attempt(s, ctx, &mut body).await?;
        let failure = match result {
            Attempt::Passed => {
                if attempt > 1 {
                    gw.metrics
                        .retries
                        .with_label_values(&[&route.name, "recovered"])
                        .inc();
                }
                return Ok(());
            }
            Attempt::Failed(f) => f,
        };
        let (problem, hint) = match &failure {
            Failure::Gateway(p) => (p, None),
            Failure::Vendor(p, h, _) => (p, h.as_ref()),
        };
        // A rate-limit hint puts the key in cooldown for the hint's time.
        if let (Some(key), Some(h)) = (&cooldown_key, hint) {
            if problem.code == problem::Code::ResourceExhausted {
                let d = h.delay.min(config.retry_after_max);
                gw.runtime.cooldowns.hold(*key, d, Instant::now());
            }
        }
        let hint_delay = hint.map(|h| h.delay.min(config.retry_after_max));
        let decision = decide(
            &route.retry,
            attempt,
            problem.retryable,
            idempotent,
            body.replayable(),
            hint_delay,
            first.elapsed(),
            rand::random::<f64>(),
        );
        match decision {
            RetryDecision::Retry { wait } => {
                gw.metrics
                    .retries
                    .with_label_values(&[&route.name, "retry"])
                    .inc();
                tokio::time::sleep(wait).await;
            }
            RetryDecision::GiveUp(why) => {
                if problem.retryable && route.retry.enabled {
                    let label = if attempt > 1 {
                        "exhausted"
                    } else {
                        why.as_str()
                    };
                    gw.metrics
                        .retries
                        .with_label_values(&[&route.name, label])
                        .inc();
                }
                return match failure {
                    Failure::Gateway(p) => {
                        answer(s, ctx, &p, &config.problem_type_base, None).await
                    }
                    Failure::Vendor(p, _, upstream_code) => {
                        answer(s, ctx, &p, &config.problem_type_base, Some(upstream_code)).await
                    }
                };
            }
        }
    }
}

/// Writes a problem response and records its labels.
async fn answer(
    s: &mut Session,
    ctx: &mut RequestCtx,
    p: &Problem,
    type_base: &str,
    upstream_code: Option<String>,
) -> Result<()> {
    let request_id = request_id(s.req_header());
    let body = p.to_json(type_base, &request_id);
    let mut h = ResponseHeader::build(p.status, Some(6))?;
    h.insert_header(header::CONTENT_TYPE, problem::CONTENT_TYPE)?;
    h.insert_header(header::CONTENT_LENGTH, body.len())?;
    h.insert_header(header::CACHE_CONTROL, "no-store")?;
    if let Some(secs) = p.retry_after_secs() {
        h.insert_header(header::RETRY_AFTER, secs)?;
    }
    h.insert_header("x-request-id", request_id)?;
    ctx.status = p.status;
    ctx.outcome = if upstream_code.is_some() {
        Outcome::Normalized
    } else {
        Outcome::Gateway
    };
    ctx.error = Some(ErrorLabels {
        domain: p.domain.clone(),
        code: p.code.as_str(),
        reason: p.reason.clone(),
        upstream_code: upstream_code.unwrap_or_else(|| NO_CODE.to_string()),
    });
    // An unread request body makes the connection unusable for the next request.
    if !s.is_body_empty() && !s.is_body_done() {
        s.set_keepalive(None);
    }
    s.write_response_header(Box::new(h), false).await?;
    s.write_response_body(Some(Bytes::from(body)), true).await
}

/// The client's `X-Request-Id` when it is sane, else a fresh random one.
fn request_id(req: &RequestHeader) -> String {
    if let Some(v) = req
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.bytes().all(|b| b.is_ascii_graphic())
        {
            return v.to_string();
        }
    }
    format!("{:032x}", rand::random::<u128>())
}

fn timeout_problem(route: &str, e: &pingora::Error) -> Box<Problem> {
    Box::new(Problem::upstream_timeout(
        route,
        &e.etype().as_str().to_ascii_lowercase(),
    ))
}

/// Maps a Pingora error during the exchange to errgate's own problem.
fn exchange_failure(route: &str, e: &pingora::Error, connected: bool) -> Box<Problem> {
    match e.etype() {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            timeout_problem(route, e)
        }
        _ if connected => Box::new(Problem::upstream_reset(route, &e.to_string())),
        _ => Box::new(Problem::upstream_unavailable(route, &e.to_string())),
    }
}

/// The response header sent to the client for a pass-through: the vendor's, minus hop-by-hop
/// (takes it by value: the held path owns its copy already).
fn client_header(resp: ResponseHeader) -> Box<ResponseHeader> {
    let listed = connection_listed(&resp.headers);
    let mut out = Box::new(resp);
    let remove: Vec<header::HeaderName> = out
        .headers
        .keys()
        .filter(|n| is_hop_by_hop(n, &listed))
        .cloned()
        .collect();
    for n in remove {
        out.remove_header(&n);
    }
    out
}

// === impl Exchange ===

impl Exchange<'_> {
    fn upstream_request(&self, req: &RequestHeader, has_body: bool) -> Result<Box<RequestHeader>> {
        let listed = connection_listed(&req.headers);
        let mut up = RequestHeader::build(
            self.method.clone(),
            self.upstream_path.as_bytes(),
            Some(req.headers.len() + 2),
        )?;
        for (name, value) in req.headers.iter() {
            if is_hop_by_hop(name, &listed) || name == header::HOST || name == header::EXPECT {
                continue;
            }
            up.append_header(name.clone(), value.clone())?;
        }
        up.insert_header(header::HOST, self.route.upstream.authority.as_str())?;
        for (k, v) in &self.route.upstream_headers {
            up.insert_header(k.clone(), v.clone())?;
        }
        if has_body
            && up.headers.get(header::CONTENT_LENGTH).is_none()
            && up.headers.get(header::TRANSFER_ENCODING).is_none()
        {
            up.insert_header(header::TRANSFER_ENCODING, "chunked")?;
        }
        Ok(Box::new(up))
    }

    async fn connect(
        &self,
        now: Instant,
    ) -> std::result::Result<(HttpSession, HttpPeer, bool), Box<Problem>> {
        let u = &self.route.upstream;
        let t = &self.route.timeouts;
        let addr = self
            .gw
            .resolver
            .resolve(&u.host, u.port, t.connect, now)
            .await
            .map_err(|e| Box::new(Problem::upstream_unavailable(&self.route.name, &e)))?;
        let mut peer = HttpPeer::new(addr, u.tls, u.host.clone());
        peer.options.connection_timeout = Some(t.connect);
        peer.options.total_connection_timeout = Some(t.connect);
        peer.options.read_timeout = Some(t.read);
        peer.options.write_timeout = Some(t.read);
        peer.options.idle_timeout = Some(POOL_IDLE_TIMEOUT);
        if let Some(ca) = &u.ca {
            peer.options.ca = Some(ca.certs.clone());
        }
        let (mut session, reused) = self
            .gw
            .connector
            .get_http_session(&peer)
            .await
            .map_err(|e| exchange_failure(&self.route.name, &e, false))?;
        // The connector does not copy the peer's read/write timeouts onto the session (Pingora's
        // own proxy sets them per request too).
        session.set_read_timeout(Some(t.read));
        session.set_write_timeout(Some(t.read));
        Ok((session, peer, reused))
    }

    /// Sends the request (header + body) on an open session.
    async fn send(
        &self,
        s: &mut Session,
        up: &mut HttpSession,
        body: &mut ReqBody,
    ) -> Result<(), Failure> {
        let has_body = body.consumed && body.saved_len > 0 || !body.consumed && !s.is_body_done();
        let head = self
            .upstream_request(s.req_header(), has_body)
            .map_err(|e| Failure::Gateway(Box::new(Problem::malformed_request(&e.to_string()))))?;
        let wrap =
            |e: Box<pingora::Error>| Failure::Gateway(exchange_failure(&self.route.name, &e, true));
        up.write_request_header(head).await.map_err(wrap)?;
        if body.consumed {
            for chunk in &body.saved {
                up.write_request_body(chunk.clone(), false)
                    .await
                    .map_err(wrap)?;
            }
        } else {
            let expects_continue = s
                .req_header()
                .headers
                .get(header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            if expects_continue && !s.is_body_done() {
                let _ = s.write_continue_response().await;
            }
            let limit = self.config.max_request_body_bytes;
            let keep_max = self.route.retry.max_replay_body;
            loop {
                let chunk = s.read_request_body().await.map_err(|e| {
                    Failure::Gateway(Box::new(Problem::malformed_request(&format!(
                        "reading the body failed: {e}"
                    ))))
                })?;
                let Some(chunk) = chunk else { break };
                body.total += chunk.len() as u64;
                if body.total > limit {
                    body.keep = false;
                    return Err(Failure::Gateway(Box::new(Problem::request_too_large(
                        limit,
                    ))));
                }
                if body.keep {
                    if body.saved_len + chunk.len() <= keep_max {
                        body.saved_len += chunk.len();
                        body.saved.push(chunk.clone());
                    } else {
                        body.keep = false;
                        body.saved.clear();
                    }
                }
                up.write_request_body(chunk, false).await.map_err(wrap)?;
            }
            body.consumed = true;
        }
        up.finish_request_body().await.map_err(wrap)?;
        Ok(())
    }

    /// One attempt: connect, send, read the header, then pass or hold-and-decide.
    async fn attempt(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        body: &mut ReqBody,
    ) -> Result<Attempt> {
        let start = Instant::now();
        let deadline = start + self.route.timeouts.total;
        let mut fresh_retry_left = true;
        let (up, peer) = loop {
            let head = async {
                let (mut up, peer, reused) = self
                    .connect(start)
                    .await
                    .map_err(|p| (Failure::Gateway(p), false))?;
                if let Err(f) = self.send(s, &mut up, body).await {
                    return Err((f, reused));
                }
                loop {
                    up.read_response_header().await.map_err(|e| {
                        (
                            Failure::Gateway(exchange_failure(&self.route.name, &e, true)),
                            reused,
                        )
                    })?;
                    let informational = up
                        .response_header()
                        .is_some_and(|h| h.status.is_informational() && h.status.as_u16() != 101);
                    if !informational {
                        break;
                    }
                }
                Ok((up, peer))
            };
            match tokio::time::timeout_at(deadline, head).await {
                Ok(Ok(v)) => break v,
                // A pooled connection the vendor had closed: try once more on a fresh one when the
                // body can be sent again.
                Ok(Err((Failure::Gateway(_), true)))
                    if fresh_retry_left
                        && (body.replayable() || (body.consumed && body.total == 0)) =>
                {
                    fresh_retry_left = false;
                    continue;
                }
                Ok(Err((f, _))) => return Ok(Attempt::Failed(f)),
                Err(_) => {
                    let p = Problem::upstream_timeout(
                        &self.route.name,
                        "no response header before the total deadline",
                    );
                    return Ok(Attempt::Failed(Failure::Gateway(Box::new(p))));
                }
            }
        };
        self.gw
            .metrics
            .upstream_duration
            .with_label_values(&[&self.route.name])
            .observe(start.elapsed().as_secs_f64());
        let Some(resp) = up.response_header() else {
            let p = Problem::upstream_reset(&self.route.name, "no response header");
            return Ok(Attempt::Failed(Failure::Gateway(Box::new(p))));
        };
        let status = resp.status.as_u16();
        if !normalize::must_hold(self.vendor, status, &resp.headers, self.head_only) {
            let head = client_header(resp.clone());
            ctx.status = status;
            ctx.outcome = Outcome::Passthrough;
            s.write_response_header(head, false).await?;
            self.stream_rest(s, up, &peer, Vec::new()).await?;
            return Ok(Attempt::Passed);
        }
        self.hold(s, ctx, up, peer, deadline).await
    }

    /// Streams the held chunks, then the rest of the body, without scanning or copying.
    async fn stream_rest(
        &self,
        s: &mut Session,
        mut up: HttpSession,
        peer: &HttpPeer,
        held: Vec<Bytes>,
    ) -> Result<()> {
        if !held.is_empty() {
            let tasks = held
                .into_iter()
                .map(|c| HttpTask::Body(Some(c), false))
                .collect();
            s.write_response_tasks(tasks).await?;
        }
        let mut ended = false;
        while !ended {
            let first = match up.read_response_body().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    // The header is already sent: the only honest signal left is to cut the
                    // client connection.
                    up.shutdown().await;
                    return Err(e.into_up());
                }
            };
            // Chunks that are already readable go out in one write, as Pingora's own proxy loop
            // batches them: one syscall instead of one per 64 KiB (see benches/load/README.md).
            let mut tasks = Vec::with_capacity(STREAM_BATCH);
            tasks.push(HttpTask::Body(Some(first), false));
            while tasks.len() < STREAM_BATCH {
                tokio::select! {
                    biased;
                    r = up.read_response_body() => match r {
                        Ok(Some(chunk)) => tasks.push(HttpTask::Body(Some(chunk), false)),
                        Ok(None) => {
                            ended = true;
                            break;
                        }
                        Err(e) => {
                            s.write_response_tasks(tasks).await?;
                            up.shutdown().await;
                            return Err(e.into_up());
                        }
                    },
                    _ = std::future::ready(()) => break,
                }
            }
            s.write_response_tasks(tasks).await?;
        }
        s.write_response_body(None, true).await?;
        self.gw
            .connector
            .release_http_session(up, peer, Some(POOL_IDLE_TIMEOUT))
            .await;
        Ok(())
    }

    /// Holds the header and body chunks while [`Hold`] decides, then passes or fails.
    async fn hold(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        mut up: HttpSession,
        peer: HttpPeer,
        deadline: Instant,
    ) -> Result<Attempt> {
        let route = &self.route.name;
        let m = &self.gw.metrics;
        m.held.with_label_values(&[route]).inc();
        let Some(resp) = up.response_header().cloned() else {
            let p = Problem::upstream_reset(route, "no response header");
            return Ok(Attempt::Failed(Failure::Gateway(Box::new(p))));
        };
        let status = resp.status.as_u16();
        let encoding = resp
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let limits = ScanLimits {
            max_depth: SCAN_MAX_DEPTH,
            max_capture_bytes: SCAN_MAX_CAPTURE_BYTES,
        };
        let mut hold = Hold::new(
            self.vendor,
            status,
            encoding,
            self.config.hold_max_bytes,
            limits,
        );
        let mut step = hold.first_step();
        let mut held: Vec<Bytes> = Vec::new();
        let mut ended = false;
        while step == HoldStep::More {
            let next = match tokio::time::timeout_at(deadline, up.read_response_body()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => {
                    hold.end();
                    ended = true;
                    break;
                }
                // The vendor cut or stalled a known error: its status and what was read are
                // still the best answer.
                Ok(Err(_)) | Err(_) if hold.cut() => break,
                Ok(Err(e)) => {
                    up.shutdown().await;
                    let p = exchange_failure(route, &e, true);
                    return Ok(Attempt::Failed(Failure::Gateway(p)));
                }
                Err(_) => {
                    up.shutdown().await;
                    let p = Problem::upstream_timeout(
                        route,
                        "the response body did not arrive before the total deadline",
                    );
                    return Ok(Attempt::Failed(Failure::Gateway(Box::new(p))));
                }
            };
            step = hold.feed(&next);
            held.push(next);
        }
        m.scanned_bytes
            .with_label_values(&[route])
            .inc_by(hold.decoded_bytes());
        if let Some(reason) = hold.fallback() {
            m.held_fallbacks.with_label_values(&[route, reason]).inc();
        }
        if step != HoldStep::Release {
            let (verdict, facts) = hold.verdict(
                self.method.as_str(),
                &self.match_path,
                &resp.headers,
                SystemTime::now(),
                self.config.retry_after_max,
            );
            if let Verdict::Error(p, hint) = verdict {
                if ended {
                    self.gw
                        .connector
                        .release_http_session(up, &peer, Some(POOL_IDLE_TIMEOUT))
                        .await;
                } else {
                    up.shutdown().await;
                }
                let code_label = match facts.code.as_deref() {
                    Some(c) if self.vendor.knows_code(c) => c.to_string(),
                    Some(_) => {
                        m.uncataloged
                            .with_label_values(&[&**route, self.vendor.id.as_str()])
                            .inc();
                        UNCATALOGED.to_string()
                    }
                    None => NO_CODE.to_string(),
                };
                return Ok(Attempt::Failed(Failure::Vendor(p, hint, code_label)));
            }
        }
        // Release: the vendor's header and the held chunks exactly as received, then the rest.
        ctx.status = status;
        ctx.outcome = Outcome::Passthrough;
        s.write_response_header(client_header(resp), false).await?;
        if ended {
            for chunk in held {
                s.write_response_body(Some(chunk), false).await?;
            }
            s.write_response_body(None, true).await?;
            self.gw
                .connector
                .release_http_session(up, &peer, Some(POOL_IDLE_TIMEOUT))
                .await;
            return Ok(Attempt::Passed);
        }
        self.stream_rest(s, up, &peer, held).await?;
        Ok(Attempt::Passed)
    }
}
