//! Architecture descriptors: the only place facts about an architecture live.
//!
//! Every `arches/*.yaml` is embedded at build time; `MODVERIFY_ARCH_DIR` (or `--arch-dir`)
//! adds or overrides descriptors at run time without a rebuild.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/arches.rs"));
}

#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    #[error("{file}: invalid architecture descriptor at `{key}`: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
    #[error("cannot read architecture descriptors in {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("unknown architecture `{name}`; known: {known}")]
    Unknown { name: String, known: String },
    #[error("{message}: `{name}` cannot be used until that file is fixed")]
    Broken { name: String, message: String },
}

impl ArchError {
    /// A descriptor that is wrong, unknown or broken is a mistake in the request; a directory
    /// of descriptors that cannot be read is the request's or the machine's, by the I/O error.
    pub fn kind(&self) -> crate::failure::FailureKind {
        match self {
            ArchError::Io { source, .. } => crate::failure::FailureKind::of_io(source),
            ArchError::Invalid { .. } | ArchError::Unknown { .. } | ArchError::Broken { .. } => {
                crate::failure::FailureKind::BadInput
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    Little,
    Big,
}

/// How `struct kernel_symbol` is laid out (`include/linux/export.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KsymtabLayout {
    /// `unsigned long value; const char *name; const char *namespace;`
    Absolute,
    /// `int value_offset; int name_offset; int namespace_offset;` (x86, arm64)
    Prel32,
}

/// How a relocation record's `r_info` packs the symbol index and the type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelocInfo {
    /// The ELF standard: `sym << 32 | type` (ELF64), `sym << 8 | type` (ELF32).
    #[default]
    Standard,
    /// ELF64 MIPS: `{u32 r_sym; u8 r_ssym, r_type3, r_type2, r_type}` in file byte order,
    /// which the standard decoding scrambles on little-endian files. ELF32 MIPS is standard.
    Mips64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElfFacts {
    /// `e_machine` of vmlinux and of every module.
    pub machine: u16,
    /// Other `e_machine` values the kernel's `elf_check_arch` also accepts (i386's EM_486).
    #[serde(default)]
    pub also_machines: Vec<u16>,
    /// 32 or 64.
    pub class: u8,
    pub endian: Endian,
    pub ksymtab: KsymtabLayout,
    /// Mask applied to a relocation's type (SPARC64 keeps extra data above the low byte).
    #[serde(default)]
    pub reloc_type_mask: Option<u32>,
    /// Layout of a relocation's `r_info` (MIPS64 differs from the standard).
    #[serde(default)]
    pub reloc_info: RelocInfo,
    /// Undefined-symbol types the arch loader turns into absolute ones (sparc's STT_REGISTER).
    #[serde(default)]
    pub skip_undefined_types: Vec<u8>,
    /// Undefined symbols the arch loader defines itself (powerpc64's `.TOC.`, made absolute
    /// by `arch/powerpc/kernel/module_64.c`), so they are never "unknown".
    #[serde(default)]
    pub loader_defined_symbols: Vec<String>,
    /// The loader drops a leading `.` from a module's undefined symbols and `__versions`
    /// names (powerpc64's `dedotify`: an ELFv1 call goes to `.name`, the function's entry
    /// point, and is resolved against the export `name`).
    #[serde(default)]
    pub dedot_undefined: bool,
    /// The loader adds a RELA relocation to the value already at the place, so the addend
    /// is `r_addend` plus those bytes (SH: `arch/sh/kernel/module.c`); elsewhere the place
    /// is overwritten and `r_addend` alone counts.
    #[serde(default)]
    pub rela_adds_in_place: bool,
}

impl ElfFacts {
    pub fn word(&self) -> usize {
        if self.class == 64 {
            8
        } else {
            4
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildFacts {
    /// make targets that produce vmlinux, the boot image and the modules.
    pub targets: Vec<String>,
    /// Boot image, relative to the build directory (`vmlinux` where the ELF itself boots).
    pub image: String,
    /// Whether QEMU can boot the unstripped vmlinux directly.
    #[serde(default)]
    pub vmlinux_boots: bool,
    /// Kconfig fragment lines this arch needs on top of the base config.
    #[serde(default)]
    pub config: Vec<String>,
    /// Options the guest agent needs from this kernel together with this arch's emulator,
    /// each with the reason: applied like `config`, losing one is an error, and `build`
    /// warns where tinyconfig turns one off that Kconfig defaults on.
    #[serde(default)]
    pub guest_config: Vec<GuestNeed>,
    /// Extra linker flags for the static guest agent.
    #[serde(default)]
    pub guest_ldflags: Vec<String>,
    /// Virtual minus physical address of the kernel image, for reading kernel memory
    /// through /dev/mem where /proc/kcore does not map it (alpha).
    #[serde(default)]
    pub kernel_va_minus_pa: Option<u64>,
    /// A GCC plugin the cross compiler loads for the kernel, its modules and the guest agent:
    /// the way round a compiler bug no option reaches (see `compiler_plugin.rs`).
    #[serde(default)]
    pub gcc_plugin: Option<GccPlugin>,
    /// A cross compiler Debian does not ship, built once from Debian's GCC source package
    /// into modverify's cache (see `cross_gcc.rs`): `modverify setup` builds it.
    #[serde(default)]
    pub cross_gcc: Option<CrossGcc>,
    /// A path every tree built for this arch has, and what it means when one does not (ia64:
    /// `arch/ia64`, gone since Linux 6.7): such a tree is refused before anything runs.
    #[serde(default)]
    pub tree_must_have: Option<TreeMustHave>,
    /// The kernel gets 8-byte copies of its own memory wrong (`copy_from_kernel_nofault`;
    /// sh: reading /proc/kcore with them oopses or resets the machine), so the agent starts
    /// no kcore read on an 8-byte boundary, and the kernel copies 4 bytes at a time.
    #[serde(default)]
    pub kcore_split4: bool,
    /// Where the static guest agent's C library comes from when the cross toolchain's own
    /// cannot be used (see `image/sysroot.rs`).
    #[serde(default)]
    pub guest_sysroot: Option<GuestSysroot>,
}

/// Debian packages, from a suite, that hold the C library (headers, crt files, libc.a) the
/// guest agent links against, with why the cross toolchain's own is not used.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestSysroot {
    pub reason: String,
    pub suite: String,
    pub packages: Vec<String>,
}

/// A GCC plugin, as C++ source, with why the arch needs it and what building it takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GccPlugin {
    pub reason: String,
    /// Debian packages that provide the host C++ compiler and the cross compiler's plugin
    /// headers.
    pub packages: Vec<String>,
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeMustHave {
    pub path: String,
    pub why: String,
}

/// How to build this arch's cross compiler from Debian's GCC source: a stage-1 compiler (C
/// only, no C library), which is all a kernel and its modules need.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossGcc {
    pub reason: String,
    /// The Debian package holding the GCC source tarball (`gcc-12-source`).
    pub source_package: String,
    /// Where that package puts its tarball (`gcc-*.tar.*` there is unpacked).
    pub source_dir: String,
    /// The Debian package of the target's binutils (its version keys the cached compiler).
    pub binutils_package: String,
    /// Every Debian package the build needs (the source, binutils, the host compiler, GMP,
    /// MPFR, MPC).
    pub packages: Vec<String>,
    /// GCC's `--target`.
    pub target: String,
    /// configure's switches besides `--target`, `--prefix`, `--with-as` and `--with-ld`.
    pub configure: Vec<String>,
    /// CPU-minutes the build took when measured, for the estimate shown before it starts.
    pub cpu_minutes: u32,
}

/// One Kconfig line the guest needs, and why (shown when it is lost or when tinyconfig would
/// lose it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestNeed {
    pub line: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuFacts {
    pub binary: String,
    pub packages: Vec<String>,
    /// Machine, memory and device arguments (kernel, initrd and append are added by modverify).
    pub args: Vec<String>,
    /// Kernel console device (`console=` argument).
    pub console: String,
    /// The guest device of a second serial port (e.g. `ttyS1`) that carries the agent's
    /// results apart from the console; without it results travel framed on the console.
    #[serde(default)]
    pub result_port: Option<String>,
    /// The most memory (MiB) this machine takes; a payload that needs more is split into
    /// several boots. Default: 4096 for 64-bit arches, 768 for 32-bit ones. The `-m` in
    /// `args` is the minimum.
    #[serde(default)]
    pub max_memory_mb: Option<u64>,
    /// Which of QEMU's serial ports (0-based, in `-serial` order) is the kernel console: the
    /// ports before it are connected to nothing (sh4's r2d: the console is the SCIF, QEMU's
    /// second port; the first is the SCI).
    #[serde(default)]
    pub console_serial: usize,
}

/// Stages that cannot be done for an architecture, with the reason shown to the user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsupported {
    pub build: Option<String>,
    pub boot: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchDescriptor {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One of the arches `modverify run` does when no `--arch` is given.
    #[serde(default)]
    pub default: bool,
    /// `ARCH=` for kbuild.
    pub kernel_arch: String,
    /// `CROSS_COMPILE=` prefix.
    pub cross_compile: String,
    /// Debian packages providing the cross toolchain.
    #[serde(default)]
    pub toolchain_packages: Vec<String>,
    pub elf: ElfFacts,
    #[serde(default)]
    pub build: Option<BuildFacts>,
    #[serde(default)]
    pub qemu: Option<QemuFacts>,
    #[serde(default)]
    pub unsupported: Unsupported,
}

impl ArchDescriptor {
    /// How QEMU boots this arch, or why it cannot: the descriptor's `unsupported.boot`, else
    /// its missing `qemu` section. The one place that decides whether an arch boots.
    pub fn qemu_or_why_not(&self) -> Result<&QemuFacts, String> {
        self.qemu.as_ref().ok_or_else(|| {
            self.unsupported
                .boot
                .clone()
                .unwrap_or_else(|| format!("{}'s descriptor has no `qemu` section", self.name))
        })
    }

    /// Parses and validates one descriptor; `file` names it in errors.
    pub fn from_yaml(file: &str, text: &str) -> Result<Self, ArchError> {
        let de = serde_norway::Deserializer::from_str(text);
        let desc: ArchDescriptor =
            serde_path_to_error::deserialize(de).map_err(|e| ArchError::Invalid {
                file: file.to_string(),
                key: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        desc.validate(file)?;
        Ok(desc)
    }

    fn validate(&self, file: &str) -> Result<(), ArchError> {
        let bad = |key: &str, message: String| ArchError::Invalid {
            file: file.to_string(),
            key: key.to_string(),
            message,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(bad(
                "name",
                format!("`{}` must be a non-empty [A-Za-z0-9_] word", self.name),
            ));
        }
        if self.elf.class != 32 && self.elf.class != 64 {
            return Err(bad(
                "elf.class",
                format!("{} is not 32 or 64", self.elf.class),
            ));
        }
        if self.build.is_some() && self.unsupported.build.is_some() {
            return Err(bad("unsupported.build", "set together with `build`".into()));
        }
        if self.qemu.is_some() && self.unsupported.boot.is_some() {
            return Err(bad("unsupported.boot", "set together with `qemu`".into()));
        }
        Ok(())
    }

    pub fn matches(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// Whether an ELF header's identity is this architecture's.
    pub fn accepts_elf(&self, machine: u16, is_64: bool, little: bool) -> bool {
        (self.elf.machine == machine || self.elf.also_machines.contains(&machine))
            && is_64 == (self.elf.class == 64)
            && little == (self.elf.endian == Endian::Little)
    }
}

/// Every known descriptor, embedded ones first, overridden by name from `dir` if given.
#[derive(Debug, Clone)]
pub struct ArchRegistry {
    pub arches: Vec<ArchDescriptor>,
    /// Descriptors in --arch-dir that could not be read: (file, what is wrong). The other
    /// arches go on without them; an arch such a file is named after is refused.
    pub broken: Vec<(PathBuf, String)>,
}

impl ArchRegistry {
    pub fn of(arches: Vec<ArchDescriptor>) -> Self {
        ArchRegistry {
            arches,
            broken: vec![],
        }
    }

    pub fn load(dir: Option<&Path>) -> Result<Self, ArchError> {
        let mut arches = Vec::new();
        let mut broken = Vec::new();
        for (file, text) in embedded::EMBEDDED {
            arches.push(ArchDescriptor::from_yaml(&format!("arches/{file}"), text)?);
        }
        let dir = dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("MODVERIFY_ARCH_DIR").map(PathBuf::from));
        if let Some(dir) = dir {
            let io = |source| ArchError::Io {
                dir: dir.clone(),
                source,
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            for f in files {
                let read = std::fs::read_to_string(&f)
                    .map_err(|e| format!("{}: {e}", f.display()))
                    .and_then(|text| {
                        ArchDescriptor::from_yaml(&f.display().to_string(), &text)
                            .map_err(|e| e.to_string())
                    });
                match read {
                    Ok(d) => {
                        arches.retain(|a| a.name != d.name);
                        arches.push(d);
                    }
                    Err(message) => broken.push((f, message)),
                }
            }
        }
        Ok(ArchRegistry { arches, broken })
    }

    pub fn get(&self, name: &str) -> Result<&ArchDescriptor, ArchError> {
        // A broken file named after the arch was meant to define or override it: using the
        // built-in one instead would test something else than asked.
        if let Some((_, message)) = self
            .broken
            .iter()
            .find(|(f, _)| f.file_stem().is_some_and(|s| s == name))
        {
            return Err(ArchError::Broken {
                name: name.to_string(),
                message: message.clone(),
            });
        }
        self.arches
            .iter()
            .find(|a| a.matches(name))
            .ok_or_else(|| ArchError::Unknown {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    pub fn names(&self) -> Vec<String> {
        self.arches.iter().map(|a| a.name.clone()).collect()
    }

    /// The descriptor whose ELF identity matches, if exactly one does.
    pub fn by_elf(&self, machine: u16, is_64: bool, little: bool) -> Option<&ArchDescriptor> {
        self.arches
            .iter()
            .find(|a| a.accepts_elf(machine, is_64, little))
    }
}

crate::failure::classified_by_own_kind!(ArchError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_descriptors_load() {
        let r = ArchRegistry::load(None).unwrap();
        for n in [
            "sparc64", "alpha", "riscv64", "ia64", "x86_64", "sparc", "amd64",
        ] {
            r.get(n).unwrap();
        }
        assert_eq!(r.by_elf(43, true, false).unwrap().name, "sparc64");
    }

    /// Every Debian architecture (release and ports), as its kernel's ELF header says it:
    /// (Debian name, e_machine, 64-bit, little-endian, descriptor).
    const DEBIAN: &[(&str, u16, bool, bool, &str)] = &[
        ("amd64", 62, true, true, "x86_64"),
        ("i386", 3, false, true, "i386"),
        ("arm64", 183, true, true, "arm64"),
        ("armhf", 40, false, true, "armhf"),
        ("armel", 40, false, true, "armhf"),
        ("ppc64el", 21, true, true, "ppc64el"),
        ("ppc64", 21, true, false, "ppc64"),
        ("powerpc", 20, false, false, "powerpc"),
        ("s390x", 22, true, false, "s390x"),
        ("mips64el", 8, true, true, "mips64el"),
        ("mipsel", 8, false, true, "mipsel"),
        ("loong64", 258, true, true, "loong64"),
        ("riscv64", 243, true, true, "riscv64"),
        ("hppa", 15, false, false, "hppa"),
        // Debian's hppa port also ships 64-bit kernels (flavour parisc64).
        ("hppa64", 15, true, false, "hppa64"),
        ("m68k", 4, false, false, "m68k"),
        ("sh4", 42, false, true, "sh4"),
        ("sparc64", 43, true, false, "sparc64"),
        ("alpha", 0x9026, true, true, "alpha"),
        ("ia64", 50, true, true, "ia64"),
    ];

    #[test]
    fn every_debian_arch_is_recognised_by_name_and_by_elf() {
        let r = ArchRegistry::load(None).unwrap();
        for &(debian, machine, is_64, little, want) in DEBIAN {
            assert_eq!(r.get(debian).unwrap().name, want, "--arch {debian}");
            let got = r.by_elf(machine, is_64, little).map(|a| a.name.as_str());
            assert_eq!(got, Some(want), "{debian}: e_machine {machine}");
        }
        // The other e_machine values the kernels accept.
        assert_eq!(r.by_elf(6, false, true).unwrap().name, "i386"); // EM_486
        assert_eq!(r.by_elf(0xa390, true, false).unwrap().name, "s390x"); // EM_S390_OLD
    }

    #[test]
    fn no_two_descriptors_accept_the_same_elf_identity() {
        let r = ArchRegistry::load(None).unwrap();
        for a in &r.arches {
            for &m in std::iter::once(&a.elf.machine).chain(&a.elf.also_machines) {
                let (is_64, little) = (a.elf.class == 64, a.elf.endian == Endian::Little);
                let takers: Vec<&str> = r
                    .arches
                    .iter()
                    .filter(|b| b.accepts_elf(m, is_64, little))
                    .map(|b| b.name.as_str())
                    .collect();
                assert_eq!(takers, [a.name.as_str()], "e_machine {m}, 64-bit {is_64}");
            }
        }
    }

    #[test]
    fn no_two_descriptors_answer_to_the_same_name() {
        let r = ArchRegistry::load(None).unwrap();
        for a in &r.arches {
            for n in std::iter::once(&a.name).chain(&a.aliases) {
                let takers: Vec<&str> = r
                    .arches
                    .iter()
                    .filter(|b| b.matches(n))
                    .map(|b| b.name.as_str())
                    .collect();
                assert_eq!(takers, [a.name.as_str()], "--arch {n}");
            }
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let text = embedded::EMBEDDED
            .iter()
            .find(|(f, _)| *f == "alpha.yaml")
            .unwrap()
            .1;
        let bad = text.replace("  endian: little", "  endian: little\n  endianess: big");
        let e = ArchDescriptor::from_yaml("x.yaml", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.yaml") && e.contains("elf") && e.contains("endianess"),
            "{e}"
        );
    }

    #[test]
    fn bad_value_names_its_key_path() {
        let text = embedded::EMBEDDED
            .iter()
            .find(|(f, _)| *f == "alpha.yaml")
            .unwrap()
            .1;
        let bad = text.replace("ksymtab: absolute", "ksymtab: relative");
        let e = ArchDescriptor::from_yaml("x.yaml", &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("elf.ksymtab"), "{e}");
    }

    #[test]
    fn broken_yaml_is_an_error_not_a_panic() {
        for t in ["", ":", "name: [", "\t- x", "name: a\nname: b"] {
            assert!(ArchDescriptor::from_yaml("x.yaml", t).is_err(), "{t:?}");
        }
    }
}
