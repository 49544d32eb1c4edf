//! Process metrics (the standard `process_*` names every Prometheus client exports), read from
//! `/proc/self` at scrape time. Hand-written instead of the `prometheus` crate's `process`
//! feature, which pulls in `procfs` and with it a second `rustix`.
//!
//! The parsers are pure (text in, numbers out) and tested; [`ProcessCollector`] does the
//! reading. A file that cannot be read or parsed leaves its metrics at their last value.

use pingora_prometheus::prometheus::core::{Collector, Desc};
use pingora_prometheus::prometheus::proto::MetricFamily;
use pingora_prometheus::prometheus::{self, Counter, Gauge, Opts};
use std::sync::Mutex;

/// Clock ticks per second in `/proc/<pid>/stat` times (Linux's `USER_HZ`, fixed at 100 in the
/// kernel's user-space ABI on every architecture Pingora builds for).
pub const USER_HZ: f64 = 100.0;

/// The fields errgate reads from `/proc/self/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Threads.
    pub threads: f64,
    /// Start time after boot, seconds.
    pub start_after_boot: f64,
    /// Virtual memory size, bytes.
    pub vsize: f64,
}

/// Parses `/proc/self/stat`. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): field n is f[n - 3].
    let num = |n: usize| f.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        cpu_seconds: (num(14)? + num(15)?) / USER_HZ,
        threads: num(20)?,
        start_after_boot: num(22)? / USER_HZ,
        vsize: num(23)?,
    })
}

/// `VmRSS` from `/proc/self/status`, in bytes.
pub fn parse_rss(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut w = line["VmRSS:".len()..].split_whitespace();
    let kib: f64 = w.next()?.parse().ok()?;
    (w.next()? == "kB").then_some(kib * 1024.0)
}

/// `btime` (boot time, Unix seconds) from `/proc/stat`.
pub fn parse_btime(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft "Max open files" limit from `/proc/self/limits`; `unlimited` is `None`.
pub fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Collects the `process_*` metrics of the calling process.
pub struct ProcessCollector {
    descs: Vec<Desc>,
    cpu: Counter,
    open_fds: Gauge,
    max_fds: Gauge,
    vsize: Gauge,
    rss: Gauge,
    start: Gauge,
    threads: Gauge,
    /// Serializes scrapes: the CPU counter is advanced by the difference since the last one.
    lock: Mutex<()>,
}

// === impl ProcessCollector ===

impl ProcessCollector {
    /// A collector for this process.
    pub fn for_self() -> prometheus::Result<ProcessCollector> {
        let g = |name: &str, help: &str| Gauge::with_opts(Opts::new(name, help));
        let c = ProcessCollector {
            descs: Vec::new(),
            cpu: Counter::with_opts(Opts::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            ))?,
            open_fds: g("process_open_fds", "Number of open file descriptors.")?,
            max_fds: g(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            )?,
            vsize: g(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            )?,
            rss: g(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            )?,
            start: g(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            )?,
            threads: g("process_threads", "Number of OS threads in the process.")?,
            lock: Mutex::new(()),
        };
        let descs = [
            c.cpu.desc(),
            c.open_fds.desc(),
            c.max_fds.desc(),
            c.vsize.desc(),
            c.rss.desc(),
            c.start.desc(),
            c.threads.desc(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        Ok(ProcessCollector { descs, ..c })
    }

    fn refresh(&self) {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        if let Some(s) = read("/proc/self/stat").as_deref().and_then(parse_stat) {
            let delta = s.cpu_seconds - self.cpu.get();
            if delta > 0.0 {
                self.cpu.inc_by(delta);
            }
            self.threads.set(s.threads);
            self.vsize.set(s.vsize);
            if let Some(boot) = read("/proc/stat").as_deref().and_then(parse_btime) {
                self.start.set(boot + s.start_after_boot);
            }
        }
        if let Some(rss) = read("/proc/self/status").as_deref().and_then(parse_rss) {
            self.rss.set(rss);
        }
        if let Some(max) = read("/proc/self/limits").as_deref().and_then(parse_max_fds) {
            self.max_fds.set(max);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(dir.count() as f64);
        }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh();
        [
            self.cpu.collect(),
            self.open_fds.collect(),
            self.max_fds.collect(),
            self.vsize.collect(),
            self.rss.collect(),
            self.start.collect(),
            self.threads.collect(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        // Fields 3.. of a real line; the name holds a space and a parenthesis.
        let line = "4242 (errgate (w) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 7 0 1234 104857600 2000 18446744073709551615";
        let s = parse_stat(line).expect("parses");
        assert_eq!(s.cpu_seconds, 4.0);
        assert_eq!(s.threads, 7.0);
        assert_eq!(s.start_after_boot, 12.34);
        assert_eq!(s.vsize, 104_857_600.0);
        assert_eq!(parse_stat("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn parses_status_stat_and_limits() {
        let status = "Name:\terrgate\nVmSize:\t  102400 kB\nVmRSS:\t    2048 kB\nThreads:\t7\n";
        assert_eq!(parse_rss(status), Some(2048.0 * 1024.0));
        assert_eq!(parse_rss("VmRSS: 12 pages\n"), None);
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1764480000\nprocesses 9\n"),
            Some(1_764_480_000.0)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            65536                524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(65536.0));
        assert_eq!(
            parse_max_fds(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let c = ProcessCollector::for_self().expect("collector");
        let fams = c.collect();
        let get = |n: &str| {
            fams.iter()
                .find(|f| f.name() == n)
                .map(|f| {
                    let m = &f.get_metric()[0];
                    if n.ends_with("_total") {
                        m.get_counter().value()
                    } else {
                        m.get_gauge().value()
                    }
                })
                .unwrap_or(-1.0)
        };
        assert!(get("process_resident_memory_bytes") > 1e6);
        assert!(get("process_open_fds") >= 3.0);
        assert!(get("process_max_fds") >= get("process_open_fds"));
        assert!(get("process_threads") >= 1.0);
        assert!(get("process_start_time_seconds") > 1.6e9);
        assert!(get("process_cpu_seconds_total") >= 0.0);
        assert_eq!(c.desc().len(), 7);
    }
}
