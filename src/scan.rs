//! TEMPORARY STUB (replaced by the streaming scanner): same API, buffers the body.
#![allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureKind {
    Scalar,
    Raw,
}
#[derive(Debug, Clone)]
pub struct ScanSpec {
    paths: Vec<(Vec<String>, CaptureKind)>,
}
impl ScanSpec {
    pub fn new(paths: &[(&[&str], CaptureKind)]) -> ScanSpec {
        ScanSpec {
            paths: paths
                .iter()
                .map(|(p, k)| (p.iter().map(|s| s.to_string()).collect(), *k))
                .collect(),
        }
    }
    pub fn len(&self) -> usize {
        self.paths.len()
    }
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits {
    pub max_depth: usize,
    pub max_capture_bytes: usize,
}
#[derive(Debug, Clone, PartialEq)]
pub enum Captured {
    Str(String),
    Num(String),
    Bool(bool),
    Null,
    Raw(Vec<u8>),
}
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub value: Captured,
    pub truncated: bool,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    NeedMore,
    Done,
}
#[derive(Debug, Clone, PartialEq)]
pub enum ScanError {
    Syntax { offset: u64 },
    DepthExceeded { offset: u64 },
    TrailingData { offset: u64 },
    Truncated,
    Empty,
}
pub struct Scanner<'s> {
    spec: &'s ScanSpec,
    buf: Vec<u8>,
    fields: Vec<Option<Field>>,
    err: Option<ScanError>,
    done: bool,
    root: Option<bool>,
}
impl<'s> Scanner<'s> {
    pub fn new(spec: &'s ScanSpec, _l: ScanLimits) -> Self {
        Scanner {
            spec,
            buf: Vec::new(),
            fields: vec![None; spec.len()],
            err: None,
            done: false,
            root: None,
        }
    }
    pub fn feed(&mut self, c: &[u8]) -> Progress {
        self.buf.extend_from_slice(c);
        if self.root.is_none() {
            if let Some(b) = self.buf.iter().find(|b| !b.is_ascii_whitespace()) {
                self.root = Some(*b == b'{');
            }
        }
        Progress::NeedMore
    }
    pub fn finish(&mut self) -> Result<(), ScanError> {
        self.done = true;
        match serde_json::from_slice::<serde_json::Value>(&self.buf) {
            Ok(v) => {
                for (i, (p, k)) in self.spec.paths.iter().enumerate() {
                    let mut cur = &v;
                    let mut ok = true;
                    for seg in p {
                        match cur.get(seg) {
                            Some(n) => cur = n,
                            None => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    if ok {
                        self.fields[i] = match (k, cur) {
                            (CaptureKind::Raw, v) => Some(Field {
                                value: Captured::Raw(serde_json::to_vec(v).unwrap_or_default()),
                                truncated: false,
                            }),
                            (_, serde_json::Value::String(s)) => Some(Field {
                                value: Captured::Str(s.clone()),
                                truncated: false,
                            }),
                            (_, serde_json::Value::Number(n)) => Some(Field {
                                value: Captured::Num(n.to_string()),
                                truncated: false,
                            }),
                            (_, serde_json::Value::Bool(b)) => Some(Field {
                                value: Captured::Bool(*b),
                                truncated: false,
                            }),
                            (_, serde_json::Value::Null) => Some(Field {
                                value: Captured::Null,
                                truncated: false,
                            }),
                            _ => None,
                        };
                    }
                }
                Ok(())
            }
            Err(_) => {
                let e = if self.buf.is_empty() {
                    ScanError::Empty
                } else {
                    ScanError::Syntax { offset: 0 }
                };
                self.err = Some(e.clone());
                Err(e)
            }
        }
    }
    pub fn field(&self, i: usize) -> Option<&Field> {
        self.fields.get(i).and_then(|f| f.as_ref())
    }
    pub fn error(&self) -> Option<&ScanError> {
        self.err.as_ref()
    }
    pub fn bytes_scanned(&self) -> u64 {
        self.buf.len() as u64
    }
    pub fn root_is_object(&self) -> Option<bool> {
        self.root
    }
    pub fn is_done(&self) -> bool {
        self.done
    }
}
