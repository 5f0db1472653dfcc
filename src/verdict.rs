//! Guest results → verdicts: what the running kernel said about each module, the running
//! export table against the static one, and each runtime verdict against the static
//! prediction. Every disagreement is a finding of its own: that is how a loader bug is told
//! from a build bug.
use crate::check::{ModuleReport, Verdict};
use crate::elf::exports::{ExportTable, TableKind};
use crate::qemu::{Fate, GuestModule, GuestRun};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeVerdict {
    Loaded,
    CrcMismatch,
    MissingVersion,
    UnknownSymbol,
    GplOnly,
    Namespace,
    BadVermagic,
    /// Versioning passed; the module's own init returned an error.
    InitFailed,
    /// Linked, then its init found nothing to drive: the hardware, firmware or platform
    /// feature is not in this QEMU machine (ENODEV, ENXIO, ENOENT without an unknown symbol,
    /// EOPNOTSUPP/ENOTSUPP, ENOSYS, EPROBE_DEFER). What the loader checks, it passed; not a
    /// failure of the module, and it agrees with a static `ok`.
    NoDevice,
    Crashed,
    Hung,
    /// A module it depends on failed, so it could not load either.
    Skipped,
    /// No result arrived (the guest never got to it).
    NotRun,
    /// Another file of the same module name is the one modprobe loads (depmod's order); this
    /// one was not tried.
    Shadowed,
}

impl RuntimeVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeVerdict::Loaded => "loaded",
            RuntimeVerdict::CrcMismatch => "crc_mismatch",
            RuntimeVerdict::MissingVersion => "missing_version",
            RuntimeVerdict::UnknownSymbol => "unknown_symbol",
            RuntimeVerdict::GplOnly => "gpl_only",
            RuntimeVerdict::Namespace => "namespace",
            RuntimeVerdict::BadVermagic => "bad_vermagic",
            RuntimeVerdict::InitFailed => "init_failed",
            RuntimeVerdict::NoDevice => "no_device",
            RuntimeVerdict::Crashed => "crashed",
            RuntimeVerdict::Hung => "hung",
            RuntimeVerdict::Skipped => "skipped",
            RuntimeVerdict::NotRun => "not_run",
            RuntimeVerdict::Shadowed => "shadowed",
        }
    }

    /// What this verdict is to a CI report; every renderer takes it from here.
    pub fn outcome(self) -> Outcome {
        use RuntimeVerdict as R;
        match self {
            R::Loaded => Outcome::Pass,
            R::CrcMismatch
            | R::MissingVersion
            | R::UnknownSymbol
            | R::GplOnly
            | R::Namespace
            | R::BadVermagic
            | R::InitFailed => Outcome::Fail,
            R::NoDevice => Outcome::Absent,
            R::Crashed | R::Hung => Outcome::Error,
            R::Skipped => Outcome::Skip,
            R::NotRun => Outcome::Miss,
            R::Shadowed => Outcome::Shadowed,
        }
    }

    /// The module was tried and did not load (not counting modules never tried):
    /// [`Outcome::is_failure`].
    pub fn failed(self) -> bool {
        self.outcome().is_failure()
    }
}

pub use crate::outcome_kind::Outcome;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleOutcome {
    #[serde(default)]
    pub index: usize,
    pub name: String,
    #[serde(default)]
    pub path: String,
    pub verdict: RuntimeVerdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// The errno by name, as the guest's C library spells it (numbers differ between arches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno_name: Option<String>,
    /// The kernel's messages for this module, as it printed them.
    #[serde(default)]
    pub kernel_messages: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_micros: Option<u64>,
    /// `None`: not attempted (the module did not load, or the run stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unloaded: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unload_errno: Option<i32>,
    /// Unloading it crashed the kernel (console lines in `console_excerpt`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub unload_crashed: bool,
    /// The static prediction for the same file, if a static export table was available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<Verdict>,
    /// Missing in a hand-written results.json: nothing to disagree with.
    #[serde(default = "yes")]
    pub agrees: bool,
    /// Why a `not_run` module was not tried (the guest died first: one reason for all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console_excerpt: Vec<String>,
    /// The later tries of a module whose first try failed (`--retries`), each in a fresh
    /// guest with what it needs; `verdict` and the fields above are the first try's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<Try>,
}

/// One more try of a module, in a fresh guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Try {
    pub verdict: RuntimeVerdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_name: Option<String>,
    #[serde(default)]
    pub kernel_messages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_micros: Option<u64>,
}

impl Try {
    pub fn of(o: &ModuleOutcome) -> Self {
        Try {
            verdict: o.verdict,
            errno_name: o.errno_name.clone(),
            kernel_messages: o.kernel_messages.clone(),
            load_micros: o.load_micros,
        }
    }
}

fn yes() -> bool {
    true
}

impl ModuleOutcome {
    /// Not loaded, or loaded and then refused to unload, or never tried
    /// ([`Outcome::not_known_to_work`]; a summary's `failed` is [`RuntimeVerdict::failed`],
    /// which leaves `not_run` to its own count). A flaky module is not: its tries disagree,
    /// so no verdict stands (nextest's convention: it is listed apart, with every try).
    pub fn not_known_to_work(&self) -> bool {
        (self.verdict.outcome().not_known_to_work() && !self.flaky()) || self.unload_failed()
    }

    /// Tried again, and a try came out otherwise than the first.
    pub fn flaky(&self) -> bool {
        self.retries.iter().any(|t| t.verdict != self.verdict)
    }

    /// Tried again, and every try came out as the first: the failure stands.
    pub fn reproduced(&self) -> bool {
        !self.retries.is_empty() && !self.flaky()
    }

    /// Whether its first try is one a fresh guest may answer otherwise: its load failed,
    /// hung or took the guest down, or what it needs did (then it comes along). Never a
    /// module already seen to be flaky.
    pub fn worth_another_try(&self) -> bool {
        !self.flaky()
            && !matches!(
                self.verdict,
                RuntimeVerdict::Loaded
                    | RuntimeVerdict::NoDevice
                    | RuntimeVerdict::Shadowed
                    | RuntimeVerdict::NotRun
            )
    }

    pub fn unload_failed(&self) -> bool {
        self.unloaded == Some(false)
    }

    /// The verdict with a failed unload spelled out, as reports show it.
    pub fn shown_verdict(&self) -> String {
        if self.flaky() {
            let later: Vec<&str> = self.retries.iter().map(|t| t.verdict.as_str()).collect();
            format!(
                "flaky: {}, then {}",
                self.verdict.as_str(),
                later.join(", then ")
            )
        } else if self.reproduced() {
            format!(
                "{} (reproduced in {} tries)",
                self.verdict.as_str(),
                self.retries.len() + 1
            )
        } else if self.unload_crashed {
            format!(
                "{}, unloading it took the kernel down",
                self.verdict.as_str()
            )
        } else if self.verdict == RuntimeVerdict::Loaded && self.unload_failed() {
            "loaded, unload failed".into()
        } else {
            self.verdict.as_str().into()
        }
    }

    /// What the module's result is to a CI report (a failed unload fails a loaded module;
    /// an unload that took the kernel down is the kernel dying).
    pub fn outcome(&self) -> Outcome {
        match self.verdict.outcome() {
            _ if self.flaky() => Outcome::Flaky,
            _ if self.unload_crashed => Outcome::Error,
            Outcome::Pass if self.unload_failed() => Outcome::Fail,
            o => o,
        }
    }
}

/// The symbol named in a kernel message after `marker`, up to the next space or `(`.
fn symbol_after<'a>(msg: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &msg[msg.find(marker)? + marker.len()..];
    Some(rest.split([' ', ')', '(']).next().unwrap_or(rest)).filter(|s| !s.is_empty())
}

/// What a driver's init returns when what it drives is not there (the loader's own refusals
/// were told apart before: an unknown symbol is ENOENT too, with the kernel's message).
const ABSENT_HARDWARE: &[&str] = &[
    "ENODEV",
    "ENXIO",
    "ENOENT",
    "EOPNOTSUPP",
    "ENOTSUPP",
    "ENOSYS",
    "EPROBE_DEFER",
];

/// Classifies one guest result from its return value, errno and the kernel's messages.
pub fn classify(m: &GuestModule, failed_deps: bool) -> (RuntimeVerdict, Option<String>) {
    match m.fate {
        Some(Fate::Crashed) => return (RuntimeVerdict::Crashed, None),
        Some(Fate::Hung) => return (RuntimeVerdict::Hung, None),
        None => {}
    }
    let Some(ret) = m.ret else {
        return (RuntimeVerdict::NotRun, None);
    };
    if ret == 0 {
        return (RuntimeVerdict::Loaded, None);
    }
    let msgs: Vec<&str> = m.kmsg.iter().map(|(_, t)| t.as_str()).collect();
    let find = |marker: &str| {
        msgs.iter()
            .find_map(|t| symbol_after(t, marker).map(str::to_string))
    };
    if let Some(s) = find("disagrees about version of symbol ") {
        return (RuntimeVerdict::CrcMismatch, Some(s));
    }
    if let Some(s) = find("no symbol version for ") {
        return (RuntimeVerdict::MissingVersion, Some(s));
    }
    if let Some(s) = find("module uses symbol (") {
        return (RuntimeVerdict::Namespace, Some(s));
    }
    if msgs.iter().any(|t| t.contains("version magic")) {
        return (RuntimeVerdict::BadVermagic, None);
    }
    if let Some(s) = find("Unknown symbol ") {
        return (
            if failed_deps {
                RuntimeVerdict::Skipped
            } else {
                RuntimeVerdict::UnknownSymbol
            },
            Some(s),
        );
    }
    if failed_deps {
        return (RuntimeVerdict::Skipped, None);
    }
    if m.errno_name
        .as_deref()
        .is_some_and(|e| ABSENT_HARDWARE.contains(&e))
    {
        return (RuntimeVerdict::NoDevice, None);
    }
    (RuntimeVerdict::InitFailed, None)
}

/// Whether a runtime verdict is what the static prediction said.
pub fn agrees(predicted: Verdict, runtime: RuntimeVerdict) -> bool {
    use RuntimeVerdict as R;
    match predicted {
        // The loader accepted it; what its init then did is a failure of its own, not of the
        // prediction (which is about the loader's checks).
        // Skipped: a module it needs failed at run time; that module's own verdict says
        // whether its failure was predicted, this one's linkage is not in question.
        Verdict::Ok => matches!(
            runtime,
            R::Loaded | R::InitFailed | R::NoDevice | R::Crashed | R::Hung | R::Skipped
        ),
        Verdict::CrcMismatch => runtime == R::CrcMismatch,
        Verdict::MissingVersion => {
            matches!(runtime, R::MissingVersion | R::InitFailed | R::NoDevice)
        }
        // A GPL-only export hidden from a proprietary module is just "Unknown symbol" to the kernel.
        Verdict::UnknownSymbol | Verdict::GplOnly => {
            matches!(runtime, R::UnknownSymbol | R::GplOnly)
        }
        Verdict::Namespace => runtime == R::Namespace,
        Verdict::BadVermagic => runtime == R::BadVermagic,
        Verdict::DependencyFailed => matches!(runtime, R::Skipped | R::UnknownSymbol),
        Verdict::DuplicateExport | Verdict::Malformed | Verdict::WrongArch => {
            !matches!(runtime, R::Loaded)
        }
        Verdict::Shadowed => runtime == R::Shadowed,
    }
}

/// A difference between the running kernel's export table and the static one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableDifference {
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TableComparison {
    pub runtime_exports: usize,
    pub static_exports: usize,
    pub equal: bool,
    /// What was compared, in words: which tables and which fields of each entry.
    pub compared: String,
    pub differences: Vec<TableDifference>,
}

/// One export as the static side describes it, at the index the kernel uses.
struct StaticEntry<'a> {
    name: &'a str,
    namespace: Option<&'a str>,
    crc: Option<u32>,
    /// GPL-only, where the ELF reading tells (a `_gpl` table, or a flags byte).
    gpl: Option<bool>,
}

/// One runtime table and the static entries it is compared with.
struct View<'a> {
    /// Key of the runtime table (`ksymtab`, `ksymtab_gpl`).
    key: &'static str,
    ksymtab: &'static str,
    kcrctab: &'static str,
    entries: Vec<StaticEntry<'a>>,
    crc_slots: usize,
}

fn entries_of(t: &crate::elf::exports::KsymTable, gpl: Option<bool>) -> Vec<StaticEntry<'_>> {
    (0..t.names.len())
        .map(|i| StaticEntry {
            name: &t.names[i],
            namespace: t.namespaces.get(i).and_then(|n| n.as_deref()),
            crc: t.effective_crcs.get(i).copied().flatten(),
            gpl,
        })
        .collect()
}

/// The static tables in the shape the running kernel has them: 7.1+ (`__kflagstab` at run
/// time) has one `__ksymtab` holding the GPL-only exports too, flagged; older kernels have a
/// table per kind (those absent on both sides are skipped: `_gpl_future` before 5.12, …).
fn static_views<'a>(run: &GuestRun, table: &'a ExportTable) -> Vec<View<'a>> {
    let flagged = run
        .tables
        .get("ksymtab")
        .is_some_and(|t| t.flag_bytes.is_some());
    if flagged {
        let t = table.table(TableKind::Normal);
        let mut entries = entries_of(t, None);
        if table.flagstab {
            for (i, e) in entries.iter_mut().enumerate() {
                e.gpl = Some(t.gpl_only(TableKind::Normal, i));
            }
        }
        return vec![View {
            key: "ksymtab",
            ksymtab: "__ksymtab",
            kcrctab: "__kcrctab",
            entries,
            crc_slots: t.crc_slots.len(),
        }];
    }
    TableKind::ALL
        .iter()
        .filter(|&&kind| {
            let key = kind.ksymtab().trim_start_matches("__");
            !table.table(kind).names.is_empty() || run.tables.contains_key(key)
        })
        .map(|&kind| View {
            key: match kind {
                TableKind::Normal => "ksymtab",
                TableKind::Gpl => "ksymtab_gpl",
                TableKind::GplFuture => "ksymtab_gpl_future",
                TableKind::Unused => "ksymtab_unused",
                TableKind::UnusedGpl => "ksymtab_unused_gpl",
            },
            ksymtab: kind.ksymtab(),
            kcrctab: kind.kcrctab(),
            entries: entries_of(table.table(kind), Some(kind.gpl_only())),
            crc_slots: table.table(kind).crc_slots.len(),
        })
        .collect()
}

/// Compares every runtime entry (name, namespace, CRC slot, GPL flag) with the static table.
pub fn compare_tables(run: &GuestRun, table: &ExportTable) -> TableComparison {
    let mut differences = Vec::new();
    let mut runtime_exports = 0;
    // What the static side was read from, for every sentence below.
    let src = match table.source {
        crate::elf::exports::ExportSource::Vmlinux => "the ELF",
        crate::elf::exports::ExportSource::Symvers => "Module.symvers",
    };
    let views = static_views(run, table);
    let mut tables_compared: Vec<String> = Vec::new();
    let mut flags_compared = false;
    let mut flags_unknown = false;
    for v in &views {
        let Some(rt) = run.tables.get(v.key) else {
            let why = run
                .table_notes
                .iter()
                .find(|n| n.starts_with(&format!("{} ", v.key)) || n.starts_with("kcore"))
                .map(|n| format!(" (the agent said: {n})"))
                .unwrap_or_default();
            differences.push(TableDifference {
                table: v.ksymtab.into(),
                index: None,
                detail: format!("the guest sent no runtime table{why}"),
            });
            continue;
        };
        runtime_exports += rt.exports.len();
        tables_compared.push(format!("{} ({} entries)", v.ksymtab, rt.entries));
        if rt.entries != v.entries.len() || rt.exports.len() != v.entries.len() {
            differences.push(TableDifference {
                table: v.ksymtab.into(),
                index: None,
                detail: format!(
                    "{} entries at run time ({} received), {} in {src}",
                    rt.entries,
                    rt.exports.len(),
                    v.entries.len()
                ),
            });
        }
        if table.modversions && rt.crc_slots != v.crc_slots {
            differences.push(TableDifference {
                table: v.kcrctab.into(),
                index: None,
                detail: format!(
                    "{} CRC slots at run time, {} in {src}",
                    rt.crc_slots, v.crc_slots
                ),
            });
        }
        for d in &rt.name_digests {
            let mut bytes = Vec::new();
            for e in v.entries.iter().skip(d.start).take(d.len) {
                bytes.extend_from_slice(e.name.as_bytes());
                bytes.push(0);
                bytes.extend_from_slice(e.namespace.unwrap_or("").as_bytes());
                bytes.push(0);
            }
            if crate::qemu::console::crc32(&bytes) != d.crc {
                differences.push(TableDifference {
                    table: v.ksymtab.into(),
                    index: Some(d.start),
                    detail: format!(
                        "entries {}..{}: names or namespaces differ from the ELF's (is this vmlinux the running kernel?)",
                        d.start,
                        d.start + d.len
                    ),
                });
            }
        }
        for e in &rt.exports {
            let i = e.index;
            let Some(st) = v.entries.get(i) else {
                differences.push(TableDifference {
                    table: v.ksymtab.into(),
                    index: Some(i),
                    detail: format!("runtime entry {i} has no static counterpart"),
                });
                continue;
            };
            let name = st.name;
            if let Some(rname) = &e.name {
                if name != rname {
                    differences.push(TableDifference {
                        table: v.ksymtab.into(),
                        index: Some(i),
                        detail: format!("entry {i}: `{rname}` at run time, `{name}` in {src}"),
                    });
                }
                if st.namespace != e.namespace.as_deref() {
                    differences.push(TableDifference {
                        table: v.ksymtab.into(),
                        index: Some(i),
                        detail: format!(
                            "entry {i} `{name}`: namespace {:?} at run time, {:?} in {src}",
                            e.namespace, st.namespace
                        ),
                    });
                }
            }
            if table.modversions && e.crc != st.crc {
                differences.push(TableDifference {
                    table: v.kcrctab.into(),
                    index: Some(i),
                    detail: format!(
                        "slot {i} `{name}`: {:?} at run time, {:?} in {src}",
                        e.crc.map(|c| format!("{c:#010x}")),
                        st.crc.map(|c| format!("{c:#010x}"))
                    ),
                });
            }
        }
        if let Some(n) = rt.flag_bytes {
            if n != rt.entries {
                differences.push(TableDifference {
                    table: "__kflagstab".into(),
                    index: None,
                    detail: format!(
                        "{n} flag bytes for {} __ksymtab entries at run time",
                        rt.entries
                    ),
                });
            }
            for (i, st) in v.entries.iter().enumerate() {
                let rflag = rt.flags.get(i).copied().flatten();
                let Some(sgpl) = st.gpl else {
                    flags_unknown = true;
                    continue;
                };
                flags_compared = true;
                // The running kernel's flag byte, read by the one rule (its table is the
                // merged __ksymtab: GPL-only by the flag alone).
                let rgpl = rflag.map(|f| {
                    crate::elf::exports::gpl_only(crate::elf::exports::TableKind::Normal, Some(f))
                });
                if rgpl != Some(sgpl) {
                    differences.push(TableDifference {
                        table: "__kflagstab".into(),
                        index: Some(i),
                        detail: format!(
                            "entry {i} `{}`: {} at run time, {} in {src}",
                            st.name,
                            match rgpl {
                                Some(true) => "GPL-only",
                                Some(false) => "not GPL-only",
                                None => "no flags byte",
                            },
                            if sgpl { "GPL-only" } else { "not GPL-only" }
                        ),
                    });
                }
            }
        }
    }
    // Said in words, so a reader knows what "equal" covers on this kernel.
    let flagged = views.len() == 1;
    let mut compared = format!(
        "{}: names and namespaces",
        if flagged {
            "__ksymtab + __kflagstab (7.1+ layout)".to_string()
        } else {
            tables_compared.join(", ")
        }
    );
    if flagged {
        compared += if flags_compared {
            ", the GPL-only flag of each entry"
        } else if flags_unknown {
            "; GPL-only flags not compared (the ELF reading gives no per-entry flags)"
        } else {
            ""
        };
    }
    if table.modversions {
        compared += &format!(
            "; every CRC slot the kernel reads ({})",
            if flagged {
                "__kcrctab"
            } else {
                "__kcrctab, __kcrctab_gpl"
            }
        );
    } else {
        compared += "; no CRCs (the kernel has no __kcrctab: built without MODVERSIONS)";
    }
    TableComparison {
        runtime_exports,
        static_exports: table.count(),
        equal: differences.is_empty(),
        compared,
        differences,
    }
}

/// Builds the per-module outcomes, in load order, with the static prediction alongside.
pub fn outcomes(
    run: &GuestRun,
    plan: &[crate::image::PlannedModule],
    predicted: &[ModuleReport],
) -> Vec<ModuleOutcome> {
    let mut out: Vec<ModuleOutcome> = Vec::with_capacity(plan.len());
    for (m, p) in run.modules.iter().zip(plan) {
        let failed_deps = p.depends.iter().any(|d| {
            out.iter().any(|o| {
                o.name == crate::depmod::normalise(d) && o.verdict != RuntimeVerdict::Loaded
            })
        });
        let (verdict, symbol) = classify(m, failed_deps);
        let prediction = predicted
            .iter()
            .find(|r| r.path == p.path)
            .map(|r| r.verdict);
        let unloaded = if m.unload_crashed {
            Some(false)
        } else {
            m.unload
                .map(|(ret, _)| ret == 0)
                .filter(|_| verdict == RuntimeVerdict::Loaded)
        };
        out.push(ModuleOutcome {
            // The run's load order, also when this guest loaded one batch of it.
            index: p.index,
            name: m.name.clone(),
            path: p.path.clone(),
            verdict,
            symbol,
            errno: m.errno.filter(|&e| e != 0),
            errno_name: m.errno_name.clone(),
            kernel_messages: m.kmsg.iter().map(|(_, t)| t.clone()).collect(),
            load_micros: m.micros,
            unloaded,
            unload_errno: m.unload.filter(|(r, _)| *r != 0).map(|(_, e)| e),
            unload_crashed: m.unload_crashed,
            predicted: prediction,
            // A module never tried cannot disagree with anything.
            agrees: verdict == RuntimeVerdict::NotRun
                || prediction.is_none_or(|p| agrees(p, verdict)),
            not_run_reason: (verdict == RuntimeVerdict::NotRun).then(|| {
                run.boot_failure
                    .clone()
                    .unwrap_or_else(|| "the guest stopped before reaching it".into())
            }),
            console_excerpt: m.console_excerpt.clone(),
            retries: vec![],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::{RuntimeExport, RuntimeTable};
    use crate::synth::{export, Generation, KernelSpec};

    /// The static table of a synthetic kernel, and the runtime table a faithful agent would
    /// send for it (full mode: every name, CRC, namespace; flags where the kernel has them).
    fn kernel(g: Generation, modversions: bool) -> (ExportTable, GuestRun) {
        let t = crate::synth::all_targets()[0];
        let mut k = KernelSpec::new(
            t,
            vec![
                export("kfree", false, 0x1111_0001),
                export("crypto_alloc_shash", true, 0x4444_0004),
                export("module_layout", false, 0x2222_0002),
            ],
        );
        k.generation = g;
        k.modversions = modversions;
        let bytes = k.build();
        let elf = crate::elf::ElfFile::parse(&bytes).unwrap();
        let table = ExportTable::from_vmlinux(&elf, Some(t.layout)).unwrap();
        let mut run = GuestRun {
            done: true,
            ..Default::default()
        };
        for (kind, st) in table.tables() {
            let rt = RuntimeTable {
                entries: st.names.len(),
                crc_slots: st.crc_slots.len(),
                flag_bytes: table.flagstab.then_some(st.flags.len()),
                flags: st.flags.iter().map(|&f| Some(f)).collect(),
                exports: (0..st.names.len())
                    .map(|i| RuntimeExport {
                        index: i,
                        name: Some(st.names[i].clone()),
                        crc: st.effective_crcs.get(i).copied().flatten(),
                        namespace: st.namespaces[i].clone(),
                    })
                    .collect(),
                name_digests: vec![],
            };
            run.tables
                .insert(kind.ksymtab().trim_start_matches("__").to_string(), rt);
        }
        (table, run)
    }

    #[test]
    fn a_7_1_table_is_compared_with_its_flags_and_says_so() {
        let (table, mut run) = kernel(Generation::Flagstab, true);
        let c = compare_tables(&run, &table);
        assert!(c.equal, "{:#?}", c.differences);
        assert_eq!(c.runtime_exports, 3);
        assert!(
            c.compared.contains("__kflagstab") && c.compared.contains("GPL-only flag"),
            "{}",
            c.compared
        );
        // A GPL-only bit lost at run time is a difference of its own, named by symbol.
        let i = table
            .table(TableKind::Normal)
            .names
            .iter()
            .position(|n| n == "crypto_alloc_shash")
            .unwrap();
        run.tables.get_mut("ksymtab").unwrap().flags[i] = Some(0);
        let c = compare_tables(&run, &table);
        assert!(!c.equal);
        assert!(c.differences[0]
            .detail
            .contains("`crypto_alloc_shash`: not GPL-only at run time"));
    }

    #[test]
    fn before_7_1_each_table_is_compared_and_named() {
        let (table, run) = kernel(Generation::Modern, true);
        let c = compare_tables(&run, &table);
        assert!(c.equal, "{:#?}", c.differences);
        assert!(
            c.compared.contains("__ksymtab_gpl (1 entries)"),
            "{}",
            c.compared
        );
        assert!(c.compared.contains("__kcrctab_gpl"));
    }

    #[test]
    fn without_modversions_the_comparison_says_no_crcs() {
        let (table, run) = kernel(Generation::Flagstab, false);
        let c = compare_tables(&run, &table);
        assert!(c.equal, "{:#?}", c.differences);
        assert!(c.compared.contains("no CRCs"), "{}", c.compared);
    }

    fn gm(ret: i64, errno: i32, msgs: &[&str]) -> GuestModule {
        GuestModule {
            ret: Some(ret),
            errno: Some(errno),
            kmsg: msgs.iter().map(|m| (4, m.to_string())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn kernel_messages_classify() {
        assert_eq!(classify(&gm(0, 0, &[]), false).0, RuntimeVerdict::Loaded);
        assert_eq!(
            classify(
                &gm(
                    -1,
                    8,
                    &["md5: disagrees about version of symbol module_layout"]
                ),
                false
            ),
            (RuntimeVerdict::CrcMismatch, Some("module_layout".into()))
        );
        assert_eq!(
            classify(
                &gm(-1, 2, &["x: Unknown symbol clear_user (err -2)"]),
                false
            ),
            (RuntimeVerdict::UnknownSymbol, Some("clear_user".into()))
        );
        assert_eq!(
            classify(&gm(-1, 2, &["x: Unknown symbol foo (err -2)"]), true).0,
            RuntimeVerdict::Skipped
        );
        assert_eq!(
            classify(&gm(-1, 19, &[]), false).0,
            RuntimeVerdict::InitFailed
        );
        assert_eq!(
            classify(
                &gm(-1, 8, &["x: version magic '6.1 SMP' should be '6.1 '"]),
                false
            )
            .0,
            RuntimeVerdict::BadVermagic
        );
        assert_eq!(
            classify(
                &gm(
                    -1,
                    22,
                    &["x: module uses symbol (f) from namespace NS, but does not import it."]
                ),
                false
            ),
            (RuntimeVerdict::Namespace, Some("f".into()))
        );
    }
}
