//! The `forward_proxy` config section: serde type as written and the validated runtime type.

use super::mint::DEFAULT_MAX_CERTS;
use super::policy::{AllowEntry, Cidr, HostMatch, Policy, DEFAULT_ALLOW_PORTS};
use serde::Deserialize;
use std::net::SocketAddr;

/// Default forward-proxy listener: loopback, since a proxy open to the network is an open relay
/// for whatever the policy allows.
pub const DEFAULT_FORWARD_PROXY_LISTEN: &str = "127.0.0.1:3128";

/// `forward_proxy` as written. The section's presence turns the listener on.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileForwardProxy {
    /// Proxy listener (`HTTPS_PROXY` / `HTTP_PROXY` point here). Default `127.0.0.1:3128`.
    /// Restart to change.
    pub listen: Option<String>,
    /// CA used to intercept `CONNECT` tunnels to routed hosts; without it, routed hosts are not
    /// intercepted (and are subject to `allow` like any host). Restart to change.
    pub tls_intercept: Option<FileTlsIntercept>,
    /// Hosts without a route that may be tunnelled (no interception). Default: none.
    #[serde(default)]
    pub allow: Vec<FileAllow>,
    /// Networks (CIDR) of special addresses (loopback, private, link-local...) that allowed
    /// hosts may reach. Default: none.
    #[serde(default)]
    pub allow_private: Vec<String>,
}

/// `forward_proxy.tls_intercept`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileTlsIntercept {
    /// PEM CA certificate that clients trust.
    pub ca_cert_file: Option<String>,
    /// PEM private key of that CA (read once at start, never logged).
    pub ca_key_file: Option<String>,
    /// Most minted host certificates cached. Default 1000.
    pub max_certs: Option<usize>,
}

/// One `forward_proxy.allow` entry: exactly one of `host` and `suffix`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileAllow {
    /// Exact host name or IP literal.
    pub host: Option<String>,
    /// Name suffix starting with `.` (subdomains only).
    pub suffix: Option<String>,
    /// Destination ports. Default `[443, 80]`.
    pub ports: Option<Vec<u16>>,
    /// May reach special addresses. Default false.
    #[serde(default)]
    pub allow_private: bool,
}

/// The validated section.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardProxy {
    /// Listener address.
    pub listen: String,
    /// Interception CA, if configured.
    pub tls_intercept: Option<TlsIntercept>,
    /// Egress policy for hosts without a route.
    pub policy: Policy,
}

/// The validated `tls_intercept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsIntercept {
    /// CA certificate file.
    pub ca_cert_file: String,
    /// CA key file.
    pub ca_key_file: String,
    /// Cache bound.
    pub max_certs: usize,
}

/// Validates the section; problems are `(path, message)` pairs below `forward_proxy`.
pub fn validate(f: &FileForwardProxy) -> Result<ForwardProxy, Vec<(String, String)>> {
    let mut errs = Vec::new();
    let listen = f
        .listen
        .clone()
        .unwrap_or_else(|| DEFAULT_FORWARD_PROXY_LISTEN.to_string());
    if listen.parse::<SocketAddr>().is_err() {
        errs.push((
            "forward_proxy.listen".to_string(),
            format!("`{listen}` is not an address like 127.0.0.1:3128"),
        ));
    }
    let tls_intercept = f.tls_intercept.as_ref().and_then(|t| {
        let mut need = |v: &Option<String>, key: &str| match v {
            Some(s) if !s.trim().is_empty() => Some(s.clone()),
            _ => {
                errs.push((
                    format!("forward_proxy.tls_intercept.{key}"),
                    "required: a PEM file".to_string(),
                ));
                None
            }
        };
        let cert = need(&t.ca_cert_file, "ca_cert_file");
        let key = need(&t.ca_key_file, "ca_key_file");
        let max_certs = t.max_certs.unwrap_or(DEFAULT_MAX_CERTS);
        if max_certs == 0 {
            errs.push((
                "forward_proxy.tls_intercept.max_certs".to_string(),
                "must be at least 1".to_string(),
            ));
        }
        Some(TlsIntercept {
            ca_cert_file: cert?,
            ca_key_file: key?,
            max_certs,
        })
    });
    let mut allow = Vec::new();
    for (i, a) in f.allow.iter().enumerate() {
        let path = format!("forward_proxy.allow[{i}]");
        let host = match (&a.host, &a.suffix) {
            (Some(h), None) if !h.trim().is_empty() => {
                HostMatch::Exact(super::policy::normalize_host(h.trim()))
            }
            (None, Some(s)) if s.starts_with('.') && s.len() > 1 => {
                HostMatch::Suffix(super::policy::normalize_host(s.trim()))
            }
            (None, Some(_)) => {
                errs.push((
                    format!("{path}.suffix"),
                    "must start with `.`, e.g. `.example.org`".to_string(),
                ));
                continue;
            }
            _ => {
                errs.push((path, "give exactly one of `host` and `suffix`".to_string()));
                continue;
            }
        };
        let ports = a
            .ports
            .clone()
            .unwrap_or_else(|| DEFAULT_ALLOW_PORTS.to_vec());
        if ports.is_empty() || ports.contains(&0) {
            errs.push((format!("{path}.ports"), "list ports 1 to 65535".to_string()));
        }
        allow.push(AllowEntry {
            host,
            ports,
            allow_private: a.allow_private,
        });
    }
    let mut allow_private = Vec::new();
    for (i, c) in f.allow_private.iter().enumerate() {
        match Cidr::parse(c) {
            Ok(c) => allow_private.push(c),
            Err(e) => errs.push((format!("forward_proxy.allow_private[{i}]"), e)),
        }
    }
    if errs.is_empty() {
        Ok(ForwardProxy {
            listen,
            tls_intercept,
            policy: Policy {
                allow,
                allow_private,
            },
        })
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<ForwardProxy, Vec<(String, String)>> {
        let f: FileForwardProxy = yaml_serde::from_str(y).expect("yaml");
        validate(&f)
    }

    #[test]
    fn defaults() {
        let fp = parse("{}").expect("valid");
        assert_eq!(fp.listen, DEFAULT_FORWARD_PROXY_LISTEN);
        assert!(fp.tls_intercept.is_none());
        assert!(fp.policy.allow.is_empty());
    }

    #[test]
    fn full_section() {
        let fp = parse(
            "listen: 127.0.0.1:3129\ntls_intercept: {ca_cert_file: c.pem, ca_key_file: k.pem}\nallow:\n  - {host: API.example.com, ports: [443]}\n  - {suffix: .example.org, allow_private: true}\nallow_private: [10.0.0.0/8]\n",
        )
        .expect("valid");
        assert_eq!(fp.tls_intercept.expect("tls").max_certs, DEFAULT_MAX_CERTS);
        assert_eq!(
            fp.policy.allow[0].host,
            HostMatch::Exact("api.example.com".into())
        );
        assert_eq!(fp.policy.allow[1].ports, vec![443, 80]);
        assert!(fp.policy.allow[1].allow_private);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let errs = parse(
            "listen: nope\ntls_intercept: {ca_cert_file: c.pem, max_certs: 0}\nallow:\n  - {host: a, suffix: .b}\n  - {suffix: b.org}\n  - {host: c, ports: []}\nallow_private: [bad]\n",
        )
        .expect_err("invalid");
        let paths: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "forward_proxy.listen",
                "forward_proxy.tls_intercept.ca_key_file",
                "forward_proxy.tls_intercept.max_certs",
                "forward_proxy.allow[0]",
                "forward_proxy.allow[1].suffix",
                "forward_proxy.allow[2].ports",
                "forward_proxy.allow_private[0]",
            ]
        );
    }
}
