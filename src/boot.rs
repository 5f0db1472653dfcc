//! The boot stage: artifacts → initramfs → QEMU → guest results → verdicts, compared with
//! the static prediction. Writes `boot.json` (atomically, at the end) beside `console.log`
//! and `events.jsonl` (appended as records arrive).
use crate::arch::ArchDescriptor;
use crate::check::run::{load_module, run_check, CheckOptions};
use crate::check::Policy;
use crate::elf::{ElfFile, ExportTable};
use crate::image::ImageError;
use crate::qemu::{BootAttempt, BootPlan, QemuError};
use crate::verdict::{compare_tables, outcomes, ModuleOutcome, RuntimeVerdict, TableComparison};
use serde::Serialize;
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
    pub fn exit_code(&self) -> i32 {
        match self {
            BootError::Unsupported { .. } | BootError::BadInput(_) => crate::exit::USAGE,
            BootError::Image(_) | BootError::Qemu(_) | BootError::Io { .. } => crate::exit::INFRA,
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

#[derive(Debug, Clone, Serialize)]
pub struct BootSummary {
    pub modules: usize,
    pub loaded: usize,
    pub failed: usize,
    pub unload_failures: usize,
    pub disagreements: usize,
    pub by_verdict: BTreeMap<&'static str, usize>,
}

/// `modverify boot --format json`: schema `modverify.boot/1`.
#[derive(Debug, Clone, Serialize)]
pub struct BootReport {
    pub schema: &'static str,
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

/// The QEMU command line only (for --show-command): builds the initramfs, boots nothing.
pub fn prepare(
    arch: &ArchDescriptor,
    opts: &BootOptions,
) -> Result<(crate::image::Initramfs, String, String), BootError> {
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
    std::fs::create_dir_all(&opts.out).map_err(|e| BootError::Io {
        path: opts.out.clone(),
        source: e,
    })?;
    let paths =
        crate::input::discover(&opts.modules).map_err(|e| BootError::BadInput(e.to_string()))?;
    let inputs: Vec<_> = paths.iter().map(|p| load_module(p, arch)).collect();
    let tok = token();
    let initrd = opts.out.join("initramfs.cpio");
    let image = crate::image::write_initramfs(
        arch,
        &inputs,
        &tok,
        opts.module_timeout.as_secs() as u32,
        &crate::build::cache_dir(),
        &initrd,
    )?;
    let cmd =
        crate::qemu::command::QemuCommand::new(arch, &opts.kernel, &initrd, &opts.extra_append)
            .expect("qemu facts checked");
    Ok((image, tok, cmd.show()))
}

pub fn run_boot(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    on_event: &mut dyn FnMut(&str),
) -> Result<BootReport, BootError> {
    let (image, tok, qemu_command) = prepare(arch, opts)?;
    let mut notes = image.notes.clone();
    // The static view, when we have vmlinux: predictions per module and the export table.
    let (predicted, static_table) = match &opts.vmlinux {
        Some(v) => {
            let registry = crate::arch::ArchRegistry {
                arches: vec![arch.clone()],
            };
            let copts = CheckOptions {
                arch: Some(arch.name.clone()),
                vmlinux: Some(v.clone()),
                symvers: opts.symvers.clone(),
                policy: opts.policy,
                paths: opts.modules.clone(),
            };
            let report =
                run_check(&copts, &registry).map_err(|e| BootError::BadInput(e.to_string()))?;
            let bytes = std::fs::read(v).map_err(|e| BootError::Io {
                path: v.clone(),
                source: e,
            })?;
            let elf = ElfFile::parse(&bytes)
                .map_err(|e| BootError::BadInput(format!("{}: {e}", v.display())))?;
            let table = ExportTable::from_vmlinux(&elf, Some(arch.elf.ksymtab))
                .map_err(|e| BootError::BadInput(format!("{}: {e}", v.display())))?;
            (report.modules, Some(table))
        }
        None => {
            notes.push(
                "no vmlinux given: no static prediction and no export-table comparison".into(),
            );
            (Vec::new(), None)
        }
    };
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
    let run = crate::qemu::boot_and_collect(&plan, on_event)?;
    let modules = outcomes(&run, &image.plan, &predicted);
    let export_table = match (&static_table, run.done) {
        (Some(t), true) => Some(compare_tables(&run, t)),
        _ => None,
    };
    let mut by_verdict = BTreeMap::new();
    for m in &modules {
        *by_verdict.entry(m.verdict.as_str()).or_insert(0) += 1;
    }
    let summary = BootSummary {
        modules: modules.len(),
        loaded: modules
            .iter()
            .filter(|m| m.verdict == RuntimeVerdict::Loaded)
            .count(),
        failed: modules
            .iter()
            .filter(|m| m.verdict != RuntimeVerdict::Loaded)
            .count(),
        unload_failures: modules.iter().filter(|m| m.unloaded == Some(false)).count(),
        disagreements: modules.iter().filter(|m| !m.agrees).count(),
        by_verdict,
    };
    let report = BootReport {
        schema: "modverify.boot/1",
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
    crate::report::json::write_atomic(&path, &report)
        .map_err(|e| BootError::Io { path, source: e })?;
    Ok(report)
}

/// Where a build directory's boot results go.
pub fn default_out(build_dir: Option<&Path>, kernel: &Path) -> PathBuf {
    match build_dir {
        Some(d) => d.join("boot"),
        None => crate::build::cache_dir()
            .join("boot")
            .join(crate::build::short_hash(&kernel.display().to_string())),
    }
}
