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
            // The interception CA is read the way `run` reads it (the key is never printed).
            if let Some(t) = config
                .forward_proxy
                .as_ref()
                .and_then(|f| f.tls_intercept.as_ref())
            {
                if let Err(e) =
                    crate::egress::mint::Minter::load(&t.ca_cert_file, &t.ca_key_file, t.max_certs)
                {
                    eprintln!(
                        "{}: forward_proxy.tls_intercept: {e}",
                        args.cfg.config.display()
                    );
                    eprintln!("1 problem(s) found");
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
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
