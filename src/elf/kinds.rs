//! The kinds of export table and the GPL-only rule: what Module.symvers' type column and the
//! ELF's `__ksymtab*` sections both name (read by `exports` and `symvers` alike).
use serde::Serialize;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// `__ksymtab` / `__kcrctab` (EXPORT_SYMBOL; since 7.1 every export, GPL-only ones
    /// flagged in `__kflagstab`)
    Normal,
    /// `__ksymtab_gpl` / `__kcrctab_gpl` (EXPORT_SYMBOL_GPL, until 7.0)
    Gpl,
    /// `__ksymtab_gpl_future` (EXPORT_SYMBOL_GPL_FUTURE, until 5.11)
    GplFuture,
    /// `__ksymtab_unused` (EXPORT_UNUSED_SYMBOL, CONFIG_UNUSED_SYMBOLS, until 5.11)
    Unused,
    /// `__ksymtab_unused_gpl` (EXPORT_UNUSED_SYMBOL_GPL, until 5.11)
    UnusedGpl,
}

impl TableKind {
    /// In `find_symbol()`'s search order (`kernel/module.c` before 5.12).
    pub const ALL: [TableKind; 5] = [
        TableKind::Normal,
        TableKind::Gpl,
        TableKind::GplFuture,
        TableKind::Unused,
        TableKind::UnusedGpl,
    ];
    pub fn ksymtab(self) -> &'static str {
        match self {
            TableKind::Normal => "__ksymtab",
            TableKind::Gpl => "__ksymtab_gpl",
            TableKind::GplFuture => "__ksymtab_gpl_future",
            TableKind::Unused => "__ksymtab_unused",
            TableKind::UnusedGpl => "__ksymtab_unused_gpl",
        }
    }
    pub fn kcrctab(self) -> &'static str {
        match self {
            TableKind::Normal => "__kcrctab",
            TableKind::Gpl => "__kcrctab_gpl",
            TableKind::GplFuture => "__kcrctab_gpl_future",
            TableKind::Unused => "__kcrctab_unused",
            TableKind::UnusedGpl => "__kcrctab_unused_gpl",
        }
    }
    /// Whether the whole table is GPL-only (`find_symbol` skips it when `!gplok`).
    pub fn gpl_only(self) -> bool {
        matches!(self, TableKind::Gpl | TableKind::UnusedGpl)
    }
    /// The table an export of Module.symvers' type column (`EXPORT_SYMBOL_GPL`, …) is in;
    /// another `EXPORT_*` type a kernel may write is GPL-only if its name says `_GPL`.
    pub fn of_symvers_type(t: &str) -> Option<TableKind> {
        TableKind::ALL
            .into_iter()
            .find(|k| k.symvers_type() == t)
            .or_else(|| {
                t.starts_with("EXPORT_").then(|| match t.contains("_GPL") {
                    true => TableKind::Gpl,
                    false => TableKind::Normal,
                })
            })
    }
    pub fn symvers_type(self) -> &'static str {
        match self {
            TableKind::Normal => "EXPORT_SYMBOL",
            TableKind::Gpl => "EXPORT_SYMBOL_GPL",
            TableKind::GplFuture => "EXPORT_SYMBOL_GPL_FUTURE",
            TableKind::Unused => "EXPORT_UNUSED_SYMBOL",
            TableKind::UnusedGpl => "EXPORT_UNUSED_SYMBOL_GPL",
        }
    }
}

/// `__kflagstab` bit for a GPL-only export (`enum ksym_flags`, include/linux/module_symbol.h, 7.1).
pub const KSYM_FLAG_GPL_ONLY: u8 = 1;

/// Whether an export is GPL-only: by its table (`__ksymtab_gpl*`, before 7.1) or by its
/// `__kflagstab` byte (7.1+). The one home of that rule: vmlinux's tables, a module's own
/// exports and the running kernel's flags are all read through it.
pub fn gpl_only(kind: TableKind, flag: Option<u8>) -> bool {
    kind.gpl_only() || flag.is_some_and(|f| f & KSYM_FLAG_GPL_ONLY != 0)
}
