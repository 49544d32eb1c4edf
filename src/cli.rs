//! Command line (contract §5): one module per subcommand, each `run(args) -> ExitCode`.

pub mod check;
pub mod coverage;
pub mod explain;
pub mod normalize;
pub mod run;

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
}

/// `--config FILE`, shared by run and check.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Config file.
    #[arg(long, short = 'c', default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Check(a) => check::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Normalize(a) => normalize::run(a),
        Command::Coverage(a) => coverage::run(a),
    }
}
