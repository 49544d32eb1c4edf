use super::*;

fn parse(y: &str) -> Result<Config, Diagnostics> {
    parse_config(y, Path::new("t.yaml"))
}

const MIN: &str = "routes:\n  - name: pk\n    vendor: pluralkit\n    path_prefix: /pluralkit\n    upstream: https://api.pluralkit.me/v2\n";

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = parse(MIN).expect("valid");
    assert_eq!(c.listen, DEFAULT_LISTEN);
    assert_eq!(c.admin_listen, DEFAULT_ADMIN_LISTEN);
    assert_eq!(c.hold_max_bytes, DEFAULT_HOLD_MAX_BYTES as usize);
    let r = c.routes.iter().next().expect("one route");
    assert_eq!(r.timeouts.connect, DEFAULT_CONNECT_TIMEOUT);
    assert!(r.retry.enabled);
    assert!(r.cooldown.enabled);
    assert_eq!(r.upstream.host, "api.pluralkit.me");
    assert_eq!(r.upstream.port, 443);
    assert!(r.upstream.tls);
    assert_eq!(r.upstream.base_path, "/v2");
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let y = "listen: nope\nbogus: 1\ntimeouts: { connect: 5 parsecs }\nroutes:\n  - name: a\n    vendor: v\n    path_prefix: x\n    upstream: ftp://h\n  - name: a\n    vendor: v\n    path_prefix: /y\n    upstream: http://h\n    extra: 1\n";
    let errs = parse(y).expect_err("invalid").0;
    let paths: Vec<&str> = errs.iter().map(|e| e.place.as_str()).collect();
    for want in [
        "listen",
        "bogus",
        "timeouts.connect",
        "routes[0].path_prefix",
        "routes[0].upstream",
        "routes[1].extra",
    ] {
        assert!(paths.contains(&want), "missing {want} in {paths:?}");
    }
    assert!(errs.iter().all(|e| e.file == "t.yaml"));
}

#[test]
fn an_unknown_key_in_a_route_is_reported_alone() {
    // The route's other keys are present: nothing else may be reported for it.
    let y = "routes:\n  - name: a\n    vendor: v\n    path_prefix: /a\n    upstream: http://h\n    modus: x\n";
    let errs = parse(y).expect_err("unknown key").0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].place, "routes[0].modus");
    assert!(
        errs[0].message.starts_with("unknown key; expected one of"),
        "{errs:#?}"
    );
    assert!(errs[0].message.contains("line 6 column 5"), "{errs:#?}");
}

#[test]
fn structural_and_semantic_problems_are_reported_in_one_run() {
    // A wrong type and an unknown key (structure) next to a bad duration (validation); the
    // route with the unknown key is still checked for what it holds.
    let y = "hold_max_bytes: lots\nretry_after_max: soon\nroutes:\n  - name: a\n    vendor: v\n    path_prefix: nope\n    upstream: http://h\n    colour: blue\n";
    let errs = parse(y).expect_err("invalid").0;
    let places: Vec<&str> = errs.iter().map(|e| e.place.as_str()).collect();
    assert_eq!(
        places,
        [
            "hold_max_bytes",
            "routes[0].colour",
            "retry_after_max",
            "routes[0].path_prefix"
        ],
        "{errs:#?}"
    );
}

#[test]
fn a_wrongly_typed_required_key_is_not_also_missing() {
    let y = "routes:\n  - name: [a]\n    vendor: v\n    path_prefix: /a\n    upstream: http://h\n";
    let errs = parse(y).expect_err("invalid").0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].place, "routes[0].name");
}

#[test]
fn duplicate_names_and_prefixes_are_rejected() {
    let y = "routes:\n  - {name: a, vendor: v, path_prefix: /p, upstream: http://h}\n  - {name: a, vendor: v, path_prefix: /p/, upstream: http://h}\n";
    let errs = parse(y).expect_err("dupes").0;
    assert!(errs.iter().any(|e| e.place == "routes[1].name"));
    assert!(errs.iter().any(|e| e.place == "routes[1].path_prefix"));
}

#[test]
fn empty_and_non_mapping_files_are_errors_not_panics() {
    assert!(parse("").is_err());
    assert!(parse("- 1\n- 2\n").is_err());
    assert!(parse("routes: 5").is_err());
    assert!(parse(": : :").is_err());
}

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert!(parse_duration("fast").is_err());
    assert!(parse_duration("5y").is_err());
    assert!(parse_duration("1e400").is_err());
}

#[test]
fn prefix_matches_on_segment_boundary_and_longest_wins() {
    let y = "routes:\n  - {name: a, vendor: v, path_prefix: /api, upstream: http://a}\n  - {name: b, vendor: v, path_prefix: /api/v2, upstream: http://b/base}\n  - {name: h, vendor: v, path_prefix: /api, host: Example.com, upstream: http://h}\n";
    let c = parse(y).expect("valid");
    let find = |host: Option<&str>, p: &str| {
        c.routes
            .find(host, p)
            .map(|(r, rest)| (r.name.to_string(), rest.to_string()))
    };
    assert_eq!(find(None, "/api/x"), Some(("a".into(), "/x".into())));
    assert_eq!(
        find(None, "/api/v2/x?q=1"),
        Some(("b".into(), "/x?q=1".into()))
    );
    assert_eq!(find(None, "/api?q"), Some(("a".into(), "?q".into())));
    assert_eq!(find(None, "/apix"), None);
    assert_eq!(
        find(Some("example.com:8080"), "/api/x"),
        Some(("h".into(), "/x".into()))
    );
    let (b, rest) = c.routes.find(None, "/api/v2/x?q=1").expect("b");
    assert_eq!(b.upstream.join_path(rest), "/base/x?q=1");
    let (a, rest) = c.routes.find(None, "/api").expect("a");
    assert_eq!(a.upstream.join_path(rest), "/");
}

#[test]
fn per_route_overrides_apply_on_top_of_defaults() {
    let y = "retry: { max_attempts: 3 }\ntimeouts: { read: 2s }\nroutes:\n  - name: a\n    vendor: v\n    path_prefix: /a\n    upstream: http://h:81\n    retry: { enabled: false }\n    timeouts: { connect: 1s }\n    cooldown: { key_header: X-Api-Key }\n";
    let c = parse(y).expect("valid");
    let r = c.routes.iter().next().expect("route");
    assert!(!r.retry.enabled);
    assert_eq!(r.retry.max_attempts, 3);
    assert_eq!(r.timeouts.connect, Duration::from_secs(1));
    assert_eq!(r.timeouts.read, Duration::from_secs(2));
    assert_eq!(
        r.cooldown.key_header.as_ref().map(|h| h.as_str()),
        Some("x-api-key")
    );
    assert_eq!(r.upstream.authority, "h:81");
}

#[test]
fn example_configs_in_the_repo_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in [
        "config/errgate.yaml",
        "deploy/config/errgate.yaml",
        "deploy/config/errgate-systemd.yaml",
    ] {
        let p = root.join(rel);
        if p.exists() {
            load_config(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
        }
    }
}

#[test]
fn modes_default_per_route_and_annotate_turns_retries_off_unless_the_route_says() {
    use crate::mode::Mode;
    let y = "mode: annotate\nroutes:\n  - { name: a, vendor: v, path_prefix: /a, upstream: http://h }\n  - { name: b, vendor: v, path_prefix: /b, upstream: http://h, retry: { enabled: true } }\n  - { name: c, vendor: v, path_prefix: /c, upstream: http://h, mode: problem }\n  - { name: d, vendor: v, path_prefix: /d, upstream: http://h, mode: observe }\n";
    let c = parse(y).expect("valid");
    let get = |n: &str| {
        c.routes
            .iter()
            .find(|r| &*r.name == n)
            .expect("route")
            .clone()
    };
    assert_eq!(
        (get("a").mode, get("a").retry.enabled),
        (Mode::Annotate, false)
    );
    assert_eq!(
        (get("b").mode, get("b").retry.enabled),
        (Mode::Annotate, true)
    );
    assert_eq!(
        (get("c").mode, get("c").retry.enabled),
        (Mode::Problem, true)
    );
    // Observe keeps the policy only to count what it would have done; the proxy never retries.
    assert_eq!(get("d").mode, Mode::Observe);
    let plain = parse("routes:\n  - { name: a, vendor: v, path_prefix: /a, upstream: http://h }\n")
        .expect("valid");
    assert_eq!(
        plain.routes.iter().next().map(|r| r.mode),
        Some(Mode::Problem)
    );
}

#[test]
fn an_unknown_mode_names_the_three() {
    let y = "mode: loud\nroutes:\n  - { name: a, vendor: v, path_prefix: /a, upstream: http://h, mode: quiet }\n";
    let errs = parse(y).expect_err("bad modes").0;
    let got: Vec<(String, String)> = errs
        .iter()
        .map(|e| (e.place.clone(), e.message.clone()))
        .collect();
    for place in ["mode", "routes[0].mode"] {
        assert!(
            got.iter()
                .any(|(p, m)| p == place && m.contains("use problem, annotate or observe")),
            "{place}: {got:#?}"
        );
    }
}
