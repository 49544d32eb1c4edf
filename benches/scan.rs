//! Throughput of `errgate::scan::Scanner` on realistic vendor bodies, against
//! `serde_json::from_slice` baselines (`Value` and `IgnoredAny`) on the same bytes.
//!
//! Groups: `scan_small/*` (vendor error envelopes), `scan_64k/*` and `scan_1m/*`
//! (generated success bodies whose captured paths are absent: full skip speed).
//! Run with `cargo bench --bench scan`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use errgate::scan::{CaptureKind, ScanLimits, ScanSpec, Scanner};
use serde::de::IgnoredAny;

/// Small deterministic PRNG (xorshift64*) so bodies are identical across runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Alice",
    "Bob",
    "Carol",
    "Dmitri",
    "Zoë",
    "José",
    "李雷",
    "韩梅梅",
    "Ørjan",
    "Amélie",
    "Yuki",
    "Ngozi",
];
const LAST: &[&str] = &[
    "Smith",
    "Müller",
    "García",
    "Ivanov",
    "O'Brien",
    "Nakamura",
    "王",
    "Søndergaard",
    "Kowalski",
];
const WORDS: &[&str] = &[
    "hello",
    "world",
    "meeting",
    "tomorrow",
    "at",
    "the",
    "office",
    "please",
    "review",
    "the",
    "attached",
    "document",
    "thanks",
    "see",
    "you",
    "soon",
    "café",
    "naïve",
    "日本語",
    "テキスト",
    "🙂",
    "ok",
    "deadline",
    "is",
    "friday",
    "\\\"quoted\\\"",
    "line\\nbreak",
    "tab\\tsep",
    "\\u00e9t\\u00e9",
];

fn sentence(r: &mut Rng, words: u64) -> String {
    let n = 3 + r.below(words);
    let mut s = String::new();
    for k in 0..n {
        if k > 0 {
            s.push(' ');
        }
        s.push_str(r.pick(WORDS));
    }
    s
}

/// A realistic success body of at least `target` bytes: `{"data":{"total":..,"users":[..]}}`,
/// user objects with strings, numbers, booleans, nulls, nested objects and message arrays.
fn success_body(target: usize) -> Vec<u8> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut users = Vec::new();
    let mut len = 0usize;
    let mut id = 100_000u64;
    while len < target {
        id += 1 + r.below(7);
        let first = r.pick(FIRST);
        let last = r.pick(LAST);
        let mut msgs = String::new();
        for m in 0..r.below(4) {
            if m > 0 {
                msgs.push(',');
            }
            msgs.push_str(&format!(
                r#"{{"msgId":"{:016x}","seq":{},"sendTime":{},"content":"{}","read":{},"ext":null}}"#,
                r.next(),
                r.below(1_000_000),
                1_700_000_000_000u64 + r.below(10_000_000_000),
                sentence(&mut r, 14),
                r.below(2) == 0
            ));
        }
        let user = format!(
            r#"{{"userID":"{id}","nickname":"{first} {last}","faceURL":"https://cdn.example.com/avatar/{id}.png","gender":{},"score":{}.{:02},"balance":-{}.5e-3,"verified":{},"ex":"","profile":{{"bio":"{}","age":{},"location":{{"city":"{}","lat":{}.{:04},"lon":-{}.{:04}}},"tags":["{}","{}"]}},"messages":[{msgs}]}}"#,
            r.below(3),
            r.below(1000),
            r.below(100),
            r.below(100_000),
            r.below(2) == 1,
            sentence(&mut r, 20),
            18 + r.below(60),
            r.pick(&["Berlin", "東京", "São Paulo", "Zürich", "Lagos", "New York"]),
            r.below(90),
            r.below(10_000),
            r.below(180),
            r.below(10_000),
            r.pick(WORDS),
            r.pick(WORDS),
        );
        len += user.len() + 1;
        users.push(user);
    }
    let body = format!(
        r#"{{"data":{{"total":{},"users":[{}]}}}}"#,
        users.len(),
        users.join(",")
    );
    serde_json::from_str::<serde_json::Value>(&body).expect("generated body is valid JSON");
    body.into_bytes()
}

fn openim_spec() -> ScanSpec {
    ScanSpec::new(&[
        (&["errCode"], CaptureKind::Scalar),
        (&["errMsg"], CaptureKind::Scalar),
        (&["errDlt"], CaptureKind::Scalar),
    ])
}

fn vendors() -> Vec<(&'static str, ScanSpec, &'static [u8])> {
    vec![
        (
            "openim",
            openim_spec(),
            br#"{"errCode":1501,"errMsg":"token expired","errDlt":"token expired: user 42, platform 5"}"#,
        ),
        (
            "tencent_im",
            ScanSpec::new(&[
                (&["ActionStatus"], CaptureKind::Scalar),
                (&["ErrorCode"], CaptureKind::Scalar),
                (&["ErrorInfo"], CaptureKind::Scalar),
            ]),
            "{\"ActionStatus\":\"FAIL\",\"ErrorCode\":60007,\"ErrorInfo\":\"rest 接口调用频率超过限制\"}"
                .as_bytes(),
        ),
        (
            "mantago",
            ScanSpec::new(&[
                (&["success"], CaptureKind::Scalar),
                (&["errResponse", "message"], CaptureKind::Scalar),
                (&["errResponse", "code"], CaptureKind::Scalar),
            ]),
            br#"{"success":false,"errResponse":{"message":"bot not found","code":"1004","botId":"b-123"}}"#,
        ),
        (
            "pluralkit",
            ScanSpec::new(&[
                (&["code"], CaptureKind::Scalar),
                (&["message"], CaptureKind::Scalar),
                (&["retry_after"], CaptureKind::Scalar),
                (&["errors"], CaptureKind::Raw),
            ]),
            br#"{"code":20002,"message":"Member not found.","retry_after":2543,"errors":{"name":[{"message":"too long","max_length":100,"actual_length":120}]}}"#,
        ),
        (
            "microcms",
            ScanSpec::new(&[(&["message"], CaptureKind::Scalar)]),
            br#"{"message":"contentId is invalid."}"#,
        ),
    ]
}

fn scan(spec: &ScanSpec, body: &[u8], chunk: usize) -> bool {
    let mut sc = Scanner::new(spec, ScanLimits::default());
    for piece in body.chunks(chunk) {
        sc.feed(piece);
    }
    let ok = sc.finish().is_ok();
    black_box(sc.field(0));
    ok
}

fn bench_small(c: &mut Criterion) {
    let mut g = c.benchmark_group("scan_small");
    for (name, spec, body) in vendors() {
        assert!(scan(&spec, body, body.len()), "{name} body must scan");
        g.throughput(Throughput::Bytes(body.len() as u64));
        for chunk in [1usize, 4096, 65536] {
            g.bench_with_input(
                BenchmarkId::new(format!("{name}/scanner"), chunk),
                &chunk,
                |b, &ch| b.iter(|| scan(&spec, black_box(body), ch)),
            );
        }
        g.bench_function(
            BenchmarkId::new(format!("{name}/serde_value"), "whole"),
            |b| b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).is_ok()),
        );
        g.bench_function(
            BenchmarkId::new(format!("{name}/serde_ignored_any"), "whole"),
            |b| b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(body)).is_ok()),
        );
    }
    g.finish();
}

fn bench_body(c: &mut Criterion, group: &str, size: usize, chunks: &[usize]) {
    let body = success_body(size);
    let spec = openim_spec();
    assert!(scan(&spec, &body, 65536));
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(body.len() as u64));
    if size > 100_000 {
        g.sample_size(30);
    }
    for &chunk in chunks {
        g.bench_with_input(BenchmarkId::new("scanner", chunk), &chunk, |b, &ch| {
            b.iter(|| scan(&spec, black_box(&body), ch))
        });
    }
    g.bench_function(BenchmarkId::new("serde_value", "whole"), |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).is_ok())
    });
    g.bench_function(BenchmarkId::new("serde_ignored_any", "whole"), |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(&body)).is_ok())
    });
    g.finish();
}

fn bench_64k(c: &mut Criterion) {
    bench_body(c, "scan_64k", 64 * 1024, &[1, 4096, 65536]);
}

fn bench_1m(c: &mut Criterion) {
    bench_body(c, "scan_1m", 1024 * 1024, &[4096, 65536]);
}

criterion_group!(benches, bench_small, bench_64k, bench_1m);
criterion_main!(benches);
