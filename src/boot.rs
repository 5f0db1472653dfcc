//! The boot stage: artifacts → initramfs → QEMU → guest results → verdicts, compared with
//! the static prediction. Writes `boot.json` (atomically, at the end) beside `console.log`
//! and `events.jsonl` (appended as records arrive).
use crate::arch::ArchDescriptor;
use crate::check::stage::load_module;
use crate::check::Policy;
use crate::elf::{ElfFile, ExportTable};
use crate::image::ImageError;
use crate::qemu::{BootAttempt, BootEvent, BootPlan, QemuError};
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
            BootError::Image(_) | BootError::Qemu(_) | BootError::Io { .. } => FailureKind::Infra,
        }
    }
}

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
}

impl BootOptions {
    /// Booting what `modverify build` produced, with the default limits.
    pub fn for_build(
        arch: &ArchDescriptor,
        art: &crate::build::Artifacts,
        out: PathBuf,
        policy: Policy,
    ) -> Self {
        // Where QEMU boots the ELF itself (alpha, sparc64), use it; otherwise the image.
        let kernel = if arch.build.as_ref().is_some_and(|b| b.vmlinux_boots) {
            art.vmlinux.clone()
        } else {
            art.image.clone()
        };
        BootOptions {
            kernel,
            modules: art.modules.clone(),
            vmlinux: Some(art.vmlinux.clone()),
            symvers: Some(art.module_symvers.clone()),
            out,
            boot_timeout: Duration::from_secs(120),
            module_timeout: Duration::from_secs(20),
            silence: Duration::from_secs(40),
            policy,
            extra_append: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    pub by_verdict: BTreeMap<String, usize>,
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

/// What `prepare` made: the initramfs, the run's token, the QEMU command line and the
/// parsed modules (reused for the static prediction).
pub struct Prepared {
    pub image: crate::image::Initramfs,
    pub token: String,
    pub qemu_command: String,
    pub inputs: Vec<crate::check::modules::ModuleInput>,
}

/// The QEMU command line only (for --show-command): builds the initramfs, boots nothing.
pub fn prepare(arch: &ArchDescriptor, opts: &BootOptions) -> Result<Prepared, BootError> {
    prepare_with(arch, opts, None)
}

/// `prepare`, with the modules already parsed when the check stage did it.
fn prepare_with(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    parsed: Option<Vec<crate::check::modules::ModuleInput>>,
) -> Result<Prepared, BootError> {
    if arch.qemu.is_none() {
        return Err(BootError::Unsupported {
            arch: arch.name.clone(),
            reason: arch
                .unsupported
                .boot
                .clone()
                .unwrap_or_else(|| "the descriptor has no `qemu` section".into()),
        });
    }
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
    let inputs: Vec<_> = match parsed {
        Some(inputs) => inputs,
        None => crate::input::discover(&opts.modules)
            .map_err(|e| BootError::BadInput(e.to_string()))?
            .iter()
            .map(|p| load_module(p, arch))
            .collect(),
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
    let tok = token();
    let initrd = opts.out.join("initramfs.cpio");
    let image = crate::image::write_initramfs(
        arch,
        &inputs,
        &tok,
        // The agent counts whole seconds: round up, never down to 0.
        opts.module_timeout.as_millis().div_ceil(1000).max(1) as u32,
        &crate::build::cache_dir(),
        &initrd,
    )?;
    let cmd =
        crate::qemu::command::QemuCommand::new(arch, &opts.kernel, &initrd, &opts.extra_append)
            .expect("qemu facts checked");
    Ok(Prepared {
        image,
        token: tok,
        qemu_command: cmd.show(),
        inputs,
    })
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
    let (parsed, known) = match checked {
        Some(c) => (Some(c.modules), Some((c.report.modules, Some(c.table)))),
        None => (None, None),
    };
    let Prepared {
        image,
        token: tok,
        qemu_command,
        inputs,
    } = prepare_with(arch, opts, parsed)?;
    let mut notes = image.notes.clone();
    match (&opts.vmlinux, &opts.symvers) {
        (None, None) => notes
            .push("no vmlinux given: no static prediction and no export-table comparison".into()),
        (None, Some(_)) => notes.push(
            "no vmlinux given: predictions from Module.symvers, no export-table comparison".into(),
        ),
        _ => {}
    }
    let plan = BootPlan {
        arch,
        kernel: &opts.kernel,
        initrd: &image.path,
        token: &tok,
        module_names: image.plan.iter().map(|m| m.name.clone()).collect(),
        boot_timeout: opts.boot_timeout,
        silence: opts.silence,
        extra_append: opts.extra_append.clone(),
        out_dir: &opts.out,
    };
    // The static view (prediction per module, export table) is worked out while the guest
    // boots: it is only needed at the end.
    let (run, static_view) = std::thread::scope(|scope| {
        let statics = scope.spawn(|| match known {
            Some(k) => Ok(k),
            None => static_view(arch, opts, &inputs),
        });
        let run = crate::qemu::boot_and_collect(&plan, on_event);
        (
            run,
            statics
                .join()
                .unwrap_or_else(|_| Err(BootError::BadInput("static check panicked".into()))),
        )
    });
    let run = run?;
    let (predicted, static_table) = static_view?;
    let modules = outcomes(&run, &image.plan, &predicted);
    let export_table = match (&static_table, run.done) {
        (Some(t), true) => Some(compare_tables(&run, t)),
        _ => None,
    };
    let mut by_verdict = BTreeMap::new();
    for m in &modules {
        *by_verdict
            .entry(m.verdict.as_str().to_string())
            .or_insert(0) += 1;
    }
    let summary = BootSummary {
        modules: modules.len(),
        loaded: modules
            .iter()
            .filter(|m| m.verdict == RuntimeVerdict::Loaded)
            .count(),
        failed: modules.iter().filter(|m| m.verdict.failed()).count(),
        not_run: modules
            .iter()
            .filter(|m| m.verdict == RuntimeVerdict::NotRun)
            .count(),
        unload_failures: modules.iter().filter(|m| m.unloaded == Some(false)).count(),
        disagreements: modules.iter().filter(|m| !m.agrees).count(),
        by_verdict,
    };
    let report = BootReport {
        schema: "modverify.boot/1".into(),
        arch: arch.name.clone(),
        kernel: opts.kernel.display().to_string(),
        initramfs: image.path.display().to_string(),
        qemu_command,
        console_log: opts.out.join("console.log").display().to_string(),
        done: run.done,
        boot_failure: run.boot_failure.clone(),
        boots: run.boots.clone(),
        seconds_to_done: run.seconds_to_done,
        damaged_records: run.damaged_records,
        lost_records: run.lost_records,
        modules,
        export_table,
        notes,
        summary,
    };
    let path = opts.out.join("boot.json");
    crate::files::write_atomic(&path, &report).map_err(|e| BootError::Io { path, source: e })?;
    Ok(report)
}

/// Predictions for the modules and the vmlinux export table, if a vmlinux was given.
fn static_view(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    inputs: &[crate::check::modules::ModuleInput],
) -> Result<(Vec<crate::check::ModuleReport>, Option<ExportTable>), BootError> {
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
        return Ok((
            crate::check::modules::predict(&table, arch, inputs, opts.policy),
            None,
        ));
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
    Ok((predicted, Some(table)))
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
                "an ELF kernel for e_machine {machine} ({}-bit), not {}: pick the right --arch",
                if is_64 { 64 } else { 32 },
                arch.name
            )
        });
    }
    if let Some(id) = crate::elf::image::raw_identity(&head) {
        return (!arch.accepts_elf(id.machine, id.is_64, id.little)).then(|| {
            format!(
                "an Image for e_machine {}, not {}: pick the right --arch",
                id.machine, arch.name
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
        None => crate::build::cache_dir().join("boot").join(format!(
            "{arch}-{}",
            crate::build::short_hash(&format!("{}\0{}", kernel.display(), modules.display()))
        )),
    }
}
