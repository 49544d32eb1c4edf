//! Command line (contract §5): one module per subcommand, each `run(args) -> ExitCode`.

pub mod catalog;
pub mod check;
pub mod coverage;
pub mod explain;
pub mod healthcheck;
pub mod logging;
pub mod normalize;
pub mod run;
pub mod threads;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code of a usage error (EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// Exit code of a config or catalog error (EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// Default config file.
pub const DEFAULT_CONFIG: &str = "config/errgate.yaml";

/// errgate: an egress API gateway that turns every vendor error into one canonical
/// problem+json.
#[derive(Debug, Parser)]
#[command(name = "errgate", version, about)]
pub struct Cli {
    /// Process log format on stderr: `text` or `json` (one JSON object per line). The level
    /// filter is `RUST_LOG` (default `info`).
    #[arg(
        long,
        global = true,
        env = "ERRGATE_LOG_FORMAT",
        value_enum,
        default_value_t = logging::LogFormat::Text
    )]
    pub log_format: logging::LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Run(run::Args),
    /// Validate the config and every catalog; print each problem with file and place.
    Check(check::Args),
    /// Print the catalog entry and the canonical answer for a vendor code.
    Explain(explain::Args),
    /// Read a captured vendor response body and print what errgate would send.
    Normalize(normalize::Args),
    /// Print, write or check the catalog coverage table.
    Coverage(coverage::Args),
    /// GET an admin URL (default `/readyz`); exit 0 on 200, 1 otherwise. For container
    /// HEALTHCHECKs and exec probes in images without curl.
    Healthcheck(healthcheck::Args),
    /// Catalog tools: `catalog suggest` turns uncataloged errors into entries to review.
    Catalog(catalog::Args),
}

/// `--config FILE`, shared by run and check.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Config file.
    #[arg(long, short = 'c', default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

impl ConfigArg {
    /// Loads the config and its catalogs and runs `f` on one vendor's catalog; a config or
    /// catalog problem (printed, exit 78) or an unknown vendor (printed with the vendors there
    /// are, exit 64) ends the command first. `explain` and `normalize` start this way.
    pub fn with_vendor(
        &self,
        vendor: &str,
        f: impl FnOnce(&crate::config::Config, &crate::catalog::VendorCatalog) -> ExitCode,
    ) -> ExitCode {
        let (config, catalogs) =
            match crate::state::check_all(&self.config, std::time::SystemTime::now()) {
                Ok(v) => v,
                Err(errs) => {
                    for e in errs {
                        eprintln!("{e}");
                    }
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
        match catalogs.vendor(vendor) {
            Some(v) => f(&config, v),
            None => {
                eprintln!(
                    "unknown vendor `{vendor}`; catalogs: {}",
                    catalogs.ids().collect::<Vec<_>>().join(", ")
                );
                ExitCode::from(EXIT_USAGE)
            }
        }
    }
}

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Check(a) => check::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Normalize(a) => normalize::run(a),
        Command::Coverage(a) => coverage::run(a),
        Command::Healthcheck(a) => healthcheck::run(a),
        Command::Catalog(a) => catalog::run(a),
    }
}

/// Parses the command line. A usage error (clap's own included) prints clap's message and
/// gives [`EXIT_USAGE`]; `--help` and `--version` print to stdout and give 0.
pub fn parse_args<I, T>(args: I) -> Result<Cli, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser as _;
    Cli::try_parse_from(args).map_err(|e| {
        // Printing can fail only on a closed stdout/stderr; the exit code still says why.
        let _ = e.print();
        ExitCode::from(clap_exit_code(e.kind()))
    })
}

/// The exit code of a clap error kind: 0 for `--help`/`--version`, [`EXIT_USAGE`] for every
/// usage error (including a bare `errgate` with no subcommand, which prints help to stderr).
pub fn clap_exit_code(kind: clap::error::ErrorKind) -> u8 {
    use clap::error::ErrorKind;
    match kind {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => EXIT_USAGE,
    }
}
