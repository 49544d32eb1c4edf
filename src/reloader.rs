//! One reload path for every trigger: file events (debounced), the periodic content-hash poll,
//! SIGHUP, and `POST /-/reload` all call [`reload_now`], which reloads, logs one line and counts
//! the result. [`ReloaderService`] runs the watcher, poll and signal loop as a Pingora
//! background service so it stops with the server.

pub mod watch;

use crate::metrics::Metrics;
use crate::state::{ReloadOutcome, Shared};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use watch::{watch_files, DirWatcher};

/// Quiet time after a file event before reloading: editors and ConfigMap swaps touch several
/// files in a burst.
pub const CATALOG_RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);
/// Wait before recreating a failed watcher.
const WATCHER_RETRY: Duration = Duration::from_secs(5);

/// Reloads now (blocking file reads), then logs and counts the outcome.
pub fn reload_now(shared: &Shared, metrics: &Metrics, trigger: &str) -> ReloadOutcome {
    let outcome = shared.reload(SystemTime::now());
    match &outcome {
        ReloadOutcome::Unchanged => {
            log::debug!("trigger={trigger} Configuration and catalogs unchanged.")
        }
        ReloadOutcome::Reloaded {
            config,
            catalogs,
            needs_restart,
        } => {
            metrics.reloads.with_label_values(&["success"]).inc();
            publish_catalog_gauges(shared, metrics);
            log::info!(
                "trigger={trigger} config_changed={config} catalogs_changed={catalogs} Reloaded; new requests use the new set."
            );
            if !needs_restart.is_empty() {
                log::warn!(
                    "settings={} These settings changed but take effect only after a restart.",
                    needs_restart.join(",")
                );
            }
        }
        ReloadOutcome::Failed(errs) => {
            metrics.reloads.with_label_values(&["failure"]).inc();
            for e in errs {
                log::error!(
                    "trigger={trigger} file={:?} place={:?} problem={:?} Reload rejected; the last good set keeps serving.",
                    e.file, e.place, e.message
                );
            }
        }
    }
    outcome
}

/// Sets the catalog gauges from the serving snapshot.
pub fn publish_catalog_gauges(shared: &Shared, metrics: &Metrics) {
    let snap = shared.snapshot();
    metrics.catalog_entries.reset();
    for (id, meta) in &snap.catalogs.meta {
        metrics
            .catalog_entries
            .with_label_values(&[id])
            .set(meta.entries as i64);
    }
    if let Some(t) = shared.status().last_success_unix {
        metrics.last_reload_success.set(t as i64);
    }
}

async fn reload_blocking(shared: &Arc<Shared>, metrics: &Arc<Metrics>, trigger: &'static str) {
    let (r, m) = (shared.clone(), metrics.clone());
    let _ = tokio::task::spawn_blocking(move || reload_now(&r, &m, trigger)).await;
}

/// Watches, polls and listens for SIGHUP; reloads through [`reload_now`].
pub struct ReloaderService {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The access log, whose file SIGHUP reopens (after `logrotate` moved it).
    pub access_log: crate::access_log::AccessLog,
}

impl ReloaderService {
    /// What to watch: the catalog directory, and the config file plus its secret files.
    fn watched(&self) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
        let snap = self.shared.snapshot();
        let mut files = vec![self.shared.config_path().to_path_buf()];
        files.extend(snap.config.secret_files.iter().cloned());
        (snap.config.catalog_dir.clone(), files)
    }

    fn start_watcher(&self, tx: &mpsc::Sender<()>) -> Option<DirWatcher> {
        let (dir, files) = self.watched();
        match watch_files(&dir, &files, tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!("error={e} File watching failed; relying on the periodic check until it recovers.");
                None
            }
        }
    }

    /// The loop; returns when `shutdown` flips.
    pub async fn run(&self, mut shutdown: ShutdownWatch) {
        let (tx, mut rx) = mpsc::channel::<()>(1);
        let mut watcher = self.start_watcher(&tx);
        let mut watched = self.watched();
        let poll_every = self.shared.snapshot().config.catalog_poll_interval;
        let mut poll = tokio::time::interval(poll_every);
        poll.tick().await;
        let mut rewatch = tokio::time::interval(WATCHER_RETRY);
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("error={e} Cannot listen for SIGHUP.");
                None
            }
        };
        // Watching and listening: from here on no change or signal is missed.
        self.shared
            .reloader_ready
            .store(true, std::sync::atomic::Ordering::Release);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = rx.recv() => {
                    // Debounce: wait for the burst to settle, then drop queued hints.
                    tokio::time::sleep(CATALOG_RELOAD_DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                    reload_blocking(&self.shared, &self.metrics, "watch").await;
                }
                _ = poll.tick() => {
                    reload_blocking(&self.shared, &self.metrics, "poll").await;
                }
                _ = rewatch.tick() => {
                    // Recreate a failed watcher, or follow a catalog_dir or secret files changed
                    // by a reload.
                    let now_watched = self.watched();
                    if watcher.is_none() || now_watched != watched {
                        watcher = self.start_watcher(&tx);
                        watched = now_watched;
                        if watcher.is_some() {
                            reload_blocking(&self.shared, &self.metrics, "rewatch").await;
                        }
                    }
                }
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    self.access_log.reopen();
                    reload_blocking(&self.shared, &self.metrics, "sighup").await;
                }
            }
        }
    }
}

#[async_trait]
impl BackgroundService for ReloaderService {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.run(shutdown).await;
    }
}
