//! Helpers for the adoption tests (modes, vendor headers, `/uncataloged`, SDKs): a gateway
#![allow(dead_code)]
//! whose routes are written as YAML, so they can carry `mode`, `upstream_headers`, `retry`.

use super::*;

/// Starts errgate with `routes_yaml` (the items under `routes:`, indented two spaces) and extra
/// top-level YAML, on a private copy of the repo catalogs.
pub fn gate_routes(routes_yaml: &str, extra_yaml: &str) -> Gate {
    let dir = tempfile::tempdir().expect("tempdir");
    let cat = dir.path().join("catalogs");
    std::fs::create_dir(&cat).expect("mkdir");
    for f in std::fs::read_dir(repo().join("catalogs")).expect("catalogs") {
        let f = f.expect("entry").path();
        if f.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&f, cat.join(f.file_name().expect("name"))).expect("copy");
        }
    }
    let (port, admin) = (free_port(), free_port());
    let y = format!(
        "listen: 127.0.0.1:{port}\nadmin_listen: 127.0.0.1:{admin}\ncatalog_dir: {}\nthreads: 2\n{extra_yaml}\nroutes:\n{routes_yaml}",
        cat.display()
    );
    Gate::start_with_config(dir, &y, port, admin)
}

/// One route item for [`gate_routes`]: name, vendor, prefix, upstream, then extra route keys
/// as YAML lines (e.g. `"mode: annotate"`).
pub fn route_yaml(
    name: &str,
    vendor: &str,
    prefix: &str,
    upstream: &str,
    extra: &[&str],
) -> String {
    let mut y = format!(
        "  - name: {name}\n    vendor: {vendor}\n    path_prefix: {prefix}\n    upstream: {upstream}\n"
    );
    for e in extra {
        for line in e.lines() {
            y.push_str(&format!("    {line}\n"));
        }
    }
    y
}
