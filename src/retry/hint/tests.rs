use super::*;
use http::HeaderValue;

/// 2015-10-21T07:28:00Z.
const NOW_SECS: u64 = 1_445_412_480;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const MAX: Duration = Duration::from_secs(300);

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            *name,
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    map
}

fn retry_after() -> HintHeader {
    HintHeader::standard("Retry-After").expect("standard")
}

/// PluralKit's declaration.
fn pk_reset() -> HintHeader {
    HintHeader::new("X-RateLimit-Reset", &[HintForm::UnixMillis])
}

// === forms ===

#[test]
fn delta_seconds_form() {
    assert_eq!(
        parse_form(HintForm::DeltaSeconds, b" 7 ", now()),
        Ok(secs(7))
    );
    assert_eq!(parse_form(HintForm::DeltaSeconds, b"0", now()), Ok(secs(0)));
    for bad in [
        &b""[..],
        b"-1",
        b"1.5",
        b"soon",
        b"Wed, 21 Oct 2015 07:28:10 GMT",
    ] {
        assert_eq!(
            parse_form(HintForm::DeltaSeconds, bad, now()),
            Err(RejectReason::Malformed),
            "{:?}",
            bad.escape_ascii()
        );
    }
    // A large number is still a delta: no magnitude guessing.
    assert_eq!(
        parse_form(HintForm::DeltaSeconds, b"1445412540", now()),
        Ok(secs(1_445_412_540))
    );
}

#[test]
fn http_date_form() {
    assert_eq!(
        parse_form(HintForm::HttpDate, b"Wed, 21 Oct 2015 07:28:10 GMT", now()),
        Ok(secs(10))
    );
    assert_eq!(
        parse_form(HintForm::HttpDate, b"Wed, 21 Oct 2015 07:28:00 GMT", now()),
        Ok(secs(0))
    );
    assert_eq!(
        parse_form(HintForm::HttpDate, b"Wed, 21 Oct 2015 07:27:00 GMT", now()),
        Err(RejectReason::InPast)
    );
    assert_eq!(
        parse_form(HintForm::HttpDate, b"120", now()),
        Err(RejectReason::Malformed)
    );
}

#[test]
fn unix_seconds_form() {
    assert_eq!(
        parse_form(HintForm::UnixSeconds, b"1445412540", now()),
        Ok(secs(60))
    );
    assert_eq!(
        parse_form(HintForm::UnixSeconds, b"1445412000", now()),
        Err(RejectReason::InPast)
    );
    // A small number is a time in 1970, not a delta.
    assert_eq!(
        parse_form(HintForm::UnixSeconds, b"30", now()),
        Err(RejectReason::InPast)
    );
    // Huge values saturate instead of panicking.
    assert!(parse_form(HintForm::UnixSeconds, b"99999999999999999999999", now()).is_ok());
}

#[test]
fn unix_millis_form() {
    let v = format!("{}", NOW_SECS * 1000 + 2543);
    assert_eq!(
        parse_form(HintForm::UnixMillis, v.as_bytes(), now()),
        Ok(ms(2543))
    );
    let past = format!("{}", NOW_SECS * 1000 - 1);
    assert_eq!(
        parse_form(HintForm::UnixMillis, past.as_bytes(), now()),
        Err(RejectReason::InPast)
    );
    assert_eq!(
        parse_form(HintForm::UnixMillis, b"1.5e12", now()),
        Err(RejectReason::Malformed)
    );
}

#[test]
fn form_names_round_trip() {
    for f in HintForm::ALL {
        assert_eq!(HintForm::parse(f.as_str()), Some(f));
    }
    assert_eq!(HintForm::parse("seconds"), None);
}

#[test]
fn standard_forms_of_known_headers() {
    assert_eq!(
        retry_after().forms,
        [HintForm::DeltaSeconds, HintForm::HttpDate]
    );
    assert_eq!(
        HintHeader::standard("ratelimit-reset").map(|h| h.forms),
        Some(vec![HintForm::DeltaSeconds])
    );
    assert_eq!(HintHeader::standard("X-Retry-In"), None);
}

// === read_hint ===

#[test]
fn pluralkit_reset_is_unix_millis_not_a_five_minute_lock() {
    // PluralKit's 429: reset 2.5 s from now, in milliseconds since the epoch.
    let h = headers(&[("x-ratelimit-reset", format!("{}", NOW_SECS * 1000 + 2500))]);
    let r = read_hint(&h, &[retry_after(), pk_reset()], None, None, now(), MAX);
    assert_eq!(
        r.hint,
        Some(RetryHint {
            delay: ms(2500),
            source: HintSource::RateLimitReset
        })
    );
    assert!(r.rejected.is_empty());
}

#[test]
fn millis_read_as_seconds_is_rejected_and_body_used() {
    // The old mistake (a schema-1 `X-RateLimit-Reset` read as Unix seconds) cannot produce a
    // long hint: it is beyond the cap, rejected, and the body's own hint is used.
    let h = headers(&[("x-ratelimit-reset", format!("{}", NOW_SECS * 1000 + 2500))]);
    let legacy = HintHeader::standard("X-RateLimit-Reset").expect("standard");
    let r = read_hint(&h, &[legacy], Some("2543"), None, now(), MAX);
    assert_eq!(
        r.hint.map(|h| (h.delay, h.source)),
        Some((ms(2543), HintSource::BodyMillis))
    );
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].reason, RejectReason::BeyondMax);
    assert_eq!(r.rejected[0].name, "X-RateLimit-Reset");
}

#[test]
fn past_reset_is_rejected_and_catalog_default_used() {
    let h = headers(&[("x-ratelimit-reset", format!("{}", NOW_SECS * 1000 - 5000))]);
    let r = read_hint(&h, &[pk_reset()], None, Some(secs(1)), now(), MAX);
    assert_eq!(
        r.hint,
        Some(RetryHint {
            delay: secs(1),
            source: HintSource::CatalogDefault
        })
    );
    assert_eq!(r.rejected[0].reason, RejectReason::InPast);
}

#[test]
fn retry_after_beyond_max_is_rejected() {
    let h = headers(&[("retry-after", "3600".into())]);
    let r = read_hint(&h, &[retry_after()], Some("99999999"), None, now(), MAX);
    assert_eq!(r.hint, None);
    let reasons: Vec<_> = r.rejected.iter().map(|x| (x.source, x.reason)).collect();
    assert_eq!(
        reasons,
        [
            (HintSource::RetryAfterHeader, RejectReason::BeyondMax),
            (HintSource::BodyMillis, RejectReason::BeyondMax)
        ]
    );
    // Exactly the cap is believed.
    let h = headers(&[("retry-after", "300".into())]);
    let r = read_hint(&h, &[retry_after()], None, None, now(), MAX);
    assert_eq!(r.hint.map(|h| h.delay), Some(MAX));
}

#[test]
fn retry_after_date_and_delta_by_syntax() {
    let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT".into())]);
    let r = read_hint(&h, &[retry_after()], None, None, now(), MAX);
    assert_eq!(r.hint.map(|h| h.delay), Some(secs(30)));
    let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT".into())]);
    let r = read_hint(&h, &[retry_after()], None, None, now(), MAX);
    assert_eq!(r.hint, None);
    assert_eq!(r.rejected[0].reason, RejectReason::InPast);
}

#[test]
fn headers_tried_in_catalog_order_and_repeats_in_turn() {
    let h = headers(&[
        ("retry-after", "soon".into()),
        ("retry-after", "6".into()),
        ("ratelimit-reset", "9".into()),
    ]);
    let rl = HintHeader::standard("RateLimit-Reset").expect("standard");
    let r = read_hint(&h, &[retry_after(), rl.clone()], None, None, now(), MAX);
    assert_eq!(r.hint.map(|h| h.delay), Some(secs(6)));
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].reason, RejectReason::Malformed);
    let r = read_hint(&h, &[rl, retry_after()], None, None, now(), MAX);
    assert_eq!(
        r.hint,
        Some(RetryHint {
            delay: secs(9),
            source: HintSource::RateLimitReset
        })
    );
}

#[test]
fn unlisted_headers_are_ignored() {
    let h = headers(&[("retry-after", "4".into())]);
    let r = read_hint(&h, &[pk_reset()], None, None, now(), MAX);
    assert_eq!(r, HintReading::default());
}

#[test]
fn rejected_value_is_bounded() {
    let long = "9".repeat(500);
    let h = headers(&[("retry-after", long)]);
    let r = read_hint(&h, &[retry_after()], None, None, now(), MAX);
    assert_eq!(r.rejected[0].value.len(), REJECTED_VALUE_MAX);
}

#[test]
fn malformed_body_falls_to_catalog_default() {
    let h = HeaderMap::new();
    let r = read_hint(&h, &[retry_after()], Some("-5"), Some(secs(1)), now(), MAX);
    assert_eq!(r.hint.map(|h| h.source), Some(HintSource::CatalogDefault));
    assert_eq!(r.rejected[0].reason, RejectReason::Malformed);
}
