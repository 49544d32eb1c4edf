//! Harness additions for access log, ids and secrets tests: readers for the access log file
//! (errgate's stdout goes to [`STDOUT`] in the gate's directory).

use super::*;

/// The file errgate's stdout goes to, under the gate's directory.
pub const STDOUT: &str = "stdout.log";

/// The access log file name under the gate's directory.
pub const ACCESS_LOG: &str = "access.log";

impl Gate {
    /// The access log lines written so far, parsed as JSON.
    pub fn access_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join(ACCESS_LOG))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Waits (up to 5 s) until the access log has a line with this request id, and returns it.
    pub fn access_line(&self, request_id: &str) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            if let Some(v) = self
                .access_lines()
                .into_iter()
                .find(|v| v["request_id"] == request_id)
            {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "no access log line for {request_id}; log:\n{}",
                std::fs::read_to_string(self.dir.path().join(ACCESS_LOG)).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
