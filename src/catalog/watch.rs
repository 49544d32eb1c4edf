//! The watcher only signals: `notify` events become one `()` on a channel. It watches
//! directories, not files, so editors that save by write-and-rename, files deleted and created
//! again, and Kubernetes ConfigMap `..data` symlink swaps are all seen. Debouncing and reloading
//! happen in [`crate::reloader`].
//!
//! Two filters keep it from waking itself: access events (the reload's own reads of the files
//! it watches) are ignored, and in the config file's directory only the config file itself and
//! ConfigMap `..`-prefixed entries count (that directory may hold logs or other busy files).

use notify::event::EventKind;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// A live watcher; dropping it stops watching.
pub struct DirWatcher {
    _inner: RecommendedWatcher,
    /// The directories watched.
    pub dirs: Vec<PathBuf>,
}

/// Whether an event is a hint to reload.
fn relevant(
    ev: &notify::Event,
    catalog_dir: &Path,
    config_dir: &Path,
    config_name: &OsString,
) -> bool {
    if matches!(ev.kind, EventKind::Access(_)) {
        return false;
    }
    if ev.paths.is_empty() {
        // Overflow or an unspecific event: re-read to be safe.
        return true;
    }
    ev.paths.iter().any(|p| {
        let parent = p.parent().unwrap_or(Path::new(""));
        let name = p.file_name().unwrap_or_default();
        let in_catalogs = same_dir(parent, catalog_dir);
        let is_config = same_dir(parent, config_dir)
            && (name == config_name.as_os_str() || name.to_string_lossy().starts_with(".."));
        in_catalogs || is_config
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || (a.canonicalize().ok().zip(b.canonicalize().ok())).is_some_and(|(x, y)| x == y)
}

/// Watches `catalog_dir` (every change) and the directory of `config_file` (changes to that
/// file), non-recursively, and sends `()` on `tx` for each relevant event.
pub fn watch(
    catalog_dir: &Path,
    config_file: &Path,
    tx: mpsc::Sender<()>,
) -> notify::Result<DirWatcher> {
    let config_dir = match config_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let config_name = config_file
        .file_name()
        .map(OsString::from)
        .unwrap_or_default();
    let (cat, cfg) = (catalog_dir.to_path_buf(), config_dir.clone());
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let hint = match &res {
            Ok(ev) => relevant(ev, &cat, &cfg, &config_name),
            // A watcher error may mean missed events: re-read.
            Err(_) => true,
        };
        if hint {
            // A full channel already holds a pending hint.
            let _ = tx.try_send(());
        }
    })?;
    w.watch(catalog_dir, RecursiveMode::NonRecursive)?;
    let mut dirs = vec![catalog_dir.to_path_buf()];
    if !same_dir(&config_dir, catalog_dir) {
        w.watch(&config_dir, RecursiveMode::NonRecursive)?;
        dirs.push(config_dir);
    }
    Ok(DirWatcher { _inner: w, dirs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, ModifyKind};

    fn ev(kind: EventKind, p: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(p))
    }

    #[test]
    fn reads_of_watched_files_are_not_hints() {
        let name = OsString::from("errgate.yaml");
        let (c, d) = (Path::new("/c"), Path::new("/d"));
        assert!(!relevant(
            &ev(EventKind::Access(AccessKind::Any), "/c/pk.yaml"),
            c,
            d,
            &name
        ));
        assert!(relevant(
            &ev(EventKind::Modify(ModifyKind::Any), "/c/pk.yaml"),
            c,
            d,
            &name
        ));
    }

    #[test]
    fn only_the_config_file_counts_in_its_directory() {
        let name = OsString::from("errgate.yaml");
        let (c, d) = (Path::new("/c"), Path::new("/d"));
        assert!(relevant(
            &ev(EventKind::Create(CreateKind::Any), "/d/errgate.yaml"),
            c,
            d,
            &name
        ));
        assert!(relevant(
            &ev(EventKind::Create(CreateKind::Any), "/d/..data"),
            c,
            d,
            &name
        ));
        assert!(!relevant(
            &ev(EventKind::Modify(ModifyKind::Any), "/d/errgate.log"),
            c,
            d,
            &name
        ));
    }
}
