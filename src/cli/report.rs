//! `modverify report`: render a results.json again, in any format.
use super::CliError;
use super::Failure;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Junit,
    Kcidb,
    Html,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
modverify report out/results.json\n  \
modverify report out            # reads out/results.json\n  \
modverify report out/results.json --format junit -o junit.xml\n  \
modverify report merged.json --format kcidb --origin mylab -o kcidb.json\n  \
modverify report merged.json --format html -o index.html\n\
\n\
Exit status: 0 written, 2 the results file is unreadable or the output unwritable.")]
pub struct ReportArgs {
    /// A results.json written by `modverify run` (or `modverify merge`), or the directory
    /// holding it (run's --out); `-` reads stdin
    pub results: PathBuf,
    /// table and html for people, json for programs, junit and kcidb (v5.3) for CI systems
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// KCIDB origin ([a-z0-9_]+)
    #[arg(long, default_value = "modverify")]
    pub origin: String,
    /// Write to this file instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Reads a results.json (`-`: standard input) into the results model.
pub fn read_results(p: &std::path::Path) -> Result<crate::results::RunResults, Failure> {
    let usage = |m: String| Failure::of(CliError::Usage(m));
    // A run's --out directory stands for the results.json in it.
    let joined;
    let p = if p.is_dir() {
        joined = p.join("results.json");
        if !joined.is_file() {
            return Err(usage(format!(
                "{}: a directory with no results.json in it; give a run's --out directory or \
                 its results.json",
                p.display()
            )));
        }
        joined.as_path()
    } else {
        p
    };
    let text = if p.as_os_str() == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
            .map_err(|e| Failure::of(CliError::file(std::path::Path::new("standard input"), e)))?;
        t
    } else {
        std::fs::read_to_string(p).map_err(|e| Failure::of(CliError::file(p, e)))?
    };
    crate::results::RunResults::from_json(&text).map_err(|source| {
        Failure::of(CliError::Results {
            path: p.to_path_buf(),
            source,
        })
    })
}

pub fn run(a: ReportArgs) -> Result<i32, Failure> {
    let v = read_results(&a.results)?;
    if !a
        .origin
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || a.origin.is_empty()
    {
        return Err(Failure::of(CliError::Usage(format!(
            "--origin `{}` must match [a-z0-9_]+",
            a.origin
        ))));
    }
    let text = match a.format {
        ReportFormat::Table => crate::report::results::table(&v),
        ReportFormat::Json => crate::report::json::to_string(&v) + "\n",
        ReportFormat::Junit => crate::report::junit::junit(&v),
        ReportFormat::Kcidb => {
            crate::report::json::to_string(&crate::report::kcidb::kcidb(&v, &a.origin)) + "\n"
        }
        ReportFormat::Html => crate::report::html::html(&v),
    };
    match &a.output {
        Some(p) => std::fs::write(p, text).map_err(|e| Failure::of(CliError::file(p, e)))?,
        None => crate::out!("{text}"),
    }
    Ok(crate::cli::exit::OK)
}
