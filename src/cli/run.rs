//! `modverify run`: the whole job for a set of arches, with a results directory and a table.
use super::CliError;
use super::Failure;
use crate::arch::{ArchDescriptor, ArchRegistry};
use crate::check::Policy;
use crate::failure::FailureKind;
use crate::kernel_build::BuildEvents;
use crate::pipeline::{run_all, RunEvents, RunOptions, Stage};
use crate::report::progress::{ArchProgress, Progress};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(
    after_help = "With no arguments: the default arches (descriptors with `default: true`: sparc64, alpha, riscv64, and ia64, built with the compiler `modverify setup` makes from Debian's gcc-12-source and checked statically: no QEMU boots it) from Debian's linux-source-6.1. --source 6.12 / --source 7.2: trixie's and sid's trees, fetched once into the cache; or a tree or git checkout.\n\
\n\
Results: OUT/results.json (schema modverify.results/2, rewritten after every stage) and OUT/<arch>/ (build.json, build.log, check.json, boot/console.log, boot/boot.json). `modverify report OUT` renders them again as table, json, junit, kcidb or html.\n\
\n\
Examples:\n  \
modverify run\n  \
modverify run --arch riscv64 --source ~/linux --out out\n  \
modverify run --source 6.12 --static-only\n  \
modverify run --baseline last-night/results.json --out tonight\n\
\n\
Exit status: 0 clean, 1 findings (with --baseline: regressions only), 2 bad input, 3 a build failed, 4 infrastructure, 130 interrupted."
)]
pub struct RunArgs {
    /// Comma-separated arches, or `all` (every descriptor whose toolchain and emulator are
    /// present) [default: the descriptors marked `default: true`]
    #[arg(long)]
    pub arch: Option<String>,
    #[command(flatten)]
    pub kernel: super::build::SourceArgs,
    /// The run's results directory [default: ./modverify-results/run-<unix time>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where the kernel builds go [default: ~/.cache/modverify/builds]
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
    /// A previous results.json: regressions and fixes are listed first, and only regressions fail the run
    #[arg(long, value_name = "RESULTS")]
    pub baseline: Option<PathBuf>,
    /// Arches run side by side (the CPUs are shared between them)
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Build and check only: no QEMU
    #[arg(long)]
    pub static_only: bool,
    /// How a missing version entry is treated in the static check: upstream warns and
    /// accepts, Debian rejects
    #[arg(long, value_enum, default_value_t = Policy::default())]
    pub policy: Policy,
    /// Time from QEMU's start for the kernel to reach the agent, in every boot; a kernel
    /// that does not is a failed boot (DURATION: 90, 90s, 500ms, 2m).
    ///
    /// The whole of one guest is bounded by TIMEOUT + MODULE_TIMEOUT × its modules +
    /// 2 × SILENCE (with the defaults and 35 modules: 120 s + 700 s + 80 s = 15 min); a
    /// guest that stops talking is stopped after SILENCE, a hung load after MODULE_TIMEOUT.
    #[arg(long, value_name = "DURATION", default_value = crate::boot::limits::BOOT, value_parser = super::boot::parse_duration)]
    pub timeout: Duration,
    /// Time one module's load may take before the agent records it hung and goes on
    #[arg(long, value_name = "DURATION", default_value = crate::boot::limits::MODULE, value_parser = super::boot::parse_duration)]
    pub module_timeout: Duration,
    /// Time without console output before a guest counts as hung (a load that took the
    /// machine down)
    #[arg(long, value_name = "DURATION", default_value = crate::boot::limits::SILENCE, value_parser = super::boot::parse_duration)]
    pub silence: Duration,
    /// Tries of a module whose load fails, hangs or takes the guest down, each in a fresh
    /// guest with what it needs, before its verdict stands; tries that differ make it flaky
    /// (0: no retry)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub retries: usize,
    /// Boot only shard K of N of each arch's modules (every N-th boot of the set): one CI
    /// job each; `modverify merge` joins the shards' results.json into one run
    /// (`auto`: GitLab's CI_NODE_INDEX/CI_NODE_TOTAL; `auto/N`: a Kubernetes Indexed Job's
    /// JOB_COMPLETION_INDEX of N)
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::batch::Shard>,
}

pub(super) struct Events<'a> {
    bars: Vec<(String, ArchProgress<'a>)>,
}

impl<'a> Events<'a> {
    /// A bar (or line printer) for each arch.
    pub(super) fn new(progress: &'a Progress, arches: &[&ArchDescriptor]) -> Self {
        Events {
            bars: arches
                .iter()
                .map(|d| (d.name.clone(), progress.arch(&d.name)))
                .collect(),
        }
    }

    pub(super) fn finish(&self) {
        for (_, b) in &self.bars {
            b.finish("");
        }
    }
}

impl RunEvents for Events<'_> {
    fn build_events(&self, arch: &str) -> &dyn BuildEvents {
        &self.bars.iter().find(|(a, _)| a == arch).unwrap().1
    }
    fn stage(&self, arch: &str, stage: Stage) {
        let Some((_, b)) = self.bars.iter().find(|(a, _)| a == arch) else {
            return;
        };
        // Load counts come fast: without a terminal they are printed at most every 2 s.
        let (msg, always) = match stage {
            Stage::CannotBuild => ("cannot be built here".to_string(), true),
            Stage::Build => ("build".into(), true),
            Stage::BuildFailed(kind) => (
                match kind {
                    FailureKind::BadInput => "bad input: nothing built",
                    FailureKind::BuildFailed => "build failed",
                    FailureKind::Infra => "build could not run",
                    FailureKind::Interrupted => "interrupted",
                }
                .into(),
                true,
            ),
            Stage::Check => ("check".into(), true),
            Stage::Boot => ("boot".into(), true),
            Stage::Load { done, total } => (format!("load {done}/{total}"), false),
            Stage::ExportTable => ("export table".into(), true),
            Stage::BootFailed => ("boot failed".into(), true),
            Stage::Finished { clean: true } => ("ok".into(), true),
            Stage::Finished { clean: false } => ("findings".into(), true),
        };
        b.stage(&msg, always);
    }
}

/// The arches `--arch` names; `all` means every arch that can be done here: its cross
/// compiler (for ia64, the one `modverify setup` builds) and, where anything boots it, its
/// emulator installed. A descriptor with no build recipe (loong64, …) is not in `all`: asked
/// for by name it is bad input, but `all` asks for what this machine can test, and a run of
/// `all` that exits 2 every night would teach people to ignore it. Said on stderr. None, the
/// default set.
pub fn select<'r>(
    spec: Option<&str>,
    registry: &'r ArchRegistry,
) -> Result<Vec<&'r ArchDescriptor>, Failure> {
    let Some(spec) = spec else {
        return Ok(registry.arches.iter().filter(|a| a.default).collect());
    };
    if spec == "all" {
        let (can, cannot): (Vec<&ArchDescriptor>, Vec<&ArchDescriptor>) =
            registry.arches.iter().partition(|a| {
                a.unsupported.build.is_none()
                    && crate::cross_gcc::have_gcc(a, &crate::files::cache_dir())
                    // An arch that cannot boot anywhere (ia64) is built and checked statically.
                    && !matches!(
                        crate::host::boots_here(a),
                        Err(crate::host::CannotBoot::NotInstalled { .. })
                    )
            });
        let names = |v: &[&ArchDescriptor]| {
            v.iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !cannot.is_empty() {
            crate::errln!(
                "--arch all: {}; leaves out {}, which cannot be built here (`modverify arches` \
                 says why)",
                names(&can),
                names(&cannot)
            );
        }
        if can.is_empty() {
            return Err(Failure::of(CliError::Usage(
                "--arch all: no arch can be built here; `modverify setup` installs the \
                 toolchains and emulators"
                    .into(),
            )));
        }
        return Ok(can);
    }
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| registry.get(s.trim()).map_err(Failure::of))
        .collect()
}

pub fn run(a: RunArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    if let Some(from) = a.shard.and_then(|s| s.from) {
        let s = a.shard.expect("set");
        crate::errln!("shard {s}: from {from}");
    }
    crate::proc::install_interrupt_handler();
    let arches = select(a.arch.as_deref(), registry)?;
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("modverify-results").join(format!("run-{}", crate::files::unix_now()))
    });
    let usage = |m: String| Failure::of(CliError::Usage(m));
    std::fs::create_dir_all(&out).map_err(|e| Failure::of(CliError::file(&out, e)))?;
    let _lock = lock(&out).map_err(usage)?;
    // Read before anything is cleared: `--baseline OUT/results.json --out OUT` is a nightly's
    // way of comparing with last night.
    let baseline = match &a.baseline {
        Some(p) => Some(super::report::read_results(p)?),
        None => None,
    };
    if let Some(said) = clear_previous_run(&out) {
        crate::errln!("note: {said}");
    }
    let opts = RunOptions {
        build: a.kernel.options(a.build_dir.clone()),
        out: out.clone(),
        jobs: a.jobs,
        policy: a.policy,
        static_only: a.static_only,
        boot_timeout: a.timeout,
        module_timeout: a.module_timeout,
        silence: a.silence,
        shard: a.shard,
        retries: a.retries,
        module: None,
    };
    let progress = Progress::new();
    let events = Events::new(&progress, &arches);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut results = run_all(&arches, &opts, command, &events);
    events.finish();
    if let (Some(prev), Some(path)) = (&baseline, &a.baseline) {
        results.baseline = Some(crate::baseline::compare(
            &path.display().to_string(),
            prev,
            &results,
            registry,
        ));
        let _ = crate::files::write_atomic(&out.join("results.json"), &results);
    }
    crate::out!("{}", crate::report::results::table(&results));
    crate::outln!("\nresults: {}", out.join("results.json").display());
    if crate::proc::interrupted() {
        return Ok(crate::cli::exit::INTERRUPTED);
    }
    let statuses: Vec<_> = results.arches.values().map(|r| r.status).collect();
    Ok(crate::outcome::exit_status(
        &statuses,
        results.baseline.as_ref().map(|c| c.regressions.len()),
    ))
}

/// What a run writes into OUT/<arch>: cleared from a previous run's arches so that
/// nothing of it is left beside the new results as if it were theirs.
const RUN_FILES: [&str; 4] = ["build.json", "build.log", "check.json", "boot"];

/// A previous run in `out` (its results.json): its results.json and what it wrote for
/// each of its arches are removed; anything else is left. Says what was done, if anything.
pub(super) fn clear_previous_run(out: &std::path::Path) -> Option<String> {
    let path = out.join("results.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let prev = crate::results::RunResults::from_json(&text).ok();
    let arches: Vec<String> = prev
        .map(|r| r.arches.keys().cloned().collect())
        .unwrap_or_default();
    let mut kept = Vec::new();
    for arch in &arches {
        let dir = out.join(arch);
        for f in RUN_FILES {
            let p = dir.join(f);
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
        if dir.is_dir() && std::fs::remove_dir(&dir).is_err() {
            kept.push(dir.display().to_string());
        }
    }
    let _ = std::fs::remove_file(&path);
    Some(format!(
        "{} held a previous run ({}): its results.json and its per-arch results were removed{}",
        out.display(),
        if arches.is_empty() {
            "an unreadable results.json".to_string()
        } else {
            format!("arches {}", arches.join(", "))
        },
        if kept.is_empty() {
            String::new()
        } else {
            format!("; other files left in {}", kept.join(", "))
        }
    ))
}

/// A second `run` on the same directory is refused rather than allowed to corrupt the first.
pub(super) fn lock(dir: &std::path::Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let p = dir.join(".modverify-run.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "another modverify run is using {}; wait for it or pick another --out",
            dir.display()
        ));
    }
    Ok(f)
}
