//! What a scan captures ([`ScanSpec`], compiled once at catalog load with the fallible
//! [`ScanSpec::try_new`]) and the limits it runs under ([`ScanLimits`]).

use std::fmt;

/// Maximum number of paths in one [`ScanSpec`]; keeps the per-scanner bookkeeping in `u16` masks.
pub const MAX_PATHS: usize = 16;
/// Default nesting limit: vendor error envelopes are shallow, and a bound stops hostile nesting.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Default cap per captured value (message, code, field errors): enough for any vendor error
/// message or code, small enough to bound memory per request. The proxy, the CLI, the tests and
/// the benches all scan with [`ScanLimits::default`].
pub const DEFAULT_MAX_CAPTURE_BYTES: usize = 8 * 1024;

/// What to capture at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaptureKind {
    /// A string (unescaped), number (literal text), boolean or null; an object
    /// or array found at the path is skipped and not captured.
    Scalar,
    /// The exact input bytes of the value, whatever its type.
    Raw,
}

/// Why a [`ScanSpec`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// More than [`MAX_PATHS`] paths were given.
    TooManyPaths {
        /// Number of paths given.
        given: usize,
    },
    /// The path at this index has no keys.
    EmptyPath {
        /// Index of the offending path.
        index: usize,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::TooManyPaths { given } => {
                write!(
                    f,
                    "scan spec has {given} paths, at most {MAX_PATHS} allowed"
                )
            }
            SpecError::EmptyPath { index } => write!(f, "scan spec path {index} has no keys"),
        }
    }
}

impl std::error::Error for SpecError {}

pub(super) const NO_NODE: u32 = u32::MAX;

/// One node of the key trie: the object reached by following `key` from `parent`.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) key: Box<[u8]>,
    pub(super) parent: u32,
    pub(super) children: Vec<u32>,
    /// Path indices captured as [`CaptureKind::Scalar`] at this node.
    pub(super) scalar: u16,
    /// Path indices captured as [`CaptureKind::Raw`] at this node.
    pub(super) raw: u16,
}

/// Compiled set of paths. A path is a sequence of object keys from the root,
/// e.g. `["errResponse","code"]`. Paths only go through objects (no array
/// indices). At most [`MAX_PATHS`] paths; each has at least one key.
#[derive(Clone, Debug)]
pub struct ScanSpec {
    /// Key trie; node 0 is the root object.
    nodes: Vec<Node>,
    kinds: Vec<CaptureKind>,
}

impl ScanSpec {
    /// Compiles `paths`; field `i` of a [`Scanner`] refers to `paths[i]`.
    ///
    /// # Panics
    /// If the spec is invalid (see [`ScanSpec::try_new`]); specs are static
    /// configuration, never request input.
    pub fn new(paths: &[(&[&str], CaptureKind)]) -> ScanSpec {
        match ScanSpec::try_new(paths) {
            Ok(spec) => spec,
            Err(e) => panic!("invalid ScanSpec: {e}"),
        }
    }

    /// Compiles `paths`, rejecting more than [`MAX_PATHS`] paths or an empty path.
    pub fn try_new(paths: &[(&[&str], CaptureKind)]) -> Result<ScanSpec, SpecError> {
        if paths.len() > MAX_PATHS {
            return Err(SpecError::TooManyPaths { given: paths.len() });
        }
        let mut nodes = vec![Node {
            key: Box::default(),
            parent: NO_NODE,
            children: Vec::new(),
            scalar: 0,
            raw: 0,
        }];
        let mut kinds = Vec::with_capacity(paths.len());
        for (index, (path, kind)) in paths.iter().enumerate() {
            if path.is_empty() {
                return Err(SpecError::EmptyPath { index });
            }
            let mut cur = 0usize;
            for key in path.iter() {
                let found = nodes[cur]
                    .children
                    .iter()
                    .copied()
                    .find(|&c| &*nodes[c as usize].key == key.as_bytes());
                cur = match found {
                    Some(c) => c as usize,
                    None => {
                        let id = nodes.len();
                        nodes.push(Node {
                            key: key.as_bytes().into(),
                            parent: cur as u32,
                            children: Vec::new(),
                            scalar: 0,
                            raw: 0,
                        });
                        nodes[cur].children.push(id as u32);
                        id
                    }
                };
            }
            let bit = 1u16 << index;
            match kind {
                CaptureKind::Scalar => nodes[cur].scalar |= bit,
                CaptureKind::Raw => nodes[cur].raw |= bit,
            }
            kinds.push(*kind);
        }
        Ok(ScanSpec { nodes, kinds })
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// True when the spec has no paths (the scanner then only validates).
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Capture kind of path `i`.
    pub fn kind(&self, i: usize) -> Option<CaptureKind> {
        self.kinds.get(i).copied()
    }

    pub(super) fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.get(id as usize)
    }
}

/// Resource limits of one scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanLimits {
    /// Maximum nesting of objects/arrays; deeper input is [`ScanError::DepthExceeded`].
    pub max_depth: usize,
    /// Maximum bytes kept per captured value; longer values are cut and marked truncated.
    pub max_capture_bytes: usize,
}

impl ScanLimits {
    /// The limits every scan runs with: the proxy, the CLI, the tests and the benches.
    pub const DEFAULT: ScanLimits = ScanLimits {
        max_depth: DEFAULT_MAX_DEPTH,
        max_capture_bytes: DEFAULT_MAX_CAPTURE_BYTES,
    };
}

impl Default for ScanLimits {
    /// [`ScanLimits::DEFAULT`].
    fn default() -> Self {
        ScanLimits::DEFAULT
    }
}
