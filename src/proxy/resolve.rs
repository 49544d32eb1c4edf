//! Upstream address resolution with a small TTL cache, off the blocking path.
//!
//! `HttpPeer::new(host)` would resolve DNS synchronously on every request; instead errgate
//! resolves with `tokio::net::lookup_host` under the connect timeout, caches answers for
//! [`DNS_TTL`], and serves a stale answer when a refresh fails.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long a resolved address list is used before it is looked up again.
pub const DNS_TTL: Duration = Duration::from_secs(30);
/// Most host names cached: routes are few; this bounds memory if config churns.
const MAX_CACHED_HOSTS: usize = 1024;

/// Resolved addresses of a `(host, port)` and when they were looked up.
type DnsCache = HashMap<(String, u16), (Vec<SocketAddr>, Instant)>;

#[derive(Default)]
pub(super) struct Resolver {
    cache: Mutex<DnsCache>,
    next: AtomicUsize,
}

impl Resolver {
    /// One address for `host:port`, rotating over the answers.
    pub(super) async fn resolve(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
        now: Instant,
    ) -> Result<SocketAddr, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = (host.to_string(), port);
        let stale = {
            let cache = self
                .cache
                .lock()
                .map_err(|_| "resolver cache poisoned".to_string())?;
            match cache.get(&key) {
                Some((addrs, at)) if now.duration_since(*at) < DNS_TTL => {
                    return self.pick(addrs);
                }
                Some((addrs, _)) => Some(addrs.clone()),
                None => None,
            }
        };
        let looked = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await;
        match looked {
            Ok(Ok(it)) => {
                let addrs: Vec<SocketAddr> = it.collect();
                if addrs.is_empty() {
                    return Err(format!("{host} resolved to no address"));
                }
                let picked = self.pick(&addrs);
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() >= MAX_CACHED_HOSTS {
                        cache.clear();
                    }
                    cache.insert(key, (addrs, now));
                }
                picked
            }
            Ok(Err(e)) => match stale {
                Some(addrs) => self.pick(&addrs),
                None => Err(format!("cannot resolve {host}: {e}")),
            },
            Err(_) => match stale {
                Some(addrs) => self.pick(&addrs),
                None => Err(format!("resolving {host} timed out")),
            },
        }
    }

    fn pick(&self, addrs: &[SocketAddr]) -> Result<SocketAddr, String> {
        if addrs.is_empty() {
            return Err("no address".into());
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % addrs.len();
        Ok(addrs[i])
    }
}
