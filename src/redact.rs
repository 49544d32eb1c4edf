//! Redaction of the values a route injects with `upstream_headers` (API keys, bearer tokens):
//! a vendor that echoes one back in an error message must not get it into a problem body or a
//! log line.
//!
//! Built once per route at config load from the injected values. What is redacted: each whole
//! value, and each whitespace-separated token of it (`Bearer sk-123` also redacts `sk-123`, the
//! part vendors echo), when at least [`MIN_SECRET_LEN`] bytes long: shorter values (`2`, `json`)
//! are not secrets and redacting them would garble every message. Matching is exact
//! (case-sensitive), longest secret first. The same rule and marker as the uncataloged
//! recorder's (`uncataloged::redact`). Pure.

use std::borrow::Cow;

/// Shortest value treated as a secret.
pub const MIN_SECRET_LEN: usize = 6;
/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Replaces a route's injected secrets in text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    secrets: Vec<String>,
}

// === impl Redactor ===

impl Redactor {
    /// A redactor for these injected header values (non-UTF-8 values are skipped: they cannot
    /// appear in a UTF-8 message as such).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Redactor {
        let mut secrets: Vec<String> = Vec::new();
        for v in values {
            let Ok(v) = std::str::from_utf8(v) else {
                continue;
            };
            let v = v.trim();
            let parts = std::iter::once(v).chain(v.split_ascii_whitespace());
            for p in parts {
                if p.len() >= MIN_SECRET_LEN && !secrets.iter().any(|s| s == p) {
                    secrets.push(p.to_string());
                }
            }
        }
        // Longest first, so a whole value is replaced before its token.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret replaced by [`REDACTED`]; borrowed when none occurs.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out: Cow<'t, str> = Cow::Borrowed(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), REDACTED));
            }
        }
        out
    }

    /// The problem with secrets redacted from its detail, the vendor's message and the listed
    /// errors; `None` when nothing had to change (the common case: no allocation).
    pub fn redact_problem(&self, p: &crate::problem::Problem) -> Option<crate::problem::Problem> {
        if self.is_empty() {
            return None;
        }
        let hit = |s: &str| self.secrets.iter().any(|x| s.contains(x.as_str()));
        let msg = p.upstream.as_ref().and_then(|u| u.message.as_deref());
        let code = p.upstream.as_ref().and_then(|u| u.code.as_deref());
        let errors = p.errors.as_ref().map(|e| e.to_string());
        if !hit(&p.detail)
            && !msg.is_some_and(hit)
            && !code.is_some_and(hit)
            && !errors.as_deref().is_some_and(hit)
            && !p.internal.as_deref().is_some_and(hit)
        {
            return None;
        }
        let mut out = p.clone();
        out.detail = self.redact(&p.detail).into_owned();
        if let Some(u) = out.upstream.as_mut() {
            for f in [&mut u.message, &mut u.code].into_iter().flatten() {
                *f = self.redact(f).into_owned();
            }
        }
        if let Some(e) = out.errors.as_mut() {
            self.redact_json(e);
        }
        if let Some(i) = out.internal.as_mut() {
            *i = self.redact(i).into_owned();
        }
        Some(out)
    }

    /// Redacts every string (keys included) inside a JSON value, in place.
    pub fn redact_json(&self, v: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        match v {
            serde_json::Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.redact_json(x)),
            serde_json::Value::Object(o) => {
                let old = std::mem::take(o);
                for (k, mut x) in old {
                    self.redact_json(&mut x);
                    o.insert(self.redact(&k).into_owned(), x);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(values: &[&str]) -> Redactor {
        Redactor::new(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn whole_values_and_their_tokens_are_redacted() {
        let red = r(&["Bearer sk-live-0123456789", "key-abcdefgh"]);
        assert_eq!(
            red.redact("invalid token sk-live-0123456789 for Bearer sk-live-0123456789"),
            "invalid token [redacted] for [redacted]"
        );
        assert_eq!(
            red.redact("key key-abcdefgh unknown"),
            "key [redacted] unknown"
        );
        assert!(matches!(red.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn short_values_are_not_secrets() {
        let red = r(&["2", "json", "ab cd", "abcde"]);
        assert!(red.is_empty());
        assert_eq!(
            red.redact("version 2 json Basic x"),
            "version 2 json Basic x"
        );
    }

    #[test]
    fn problems_are_redacted_only_when_a_secret_occurs() {
        let red = r(&["Bearer sk-0123456789"]);
        let mut p = crate::problem::Problem::own(
            crate::problem::Code::Unauthenticated,
            401,
            "X",
            "bad token sk-0123456789",
        );
        p.upstream = Some(crate::problem::Upstream {
            status: 401,
            code: Some("1".into()),
            message: Some("token sk-0123456789 invalid".into()),
        });
        p.errors = Some(serde_json::json!([{"token": "sk-0123456789"}]));
        let out = red.redact_problem(&p).expect("changed");
        let body = String::from_utf8(out.to_json("https://e", "r")).expect("utf-8");
        assert!(!body.contains("sk-0123456789"), "{body}");
        assert_eq!(
            out.upstream.and_then(|u| u.message).as_deref(),
            Some("token [redacted] invalid")
        );
        let clean = crate::problem::Problem::no_route("/x");
        assert!(red.redact_problem(&clean).is_none());
    }

    #[test]
    fn json_strings_and_keys_are_redacted() {
        let red = r(&["secret-0123456789"]);
        let mut v = serde_json::json!({
            "message": "bad key secret-0123456789",
            "errors": [{"field": "secret-0123456789"}, 3, null],
            "secret-0123456789": true
        });
        red.redact_json(&mut v);
        let s = v.to_string();
        assert!(!s.contains("secret-0123456789"), "{s}");
        assert!(s.contains("bad key [redacted]"));
    }
}
