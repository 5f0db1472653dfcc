//! The boot stage: artifacts → initramfs → QEMU → guest results → verdicts, compared with
//! the static prediction. Writes `boot.json` (atomically, at the end) beside `console.log`
//! and `events.jsonl` (appended as records arrive).
mod kernel;
mod plan;
mod report;

use plan::prepare_with;
pub use plan::{prepare, Prepared};
pub use report::{BatchReport, BootReport, BootSummary, Note};

use crate::arch::ArchDescriptor;
use crate::batch::Shard;
use crate::check::Policy;
use crate::elf::ExportTable;
use crate::image::{ImageError, Initramfs, ModulePayload, PlannedModule};
use crate::qemu::{BootEvent, BootPlan, GuestRun, QemuError};
use crate::verdict::{compare_tables, outcomes, ModuleOutcome, RuntimeVerdict, TableComparison};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{arch}: cannot boot: {reason}\n  `modverify check --arch {arch} --vmlinux VMLINUX MODULES...` checks its artifacts statically")]
    Unsupported { arch: String, reason: String },
    #[error("{0}")]
    BadInput(String),
    /// `--build DIR` holds no finished build.
    #[error(transparent)]
    Build(#[from] crate::kernel_build::manifest::FinishedBuildError),
    #[error("no module could be tested: {why}\n  (the boot's record: {})", results.display())]
    Infrastructure { why: String, results: PathBuf },
    /// The vmlinux or Module.symvers given could not be read as `check` reads them.
    #[error(transparent)]
    Check(#[from] crate::check::stage::CheckError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BootError {
    pub fn kind(&self) -> crate::failure::FailureKind {
        use crate::failure::FailureKind;
        match self {
            BootError::Unsupported { .. } | BootError::BadInput(_) => FailureKind::BadInput,
            BootError::Build(e) => e.kind(),
            BootError::Check(e) => e.kind(),
            BootError::Image(_)
            | BootError::Qemu(_)
            | BootError::Io { .. }
            | BootError::Infrastructure { .. } => FailureKind::Infra,
        }
    }
}

#[derive(Clone)]
pub struct BootOptions {
    pub kernel: PathBuf,
    pub modules: Vec<PathBuf>,
    pub vmlinux: Option<PathBuf>,
    pub symvers: Option<PathBuf>,
    pub out: PathBuf,
    pub boot_timeout: Duration,
    pub module_timeout: Duration,
    pub silence: Duration,
    pub policy: Policy,
    pub extra_append: String,
    /// The kernel's .config: whether it decompresses modules itself and which initramfs
    /// compressions it takes. Found beside the kernel when not given.
    pub kernel_config: Option<PathBuf>,
    /// Guest memory (MiB) instead of the size worked out from the payload.
    pub memory_mb: Option<u64>,
    /// Only this shard of the modules (the others are other jobs' share).
    pub shard: Option<Shard>,
    /// Boots to split the modules into (default: as memory and `jobs` call for).
    pub batches: Option<usize>,
    /// Guests booted side by side.
    pub jobs: usize,
    /// A person at the terminal: one guest with every module, which after its loads stays
    /// in the agent's shell (`repro`, `boot --shell`); its console is theirs, without the
    /// protocol.
    pub interactive: bool,
    /// A module whose load fails, hangs or takes the guest down is tried this many more
    /// times, each in a fresh guest with what it needs, before its verdict stands (0: never).
    pub retries: usize,
}

/// The default limits of a boot, as `--timeout`, `--module-timeout` and `--silence` take
/// them: the CLI's defaults and [`BootOptions::for_build`]'s, one home.
pub mod limits {
    /// For the kernel to reach the agent.
    pub const BOOT: &str = "120s";
    /// For one module's load before it counts as hung.
    pub const MODULE: &str = "20s";
    /// Without console output before the guest counts as hung.
    pub const SILENCE: &str = "40s";

    pub fn of(limit: &str) -> std::time::Duration {
        crate::proc::parse_duration(limit).expect("the default limits parse")
    }
}

/// CPUs to boot guests on, side by side.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl BootOptions {
    /// Booting what `modverify build` produced, with the default limits.
    pub fn for_build(
        arch: &ArchDescriptor,
        art: &crate::kernel_build::Artifacts,
        out: PathBuf,
        policy: Policy,
    ) -> Self {
        let kernel = art.kernel_to_boot(arch).to_path_buf();
        BootOptions {
            kernel,
            modules: art.modules.clone(),
            vmlinux: Some(art.vmlinux.clone()),
            symvers: Some(art.module_symvers.clone()),
            out,
            boot_timeout: limits::of(limits::BOOT),
            module_timeout: limits::of(limits::MODULE),
            silence: limits::of(limits::SILENCE),
            policy,
            extra_append: String::new(),
            kernel_config: Some(art.config.clone()),
            memory_mb: None,
            shard: None,
            batches: None,
            jobs: default_jobs(),
            interactive: false,
            retries: 1,
        }
    }
}

/// What one guest brought back.
struct BatchRun {
    image: Initramfs,
    run: GuestRun,
    memory_mb: u64,
    seconds: f64,
    notes: Vec<String>,
}

/// Boots batch `b`: writes its initramfs, boots it, and boots it again with the modules
/// decompressed if the kernel turns out not to decompress them itself.
fn boot_batch(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    p: &Prepared,
    b: usize,
    on_event: &mut dyn FnMut(BootEvent),
) -> Result<BatchRun, BootError> {
    let t = std::time::Instant::now();
    let mut payload = p.payload;
    let mut memory_mb = p.memory_mb[b];
    let mut notes = Vec::new();
    loop {
        let image = p.initramfs(arch, opts, b, payload)?;
        let dir = p.batch_dir(&opts.out, b);
        let plan = BootPlan {
            arch,
            kernel: &p.kernel,
            initrd: &image.path,
            token: &p.token,
            module_names: image.plan.iter().map(|m| m.name.clone()).collect(),
            boot_timeout: opts.boot_timeout,
            silence: opts.silence,
            module_timeout: opts.module_timeout,
            extra_append: opts.extra_append.clone(),
            out_dir: &dir,
            memory_mb: Some(memory_mb),
            interactive: opts.interactive,
        };
        // Progress counts the modules this batch reports, not the ones it loads for them.
        let owned: std::collections::HashSet<usize> = p.batches[b].owned.iter().copied().collect();
        let loads = &p.batches[b].loads;
        let run = crate::qemu::boot_and_collect(&plan, &mut |e| match e {
            BootEvent::ModuleDone { index } => {
                if loads.get(index).is_some_and(|g| owned.contains(g)) {
                    on_event(e)
                }
            }
            e => on_event(e),
        })?;
        if let (Some((i, errno)), ModulePayload::KernelDecompresses(c)) =
            (run.no_decompress, payload)
        {
            notes.push(format!(
                "the kernel does not decompress {c:?} modules itself (finit_module with \
                 MODULE_INIT_COMPRESSED_FILE on {} gave errno {errno}): booted again with the \
                 modules decompressed on the host",
                image.plan.get(i).map(|m| m.name.as_str()).unwrap_or("?")
            ));
            payload = ModulePayload::Decompressed;
            continue;
        }
        // The estimate fell short: a module's load met the OOM killer. Boot again with
        // twice the memory while the machine takes it (never with --memory).
        if run.out_of_memory && memory_mb < p.ceiling_mb && opts.memory_mb.is_none() {
            let more = (memory_mb * 2).min(p.ceiling_mb);
            notes.push(format!(
                "boot {}: the guest ran out of memory with {memory_mb} MiB; booted again with {more} MiB",
                b + 1
            ));
            memory_mb = more;
            continue;
        }
        if run.out_of_memory {
            notes.push(format!(
                "boot {}: the guest ran out of memory with {memory_mb} MiB (the most {}): \
                 modules killed by the OOM killer show as crashed; give more --batches",
                b + 1,
                if opts.memory_mb.is_some() {
                    "--memory gives"
                } else {
                    "this machine takes"
                }
            ));
        }
        return Ok(BatchRun {
            image,
            run,
            memory_mb,
            seconds: t.elapsed().as_secs_f64(),
            notes,
        });
    }
}

/// Boots `opts.kernel` with its modules. With a vmlinux or Module.symvers, the check stage
/// reads them first, exactly as `modverify check` does (image unwrapped, System.map beside a
/// raw Image, Module.symvers' module exports), and its predictions and table are what the
/// kernel's verdicts and running table are compared with.
pub fn run_boot(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    on_event: &mut dyn FnMut(BootEvent),
) -> Result<BootReport, BootError> {
    let checked = if opts.vmlinux.is_some() || opts.symvers.is_some() {
        let copts = crate::check::stage::CheckOptions {
            arch: Some(arch.name.clone()),
            vmlinux: opts.vmlinux.clone(),
            system_map: None,
            symvers: opts.symvers.clone(),
            policy: opts.policy,
            paths: opts.modules.clone(),
            // The modules booted are the kernel's own: without a kernel binary, they carry
            // its vermagic.
            own_modules: opts.modules.clone(),
            // The boot loads these modules and no others.
            providers: crate::check::modules::Providers::GivenOnly,
        };
        let no_other_arches = crate::arch::ArchRegistry::of(vec![]);
        Some(crate::check::stage::check_stage(
            &copts,
            Some(arch),
            &no_other_arches,
        )?)
    } else {
        None
    };
    run_boot_with(arch, opts, checked, on_event)
}

/// `run_boot`, reusing what the check stage computed for the same files (`checked`: the
/// parsed modules, their predictions, the kernel's export table) instead of reading them
/// again; without it, no prediction and no export-table comparison.
pub fn run_boot_with(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    checked: Option<crate::check::stage::Checked>,
    on_event: &mut dyn FnMut(BootEvent),
) -> Result<BootReport, BootError> {
    let started = std::time::Instant::now();
    let (parsed, predicted, static_table, exports) = match checked {
        Some(c) => {
            let table = match (c.table.source, c.symvers) {
                // No kernel binary: Module.symvers' vmlinux rows, in the layout the running
                // kernel keeps (a 7.1+ kernel keeps one table with GPL flags).
                (crate::elf::exports::ExportSource::Symvers, Some(s)) => StaticTable::Symvers(s),
                _ => StaticTable::Elf(Box::new(c.table)),
            };
            (
                Some((c.modules, c.shadowed)),
                c.report.modules,
                Some(table),
                Some(c.report.exports),
            )
        }
        None => (None, Vec::new(), None, None),
    };
    let prepared = prepare_with(arch, opts, parsed)?;
    let prepare_seconds = started.elapsed().as_secs_f64();
    let p = &prepared;
    let mut notes: Vec<Note> = p.notes.iter().cloned().map(Note::run).collect();
    notes.extend(p.shard_note.clone().map(Note::shard));
    match (&opts.vmlinux, &opts.symvers) {
        (None, None) => notes.push(Note::run(
            "no vmlinux given: no static prediction and no export-table comparison",
        )),
        (None, Some(_)) => notes.push(Note::run(
            "no vmlinux given: predictions from Module.symvers, and the running export table \
             compared with its vmlinux rows",
        )),
        _ => {}
    }
    let n = p.batches.len();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<BootEvent>();
    on_event(BootEvent::Planned {
        modules: p.owned,
        boots: n,
    });
    // Guests boot side by side, each taking the next batch; their events reach `on_event`
    // here, on this thread.
    let runs = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..opts.jobs.clamp(1, n))
            .map(|_| {
                let tx = tx.clone();
                let next = &next;
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let b = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if b >= n || crate::proc::interrupted() {
                            break;
                        }
                        let r = boot_batch(arch, opts, p, b, &mut |e| {
                            let _ = tx.send(e);
                        });
                        let failed = r.is_err();
                        done.push((b, r));
                        if failed {
                            break;
                        }
                    }
                    done
                })
            })
            .collect();
        drop(tx);
        for event in rx {
            on_event(event);
        }
        let mut runs: Vec<(usize, Result<BatchRun, BootError>)> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect();
        runs.sort_by_key(|(b, _)| *b);
        runs
    });
    let mut by_batch: BTreeMap<usize, BatchRun> = BTreeMap::new();
    for (b, r) in runs {
        by_batch.insert(b, r?);
    }

    let mut modules = Vec::with_capacity(p.owned);
    let mut batches = Vec::new();
    let mut boots = Vec::new();
    let (mut damaged, mut lost) = (0, 0);
    let mut boot_failure = None;
    let mut seconds_to_done: Option<f64> = None;
    for (b, batch) in p.batches.iter().enumerate() {
        let owned: std::collections::HashSet<usize> = batch.owned.iter().copied().collect();
        let dir = p.batch_dir(&opts.out, b);
        match by_batch.get(&b) {
            Some(r) => {
                let outs = outcomes(&r.run, &r.image.plan, &predicted);
                modules.extend(outs.into_iter().filter(|o| owned.contains(&o.index)));
                boots.extend(r.run.boots.iter().cloned());
                damaged += r.run.damaged_records;
                lost += r.run.lost_records;
                notes.extend(r.notes.iter().cloned().map(Note::run));
                if let Some(i) = r.run.unload_crash {
                    notes.push(Note::run(format!(
                        "the kernel went down while {} was being unloaded (its exit path, or code \
                         of a module unloaded before it; console in {}): the modules loaded \
                         before it in that boot were not unloaded",
                        r.image.plan.get(i).map(|m| m.name.as_str()).unwrap_or("?"),
                        dir.join("console.log").display()
                    )));
                }
                if boot_failure.is_none() {
                    boot_failure = r.run.boot_failure.as_ref().map(|f| {
                        if p.total_batches > 1 {
                            f.in_boot(&format!("boot {} of {}", batch.number + 1, p.total_batches))
                        } else {
                            f.clone()
                        }
                    });
                }
                seconds_to_done = match (seconds_to_done, r.run.seconds_to_done) {
                    (a, Some(s)) => Some(a.unwrap_or(0f64).max(s)),
                    (a, None) => a,
                };
                batches.push(BatchReport {
                    batch: batch.number + 1,
                    modules: batch.owned.len(),
                    loaded_with_dependencies: batch.loads.len(),
                    memory_mb: r.memory_mb,
                    initramfs_bytes: r.image.file_bytes,
                    memory_used_mb: r.run.memory_kib.map(|(t, a)| t.saturating_sub(a) >> 10),
                    console_log: dir.join("console.log").display().to_string(),
                    seconds: r.seconds,
                    done: r.run.done,
                });
            }
            None => {
                // Never booted (interrupted): its modules have no verdict.
                let empty = GuestRun {
                    boot_failure: Some(crate::qemu::BootFailure::new(
                        crate::qemu::BootFailureKind::Interrupted,
                        "interrupted before this batch booted",
                    )),
                    modules: batch
                        .owned
                        .iter()
                        .enumerate()
                        .map(|(i, &g)| crate::qemu::GuestModule {
                            index: i,
                            name: p.plan[g].name.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let plan: Vec<PlannedModule> =
                    batch.owned.iter().map(|&g| p.plan[g].clone()).collect();
                modules.extend(outcomes(&empty, &plan, &predicted));
            }
        }
    }
    modules.sort_by_key(|m| m.index);
    // A failure is not yet a verdict: each module whose load failed, hung or took the guest
    // down is tried again in a fresh guest (with what it needs). Nothing to retry: no cost.
    for t in 1..=opts.retries {
        let again: Vec<usize> = modules
            .iter()
            .filter(|m| m.worth_another_try())
            .map(|m| m.index)
            .collect();
        if again.is_empty() || crate::proc::interrupted() {
            break;
        }
        let tried = retry(arch, opts, p, &again, t, &predicted)?;
        for o in tried.iter().filter(|o| again.contains(&o.index)) {
            if let Some(m) = modules.iter_mut().find(|m| m.index == o.index) {
                m.retries.push(crate::verdict::Try::of(o));
            }
        }
        let flaky = modules.iter().filter(|m| m.flaky()).count();
        notes.push(Note::run(format!(
            "retry {t}: {} modules whose load failed tried again in a fresh guest ({}): {} \
             came out otherwise (flaky)",
            again.len(),
            opts.out
                .join(format!("retry-{t}"))
                .join("console.log")
                .display(),
            flaky
        )));
    }
    // Shadowed files were not loaded; the part of the run that boots the set's first batch
    // reports them (once, when shards are joined), after the planned modules.
    if p.batches.iter().any(|b| b.number == 0) {
        modules.extend(p.shadowed.iter().enumerate().map(|(i, s)| ModuleOutcome {
            index: p.plan.len() + i,
            name: crate::depmod::name(&s.path),
            path: s.path.display().to_string(),
            verdict: RuntimeVerdict::Shadowed,
            predicted: Some(crate::check::Verdict::Shadowed),
            symbol: None,
            errno: None,
            errno_name: None,
            kernel_messages: vec![],
            load_micros: None,
            unloaded: None,
            unload_errno: None,
            unload_crashed: false,
            agrees: true,
            not_run_reason: Some(crate::check::stage::shadowed_detail(s)),
            console_excerpt: vec![],
            retries: vec![],
        }));
    }
    let done = by_batch.len() == n && by_batch.values().all(|r| r.run.done);
    let first = by_batch.get(&0);
    // Read in the set's first boot only: a shard without it has no comparison of its own.
    let table_run = by_batch
        .iter()
        .find(|(b, _)| p.batches[**b].number == 0)
        .map(|(_, r)| r);
    let export_table = match (&static_table, table_run) {
        (Some(t), Some(r)) if r.run.done => Some(t.compare(&r.run)),
        _ => None,
    };
    let summary = BootSummary::of(&modules);
    let first_dir = p.batch_dir(&opts.out, 0);
    let initramfs = first
        .map(|r| r.image.path.display().to_string())
        .unwrap_or_default();
    let qemu_command = first
        .map(|r| p.qemu_command(arch, opts, &r.image.path, 0))
        .unwrap_or_default();
    let payload = match p.payload {
        ModulePayload::KernelDecompresses(c) => {
            let z: usize = by_batch.values().map(|r| r.image.kernel_decompressed).sum();
            if z > 0 {
                format!("{c:?} modules decompressed by the kernel (MODULE_INIT_COMPRESSED_FILE)")
            } else {
                "modules decompressed on the host".to_string()
            }
        }
        ModulePayload::Decompressed => format!(
            "modules decompressed on the host; initramfs {}",
            match p.ramdisk {
                Some(c) => format!("{c:?}-compressed"),
                None => "uncompressed".into(),
            }
        ),
    };
    let report = BootReport {
        schema: "modverify.boot/1".into(),
        arch: arch.name.clone(),
        kernel: opts.kernel.display().to_string(),
        initramfs,
        qemu_command,
        console_log: first_dir.join("console.log").display().to_string(),
        done,
        boot_failure,
        boots,
        seconds_to_done,
        damaged_records: damaged,
        lost_records: lost,
        modules,
        export_table,
        static_table: exports,
        notes,
        summary,
        payload,
        shard: opts.shard,
        modules_in_run: p.plan.len(),
        batches,
        prepare_seconds,
        shell: by_batch
            .values()
            .flat_map(|r| r.run.shell.iter().cloned())
            .collect(),
    };
    let path = opts.out.join("boot.json");
    crate::files::write_atomic(&path, &report).map_err(|e| BootError::Io { path, source: e })?;
    Ok(report)
}

/// Try `again` (modules of the plan, by index) once more in a fresh guest, with what each
/// needs, in `OUT/retry-T`; their outcomes there.
fn retry(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    p: &Prepared,
    again: &[usize],
    t: usize,
    predicted: &[crate::check::ModuleReport],
) -> Result<Vec<ModuleOutcome>, BootError> {
    let mut loads = std::collections::BTreeSet::new();
    let mut todo = again.to_vec();
    while let Some(i) = todo.pop() {
        if loads.insert(i) {
            todo.extend(p.plan[i].needs.iter().copied());
        }
    }
    // What boot_batch reads of the plan, and no more.
    let rp = Prepared {
        token: p.token.clone(),
        kernel: p.kernel.clone(),
        plan: p.plan.clone(),
        owned: again.len(),
        // Not the set's first batch: the export table was read already.
        batches: vec![crate::batch::Batch {
            number: 1,
            owned: again.to_vec(),
            loads: loads.into_iter().collect(),
        }],
        total_batches: 1,
        payload: p.payload,
        ramdisk: p.ramdisk,
        memory_mb: vec![p.memory_mb.iter().copied().max().unwrap_or(p.ceiling_mb)],
        ceiling_mb: p.ceiling_mb,
        notes: Vec::new(),
        shard_note: None,
        shadowed: Vec::new(),
    };
    let ro = BootOptions {
        out: opts.out.join(format!("retry-{t}")),
        interactive: false,
        ..opts.clone()
    };
    let r = boot_batch(arch, &ro, &rp, 0, &mut |_| {})?;
    Ok(outcomes(&r.run, &r.image.plan, predicted))
}

/// What the running export table is compared with.
enum StaticTable {
    Elf(Box<ExportTable>),
    Symvers(crate::elf::Symvers),
}

impl StaticTable {
    fn compare(&self, run: &GuestRun) -> TableComparison {
        match self {
            StaticTable::Elf(t) => compare_tables(run, t),
            StaticTable::Symvers(s) => {
                let t = if run.flagged_layout() {
                    ExportTable::from_symvers_flagged(s)
                } else {
                    ExportTable::from_symvers(s)
                };
                compare_tables(run, &t)
            }
        }
    }
}

/// Where a boot writes its initramfs and results when `--out` is not given: inside the build
/// directory (one per arch), or per arch, kernel and modules in the cache, so two arches
/// booted with the same kernel path never share an initramfs.
pub fn default_out(build_dir: Option<&Path>, kernel: &Path, modules: &Path, arch: &str) -> PathBuf {
    match build_dir {
        Some(d) => d.join("boot"),
        None => crate::files::cache_dir().join("boot").join(format!(
            "{arch}-{}",
            crate::kernel_build::short_hash(&format!(
                "{}\0{}",
                kernel.display(),
                modules.display()
            ))
        )),
    }
}

crate::failure::classified_by_own_kind!(BootError);
