//! Consistency of the kernel's own export table: slot counts, sortedness, every kcrctab slot
//! against the best reference CRC we have (Module.symvers, `__crc_*` labels, the modules'
//! `__versions`), index shifts (the Linux 5.19 modpost bug) and zero CRCs.
use crate::elf::exports::{ExportTable, TableKind};
use crate::elf::{ModuleFacts, Symvers};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Modules will fail because of it.
    Error,
    /// Worth knowing; fails nothing by itself.
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportProblemKind {
    /// `__kcrctab` holds a different number of slots than `__ksymtab` has entries.
    SlotCount,
    /// A run of slots where slot i holds the CRC of symbol i+delta.
    IndexShift,
    /// A single slot holding a CRC other than the symbol's own.
    CrcMismatch,
    /// An export with no `__crc_<sym>` label at all: it has no slot of its own.
    NoCrcSlot,
    /// A slot holding 0: modpost could not version the symbol.
    ZeroCrc,
    /// The table is not in strcmp order: the kernel's binary search misses symbols.
    Unsorted,
    /// Module.symvers and vmlinux disagree about which symbols are exported.
    SymversMismatch,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportProblem {
    pub kind: ExportProblemKind,
    pub severity: Severity,
    /// `__ksymtab`/`__kcrctab` or the `_gpl` pair.
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// The symbol's own CRC (from the reference named in `reference`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::hex")]
    pub expected_crc: Option<u64>,
    /// What the kernel reads at that slot.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::hex")]
    pub kernel_crc: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// For an index shift: slot i holds the CRC of symbol i+delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_slot: Option<usize>,
    /// For an index shift whose start cannot be pinned down (the slots before it have no
    /// reference CRC): the earliest slot where it may begin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earliest_slot: Option<usize>,
    /// Every symbol the problem affects, in slot order (never truncated here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
    pub detail: String,
}

impl ExportProblem {
    fn new(kind: ExportProblemKind, severity: Severity, table: TableKind, detail: String) -> Self {
        ExportProblem {
            kind,
            severity,
            table: format!("{}/{}", table.ksymtab(), table.kcrctab()),
            slot: None,
            symbol: None,
            expected_crc: None,
            kernel_crc: None,
            reference: None,
            delta: None,
            last_slot: None,
            earliest_slot: None,
            symbols: vec![],
            detail,
        }
    }
}

/// The weakest reference: the CRCs the kernel's own modules were built against.
const MODULE_VERSIONS: &str = "module __versions";

/// The reference CRC of each vmlinux export and where it came from.
struct References {
    crc: HashMap<String, (u32, &'static str)>,
}

impl References {
    fn build(table: &ExportTable, symvers: Option<&Symvers>, modules: &[&ModuleFacts]) -> Self {
        let mut crc: HashMap<String, (u32, &'static str)> = HashMap::new();
        // Weakest first; stronger sources overwrite.
        let mut votes: HashMap<&str, HashMap<u32, usize>> = HashMap::new();
        // Only the kernel's own modules say anything about its table: a module of another
        // release or build (a stale DKMS module, last kernel's) carries that kernel's CRCs, and
        // its mismatches are its own findings, not the table's.
        let own = |m: &&&ModuleFacts| match (&table.vermagic, &m.vermagic) {
            (Some(k), Some(v)) => k.trim() == v.trim(),
            _ => true,
        };
        for m in modules.iter().filter(own) {
            for v in m.versions.iter().flatten() {
                if table.lookup(&v.name).is_some() && v.crc <= u32::MAX as u64 {
                    *votes
                        .entry(v.name.as_str())
                        .or_default()
                        .entry(v.crc as u32)
                        .or_default() += 1;
                }
            }
        }
        for (name, counts) in votes {
            if let Some((&c, _)) = counts.iter().max_by_key(|(c, n)| (**n, **c)) {
                crc.insert(name.to_string(), (c, MODULE_VERSIONS));
            }
        }
        for (name, l) in &table.crc_labels {
            crc.insert(name.clone(), (l.crc, "vmlinux __crc_ label"));
        }
        if let Some(s) = symvers {
            for e in s.entries.iter().filter(|e| e.module == "vmlinux") {
                crc.insert(e.symbol.clone(), (e.crc, "Module.symvers"));
            }
        }
        References { crc }
    }
}

/// Checks the export table. `modules` serve as a CRC oracle when nothing better is given.
pub fn check_export_table(
    table: &ExportTable,
    symvers: Option<&Symvers>,
    modules: &[&ModuleFacts],
) -> Vec<ExportProblem> {
    let refs = References::build(table, symvers, modules);
    let mut out = Vec::new();
    if let Some(s) = symvers {
        symvers_membership(table, s, &mut out);
    }
    for kind in TableKind::ALL {
        let t = table.table(kind);
        let names = &t.names;
        if let Some(i) = names
            .windows(2)
            .position(|w| w[0].as_bytes() >= w[1].as_bytes())
        {
            let mut p = ExportProblem::new(
                ExportProblemKind::Unsorted,
                Severity::Error,
                kind,
                format!(
                    "{} is not in strcmp order at slot {}: `{}` then `{}`; the kernel's binary search will miss symbols",
                    kind.ksymtab(),
                    i + 1,
                    names[i],
                    names[i + 1]
                ),
            );
            p.slot = Some(i + 1);
            p.symbol = Some(names[i + 1].clone());
            out.push(p);
        }
        if !table.modversions || names.is_empty() {
            continue;
        }
        if t.crc_slots.len() != names.len() {
            let mut p = ExportProblem::new(
                ExportProblemKind::SlotCount,
                Severity::Error,
                kind,
                format!(
                    "{} has {} CRC slots for {} {} entries: the kernel finds a CRC by the symbol's index, so {}",
                    kind.kcrctab(),
                    t.crc_slots.len(),
                    names.len(),
                    kind.ksymtab(),
                    if t.crc_slots.len() < names.len() {
                        "every export after a missing slot is checked against another symbol's CRC"
                    } else {
                        "the slots cannot all belong to their symbols"
                    }
                ),
            );
            p.slot = Some(t.crc_slots.len().min(names.len()));
            out.push(p);
        }
        // Exports with no __crc_ label of their own (only meaningful when labels exist at all).
        if !table.crc_labels.is_empty() && !table.crc_labels_absolute {
            for (i, n) in names.iter().enumerate() {
                if !table.crc_labels.contains_key(n) {
                    let mut p = ExportProblem::new(
                        ExportProblemKind::NoCrcSlot,
                        Severity::Error,
                        kind,
                        format!(
                            "`{n}` (entry {i} of {}) has no __crc_{n} label: it got no {} slot, so the slots after it belong to other symbols",
                            kind.ksymtab(),
                            kind.kcrctab()
                        ),
                    );
                    p.slot = Some(i);
                    p.symbol = Some(n.clone());
                    out.push(p);
                }
            }
        }
        shifts_and_mismatches(kind, t, &refs, &mut out);
        for (i, c) in t.effective_crcs.iter().enumerate() {
            if *c == Some(0) && refs.crc.get(&names[i]).is_none_or(|r| r.0 == 0) {
                let mut p = ExportProblem::new(
                    ExportProblemKind::ZeroCrc,
                    Severity::Warning,
                    kind,
                    format!(
                        "`{}` has CRC 0 (modpost: \"version generation failed\"); in-tree modules using it get no version entry",
                        names[i]
                    ),
                );
                p.slot = Some(i);
                p.symbol = Some(names[i].clone());
                p.kernel_crc = Some(0);
                out.push(p);
            }
        }
    }
    out
}

/// Module.symvers and vmlinux must list the same exports with the same licence side, GPL-only
/// by table before 7.1 and by `__kflagstab` flag since.
fn symvers_membership(table: &ExportTable, s: &Symvers, out: &mut Vec<ExportProblem>) {
    use std::collections::HashSet;
    for gpl in [false, true] {
        let want: HashSet<&str> = s
            .entries
            .iter()
            .filter(|e| e.module == "vmlinux" && e.gpl == gpl)
            .map(|e| e.symbol.as_str())
            .collect();
        let have: HashSet<&str> = table
            .tables()
            .flat_map(|(k, t)| {
                t.names
                    .iter()
                    .enumerate()
                    .filter(move |&(i, _)| t.gpl_only(k, i) == gpl)
                    .map(|(_, n)| n.as_str())
            })
            .collect();
        let mut missing: Vec<String> = want.difference(&have).map(|s| s.to_string()).collect();
        let mut extra: Vec<String> = have.difference(&want).map(|s| s.to_string()).collect();
        missing.sort();
        extra.sort();
        let kind = if gpl {
            TableKind::Gpl
        } else {
            TableKind::Normal
        };
        let label = if table.flagstab {
            "__ksymtab/__kflagstab".to_string()
        } else {
            format!("{}/{}", kind.ksymtab(), kind.kcrctab())
        };
        for (list, what) in [
            (
                missing,
                "listed in Module.symvers but not exported by vmlinux",
            ),
            (extra, "exported by vmlinux but not in Module.symvers"),
        ] {
            if list.is_empty() {
                continue;
            }
            let mut p = ExportProblem::new(
                ExportProblemKind::SymversMismatch,
                Severity::Error,
                kind,
                format!(
                    "{} {} symbols are {what} (first: {}); do the files belong to the same build?",
                    list.len(),
                    kind.symvers_type(),
                    list[0]
                ),
            );
            p.table = label.clone();
            p.symbol = Some(list[0].clone());
            p.symbols = list;
            out.push(p);
        }
    }
}

/// Compares every slot with its symbol's reference CRC; groups mismatches into index shifts.
fn shifts_and_mismatches(
    kind: TableKind,
    t: &crate::elf::KsymTable,
    refs: &References,
    out: &mut Vec<ExportProblem>,
) {
    let names = &t.names;
    let reference = |i: usize| names.get(i).and_then(|n| refs.crc.get(n));
    // For each mismatching slot, the delta (if any, smallest |delta| first) explaining it.
    let mut bad: Vec<(usize, Option<i64>)> = Vec::new();
    for i in 0..names.len() {
        let Some(&(want, _)) = reference(i) else {
            continue;
        };
        let got = t.effective_crcs.get(i).copied().flatten();
        if got == Some(want) {
            continue;
        }
        let delta = got.and_then(|g| {
            (1..=16i64).flat_map(|d| [d, -d]).find(|&d| {
                let j = i as i64 + d;
                j >= 0 && reference(j as usize).is_some_and(|r| r.0 == g)
            })
        });
        bad.push((i, delta));
    }
    // A wrong slot whose neighbour has no reference cannot show its delta; when the next
    // wrong slot does, with no right slot between, it belongs to that run (seen from the
    // end, so a chain of them does).
    let right = |j: usize| {
        reference(j).is_some_and(|r| t.effective_crcs.get(j).copied().flatten() == Some(r.0))
    };
    for x in (0..bad.len().saturating_sub(1)).rev() {
        let (i, d) = bad[x];
        let (next, nd) = bad[x + 1];
        let got = t.effective_crcs.get(i).copied().flatten();
        if d.is_none() && nd.is_some() && got.is_some_and(|g| g != 0) && !(i + 1..next).any(right) {
            bad[x].1 = nd;
        }
    }
    let mut k = 0;
    // The last index-shift run found: (last slot, delta).
    let mut prev_run: Option<(usize, i64)> = None;
    while k < bad.len() {
        let delta = bad[k].1;
        let mut end = k;
        if delta.is_some() {
            // A run goes on over slots without a reference CRC (sparse when the modules'
            // __versions are the only reference) and over mismatching slots whose neighbour
            // has no reference to explain them, as long as no slot in between is right: one
            // lost slot is one shift, not dozens. A zero or unreadable slot ends it (the
            // table's end, where the shift reads past it).
            let right_between = |a: usize, b: usize| {
                (a + 1..b).any(|j| {
                    reference(j)
                        .is_some_and(|r| t.effective_crcs.get(j).copied().flatten() == Some(r.0))
                })
            };
            while end + 1 < bad.len() {
                let (next, nd) = bad[end + 1];
                let got = t.effective_crcs.get(next).copied().flatten();
                let fits = nd == delta || (nd.is_none() && got.is_some_and(|g| g != 0));
                if !fits || right_between(bad[end].0, next) {
                    break;
                }
                end += 1;
            }
        }
        let (mut first, last) = (bad[k].0, bad[end].0);
        if let Some(d) = delta {
            // Walk back over slots whose own symbol has no reference CRC (typically the
            // export that lost its slot) while they still hold their neighbour's CRC.
            while first > 0 && reference(first - 1).is_none() {
                let got = t.effective_crcs.get(first - 1).copied().flatten();
                let j = first as i64 - 1 + d;
                if j >= 0 && got.is_some() && reference(j as usize).map(|r| r.0) == got {
                    first -= 1;
                } else {
                    break;
                }
            }
        }
        let src = reference(first).map(|r| r.1);
        if let Some(d) = delta {
            let run: Vec<String> = (first..=last).map(|i| names[i].clone()).collect();
            // The exports that lost their slots where this run begins: those between the
            // previous run's offset (0, or its delta if it ends right before) and this one's.
            let prev = prev_run
                .filter(|(end, _)| *end + 1 == first)
                .map(|(_, pd)| pd)
                .unwrap_or(0);
            let lost_names: Vec<&str> = if d > prev {
                (first as i64 + prev..first as i64 + d)
                    .filter_map(|j| names.get(j as usize))
                    .map(String::as_str)
                    .collect()
            } else {
                Vec::new()
            };
            let holds = names
                .get((first as i64 + d) as usize)
                .map(String::as_str)
                .unwrap_or("?");
            // Slots before `first` with no reference CRC cannot say whether they are shifted:
            // the shift starts somewhere after the last slot known to be right.
            let mut earliest = first;
            while earliest > 0 && reference(earliest - 1).is_none() {
                earliest -= 1;
            }
            let lost = match lost_names.as_slice() {
                _ if earliest < first => format!(
                    "the slot was lost at or before slot {first}, after slot {} (the slots between \
                     belong to exports no reference CRC covers: give Module.symvers to pin it down)",
                    earliest.saturating_sub(1)
                ),
                [] => format!("slot {first} holds the CRC of `{holds}`"),
                l => format!(
                    "{} no slot of {}, so slot {first} holds the CRC of `{holds}`",
                    l.iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                        + if l.len() == 1 { " has" } else { " have" },
                    if l.len() == 1 { "its own" } else { "their own" }
                ),
            };
            let lost_symbol = lost_names
                .first()
                .map(|s| s.to_string())
                .unwrap_or_else(|| names[first].clone());
            let mut p = ExportProblem::new(
                ExportProblemKind::IndexShift,
                Severity::Error,
                kind,
                format!(
                    "index shift in {}: slots {first}..={last} ({} symbols) hold the CRC of the symbol {}{} places {}; {lost}. \
                     Every module importing one of these symbols fails with \"disagrees about version of symbol\"",
                    kind.kcrctab(),
                    run.len(),
                    if d > 0 { "" } else { "-" },
                    d.abs(),
                    if d > 0 { "later" } else { "earlier" }
                ),
            );
            p.slot = Some(first);
            p.last_slot = Some(last);
            p.earliest_slot = (earliest < first).then_some(earliest);
            p.delta = Some(d);
            p.symbol = Some(lost_symbol);
            prev_run = Some((last, d));
            p.expected_crc = reference(first).map(|r| r.0 as u64);
            p.kernel_crc = t
                .effective_crcs
                .get(first)
                .copied()
                .flatten()
                .map(u64::from);
            p.reference = src.map(str::to_string);
            p.symbols = run;
            out.push(p);
        } else if src == Some(MODULE_VERSIONS) {
            // One slot that disagrees with modules, in no run: not a pattern of the table
            // (a shift), so no evidence against it. The modules that import the symbol get
            // their own crc_mismatch, naming both CRCs.
        } else {
            let got = t.effective_crcs.get(first).copied().flatten();
            let mut p = ExportProblem::new(
                ExportProblemKind::CrcMismatch,
                Severity::Error,
                kind,
                format!(
                    "slot {first} (`{}`) holds {} but the symbol's CRC is {:#010x} ({})",
                    names[first],
                    got.map(|g| format!("{g:#010x}"))
                        .unwrap_or_else(|| "nothing readable (past the table)".into()),
                    reference(first).map(|r| r.0).unwrap_or(0),
                    src.unwrap_or("?")
                ),
            );
            p.slot = Some(first);
            p.symbol = Some(names[first].clone());
            p.expected_crc = reference(first).map(|r| r.0 as u64);
            p.kernel_crc = got.map(u64::from);
            p.reference = src.map(str::to_string);
            out.push(p);
        }
        k = end + 1;
    }
}
