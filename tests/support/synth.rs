//! Test support: writes small but real ELF files — a vmlinux with export tables and `.ko`
//! modules — for any class, byte order and ksymtab layout. Used by the unit tests, the
//! integration tests and the fuzz corpus; never by the tool itself.
use super::arch::KsymtabLayout;

#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub is_64: bool,
    pub little: bool,
    pub machine: u16,
    pub layout: KsymtabLayout,
}

impl Target {
    pub fn word(&self) -> usize {
        if self.is_64 {
            8
        } else {
            4
        }
    }
    fn put(&self, out: &mut Vec<u8>, v: u64, size: usize) {
        let b = v.to_le_bytes();
        if self.little {
            out.extend_from_slice(&b[..size]);
        } else {
            out.extend(b[..size].iter().rev());
        }
    }
    pub fn u16(&self, out: &mut Vec<u8>, v: u16) {
        self.put(out, v as u64, 2)
    }
    pub fn u32(&self, out: &mut Vec<u8>, v: u32) {
        self.put(out, v as u64, 4)
    }
    pub fn word_to(&self, out: &mut Vec<u8>, v: u64) {
        self.put(out, v, self.word())
    }
    fn fsize(&self) -> usize {
        match self.layout {
            KsymtabLayout::Prel32 => 4,
            KsymtabLayout::Absolute => self.word(),
        }
    }
    fn esize_for(&self, g: Generation) -> usize {
        self.fsize() * g.fields()
    }
}

/// A static-only descriptor for a synthetic target (what the tests check against).
pub fn descriptor(t: Target, name: &str) -> super::arch::ArchDescriptor {
    use super::arch::{ArchDescriptor, ElfFacts, Endian, Unsupported};
    ArchDescriptor {
        name: name.into(),
        aliases: vec![],
        default: false,
        kernel_arch: "synth".into(),
        cross_compile: String::new(),
        toolchain_packages: vec![],
        elf: ElfFacts {
            machine: t.machine,
            also_machines: vec![],
            class: if t.is_64 { 64 } else { 32 },
            endian: if t.little {
                Endian::Little
            } else {
                Endian::Big
            },
            ksymtab: t.layout,
            reloc_type_mask: None,
            reloc_info: Default::default(),
            skip_undefined_types: vec![],
            loader_defined_symbols: vec![],
            dedot_undefined: false,
            rela_adds_in_place: false,
        },
        build: None,
        qemu: None,
        unsupported: Unsupported::default(),
    }
}

/// Which kernel generation's module-versioning format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Generation {
    /// 4.9 and before: `unsigned long` CRC slots, two-field entries, absolute `__crc_*`.
    Pre410,
    /// 4.10-5.3: 32-bit slots filled by relocations against absolute `__crc_*`, two fields.
    Pre54,
    /// 5.4-5.18: as `Pre54` with the namespace field.
    Pre519,
    /// 5.4-5.18 with `CONFIG_MODULE_REL_CRCS`: slots hold the offset to the CRC.
    RelCrcs,
    /// 5.19-7.0: slots are plain data labelled `__crc_*`.
    #[default]
    Modern,
    /// 7.1+: one `__ksymtab` for all exports, GPL-only as a `__kflagstab` bit.
    Flagstab,
}

impl Generation {
    pub const ALL: [Generation; 6] = [
        Generation::Pre410,
        Generation::Pre54,
        Generation::Pre519,
        Generation::RelCrcs,
        Generation::Modern,
        Generation::Flagstab,
    ];
    fn fields(self) -> usize {
        match self {
            Generation::Pre410 | Generation::Pre54 => 2,
            _ => 3,
        }
    }
    /// Whether `__crc_*` are absolute symbols whose value is the CRC (before 5.19).
    fn absolute_crcs(self) -> bool {
        matches!(
            self,
            Generation::Pre410 | Generation::Pre54 | Generation::Pre519
        )
    }
}

const SHN_ABS: u16 = 0xfff1;

#[derive(Debug, Clone, Default)]
pub struct Section {
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub addr: u64,
    pub data: Vec<u8>,
    pub link: u32,
    pub info: u32,
    pub entsize: u64,
    pub align: u64,
}

#[derive(Debug, Clone)]
pub struct Sym {
    pub name: String,
    pub value: u64,
    pub shndx: u16,
    pub global: bool,
    pub weak: bool,
    pub kind: u8,
}

/// A relocation against a symbol index (1-based, as in the final `.symtab`).
#[derive(Debug, Clone, Copy)]
pub struct Rela {
    pub offset: u64,
    pub sym: u32,
    pub rtype: u32,
    pub addend: i64,
}

pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_RELA: u32 = 4;
pub const SHF_ALLOC: u64 = 2;

/// Writes an ELF file from sections and symbols. Symbols must be given locals first.
pub struct ElfWriter {
    pub target: Target,
    pub e_type: u16,
    pub sections: Vec<Section>,
    pub symbols: Vec<Sym>,
    /// (target section index, relocations)
    pub relocs: Vec<(usize, Vec<Rela>)>,
}

impl ElfWriter {
    pub fn new(target: Target, e_type: u16) -> Self {
        ElfWriter {
            target,
            e_type,
            sections: vec![Section::default()],
            symbols: vec![],
            relocs: vec![],
        }
    }

    pub fn add(&mut self, s: Section) -> usize {
        self.sections.push(s);
        self.sections.len() - 1
    }

    pub fn progbits(&mut self, name: &str, addr: u64, data: Vec<u8>, alloc: bool) -> usize {
        self.add(Section {
            name: name.into(),
            sh_type: SHT_PROGBITS,
            flags: if alloc { SHF_ALLOC } else { 0 },
            addr,
            data,
            align: 1,
            ..Default::default()
        })
    }

    /// Adds a symbol and returns its `.symtab` index.
    pub fn sym(&mut self, name: &str, value: u64, shndx: u16, global: bool) -> u32 {
        self.symbols.push(Sym {
            name: name.into(),
            value,
            shndx,
            global,
            weak: false,
            kind: 0,
        });
        self.symbols.len() as u32
    }

    pub fn finish(mut self) -> Vec<u8> {
        let t = self.target;
        // .symtab + .strtab
        if !self.symbols.is_empty() {
            let mut strtab = vec![0u8];
            let mut symtab = Vec::new();
            let entsize = if t.is_64 { 24 } else { 16 };
            symtab.resize(entsize, 0);
            let first_global = self
                .symbols
                .iter()
                .position(|s| s.global || s.weak)
                .unwrap_or(self.symbols.len())
                + 1;
            for s in &self.symbols {
                let name = strtab.len() as u32;
                strtab.extend_from_slice(s.name.as_bytes());
                strtab.push(0);
                let bind: u8 = if s.weak {
                    2
                } else if s.global {
                    1
                } else {
                    0
                };
                let info = (bind << 4) | (s.kind & 0xf);
                if t.is_64 {
                    t.u32(&mut symtab, name);
                    symtab.push(info);
                    symtab.push(0);
                    t.u16(&mut symtab, s.shndx);
                    t.word_to(&mut symtab, s.value);
                    t.word_to(&mut symtab, 0);
                } else {
                    t.u32(&mut symtab, name);
                    t.u32(&mut symtab, s.value as u32);
                    t.u32(&mut symtab, 0);
                    symtab.push(info);
                    symtab.push(0);
                    t.u16(&mut symtab, s.shndx);
                }
            }
            let strndx = self.sections.len() as u32 + 1;
            self.add(Section {
                name: ".symtab".into(),
                sh_type: SHT_SYMTAB,
                data: symtab,
                link: strndx,
                info: first_global as u32,
                entsize: entsize as u64,
                align: t.word() as u64,
                ..Default::default()
            });
            self.add(Section {
                name: ".strtab".into(),
                sh_type: SHT_STRTAB,
                data: strtab,
                align: 1,
                ..Default::default()
            });
            let symndx = self.sections.len() as u32 - 2;
            for (target, relas) in std::mem::take(&mut self.relocs) {
                let mut data = Vec::new();
                for r in relas {
                    t.word_to(&mut data, r.offset);
                    if t.is_64 {
                        t.word_to(&mut data, ((r.sym as u64) << 32) | r.rtype as u64);
                    } else {
                        t.u32(&mut data, (r.sym << 8) | (r.rtype & 0xff));
                    }
                    t.word_to(&mut data, r.addend as u64);
                }
                let name = format!(".rela{}", self.sections[target].name);
                self.add(Section {
                    name,
                    sh_type: SHT_RELA,
                    data,
                    link: symndx,
                    info: target as u32,
                    entsize: if t.is_64 { 24 } else { 12 },
                    align: t.word() as u64,
                    ..Default::default()
                });
            }
        }
        let mut shstrtab = vec![0u8];
        let mut name_offs = Vec::new();
        for s in self.sections.iter().chain(std::iter::once(&Section {
            name: ".shstrtab".into(),
            ..Default::default()
        })) {
            if s.name.is_empty() {
                name_offs.push(0u32);
                continue;
            }
            name_offs.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(s.name.as_bytes());
            shstrtab.push(0);
        }
        self.add(Section {
            name: ".shstrtab".into(),
            sh_type: SHT_STRTAB,
            data: shstrtab,
            align: 1,
            ..Default::default()
        });

        let ehsize = if t.is_64 { 64 } else { 52 };
        let mut out = vec![0u8; ehsize];
        let mut offsets = vec![0u64];
        for s in self.sections.iter().skip(1) {
            let align = s.align.max(1) as usize;
            while out.len() % align != 0 {
                out.push(0);
            }
            offsets.push(out.len() as u64);
            out.extend_from_slice(&s.data);
        }
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let shoff = out.len() as u64;
        for (i, s) in self.sections.iter().enumerate() {
            t.u32(&mut out, name_offs[i]);
            t.u32(&mut out, s.sh_type);
            t.word_to(&mut out, s.flags);
            t.word_to(&mut out, s.addr);
            t.word_to(&mut out, offsets[i]);
            t.word_to(&mut out, s.data.len() as u64);
            t.u32(&mut out, s.link);
            t.u32(&mut out, s.info);
            t.word_to(&mut out, s.align);
            t.word_to(&mut out, s.entsize);
        }
        let mut h = Vec::with_capacity(ehsize);
        h.extend_from_slice(b"\x7fELF");
        h.push(if t.is_64 { 2 } else { 1 });
        h.push(if t.little { 1 } else { 2 });
        h.push(1);
        h.resize(16, 0);
        t.u16(&mut h, self.e_type);
        t.u16(&mut h, t.machine);
        t.u32(&mut h, 1);
        t.word_to(&mut h, 0); // entry
        t.word_to(&mut h, 0); // phoff
        t.word_to(&mut h, shoff);
        t.u32(&mut h, 0); // flags
        t.u16(&mut h, ehsize as u16);
        t.u16(&mut h, 0);
        t.u16(&mut h, 0);
        t.u16(&mut h, if t.is_64 { 64 } else { 40 });
        t.u16(&mut h, self.sections.len() as u16);
        t.u16(&mut h, self.sections.len() as u16 - 1);
        out[..ehsize].copy_from_slice(&h);
        out
    }
}

#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub gpl: bool,
    pub crc: u32,
    pub namespace: Option<String>,
}

pub fn export(name: &str, gpl: bool, crc: u32) -> Export {
    Export {
        name: name.into(),
        gpl,
        crc,
        namespace: None,
    }
}

/// A vmlinux: banner and vermagic in `.rodata`, then the four export tables.
#[derive(Debug, Clone)]
pub struct KernelSpec {
    pub target: Target,
    pub release: String,
    pub vermagic: String,
    pub exports: Vec<Export>,
    /// Re-creates the 5.19 modpost bug: these exports get no `__kcrctab` slot at all.
    pub no_slot: Vec<String>,
    /// Keep a `.symtab` with `__crc_*` labels (an unstripped vmlinux).
    pub symtab: bool,
    pub generation: Generation,
    /// `CONFIG_MODVERSIONS`: without it there are no `__kcrctab*` sections.
    pub modversions: bool,
}

impl KernelSpec {
    pub fn new(target: Target, exports: Vec<Export>) -> Self {
        KernelSpec {
            target,
            release: "6.1.0-synth".into(),
            vermagic: "6.1.0-synth SMP mod_unload modversions ".into(),
            exports,
            no_slot: vec![],
            symtab: false,
            generation: Generation::Modern,
            modversions: true,
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let t = self.target;
        let mut w = ElfWriter::new(t, 2);
        let base: u64 = if t.is_64 {
            0xffff_ffff_8100_0000
        } else {
            0xc100_0000
        };
        let mut rodata =
            format!("Linux version {} (synth@modverify) #1\n\0", self.release).into_bytes();
        rodata.extend_from_slice(self.vermagic.as_bytes());
        rodata.push(0);
        w.progbits(".rodata", base, rodata, true);

        let mut strings = Vec::new();
        let strings_addr = base + 0x10_0000;
        let mut sorted = self.exports.clone();
        sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut name_off = std::collections::HashMap::new();
        let mut ns_off = std::collections::HashMap::new();
        for e in &sorted {
            name_off.insert(e.name.clone(), strings.len() as u64);
            strings.extend_from_slice(e.name.as_bytes());
            strings.push(0);
            let ns = e.namespace.clone().unwrap_or_default();
            ns_off.insert(e.name.clone(), strings.len() as u64);
            strings.extend_from_slice(ns.as_bytes());
            strings.push(0);
        }
        let g = self.generation;
        let esize = t.esize_for(g);
        let mut labels = Vec::new();
        let groups: Vec<(u64, Option<bool>)> = if g == Generation::Flagstab {
            vec![(0, None)]
        } else {
            vec![(0, Some(false)), (1, Some(true))]
        };
        // REL_CRCS: the CRCs themselves live in .rodata, the slots point at them.
        let crcdata_addr = base + 0x60_0000;
        let mut crcdata = Vec::new();
        let mut flags = Vec::new();
        for (k, gpl) in groups {
            let exps: Vec<&Export> = sorted
                .iter()
                .filter(|e| gpl.is_none_or(|g| e.gpl == g))
                .collect();
            let tab_addr = base + 0x20_0000 + k * 0x10_0000;
            let crc_addr = base + 0x40_0000 + k * 0x10_0000;
            let mut tab = Vec::new();
            let mut crcs = Vec::new();
            for (i, e) in exps.iter().enumerate() {
                let entry = tab_addr + (i * esize) as u64;
                let name_va = strings_addr + name_off[&e.name];
                let ns_va = strings_addr + ns_off[&e.name];
                let fields = [base, name_va, ns_va];
                for (f, va) in fields.iter().take(g.fields()).enumerate() {
                    match t.layout {
                        KsymtabLayout::Absolute => t.word_to(&mut tab, *va),
                        KsymtabLayout::Prel32 => {
                            t.u32(&mut tab, va.wrapping_sub(entry + 4 * f as u64) as u32)
                        }
                    }
                }
                flags.push(e.gpl as u8);
                if !self.no_slot.contains(&e.name) {
                    let slot_addr = crc_addr + crcs.len() as u64;
                    match g {
                        Generation::Pre410 => t.word_to(&mut crcs, e.crc as u64),
                        Generation::RelCrcs => {
                            let at = crcdata_addr + crcdata.len() as u64;
                            t.u32(&mut crcdata, e.crc);
                            t.u32(&mut crcs, at.wrapping_sub(slot_addr) as u32);
                            // genksyms -R: `__crc_X = .; LONG(crc)` in .rodata
                            labels.push((format!("__crc_{}", e.name), at, u64::MAX - 1));
                            continue;
                        }
                        _ => t.u32(&mut crcs, e.crc),
                    }
                    if g.absolute_crcs() {
                        labels.push((format!("__crc_{}", e.name), e.crc as u64, u64::MAX));
                    } else {
                        labels.push((format!("__crc_{}", e.name), slot_addr, k));
                    }
                }
            }
            let (ks, kc) = if gpl == Some(true) {
                ("__ksymtab_gpl", "__kcrctab_gpl")
            } else {
                ("__ksymtab", "__kcrctab")
            };
            w.progbits(ks, tab_addr, tab, true);
            if self.modversions {
                let idx = w.progbits(kc, crc_addr, crcs, true);
                for l in labels.iter_mut().filter(|l| l.2 == k) {
                    l.2 = idx as u64;
                }
            }
        }
        if g == Generation::Flagstab {
            w.progbits("__kflagstab", base + 0x50_0000, flags, true);
        }
        if !crcdata.is_empty() {
            let idx = w.progbits(".rodata.crcs", crcdata_addr, crcdata, true);
            for l in labels.iter_mut().filter(|l| l.2 == u64::MAX - 1) {
                l.2 = idx as u64;
            }
        }
        if !self.modversions {
            labels.clear();
        }
        for l in labels.iter_mut().filter(|l| l.2 == u64::MAX) {
            l.2 = SHN_ABS as u64;
        }
        w.progbits("__ksymtab_strings", strings_addr, strings, true);
        if self.symtab {
            for (name, addr, shndx) in labels {
                w.sym(&name, addr, shndx as u16, false);
            }
        }
        w.finish()
    }
}

/// A loadable module with `.modinfo`, `__versions`, undefined symbols and optional exports.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    pub target: Target,
    pub name: String,
    pub vermagic: Option<String>,
    pub license: Option<String>,
    pub import_ns: Vec<String>,
    /// `__versions` entries; `None` leaves the section out.
    pub versions: Option<Vec<(String, u32)>>,
    pub undefined: Vec<String>,
    pub exports: Vec<Export>,
    pub depends: Vec<String>,
    /// Write 6.14+ `__version_ext_crcs`/`__version_ext_names` instead of `__versions`.
    pub extended_versions: bool,
    pub generation: Generation,
}

impl ModuleSpec {
    pub fn new(target: Target, name: &str) -> Self {
        ModuleSpec {
            target,
            name: name.into(),
            vermagic: Some("6.1.0-synth SMP mod_unload modversions ".into()),
            license: Some("GPL".into()),
            import_ns: vec![],
            versions: Some(vec![]),
            undefined: vec![],
            exports: vec![],
            depends: vec![],
            extended_versions: false,
            generation: Generation::Modern,
        }
    }

    /// Imports `sym` with `crc` in `__versions` (and as an undefined symbol).
    pub fn import(mut self, sym: &str, crc: u32) -> Self {
        self.undefined.push(sym.into());
        self.versions
            .get_or_insert_with(Vec::new)
            .push((sym.into(), crc));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let t = self.target;
        let mut w = ElfWriter::new(t, 1);
        let mut modinfo = Vec::new();
        let mut kv = |k: &str, v: &str| {
            modinfo.extend_from_slice(format!("{k}={v}").as_bytes());
            modinfo.push(0);
        };
        if let Some(l) = &self.license {
            kv("license", l);
        }
        for ns in &self.import_ns {
            kv("import_ns", ns);
        }
        kv("depends", &self.depends.join(","));
        kv("name", &self.name);
        if let Some(v) = &self.vermagic {
            kv("vermagic", v);
        }
        w.progbits(".modinfo", 0, modinfo, true);
        if let (Some(vers), true) = (&self.versions, self.extended_versions) {
            let (mut crcs, mut names) = (Vec::new(), Vec::new());
            for (name, crc) in vers {
                t.u32(&mut crcs, *crc);
                names.extend_from_slice(name.as_bytes());
                names.push(0);
            }
            w.progbits("__version_ext_crcs", 0, crcs, true);
            w.progbits("__version_ext_names", 0, names, true);
        } else if let Some(vers) = &self.versions {
            let mut data = Vec::new();
            for (name, crc) in vers {
                t.word_to(&mut data, *crc as u64);
                let mut n = name.as_bytes().to_vec();
                n.resize(64 - t.word(), 0);
                data.extend_from_slice(&n);
            }
            w.progbits("__versions", 0, data, true);
        }
        let mut this = vec![0u8; 3 * t.word()];
        let mut n = self.name.as_bytes().to_vec();
        n.resize(64 - t.word(), 0);
        this.extend_from_slice(&n);
        this.resize(0x200, 0);
        w.progbits(".gnu.linkonce.this_module", 0, this, true);
        let text = w.progbits(".text", 0, vec![0; 16], true);

        let mut strings = Vec::new();
        let mut sorted = self.exports.clone();
        sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut offs = Vec::new();
        for e in &sorted {
            let no = strings.len() as u64;
            strings.extend_from_slice(e.name.as_bytes());
            strings.push(0);
            let nso = strings.len() as u64;
            strings.extend_from_slice(e.namespace.clone().unwrap_or_default().as_bytes());
            strings.push(0);
            offs.push((no, nso));
        }
        let g = self.generation;
        let esize = t.esize_for(g);
        let f = t.fsize();
        let mut pending = Vec::new();
        // (kcrctab section, slot offset, crc, export name) for relocation-filled slots.
        let mut crc_relocs: Vec<(usize, u64, u32, String)> = Vec::new();
        let mut rodata_crcs = Vec::new();
        if !sorted.is_empty() {
            let strndx = w.progbits("__ksymtab_strings", 0, strings, true) as u16;
            let groups: Vec<Option<bool>> = if g == Generation::Flagstab {
                vec![None]
            } else {
                vec![Some(false), Some(true)]
            };
            for gpl in groups {
                let (ks, kc) = if gpl == Some(true) {
                    ("__ksymtab_gpl", "__kcrctab_gpl")
                } else {
                    ("__ksymtab", "__kcrctab")
                };
                let exps: Vec<(usize, &Export)> = sorted
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| gpl.is_none_or(|g| e.gpl == g))
                    .collect();
                if exps.is_empty() {
                    continue;
                }
                let tab = w.progbits(ks, 0, vec![0; exps.len() * esize], true);
                let mut crcs = Vec::new();
                let slot = if g == Generation::Pre410 { t.word() } else { 4 };
                let by_reloc = g != Generation::Modern && g != Generation::Flagstab;
                for (_, e) in &exps {
                    if by_reloc {
                        crcs.resize(crcs.len() + slot, 0);
                    } else {
                        t.u32(&mut crcs, e.crc);
                    }
                }
                let kcidx = w.progbits(kc, 0, crcs, true);
                if by_reloc {
                    for (j, (_, e)) in exps.iter().enumerate() {
                        crc_relocs.push((kcidx, (j * slot) as u64, e.crc, e.name.clone()));
                    }
                }
                if g == Generation::Flagstab {
                    let flags = exps.iter().map(|(_, e)| e.gpl as u8).collect();
                    w.progbits("__kflagstab", 0, flags, true);
                }
                pending.push((
                    tab,
                    strndx,
                    exps.iter()
                        .map(|(i, e)| (offs[*i], e.name.clone()))
                        .collect::<Vec<_>>(),
                ));
            }
        }
        // Local symbols first: a section symbol for the strings (alpha-style S + A references).
        let mut relocs = Vec::new();
        for (tab, strndx, entries) in &pending {
            let strsym = w.sym("", 0, *strndx, false);
            w.symbols.last_mut().unwrap().kind = 3; // STT_SECTION
            let mut rel = Vec::new();
            for (i, ((no, nso), name)) in entries.iter().enumerate() {
                w.sym(
                    &format!("__ksymtab_{name}"),
                    (i * esize) as u64,
                    *tab as u16,
                    false,
                );
                rel.push(Rela {
                    offset: (i * esize + f) as u64,
                    sym: strsym,
                    rtype: 2,
                    addend: *no as i64,
                });
                if g.fields() == 3 {
                    rel.push(Rela {
                        offset: (i * esize + 2 * f) as u64,
                        sym: strsym,
                        rtype: 2,
                        addend: *nso as i64,
                    });
                }
            }
            relocs.push((*tab, rel));
        }
        // Before 5.19 the CRC slots are relocations: against absolute `__crc_*` symbols, or
        // (REL_CRCS) place-relative against a label on the CRC in .rodata.
        let mut crc_rel: Vec<(usize, Vec<Rela>)> = Vec::new();
        let rodata = if g == Generation::RelCrcs && !crc_relocs.is_empty() {
            for (_, _, crc, _) in &crc_relocs {
                t.u32(&mut rodata_crcs, *crc);
            }
            Some(w.progbits(".rodata", 0, rodata_crcs, true))
        } else {
            None
        };
        for (j, (kc, off, crc, name)) in crc_relocs.iter().enumerate() {
            let sym = match rodata {
                Some(ro) => w.sym(&format!("__crc_{name}"), (4 * j) as u64, ro as u16, false),
                None => w.sym(&format!("__crc_{name}"), *crc as u64, SHN_ABS, false),
            };
            let r = Rela {
                offset: *off,
                sym,
                rtype: 1,
                addend: 0,
            };
            match crc_rel.iter_mut().find(|(k, _)| k == kc) {
                Some((_, v)) => v.push(r),
                None => crc_rel.push((*kc, vec![r])),
            }
        }
        relocs.extend(crc_rel);
        w.sym("init_module", 0, text as u16, true);
        for u in &self.undefined {
            w.sym(u, 0, 0, true);
        }
        w.relocs = relocs;
        w.finish()
    }
}

/// The four combinations of class and byte order, each in both ksymtab layouts.
pub fn all_targets() -> Vec<Target> {
    let mut v = Vec::new();
    for (is_64, little, machine) in [
        (true, true, 62u16),
        (true, false, 43),
        (false, true, 3),
        (false, false, 20),
    ] {
        for layout in [KsymtabLayout::Absolute, KsymtabLayout::Prel32] {
            v.push(Target {
                is_64,
                little,
                machine,
                layout,
            });
        }
    }
    v
}
