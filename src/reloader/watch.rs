//! The watcher only signals: `notify` events become one `()` on a channel. It watches
//! directories, not files, so editors that save by write-and-rename, files deleted and created
//! again, and Kubernetes ConfigMap `..data` symlink swaps are all seen. Debouncing and reloading
//! happen in [`crate::reloader`].
//!
//! Two filters keep it from waking itself: access events (the reload's own reads of the files
//! it watches) are ignored, and in the directory of a watched file (the config file, secret files
//! named by `upstream_headers` `{file: PATH}` values) only that file itself and ConfigMap/Secret
//! `..`-prefixed entries count (that directory may hold logs or other busy files).

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

/// A single file watched through its directory.
#[derive(Debug, Clone)]
struct WatchedFile {
    dir: PathBuf,
    name: OsString,
}

impl WatchedFile {
    fn new(file: &Path) -> WatchedFile {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        WatchedFile {
            dir,
            name: file.file_name().map(OsString::from).unwrap_or_default(),
        }
    }
}

/// Whether an event is a hint to reload. `notify` reports a path as the watched directory, spelled
/// as it was registered, joined with the entry's name; `files` carry their directory in that
/// spelling (see [`watch_files`]), so plain comparison suffices and an event costs no system call
/// (a busy file in a watched directory, such as an access log, raises one event per write).
fn relevant(ev: &notify::Event, catalog_dir: &Path, files: &[WatchedFile]) -> bool {
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
        parent == catalog_dir
            || files.iter().any(|f| {
                parent == f.dir
                    && (name == f.name.as_os_str() || name.to_string_lossy().starts_with(".."))
            })
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
    watch_files(catalog_dir, &[config_file.to_path_buf()], tx)
}

/// Like [`watch`], for several single files (the config file and secret files), each watched
/// through its directory so write-and-rename and `..data` symlink swaps are seen.
pub fn watch_files(
    catalog_dir: &Path,
    files: &[PathBuf],
    tx: mpsc::Sender<()>,
) -> notify::Result<DirWatcher> {
    // Each directory is registered once, in its first spelling; a file's directory is rewritten
    // to the registered spelling of the same directory, which is how events will name it.
    let mut dirs = vec![catalog_dir.to_path_buf()];
    let mut watched: Vec<WatchedFile> = files.iter().map(|f| WatchedFile::new(f)).collect();
    for f in &mut watched {
        match dirs.iter().find(|d| same_dir(d, &f.dir)) {
            Some(d) => f.dir = d.clone(),
            None => dirs.push(f.dir.clone()),
        }
    }
    let (cat, w2) = (catalog_dir.to_path_buf(), watched.clone());
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let hint = match &res {
            Ok(ev) => relevant(ev, &cat, &w2),
            // A watcher error may mean missed events: re-read.
            Err(_) => true,
        };
        if hint {
            // A full channel already holds a pending hint.
            let _ = tx.try_send(());
        }
    })?;
    for d in &dirs {
        w.watch(d, RecursiveMode::NonRecursive)?;
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

    fn cfg() -> Vec<WatchedFile> {
        vec![WatchedFile::new(Path::new("/d/errgate.yaml"))]
    }

    #[test]
    fn reads_of_watched_files_are_not_hints() {
        let (c, d) = (Path::new("/c"), &cfg());
        assert!(!relevant(
            &ev(EventKind::Access(AccessKind::Any), "/c/pk.yaml"),
            c,
            d
        ));
        assert!(relevant(
            &ev(EventKind::Modify(ModifyKind::Any), "/c/pk.yaml"),
            c,
            d
        ));
    }

    #[test]
    fn only_the_config_file_counts_in_its_directory() {
        let (c, d) = (Path::new("/c"), &cfg());
        assert!(relevant(
            &ev(EventKind::Create(CreateKind::Any), "/d/errgate.yaml"),
            c,
            d
        ));
        assert!(relevant(
            &ev(EventKind::Create(CreateKind::Any), "/d/..data"),
            c,
            d
        ));
        assert!(!relevant(
            &ev(EventKind::Modify(ModifyKind::Any), "/d/errgate.log"),
            c,
            d
        ));
    }

    #[test]
    fn secret_files_and_their_data_swaps_count() {
        let c = Path::new("/c");
        let files = vec![
            WatchedFile::new(Path::new("/d/errgate.yaml")),
            WatchedFile::new(Path::new("/run/secrets/pk/api-key")),
        ];
        for p in [
            "/run/secrets/pk/api-key",
            "/run/secrets/pk/..data_tmp",
            "/run/secrets/pk/..data",
        ] {
            assert!(
                relevant(&ev(EventKind::Create(CreateKind::Any), p), c, &files),
                "{p}"
            );
        }
        assert!(!relevant(
            &ev(EventKind::Modify(ModifyKind::Any), "/run/secrets/pk/other"),
            c,
            &files
        ));
    }

    /// Real inotify: the config file lives in the catalog directory, named through a symlink;
    /// the directory is watched once, a change to the config file is a hint, and a busy log
    /// file in the config file's own directory is not.
    #[tokio::test]
    async fn one_directory_two_spellings_and_a_busy_log() {
        use std::time::Duration;
        let tmp = tempfile::tempdir().expect("tempdir");
        let cat = tmp.path().join("catalogs");
        std::fs::create_dir(&cat).expect("mkdir");
        let alias = tmp.path().join("alias");
        std::os::unix::fs::symlink(&cat, &alias).expect("symlink");
        let cfg = alias.join("errgate.yaml");
        std::fs::write(&cfg, "a").expect("write");
        let etc = tmp.path().join("etc");
        std::fs::create_dir(&etc).expect("mkdir");
        let other_cfg = etc.join("other.yaml");
        std::fs::write(&other_cfg, "a").expect("write");
        let (tx, mut rx) = mpsc::channel(1);
        let w = watch_files(&cat, &[cfg.clone(), other_cfg.clone()], tx).expect("watch");
        assert_eq!(w.dirs, vec![cat.clone(), etc.clone()]);
        // A hint within 300 ms of a write; earlier hints are drained first.
        async fn hint_after(rx: &mut mpsc::Receiver<()>, write: impl FnOnce()) -> bool {
            tokio::time::sleep(Duration::from_millis(100)).await;
            while rx.try_recv().is_ok() {}
            write();
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_ok()
        }
        let log = etc.join("access.log");
        let busy = || (0..20).for_each(|_| std::fs::write(&log, "line").expect("write"));
        assert!(!hint_after(&mut rx, busy).await, "a log next to a config");
        let write = |p: &Path| std::fs::write(p, "b").expect("write");
        assert!(
            hint_after(&mut rx, || write(&other_cfg)).await,
            "etc/other.yaml"
        );
        assert!(
            hint_after(&mut rx, || write(&cfg)).await,
            "the config via the alias"
        );
        assert!(!hint_after(&mut rx, busy).await, "the log again");
    }
}
