//! Upstream address resolution: no request waits on a resolver that is down when a previous
//! answer exists.
//!
//! - A fresh answer (younger than `dns.ttl`) is used as is.
//! - A stale answer is used at once, and one background refresh per host is started; while it
//!   runs, further requests use the stale answer too. A failed refresh keeps the stale answer
//!   and is retried after `dns.negative_ttl`.
//! - A failed lookup with no previous answer (NXDOMAIN, no address, resolver timeout) is cached
//!   for `dns.negative_ttl`, so an outage does not turn every request into a resolver timeout.
//! - IP-literal upstreams skip resolution.
//!
//! Lookups go through the system resolver (`getaddrinfo` via `tokio::net::lookup_host`, which
//! honours /etc/hosts, /etc/resolv.conf and nsswitch); it reports no record TTLs, so the
//! configured `dns.ttl` is the TTL. Why not hickory-resolver: see ARCHITECTURE.md ("DNS").
//! The lookup is a trait so tests can inject an outage and run on a paused clock.

use async_trait::async_trait;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub use crate::config::DnsSettings;

/// Most host names cached: routes are few; this bounds memory if config churns.
const MAX_CACHED_HOSTS: usize = 1024;

/// One name lookup.
#[async_trait]
pub trait Lookup: Send + Sync + 'static {
    /// The addresses of `host:port`.
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system resolver.
pub struct SystemLookup;

#[async_trait]
impl Lookup for SystemLookup {
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// Empty for a cached failure.
    addrs: Vec<SocketAddr>,
    /// Until when the answer is fresh (or the failure is remembered).
    fresh_until: Instant,
    /// A background refresh is running.
    refreshing: bool,
    /// The failure, for a negative entry.
    error: Option<String>,
}

type Cache = HashMap<(String, u16), Entry>;

/// The resolver with its cache; one per process.
pub struct Resolver<L: Lookup = SystemLookup> {
    lookup: Arc<L>,
    cache: Arc<Mutex<Cache>>,
    next: AtomicUsize,
}

impl Default for Resolver<SystemLookup> {
    fn default() -> Self {
        Resolver::new(SystemLookup)
    }
}

// === impl Resolver ===

impl<L: Lookup> Resolver<L> {
    /// A resolver over `lookup`.
    pub fn new(lookup: L) -> Self {
        Resolver {
            lookup: Arc::new(lookup),
            cache: Arc::new(Mutex::new(HashMap::new())),
            next: AtomicUsize::new(0),
        }
    }

    /// One address for `host:port`, rotating over the answers; the error text is for the log,
    /// never for a client. Waits on the resolver only when
    /// no answer, not even a stale one, is known; then at most `timeout`.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        settings: &DnsSettings,
        timeout: Duration,
        now: Instant,
    ) -> Result<SocketAddr, String> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = (host.to_string(), port);
        {
            let mut cache = self.lock();
            if let Some(e) = cache.get_mut(&key) {
                if !e.addrs.is_empty() {
                    if now >= e.fresh_until && !e.refreshing {
                        e.refreshing = true;
                        self.spawn_refresh(key.clone(), *settings, timeout);
                    }
                    return Ok(self.pick(&e.addrs));
                }
                if now < e.fresh_until {
                    return Err(e.error.clone().unwrap_or_default());
                }
            }
        }
        let result = lookup_within(&*self.lookup, host, port, timeout).await;
        let now = Instant::now();
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED_HOSTS && !cache.contains_key(&key) {
            cache.retain(|_, e| !e.addrs.is_empty());
            if cache.len() >= MAX_CACHED_HOSTS {
                cache.clear();
            }
        }
        match result {
            Ok(addrs) => {
                let picked = self.pick(&addrs);
                cache.insert(
                    key,
                    Entry {
                        addrs,
                        fresh_until: now + settings.ttl,
                        refreshing: false,
                        error: None,
                    },
                );
                Ok(picked)
            }
            Err(e) => {
                // A concurrent lookup may have found an answer meanwhile: prefer it.
                if let Some(found) = cache.get(&key).filter(|e| !e.addrs.is_empty()) {
                    return Ok(self.pick(&found.addrs));
                }
                cache.insert(
                    key,
                    Entry {
                        addrs: Vec::new(),
                        fresh_until: now + settings.negative_ttl,
                        refreshing: false,
                        error: Some(e.clone()),
                    },
                );
                Err(e)
            }
        }
    }

    fn spawn_refresh(&self, key: (String, u16), settings: DnsSettings, timeout: Duration) {
        let lookup = self.lookup.clone();
        let cache = self.cache.clone();
        tokio::spawn(async move {
            let result = lookup_within(&*lookup, &key.0, key.1, timeout).await;
            let now = Instant::now();
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            let Some(e) = cache.get_mut(&key) else {
                return;
            };
            e.refreshing = false;
            match result {
                Ok(addrs) => {
                    e.addrs = addrs;
                    e.fresh_until = now + settings.ttl;
                }
                Err(why) => {
                    log::warn!(
                        "host={} error={why} DNS refresh failed; serving the previous answer.",
                        key.0
                    );
                    e.fresh_until = now + settings.negative_ttl;
                }
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds plain data; a panic elsewhere cannot leave it inconsistent.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pick(&self, addrs: &[SocketAddr]) -> SocketAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % addrs.len();
        addrs[i]
    }
}

/// A lookup bounded by `timeout`, with no-address answers turned into errors.
async fn lookup_within<L: Lookup + ?Sized>(
    lookup: &L,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, String> {
    match tokio::time::timeout(timeout, lookup.lookup(host, port)).await {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(format!("{host} resolved to no address")),
        Ok(Err(e)) => Err(format!("cannot resolve {host}: {e}")),
        Err(_) => Err(format!("resolving {host} timed out after {timeout:?}")),
    }
}

#[cfg(test)]
mod tests;
