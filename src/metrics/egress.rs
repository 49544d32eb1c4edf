//! Metrics of the forward-proxy listener ([`crate::egress`]), registered beside the others.

use pingora_prometheus::prometheus::{self, IntCounterVec, Opts, Registry};

/// How a forward-proxy connection was handled (the `kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgressKind {
    /// `CONNECT` to a routed host: TLS terminated with a minted certificate, HTTP served by the
    /// route.
    Intercepted,
    /// Absolute-form `http://` request to a routed host, served by the route.
    Forwarded,
    /// Allowed host without a route: bytes copied both ways, not inspected.
    Tunnelled,
    /// Refused by the egress policy (or malformed); nothing was connected to.
    Refused,
}

impl EgressKind {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EgressKind::Intercepted => "intercepted",
            EgressKind::Forwarded => "forwarded",
            EgressKind::Tunnelled => "tunnelled",
            EgressKind::Refused => "refused",
        }
    }
}

/// The forward proxy's metrics.
#[derive(Clone)]
pub struct EgressMetrics {
    /// `errgate_egress_connections_total{kind}`.
    pub connections: IntCounterVec,
    /// `errgate_egress_refusals_total{reason}` (denied, private_address, malformed,
    /// connect_failed, intercept_failed).
    pub refusals: IntCounterVec,
    /// `errgate_egress_tunnel_bytes_total{direction}` (`up`: client to destination, `down`).
    pub tunnel_bytes: IntCounterVec,
}

impl EgressMetrics {
    /// Registers the handles in `reg`.
    pub fn register(reg: &Registry) -> prometheus::Result<EgressMetrics> {
        let counter = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
            reg.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        Ok(EgressMetrics {
            connections: counter(
                "errgate_egress_connections_total",
                "Forward-proxy connections by how they were handled.",
                "kind",
            )?,
            refusals: counter(
                "errgate_egress_refusals_total",
                "Forward-proxy connections refused, by reason.",
                "reason",
            )?,
            tunnel_bytes: counter(
                "errgate_egress_tunnel_bytes_total",
                "Bytes copied through plain (not intercepted) tunnels.",
                "direction",
            )?,
        })
    }
}
