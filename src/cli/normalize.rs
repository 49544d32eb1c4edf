//! `errgate normalize --vendor V [--status N] [--header 'K: V']... [FILE]`: what errgate would
//! send for a captured vendor response, through the proxy's own decision code
//! ([`crate::normalize::decide_captured`]: the steps the proxy runs) and its own renderer
//! ([`crate::problem::Problem::to_text`]).

use super::{ConfigArg, EXIT_USAGE};
use crate::catalog::VendorCatalog;
use crate::config::Config;
use crate::normalize::{decide_captured, Decision, ResponseFacts, Verdict};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

/// Chunk size the body is fed in, like a network read.
const FEED_CHUNK: usize = 16 * 1024;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Vendor id.
    #[arg(long)]
    pub vendor: String,
    /// Upstream HTTP status.
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// A response header, `Name: value`; repeatable.
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Request method (microcms classifies by endpoint).
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request path below the route prefix.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Body file; stdin when absent.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    cfg: ConfigArg,
}

/// Prints the verdict.
pub fn run(args: Args) -> ExitCode {
    args.cfg.with_vendor(&args.vendor, |config, vendor| {
        normalize(&args, config, vendor)
    })
}

fn normalize(args: &Args, config: &Config, vendor: &VendorCatalog) -> ExitCode {
    let mut headers = http::HeaderMap::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            eprintln!("header `{h}` must look like `Name: value`");
            return ExitCode::from(EXIT_USAGE);
        };
        match (
            http::HeaderName::from_bytes(k.trim().as_bytes()),
            http::HeaderValue::from_str(v.trim()),
        ) {
            (Ok(k), Ok(v)) => {
                headers.append(k, v);
            }
            _ => {
                eprintln!("header `{h}` is not valid");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let mut body = Vec::new();
    let read = match &args.file {
        Some(f) => std::fs::File::open(f).and_then(|mut f| f.read_to_end(&mut body)),
        None => std::io::stdin().read_to_end(&mut body),
    };
    if let Err(e) = read {
        eprintln!("cannot read the body: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let resp = ResponseFacts {
        status: args.status,
        headers: &headers,
        method: &args.method,
        path: &args.path,
    };
    let decision = decide_captured(
        vendor,
        &resp,
        body.chunks(FEED_CHUNK),
        config.hold_max_bytes,
        SystemTime::now(),
        config.retry_after_max,
    );
    match decision {
        Decision::NotHeld => println!(
            "passes through untouched: HTTP {} is not held for {}",
            args.status, vendor.id
        ),
        Decision::Released {
            fallback: Some("hold_limit"),
        } => println!(
            "passes through untouched: undecided within hold_max_bytes ({})",
            config.hold_max_bytes
        ),
        Decision::Released {
            fallback: Some(other),
        } => println!("passes through untouched: {other}"),
        Decision::Released { fallback: None } => {
            println!("passes through untouched: the in-band field says success")
        }
        Decision::Classified { classified, .. } => match classified.verdict {
            Verdict::Pass => println!("passes through untouched"),
            Verdict::Error(p, _) => {
                println!("{}", p.to_text(&config.problem_type_base, "normalize"))
            }
        },
    }
    ExitCode::SUCCESS
}
