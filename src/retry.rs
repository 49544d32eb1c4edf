//! Retry hints, backoff and the retry decision.
//!
//! Everything here is pure: no sockets, no filesystem and no clock reads. Wall-clock time
//! (`SystemTime`, needed only to turn HTTP-dates and Unix timestamps into delays) and elapsed
//! time are passed in by the caller, and so is the random number used for jitter.
//!
//! Invariants:
//! - Parsers never panic and never return an error: a malformed hint is logged at `debug` and
//!   ignored (`None`).
//! - A [`RetryHint`] carries the *uncapped* delay the vendor asked for; each consumer (the
//!   cooldown table, the `Retry-After` echoed to the client, [`decide`]) applies its own cap.
//! - All duration arithmetic saturates; huge inputs never overflow.
//!
//! The per-key "hold back until T" table lives in [`cooldown`].
#![forbid(unsafe_code)]

use std::fmt;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method};

pub mod cooldown;
pub mod hint;

pub use hint::{read_hint, HintForm, HintHeader, HintReading, RejectReason, RejectedHint};

#[cfg(test)]
mod tests;

/// Cap applied to a vendor hint before it is echoed to the client or used for a cooldown.
///
/// Why: a broken or hostile upstream can send `Retry-After: 99999999`; five minutes is long
/// enough for any real rate-limit window and short enough to recover from a bogus hint.
pub const DEFAULT_RETRY_AFTER_MAX: Duration = Duration::from_secs(5 * 60);

/// Whether retries are on for a route that does not say.
///
/// Why: only idempotent requests with a replayable body are retried, within a small attempt
/// count and time budget, so the default is safe to leave on.
pub const DEFAULT_RETRY_ENABLED: bool = true;

/// Attempts in all (the first try included) for a route that does not say.
///
/// Why: one retry absorbs most transient blips without multiplying load on a struggling vendor.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;

/// Longest single wait before a retry; a vendor hint longer than this makes us give up.
///
/// Why: holding a client connection longer than a couple of seconds is worse than telling the
/// client when to come back.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(2);

/// Total time budget for one request, measured from its first attempt, that a retry must fit in.
///
/// Why: bounds the latency a retry can add, so callers' own timeouts stay meaningful.
pub const DEFAULT_TOTAL_BUDGET: Duration = Duration::from_secs(5);

/// Largest request body kept in memory so it can be replayed on a retry.
///
/// Why: typical API calls are well under this; larger uploads are not worth buffering per request.
pub const DEFAULT_MAX_REPLAY_BODY: usize = 64 * 1024;

/// First backoff step (before jitter).
///
/// Why: long enough to let a connection reset or a brief overload pass, short enough to be
/// invisible to most callers.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(100);

/// Share of a route's requests in flight that may be in a retry at once, in percent.
///
/// Why: Envoy's retry budget default; a vendor outage can add at most a fifth to the load
/// errgate sends it, instead of doubling it.
pub const DEFAULT_BUDGET_PERCENT: u32 = 20;

/// Retries in flight a route may always have, whatever the share allows.
///
/// Why: Envoy's `min_retry_concurrency` default; at low traffic a share of a few requests
/// rounds to zero and would forbid every retry.
pub const DEFAULT_BUDGET_MIN_CONCURRENCY: u32 = 3;

/// Largest backoff step (before jitter).
///
/// Why: equal to [`DEFAULT_MAX_WAIT`]; a longer step would only be cut by it.
pub const DEFAULT_BACKOFF_MAX: Duration = DEFAULT_MAX_WAIT;

/// Fraction of each backoff step that is randomised (1.0 = "full jitter").
///
/// Why: full jitter spreads retries from many clients best (AWS architecture blog, "Exponential
/// Backoff And Jitter").
pub const DEFAULT_BACKOFF_JITTER: f64 = 1.0;

/// How many bytes of a malformed value are quoted in the debug log.
///
/// Why: enough to recognise the value, bounded so a huge header cannot flood the log.
const LOG_VALUE_MAX: usize = 64;

/// Header that marks any request as safe to retry (draft-ietf-httpapi-idempotency-key-header).
const IDEMPOTENCY_KEY: &str = "idempotency-key";

const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;

// === Hints ===

/// Where a hint came from (closed set; used as a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HintSource {
    /// The `Retry-After` response header.
    RetryAfterHeader,
    /// Any other listed header (`RateLimit-Reset`, `X-RateLimit-Reset`, in its declared form).
    RateLimitReset,
    /// A milliseconds value found in the response body (e.g. PluralKit's `retry_after`).
    BodyMillis,
    /// The default delay of the matched catalog entry.
    CatalogDefault,
}

impl HintSource {
    /// Every variant, for registering metric label values up front.
    pub const ALL: [HintSource; 4] = [
        HintSource::RetryAfterHeader,
        HintSource::RateLimitReset,
        HintSource::BodyMillis,
        HintSource::CatalogDefault,
    ];

    /// Stable snake_case label value for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            HintSource::RetryAfterHeader => "retry_after_header",
            HintSource::RateLimitReset => "rate_limit_reset",
            HintSource::BodyMillis => "body_millis",
            HintSource::CatalogDefault => "catalog_default",
        }
    }
}

impl fmt::Display for HintSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A retry hint for one response: how long the vendor asked us to wait, and where that came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryHint {
    /// The delay as the vendor gave it, uncapped; each consumer applies its own cap.
    pub delay: Duration,
    /// Where the delay came from.
    pub source: HintSource,
}

/// Parse `Retry-After`: delay-seconds (non-negative integer, whitespace trimmed) or HTTP-date
/// (IMF-fixdate and the two obsolete formats httpdate supports, RFC 850 and asctime); a past
/// date => `Duration::ZERO`.
///
/// Delay-seconds too large for a `u64` saturate. Malformed (empty, negative, signed, fractional,
/// not a date) => `None` with a `log::debug` line, never an error. The result is uncapped.
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let trimmed = value.trim_ascii();
    if let Some(secs) = parse_digits_saturating(trimmed) {
        return Some(Duration::from_secs(secs));
    }
    let date = std::str::from_utf8(trimmed)
        .ok()
        .and_then(|s| httpdate::parse_http_date(s).ok());
    match date {
        Some(at) => Some(until(at, now)),
        None => {
            log_malformed("retry-after", value);
            None
        }
    }
}

/// Parse a body's milliseconds value (e.g. PluralKit's `retry_after`) given as the literal number
/// text: a non-negative integer or decimal (`1500`, `1500.25`), whitespace trimmed.
///
/// Signs, exponents, `NaN`/`inf` and anything else => `None` with a `log::debug` line. Digits past
/// nanosecond precision are dropped; huge values saturate.
pub fn parse_body_millis(text: &str) -> Option<Duration> {
    let text = text.trim().as_bytes();
    let (int_part, frac_part) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
        None => (text, None),
    };
    let Some(millis) = parse_digits_saturating(int_part) else {
        log_malformed("body-millis", text);
        return None;
    };
    let mut nanos: u32 = 0;
    if let Some(frac) = frac_part {
        if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
            log_malformed("body-millis", text);
            return None;
        }
        // Six fractional digits of a millisecond are nanoseconds; pad or truncate to six.
        let mut scale = 100_000;
        for &d in frac.iter().take(6) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
        }
    }
    Some(Duration::from_millis(millis).saturating_add(Duration::from_nanos(u64::from(nanos))))
}

/// What the client is told, from a hint's delay: `(retry_after_ms, retry_after_secs)`.
///
/// The delay is first capped at `max`. Milliseconds are rounded up (a client told too little
/// retries too early); seconds (for the `Retry-After` header) are rounded up to whole seconds and
/// are at least 1, since `Retry-After: 0` invites an immediate retry. Both saturate at `u64::MAX`.
/// Because of the rounding, the seconds can exceed `max` by less than one second.
pub fn client_hint(delay: Duration, max: Duration) -> (u64, u64) {
    let nanos = delay.min(max).as_nanos();
    let ms = saturating_u64(nanos.div_ceil(NANOS_PER_MILLI));
    let secs = saturating_u64(nanos.div_ceil(NANOS_PER_SEC)).max(1);
    (ms, secs)
}

// === Backoff ===

/// Why a [`Backoff`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BackoffError {
    /// `base` was zero.
    ZeroBase,
    /// `max` was below `base`.
    MaxBelowBase {
        /// The rejected base.
        base: Duration,
        /// The rejected max.
        max: Duration,
    },
    /// `jitter` was outside `0.0..=1.0` (or NaN).
    JitterOutOfRange(f64),
}

impl fmt::Display for BackoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackoffError::ZeroBase => f.write_str("backoff base must be greater than zero"),
            BackoffError::MaxBelowBase { base, max } => write!(
                f,
                "backoff max ({max:?}) must be at least the base ({base:?}); raise max or lower base"
            ),
            BackoffError::JitterOutOfRange(j) => {
                write!(f, "backoff jitter ({j}) must be between 0.0 and 1.0")
            }
        }
    }
}

impl std::error::Error for BackoffError {}

/// Exponential backoff with full jitter; validated constructor.
///
/// Step `n` (1-based) is `min(max, base * 2^(n-1))`; the delay is that step scaled by
/// `(1 - jitter) + jitter * r` for a random `r` in `[0, 1)`. With `jitter = 1` this is "full
/// jitter" (uniform in `[0, step)`); with `jitter = 0` it is the step itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: f64,
}

// === impl Backoff ===

impl Backoff {
    /// Build a backoff: `base > 0`, `max >= base`, `jitter` in `[0, 1]`.
    pub fn try_new(base: Duration, max: Duration, jitter: f64) -> Result<Self, BackoffError> {
        if base.is_zero() {
            return Err(BackoffError::ZeroBase);
        }
        if max < base {
            return Err(BackoffError::MaxBelowBase { base, max });
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(BackoffError::JitterOutOfRange(jitter));
        }
        Ok(Self { base, max, jitter })
    }

    /// The first step.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest step.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The randomised fraction of each step, in `[0, 1]`.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The step before jitter for retry number `attempt` (1-based; 0 is treated as 1):
    /// `min(max, base * 2^(attempt-1))`, saturating.
    pub fn step(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1);
        // In u128 nanoseconds: 2^exp overflows only past exp = 127, and then the step is `max`.
        let Some(factor) = 1u128.checked_shl(exp) else {
            return self.max;
        };
        let nanos = self.base.as_nanos().saturating_mul(factor);
        if nanos >= self.max.as_nanos() {
            self.max
        } else {
            duration_from_nanos(nanos)
        }
    }

    /// Delay before retry number `attempt` (1-based): `min(max, base*2^(attempt-1))` scaled by
    /// jitter using the provided rng value `r` in `[0, 1)`.
    ///
    /// `r` is clamped into `[0, 1]` and NaN counts as 0, so the result is always in
    /// `[(1 - jitter) * step, step]` and never above `max`.
    pub fn delay(&self, attempt: u32, r: f64) -> Duration {
        let r = if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
        let factor = ((1.0 - self.jitter) + self.jitter * r).clamp(0.0, 1.0);
        scale(self.step(attempt), factor)
    }

    /// [`Backoff::delay`] with `r` drawn from `rng`.
    pub fn delay_with_rng<R: rand::Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        self.delay(attempt, rng.gen::<f64>())
    }
}

impl Default for Backoff {
    /// [`DEFAULT_BACKOFF_BASE`], [`DEFAULT_BACKOFF_MAX`], [`DEFAULT_BACKOFF_JITTER`].
    fn default() -> Self {
        Self {
            base: DEFAULT_BACKOFF_BASE,
            max: DEFAULT_BACKOFF_MAX,
            jitter: DEFAULT_BACKOFF_JITTER,
        }
    }
}

// === Policy ===

/// Retry policy for one route.
///
/// Defaults: enabled ([`DEFAULT_RETRY_ENABLED`]), [`DEFAULT_MAX_ATTEMPTS`] = 2 attempts in all,
/// [`DEFAULT_MAX_WAIT`] = 2 s per wait, [`DEFAULT_TOTAL_BUDGET`] = 5 s in total,
/// [`DEFAULT_MAX_REPLAY_BODY`] = 64 KiB, and [`Backoff::default`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Whether this route retries at all.
    pub enabled: bool,
    /// Attempts in all, the first one included; `1` (or `0`) means never retry.
    pub max_attempts: u32,
    /// Longest single wait; a vendor hint longer than this gives up, a backoff step is cut to it.
    pub max_wait: Duration,
    /// Elapsed time since the first attempt plus the next wait must not exceed this.
    pub total_budget: Duration,
    /// Largest request body, in bytes, kept for replay; larger bodies are not retried.
    pub max_replay_body: usize,
    /// Backoff used when the vendor gave no hint.
    pub backoff: Backoff,
    /// Share of the route's requests in flight that may be in a retry at once, in percent.
    pub budget_percent: u32,
    /// Retries in flight always allowed, whatever the share says.
    pub budget_min_concurrency: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_RETRY_ENABLED,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_wait: DEFAULT_MAX_WAIT,
            total_budget: DEFAULT_TOTAL_BUDGET,
            max_replay_body: DEFAULT_MAX_REPLAY_BODY,
            backoff: Backoff::default(),
            budget_percent: DEFAULT_BUDGET_PERCENT,
            budget_min_concurrency: DEFAULT_BUDGET_MIN_CONCURRENCY,
        }
    }
}

/// Is this request idempotent: GET, HEAD, OPTIONS, PUT, DELETE (and TRACE), or any request with
/// an `Idempotency-Key` header.
pub fn is_idempotent(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    ) || headers.contains_key(IDEMPOTENCY_KEY)
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry after waiting `wait`.
    Retry {
        /// How long to wait before the next attempt.
        wait: Duration,
    },
    /// Do not retry; pass the error to the client.
    GiveUp(GiveUpReason),
}

/// Why [`decide`] gave up (closed set; used as a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GiveUpReason {
    /// The canonical error is not one that a retry can fix.
    NotRetryable,
    /// The request is not idempotent, so replaying it could apply it twice.
    NotIdempotent,
    /// The policy's attempt count is used up.
    AttemptsExhausted,
    /// The vendor asked us to wait longer than the policy's `max_wait`.
    HintTooLong,
    /// The wait would take the request past the policy's `total_budget`.
    BudgetExhausted,
    /// The request body was too large to keep for replay.
    BodyTooLarge,
    /// Retries are off for this route.
    Disabled,
}

impl GiveUpReason {
    /// Every variant, for registering metric label values up front.
    pub const ALL: [GiveUpReason; 7] = [
        GiveUpReason::NotRetryable,
        GiveUpReason::NotIdempotent,
        GiveUpReason::AttemptsExhausted,
        GiveUpReason::HintTooLong,
        GiveUpReason::BudgetExhausted,
        GiveUpReason::BodyTooLarge,
        GiveUpReason::Disabled,
    ];

    /// Stable snake_case label value for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::NotRetryable => "not_retryable",
            GiveUpReason::NotIdempotent => "not_idempotent",
            GiveUpReason::AttemptsExhausted => "attempts_exhausted",
            GiveUpReason::HintTooLong => "hint_too_long",
            GiveUpReason::BudgetExhausted => "budget_exhausted",
            GiveUpReason::BodyTooLarge => "body_too_large",
            GiveUpReason::Disabled => "disabled",
        }
    }
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Pure decision for "attempt `attempt` (1-based) just failed with a canonical error".
///
/// Checks, in order (the first that fails is the reason given):
/// 1. `policy.enabled`, else [`GiveUpReason::Disabled`];
/// 2. `retryable` (the canonical error can be fixed by retrying), else `NotRetryable`;
/// 3. `idempotent` (see [`is_idempotent`]), else `NotIdempotent`;
/// 4. `body_replayable` (the body fit in `max_replay_body`), else `BodyTooLarge`;
/// 5. `attempt < policy.max_attempts`, else `AttemptsExhausted`;
/// 6. the wait: the `hint` if present (a hint above `max_wait` gives `HintTooLong`), else
///    `policy.backoff.delay(attempt, r)` cut to `max_wait`;
/// 7. `elapsed + wait <= total_budget`, else `BudgetExhausted`.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    retryable: bool,
    idempotent: bool,
    body_replayable: bool,
    hint: Option<Duration>,
    elapsed: Duration,
    r: f64,
) -> RetryDecision {
    use GiveUpReason::*;
    let give_up = RetryDecision::GiveUp;
    if !policy.enabled {
        return give_up(Disabled);
    }
    if !retryable {
        return give_up(NotRetryable);
    }
    if !idempotent {
        return give_up(NotIdempotent);
    }
    if !body_replayable {
        return give_up(BodyTooLarge);
    }
    if attempt >= policy.max_attempts {
        return give_up(AttemptsExhausted);
    }
    let wait = match hint {
        Some(h) if h > policy.max_wait => return give_up(HintTooLong),
        Some(h) => h,
        None => policy.backoff.delay(attempt, r).min(policy.max_wait),
    };
    if elapsed.saturating_add(wait) > policy.total_budget {
        return give_up(BudgetExhausted);
    }
    RetryDecision::Retry { wait }
}

// === helpers ===

/// A non-empty run of ASCII digits as a `u64`, saturating at `u64::MAX`; anything else => `None`.
fn parse_digits_saturating(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Time from `now` until `at`, zero if `at` is in the past.
fn until(at: SystemTime, now: SystemTime) -> Duration {
    at.duration_since(now).unwrap_or(Duration::ZERO)
}

/// `d * factor` for `factor` in `[0, 1]`, in 32.32 fixed point so it is exact enough and cannot
/// overflow or panic (unlike `Duration::mul_f64` near `Duration::MAX`).
fn scale(d: Duration, factor: f64) -> Duration {
    const ONE: f64 = (1u64 << 32) as f64;
    // `factor` is in [0, 1], so this is in [0, 2^32]; `as` saturates anyway.
    let fixed = (factor * ONE) as u128;
    // At most ~1.8e28 * 2^32 < 2^128: no overflow even for `Duration::MAX`.
    duration_from_nanos(d.as_nanos().saturating_mul(fixed) >> 32)
}

/// A `u128` nanosecond count as a `Duration`, saturating at `Duration::MAX`.
fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = nanos / NANOS_PER_SEC;
    if secs > u128::from(u64::MAX) {
        return Duration::MAX;
    }
    // `secs` fits a u64 (checked above) and the remainder is < 1e9, which fits a u32.
    Duration::new(secs as u64, (nanos % NANOS_PER_SEC) as u32)
}

fn saturating_u64(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn log_malformed(what: &str, value: &[u8]) {
    let shown = &value[..value.len().min(LOG_VALUE_MAX)];
    log::debug!(
        "hint={what} value=\"{}\" len={} Ignored a malformed retry hint.",
        shown.escape_ascii(),
        value.len()
    );
}
