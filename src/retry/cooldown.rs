//! Cooldown table: "the vendor asked us to hold back until T", per route and caller key.
//!
//! When a vendor answers with a retry hint (e.g. a 429 with `Retry-After`), the gateway records a
//! hold so further requests for the same key can be answered at once instead of hammering the
//! vendor. Keys are a route index plus an optional header value (typically the caller's API key),
//! which is stored only as a truncated SHA-256 digest.
//!
//! Invariants:
//! - Pure: time is always the `now` parameter ([`tokio::time::Instant`]); no clock reads.
//! - Bounded: the table never holds more than its capacity. When full it first purges expired
//!   entries, then evicts the entry expiring soonest.
//! - A hold is capped at the table's `max_hold` and only ever extended, never shortened.
//! - Thread-safe through one `std::sync::Mutex`; critical sections are short, never await, and a
//!   poisoned lock is recovered (the map holds no invariant a panic could break).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::DEFAULT_RETRY_AFTER_MAX;

/// Most keys a table holds at once.
///
/// Why: bounds memory (about 1 MiB) even when every caller of every route is rate limited with a
/// distinct API key.
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

/// Key of one cooldown: route index + optional hashed header value.
///
/// The configured header's value is hashed with SHA-256 (first [`KEY_DIGEST_LEN`] = 16 bytes
/// kept) so API keys are never stored in clear. `None` (header absent) and `Some(b"")` are
/// different keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CooldownKey {
    route: usize,
    digest: Option<[u8; KEY_DIGEST_LEN]>,
}

// === impl CooldownKey ===

impl CooldownKey {
    /// Build the key for route index `route` and, if the route keys cooldowns by a header, that
    /// header's raw value.
    pub fn new(route: usize, header_value: Option<&[u8]>) -> Self {
        let digest = header_value.map(|value| {
            let full = Sha256::new()
                .chain_update(KEY_DOMAIN)
                .chain_update(value)
                .finalize();
            let mut out = [0u8; KEY_DIGEST_LEN];
            out.copy_from_slice(&full[..KEY_DIGEST_LEN]);
            out
        });
        Self { route, digest }
    }

    /// The route index.
    pub fn route(&self) -> usize {
        self.route
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
        s.field("route", &self.route);
        match &self.digest {
            Some(d) => {
                let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
                s.field("digest", &hex)
            }
            None => s.field("digest", &None::<()>),
        };
        s.finish()
    }
}

/// Bounded, thread-safe table of "vendor asked us to hold back until T".
///
/// Capacity bound: when full, first purge expired entries, then evict the entry expiring soonest;
/// never grows past capacity. A capacity of 0 records nothing.
#[derive(Debug)]
pub struct CooldownTable {
    capacity: usize,
    max_hold: Duration,
    holds: Mutex<HashMap<CooldownKey, Instant>>,
    /// Entries stored, mirrored after every change so the common "nothing held" case needs no
    /// lock on the request path.
    stored: AtomicUsize,
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
            holds: Mutex::new(HashMap::with_capacity(capacity.min(64))),
            stored: AtomicUsize::new(0),
        }
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
    /// existing hold. A zero delay records nothing.
    pub fn hold(&self, key: CooldownKey, delay: Duration, now: Instant) {
        let delay = delay.min(self.max_hold);
        if delay.is_zero() || self.capacity == 0 {
            return;
        }
        let Some(until) = now.checked_add(delay) else {
            // Only reachable with an absurd `max_hold`; better no hold than a wrong one.
            log::debug!("delay={delay:?} Ignored a cooldown hold past the clock's range.");
            return;
        };
        let mut holds = self.lock();
        if let Some(existing) = holds.get_mut(&key) {
            if until > *existing {
                *existing = until;
            }
            return;
        }
        if holds.len() >= self.capacity {
            holds.retain(|_, t| *t > now);
        }
        while holds.len() >= self.capacity {
            let soonest = holds.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k);
            match soonest {
                Some(k) => holds.remove(&k),
                None => break,
            };
        }
        holds.insert(key, until);
        self.stored.store(holds.len(), Ordering::Release);
    }

    /// If `key` is held at `now`, the remaining time (always non-zero). An expired entry for
    /// `key` is removed.
    pub fn remaining(&self, key: &CooldownKey, now: Instant) -> Option<Duration> {
        if self.stored.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut holds = self.lock();
        let until = *holds.get(key)?;
        match until.checked_duration_since(now) {
            Some(left) if !left.is_zero() => Some(left),
            _ => {
                holds.remove(key);
                self.stored.store(holds.len(), Ordering::Release);
                None
            }
        }
    }

    /// Number of keys currently held at `now` (for a gauge); also purges expired entries.
    pub fn active(&self, now: Instant) -> usize {
        let mut holds = self.lock();
        holds.retain(|_, t| *t > now);
        self.stored.store(holds.len(), Ordering::Release);
        holds.len()
    }

    /// Number of entries stored, including expired ones not yet purged.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CooldownKey, Instant>> {
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
