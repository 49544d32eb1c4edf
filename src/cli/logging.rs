//! The process log: `env_logger` on stderr, filtered by `RUST_LOG` (default `info`), as text or
//! as one JSON object per line (`--log-format json` / `ERRGATE_LOG_FORMAT=json`).
//!
//! errgate's log lines put structured fields first and end with a sentence
//! (`route=pk status=502 Upstream unreachable.`). The JSON format lifts the leading
//! `key=value` words into top-level fields and keeps the rest as `msg`, so a log pipeline
//! can filter on them without parsing text; Pingora's own lines (no leading fields) come out
//! with `msg` only.

use std::io::Write;

/// Process log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-30T10:00:00.000Z INFO  errgate::cli::run] listen=... Starting errgate.`
    Text,
    /// `{"ts":"2026-11-30T10:00:00.000Z","level":"INFO","target":"errgate::cli::run","listen":"...","msg":"Starting errgate."}`
    Json,
}

/// Level filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info";

/// Installs the process logger. Call once, before anything logs.
pub fn init(format: LogFormat) {
    let mut b =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(DEFAULT_FILTER));
    b.target(env_logger::Target::Stderr);
    match format {
        LogFormat::Text => {
            b.format_timestamp_millis();
        }
        LogFormat::Json => {
            b.format(|buf, record| {
                let ts = buf.timestamp_millis().to_string();
                let line = json_line(
                    &ts,
                    record.level().as_str(),
                    record.target(),
                    &record.args().to_string(),
                );
                writeln!(buf, "{line}")
            });
        }
    }
    // A logger installed earlier (a test harness) wins; nothing to do then.
    let _ = b.try_init();
}

/// Keys that the JSON line sets itself; a leading field with one of these names ends the
/// fields (it and the rest stay in `msg`).
const RESERVED: [&str; 4] = ["ts", "level", "target", "msg"];

/// One JSON log line (without the newline): `ts`, `level`, `target`, the message's leading
/// `key=value` fields, and `msg` (the rest of the message).
pub fn json_line(ts: &str, level: &str, target: &str, message: &str) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("ts".into(), ts.into());
    obj.insert("level".into(), level.into());
    obj.insert("target".into(), target.into());
    let (fields, rest) = split_fields(message);
    for (k, v) in fields {
        if !obj.contains_key(k) {
            obj.insert(k.to_string(), serde_json::Value::String(v));
        }
    }
    obj.insert("msg".into(), rest.into());
    serde_json::Value::Object(obj).to_string()
}

/// Splits the leading `key=value` words (key: lowercase ASCII letters, digits, `_`, `.`;
/// value: no whitespace, or a double-quoted string with backslash escapes, as `{:?}` writes
/// it) from the rest of a message. The rest starts at the first word that is not such a field.
fn split_fields(message: &str) -> (Vec<(&str, String)>, &str) {
    let mut fields = Vec::new();
    let mut rest = message.trim_start();
    while let Some(eq) = rest.find('=') {
        let k = &rest[..eq];
        let key_ok = !k.is_empty()
            && !RESERVED.contains(&k)
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !key_ok {
            break;
        }
        let after = &rest[eq + 1..];
        let (value, used) = if after.starts_with('"') {
            match quoted(after) {
                Some(v) => v,
                None => break,
            }
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), end)
        };
        fields.push((k, value));
        rest = after[used..].trim_start();
    }
    // Only fields and no sentence: keep the words as the message too.
    if rest.is_empty() && !fields.is_empty() {
        return (fields, message.trim());
    }
    (fields, rest)
}

/// A double-quoted string at the start of `s`: its unescaped content and the bytes it spans.
/// `None` when it is not closed or not followed by whitespace or the end.
fn quoted(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let end = i + 1;
                let next_ok = s[end..].chars().next().is_none_or(char::is_whitespace);
                return next_ok.then_some((out, end));
            }
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> serde_json::Value {
        serde_json::from_str(line).expect("valid JSON")
    }

    #[test]
    fn lifts_leading_fields() {
        let v = parse(&json_line(
            "t",
            "INFO",
            "errgate::cli::run",
            "listen=0.0.0.0:8080 routes=5 Starting errgate.",
        ));
        assert_eq!(v["listen"], "0.0.0.0:8080");
        assert_eq!(v["routes"], "5");
        assert_eq!(v["msg"], "Starting errgate.");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "errgate::cli::run");
    }

    #[test]
    fn plain_message_stays_whole() {
        let v = parse(&json_line(
            "t",
            "WARN",
            "pingora",
            "Bootstrap starting, a=b later",
        ));
        assert_eq!(v["msg"], "Bootstrap starting, a=b later");
        assert!(v.get("a").is_none());
    }

    #[test]
    fn reserved_keys_and_quotes_cannot_break_the_line() {
        let v = parse(&json_line(
            "t",
            "ERROR",
            "x",
            "level=fake msg=\"x\\ny\" {\"a\":1}\n second line",
        ));
        assert_eq!(v["level"], "ERROR");
        let msg = v["msg"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("level=fake") && msg.contains("second line"),
            "{msg}"
        );
    }

    #[test]
    fn quoted_debug_values() {
        let v = parse(&json_line(
            "t",
            "ERROR",
            "x",
            r#"problem="a.yaml: bogus: unknown \"key\"" n=1 Cannot start."#,
        ));
        assert_eq!(v["problem"], r#"a.yaml: bogus: unknown "key""#);
        assert_eq!(v["n"], "1");
        assert_eq!(v["msg"], "Cannot start.");
        // Unclosed quote: everything stays in msg.
        let v = parse(&json_line("t", "ERROR", "x", r#"problem="open Cannot."#));
        assert_eq!(v["msg"], r#"problem="open Cannot."#);
    }

    #[test]
    fn fields_only_message() {
        let v = parse(&json_line("t", "INFO", "x", "a=1 b=2"));
        assert_eq!(v["a"], "1");
        assert_eq!(v["msg"], "a=1 b=2");
    }
}
