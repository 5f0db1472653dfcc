//! The boot stage: artifacts → initramfs → QEMU → guest results → verdicts, compared with
//! the static prediction. Writes `boot.json` (atomically, at the end) beside `console.log`
//! and `events.jsonl` (appended as records arrive).
use crate::arch::ArchDescriptor;
use crate::batch::{self, Batch, Shard};
use crate::check::stage::load_module;
use crate::check::Policy;
use crate::elf::{ElfFile, ExportTable};
use crate::image::{
    Compression, ImageError, Initramfs, InitramfsOptions, KernelAbilities, ModulePayload,
    PlannedModule,
};
use crate::qemu::{BootAttempt, BootEvent, BootPlan, GuestRun, QemuError};
use crate::verdict::{compare_tables, outcomes, ModuleOutcome, RuntimeVerdict, TableComparison};
use serde::{Deserialize, Serialize};
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BootSummary {
    pub modules: usize,
    pub loaded: usize,
    /// Modules the kernel refused or that crashed, hung or failed in init.
    pub failed: usize,
    /// Modules that never got a verdict (the guest died before them): not failures of theirs.
    pub not_run: usize,
    pub unload_failures: usize,
    pub disagreements: usize,
    /// Modules whose tries disagree (`--retries`): neither failed nor loaded.
    #[serde(skip_serializing_if = "is_zero")]
    pub flaky: usize,
    /// Failed modules tried again with the same verdict.
    #[serde(skip_serializing_if = "is_zero")]
    pub reproduced: usize,
    pub by_verdict: BTreeMap<String, usize>,
}

impl BootSummary {
    pub fn of(modules: &[ModuleOutcome]) -> Self {
        let mut by_verdict = BTreeMap::new();
        for m in modules {
            *by_verdict
                .entry(m.verdict.as_str().to_string())
                .or_insert(0) += 1;
        }
        let count = |f: &dyn Fn(&ModuleOutcome) -> bool| modules.iter().filter(|m| f(m)).count();
        BootSummary {
            modules: modules.len(),
            loaded: count(&|m| m.verdict == RuntimeVerdict::Loaded),
            failed: count(&|m| m.verdict.failed() && !m.flaky()),
            not_run: count(&|m| m.verdict == RuntimeVerdict::NotRun),
            unload_failures: count(&|m| m.unloaded == Some(false)),
            // A flaky module's first try is not a verdict to disagree with.
            disagreements: count(&|m| !m.agrees && !m.flaky()),
            flaky: count(&|m| m.flaky()),
            reproduced: count(&|m| m.reproduced()),
            by_verdict,
        }
    }
}

/// One guest of a run that was split into several.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchReport {
    pub batch: usize,
    /// Modules reported from this guest, and all it loaded (with their dependencies).
    pub modules: usize,
    pub loaded_with_dependencies: usize,
    pub memory_mb: u64,
    pub initramfs_bytes: u64,
    /// MemTotal - MemAvailable in the guest with every module loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used_mb: Option<u64>,
    pub console_log: String,
    pub seconds: f64,
    pub done: bool,
}

/// `modverify boot --format json`: schema `modverify.boot/1`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BootReport {
    pub schema: String,
    pub arch: String,
    pub kernel: String,
    pub initramfs: String,
    pub qemu_command: String,
    pub console_log: String,
    /// The guest reached `done`.
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_failure: Option<String>,
    pub boots: Vec<BootAttempt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_done: Option<f64>,
    pub damaged_records: usize,
    pub lost_records: u64,
    pub modules: Vec<ModuleOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_table: Option<TableComparison>,
    pub notes: Vec<String>,
    pub summary: BootSummary,
    /// How the modules travelled: "xz, decompressed by the kernel" or "decompressed on the host".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub payload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Every module of the run, of which a shard reports its share.
    #[serde(skip_serializing_if = "is_zero")]
    pub modules_in_run: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchReport>,
    /// The boot failure was QEMU's (it would not start the machine): nothing was tested.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub infrastructure: bool,
    /// Parsing the modules and planning the boots, before the first guest starts.
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub prepare_seconds: f64,
    /// What a person did in the agent's shell (`boot --shell`, `repro`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
}

impl BootReport {
    pub fn clean(&self) -> bool {
        self.done
            && self.boot_failure.is_none()
            && self.summary.failed == 0
            && self.summary.not_run == 0
            && self.summary.unload_failures == 0
            && self.summary.disagreements == 0
            && self.export_table.as_ref().is_none_or(|t| t.equal)
            && self.damaged_records == 0
            && self.lost_records == 0
    }

    /// Joins the shards of one run (`--shard 1/N` … `N/N`, one CI job each) into the run's
    /// results: the shards boot disjoint batches of the same plan, so together they are what
    /// a single run would have found. A missing shard is said, never filled in.
    pub fn join_shards(parts: &[BootReport]) -> Result<BootReport, String> {
        let first = parts.first().ok_or("no shards to join")?;
        let n = first.shard.map(|s| s.n).ok_or("not a shard (no --shard)")?;
        let mut seen = std::collections::BTreeSet::new();
        for p in parts {
            match p.shard {
                Some(s)
                    if s.n == n
                        && p.arch == first.arch
                        && p.modules_in_run == first.modules_in_run =>
                {
                    if !seen.insert(s.k) {
                        return Err(format!("shard {s} appears twice"));
                    }
                }
                _ => {
                    return Err(format!(
                        "the parts are not shards of one run: {} {} of {} modules and {} {} of {}",
                        first.arch,
                        first.shard.map(|s| s.to_string()).unwrap_or_default(),
                        first.modules_in_run,
                        p.arch,
                        p.shard
                            .map(|s| s.to_string())
                            .unwrap_or("(no shard)".into()),
                        p.modules_in_run
                    ))
                }
            }
        }
        let mut parts: Vec<&BootReport> = parts.iter().collect();
        parts.sort_by_key(|p| p.shard.map(|s| s.k));
        // The part that booted the set's first batch read the export table.
        let lead = parts
            .iter()
            .find(|p| p.batches.iter().any(|b| b.batch == 1))
            .copied()
            .unwrap_or(parts[0]);
        let mut modules: Vec<ModuleOutcome> = parts
            .iter()
            .flat_map(|p| p.modules.iter().cloned())
            .collect();
        modules.sort_by_key(|m| m.index);
        let mut batches: Vec<BatchReport> = parts
            .iter()
            .flat_map(|p| p.batches.iter().cloned())
            .collect();
        batches.sort_by_key(|b| b.batch);
        let missing: Vec<String> = (1..=n)
            .filter(|k| !seen.contains(k))
            .map(|k| format!("{k}/{n}"))
            .collect();
        let mut notes: Vec<String> = Vec::new();
        for note in parts.iter().flat_map(|p| p.notes.iter()) {
            if !note.starts_with("shard ") && !notes.contains(note) {
                notes.push(note.clone());
            }
        }
        if !missing.is_empty() {
            notes.push(format!(
                "shards {} are missing: their modules have no verdict here",
                missing.join(", ")
            ));
        }
        let summary = BootSummary::of(&modules);
        Ok(BootReport {
            done: missing.is_empty() && parts.iter().all(|p| p.done),
            boot_failure: parts.iter().find_map(|p| p.boot_failure.clone()),
            boots: parts.iter().flat_map(|p| p.boots.iter().cloned()).collect(),
            seconds_to_done: parts
                .iter()
                .filter_map(|p| p.seconds_to_done)
                .reduce(f64::max),
            damaged_records: parts.iter().map(|p| p.damaged_records).sum(),
            lost_records: parts.iter().map(|p| p.lost_records).sum(),
            modules,
            export_table: lead.export_table.clone(),
            notes,
            summary,
            shard: (!missing.is_empty()).then_some(first.shard).flatten(),
            infrastructure: parts.iter().any(|p| p.infrastructure),
            batches,
            prepare_seconds: parts.iter().map(|p| p.prepare_seconds).fold(0.0, f64::max),
            ..(*lead).clone()
        })
    }

    /// The run could not test the modules at all: QEMU would not start the machine. One
    /// infrastructure failure, not a finding about each module. (A kernel that hangs or
    /// panics before the agent is a finding about the kernel: `git bisect` calls it bad.)
    pub fn infrastructure_failure(&self) -> Option<&str> {
        let nothing_ran = self
            .modules
            .iter()
            .all(|m| m.verdict == RuntimeVerdict::NotRun);
        self.boot_failure
            .as_deref()
            .filter(|_| nothing_ran && self.infrastructure)
    }
}

// Keys results.json files from before distribution scale lack: not written back as zeros.
fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
}

fn token() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0) as u64;
    format!(
        "{:016x}",
        u64::from_le_bytes(b) ^ t.rotate_left(17) ^ std::process::id() as u64
    )
}

/// What `prepare` worked out: the modules in load order, this run's share of them split into
/// batches, the payload the kernel takes, and the parsed modules (reused for the static
/// prediction).
pub struct Prepared {
    pub token: String,
    pub kernel: PathBuf,
    pub plan: Vec<PlannedModule>,
    pub owned: usize,
    /// This run's batches (a shard's share of them), and how many the whole set makes.
    pub batches: Vec<Batch>,
    pub total_batches: usize,
    pub payload: ModulePayload,
    pub ramdisk: Option<Compression>,
    /// Guest memory for each batch (MiB), and the most the machine (or --memory) allows.
    pub memory_mb: Vec<u64>,
    pub ceiling_mb: u64,
    pub notes: Vec<String>,
    pub inputs: Vec<crate::check::modules::ModuleInput>,
    /// Files another file of their name takes precedence over: not loaded, reported so.
    pub shadowed: Vec<crate::depmod::Shadowed>,
}

impl Prepared {
    /// Where batch `b` (of this run's) keeps its files: numbered as in the whole set.
    fn batch_dir(&self, out: &Path, b: usize) -> PathBuf {
        if self.total_batches == 1 {
            out.to_path_buf()
        } else {
            out.join(format!("batch-{}", self.batches[b].number + 1))
        }
    }

    /// Writes batch `b`'s initramfs.
    pub fn initramfs(
        &self,
        arch: &ArchDescriptor,
        opts: &BootOptions,
        b: usize,
        payload: ModulePayload,
    ) -> Result<Initramfs, BootError> {
        let dir = self.batch_dir(&opts.out, b);
        std::fs::create_dir_all(&dir).map_err(|e| BootError::Io {
            path: dir.clone(),
            source: e,
        })?;
        let plan: Vec<PlannedModule> = self.batches[b]
            .loads
            .iter()
            .map(|&i| self.plan[i].clone())
            .collect();
        let io = InitramfsOptions {
            token: &self.token,
            // The agent counts whole seconds: round up, never down to 0.
            module_timeout_s: opts.module_timeout.as_millis().div_ceil(1000).max(1) as u32,
            cache: &crate::files::cache_dir(),
            payload,
            compression: match payload {
                // Compressed modules do not shrink again; plain ones do, a lot.
                ModulePayload::KernelDecompresses(_) => None,
                ModulePayload::Decompressed => self.ramdisk,
            },
            // One boot of the kernel reads its export table: the set's first.
            read_table: self.batches[b].number == 0,
        };
        let name = match io.compression {
            Some(Compression::Zstd) => "initramfs.cpio.zst",
            Some(Compression::Gzip) => "initramfs.cpio.gz",
            _ => "initramfs.cpio",
        };
        Ok(crate::image::write_initramfs(
            arch,
            &plan,
            &[],
            &io,
            &dir.join(name),
        )?)
    }

    /// The QEMU command line for batch `b` (for --show-command).
    pub fn qemu_command(
        &self,
        arch: &ArchDescriptor,
        opts: &BootOptions,
        initrd: &Path,
        b: usize,
    ) -> String {
        let mut cmd =
            crate::qemu::command::QemuCommand::new(arch, &self.kernel, initrd, &opts.extra_append)
                .expect("qemu facts checked");
        cmd.memory_mb = Some(self.memory_mb[b]);
        cmd.show()
    }
}

/// The kernel's .config: given, or beside the kernel as Debian and `make install` leave it
/// (`config-VERSION` next to `vmlinuz-VERSION`, or `config` in the same directory).
fn find_kernel_config(opts: &BootOptions) -> Option<PathBuf> {
    if let Some(c) = &opts.kernel_config {
        return Some(c.clone());
    }
    let dir = opts.kernel.parent()?;
    let name = opts.kernel.file_name()?.to_string_lossy().into_owned();
    let mut candidates: Vec<PathBuf> = name
        .split_once('-')
        .map(|(_, v)| dir.join(format!("config-{v}")))
        .into_iter()
        .collect();
    candidates.push(dir.join("config"));
    candidates.push(dir.join(".config"));
    candidates.into_iter().find(|p| p.is_file())
}

/// Works out the plan, the payload, memory and batches; writes nothing but a kernel
/// unwrapped for QEMU where needed.
pub fn prepare(arch: &ArchDescriptor, opts: &BootOptions) -> Result<Prepared, BootError> {
    prepare_with(arch, opts, None)
}

/// `prepare`, with the modules already parsed when the check stage did it.
fn prepare_with(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    parsed: Option<(
        Vec<crate::check::modules::ModuleInput>,
        Vec<crate::depmod::Shadowed>,
    )>,
) -> Result<Prepared, BootError> {
    use rayon::prelude::*;
    let qemu = arch
        .qemu_or_why_not()
        .map_err(|reason| BootError::Unsupported {
            arch: arch.name.clone(),
            reason,
        })?;
    if !opts.kernel.exists() {
        return Err(BootError::BadInput(format!(
            "{}: kernel image not found",
            opts.kernel.display()
        )));
    }
    if let Some(why) = kernel_mismatch(&opts.kernel, arch) {
        return Err(BootError::BadInput(format!(
            "{}: {why}",
            opts.kernel.display()
        )));
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| BootError::Io {
        path: opts.out.clone(),
        source: e,
    })?;
    let mut notes = Vec::new();
    let kernel = bootable_kernel(&opts.kernel, &opts.out, &mut notes)?;
    let (inputs, shadowed): (Vec<_>, _) = match parsed {
        Some(both) => both,
        None => {
            let found = crate::input::discover_noted(&opts.modules)
                .map_err(|e| BootError::BadInput(e.to_string()))?;
            notes.extend(found.notes);
            // Of several files of one module name, modprobe loads one (depmod's order): the
            // others are not loaded, and are reported shadowed.
            let (paths, shadowed) = crate::depmod::pick(&opts.modules, found.paths);
            let inputs = paths.par_iter().map(|p| load_module(p, arch)).collect();
            (inputs, shadowed)
        }
    };
    let where_ = || {
        opts.modules
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if inputs.is_empty() {
        return Err(BootError::BadInput(format!(
            "no module files (.ko, .ko.xz, .ko.gz, .ko.zst) in {}: nothing to load",
            where_()
        )));
    }
    if let Some(p) = inputs
        .iter()
        .map(|m| &m.facts)
        .try_fold(None, |first, f| match f {
            Err(p) if p.kind == crate::check::Verdict::WrongArch => Some(first.or(Some(p))),
            _ => None,
        })
        .flatten()
    {
        return Err(BootError::BadInput(format!(
            "every module in {} is for another architecture: {}; pick the right --arch",
            where_(),
            p.detail
        )));
    }
    let (plan, order_notes) = crate::image::plan_modules(&inputs);
    notes.extend(order_notes);
    let all: Vec<usize> = (0..plan.len()).collect();

    // The payload: modules stay compressed where the kernel decompresses them itself.
    let methods: Vec<Option<Compression>> = plan
        .par_iter()
        .map(|m| {
            let mut head = [0u8; 8];
            std::fs::File::open(&m.path)
                .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
                .ok()
                .and_then(|n| Compression::of(&head[..n]))
        })
        .collect();
    let common = [Compression::Xz, Compression::Zstd, Compression::Gzip]
        .into_iter()
        .max_by_key(|c| methods.iter().filter(|m| **m == Some(*c)).count())
        .filter(|c| methods.contains(&Some(*c)));
    let config = find_kernel_config(opts);
    let abilities = match &config {
        Some(p) => {
            let text = crate::input::read_module(p).map_err(|e| {
                BootError::BadInput(format!("{}: the kernel config: {e}", p.display()))
            })?;
            KernelAbilities::from_config(&String::from_utf8_lossy(&text))
        }
        None => KernelAbilities::default(),
    };
    let payload = match (common, abilities.known) {
        (Some(c), true) if abilities.module_decompress == Some(c) => {
            ModulePayload::KernelDecompresses(c)
        }
        // No config at hand: the guest tries, and says if the kernel cannot.
        (Some(c), false) => ModulePayload::KernelDecompresses(c),
        _ => ModulePayload::Decompressed,
    };
    let ramdisk = if abilities.known {
        [Compression::Zstd, Compression::Gzip]
            .into_iter()
            .find(|c| abilities.ramdisk.contains(c))
    } else {
        // RD_GZIP is on in every defconfig and distribution kernel.
        Some(Compression::Gzip)
    };
    if let Some(p) = &config {
        // Why the payload (shown on its own line) is what it is.
        notes.push(format!(
            "kernel config {}: {}; {}",
            p.display(),
            match abilities.module_decompress {
                Some(c) => format!("CONFIG_MODULE_DECOMPRESS for {c:?} modules"),
                None => "no CONFIG_MODULE_DECOMPRESS".into(),
            },
            match ramdisk {
                Some(Compression::Zstd) => "CONFIG_RD_ZSTD",
                Some(Compression::Gzip) => "CONFIG_RD_GZIP",
                Some(_) => "a compressed initramfs",
                None => "neither CONFIG_RD_ZSTD nor CONFIG_RD_GZIP",
            }
        ));
    }

    // Memory: what each module needs loaded; batches so every guest fits its machine.
    let minimum = crate::qemu::command::descriptor_memory_mb(&qemu.args).unwrap_or(256);
    let machine_max = qemu
        .max_memory_mb
        .unwrap_or(if arch.elf.class == 64 { 4096 } else { 768 });
    let ceiling = opts.memory_mb.unwrap_or(machine_max);
    let kernel_mb = batch::kernel_share_mb(machine_max);
    let in_guest_compressed =
        |i: usize| matches!(payload, ModulePayload::KernelDecompresses(c) if methods[i] == Some(c));
    let sizes: Vec<u64> = (0..plan.len())
        .map(|i| batch::loaded_bytes(&plan[i], methods[i].is_some()))
        .collect();
    let shipped = |i: usize| {
        if in_guest_compressed(i) {
            plan[i].file_bytes
        } else {
            sizes[i]
        }
    };
    let need = |b: &Batch| {
        let unpacked: u64 = b.loads.iter().map(|&i| shipped(i)).sum();
        let archive = if ramdisk.is_some() && !b.loads.iter().all(|&i| in_guest_compressed(i)) {
            unpacked / 3
        } else {
            unpacked
        };
        let loaded: u64 = b.loads.iter().map(|&i| sizes[i]).sum();
        batch::guest_memory_mb(kernel_mb, archive, unpacked, loaded)
    };
    // The batches depend on the modules and the machine alone (never on --jobs or the
    // shard), so each module meets the same neighbours in a single run and in any shard:
    // the shards of a run merge into the run's own results.
    let mut count = opts
        .batches
        .unwrap_or(plan.len().div_ceil(batch::MODULES_PER_BATCH))
        .max(opts.shard.map_or(1, |s| s.n))
        .max(1);
    let batches = loop {
        let batches = batch::split(&plan, &all, count, &sizes);
        let fits = batches.iter().all(|b| need(b) <= ceiling);
        if fits || opts.batches.is_some() || count >= plan.len() {
            if !fits {
                let worst = batches.iter().map(&need).max().unwrap_or(0);
                return Err(BootError::BadInput(format!(
                    "{} modules need {worst} MiB in one guest, and {} takes at most {ceiling} MiB{}: {}",
                    batches.iter().map(|b| b.loads.len()).max().unwrap_or(0),
                    qemu.binary,
                    if opts.memory_mb.is_some() { " (--memory)" } else { "" },
                    if opts.batches.is_some() {
                        "ask for more --batches"
                    } else {
                        "one module with its dependencies does not fit; give a larger --memory"
                    }
                )));
            }
            break batches;
        }
        count += 1;
    };
    let total_batches = batches.len();
    if opts.shard.is_some_and(|s| s.n > total_batches) {
        return Err(BootError::BadInput(format!(
            "--shard {}: {} modules make only {total_batches} boots; give at most {total_batches} shards",
            opts.shard.expect("checked"),
            plan.len()
        )));
    }
    let batches: Vec<Batch> = batches
        .into_iter()
        .filter(|b| opts.shard.is_none_or(|s| s.owns(b.number)))
        .collect();
    let owned: usize = batches.iter().map(|b| b.owned.len()).sum();
    let memory_mb: Vec<u64> = batches
        .iter()
        .map(|b| match opts.memory_mb {
            Some(m) => m,
            None => need(b).max(minimum),
        })
        .collect();
    if total_batches > 1 {
        notes.push(format!(
            "{} modules in {total_batches} boots of about {} each (each with what its modules need), {} side by side",
            plan.len(),
            plan.len().div_ceil(total_batches),
            opts.jobs.min(batches.len()).max(1)
        ));
    }
    if let Some(s) = opts.shard {
        notes.push(format!(
            "shard {s}: boots {} of {total_batches}, {owned} of the {} modules",
            batches
                .iter()
                .map(|b| (b.number + 1).to_string())
                .collect::<Vec<_>>()
                .join(", "),
            plan.len()
        ));
    }
    Ok(Prepared {
        token: token(),
        kernel,
        owned,
        plan,
        batches,
        total_batches,
        payload,
        ramdisk,
        memory_mb,
        ceiling_mb: ceiling,
        notes,
        inputs,
        shadowed,
    })
}

/// The file QEMU's `-kernel` takes: the image as given, or, for an EFI zboot image (a PE
/// application holding the compressed kernel, as arm64, riscv64 and loong64 distributions
/// ship it), the raw Image inside it, written beside the results.
fn bootable_kernel(
    kernel: &Path,
    out: &Path,
    notes: &mut Vec<String>,
) -> Result<PathBuf, BootError> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let n = std::fs::File::open(kernel)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| BootError::Io {
            path: kernel.to_path_buf(),
            source: e,
        })?;
    if !crate::elf::image::is_zboot(&head[..n]) {
        return Ok(kernel.to_path_buf());
    }
    let bytes = std::fs::read(kernel).map_err(|e| BootError::Io {
        path: kernel.to_path_buf(),
        source: e,
    })?;
    let mut steps = Vec::new();
    let raw = match crate::elf::image::unwrap(bytes, &mut steps) {
        Ok(crate::elf::image::KernelImage::Raw(b)) => b,
        Ok(crate::elf::image::KernelImage::Elf(_)) => {
            return Err(BootError::BadInput(format!(
                "{}: an EFI zboot image holding an ELF file, which QEMU cannot boot as -kernel",
                kernel.display()
            )))
        }
        Err(e) => return Err(BootError::BadInput(format!("{}: {e}", kernel.display()))),
    };
    let path = out.join("Image.unwrapped");
    crate::files::write_bytes_atomic(&path, &raw).map_err(|e| BootError::Io {
        path: path.clone(),
        source: e,
    })?;
    notes.push(format!(
        "{} is an EFI zboot image; QEMU boots the raw Image inside it ({}), unwrapped into {}",
        kernel.display(),
        steps.join(", "),
        path.display()
    ));
    Ok(path)
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

pub fn run_boot(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    on_event: &mut dyn FnMut(BootEvent),
) -> Result<BootReport, BootError> {
    run_boot_with(arch, opts, None, on_event)
}

/// `run_boot`, reusing what the check stage computed for the same files (`checked`: the
/// parsed modules, their predictions, vmlinux's export table) instead of reading them again.
pub fn run_boot_with(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    checked: Option<crate::check::stage::Checked>,
    on_event: &mut dyn FnMut(BootEvent),
) -> Result<BootReport, BootError> {
    let started = std::time::Instant::now();
    let (parsed, known) = match checked {
        Some(c) => (
            Some((c.modules, c.shadowed)),
            Some((c.report.modules, Some(StaticTable::Elf(Box::new(c.table))))),
        ),
        None => (None, None),
    };
    let prepared = prepare_with(arch, opts, parsed)?;
    let prepare_seconds = started.elapsed().as_secs_f64();
    let p = &prepared;
    let mut notes = p.notes.clone();
    match (&opts.vmlinux, &opts.symvers) {
        (None, None) => notes
            .push("no vmlinux given: no static prediction and no export-table comparison".into()),
        (None, Some(_)) => notes.push(
            "no vmlinux given: predictions from Module.symvers, and the running export table \
             compared with its vmlinux rows"
                .into(),
        ),
        _ => {}
    }
    let n = p.batches.len();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<BootEvent>();
    on_event(BootEvent::Planned {
        modules: p.owned,
        boots: n,
    });
    // The static view (prediction per module, export table) is worked out while the guests
    // boot; guests boot side by side, each taking the next batch; their events reach
    // `on_event` here, on this thread.
    let (runs, static_view) = std::thread::scope(|scope| {
        let statics = scope.spawn(|| match known {
            Some(k) => Ok(k),
            None => static_view(arch, opts, &p.inputs),
        });
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
        (
            runs,
            statics
                .join()
                .unwrap_or_else(|_| Err(BootError::BadInput("static check panicked".into()))),
        )
    });
    let mut by_batch: BTreeMap<usize, BatchRun> = BTreeMap::new();
    for (b, r) in runs {
        by_batch.insert(b, r?);
    }
    let (predicted, static_table) = static_view?;

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
                notes.extend(r.notes.iter().cloned());
                if let Some(i) = r.run.unload_crash {
                    notes.push(format!(
                        "the kernel went down while {} was being unloaded (its exit path, or code \
                         of a module unloaded before it; console in {}): the modules loaded \
                         before it in that boot were not unloaded",
                        r.image.plan.get(i).map(|m| m.name.as_str()).unwrap_or("?"),
                        dir.join("console.log").display()
                    ));
                }
                if boot_failure.is_none() {
                    boot_failure = r.run.boot_failure.as_ref().map(|f| {
                        if p.total_batches > 1 {
                            format!("boot {} of {}: {f}", batch.number + 1, p.total_batches)
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
                    boot_failure: Some("interrupted before this batch booted".into()),
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
        notes.push(format!(
            "retry {t}: {} modules whose load failed tried again in a fresh guest ({}): {} \
             came out otherwise (flaky)",
            again.len(),
            opts.out
                .join(format!("retry-{t}"))
                .join("console.log")
                .display(),
            flaky
        ));
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
    let infrastructure = by_batch.values().any(|r| r.run.infrastructure);
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
        notes,
        summary,
        payload,
        shard: opts.shard,
        modules_in_run: p.plan.len(),
        batches,
        infrastructure,
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
    // What boot_batch reads of the plan, and no more: the parsed modules (`inputs`, every
    // module's facts) are not copied for a retry.
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
        inputs: Vec::new(),
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
                let flagged = run
                    .tables
                    .get("ksymtab")
                    .is_some_and(|t| t.flag_bytes.is_some());
                let t = if flagged {
                    ExportTable::from_symvers_flagged(s)
                } else {
                    ExportTable::from_symvers(s)
                };
                compare_tables(run, &t)
            }
        }
    }
}

/// Predictions for the modules and the vmlinux export table, if a vmlinux was given.
fn static_view(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    inputs: &[crate::check::modules::ModuleInput],
) -> Result<(Vec<crate::check::ModuleReport>, Option<StaticTable>), BootError> {
    let Some(v) = &opts.vmlinux else {
        // Module.symvers alone still predicts each module (but says nothing of the binary table).
        let Some(sv) = &opts.symvers else {
            return Ok((Vec::new(), None));
        };
        let text = std::fs::read_to_string(sv).map_err(|e| BootError::Io {
            path: sv.clone(),
            source: e,
        })?;
        let symvers = crate::elf::Symvers::parse(&text)
            .map_err(|e| BootError::BadInput(format!("{}: {e}", sv.display())))?;
        let table = ExportTable::from_symvers(&symvers);
        let predicted = crate::check::modules::predict(&table, arch, inputs, opts.policy);
        // The running table is compared with Module.symvers' vmlinux rows, in the order the
        // kernel sorts them; a 7.1+ kernel keeps one table with GPL flags (told at the end).
        return Ok((predicted, Some(StaticTable::Symvers(symvers))));
    };
    let bad = |e: String| BootError::BadInput(format!("{}: {e}", v.display()));
    let bytes = std::fs::read(v).map_err(|e| BootError::Io {
        path: v.clone(),
        source: e,
    })?;
    let elf = ElfFile::parse(&bytes).map_err(|e| bad(e.to_string()))?;
    let table =
        ExportTable::from_vmlinux(&elf, Some(arch.elf.ksymtab)).map_err(|e| bad(e.to_string()))?;
    let predicted = crate::check::modules::predict(&table, arch, inputs, opts.policy);
    Ok((predicted, Some(StaticTable::Elf(Box::new(table)))))
}

/// Where a build directory's boot results go.
/// Why a file cannot be this arch's kernel: an ELF or Image header naming another machine,
/// or text. Other formats (compressed, PE, firmware-specific) are left to QEMU.
fn kernel_mismatch(kernel: &Path, arch: &crate::arch::ArchDescriptor) -> Option<String> {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(kernel).ok()?.read(&mut head).ok()?;
    head.truncate(n);
    if head.starts_with(b"\x7fELF") {
        // The ELF header alone names the machine; the section headers may lie far beyond.
        let h = goblin::elf::Elf::parse_header(&head).ok()?;
        let (machine, is_64, little) = (
            h.e_machine,
            h.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64,
            h.e_ident[goblin::elf::header::EI_DATA] == goblin::elf::header::ELFDATA2LSB,
        );
        return (!arch.accepts_elf(machine, is_64, little)).then(|| {
            format!(
                "an ELF kernel for {} ({}-bit), not {}: pick the right --arch",
                crate::elf::machine_name(machine),
                if is_64 { 64 } else { 32 },
                arch.name
            )
        });
    }
    // A raw Image (arm64, riscv64) or an x86 bzImage: their headers name the machine.
    let raw = crate::elf::image::raw_identity(&head)
        .map(|id| (id, "an Image"))
        .or_else(|| crate::elf::image::bzimage_identity(&head).map(|id| (id, "an x86 bzImage")));
    if let Some((id, what)) = raw {
        return (!arch.accepts_elf(id.machine, id.is_64, id.little)).then(|| {
            format!(
                "{what} for {}, not a kernel for {}: pick the right --arch",
                crate::elf::machine_name(id.machine),
                arch.name
            )
        });
    }
    let text = !head.is_empty()
        && head
            .iter()
            .take(512)
            .all(|&b| b == b'\n' || b == b'\t' || b == b'\r' || (0x20..0x7f).contains(&b));
    text.then(|| "a text file, not a kernel image".to_string())
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
