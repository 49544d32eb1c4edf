//! Unit and property tests of the streaming scanner.

use super::*;
use proptest::prelude::*;
use serde_json::Value;

// ---------------------------------------------------------------- helpers

/// Everything observable about one scan, for comparing differently split feeds.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    fields: Vec<Option<Field>>,
    result: Result<(), ScanError>,
    bytes: u64,
    root: Option<bool>,
}

fn run_chunks<'a>(
    spec: &ScanSpec,
    limits: ScanLimits,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Outcome {
    let mut sc = Scanner::new(spec, limits);
    for c in chunks {
        sc.feed(c);
    }
    let result = sc.finish();
    Outcome {
        fields: (0..spec.len()).map(|i| sc.field(i).cloned()).collect(),
        result,
        bytes: sc.bytes_scanned(),
        root: sc.root_is_object(),
    }
}

fn run_whole(spec: &ScanSpec, limits: ScanLimits, body: &[u8]) -> Outcome {
    run_chunks(spec, limits, [body])
}

/// Scans `body` whole, split in two at every offset, and byte by byte; all
/// must agree. Returns the whole-feed outcome.
fn run_all_splits(spec: &ScanSpec, limits: ScanLimits, body: &[u8]) -> Outcome {
    let whole = run_whole(spec, limits, body);
    for k in 0..=body.len() {
        let (a, b) = body.split_at(k);
        let split = run_chunks(spec, limits, [a, b]);
        assert_eq!(
            split,
            whole,
            "split at {k} differs for {:?}",
            String::from_utf8_lossy(body)
        );
    }
    let bytewise = run_chunks(spec, limits, body.chunks(1));
    assert_eq!(
        bytewise,
        whole,
        "1-byte chunks differ for {:?}",
        String::from_utf8_lossy(body)
    );
    whole
}

fn spec(paths: &[(&[&str], CaptureKind)]) -> ScanSpec {
    ScanSpec::new(paths)
}

fn lim() -> ScanLimits {
    ScanLimits::default()
}

fn str_field(s: &str) -> Option<Field> {
    Some(Field {
        value: Captured::Str(s.to_owned()),
        truncated: false,
    })
}

fn num_field(s: &str) -> Option<Field> {
    Some(Field {
        value: Captured::Num(s.to_owned()),
        truncated: false,
    })
}

fn raw_field(s: &str) -> Option<Field> {
    Some(Field {
        value: Captured::Raw(s.as_bytes().to_vec()),
        truncated: false,
    })
}

fn bool_field(b: bool) -> Option<Field> {
    Some(Field {
        value: Captured::Bool(b),
        truncated: false,
    })
}

const S: CaptureKind = CaptureKind::Scalar;
const R: CaptureKind = CaptureKind::Raw;

fn openim() -> ScanSpec {
    spec(&[(&["errCode"], S), (&["errMsg"], S), (&["errDlt"], S)])
}

fn tencent() -> ScanSpec {
    spec(&[
        (&["ActionStatus"], S),
        (&["ErrorCode"], S),
        (&["ErrorInfo"], S),
    ])
}

fn mantago() -> ScanSpec {
    spec(&[
        (&["success"], S),
        (&["errResponse", "message"], S),
        (&["errResponse", "code"], S),
        (&["errResponse", "botId"], S),
    ])
}

fn pluralkit() -> ScanSpec {
    spec(&[
        (&["code"], S),
        (&["message"], S),
        (&["retry_after"], S),
        (&["errors"], R),
    ])
}

fn microcms() -> ScanSpec {
    spec(&[(&["message"], S)])
}

const OPENIM: &str =
    r#"{"errCode":1501,"errMsg":"token expired","errDlt":"token expired: uid 42"}"#;
const TENCENT: &str =
    r#"{"ActionStatus":"FAIL","ErrorCode":60007,"ErrorInfo":"rest 接口调用频率超过限制"}"#;
const MANTAGO_STR: &str =
    r#"{"success":false,"errResponse":{"message":"m","code":"1004","botId":"x"}}"#;
const MANTAGO_NUM: &str = r#"{ "success" : false , "errResponse" : { "message" : "m" , "code" : 1004 , "botId" : "x" } }"#;
const PLURALKIT: &str = r#"{"code":20002,"message":"Member not found.","retry_after":2543,"errors":{"name":[{"message":"too long","max_length":100,"actual_length":120}]}}"#;
const MICROCMS: &str = r#"{"message":"contentId is invalid."}"#;

// ------------------------------------------------------- vendor envelopes

#[test]
fn openim_envelope_captures_code_message_and_detail() {
    let out = run_all_splits(&openim(), lim(), OPENIM.as_bytes());
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.root, Some(true));
    assert_eq!(out.fields[0], num_field("1501"));
    assert_eq!(out.fields[1], str_field("token expired"));
    assert_eq!(out.fields[2], str_field("token expired: uid 42"));
    assert_eq!(out.bytes, OPENIM.len() as u64);
}

#[test]
fn tencent_im_envelope_captures_status_code_and_chinese_info() {
    let out = run_all_splits(&tencent(), lim(), TENCENT.as_bytes());
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields[0], str_field("FAIL"));
    assert_eq!(out.fields[1], num_field("60007"));
    assert_eq!(out.fields[2], str_field("rest 接口调用频率超过限制"));
}

#[test]
fn mantago_nested_code_captured_as_string() {
    let out = run_all_splits(&mantago(), lim(), MANTAGO_STR.as_bytes());
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields[0], bool_field(false));
    assert_eq!(out.fields[1], str_field("m"));
    assert_eq!(out.fields[2], str_field("1004"));
    assert_eq!(out.fields[3], str_field("x"));
}

#[test]
fn mantago_nested_code_captured_as_number_with_whitespace_everywhere() {
    let out = run_all_splits(&mantago(), lim(), MANTAGO_NUM.as_bytes());
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields[0], bool_field(false));
    assert_eq!(out.fields[2], num_field("1004"));
    assert_eq!(out.fields[3], str_field("x"));
}

#[test]
fn pluralkit_errors_object_captured_raw_verbatim() {
    let out = run_all_splits(&pluralkit(), lim(), PLURALKIT.as_bytes());
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields[0], num_field("20002"));
    assert_eq!(out.fields[1], str_field("Member not found."));
    assert_eq!(out.fields[2], num_field("2543"));
    assert_eq!(
        out.fields[3],
        raw_field(r#"{"name":[{"message":"too long","max_length":100,"actual_length":120}]}"#)
    );
}

#[test]
fn raw_capture_keeps_inner_whitespace_and_any_value_type() {
    let sp = spec(&[(&["a"], R), (&["b"], R), (&["c"], R), (&["d"], R)]);
    let body = br#"{"a": [ 1 , {"x" : "\u00e9"} ] ,"b":-1.5e+3 ,"c":"q\"\n","d":null}"#;
    let out = run_all_splits(&sp, lim(), body);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields[0], raw_field(r#"[ 1 , {"x" : "\u00e9"} ]"#));
    assert_eq!(out.fields[1], raw_field("-1.5e+3"));
    assert_eq!(out.fields[2], raw_field(r#""q\"\n""#));
    assert_eq!(out.fields[3], raw_field("null"));
}

#[test]
fn microcms_message_only_envelope() {
    let out = run_all_splits(&microcms(), lim(), MICROCMS.as_bytes());
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields[0], str_field("contentId is invalid."));
}

#[test]
fn absent_paths_leave_fields_empty_on_a_valid_body() {
    let out = run_all_splits(
        &openim(),
        lim(),
        br#"{"data":{"errCode":5},"list":[{"errMsg":"no"}]}"#,
    );
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields, vec![None, None, None]);
}

// ----------------------------------------------------------------- strings

#[test]
fn escapes_are_unescaped_in_captured_strings() {
    let body = br#"{"errMsg":"a\"b\\c\/d\b\f\n\r\t\u00e9\u4e2D!"}"#;
    let out = run_all_splits(&openim(), lim(), body);
    assert_eq!(out.fields[1], str_field("a\"b\\c/d\u{8}\u{c}\n\r\té中!"));
}

#[test]
fn surrogate_pair_escape_decodes_to_astral_char() {
    let out = run_all_splits(
        &openim(),
        lim(),
        br#"{"errMsg":"x\ud83d\ude00y\uD834\uDD1E"}"#,
    );
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields[1], str_field("x😀y𝄞"));
}

#[test]
fn lone_surrogates_become_replacement_char() {
    let cases: &[(&str, &str)] = &[
        (r#""\ud800""#, "\u{FFFD}"),
        (r#""\udc00x""#, "\u{FFFD}x"),
        (r#""\ud800x""#, "\u{FFFD}x"),
        (r#""\ud800\n""#, "\u{FFFD}\n"),
        (r#""\ud800\u0041""#, "\u{FFFD}A"),
        (r#""\ud800\ud83d\ude00""#, "\u{FFFD}😀"),
        (r#""\ude00\ud83d""#, "\u{FFFD}\u{FFFD}"),
        (r#""\ud800é""#, "\u{FFFD}é"),
    ];
    for (val, want) in cases {
        let body = format!(r#"{{"errMsg":{val}}}"#);
        let out = run_all_splits(&openim(), lim(), body.as_bytes());
        assert_eq!(out.result, Ok(()), "{body}");
        assert_eq!(out.fields[1], str_field(want), "{body}");
    }
}

#[test]
fn escaped_key_matches_configured_path() {
    let body = br#"{"err\u0043ode":7,"errM\u0073g":"x","\u0065rrDlt":"\u0064"}"#;
    let out = run_all_splits(&openim(), lim(), body);
    assert_eq!(out.fields[0], num_field("7"));
    assert_eq!(out.fields[1], str_field("x"));
    assert_eq!(out.fields[2], str_field("d"));
}

#[test]
fn non_ascii_keys_match_including_escaped_astral_chars() {
    let sp = spec(&[(&["错误", "代码"], S), (&["😀"], S)]);
    let body = r#"{"😀x":1,"错误":{"代码":"E1"},"\ud83d\ude00":true}"#;
    let out = run_all_splits(&sp, lim(), body.as_bytes());
    assert_eq!(out.fields[0], str_field("E1"));
    assert_eq!(out.fields[1], bool_field(true));
}

#[test]
fn key_prefixes_and_extensions_do_not_match() {
    let body = br#"{"errCod":1,"errCodes":2,"errcode":3,"":4,"errCode":5}"#;
    let out = run_all_splits(&openim(), lim(), body);
    assert_eq!(out.fields[0], num_field("5"));
}

// ------------------------------------------------------------- structure

#[test]
fn keys_in_any_order() {
    let body = br#"{"errDlt":"d","errMsg":"m","errCode":"C1"}"#;
    let out = run_all_splits(&openim(), lim(), body);
    assert_eq!(out.fields[0], str_field("C1"));
    assert_eq!(out.fields[1], str_field("m"));
    assert_eq!(out.fields[2], str_field("d"));
}

#[test]
fn captured_key_after_deep_nested_object() {
    let mut body = String::from(r#"{"data":"#);
    for i in 0..20 {
        body.push_str(&format!(r#"{{"errCode":{i},"l":[["#));
    }
    body.push('1');
    for _ in 0..20 {
        body.push_str("]]}");
    }
    body.push_str(r#","errCode":-0.5E-7,"errMsg":"after"}"#);
    let out = run_all_splits(&openim(), lim(), body.as_bytes());
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields[0], num_field("-0.5E-7"));
    assert_eq!(out.fields[1], str_field("after"));
}

#[test]
fn repeated_key_first_occurrence_wins() {
    let body = br#"{"errCode":1,"errMsg":"first","errCode":2,"errMsg":"second"}"#;
    let out = run_all_splits(&openim(), lim(), body);
    assert_eq!(out.fields[0], num_field("1"));
    assert_eq!(out.fields[1], str_field("first"));
}

#[test]
fn scalar_path_with_container_value_is_not_captured() {
    let body = br#"{"errCode":{"v":1},"errMsg":["x"],"errDlt":"later"}"#;
    let out = run_all_splits(&openim(), lim(), body);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.fields[0], None);
    assert_eq!(out.fields[1], None);
    assert_eq!(out.fields[2], str_field("later"));
}

#[test]
fn paths_do_not_go_through_arrays() {
    let sp = spec(&[(&["a", "b"], S)]);
    let out = run_all_splits(&sp, lim(), br#"{"a":[{"b":1}],"c":{"a":{"b":2}}}"#);
    assert_eq!(out.fields[0], None);
    let out = run_all_splits(
        &sp,
        lim(),
        br#"{"c":{"a":{"b":2}},"a":{"x":[{"b":0}],"b":3}}"#,
    );
    assert_eq!(out.fields[0], num_field("3"));
}

#[test]
fn nested_raw_and_scalar_paths_capture_together() {
    let sp = spec(&[
        (&["e"], R),
        (&["e", "code"], S),
        (&["e", "code"], R),
        (&["e", "d"], R),
    ]);
    let body = br#"{"e":{"code":"X9","d":{"k":[1,2]}}}"#;
    let out = run_all_splits(&sp, lim(), body);
    assert_eq!(out.fields[0], raw_field(r#"{"code":"X9","d":{"k":[1,2]}}"#));
    assert_eq!(out.fields[1], str_field("X9"));
    assert_eq!(out.fields[2], raw_field(r#""X9""#));
    assert_eq!(out.fields[3], raw_field(r#"{"k":[1,2]}"#));
}

#[test]
fn scalars_of_every_type_are_captured() {
    let sp = spec(&[
        (&["t"], S),
        (&["f"], S),
        (&["n"], S),
        (&["z"], S),
        (&["e"], S),
    ]);
    let out = run_all_splits(
        &sp,
        lim(),
        br#"{"t":true,"f":false,"n":null,"z":-0,"e":""}"#,
    );
    assert_eq!(out.fields[0], bool_field(true));
    assert_eq!(out.fields[1], bool_field(false));
    assert_eq!(
        out.fields[2],
        Some(Field {
            value: Captured::Null,
            truncated: false
        })
    );
    assert_eq!(out.fields[3], num_field("-0"));
    assert_eq!(out.fields[4], str_field(""));
}

#[test]
fn root_array_or_scalar_captures_nothing_but_validates() {
    for (body, root) in [
        (&br#"[{"errCode":1}]"#[..], false),
        (b"\"errCode\"", false),
        (b" 12 ", false),
        (b"{}", true),
    ] {
        let out = run_all_splits(&openim(), lim(), body);
        assert_eq!(out.result, Ok(()));
        assert_eq!(out.root, Some(root));
        assert_eq!(out.fields, vec![None, None, None]);
    }
}

// ---------------------------------------------------------------- limits

#[test]
fn truncation_at_max_capture_bytes_keeps_char_boundary() {
    let limits = ScanLimits {
        max_depth: 64,
        max_capture_bytes: 8,
    };
    // "abcdefg" + 3-byte char: 7 bytes fit, the char would end at 10.
    let out = run_all_splits(&openim(), limits, r#"{"errMsg":"abcdefg中zz"}"#.as_bytes());
    assert_eq!(
        out.fields[1],
        Some(Field {
            value: Captured::Str("abcdefg".into()),
            truncated: true
        })
    );
    // Exactly max bytes is not truncated.
    let out = run_all_splits(&openim(), limits, br#"{"errMsg":"abcdefgh"}"#);
    assert_eq!(out.fields[1], str_field("abcdefgh"));
    // Escapes count after unescaping.
    let out = run_all_splits(
        &openim(),
        limits,
        br#"{"errMsg":"\u0041\u0042\n\n\n\n\n\n\n"}"#,
    );
    assert_eq!(
        out.fields[1],
        Some(Field {
            value: Captured::Str("AB\n\n\n\n\n\n".into()),
            truncated: true
        })
    );
}

#[test]
fn truncation_applies_to_numbers_and_raw_values() {
    let limits = ScanLimits {
        max_depth: 64,
        max_capture_bytes: 4,
    };
    let sp = spec(&[(&["n"], S), (&["r"], R), (&["s"], R)]);
    let out = run_all_splits(&sp, limits, br#"{"n":123456,"r":[1,2,3],"s":"ab"}"#);
    assert_eq!(
        out.fields[0],
        Some(Field {
            value: Captured::Num("1234".into()),
            truncated: true
        })
    );
    assert_eq!(
        out.fields[1],
        Some(Field {
            value: Captured::Raw(b"[1,2".to_vec()),
            truncated: true
        })
    );
    assert_eq!(out.fields[2], raw_field(r#""ab""#));
}

#[test]
fn depth_limit_is_enforced_at_the_offending_bracket() {
    let limits = ScanLimits {
        max_depth: 3,
        max_capture_bytes: 64,
    };
    let ok = run_all_splits(&openim(), limits, br#"{"a":[{"b":1}],"errCode":2}"#);
    assert_eq!(ok.result, Ok(()));
    assert_eq!(ok.fields[0], num_field("2"));
    let deep = run_all_splits(&openim(), limits, br#"{"errCode":2,"a":[{"b":[1]}]}"#);
    assert_eq!(deep.result, Err(ScanError::DepthExceeded { offset: 23 }));
    assert_eq!(
        deep.fields[0],
        num_field("2"),
        "fields before the error are kept"
    );
    assert_eq!(deep.bytes, 23);
    let arrays = run_whole(&openim(), lim(), &[b'['; 65]);
    assert_eq!(arrays.result, Err(ScanError::DepthExceeded { offset: 64 }));
}

#[test]
fn depth_beyond_128_uses_the_spill_stack() {
    let limits = ScanLimits {
        max_depth: 300,
        max_capture_bytes: 64,
    };
    let mut body = String::new();
    for i in 0..290 {
        body.push(if i % 3 == 0 { '[' } else { '{' });
        if i % 3 != 0 {
            body.push_str(r#""k":"#);
        }
    }
    body.push('0');
    for i in (0..290).rev() {
        body.push(if i % 3 == 0 { ']' } else { '}' });
    }
    assert!(
        serde_json::from_str::<Value>(&body).is_err(),
        "serde's limit is 128"
    );
    let out = run_whole(&openim(), limits, body.as_bytes());
    assert_eq!(out.result, Ok(()));
    let bad = body.replacen("]}", "}}", 1);
    let out = run_whole(&openim(), limits, bad.as_bytes());
    assert!(matches!(out.result, Err(ScanError::Syntax { .. })));
}

// --------------------------------------------------------------- progress

#[test]
fn need_more_until_the_top_level_value_ends() {
    let sp = openim();
    let mut sc = Scanner::new(&sp, lim());
    let body = OPENIM.as_bytes();
    let (head, last) = body.split_at(body.len() - 1);
    for b in head.chunks(1) {
        assert_eq!(sc.feed(b), Progress::NeedMore);
        assert!(!sc.is_done());
    }
    assert_eq!(sc.feed(b""), Progress::NeedMore);
    assert_eq!(sc.feed(last), Progress::Done);
    assert!(sc.is_done());
    assert_eq!(sc.feed(b" \r\n\t"), Progress::Done);
    assert_eq!(sc.finish(), Ok(()));
    assert_eq!(sc.error(), None);
    assert_eq!(sc.bytes_scanned(), body.len() as u64 + 4);
}

#[test]
fn top_level_number_ends_only_at_a_delimiter_or_finish() {
    let sp = openim();
    let mut sc = Scanner::new(&sp, lim());
    assert_eq!(sc.feed(b"12"), Progress::NeedMore);
    assert_eq!(sc.feed(b"3"), Progress::NeedMore);
    assert_eq!(sc.finish(), Ok(()));
    assert!(sc.is_done());
    let mut sc = Scanner::new(&sp, lim());
    assert_eq!(sc.feed(b"-1.5e3 "), Progress::Done);
    assert_eq!(sc.finish(), Ok(()));
    let mut sc = Scanner::new(&sp, lim());
    sc.feed(b"-1.");
    assert_eq!(sc.finish(), Err(ScanError::Truncated));
}

#[test]
fn trailing_garbage_is_an_error_at_its_offset() {
    for (body, offset) in [
        (&br#"{"errCode":1} x"#[..], 14),
        (br#"{"errCode":1}{}"#, 13),
        (b"1 2", 2),
        (b"[]]", 2),
        (b"\"a\"\"", 3),
        (b"null\x00", 4),
    ] {
        let out = run_all_splits(&openim(), lim(), body);
        assert_eq!(
            out.result,
            Err(ScanError::TrailingData { offset }),
            "{body:?}"
        );
    }
    let out = run_all_splits(&openim(), lim(), br#"{"errCode":1} x"#);
    assert_eq!(out.fields[0], num_field("1"));
    let sp = openim();
    let mut sc = Scanner::new(&sp, lim());
    assert_eq!(sc.feed(br#"{"errCode":1}"#), Progress::Done);
    assert_eq!(sc.feed(b" ,"), Progress::Done);
    assert_eq!(sc.error(), Some(&ScanError::TrailingData { offset: 14 }));
}

#[test]
fn empty_and_whitespace_only_bodies_are_empty() {
    for body in [&b""[..], b" ", b"\r\n\t "] {
        let out = run_all_splits(&openim(), lim(), body);
        assert_eq!(out.result, Err(ScanError::Empty));
        assert_eq!(out.root, None);
    }
}

#[test]
fn truncated_body_is_truncated_and_keeps_completed_fields() {
    let body = br#"{"errCode":1501,"errMsg":"token exp"#;
    let out = run_all_splits(&openim(), lim(), body);
    assert_eq!(out.result, Err(ScanError::Truncated));
    assert_eq!(out.fields[0], num_field("1501"));
    assert_eq!(out.fields[1], None, "an unfinished value is not exposed");
    for cut in 1..OPENIM.len() {
        let out = run_whole(&openim(), lim(), &OPENIM.as_bytes()[..cut]);
        assert_eq!(out.result, Err(ScanError::Truncated), "cut at {cut}");
    }
}

#[test]
fn error_state_is_sticky_and_keeps_captures() {
    let sp = openim();
    let mut sc = Scanner::new(&sp, lim());
    assert_eq!(sc.feed(br#"{"errCode":7,"errMsg":tru"#), Progress::NeedMore);
    assert_eq!(sc.feed(b"x,"), Progress::Done);
    let err = ScanError::Syntax { offset: 25 };
    assert_eq!(sc.error(), Some(&err));
    assert_eq!(sc.feed(br#"true}"#), Progress::Done);
    assert_eq!(sc.finish(), Err(err.clone()));
    assert_eq!(sc.finish(), Err(err));
    assert_eq!(sc.field(0), Some(&num_field("7").unwrap()));
    assert_eq!(sc.bytes_scanned(), 25);
    assert_eq!(sc.take_field(0), num_field("7"));
    assert_eq!(sc.field(0), None);
}

// ---------------------------------------------------------------- strictness

fn syntax_at(body: &[u8]) -> Option<u64> {
    match run_all_splits(&openim(), lim(), body).result {
        Err(ScanError::Syntax { offset }) => Some(offset),
        _ => None,
    }
}

#[test]
fn number_grammar_is_strict() {
    for (body, at) in [
        (&b"01"[..], None), // `0` then trailing `1`
        (b"[01]", Some(2)),
        (b"[-01]", Some(3)),
        (b"[+1]", Some(1)),
        (b"[.5]", Some(1)),
        (b"[1.]", Some(3)),
        (b"[1.e3]", Some(3)),
        (b"[1e]", Some(3)),
        (b"[1e+]", Some(4)),
        (b"[-]", Some(2)),
        (b"[- 1]", Some(2)),
        (b"[0x1]", Some(2)),
        (b"[Infinity]", Some(1)),
        (b"[NaN]", Some(1)),
        (b"[1.5E+3,-0.0e-0,0,10]", None),
    ] {
        assert_eq!(syntax_at(body), at, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn literals_must_be_exact() {
    for (body, at) in [
        (&b"[tru]"[..], Some(4)),
        (b"[True]", Some(1)),
        (b"[nul]", Some(4)),
        (b"[falsey]", Some(6)),
        (b"[truefalse]", Some(5)),
        (b"[true,false,null]", None),
    ] {
        assert_eq!(syntax_at(body), at, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn string_rules_are_strict() {
    for (body, at) in [
        (&b"[\"a\tb\"]"[..], Some(3)),
        (b"[\"a\x00\"]", Some(3)),
        (b"[\"\x1f\"]", Some(2)),
        (br#"["\x"]"#, Some(3)),
        (br#"["\u12G4"]"#, Some(6)),
        (br#"["\U0041"]"#, Some(3)),
        (br#"['a']"#, Some(1)),
        (b"{\"errMsg\":\"a\x0ab\"}", Some(12)),
        (br#"{"errMsg":"\q"}"#, Some(12)),
        (b"[\"\x7f\"]", None),
    ] {
        assert_eq!(syntax_at(body), at, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn invalid_utf8_is_rejected_at_the_lead_byte() {
    let cases: &[(&[u8], u64)] = &[
        (b"[\"\xc0\xaf\"]", 2),             // overlong '/'
        (b"[\"\xe0\x80\xaf\"]", 2),         // overlong 3-byte
        (b"[\"\xf0\x80\x80\xaf\"]", 2),     // overlong 4-byte
        (b"[\"\xed\xa0\x80\"]", 2),         // UTF-8 encoded surrogate
        (b"[\"\xf4\x90\x80\x80\"]", 2),     // > U+10FFFF
        (b"[\"\xf5\x80\x80\x80\"]", 2),     // invalid lead
        (b"[\"ab\x80\"]", 4),               // lone continuation
        (b"[\"\xe4\xb8\"]", 2),             // truncated sequence before the quote
        (b"[\"\xe4\xb8x\xad\"]", 2),        // interrupted sequence
        (b"[\"\xf0\x9f\x98\"]", 2),         // truncated 4-byte
        (b"[\"\xc3\"]", 2),                 // truncated 2-byte
        (b"[\xc3\xa9]", 1),                 // non-ASCII outside a string
        (b"\xef\xbb\xbf{}", 0),             // BOM
        (b"{\"errMsg\":\"\xe4\xb8\"}", 11), // in a captured string
        (b"{\"err\xffCode\":1}", 5),        // in a key
    ];
    for (body, at) in cases {
        assert_eq!(syntax_at(body), Some(*at), "{body:?}");
        assert!(serde_json::from_slice::<Value>(body).is_err());
    }
    let ok = run_all_splits(
        &openim(),
        lim(),
        "{\"errMsg\":\"é中😀\u{10FFFF}\u{FFFF}\"}".as_bytes(),
    );
    assert_eq!(ok.fields[1], str_field("é中😀\u{10FFFF}\u{FFFF}"));
}

#[test]
fn truncated_utf8_at_end_of_body_is_truncated_not_syntax() {
    let out = run_all_splits(&openim(), lim(), b"{\"errMsg\":\"\xe4\xb8");
    assert_eq!(out.result, Err(ScanError::Truncated));
}

#[test]
fn structural_errors_report_offsets() {
    for (body, at) in [
        (&b"[1,]"[..], 3),
        (br#"{"a":1,}"#, 7),
        (br#"{"a" 1}"#, 5),
        (br#"{"a":}"#, 5),
        (br#"{1:2}"#, 1),
        (b"[1 2]", 3),
        (b"[}", 1),
        (b"{]", 1),
        (br#"{"a":1]"#, 6),
        (br#"[1}"#, 2),
        (b"]", 0),
        (b"[\x0c]", 1),
    ] {
        assert_eq!(
            syntax_at(body),
            Some(at),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn spec_rejects_too_many_or_empty_paths() {
    let keys: Vec<String> = (0..17).map(|i| format!("k{i}")).collect();
    let paths: Vec<Vec<&str>> = keys.iter().map(|k| vec![k.as_str()]).collect();
    let many: Vec<(&[&str], CaptureKind)> = paths.iter().map(|p| (p.as_slice(), S)).collect();
    assert_eq!(
        ScanSpec::try_new(&many).err(),
        Some(SpecError::TooManyPaths { given: 17 })
    );
    let sixteen = ScanSpec::try_new(&many[..16]).expect("16 paths are fine");
    assert_eq!(sixteen.len(), 16);
    assert_eq!(
        ScanSpec::try_new(&[(&["a"], S), (&[], R)]).err(),
        Some(SpecError::EmptyPath { index: 1 })
    );
    assert!(ScanSpec::new(&[]).is_empty());
    assert_eq!(sixteen.kind(3), Some(S));
    assert_eq!(sixteen.kind(16), None);
}

#[test]
fn sixteen_paths_all_capture() {
    let keys: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
    let paths: Vec<Vec<&str>> = keys.iter().map(|k| vec![k.as_str()]).collect();
    let specs: Vec<(&[&str], CaptureKind)> = paths.iter().map(|p| (p.as_slice(), S)).collect();
    let sp = ScanSpec::new(&specs);
    let body = format!(
        "{{{}}}",
        (0..16)
            .rev()
            .map(|i| format!(r#""k{i}":{i}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let out = run_all_splits(&sp, lim(), body.as_bytes());
    for i in 0..16 {
        assert_eq!(out.fields[i], num_field(&i.to_string()));
    }
}

// -------------------------------------------------- split-invariance fixtures

fn fixtures() -> Vec<(ScanSpec, Vec<u8>)> {
    let mut v: Vec<(ScanSpec, Vec<u8>)> = vec![
        (openim(), OPENIM.into()),
        (tencent(), TENCENT.into()),
        (mantago(), MANTAGO_STR.into()),
        (mantago(), MANTAGO_NUM.into()),
        (pluralkit(), PLURALKIT.into()),
        (microcms(), MICROCMS.into()),
        (
            openim(),
            br#"{"errMsg":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800x","errCode":-12.5e3}"#
                .to_vec(),
        ),
        (
            openim(),
            "{\"错\":\"é中😀\",\"errMsg\":\"é中😀x\u{10FFFF}\"}".into(),
        ),
        (
            openim(),
            br#"{"err\u0043ode":true,"errMsg":null,"errDlt":false}"#.to_vec(),
        ),
        (openim(), b"{\"errMsg\":\"\xe4\xb8x\"}".to_vec()),
        (openim(), b"{\"skip\":\"\xf0\x9f\x98\"}".to_vec()),
        (openim(), b"\xef\xbb\xbf{}".to_vec()),
        (
            openim(),
            br#"{"errCode":1,"x":[1,2,{"a":"b"}],"errMsg":"m"} x"#.to_vec(),
        ),
        (openim(), br#"{"errCode":01}"#.to_vec()),
        (openim(), br#"{"errCode":1.}"#.to_vec()),
        (openim(), br#"{"errCode":"\u12"}"#.to_vec()),
        (openim(), br#"{"errCode":"a"#.to_vec()),
        (openim(), b" \t\n 1234 ".to_vec()),
        (openim(), br#"[[[[{"errCode":1}]]]]"#.to_vec()),
    ];
    let mut deep = String::from("{\"errCode\":{");
    deep.push_str(&"[".repeat(70));
    deep.push_str(&"]".repeat(70));
    deep.push_str("}}");
    v.push((openim(), deep.into_bytes()));
    v
}

#[test]
fn every_fixture_gives_the_same_outcome_at_every_split() {
    for (sp, body) in fixtures() {
        run_all_splits(&sp, lim(), &body);
        let tight = ScanLimits {
            max_depth: 3,
            max_capture_bytes: 3,
        };
        run_all_splits(&sp, tight, &body);
    }
}

// ---------------------------------------------------- generated documents

/// xorshift64*, seeded by proptest, drives formatting choices.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.next() % n == 0
    }
}

fn write_ws(r: &mut Rng, out: &mut Vec<u8>) {
    if r.one_in(4) {
        for _ in 0..1 + r.next() % 3 {
            out.push(b" \t\n\r"[(r.next() % 4) as usize]);
        }
    }
}

fn write_u_escape(r: &mut Rng, out: &mut Vec<u8>, unit: u16) {
    let s = format!("\\u{unit:04x}");
    if r.one_in(2) {
        out.extend_from_slice(s.to_uppercase().replace("\\U", "\\u").as_bytes());
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Serializes a string with randomly chosen (but always valid) escapes.
fn write_str(r: &mut Rng, out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let must_escape = c == '"' || c == '\\' || (c as u32) < 0x20;
        if must_escape || r.one_in(8) {
            match short {
                Some(e) if r.one_in(2) => out.extend_from_slice(e.as_bytes()),
                _ => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        write_u_escape(r, out, *u);
                    }
                }
            }
        } else {
            let mut tmp = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        }
    }
    out.push(b'"');
}

fn write_json(r: &mut Rng, out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_str(r, out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_ws(r, out);
                write_json(r, out, item);
                write_ws(r, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            for k in (1..entries.len()).rev() {
                entries.swap(k, (r.next() % (k as u64 + 1)) as usize);
            }
            out.push(b'{');
            for (k, (key, val)) in entries.into_iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_ws(r, out);
                write_str(r, out, key);
                write_ws(r, out);
                out.push(b':');
                write_ws(r, out);
                write_json(r, out, val);
                write_ws(r, out);
            }
            out.push(b'}');
        }
    }
}

fn render(v: &Value, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    let mut out = Vec::new();
    write_ws(&mut r, &mut out);
    write_json(&mut r, &mut out, v);
    write_ws(&mut r, &mut out);
    out
}

fn arb_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range('a', 'z'),
        2 => prop::sample::select(vec!['"', '\\', '/', '\n', '\t', '\u{0}', '\u{8}', '\u{1f}', '\u{7f}', ' ']),
        2 => prop::sample::select(vec![
            'é', 'ü', '中', '限', '\u{80}', '\u{7ff}', '\u{800}', '\u{FFFD}', '\u{FFFF}', '😀',
            '\u{10000}', '\u{10FFFF}'
        ]),
        1 => any::<char>(),
    ]
}

fn arb_string() -> impl Strategy<Value = String> {
    prop::collection::vec(arb_char(), 0..20).prop_map(|v| v.into_iter().collect())
}

const VENDOR_KEYS: &[&str] = &[
    "errCode",
    "errMsg",
    "errDlt",
    "code",
    "message",
    "errors",
    "errResponse",
    "ErrorCode",
    "data",
];

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(VENDOR_KEYS).prop_map(String::from),
        2 => arb_string(),
    ]
}

fn arb_number() -> impl Strategy<Value = serde_json::Number> {
    prop_oneof![
        (-1000i64..1000).prop_map(serde_json::Number::from),
        any::<i64>().prop_map(serde_json::Number::from),
        any::<u64>().prop_map(serde_json::Number::from),
        any::<f64>().prop_filter_map("finite", serde_json::Number::from_f64),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_number().prop_map(Value::Number),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A vendor-style envelope: vendor keys with scalar values, an optional
/// nested error object and an arbitrary payload.
fn arb_envelope() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        arb_number().prop_map(Value::Number),
        arb_string().prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    (
        prop::collection::vec((prop::sample::select(VENDOR_KEYS), scalar.clone()), 0..6),
        prop::collection::vec((prop::sample::select(VENDOR_KEYS), scalar), 0..4),
        arb_value(),
    )
        .prop_map(|(top, inner, payload)| {
            let mut m: serde_json::Map<String, Value> =
                top.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if !inner.is_empty() {
                let e = inner.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                m.insert("errResponse".into(), Value::Object(e));
            }
            m.insert("payload".into(), payload);
            Value::Object(m)
        })
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.as_object()?.get(k))
}

/// Paths to capture: every root key and every key one level down through
/// objects, plus a few vendor paths that may be absent; kinds alternate.
fn paths_for(v: &Value, seed: u64) -> Vec<(Vec<String>, CaptureKind)> {
    let mut r = Rng::new(seed ^ 0x5151);
    let mut paths: Vec<Vec<String>> = vec![
        vec!["errCode".into()],
        vec!["errResponse".into(), "code".into()],
    ];
    if let Some(m) = v.as_object() {
        for (k, child) in m {
            paths.push(vec![k.clone()]);
            if let Some(cm) = child.as_object() {
                for k2 in cm.keys() {
                    paths.push(vec![k.clone(), k2.clone()]);
                }
            }
        }
    }
    paths.sort();
    paths.dedup();
    paths.truncate(MAX_PATHS);
    paths
        .into_iter()
        .map(|p| (p, if r.one_in(3) { R } else { S }))
        .collect()
}

fn build_spec(paths: &[(Vec<String>, CaptureKind)]) -> ScanSpec {
    let refs: Vec<Vec<&str>> = paths
        .iter()
        .map(|(p, _)| p.iter().map(String::as_str).collect())
        .collect();
    let input: Vec<(&[&str], CaptureKind)> = refs
        .iter()
        .zip(paths)
        .map(|(p, (_, k))| (p.as_slice(), *k))
        .collect();
    ScanSpec::new(&input)
}

const BIG: ScanLimits = ScanLimits {
    max_depth: 128,
    max_capture_bytes: 1 << 20,
};

/// The scanner accepts `text` and captures exactly what serde_json reads there.
fn assert_agrees_with_serde(text: &[u8], paths: &[(Vec<String>, CaptureKind)]) -> Outcome {
    let parsed: Value = serde_json::from_slice(text).expect("generated JSON is valid");
    let sp = build_spec(paths);
    let out = run_whole(&sp, BIG, text);
    assert_eq!(out.result, Ok(()), "{}", String::from_utf8_lossy(text));
    assert_eq!(out.root, Some(parsed.is_object()));
    for (i, (path, kind)) in paths.iter().enumerate() {
        let want = lookup(&parsed, path);
        let got = out.fields[i].as_ref();
        if let Some(f) = got {
            assert!(!f.truncated);
        }
        match (kind, want) {
            (_, None) | (CaptureKind::Scalar, Some(Value::Array(_) | Value::Object(_))) => {
                assert_eq!(got, None, "path {path:?}")
            }
            (CaptureKind::Scalar, Some(w)) => {
                let got = match got.map(|f| &f.value) {
                    Some(Captured::Str(s)) => Value::String(s.clone()),
                    Some(Captured::Num(n)) => serde_json::from_str(n).expect("number text"),
                    Some(Captured::Bool(b)) => Value::Bool(*b),
                    Some(Captured::Null) => Value::Null,
                    other => panic!("path {path:?}: unexpected {other:?}"),
                };
                assert_eq!(&got, w, "path {path:?}");
            }
            (CaptureKind::Raw, Some(w)) => match got.map(|f| &f.value) {
                Some(Captured::Raw(bytes)) => {
                    let v: Value = serde_json::from_slice(bytes).expect("raw capture is JSON");
                    assert_eq!(&v, w, "path {path:?}");
                }
                other => panic!("path {path:?}: unexpected {other:?}"),
            },
        }
    }
    out
}

/// Whether serde_json rejected for a reason this scanner deliberately does
/// not share (lone surrogate escapes, f64 overflow, its recursion limit).
fn serde_only_rejection(e: &serde_json::Error) -> bool {
    let m = e.to_string();
    m.contains("surrogate")
        || m.contains("end of hex escape")
        || m.contains("out of range")
        || m.contains("recursion")
}

fn mutate(text: &[u8], pos: usize, op: u8, byte: u8) -> Vec<u8> {
    const INTERESTING: &[u8] =
        b"\"\\u{}[],:0-.eE+ \t\x00\x1f\x7f\x80\xbf\xc3\xe4\xed\xef\xf0\xf4\xffa";
    let b = INTERESTING[byte as usize % INTERESTING.len()];
    let mut t = text.to_vec();
    let pos = if t.is_empty() { 0 } else { pos % (t.len() + 1) };
    match op % 4 {
        0 => t.insert(pos, b),
        1 if pos < t.len() => {
            t.remove(pos);
        }
        2 if pos < t.len() => t[pos] = b,
        _ => t.truncate(pos),
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_json_is_valid_and_captures_match_serde(v in arb_value(), seed in any::<u64>()) {
        let text = render(&v, seed);
        let paths = paths_for(&v, seed);
        let whole = assert_agrees_with_serde(&text, &paths);
        prop_assert_eq!(run_all_splits(&build_spec(&paths), BIG, &text), whole);
    }

    #[test]
    fn generated_envelopes_capture_what_serde_reads(v in arb_envelope(), seed in any::<u64>()) {
        let text = render(&v, seed);
        let paths = paths_for(&v, seed);
        assert_agrees_with_serde(&text, &paths);
    }

    #[test]
    fn generated_envelopes_same_outcome_at_every_split(v in arb_envelope(), seed in any::<u64>()) {
        let text = render(&v, seed);
        let paths = paths_for(&v, seed);
        let sp = build_spec(&paths);
        let whole = run_all_splits(&sp, BIG, &text);
        prop_assert_eq!(whole.result, Ok(()));
    }

    #[test]
    fn random_multi_splits_match_whole_feed(
        v in arb_envelope(),
        seed in any::<u64>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        tiny in any::<bool>(),
    ) {
        let text = render(&v, seed);
        let paths = paths_for(&v, seed);
        let sp = build_spec(&paths);
        let limits = if tiny { ScanLimits { max_depth: 4, max_capture_bytes: 5 } } else { BIG };
        let whole = run_whole(&sp, limits, &text);
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(text.len() + 1)).collect();
        at.sort_unstable();
        let mut pieces = Vec::new();
        let mut prev = 0;
        for a in at {
            pieces.push(&text[prev..a]);
            prev = a;
        }
        pieces.push(&text[prev..]);
        prop_assert_eq!(&run_chunks(&sp, limits, pieces), &whole);
        prop_assert_eq!(&run_chunks(&sp, limits, text.chunks(1)), &whole);
    }

    #[test]
    fn fixtures_random_multi_splits_match_whole_feed(
        which in any::<prop::sample::Index>(),
        sizes in prop::collection::vec(1usize..9, 1..40),
    ) {
        let fx = fixtures();
        let (sp, body) = &fx[which.index(fx.len())];
        let whole = run_whole(sp, lim(), body);
        let mut pieces = Vec::new();
        let mut rest = &body[..];
        for s in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at((*s).min(rest.len()));
            pieces.push(a);
            rest = b;
        }
        prop_assert_eq!(&run_chunks(sp, lim(), pieces), &whole);
    }

    #[test]
    fn mutated_json_verdict_matches_serde_and_is_split_invariant(
        v in arb_envelope(),
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..3),
    ) {
        let mut text = render(&v, seed);
        for (pos, op, byte) in edits {
            text = mutate(&text, pos, op, byte);
        }
        let paths = paths_for(&v, seed);
        let sp = build_spec(&paths);
        let limits = ScanLimits { max_depth: 1024, max_capture_bytes: 1 << 20 };
        let whole = run_all_splits(&sp, limits, &text);
        match serde_json::from_slice::<Value>(&text) {
            Ok(_) => prop_assert_eq!(whole.result, Ok(()), "{}", String::from_utf8_lossy(&text)),
            Err(e) if serde_only_rejection(&e) => {}
            Err(e) => prop_assert!(whole.result.is_err(), "serde: {} / {}", e, String::from_utf8_lossy(&text)),
        }
    }
}

// ------------------------------------------------------------- footprint

#[test]
fn scanner_is_small_and_skipping_does_not_allocate() {
    // Embedders keep a Scanner inline (e.g. in an enum next to boxed decoders).
    assert!(
        std::mem::size_of::<Scanner<'_>>() <= 160,
        "Scanner grew to {} bytes",
        std::mem::size_of::<Scanner<'_>>()
    );
    let sp = openim();
    let mut sc = Scanner::new(&sp, lim());
    assert!(sc.extra.is_none(), "new() must not allocate");
    sc.feed(br#"{"data":{"errCode":1,"list":[{"errMsg":"x","n":[1,2,{"q":null}]}]},"other":"y"}"#);
    assert_eq!(sc.finish(), Ok(()));
    assert!(
        sc.extra.is_none(),
        "skipping unconfigured paths must not allocate"
    );
    let mut sc = Scanner::new(&sp, lim());
    sc.feed(br#"{"errCode":1}"#);
    assert!(sc.extra.is_some());
    assert_eq!(sc.field(0), num_field("1").as_ref());
}

#[test]
fn feed_until_stops_after_the_field_and_the_rest_gives_the_same_outcome() {
    let spec = ScanSpec::new(&[
        (&["errCode"], CaptureKind::Scalar),
        (&["errMsg"], CaptureKind::Scalar),
        (&["data"], CaptureKind::Raw),
    ]);
    let bodies: [&[u8]; 5] = [
        br#"{"errCode":0,"errMsg":"ok","data":{"a":[1,2]}}"#,
        br#"{"data":{"errCode":1},"errCode":-12.5e3 ,"errMsg":"x"} "#,
        br#"{"errMsg":"m","errCode":"c\u00e9"}x"#,
        br#"{"errCode":true,"data":[1,"#,
        br#"{"data":{"deep":{"errCode":2}},"errCode":null}"#,
    ];
    for body in bodies {
        let mut whole = Scanner::new(&spec, ScanLimits::default());
        whole.feed(body);
        let _ = whole.finish();
        let mut split = Scanner::new(&spec, ScanLimits::default());
        let (_, n) = split.feed_until(body, 1);
        if n < body.len() {
            // Stopped right after the errCode value.
            assert!(split.field(0).is_some(), "{n}");
            assert_eq!(split.bytes_scanned(), n as u64);
        }
        // Already complete: no second stop.
        assert_eq!(split.feed_until(&body[n..], 1).1, body.len() - n);
        let _ = split.finish();
        for i in 0..3 {
            assert_eq!(
                split.field(i),
                whole.field(i),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(split.error(), whole.error());
        assert_eq!(split.bytes_scanned(), whole.bytes_scanned());
    }
}
