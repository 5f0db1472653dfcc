//! `modverify bisect-step`: one step of `git bisect run`. Builds the tree it runs in, checks
//! it and boots it; exits 0 (good), 1 (bad: the finding reproduces) or 125 (cannot test:
//! the build or QEMU failed), and says why in one line. The answer is the arch's status as
//! `outcome::decide` gives it, put in git's terms by `outcome::bisect_answer`; this file only
//! gathers what to say.
use super::Failure;
use crate::arch::ArchRegistry;
use crate::boot::{run_boot_with, BootOptions};
use crate::check::stage::{check_stage, CheckOptions};
use crate::check::Policy;
use crate::kernel_build::run_build;
use crate::outcome::{bisect_answer, decide, ArchStatus, BisectAnswer, StageEnd, Stages};
use clap::Args;
use std::path::PathBuf;

/// `git bisect run`: this commit cannot be tested.
pub const SKIP: i32 = crate::cli::exit::BISECT_SKIP;
/// `git bisect run` aborts the bisection on a status above 127: used for bad flags.
pub const ABORT: i32 = crate::cli::exit::BISECT_ABORT;

#[derive(Args, Debug)]
#[command(
    mut_arg("source", |a| a.help(
        "Kernel tree or git checkout [default: the current directory, the commit git bisect \
         checked out]. Never written"
    )),
    after_help = "Examples:\n  \
git bisect start BAD GOOD\n  \
git bisect run modverify bisect-step --arch sparc64\n  \
ci/bisect GOOD BAD --arch sparc64    # the same, and names the finding\n\
\n\
Exit status: 0 good, 1 bad, 125 skip (the build failed, QEMU could not run, or the kernel never reached the agent), 128 abort (bad flags), 130 interrupted."
)]
pub struct BisectArgs {
    /// Target architecture (`modverify arches` lists them)
    #[arg(long)]
    pub arch: String,
    /// Only this module's verdict decides (default: any failing module or export-table error)
    #[arg(long, value_name = "NAME")]
    pub module: Option<String>,
    /// Decide from the static check alone (no QEMU)
    #[arg(long)]
    pub static_only: bool,
    /// The kernel tree, configuration and patches (--source defaults to the current directory)
    #[command(flatten)]
    pub kernel: super::build::SourceArgs,
    #[arg(long, value_enum, default_value_t = Policy::default())]
    pub policy: Policy,
    /// Call a commit whose kernel never reaches modverify's agent (hangs or panics at boot)
    /// bad, for bisecting exactly that [default: skip it, 125: the modules were not tested]
    #[arg(long)]
    pub boot_failure_is_bad: bool,
    /// What to call a commit whose only trouble is flaky modules (their tries in fresh guests
    /// disagree): skip (125, git cannot decide on it), good or bad
    #[arg(long, value_enum, default_value = "skip", value_name = "ANSWER")]
    pub flaky: crate::outcome::FlakyIs,
    /// Tries of a module whose load fails, before its verdict stands (0: no retry)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub retries: usize,
}

fn say(verdict: &str, why: &str) {
    let line = format!("bisect-step: {verdict}: {why}");
    crate::outln!("{line}");
    // ci/bisect collects one line per tested commit to name the finding of the first bad one.
    if let Some(log) = std::env::var_os("MODVERIFY_BISECT_LOG") {
        let mut git = std::process::Command::new("git");
        git.args(["rev-parse", "HEAD"]);
        let head = crate::proc::stdout_if_ok(git)
            .map(|o| o.trim().to_string())
            .unwrap_or_default();
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            use std::io::Write;
            let _ = writeln!(f, "{head} {line}");
        }
    }
}

pub fn run(a: BisectArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    crate::proc::install_interrupt_handler();
    let arch = match registry.get(&a.arch) {
        Ok(x) => x,
        Err(e) => {
            say("abort", &e.to_string());
            return Ok(ABORT);
        }
    };
    let mut opts = a.kernel.options(None);
    let source = a
        .kernel
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    opts.source = Some(source.canonicalize().unwrap_or(source));
    let progress = crate::report::progress::Progress::new();
    let bar = progress.arch(&arch.name);
    let answer_failure = |kind, why: String| {
        let answer = bisect_answer(ArchStatus::of_failure(kind), false, false, None);
        say(answer.as_str(), &format!("{}: {why}", arch.name));
        Ok(answer.code())
    };
    // Asked to boot an arch nothing boots (ia64): said before a build is paid for.
    if !a.static_only {
        if let Err(why) = arch.qemu_or_why_not() {
            say(
                "abort",
                &format!("{}: cannot boot ({why}); use --static-only", arch.name),
            );
            return Ok(bisect_answer(ArchStatus::BadInput, false, false, None).code());
        }
    }
    let manifest = match run_build(&opts, arch, &bar) {
        Ok(m) => m,
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or("").to_string();
            return answer_failure(e.kind(), format!("build: {first}"));
        }
    };
    bar.finish("built");
    // Held to the end of the step: a build of the same directory waits (see run_all).
    let held =
        match crate::kernel_build::BuildManifest::read_finished(&manifest.build_dir, &mut || {
            crate::kernel_build::BuildEvents::note(
                &bar,
                &format!(
                    "waiting for another modverify building in {}",
                    manifest.build_dir.display()
                ),
            )
        }) {
            Ok(h) => h,
            Err(e) => return answer_failure(e.kind(), e.to_string()),
        };
    let art = held.artifacts.clone();
    let no_other_arches = ArchRegistry::of(vec![]);
    let copts = CheckOptions {
        system_map: None,
        arch: Some(arch.name.clone()),
        vmlinux: Some(art.vmlinux.clone()),
        symvers: Some(art.module_symvers.clone()),
        policy: a.policy,
        paths: art.modules.clone(),
        // A build's vmlinux carries its vermagic.
        own_modules: vec![],
        providers: Default::default(),
    };
    let checked = match check_stage(&copts, Some(arch), &no_other_arches) {
        Ok(c) => c,
        Err(e) => return answer_failure(e.kind(), format!("static check could not run: {e}")),
    };
    let check = &checked.report;
    // The finding, statically.
    // (fails only because another module does, what to say): causes are said first.
    let mut bad: Vec<(bool, String)> = Vec::new();
    for m in check
        .modules
        .iter()
        .filter(|m| m.failed() && a.module.as_ref().is_none_or(|x| *x == m.name))
    {
        let msg = m
            .problems
            .iter()
            .find(|p| p.fatal)
            .and_then(|p| {
                p.kernel_messages
                    .first()
                    .cloned()
                    .or(Some(p.detail.clone()))
            })
            .unwrap_or_default();
        bad.push((
            m.verdict.is_consequence(),
            format!("{} {} ({msg})", m.name, m.verdict.as_str()),
        ));
    }
    if a.module.is_none() {
        for p in check
            .exports
            .problems
            .iter()
            .filter(|p| p.severity == crate::check::Severity::Error)
        {
            bad.insert(0, (false, format!("export table: {}", p.detail)));
        }
    }
    if a.module
        .as_ref()
        .is_some_and(|m| !check.modules.iter().any(|x| x.name == *m))
    {
        say(
            "skip",
            &format!(
                "{}: module {} is not built at this commit",
                arch.name,
                a.module.as_deref().unwrap_or("")
            ),
        );
        return Ok(SKIP);
    }
    let modules_checked = check.modules.len();
    // The status the static check alone gives: with --module, that module's verdict.
    let static_status = match &a.module {
        Some(_) if bad.is_empty() => ArchStatus::Ok,
        Some(_) => ArchStatus::Findings,
        None => decide(&Stages {
            build: StageEnd::Done(&()),
            check: StageEnd::Done(check),
            boot: StageEnd::NotAsked,
            interrupted: false,
        }),
    };
    let mut status = static_status;
    let static_bad = bad.len();
    let mut only_never_reached = false;
    let mut flaky = 0;
    let mut skip_why = String::new();
    let mut how = "static check";
    if !a.static_only {
        let bo = BootOptions {
            retries: a.retries,
            ..BootOptions::for_build(arch, &art, manifest.build_dir.join("boot"), a.policy)
        };
        // The boot reuses the modules, predictions and export table the check read.
        match run_boot_with(arch, &bo, Some(checked), &mut |_| {}) {
            Ok(r) => {
                how = "static check and boot";
                let never_reached = crate::outcome::never_reached_the_agent(&r);
                flaky = r
                    .modules
                    .iter()
                    .filter(|m| m.flaky() && a.module.as_ref().is_none_or(|x| *x == m.name))
                    .count();
                if flaky > 0 {
                    skip_why = format!(
                        "{flaky} flaky module(s): their tries in fresh guests disagree ({}); --flaky good|bad decides",
                        r.modules
                            .iter()
                            .filter(|m| m.flaky())
                            .map(|m| format!("{} {}", m.name, m.shown_verdict()))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                }
                if let Some(why) = r.infrastructure_failure() {
                    skip_why = why.to_string();
                } else if never_reached {
                    // Nothing about the modules: skipped unless asked to call it bad, or
                    // unless the static check found something already.
                    only_never_reached = static_status == ArchStatus::Ok;
                    skip_why = format!(
                        "the kernel never reached the agent ({}); --boot-failure-is-bad calls that bad",
                        r.boot_failure.as_deref().unwrap_or("")
                    );
                }
                if let Some(f) = &r.boot_failure {
                    bad.push((false, format!("boot: {f}")));
                }
                for m in r.modules.iter().filter(|m| {
                    m.not_known_to_work() && a.module.as_ref().is_none_or(|x| *x == m.name)
                }) {
                    let msg = m.kernel_messages.first().cloned().unwrap_or_default();
                    bad.push((
                        m.verdict.outcome() == crate::verdict::Outcome::Skip,
                        format!("{} {} at run time ({msg})", m.name, m.verdict.as_str()),
                    ));
                }
                if a.module.is_none() {
                    if r.export_table.as_ref().is_some_and(|t| !t.equal) {
                        bad.push((false, "running export table differs from the ELF".into()));
                    }
                    // What else makes a boot not clean: said after the causes above.
                    let s = &r.summary;
                    for (n, what) in [
                        (
                            s.disagreements,
                            "module(s) where the kernel disagrees with the static prediction",
                        ),
                        (s.unload_failures, "module(s) that would not unload"),
                        (r.damaged_records, "damaged record(s) from the guest"),
                        (r.lost_records as usize, "record(s) lost by the guest"),
                    ] {
                        if n > 0 {
                            bad.push((true, format!("{n} {what}")));
                        }
                    }
                }
                let boot_status = match &a.module {
                    Some(_) if r.infrastructure_failure().is_some() => ArchStatus::Infra,
                    Some(_) if bad.len() > static_bad => ArchStatus::Findings,
                    Some(_) => ArchStatus::Ok,
                    // decide() folds its stages with max, so the static and the boot part
                    // decided apart and joined are the whole arch decided at once.
                    None => decide(&Stages {
                        build: StageEnd::NotAsked,
                        check: StageEnd::NotAsked,
                        boot: StageEnd::Done(&r),
                        interrupted: false,
                    }),
                };
                status = status.max(boot_status);
            }
            Err(e) => {
                status = status.max(ArchStatus::of_failure(e.kind()));
                skip_why = format!("QEMU could not be run: {e}");
            }
        }
    }
    if crate::proc::interrupted() {
        status = status.max(ArchStatus::Interrupted);
    }
    let answer = bisect_answer(
        status,
        only_never_reached,
        a.boot_failure_is_bad,
        (flaky > 0).then_some(a.flaky),
    );
    let why = match answer {
        BisectAnswer::Good => format!("{modules_checked} modules ok ({how})"),
        BisectAnswer::Bad => {
            // The cause first: a module that fails only because another one does comes last.
            bad.sort_by_key(|(consequence, _)| *consequence);
            let more = if bad.len() > 1 {
                format!(" (+{} more)", bad.len() - 1)
            } else {
                String::new()
            };
            match bad.first() {
                Some((_, first)) => format!("{first}{more}"),
                None => format!("{} ({how})", status.as_str()),
            }
        }
        BisectAnswer::Interrupted => "interrupted".into(),
        BisectAnswer::Skip | BisectAnswer::Abort => skip_why,
    };
    say(answer.as_str(), &format!("{}: {why}", arch.name));
    Ok(answer.code())
}
