//! Facts about one module (`.ko`, an `ET_REL` object) that decide whether it loads:
//! identity, `.modinfo`, `__versions` (or the 6.14+ extended pair), undefined symbols and
//! its own exports with the CRC slot the kernel would read for each.
use super::exports::TableKind;
use super::reader::{ElfFile, ParseError, Symbol};
use crate::arch::{ElfFacts, KsymtabLayout};
use goblin::elf::section_header::{SHF_ALLOC, SHN_COMMON, SHN_LORESERVE, SHN_UNDEF};
use goblin::elf::sym::STB_WEAK;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionEntry {
    pub name: String,
    /// The whole `unsigned long` field; the kernel compares it with a u32 CRC.
    pub crc: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionsFormat {
    /// `__versions`: 64-byte `struct modversion_info` records.
    Basic,
    /// `__version_ext_crcs` + `__version_ext_names` (6.14+ EXTENDED_MODVERSIONS).
    Extended,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UndefSymbol {
    pub name: String,
    pub weak: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleExport {
    pub name: String,
    pub table: TableKind,
    pub index: usize,
    pub namespace: Option<String>,
    /// GPL-only: by its table before 7.1, by its `__kflagstab` byte since.
    pub gpl_only: bool,
    /// The CRC slot the kernel reads for this export (`None`: no CRC table or past its end).
    pub crc: Option<u32>,
    /// The CRC at this symbol's own `__crc_<name>` label, when the symbol table has it.
    pub label_crc: Option<u32>,
}

/// ELF identity, readable even when nothing else is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfIdentity {
    pub machine: u16,
    pub is_64: bool,
    pub little: bool,
    pub e_type: u16,
    pub e_flags: u32,
}

impl ElfIdentity {
    pub fn of(elf: &ElfFile<'_>) -> Self {
        ElfIdentity {
            machine: elf.header.e_machine,
            is_64: elf.is_64(),
            little: elf.little(),
            e_type: elf.header.e_type,
            e_flags: elf.header.e_flags,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleFacts {
    pub identity: ElfIdentity,
    /// `.modinfo name=`, else `struct module`'s name field, as the kernel chooses.
    pub name: Option<String>,
    pub has_symtab: bool,
    pub has_this_module: bool,
    pub vermagic: Option<String>,
    /// First `license=` only: that is the one the kernel looks at.
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub import_ns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub softdep_pre: Vec<String>,
    /// Not kept where facts are saved (a baseline's modules): no judgement reads them.
    #[serde(skip)]
    pub aliases: Vec<String>,
    pub versions: Option<Vec<VersionEntry>>,
    pub versions_format: VersionsFormat,
    pub undefined: Vec<UndefSymbol>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ModuleExport>,
    /// Per [`TableKind`] (in `TableKind::ALL` order): whether the module has that CRC table.
    pub has_kcrctab: [bool; 5],
    /// Symbols the loader rejects outright (`SHN_COMMON`, invalid section index).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bad_symbols: Vec<String>,
}

impl ModuleFacts {
    pub fn parse(elf: &ElfFile<'_>, facts: &ElfFacts) -> Result<Self, ParseError> {
        let identity = ElfIdentity::of(elf);
        let modinfo = match elf
            .section(".modinfo")
            .filter(|s| s.shdr.sh_flags & SHF_ALLOC as u64 != 0)
        {
            Some(s) => parse_modinfo(elf.data(s)?),
            None => Vec::new(),
        };
        let first = |k: &str| {
            modinfo
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let all = |k: &str| -> Vec<String> {
            modinfo
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .collect()
        };

        let this_module = elf
            .section(".gnu.linkonce.this_module")
            .filter(|s| s.shdr.sh_flags & SHF_ALLOC as u64 != 0);
        let struct_name = match this_module {
            // name follows `enum module_state state; struct list_head list;`
            Some(s) => elf
                .data(s)?
                .get(3 * elf.word()..)
                .and_then(|d| super::cstr_at(d, 0))
                .map(str::to_string),
            None => None,
        };
        let name = first("name").or(struct_name).filter(|n| !n.is_empty());

        let symbols = elf.symbols()?;
        let (mut versions, versions_format) = read_versions(elf)?;
        if facts.dedot_undefined {
            for v in versions.iter_mut().flatten() {
                if let Some(rest) = v.name.strip_prefix('.') {
                    v.name = rest.to_string();
                }
            }
        }
        let mut undefined = Vec::new();
        let mut bad_symbols = Vec::new();
        if let Some(syms) = &symbols {
            let shnum = elf.sections.len();
            for s in syms.iter().skip(1) {
                if s.shndx == SHN_UNDEF as usize {
                    if s.name.is_empty()
                        || facts.skip_undefined_types.contains(&s.kind)
                        || facts.loader_defined_symbols.iter().any(|n| n == s.name)
                    {
                        continue;
                    }
                    let name = match s.name.strip_prefix('.') {
                        Some(rest) if facts.dedot_undefined => rest,
                        _ => s.name,
                    };
                    undefined.push(UndefSymbol {
                        name: name.to_string(),
                        weak: s.bind == STB_WEAK,
                    });
                } else if s.shndx == SHN_COMMON as usize && !s.name.starts_with("__gnu_lto") {
                    bad_symbols.push(format!("{}: please compile with -fno-common", s.name));
                } else if s.shndx >= shnum && s.shndx < SHN_LORESERVE as usize {
                    bad_symbols.push(format!(
                        "Symbol {} has an invalid section index {} (max {})",
                        s.name,
                        s.shndx,
                        shnum.saturating_sub(1)
                    ));
                }
            }
        }
        let softdep_pre = all("softdep").iter().flat_map(|v| softdep_pre(v)).collect();
        let mut exports = Vec::new();
        let mut has_kcrctab = [false; 5];
        for (k, kind) in TableKind::ALL.into_iter().enumerate() {
            has_kcrctab[k] = elf
                .section(kind.kcrctab())
                .is_some_and(|s| s.shdr.sh_size > 0);
            exports.extend(read_exports(elf, facts, kind, symbols.as_deref())?);
        }
        Ok(ModuleFacts {
            identity,
            name,
            has_symtab: symbols.is_some(),
            has_this_module: this_module.is_some(),
            vermagic: first("vermagic"),
            license: first("license"),
            import_ns: all("import_ns"),
            depends: first("depends")
                .map(|d| {
                    d.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            softdep_pre,
            aliases: all("alias"),
            versions,
            versions_format,
            undefined,
            exports,
            has_kcrctab,
            bad_symbols,
        })
    }

    /// The first `__versions` entry with this name (the kernel's `check_version` stops there).
    pub fn version_of(&self, symbol: &str) -> Option<u64> {
        self.versions
            .as_ref()?
            .iter()
            .find(|v| v.name == symbol)
            .map(|v| v.crc)
    }
}

/// `key=value\0` strings, possibly with NUL padding between them.
fn parse_modinfo(data: &[u8]) -> Vec<(String, String)> {
    data.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let s = String::from_utf8_lossy(s);
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// `softdep=pre: a b post: c` → [a, b]
fn softdep_pre(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_pre = false;
    for tok in v.split_whitespace() {
        match tok {
            "pre:" => in_pre = true,
            "post:" => in_pre = false,
            t if in_pre => out.push(t.to_string()),
            _ => {}
        }
    }
    out
}

fn read_versions(
    elf: &ElfFile<'_>,
) -> Result<(Option<Vec<VersionEntry>>, VersionsFormat), ParseError> {
    let alloc = |name: &str| {
        elf.section(name)
            .filter(|s| s.shdr.sh_flags & SHF_ALLOC as u64 != 0)
    };
    // 6.14+: "If we have extended version info, rely on it" (kernel/module/version.c).
    if let (Some(crcs), Some(names)) = (alloc("__version_ext_crcs"), alloc("__version_ext_names")) {
        let crcs = elf.data(crcs)?;
        let names = elf.data(names)?;
        let mut out = Vec::new();
        let mut off = 0;
        for i in 0..crcs.len() / 4 {
            let name = super::cstr_at(names, off).ok_or_else(|| {
                ParseError::Malformed(format!(
                    "__version_ext_names ends before the name of entry {i}"
                ))
            })?;
            off += name.len() + 1;
            out.push(VersionEntry {
                name: name.to_string(),
                crc: elf.read_u32(crcs, i * 4).unwrap_or(0) as u64,
            });
        }
        return Ok((Some(out), VersionsFormat::Extended));
    }
    let Some(sec) = alloc("__versions") else {
        return Ok((None, VersionsFormat::Basic));
    };
    let data = elf.data(sec)?;
    let w = elf.word();
    let out = data
        .chunks_exact(64)
        .map(|rec| VersionEntry {
            name: super::cstr_at(&rec[w..], 0)
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&rec[w..]).into_owned()),
            crc: elf.read_word(rec, 0).unwrap_or(0),
        })
        .collect();
    Ok((Some(out), VersionsFormat::Basic))
}

/// A module's own exports. Names come from the `__ksymtab*` relocations, as the loader sees
/// them; the `__ksymtab_<name>` labels fill in where a relocation is missing. The entry
/// layout (PREL32 or absolute, with or without the 5.4 namespace field) is read from where
/// the name relocations or labels fall, not assumed.
fn read_exports(
    elf: &ElfFile<'_>,
    facts: &ElfFacts,
    kind: TableKind,
    symbols: Option<&[Symbol<'_>]>,
) -> Result<Vec<ModuleExport>, ParseError> {
    let Some(sec) = elf.section(kind.ksymtab()) else {
        return Ok(Vec::new());
    };
    if sec.shdr.sh_size == 0 {
        return Ok(Vec::new());
    }
    let data = elf.data(sec)?;
    let relocs = if symbols.is_some() {
        elf.relocations_for(sec.index, facts)?
    } else {
        Vec::new()
    };
    let labels: Vec<(u64, &str)> = symbols
        .into_iter()
        .flatten()
        .filter(|s| s.shndx == sec.index)
        .filter_map(|s| Some((s.value, s.name.strip_prefix("__ksymtab_")?)))
        .collect();
    let (fsize, fields) = entry_layout(elf, facts, data.len(), &relocs, &labels);
    let esize = fsize * fields;
    let n = data.len() / esize;
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut names: Vec<Option<String>> = vec![None; n];
    let mut namespaces: Vec<Option<String>> = vec![None; n];
    if let Some(syms) = symbols {
        for r in &relocs {
            let (i, field) = (
                (r.offset as usize) / esize,
                (r.offset as usize) % esize / fsize,
            );
            if i >= n || field == 0 || (r.offset as usize) % fsize != 0 {
                continue;
            }
            let Some(s) = reloc_target_str(elf, syms, r, data, fsize) else {
                continue;
            };
            match field {
                1 => names[i] = Some(s.to_string()),
                _ => namespaces[i] = Some(s.to_string()).filter(|s| !s.is_empty()),
            }
        }
        for &(value, x) in &labels {
            let i = value as usize / esize;
            if i < n && names[i].is_none() {
                names[i] = Some(x.to_string());
            }
        }
    }
    let crcs = module_crc_slots(elf, facts, kind, symbols, n)?;
    let flags = if kind == TableKind::Normal {
        elf.section_data("__kflagstab")?.unwrap_or(&[])
    } else {
        &[]
    };
    let mut out = Vec::with_capacity(n);
    for (i, (name, namespace)) in names.into_iter().zip(namespaces).enumerate() {
        let Some(name) = name else {
            return Err(ParseError::Malformed(format!(
                "{} entry {i} has no name",
                kind.ksymtab()
            )));
        };
        out.push(ModuleExport {
            crc: crcs.slots.get(i).copied().flatten(),
            label_crc: crcs.labels.get(name.as_str()).copied(),
            gpl_only: super::exports::gpl_only(kind, flags.get(i).copied()),
            name,
            table: kind,
            index: i,
            namespace,
        });
    }
    Ok(out)
}

/// The string a relocation points at: S + A inside the symbol's section.
fn reloc_target_str<'a>(
    elf: &ElfFile<'a>,
    syms: &[Symbol<'_>],
    r: &super::reader::Relocation,
    data: &[u8],
    fsize: usize,
) -> Option<&'a str> {
    let sym = syms.get(r.sym)?;
    let addend = match r.addend {
        Some(a) => a,
        None if fsize == 4 => elf.read_i32(data, r.offset as usize).unwrap_or(0) as i64,
        None => elf.read_word(data, r.offset as usize).unwrap_or(0) as i64,
    };
    let target = elf.sections.get(sym.shndx)?;
    let tdata = elf.data(target).ok()?;
    let off = sym.value.wrapping_add(addend as u64) as usize;
    super::cstr_at(tdata, off)
}

/// (field size, fields per entry) of a module's `struct kernel_symbol`: 3 fields since 5.4,
/// 2 before; 4-byte fields for PREL32, a word for absolute pointers. Each entry has one name,
/// at field 1: the layout is the one under which every entry has its name relocation (or its
/// `__ksymtab_<name>` label at an entry boundary). The descriptor's layout breaks ties.
fn entry_layout(
    elf: &ElfFile<'_>,
    facts: &ElfFacts,
    size: usize,
    relocs: &[super::reader::Relocation],
    labels: &[(u64, &str)],
) -> (usize, usize) {
    let w = elf.word();
    let preferred = match facts.ksymtab {
        KsymtabLayout::Prel32 => 4,
        KsymtabLayout::Absolute => w,
    };
    let mut candidates = vec![(preferred, 3), (if preferred == 4 { w } else { 4 }, 3)];
    candidates.extend([(preferred, 2), (if preferred == 4 { w } else { 4 }, 2)]);
    candidates.dedup();
    let fits = |&(f, k): &(usize, usize)| -> bool {
        let e = f * k;
        if size % e != 0 {
            return false;
        }
        let n = size / e;
        if !labels.is_empty() {
            return labels.len() == n
                && labels
                    .iter()
                    .all(|(v, _)| *v as usize % e == 0 && (*v as usize) < size);
        }
        let mut named = vec![false; n];
        for r in relocs {
            let o = r.offset as usize;
            if o < size && o % e == f {
                named[o / e] = true;
            } else if o % f != 0 || o >= size {
                return false;
            }
        }
        !relocs.is_empty() && named.iter().all(|&b| b)
    };
    candidates
        .iter()
        .copied()
        .find(fits)
        .unwrap_or((preferred, 3))
}

/// What a module's `__kcrctab*` gives the kernel for each export, and its `__crc_` labels.
struct ModuleCrcs<'a> {
    slots: Vec<Option<u32>>,
    labels: std::collections::HashMap<&'a str, u32>,
}

/// Reads a module's CRC slots. Since 5.19 they are plain data. Before, each slot is a
/// relocation: against an absolute `__crc_<sym>` symbol whose value is the CRC (the slot's
/// bytes are 0 in the file), or, with `CONFIG_MODULE_REL_CRCS`, a place-relative one
/// against a label on the CRC in `.rodata`. Slots are a word wide up to 4.9.
fn module_crc_slots<'a>(
    elf: &ElfFile<'a>,
    facts: &ElfFacts,
    kind: TableKind,
    symbols: Option<&[Symbol<'a>]>,
    entries: usize,
) -> Result<ModuleCrcs<'a>, ParseError> {
    let mut out = ModuleCrcs {
        slots: Vec::new(),
        labels: Default::default(),
    };
    let Some(sec) = elf.section(kind.kcrctab()).filter(|s| s.shdr.sh_size > 0) else {
        return Ok(out);
    };
    let data = elf.data(sec)?;
    let size = if elf.word() == 8 && data.len() == 8 * entries && entries > 0 {
        8
    } else {
        4
    };
    let read_raw = |off: usize| -> Option<u32> {
        if size == 8 {
            elf.read_word(data, off).map(|w| w as u32)
        } else {
            elf.read_u32(data, off)
        }
    };
    out.slots = (0..data.len() / size).map(|i| read_raw(i * size)).collect();
    let Some(syms) = symbols else {
        return Ok(out);
    };
    // The value a symbol stands for as a CRC: its own value when absolute, else the u32
    // stored at it.
    let crc_at = |sym: &Symbol<'_>, addend: i64| -> Option<u32> {
        if sym.shndx == goblin::elf::section_header::SHN_ABS as usize {
            return Some(sym.value.wrapping_add(addend as u64) as u32);
        }
        let t = elf.sections.get(sym.shndx)?;
        let d = elf.data(t).ok()?;
        elf.read_u32(d, sym.value.wrapping_add(addend as u64) as usize)
    };
    for r in elf.relocations_for(sec.index, facts)? {
        let i = r.offset as usize / size;
        let Some(sym) = syms.get(r.sym) else { continue };
        if i >= out.slots.len() || r.offset as usize % size != 0 {
            continue;
        }
        let addend = match r.addend {
            Some(a) => a,
            None => read_raw(r.offset as usize).unwrap_or(0) as i32 as i64,
        };
        // A place-relative relocation (REL_CRCS) points at the CRC: read what is there.
        // For REL the stored addend of `.long __crc_x - .` is 0 as well, so S + A is the
        // label either way.
        out.slots[i] = crc_at(sym, addend);
    }
    for s in syms {
        let Some(name) = s.name.strip_prefix("__crc_") else {
            continue;
        };
        if s.shndx == sec.index {
            if let Some(c) = read_raw(s.value as usize) {
                out.labels.insert(name, c);
            }
        } else if s.shndx == goblin::elf::section_header::SHN_ABS as usize {
            out.labels.insert(name, s.value as u32);
        }
    }
    Ok(out)
}
