//! Cooldown table: "the vendor asked us to hold back until T", per route and caller key.
//!
//! When a vendor answers with a retry hint (e.g. a 429 with `Retry-After`), the gateway records a
//! hold so further requests for the same key can be answered at once instead of hammering the
//! vendor. Keys are a route *name* plus an optional header value (typically the caller's API
//! key), which is stored only as a truncated SHA-256 digest. Names, not positions: a reload that
//! reorders routes never moves a hold onto another route, and replicas of a fleet agree on keys.
//!
//! Invariants:
//! - Pure: time is always the `now` parameter ([`tokio::time::Instant`]); no clock reads.
//! - Bounded: the table never holds more than its capacity. When full it first drops expired
//!   entries, then evicts the entry expiring soonest; both come off the front of an expiry index
//!   (`BTreeSet`), so a hold costs O(log n) under the lock, never a scan of the table.
//! - A hold is capped at the table's `max_hold` and only ever extended, never shortened.
//! - Thread-safe through one `std::sync::Mutex`; critical sections are short, never await, and a
//!   poisoned lock is recovered (nothing between the paired updates of the two indexes panics).
//! - A hold recorded by [`CooldownTable::hold`] is offered to the attached [`HoldSink`] (the
//!   fleet store, when one is configured) after the lock is released; a hold learned from the
//!   fleet ([`CooldownTable::apply_remote`]) is not offered again.
#![forbid(unsafe_code)]

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::DEFAULT_RETRY_AFTER_MAX;

/// Most keys a table holds at once.
///
/// Why: bounds memory (about 2 MiB with the expiry index) even when every caller of every route
/// is rate limited with a distinct API key.
pub const DEFAULT_COOLDOWN_CAPACITY: usize = 10_000;

/// Longest hold [`CooldownTable::new`] records, whatever the hint says.
///
/// Why: same cap as the hint echoed to clients, so a bogus hint cannot lock a key out for long.
pub const DEFAULT_COOLDOWN_MAX_HOLD: Duration = DEFAULT_RETRY_AFTER_MAX;

/// Bytes of the SHA-256 digest kept in a key.
///
/// Why: 128 bits makes collisions between distinct header values negligible at half the memory.
pub const KEY_DIGEST_LEN: usize = 16;

/// Prefix hashed before the header value, so these digests match no other SHA-256 use of the same
/// secret.
const KEY_DOMAIN: &[u8] = b"errgate.cooldown.v1\0";

/// Key of one cooldown: route name + optional hashed header value.
///
/// The configured header's value is hashed with SHA-256 (first [`KEY_DIGEST_LEN`] = 16 bytes
/// kept) so API keys are never stored in clear. `None` (header absent) and `Some(b"")` are
/// different keys. The same route name and header value give the same key in every process.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CooldownKey {
    route: Arc<str>,
    digest: Option<[u8; KEY_DIGEST_LEN]>,
}

// === impl CooldownKey ===

impl CooldownKey {
    /// Build the key for route `route` (its configured name) and, if the route keys cooldowns by
    /// a header, that header's raw value.
    /// Pass the route's `Arc<str>` name to share it (no copy per request).
    pub fn new(route: impl Into<Arc<str>>, header_value: Option<&[u8]>) -> Self {
        let digest = header_value.map(|value| {
            let full = Sha256::new()
                .chain_update(KEY_DOMAIN)
                .chain_update(value)
                .finalize();
            let mut out = [0u8; KEY_DIGEST_LEN];
            out.copy_from_slice(&full[..KEY_DIGEST_LEN]);
            out
        });
        Self {
            route: route.into(),
            digest,
        }
    }

    /// A key from its parts as another replica published them (route name and digest).
    pub fn from_parts(route: &str, digest: Option<[u8; KEY_DIGEST_LEN]>) -> Self {
        Self {
            route: route.into(),
            digest,
        }
    }

    /// The route name.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The truncated digest of the header value, if there was one.
    pub fn digest(&self) -> Option<&[u8; KEY_DIGEST_LEN]> {
        self.digest.as_ref()
    }
}

impl fmt::Debug for CooldownKey {
    /// Shows the route and the digest in hex; the raw header value is never known here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("CooldownKey");
        s.field("route", &&*self.route);
        match &self.digest {
            Some(d) => s.field("digest", &hex::encode(d)),
            None => s.field("digest", &None::<()>),
        };
        s.finish()
    }
}

/// Where a locally learned hold is offered (the fleet store). Must not block: it is called on
/// the request path, outside the table's lock.
pub trait HoldSink: Send + Sync + fmt::Debug {
    /// `key` is held until `until` (already capped); extended holds are offered again.
    fn offer(&self, key: &CooldownKey, until: Instant);
}

/// Both indexes of the table, changed together under one lock.
#[derive(Debug, Default)]
struct Holds {
    /// Key -> hold end.
    by_key: HashMap<CooldownKey, Instant>,
    /// (hold end, key), ordered: the front is the entry expiring soonest.
    by_end: BTreeSet<(Instant, CooldownKey)>,
}

// === impl Holds ===

impl Holds {
    fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Drop every entry ended at `now`: O(expired * log n).
    fn purge(&mut self, now: Instant) {
        while let Some(first) = self.by_end.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, k)) = self.by_end.pop_first() {
                self.by_key.remove(&k);
            }
        }
    }

    /// Drop the entry expiring soonest.
    fn evict_soonest(&mut self) {
        if let Some((_, k)) = self.by_end.pop_first() {
            self.by_key.remove(&k);
        }
    }

    fn remove(&mut self, key: &CooldownKey) {
        if let Some(until) = self.by_key.remove(key) {
            self.by_end.remove(&(until, key.clone()));
        }
    }
}

/// Bounded, thread-safe table of "vendor asked us to hold back until T".
///
/// Capacity bound: when full, first drop expired entries, then evict the entry expiring soonest;
/// never grows past capacity. A capacity of 0 records nothing.
#[derive(Debug)]
pub struct CooldownTable {
    capacity: usize,
    max_hold: Duration,
    holds: Mutex<Holds>,
    /// Entries stored, mirrored after every change so the common "nothing held" case needs no
    /// lock on the request path.
    stored: AtomicUsize,
    /// The fleet store, attached once at startup when `cooldown.store` is not `memory`.
    sink: OnceLock<Arc<dyn HoldSink>>,
}

// === impl CooldownTable ===

impl CooldownTable {
    /// An empty table holding at most `capacity` keys, with holds capped at
    /// [`DEFAULT_COOLDOWN_MAX_HOLD`].
    pub fn new(capacity: usize) -> Self {
        Self::with_max_hold(capacity, DEFAULT_COOLDOWN_MAX_HOLD)
    }

    /// An empty table holding at most `capacity` keys, with holds capped at `max_hold`.
    pub fn with_max_hold(capacity: usize, max_hold: Duration) -> Self {
        Self {
            capacity,
            max_hold,
            // Pre-allocate a little, not `capacity`: most tables stay nearly empty.
            holds: Mutex::new(Holds {
                by_key: HashMap::with_capacity(capacity.min(64)),
                by_end: BTreeSet::new(),
            }),
            stored: AtomicUsize::new(0),
            sink: OnceLock::new(),
        }
    }

    /// Attach the fleet store: every later [`hold`](Self::hold) that records or extends a hold is
    /// offered to it. Only the first call takes effect; returns whether this one did.
    pub fn attach_sink(&self, sink: Arc<dyn HoldSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    /// The most keys this table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The longest hold this table records.
    pub fn max_hold(&self) -> Duration {
        self.max_hold
    }

    /// Record a hint: hold `key` until `now + min(delay, max_hold)`. Extends, never shortens, an
    /// existing hold. A zero delay records nothing. A hold that was recorded or extended is
    /// offered to the attached [`HoldSink`].
    pub fn hold(&self, key: &CooldownKey, delay: Duration, now: Instant) {
        if let Some(until) = self.record(key, delay, now) {
            if let Some(sink) = self.sink.get() {
                sink.offer(key, until);
            }
        }
    }

    /// Record a hold another replica learned (`remaining` from now, as it reported): same rules
    /// as [`hold`](Self::hold), but never offered back to the sink.
    pub fn apply_remote(&self, key: &CooldownKey, remaining: Duration, now: Instant) -> bool {
        self.record(key, remaining, now).is_some()
    }

    /// Insert or extend; the new hold end when something changed.
    fn record(&self, key: &CooldownKey, delay: Duration, now: Instant) -> Option<Instant> {
        let delay = delay.min(self.max_hold);
        if delay.is_zero() || self.capacity == 0 {
            return None;
        }
        let Some(until) = now.checked_add(delay) else {
            // Only reachable with an absurd `max_hold`; better no hold than a wrong one.
            log::debug!("delay={delay:?} Ignored a cooldown hold past the clock's range.");
            return None;
        };
        let mut holds = self.lock();
        if let Some(existing) = holds.by_key.get(key).copied() {
            if until <= existing {
                return None;
            }
            holds.by_end.remove(&(existing, key.clone()));
            holds.by_end.insert((until, key.clone()));
            holds.by_key.insert(key.clone(), until);
            return Some(until);
        }
        if holds.len() >= self.capacity {
            holds.purge(now);
        }
        while holds.len() >= self.capacity && !holds.by_end.is_empty() {
            holds.evict_soonest();
        }
        holds.by_end.insert((until, key.clone()));
        holds.by_key.insert(key.clone(), until);
        self.stored.store(holds.len(), Ordering::Release);
        Some(until)
    }

    /// If `key` is held at `now`, the remaining time (always non-zero). An expired entry for
    /// `key` is removed.
    pub fn remaining(&self, key: &CooldownKey, now: Instant) -> Option<Duration> {
        if self.stored.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut holds = self.lock();
        let until = *holds.by_key.get(key)?;
        match until.checked_duration_since(now) {
            Some(left) if !left.is_zero() => Some(left),
            _ => {
                holds.remove(key);
                self.stored.store(holds.len(), Ordering::Release);
                None
            }
        }
    }

    /// Number of keys currently held at `now` (for a gauge); also drops expired entries
    /// (O(expired * log n), no scan).
    pub fn active(&self, now: Instant) -> usize {
        let mut holds = self.lock();
        holds.purge(now);
        self.stored.store(holds.len(), Ordering::Release);
        holds.len()
    }

    /// Every key held at `now` with its remaining time, soonest first (for resynchronising the
    /// fleet store after it reconnects; O(n), never on the request path).
    pub fn active_holds(&self, now: Instant) -> Vec<(CooldownKey, Duration)> {
        let mut holds = self.lock();
        holds.purge(now);
        self.stored.store(holds.len(), Ordering::Release);
        holds
            .by_end
            .iter()
            .map(|(until, k)| (k.clone(), until.saturating_duration_since(now)))
            .collect()
    }

    /// Number of entries stored, including expired ones not yet purged.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Holds> {
        self.holds.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for CooldownTable {
    /// [`DEFAULT_COOLDOWN_CAPACITY`] keys, holds capped at [`DEFAULT_COOLDOWN_MAX_HOLD`].
    fn default() -> Self {
        Self::new(DEFAULT_COOLDOWN_CAPACITY)
    }
}

#[cfg(test)]
mod tests;
