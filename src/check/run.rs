//! The static-check stage over files: loads vmlinux / Module.symvers / modules (in parallel,
//! one module in memory per worker), then runs the predictor. All file context lives here.
use super::exports::{check_export_table, ExportProblem, Severity};
use super::modules::{predict, wrong_arch_problem, ModuleInput, Policy};
use super::{ModuleReport, Problem, Verdict};
use crate::arch::{ArchDescriptor, ArchError, ArchRegistry};
use crate::elf::exports::{ExportSource, ExportTable};
use crate::elf::module::ElfIdentity;
use crate::elf::{ElfFile, ModuleFacts, ParseError, Symvers};
use crate::input::{self, InputError};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{path}: cannot read vmlinux: {source}")]
    ReadVmlinux {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a usable vmlinux: {source}")]
    Vmlinux { path: PathBuf, source: ParseError },
    #[error("{path}: cannot read Module.symvers: {source}")]
    ReadSymvers {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Symvers {
        path: PathBuf,
        source: crate::elf::symvers::SymversError,
    },
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Arch(#[from] ArchError),
    #[error("{0}")]
    Usage(String),
}

pub struct CheckOptions {
    pub arch: Option<String>,
    pub vmlinux: Option<PathBuf>,
    pub symvers: Option<PathBuf>,
    pub policy: Policy,
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelInfo {
    pub source: ExportSource,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vermagic: Option<String>,
    pub modversions: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symvers: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportsReport {
    /// Number of vmlinux exports (`__ksymtab` + `__ksymtab_gpl`).
    pub count: usize,
    pub gpl: usize,
    pub consistent: bool,
    pub problems: Vec<ExportProblem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub modules: usize,
    pub ok: usize,
    pub failed: usize,
    pub by_verdict: BTreeMap<&'static str, usize>,
    pub export_errors: usize,
    pub export_warnings: usize,
}

/// `modverify check --format json`; documented in docs/json-schema.md.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub schema: &'static str,
    pub arch: String,
    pub policy: Policy,
    pub kernel: KernelInfo,
    pub exports: ExportsReport,
    pub modules: Vec<ModuleReport>,
    pub summary: Summary,
}

impl CheckReport {
    pub fn clean(&self) -> bool {
        self.summary.failed == 0 && self.summary.export_errors == 0
    }
}

pub const CHECK_SCHEMA: &str = "modverify.check/1";

pub fn run_check(opts: &CheckOptions, registry: &ArchRegistry) -> Result<CheckReport, CheckError> {
    if opts.vmlinux.is_none() && opts.symvers.is_none() {
        return Err(CheckError::Usage(
            "nothing to check against: give --vmlinux FILE (the kernel's ELF) or --symvers FILE"
                .into(),
        ));
    }
    let paths = input::discover(&opts.paths)?;
    let symvers = opts
        .symvers
        .as_ref()
        .map(|p| -> Result<Symvers, CheckError> {
            let text = std::fs::read_to_string(p).map_err(|source| CheckError::ReadSymvers {
                path: p.clone(),
                source,
            })?;
            Symvers::parse(&text).map_err(|source| CheckError::Symvers {
                path: p.clone(),
                source,
            })
        })
        .transpose()?;
    let mut arch: Option<&ArchDescriptor> =
        opts.arch.as_deref().map(|a| registry.get(a)).transpose()?;

    let (table, kernel_path) = match &opts.vmlinux {
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|source| CheckError::ReadVmlinux {
                path: p.clone(),
                source,
            })?;
            let elf = ElfFile::parse(&bytes).map_err(|source| CheckError::Vmlinux {
                path: p.clone(),
                source,
            })?;
            let id = ElfIdentity::of(&elf);
            match arch {
                Some(a) if !a.accepts_elf(id.machine, id.is_64, id.little) => {
                    return Err(CheckError::Usage(format!(
                        "{}: vmlinux is e_machine {} ({}-bit, {}-endian), not {}: drop --arch or pick the right one",
                        p.display(),
                        id.machine,
                        if id.is_64 { 64 } else { 32 },
                        if id.little { "little" } else { "big" },
                        a.name
                    )))
                }
                Some(_) => {}
                None => {
                    arch = Some(registry.by_elf(id.machine, id.is_64, id.little).ok_or_else(|| {
                        CheckError::Usage(format!(
                            "{}: no architecture descriptor for e_machine {} ({}-bit): add one under arches/ or pass --arch",
                            p.display(),
                            id.machine,
                            if id.is_64 { 64 } else { 32 }
                        ))
                    })?)
                }
            }
            let mut t =
                ExportTable::from_vmlinux(&elf, arch.map(|a| a.elf.ksymtab)).map_err(|source| {
                    CheckError::Vmlinux {
                        path: p.clone(),
                        source,
                    }
                })?;
            if let Some(sv) = &symvers {
                t.add_symvers_modules(sv);
            }
            (t, p.display().to_string())
        }
        None => {
            let s = symvers.as_ref().expect("checked above");
            (
                ExportTable::from_symvers(s),
                opts.symvers.as_ref().unwrap().display().to_string(),
            )
        }
    };
    if arch.is_none() {
        arch = infer_arch_from_modules(&paths, registry);
    }
    let arch = arch.ok_or_else(|| {
        CheckError::Usage(
            "cannot tell the architecture: no vmlinux and no readable module; pass --arch NAME"
                .into(),
        )
    })?;

    let modules: Vec<ModuleInput> = paths.par_iter().map(|p| load_module(p, arch)).collect();
    let module_facts: Vec<&ModuleFacts> = modules
        .iter()
        .filter_map(|m| m.facts.as_ref().ok())
        .collect();
    let mut problems = check_export_table(&table, symvers.as_ref(), &module_facts);
    if table.source == ExportSource::Symvers {
        problems.retain(|p| p.kind != super::ExportProblemKind::SymversMismatch);
    }
    let mut reports = predict(&table, arch, &modules, opts.policy);
    // Failing modules first, then by name: the order a person reads.
    reports.sort_by(|a, b| (!a.failed(), &a.name, &a.path).cmp(&(!b.failed(), &b.name, &b.path)));

    let mut by_verdict = BTreeMap::new();
    for r in &reports {
        *by_verdict.entry(r.verdict.as_str()).or_insert(0) += 1;
    }
    let failed = reports.iter().filter(|r| r.failed()).count();
    let export_errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    Ok(CheckReport {
        schema: CHECK_SCHEMA,
        arch: arch.name.clone(),
        policy: opts.policy,
        kernel: KernelInfo {
            source: table.source,
            path: kernel_path,
            release: table.release.clone(),
            vermagic: table.vermagic.clone(),
            modversions: table.modversions,
            symvers: opts.symvers.as_ref().map(|p| p.display().to_string()),
        },
        exports: ExportsReport {
            count: table.count(),
            gpl: table.gpl_count(),
            consistent: export_errors == 0,
            problems: problems.clone(),
        },
        summary: Summary {
            modules: reports.len(),
            ok: reports.len() - failed,
            failed,
            by_verdict,
            export_errors,
            export_warnings: problems.len() - export_errors,
        },
        modules: reports,
    })
}

/// Reads and parses one module; every failure becomes a verdict for that file only.
pub fn load_module(p: &Path, arch: &ArchDescriptor) -> ModuleInput {
    let facts = (|| {
        let bytes = input::read_module(p).map_err(|e| Problem::new(Verdict::Malformed, e))?;
        let elf =
            ElfFile::parse(&bytes).map_err(|e| Problem::new(Verdict::Malformed, e.to_string()))?;
        if let Some(p) = wrong_arch_problem(&ElfIdentity::of(&elf), arch) {
            return Err(p);
        }
        ModuleFacts::parse(&elf, &arch.elf)
            .map_err(|e| Problem::new(Verdict::Malformed, e.to_string()))
    })();
    ModuleInput {
        path: p.display().to_string(),
        stem: input::stem(p),
        facts,
    }
}

fn infer_arch_from_modules<'r>(
    paths: &[PathBuf],
    registry: &'r ArchRegistry,
) -> Option<&'r ArchDescriptor> {
    paths.iter().take(16).find_map(|p| {
        let bytes = input::read_module(p).ok()?;
        let elf = ElfFile::parse(&bytes).ok()?;
        registry.by_elf(elf.header.e_machine, elf.is_64(), elf.little())
    })
}
