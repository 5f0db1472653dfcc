//! `modverify diff`: what changed between two kernels' export tables, read from the binaries
//! (vmlinux's `__ksymtab*`, `__kcrctab*` and `__kflagstab`, each module's own exports; Module.symvers
//! only where no binary says it), and which modules the change breaks.
//!
//! A module's judgement is `check`'s own ([`predict_providing`]): a consumer *breaks* when the
//! old kernel with its modules would load it and the new kernel with its modules refuses it.
//! Consumers are the old kernel's own modules and any out-of-tree modules given; each is
//! judged alone against the other kernel's modules, as it would load into that system.
use crate::arch::ArchDescriptor;
use crate::check::modules::{predict_providing, ModuleInput, Policy};
use crate::check::{ModuleReport, Verdict};
use crate::elf::exports::ExportTable;
use crate::elf::module::VersionsFormat;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One export as a kernel with its modules offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// `vmlinux` or the module's name.
    pub owner: String,
    /// The CRC the loader compares (`None`: no CRC table, CONFIG_MODVERSIONS off).
    pub crc: Option<u32>,
    pub gpl_only: bool,
    pub namespace: Option<String>,
}

/// Every export of a kernel and its modules, by symbol: vmlinux's first (as `find_symbol`),
/// then the modules' own tables, then Module.symvers' rows for modules not read.
pub fn exports_of(table: &ExportTable, modules: &[ModuleInput]) -> BTreeMap<String, Export> {
    let mut out = BTreeMap::new();
    for (_, t) in table.tables() {
        for name in &t.names {
            if out.contains_key(name) {
                continue;
            }
            let Some(l) = table.lookup(name) else {
                continue;
            };
            out.insert(
                name.clone(),
                Export {
                    owner: "vmlinux".into(),
                    crc: l.crc.flatten(),
                    gpl_only: l.gpl_only,
                    namespace: l.namespace.filter(|n| !n.is_empty()).map(str::to_string),
                },
            );
        }
    }
    for m in modules {
        let Ok(f) = &m.facts else { continue };
        let owner = f.name.clone().unwrap_or_else(|| m.stem.clone());
        for e in &f.exports {
            out.entry(e.name.clone()).or_insert_with(|| Export {
                owner: owner.clone(),
                crc: if table.modversions && f.has_kcrctab[e.table as usize] {
                    e.crc
                } else {
                    None
                },
                gpl_only: e.gpl_only,
                namespace: e.namespace.clone().filter(|n| !n.is_empty()),
            });
        }
    }
    for e in table.symvers_module_exports() {
        out.entry(e.symbol.clone()).or_insert_with(|| Export {
            owner: crate::depmod::name(std::path::Path::new(&e.module)),
            crc: table.modversions.then_some(e.crc),
            gpl_only: e.gpl,
            namespace: e.namespace.clone().filter(|n| !n.is_empty()),
        });
    }
    out
}

/// What happened to one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Removed,
    CrcChanged,
    GplTightened,
    NamespaceChanged,
    Moved,
    GplRelaxed,
    Added,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Removed => "removed",
            ChangeKind::CrcChanged => "crc_changed",
            ChangeKind::GplTightened => "gpl_tightened",
            ChangeKind::NamespaceChanged => "namespace_changed",
            ChangeKind::Moved => "moved",
            ChangeKind::GplRelaxed => "gpl_relaxed",
            ChangeKind::Added => "added",
        }
    }

    /// What a person reads as the group's heading.
    pub fn heading(self) -> &'static str {
        match self {
            ChangeKind::Removed => "removed exports",
            ChangeKind::CrcChanged => "CRC changed",
            ChangeKind::GplTightened => "now GPL-only",
            ChangeKind::NamespaceChanged => "namespace changed",
            ChangeKind::Moved => "moved (vmlinux or another module exports it now)",
            ChangeKind::GplRelaxed => "no longer GPL-only",
            ChangeKind::Added => "added exports",
        }
    }
}

/// One change of one export; a symbol can have several (moved and its CRC changed).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub symbol: String,
    pub kind: ChangeKind,
    /// The old value where the kind has one: the owner (removed, moved), the CRC
    /// (`0x%08x`), `EXPORT_SYMBOL[_GPL]`, the namespace (`null`: none).
    pub old: Option<String>,
    pub new: Option<String>,
    /// Modules that import the symbol: the old kernel's own and the consumers given.
    pub consumers: Vec<String>,
    /// Those of them the old kernel loads and the new one refuses for this symbol.
    pub breaks: Vec<String>,
    /// The toleration that covers the change (a pattern and where it came from), if any.
    pub tolerated: Option<String>,
}

fn crc_text(c: Option<u32>) -> Option<String> {
    c.map(|c| format!("{c:#010x}"))
}

fn licence_text(gpl: bool) -> Option<String> {
    Some(
        if gpl {
            "EXPORT_SYMBOL_GPL"
        } else {
            "EXPORT_SYMBOL"
        }
        .into(),
    )
}

/// The per-export changes from `old` to `new`, symbol by symbol, without consumers.
pub fn export_changes(
    old: &BTreeMap<String, Export>,
    new: &BTreeMap<String, Export>,
) -> Vec<Change> {
    let change = |symbol: &str, kind, o: Option<String>, n: Option<String>| Change {
        symbol: symbol.to_string(),
        kind,
        old: o,
        new: n,
        consumers: vec![],
        breaks: vec![],
        tolerated: None,
    };
    let mut out = Vec::new();
    for (sym, o) in old {
        let Some(n) = new.get(sym) else {
            out.push(change(
                sym,
                ChangeKind::Removed,
                Some(o.owner.clone()),
                None,
            ));
            continue;
        };
        if o.owner != n.owner {
            out.push(change(
                sym,
                ChangeKind::Moved,
                Some(o.owner.clone()),
                Some(n.owner.clone()),
            ));
        }
        // A CRC appears or goes only with MODVERSIONS, a kernel-wide change said once.
        if let (Some(a), Some(b)) = (o.crc, n.crc) {
            if a != b {
                out.push(change(
                    sym,
                    ChangeKind::CrcChanged,
                    crc_text(Some(a)),
                    crc_text(Some(b)),
                ));
            }
        }
        if o.gpl_only != n.gpl_only {
            let kind = if n.gpl_only {
                ChangeKind::GplTightened
            } else {
                ChangeKind::GplRelaxed
            };
            out.push(change(
                sym,
                kind,
                licence_text(o.gpl_only),
                licence_text(n.gpl_only),
            ));
        }
        if o.namespace != n.namespace {
            out.push(change(
                sym,
                ChangeKind::NamespaceChanged,
                o.namespace.clone(),
                n.namespace.clone(),
            ));
        }
    }
    for (sym, n) in new {
        if !old.contains_key(sym) {
            out.push(change(sym, ChangeKind::Added, None, Some(n.owner.clone())));
        }
    }
    out
}

/// A change of the kernel as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct KernelChange {
    /// `vermagic`, `modversions` (on/off) or `versions_format` (basic / extended / both).
    pub what: String,
    pub old: String,
    pub new: String,
    /// What it means for modules built for the old kernel.
    pub detail: String,
}

/// How a kernel's modules carry their versions: `basic` (`__versions`), `extended` (6.14+
/// `__version_ext_*`), `mixed`, or `none`.
fn versions_format(modules: &[ModuleInput]) -> String {
    let (mut basic, mut ext) = (0, 0);
    for f in modules.iter().filter_map(|m| m.facts.as_ref().ok()) {
        if f.versions.is_some() {
            match f.versions_format {
                VersionsFormat::Basic => basic += 1,
                VersionsFormat::Extended => ext += 1,
            }
        }
    }
    match (basic, ext) {
        (0, 0) => "none",
        (_, 0) => "basic",
        (0, _) => "extended",
        _ => "mixed",
    }
    .to_string()
}

fn kernel_changes(
    old: &ExportTable,
    new: &ExportTable,
    old_modules: &[ModuleInput],
    new_modules: &[ModuleInput],
) -> Vec<KernelChange> {
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (&old.vermagic, &new.vermagic) {
        if a != b {
            let tail = |s: &str| s.split_once(' ').map(|(_, t)| t.to_string());
            let detail = if tail(a) == tail(b) {
                "the release only: modules with CRCs load across it (the loader compares \
                 each symbol's CRC instead); modules without them are refused"
            } else {
                "beyond the release: every module built for the old kernel is refused \
                 (bad vermagic)"
            };
            out.push(KernelChange {
                what: "vermagic".into(),
                old: a.clone(),
                new: b.clone(),
                detail: detail.into(),
            });
        }
    }
    if old.modversions != new.modversions {
        let on = |b: bool| if b { "on" } else { "off" }.to_string();
        out.push(KernelChange {
            what: "modversions".into(),
            old: on(old.modversions),
            new: on(new.modversions),
            detail: "CONFIG_MODVERSIONS: CRCs are compared only where both sides have them".into(),
        });
    }
    let (a, b) = (versions_format(old_modules), versions_format(new_modules));
    if a != b && a != "none" && b != "none" {
        out.push(KernelChange {
            what: "versions_format".into(),
            old: a,
            new: b,
            detail: "how modules carry their CRCs: `__versions` (basic) or 6.14's \
                     `__version_ext_*` (extended)"
                .into(),
        });
    }
    out
}

/// A consumer the new kernel refuses, by its first reason.
#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub module: String,
    pub path: String,
    pub verdict: Verdict,
    pub symbol: Option<String>,
    pub detail: String,
}

/// `modverify diff --format json`; documented in docs/json-schema.md.
#[derive(Debug, Clone, Serialize)]
pub struct KabiDiff {
    pub schema: String,
    pub arch: String,
    pub old: Side,
    pub new: Side,
    pub kernel: Vec<KernelChange>,
    /// Every export change, grouped by kind, then by symbol.
    pub changes: Vec<Change>,
    /// Every consumer the old kernel loads and the new one refuses, with its reason.
    pub broken: Vec<Broken>,
    /// Consumers the old kernel already refuses (not the update's doing).
    pub already_failing: Vec<String>,
    pub summary: DiffSummary,
}

/// What one side was read from and whether its own table holds together.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub kernel: String,
    pub release: Option<String>,
    pub exports: usize,
    pub modules: usize,
    /// The export table's own consistency (`check`'s export findings); a diff of an
    /// inconsistent table is said first.
    pub consistent: bool,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffSummary {
    /// Exports with at least one change.
    pub exports_changed: usize,
    /// Changes: an export can have several (moved, and its CRC changed).
    pub changes: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub consumers: usize,
    pub broken: usize,
    /// Changes that break a consumer and no toleration covers.
    pub breaking_changes: usize,
    pub tolerated: usize,
}

/// Compares two checked kernels. `consumers`: out-of-tree modules (read for `arch`), judged
/// with the old kernel's own modules.
pub fn diff(
    arch: &ArchDescriptor,
    old: &crate::check::stage::Checked,
    new: &crate::check::stage::Checked,
    consumers: &[ModuleInput],
    policy: Policy,
) -> KabiDiff {
    let old_exports = exports_of(&old.table, &old.modules);
    let new_exports = exports_of(&new.table, &new.modules);
    let mut changes = export_changes(&old_exports, &new_exports);

    // Who imports what: the old kernel's own modules, then the consumers given.
    let all_consumers: Vec<ModuleInput> = old
        .modules
        .iter()
        .chain(consumers.iter())
        .cloned()
        .collect();
    let mut importers: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for m in &all_consumers {
        let Ok(f) = &m.facts else { continue };
        let name = f.name.clone().unwrap_or_else(|| m.stem.clone());
        for u in &f.undefined {
            importers
                .entry(u.name.as_str())
                .or_default()
                .insert(name.clone());
        }
    }

    // check's judgement on each consumer, on each side: against that kernel and its modules.
    let judged = |side: &crate::check::stage::Checked| -> Vec<ModuleReport> {
        let mut list = side.modules.clone();
        let n = list.len();
        list.extend(all_consumers.iter().cloned());
        let mut r = predict_providing(&side.table, arch, &list, n, policy);
        r.split_off(n)
    };
    let before = judged(old);
    let after = judged(new);
    let mut broken = Vec::new();
    let mut already_failing = Vec::new();
    for (b, a) in before.iter().zip(&after) {
        if b.failed() {
            already_failing.push(b.name.clone());
            continue;
        }
        if !a.failed() {
            continue;
        }
        let first = a.problems.iter().find(|p| p.fatal);
        broken.push(Broken {
            module: a.name.clone(),
            path: a.path.clone(),
            verdict: a.verdict,
            symbol: first.and_then(|p| p.symbol.clone()),
            detail: first.map(|p| p.detail.clone()).unwrap_or_default(),
        });
    }
    // Each change names its consumers, and those the new kernel refuses over that symbol.
    let mut refused: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (b, a) in before.iter().zip(&after) {
        if b.failed() || !a.failed() {
            continue;
        }
        for p in a.problems.iter().filter(|p| p.fatal) {
            if let Some(s) = &p.symbol {
                refused
                    .entry(s.as_str())
                    .or_default()
                    .insert(a.name.clone());
            }
        }
    }
    for c in &mut changes {
        if let Some(users) = importers.get(c.symbol.as_str()) {
            c.consumers = users.iter().cloned().collect();
        }
        if let Some(r) = refused.get(c.symbol.as_str()) {
            c.breaks = r.iter().cloned().collect();
        }
    }
    changes.sort_by(|a, b| (a.kind, &a.symbol).cmp(&(b.kind, &b.symbol)));

    let side = |c: &crate::check::stage::Checked, exports: usize| Side {
        kernel: c.report.kernel.path.clone(),
        release: c.report.kernel.release.clone(),
        exports,
        modules: c.modules.len(),
        consistent: c.report.exports.consistent,
        problems: c
            .report
            .exports
            .problems
            .iter()
            .filter(|p| p.severity == crate::check::Severity::Error)
            .map(|p| p.detail.clone())
            .collect(),
    };
    let mut summary = DiffSummary {
        exports_changed: changes
            .iter()
            .map(|c| c.symbol.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        changes: changes.len(),
        consumers: all_consumers.len(),
        broken: broken.len(),
        ..Default::default()
    };
    for c in &changes {
        *summary.by_kind.entry(c.kind.as_str().into()).or_default() += 1;
        if c.tolerated.is_some() {
            summary.tolerated += 1;
        } else if !c.breaks.is_empty() {
            summary.breaking_changes += 1;
        }
    }
    KabiDiff {
        schema: DIFF_SCHEMA.into(),
        arch: arch.name.clone(),
        old: side(old, old_exports.len()),
        new: side(new, new_exports.len()),
        kernel: kernel_changes(&old.table, &new.table, &old.modules, &new.modules),
        changes,
        broken,
        already_failing,
        summary,
    }
}

pub const DIFF_SCHEMA: &str = "modverify.diff/1";

#[cfg(test)]
mod tests {
    use super::*;

    fn e(owner: &str, crc: u32, gpl: bool, ns: Option<&str>) -> Export {
        Export {
            owner: owner.into(),
            crc: Some(crc),
            gpl_only: gpl,
            namespace: ns.map(str::to_string),
        }
    }

    #[test]
    fn every_kind_of_export_change_is_named_with_its_values() {
        let old: BTreeMap<String, Export> = [
            ("gone", e("vmlinux", 1, false, None)),
            ("crc", e("vmlinux", 2, false, None)),
            ("tight", e("vmlinux", 3, false, None)),
            ("loose", e("vmlinux", 4, true, None)),
            ("ns", e("vmlinux", 5, false, Some("A"))),
            ("moved", e("foo", 6, false, None)),
            ("same", e("vmlinux", 7, false, None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let new: BTreeMap<String, Export> = [
            ("crc", e("vmlinux", 9, false, None)),
            ("tight", e("vmlinux", 3, true, None)),
            ("loose", e("vmlinux", 4, false, None)),
            ("ns", e("vmlinux", 5, false, Some("module:kvm"))),
            ("moved", e("vmlinux", 6, false, None)),
            ("same", e("vmlinux", 7, false, None)),
            ("new", e("bar", 8, false, None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let c = export_changes(&old, &new);
        let got: Vec<(String, &str, Option<String>, Option<String>)> = c
            .iter()
            .map(|c| {
                (
                    c.symbol.clone(),
                    c.kind.as_str(),
                    c.old.clone(),
                    c.new.clone(),
                )
            })
            .collect();
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            got,
            vec![
                (
                    "crc".into(),
                    "crc_changed",
                    s("0x00000002"),
                    s("0x00000009")
                ),
                ("gone".into(), "removed", s("vmlinux"), None),
                (
                    "loose".into(),
                    "gpl_relaxed",
                    s("EXPORT_SYMBOL_GPL"),
                    s("EXPORT_SYMBOL")
                ),
                ("moved".into(), "moved", s("foo"), s("vmlinux")),
                ("ns".into(), "namespace_changed", s("A"), s("module:kvm")),
                (
                    "tight".into(),
                    "gpl_tightened",
                    s("EXPORT_SYMBOL"),
                    s("EXPORT_SYMBOL_GPL")
                ),
                ("new".into(), "added", None, s("bar")),
            ]
        );
    }
}
