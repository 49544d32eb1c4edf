//! The one swapped value every request reads: config + catalogs, built together, swapped
//! together. Reload is build-then-swap: read and validate everything off the request path,
//! cross-check routes against catalogs, then one `ArcSwap::store`. A failure keeps the last good
//! snapshot serving. Every trigger (file watcher, poll, SIGHUP, `POST /-/reload`) calls
//! [`Runtime::reload`].

use crate::catalog::{load_catalogs, CatalogErrors, CatalogSet};
use crate::config::{load_config, Config, ConfigError};
use crate::retry::cooldown::CooldownTable;
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What one request sees from start to end.
#[derive(Debug)]
pub struct Snapshot {
    /// Validated config.
    pub config: Arc<Config>,
    /// Catalogs matching the config's routes.
    pub catalogs: Arc<CatalogSet>,
    config_hash: String,
}

/// Result of a reload.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// Nothing changed on disk.
    Unchanged,
    /// A new snapshot serves; the names say what changed.
    Reloaded {
        /// Whether the config changed.
        config: bool,
        /// Whether the catalogs changed.
        catalogs: bool,
        /// Settings that changed but need a restart (listeners).
        needs_restart: Vec<&'static str>,
    },
    /// The new files are invalid; the old snapshot keeps serving.
    Failed(Vec<String>),
}

/// Load status shown on `/catalogs`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Unix seconds of the last successful load.
    pub last_success_unix: Option<u64>,
    /// Unix seconds of the last failed reload.
    pub last_failure_unix: Option<u64>,
    /// Problems of the last reload, empty when it succeeded.
    pub last_error: Vec<String>,
    /// Successful reloads since start (the first load excluded).
    pub reloads: u64,
    /// Failed reloads since start.
    pub failures: u64,
}

/// Shared state: the snapshot, reload status and per-process tables.
pub struct Runtime {
    config_path: PathBuf,
    snapshot: ArcSwap<Snapshot>,
    status: Mutex<ReloadStatus>,
    reload_lock: Mutex<()>,
    /// Cooldown holds, per (route, key).
    pub cooldowns: CooldownTable,
    /// Uncataloged vendor errors seen since start (`GET /uncataloged`).
    pub uncataloged: crate::uncataloged::Uncataloged,
}

fn unix(t: SystemTime) -> Option<u64> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Every problem of a config + catalogs pair, as printable lines.
pub fn check_all(
    config_path: &std::path::Path,
    now: SystemTime,
) -> Result<(Config, CatalogSet), Vec<String>> {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => {
            let mut out: Vec<String> = e.0.iter().map(ToString::to_string).collect();
            out.extend(partial_cross_check(config_path, now));
            return Err(out);
        }
    };
    let catalogs = load_catalogs(&config.catalog_dir, now).map_err(|e| lines(&e))?;
    cross_check(&config, &catalogs)?;
    Ok((config, catalogs))
}

/// When the config itself is invalid, still report catalog problems and routes whose vendor has
/// no catalog, from a lenient read of `catalog_dir` and `routes[].vendor`, so one `check` run
/// lists everything.
fn partial_cross_check(config_path: &std::path::Path, now: SystemTime) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(config_path) else {
        return Vec::new();
    };
    let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(&text) else {
        return Vec::new();
    };
    let dir = v
        .get("catalog_dir")
        .and_then(|d| d.as_str())
        .unwrap_or(crate::config::DEFAULT_CATALOG_DIR);
    let catalogs = match load_catalogs(std::path::Path::new(dir), now) {
        Ok(c) => c,
        Err(e) => return lines(&e),
    };
    let mut out = Vec::new();
    let routes = v
        .get("routes")
        .and_then(|r| r.as_sequence())
        .cloned()
        .unwrap_or_default();
    for (i, r) in routes.iter().enumerate() {
        let Some(vendor) = r.get("vendor").and_then(|x| x.as_str()) else {
            continue;
        };
        if catalogs.vendor(vendor.trim()).is_none() {
            out.push(
                ConfigError {
                    file: config_path.display().to_string(),
                    path: format!("routes[{i}].vendor"),
                    message: format!(
                        "no catalog `{vendor}` in {dir} (have: {})",
                        catalogs.ids().collect::<Vec<_>>().join(", ")
                    ),
                }
                .to_string(),
            );
        }
    }
    out
}

fn lines(e: &CatalogErrors) -> Vec<String> {
    e.0.iter().map(ToString::to_string).collect()
}

/// Each route's vendor must have a catalog.
pub fn cross_check(config: &Config, catalogs: &CatalogSet) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let mut routes: Vec<_> = config.routes.iter().collect();
    routes.sort_by_key(|r| r.index);
    for r in routes {
        if catalogs.vendor(&r.vendor).is_none() {
            errs.push(
                ConfigError {
                    file: config.path.display().to_string(),
                    path: format!("routes[{}].vendor", r.index),
                    message: format!(
                        "no catalog `{}` in {} (have: {})",
                        r.vendor,
                        config.catalog_dir.display(),
                        catalogs.ids().collect::<Vec<_>>().join(", ")
                    ),
                }
                .to_string(),
            );
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn file_hash(path: &std::path::Path) -> String {
    std::fs::read(path)
        .map(|b| hex::encode(Sha256::digest(&b)))
        .unwrap_or_default()
}

// === impl Runtime ===

impl Runtime {
    /// First load: config and catalogs must both be valid.
    pub fn load(config_path: PathBuf, now: SystemTime) -> Result<Runtime, Vec<String>> {
        let (config, catalogs) = check_all(&config_path, now)?;
        let cooldowns = CooldownTable::new(config.cooldown_max_keys);
        let snap = Snapshot {
            config_hash: file_hash(&config_path),
            config: Arc::new(config),
            catalogs: Arc::new(catalogs),
        };
        Ok(Runtime {
            config_path,
            snapshot: ArcSwap::from_pointee(snap),
            status: Mutex::new(ReloadStatus {
                last_success_unix: unix(now),
                ..Default::default()
            }),
            reload_lock: Mutex::new(()),
            cooldowns,
            uncataloged: crate::uncataloged::Uncataloged::new(now),
        })
    }

    /// The snapshot to use for one request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Reload status.
    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The config file path.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// Re-reads config and catalogs; swaps in a new snapshot when something changed and all is
    /// valid. Blocking (file reads): call from a blocking context.
    pub fn reload(&self, now: SystemTime) -> ReloadOutcome {
        let _guard = self.reload_lock.lock();
        let cur = self.snapshot();
        let config_hash = file_hash(&self.config_path);
        let config_changed = config_hash != cur.config_hash;
        let outcome = self.build(&cur, config_changed, config_hash, now);
        if let Ok(mut st) = self.status.lock() {
            match &outcome {
                ReloadOutcome::Unchanged => {}
                ReloadOutcome::Reloaded { .. } => {
                    st.last_success_unix = unix(now);
                    st.last_error.clear();
                    st.reloads += 1;
                }
                ReloadOutcome::Failed(e) => {
                    st.last_failure_unix = unix(now);
                    st.last_error = e.clone();
                    st.failures += 1;
                }
            }
        }
        outcome
    }

    fn build(
        &self,
        cur: &Snapshot,
        config_changed: bool,
        config_hash: String,
        now: SystemTime,
    ) -> ReloadOutcome {
        let config = if config_changed {
            match load_config(&self.config_path) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    return ReloadOutcome::Failed(e.0.iter().map(ToString::to_string).collect())
                }
            }
        } else {
            cur.config.clone()
        };
        let catalogs = match load_catalogs(&config.catalog_dir, now) {
            Ok(c) => c,
            Err(e) => return ReloadOutcome::Failed(lines(&e)),
        };
        let catalogs_changed = catalogs.hash != cur.catalogs.hash;
        if !config_changed && !catalogs_changed {
            return ReloadOutcome::Unchanged;
        }
        if let Err(e) = cross_check(&config, &catalogs) {
            return ReloadOutcome::Failed(e);
        }
        let mut needs_restart = Vec::new();
        if config.listen != cur.config.listen {
            needs_restart.push("listen");
        }
        if config.admin_listen != cur.config.admin_listen {
            needs_restart.push("admin_listen");
        }
        if config.threads != cur.config.threads {
            needs_restart.push("threads");
        }
        if config.cooldown_max_keys != cur.config.cooldown_max_keys {
            needs_restart.push("cooldown.max_keys");
        }
        self.snapshot.store(Arc::new(Snapshot {
            config,
            catalogs: Arc::new(catalogs),
            config_hash,
        }));
        ReloadOutcome::Reloaded {
            config: config_changed,
            catalogs: catalogs_changed,
            needs_restart,
        }
    }
}
