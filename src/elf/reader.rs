//! A bounds-checked view of one ELF file: header, named sections, symbols, relocations.
//!
//! goblin does the decoding; this layer makes every offset and size checked against the
//! file, so hostile bytes give a `ParseError`, never a panic or a huge allocation.
use crate::arch::{ElfFacts, RelocInfo};
use goblin::container::{Container, Ctx};
use goblin::elf::header::Header;
use goblin::elf::reloc::RelocSection;
use goblin::elf::section_header::{SectionHeader, SHT_NOBITS, SHT_REL, SHT_RELA, SHT_SYMTAB};
use goblin::elf::sym::Symtab;
use goblin::strtab::Strtab;
use scroll::{Endian, Pread};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not an ELF file (bad magic)")]
    NotElf,
    #[error("truncated or malformed ELF: {0}")]
    Malformed(String),
}

fn malformed(e: impl std::fmt::Display) -> ParseError {
    ParseError::Malformed(e.to_string())
}

pub struct Section<'a> {
    pub index: usize,
    pub name: &'a str,
    pub shdr: SectionHeader,
}

/// A symbol with its name resolved.
#[derive(Debug, Clone)]
pub struct Symbol<'a> {
    pub name: &'a str,
    pub value: u64,
    pub shndx: usize,
    pub bind: u8,
    pub kind: u8,
}

/// A relocation with its type already masked for the architecture.
#[derive(Debug, Clone, Copy)]
pub struct Relocation {
    pub offset: u64,
    pub sym: usize,
    pub rtype: u32,
    /// RELA addend; for REL sections the addend lives in the target bytes.
    pub addend: Option<i64>,
}

pub struct ElfFile<'a> {
    pub bytes: &'a [u8],
    pub header: Header,
    pub ctx: Ctx,
    pub sections: Vec<Section<'a>>,
}

impl<'a> ElfFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
            return Err(ParseError::NotElf);
        }
        let header = goblin::elf::Elf::parse_header(bytes).map_err(malformed)?;
        let container =
            if header.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64 {
                Container::Big
            } else {
                Container::Little
            };
        let endian = header.endianness().map_err(malformed)?;
        let ctx = Ctx::new(container, endian);
        let shoff = usize::try_from(header.e_shoff).map_err(malformed)?;
        if shoff >= bytes.len() {
            return Err(malformed(format!(
                "section headers at {shoff:#x} lie beyond the file ({:#x} bytes)",
                bytes.len()
            )));
        }
        if header.e_shentsize as usize != SectionHeader::size(ctx) {
            return Err(malformed(format!(
                "e_shentsize {} does not fit the ELF class",
                header.e_shentsize
            )));
        }
        let shdrs =
            SectionHeader::parse(bytes, shoff, header.e_shnum as usize, ctx).map_err(malformed)?;
        let shstrndx = if header.e_shstrndx == goblin::elf::section_header::SHN_XINDEX as u16 {
            shdrs.first().map(|s| s.sh_link as usize).unwrap_or(0)
        } else {
            header.e_shstrndx as usize
        };
        let names = shdrs
            .get(shstrndx)
            .and_then(|s| range(bytes, s.sh_offset, s.sh_size))
            .ok_or_else(|| malformed("section name table lies outside the file"))?;
        let sections = shdrs
            .into_iter()
            .enumerate()
            .map(|(index, shdr)| {
                let name = crate::elf::cstr_at(names, shdr.sh_name).unwrap_or("");
                Section { index, name, shdr }
            })
            .collect();
        Ok(ElfFile {
            bytes,
            header,
            ctx,
            sections,
        })
    }

    pub fn is_64(&self) -> bool {
        self.ctx.container.is_big()
    }

    pub fn little(&self) -> bool {
        self.ctx.le == Endian::Little
    }

    pub fn word(&self) -> usize {
        if self.is_64() {
            8
        } else {
            4
        }
    }

    pub fn section(&self, name: &str) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// File bytes of a section; empty for SHT_NOBITS; an error if it lies outside the file.
    pub fn data(&self, s: &Section<'a>) -> Result<&'a [u8], ParseError> {
        if s.shdr.sh_type == SHT_NOBITS {
            return Ok(&[]);
        }
        range(self.bytes, s.shdr.sh_offset, s.shdr.sh_size)
            .ok_or_else(|| malformed(format!("section {} lies outside the file", s.name)))
    }

    pub fn section_data(&self, name: &str) -> Result<Option<&'a [u8]>, ParseError> {
        self.section(name).map(|s| self.data(s)).transpose()
    }

    /// The symbol table, if any, with names resolved (index 0 included, as in the file).
    pub fn symbols(&self) -> Result<Option<Vec<Symbol<'a>>>, ParseError> {
        let Some(st) = self.sections.iter().find(|s| s.shdr.sh_type == SHT_SYMTAB) else {
            return Ok(None);
        };
        let data = self.data(st)?;
        let entsize = if self.is_64() { 24 } else { 16 }; // sizeof(Elf64_Sym) / sizeof(Elf32_Sym)
        let count = data.len() / entsize;
        let strsec = self
            .sections
            .get(st.shdr.sh_link as usize)
            .ok_or_else(|| malformed("symbol table's sh_link names no section"))?;
        let strdata = self.data(strsec)?;
        let strtab = Strtab::parse(strdata, 0, strdata.len(), 0).map_err(malformed)?;
        let syms = Symtab::parse(data, 0, count, self.ctx).map_err(malformed)?;
        let mut out = Vec::with_capacity(count);
        for s in syms.iter() {
            out.push(Symbol {
                name: strtab.get_at(s.st_name).unwrap_or(""),
                value: s.st_value,
                shndx: s.st_shndx,
                bind: s.st_bind(),
                kind: s.st_type(),
            });
        }
        Ok(Some(out))
    }

    /// Relocations that apply to section `target` (RELA or REL), with symbol and type
    /// decoded as the architecture packs them and the type masked by its `reloc_type_mask`.
    pub fn relocations_for(
        &self,
        target: usize,
        facts: &ElfFacts,
    ) -> Result<Vec<Relocation>, ParseError> {
        let type_mask = facts.reloc_type_mask.unwrap_or(u32::MAX);
        let mut out = Vec::new();
        for s in &self.sections {
            let is_rela = match s.shdr.sh_type {
                SHT_RELA => true,
                SHT_REL => false,
                _ => continue,
            };
            if s.shdr.sh_info as usize != target {
                continue;
            }
            let data = self.data(s)?;
            let rs =
                RelocSection::parse(data, 0, data.len(), is_rela, self.ctx).map_err(malformed)?;
            // SH's loader adds S + A to what is already at the place (arch/sh/kernel/module.c:
            // `value = get_unaligned(location); value += relocation`): the assembler leaves
            // part of the addend there, so the effective addend is both.
            let in_place = match (
                is_rela && facts.rela_adds_in_place,
                self.sections.get(target),
            ) {
                (true, Some(t)) => Some(self.data(t)?),
                _ => None,
            };
            for r in rs.iter() {
                let (sym, rtype) = match facts.reloc_info {
                    RelocInfo::Mips64 if self.is_64() => self.mips64_info(r.r_sym, r.r_type),
                    _ => (r.r_sym, r.r_type),
                };
                let addend = match (r.r_addend, in_place) {
                    (Some(a), Some(t)) => Some(
                        a.wrapping_add(
                            if self.is_64() {
                                self.read_word(t, r.r_offset as usize).map(|w| w as i64)
                            } else {
                                self.read_i32(t, r.r_offset as usize).map(i64::from)
                            }
                            .unwrap_or(0),
                        ),
                    ),
                    (a, _) => a,
                };
                out.push(Relocation {
                    offset: r.r_offset,
                    sym,
                    rtype: rtype & type_mask,
                    addend,
                });
            }
        }
        Ok(out)
    }

    /// Symbol and primary type of an ELF64 MIPS relocation from goblin's standard split.
    /// goblin read the 8 `r_info` bytes `{u32 r_sym; u8 r_ssym, r_type3, r_type2, r_type}`
    /// as one word in file byte order: put the bytes back and read the fields from them.
    /// The loader acts on `r_type` alone (`arch/mips/kernel/module.c`); type2/type3 are
    /// R_MIPS_NONE in modules.
    fn mips64_info(&self, r_sym: usize, r_type: u32) -> (usize, u32) {
        let info = ((r_sym as u64) << 32) | u64::from(r_type);
        let raw = if self.little() {
            info.to_le_bytes()
        } else {
            info.to_be_bytes()
        };
        let sym = [raw[0], raw[1], raw[2], raw[3]];
        let sym = if self.little() {
            u32::from_le_bytes(sym)
        } else {
            u32::from_be_bytes(sym)
        };
        (sym as usize, u32::from(raw[7]))
    }

    /// Maps a virtual address range to file bytes through the section headers (vmlinux).
    pub fn va_slice(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        let s = self.sections.iter().find(|s| {
            s.shdr.sh_type != SHT_NOBITS
                && s.shdr.sh_addr != 0
                && addr >= s.shdr.sh_addr
                && addr.checked_add(len).is_some_and(|end| {
                    s.shdr
                        .sh_addr
                        .checked_add(s.shdr.sh_size)
                        .is_some_and(|top| end <= top)
                })
        })?;
        range(self.bytes, s.shdr.sh_offset + (addr - s.shdr.sh_addr), len)
    }

    pub fn read_u32(&self, data: &[u8], off: usize) -> Option<u32> {
        data.pread_with::<u32>(off, self.ctx.le).ok()
    }

    pub fn read_i32(&self, data: &[u8], off: usize) -> Option<i32> {
        data.pread_with::<i32>(off, self.ctx.le).ok()
    }

    /// Reads one target word (`unsigned long`), zero-extended.
    pub fn read_word(&self, data: &[u8], off: usize) -> Option<u64> {
        if self.is_64() {
            data.pread_with::<u64>(off, self.ctx.le).ok()
        } else {
            self.read_u32(data, off).map(u64::from)
        }
    }
}

/// Whether a virtual address lies inside a section (overflow-safe).
pub fn va_in(shdr: &SectionHeader, addr: u64) -> bool {
    addr >= shdr.sh_addr
        && shdr
            .sh_addr
            .checked_add(shdr.sh_size)
            .is_some_and(|top| addr < top)
}

/// `bytes[off..off+len]`, or `None` if any part lies outside (overflow-safe).
pub fn range(bytes: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{ArchRegistry, Endian, KsymtabLayout};
    use crate::synth::{ElfWriter, Rela, Target};

    /// One R_MIPS_64 (18) against symbol 1 at offset 8, in a MIPS64 module of either byte
    /// order. `raw` gives the synthetic writer's (sym, type) halves of the standard split
    /// that put the MIPS64 bytes `{u32 r_sym; u8 r_ssym, r_type3, r_type2, r_type}` on disk.
    fn mips64_module(little: bool, raw: (u32, u32)) -> Vec<u8> {
        let target = Target {
            is_64: true,
            little,
            machine: 8,
            layout: KsymtabLayout::Absolute,
        };
        let mut w = ElfWriter::new(target, 1);
        let data = w.progbits("__ksymtab", 0, vec![0; 24], true);
        w.sym("__ksymtab_strings", 0, data as u16, false);
        w.relocs.push((
            data,
            vec![Rela {
                offset: 8,
                sym: raw.0,
                rtype: raw.1,
                addend: 0,
            }],
        ));
        w.finish()
    }

    #[test]
    fn mips64_relocation_info_is_decoded_in_either_byte_order() {
        let r = ArchRegistry::load(None).unwrap();
        let mut facts = r.get("mips64el").unwrap().elf.clone();
        // Little-endian: the u64 read in file order is sym | type << 56.
        let bytes = mips64_module(true, (18 << 24, 1));
        let elf = ElfFile::parse(&bytes).unwrap();
        let sec = elf.section("__ksymtab").unwrap().index;
        let rel = elf.relocations_for(sec, &facts).unwrap();
        assert_eq!((rel[0].offset, rel[0].sym, rel[0].rtype), (8, 1, 18));
        // Big-endian: sym << 32 | type, as the standard split reads it.
        facts.endian = Endian::Big;
        let bytes = mips64_module(false, (1, 18));
        let elf = ElfFile::parse(&bytes).unwrap();
        let sec = elf.section("__ksymtab").unwrap().index;
        let rel = elf.relocations_for(sec, &facts).unwrap();
        assert_eq!((rel[0].sym, rel[0].rtype), (1, 18));
    }

    #[test]
    fn standard_relocation_info_is_untouched() {
        let r = ArchRegistry::load(None).unwrap();
        let facts = &r.get("riscv64").unwrap().elf;
        let bytes = mips64_module(true, (1, 2));
        let elf = ElfFile::parse(&bytes).unwrap();
        let sec = elf.section("__ksymtab").unwrap().index;
        let rel = elf.relocations_for(sec, facts).unwrap();
        assert_eq!((rel[0].sym, rel[0].rtype), (1, 2));
    }
}
