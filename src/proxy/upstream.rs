//! The upstream session steps of one attempt: resolve and connect (pooled, TLS), send the request
//! header and body, read the response header. Each failure says how far the request got
//! ([`Delivery`]), which is what decides whether a resend is safe.

use super::exchange::{exchange_problem, Delivery, Exchange, Failure, ReqBody};
use super::headers::{upstream_request, UpstreamTarget};
use crate::problem::Problem;
use http::header;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::client::HttpSession;
use pingora::proxy::Session;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::Instant;

use super::exchange::POOL_IDLE_TIMEOUT;

/// An open upstream session with its response header read.
pub(super) struct Answered {
    /// The session.
    pub session: Box<HttpSession>,
    /// Its peer (for releasing it to the pool).
    pub peer: std::sync::Arc<HttpPeer>,
}

// === impl Exchange ===

impl Exchange<'_> {
    /// Resolves and connects (or takes a pooled connection). Nothing is sent yet, so every
    /// failure here is [`Delivery::NotSent`].
    async fn connect(
        &self,
        now: Instant,
    ) -> Result<(Box<HttpSession>, std::sync::Arc<HttpPeer>, bool), Failure> {
        let u = &self.route.upstream;
        let t = &self.route.timeouts;
        let addr = match u.ip {
            // An IP literal was parsed at load: nothing to resolve (or parse again).
            Some(ip) => std::net::SocketAddr::new(ip, u.port),
            None => self
                .gw
                .resolver
                .resolve(&u.host, u.port, &self.config.dns, t.connect, now)
                .await
                .map_err(|e| {
                    Failure::own(
                        Problem::upstream_unavailable(&self.route.name, &e),
                        Delivery::NotSent,
                        false,
                    )
                })?,
        };
        let peer = self.route.peer.get_or_build(addr, || {
            let mut peer = HttpPeer::new(addr, u.tls, u.host.clone());
            peer.options.connection_timeout = Some(t.connect);
            peer.options.total_connection_timeout = Some(t.connect);
            peer.options.read_timeout = Some(t.read);
            peer.options.write_timeout = Some(t.read);
            peer.options.idle_timeout = Some(POOL_IDLE_TIMEOUT);
            if let Some(ca) = &u.ca {
                peer.options.ca = Some(ca.certs.clone());
            }
            peer
        });
        let connector = &self.gw.connector;
        // A pooled connection (every request but a connection's first) is taken with a small
        // future. Opening one (TCP connect, TLS handshake) is a future of about 9 KB: boxed, so
        // it is allocated only when a connection is opened rather than carried in every
        // request's future (which the request's hook boxes and writes per request).
        let (h1, reused) = match connector.reused_http_session(&*peer).await {
            Some(h1) => (h1, true),
            None => Box::pin(connector.get_http_session(&*peer))
                .await
                .map_err(|e| {
                    Failure::own(
                        exchange_problem(&self.route.name, &e, false),
                        Delivery::NotSent,
                        false,
                    )
                })?,
        };
        let mut session = HttpSession::H1(h1);
        // The connector does not copy the peer's read/write timeouts onto the session (Pingora's
        // own proxy sets them per request too). The read timeout is set once the response
        // header is in: `head` bounds the header's wait with a tokio timer.
        session.set_read_timeout(None);
        session.set_write_timeout(Some(t.read));
        // Boxed: the session (472 bytes) moves through several futures and results.
        Ok((Box::new(session), peer, reused))
    }

    /// Returns a session whose response was read to its end to the pool (or closes it when it
    /// cannot be reused).
    pub(super) async fn release_upstream(&self, up: Box<HttpSession>, peer: &HttpPeer) {
        // Only HTTP/1.1 sessions are ever opened (`connect`).
        if let HttpSession::H1(h1) = *up {
            self.gw
                .connector
                .release_http_session(h1, peer, Some(POOL_IDLE_TIMEOUT))
                .await;
        }
    }

    /// Sends the request (header + body) on an open session. `sent` is set before the first
    /// byte is written.
    async fn send(
        &self,
        s: &mut Session,
        up: &mut HttpSession,
        body: &mut ReqBody,
        reused: bool,
        sent: &AtomicBool,
    ) -> Result<(), Failure> {
        let has_body = if body.consumed {
            body.saved_len > 0
        } else {
            !s.is_body_done()
        };
        let head = upstream_request(
            s.req_header(),
            &UpstreamTarget {
                method: &self.method,
                path: &self.upstream_path,
                authority: &self.route.upstream.authority,
                inject: &self.route.upstream_headers,
                strip: &self.route.strip_request_headers,
                has_body,
                framing: self.framing,
            },
        )
        .map_err(|e| {
            Failure::own(
                Problem::malformed_request("the request header cannot be forwarded")
                    .with_internal(e.to_string()),
                Delivery::NotSent,
                reused,
            )
        })?;
        let wrap = |e: Box<pingora::Error>| {
            Failure::own(
                exchange_problem(&self.route.name, &e, true),
                Delivery::Sent,
                reused,
            )
        };
        // From here on the vendor may have seen the request.
        sent.store(true, Ordering::Relaxed);
        up.write_request_header(Box::new(head))
            .await
            .map_err(wrap)?;
        if body.consumed {
            for chunk in &body.saved {
                up.write_request_body(chunk.clone(), false)
                    .await
                    .map_err(wrap)?;
            }
        } else {
            // RFC 9110 §10.1.1: an HTTP/1.0 client's 100-continue expectation is ignored.
            let expects_continue = s.req_header().version == http::Version::HTTP_11
                && s.req_header()
                    .headers
                    .get(header::EXPECT)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            if expects_continue && !s.is_body_done() {
                let _ = s.write_continue_response().await;
            }
            let limit = self.config.max_request_body_bytes;
            let keep_max = self.route.retry.max_replay_body;
            // Until the whole body is read and kept, it cannot be replayed: a cancelled or
            // failed read leaves it consumed and not kept.
            body.consumed = true;
            let mut keep = std::mem::replace(&mut body.keep, false);
            // A request without a body (most GETs) is not read: the read would only say so.
            if has_body {
                loop {
                    let chunk = s.read_request_body().await.map_err(|e| {
                        // The vendor connection is dropped with this failure: a stalled client
                        // never holds it past `downstream.read_timeout`.
                        let p = if e.etype() == &pingora::ErrorType::ReadTimedout {
                            Problem::client_timeout("the request body stopped arriving")
                        } else {
                            Problem::malformed_request("the request body could not be read")
                        };
                        Failure::own(p.with_internal(e.to_string()), Delivery::Sent, reused)
                    })?;
                    let Some(chunk) = chunk else { break };
                    body.total += chunk.len() as u64;
                    if body.total > limit {
                        return Err(Failure::own(
                            Problem::request_too_large(limit),
                            Delivery::Sent,
                            reused,
                        ));
                    }
                    if keep {
                        if body.saved_len + chunk.len() <= keep_max {
                            body.saved_len += chunk.len();
                            body.saved.push(chunk.clone());
                        } else {
                            keep = false;
                            body.saved.clear();
                        }
                    }
                    up.write_request_body(chunk, false).await.map_err(wrap)?;
                }
            }
            body.keep = keep;
        }
        up.finish_request_body().await.map_err(wrap)?;
        Ok(())
    }

    /// Connect, send, and read the response header (skipping 1xx), within the attempt's total
    /// deadline; each wait for a header is also bounded by `timeouts.read`, on a tokio timer
    /// (Pingora's per-read timer is set on the session only for the body: it costs more per
    /// registration, benches/load/README.md).
    pub(super) async fn head(
        &self,
        s: &mut Session,
        body: &mut ReqBody,
        start: Instant,
        deadline: Instant,
    ) -> Result<Answered, Failure> {
        let sent = AtomicBool::new(false);
        let reused_flag = AtomicBool::new(false);
        let read = self.route.timeouts.read;
        let steps = async {
            let (mut up, peer, reused) = self.connect(start).await?;
            reused_flag.store(reused, Ordering::Relaxed);
            self.send(s, &mut up, body, reused, &sent).await?;
            loop {
                let got = match tokio::time::timeout(read, up.read_response_header()).await {
                    Ok(got) => got,
                    // The vendor read the request and did not answer within `timeouts.read`:
                    // what Pingora's own read timeout reports.
                    Err(_) => Err(pingora::Error::new(pingora::ErrorType::ReadTimedout)),
                };
                got.map_err(|e| {
                    Failure::own(
                        exchange_problem(&self.route.name, &e, true),
                        Delivery::Sent,
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
            up.set_read_timeout(Some(read));
            Ok(Answered { session: up, peer })
        };
        match tokio::time::timeout_at(deadline, steps).await {
            Ok(r) => r,
            Err(_) => {
                let delivery = if sent.load(Ordering::Relaxed) {
                    Delivery::Sent
                } else {
                    Delivery::NotSent
                };
                Err(Failure::own(
                    Problem::upstream_timeout(
                        &self.route.name,
                        "no response header before the total deadline",
                    ),
                    delivery,
                    reused_flag.load(Ordering::Relaxed),
                ))
            }
        }
    }
}
