//! The command line (contract §5): `explain` for every documented code, `normalize` on captured
//! bodies (file, stdin, gzip), `check` on broken configs and catalogs, and a frozen schema-1
//! catalog that must keep loading.
mod common;
use common::run::{errgate, show};
use common::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

const EXIT_USAGE: i32 = 64;
const EXIT_CONFIG: i32 = 78;

fn errgate_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_errgate"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn errgate");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait errgate")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------- explain

struct Row {
    vendor: &'static str,
    line: usize,
    code: String,
    upstream_status: u16,
    canonical: String,
    status: u16,
    reason: String,
}

fn rows() -> Vec<Row> {
    let mut v = Vec::new();
    for vendor in ["mantago", "openim", "microcms", "tencent-im", "pluralkit"] {
        let f = repo().join(format!("tests/fixtures/expected/{vendor}.tsv"));
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (i, l) in text.lines().enumerate().skip(1) {
            if l.trim().is_empty() {
                continue;
            }
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 9, "{}:{}", f.display(), i + 1);
            v.push(Row {
                vendor,
                line: i + 1,
                code: c[0].to_string(),
                upstream_status: c[1].parse().expect("upstream_status"),
                canonical: c[5].to_string(),
                status: c[6].parse().expect("status"),
                reason: c[7].to_string(),
            });
        }
    }
    v
}

fn explain_args(r: &Row) -> Vec<String> {
    let mut a = vec!["explain".to_string(), r.vendor.to_string()];
    if r.vendor == "microcms" {
        a.push(r.reason.clone());
    } else {
        a.push(r.code.clone());
    }
    if r.vendor == "pluralkit" && r.code == "0" {
        a.push("--status".into());
        a.push(r.upstream_status.to_string());
    }
    a
}

/// What is wrong with one `explain` run, if anything.
fn explain_problem(r: &Row) -> Option<String> {
    let args = explain_args(r);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = errgate(&argv);
    let stdout = out(&o);
    let mut missing = Vec::new();
    for want in [
        format!("reason: {}\n", r.reason),
        format!("canonical: {}\n", r.canonical),
        format!("\"reason\": \"{}\"", r.reason),
        format!("\"code\": \"{}\"", r.canonical),
        format!("HTTP {}\n", r.status),
    ] {
        if !stdout.contains(&want) {
            missing.push(want.trim().to_string());
        }
    }
    if o.status.success() && missing.is_empty() {
        return None;
    }
    Some(format!(
        "{}.tsv line {}: `errgate {}`: missing {missing:?}; {}",
        r.vendor,
        r.line,
        args.join(" "),
        show(&o)
    ))
}

#[test]
fn explain_prints_reason_and_canonical_code_for_every_documented_code() {
    let rows = rows();
    assert!(rows.len() >= 180, "{} rows", rows.len());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(4)
        .clamp(2, 8);
    let problems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(rows.len().div_ceil(workers))
            .map(|part| {
                s.spawn(move || part.iter().filter_map(explain_problem).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    assert!(
        problems.is_empty(),
        "{} failing explain run(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn explain_uncataloged_code_derives_the_answer_from_the_status() {
    let o = errgate(&["explain", "pluralkit", "99999", "--status", "404"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = out(&o);
    for want in [
        "not in the catalog",
        "HTTP 404",
        "\"code\": \"NOT_FOUND\"",
        "\"reason\": \"UNCATALOGED_ERROR\"",
        "\"code\": \"99999\"",
    ] {
        assert!(s.contains(want), "missing {want:?}:\n{}", show(&o));
    }
}

#[test]
fn an_unknown_vendor_is_a_usage_error_naming_the_catalogs_in_explain_and_normalize() {
    for o in [
        errgate(&["explain", "no-such-vendor", "1"]),
        errgate_stdin(&["normalize", "--vendor", "no-such-vendor"], b"{}"),
    ] {
        assert_eq!(o.status.code(), Some(EXIT_USAGE), "{}", show(&o));
        let e = err(&o);
        assert!(
            e.contains("unknown vendor `no-such-vendor`"),
            "{}",
            show(&o)
        );
        assert!(
            e.contains("catalogs: ") && e.contains("pluralkit"),
            "{}",
            show(&o)
        );
        assert!(out(&o).is_empty(), "{}", show(&o));
    }
}

// ---------------------------------------------------------------- normalize

const TIM_RATE_LIMITED: &str = r#"{"ActionStatus":"FAIL","ErrorCode":60007,"ErrorInfo":"rest 接口调用频率超过限制，请降低请求频率 。"}"#;
const TIM_OK: &str = r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}"#;

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

fn assert_rate_limited(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
    let s = out(o);
    assert!(s.contains("HTTP 429"), "{}", show(o));
    assert!(s.contains("Retry-After: "), "{}", show(o));
    assert!(s.contains("application/problem+json"), "{}", show(o));
    assert!(
        s.contains("\"reason\": \"REST_RATE_LIMITED\""),
        "{}",
        show(o)
    );
    assert!(s.contains("\"code\": \"60007\""), "{}", show(o));
    assert!(!s.contains("passes through"), "{}", show(o));
}

#[test]
fn normalize_tencent_rate_limit_file_gives_429_with_retry_after() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = write_tmp(d.path(), "60007.json", TIM_RATE_LIMITED.as_bytes());
    let o = errgate(&[
        "normalize",
        "--vendor",
        "tencent-im",
        "--status",
        "200",
        f.to_str().expect("utf-8 path"),
    ]);
    assert_rate_limited(&o);
    // The catalog's default hint (1000 ms) rounds to one whole second.
    assert!(out(&o).contains("Retry-After: 1\n"), "{}", show(&o));
}

#[test]
fn normalize_tencent_ok_body_passes_through() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = write_tmp(d.path(), "ok.json", TIM_OK.as_bytes());
    let o = errgate(&[
        "normalize",
        "--vendor",
        "tencent-im",
        "--status",
        "200",
        f.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(out(&o).contains("passes through"), "{}", show(&o));
    assert!(!out(&o).contains("HTTP 4"), "{}", show(&o));
}

#[test]
fn normalize_reads_stdin() {
    let o = errgate_stdin(
        &["normalize", "--vendor", "tencent-im", "--status", "200"],
        TIM_RATE_LIMITED.as_bytes(),
    );
    assert_rate_limited(&o);
    let o = errgate_stdin(
        &["normalize", "--vendor", "tencent-im", "--status", "200"],
        TIM_OK.as_bytes(),
    );
    assert!(out(&o).contains("passes through"), "{}", show(&o));
}

#[test]
fn normalize_decodes_a_gzip_body() {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(TIM_RATE_LIMITED.as_bytes()).expect("gzip");
    let gz = z.finish().expect("gzip");
    let d = tempfile::tempdir().expect("tempdir");
    let f = write_tmp(d.path(), "60007.json.gz", &gz);
    let o = errgate(&[
        "normalize",
        "--vendor",
        "tencent-im",
        "--status",
        "200",
        "-H",
        "Content-Encoding: gzip",
        "-H",
        "Content-Type: application/json",
        f.to_str().expect("utf-8 path"),
    ]);
    assert_rate_limited(&o);
}

// ---------------------------------------------------------------- check

fn broken(rel: &str) -> PathBuf {
    repo().join("tests/fixtures/broken").join(rel)
}

/// A tempdir with `catalogs/` holding the given catalog files (paths) and `errgate.yaml`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(catalog_files: &[PathBuf]) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("catalogs")).expect("mkdir");
        for f in catalog_files {
            std::fs::copy(
                f,
                dir.path()
                    .join("catalogs")
                    .join(f.file_name().expect("name")),
            )
            .expect("copy catalog");
        }
        Setup { dir }
    }

    fn catalog_dir(&self) -> PathBuf {
        self.dir.path().join("catalogs")
    }

    fn catalog(&self, name: &str) -> String {
        self.catalog_dir().join(name).display().to_string()
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("errgate.yaml")
    }

    /// Writes a config fixture (deliberately broken YAML/keys for the diagnostics tests), its
    /// `@CATALOG_DIR@` replaced by `catalog_dir`.
    fn write_config(&self, template: &str, catalog_dir: &Path) {
        let text = template.replace("@CATALOG_DIR@", &catalog_dir.display().to_string());
        std::fs::write(self.config(), text).expect("write config");
    }

    /// A valid config with one route to `vendor`.
    fn write_simple_config(&self, vendor: &str, catalog_dir: &Path) {
        GateConfig::new()
            .unset("threads")
            .route(RouteConfig::new(
                "r",
                vendor,
                "/r",
                "https://api.example.com/v1",
            ))
            .write(&self.config(), 18080, 19090, catalog_dir);
    }

    fn check(&self) -> Output {
        let cfg = self.config();
        errgate(&["check", "--config", cfg.to_str().expect("utf-8 path")])
    }
}

/// Asserts exit 78 and that each `(file, place)` has its own line on stderr.
fn assert_reported(o: &Output, expected: &[(String, &str)]) {
    assert_eq!(o.status.code(), Some(EXIT_CONFIG), "{}", show(o));
    let e = err(o);
    let missing: Vec<String> = expected
        .iter()
        .filter(|(file, place)| {
            !e.lines()
                .any(|l| l.starts_with(&format!("{file}: {place}")))
        })
        .map(|(file, place)| format!("{file}: {place}"))
        .collect();
    assert!(
        missing.is_empty(),
        "not reported: {missing:#?}\n{}",
        show(o)
    );
}

fn config_problems(cfg: &str) -> Vec<(String, &'static str)> {
    [
        "colour",
        "retry_after_max",
        "routes[1].upstream",
        "routes[2].name",
        "routes[3].vendor",
    ]
    .iter()
    .map(|p| (cfg.to_string(), *p))
    .collect()
}

#[test]
fn check_reports_every_config_problem_at_once() {
    let s = Setup::new(&[]);
    let template = std::fs::read_to_string(broken("config-problems.yaml")).expect("fixture");
    s.write_config(&template, &repo().join("catalogs"));
    let o = s.check();
    let cfg = s.config().display().to_string();
    assert_reported(&o, &config_problems(&cfg));
    assert!(err(&o).contains("colour: unknown key"), "{}", show(&o));
}

#[test]
fn check_reports_a_vendor_without_catalog() {
    let s = Setup::new(&[]);
    let template = std::fs::read_to_string(broken("config-no-catalog.yaml")).expect("fixture");
    s.write_config(&template, &repo().join("catalogs"));
    let o = s.check();
    let cfg = s.config().display().to_string();
    assert_reported(&o, &[(cfg, "routes[1].vendor")]);
    assert!(err(&o).contains("nosuchvendor"), "{}", show(&o));
}

/// Broken catalog fixtures and the place each problem is reported at.
const BROKEN_CATALOGS: [(&str, &str); 7] = [
    ("duplicate-reason.yaml", "entries[1].reason"),
    ("unknown-canonical.yaml", "entries[0].canonical"),
    ("unreachable.yaml", "entries[1]: unreachable"),
    ("missing-detail.yaml", "entries[0].detail"),
    ("bad-reason.yaml", "entries[0].reason"),
    ("vendor-mismatch.yaml", "vendor"),
    ("invalid-yaml.yaml", "line "),
];

#[test]
fn check_reports_each_broken_catalog_with_file_and_place() {
    let mut failures = Vec::new();
    for (file, place) in BROKEN_CATALOGS {
        let s = Setup::new(&[broken(&format!("catalogs/{file}"))]);
        s.write_simple_config(file.trim_end_matches(".yaml"), &s.catalog_dir());
        let o = s.check();
        let want = format!("{}: {place}", s.catalog(file));
        if o.status.code() != Some(EXIT_CONFIG) || !err(&o).lines().any(|l| l.starts_with(&want)) {
            failures.push(format!(
                "{file}: expected a line starting {want:?}; {}",
                show(&o)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn check_reports_every_broken_catalog_in_one_run() {
    let files: Vec<PathBuf> = BROKEN_CATALOGS
        .iter()
        .map(|(f, _)| broken(&format!("catalogs/{f}")))
        .collect();
    let s = Setup::new(&files);
    s.write_simple_config("duplicate-reason", &s.catalog_dir());
    let o = s.check();
    let want: Vec<(String, &str)> = BROKEN_CATALOGS
        .iter()
        .map(|(f, p)| (s.catalog(f), *p))
        .collect();
    assert_reported(&o, &want);
    assert!(
        err(&o).contains(&format!("{} problem(s) found", BROKEN_CATALOGS.len())),
        "{}",
        show(&o)
    );
}

#[test]
fn check_accepts_a_valid_config() {
    let s = Setup::new(&[]);
    s.write_simple_config("pluralkit", &repo().join("catalogs"));
    let o = s.check();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(out(&o).contains(": ok:"), "{}", show(&o));
    // Without --config: the shipped config/errgate.yaml, all five catalogs.
    let o = errgate(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(out(&o).contains("ok"), "{}", show(&o));
    assert!(out(&o).contains("5 catalogs"), "{}", show(&o));
}

// ---------------------------------------------------------------- compat

#[test]
fn compat_schema1_catalogs_still_load() {
    let compat = repo().join("tests/fixtures/compat");
    let now = SystemTime::now();

    let min = errgate::catalog::load_catalogs(&compat.join("schema1-minimal"), now)
        .unwrap_or_else(|e| panic!("schema1-minimal does not load:\n{e}"));
    let acme = min.vendor("acme").expect("acme");
    assert_eq!(acme.entries.len(), 2);
    assert!(!acme.is_in_band());
    let names: Vec<&str> = acme
        .rate_limit_headers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(names, ["Retry-After"]);
    let e = acme.entries_for_code("404001").next().expect("404001");
    assert_eq!(
        (e.reason.as_str(), e.canonical.as_str(), e.http_status),
        ("WIDGET_NOT_FOUND", "NOT_FOUND", 404)
    );

    let full = errgate::catalog::load_catalogs(&compat.join("schema1-full"), now)
        .unwrap_or_else(|e| panic!("schema1-full does not load:\n{e}"));
    let ex = full.vendor("example").expect("example");
    assert_eq!(ex.entries.len(), 5);
    assert!(ex.is_in_band());
    let e = ex.entries_for_code("40005").next().expect("40005");
    assert_eq!(
        (e.canonical.as_str(), e.http_status),
        ("ALREADY_EXISTS", 409)
    );
    let e = ex
        .entries
        .iter()
        .find(|e| e.reason == "STATUS_VALUE_INVALID")
        .expect("STATUS_VALUE_INVALID");
    assert_eq!(e.match_method.as_deref(), Some("PATCH"));
    assert!(e
        .match_path
        .as_ref()
        .is_some_and(|p| p.matches("/api/v1/contents/blogs/abc/status")));

    // And `errgate check` accepts both through a config.
    for (dir, vendor) in [("schema1-minimal", "acme"), ("schema1-full", "example")] {
        let s = Setup::new(&[]);
        s.write_simple_config(vendor, &compat.join(dir));
        let o = s.check();
        assert_eq!(o.status.code(), Some(0), "{dir}: {}", show(&o));
    }
}
