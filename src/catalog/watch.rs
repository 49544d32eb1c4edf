//! The watcher only signals: `notify` events on the catalog directory (and the config file's
//! directory) become one `()` on a channel. It watches directories, not files, so editors that
//! save by write-and-rename, files deleted and created again, and Kubernetes ConfigMap `..data`
//! symlink swaps are all seen. Debouncing and reloading happen in [`crate::reloader`].

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// A live watcher; dropping it stops watching.
pub struct DirWatcher {
    _inner: RecommendedWatcher,
    /// The directories watched.
    pub dirs: Vec<PathBuf>,
}

/// Watches `dirs` (non-recursively) and sends `()` on `tx` for every event.
pub fn watch_dirs(dirs: &[&Path], tx: mpsc::Sender<()>) -> notify::Result<DirWatcher> {
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Any event, even an error, is a hint to re-read everything; a full channel already
        // holds a pending hint.
        let _ = res;
        let _ = tx.try_send(());
    })?;
    let mut watched = Vec::new();
    for d in dirs {
        if watched.iter().any(|w: &PathBuf| w == d) {
            continue;
        }
        w.watch(d, RecursiveMode::NonRecursive)?;
        watched.push(d.to_path_buf());
    }
    Ok(DirWatcher {
        _inner: w,
        dirs: watched,
    })
}
