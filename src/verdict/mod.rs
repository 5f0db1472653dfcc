//! Guest results → verdicts: what the running kernel said about each module, the running
//! export table against the static one, and each runtime verdict against the static
//! prediction. Every disagreement is a finding of its own: that is how a loader bug is told
//! from a build bug.
mod classify;
mod table;

pub use classify::{agrees, classify};
pub use table::{compare_tables, TableComparison, TableDifference};

use crate::check::{ModuleReport, Verdict};
use crate::qemu::GuestRun;
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
                    .as_ref()
                    .map(|f| f.text.clone())
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
    use crate::elf::exports::{ExportTable, TableKind};
    use crate::qemu::GuestModule;
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
