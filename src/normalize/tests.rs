use super::*;
use crate::catalog::load::parse_catalog;

fn vendor(id: &str) -> VendorCatalog {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("catalogs")
        .join(format!("{id}.yaml"));
    let b = std::fs::read(&p).expect("catalog file");
    parse_catalog(&b, &p.display().to_string(), id).expect("valid catalog")
}

/// The proxy's steps (`decide_captured`), the body in 5-byte reads.
fn run(v: &VendorCatalog, status: u16, headers: &HeaderMap, body: &[u8]) -> Verdict {
    let resp = ResponseFacts {
        status,
        headers,
        method: "GET",
        path: "/x",
    };
    decide_captured(
        v,
        &resp,
        body.chunks(5),
        1 << 20,
        SystemTime::UNIX_EPOCH,
        Duration::from_secs(300),
    )
    .into_verdict()
}

fn problem(v: Verdict) -> Problem {
    match v {
        Verdict::Error(p, _) => *p,
        Verdict::Pass => panic!("expected an error"),
    }
}

#[test]
fn in_band_error_inside_200_takes_the_catalog_status() {
    let v = vendor("tencent-im");
    let p = problem(run(
        &v,
        200,
        &HeaderMap::new(),
        r#"{"ActionStatus":"FAIL","ErrorCode":60007,"ErrorInfo":"rest 接口调用频率超过限制"}"#
            .as_bytes(),
    ));
    assert_eq!(p.status, 429);
    assert_eq!(p.code, Code::ResourceExhausted);
    assert!(p.retryable);
    assert!(p.retry_after_ms.is_some(), "catalog default hint");
    let up = p.upstream.expect("upstream");
    assert_eq!(up.status, 200);
    assert_eq!(up.code.as_deref(), Some("60007"));
    assert_eq!(up.message.as_deref(), Some("rest 接口调用频率超过限制"));
}

#[test]
fn in_band_success_passes() {
    let v = vendor("openim");
    assert_eq!(
        run(
            &v,
            200,
            &HeaderMap::new(),
            br#"{"errCode":0,"errMsg":"","data":{}}"#
        ),
        Verdict::Pass
    );
    // Not an error envelope at all.
    assert_eq!(
        run(&v, 200, &HeaderMap::new(), br#"[1,2,3]"#),
        Verdict::Pass
    );
}

#[test]
fn status_vendor_2xx_is_not_an_error_even_with_a_code_field() {
    let v = vendor("pluralkit");
    assert_eq!(
        run(&v, 200, &HeaderMap::new(), br#"{"code":20002}"#),
        Verdict::Pass
    );
}

#[test]
fn body_retry_hint_in_ms_is_exposed_and_capped() {
    let v = vendor("pluralkit");
    let p = problem(run(
        &v,
        429,
        &HeaderMap::new(),
        br#"{"code":0,"message":"429: too many requests","retry_after":2543}"#,
    ));
    assert_eq!(p.retry_after_ms, Some(2543));
    assert_eq!(p.retry_after_secs(), Some(3));
    let mut h = HeaderMap::new();
    h.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("99999"),
    );
    // Beyond retry_after_max: not believed, not capped into a five-minute hint.
    let p = problem(run(&v, 429, &h, br#"{"code":0,"message":"x"}"#));
    assert_eq!(p.retry_after_ms, None);
    let p = problem(run(
        &v,
        429,
        &h,
        br#"{"code":0,"message":"x","retry_after":1200}"#,
    ));
    assert_eq!(p.retry_after_ms, Some(1200));
}

/// PluralKit's full header set, as it sends it on every response (reset in Unix milliseconds).
fn pk_headers(reset_ms: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("x-ratelimit-limit", "10".to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset", reset_ms.to_string()),
        ("x-ratelimit-scope", "generic".to_string()),
    ] {
        h.insert(k, http::HeaderValue::from_str(&v).expect("value"));
    }
    h
}

#[test]
fn pluralkit_reset_header_is_unix_millis() {
    let v = vendor("pluralkit");
    // `now` is the epoch in `run`, so a reset of 2500 is 2.5 s away.
    let p = problem(run(
        &v,
        429,
        &pk_headers(2500),
        br#"{"code":0,"message":"429: too many requests"}"#,
    ));
    assert_eq!(p.retry_after_ms, Some(2500));
    assert_eq!(p.retry_after_secs(), Some(3));
}

#[test]
fn non_retryable_error_takes_no_hint() {
    let v = vendor("pluralkit");
    for (status, body) in [
        (404, &br#"{"code":20002,"message":"Member not found."}"#[..]),
        (
            400,
            br#"{"code":40005,"message":"Switch with provided timestamp already exists."}"#,
        ),
        (
            403,
            br#"{"code":30001,"message":"Unauthorized to view member list"}"#,
        ),
    ] {
        let p = problem(run(&v, status, &pk_headers(2500), body));
        assert!(!p.retryable, "{status}");
        assert_eq!(p.retry_after_ms, None, "{status}");
        assert_eq!(p.retry_after_secs(), None, "{status}");
    }
}

#[test]
fn rejected_hints_are_reported() {
    let v = vendor("pluralkit");
    let body = br#"{"code":0,"message":"429: too many requests","retry_after":900}"#;
    // Ten minutes away: beyond the 300 s cap.
    let h = pk_headers(600_000);
    let resp = ResponseFacts {
        status: 429,
        headers: &h,
        method: "GET",
        path: "/x",
    };
    let decision = decide_captured(
        &v,
        &resp,
        [&body[..]],
        1 << 16,
        SystemTime::UNIX_EPOCH,
        Duration::from_secs(300),
    );
    let Decision::Classified { classified: c, .. } = decision else {
        panic!("429 not classified: {decision:?}");
    };
    match c.verdict {
        Verdict::Error(p, hint) => {
            assert_eq!(p.retry_after_ms, Some(900));
            assert_eq!(
                hint.map(|h| h.source),
                Some(crate::retry::HintSource::BodyMillis)
            );
        }
        Verdict::Pass => panic!("429 passed"),
    }
    assert_eq!(c.rejected_hints.len(), 1);
    assert_eq!(c.rejected_hints[0].name, "X-RateLimit-Reset");
    assert_eq!(
        c.rejected_hints[0].reason,
        crate::retry::RejectReason::BeyondMax
    );
}

#[test]
fn uncataloged_code_keeps_vendor_code_and_derives_from_status() {
    let v = vendor("pluralkit");
    let p = problem(run(
        &v,
        404,
        &HeaderMap::new(),
        br#"{"code":29999,"message":"Nope."}"#,
    ));
    assert_eq!(p.code, Code::NotFound);
    assert_eq!(p.status, 404);
    assert_eq!(p.reason, REASON_UNCATALOGED);
    assert_eq!(
        p.upstream.as_ref().and_then(|u| u.code.as_deref()),
        Some("29999")
    );
    assert_eq!(
        p.upstream.as_ref().and_then(|u| u.message.as_deref()),
        Some("Nope.")
    );
}

#[test]
fn html_error_page_gets_an_answer_from_the_status() {
    let v = vendor("pluralkit");
    let p = problem(run(
        &v,
        502,
        &HeaderMap::new(),
        b"<html><body>502 Bad Gateway</body></html>",
    ));
    assert_eq!(p.code, Code::Unavailable);
    assert_eq!(p.reason, REASON_UPSTREAM_HTTP);
    assert!(p.detail.contains("not JSON"), "{}", p.detail);
    assert_eq!(p.upstream.as_ref().and_then(|u| u.message.as_deref()), None);
}

#[test]
fn field_errors_become_an_array_with_field_names() {
    let v = vendor("pluralkit");
    let p = problem(run(
        &v,
        400,
        &HeaderMap::new(),
        br#"{"code":40001,"message":"Error parsing JSON model","errors":{"name":[{"message":"too long","max_length":100,"actual_length":120}]}}"#,
    ));
    let errs = p.errors.expect("errors");
    assert_eq!(errs[0]["field"], "name");
    assert_eq!(errs[0]["max_length"], 100);
}

#[test]
fn must_hold_only_what_can_be_an_error() {
    let pk = vendor("pluralkit");
    let oi = vendor("openim");
    let json = {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json; charset=utf-8"),
        );
        h
    };
    let png = {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("image/png"),
        );
        h
    };
    assert!(
        !must_hold(&pk, 200, &json, false),
        "status vendors' 2xx stream"
    );
    assert!(must_hold(&pk, 404, &json, false));
    assert!(must_hold(&oi, 200, &json, false));
    assert!(!must_hold(&oi, 200, &png, false));
    assert!(!must_hold(&oi, 204, &json, false));
    assert!(!must_hold(&oi, 200, &json, true), "HEAD has no body");
    assert!(!must_hold(&oi, 302, &json, false));
}

/// Steps, fallback, held and scanned bytes, and verdict of a held response.
type HoldOutcome = (
    Vec<HoldStep>,
    Option<&'static str>,
    usize,
    u64,
    Option<(Verdict, ScanFacts)>,
);

/// Steps, counts and verdict of a held response fed in `chunks`, with or without the early stop
/// at the in-band field.
fn hold_outcome(
    v: &VendorCatalog,
    status: u16,
    encoding: Option<&str>,
    chunks: &[&[u8]],
    early_stop: bool,
) -> HoldOutcome {
    let mut hold = Hold::new(v, status, encoding, 256, ScanLimits::default());
    hold.early_stop = early_stop;
    let mut steps = vec![hold.first_step()];
    for c in chunks {
        if steps.last() != Some(&HoldStep::More) {
            break;
        }
        steps.push(hold.feed(c));
    }
    if steps.last() == Some(&HoldStep::More) {
        hold.end();
    }
    let verdict = (steps.last() != Some(&HoldStep::Release)).then(|| {
        let (classified, facts) = hold.classified(
            "GET",
            "/x",
            &HeaderMap::new(),
            SystemTime::UNIX_EPOCH,
            Duration::from_secs(300),
        );
        (classified.verdict, facts)
    });
    (
        steps,
        hold.fallback(),
        hold.held_bytes(),
        hold.decoded_bytes(),
        verdict,
    )
}

const IN_BAND_BODIES: &[&str] = &[
    r#"{"errCode":0,"errMsg":"","errDlt":"","data":{"userID":"u1001","nickname":"alice"}}"#,
    r#"{"errCode":1501,"errMsg":"token expired","errDlt":": TokenExpired","data":null}"#,
    r#"{"errCode":1501,"errMsg":"token expired"} trailing"#,
    r#"{"errCode":0,"errMsg":"ok"} trailing"#,
    r#"{"errCode":1501,"errMsg":"cut"#,
    r#"{"errCode":0,"errMsg":"x","data":[1,2,{"a":"#,
    r#"{"errMsg":"no code first","errCode":1501,"errDlt":"d"}"#,
    r#"{"errCode":"0","errMsg":""}"#,
    r#"{"errCode":null,"errMsg":"null code"}"#,
    r#"{"errCode":{"nested":1},"errMsg":"object code"}"#,
    r#"{"data":{"errCode":1},"errCode":10001,"errMsg":"dup"}"#,
    r#"[{"errCode":1501}]"#,
    "",
    "not json",
    // Around the success prefix (`InBand::success_prefix`): what it decides alone, and the near
    // misses it leaves to the scanner.
    r#"{"errCode":0}"#,
    "{\"errCode\":0 ,\"errMsg\":\"\"}",
    "{\"errCode\":0\n}",
    r#"{"errCode":0,]"#,
    r#"{"errCode":0,"errCode":1501,"errMsg":"dup"}"#,
    r#"{"errCode":01,"errMsg":"leading zero"}"#,
    r#"{"errCode":0x}"#,
    r#"{"errCode":0.0,"errMsg":""}"#,
    r#"{"errCode":-0,"errMsg":""}"#,
    r#"{"errCode":"0"}"#,
    r#"{"errCode":"0\u0000","errMsg":""}"#,
    r#"{"err\u0043ode":0,"errMsg":"escaped key"}"#,
    r#"{"err\u0043ode":1501,"errMsg":"escaped key"}"#,
    r#" {"errCode":0,"errMsg":"leading space"}"#,
    r#"{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}"#,
    r#"{"ActionStatus":"OK"}"#,
    r#"{"ActionStatus":"OKAY","ErrorCode":0}"#,
    r#"{"ActionStatus":"FAIL","ErrorInfo":"bad","ErrorCode":70001}"#,
    r#"{"success":true,"data":{}}"#,
    r#"{"success":"true"}"#,
    r#"{"success":truex}"#,
    r#"{"success":false,"code":"E1","message":"m"}"#,
    r#"{"errCode":1501,"errMsg":"big","data":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
];

#[test]
fn early_stop_at_the_in_band_field_changes_nothing_but_the_work() {
    for id in ["openim", "tencent-im", "mantago", "pluralkit"] {
        let v = vendor(id);
        for body in IN_BAND_BODIES {
            let body = body.as_bytes();
            for status in [200, 404] {
                for size in [1, 3, 7, 16, 64, 1024] {
                    let chunks: Vec<&[u8]> = body.chunks(size).collect();
                    assert_eq!(
                        hold_outcome(&v, status, None, &chunks, true),
                        hold_outcome(&v, status, None, &chunks, false),
                        "{id} {status} {size} {}",
                        String::from_utf8_lossy(body)
                    );
                }
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn early_stop_is_invisible_for_any_split(
        body in 0..IN_BAND_BODIES.len(),
        cuts in proptest::collection::vec(0usize..400, 0..6),
        status in proptest::sample::select(vec![200u16, 201, 429, 500]),
    ) {
        let v = vendor("openim");
        let body = IN_BAND_BODIES[body].as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([body.len()]) {
            chunks.push(&body[at..c]);
            at = c;
        }
        proptest::prop_assert_eq!(
            hold_outcome(&v, status, None, &chunks, true),
            hold_outcome(&v, status, None, &chunks, false)
        );
    }
}

#[test]
fn a_plain_in_band_success_is_released_from_its_first_bytes_without_a_scan() {
    for (id, body) in [
        (
            "openim",
            r#"{"errCode":0,"errMsg":"","data":{"userID":"u1"}}"#,
        ),
        (
            "tencent-im",
            r#"{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}"#,
        ),
        ("mantago", r#"{"success":true,"data":{}}"#),
    ] {
        let v = vendor(id);
        let mut hold = Hold::new(&v, 200, None, 256, ScanLimits::default());
        assert_eq!(hold.feed(body.as_bytes()), HoldStep::Release, "{id}");
        assert_eq!(hold.decoded_bytes(), body.len() as u64, "{id}");
        let scanned = hold.scan.as_ref().map(|s| s.scanner().bytes_scanned());
        assert_eq!(scanned, Some(0), "{id}: the scanner ran");
        // Split after its first byte, the same body goes through the scanner.
        let mut later = Hold::new(&v, 200, None, 256, ScanLimits::default());
        let (a, b) = body.as_bytes().split_at(1);
        assert_eq!(later.feed(a), HoldStep::More, "{id}");
        assert_eq!(later.feed(b), HoldStep::Release, "{id}");
        let scanned = later.scan.as_ref().map(|s| s.scanner().bytes_scanned());
        assert!(scanned > Some(1), "{id}: {scanned:?}");
    }
}
