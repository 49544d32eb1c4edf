//! The errgate binary run as a command rather than a server (`check`, `explain`, `coverage`,
//! `catalog suggest`, ...), in the repo root.

use super::repo;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `errgate ARGS` in the repo root.
pub fn errgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_errgate"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run errgate")
}

/// Runs `errgate ARGS` in the repo root without the inherited log settings (`ERRGATE_LOG_FORMAT`,
/// `RUST_LOG`) and with `env` added.
pub fn errgate_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_errgate"));
    c.args(args).current_dir(repo());
    c.env_remove("ERRGATE_LOG_FORMAT").env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run errgate")
}

/// Exit code, stdout and stderr of a command, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `errgate check --config cfg` with `env` added and every inherited `ERRGATE_TEST_*` variable
/// removed (tests name their secrets that way): the exit code (-1 on a signal) and stdout
/// followed by stderr.
pub fn check_config(cfg: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_errgate"));
    c.args(["check", "--config"]).arg(cfg);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ERRGATE_TEST_") {
            c.env_remove(k);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run errgate check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
