//! A typed builder for gateway configs: tests say what they set, the builder writes the file
//! (as JSON, which is valid YAML), so no test builds YAML by concatenating strings.
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

    /// Sets a route key (`tls_ca_file`, `retry`, `cooldown`, ...).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> RouteConfig {
        self.keys.insert(key.into(), value.into());
        self
    }
}

/// A gateway config without its listeners and catalog directory (the harness picks those).
#[derive(Debug, Clone, Default)]
pub struct GateConfig {
    top: Map<String, Value>,
    routes: Vec<Value>,
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

    /// Adds a route.
    pub fn route(mut self, r: RouteConfig) -> GateConfig {
        self.routes.push(Value::Object(r.keys));
        self
    }

    /// The config text with these listeners and catalog directory.
    pub fn render(&self, port: u16, admin: u16, catalog_dir: &Path) -> String {
        let mut top = self.top.clone();
        top.insert("listen".into(), json!(format!("127.0.0.1:{port}")));
        top.insert("admin_listen".into(), json!(format!("127.0.0.1:{admin}")));
        top.insert(
            "catalog_dir".into(),
            json!(catalog_dir.display().to_string()),
        );
        top.insert("routes".into(), Value::Array(self.routes.clone()));
        serde_json::to_string_pretty(&Value::Object(top)).expect("config serializes")
    }

    /// Starts errgate on this config with the repo's catalogs, on free ports.
    pub fn start(&self) -> Gate {
        let dir = tempfile::tempdir().expect("tempdir");
        let (port, admin) = (free_port(), free_port());
        let text = self.render(port, admin, &repo().join("catalogs"));
        Gate::start_with_config(dir, &text, port, admin)
    }
}
