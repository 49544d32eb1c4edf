//! The load step after validation for `upstream_headers`: resolves each value (a literal, an
//! environment variable, a secret file) into [`crate::secret::Secret`]s on its route, and
//! records the secret files so the reloader hashes and watches them. Runs whether or not the
//! rest of the file is valid, so `check` reports a missing variable or an unreadable file in the
//! same run as everything else. Problems name the variable or file, never a value.

use super::headers;
use super::Config;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::secret::{process_env, FileSecret};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Resolves every route's `upstream_headers`; fills `config`'s routes and `secret_files` when
/// every value resolved.
pub(super) fn load_upstream_headers(
    file: &str,
    routes: &[(usize, BTreeMap<String, FileSecret>)],
    config: Option<&mut Config>,
) -> Result<(), Diagnostics> {
    let mut problems = Vec::new();
    let mut resolved = HashMap::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for (index, map) in routes {
        let h = headers::upstream_headers(
            map,
            &format!("routes[{index}].upstream_headers"),
            &process_env,
            &mut problems,
        );
        files.extend(h.files);
        resolved.insert(*index, h.headers);
    }
    if !problems.is_empty() {
        return Err(Diagnostics(
            problems
                .into_iter()
                .map(|(place, m)| Diagnostic::new(file, place, m))
                .collect(),
        ));
    }
    files.sort();
    files.dedup();
    if let Some(config) = config {
        for r in config.routes.iter_mut() {
            r.upstream_headers = resolved.remove(&r.index).unwrap_or_default();
            // Built here, once the values are known: redacts them from problems and logs.
            r.redactor = crate::redact::Redactor::new(
                r.upstream_headers
                    .iter()
                    .map(|(_, v)| v.expose().as_bytes()),
            );
        }
        config.secret_files = files;
    }
    Ok(())
}
