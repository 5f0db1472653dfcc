//! `modverify bisect-step`: one step of `git bisect run`. Builds the tree it runs in, checks
//! it and boots it; exits 0 (good), 1 (bad: the finding reproduces) or 125 (cannot test:
//! the build or QEMU failed), and says why in one line. The answer is the arch's status as
//! `outcome::decide` gives it, put in git's terms by `outcome::bisect_answer`; this file only
//! gathers what to say.
use super::Failure;
use crate::arch::ArchRegistry;
use crate::boot::limits;
use crate::check::Policy;
use crate::outcome::{bisect_answer, decide, ArchStatus, BisectAnswer, StageEnd, Stages};
use crate::pipeline::{run_all, ArchResult, RunOptions};
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
    /// Where the step writes results.json (as `run` does; each step replaces the last's)
    /// [default: ~/.cache/modverify/bisect/ARCH-HASH, one per arch and tree]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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
    let mut build = a.kernel.options(None);
    let source = a
        .kernel
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let source = source.canonicalize().unwrap_or(source);
    build.source = Some(source.clone());
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
    // Each step's results replace the last step's, in one place per arch and tree.
    let out = a.out.clone().unwrap_or_else(|| {
        crate::files::cache_dir().join("bisect").join(format!(
            "{}-{}",
            arch.name,
            crate::files::short_hash(&source.display().to_string())
        ))
    });
    let abort = |why: String| {
        say("abort", &format!("{}: {why}", arch.name));
        Ok(ABORT)
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        return abort(format!("{}: {e}", out.display()));
    }
    let _lock = match super::run::lock(&out) {
        Ok(l) => l,
        Err(why) => return abort(why),
    };
    super::run::clear_previous_run(&out);
    // The one pipeline `run` drives (build → check → boot), deciding on `--module` alone
    // when one is named.
    let opts = RunOptions {
        build,
        out: out.clone(),
        jobs: 1,
        policy: a.policy,
        static_only: a.static_only,
        boot_timeout: limits::of(limits::BOOT),
        module_timeout: limits::of(limits::MODULE),
        silence: limits::of(limits::SILENCE),
        shard: None,
        retries: a.retries,
        module: a.module.clone(),
    };
    let progress = crate::report::progress::Progress::new();
    let events = super::run::Events::new(&progress, &[arch]);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let results = run_all(&[arch], &opts, command, &events);
    events.finish();
    let Some(r) = results.arches.get(&arch.name) else {
        return abort("no result".into());
    };
    answer(&a, r)
}

/// The answer for one commit, from the arch's result as the pipeline decided it, and the
/// one line that says why.
fn answer(a: &BisectArgs, r: &ArchResult) -> Result<i32, Failure> {
    let arch = &r.arch;
    let asked = |name: &str| a.module.as_ref().is_none_or(|x| x == name);
    // The stage that ended the arch ("build: …", "boot: …"): its reason, first line.
    let stage_reason = || {
        r.reasons
            .last()
            .map(|x| x.to_string().lines().next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let Some(check) = &r.check else {
        let answer = bisect_answer(r.status, false, false, None);
        say(answer.as_str(), &format!("{arch}: {}", stage_reason()));
        return Ok(answer.code());
    };
    if let Some(m) = a
        .module
        .as_ref()
        .filter(|m| !check.modules.iter().any(|x| x.name == **m))
    {
        say(
            "skip",
            &format!("{arch}: module {m} is not built at this commit"),
        );
        return Ok(SKIP);
    }
    // The finding, statically: (fails only because another module does, what to say);
    // causes are said first.
    let mut bad: Vec<(bool, String)> = Vec::new();
    for m in check
        .modules
        .iter()
        .filter(|m| m.failed() && asked(&m.name))
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
    let modules_checked = check.modules.len();
    let statically_ok = {
        let s = Stages {
            build: StageEnd::Done(&()),
            check: StageEnd::Done(check),
            boot: StageEnd::NotAsked,
            interrupted: false,
        };
        match &a.module {
            None => decide(&s),
            Some(m) => crate::outcome::decide_for_module(&s, m),
        }
    } == ArchStatus::Ok;
    let mut only_never_reached = false;
    let mut flaky = 0;
    let mut skip_why = String::new();
    let mut how = "static check";
    match &r.boot {
        Some(b) => {
            how = "static check and boot";
            flaky = b
                .modules
                .iter()
                .filter(|m| m.flaky() && asked(&m.name))
                .count();
            if flaky > 0 {
                skip_why = format!(
                    "{flaky} flaky module(s): their tries in fresh guests disagree ({}); --flaky good|bad decides",
                    b.modules
                        .iter()
                        .filter(|m| m.flaky())
                        .map(|m| format!("{} {}", m.name, m.shown_verdict()))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
            }
            if let Some(why) = b.infrastructure_failure() {
                skip_why = why.to_string();
            } else if crate::outcome::never_reached_the_agent(b) {
                // Nothing about the modules: skipped unless asked to call it bad, or
                // unless the static check found something already.
                only_never_reached = statically_ok;
                skip_why = format!(
                    "the kernel never reached the agent ({}); --boot-failure-is-bad calls that bad",
                    b.boot_failure.as_ref().map_or("", |f| f.text.as_str())
                );
            }
            if let Some(f) = &b.boot_failure {
                bad.push((false, format!("boot: {f}")));
            }
            for m in b
                .modules
                .iter()
                .filter(|m| m.not_known_to_work() && asked(&m.name))
            {
                let msg = m.kernel_messages.first().cloned().unwrap_or_default();
                bad.push((
                    m.verdict.outcome() == crate::verdict::Outcome::Skip,
                    format!("{} {} at run time ({msg})", m.name, m.verdict.as_str()),
                ));
            }
            if a.module.is_none() {
                if b.export_table.as_ref().is_some_and(|t| !t.equal) {
                    bad.push((false, "running export table differs from the ELF".into()));
                }
                // What else makes a boot not clean: said after the causes above.
                let s = &b.summary;
                for (n, what) in [
                    (
                        s.disagreements,
                        "module(s) where the kernel disagrees with the static prediction",
                    ),
                    (s.unload_failures, "module(s) that would not unload"),
                    (b.damaged_records, "damaged record(s) from the guest"),
                    (b.lost_records as usize, "record(s) lost by the guest"),
                ] {
                    if n > 0 {
                        bad.push((true, format!("{n} {what}")));
                    }
                }
            }
        }
        // Asked to boot and the boot stage could not run (QEMU missing, bad kernel image).
        None if !a.static_only => skip_why = stage_reason(),
        None => {}
    }
    let answer = bisect_answer(
        r.status,
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
                None => format!("{} ({how})", r.status.as_str()),
            }
        }
        BisectAnswer::Interrupted => "interrupted".into(),
        BisectAnswer::Skip | BisectAnswer::Abort => skip_why,
    };
    say(answer.as_str(), &format!("{arch}: {why}"));
    Ok(answer.code())
}
