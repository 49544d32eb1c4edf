//! The types one exchange is made of: what does not change between attempts ([`Exchange`]), the
//! request body kept for replay ([`ReqBody`]), and how an attempt ends ([`Attempt`],
//! [`Failure`]). The steps live beside it: `upstream` (connect, send, read the header), `body`
//! (stream or hold, one release path), `serve` (admission and the retry loop).

use super::route_state::RouteHandles;
use super::Gateway;
use crate::catalog::VendorCatalog;
use crate::config::{Config, Route};
use crate::problem::Problem;
use crate::retry::RetryHint;
use bytes::Bytes;
use pingora::ErrorType;
use std::time::Duration;

/// Idle time a released upstream connection stays in the pool.
pub(super) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything an attempt needs that does not change between attempts.
pub(super) struct Exchange<'a> {
    pub gw: &'a Gateway,
    pub config: &'a Config,
    pub route: &'a Route,
    pub vendor: &'a VendorCatalog,
    pub handles: &'a RouteHandles,
    pub upstream_path: String,
    pub match_path: String,
    pub method: http::Method,
    pub head_only: bool,
    /// How a vendor error is written (the route's mode and the client's `Accept`).
    pub form: crate::mode::ErrorForm,
    /// Whether errgate may retry this request (route policy, mode, `X-Errgate-Retry: off`).
    pub retry_allowed: bool,
    /// The client's body framing, checked at admission; the vendor gets the same kind.
    pub framing: crate::framing::RequestFraming,
}

/// The request body: streamed on the first send, kept for replay when small enough.
#[derive(Default)]
pub(super) struct ReqBody {
    /// Chunks kept for a resend.
    pub saved: Vec<Bytes>,
    /// Their total length.
    pub saved_len: usize,
    /// Whether the body is still being kept (idempotent, retries on, under the replay limit).
    pub keep: bool,
    /// Whether the client's body has been read (on an earlier send).
    pub consumed: bool,
    /// Bytes read from the client.
    pub total: u64,
}

impl ReqBody {
    /// A body that is kept for replay when `keep`.
    pub fn new(keep: bool) -> Self {
        ReqBody {
            keep,
            ..ReqBody::default()
        }
    }

    /// Whether the body can be sent again: never read yet, or read and kept whole.
    pub fn replayable(&self) -> bool {
        !self.consumed || self.keep
    }
}

/// How far the request got when an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    /// Nothing of the request left errgate (resolution, connect or TLS handshake failed): a
    /// resend is safe for any method.
    NotSent,
    /// The request header was written (or may have been): a resend is safe only for an
    /// idempotent request whose body is kept.
    Sent,
}

/// errgate's own error for an attempt (connect, timeout, reset, request too large).
pub(super) struct OwnFailure {
    /// The answer.
    pub problem: Box<Problem>,
    /// How far the request got.
    pub delivery: Delivery,
    /// Whether the connection came from the pool (a stale pooled connection fails this way).
    pub reused: bool,
}

/// The vendor's error, normalized.
pub(super) struct VendorFailure {
    /// The answer.
    pub problem: Box<Problem>,
    /// The vendor's retry hint, uncapped.
    pub hint: Option<RetryHint>,
    /// The `upstream_code` metric label: a catalog code, `uncataloged` or `none`.
    pub code_label: String,
    /// The vendor's end-to-end headers that ride along on the answer (rate-limit headers and
    /// the like; see `headers::vendor_end_to_end`).
    pub vendor_headers: http::HeaderMap,
    /// The vendor's code as it sent it (the access log's `upstream_code`).
    pub upstream_code: Option<String>,
    /// The vendor's response, still unsent, for an answer in the vendor's own form (annotate,
    /// observe): released through the one release path, or dropped on a retry.
    pub held: Option<Box<HeldResponse>>,
}

/// A vendor response held whole or in part, not yet written to the client.
pub(super) struct HeldResponse {
    /// The upstream session, positioned after the held chunks.
    pub up: Box<pingora::protocols::http::client::HttpSession>,
    /// Its peer (for returning the connection to the pool).
    pub peer: std::sync::Arc<pingora::prelude::HttpPeer>,
    /// The vendor's response header.
    pub head: Box<pingora::http::ResponseHeader>,
    /// The body chunks read so far, exactly as received, as body tasks.
    pub tasks: Vec<pingora::protocols::http::HttpTask>,
    /// Whether the body ended.
    pub ended: bool,
}

/// Why an attempt ended without a response for the client.
pub(super) enum Failure {
    /// errgate's own error.
    Own(OwnFailure),
    /// The vendor's error.
    Vendor(VendorFailure),
}

impl Failure {
    /// An own failure.
    pub fn own(problem: Problem, delivery: Delivery, reused: bool) -> Failure {
        Failure::Own(OwnFailure {
            problem: Box::new(problem),
            delivery,
            reused,
        })
    }

    /// The problem this failure answers with.
    pub fn problem(&self) -> &Problem {
        match self {
            Failure::Own(f) => &f.problem,
            Failure::Vendor(f) => &f.problem,
        }
    }

    /// How far the request got: a vendor answered, so it was sent.
    pub fn delivery(&self) -> Delivery {
        match self {
            Failure::Own(f) => f.delivery,
            Failure::Vendor(_) => Delivery::Sent,
        }
    }

    /// Takes the vendor's held response, for a vendor failure answered in the vendor's form.
    pub fn take_held(&mut self) -> Option<Box<HeldResponse>> {
        match self {
            Failure::Own(_) => None,
            Failure::Vendor(f) => f.held.take(),
        }
    }

    /// The vendor's end-to-end headers kept on the answer, for a vendor failure.
    pub fn vendor_headers(&self) -> Option<&http::HeaderMap> {
        match self {
            Failure::Own(_) => None,
            Failure::Vendor(f) => Some(&f.vendor_headers),
        }
    }

    /// The vendor's hint, for a vendor failure.
    pub fn hint(&self) -> Option<&RetryHint> {
        match self {
            Failure::Own(_) => None,
            Failure::Vendor(f) => f.hint.as_ref(),
        }
    }
}

/// What one attempt produced.
pub(super) enum Attempt {
    /// The response went to the client.
    Passed,
    /// An error to answer or retry.
    Failed(Failure),
}

/// Maps a Pingora error during an exchange to errgate's own problem.
pub(super) fn exchange_problem(route: &str, e: &pingora::Error, connected: bool) -> Problem {
    match e.etype() {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            Problem::upstream_timeout(route, &e.etype().as_str().to_ascii_lowercase())
        }
        _ if connected => Problem::upstream_reset(route, &e.to_string()),
        _ => Problem::upstream_unavailable(route, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_replayable_until_read_unless_kept() {
        let mut b = ReqBody::new(false);
        assert!(b.replayable(), "an unread body can still be sent");
        b.consumed = true;
        assert!(!b.replayable());
        let mut k = ReqBody::new(true);
        k.consumed = true;
        assert!(k.replayable());
    }

    #[test]
    fn vendor_failures_were_sent() {
        let f = Failure::Vendor(VendorFailure {
            problem: Box::new(Problem::upstream_reset("r", "x")),
            hint: None,
            code_label: "none".into(),
            vendor_headers: http::HeaderMap::new(),
            upstream_code: None,
            held: None,
        });
        assert_eq!(f.delivery(), Delivery::Sent);
        let f = Failure::own(
            Problem::upstream_unavailable("r", "x"),
            Delivery::NotSent,
            false,
        );
        assert_eq!(f.delivery(), Delivery::NotSent);
        assert!(f.hint().is_none());
    }
}
