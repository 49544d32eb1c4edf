use super::load::{build_set, parse_catalog};
use super::*;

const CAT: &str = r#"
schema: 1
vendor: demo
envelope: { code: code, message: message }
entries:
  - { code: "0", match: { status: 400 }, canonical: INVALID_ARGUMENT, reason: BAD_JSON, retryable: false, detail: d }
  - { code: "0", match: { status: 500 }, canonical: INTERNAL, reason: SERVER, retryable: true, detail: d }
  - { code: "7", canonical: NOT_FOUND, reason: MEMBER, retryable: false, detail: d }
  - { code: "7", match: { message: "Member '{ref}' not found." }, canonical: NOT_FOUND, reason: MEMBER_REF, retryable: false, detail: d }
  - { match: { status: 400 }, canonical: INVALID_ARGUMENT, reason: DEFAULT_400, retryable: false, detail: d }
  - { match: { status: 400, method: GET, path: /api/*/media }, canonical: INVALID_ARGUMENT, reason: MEDIA_400, retryable: false, detail: d }
"#;

fn key<'a>(
    code: Option<&'a str>,
    status: u16,
    method: &'a str,
    path: &'a str,
    message: Option<&'a str>,
) -> LookupKey<'a> {
    LookupKey {
        code,
        status,
        method,
        path,
        message,
    }
}

#[test]
fn most_specific_entry_wins() {
    let v = parse_catalog(CAT.as_bytes(), "demo.yaml", "demo").expect("valid");
    let r = |k| v.lookup(&k).map(|e| e.reason.as_str());
    assert_eq!(r(key(Some("0"), 400, "GET", "/", None)), Some("BAD_JSON"));
    assert_eq!(r(key(Some("0"), 500, "GET", "/", None)), Some("SERVER"));
    assert_eq!(r(key(Some("0"), 404, "GET", "/", None)), None);
    assert_eq!(
        r(key(
            Some("7"),
            404,
            "GET",
            "/",
            Some("Member 'abc' not found.")
        )),
        Some("MEMBER_REF")
    );
    assert_eq!(
        r(key(Some("7"), 404, "GET", "/", Some("other"))),
        Some("MEMBER")
    );
    assert_eq!(
        r(key(None, 400, "GET", "/api/v1/media", None)),
        Some("MEDIA_400")
    );
    assert_eq!(
        r(key(None, 400, "POST", "/api/v1/media", None)),
        Some("DEFAULT_400")
    );
    assert_eq!(
        r(key(Some("99"), 400, "GET", "/x", None)),
        Some("DEFAULT_400")
    );
}

#[test]
fn message_templates_match_any_text_including_none_case_insensitively() {
    let re = compile_message_template("{x}limit{x}no less than 0{x}").expect("compiles");
    assert!(re.is_match("Limit: must be no less than 0."));
    assert!(re.is_match("limitno less than 0"));
    assert!(!re.is_match("offset must be positive"));
    let re = compile_message_template("a.b (c)").expect("literal specials are escaped");
    assert!(re.is_match("A.B (C)"));
    assert!(!re.is_match("axb (c)"));
}

#[test]
fn path_patterns_match_segments() {
    let p = PathPattern::parse("/api/*/media/**").expect("valid");
    assert!(p.matches("/api/v1/media"));
    assert!(p.matches("/api/v2/media/a/b"));
    assert!(!p.matches("/api/media"));
    assert!(PathPattern::parse("/a/**/b").is_err());
    assert!(PathPattern::parse("a").is_err());
    assert!(PathPattern::parse("/a/{id}").is_err());
}

#[test]
fn invalid_catalog_reports_every_problem_with_its_place() {
    let bad = r#"
schema: 2
vendor: other
envelope: { message: message }
entries:
  - { code: "1", canonical: NOPE, reason: lower_case, retryable: false }
  - { match: { status: 400 }, canonical: INTERNAL, reason: DUP, retryable: false, detail: d }
  - { match: { status: 400 }, canonical: INTERNAL, reason: DUP, retryable: false, detail: d }
  - { canonical: INTERNAL, reason: NO_CONDITION, retryable: false, detail: d }
"#;
    let errs = parse_catalog(bad.as_bytes(), "demo.yaml", "demo").expect_err("invalid");
    let places: Vec<&str> = errs.iter().map(|e| e.place.as_str()).collect();
    for want in [
        "schema",
        "vendor",
        "entries[0].code",
        "entries[0].canonical",
        "entries[0].reason",
        "entries[0].detail",
        "entries[2].reason",
        "entries[2]",
        "entries[3]",
    ] {
        assert!(places.contains(&want), "missing {want} in {places:?}");
    }
    assert!(errs.iter().all(|e| e.file == "demo.yaml"));
}

#[test]
fn yaml_errors_carry_a_line_and_never_panic() {
    for junk in [
        "",
        "[",
        "schema: [1",
        "\u{0}\u{1}",
        "entries: 5",
        "- a\n- b",
    ] {
        let errs = parse_catalog(junk.as_bytes(), "j.yaml", "j").expect_err("invalid");
        assert!(!errs.is_empty());
    }
    let errs =
        parse_catalog(b"schema: 1\nvendor: j\nentries: [\n", "j.yaml", "j").expect_err("syntax");
    assert!(errs[0].place.starts_with("line "), "{:?}", errs[0]);
}

#[test]
fn set_hash_changes_with_content_and_equal_content_gives_equal_hash() {
    let now = SystemTime::UNIX_EPOCH;
    let a = vec![(
        std::path::PathBuf::from("demo.yaml"),
        CAT.as_bytes().to_vec(),
    )];
    let s1 = build_set(&a, now).expect("valid");
    let s2 = build_set(&a, now).expect("valid");
    assert_eq!(s1.hash, s2.hash);
    let b = vec![(
        std::path::PathBuf::from("demo.yaml"),
        CAT.replace("SERVER", "SERVER_X").into_bytes(),
    )];
    assert_ne!(s1.hash, build_set(&b, now).expect("valid").hash);
    assert_eq!(s1.meta["demo"].entries, 6);
}

fn with_hint_headers(list: &str) -> String {
    CAT.replace(
        "envelope: { code: code, message: message }",
        &format!("envelope: {{ code: code, message: message }}\nrate_limit_headers: {list}"),
    )
}

#[test]
fn hint_headers_declare_their_form() {
    use crate::retry::HintForm::*;
    let src = with_hint_headers(
        "[Retry-After, RateLimit-Reset, {name: X-RateLimit-Reset, form: unix_millis}, {name: X-Wait-Until, form: [http_date, unix_seconds]}]",
    );
    let v = parse_catalog(src.as_bytes(), "demo.yaml", "demo").expect("valid");
    let got: Vec<(&str, &[crate::retry::HintForm])> = v
        .rate_limit_headers
        .iter()
        .map(|h| (h.name.as_str(), h.forms.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            ("Retry-After", &[DeltaSeconds, HttpDate][..]),
            ("RateLimit-Reset", &[DeltaSeconds][..]),
            ("X-RateLimit-Reset", &[UnixMillis][..]),
            ("X-Wait-Until", &[HttpDate, UnixSeconds][..]),
        ]
    );
    // Without the key: Retry-After in its standard forms.
    let v = parse_catalog(CAT.as_bytes(), "demo.yaml", "demo").expect("valid");
    assert_eq!(v.rate_limit_headers.len(), 1);
    assert_eq!(v.rate_limit_headers[0].forms, [DeltaSeconds, HttpDate]);
}

#[test]
fn bad_hint_headers_are_reported_with_their_place() {
    let src = with_hint_headers(
        "[X-Wait, {name: A, form: seconds}, {name: B, form: [unix_seconds, unix_millis]}, {name: C}, {form: unix_millis}, {name: \"bad name\", form: http_date}, {name: D, form: http_date, extra: 1}, 7, Retry-After, retry-after]",
    );
    let errs = parse_catalog(src.as_bytes(), "demo.yaml", "demo").expect_err("invalid");
    let got: Vec<String> = errs
        .iter()
        .map(|e| format!("{}: {}", e.place, e.message))
        .collect();
    for (place, says) in [
        (
            "rate_limit_headers[0]",
            "declare it as {name: X-Wait, form: FORM}",
        ),
        ("rate_limit_headers[1].form", "`seconds` is not a hint form"),
        ("rate_limit_headers[2].form", "at most one numeric form"),
        ("rate_limit_headers[3]", "needs `form`"),
        ("rate_limit_headers[4]", "needs `name`"),
        ("rate_limit_headers[5]", "is not a header name"),
        ("rate_limit_headers[6]", "unknown key `extra`"),
        ("rate_limit_headers[7]", "must be a header name"),
        ("rate_limit_headers[9]", "listed twice"),
    ] {
        assert!(
            got.iter()
                .any(|g| g.starts_with(&format!("{place}: ")) && g.contains(says)),
            "missing {place}: {says} in {got:#?}"
        );
    }
}

/// The success prefixes of an in-band field, as text.
fn prefixes(path: &str, kind: CaptureKind, success: &[&str]) -> Vec<String> {
    let success = success.iter().map(|s| s.to_string()).collect();
    InBand::new(0, path.to_string(), kind, success)
        .success_prefixes
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

#[test]
fn in_band_success_prefixes_are_the_plain_json_forms_of_a_top_level_field() {
    use CaptureKind::{Raw, Scalar};
    assert_eq!(
        prefixes("errCode", Scalar, &["0"]),
        [r#"{"errCode":"0""#, r#"{"errCode":0"#]
    );
    assert_eq!(
        prefixes("ActionStatus", Scalar, &["OK"]),
        [r#"{"ActionStatus":"OK""#]
    );
    assert_eq!(
        prefixes("success", Scalar, &["true", "null"]),
        [
            r#"{"success":"true""#,
            r#"{"success":true"#,
            r#"{"success":"null""#,
            r#"{"success":null"#
        ]
    );
    // Not JSON numbers ("01", " 0") only as strings; values with escapes or non-ASCII not at all.
    assert_eq!(
        prefixes("code", Scalar, &["01", " 0", "a\"b", "a\\b", "é", "-0.5e3"]),
        [
            r#"{"code":"01""#,
            r#"{"code":" 0""#,
            r#"{"code":"-0.5e3""#,
            r#"{"code":-0.5e3"#
        ]
    );
    // A nested field, a raw capture or a key that needs escaping: no prefix, always scanned.
    assert!(prefixes("data.code", Scalar, &["0"]).is_empty());
    assert!(prefixes("errCode", Raw, &["0"]).is_empty());
    assert!(prefixes("err\"Code", Scalar, &["0"]).is_empty());
    assert!(prefixes("", Scalar, &["0"]).is_empty());
}

#[test]
fn a_success_prefix_counts_only_when_the_value_has_ended() {
    let ib = InBand::new(0, "errCode".into(), CaptureKind::Scalar, vec!["0".into()]);
    for end in [",", "}", " ", "\t", "\n", "\r"] {
        let body = format!(r#"{{"errCode":0{end}"errMsg":""}}"#);
        assert_eq!(ib.success_prefix(body.as_bytes()), Some(12), "{body}");
    }
    assert_eq!(
        ib.success_prefix(br#"{"errCode":"0","errMsg":""}"#),
        Some(14)
    );
    for body in [
        &br#"{"errCode":0"#[..],
        br#"{"errCode":01}"#,
        br#"{"errCode":0.5,"#,
        br#"{"errCode":0x"#,
        br#"{"errCode":1,"#,
        br#" {"errCode":0,"#,
        br#"{ "errCode":0,"#,
        br#"{"errCode" :0,"#,
        br#"{"err\u0043ode":0,"#,
        br#"{"errCode":"0\u0000","#,
        b"",
    ] {
        assert_eq!(
            ib.success_prefix(body),
            None,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
