//! Per-route state that outlives a request: metric handles resolved once per route (not per
//! request), and the route's retry budget.
//!
//! Handles are kept by route name, so a reload that reorders routes keeps each route's counters;
//! each config snapshot gets a vector of them indexed by `Route::index`, built on the first
//! request that sees the snapshot. The request path then costs one `ArcSwap` load, a pointer
//! compare and an index.

use crate::config::Route;
use crate::metrics::{Metrics, Outcome};
use crate::mode::Mode;
use crate::retry::GiveUpReason;
use crate::state::Snapshot;
use arc_swap::ArcSwapOption;
use pingora_prometheus::prometheus::{Histogram, IntCounter, IntGauge};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// Result label of `errgate_retries_total` (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryResult {
    /// A resend was made.
    Retry,
    /// The request succeeded after at least one resend.
    Recovered,
    /// Every attempt allowed was used.
    Exhausted,
    /// The route's retry budget refused a resend.
    OverBudget,
    /// A resend was not made, for this reason.
    GaveUp(GiveUpReason),
}

impl RetryResult {
    /// Every label value, for registering series up front.
    pub fn all() -> impl Iterator<Item = RetryResult> {
        [
            RetryResult::Retry,
            RetryResult::Recovered,
            RetryResult::Exhausted,
            RetryResult::OverBudget,
        ]
        .into_iter()
        .chain(GiveUpReason::ALL.into_iter().map(RetryResult::GaveUp))
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryResult::Retry => "retry",
            RetryResult::Recovered => "recovered",
            RetryResult::Exhausted => "exhausted",
            RetryResult::OverBudget => "retry_budget",
            RetryResult::GaveUp(r) => r.as_str(),
        }
    }
}

/// The retry budget of a route (as Envoy's retry budgets): requests in a retry may not exceed
/// `percent` of the route's requests in flight, with `min_concurrency` retries always allowed.
#[derive(Debug, Default)]
pub struct RetryBudget {
    retrying: AtomicI64,
}

impl RetryBudget {
    /// Takes a retry slot when the budget allows one; `in_flight` counts the route's requests.
    pub fn try_acquire(&self, in_flight: i64, percent: u32, min_concurrency: u32) -> bool {
        let allowed = (in_flight.max(0) * i64::from(percent) / 100).max(i64::from(min_concurrency));
        self.retrying
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < allowed).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a slot taken by [`RetryBudget::try_acquire`].
    pub fn release(&self) {
        self.retrying.fetch_sub(1, Ordering::AcqRel);
    }

    /// Requests currently in a retry.
    pub fn retrying(&self) -> i64 {
        self.retrying.load(Ordering::Acquire)
    }
}

/// Most series one [`Resolved`] keeps; past it (never reached by real label sets) series are
/// looked up by label each time.
const MAX_RESOLVED: usize = 64;

/// The series of one labelled metric already resolved for a route, keyed by the rest of their
/// labels (the statuses a route has answered, its outcomes, its answer forms: a handful). A
/// request finds its series under a read lock by a short linear scan instead of hashing label
/// strings in the metric's map.
pub struct Resolved<K, C> {
    seen: RwLock<Vec<(K, C)>>,
}

impl<K, C> Default for Resolved<K, C> {
    fn default() -> Self {
        Resolved {
            seen: RwLock::new(Vec::new()),
        }
    }
}

impl<K: Copy + Eq, C: Clone> Resolved<K, C> {
    /// Runs `f` on the series for `key`, resolving it with `resolve` the first time.
    pub fn with(&self, key: K, resolve: impl FnOnce() -> C, f: impl FnOnce(&C)) {
        {
            let seen = self.seen.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, c)) = seen.iter().find(|(k, _)| *k == key) {
                f(c);
                return;
            }
        }
        let c = resolve();
        f(&c);
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        if seen.len() < MAX_RESOLVED && !seen.iter().any(|(k, _)| *k == key) {
            seen.push((key, c));
        }
    }
}

/// One route's handles.
pub struct RouteHandles {
    /// `errgate_requests_total{route, outcome, status}` by outcome and status.
    pub requests: Resolved<(Outcome, u16), IntCounter>,
    /// `errgate_request_duration_seconds{route, outcome}` by outcome.
    pub duration: Resolved<Outcome, Histogram>,
    /// `errgate_mode_answers_total{route, mode, answer}` by mode and answer.
    pub mode_answers: Resolved<(Mode, &'static str), IntCounter>,
    /// `errgate_requests_in_flight{route}`.
    pub in_flight: IntGauge,
    /// `errgate_upstream_duration_seconds{route}`.
    pub upstream_duration: Histogram,
    /// `errgate_held_responses_total{route}`.
    pub held: IntCounter,
    /// `errgate_scanned_bytes_total{route}`.
    pub scanned_bytes: IntCounter,
    /// `errgate_cooldown_rejections_total{route}`.
    pub cooldown_rejections: IntCounter,
    retries: Vec<(RetryResult, IntCounter)>,
    /// The retry budget.
    pub budget: RetryBudget,
}

impl RouteHandles {
    fn new(route: &str, m: &Metrics) -> RouteHandles {
        RouteHandles {
            requests: Resolved::default(),
            duration: Resolved::default(),
            mode_answers: Resolved::default(),
            in_flight: m.in_flight.with_label_values(&[route]),
            upstream_duration: m.upstream_duration.with_label_values(&[route]),
            held: m.held.with_label_values(&[route]),
            scanned_bytes: m.scanned_bytes.with_label_values(&[route]),
            cooldown_rejections: m.cooldown_rejections.with_label_values(&[route]),
            retries: RetryResult::all()
                .map(|r| (r, m.retries.with_label_values(&[route, r.as_str()])))
                .collect(),
            budget: RetryBudget::default(),
        }
    }

    /// Counts a retry result.
    pub fn retry(&self, r: RetryResult) {
        if let Some((_, c)) = self.retries.iter().find(|(k, _)| *k == r) {
            c.inc();
        }
    }
}

/// The handles of one snapshot's routes, by `Route::index`.
struct ForSnapshot {
    snapshot: Arc<Snapshot>,
    routes: Vec<Arc<RouteHandles>>,
}

/// Every route's handles.
#[derive(Default)]
pub struct RouteStates {
    by_name: Mutex<HashMap<Arc<str>, Arc<RouteHandles>>>,
    current: ArcSwapOption<ForSnapshot>,
}

impl RouteStates {
    /// The handles of `route` in `snap`.
    pub fn get(&self, snap: &Arc<Snapshot>, route: &Route, m: &Metrics) -> Arc<RouteHandles> {
        if let Some(cur) = &*self.current.load() {
            if Arc::ptr_eq(&cur.snapshot, snap) {
                if let Some(h) = cur.routes.get(route.index) {
                    return h.clone();
                }
            }
        }
        // First request on this snapshot: resolve every route's handles once.
        let mut by_name = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes: Vec<(usize, Arc<RouteHandles>)> = snap
            .config
            .routes
            .iter()
            .map(|r| {
                let h = by_name
                    .entry(r.name.clone())
                    .or_insert_with(|| Arc::new(RouteHandles::new(&r.name, m)))
                    .clone();
                (r.index, h)
            })
            .collect();
        routes.sort_by_key(|(i, _)| *i);
        let found = routes
            .iter()
            .find(|(i, _)| *i == route.index)
            .map(|(_, h)| h.clone());
        let dense = routes.iter().enumerate().all(|(pos, (i, _))| pos == *i);
        if dense {
            self.current.store(Some(Arc::new(ForSnapshot {
                snapshot: snap.clone(),
                routes: routes.into_iter().map(|(_, h)| h).collect(),
            })));
        }
        match found {
            Some(h) => h,
            None => by_name
                .entry(route.name.clone())
                .or_insert_with(|| Arc::new(RouteHandles::new(&route.name, m)))
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_allows_min_concurrency_then_a_share() {
        let b = RetryBudget::default();
        // 3 always allowed, even with few requests.
        assert!(b.try_acquire(1, 20, 3));
        assert!(b.try_acquire(1, 20, 3));
        assert!(b.try_acquire(1, 20, 3));
        assert!(!b.try_acquire(1, 20, 3));
        assert_eq!(b.retrying(), 3);
        // 20% of 100 in flight = 20.
        for _ in 3..20 {
            assert!(b.try_acquire(100, 20, 3));
        }
        assert!(!b.try_acquire(100, 20, 3));
        b.release();
        assert!(b.try_acquire(100, 20, 3));
    }

    #[test]
    fn zero_budget_refuses_every_retry() {
        let b = RetryBudget::default();
        assert!(!b.try_acquire(1000, 0, 0));
    }

    #[test]
    fn resolved_series_are_resolved_once_per_key() {
        let r: Resolved<u16, u32> = Resolved::default();
        let mut resolved = 0;
        for status in [200, 200, 404, 200, 404] {
            r.with(
                status,
                || {
                    resolved += 1;
                    u32::from(status)
                },
                |c| assert_eq!(*c, u32::from(status)),
            );
        }
        assert_eq!(resolved, 2);
        // Past the cap every key still gets its series, resolved each time.
        let r: Resolved<usize, usize> = Resolved::default();
        for k in 0..MAX_RESOLVED + 10 {
            r.with(k, || k, |c| assert_eq!(*c, k));
        }
        let mut again = 0;
        r.with(
            MAX_RESOLVED + 5,
            || {
                again += 1;
                0
            },
            |_| {},
        );
        assert_eq!(again, 1);
    }

    #[test]
    fn result_labels_are_unique() {
        let labels: Vec<_> = RetryResult::all().map(|r| r.as_str()).collect();
        let mut dedup = labels.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(labels.len(), dedup.len());
    }
}
