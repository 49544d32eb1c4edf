//! The normalizer: `classify` on realistic facts for every shipped vendor, and the whole held-body
//! path of a small error (`normalize::decide_captured`: the steps the proxy runs
//! in `proxy/body.rs` and `errgate normalize` runs).
//!
//! `cargo bench --bench normalize` (add `-- --quick` for a fast run).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use errgate::catalog::{load_catalogs, CatalogSet};
use errgate::normalize::{classify, decide_captured, BodyState, ResponseFacts, ScanFacts, Verdict};
use http::{HeaderMap, HeaderValue};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The default `hold_max_bytes`.
const HOLD_MAX: usize = errgate::config::DEFAULT_HOLD_MAX_BYTES as usize;
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

/// One realistic vendor response.
struct Case {
    name: &'static str,
    vendor: &'static str,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    method: &'static str,
    path: &'static str,
    body: &'static str,
    /// What the scanner would capture from `body`.
    facts: ScanFacts,
    /// Whether `classify` must answer an error.
    error: bool,
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "pluralkit_404_member_not_found",
            vendor: "pluralkit",
            status: 404,
            headers: &[("content-type", "application/json")],
            method: "GET",
            path: "/members/abcde",
            body: r#"{"code":20002,"message":"Member not found."}"#,
            facts: ScanFacts {
                code: s("20002"),
                message: s("Member not found."),
                ..Default::default()
            },
            error: true,
        },
        Case {
            name: "pluralkit_429_rate_limited",
            vendor: "pluralkit",
            status: 429,
            headers: &[
                ("content-type", "application/json"),
                ("x-ratelimit-reset", "1700000001"),
            ],
            method: "GET",
            path: "/systems/@me",
            body: r#"{"message":"429: too many requests","retry_after":1250,"scope":"generic","code":0}"#,
            facts: ScanFacts {
                code: s("0"),
                message: s("429: too many requests"),
                retry_after_ms: s("1250"),
                ..Default::default()
            },
            error: true,
        },
        Case {
            name: "pluralkit_400_json_model_errors",
            vendor: "pluralkit",
            status: 400,
            headers: &[("content-type", "application/json")],
            method: "PATCH",
            path: "/members/abcde",
            body: r#"{"code":40001,"message":"Error while parsing JSON model!","errors":{"name":[{"message":"Member name too long (101 > 100 characters).","max_length":100,"actual_length":101}]}}"#,
            facts: ScanFacts {
                code: s("40001"),
                message: s("Error while parsing JSON model!"),
                errors: Some(
                    br#"{"name":[{"message":"Member name too long (101 > 100 characters).","max_length":100,"actual_length":101}]}"#
                        .to_vec(),
                ),
                ..Default::default()
            },
            error: true,
        },
        Case {
            name: "openim_200_token_expired",
            vendor: "openim",
            status: 200,
            headers: &[("content-type", "application/json")],
            method: "POST",
            path: "/user/get_users_info",
            body: r#"{"errCode":1501,"errMsg":"TokenExpiredError","errDlt":": token expired at 2024-01-01 00:00:00"}"#,
            facts: ScanFacts {
                code: s("1501"),
                message: s("TokenExpiredError"),
                detail: s(": token expired at 2024-01-01 00:00:00"),
                in_band: s("1501"),
                ..Default::default()
            },
            error: true,
        },
        Case {
            name: "openim_200_success",
            vendor: "openim",
            status: 200,
            headers: &[("content-type", "application/json")],
            method: "POST",
            path: "/user/get_users_info",
            body: r#"{"errCode":0,"errMsg":"","errDlt":"","data":{"users":[{"userID":"u1001","nickname":"alice","faceURL":"","ex":"","createTime":1700000000000}]}}"#,
            facts: ScanFacts {
                code: s("0"),
                message: s(""),
                detail: s(""),
                in_band: s("0"),
                ..Default::default()
            },
            error: false,
        },
        Case {
            name: "mantago_200_token_invalid",
            vendor: "mantago",
            status: 200,
            headers: &[("content-type", "application/json")],
            method: "POST",
            path: "/openapi/v1/bot/message",
            body: r#"{"success":false,"errResponse":{"message":"Token is invalid or expired","code":1004,"botId":"bot-123"}}"#,
            facts: ScanFacts {
                code: s("1004"),
                message: s("Token is invalid or expired"),
                in_band: s("false"),
                ..Default::default()
            },
            error: true,
        },
        Case {
            name: "tencent_im_200_rate_limited",
            vendor: "tencent-im",
            status: 200,
            headers: &[("content-type", "application/json")],
            method: "POST",
            path: "/v4/openim/sendmsg",
            body: r#"{"ActionStatus":"FAIL","ErrorCode":60007,"ErrorInfo":"rest 接口调用频率超过限制，请降低请求频率 。"}"#,
            facts: ScanFacts {
                code: s("60007"),
                message: s("rest 接口调用频率超过限制，请降低请求频率 。"),
                in_band: s("FAIL"),
                ..Default::default()
            },
            error: true,
        },
        Case {
            name: "microcms_400_limit_by_endpoint_and_message",
            vendor: "microcms",
            status: 400,
            headers: &[("content-type", "application/json")],
            method: "GET",
            path: "/api/v1/contents/blogs",
            body: r#"{"message":"Limit: must be no less than 0."}"#,
            facts: ScanFacts {
                message: s("Limit: must be no less than 0."),
                ..Default::default()
            },
            error: true,
        },
        Case {
            name: "microcms_404_status_only",
            vendor: "microcms",
            status: 404,
            headers: &[("content-type", "application/json")],
            method: "GET",
            path: "/api/v1/contents/nope",
            body: r#"{"message":"Not Found"}"#,
            facts: ScanFacts {
                message: s("Not Found"),
                ..Default::default()
            },
            error: true,
        },
        Case {
            name: "pluralkit_404_uncataloged",
            vendor: "pluralkit",
            status: 404,
            headers: &[("content-type", "application/json")],
            method: "GET",
            path: "/groups/zzzzz",
            body: r#"{"code":29999,"message":"Something new not found."}"#,
            facts: ScanFacts {
                code: s("29999"),
                message: s("Something new not found."),
                ..Default::default()
            },
            error: true,
        },
    ]
}

fn catalogs() -> CatalogSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalogs");
    load_catalogs(&dir, SystemTime::now()).expect("the repo's catalogs load")
}

fn headers(c: &Case) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in c.headers {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

/// `classify` alone, on the facts the scanner would have produced.
fn bench_classify(cr: &mut Criterion) {
    let set = catalogs();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut g = cr.benchmark_group("classify");
    g.throughput(Throughput::Elements(1));
    for c in cases() {
        let vendor = set.vendor(c.vendor).expect("vendor in catalogs");
        let h = headers(&c);
        let facts = ScanFacts {
            body: Some(BodyState::Complete),
            ..c.facts.clone()
        };
        let rf = ResponseFacts {
            status: c.status,
            headers: &h,
            method: c.method,
            path: c.path,
        };
        let v = classify(vendor, &rf, &facts, now, RETRY_AFTER_MAX);
        assert_eq!(
            matches!(v, Verdict::Error(..)),
            c.error,
            "{}: unexpected verdict {v:?}",
            c.name
        );
        g.bench_function(BenchmarkId::from_parameter(c.name), |b| {
            b.iter(|| {
                classify(
                    vendor,
                    black_box(&rf),
                    black_box(&facts),
                    now,
                    RETRY_AFTER_MAX,
                )
            })
        });
    }
    g.finish();
}

/// The proxy's held-body path on a small body, in one chunk: `normalize::decide_captured`,
/// the steps the proxy runs (`must_hold`, `Hold` with the default scan limits, feed, end,
/// classify).
fn held_path(
    vendor: &errgate::catalog::VendorCatalog,
    c: &Case,
    h: &HeaderMap,
    now: SystemTime,
) -> Verdict {
    let resp = ResponseFacts {
        status: c.status,
        headers: h,
        method: c.method,
        path: c.path,
    };
    decide_captured(
        vendor,
        &resp,
        [c.body.as_bytes()],
        HOLD_MAX,
        now,
        RETRY_AFTER_MAX,
    )
    .into_verdict()
}

fn bench_held(cr: &mut Criterion) {
    let set = catalogs();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut g = cr.benchmark_group("held_body");
    for c in cases() {
        let vendor = set.vendor(c.vendor).expect("vendor in catalogs");
        let h = headers(&c);
        let v = held_path(vendor, &c, &h, now);
        assert_eq!(
            matches!(v, Verdict::Error(..)),
            c.error,
            "{}: unexpected verdict {v:?}",
            c.name
        );
        g.throughput(Throughput::Bytes(c.body.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(c.name), |b| {
            b.iter(|| held_path(vendor, black_box(&c), &h, now))
        });
    }
    g.finish();
}

/// The problem+json rendering that follows an error verdict (what the client receives).
fn bench_render(cr: &mut Criterion) {
    let set = catalogs();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut g = cr.benchmark_group("render");
    g.throughput(Throughput::Elements(1));
    for c in cases().into_iter().filter(|c| c.error).take(3) {
        let vendor = set.vendor(c.vendor).expect("vendor in catalogs");
        let h = headers(&c);
        let Verdict::Error(p, _) = held_path(vendor, &c, &h, now) else {
            unreachable!()
        };
        g.bench_function(BenchmarkId::from_parameter(c.name), |b| {
            b.iter(|| {
                black_box(&p).to_json(
                    "https://errgate.dev/problems",
                    "0123456789abcdef0123456789abcdef",
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_classify, bench_held, bench_render);
criterion_main!(benches);
