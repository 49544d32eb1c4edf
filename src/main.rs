//! The `errgate` binary: parse the command line, start the process log, dispatch, map to an
//! exit code (0 ok, 64 usage error, 78 configuration error).

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match errgate::cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    errgate::cli::logging::init(cli.log_format);
    errgate::cli::dispatch(cli)
}
