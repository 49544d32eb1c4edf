//! `errgate coverage`: the vendor code -> canonical answer table, generated from the catalogs
//! and kept between markers in `catalogs/README.md`; `--check` fails when it is stale (CI).

use super::EXIT_CONFIG;
use crate::catalog::{load_catalogs, CatalogSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

/// Start marker of the generated table.
pub const BEGIN: &str = "<!-- coverage:begin -->";
/// End marker of the generated table.
pub const END: &str = "<!-- coverage:end -->";

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Catalog directory.
    #[arg(long, default_value = "catalogs")]
    pub catalog_dir: PathBuf,
    /// Markdown file holding the table between the markers.
    #[arg(long, default_value = "catalogs/README.md")]
    pub file: PathBuf,
    /// Write the table into the file.
    #[arg(long, conflicts_with = "check")]
    pub write: bool,
    /// Exit 1 when the file's table differs from the catalogs.
    #[arg(long)]
    pub check: bool,
}

/// The table, as markdown.
pub fn table(set: &CatalogSet) -> String {
    let mut out = String::new();
    for id in set.ids() {
        let Some(v) = set.vendor(id) else { continue };
        let _ = writeln!(out, "\n### {id} ({} entries)\n", v.entries.len());
        let _ = writeln!(
            out,
            "| vendor code | when | canonical code | status | reason | retryable |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for e in &v.entries {
            let mut when = Vec::new();
            if let Some(s) = e.match_status {
                when.push(format!("HTTP {s}"));
            }
            if let Some(m) = &e.match_method {
                when.push(m.clone());
            }
            if let Some(p) = &e.match_path {
                when.push(format!("`{}`", p.as_str()));
            }
            if let Some(m) = &e.match_message {
                when.push(format!("message `{}`", m.replace('|', "\\|")));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                e.code.as_deref().unwrap_or("—"),
                if when.is_empty() {
                    "—".to_string()
                } else {
                    when.join(", ")
                },
                e.canonical.as_str(),
                e.http_status,
                e.reason,
                if e.retryable { "yes" } else { "no" }
            );
        }
    }
    out
}

/// Replaces the text between the markers.
pub fn splice(doc: &str, table: &str) -> Option<String> {
    let b = doc.find(BEGIN)?;
    let e = doc.find(END)?;
    if e < b {
        return None;
    }
    Some(format!(
        "{}{BEGIN}\n{}\n{}",
        &doc[..b],
        table.trim_matches('\n'),
        &doc[e..]
    ))
}

/// Prints, writes or checks.
pub fn run(args: Args) -> ExitCode {
    let set = match load_catalogs(&args.catalog_dir, SystemTime::now()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let t = table(&set);
    if !args.write && !args.check {
        print!("{t}");
        return ExitCode::SUCCESS;
    }
    let doc = match std::fs::read_to_string(&args.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(new) = splice(&doc, &t) else {
        eprintln!(
            "{}: needs the markers {BEGIN} and {END}",
            args.file.display()
        );
        return ExitCode::FAILURE;
    };
    if args.check {
        if new == doc {
            println!("{}: coverage table is current", args.file.display());
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "{}: coverage table is stale; run `cargo run -- coverage --write`",
            args.file.display()
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&args.file, new) {
        eprintln!("{}: {e}", args.file.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
