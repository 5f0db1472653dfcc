//! Command-line front end: one file per subcommand, flags in, a library call, output out.
pub use crate::exit;
pub mod arches;
pub mod bisect;
pub mod boot;
pub mod build;
pub mod check;
pub mod diff;
pub mod merge;
pub mod report;
pub mod repro;
pub mod run;
pub mod setup;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "modverify",
    version,
    about = "Verify that every kernel module loads: statically from the ELF files, and in QEMU on foreign architectures",
    long_about = None,
    after_help = "Exit status: 0 all good, 1 findings, 2 bad input or flags, 3 build failed, 4 infrastructure failed, 130 interrupted."
)]
pub struct Cli {
    /// Extra architecture descriptors (*.yaml) that add to or override the built-in ones
    /// [env: MODVERIFY_ARCH_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub arch_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole job: build, check, boot and compare for a set of arches, with reports
    Run(run::RunArgs),
    /// Render a results.json as table, json, junit, kcidb or html
    Report(report::ReportArgs),
    /// Merge per-arch results.json files into one
    Merge(merge::MergeArgs),
    /// One `git bisect run` step: exit 0 good, 1 bad, 125 skip
    BisectStep(bisect::BisectArgs),
    /// Boot a kernel under QEMU, load every module and record the running kernel's verdicts
    Boot(boot::BootArgs),
    /// One module's result from a results.json, again: its kernel, its load, then a shell
    Repro(repro::ReproArgs),
    /// Cross-build a kernel and its modules for one architecture
    Build(build::BuildArgs),
    /// Predict the kernel's verdict for every module from the ELF files alone
    Check(check::CheckArgs),
    /// What a kernel update changed in the export table, and which modules it breaks
    Diff(diff::DiffArgs),
    /// List architecture descriptors and whether their toolchain and emulator are installed
    Arches(arches::ArchesArgs),
    /// Install every host dependency (cross compilers, QEMU, kernel source) with apt-get
    Setup(setup::SetupArgs),
}

/// What a command itself can fail on, outside the library's stages.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The request cannot be done as asked (inputs that contradict each other, a bad value).
    #[error("{0}")]
    Usage(String),
    /// A file or directory the command reads or writes, with what the system said.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A results file this version cannot read.
    #[error("{}: {source}", path.display())]
    Results {
        path: PathBuf,
        source: crate::results::ReadError,
    },
}

impl crate::failure::Classified for CliError {
    fn kind(&self) -> crate::failure::FailureKind {
        match self {
            CliError::Usage(_) => crate::failure::FailureKind::BadInput,
            CliError::File { source, .. } => crate::failure::FailureKind::of_io(source),
            CliError::Results { source, .. } => source.kind(),
        }
    }
}

impl CliError {
    pub fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        CliError::File {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A failure of the run itself, with the exit status it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub error: Box<dyn std::error::Error + Send + Sync>,
}

impl Failure {
    /// The failure an error means, with the exit status of its kind (`exit::code`).
    pub fn of(e: impl crate::failure::Classified) -> Self {
        Failure::new(exit::code(e.kind()), e)
    }

    pub fn new(code: i32, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Failure {
            code,
            error: Box::new(error),
        }
    }
}

/// Runs a parsed command; `Ok(code)` is the exit status of a completed run.
pub fn run(cli: Cli) -> Result<i32, Failure> {
    // A descriptor directory that cannot be read exits by its kind (2 when it is missing),
    // but under `git bisect run` 2 means "bad": there no commit can be tested, so the
    // bisection aborts instead.
    let bisecting = matches!(cli.command, Command::BisectStep(_));
    let registry = crate::arch::ArchRegistry::load(cli.arch_dir.as_deref()).map_err(|e| {
        if bisecting {
            Failure::new(bisect::ABORT, e)
        } else {
            Failure::of(e)
        }
    })?;
    if let Some((_, message)) = registry.broken.first() {
        // A bisection must test with the descriptors it was given, all of them.
        if matches!(cli.command, Command::BisectStep(_)) {
            crate::outln!("bisect-step: abort: {message}");
            return Ok(bisect::ABORT);
        }
    }
    for (_, message) in &registry.broken {
        crate::errln!("warning: {message}; that file is left out, the other arches go on");
    }
    match cli.command {
        Command::Run(a) => run::run(a, &registry),
        Command::Report(a) => report::run(a),
        Command::Merge(a) => merge::run(a, &registry),
        Command::BisectStep(a) => bisect::run(a, &registry),
        Command::Boot(a) => boot::run(a, &registry),
        Command::Repro(a) => repro::run(a, &registry),
        Command::Build(a) => build::run(a, &registry),
        Command::Check(a) => check::run(a, &registry),
        Command::Diff(a) => diff::run(a, &registry),
        Command::Arches(a) => arches::run(a, &registry),
        Command::Setup(a) => setup::run(a, &registry),
    }
}

/// Columns to wrap human-readable output to: the terminal's, or 100 when stdout is not one.
pub fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct for a terminal fd and fails otherwise.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::isatty(1) == 1 && libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col >= 40
        {
            return ws.ws_col as usize;
        }
    }
    100
}
