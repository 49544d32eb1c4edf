use super::*;
use proptest::prelude::*;

fn ok(rest: &str) -> String {
    match confine(rest) {
        Ok(p) => p.into_owned(),
        Err(e) => panic!("{rest:?} refused: {e}"),
    }
}

fn err(rest: &str) -> PathRejection {
    match confine(rest) {
        Ok(p) => panic!("{rest:?} accepted as {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn plain_paths_pass_unchanged_and_borrowed() {
    for p in [
        "",
        "/",
        "/a",
        "/a/b/",
        "/v1/x.json",
        "/a..b/c",
        "/...",
        "/a/.../b",
        "?q=../..",
        "/x?a=%2f",
    ] {
        assert!(matches!(confine(p), Ok(Cow::Borrowed(s)) if s == p), "{p}");
    }
}

#[test]
fn dot_segments_are_removed_as_rfc_3986_says() {
    assert_eq!(ok("/a/./b"), "/a/b");
    assert_eq!(ok("/a/../b"), "/b");
    assert_eq!(ok("/a/b/../../c"), "/c");
    assert_eq!(ok("/a/b/.."), "/a/");
    assert_eq!(ok("/a/b/."), "/a/b/");
    assert_eq!(ok("/a/.."), "/");
    assert_eq!(ok("/."), "/");
    assert_eq!(ok("/./"), "/");
    assert_eq!(ok("/a//../b"), "/a/b");
    assert_eq!(ok("/a/./b?x=/../y"), "/a/b?x=/../y");
}

#[test]
fn encoded_dots_in_any_case_and_mix_are_dot_segments() {
    for two in [
        "%2e%2e", "%2E%2E", "%2e%2E", "%2E%2e", ".%2e", ".%2E", "%2e.", "%2E.",
    ] {
        assert_eq!(ok(&format!("/a/{two}/b")), "/b", "{two}");
        assert_eq!(
            err(&format!("/{two}/etc")),
            PathRejection::EscapesBase,
            "{two}"
        );
    }
    for one in ["%2e", "%2E"] {
        assert_eq!(ok(&format!("/a/{one}/b")), "/a/b", "{one}");
    }
    // Not dot segments: forwarded as they are.
    assert_eq!(ok("/a/%2e%2e%2e/b"), "/a/%2e%2e%2e/b");
    assert_eq!(ok("/a/x%2e/b"), "/a/x%2e/b");
}

#[test]
fn leaving_the_base_path_is_refused() {
    for p in [
        "/..",
        "/../",
        "/../x",
        "/a/../..",
        "/a/../../b",
        "/./..",
        "/a/b/../../../c",
        "/..?q",
    ] {
        assert_eq!(err(p), PathRejection::EscapesBase, "{p}");
    }
}

#[test]
fn encoded_separators_and_backslashes_are_refused() {
    assert_eq!(err("/a%2fb"), PathRejection::EncodedSlash);
    assert_eq!(err("/a%2Fb"), PathRejection::EncodedSlash);
    assert_eq!(err("/..%2f..%2fetc"), PathRejection::EncodedSlash);
    assert_eq!(err("/a\\b"), PathRejection::Backslash);
    assert_eq!(err("/..\\..\\x"), PathRejection::Backslash);
    assert_eq!(err("/a%5cb"), PathRejection::Backslash);
    assert_eq!(err("/a%5Cb"), PathRejection::Backslash);
    for d in ["%252e", "%252E", "%252f", "%252F", "%255c", "%255C"] {
        assert_eq!(
            err(&format!("/a/{d}/b")),
            PathRejection::DoubleEncoded,
            "{d}"
        );
    }
    // Only the path part is checked: the query is the vendor's business.
    assert_eq!(ok("/a?next=%2f..%5c"), "/a?next=%2f..%5c");
    // A lone or truncated `%` is not a separator.
    assert_eq!(ok("/a%"), "/a%");
    assert_eq!(ok("/a%2"), "/a%2");
    assert_eq!(ok("/a%25"), "/a%25");
}

#[test]
fn dot_segments_with_parameters_are_refused() {
    assert_eq!(err("/a/..;/b"), PathRejection::DotWithParams);
    assert_eq!(err("/a/.;x/b"), PathRejection::DotWithParams);
    assert_eq!(
        err("/a/%2e%2e;jsessionid=1/b"),
        PathRejection::DotWithParams
    );
    assert_eq!(ok("/a/b;v=1"), "/a/b;v=1");
}

/// The vendor's view: decode `%2E` and resolve dot segments as RFC 3986 does (clamping at the
/// root, as real servers do). Returns the segments.
fn vendor_resolves(path: &str) -> Vec<String> {
    let decoded = path.replace("%2e", ".").replace("%2E", ".");
    let mut out: Vec<String> = Vec::new();
    let segs: Vec<&str> = decoded
        .strip_prefix('/')
        .unwrap_or(&decoded)
        .split('/')
        .collect();
    let n = segs.len();
    for (i, s) in segs.into_iter().enumerate() {
        match s {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
        // A trailing `.` or `..` leaves a directory: "/a/b/.." is "/a/".
        if i + 1 == n && (s == "." || s == "..") {
            out.push(String::new());
        }
    }
    out
}

/// Whether a path, resolved as the vendor does without clamping, ever steps above the root.
fn escapes(path: &str) -> bool {
    let decoded = path.replace("%2e", ".").replace("%2E", ".");
    let mut depth: i64 = 0;
    for s in decoded.strip_prefix('/').unwrap_or(&decoded).split('/') {
        match s {
            "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a", "b", "", ".", "..", "%2e", "%2E", "%2e%2e", ".%2e", "%2E.", "%2E%2e", "...", "x.y",
        "%41", "a;v=1", "..;", "%2f", "%5c", "\\", "%252e", "%25", "%",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Whatever comes in, what goes out has no dot segment (decoded or not), no encoded
    /// separator, and the vendor resolving it stays under the base path; and a path the vendor
    /// would resolve inside the base path is never refused for escaping.
    #[test]
    fn output_never_leaves_the_base_path(segs in prop::collection::vec(segment(), 0..8), q in prop::bool::ANY) {
        let mut rest = String::new();
        for s in &segs {
            rest.push('/');
            rest.push_str(s);
        }
        if q {
            rest.push_str("?x=/../..");
        }
        let path_only = rest.split('?').next().unwrap_or("").to_string();
        match confine(&rest) {
            Ok(out) => {
                let (p, query) = match out.find('?') {
                    Some(i) => out.split_at(i),
                    None => (&*out, ""),
                };
                prop_assert_eq!(query, if q { "?x=/../.." } else { "" });
                prop_assert!(!escapes(&path_only), "{} escapes but was accepted", rest);
                for s in p.split('/') {
                    prop_assert!(dot_kind(s).is_none(), "dot segment {:?} in {:?}", s, out);
                    prop_assert!(!s.contains('\\'));
                }
                // Idempotent, and the vendor resolves it to the same place as the input.
                prop_assert_eq!(confine(&out).map(|c| c.into_owned()), Ok(out.to_string()));
                prop_assert_eq!(vendor_resolves(p), vendor_resolves(&path_only));
            }
            Err(PathRejection::EscapesBase) => prop_assert!(escapes(&path_only), "{}", rest),
            Err(PathRejection::Backslash) => prop_assert!(
                path_only.contains('\\') || path_only.to_ascii_lowercase().contains("%5c")
            ),
            Err(PathRejection::EncodedSlash) => {
                prop_assert!(path_only.to_ascii_lowercase().contains("%2f"))
            }
            Err(PathRejection::DoubleEncoded) => {
                prop_assert!(path_only.to_ascii_lowercase().contains("%252"))
            }
            Err(PathRejection::DotWithParams) => prop_assert!(path_only.contains(';')),
        }
    }

    /// Arbitrary strings never panic.
    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,64}") {
        let _ = confine(&s);
    }
}
