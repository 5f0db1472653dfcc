//! One rule for how an arch's pipeline ended ([`decide`]) and one for a command's exit status
//! ([`exit_status`]). `run`, `boot`, `merge`, `bisect-step`, `--baseline` and every renderer
//! take an arch's status from here; nothing else derives one, and nothing reads one back from
//! a string.
use crate::boot::BootReport;
use crate::check::stage::CheckReport;
use crate::failure::FailureKind;
use serde::{Deserialize, Serialize};

/// Where one arch's pipeline ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchStatus {
    /// Not finished yet (a results file written while the run goes on).
    #[default]
    Running,
    /// Built, checked, booted: nothing to report.
    Ok,
    /// A module fails, the export table is inconsistent, or the prediction disagrees.
    Findings,
    /// The kernel did not build (make, config): a finding about the tree.
    BuildFailed,
    /// QEMU or a tool failed: the result says nothing about the kernel.
    Infra,
    /// What was asked cannot be done as asked: a missing source, patch, fragment or config,
    /// input of another arch. Nothing was tested; the reasons name the file.
    BadInput,
    /// The arch cannot be done by this descriptor (no build or boot recipe); `reasons` say why.
    Skipped,
    /// Asked for, never started (the run was interrupted before it).
    NotRun,
    /// Ctrl-C while it ran.
    Interrupted,
}

impl ArchStatus {
    /// How much a status outweighs another when one arch's stages, or a run's arches, end
    /// differently: what the kernel did (findings) outweighs not knowing (infra), a mistake in
    /// the request outweighs both, and an interrupted run outweighs everything.
    fn severity(self) -> u8 {
        match self {
            ArchStatus::Ok => 0,
            ArchStatus::Skipped => 1,
            ArchStatus::Infra => 2,
            ArchStatus::BuildFailed => 3,
            ArchStatus::Findings => 4,
            ArchStatus::BadInput => 5,
            ArchStatus::Running | ArchStatus::NotRun => 6,
            ArchStatus::Interrupted => 7,
        }
    }

    /// The status a failed stage leaves, by the kind of its error.
    pub fn of_failure(kind: FailureKind) -> Self {
        match kind {
            FailureKind::BadInput => ArchStatus::BadInput,
            FailureKind::BuildFailed => ArchStatus::BuildFailed,
            FailureKind::Infra => ArchStatus::Infra,
            FailureKind::Interrupted => ArchStatus::Interrupted,
        }
    }

    /// The worse of two statuses.
    pub fn max(self, other: Self) -> Self {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// Whether the arch's results say something about the kernel (a baseline compares only
    /// those; an arch that had results before and has none now is a regression).
    pub fn says_something(self) -> bool {
        match self {
            ArchStatus::Ok | ArchStatus::Findings | ArchStatus::BuildFailed => true,
            ArchStatus::Running
            | ArchStatus::Skipped
            | ArchStatus::Infra
            | ArchStatus::BadInput
            | ArchStatus::NotRun
            | ArchStatus::Interrupted => false,
        }
    }

    /// The status as results.json spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchStatus::Running => "running",
            ArchStatus::Ok => "ok",
            ArchStatus::Findings => "findings",
            ArchStatus::BuildFailed => "build_failed",
            ArchStatus::Infra => "infra",
            ArchStatus::BadInput => "bad_input",
            ArchStatus::Skipped => "skipped",
            ArchStatus::NotRun => "not_run",
            ArchStatus::Interrupted => "interrupted",
        }
    }
}

/// How one stage of an arch's pipeline ended.
#[derive(Debug)]
pub enum StageEnd<'a, T> {
    /// Not asked for (`--static-only`), or not reached because an earlier stage ended it.
    NotAsked,
    /// The descriptor has no recipe for it on this arch (loong64's build, ia64's boot: a
    /// `qemu` section): said in the reasons, not a failure.
    CannotHere,
    /// The stage failed with an error of this kind.
    Failed(FailureKind),
    Done(&'a T),
}

/// Everything [`decide`] reads: each stage's end and whether the run was interrupted.
#[derive(Debug)]
pub struct Stages<'a> {
    pub build: StageEnd<'a, ()>,
    pub check: StageEnd<'a, CheckReport>,
    pub boot: StageEnd<'a, BootReport>,
    pub interrupted: bool,
}

/// The one rule for an arch's status: the worst of what its stages say.
/// - a failed stage: its kind (bad input, build failed, infra, interrupted);
/// - a build the descriptor cannot do (loong64's): bad input — the arch was asked for and
///   nothing can be tested, which must not read as a pass or a skip in a nightly;
/// - a check that is not clean: findings;
/// - a boot that QEMU could not start at all: infra; otherwise not clean: findings (a kernel
///   that hangs or panics before the agent is a finding about the kernel);
/// - Ctrl-C: interrupted.
///
/// Static findings outweigh a boot that could not run: the kernel is known bad.
pub fn decide(s: &Stages) -> ArchStatus {
    decide_finding(s, |c| !c.clean(), |b| !b.clean())
}

/// [`decide`] when one module is what is asked about (`bisect-step --module NAME`): the
/// build, a stage that could not run, a boot QEMU could not start and Ctrl-C count as for the
/// arch; the findings are that module's only — it fails statically, it is not known to work at
/// run time, or the kernel never reached the agent (the module was never tried). Another
/// module's failure, the export table's errors and the running table's differences do not
/// decide.
pub fn decide_for_module(s: &Stages, name: &str) -> ArchStatus {
    decide_finding(
        s,
        |c| c.modules.iter().any(|m| m.name == name && m.failed()),
        |b| {
            b.boot_failure.is_some()
                || b.modules
                    .iter()
                    .any(|m| m.name == name && m.not_known_to_work())
        },
    )
}

/// The worst of what the stages say, where `check_finds` and `boot_finds` say whether a
/// finished stage found something.
fn decide_finding(
    s: &Stages,
    check_finds: impl Fn(&CheckReport) -> bool,
    boot_finds: impl Fn(&BootReport) -> bool,
) -> ArchStatus {
    let mut st = ArchStatus::Ok;
    match s.build {
        StageEnd::Failed(k) => st = st.max(ArchStatus::of_failure(k)),
        StageEnd::CannotHere => st = st.max(ArchStatus::BadInput),
        StageEnd::NotAsked | StageEnd::Done(()) => {}
    }
    match s.check {
        StageEnd::Failed(k) => st = st.max(ArchStatus::of_failure(k)),
        StageEnd::Done(c) if check_finds(c) => st = st.max(ArchStatus::Findings),
        StageEnd::Done(_) | StageEnd::NotAsked | StageEnd::CannotHere => {}
    }
    match s.boot {
        StageEnd::Failed(k) => st = st.max(ArchStatus::of_failure(k)),
        StageEnd::Done(b) if b.infrastructure_failure().is_some() => st = st.max(ArchStatus::Infra),
        StageEnd::Done(b) if boot_finds(b) => st = st.max(ArchStatus::Findings),
        StageEnd::Done(_) | StageEnd::NotAsked | StageEnd::CannotHere => {}
    }
    if s.interrupted {
        st = st.max(ArchStatus::Interrupted);
    }
    st
}

/// The one rule for the exit status of `run`, `boot` and `merge` (which exits as `run` would for
/// the same results), from the statuses of the arches asked for and, with `--baseline`, the
/// number of regressions. (`bisect-step` answers `git bisect run`'s contract: [`bisect_answer`].)
///
/// Nothing asked for, or every arch skipped (nothing tested): 2. Else by
/// the worst status: interrupted or never run 130, bad input 2, findings 1, build failed 3,
/// infra 4, ok 0. With a baseline, findings and build failures count only as regressions do
/// (1 if any, else 0); an arch that tested nothing keeps its status.
pub fn exit_status(statuses: &[ArchStatus], regressions: Option<usize>) -> i32 {
    use crate::exit;
    if statuses.is_empty() || statuses.iter().all(|s| *s == ArchStatus::Skipped) {
        return exit::USAGE;
    }
    let regressed = |otherwise: i32| match regressions {
        Some(0) => exit::OK,
        Some(_) => exit::FINDINGS,
        None => otherwise,
    };
    match statuses.iter().fold(ArchStatus::Ok, |a, s| a.max(*s)) {
        ArchStatus::Running | ArchStatus::NotRun | ArchStatus::Interrupted => exit::INTERRUPTED,
        ArchStatus::BadInput => exit::USAGE,
        ArchStatus::Findings => regressed(exit::FINDINGS),
        ArchStatus::BuildFailed => regressed(exit::BUILD_FAILED),
        ArchStatus::Infra => exit::INFRA,
        ArchStatus::Ok | ArchStatus::Skipped => regressed(exit::OK),
    }
}

/// `git bisect run`'s answer for one commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BisectAnswer {
    Good,
    Bad,
    /// This commit cannot be tested (125): git tries a neighbour.
    Skip,
    /// No commit can be tested as asked (128): git stops the bisection.
    Abort,
    Interrupted,
}

impl BisectAnswer {
    pub fn code(self) -> i32 {
        use crate::exit;
        match self {
            BisectAnswer::Good => exit::OK,
            BisectAnswer::Bad => exit::FINDINGS,
            BisectAnswer::Skip => exit::BISECT_SKIP,
            BisectAnswer::Abort => exit::BISECT_ABORT,
            BisectAnswer::Interrupted => exit::INTERRUPTED,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BisectAnswer::Good => "good",
            BisectAnswer::Bad => "bad",
            BisectAnswer::Skip => "skip",
            BisectAnswer::Abort => "abort",
            BisectAnswer::Interrupted => "interrupted",
        }
    }
}

/// What `bisect-step` answers for a commit whose only trouble is flaky modules (their tries
/// in fresh guests disagree): git cannot decide on it, so it is skipped unless asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FlakyIs {
    #[default]
    Skip,
    Good,
    Bad,
}

/// The one rule for `bisect-step`: the arch's status as [`decide`] gives it, in `git bisect
/// run`'s terms. A status that is ok only because its flaky modules are not failures (`flaky`:
/// some are, with what to call them) is answered as `FlakyIs` says. Ok is good and findings are bad, except findings that are only a kernel that
/// never reached the agent (`only_never_reached`: the modules were not tested), which are
/// skipped unless `boot_failure_is_bad`. A build that failed and a boot QEMU could not start
/// say nothing about this commit's modules: skip. A mistake in the request, or an arch that
/// cannot be done, holds for every commit: abort.
pub fn bisect_answer(
    status: ArchStatus,
    only_never_reached: bool,
    boot_failure_is_bad: bool,
    flaky: Option<FlakyIs>,
) -> BisectAnswer {
    match status {
        ArchStatus::Ok => match flaky {
            None | Some(FlakyIs::Good) => BisectAnswer::Good,
            Some(FlakyIs::Skip) => BisectAnswer::Skip,
            Some(FlakyIs::Bad) => BisectAnswer::Bad,
        },
        ArchStatus::Findings if only_never_reached && !boot_failure_is_bad => BisectAnswer::Skip,
        ArchStatus::Findings => BisectAnswer::Bad,
        ArchStatus::BuildFailed | ArchStatus::Infra => BisectAnswer::Skip,
        ArchStatus::BadInput | ArchStatus::Skipped => BisectAnswer::Abort,
        ArchStatus::Running | ArchStatus::NotRun | ArchStatus::Interrupted => {
            BisectAnswer::Interrupted
        }
    }
}

/// A boot in which the kernel never reached modverify's agent (it hung or panicked first) and
/// no module ran: a finding about the kernel, but not one about the modules.
pub fn never_reached_the_agent(b: &BootReport) -> bool {
    b.boot_failure.is_some()
        && b.infrastructure_failure().is_none()
        && b.modules
            .iter()
            .all(|m| m.verdict == crate::verdict::RuntimeVerdict::NotRun)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;
    use ArchStatus as S;
    use StageEnd::{CannotHere, Done, Failed, NotAsked};

    fn check(clean: bool) -> CheckReport {
        let mut c = CheckReport::default();
        c.summary.failed = usize::from(!clean);
        c
    }

    fn boot_done() -> BootReport {
        BootReport {
            done: true,
            ..Default::default()
        }
    }

    /// A boot whose QEMU never started the machine: nothing ran.
    fn boot_infra() -> BootReport {
        let m: crate::verdict::ModuleOutcome =
            serde_json::from_value(serde_json::json!({"name": "md5", "verdict": "not_run"}))
                .unwrap();
        BootReport {
            boot_failure: Some(crate::qemu::BootFailure::new(
                crate::qemu::BootFailureKind::Infrastructure,
                "QEMU would not start the machine",
            )),
            modules: vec![m],
            ..Default::default()
        }
    }

    /// The kernel panicked before the agent: nothing ran, but QEMU worked.
    fn boot_panic() -> BootReport {
        BootReport {
            boot_failure: Some(crate::qemu::BootFailure::new(
                crate::qemu::BootFailureKind::KernelCrashed,
                "Kernel panic - not syncing: Attempted to kill init!",
            )),
            ..boot_infra()
        }
    }

    fn stages<'a>(
        build: StageEnd<'a, ()>,
        check: StageEnd<'a, CheckReport>,
        boot: StageEnd<'a, BootReport>,
    ) -> Stages<'a> {
        Stages {
            build,
            check,
            boot,
            interrupted: false,
        }
    }

    /// Every way an arch can end, and the one status each gives.
    #[test]
    fn every_way_an_arch_ends_has_one_status() {
        let (clean, dirty) = (check(true), check(false));
        let (ok, infra, panic) = (boot_done(), boot_infra(), boot_panic());
        let cases: Vec<(&str, Stages, S)> = vec![
            (
                "all clean",
                stages(Done(&()), Done(&clean), Done(&ok)),
                S::Ok,
            ),
            (
                "static only, clean",
                stages(Done(&()), Done(&clean), NotAsked),
                S::Ok,
            ),
            (
                "static only, findings",
                stages(Done(&()), Done(&dirty), NotAsked),
                S::Findings,
            ),
            (
                "descriptor cannot boot",
                stages(Done(&()), Done(&clean), CannotHere),
                S::Ok,
            ),
            (
                "descriptor cannot build",
                stages(CannotHere, NotAsked, NotAsked),
                S::BadInput,
            ),
            (
                "missing source",
                stages(Failed(FailureKind::BadInput), NotAsked, NotAsked),
                S::BadInput,
            ),
            (
                "make failed",
                stages(Failed(FailureKind::BuildFailed), NotAsked, NotAsked),
                S::BuildFailed,
            ),
            (
                "check could not read",
                stages(Done(&()), Failed(FailureKind::Infra), NotAsked),
                S::Infra,
            ),
            (
                "QEMU would not start",
                stages(Done(&()), Done(&clean), Done(&infra)),
                S::Infra,
            ),
            (
                "QEMU not installed",
                stages(Done(&()), Done(&clean), Failed(FailureKind::Infra)),
                S::Infra,
            ),
            (
                "export-table errors, clean boot",
                stages(Done(&()), Done(&dirty), Done(&ok)),
                S::Findings,
            ),
            (
                "static findings, QEMU would not start",
                stages(Done(&()), Done(&dirty), Done(&infra)),
                S::Findings,
            ),
            (
                "panic before the agent",
                stages(Done(&()), Done(&clean), Done(&panic)),
                S::Findings,
            ),
        ];
        for (what, s, want) in &cases {
            assert_eq!(decide(s), *want, "{what}");
            let mut s2 = stages(Done(&()), Done(&clean), Done(&ok));
            s2.interrupted = true;
            assert_eq!(decide(&s2), S::Interrupted, "{what}, interrupted");
        }
    }

    /// With one module asked about, only its verdicts find; what could not run still counts.
    #[test]
    fn one_module_decides_alone_and_what_could_not_run_still_counts() {
        let module = |name: &str, verdict: &str| -> crate::verdict::ModuleOutcome {
            serde_json::from_value(serde_json::json!({"name": name, "verdict": verdict})).unwrap()
        };
        let failed = |name: &str| crate::check::ModuleReport {
            name: name.into(),
            path: format!("{name}.ko"),
            verdict: crate::check::Verdict::CrcMismatch,
            problems: vec![],
            uses: vec![],
        };
        // Another module fails statically and at run time; the export table has errors.
        let mut c = CheckReport {
            modules: vec![failed("bad")],
            ..Default::default()
        };
        c.summary.failed = 1;
        c.summary.export_errors = 1;
        let b = BootReport {
            done: true,
            modules: vec![module("bad", "crc_mismatch"), module("good", "loaded")],
            ..Default::default()
        };
        let (infra, panic) = (boot_infra(), boot_panic());
        let cases: Vec<(&str, Stages, S)> = vec![
            (
                "another module fails",
                stages(Done(&()), Done(&c), Done(&b)),
                S::Ok,
            ),
            ("static only", stages(Done(&()), Done(&c), NotAsked), S::Ok),
            (
                "QEMU would not start",
                stages(Done(&()), Done(&c), Done(&infra)),
                S::Infra,
            ),
            (
                "QEMU not installed",
                stages(Done(&()), Done(&c), Failed(FailureKind::Infra)),
                S::Infra,
            ),
            (
                "panic before the agent",
                stages(Done(&()), Done(&c), Done(&panic)),
                S::Findings,
            ),
            (
                "make failed",
                stages(Failed(FailureKind::BuildFailed), NotAsked, NotAsked),
                S::BuildFailed,
            ),
        ];
        for (what, s, want) in &cases {
            assert_eq!(decide_for_module(s, "good"), *want, "{what}");
        }
        assert_eq!(decide(&stages(Done(&()), Done(&c), Done(&b))), S::Findings);
        let clean = CheckReport::default();
        for (name, want) in [("bad", S::Findings), ("good", S::Ok)] {
            let s = stages(Done(&()), Done(&clean), Done(&b));
            assert_eq!(decide_for_module(&s, name), want, "{name} at run time");
        }
        let s = stages(Done(&()), Done(&c), NotAsked);
        assert_eq!(decide_for_module(&s, "bad"), S::Findings, "bad statically");
    }

    /// The run's exit status from its arches, with and without a baseline.
    /// Every status in git bisect's terms: only a finding about the kernel is bad, and a
    /// boot that tested nothing never is.
    #[test]
    fn every_status_has_one_bisect_answer() {
        use BisectAnswer as B;
        let cases = [
            (S::Ok, false, false, B::Good, 0),
            (S::Findings, false, false, B::Bad, 1),
            (S::Findings, true, false, B::Skip, 125),
            (S::Findings, true, true, B::Bad, 1),
            (S::BuildFailed, false, false, B::Skip, 125),
            (S::Infra, false, false, B::Skip, 125),
            (S::BadInput, false, false, B::Abort, 128),
            (S::Skipped, false, false, B::Abort, 128),
            (S::Interrupted, false, false, B::Interrupted, 130),
        ];
        for (status, never, flag, answer, code) in cases {
            let got = bisect_answer(status, never, flag, None);
            assert_eq!(
                (got, got.code()),
                (answer, code),
                "{status:?} {never} {flag}"
            );
        }
        // QEMU that could not start, after a clean static check: infra, so skip; after
        // static findings: the findings stand, so bad.
        let (clean, dirty, infra) = (check(true), check(false), boot_infra());
        let answer = |c| {
            let st = decide(&stages(Done(&()), Done(c), Done(&infra)));
            bisect_answer(st, false, false, None)
        };
        assert_eq!(answer(&clean), B::Skip);
        assert_eq!(answer(&dirty), B::Bad);
        // Flaky modules only: git cannot decide (unless asked); with a reproduced failure
        // besides, the commit is bad.
        let flaky = |st, is| bisect_answer(st, false, false, Some(is));
        assert_eq!(flaky(S::Ok, FlakyIs::Skip).code(), 125);
        assert_eq!(flaky(S::Ok, FlakyIs::Good), B::Good);
        assert_eq!(flaky(S::Ok, FlakyIs::Bad), B::Bad);
        assert_eq!(flaky(S::Findings, FlakyIs::Skip), B::Bad);
    }

    #[test]
    fn every_set_of_statuses_has_one_exit_status() {
        let run = |st: &[S], reg: Option<usize>| exit_status(st, reg);
        assert_eq!(run(&[S::Ok, S::Ok], None), exit::OK);
        assert_eq!(run(&[], None), exit::USAGE, "nothing asked for");
        assert_eq!(run(&[S::Skipped], None), exit::USAGE, "nothing tested");
        assert_eq!(run(&[S::Ok, S::Skipped], None), exit::OK);
        assert_eq!(run(&[S::Ok, S::BadInput], None), exit::USAGE);
        assert_eq!(run(&[S::Ok, S::Findings], None), exit::FINDINGS);
        assert_eq!(run(&[S::Infra, S::Findings], None), exit::FINDINGS);
        assert_eq!(run(&[S::Ok, S::BuildFailed], None), exit::BUILD_FAILED);
        assert_eq!(run(&[S::Ok, S::Infra], None), exit::INFRA);
        assert_eq!(run(&[S::Ok, S::NotRun], None), exit::INTERRUPTED);
        assert_eq!(run(&[S::Findings, S::Interrupted], None), exit::INTERRUPTED);
        // A baseline decides findings and build failures; not testing keeps its status.
        assert_eq!(run(&[S::Findings], Some(0)), exit::OK);
        assert_eq!(run(&[S::Ok], Some(2)), exit::FINDINGS);
        assert_eq!(run(&[S::BuildFailed], Some(1)), exit::FINDINGS);
        assert_eq!(run(&[S::Infra], Some(0)), exit::INFRA);
        assert_eq!(run(&[S::BadInput], Some(0)), exit::USAGE);
    }

    /// A bisection skips a kernel that never reaches the agent (cli/bisect.rs): QEMU that
    /// could not start is not that, and neither is a boot in which modules ran.
    #[test]
    fn a_kernel_that_never_reached_the_agent_is_told_from_infrastructure() {
        assert!(never_reached_the_agent(&boot_panic()));
        assert!(!never_reached_the_agent(&boot_infra()));
        assert!(!never_reached_the_agent(&boot_done()));
    }

    /// The names as_str gives are results.json's.
    #[test]
    fn status_names_are_the_serialized_ones() {
        for s in [
            S::Running,
            S::Ok,
            S::Findings,
            S::BuildFailed,
            S::Infra,
            S::BadInput,
            S::Skipped,
            S::NotRun,
            S::Interrupted,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
