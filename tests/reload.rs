//! Reloading catalogs and config: file watcher (in-place edit, write-and-rename, ConfigMap
//! `..data` swap, delete + create), SIGHUP, `POST /-/reload`, the periodic hash poll, and a
//! broken catalog that keeps the last good set serving (contract §4, §6, §7).
mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a change may take to be served.
const BOUND: Duration = Duration::from_secs(10);
/// A poll so slow it cannot be what reloads within [`BOUND`].
/// The poll fallback out of the way: reloads come from the watcher or SIGHUP.
fn no_poll() -> GateConfig {
    GateConfig::new().set("catalog_poll_interval", "60s")
}
const OLD_REASON: &str = "MEMBER_NOT_FOUND";
const MEMBER_404: &str = r#"{"message":"Member not found.","code":20002}"#;

fn pk_catalog() -> String {
    fs::read_to_string(repo().join("catalogs/pluralkit.yaml")).expect("pluralkit.yaml")
}

/// The PluralKit catalog with 20002's reason replaced.
fn with_reason(reason: &str) -> String {
    let text = pk_catalog();
    let old = format!("    reason: {OLD_REASON}\n");
    assert_eq!(text.matches(&old).count(), 1, "20002's reason line");
    text.replace(&old, &format!("    reason: {reason}\n"))
}

/// Valid YAML, invalid catalog: 20001 reuses 20002's reason.
fn with_duplicate_reason() -> String {
    let text = pk_catalog();
    assert_eq!(text.matches("    reason: SYSTEM_NOT_FOUND\n").count(), 1);
    text.replace(
        "    reason: SYSTEM_NOT_FOUND\n",
        &format!("    reason: {OLD_REASON}\n"),
    )
}

const INVALID_YAML: &str = "schema: 1\nvendor: pluralkit\nentries: [ {code: \"20002\"\n";

/// Saves like an editor: write a hidden temp file next to it, then rename over.
fn write_rename(path: &Path, text: &str) {
    let name = path.file_name().expect("name").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, text).expect("write temp");
    fs::rename(&tmp, path).expect("rename");
}

fn pk_gate(cfg: GateConfig) -> (Gate, Mock) {
    let m = Mock::fixed(json(404, MEMBER_404));
    let g = cfg
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    (g, m)
}

/// The reason errgate gives PluralKit's 20002 right now.
fn reason(port: u16) -> String {
    let r = request(port, "GET", "/pk/members/abcde", &[], b"");
    assert_eq!(r.status, 404, "{}", r.text());
    let v = r.json();
    assert_eq!(v["upstream"]["code"], "20002");
    v["reason"].as_str().expect("reason").to_string()
}

/// Polls until `f` holds, at most `bound`; returns whether it did.
fn eventually(bound: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t0.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_serves(g: &Gate, want: &str) {
    let mut last = String::new();
    let ok = eventually(BOUND, || {
        last = reason(g.port);
        last == want
    });
    assert!(
        ok,
        "reason still {last} after {BOUND:?}, wanted {want}; log:\n{}",
        g.log_text()
    );
}

fn catalogs_json(g: &Gate) -> serde_json::Value {
    let r = g.admin_get("/catalogs");
    assert_eq!(r.status, 200);
    r.json()
}

fn failures(g: &Gate) -> u64 {
    catalogs_json(g)["reload"]["failures"]
        .as_u64()
        .expect("failures")
}

fn reload_metric(g: &Gate, result: &str) -> f64 {
    g.metric(&format!(
        "errgate_catalog_reloads_total{{result=\"{result}\"}}"
    ))
}

/// Makes `catalog_dir/pluralkit.yaml` a hard link of a file in `outside`, a directory nobody
/// watches, and returns that path: writing through it changes the catalog without any event on
/// the watched directories (a missed event). Waits for the watcher to settle on the swap itself.
fn unwatched_alias(g: &Gate, outside: &Path) -> PathBuf {
    let alias = outside.join("pluralkit.yaml");
    let target = g.catalog_dir().join("pluralkit.yaml");
    fs::copy(&target, &alias).expect("copy");
    let tmp = g.catalog_dir().join(".pluralkit.yaml.link");
    fs::hard_link(&alias, &tmp).expect("hard link");
    fs::rename(&tmp, &target).expect("rename link");
    // Same content, so this reload (if any) is "unchanged"; let the debounce run out.
    std::thread::sleep(Duration::from_millis(1000));
    alias
}

/// Writes in place (same inode), as `std::fs::write` does.
fn write_in_place(path: &Path, text: &str) {
    fs::write(path, text).expect("write in place");
}

/// Log lines of reloads that changed something, by trigger.
fn reloaded_by(g: &Gate, trigger: &str) -> usize {
    g.log_text()
        .lines()
        .filter(|l| l.contains(&format!("trigger={trigger} ")) && l.contains("Reloaded"))
        .count()
}

// ------------------------------------------------------------------ watcher

#[test]
fn watcher_sees_in_place_edit() {
    let (g, _m) = pk_gate(no_poll());
    assert_eq!(reason(g.port), OLD_REASON);
    write_in_place(
        &g.catalog_dir().join("pluralkit.yaml"),
        &with_reason("MEMBER_GONE_EDITED"),
    );
    assert_serves(&g, "MEMBER_GONE_EDITED");
    // Counted just after the swap that made the new set serve.
    assert!(eventually(BOUND, || reload_metric(&g, "success") >= 1.0));
    assert!(reloaded_by(&g, "watch") >= 1, "{}", g.log_text());
}

#[test]
fn watcher_sees_write_and_rename() {
    let (g, _m) = pk_gate(no_poll());
    assert_eq!(reason(g.port), OLD_REASON);
    write_rename(
        &g.catalog_dir().join("pluralkit.yaml"),
        &with_reason("MEMBER_GONE_RENAMED"),
    );
    assert_serves(&g, "MEMBER_GONE_RENAMED");
    // Counted just after the swap that made the new set serve.
    assert!(eventually(BOUND, || reload_metric(&g, "success") >= 1.0));
    assert_eq!(failures(&g), 0, "{}", g.log_text());
}

/// Kubernetes ConfigMap volume layout: `..2026_v1/` holds the files, `..data -> ..2026_v1`,
/// and every `name.yaml -> ..data/name.yaml`. An update writes `..2026_v2/`, points a new
/// `..data_tmp` at it and renames that over `..data`.
#[test]
fn watcher_sees_configmap_symlink_swap() {
    use std::os::unix::fs::symlink;
    let m = Mock::fixed(json(404, MEMBER_404));
    let names = |dir: &Path| -> Vec<std::ffi::OsString> {
        fs::read_dir(dir)
            .expect("catalogs")
            .map(|f| f.expect("entry").file_name())
            .collect()
    };
    let g = GateConfig::start_with(|dir| {
        let cm = dir.join("cm");
        let v1 = cm.join("..2026_v1");
        copy_catalogs(&v1);
        symlink("..2026_v1", cm.join("..data")).expect("..data");
        for n in names(&v1) {
            symlink(Path::new("..data").join(&n), cm.join(&n)).expect("file link");
        }
        no_poll()
            .set("catalog_dir", cm.display().to_string())
            .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
    });
    let cm = g.dir.path().join("cm");
    let v1 = cm.join("..2026_v1");
    let names = names(&v1);
    assert_eq!(reason(g.port), OLD_REASON);
    assert_eq!(
        catalogs_json(&g)["vendors"].as_object().map(|o| o.len()),
        Some(5)
    );

    // The swap, as the kubelet does it.
    let v2 = cm.join("..2026_v2");
    fs::create_dir(&v2).expect("mkdir v2");
    for n in &names {
        if n == "pluralkit.yaml" {
            fs::write(v2.join(n), with_reason("MEMBER_GONE_CONFIGMAP")).expect("write");
        } else {
            fs::copy(v1.join(n), v2.join(n)).expect("copy");
        }
    }
    symlink("..2026_v2", cm.join("..data_tmp")).expect("..data_tmp");
    fs::rename(cm.join("..data_tmp"), cm.join("..data")).expect("swap ..data");
    fs::remove_dir_all(&v1).expect("remove v1");

    assert_serves(&g, "MEMBER_GONE_CONFIGMAP");
    let c = catalogs_json(&g);
    assert_eq!(c["vendors"].as_object().map(|o| o.len()), Some(5), "{c:#}");
    assert!(
        c["reload"]["last_error"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "{c:#}"
    );
}

#[test]
fn watcher_sees_delete_and_create() {
    let (g, _m) = pk_gate(no_poll());
    let f = g.catalog_dir().join("pluralkit.yaml");
    fs::remove_file(&f).expect("remove");
    // Without the file the route has no catalog: that reload is rejected, the old set serves.
    assert!(eventually(BOUND, || failures(&g) >= 1), "{}", g.log_text());
    assert_eq!(reason(g.port), OLD_REASON);
    fs::write(&f, with_reason("MEMBER_GONE_RECREATED")).expect("create");
    assert_serves(&g, "MEMBER_GONE_RECREATED");
    let c = catalogs_json(&g);
    assert!(
        c["reload"]["last_error"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "{c:#}"
    );
}

#[test]
fn broken_catalog_keeps_last_good_set_until_fixed() {
    let (g, _m) = pk_gate(no_poll());
    let f = g.catalog_dir().join("pluralkit.yaml");
    let hash0 = catalogs_json(&g)["vendors"]["pluralkit"]["hash"].clone();

    // 1. Invalid YAML.
    write_rename(&f, INVALID_YAML);
    assert!(eventually(BOUND, || failures(&g) >= 1), "{}", g.log_text());
    let c = catalogs_json(&g);
    let err = c["reload"]["last_error"].to_string();
    assert!(err.contains("pluralkit.yaml"), "{c:#}");
    assert_eq!(
        c["vendors"]["pluralkit"]["hash"], hash0,
        "the old set serves"
    );
    assert_eq!(reason(g.port), OLD_REASON);
    assert!(reload_metric(&g, "failure") >= 1.0);
    let f1 = reload_metric(&g, "failure");

    // 2. Valid YAML, duplicate reason.
    write_rename(&f, &with_duplicate_reason());
    assert!(
        eventually(BOUND, || {
            let e = catalogs_json(&g)["reload"]["last_error"].to_string();
            e.contains("pluralkit.yaml") && e.contains("is used by another entry")
        }),
        "{:#}",
        catalogs_json(&g)
    );
    assert!(reload_metric(&g, "failure") > f1);
    assert_eq!(reason(g.port), OLD_REASON);
    assert_eq!(catalogs_json(&g)["vendors"]["pluralkit"]["hash"], hash0);

    // 3. Fixed.
    write_rename(&f, &with_reason("MEMBER_GONE_FIXED"));
    assert_serves(&g, "MEMBER_GONE_FIXED");
    let c = catalogs_json(&g);
    assert!(
        c["reload"]["last_error"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "{c:#}"
    );
    assert_ne!(c["vendors"]["pluralkit"]["hash"], hash0);
    // Counted just after the swap that made the new set serve.
    assert!(eventually(BOUND, || reload_metric(&g, "success") >= 1.0));
}

/// Reading the catalogs must not itself look like a change: a change the watcher cannot see
/// (written through a hard link outside the watched directories) stays unserved until a
/// trigger, and a broken catalog left alone is not re-read in a loop.
#[test]
fn watcher_does_not_reload_in_a_loop() {
    let (g, _m) = pk_gate(no_poll());
    let outside = tempfile::tempdir().expect("tempdir");
    let alias = unwatched_alias(&g, outside.path());
    write_in_place(&alias, &with_reason("MEMBER_GONE_UNSEEN"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(reason(g.port), OLD_REASON, "reloaded without any trigger");

    write_rename(&g.catalog_dir().join("pluralkit.yaml"), INVALID_YAML);
    assert!(eventually(BOUND, || failures(&g) >= 1), "{}", g.log_text());
    std::thread::sleep(Duration::from_millis(1000));
    let settled = failures(&g);
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        failures(&g),
        settled,
        "failed reloads keep happening with no change on disk"
    );
}

// ------------------------------------------------------------- other triggers

#[test]
fn sighup_reloads() {
    let (g, _m) = pk_gate(no_poll());
    let outside = tempfile::tempdir().expect("tempdir");
    let alias = unwatched_alias(&g, outside.path());
    let s0 = reload_metric(&g, "success");
    write_in_place(&alias, &with_reason("MEMBER_GONE_HUP"));
    // The watcher did not see this change, and the poll is far off.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(reason(g.port), OLD_REASON, "reloaded without a trigger");
    g.signal("HUP");
    assert_serves(&g, "MEMBER_GONE_HUP");
    assert_eq!(reload_metric(&g, "success"), s0 + 1.0);
    assert_eq!(reloaded_by(&g, "sighup"), 1, "{}", g.log_text());
    assert_eq!(reloaded_by(&g, "watch"), 0, "{}", g.log_text());
}

#[test]
fn post_reload_reloads_and_reports_outcome() {
    let (g, _m) = pk_gate(no_poll());
    let outside = tempfile::tempdir().expect("tempdir");
    let alias = unwatched_alias(&g, outside.path());
    let post = || request(g.admin, "POST", "/-/reload", &[], b"");

    let r = post();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"], "unchanged");

    write_in_place(&alias, &with_reason("MEMBER_GONE_POST"));
    let r = post();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["result"], "reloaded", "{v:#}");
    assert_eq!(v["catalogs"], true, "{v:#}");
    assert_eq!(v["config"], false, "{v:#}");
    // The swap is done when the answer arrives.
    assert_eq!(reason(g.port), "MEMBER_GONE_POST");
    assert_eq!(reload_metric(&g, "success"), 1.0);
    assert_eq!(post().json()["result"], "unchanged");

    write_in_place(&alias, INVALID_YAML);
    let r = post();
    assert_eq!(r.status, 422, "{}", r.text());
    let v = r.json();
    assert_eq!(v["result"], "failed", "{v:#}");
    assert!(v["errors"].to_string().contains("pluralkit.yaml"), "{v:#}");
    assert_eq!(reason(g.port), "MEMBER_GONE_POST");
    assert!(reload_metric(&g, "failure") >= 1.0);
    assert!(catalogs_json(&g)["reload"]["last_error"]
        .to_string()
        .contains("pluralkit.yaml"));
}

/// A change the watcher cannot see (written through an unwatched alias) is caught by the poll,
/// and the reload is attributed to it.
#[test]
fn missed_event_is_caught_by_the_poll() {
    let (g, _m) = pk_gate(GateConfig::new().set("catalog_poll_interval", "300ms"));
    let outside = tempfile::tempdir().expect("tempdir");
    let alias = unwatched_alias(&g, outside.path());
    write_in_place(&alias, &with_reason("MEMBER_GONE_POLLED"));
    assert_serves(&g, "MEMBER_GONE_POLLED");
    assert_eq!(reloaded_by(&g, "poll"), 1, "{}", g.log_text());
    assert_eq!(reloaded_by(&g, "watch"), 0, "{}", g.log_text());
}

#[test]
fn config_change_of_upstream_takes_effect() {
    let a = Mock::fixed(json(200, r#"{"from":"a"}"#));
    let b = Mock::fixed(json(200, r#"{"from":"b"}"#));
    let cfg = |up: &str| no_poll().route(RouteConfig::new("pk", "pluralkit", "/pk", up));
    let g = cfg(&a.url()).start();
    let from = || g.get("/pk/systems/abc").text();
    assert_eq!(from(), r#"{"from":"a"}"#);
    let on_disk = fs::read_to_string(g.config_path()).expect("config");
    assert_eq!(on_disk.matches(&a.url()).count(), 1);
    write_rename(
        &g.config_path(),
        &cfg(&b.url()).render(g.port, g.admin, &g.catalog_dir()),
    );
    assert!(
        eventually(BOUND, || from() == r#"{"from":"b"}"#),
        "{}",
        g.log_text()
    );
    let hits_a = a.hits();
    assert_eq!(from(), r#"{"from":"b"}"#);
    assert_eq!(a.hits(), hits_a, "old upstream still used");
    // Counted just after the swap that made the new set serve.
    assert!(eventually(BOUND, || reload_metric(&g, "success") >= 1.0));
}
