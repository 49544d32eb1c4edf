//! The one place errgate reads YAML (config and catalogs; JSON is valid YAML). Swapping the
//! YAML crate touches this file only.
//!
//! [`parse_all`] runs plain serde (`deny_unknown_fields` on the `File*` types does the
//! checking) and, when the text does not fit the types, keeps going: the offending node is
//! dropped from a parsed copy and the rest is read again, so one run reports every structural
//! problem (unknown key, wrong type) with its path, and still yields the rest of the file for
//! semantic validation. The first problem carries the parser's line and column; the later ones
//! come from the in-memory copy and carry the path only.

use serde::de::DeserializeOwned;

/// An untyped YAML value (catalog fields that accept a string, number or boolean).
pub type Value = yaml_serde::Value;

/// Most problems reported before giving up on a file: far more than anyone fixes at once.
const MAX_STRUCTURAL_PROBLEMS: usize = 64;

/// One structural problem: where (a field path like `routes[1].mode`, or `(syntax)` /
/// `(top)`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlProblem {
    /// Field path, `(syntax)` when the text is not YAML, `(top)` for the document itself.
    pub place: String,
    /// What is wrong, with line and column when the parser knows them.
    pub message: String,
}

/// What [`parse_all`] read.
#[derive(Debug)]
pub struct Parsed<T> {
    /// The document, with every node that had a problem left out; `None` when nothing
    /// usable could be read (not YAML, or not the right shape at the top).
    pub value: Option<T>,
    /// Every structural problem, in document order of discovery.
    pub problems: Vec<YamlProblem>,
}

/// Parses `text` as `T`, strictly, reporting every structural problem (see the module doc).
pub fn parse_all<T: DeserializeOwned>(text: &str) -> Parsed<T> {
    let first = match serde_path_to_error::deserialize(yaml_serde::Deserializer::from_str(text)) {
        Ok(v) => {
            return Parsed {
                value: Some(v),
                problems: Vec::new(),
            }
        }
        Err(e) => e,
    };
    let mut problems = vec![problem(&first)];
    // Not YAML at all: the copy below cannot be made either.
    let Ok(mut doc) = yaml_serde::from_str::<Value>(text) else {
        problems[0].place = "(syntax)".into();
        return Parsed {
            value: None,
            problems,
        };
    };
    let mut path = segments(first.path());
    loop {
        if path.is_empty() || !remove(&mut doc, &path) {
            // The document itself has the wrong shape: nothing to keep.
            return Parsed {
                value: None,
                problems,
            };
        }
        match serde_path_to_error::deserialize::<_, T>(doc.clone()) {
            Ok(v) => {
                return Parsed {
                    value: Some(v),
                    problems,
                }
            }
            Err(e) => {
                if problems.len() >= MAX_STRUCTURAL_PROBLEMS {
                    return Parsed {
                        value: None,
                        problems,
                    };
                }
                problems.push(problem(&e));
                path = segments(e.path());
            }
        }
    }
}

/// `v` written back as YAML text (for messages that quote a value).
pub fn to_string(v: &Value) -> Result<String, yaml_serde::Error> {
    yaml_serde::to_string(v)
}

/// Parses `bytes` as `T`, stopping at the first problem (catalog files: one file, one fix).
pub fn parse_strict<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, YamlProblem> {
    yaml_serde::from_slice(bytes).map_err(|e| YamlProblem {
        place: e
            .location()
            .map(|l| format!("line {} column {}", l.line(), l.column()))
            .unwrap_or_else(|| "(syntax)".into()),
        message: e.to_string(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(p: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    let mut out = Vec::new();
    for s in p.iter() {
        match s {
            Segment::Map { key } => out.push(Seg::Key(key.clone())),
            Segment::Seq { index } => out.push(Seg::Index(*index)),
            // An enum variant or an unknown place: the node cannot be pointed at.
            Segment::Enum { .. } | Segment::Unknown => return Vec::new(),
        }
    }
    out
}

fn place(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

fn problem(e: &serde_path_to_error::Error<yaml_serde::Error>) -> YamlProblem {
    let path = segments(e.path());
    let place = if path.is_empty() {
        "(top)".to_string()
    } else {
        place(&path)
    };
    let mut message = e.inner().to_string();
    if let Some(l) = e.inner().location() {
        if !message.contains(" at line ") {
            message = format!("{message} at line {} column {}", l.line(), l.column());
        }
    }
    // yaml_serde prefixes its own path (the parent's for an unknown key); ours is in `place`.
    if let Some((prefix, rest)) = message.split_once(": ") {
        if !prefix.contains(' ') && place.starts_with(prefix) {
            message = rest.to_string();
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // "unknown field `colour`, expected one of `a`, `b`" -> "unknown key; expected one of ..."
        let expected = rest.split_once(", ").map_or("", |(_, e)| e);
        message = if expected.is_empty() {
            "unknown key".to_string()
        } else {
            format!("unknown key; {expected}")
        };
    }
    YamlProblem { place, message }
}

/// Removes the node at `path` (a map entry, or a list item replaced by an empty map so later
/// indices keep their meaning). False when the path does not lead anywhere.
fn remove(doc: &mut Value, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = doc;
    for seg in parents {
        let next = match (seg, cur) {
            (Seg::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str()),
            (Seg::Index(i), Value::Sequence(s)) => s.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (last, cur) {
        (Seg::Key(k), Value::Mapping(m)) => m.remove(k.as_str()).is_some(),
        (Seg::Index(i), Value::Sequence(s)) => match s.get_mut(*i) {
            Some(item) if *item != Value::Mapping(Default::default()) => {
                *item = Value::Mapping(Default::default());
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Top {
        listen: Option<String>,
        n: Option<u64>,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: Option<String>,
    }

    #[test]
    fn a_valid_document_has_no_problems() {
        let p = parse_all::<Top>("listen: a\nitems: [{name: x}]\n");
        assert!(p.problems.is_empty());
        assert_eq!(p.value.expect("value").items.len(), 1);
    }

    #[test]
    fn every_structural_problem_is_reported_and_the_rest_is_kept() {
        let p = parse_all::<Top>(
            "listen: a\ncolour: blue\nn: lots\nitems:\n  - name: a\n  - name: b\n    mode: x\n",
        );
        let mut places: Vec<&str> = p.problems.iter().map(|p| p.place.as_str()).collect();
        places.sort();
        assert_eq!(places, ["colour", "items[1].mode", "n"]);
        assert!(p.problems[0]
            .message
            .starts_with("unknown key; expected one of"));
        assert!(
            p.problems[0].message.contains("line 2 column 1"),
            "{:?}",
            p.problems[0]
        );
        let v = p.value.expect("rest kept");
        assert_eq!(v.listen.as_deref(), Some("a"));
        assert_eq!(v.n, None);
        assert_eq!(v.items[1].name.as_deref(), Some("b"));
    }

    #[test]
    fn a_bad_list_item_keeps_the_positions_of_the_others() {
        let p = parse_all::<Top>("items:\n  - 5\n  - name: b\n");
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].place, "items[0]");
        let v = p.value.expect("rest kept");
        assert_eq!(v.items.len(), 2);
        assert_eq!(v.items[1].name.as_deref(), Some("b"));
    }

    #[test]
    fn syntax_and_shape_errors_yield_nothing() {
        let p = parse_all::<Top>(": : :");
        assert_eq!(p.problems[0].place, "(syntax)");
        assert!(p.problems[0].message.contains("line 1"), "{:?}", p.problems);
        assert!(p.value.is_none());
        let p = parse_all::<Top>("- 1\n");
        assert_eq!(p.problems[0].place, "(top)");
        assert!(p.value.is_none());
    }
}
