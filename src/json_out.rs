//! Hand-written JSON output shared by the problem body and the access log line: the two texts
//! written for every answer and every request. Strings are copied as they are unless they need
//! escaping, and then `serde_json` escapes them, so the bytes are exactly serde_json's.

/// Whether serde_json would escape something in `s` (quotes, backslashes, control characters).
///
/// Eight bytes at a time (the classic "has a byte less than n / equal to c" word tricks, exact
/// as an any-test) rather than `s.bytes().any(..)`: the detail sentence is the longest string of
/// every answer and this check ran at about 5 instructions a byte.
pub fn needs_escape(s: &str) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI != 0;
    // A byte below 0x20, or equal to `"` or `\`, in the word.
    let special = |v: u64| {
        v.wrapping_sub(LO * 0x20) & !v & HI != 0
            || has_zero(v ^ (LO * u64::from(b'"')))
            || has_zero(v ^ (LO * u64::from(b'\\')))
    };
    let bytes = s.as_bytes();
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        if special(u64::from_le_bytes(a)) {
            return true;
        }
    }
    // The last 1..=7 bytes as one more word, padded with a byte that needs no escape (a
    // byte-wise test of the tail was a third of the cost of a short string).
    let rest = words.remainder();
    let mut a = [b'a'; 8];
    a.iter_mut().zip(rest).for_each(|(d, s)| *d = *s);
    !rest.is_empty() && special(u64::from_le_bytes(a))
}

/// `s` as a JSON string: copied as is when nothing needs escaping (the common case), else
/// through serde_json so the escapes are exactly its own.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s) {
        // Writing a `str` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// `s` as a JSON string, or `null`.
pub fn json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// An integer (`itoa`).
pub fn json_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn needs_escape_matches_bytewise_for_any_text(s in "(?s).*") {
            let slow = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(needs_escape(&s), slow);
        }

        #[test]
        fn json_str_writes_serde_jsons_bytes(s in "(?s).*") {
            let mut out = Vec::new();
            json_str(&mut out, &s);
            proptest::prop_assert_eq!(out, serde_json::to_vec(&s).unwrap_or_default());
        }
    }

    #[test]
    fn needs_escape_agrees_with_the_bytewise_test() {
        let slow = |s: &str| s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
        let mut cases = vec![String::new()];
        for special in [
            '\u{0}', '\u{1f}', ' ', '"', '\\', '\u{7f}', 'é', '!', '#', '[', ']', '\u{80}',
        ] {
            for len in 0..20 {
                for pos in 0..=len {
                    let mut t: String = "abcdefghijklmnopqrstuvwxyz".chars().take(len).collect();
                    t.insert(pos.min(t.len()), special);
                    cases.push(t);
                }
            }
        }
        for c in &cases {
            assert_eq!(needs_escape(c), slow(c), "{c:?}");
        }
    }

    #[test]
    fn optional_strings_and_integers() {
        let mut out = Vec::new();
        json_opt_str(&mut out, None);
        out.push(b',');
        json_opt_str(&mut out, Some("a\"b"));
        out.push(b',');
        json_int(&mut out, -42i64);
        assert_eq!(out, br#"null,"a\"b",-42"#);
    }
}
