//! The response body: pass-through streaming, holding while [`Hold`] decides, and one release
//! path for both (the vendor's header, the held chunks exactly as received, then the rest).
//!
//! Pass-through chunks are `Bytes` moved from the upstream session to the downstream one: no
//! copies, no scanning.

use super::exchange::{
    exchange_problem, Attempt, Delivery, Exchange, Failure, HeldResponse, VendorFailure,
};
use super::headers::{client_header, vendor_end_to_end};
use super::upstream::Answered;
use super::{wait, RequestCtx};
use crate::metrics::{Outcome, NO_CODE, UNCATALOGED};
use crate::mode::ErrorForm;
use crate::normalize::{self, Hold, HoldStep, Verdict};
use crate::problem::Problem;
use crate::scan::ScanLimits;
use http::header;
use pingora::http::ResponseHeader;
use pingora::protocols::http::HttpTask;
use pingora::proxy::Session;
use pingora::Result;
use std::time::SystemTime;
use tokio::time::Instant;

/// Most already-readable body chunks written together in one downstream write.
const STREAM_BATCH: usize = 8;
/// A batch takes no more chunks once it holds this many bytes. Pingora copies a batch into the
/// session's write buffer, which starts empty for every response and grows by reallocation: with
/// up to 8 × 64 KiB per batch a 1 MiB response cost 19 reallocations and 1.01x the floor's
/// instructions; capped at 256 KiB it costs 0.98x with 6.3 writes (floor: 7.0); at 128 KiB 0.93x
/// but 10 writes (benches/load/README.md).
const STREAM_BATCH_BYTES: usize = 256 * 1024;

/// What was read of a held body when the release decision came.
struct Held {
    /// The body chunks, exactly as received, as the body tasks the release path writes (held
    /// as tasks so the release writes this vector as it is).
    tasks: Vec<HttpTask>,
    /// The upstream body ended (nothing left to stream).
    ended: bool,
}

impl Default for Held {
    /// Nothing read yet, with room for one batch.
    fn default() -> Self {
        Held {
            tasks: Vec::with_capacity(STREAM_BATCH),
            ended: false,
        }
    }
}

// === impl Exchange ===

impl Exchange<'_> {
    /// Passes the response through, or holds it while it may be an error.
    pub(super) async fn respond(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        answered: Answered,
        deadline: Instant,
    ) -> Result<Attempt> {
        let Answered { session: up, peer } = answered;
        let Some(resp) = up.response_header() else {
            let p = Problem::upstream_reset(&self.route.name, "no response header");
            return Ok(Attempt::Failed(Failure::own(p, Delivery::Sent, false)));
        };
        let status = resp.status.as_u16();
        if !normalize::must_hold(self.vendor, status, &resp.headers, self.head_only) {
            // Boxed once here: the header (about 300 bytes) then moves as a pointer.
            let head = Box::new(resp.clone());
            self.release(s, ctx, up, &peer, head, Held::default())
                .await?;
            return Ok(Attempt::Passed);
        }
        self.hold(s, ctx, up, peer, deadline).await
    }

    /// Holds the header and body chunks while [`Hold`] decides, then releases or fails.
    async fn hold(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        mut up: Box<pingora::protocols::http::client::HttpSession>,
        peer: std::sync::Arc<pingora::prelude::HttpPeer>,
        deadline: Instant,
    ) -> Result<Attempt> {
        let route = &self.route.name;
        let h = self.handles;
        h.held.inc();
        let Some(resp) = up.response_header().map(|h| Box::new(h.clone())) else {
            let p = Problem::upstream_reset(route, "no response header");
            return Ok(Attempt::Failed(Failure::own(p, Delivery::Sent, false)));
        };
        let status = resp.status.as_u16();
        let encoding = resp
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let mut hold = Hold::new(
            self.vendor,
            status,
            encoding,
            self.config.hold_max_bytes,
            ScanLimits::default(),
        );
        let mut step = hold.first_step();
        let mut held = Held::default();
        while step == HoldStep::More {
            // A held body is usually in the stream's buffer already.
            let read =
                wait::ready_or_by(|| deadline, std::pin::pin!(up.read_response_body())).await;
            let next = match read {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => {
                    hold.end();
                    held.ended = true;
                    break;
                }
                // The vendor cut or stalled a known error: its status and what was read are
                // still the best answer.
                Ok(Err(_)) | Err(_) if hold.cut() => break,
                Ok(Err(e)) => {
                    up.shutdown().await;
                    let p = exchange_problem(route, &e, true);
                    return Ok(Attempt::Failed(Failure::own(p, Delivery::Sent, false)));
                }
                Err(_) => {
                    up.shutdown().await;
                    let p = Problem::upstream_timeout(
                        route,
                        "the response body did not arrive before the total deadline",
                    );
                    return Ok(Attempt::Failed(Failure::own(p, Delivery::Sent, false)));
                }
            };
            step = hold.feed(&next);
            held.tasks.push(HttpTask::Body(Some(next), false));
        }
        h.scanned_bytes.inc_by(hold.decoded_bytes());
        if let Some(reason) = hold.fallback() {
            self.gw
                .metrics
                .held_fallbacks
                .with_label_values(&[route, reason])
                .inc();
        }
        if step != HoldStep::Release {
            let now = SystemTime::now();
            let (classified, facts) = hold.classified(
                self.method.as_str(),
                &self.match_path,
                &resp.headers,
                now,
                self.config.retry_after_max,
            );
            self.count_rejected_hints(&classified.rejected_hints);
            if let Verdict::Error(problem, hint) = classified.verdict {
                self.record_uncataloged(&problem, now);
                let vendor_headers = vendor_end_to_end(&resp.headers);
                // Answered in the vendor's own form (annotate, observe): keep the response and
                // its connection for the release path.
                let keep = self.form != ErrorForm::Problem;
                let kept = if keep {
                    Some(Box::new(HeldResponse {
                        up,
                        peer,
                        head: resp,
                        tasks: std::mem::take(&mut held.tasks),
                        ended: held.ended,
                    }))
                } else {
                    if held.ended {
                        self.release_upstream(up, &peer).await;
                    } else {
                        up.shutdown().await;
                    }
                    None
                };
                let code_label = match facts.code.as_deref() {
                    Some(c) if self.vendor.knows_code(c) => c.to_string(),
                    Some(_) => {
                        self.gw
                            .metrics
                            .uncataloged
                            .with_label_values(&[&**route, self.vendor.id.as_str()])
                            .inc();
                        UNCATALOGED.to_string()
                    }
                    None => NO_CODE.to_string(),
                };
                return Ok(Attempt::Failed(Failure::Vendor(VendorFailure {
                    problem,
                    hint,
                    code_label,
                    vendor_headers,
                    held: kept,
                    upstream_code: facts.code.clone(),
                })));
            }
        }
        self.release(s, ctx, up, &peer, resp, held).await?;
        Ok(Attempt::Passed)
    }

    /// Logs and counts the vendor hints errgate did not believe.
    fn count_rejected_hints(&self, rejected: &[crate::retry::RejectedHint]) {
        for r in rejected {
            log::info!(
                "route={} vendor={} hint={} value=\"{}\" reason={} Rejected a vendor retry hint.",
                self.route.name,
                self.vendor.id,
                r.name,
                r.value.escape_debug(),
                r.reason
            );
            self.gw
                .metrics
                .hints_rejected
                .with_label_values(&[&*self.route.name, r.reason.as_str()])
                .inc();
        }
    }

    /// Records an error no catalog entry matched for `GET /uncataloged`, with the route's
    /// injected secret values redacted from the sample message.
    fn record_uncataloged(&self, p: &Problem, now: SystemTime) {
        if p.reason != normalize::REASON_UNCATALOGED && p.reason != normalize::REASON_UPSTREAM_HTTP
        {
            return;
        }
        let Some(up) = p.upstream.as_ref() else {
            return;
        };
        let secrets: Vec<&[u8]> = self
            .route
            .upstream_headers
            .iter()
            .map(|(_, v)| v.expose().as_bytes())
            .collect();
        self.gw.shared.uncataloged.record(
            crate::uncataloged::Sighting {
                route: &self.route.name,
                vendor: &self.vendor.id,
                code: up.code.as_deref(),
                status: up.status,
                message: up.message.as_deref(),
            },
            &secrets,
            now,
        );
    }

    /// Writes a held vendor error in the vendor's own form through the one release path, with
    /// `extra` headers (the annotations; none in observe) added to the vendor's header.
    pub(super) async fn release_held(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        h: Box<HeldResponse>,
        extra: Vec<(http::HeaderName, http::HeaderValue)>,
    ) -> Result<()> {
        let HeldResponse {
            up,
            peer,
            mut head,
            tasks,
            ended,
        } = *h;
        for (k, v) in extra {
            head.insert_header(k, v)?;
        }
        self.release(s, ctx, up, &peer, head, Held { tasks, ended })
            .await
    }

    /// The one release path: the vendor's header (minus hop-by-hop), the held chunks exactly as
    /// received, then the rest of the body as it arrives; the connection goes back to the pool
    /// when the body ended cleanly.
    async fn release(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        mut up: Box<pingora::protocols::http::client::HttpSession>,
        peer: &pingora::prelude::HttpPeer,
        head: Box<ResponseHeader>,
        held: Held,
    ) -> Result<()> {
        ctx.status = head.status.as_u16();
        ctx.outcome = Outcome::Passthrough;
        super::clients::write_header(s, client_header(head)).await?;
        let Held {
            mut tasks,
            mut ended,
        } = held;
        // Held chunks go out first, as they are (one write; with the end of the body when it is
        // already over); then the rest, a batch at a time.
        loop {
            // A body known to be over needs no read to say so (a Content-Length body usually
            // is after its last chunk).
            ended = ended || up.response_done();
            if tasks.is_empty() && !ended {
                let mut bytes = 0;
                match up.read_response_body().await {
                    Ok(Some(chunk)) => {
                        bytes = chunk.len();
                        tasks.push(HttpTask::Body(Some(chunk), false));
                    }
                    Ok(None) => ended = true,
                    Err(e) => {
                        // The header is already sent: the only honest signal left is to cut the
                        // client connection.
                        up.shutdown().await;
                        return Err(e.into_up());
                    }
                }
                // Chunks that are already readable go out in one write, as Pingora's own proxy
                // loop batches them: one syscall instead of one per 64 KiB, up to
                // STREAM_BATCH_BYTES (see benches/load/README.md).
                loop {
                    ended = ended || up.response_done();
                    if ended || tasks.len() >= STREAM_BATCH || bytes >= STREAM_BATCH_BYTES {
                        break;
                    }
                    tokio::select! {
                        biased;
                        r = up.read_response_body() => match r {
                            Ok(Some(chunk)) => {
                                bytes += chunk.len();
                                tasks.push(HttpTask::Body(Some(chunk), false));
                            }
                            Ok(None) => ended = true,
                            Err(e) => {
                                s.write_response_tasks(tasks).await?;
                                up.shutdown().await;
                                return Err(e.into_up());
                            }
                        },
                        _ = std::future::ready(()) => break,
                    }
                }
            }
            if ended {
                // The last chunk carries the end of the body: one write, no separate finish.
                match tasks.last_mut() {
                    Some(HttpTask::Body(_, end)) => *end = true,
                    _ => tasks.push(HttpTask::Body(None, true)),
                }
                s.write_response_tasks(tasks).await?;
                break;
            }
            let batch = std::mem::replace(&mut tasks, Vec::with_capacity(STREAM_BATCH));
            s.write_response_tasks(batch).await?;
        }
        self.release_upstream(up, peer).await;
        Ok(())
    }
}
