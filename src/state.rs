//! The process's shared state, [`Shared`]: what every request, the admin listener and the
//! reloader hold an `Arc` of. At its centre the one swapped value every request reads: config +
//! catalogs, built together, swapped together. Reload is build-then-swap: read and validate everything off the request path,
//! cross-check routes against catalogs, then one `ArcSwap::store`. A failure keeps the last good
//! snapshot serving. Every trigger (file watcher, poll, SIGHUP, `POST /-/reload`) calls
//! [`Shared::reload`].

use crate::catalog::{load_catalogs, CatalogSet};
use crate::config::{check_config, load_config, Config, Outline};
use crate::diagnostic::{Diagnostic, Diagnostics};
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
    Failed(Diagnostics),
}

/// Load status shown on `/catalogs`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Unix seconds of the last successful load.
    pub last_success_unix: Option<u64>,
    /// Unix seconds of the last failed reload.
    pub last_failure_unix: Option<u64>,
    /// Problems of the last reload, empty when it succeeded.
    pub last_error: Diagnostics,
    /// Successful reloads since start (the first load excluded).
    pub reloads: u64,
    /// Failed reloads since start.
    pub failures: u64,
}

/// The state every request, the admin app and the reloader share: the serving [`Snapshot`],
/// the reload status, and the per-process tables that outlive a reload (cooldowns, the
/// uncataloged record). Not a "runtime": that word is tokio's and Pingora's.
pub struct Shared {
    config_path: PathBuf,
    snapshot: ArcSwap<Snapshot>,
    status: Mutex<ReloadStatus>,
    reload_lock: Mutex<()>,
    /// Cooldown holds, per (route name, key); shared with the fleet store task when one is set.
    pub cooldowns: Arc<CooldownTable>,
    /// Uncataloged vendor errors seen since start (`GET /uncataloged`).
    pub uncataloged: crate::uncataloged::Uncataloged,
    /// The reloader watches files and listens for SIGHUP (`/readyz` waits for it: a change or a
    /// signal sent earlier would be missed, and SIGHUP's default action ends the process).
    pub reloader_ready: std::sync::atomic::AtomicBool,
}

fn unix(t: SystemTime) -> Option<u64> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Every problem of a config + catalogs pair: the config's (also when it is invalid, its
/// catalogs are loaded and cross-checked, so one `check` run lists everything), the
/// catalogs', and routes whose vendor has no catalog.
pub fn check_all(
    config_path: &std::path::Path,
    now: SystemTime,
) -> Result<(Config, CatalogSet), Diagnostics> {
    let checked = check_config(config_path);
    let Some(outline) = checked.outline else {
        return Err(checked.config.err().unwrap_or_default());
    };
    let (config, mut problems) = match checked.config {
        Ok(c) => (Some(c), Vec::new()),
        Err(e) => (None, e.0),
    };
    match load_catalogs(&outline.catalog_dir, now) {
        Ok(catalogs) => {
            problems.extend(cross_check(&outline, &catalogs));
            match config {
                Some(config) if problems.is_empty() => Ok((config, catalogs)),
                _ => Err(Diagnostics(problems)),
            }
        }
        Err(e) => {
            problems.extend(e.0);
            Err(Diagnostics(problems))
        }
    }
}

/// Each route's vendor must have a catalog: one problem per route that names a missing one.
pub fn cross_check(outline: &Outline, catalogs: &CatalogSet) -> Vec<Diagnostic> {
    outline
        .route_vendors
        .iter()
        .filter(|(_, vendor)| catalogs.vendor(vendor).is_none())
        .map(|(i, vendor)| {
            Diagnostic::new(
                &outline.file,
                format!("routes[{i}].vendor"),
                format!(
                    "no catalog `{vendor}` in {} (have: {})",
                    outline.catalog_dir.display(),
                    catalogs.ids().collect::<Vec<_>>().join(", ")
                ),
            )
        })
        .collect()
}

fn file_hash(path: &std::path::Path) -> String {
    std::fs::read(path)
        .map(|b| hex::encode(Sha256::digest(&b)))
        .unwrap_or_default()
}

/// Hash of the config file and of the secret files its `upstream_headers` read: a rotated
/// secret changes it, so the reload that follows re-reads the config and its secrets.
fn config_hash(path: &std::path::Path, secret_files: &[PathBuf]) -> String {
    let mut h = Sha256::new();
    h.update(file_hash(path));
    for f in secret_files {
        h.update(b"\0");
        h.update(f.as_os_str().as_encoded_bytes());
        h.update(b"\0");
        // Unreadable reads as empty: the reload then reports the file.
        h.update(std::fs::read(f).unwrap_or_default());
    }
    hex::encode(h.finalize())
}

// === impl Shared ===

impl Shared {
    /// First load: config and catalogs must both be valid.
    pub fn load(config_path: PathBuf, now: SystemTime) -> Result<Shared, Diagnostics> {
        let (config, catalogs) = check_all(&config_path, now)?;
        let cooldowns = Arc::new(CooldownTable::new(config.cooldown_max_keys));
        let snap = Snapshot {
            config_hash: config_hash(&config_path, &config.secret_files),
            config: Arc::new(config),
            catalogs: Arc::new(catalogs),
        };
        Ok(Shared {
            config_path,
            snapshot: ArcSwap::from_pointee(snap),
            status: Mutex::new(ReloadStatus {
                last_success_unix: unix(now),
                ..Default::default()
            }),
            reload_lock: Mutex::new(()),
            cooldowns,
            uncataloged: crate::uncataloged::Uncataloged::new(now),
            reloader_ready: std::sync::atomic::AtomicBool::new(false),
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
        let config_hash = config_hash(&self.config_path, &cur.config.secret_files);
        let config_changed = config_hash != cur.config_hash;
        let outcome = self.build(&cur, config_changed, config_hash, now);
        if let Ok(mut st) = self.status.lock() {
            match &outcome {
                ReloadOutcome::Unchanged => {}
                ReloadOutcome::Reloaded { .. } => {
                    st.last_success_unix = unix(now);
                    st.last_error = Diagnostics::default();
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
                Err(e) => return ReloadOutcome::Failed(e),
            }
        } else {
            cur.config.clone()
        };
        let catalogs = match load_catalogs(&config.catalog_dir, now) {
            Ok(c) => c,
            Err(e) => return ReloadOutcome::Failed(e),
        };
        let catalogs_changed = catalogs.hash != cur.catalogs.hash;
        if !config_changed && !catalogs_changed {
            return ReloadOutcome::Unchanged;
        }
        let missing = cross_check(&config.outline(), &catalogs);
        if !missing.is_empty() {
            return ReloadOutcome::Failed(Diagnostics(missing));
        }
        let needs_restart = cur.config.restart_needed(&config);
        // A new config may read other secret files: hash what it reads, so the next reload
        // compares like with like.
        let config_hash = if config.secret_files == cur.config.secret_files {
            config_hash
        } else {
            self::config_hash(&self.config_path, &config.secret_files)
        };
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
