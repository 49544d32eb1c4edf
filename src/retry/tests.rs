use super::*;
use http::{HeaderMap, HeaderValue, Method};
use std::time::UNIX_EPOCH;

/// 2015-10-21T07:28:00Z, the date used by MDN's Retry-After examples.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_445_412_480)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        enabled: true,
        max_attempts: 3,
        max_wait: secs(2),
        total_budget: secs(5),
        max_replay_body: DEFAULT_MAX_REPLAY_BODY,
        // Zero jitter so backoff waits are exact.
        backoff: Backoff::try_new(ms(100), secs(1), 0.0).expect("valid backoff"),
        ..RetryPolicy::default()
    }
}

// === parse_retry_after ===

#[test]
fn retry_after_parses_delay_seconds() {
    assert_eq!(parse_retry_after(b"120", now()), Some(secs(120)));
    assert_eq!(parse_retry_after(b"0", now()), Some(Duration::ZERO));
}

#[test]
fn retry_after_trims_whitespace() {
    assert_eq!(parse_retry_after(b"  7\t", now()), Some(secs(7)));
    assert_eq!(
        parse_retry_after(b" Wed, 21 Oct 2015 07:28:10 GMT ", now()),
        Some(secs(10))
    );
}

#[test]
fn retry_after_future_imf_fixdate_is_time_until_it() {
    assert_eq!(
        parse_retry_after(b"Wed, 21 Oct 2015 07:29:30 GMT", now()),
        Some(secs(90))
    );
}

#[test]
fn retry_after_past_date_is_zero() {
    assert_eq!(
        parse_retry_after(b"Wed, 21 Oct 2015 07:27:00 GMT", now()),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after(b"Thu, 01 Jan 1970 00:00:00 GMT", now()),
        Some(Duration::ZERO)
    );
}

#[test]
fn retry_after_accepts_obsolete_rfc850_date() {
    assert_eq!(
        parse_retry_after(b"Wednesday, 21-Oct-15 07:28:30 GMT", now()),
        Some(secs(30))
    );
}

#[test]
fn retry_after_accepts_obsolete_asctime_date() {
    assert_eq!(
        parse_retry_after(b"Wed Oct 21 07:28:45 2015", now()),
        Some(secs(45))
    );
}

#[test]
fn retry_after_rejects_garbage() {
    for bad in [
        &b"soon"[..],
        b"12abc",
        b"1.5",
        b"0x10",
        b"1 2",
        b"Wed, 32 Oct 2015 07:28:00 GMT",
        b"Wed, 21 Oct 2015 07:28:00",
        b"\xff\xfe",
    ] {
        assert_eq!(
            parse_retry_after(bad, now()),
            None,
            "{:?}",
            bad.escape_ascii()
        );
    }
}

#[test]
fn retry_after_rejects_signed_numbers() {
    assert_eq!(parse_retry_after(b"-5", now()), None);
    assert_eq!(parse_retry_after(b"-0", now()), None);
    assert_eq!(parse_retry_after(b"+5", now()), None);
}

#[test]
fn retry_after_rejects_empty() {
    assert_eq!(parse_retry_after(b"", now()), None);
    assert_eq!(parse_retry_after(b"   ", now()), None);
}

#[test]
fn retry_after_huge_number_saturates_without_panic() {
    assert_eq!(
        parse_retry_after(b"18446744073709551615", now()),
        Some(secs(u64::MAX))
    );
    assert_eq!(
        parse_retry_after(b"99999999999999999999999999999999999999", now()),
        Some(secs(u64::MAX))
    );
    // Leading zeros do not count towards overflow.
    assert_eq!(
        parse_retry_after(b"000000000000000000000000000042", now()),
        Some(secs(42))
    );
}

#[test]
fn retry_after_huge_number_is_capped_by_client_hint() {
    let delay = parse_retry_after(b"99999999999999999999", now()).expect("saturated");
    assert_eq!(client_hint(delay, DEFAULT_RETRY_AFTER_MAX), (300_000, 300));
}

#[test]
fn retry_after_handles_now_far_from_date() {
    // A `now` before the Unix epoch and a date far in the future must not panic.
    let before_epoch = UNIX_EPOCH - secs(1_000);
    assert_eq!(
        parse_retry_after(b"Thu, 01 Jan 1970 00:00:10 GMT", before_epoch),
        Some(secs(1_010))
    );
    assert!(parse_retry_after(b"Fri, 31 Dec 9999 23:59:59 GMT", now()).is_some());
}

// === parse_body_millis ===

#[test]
fn body_millis_accepts_integer_and_decimal() {
    assert_eq!(parse_body_millis("2543"), Some(ms(2543)));
    assert_eq!(parse_body_millis(" 0 "), Some(Duration::ZERO));
    assert_eq!(parse_body_millis("1.5"), Some(Duration::from_micros(1_500)));
    // Beyond nanosecond precision is dropped, not rounded into an error.
    assert_eq!(
        parse_body_millis("0.0000019"),
        Some(Duration::from_nanos(1))
    );
}

#[test]
fn body_millis_rejects_negative_and_non_numbers() {
    for bad in [
        "-1", "+1", "1e3", "NaN", "inf", ".5", "5.", "1.2.3", "", "abc", "1 000",
    ] {
        assert_eq!(parse_body_millis(bad), None, "{bad}");
    }
}

#[test]
fn body_millis_huge_saturates_without_panic() {
    assert_eq!(
        parse_body_millis("999999999999999999999999.999"),
        Some(Duration::from_millis(u64::MAX).saturating_add(Duration::from_nanos(999_000)))
    );
}

// === client_hint ===

#[test]
fn client_hint_rounds_seconds_up_to_at_least_one() {
    let max = DEFAULT_RETRY_AFTER_MAX;
    assert_eq!(client_hint(ms(1), max), (1, 1));
    assert_eq!(client_hint(ms(1000), max), (1000, 1));
    assert_eq!(client_hint(ms(1001), max), (1001, 2));
    assert_eq!(client_hint(Duration::ZERO, max), (0, 1));
}

#[test]
fn client_hint_rounds_sub_millisecond_up() {
    assert_eq!(
        client_hint(Duration::from_micros(2_543_001), DEFAULT_RETRY_AFTER_MAX),
        (2544, 3)
    );
}

#[test]
fn client_hint_caps_at_max() {
    assert_eq!(client_hint(secs(3600), secs(300)), (300_000, 300));
    assert_eq!(client_hint(Duration::MAX, Duration::MAX).1, u64::MAX);
    assert_eq!(client_hint(secs(10), ms(1500)), (1500, 2));
}

// === Backoff ===

#[test]
fn backoff_rejects_zero_base() {
    assert_eq!(
        Backoff::try_new(Duration::ZERO, secs(1), 0.5),
        Err(BackoffError::ZeroBase)
    );
}

#[test]
fn backoff_rejects_max_below_base() {
    assert_eq!(
        Backoff::try_new(secs(2), secs(1), 0.5),
        Err(BackoffError::MaxBelowBase {
            base: secs(2),
            max: secs(1)
        })
    );
    assert!(Backoff::try_new(secs(1), secs(1), 0.5).is_ok());
}

#[test]
fn backoff_rejects_jitter_out_of_range() {
    for j in [-0.1, 1.1, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                Backoff::try_new(ms(100), secs(1), j),
                Err(BackoffError::JitterOutOfRange(_))
            ),
            "{j}"
        );
    }
    assert!(Backoff::try_new(ms(100), secs(1), 0.0).is_ok());
    assert!(Backoff::try_new(ms(100), secs(1), 1.0).is_ok());
}

#[test]
fn backoff_error_messages_say_what_to_fix() {
    let e = Backoff::try_new(secs(2), secs(1), 0.5).unwrap_err();
    assert!(e.to_string().contains("at least the base"), "{e}");
}

#[test]
fn backoff_doubles_each_attempt() {
    let b = Backoff::try_new(ms(100), secs(10), 0.0).expect("valid");
    assert_eq!(b.delay(1, 0.5), ms(100));
    assert_eq!(b.delay(2, 0.5), ms(200));
    assert_eq!(b.delay(3, 0.5), ms(400));
    assert_eq!(b.delay(4, 0.5), ms(800));
    // Attempt 0 is treated as the first retry.
    assert_eq!(b.delay(0, 0.5), ms(100));
}

#[test]
fn backoff_caps_at_max() {
    let b = Backoff::try_new(ms(100), ms(500), 0.0).expect("valid");
    assert_eq!(b.delay(4, 0.0), ms(500));
    assert_eq!(b.delay(64, 0.0), ms(500));
    assert_eq!(b.delay(u32::MAX, 0.0), ms(500));
    let huge = Backoff::try_new(secs(1), Duration::MAX, 0.0).expect("valid");
    assert_eq!(huge.delay(40, 0.0), secs(1 << 39));
    assert_eq!(huge.delay(200, 0.0), Duration::MAX);
    assert_eq!(huge.delay(u32::MAX, 0.99), Duration::MAX);
}

#[test]
fn backoff_full_jitter_spans_zero_to_step() {
    let b = Backoff::try_new(ms(100), secs(10), 1.0).expect("valid");
    assert_eq!(b.delay(3, 0.0), Duration::ZERO);
    assert_eq!(b.delay(3, 0.5), ms(200));
    let near_one = b.delay(3, 1.0 - f64::EPSILON);
    assert!(near_one <= ms(400), "{near_one:?}");
    assert!(near_one > ms(399), "{near_one:?}");
}

#[test]
fn backoff_partial_jitter_keeps_lower_bound() {
    let b = Backoff::try_new(secs(1), secs(10), 0.25).expect("valid");
    assert_eq!(b.delay(1, 0.0), ms(750));
    let near_one = b.delay(1, 0.999_999);
    assert!(near_one <= secs(1) && near_one > ms(999), "{near_one:?}");
}

#[test]
fn backoff_clamps_out_of_range_random_values() {
    let b = Backoff::try_new(secs(1), secs(10), 1.0).expect("valid");
    assert_eq!(b.delay(1, -3.0), Duration::ZERO);
    assert_eq!(b.delay(1, f64::NAN), Duration::ZERO);
    assert_eq!(b.delay(1, 7.0), secs(1));
    assert_eq!(b.delay(1, f64::INFINITY), secs(1));
}

#[test]
fn backoff_with_rng_stays_in_bounds() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let b = Backoff::try_new(ms(100), secs(1), 1.0).expect("valid");
    for attempt in 1..=10 {
        let d = b.delay_with_rng(attempt, &mut rng);
        assert!(d < b.step(attempt), "{attempt}: {d:?}");
    }
}

#[test]
fn backoff_default_is_valid() {
    let d = Backoff::default();
    assert_eq!(Backoff::try_new(d.base(), d.max(), d.jitter()), Ok(d));
}

// === is_idempotent ===

#[test]
fn idempotent_methods_are_idempotent() {
    let h = HeaderMap::new();
    for m in [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
        Method::TRACE,
    ] {
        assert!(is_idempotent(&m, &h), "{m}");
    }
}

#[test]
fn post_and_patch_are_not_idempotent() {
    let h = HeaderMap::new();
    assert!(!is_idempotent(&Method::POST, &h));
    assert!(!is_idempotent(&Method::PATCH, &h));
    assert!(!is_idempotent(&Method::CONNECT, &h));
    let custom = Method::from_bytes(b"PURGE").expect("valid method");
    assert!(!is_idempotent(&custom, &h));
}

#[test]
fn idempotency_key_makes_any_request_idempotent() {
    let h = headers(&[("Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324")]);
    assert!(is_idempotent(&Method::POST, &h));
    assert!(is_idempotent(&Method::PATCH, &h));
}

// === decide ===

fn retry_after_failure(hint: Option<Duration>, elapsed: Duration) -> RetryDecision {
    decide(&policy(), 1, true, true, true, hint, elapsed, 0.5)
}

#[test]
fn decide_gives_up_when_disabled() {
    let p = RetryPolicy {
        enabled: false,
        ..policy()
    };
    assert_eq!(
        decide(&p, 1, true, true, true, None, Duration::ZERO, 0.5),
        RetryDecision::GiveUp(GiveUpReason::Disabled)
    );
}

#[test]
fn decide_gives_up_on_non_retryable_error() {
    assert_eq!(
        decide(&policy(), 1, false, true, true, None, Duration::ZERO, 0.5),
        RetryDecision::GiveUp(GiveUpReason::NotRetryable)
    );
}

#[test]
fn decide_gives_up_on_non_idempotent_request() {
    assert_eq!(
        decide(&policy(), 1, true, false, true, None, Duration::ZERO, 0.5),
        RetryDecision::GiveUp(GiveUpReason::NotIdempotent)
    );
}

#[test]
fn decide_gives_up_when_body_not_replayable() {
    assert_eq!(
        decide(&policy(), 1, true, true, false, None, Duration::ZERO, 0.5),
        RetryDecision::GiveUp(GiveUpReason::BodyTooLarge)
    );
}

#[test]
fn decide_gives_up_when_attempts_exhausted() {
    // max_attempts = 3: attempts 1 and 2 may retry, attempt 3 is the last.
    assert!(matches!(
        decide(&policy(), 2, true, true, true, None, Duration::ZERO, 0.5),
        RetryDecision::Retry { .. }
    ));
    assert_eq!(
        decide(&policy(), 3, true, true, true, None, Duration::ZERO, 0.5),
        RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
    );
    let default = RetryPolicy::default();
    assert_eq!(
        decide(&default, 2, true, true, true, None, Duration::ZERO, 0.5),
        RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
    );
}

#[test]
fn decide_gives_up_when_hint_exceeds_max_wait() {
    assert_eq!(
        retry_after_failure(Some(ms(2001)), Duration::ZERO),
        RetryDecision::GiveUp(GiveUpReason::HintTooLong)
    );
    assert_eq!(
        retry_after_failure(Some(secs(2)), Duration::ZERO),
        RetryDecision::Retry { wait: secs(2) }
    );
}

#[test]
fn decide_gives_up_when_budget_exhausted() {
    assert_eq!(
        retry_after_failure(Some(secs(1)), ms(4001)),
        RetryDecision::GiveUp(GiveUpReason::BudgetExhausted)
    );
    assert_eq!(
        retry_after_failure(Some(secs(1)), secs(4)),
        RetryDecision::Retry { wait: secs(1) }
    );
    // Backoff waits count against the budget too (attempt 1 backoff = 100 ms).
    assert_eq!(
        retry_after_failure(None, ms(4901)),
        RetryDecision::GiveUp(GiveUpReason::BudgetExhausted)
    );
    // Elapsed near Duration::MAX saturates instead of overflowing.
    assert_eq!(
        retry_after_failure(Some(secs(1)), Duration::MAX),
        RetryDecision::GiveUp(GiveUpReason::BudgetExhausted)
    );
}

#[test]
fn decide_retries_after_hint() {
    assert_eq!(
        retry_after_failure(Some(ms(1500)), Duration::ZERO),
        RetryDecision::Retry { wait: ms(1500) }
    );
    assert_eq!(
        retry_after_failure(Some(Duration::ZERO), Duration::ZERO),
        RetryDecision::Retry {
            wait: Duration::ZERO
        }
    );
}

#[test]
fn decide_retries_after_backoff_without_hint() {
    assert_eq!(
        decide(&policy(), 1, true, true, true, None, Duration::ZERO, 0.5),
        RetryDecision::Retry { wait: ms(100) }
    );
    assert_eq!(
        decide(&policy(), 2, true, true, true, None, Duration::ZERO, 0.5),
        RetryDecision::Retry { wait: ms(200) }
    );
}

#[test]
fn decide_cuts_backoff_to_max_wait() {
    let p = RetryPolicy {
        max_attempts: 10,
        max_wait: ms(300),
        ..policy()
    };
    assert_eq!(
        decide(&p, 5, true, true, true, None, Duration::ZERO, 0.5),
        RetryDecision::Retry { wait: ms(300) }
    );
}

#[test]
fn default_policy_matches_documented_defaults() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_attempts, 2);
    assert_eq!(p.max_wait, secs(2));
    assert_eq!(p.total_budget, secs(5));
    assert_eq!(p.max_replay_body, 64 * 1024);
    assert_eq!(p.backoff, Backoff::default());
}

#[test]
fn give_up_labels_are_distinct() {
    let labels: std::collections::HashSet<_> =
        GiveUpReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), GiveUpReason::ALL.len());
    assert_eq!(GiveUpReason::HintTooLong.to_string(), "hint_too_long");
}
