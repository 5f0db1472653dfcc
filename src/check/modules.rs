//! Per-module prediction, in the order of the kernel's `load_module()` (6.1):
//! ELF identity, module_layout, vermagic, exports without CRCs, then every undefined symbol
//! (unknown, GPL-only, CRC against `kcrctab[index]`, missing version, namespace), then
//! duplicate exports; finally modules whose providers fail get `dependency_failed`.
use super::{ModuleReport, Problem, Verdict};
use crate::arch::ArchDescriptor;
use crate::elf::exports::{ExportTable, TableKind};
use crate::elf::module::{ElfIdentity, ModuleExport};
use crate::elf::ModuleFacts;
use std::collections::HashMap;

/// What the kernel does when a module has no version entry for a symbol it imports.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Mainline: "no symbol version" is printed once and the symbol is accepted.
    Upstream,
    /// Debian's "module: Disable matching missing version CRC": the symbol is rejected. The
    /// default, of the library and of every command (`default_value_t = Policy::default()`):
    /// the stricter of the two, and the kernels modverify builds and reads are Debian's.
    #[default]
    Debian,
}

/// One module file as the checker receives it.
#[derive(Clone)]
pub struct ModuleInput {
    pub path: String,
    /// The file's own fallback name (depmod's: up to the first `.`, `-` as `_`).
    pub stem: String,
    pub facts: Result<ModuleFacts, Problem>,
}

impl ModuleInput {
    /// The module's name as the kernel knows it: `.modinfo`'s `name=`, else the file's.
    pub fn name(&self) -> String {
        self.facts
            .as_ref()
            .ok()
            .and_then(|f| f.name.clone())
            .unwrap_or_else(|| self.stem.clone())
    }
}

/// Licences `include/linux/license.h` treats as GPL-compatible (exact match).
const GPL_COMPATIBLE: [&str; 6] = [
    "GPL",
    "GPL v2",
    "GPL and additional rights",
    "Dual BSD/GPL",
    "Dual MIT/GPL",
    "Dual MPL/GPL",
];

/// A provider of a symbol among the modules being checked.
struct Provider<'a> {
    module: usize,
    export: &'a ModuleExport,
    has_crcs: bool,
}

pub fn wrong_arch_problem(id: &ElfIdentity, arch: &ArchDescriptor) -> Option<Problem> {
    if arch.accepts_elf(id.machine, id.is_64, id.little) {
        return None;
    }
    let what = format!(
        "module is ELF{} {}-endian {}, the kernel is {} (ELF{} {}-endian {})",
        if id.is_64 { 64 } else { 32 },
        if id.little { "little" } else { "big" },
        crate::elf::machine_name(id.machine),
        arch.name,
        arch.elf.class,
        if arch.elf.endian == crate::arch::Endian::Little {
            "little"
        } else {
            "big"
        },
        crate::elf::machine_name(arch.elf.machine)
    );
    // The first check of elf_validity_check that fails, as the kernel would report it.
    let msg = if id.little != (arch.elf.endian == crate::arch::Endian::Little) {
        format!("Invalid ELF header type: {} != 1", id.e_type.swap_bytes())
    } else if id.machine != arch.elf.machine && !arch.elf.also_machines.contains(&id.machine) {
        format!("Invalid architecture in ELF header: {}", id.machine)
    } else {
        "Invalid ELF section header size".to_string()
    };
    Some(Problem::new(Verdict::WrongArch, what).says(msg))
}

/// What, besides the kernel and the modules given, may provide a module's symbols.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Providers {
    /// Also the modules Module.symvers names that are not among those given: a system that
    /// has them loads them first (`check`: a warning, not a failure).
    #[default]
    WithSymversModules,
    /// The modules given and no others: they are all there is (a boot loads exactly these,
    /// so a symbol only another module exports is unknown to the kernel).
    GivenOnly,
}

/// Predicts the kernel's verdict for every module.
pub fn predict(
    kernel: &ExportTable,
    arch: &ArchDescriptor,
    modules: &[ModuleInput],
    policy: Policy,
    providers: Providers,
) -> Vec<ModuleReport> {
    predict_set(kernel, arch, modules, modules.len(), policy, providers)
}

/// [`predict`] where only the first `providing` modules export symbols to the others: the
/// rest are judged one by one against the kernel and those modules, as each would load into
/// a system that has them (`modverify diff`: modules built for one kernel against another
/// kernel's own modules, none of them providing to each other).
pub fn predict_providing(
    kernel: &ExportTable,
    arch: &ArchDescriptor,
    modules: &[ModuleInput],
    providing: usize,
    policy: Policy,
) -> Vec<ModuleReport> {
    predict_set(
        kernel,
        arch,
        modules,
        providing,
        policy,
        Providers::WithSymversModules,
    )
}

fn predict_set(
    kernel: &ExportTable,
    arch: &ArchDescriptor,
    modules: &[ModuleInput],
    providing: usize,
    policy: Policy,
    others: Providers,
) -> Vec<ModuleReport> {
    // Symbols exported by the providing modules, in input order.
    let mut providers: HashMap<&str, Vec<Provider<'_>>> = HashMap::new();
    for (i, m) in modules.iter().enumerate().take(providing) {
        if let Ok(f) = &m.facts {
            for e in &f.exports {
                let has_crcs = f.has_kcrctab[e.table as usize];
                providers
                    .entry(e.name.as_str())
                    .or_default()
                    .push(Provider {
                        module: i,
                        export: e,
                        has_crcs,
                    });
            }
        }
    }
    let mut reports = Vec::with_capacity(modules.len());
    let mut uses: Vec<Vec<usize>> = Vec::with_capacity(modules.len());
    for (i, m) in modules.iter().enumerate() {
        let (report, used) = match &m.facts {
            Err(p) => (
                ModuleReport {
                    name: m.stem.clone(),
                    path: m.path.clone(),
                    verdict: p.kind,
                    problems: vec![p.clone()],
                    uses: vec![],
                },
                vec![],
            ),
            Ok(f) => check_one(i, modules, f, kernel, arch, (&providers, others), policy),
        };
        reports.push(report);
        uses.push(used);
    }
    for (r, used) in reports.iter_mut().zip(&uses) {
        r.uses = used.iter().map(|&j| module_name(&modules[j])).collect();
    }
    propagate_dependency_failures(&mut reports, &uses);
    reports
}

fn check_one(
    me: usize,
    modules: &[ModuleInput],
    f: &ModuleFacts,
    kernel: &ExportTable,
    arch: &ArchDescriptor,
    // The given modules' exports, and whether Module.symvers' other modules count too.
    (providers, others): (&HashMap<&str, Vec<Provider<'_>>>, Providers),
    policy: Policy,
) -> (ModuleReport, Vec<usize>) {
    let m = &modules[me];
    let name = m.name();
    let mut problems = Vec::new();
    let mut used = Vec::new();
    let done = |problems: Vec<Problem>, used: Vec<usize>| {
        let verdict = problems
            .iter()
            .find(|p| p.fatal)
            .map(|p| p.kind)
            .unwrap_or(Verdict::Ok);
        (
            ModuleReport {
                name: name.clone(),
                path: m.path.clone(),
                verdict,
                problems,
                uses: vec![],
            },
            used,
        )
    };
    if let Some(p) = wrong_arch_problem(&f.identity, arch) {
        return done(vec![p], used);
    }
    if f.identity.e_type != goblin::elf::header::ET_REL {
        let p = Problem::new(
            Verdict::Malformed,
            format!(
                "ELF type {} is not a relocatable object (ET_REL)",
                f.identity.e_type
            ),
        )
        .says(format!(
            "Invalid ELF header type: {} != 1",
            f.identity.e_type
        ));
        return done(vec![p], used);
    }
    if !f.has_symtab {
        return done(
            vec![
                Problem::new(Verdict::Malformed, "the module has no symbol table")
                    .says(format!("{name}: module has no symbols (stripped?)")),
            ],
            used,
        );
    }
    if !f.has_this_module {
        return done(
            vec![Problem::new(
                Verdict::Malformed,
                "no allocated .gnu.linkonce.this_module section",
            )
            .says(format!("{name}: No module found in object"))],
            used,
        );
    }

    // A module built for another release is the first thing a person should read (a stale
    // DKMS or vendor module, last kernel's): said first, whatever the loader trips on first.
    // Every problem after it is kept too: the verdict is the first the kernel would stop at,
    // and fixing that one would only reveal the next.
    if let (Some(kmagic), Some(mmagic)) = (&kernel.vermagic, &f.vermagic) {
        let release = |s: &str| s.split(' ').next().unwrap_or("").to_string();
        let (mine, theirs) = (release(mmagic), release(kmagic));
        if mine != theirs && !mine.is_empty() {
            problems.push(
                Problem::new(
                    Verdict::BadVermagic,
                    format!(
                        "the module was built for release {mine}; this kernel is {theirs}: \
                         rebuild it for {theirs} (with CRCs the loader does not compare the \
                         release, only each symbol's CRC)"
                    ),
                )
                .warning(),
            );
        }
    }

    // Step 6 of load_module: module_layout, before anything else.
    if kernel.modversions {
        if let Some(l) = kernel.lookup("module_layout") {
            if let Some(p) = version_problem(&name, f, "module_layout", l.crc, policy, "kernel") {
                problems.push(p);
            }
        }
    }

    // Step 7a: vermagic (same_magic skips UTS_RELEASE when the module carries CRCs).
    if let Some(kmagic) = &kernel.vermagic {
        match &f.vermagic {
            None => {
                problems.push(
                    Problem::new(Verdict::BadVermagic, "the module has no vermagic= in .modinfo; only a forced load (CONFIG_MODULE_FORCE_LOAD) accepts it")
                        .says(format!("{name}: bad vermagic: kernel tainted.")),
                );
            }
            Some(mmagic) => {
                let has_crcs = kernel.modversions && f.versions.is_some();
                let tail = |s: &str| {
                    s.split_once(' ')
                        .map(|(_, t)| t.to_string())
                        .unwrap_or_default()
                };
                let same = if has_crcs {
                    tail(mmagic) == tail(kmagic)
                } else {
                    mmagic == kmagic
                };
                if !same {
                    problems.push(
                        Problem::new(
                            Verdict::BadVermagic,
                            format!(
                                "module vermagic `{mmagic}` differs from the kernel's `{kmagic}`{}",
                                if has_crcs {
                                    " (release ignored: the module has CRCs)"
                                } else {
                                    ""
                                }
                            ),
                        )
                        .says(format!(
                            "{name}: version magic '{mmagic}' should be '{kmagic}'"
                        )),
                    );
                }
            }
        }
    }

    // Step 11: a module exporting symbols without CRC tables is only force-loaded.
    if kernel.modversions {
        for (k, kind) in TableKind::ALL.into_iter().enumerate() {
            if f.exports.iter().any(|e| e.table == kind) && !f.has_kcrctab[k] {
                problems.push(Problem::new(
                    Verdict::MissingVersion,
                    format!(
                        "the module exports {} symbols but has no {}: rejected unless force-loaded",
                        kind.symvers_type(),
                        kind.kcrctab()
                    ),
                ));
            }
        }
    }
    for b in &f.bad_symbols {
        problems.push(Problem::new(Verdict::Malformed, b.clone()).says(format!("{name}: {b}")));
    }

    // Step 13: simplify_symbols — every undefined symbol, all of them, in symtab order.
    let gplok = f
        .license
        .as_deref()
        .is_some_and(|l| GPL_COMPATIBLE.contains(&l));
    for u in &f.undefined {
        let sym = u.name.as_str();
        let from_kernel = kernel.lookup(sym).filter(|l| gplok || !l.gpl_only);
        let from_module = providers.get(sym).and_then(|ps| {
            ps.iter()
                .find(|p| p.module != me && (gplok || !p.export.gpl_only))
        });
        let (crc, namespace, owner) = match (from_kernel, from_module) {
            (Some(l), _) => (l.crc, l.namespace.map(str::to_string), "kernel".to_string()),
            (None, Some(p)) => {
                used.push(p.module);
                // Without CONFIG_MODVERSIONS the loader checks no versions at all.
                let crc = (kernel.modversions && p.has_crcs).then_some(p.export.crc);
                (
                    crc,
                    p.export.namespace.clone(),
                    format!("module {}", module_name(&modules[p.module])),
                )
            }
            (None, None)
                if others == Providers::WithSymversModules
                    && kernel.symvers_module_export(sym, gplok).is_some() =>
            {
                // Exported by a module that is not among those checked: Module.symvers has
                // its CRC; the module has to be loaded first (a note, not a failure).
                let e = kernel.symvers_module_export(sym, gplok).expect("checked");
                problems.push(
                    Problem::new(
                        Verdict::Ok,
                        format!("`{sym}` comes from module {} (Module.symvers), which is not among the modules checked: it must be loaded first", e.module),
                    )
                    .symbol(sym)
                    .warning(),
                );
                (
                    kernel.modversions.then_some(Some(e.crc)),
                    e.namespace.clone(),
                    format!("module {} (per Module.symvers)", e.module),
                )
            }
            (None, None) => {
                if u.weak {
                    continue;
                }
                let hidden_gpl = kernel.lookup(sym).is_some()
                    || providers
                        .get(sym)
                        .is_some_and(|ps| ps.iter().any(|p| p.module != me));
                let p = if hidden_gpl {
                    Problem::new(
                        Verdict::GplOnly,
                        format!(
                            "`{sym}` is EXPORT_SYMBOL_GPL and the module's licence {} is not GPL-compatible",
                            f.license.as_deref().map(|l| format!("'{l}'")).unwrap_or_else(|| "(none)".into())
                        ),
                    )
                } else {
                    Problem::new(
                        Verdict::UnknownSymbol,
                        format!("`{sym}` is exported by neither the kernel nor any module checked"),
                    )
                };
                problems.push(
                    p.symbol(sym)
                        .says(format!("{name}: Unknown symbol {sym} (err -2)")),
                );
                continue;
            }
        };
        if let Some(mut p) = version_problem(&name, f, sym, crc, policy, &owner) {
            if p.fatal {
                p = p.says(format!("{name}: Unknown symbol {sym} (err -22)"));
            }
            problems.push(p);
            if problems.last().is_some_and(|p| p.fatal) {
                continue;
            }
        }
        if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
            if !namespace_granted(&ns, &name, &f.import_ns) {
                let fix = match ns.strip_prefix(MODULE_NS_PREFIX) {
                    Some(list) => format!("`{sym}` is exported only to the modules {list} (EXPORT_SYMBOL_GPL_FOR_MODULES), and this module is `{name}`"),
                    None => format!("`{sym}` is exported in namespace {ns}; the module lacks MODULE_IMPORT_NS({ns})"),
                };
                problems.push(
                    Problem::new(Verdict::Namespace, fix)
                        .symbol(sym)
                        .says(format!("{name}: module uses symbol ({sym}) from namespace {ns}, but does not import it."))
                        .says(format!("{name}: Unknown symbol {sym} (err -22)")),
                );
            }
        }
    }

    // Step 15: exports must not already exist in the kernel.
    for e in &f.exports {
        if kernel.lookup(&e.name).is_some() {
            problems.push(
                Problem::new(
                    Verdict::DuplicateExport,
                    format!(
                        "the module exports `{}`, which vmlinux already exports",
                        e.name
                    ),
                )
                .symbol(&e.name)
                .says(format!(
                    "{name}: exports duplicate symbol {} (owned by kernel)",
                    e.name
                )),
            );
        }
    }
    used.sort_unstable();
    used.dedup();
    done(problems, used)
}

/// The namespace of exports limited to named modules (`EXPORT_SYMBOL_GPL_FOR_MODULES`, 6.18).
const MODULE_NS_PREFIX: &str = "module:";

/// `verify_namespace_is_imported()`: a `module:` namespace is granted by the importing
/// module's own name (comma-separated patterns, a trailing `*` globs, `-` equals `_`);
/// any other by an exact `import_ns=` entry.
fn namespace_granted(ns: &str, module: &str, imports: &[String]) -> bool {
    if let Some(patterns) = ns.strip_prefix(MODULE_NS_PREFIX) {
        if module_matches(module, patterns) {
            return true;
        }
    }
    imports.iter().any(|i| i == ns)
}

/// `module_match()` of kernel/module/main.c, with `mod_strncmp`'s `-`/`_` equivalence.
fn module_matches(module: &str, patterns: &str) -> bool {
    let module = crate::depmod::normalise(module);
    patterns.split(',').filter(|p| !p.is_empty()).any(|p| {
        let p = crate::depmod::normalise(p);
        match p.strip_suffix('*') {
            Some(prefix) => module.starts_with(prefix),
            None => module == p,
        }
    })
}

fn module_name(m: &ModuleInput) -> String {
    m.name()
}

/// `check_version()` of `kernel/module/version.c`. `crc`: `None` when the exporter has no
/// CRC table (accepted), `Some(None)` when the slot is unreadable (a read past the table).
fn version_problem(
    name: &str,
    f: &ModuleFacts,
    sym: &str,
    crc: Option<Option<u32>>,
    policy: Policy,
    owner: &str,
) -> Option<Problem> {
    let crc = crc?;
    if f.versions.is_none() {
        return Some(
            Problem::new(
                Verdict::MissingVersion,
                format!("the module has no __versions section, the kernel has CONFIG_MODVERSIONS: `{sym}` is only accepted by a forced load"),
            )
            .symbol(sym),
        );
    }
    match f.version_of(sym) {
        Some(mine) if crc == Some(mine as u32) && mine <= u32::MAX as u64 => None,
        Some(mine) => Some(
            Problem::new(
                Verdict::CrcMismatch,
                match crc {
                    Some(k) => format!("the module was built against `{sym}` with CRC {mine:#010x}; the {owner} has {k:#010x} in that symbol's CRC slot"),
                    None => format!("the module expects CRC {mine:#010x} for `{sym}`; the kernel's slot for it lies past its CRC table"),
                },
            )
            .symbol(sym)
            .crcs(Some(mine), crc.map(u64::from))
            .says(format!("{name}: disagrees about version of symbol {sym}")),
        ),
        None => {
            let p = Problem::new(Verdict::MissingVersion, format!("no __versions entry for `{sym}`"))
                .symbol(sym)
                .crcs(None, crc.map(u64::from))
                .says(format!("{name}: no symbol version for {sym}"));
            Some(match policy {
                Policy::Debian => p,
                Policy::Upstream => {
                    let mut p = p.warning();
                    p.detail += " (upstream kernels warn once and accept it; Debian's reject it)";
                    p
                }
            })
        }
    }
}

/// A module whose provider fails cannot load either (its symbols stay unresolved).
fn propagate_dependency_failures(reports: &mut [ModuleReport], uses: &[Vec<usize>]) {
    loop {
        let mut changed = false;
        for i in 0..reports.len() {
            if reports[i].failed() {
                continue;
            }
            if let Some(&j) = uses[i].iter().find(|&&j| reports[j].failed()) {
                let (dep, why) = (reports[j].name.clone(), reports[j].verdict.as_str());
                reports[i].problems.push(Problem::new(
                    Verdict::DependencyFailed,
                    format!("uses symbols from `{dep}`, which fails to load ({why})"),
                ));
                reports[i].verdict = Verdict::DependencyFailed;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_namespaces_are_granted_by_name_like_the_loader() {
        let none: Vec<String> = vec![];
        assert!(namespace_granted(
            "module:kvm,kvm-amd,kvm-intel",
            "kvm_amd",
            &none
        ));
        assert!(namespace_granted(
            "module:kvm,kvm-amd,kvm-intel",
            "kvm",
            &none
        ));
        assert!(!namespace_granted(
            "module:kvm,kvm-amd,kvm-intel",
            "kvm_amd2",
            &none
        ));
        assert!(!namespace_granted("module:kvm", "kv", &none));
        assert!(namespace_granted("module:snd-*", "snd_hda_intel", &none));
        assert!(!namespace_granted("module:snd-*", "sn", &none));
        assert!(!namespace_granted("CXL", "cxl_pci", &none));
        assert!(namespace_granted("CXL", "cxl_pci", &["CXL".to_string()]));
        assert!(!namespace_granted("module:autofs4", "nfs", &none));
    }
}
