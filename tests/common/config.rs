//! A typed builder for gateway configs: tests say what they set, the builder writes the file
//! (as JSON, which is valid YAML), so no test builds YAML by concatenating strings. It is the
//! one way tests start errgate or write a config file.
//!
//! ```ignore
//! let g = GateConfig::new()
//!     .set("retry", json!({"enabled": false}))
//!     .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &up).set("tls_ca_file", ca))
//!     .start();
//! ```

use super::{free_port, repo, Gate};
use serde_json::{json, Map, Value};
use std::path::Path;

/// One route: the four required keys, plus any other key through [`RouteConfig::set`].
#[derive(Debug, Clone)]
pub struct RouteConfig {
    keys: Map<String, Value>,
}

impl RouteConfig {
    /// A route with its required keys.
    pub fn new(name: &str, vendor: &str, path_prefix: &str, upstream: &str) -> RouteConfig {
        let mut keys = Map::new();
        keys.insert("name".into(), json!(name));
        keys.insert("vendor".into(), json!(vendor));
        keys.insert("path_prefix".into(), json!(path_prefix));
        keys.insert("upstream".into(), json!(upstream));
        RouteConfig { keys }
    }

    /// Sets a route key (`tls_ca_file`, `retry`, `cooldown`, `mode`, ...).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> RouteConfig {
        self.keys.insert(key.into(), value.into());
        self
    }
}

/// A gateway config. The listeners and the catalog directory are filled in by the harness
/// unless the test sets them itself.
#[derive(Debug, Clone, Default)]
pub struct GateConfig {
    top: Map<String, Value>,
    routes: Vec<Value>,
    env: Vec<(String, String)>,
}

impl GateConfig {
    /// An empty config: `threads: 2`, no routes.
    pub fn new() -> GateConfig {
        GateConfig::default().set("threads", 2)
    }

    /// Sets a top-level key (`retry`, `timeouts`, `hold_max_bytes`, ...).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> GateConfig {
        self.top.insert(key.into(), value.into());
        self
    }

    /// Removes a top-level key (e.g. `threads`, for a config written exactly as a user would).
    pub fn unset(mut self, key: &str) -> GateConfig {
        self.top.remove(key);
        self
    }

    /// Adds a route.
    pub fn route(mut self, r: RouteConfig) -> GateConfig {
        self.routes.push(Value::Object(r.keys));
        self
    }

    /// Adds an environment variable for the errgate process [`GateConfig::start`] spawns.
    pub fn env(mut self, key: &str, value: &str) -> GateConfig {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The config as a JSON value with these listeners and catalog directory (keys the test
    /// set itself are kept).
    pub fn value(&self, port: u16, admin: u16, catalog_dir: &Path) -> Value {
        let mut top = self.top.clone();
        top.entry("listen")
            .or_insert_with(|| json!(format!("127.0.0.1:{port}")));
        top.entry("admin_listen")
            .or_insert_with(|| json!(format!("127.0.0.1:{admin}")));
        top.entry("catalog_dir")
            .or_insert_with(|| json!(catalog_dir.display().to_string()));
        top.insert("routes".into(), Value::Array(self.routes.clone()));
        Value::Object(top)
    }

    /// The config text with these listeners and catalog directory.
    pub fn render(&self, port: u16, admin: u16, catalog_dir: &Path) -> String {
        serde_json::to_string_pretty(&self.value(port, admin, catalog_dir))
            .expect("config serializes")
    }

    /// Writes the config text to `path` (for tests that run `errgate check` or rewrite the
    /// file of a running gateway).
    pub fn write(&self, path: &Path, port: u16, admin: u16, catalog_dir: &Path) {
        std::fs::write(path, self.render(port, admin, catalog_dir)).expect("write config");
    }

    /// Starts errgate on this config with a private copy of the repo catalogs
    /// ([`Gate::catalog_dir`]), on free ports.
    pub fn start(&self) -> Gate {
        let cfg = self.clone();
        GateConfig::start_with(move |_| cfg)
    }

    /// Like [`GateConfig::start`], for a config that names files in the gateway's directory
    /// (an access log, a CA written there): `build(dir)` returns the config, where `dir` holds
    /// `catalogs/` and the config file.
    pub fn start_with(build: impl FnOnce(&Path) -> GateConfig) -> Gate {
        let dir = tempfile::tempdir().expect("tempdir");
        let cat = dir.path().join("catalogs");
        copy_catalogs(&cat);
        let cfg = build(dir.path());
        // A free port can be taken by another test between picking and binding: retry with new
        // ports when errgate exits before it is ready.
        let mut dir = Some(dir);
        let mut last_log = String::new();
        for _ in 0..4 {
            let (port, admin) = (free_port(), free_port());
            let text = cfg.render(port, admin, &cat);
            match Gate::spawn(dir.take().expect("dir"), &text, port, admin, &cfg.env) {
                Ok(g) => return g,
                Err((d, log)) => {
                    dir = Some(d);
                    last_log = log;
                }
            }
        }
        panic!("errgate did not start after 4 tries; log:\n{last_log}");
    }
}

/// Copies the repo's catalog files into `to` (created).
pub fn copy_catalogs(to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir catalogs");
    for f in std::fs::read_dir(repo().join("catalogs")).expect("catalogs") {
        let f = f.expect("entry").path();
        if f.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&f, to.join(f.file_name().expect("name"))).expect("copy");
        }
    }
}
