//! Secret header values (`routes[].upstream_headers`): a literal string, `{env: NAME}` or
//! `{file: PATH}`, resolved when the config is loaded (and again on every reload, so a rotated
//! Kubernetes Secret takes effect without a restart).
//!
//! Invariant: a resolved value lives only in [`Secret`], whose `Debug` and `Display` print
//! `[redacted]`, and the `HeaderValue` inside is marked sensitive. Error messages name the
//! variable or the file, never a value. Files are read whole and trailing whitespace (the newline
//! `echo` and editors add) is trimmed; an empty value is an error so a file caught half-written
//! never replaces a good key.

use http::HeaderValue;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Largest secret file read, in bytes: header values are short; this bounds a wrong path
/// pointing at a large file.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where a header value comes from, as written in the config file: a string, `{env: NAME}` or
/// `{file: PATH}` (any other shape is an error naming the three forms).
#[derive(Clone, PartialEq, Eq)]
pub enum FileSecret {
    /// The value itself.
    Literal(String),
    /// `{env: NAME}`: the environment variable `NAME` (read at load and reload).
    Env {
        /// Variable name.
        env: String,
    },
    /// `{file: PATH}`: the file's contents, trailing whitespace trimmed (re-read on reload).
    File {
        /// Path, relative to the working directory.
        file: String,
    },
}

const SHAPES: &str = "a string, {env: NAME} or {file: PATH}";

impl<'de> Deserialize<'de> for FileSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FileSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(SHAPES)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FileSecret, E> {
                Ok(FileSecret::Literal(v.to_string()))
            }
            // A bare YAML number (`X-Account: 12345`) is a literal too, as it was before values
            // could be maps.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FileSecret, E> {
                Ok(FileSecret::Literal(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FileSecret, E> {
                Ok(FileSecret::Literal(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FileSecret, A::Error> {
                use serde::de::Error;
                let Some(key) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(format!("expected {SHAPES}, found {{}}")));
                };
                let value: String = map.next_value()?;
                let out = match key.as_str() {
                    "env" => FileSecret::Env { env: value },
                    "file" => FileSecret::File { file: value },
                    other => {
                        return Err(A::Error::custom(format!(
                            "unknown key `{other}`: expected {SHAPES}"
                        )))
                    }
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "unexpected second key `{extra}`: expected {SHAPES}"
                    )));
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Debug for FileSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileSecret::Literal(_) => f.write_str("Literal([redacted])"),
            FileSecret::Env { env } => write!(f, "Env({env})"),
            FileSecret::File { file } => write!(f, "File({file})"),
        }
    }
}

/// A resolved header value that must not be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(HeaderValue);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Secret {
    /// Wraps a value (marked sensitive, so `http`'s own `Debug` hides it too).
    pub fn new(mut v: HeaderValue) -> Secret {
        v.set_sensitive(true);
        Secret(v)
    }

    /// The value to put on the wire.
    pub fn expose(&self) -> &HeaderValue {
        &self.0
    }
}

/// Why a secret could not be resolved (never contains the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `{env: NAME}` names an unset variable.
    #[error("environment variable `{0}` is not set (or not valid UTF-8); set it or use a literal or `file:`")]
    EnvMissing(String),
    /// `{file: PATH}` cannot be read.
    #[error("cannot read secret file {path}: {reason}")]
    FileUnreadable {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The file is larger than [`MAX_SECRET_FILE_BYTES`].
    #[error("secret file {0} is larger than {MAX_SECRET_FILE_BYTES} bytes; is the path right?")]
    FileTooLarge(String),
    /// Empty after trimming.
    #[error("the value from {0} is empty")]
    Empty(String),
    /// Contains bytes a header value cannot carry (control characters, a newline inside).
    #[error("the value from {0} is not a valid header value (control characters or a line break inside)")]
    Invalid(String),
    /// The variable or file name is empty.
    #[error("`env:` / `file:` needs a non-empty name")]
    NoName,
}

// === impl FileSecret ===

impl FileSecret {
    /// The file this value is read from, if any (the reloader hashes and watches it).
    pub fn file(&self) -> Option<&Path> {
        match self {
            FileSecret::File { file } => Some(Path::new(file)),
            _ => None,
        }
    }

    /// Resolves the value: reads the environment (through `env`) or the file.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Secret, SecretError> {
        let (text, from) = match self {
            FileSecret::Literal(v) => (v.clone(), "the literal".to_string()),
            FileSecret::Env { env: name } => {
                if name.is_empty() {
                    return Err(SecretError::NoName);
                }
                let v = env(name).ok_or_else(|| SecretError::EnvMissing(name.clone()))?;
                (v, format!("environment variable `{name}`"))
            }
            FileSecret::File { file } => {
                if file.is_empty() {
                    return Err(SecretError::NoName);
                }
                (load_secret_file(Path::new(file))?, format!("file {file}"))
            }
        };
        let trimmed = match self {
            FileSecret::Literal(_) => text.as_str(),
            _ => text.trim_end(),
        };
        if trimmed.is_empty() {
            return Err(SecretError::Empty(from));
        }
        HeaderValue::from_str(trimmed)
            .map(Secret::new)
            .map_err(|_| SecretError::Invalid(from))
    }
}

/// Reads a secret file (bounded).
pub fn load_secret_file(path: &Path) -> Result<String, SecretError> {
    let unreadable = |e: std::io::Error| SecretError::FileUnreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.len() > MAX_SECRET_FILE_BYTES {
        return Err(SecretError::FileTooLarge(path.display().to_string()));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    String::from_utf8(bytes).map_err(|_| SecretError::Invalid(format!("file {}", path.display())))
}

/// The process environment, for [`FileSecret::resolve`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Absolute form of a secret file path, for watching its directory.
pub fn watch_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> FileSecret {
        serde_json::from_str(y).expect("parses")
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn three_forms_parse() {
        assert_eq!(parse(r#""abc""#), FileSecret::Literal("abc".into()));
        assert_eq!(
            parse(r#"{"env": "KEY"}"#),
            FileSecret::Env { env: "KEY".into() }
        );
        assert_eq!(
            parse(r#"{"file": "/run/k"}"#),
            FileSecret::File {
                file: "/run/k".into()
            }
        );
        for bad in [
            r#"{"vault": "x"}"#,
            r#"{"env": "A", "file": "b"}"#,
            "{}",
            "true",
            "[]",
        ] {
            let e = serde_json::from_str::<FileSecret>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("{env: NAME}"), "{bad}: {e}");
        }
    }

    #[test]
    fn env_value_is_used_and_missing_is_named() {
        let s = FileSecret::Env { env: "K".into() };
        let v = s
            .resolve(|n| (n == "K").then(|| "sk-1".to_string()))
            .expect("set");
        assert_eq!(v.expose(), "sk-1");
        assert_eq!(
            s.resolve(no_env).unwrap_err(),
            SecretError::EnvMissing("K".into())
        );
    }

    #[test]
    fn file_value_is_trimmed_and_errors_name_the_file_not_the_value() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("key");
        std::fs::write(&p, "sk-secret-9\n").expect("write");
        let s = FileSecret::File {
            file: p.display().to_string(),
        };
        assert_eq!(s.resolve(no_env).expect("ok").expose(), "sk-secret-9");
        std::fs::write(&p, "sk-secret-9\nsecond line").expect("write");
        let e = s.resolve(no_env).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(!e.contains("sk-secret-9"), "{e}");
        std::fs::write(&p, "\n").expect("write");
        assert!(matches!(s.resolve(no_env), Err(SecretError::Empty(_))));
        std::fs::remove_file(&p).expect("rm");
        assert!(matches!(
            s.resolve(no_env),
            Err(SecretError::FileUnreadable { .. })
        ));
    }

    #[test]
    fn debug_never_shows_a_value() {
        let s = FileSecret::Literal("sk-live-123".into());
        let v = s.resolve(no_env).expect("ok");
        assert_eq!(format!("{v:?} {v}"), "[redacted] [redacted]");
        assert!(!format!("{s:?}").contains("sk-live"));
        assert!(v.expose().is_sensitive());
    }
}
