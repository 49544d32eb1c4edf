//! The forward-proxy listener (`forward_proxy`): errgate as the platform's egress point, set by
//! `HTTPS_PROXY` / `HTTP_PROXY` instead of by each application.
//!
//! One connection, one decision, made on its first request head ([`head`]):
//! - `CONNECT host:port` to a host a route serves, with `tls_intercept` configured: answer
//!   `200`, terminate the client's TLS with a certificate for that host minted from the
//!   operator's CA ([`mint`]), and hand the decrypted HTTP/1.1 stream to errgate's own client
//!   listener on loopback, where it is routed by `Host` like any request (modes, retries,
//!   cooldown, metrics unchanged). Only `http/1.1` is offered in ALPN.
//! - absolute-form `http://host/...` to a routed host: the connection is handed to the client
//!   listener as it is (Pingora reads absolute-form targets).
//! - any other host: the egress [`policy`]. Not allowed: `403` problem+json, nothing is
//!   connected to. Allowed: the name is resolved once, each address checked against the
//!   special-address rule, and the connection made to exactly a checked address (DNS
//!   rebinding cannot slip a private address in); then bytes are copied both ways, uninspected.
//!
//! Everything past the decision is a byte copy: the client listener only ever connects to route
//! upstreams, whatever a later request on the same connection names.

pub mod head;
pub mod mint;
pub mod policy;
pub mod settings;

use crate::metrics::egress::{EgressKind, EgressMetrics};
use crate::problem::{Code, Problem};
use crate::state::Shared;
use head::{Ask, Head, HeadError};
use mint::Minter;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use policy::Refusal;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

/// Time a client has to send its first request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to resolve and connect to a tunnel's destination (or the client listener).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to finish the TLS handshake of an intercepted tunnel.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound (not yet listening) proxy socket, made in `errgate run` so a bind error stops
/// start-up with a clear message. `SO_REUSEPORT` lets a graceful upgrade's new process bind the
/// same port while the old one drains.
pub fn bind(listen: &str) -> io::Result<TcpSocket> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("bad address {listen}"))
    })?;
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.set_reuseport(true)?;
    sock.bind(addr)?;
    Ok(sock)
}

/// The address of the client listener as reached from this process: an unspecified listen
/// address (`0.0.0.0`, `::`) becomes loopback of the same family.
pub fn loopback_of(listen: &str) -> Option<SocketAddr> {
    let mut a: SocketAddr = listen.parse().ok()?;
    if a.ip().is_unspecified() {
        a.set_ip(match a.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Some(a)
}

/// Why the forward proxy could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The interception CA files are unusable (a configuration error).
    #[error("forward_proxy.tls_intercept: {0}")]
    Ca(#[from] mint::MintError),
    /// The listener could not be bound.
    #[error("forward_proxy.listen {listen}: {error}")]
    Bind {
        /// The address.
        listen: String,
        /// The error.
        error: io::Error,
    },
    /// The metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] pingora_prometheus::prometheus::Error),
}

/// The forward-proxy service for the serving config, or `None` when `forward_proxy` is absent:
/// reads the CA once and binds the listener.
pub fn setup(
    runtime: &Arc<Shared>,
    registry: &pingora_prometheus::prometheus::Registry,
) -> Result<Option<ForwardProxyService>, SetupError> {
    let snap = runtime.snapshot();
    let Some(fp) = snap.config.forward_proxy.as_ref() else {
        return Ok(None);
    };
    let minter = match &fp.tls_intercept {
        Some(t) => Some(Minter::load(&t.ca_cert_file, &t.ca_key_file, t.max_certs)?),
        None => None,
    };
    let metrics = EgressMetrics::register(registry)?;
    let socket = bind(&fp.listen).map_err(|error| SetupError::Bind {
        listen: fp.listen.clone(),
        error,
    })?;
    let client_listener = loopback_of(&snap.config.listen).ok_or_else(|| SetupError::Bind {
        listen: snap.config.listen.clone(),
        error: io::Error::new(io::ErrorKind::InvalidInput, "not an address"),
    })?;
    log::info!(
        "forward_proxy={} intercept={} allow_entries={} Forward proxy enabled.",
        fp.listen,
        minter.is_some(),
        fp.policy.allow.len()
    );
    Ok(Some(ForwardProxyService::new(
        socket,
        runtime.clone(),
        metrics,
        minter,
        client_listener,
    )))
}

/// The forward proxy as a Pingora background service (it sees shutdown).
pub struct ForwardProxyService {
    socket: Mutex<Option<TcpSocket>>,
    shared: Arc<Inner>,
}

struct Inner {
    runtime: Arc<Shared>,
    metrics: EgressMetrics,
    minter: Option<Minter>,
    client_listener: SocketAddr,
}

impl ForwardProxyService {
    /// A service that will listen on `socket` (from [`bind`]).
    pub fn new(
        socket: TcpSocket,
        runtime: Arc<Shared>,
        metrics: EgressMetrics,
        minter: Option<Minter>,
        client_listener: SocketAddr,
    ) -> Self {
        ForwardProxyService {
            socket: Mutex::new(Some(socket)),
            shared: Arc::new(Inner {
                runtime,
                metrics,
                minter,
                client_listener,
            }),
        }
    }
}

#[async_trait::async_trait]
impl BackgroundService for ForwardProxyService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(socket) = self.socket.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let listener = match socket.listen(1024) {
            Ok(l) => l,
            Err(e) => {
                log::error!("error={e} Cannot listen on the forward-proxy address.");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let shared = self.shared.clone();
                        tokio::spawn(async move { shared.handle(stream, peer).await });
                    }
                    Err(e) => {
                        log::warn!("error={e} Forward-proxy accept failed.");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}

/// How a refused connection is answered.
struct Refused {
    label: &'static str,
    problem: Problem,
}

impl Refused {
    fn policy(r: Refusal, host: &str, port: u16) -> Refused {
        let detail = match r {
            Refusal::NotAllowed => format!(
                "{host}:{port} is served by no route and is not in forward_proxy.allow."
            ),
            Refusal::PrivateAddress => format!(
                "{host}:{port} resolves only to loopback, private, link-local or other special addresses, which forward_proxy.allow_private does not allow."
            ),
        };
        Refused {
            label: r.label(),
            problem: Problem::own(Code::PermissionDenied, 403, r.reason(), detail),
        }
    }
}

// === impl Inner ===

impl Inner {
    async fn handle(&self, mut client: TcpStream, peer: SocketAddr) {
        let _ = client.set_nodelay(true);
        let (head, buf) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
            Ok(Ok(Some(h))) => h,
            Ok(Ok(None)) | Err(_) => return, // closed or silent: nothing to answer
            Ok(Err(e)) => {
                let status = if matches!(e, HeadError::NotProxy(_)) {
                    405
                } else {
                    400
                };
                let mut p = Problem::malformed_request(&e.to_string());
                if status == 405 {
                    p = Problem::own(
                        Code::FailedPrecondition,
                        405,
                        "NOT_A_PROXY_REQUEST",
                        e.to_string(),
                    );
                }
                self.refuse(
                    &mut client,
                    peer,
                    "-",
                    0,
                    Refused {
                        label: "malformed",
                        problem: p,
                    },
                )
                .await;
                return;
            }
        };
        let snap = self.runtime.snapshot();
        let routed = snap
            .config
            .routes
            .iter()
            .any(|r| r.host.as_deref() == Some(head.host.as_str()));
        drop(snap);
        match head.ask {
            Ask::Connect if routed && self.minter.is_some() => {
                self.intercept(client, peer, &head, buf).await
            }
            Ask::Http if routed => self.forward(client, peer, &head, buf).await,
            _ => self.tunnel(client, peer, &head, buf).await,
        }
    }

    /// Writes a refusal, counts and logs it.
    async fn refuse(
        &self,
        client: &mut TcpStream,
        peer: SocketAddr,
        host: &str,
        port: u16,
        r: Refused,
    ) {
        self.metrics
            .connections
            .with_label_values(&[EgressKind::Refused.as_str()])
            .inc();
        self.metrics.refusals.with_label_values(&[r.label]).inc();
        log::info!(
            "kind=refused reason={} client={peer} host={host} port={port} Egress connection refused.",
            r.label
        );
        let base = self.runtime.snapshot().config.problem_type_base.clone();
        let id = crate::ids::generate_request_id();
        let body = r.problem.to_json(&base, &id);
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nX-Request-Id: {id}\r\nConnection: close\r\n\r\n",
            r.problem.status,
            reason_phrase(r.problem.status),
            crate::problem::CONTENT_TYPE,
            body.len()
        );
        let _ = client.write_all(head.as_bytes()).await;
        let _ = client.write_all(&body).await;
        let _ = client.shutdown().await;
    }

    /// `CONNECT` to a routed host: TLS terminated here, HTTP handed to the client listener.
    async fn intercept(&self, mut client: TcpStream, peer: SocketAddr, head: &Head, buf: Vec<u8>) {
        let Some(minter) = &self.minter else { return };
        let config = match minter.server_config(&head.host, SystemTime::now()) {
            Ok(c) => c,
            Err(e) => {
                log::error!("error={e} Cannot issue an interception certificate.");
                let p = Problem::own(
                    Code::Internal,
                    500,
                    "EGRESS_INTERCEPT_FAILED",
                    e.to_string(),
                );
                self.refuse(
                    &mut client,
                    peer,
                    &head.host,
                    head.port,
                    Refused {
                        label: "intercept_failed",
                        problem: p,
                    },
                )
                .await;
                return;
            }
        };
        let Some(inner) = self
            .client_listener_or_refuse(&mut client, peer, head)
            .await
        else {
            return;
        };
        if client.write_all(ESTABLISHED).await.is_err() {
            return;
        }
        let rest = buf[head.len..].to_vec();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = match tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            acceptor.accept(Prefixed::new(rest, client)),
        )
        .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                log::info!("kind=intercepted client={peer} host={} error={e} TLS handshake with the client failed.", head.host);
                return;
            }
            Err(_) => return,
        };
        self.metrics
            .connections
            .with_label_values(&[EgressKind::Intercepted.as_str()])
            .inc();
        log::info!(
            "kind=intercepted client={peer} host={} port={} Egress connection intercepted.",
            head.host,
            head.port
        );
        pipe(tls, inner).await;
    }

    /// A connection to errgate's own client listener, or the client is answered 502
    /// `EGRESS_CONNECT_FAILED` (and `None`).
    async fn client_listener_or_refuse(
        &self,
        client: &mut TcpStream,
        peer: SocketAddr,
        head: &Head,
    ) -> Option<TcpStream> {
        match connect_timeout(self.client_listener).await {
            Ok(s) => Some(s),
            Err(e) => {
                log::error!("error={e} Cannot reach errgate's own client listener.");
                let p = Problem::own(
                    Code::Unavailable,
                    502,
                    "EGRESS_CONNECT_FAILED",
                    "errgate's client listener is unreachable.",
                );
                let refused = Refused {
                    label: "connect_failed",
                    problem: p,
                };
                self.refuse(client, peer, &head.host, head.port, refused)
                    .await;
                None
            }
        }
    }

    /// Absolute-form request to a routed host: the connection goes to the client listener.
    async fn forward(&self, mut client: TcpStream, peer: SocketAddr, head: &Head, buf: Vec<u8>) {
        let Some(mut inner) = self
            .client_listener_or_refuse(&mut client, peer, head)
            .await
        else {
            return;
        };
        self.metrics
            .connections
            .with_label_values(&[EgressKind::Forwarded.as_str()])
            .inc();
        log::info!(
            "kind=forwarded client={peer} host={} port={} Egress request forwarded to its route.",
            head.host,
            head.port
        );
        if inner.write_all(&buf).await.is_err() {
            return;
        }
        pipe(client, inner).await;
    }

    /// A host without a route: the policy decides; allowed hosts get a plain tunnel.
    async fn tunnel(&self, mut client: TcpStream, peer: SocketAddr, head: &Head, buf: Vec<u8>) {
        let policy = {
            let snap = self.runtime.snapshot();
            snap.config
                .forward_proxy
                .as_ref()
                .map(|f| f.policy.clone())
                .unwrap_or_default()
        };
        let entry = match policy.check_host(&head.host, head.port) {
            Ok(e) => e.clone(),
            Err(r) => {
                self.refuse(
                    &mut client,
                    peer,
                    &head.host,
                    head.port,
                    Refused::policy(r, &head.host, head.port),
                )
                .await;
                return;
            }
        };
        // Resolve once; connect only to addresses that passed the check.
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::lookup_host((head.host.as_str(), head.port)),
        )
        .await
        {
            Ok(Ok(a)) => a.collect(),
            _ => Vec::new(),
        };
        let permitted: Vec<SocketAddr> = addrs
            .iter()
            .copied()
            .filter(|a| policy.address_allowed(&entry, a.ip()))
            .collect();
        if permitted.is_empty() {
            let r = if addrs.is_empty() {
                Refused {
                    label: "connect_failed",
                    problem: Problem::own(
                        Code::Unavailable,
                        502,
                        "EGRESS_CONNECT_FAILED",
                        format!("{} did not resolve.", head.host),
                    ),
                }
            } else {
                Refused::policy(Refusal::PrivateAddress, &head.host, head.port)
            };
            self.refuse(&mut client, peer, &head.host, head.port, r)
                .await;
            return;
        }
        let mut dest = None;
        for a in permitted {
            if let Ok(s) = connect_timeout(a).await {
                dest = Some((s, a));
                break;
            }
        }
        let Some((mut upstream, addr)) = dest else {
            let p = Problem::own(
                Code::Unavailable,
                502,
                "EGRESS_CONNECT_FAILED",
                format!("Cannot connect to {}:{}.", head.host, head.port),
            );
            self.refuse(
                &mut client,
                peer,
                &head.host,
                head.port,
                Refused {
                    label: "connect_failed",
                    problem: p,
                },
            )
            .await;
            return;
        };
        self.metrics
            .connections
            .with_label_values(&[EgressKind::Tunnelled.as_str()])
            .inc();
        let sent = match head.ask {
            Ask::Connect => {
                if client.write_all(ESTABLISHED).await.is_err() {
                    return;
                }
                upstream
                    .write_all(&buf[head.len..])
                    .await
                    .map(|_| buf.len() - head.len)
            }
            Ask::Http => upstream.write_all(&buf).await.map(|_| buf.len()),
        };
        let Ok(sent) = sent else { return };
        let (up, down) = tokio::io::copy_bidirectional(&mut client, &mut upstream)
            .await
            .unwrap_or((0, 0));
        let up = up + sent as u64;
        self.metrics
            .tunnel_bytes
            .with_label_values(&["up"])
            .inc_by(up);
        self.metrics
            .tunnel_bytes
            .with_label_values(&["down"])
            .inc_by(down);
        log::info!(
            "kind=tunnelled client={peer} host={} port={} address={addr} up_bytes={up} down_bytes={down} Egress tunnel closed.",
            head.host,
            head.port
        );
    }
}

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection Established\r\n\r\n";

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Error",
    }
}

async fn connect_timeout(addr: SocketAddr) -> io::Result<TcpStream> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(r) => {
            let s = r?;
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// Reads until a complete head: `Ok(None)` when the client closed first.
async fn read_head(client: &mut TcpStream) -> Result<Option<(Head, Vec<u8>)>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(h) = head::parse_head(&buf)? {
            return Ok(Some((h, buf)));
        }
    }
}

/// Copies both ways until either side closes.
async fn pipe<A, B>(mut a: A, mut b: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}

/// A stream that first yields bytes already read (what a client sent right after its
/// `CONNECT`), then reads from the inner stream.
struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = out.remaining().min(self.prefix.len() - self.pos);
            let start = self.pos;
            out.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_become_loopback() {
        assert_eq!(loopback_of("0.0.0.0:8080"), "127.0.0.1:8080".parse().ok());
        assert_eq!(loopback_of("[::]:8080"), "[::1]:8080".parse().ok());
        assert_eq!(loopback_of("10.0.0.5:8080"), "10.0.0.5:8080".parse().ok());
        assert_eq!(loopback_of("nope"), None);
    }

    #[tokio::test]
    async fn prefixed_stream_yields_the_prefix_first() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut p = Prefixed::new(b"abc".to_vec(), a);
        b.write_all(b"def").await.expect("write");
        drop(b);
        let mut out = Vec::new();
        p.read_to_end(&mut out).await.expect("read");
        assert_eq!(out, b"abcdef");
    }
}
