//! How many worker threads the client listener gets: `ERRGATE_THREADS` if set, else the
//! config's `threads`, else one per CPU available to the process (Rust's
//! `available_parallelism`, which honours a cgroup CPU quota but not a Kubernetes CPU
//! *request*). The Kubernetes Deployment sets `ERRGATE_THREADS` from the container's CPU request
//! (`resourceFieldRef`, rounded up to whole cores), so a pod asking for 250m runs one worker
//! thread rather than one per node core.

/// Environment variable that overrides the config's `threads`.
pub const THREADS_ENV: &str = "ERRGATE_THREADS";

/// Most worker threads accepted from the environment (a typo such as `10000` is an error, not
/// ten thousand threads).
pub const MAX_THREADS: usize = 1024;

/// The worker thread count from the environment value (if any), the config's `threads`
/// (0 = not set) and the CPUs available. An unparsable, zero or too large environment value is
/// an error naming the variable.
pub fn worker_threads(env: Option<&str>, config: usize, cpus: usize) -> Result<usize, String> {
    if let Some(v) = env.map(str::trim).filter(|v| !v.is_empty()) {
        return match v.parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
            _ => Err(format!(
                "{THREADS_ENV}={v:?}: expected a whole number of threads from 1 to {MAX_THREADS}"
            )),
        };
    }
    Ok(if config > 0 { config } else { cpus.max(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_config_then_cpus() {
        assert_eq!(worker_threads(Some("3"), 8, 16), Ok(3));
        assert_eq!(worker_threads(Some(" 2 "), 0, 16), Ok(2));
        assert_eq!(worker_threads(Some(""), 8, 16), Ok(8));
        assert_eq!(worker_threads(None, 8, 16), Ok(8));
        assert_eq!(worker_threads(None, 0, 16), Ok(16));
        assert_eq!(worker_threads(None, 0, 0), Ok(1));
    }

    #[test]
    fn bad_env_values_are_errors() {
        for bad in ["0", "-1", "1.5", "two", "250m", "100000"] {
            let e = worker_threads(Some(bad), 4, 4).expect_err(bad);
            assert!(e.contains(THREADS_ENV), "{e}");
        }
    }
}
