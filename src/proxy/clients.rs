//! Client connections: the bounds that stop a slow or stuck client from pinning errgate.
//!
//! Pingora 0.9.1 bounds each single read of a request header (by the keep-alive time) but not
//! the header as a whole, so a client dribbling one byte a minute keeps its connection forever;
//! it sets no write timeout on client connections, so a client that stops reading parks the
//! exchange — and the vendor connection it streams from — forever; after the first HTTP/1.1
//! request it lets a kept-alive connection idle without limit; and it has no connection limit.
//!
//! [`ClientLimits`] wraps Pingora's HTTP app as the listener's `ServerApp` and runs the
//! HTTP/1.1 keep-alive loop itself (the same steps as Pingora's own), so it can
//! - count open client connections: one past `downstream.max_connections` is still read up to
//!   its request header and then answered 503 `TOO_MANY_CONNECTIONS` with `Connection: close`
//!   (see ARCHITECTURE.md), without contacting a vendor;
//! - cut a connection whose request header is not complete within
//!   [`Downstream::header_deadline`]: `header_timeout` from accept for the first request,
//!   `idle_timeout` from the previous response on a kept-alive connection. One watchdog timer
//!   per connection, moved forward for each request (moving a tokio timer later is one atomic
//!   compare-and-swap) and only watched until [`header_received`] (called from
//!   `early_request_filter`, the first phase after the header). Pingora's own keep-alive timeout
//!   is left infinite: it would register a timer for every idle wait between requests, and the
//!   watchdog bounds that wait already (measured in benches/load/README.md).
//!
//! The connection's state reaches the request phases through a task-local: Pingora runs the
//! whole connection, its requests included, in the one task that calls `process_new`.
//! [`apply`] sets the per-request bounds (body read, response write).

use crate::config::downstream::Downstream;
use crate::state::Shared;
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::Session;
use pingora::server::ShutdownWatch;
use pingora::{Error, ErrorType, Result};
use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

tokio::task_local! {
    static CONN: Arc<Conn>;
}

/// What the request phases may ask about their connection.
struct Conn {
    /// The current request's header is complete (the watchdog stands down).
    header_done: AtomicBool,
    /// `Some(max)`: this connection is beyond `max_connections`.
    over_limit: Option<usize>,
}

/// Marks the current connection's request header as complete. A no-op outside a
/// [`ClientLimits`] connection.
pub(super) fn header_received() {
    let _ = CONN.try_with(|c| c.header_done.store(true, Ordering::Relaxed));
}

/// `Some(max_connections)` when the current connection is one too many.
pub(super) fn over_limit() -> Option<usize> {
    CONN.try_with(|c| c.over_limit).ok().flatten()
}

/// Sets the request's client-side bounds: each body read within `read_timeout`, each write
/// within `write_timeout`. (The idle time before the next request is the connection
/// watchdog's.)
pub(super) fn apply(s: &mut Session, d: &Downstream) {
    s.set_read_timeout(Some(d.read_timeout));
    s.set_write_timeout(Some(d.write_timeout));
}

/// Writes a response header within the session's write timeout. Pingora bounds body writes by
/// it but not header writes. The header usually lands in the stream's write buffer at once:
/// the write is tried first and a timer is armed only when it has to wait.
pub(super) async fn write_header(s: &mut Session, h: Box<ResponseHeader>) -> Result<()> {
    let Some(t) = s.get_write_timeout() else {
        return s.write_response_header(h, false).await;
    };
    let deadline = || tokio::time::Instant::now() + t;
    let write = std::pin::pin!(s.write_response_header(h, false));
    match super::wait::ready_or_by(deadline, write).await {
        Ok(r) => r,
        Err(_) => {
            let mut e = Error::explain(
                ErrorType::WriteTimedout,
                format!("writing the response header, timeout: {t:?}"),
            );
            e.as_down();
            Err(e)
        }
    }
}

/// The listener's app: connection count, header deadline, then Pingora's HTTP app.
pub struct ClientLimits<A> {
    inner: Arc<A>,
    shared: Arc<Shared>,
    open: AtomicUsize,
}

/// One open connection in the count; released on drop, however the connection ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

// === impl ClientLimits ===

impl<A: HttpServerApp + Send + Sync + 'static> ClientLimits<A> {
    /// Wraps `inner`; the bounds are read from the runtime's snapshot per connection, so they
    /// reload.
    pub fn new(inner: A, shared: Arc<Shared>) -> Self {
        ClientLimits {
            inner: Arc::new(inner),
            shared,
            open: AtomicUsize::new(0),
        }
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Pingora's HTTP/1.1 keep-alive loop (`apps::ServerApp for HttpServerApp`), each request
    /// under the header watchdog. errgate's client listener is plain TCP without h2c, so HTTP/1
    /// is the only protocol that reaches it.
    async fn serve(
        &self,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
        conn: &Conn,
        d: Downstream,
    ) {
        let mut settings: Option<HttpPersistentSettings> = None;
        let mut reused = false;
        let mut watchdog = std::pin::pin!(tokio::time::sleep(d.header_deadline(false)));
        loop {
            let mut session = ServerSession::new_http1(stream);
            match settings.take() {
                Some(s) => s.apply_to_session(&mut session),
                None => {
                    // Kept alive without Pingora's idle timer: the watchdog bounds the wait.
                    session.set_keepalive(Some(0));
                    session.set_keepalive_reuses_remaining(
                        self.inner
                            .server_options()
                            .and_then(|o| o.keepalive_request_limit),
                    );
                }
            }
            if *shutdown.borrow() {
                session.set_keepalive(None);
            }
            conn.header_done.store(false, Ordering::Relaxed);
            let limit = d.header_deadline(reused);
            if reused {
                watchdog.as_mut().reset(tokio::time::Instant::now() + limit);
            }
            let mut request = std::pin::pin!(self.inner.process_new_http(session, shutdown));
            // The request, and the watchdog until its header is complete (an expired watchdog
            // is ignored once the header is in: it is re-armed for the next request).
            let next = poll_fn(|cx| {
                if let Poll::Ready(next) = request.as_mut().poll(cx) {
                    return Poll::Ready(Some(next));
                }
                if !conn.header_done.load(Ordering::Relaxed)
                    && watchdog.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            let Some(next) = next else {
                log::debug!(
                    "limit={limit:?} Closed a client connection whose request header was not complete in time."
                );
                return;
            };
            let Some(next) = next else { return };
            (stream, settings) = next.consume();
            reused = true;
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for ClientLimits<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        super::heartbeat::ensure_started();
        let d = self.shared.snapshot().config.downstream;
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        let _slot = Slot(&self.open);
        let over_limit =
            (d.max_connections > 0 && open > d.max_connections).then_some(d.max_connections);
        let conn = Arc::new(Conn {
            header_done: AtomicBool::new(false),
            over_limit,
        });
        CONN.scope(conn.clone(), self.serve(stream, shutdown, &conn, d))
            .await;
        None
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}
