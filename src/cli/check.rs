//! `errgate check`: the exact loader `run` uses, minus binding sockets.

use super::{ConfigArg, EXIT_CONFIG};
use std::process::ExitCode;
use std::time::SystemTime;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    cfg: ConfigArg,
}

/// Validates; prints every problem; exit 0 or 78.
pub fn run(args: Args) -> ExitCode {
    match crate::state::check_all(&args.cfg.config, SystemTime::now()) {
        Ok((config, catalogs)) => {
            let entries: usize = catalogs.meta.values().map(|m| m.entries).sum();
            println!(
                "{}: ok: {} routes, {} catalogs ({} entries) in {}",
                args.cfg.config.display(),
                config.routes.len(),
                catalogs.len(),
                entries,
                config.catalog_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(errs) => {
            for e in &errs {
                eprintln!("{e}");
            }
            eprintln!("{} problem(s) found", errs.len());
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
