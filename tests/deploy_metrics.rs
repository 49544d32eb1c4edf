//! The metrics that deploy/ relies on exist in a real exposition and mean what the rules and
//! the dashboard assume: a real errgate, driven through every kind of outcome against a mock
//! vendor, is scraped; then every metric name, label matcher, grouping label and literal
//! label value in deploy/prometheus/rules.yml and deploy/grafana/errgate-dashboard.json, and
//! every input series in deploy/prometheus/rules_test.yml, is checked against that scrape.
mod common;
use common::*;

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Labels Prometheus itself attaches to every scraped series (the scrape configs in
/// deploy/prometheus/prometheus.yml add namespace, pod, node and deployment).
const TARGET_LABELS: &[&str] = &["job", "instance", "namespace", "pod", "node", "deployment"];

/// One metric name with every label set seen, and every value seen per label.
#[derive(Default, Debug)]
struct Family {
    label_sets: BTreeSet<BTreeSet<String>>,
    values: BTreeMap<String, BTreeSet<String>>,
}

impl Family {
    fn labels(&self) -> BTreeSet<String> {
        self.label_sets.iter().flatten().cloned().collect()
    }
}

/// Parses the Prometheus text format (the subset errgate's encoder writes).
fn parse_exposition(text: &str) -> BTreeMap<String, Family> {
    let line_re = Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$").expect("re");
    let label_re = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)""#).expect("re");
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let c = line_re
            .captures(l)
            .unwrap_or_else(|| panic!("unparsable exposition line {l:?}"));
        let f = out.entry(c[1].to_string()).or_default();
        let mut set = BTreeSet::new();
        for lc in label_re.captures_iter(c.get(2).map_or("", |m| m.as_str())) {
            set.insert(lc[1].to_string());
            f.values
                .entry(lc[1].to_string())
                .or_default()
                .insert(lc[2].to_string());
        }
        f.label_sets.insert(set);
    }
    out
}

const MEMBER_404: &str = r#"{"message":"Member not found.","code":20002}"#;
const OK_BODY: &str = r#"{"id":"abcde","name":"ok"}"#;

fn jsonh(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    response(status, &h, body.as_bytes())
}

/// Drives a gateway through passthrough, normalized and gateway outcomes (unreachable,
/// reset, timeout, cooldown), a retry that recovers, a held fallback and an uncataloged
/// code, and returns the scrape.
fn scrape_after_traffic() -> String {
    let failed_once = Arc::new(AtomicBool::new(false));
    let f2 = failed_once.clone();
    let m = Mock::start(move |req, _| {
        let p = req.path.as_str();
        if p.ends_with("/ok") {
            vec![Act::Send(jsonh(200, &[], OK_BODY))]
        } else if p.ends_with("/nf") {
            vec![Act::Send(jsonh(404, &[], MEMBER_404))]
        } else if p.ends_with("/uncataloged") {
            vec![Act::Send(jsonh(
                404,
                &[],
                r#"{"message":"?","code":99999}"#,
            ))]
        } else if p.ends_with("/flaky") && !f2.swap(true, Ordering::SeqCst) {
            vec![Act::Send(jsonh(
                503,
                &[("Retry-After", "1")],
                r#"{"message":"Service Unavailable"}"#,
            ))]
        } else if p.ends_with("/flaky") {
            vec![Act::Send(jsonh(200, &[], OK_BODY))]
        } else if p.ends_with("/big") {
            // OpenIM's in-band success with errCode after the hold limit: released by the
            // hold-limit fallback.
            let body = format!(
                r#"{{"data":"{}","errCode":0,"errMsg":""}}"#,
                "x".repeat(4096)
            );
            vec![Act::Send(jsonh(200, &[], &body))]
        } else if p.ends_with("/reset") {
            vec![Act::Reset]
        } else if p.ends_with("/stall") {
            vec![Act::Sleep(Duration::from_secs(3))]
        } else {
            vec![Act::Send(jsonh(
                429,
                &[("Retry-After", "60")],
                r#"{"message":"429: too many requests","code":0}"#,
            ))]
        }
    });
    let dead = format!("http://127.0.0.1:{}", free_port());
    let g = GateConfig::new()
        .set("hold_max_bytes", 1024)
        .set(
            "timeouts",
            json!({"connect": "1s", "read": "700ms", "total": "1s"}),
        )
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .route(RouteConfig::new("rl", "pluralkit", "/rl", &m.url()))
        .route(RouteConfig::new("dead", "pluralkit", "/dead", &dead))
        .route(RouteConfig::new("oi", "openim", "/oi", &m.url()))
        .start();
    for path in [
        "/pk/ok",
        "/pk/nf",
        "/pk/uncataloged",
        "/pk/flaky",
        "/oi/big",
        "/pk/reset",
        "/pk/stall",
        "/dead/x",
        "/no-such-route",
        "/rl/x",
        "/rl/x",
    ] {
        let _ = g.get(path);
    }
    // Metrics are recorded when the request is logged: wait (bounded) for the last one.
    let t0 = Instant::now();
    loop {
        let text = g.admin_get("/metrics").text();
        if metric_value(&text, r#"errgate_cooldown_rejections_total{route="rl"}"#) >= 1.0
            || t0.elapsed() > Duration::from_secs(5)
        {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PromQL expression with its place, for messages.
struct Expr {
    place: String,
    text: String,
}

fn yaml(rel: &str) -> yaml_serde::Value {
    let p = repo().join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every PromQL expression in rules.yml and the dashboard, and the recording rules by name.
fn deploy_exprs() -> (Vec<Expr>, BTreeMap<String, String>) {
    let mut exprs = Vec::new();
    let mut recorded = BTreeMap::new();
    let rules = yaml("deploy/prometheus/rules.yml");
    for g in rules["groups"].as_sequence().expect("groups") {
        for r in g["rules"].as_sequence().expect("rules") {
            let expr = r["expr"].as_str().expect("expr").to_string();
            if let Some(name) = r["record"].as_str() {
                recorded.insert(name.to_string(), expr.clone());
            }
            let name = r["record"].as_str().or(r["alert"].as_str()).unwrap_or("?");
            exprs.push(Expr {
                place: format!("rules.yml {name}"),
                text: expr,
            });
        }
    }
    let p = repo().join("deploy/grafana/errgate-dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("dashboard")).expect("json");
    // label_values(METRIC{...}, LABEL): the label must exist on the metric.
    let lv = Regex::new(r"^label_values\((.*),\s*([a-zA-Z_]+)\)$").expect("re");
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if let Some(def) = v["definition"].as_str() {
            let c = lv.captures(def).unwrap_or_else(|| panic!("variable {def}"));
            exprs.push(Expr {
                place: format!("dashboard variable {}", v["name"]),
                text: format!("sum by ({}) ({})", &c[2], &c[1]),
            });
        }
    }
    for panel in dash["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let text = t["expr"].as_str().expect("expr");
            let text = text
                .replace("$__rate_interval", "5m")
                .replace("$__range", "1h")
                .replace("$route", ".*")
                .replace("$domain", ".*");
            exprs.push(Expr {
                place: format!("dashboard panel {}", panel["title"]),
                text,
            });
        }
    }
    (exprs, recorded)
}

/// PromQL with string literals blanked (so label values are not taken for metric names).
fn strip_strings(e: &str) -> String {
    Regex::new(r#""(?:[^"\\]|\\.)*""#)
        .expect("re")
        .replace_all(e, "\"\"")
        .into_owned()
}

/// The balanced parenthesized group starting at byte `open` (which is `(`): its inside.
fn group_at(s: &str, open: usize) -> Option<&str> {
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[open + 1..open + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The balanced group that ends right before byte `end` (`)` at `end - 1`).
fn group_before(s: &str, end: usize) -> Option<&str> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = end;
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[i + 1..end - 1]);
                }
            }
            _ => {}
        }
    }
    None
}

struct Checker<'a> {
    fams: &'a BTreeMap<String, Family>,
    recorded: &'a BTreeMap<String, String>,
    problems: Vec<String>,
}

impl Checker<'_> {
    /// The family of a series name (`X_bucket` etc. of histogram X included).
    fn family(&self, name: &str) -> Option<&Family> {
        self.fams.get(name)
    }

    /// Labels a name carries: an exported metric's, or a recording rule's output labels.
    fn labels_of(&self, name: &str, depth: usize) -> Option<BTreeSet<String>> {
        if let Some(f) = self.family(name) {
            return Some(f.labels());
        }
        let expr = self.recorded.get(name)?;
        if depth > 5 {
            return None;
        }
        let bare = strip_strings(expr);
        let by = Regex::new(r"\bby\s*\(([^)]*)\)").expect("re");
        if let Some(c) = by.captures(&bare) {
            return Some(split_labels(&c[1]).into_iter().collect());
        }
        let mut all = BTreeSet::new();
        for n in names_in(&bare) {
            all.extend(self.labels_of(&n, depth + 1).unwrap_or_default());
        }
        Some(all)
    }

    fn check(&mut self, e: &Expr) {
        let bare = strip_strings(&e.text);
        // 1. Every metric named exists in the scrape (or is a recording rule).
        for n in names_in(&bare) {
            if self.family(&n).is_none() && !self.recorded.contains_key(&n) {
                let hint = if self.fams.contains_key(&format!("{n}_bucket")) {
                    " (a histogram: use _bucket/_sum/_count)"
                } else {
                    ""
                };
                self.problems.push(format!(
                    "{}: {n} is not in errgate's exposition{hint}",
                    e.place
                ));
            }
        }
        // 2. Label matchers use labels the metric has; literal values are ones it exports.
        let sel = Regex::new(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}").expect("re");
        let matcher =
            Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)""#)
                .expect("re");
        let literal = Regex::new(r"^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$").expect("re");
        for c in sel.captures_iter(&e.text) {
            let name = &c[1];
            let Some(labels) = self.labels_of(name, 0) else {
                continue;
            };
            for m in matcher.captures_iter(&c[2]) {
                let (label, op, value) = (&m[1], &m[2], &m[3]);
                if TARGET_LABELS.contains(&label) {
                    continue;
                }
                if !labels.contains(label) {
                    self.problems.push(format!(
                        "{}: {name} has no label {label:?} (it has {labels:?})",
                        e.place
                    ));
                    continue;
                }
                let checkable = (op == "=" || op == "=~") && literal.is_match(value);
                let fams = self.fams;
                let Some(seen) = fams.get(name).and_then(|f| f.values.get(label)) else {
                    continue;
                };
                if checkable {
                    for v in value.split('|') {
                        if !seen.contains(v) {
                            self.problems.push(format!(
                                "{}: {name}{{{label}=\"{v}\"}} never appears in the exposition (values seen: {seen:?})",
                                e.place
                            ));
                        }
                    }
                }
            }
        }
        // 3. Grouping labels (`by (...)`) exist on what is aggregated.
        let by = Regex::new(r"\b(by|on)\s*\(([^)]*)\)").expect("re");
        for c in by.captures_iter(&bare) {
            let whole = c.get(0).expect("match");
            let kind = &c[1];
            let scope: String = if kind == "on" {
                bare.clone()
            } else {
                let after = bare[whole.end()..].trim_start();
                if after.starts_with('(') {
                    let open = bare.len() - after.len();
                    group_at(&bare, open).unwrap_or("").to_string()
                } else {
                    let before = bare[..whole.start()].trim_end();
                    group_before(&bare, before.len()).unwrap_or("").to_string()
                }
            };
            let mut allowed: BTreeSet<String> =
                TARGET_LABELS.iter().map(|s| s.to_string()).collect();
            for n in names_in(&scope) {
                allowed.extend(self.labels_of(&n, 0).unwrap_or_default());
            }
            for l in split_labels(&c[2]) {
                if !allowed.contains(&l) {
                    self.problems.push(format!(
                        "{}: `{kind} ({})` groups by {l:?}, which nothing it aggregates has",
                        e.place, &c[2]
                    ));
                }
            }
        }
    }
}

fn split_labels(s: &str) -> Vec<String> {
    s.split(',')
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Series names in a (string-stripped) expression: errgate's, the process collector's, and
/// recording rules (`level:metric:operations`).
fn names_in(bare: &str) -> Vec<String> {
    Regex::new(r"\b(errgate_[a-z0-9_]+|process_[a-z0-9_]+|[a-z_]+:[a-z0-9_]+:[a-z0-9_]+)\b")
        .expect("re")
        .find_iter(bare)
        .map(|m| m.as_str().to_string())
        .collect()
}

#[test]
fn deploy_rules_and_dashboard_use_only_real_series_and_labels() {
    let text = scrape_after_traffic();
    let fams = parse_exposition(&text);
    let (exprs, recorded) = deploy_exprs();
    assert!(exprs.len() > 20, "found {} expressions", exprs.len());
    let mut c = Checker {
        fams: &fams,
        recorded: &recorded,
        problems: Vec::new(),
    };
    for e in &exprs {
        c.check(e);
    }
    // The operating basics the dashboard is expected to show.
    let all: String = exprs.iter().map(|e| e.text.as_str()).collect();
    for must in [
        "errgate_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        if !all.contains(must) {
            c.problems
                .push(format!("neither rules nor dashboard show {must}"));
        }
    }
    assert!(
        c.problems.is_empty(),
        "{} problem(s):\n{}\n--- exposition\n{text}",
        c.problems.len(),
        c.problems.join("\n")
    );
}

#[test]
fn rule_tests_feed_only_series_errgate_exports() {
    let text = scrape_after_traffic();
    let fams = parse_exposition(&text);
    let tests = yaml("deploy/prometheus/rules_test.yml");
    let series_re = Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$").expect("re");
    let label_re = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)""#).expect("re");
    let mut problems = Vec::new();
    let mut n = 0;
    for t in tests["tests"].as_sequence().expect("tests") {
        let tname = t["name"].as_str().unwrap_or("?");
        for s in t["input_series"].as_sequence().expect("input_series") {
            let series = s["series"].as_str().expect("series");
            let c = series_re
                .captures(series)
                .unwrap_or_else(|| panic!("{tname}: series {series}"));
            let name = &c[1];
            if name == "up" {
                continue; // Prometheus's own per-target series.
            }
            n += 1;
            let mut labels = BTreeSet::new();
            for lc in label_re.captures_iter(&c[2]) {
                if !TARGET_LABELS.contains(&&lc[1]) {
                    labels.insert(lc[1].to_string());
                }
                if let Some(seen) = fams.get(name).and_then(|f| f.values.get(&lc[1])) {
                    // Closed label sets errgate defines itself must use a real value.
                    if ["outcome", "result"].contains(&&lc[1]) && !seen.contains(&lc[2]) {
                        problems.push(format!(
                            "{tname}: {series}: {}=\"{}\" is not a value errgate exports ({seen:?})",
                            &lc[1], &lc[2]
                        ));
                    }
                }
            }
            match fams.get(name) {
                None => problems.push(format!("{tname}: {name} is not in errgate's exposition")),
                Some(f) if !f.label_sets.contains(&labels) => problems.push(format!(
                    "{tname}: {series}: errgate exports {name} with labels {:?}, not {labels:?}",
                    f.label_sets
                )),
                Some(_) => {}
            }
        }
    }
    assert!(n > 5, "only {n} input series checked");
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n--- exposition\n{text}",
        problems.len(),
        problems.join("\n")
    );
}
