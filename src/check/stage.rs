//! The static-check stage over files: loads vmlinux / Module.symvers / modules (in parallel,
//! one module in memory per worker), then runs the predictor. All file context lives here.
use super::exports::{check_export_table, ExportProblem, Severity};
use super::modules::{predict, wrong_arch_problem, ModuleInput, Policy};
use super::{ModuleReport, Problem, Verdict};
use crate::arch::{ArchDescriptor, ArchError, ArchRegistry};
use crate::elf::exports::{ExportSource, ExportTable};
use crate::elf::image::{self, KernelImage};
use crate::elf::module::ElfIdentity;
use crate::elf::{ElfFile, ModuleFacts, ParseError, Symvers};
use crate::input::{self, InputError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
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
    #[error("{path}: {message}")]
    Kernel { path: PathBuf, message: String },
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

impl CheckError {
    /// Input that is missing, unreadable for want of permission, of another arch or not
    /// what it claims is bad input; any other I/O failure is the machine's.
    pub fn kind(&self) -> crate::failure::FailureKind {
        use crate::failure::FailureKind;
        let io = FailureKind::of_io;
        match self {
            CheckError::ReadVmlinux { source, .. } | CheckError::ReadSymvers { source, .. } => {
                io(source)
            }
            CheckError::Input(InputError::Io { source, .. }) => io(source),
            CheckError::Vmlinux { .. }
            | CheckError::Kernel { .. }
            | CheckError::Symvers { .. }
            | CheckError::Input(InputError::Missing { .. })
            | CheckError::Arch(_)
            | CheckError::Usage(_) => FailureKind::BadInput,
        }
    }
}

pub struct CheckOptions {
    pub arch: Option<String>,
    pub vmlinux: Option<PathBuf>,
    /// System.map of a raw Image (found beside the image when not given).
    pub system_map: Option<PathBuf>,
    pub symvers: Option<PathBuf>,
    pub policy: Policy,
    pub paths: Vec<PathBuf>,
    /// Which of `paths` are the kernel's own modules (its modules directory, `--with`): a
    /// table read from Module.symvers has no vermagic, and the kernel's own modules carry the
    /// kernel's (VERMAGIC_STRING), so it is taken from them. Empty: nothing is assumed.
    pub own_modules: Vec<PathBuf>,
    /// Whether modules Module.symvers names but `paths` lacks may provide symbols (`check`)
    /// or not (a boot, which loads exactly `paths`).
    pub providers: super::modules::Providers,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KernelInfo {
    pub source: ExportSource,
    pub path: String,
    /// How the kernel image was unwrapped to be read ("bzImage payload (xz)", …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unpacked: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vermagic: Option<String>,
    pub modversions: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symvers: Option<String>,
}

/// What an export-table verdict could rest on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verified {
    /// Every `__kcrctab` slot of the kernel binary was read and compared.
    #[default]
    CrcSlots,
    /// The kernel has no CRC tables (CONFIG_MODVERSIONS off): names and flags only.
    NamesOnly,
    /// No kernel binary: Module.symvers cannot show what the slots hold.
    SymversOnly,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportsReport {
    /// Number of vmlinux exports (`__ksymtab` + `__ksymtab_gpl`).
    pub count: usize,
    pub gpl: usize,
    pub consistent: bool,
    /// What the consistency verdict rests on: `crc_slots` (every slot of vmlinux's tables
    /// read and compared), `names_only` (no CRC tables: CONFIG_MODVERSIONS off), or
    /// `symvers_only` (no kernel binary: the slots themselves could not be read).
    pub verified: Verified,
    pub problems: Vec<ExportProblem>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub modules: usize,
    pub ok: usize,
    pub failed: usize,
    /// How many modules got each verdict (written by its name, in the verdicts' order).
    pub by_verdict: BTreeMap<super::Verdict, usize>,
    pub export_errors: usize,
    pub export_warnings: usize,
}

impl Summary {
    /// The counts of a list of module reports: `ok` the modules that pass, `failed` those
    /// that fail; a shadowed module is neither (see `by_verdict`).
    pub fn of(modules: &[ModuleReport], export_errors: usize, export_warnings: usize) -> Self {
        let mut by_verdict = BTreeMap::new();
        for r in modules {
            *by_verdict.entry(r.verdict).or_insert(0) += 1;
        }
        Summary {
            modules: modules.len(),
            ok: modules
                .iter()
                .filter(|m| m.verdict.outcome() == crate::outcome_kind::Outcome::Pass)
                .count(),
            failed: modules.iter().filter(|m| m.failed()).count(),
            by_verdict,
            export_errors,
            export_warnings,
        }
    }
}

/// `modverify check --format json`; documented in docs/json-schema.md.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckReport {
    pub schema: String,
    pub arch: String,
    pub policy: Policy,
    pub kernel: KernelInfo,
    pub exports: ExportsReport,
    pub modules: Vec<ModuleReport>,
    pub summary: Summary,
    /// What a person should know about how the modules were found (a directory reached by
    /// two symlinks, read once; a symlink to nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn clean(&self) -> bool {
        self.summary.failed == 0 && self.summary.export_errors == 0
    }

    /// Keeps only the modules `keep` selects (every module was still checked, so their
    /// dependencies count), and recounts the summary.
    pub fn retain_modules(&mut self, keep: impl Fn(&ModuleReport) -> bool) {
        self.modules.retain(|m| keep(m));
        let (errors, warnings) = (self.summary.export_errors, self.summary.export_warnings);
        self.summary = Summary::of(&self.modules, errors, warnings);
    }
}

pub const CHECK_SCHEMA: &str = "modverify.check/1";

/// The kernel's export table, its path, how its image was unwrapped, and the architecture
/// its ELF identity names.
type Loaded<'r> = (ExportTable, String, Vec<String>, Option<&'r ArchDescriptor>);

/// The check stage's report and what it read to make it, for the boot stage to reuse.
pub struct Checked {
    pub report: CheckReport,
    pub table: ExportTable,
    pub modules: Vec<ModuleInput>,
    /// Files another file of their name takes precedence over (not in `modules`).
    pub shadowed: Vec<crate::depmod::Shadowed>,
    /// Module.symvers as read (when given): without a kernel binary, the running table is
    /// compared with its vmlinux rows in the layout the running kernel turns out to keep.
    pub symvers: Option<Symvers>,
}

pub fn run_check(opts: &CheckOptions, registry: &ArchRegistry) -> Result<CheckReport, CheckError> {
    check_stage(opts, None, registry).map(|c| c.report)
}

/// The check over files. `arch`: the descriptor the caller already holds (else `opts.arch`
/// is looked up, or the files tell).
pub fn check_stage<'r>(
    opts: &CheckOptions,
    arch: Option<&'r ArchDescriptor>,
    registry: &'r ArchRegistry,
) -> Result<Checked, CheckError> {
    if opts.vmlinux.is_none() && opts.symvers.is_none() {
        return Err(CheckError::Usage(
            "nothing to check against: give --vmlinux FILE (the kernel's ELF) or --symvers FILE"
                .into(),
        ));
    }
    let input::Discovered { paths, notes } = input::discover_noted(&opts.paths)?;
    // Of several files of one module name, the one modprobe loads is checked; the others
    // are reported shadowed, naming it, and are no one's provider of symbols.
    let (paths, shadowed) = crate::depmod::pick(&opts.paths, paths);
    for p in opts.paths.iter().filter(|p| p.is_file()) {
        if let Some(why) = not_a_module(p) {
            return Err(CheckError::Usage(format!("{}: {why}", p.display())));
        }
    }
    if paths.is_empty() {
        return Err(CheckError::Usage(format!(
            "no module files (.ko, .ko.xz, .ko.gz, .ko.zst) in {}: nothing to check",
            opts.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let symvers = opts
        .symvers
        .as_ref()
        .map(|p| -> Result<Symvers, CheckError> {
            // A kernel headers directory (/usr/src/linux-headers-VER) stands for the
            // Module.symvers in it, as it does for out-of-tree builds.
            let in_dir;
            let p = if p.is_dir() {
                in_dir = p.join("Module.symvers");
                if !in_dir.is_file() {
                    return Err(CheckError::Usage(format!(
                        "--symvers {}: a directory without Module.symvers; give the kernel's \
                         headers directory (/usr/src/linux-headers-VER) or the file itself",
                        p.display()
                    )));
                }
                &in_dir
            } else {
                p
            };
            let text = std::fs::read_to_string(p).map_err(|source| CheckError::ReadSymvers {
                path: p.clone(),
                source,
            })?;
            let s = Symvers::parse(&text).map_err(|source| CheckError::Symvers {
                path: p.clone(),
                source,
            })?;
            if !s.entries.iter().any(|e| e.module == "vmlinux") {
                return Err(CheckError::Usage(format!(
                    "{}: Module.symvers lists no vmlinux export ({} lines): an empty file, or \
                     one from an external-module build; give the kernel's own",
                    p.display(),
                    s.entries.len()
                )));
            }
            Ok(s)
        })
        .transpose()?;
    let mut arch: Option<&ArchDescriptor> = match arch {
        Some(a) => Some(a),
        None => opts.arch.as_deref().map(|a| registry.get(a)).transpose()?,
    };

    // The kernel's table and the modules load side by side: reading vmlinux is one thread's
    // work, which would otherwise stand before every module.
    let given = arch;
    let load_kernel = || -> Result<Loaded<'_>, CheckError> {
        let mut arch = given;
        let mut unpacked = Vec::new();
        let (table, kernel_path) = match &opts.vmlinux {
            Some(p) => {
                let raw = std::fs::read(p).map_err(|source| CheckError::ReadVmlinux {
                    path: p.clone(),
                    source,
                })?;
                let bad = |message: String| CheckError::Kernel {
                    path: p.clone(),
                    message,
                };
                let mut t = match image::unwrap(raw, &mut unpacked).map_err(bad)? {
                    KernelImage::Elf(bytes) => {
                        let elf = ElfFile::parse(&bytes).map_err(|source| CheckError::Vmlinux {
                            path: p.clone(),
                            source,
                        })?;
                        let id = ElfIdentity::of(&elf);
                        if id.e_type == goblin::elf::header::ET_REL {
                            return Err(bad(
                                "this is a module (a relocatable object), not the kernel: \
                                 give it as a PATH, and the kernel's vmlinux or vmlinuz to --vmlinux"
                                    .into(),
                            ));
                        }
                        arch = Some(arch_for_kernel(
                            arch, registry, p, id.machine, id.is_64, id.little,
                        )?);
                        if elf.section("__ksymtab").is_none() && elf.section(".BTF").is_some() {
                            return Err(bad(
                            "this is the BTF-only vmlinux that linux-headers ships (type information, \
                             no code and no export table); give the kernel image instead \
                             (/boot/vmlinuz-VERSION, or vmlinuz in /usr/lib/modules/VERSION)"
                                .into(),
                        ));
                        }
                        ExportTable::from_vmlinux(&elf, arch.map(|a| a.elf.ksymtab)).map_err(
                            |source| CheckError::Vmlinux {
                                path: p.clone(),
                                source,
                            },
                        )?
                    }
                    KernelImage::Raw(bytes) => {
                        let id = image::raw_identity(&bytes).expect("unwrap checked the header");
                        arch = Some(arch_for_kernel(
                            arch, registry, p, id.machine, id.is_64, id.little,
                        )?);
                        let map_path =
                            system_map_for(p, opts.system_map.as_deref()).ok_or_else(|| {
                                bad(format!(
                            "a raw Image has no ELF headers: its export table is found through the \
                             kernel's System.map; pass --system-map FILE (none beside {})",
                            p.display()
                        ))
                            })?;
                        let text = std::fs::read_to_string(&map_path).map_err(|source| {
                            CheckError::ReadVmlinux {
                                path: map_path.clone(),
                                source,
                            }
                        })?;
                        let map = image::parse_system_map(&text);
                        let elf = image::map_raw(&bytes, &map, id)
                            .map_err(|m| bad(format!("{}: {m}", map_path.display())))?;
                        unpacked.push(format!("raw Image mapped through {}", map_path.display()));
                        ExportTable::from_vmlinux(&elf, arch.map(|a| a.elf.ksymtab)).map_err(
                            |source| CheckError::Vmlinux {
                                path: p.clone(),
                                source,
                            },
                        )?
                    }
                };
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
        Ok((table, kernel_path, unpacked, arch))
    };
    if arch.is_none() {
        arch = infer_arch_from_modules(&paths, registry);
    }
    let load_modules = |a: &ArchDescriptor| -> Vec<ModuleInput> {
        paths.par_iter().map(|p| load_module(p, a)).collect()
    };
    let (kernel, early) = match arch {
        Some(guess) => {
            let (k, m) = rayon::join(load_kernel, || load_modules(guess));
            (k, Some((guess, m)))
        }
        None => (load_kernel(), None),
    };
    let (mut table, kernel_path, unpacked, kernel_arch) = kernel?;
    let arch = kernel_arch.or(arch).ok_or_else(|| {
        CheckError::Usage(
            "cannot tell the architecture: no vmlinux and no readable module; pass --arch NAME"
                .into(),
        )
    })?;
    // The modules were read for the architecture they announced; the kernel's decides.
    let modules = match early {
        Some((guess, m)) if std::ptr::eq(guess, arch) => m,
        _ => load_modules(arch),
    };
    let mut notes = notes;
    if table.vermagic.is_none() && !opts.own_modules.is_empty() {
        let own = |p: &str| opts.own_modules.iter().any(|o| Path::new(p).starts_with(o));
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for m in modules.iter().filter(|m| own(&m.path)) {
            if let Some(v) = m.facts.as_ref().ok().and_then(|f| f.vermagic.as_deref()) {
                *count.entry(v).or_default() += 1;
            }
        }
        if let Some((v, n)) = count.into_iter().max_by_key(|&(_, n)| n) {
            notes.push(format!(
                "the kernel's vermagic `{}` is taken from its own modules ({n} of them): \
                 Module.symvers does not carry it",
                v.trim()
            ));
            table.vermagic = Some(v.to_string());
        }
    }
    let module_facts: Vec<&ModuleFacts> = modules
        .iter()
        .filter_map(|m| m.facts.as_ref().ok())
        .collect();
    let mut problems = check_export_table(&table, symvers.as_ref(), &module_facts);
    if table.source == ExportSource::Symvers {
        problems.retain(|p| p.kind != super::ExportProblemKind::SymversMismatch);
    }
    let mut reports = predict(&table, arch, &modules, opts.policy, opts.providers);
    reports.extend(shadowed.iter().map(shadowed_report));
    // Failing modules first, then by name: the order a person reads.
    reports.sort_by(|a, b| (!a.failed(), &a.name, &a.path).cmp(&(!b.failed(), &b.name, &b.path)));

    let export_errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let report = CheckReport {
        schema: CHECK_SCHEMA.into(),
        arch: arch.name.clone(),
        policy: opts.policy,
        kernel: KernelInfo {
            source: table.source,
            path: kernel_path,
            unpacked,
            release: table.release.clone(),
            vermagic: table.vermagic.clone(),
            modversions: table.modversions,
            symvers: opts.symvers.as_ref().map(|p| p.display().to_string()),
        },
        exports: ExportsReport {
            count: table.count(),
            gpl: table.gpl_count(),
            consistent: export_errors == 0,
            verified: match (table.source, table.modversions) {
                (ExportSource::Symvers, _) => Verified::SymversOnly,
                (_, false) => Verified::NamesOnly,
                (_, true) => Verified::CrcSlots,
            },
            problems: problems.clone(),
        },
        summary: Summary::of(&reports, export_errors, problems.len() - export_errors),
        modules: reports,
        notes,
    };
    Ok(Checked {
        report,
        table,
        modules,
        shadowed,
        symvers,
    })
}

/// A file another file of its name takes precedence over: not checked, named with the one
/// that loads instead.
pub fn shadowed_report(s: &crate::depmod::Shadowed) -> ModuleReport {
    ModuleReport {
        name: crate::depmod::name(&s.path),
        path: s.path.display().to_string(),
        verdict: Verdict::Shadowed,
        problems: vec![Problem::new(Verdict::Shadowed, shadowed_detail(s)).warning()],
        uses: vec![],
    }
}

/// "shadowed by FILE: why; …", one wording for check and boot.
pub fn shadowed_detail(s: &crate::depmod::Shadowed) -> String {
    format!(
        "shadowed by {}: {}. modprobe loads that file; the kernel refuses a second module of \
         one name (\"module already loaded\")",
        s.by.display(),
        s.why
    )
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

/// The descriptor for a kernel's ELF identity: `--arch` must agree with it, else it is
/// looked up by `e_machine`, class and byte order.
fn arch_for_kernel<'r>(
    given: Option<&'r ArchDescriptor>,
    registry: &'r ArchRegistry,
    path: &Path,
    machine: u16,
    is_64: bool,
    little: bool,
) -> Result<&'r ArchDescriptor, CheckError> {
    let what = format!(
        "{} ({}-bit, {}-endian)",
        crate::elf::machine_name(machine),
        if is_64 { 64 } else { 32 },
        if little { "little" } else { "big" }
    );
    match given {
        Some(a) if !a.accepts_elf(machine, is_64, little) => Err(CheckError::Usage(format!(
            "{}: the kernel is {what}, not {}: drop --arch or pick the right one",
            path.display(),
            a.name
        ))),
        Some(a) => Ok(a),
        None => registry.by_elf(machine, is_64, little).ok_or_else(|| {
            CheckError::Usage(format!(
                "{}: no architecture descriptor for {what}: add one under arches/ (see arches/README.md) or pass --arch",
                path.display()
            ))
        }),
    }
}

/// Why a file named as a module PATH is something else (a kernel, a Module.symvers), so the
/// mistake is named instead of becoming a `malformed` module.
fn not_a_module(p: &Path) -> Option<String> {
    use std::io::Read;
    if input::is_module_name(p) {
        return None;
    }
    let mut head = [0u8; 512];
    let n = std::fs::File::open(p).ok()?.read(&mut head).ok()?;
    let head = &head[..n];
    if head.starts_with(b"\x7fELF") {
        let e_type = goblin::elf::Elf::parse_header(head).ok()?.e_type;
        if e_type == goblin::elf::header::ET_EXEC || e_type == goblin::elf::header::ET_DYN {
            return Some(
                "this is a kernel (an ELF executable), not a module: pass it as --vmlinux".into(),
            );
        }
        return None;
    }
    if memchr::memmem::find(head, b"\tEXPORT_SYMBOL").is_some() {
        return Some("this is a Module.symvers, not a module: pass it as --symvers".into());
    }
    if head.get(0x202..0x206) == Some(b"HdrS") || head.starts_with(b"MZ") {
        return Some("this is a kernel image, not a module: pass it as --vmlinux".into());
    }
    None
}

/// System.map beside an image: `System.map`, or `System.map-VERSION` for `vmlinuz-VERSION`
/// (the /boot layout).
fn system_map_for(image: &Path, given: Option<&Path>) -> Option<PathBuf> {
    if let Some(g) = given {
        return Some(g.to_path_buf());
    }
    let dir = image.parent().unwrap_or(Path::new("."));
    let name = image.file_name()?.to_string_lossy().into_owned();
    let mut candidates = vec![dir.join("System.map")];
    for prefix in ["vmlinuz-", "vmlinux-", "Image-"] {
        if let Some(v) = name.strip_prefix(prefix) {
            candidates.push(dir.join(format!("System.map-{v}")));
        }
    }
    candidates.into_iter().find(|c| c.is_file())
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

crate::failure::classified_by_own_kind!(CheckError);
