use super::*;
use std::time::UNIX_EPOCH;

fn sample() -> Record<'static> {
    Record {
        time: Some(UNIX_EPOCH + Duration::from_millis(1_764_496_800_123)),
        request_id: "rid-1",
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        route: Some("pk"),
        method: "GET",
        path: "/pk/v2/systems?token=sk-123",
        status: 429,
        outcome: "normalized",
        code: Some("RESOURCE_EXHAUSTED"),
        reason: Some("RATE_LIMITED"),
        domain: Some("pluralkit"),
        upstream_status: Some(429),
        upstream_code: Some("0 \"quoted\"\n"),
        attempts: 2,
        cooldown: false,
        mode: Some("problem"),
        duration: Duration::from_micros(12_345),
        upstream_duration: Some(Duration::from_micros(7)),
        bytes_in: 0,
        bytes_out: 321,
        client: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 5555))),
    }
}

#[test]
fn json_line_has_every_field_and_parses() {
    let mut out = Vec::new();
    format_json(&sample(), false, &mut out);
    assert_eq!(out.last(), Some(&b'\n'));
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(v["time"], "2025-11-30T10:00:00.123Z");
    assert_eq!(v["request_id"], "rid-1");
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(v["route"], "pk");
    assert_eq!(v["path"], "/pk/v2/systems");
    assert_eq!(v["status"], 429);
    assert_eq!(v["outcome"], "normalized");
    assert_eq!(v["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(v["reason"], "RATE_LIMITED");
    assert_eq!(v["domain"], "pluralkit");
    assert_eq!(v["upstream_status"], 429);
    assert_eq!(v["upstream_code"], "0 \"quoted\"\n");
    assert_eq!(v["attempts"], 2);
    assert_eq!(v["cooldown"], false);
    assert_eq!(v["duration_ms"], 12.345);
    assert_eq!(v["upstream_ms"], 0.007);
    assert_eq!(v["bytes_in"], 0);
    assert_eq!(v["bytes_out"], 321);
    assert_eq!(v["client"], "127.0.0.1:5555");
    assert_eq!(v["mode"], "problem");
    assert_eq!(v.as_object().map(|o| o.len()), Some(21));
}

#[test]
fn query_is_left_out_unless_asked_for() {
    let mut out = Vec::new();
    format_json(&sample(), true, &mut out);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(v["path"], "/pk/v2/systems?token=sk-123");
    let mut t = Vec::new();
    format_text(&sample(), false, &mut t);
    assert!(!String::from_utf8_lossy(&t).contains("sk-123"));
}

#[test]
fn absent_fields_are_null_in_json_and_dash_in_text() {
    let r = Record {
        request_id: "r",
        method: "GET",
        path: "/",
        outcome: "gateway",
        ..Record::default()
    };
    let mut out = Vec::new();
    format_json(&r, false, &mut out);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    for k in [
        "trace_id",
        "route",
        "code",
        "upstream_status",
        "upstream_ms",
        "client",
    ] {
        assert!(v[k].is_null(), "{k}");
    }
    let mut t = Vec::new();
    format_text(&r, false, &mut t);
    let t = String::from_utf8(t).expect("utf8");
    assert!(t.contains(" route=- "), "{t}");
    assert!(t.contains(" upstream_ms=- "), "{t}");
}

#[test]
fn both_formats_write_the_same_fields_in_the_same_order() {
    let (mut j, mut t) = (Vec::new(), Vec::new());
    format_json(&sample(), false, &mut j);
    format_text(&sample(), false, &mut t);
    let (j, t) = (String::from_utf8_lossy(&j), String::from_utf8_lossy(&t));
    // Every logfmt key is a bare word before `=` at the start or after a space, outside the
    // quoted values (the sample's only quoted value, upstream_code, has no `=` or key in it).
    let keys: Vec<&str> = t
        .trim_end()
        .split(' ')
        .filter_map(|tok| tok.split_once('=').map(|(k, _)| k))
        .filter(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .collect();
    assert_eq!(keys.len(), 21, "{t}");
    let at: Vec<usize> = keys
        .iter()
        .map(|k| {
            j.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} in {j}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{keys:?} against {j}");
}

#[test]
fn text_line_quotes_only_what_needs_it() {
    let mut t = Vec::new();
    format_text(&sample(), false, &mut t);
    let t = String::from_utf8(t).expect("utf8");
    assert!(
        t.starts_with("time=2025-11-30T10:00:00.123Z request_id=rid-1 "),
        "{t}"
    );
    assert!(
        t.contains(" route=pk method=GET path=/pk/v2/systems status=429 "),
        "{t}"
    );
    assert!(t.contains(r#" upstream_code="0 \"quoted\"\n" "#), "{t}");
    assert!(t.ends_with(" client=127.0.0.1:5555\n"), "{t}");
    assert_eq!(t.matches('\n').count(), 1);
}

#[test]
fn dates_match_known_days() {
    let f = |secs: u64| {
        let mut o = Vec::new();
        rfc3339_millis(&mut o, UNIX_EPOCH + Duration::from_secs(secs));
        String::from_utf8(o).expect("utf8")
    };
    assert_eq!(f(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(f(951_782_400), "2000-02-29T00:00:00.000Z");
    assert_eq!(f(4_107_542_399), "2100-02-28T23:59:59.000Z");
    assert_eq!(f(1_709_208_000), "2024-02-29T12:00:00.000Z");
}

#[test]
fn targets_and_formats_parse() {
    assert_eq!(Target::parse("stdout"), Ok(Target::Stdout));
    assert_eq!(Target::parse("off"), Ok(Target::Off));
    assert_eq!(
        Target::parse("/var/log/a.log"),
        Ok(Target::File("/var/log/a.log".into()))
    );
    assert!(Target::parse(" ").is_err());
    assert_eq!(Format::parse("text"), Ok(Format::Text));
    assert!(Format::parse("xml").is_err());
}

fn counter() -> IntCounter {
    IntCounter::new("t_dropped_total", "test").expect("valid name")
}

#[test]
fn lines_reach_a_file_in_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("access.log");
    let s = AccessLogSettings {
        target: Target::File(p.clone()),
        ..AccessLogSettings::default()
    };
    let c = counter();
    let log = AccessLog::start(&s, c.clone()).expect("starts");
    let ids: Vec<String> = (0..50).map(|i| format!("id-{i}")).collect();
    for id in &ids {
        log.log(&Record {
            request_id: id,
            ..sample()
        });
    }
    drop(log);
    let t0 = std::time::Instant::now();
    let mut text = String::new();
    while t0.elapsed() < Duration::from_secs(5) {
        text = std::fs::read_to_string(&p).unwrap_or_default();
        if text.lines().count() == 50 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let got: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["request_id"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(got, ids);
    assert_eq!(c.get(), 0);
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    // A writer stuck in its first write: the queue fills, every further line drops.
    struct Stuck {
        entered: std::sync::mpsc::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    }
    impl Write for Stuck {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _ = self.entered.send(());
            let _ = self.release.recv_timeout(Duration::from_secs(10));
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release_tx, release) = std::sync::mpsc::channel::<()>();
    let c = counter();
    let out = Stuck {
        entered: entered_tx,
        release,
    };
    let settings = AccessLogSettings {
        buffer: 4,
        ..AccessLogSettings::default()
    };
    let log = AccessLog::to_writer(&settings, Box::new(out), c.clone()).expect("starts");
    log.log(&sample());
    entered
        .recv_timeout(Duration::from_secs(5))
        .expect("writer reached its first write");
    let t0 = std::time::Instant::now();
    for _ in 0..1000 {
        log.log(&sample());
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "log() blocked");
    assert_eq!(c.get(), 1000 - 4);
    drop(log);
    drop(release_tx);
}

/// A writer that records each batch it is given.
#[derive(Clone, Default)]
struct Batches(Arc<Mutex<Vec<Vec<u8>>>>);

impl Write for Batches {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").push(b.to_vec());
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A log with the default settings writing to a [`Batches`].
fn batched_log() -> (AccessLog, Batches) {
    let b = Batches::default();
    let log = AccessLog::to_writer(
        &AccessLogSettings::default(),
        Box::new(b.clone()),
        counter(),
    )
    .expect("starts");
    (log, b)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(5), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_quiet_log_writes_each_line_soon_and_a_burst_in_few_writes() {
    let (log, b) = batched_log();
    // A line alone (the writer asleep) is written without waiting for more.
    log.log(&sample());
    wait_for("first line", || b.0.lock().expect("lock").len() == 1);
    std::thread::sleep(Duration::from_millis(20));
    log.log(&Record {
        request_id: "second",
        ..sample()
    });
    wait_for("second line", || b.0.lock().expect("lock").len() == 2);
    // A burst is batched: far fewer writes than lines, every line once, in order.
    let ids: Vec<String> = (0..2000).map(|i| format!("burst-{i}")).collect();
    for id in &ids {
        log.log(&Record {
            request_id: id,
            ..sample()
        });
    }
    let lines = || -> Vec<String> {
        let all: Vec<u8> = b.0.lock().expect("lock").concat();
        String::from_utf8_lossy(&all)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["request_id"].as_str().unwrap_or("").to_string()
            })
            .collect()
    };
    wait_for("burst", || lines().len() == 2002);
    assert_eq!(lines()[2..], ids[..]);
    let writes = b.0.lock().expect("lock").len();
    assert!(writes < 2 + 2000 / 10, "{writes} writes for 2000 lines");
}

#[test]
fn a_steady_stream_wakes_the_writer_once() {
    let (log, b) = batched_log();
    // A line every millisecond for 300 ms: the writer, once woken, keeps writing a batch per
    // LINGER and goes back to waiting only after a pause longer than that (a worker stalled by
    // a busy machine). Woken per batch (the loop before) it was 59 times.
    for i in 0..300 {
        log.log(&Record {
            request_id: &format!("steady-{i}"),
            ..sample()
        });
        std::thread::sleep(Duration::from_millis(1));
    }
    wait_for("all lines", || {
        let all: Vec<u8> = b.0.lock().expect("lock").concat();
        all.iter().filter(|&&c| c == b'\n').count() == 300
    });
    // 0 is right too: a first line queued before the new writer thread first waits needs no
    // wake-up.
    let wakeups = log.writer_wakeups();
    assert!(wakeups <= 12, "{wakeups} wake-ups for 300 lines");
}

#[test]
fn reopen_follows_a_rotated_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let s = AccessLogSettings {
        target: Target::File(p.clone()),
        ..AccessLogSettings::default()
    };
    let log = AccessLog::start(&s, counter()).expect("starts");
    log.log(&Record {
        request_id: "before",
        ..sample()
    });
    wait_for("before", || {
        std::fs::read_to_string(&p).is_ok_and(|t| t.contains("\"before\""))
    });
    // logrotate: move the file away, then signal.
    std::fs::rename(&p, &rotated).expect("rename");
    log.reopen();
    wait_for("new file", || p.exists());
    log.log(&Record {
        request_id: "after",
        ..sample()
    });
    wait_for("after", || {
        std::fs::read_to_string(&p).is_ok_and(|t| t.contains("\"after\""))
    });
    let old = std::fs::read_to_string(&rotated).expect("rotated");
    assert!(
        old.contains("\"before\"") && !old.contains("\"after\""),
        "{old}"
    );
}

#[test]
fn off_writes_nothing() {
    let log = AccessLog::start(
        &AccessLogSettings {
            target: Target::Off,
            ..AccessLogSettings::default()
        },
        counter(),
    )
    .expect("off");
    assert!(!log.is_on());
    log.log(&sample());
}
