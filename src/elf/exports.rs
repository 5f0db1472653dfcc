//! The kernel's export table as the loader sees it: `__ksymtab[_gpl]` names and namespaces,
//! and, for each entry, the `__kcrctab[_gpl]` slot the kernel reads by index
//! (`kernel/module/main.c:find_symbol`, `symversion(base, i)`, no bounds check).
use super::reader::{ElfFile, ParseError};
use super::symvers::Symvers;
use crate::arch::KsymtabLayout;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// `__ksymtab` / `__kcrctab` (EXPORT_SYMBOL)
    Normal,
    /// `__ksymtab_gpl` / `__kcrctab_gpl` (EXPORT_SYMBOL_GPL)
    Gpl,
}

impl TableKind {
    pub const ALL: [TableKind; 2] = [TableKind::Normal, TableKind::Gpl];
    pub fn ksymtab(self) -> &'static str {
        match self {
            TableKind::Normal => "__ksymtab",
            TableKind::Gpl => "__ksymtab_gpl",
        }
    }
    pub fn kcrctab(self) -> &'static str {
        match self {
            TableKind::Normal => "__kcrctab",
            TableKind::Gpl => "__kcrctab_gpl",
        }
    }
    pub fn symvers_type(self) -> &'static str {
        match self {
            TableKind::Normal => "EXPORT_SYMBOL",
            TableKind::Gpl => "EXPORT_SYMBOL_GPL",
        }
    }
}

/// One `__ksymtab*` table and its CRC table.
#[derive(Debug, Clone, Default)]
pub struct KsymTable {
    pub names: Vec<String>,
    /// `None` for no namespace (NULL pointer, zero offset or "").
    pub namespaces: Vec<Option<String>>,
    /// The raw `__kcrctab*` slots, as many as the section holds.
    pub crc_slots: Vec<u32>,
    /// For entry i, the u32 the kernel reads at `__kcrctab + 4*i`, even past the table's end
    /// (`None` where that address is not in the file).
    pub effective_crcs: Vec<Option<u32>>,
}

/// A `__crc_<sym>` label from `.symtab`: where modpost put that symbol's CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrcLabel {
    pub table: TableKind,
    pub slot: usize,
    pub crc: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportSource {
    Vmlinux,
    Symvers,
}

#[derive(Debug, Clone)]
pub struct ExportTable {
    pub source: ExportSource,
    pub machine: Option<u16>,
    pub is_64: bool,
    pub little: bool,
    pub layout: Option<KsymtabLayout>,
    /// Entries per `struct kernel_symbol`: 3 since v5.4 (namespace), 2 before.
    pub fields: usize,
    pub normal: KsymTable,
    pub gpl: KsymTable,
    /// Whether the kernel has CRC tables at all (`CONFIG_MODVERSIONS`).
    pub modversions: bool,
    pub release: Option<String>,
    pub vermagic: Option<String>,
    /// `__crc_*` labels when vmlinux still has a symbol table.
    pub crc_labels: HashMap<String, CrcLabel>,
    index: HashMap<String, (TableKind, usize)>,
    /// Exports of modules listed in Module.symvers (when given), by symbol.
    symvers_modules: HashMap<String, super::symvers::SymversEntry>,
}

/// What the loader finds for a name.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'t> {
    pub table: TableKind,
    pub index: usize,
    pub namespace: Option<&'t str>,
    /// `None`: no CRC table (check skipped by the kernel). `Some(None)`: unreadable slot.
    pub crc: Option<Option<u32>>,
}

impl ExportTable {
    pub fn table(&self, kind: TableKind) -> &KsymTable {
        match kind {
            TableKind::Normal => &self.normal,
            TableKind::Gpl => &self.gpl,
        }
    }

    pub fn count(&self) -> usize {
        self.normal.names.len() + self.gpl.names.len()
    }

    /// The kernel's `find_symbol` over vmlinux: the normal table first, then the GPL one.
    pub fn lookup(&self, name: &str) -> Option<Lookup<'_>> {
        let &(table, index) = self.index.get(name)?;
        let t = self.table(table);
        Some(Lookup {
            table,
            index,
            namespace: t.namespaces.get(index).and_then(|n| n.as_deref()),
            crc: self
                .modversions
                .then(|| t.effective_crcs.get(index).copied().flatten()),
        })
    }

    fn build_index(&mut self) {
        let mut index = HashMap::with_capacity(self.count());
        // Insert GPL first so a (buggy) duplicate in the normal table wins, as in find_symbol.
        for kind in [TableKind::Gpl, TableKind::Normal] {
            for (i, n) in self.table(kind).names.iter().enumerate() {
                index.insert(n.clone(), (kind, i));
            }
        }
        self.index = index;
    }

    /// Decodes the export table of a final-linked vmlinux (stripped or not).
    /// `layout` is the descriptor's expectation; the other layouts are tried if it does not fit.
    pub fn from_vmlinux(
        elf: &ElfFile<'_>,
        layout: Option<KsymtabLayout>,
    ) -> Result<Self, ParseError> {
        if elf.section("__ksymtab").is_none() && elf.section("__ksymtab_gpl").is_none() {
            return Err(ParseError::Malformed(
                "no __ksymtab section: this is not a vmlinux ELF (a compressed vmlinuz/bzImage needs \
                 scripts/extract-vmlinux first), or the kernel was built without modules"
                    .into(),
            ));
        }
        let mut candidates: Vec<(KsymtabLayout, usize)> = Vec::new();
        if let Some(l) = layout {
            candidates.push((l, 3));
        }
        for c in [
            (KsymtabLayout::Absolute, 3),
            (KsymtabLayout::Prel32, 3),
            (KsymtabLayout::Absolute, 2),
            (KsymtabLayout::Prel32, 2),
        ] {
            if !candidates.contains(&c) {
                candidates.push(c);
            }
        }
        let mut last_err = None;
        for (layout, fields) in candidates {
            match decode_tables(elf, layout, fields) {
                Ok((normal, gpl)) => {
                    let modversions = elf
                        .section("__kcrctab")
                        .into_iter()
                        .chain(elf.section("__kcrctab_gpl"))
                        .any(|s| s.shdr.sh_size > 0);
                    let (release, vermagic) = find_vermagic(elf.bytes);
                    let mut t = ExportTable {
                        source: ExportSource::Vmlinux,
                        machine: Some(elf.header.e_machine),
                        is_64: elf.is_64(),
                        little: elf.little(),
                        layout: Some(layout),
                        fields,
                        normal,
                        gpl,
                        modversions,
                        release,
                        vermagic,
                        crc_labels: crc_labels(elf)?,
                        index: HashMap::new(),
                        symvers_modules: HashMap::new(),
                    };
                    t.build_index();
                    return Ok(t);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| ParseError::Malformed("no export table layout fits".into())))
    }

    /// An export table taken from Module.symvers alone: the vmlinux rows, in the strcmp order
    /// the linker gives them, each with its own CRC (no index shift can be seen this way).
    pub fn from_symvers(symvers: &Symvers) -> Self {
        let mut normal = KsymTable::default();
        let mut gpl = KsymTable::default();
        let mut rows: Vec<_> = symvers
            .entries
            .iter()
            .filter(|e| e.module == "vmlinux")
            .collect();
        rows.sort_by(|a, b| a.symbol.as_bytes().cmp(b.symbol.as_bytes()));
        for r in rows {
            let t = if r.gpl { &mut gpl } else { &mut normal };
            t.names.push(r.symbol.clone());
            t.namespaces.push(r.namespace.clone());
            t.crc_slots.push(r.crc);
            t.effective_crcs.push(Some(r.crc));
        }
        let mut t = ExportTable {
            source: ExportSource::Symvers,
            machine: None,
            is_64: true,
            little: true,
            layout: None,
            fields: 3,
            normal,
            gpl,
            modversions: true,
            release: None,
            vermagic: None,
            crc_labels: HashMap::new(),
            index: HashMap::new(),
            symvers_modules: HashMap::new(),
        };
        t.build_index();
        t.add_symvers_modules(symvers);
        t
    }

    /// Remembers the module exports of Module.symvers, for symbols whose module is not
    /// among those being checked.
    pub fn add_symvers_modules(&mut self, symvers: &Symvers) {
        for e in symvers.entries.iter().filter(|e| e.module != "vmlinux") {
            self.symvers_modules.insert(e.symbol.clone(), e.clone());
        }
    }

    pub fn symvers_module_export(
        &self,
        name: &str,
        gplok: bool,
    ) -> Option<&super::symvers::SymversEntry> {
        self.symvers_modules.get(name).filter(|e| gplok || !e.gpl)
    }
}

fn decode_tables(
    elf: &ElfFile<'_>,
    layout: KsymtabLayout,
    fields: usize,
) -> Result<(KsymTable, KsymTable), ParseError> {
    let strings = elf.section("__ksymtab_strings");
    let mut out = Vec::new();
    for kind in TableKind::ALL {
        let mut t = KsymTable::default();
        if let Some(sec) = elf.section(kind.ksymtab()) {
            let data = elf.data(sec)?;
            let fsize = match layout {
                KsymtabLayout::Prel32 => 4,
                KsymtabLayout::Absolute => elf.word(),
            };
            let esize = fsize * fields;
            if data.len() % esize != 0 {
                return Err(ParseError::Malformed(format!(
                    "{} is {} bytes, not a multiple of the {esize}-byte entry",
                    kind.ksymtab(),
                    data.len()
                )));
            }
            let n = data.len() / esize;
            t.names.reserve(n);
            for i in 0..n {
                let field = |f: usize| -> Option<u64> {
                    let off = i * esize + f * fsize;
                    match layout {
                        KsymtabLayout::Absolute => elf.read_word(data, off),
                        KsymtabLayout::Prel32 => {
                            let rel = elf.read_i32(data, off)?;
                            if rel == 0 && f == 2 {
                                return Some(0);
                            }
                            Some(
                                sec.shdr
                                    .sh_addr
                                    .wrapping_add(off as u64)
                                    .wrapping_add(rel as i64 as u64),
                            )
                        }
                    }
                };
                let bad = || {
                    ParseError::Malformed(format!(
                        "{} entry {i}: name does not point at a string",
                        kind.ksymtab()
                    ))
                };
                let name_addr = field(1).ok_or_else(bad)?;
                let name = va_cstr(elf, strings, name_addr)
                    .filter(|n| is_symbol_name(n))
                    .ok_or_else(bad)?;
                let ns = if fields == 3 {
                    match field(2) {
                        Some(0) | None => None,
                        Some(a) => Some(va_cstr(elf, strings, a).ok_or_else(|| {
                            ParseError::Malformed(format!(
                                "{} entry {i} ({name}): bad namespace pointer",
                                kind.ksymtab()
                            ))
                        })?),
                    }
                } else {
                    None
                };
                t.names.push(name.to_string());
                t.namespaces
                    .push(ns.filter(|s| !s.is_empty()).map(str::to_string));
            }
        }
        if let Some(sec) = elf.section(kind.kcrctab()).filter(|s| s.shdr.sh_size > 0) {
            let data = elf.data(sec)?;
            t.crc_slots = (0..data.len() / 4)
                .filter_map(|i| elf.read_u32(data, i * 4))
                .collect();
            t.effective_crcs = (0..t.names.len())
                .map(|i| {
                    let addr = sec.shdr.sh_addr.wrapping_add(4 * i as u64);
                    elf.va_slice(addr, 4).and_then(|b| elf.read_u32(b, 0))
                })
                .collect();
        }
        out.push(t);
    }
    let gpl = out.pop().unwrap_or_default();
    let normal = out.pop().unwrap_or_default();
    Ok((normal, gpl))
}

/// Export names are C identifiers (plus `.` on some arches); anything else means a wrong layout.
fn is_symbol_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$')
}

/// The string at a virtual address, looked up in `__ksymtab_strings` first (the common case).
fn va_cstr<'a>(
    elf: &ElfFile<'a>,
    strings: Option<&super::reader::Section<'a>>,
    addr: u64,
) -> Option<&'a str> {
    if let Some(s) = strings {
        if super::reader::va_in(&s.shdr, addr) {
            let data = elf.data(s).ok()?;
            return super::cstr_at(data, (addr - s.shdr.sh_addr) as usize);
        }
    }
    let sec = elf
        .sections
        .iter()
        .find(|s| s.shdr.sh_addr != 0 && super::reader::va_in(&s.shdr, addr))?;
    let data = elf.data(sec).ok()?;
    super::cstr_at(data, (addr - sec.shdr.sh_addr) as usize)
}

fn crc_labels(elf: &ElfFile<'_>) -> Result<HashMap<String, CrcLabel>, ParseError> {
    let mut out = HashMap::new();
    let Some(syms) = elf.symbols()? else {
        return Ok(out);
    };
    let tables: Vec<_> = TableKind::ALL
        .iter()
        .filter_map(|&k| elf.section(k.kcrctab()).map(|s| (k, s)))
        .collect();
    for s in syms {
        let Some(name) = s.name.strip_prefix("__crc_") else {
            continue;
        };
        if s.shndx == goblin::elf::section_header::SHN_ABS as usize {
            // Before v5.19 a CRC was an absolute symbol whose value is the CRC.
            continue;
        }
        let Some(&(table, sec)) = tables.iter().find(|(_, sec)| sec.index == s.shndx) else {
            continue;
        };
        let off = s.value.wrapping_sub(sec.shdr.sh_addr);
        let Some(bytes) = elf.va_slice(s.value, 4) else {
            continue;
        };
        let Some(crc) = elf.read_u32(bytes, 0) else {
            continue;
        };
        out.insert(
            name.to_string(),
            CrcLabel {
                table,
                slot: (off / 4) as usize,
                crc,
            },
        );
    }
    Ok(out)
}

/// Finds `UTS_RELEASE` from the `Linux version` banner, then the kernel's `vermagic[]` string:
/// a NUL-delimited string starting with `<release> ` (`include/linux/vermagic.h`).
pub fn find_vermagic(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let mut release = None;
    for pos in memchr::memmem::find_iter(bytes, b"Linux version ") {
        let rest = &bytes[pos + 14..bytes.len().min(pos + 14 + 128)];
        let end = rest
            .iter()
            .position(|&b| b == b' ' || b == 0)
            .unwrap_or(rest.len());
        if end > 0 && rest[0].is_ascii_digit() && end < rest.len() && rest[end] == b' ' {
            if let Ok(r) = std::str::from_utf8(&rest[..end]) {
                release = Some(r.to_string());
                break;
            }
        }
    }
    let Some(rel) = release.clone() else {
        return (None, None);
    };
    let mut needle = Vec::with_capacity(rel.len() + 2);
    needle.push(0);
    needle.extend_from_slice(rel.as_bytes());
    needle.push(b' ');
    let mut best: Option<String> = None;
    for pos in memchr::memmem::find_iter(bytes, &needle) {
        let start = pos + 1;
        let tail = &bytes[start..bytes.len().min(start + 256)];
        let Some(end) = memchr::memchr(0, tail) else {
            continue;
        };
        let Ok(s) = std::str::from_utf8(&tail[..end]) else {
            continue;
        };
        let plausible = s[rel.len()..].split(' ').all(|t| {
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        });
        if !plausible {
            continue;
        }
        let strong = s.contains("mod_unload") || s.contains("modversions");
        if strong {
            return (release, Some(s.to_string()));
        }
        best.get_or_insert_with(|| s.to_string());
    }
    (release, best)
}
