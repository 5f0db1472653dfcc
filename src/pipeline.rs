//! The whole job for a set of arches (`modverify run`): build → static check → boot and load → compare →
//! verdict, one pipeline per arch (side by side up to `--jobs`). `results.json` is rewritten
//! (temp file + rename) after every stage, so an interrupted run keeps what it had.
use crate::arch::ArchDescriptor;
use crate::boot::{run_boot_with, BootOptions};
use crate::check::stage::{check_stage, CheckOptions};
use crate::check::Policy;
use crate::failure::FailureKind;
use crate::kernel_build::{run_build, BuildEvents, BuildOptions};
use crate::outcome::{decide, StageEnd, Stages};
use crate::qemu::BootEvent;
pub use crate::results::{ArchResult, ArchStatus, RunResults, RunStatus, StageTimes};
use crate::results::{Reason, Stage as RStage};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RunOptions {
    pub build: BuildOptions,
    pub out: PathBuf,
    pub jobs: usize,
    pub policy: Policy,
    pub static_only: bool,
    pub boot_timeout: Duration,
    pub module_timeout: Duration,
    pub silence: Duration,
    pub shard: Option<crate::batch::Shard>,
    /// `BootOptions::retries`.
    pub retries: usize,
    /// Decide each arch's status on this module's verdicts alone
    /// ([`crate::outcome::decide_for_module`]; `bisect-step --module`).
    pub module: Option<String>,
}

/// Where one arch's pipeline is, for progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The arch cannot be built here (the reason goes to results.json).
    CannotBuild,
    Build,
    /// The build ended without a kernel, for this kind of reason.
    BuildFailed(FailureKind),
    Check,
    Boot,
    /// `done` of `total` modules have a load result.
    Load {
        done: usize,
        total: usize,
    },
    /// The guest is reading the running export table.
    ExportTable,
    BootFailed,
    /// The pipeline ended; `clean`: nothing to report.
    Finished {
        clean: bool,
    },
}

/// Progress for one arch pipeline.
pub trait RunEvents: Sync {
    fn build_events(&self, arch: &str) -> &dyn BuildEvents;
    fn stage(&self, arch: &str, stage: Stage);
}

use crate::files::unix_now;

struct Shared {
    results: Mutex<RunResults>,
    path: PathBuf,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut RunResults)) {
        let mut r = self.results.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut r);
        // Best effort: a full disk must not kill the other arches' pipelines.
        let _ = crate::files::write_atomic(&self.path, &*r);
    }
}

fn copy_into(from: &Path, dir: &Path) {
    if let Some(name) = from.file_name() {
        let _ = std::fs::copy(from, dir.join(name));
    }
}

/// Runs every arch; returns the final results (also in `out/results.json`).
pub fn run_all(
    arches: &[&ArchDescriptor],
    opts: &RunOptions,
    command: String,
    events: &dyn RunEvents,
) -> RunResults {
    let names: Vec<&str> = arches.iter().map(|a| a.name.as_str()).collect();
    let results = RunResults::start(command, &names, unix_now());
    let shared = Shared {
        results: Mutex::new(results),
        path: opts.out.join("results.json"),
    };
    shared.update(|_| {});
    let next = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.clamp(1, arches.len().max(1)) {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(arch) = arches.get(i) else { break };
                if crate::proc::interrupted() {
                    shared.update(|r| {
                        // Asked for, never started: not "stopped mid-stage".
                        r.arches.get_mut(&arch.name).unwrap().status = ArchStatus::NotRun
                    });
                    continue;
                }
                one_arch(arch, opts, &shared, events);
            });
        }
    });
    let mut r = shared
        .results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    r.status = if crate::proc::interrupted() {
        RunStatus::Interrupted
    } else {
        RunStatus::Complete
    };
    r.finished_unix = Some(unix_now());
    let _ = crate::files::write_atomic(&opts.out.join("results.json"), &r);
    r
}

fn one_arch(arch: &ArchDescriptor, opts: &RunOptions, shared: &Shared, events: &dyn RunEvents) {
    let name = arch.name.clone();
    let dir = opts.out.join(&name);
    let _ = std::fs::create_dir_all(&dir);
    let set = |f: &dyn Fn(&mut ArchResult)| shared.update(|r| f(r.arches.get_mut(&name).unwrap()));
    // Every way out of this function ends here: the status is decided once, from the
    // stages as they ended (crate::outcome::decide), never picked by the caller.
    let finish = |build: StageEnd<()>,
                  check: StageEnd<crate::check::stage::CheckReport>,
                  boot: StageEnd<crate::boot::BootReport>,
                  reason: Option<Reason>| {
        let stages = Stages {
            build,
            check,
            boot,
            interrupted: crate::proc::interrupted(),
        };
        let status = match &opts.module {
            None => decide(&stages),
            Some(m) => crate::outcome::decide_for_module(&stages, m),
        };
        set(&|a| {
            a.status = status;
            if let Some(r) = &reason {
                a.reasons.push(r.clone());
            }
        });
        status
    };

    // Build.
    if let Some(reason) = &arch.unsupported.build {
        events.stage(&name, Stage::CannotBuild);
        finish(
            StageEnd::CannotHere,
            StageEnd::NotAsked,
            StageEnd::NotAsked,
            Some(Reason::of(RStage::Build, reason.to_string())),
        );
        return;
    }
    events.stage(&name, Stage::Build);
    let t = Instant::now();
    let mut bopts = opts.build.clone();
    bopts.jobs = (opts.build.jobs / opts.jobs.max(1)).max(1);
    // The build ended it (or, below, another modverify's build of the same directory did, or
    // Ctrl-C came while waiting for it): by its kind.
    let build_failed = |kind: FailureKind, why: String| {
        events.stage(&name, Stage::BuildFailed(kind));
        set(&|a| a.seconds.build_s = Some(t.elapsed().as_secs_f64()));
        finish(
            StageEnd::Failed(kind),
            StageEnd::NotAsked,
            StageEnd::NotAsked,
            Some(Reason::of(RStage::Build, why)),
        );
    };
    let manifest = match run_build(&bopts, arch, events.build_events(&name)) {
        Ok(m) => m,
        Err(e) => return build_failed(e.kind(), e.to_string()),
    };
    // Held for the rest of this arch: a build of the same directory (another run, a test, a
    // user's) waits instead of rewriting build.json, build.log and the kernel under the check
    // and the boot. Read again under the lock: what is on disk now is what gets checked.
    let build_events = events.build_events(&name);
    let held =
        match crate::kernel_build::BuildManifest::read_finished(&manifest.build_dir, &mut || {
            build_events.note(&format!(
                "waiting for another modverify building in {}",
                manifest.build_dir.display()
            ))
        }) {
            Ok(h) => h,
            Err(e) => return build_failed(e.kind(), e.to_string()),
        };
    let manifest = &held.manifest;
    let _ =
        crate::files::write_atomic(&dir.join(crate::kernel_build::manifest::MANIFEST), manifest);
    copy_into(&manifest.log, &dir);
    let art = held.artifacts.clone();
    set(&|a| {
        a.seconds.build_s = Some(t.elapsed().as_secs_f64());
        a.build = Some(manifest.clone());
    });

    // Static check.
    events.stage(&name, Stage::Check);
    let t = Instant::now();
    // The descriptor is passed down as is: nothing is looked up by name again.
    let no_other_arches = crate::arch::ArchRegistry::of(vec![]);
    let copts = CheckOptions {
        system_map: None,
        arch: Some(name.clone()),
        vmlinux: Some(art.vmlinux.clone()),
        symvers: Some(art.module_symvers.clone()),
        policy: opts.policy,
        paths: art.modules.clone(),
        // A build's vmlinux carries its vermagic.
        own_modules: vec![],
        providers: Default::default(),
    };
    let checked = match check_stage(&copts, Some(arch), &no_other_arches) {
        Ok(c) => c,
        Err(e) => {
            finish(
                StageEnd::Done(&()),
                StageEnd::Failed(e.kind()),
                StageEnd::NotAsked,
                Some(Reason::of(RStage::Check, e.to_string())),
            );
            return;
        }
    };
    // The report stays here for the decision; the boot takes `checked` (its modules and table).
    let check_report = checked.report.clone();
    let check = &check_report;
    let _ = crate::files::write_atomic(&dir.join("check.json"), check);
    // Kept for a later run's baseline: its export drift is diffed against this table.
    let kabi = crate::kabi::Snapshot::of(&checked);
    set(&|a| {
        a.seconds.check_s = Some(t.elapsed().as_secs_f64());
        a.check = Some(check.clone());
        a.kabi = Some(kabi.clone());
    });

    // Boot.
    if opts.static_only {
        finish(
            StageEnd::Done(&()),
            StageEnd::Done(check),
            StageEnd::NotAsked,
            Some(Reason::of(RStage::Boot, "not run (--static-only)")),
        );
        return;
    }
    if let Err(why) = crate::host::boots_here(arch) {
        let boot = match why {
            // The descriptor has no way to boot this arch: the static results stand.
            crate::host::CannotBoot::Unsupported(_) => StageEnd::CannotHere,
            // Asked to boot and cannot: the machine lacks a tool (`--arch all` leaves such
            // arches out).
            crate::host::CannotBoot::NotInstalled { .. } => StageEnd::Failed(FailureKind::Infra),
        };
        finish(
            StageEnd::Done(&()),
            StageEnd::Done(check),
            boot,
            Some(Reason::of(RStage::Boot, why.to_string())),
        );
        return;
    }
    events.stage(&name, Stage::Boot);
    let t = Instant::now();
    let bo = BootOptions {
        boot_timeout: opts.boot_timeout,
        module_timeout: opts.module_timeout,
        silence: opts.silence,
        shard: opts.shard,
        retries: opts.retries,
        // The CPUs are shared between the arches run side by side.
        jobs: (crate::boot::default_jobs() / opts.jobs.max(1)).max(1),
        ..BootOptions::for_build(arch, &art, dir.join("boot"), opts.policy)
    };
    let loaded = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicUsize::new(art.modules.len());
    // The boot reuses the modules, predictions and export table the check stage read.
    let result = run_boot_with(arch, &bo, Some(checked), &mut |event| match event {
        BootEvent::Planned { modules, .. } => {
            total.store(modules, std::sync::atomic::Ordering::Relaxed)
        }
        BootEvent::ModuleDone { .. } => {
            let done = loaded.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let total = total.load(std::sync::atomic::Ordering::Relaxed);
            events.stage(&name, Stage::Load { done, total });
        }
        BootEvent::ReadingTable => events.stage(&name, Stage::ExportTable),
        BootEvent::AgentStarted
        | BootEvent::Loading { .. }
        | BootEvent::Unloading
        | BootEvent::Done => {}
    });
    match result {
        Ok(boot) => {
            set(&|a| {
                a.seconds.boot_s = Some(t.elapsed().as_secs_f64());
                a.boot = Some(boot.clone());
            });
            // QEMU that could not start the machine tested nothing: one reason, not a
            // finding per module.
            let why = boot
                .infrastructure_failure()
                .map(|w| Reason::of(RStage::Boot, w));
            let status = finish(
                StageEnd::Done(&()),
                StageEnd::Done(check),
                StageEnd::Done(&boot),
                why,
            );
            events.stage(
                &name,
                Stage::Finished {
                    clean: status == ArchStatus::Ok,
                },
            );
        }
        Err(e) => {
            events.stage(&name, Stage::BootFailed);
            finish(
                StageEnd::Done(&()),
                StageEnd::Done(check),
                StageEnd::Failed(e.kind()),
                Some(Reason::of(RStage::Boot, e.to_string())),
            );
        }
    }
}
