//! The kernel's export table as the loader sees it: `__ksymtab[_gpl]` names and namespaces,
//! and, for each entry, the `__kcrctab[_gpl]` slot the kernel reads by index
//! (`kernel/module/main.c:find_symbol`, `symversion(base, i)`, no bounds check).
use super::reader::{ElfFile, ParseError};
use super::symvers::Symvers;
use crate::arch::KsymtabLayout;
use serde::Serialize;
use std::collections::HashMap;

pub use super::kinds::{gpl_only, TableKind, KSYM_FLAG_GPL_ONLY};

/// How a `__kcrctab` slot holds its CRC; read from the file, never from a version string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrcSlots {
    /// A 32-bit CRC per slot (4.10 and later).
    U32,
    /// `unsigned long` slots (4.9 and before; 8 bytes on 64-bit kernels).
    Word,
    /// `CONFIG_MODULE_REL_CRCS` (ppc64/s390 relocatable, 4.10-5.18): the slot holds the
    /// offset from itself to the CRC.
    Relative,
}

/// One `__ksymtab*` table and its CRC table.
#[derive(Debug, Clone, Default)]
pub struct KsymTable {
    pub names: Vec<String>,
    /// `None` for no namespace (NULL pointer, zero offset or "").
    pub namespaces: Vec<Option<String>>,
    /// The raw `__kcrctab*` slots, as many as the section holds.
    pub crc_slots: Vec<u32>,
    /// For entry i, the CRC the kernel reads through `__kcrctab` slot i, even past the
    /// table's end (`None` where that address is not in the file).
    pub effective_crcs: Vec<Option<u32>>,
    /// `__kflagstab` bytes (7.1+), one per entry; empty before 7.1.
    pub flags: Vec<u8>,
}

impl KsymTable {
    /// Whether entry i is GPL-only: by its table before 7.1, by its flag byte since.
    pub fn gpl_only(&self, kind: TableKind, i: usize) -> bool {
        gpl_only(kind, self.flags.get(i).copied())
    }
}

/// A `__crc_<sym>` label from `.symtab`: where modpost put that symbol's CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrcLabel {
    pub table: TableKind,
    pub slot: usize,
    pub crc: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportSource {
    #[default]
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
    /// One table per [`TableKind`], in `TableKind::ALL` order (absent ones empty).
    tables: [KsymTable; 5],
    /// Whether `__kflagstab` carries the GPL-only bit (7.1+: one merged `__ksymtab`).
    pub flagstab: bool,
    /// Whether the kernel has CRC tables at all (`CONFIG_MODVERSIONS`).
    pub modversions: bool,
    /// How the CRC slots hold their CRCs (when `modversions`).
    pub crc_slots: CrcSlots,
    /// Whether the `__crc_*` labels are absolute symbols whose value is the CRC (before
    /// 5.19), rather than labels on the slots themselves.
    pub crc_labels_absolute: bool,
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
    /// GPL-only: by its table before 7.1, by its `__kflagstab` byte since.
    pub gpl_only: bool,
}

/// Module.symvers' vmlinux rows in the order the linker sorts `__ksymtab` (strcmp).
fn vmlinux_rows(symvers: &Symvers) -> Vec<&crate::elf::symvers::SymversEntry> {
    let mut rows: Vec<_> = symvers
        .entries
        .iter()
        .filter(|e| e.module == "vmlinux")
        .collect();
    rows.sort_by(|a, b| a.symbol.as_bytes().cmp(b.symbol.as_bytes()));
    rows
}

impl ExportTable {
    pub fn table(&self, kind: TableKind) -> &KsymTable {
        &self.tables[kind as usize]
    }

    pub fn table_mut(&mut self, kind: TableKind) -> &mut KsymTable {
        &mut self.tables[kind as usize]
    }

    /// The tables that hold entries, with their kind.
    pub fn tables(&self) -> impl Iterator<Item = (TableKind, &KsymTable)> {
        TableKind::ALL
            .into_iter()
            .map(|k| (k, self.table(k)))
            .filter(|(_, t)| !t.names.is_empty())
    }

    pub fn count(&self) -> usize {
        self.tables.iter().map(|t| t.names.len()).sum()
    }

    /// GPL-only exports, whether by table or by flag.
    pub fn gpl_count(&self) -> usize {
        self.tables()
            .map(|(k, t)| (0..t.names.len()).filter(|&i| t.gpl_only(k, i)).count())
            .sum()
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
            gpl_only: t.gpl_only(table, index),
        })
    }

    fn build_index(&mut self) {
        let mut index = HashMap::with_capacity(self.count());
        // Insert in reverse search order so a (buggy) duplicate in an earlier table wins,
        // as in find_symbol.
        for kind in TableKind::ALL.into_iter().rev() {
            for (i, n) in self.table(kind).names.iter().enumerate() {
                index.insert(n.clone(), (kind, i));
            }
        }
        self.index = index;
    }

    /// Decodes the export table of a final-linked vmlinux (stripped or not), or of a raw
    /// image mapped through System.map (see [`super::image`]).
    /// `layout` is the descriptor's expectation; the other layouts are tried if it does not
    /// fit, so a kernel from before PREL32 (4.19) or namespaces (5.4) is read by its sizes.
    pub fn from_vmlinux(
        elf: &ElfFile<'_>,
        layout: Option<KsymtabLayout>,
    ) -> Result<Self, ParseError> {
        if !TableKind::ALL
            .iter()
            .any(|k| elf.section(k.ksymtab()).is_some())
        {
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
                Ok(mut tables) => {
                    let modversions = TableKind::ALL
                        .iter()
                        .any(|k| elf.section(k.kcrctab()).is_some_and(|s| s.shdr.sh_size > 0));
                    let crc_slots = read_crc_slots(elf, &mut tables);
                    let flagstab = read_flagstab(elf, &mut tables[TableKind::Normal as usize])?;
                    let (release, vermagic) = find_vermagic(elf.bytes);
                    let (crc_labels, crc_labels_absolute) = crc_labels(elf, &tables)?;
                    let mut t = ExportTable {
                        source: ExportSource::Vmlinux,
                        machine: Some(elf.header.e_machine),
                        is_64: elf.is_64(),
                        little: elf.little(),
                        layout: Some(layout),
                        fields,
                        tables,
                        flagstab,
                        modversions,
                        crc_slots,
                        crc_labels_absolute,
                        release,
                        vermagic,
                        crc_labels,
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
    /// A kernel without MODVERSIONS writes every CRC as 0: then there are no CRCs to check.
    pub fn from_symvers(symvers: &Symvers) -> Self {
        let mut tables: [KsymTable; 5] = Default::default();
        let rows = vmlinux_rows(symvers);
        let modversions = rows.iter().any(|r| r.crc != 0);
        for r in rows {
            let t = &mut tables[if r.gpl {
                TableKind::Gpl
            } else {
                TableKind::Normal
            } as usize];
            t.names.push(r.symbol.clone());
            t.namespaces.push(r.namespace.clone());
            if modversions {
                t.crc_slots.push(r.crc);
                t.effective_crcs.push(Some(r.crc));
            }
        }
        let mut t = ExportTable {
            source: ExportSource::Symvers,
            machine: None,
            is_64: true,
            little: true,
            layout: None,
            fields: 3,
            tables,
            flagstab: false,
            modversions,
            crc_slots: CrcSlots::U32,
            crc_labels_absolute: false,
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

    /// The table a 7.1+ kernel keeps, from Module.symvers: one `__ksymtab` sorted by name,
    /// GPL-only exports flagged in `__kflagstab` instead of a table of their own.
    pub fn from_symvers_flagged(symvers: &Symvers) -> Self {
        let mut t = Self::from_symvers(symvers);
        let rows = vmlinux_rows(symvers);
        let mut one = KsymTable::default();
        for r in rows {
            one.names.push(r.symbol.clone());
            one.namespaces.push(r.namespace.clone());
            one.flags.push(if r.gpl { KSYM_FLAG_GPL_ONLY } else { 0 });
            if t.modversions {
                one.crc_slots.push(r.crc);
                one.effective_crcs.push(Some(r.crc));
            }
        }
        t.tables = Default::default();
        t.tables[TableKind::Normal as usize] = one;
        t.flagstab = true;
        t.build_index();
        t
    }

    /// Remembers the module exports of Module.symvers, for symbols whose module is not
    /// among those being checked.
    pub fn add_symvers_modules(&mut self, symvers: &Symvers) {
        for e in symvers.entries.iter().filter(|e| e.module != "vmlinux") {
            self.symvers_modules.insert(e.symbol.clone(), e.clone());
        }
    }

    /// Every module export Module.symvers listed (when given), in no particular order.
    pub fn symvers_module_exports(&self) -> impl Iterator<Item = &super::symvers::SymversEntry> {
        self.symvers_modules.values()
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
) -> Result<[KsymTable; 5], ParseError> {
    let strings = elf.section("__ksymtab_strings");
    let mut out: [KsymTable; 5] = Default::default();
    for kind in TableKind::ALL {
        let t = &mut out[kind as usize];
        let Some(sec) = elf.section(kind.ksymtab()) else {
            continue;
        };
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
    Ok(out)
}

/// Reads every `__kcrctab*` slot and, for each export, the CRC the kernel reads through it.
/// The slot format comes from the file: `unsigned long` slots make the table one word per
/// export (4.9 and before); self-relative slots (`CONFIG_MODULE_REL_CRCS`) all point into
/// the image, which raw CRCs practically never do.
fn read_crc_slots(elf: &ElfFile<'_>, tables: &mut [KsymTable; 5]) -> CrcSlots {
    let secs: Vec<_> = TableKind::ALL
        .iter()
        .map(|k| elf.section(k.kcrctab()).filter(|s| s.shdr.sh_size > 0))
        .collect();
    let word = elf.word() as u64;
    let entries: u64 = tables.iter().map(|t| t.names.len() as u64).sum();
    let bytes: u64 = secs.iter().flatten().map(|s| s.shdr.sh_size).sum();
    let format = if word == 8 && entries > 0 && bytes == 8 * entries {
        CrcSlots::Word
    } else {
        let (mut nonzero, mut inside) = (0usize, 0usize);
        for (k, sec) in secs.iter().enumerate() {
            let Some(sec) = sec else { continue };
            let Ok(data) = elf.data(sec) else { continue };
            for i in 0..(data.len() / 4).min(tables[k].names.len()).min(256) {
                let Some(v) = elf.read_i32(data, i * 4).filter(|&v| v != 0) else {
                    continue;
                };
                nonzero += 1;
                let target = sec
                    .shdr
                    .sh_addr
                    .wrapping_add(4 * i as u64)
                    .wrapping_add(v as i64 as u64);
                if elf.va_slice(target, 4).is_some() {
                    inside += 1;
                }
            }
        }
        if nonzero >= 4 && inside * 10 >= nonzero * 9 {
            CrcSlots::Relative
        } else {
            CrcSlots::U32
        }
    };
    let size = if format == CrcSlots::Word { 8 } else { 4 };
    for (k, sec) in secs.iter().enumerate() {
        let Some(sec) = sec else { continue };
        let Ok(data) = elf.data(sec) else { continue };
        let t = &mut tables[k];
        let read = |slot_addr: u64| -> Option<u32> {
            let b = elf.va_slice(slot_addr, size)?;
            match format {
                CrcSlots::U32 => elf.read_u32(b, 0),
                CrcSlots::Word => elf.read_word(b, 0).map(|w| w as u32),
                CrcSlots::Relative => {
                    let v = elf.read_i32(b, 0)?;
                    let at = slot_addr.wrapping_add(v as i64 as u64);
                    elf.va_slice(at, 4).and_then(|c| elf.read_u32(c, 0))
                }
            }
        };
        t.crc_slots = (0..data.len() / size as usize)
            .filter_map(|i| read(sec.shdr.sh_addr + size * i as u64))
            .collect();
        t.effective_crcs = (0..t.names.len())
            .map(|i| read(sec.shdr.sh_addr.wrapping_add(size * i as u64)))
            .collect();
    }
    format
}

/// 7.1's `__kflagstab`: one byte per `__ksymtab` entry. Returns whether it was there.
fn read_flagstab(elf: &ElfFile<'_>, normal: &mut KsymTable) -> Result<bool, ParseError> {
    let Some(sec) = elf.section("__kflagstab") else {
        return Ok(false);
    };
    let data = elf.data(sec)?;
    normal.flags = data.to_vec();
    Ok(true)
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

/// `__crc_<sym>` labels from `.symtab`, and whether they are absolute symbols.
/// Since 5.19 each labels its symbol's slot; before, each is an absolute symbol whose value
/// is the CRC itself (the slot was filled by the linker from it), or with REL_CRCS a label on
/// the CRC the slot points at.
fn crc_labels(
    elf: &ElfFile<'_>,
    tables: &[KsymTable; 5],
) -> Result<(HashMap<String, CrcLabel>, bool), ParseError> {
    let mut out = HashMap::new();
    let Some(syms) = elf.symbols()? else {
        return Ok((out, false));
    };
    let crctabs: Vec<_> = TableKind::ALL
        .iter()
        .filter_map(|&k| elf.section(k.kcrctab()).map(|s| (k, s)))
        .collect();
    let mut absolute = 0usize;
    let mut position: Option<HashMap<&str, (TableKind, usize)>> = None;
    for s in syms {
        let Some(name) = s.name.strip_prefix("__crc_") else {
            continue;
        };
        let in_crctab = crctabs.iter().any(|(_, sec)| sec.index == s.shndx);
        if !in_crctab {
            // Before 5.19: an absolute symbol whose value is the CRC, or (REL_CRCS) a label
            // on the CRC in .rodata that the slot points at.
            let crc = if s.shndx == goblin::elf::section_header::SHN_ABS as usize {
                Some(s.value as u32)
            } else {
                elf.va_slice(s.value, 4).and_then(|b| elf.read_u32(b, 0))
            };
            let Some(crc) = crc else { continue };
            absolute += 1;
            let pos = position.get_or_insert_with(|| {
                TableKind::ALL
                    .iter()
                    .flat_map(|&k| {
                        tables[k as usize]
                            .names
                            .iter()
                            .enumerate()
                            .map(move |(i, n)| (n.as_str(), (k, i)))
                    })
                    .collect()
            });
            if let Some(&(table, slot)) = pos.get(name) {
                out.insert(name.to_string(), CrcLabel { table, slot, crc });
            }
            continue;
        }
        let Some(&(table, sec)) = crctabs.iter().find(|(_, sec)| sec.index == s.shndx) else {
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
    let abs = absolute > 0 && absolute * 2 >= out.len();
    Ok((out, abs))
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
