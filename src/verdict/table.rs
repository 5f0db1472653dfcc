//! The running kernel's export table against the static one, entry by entry.
use crate::elf::exports::{ExportTable, TableKind};
use crate::qemu::GuestRun;
use serde::{Deserialize, Serialize};

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
    if run.flagged_layout() {
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
    let flagged = run.flagged_layout();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::{RuntimeExport, RuntimeTable};

    fn run_with(flag_bytes: Option<usize>) -> GuestRun {
        let mut run = GuestRun::default();
        run.tables.insert(
            "ksymtab".into(),
            RuntimeTable {
                entries: 1,
                crc_slots: 1,
                flag_bytes,
                flags: vec![flag_bytes.map(|_| 0)],
                exports: vec![RuntimeExport {
                    index: 0,
                    name: Some("f".into()),
                    crc: Some(1),
                    namespace: None,
                }],
                name_digests: vec![],
            },
        );
        run
    }

    /// The 7.1+ layout is the running kernel's (its flags bytes), not "one table compared":
    /// a kernel whose only exports are plain ones has one table and the old layout.
    #[test]
    fn the_layout_named_is_the_running_kernels() {
        let symvers = crate::elf::Symvers::parse("0x1\tf\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
        let table = ExportTable::from_symvers(&symvers);
        let old = compare_tables(&run_with(None), &table);
        assert!(old.equal, "{old:?}");
        assert!(old.compared.starts_with("__ksymtab ("), "{}", old.compared);
        assert!(!old.compared.contains("7.1+"), "{}", old.compared);
        let new = compare_tables(&run_with(Some(1)), &table);
        assert!(new.compared.contains("7.1+ layout"), "{}", new.compared);
    }
}
