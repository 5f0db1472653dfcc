//! The static checker on synthetic ELF files: 32/64-bit × little/big endian × absolute/PREL32,
//! GPL and namespaced exports, a shifted kcrctab, flipped and missing CRCs, hostile bytes.
mod support;
use modverify::arch::{ArchDescriptor, ArchRegistry, KsymtabLayout};
use modverify::check::stage::{run_check, CheckOptions, CheckReport};
use modverify::check::{ExportProblemKind, Policy, Verdict};
use std::path::PathBuf;
use support::synth::{all_targets, export, Export, KernelSpec, ModuleSpec, Target};

fn descriptor(t: Target) -> ArchDescriptor {
    support::synth::descriptor(
        t,
        &format!(
            "synth{}{}{:?}",
            if t.is_64 { 64 } else { 32 },
            if t.little { "le" } else { "be" },
            t.layout
        )
        .to_lowercase(),
    )
}

fn exports() -> Vec<Export> {
    let mut v = vec![
        export("kfree", false, 0x1111_0001),
        export("module_layout", false, 0x2222_0002),
        export("_mcount", false, 0x0000_0000),
        export("memset", false, 0x3333_0003),
        export("crypto_alloc_shash", true, 0x4444_0004),
        export("zlib_deflate", false, 0x5555_0005),
        export("__put_user_8", false, 0x6666_0006),
        export("clear_user", false, 0x7777_0007),
    ];
    v.push(Export {
        name: "cxl_driver_register".into(),
        gpl: true,
        crc: 0x8888_0008,
        namespace: Some("CXL".into()),
    });
    v
}

struct Case {
    dir: tempfile::TempDir,
    target: Target,
    kernel: KernelSpec,
    symvers: bool,
}

impl Case {
    fn new(target: Target) -> Self {
        Case {
            dir: tempfile::tempdir().unwrap(),
            target,
            kernel: KernelSpec::new(target, exports()),
            symvers: false,
        }
    }
    fn module(&self, name: &str) -> ModuleSpec {
        ModuleSpec::new(self.target, name)
            .import("kfree", 0x1111_0001)
            .import("module_layout", 0x2222_0002)
    }
    fn run(&self, policy: Policy) -> CheckReport {
        let vmlinux = self.dir.path().join("vmlinux");
        std::fs::write(&vmlinux, self.kernel.build()).unwrap();
        let symvers = self.symvers.then(|| {
            let p = self.dir.path().join("Module.symvers");
            let text: String = self
                .kernel
                .exports
                .iter()
                .map(|e| {
                    format!(
                        "{:#010x}\t{}\tvmlinux\t{}\t{}\n",
                        e.crc,
                        e.name,
                        if e.gpl {
                            "EXPORT_SYMBOL_GPL"
                        } else {
                            "EXPORT_SYMBOL"
                        },
                        e.namespace.clone().unwrap_or_default()
                    )
                })
                .collect();
            std::fs::write(&p, text).unwrap();
            p
        });
        let d = descriptor(self.target);
        let registry = ArchRegistry::of(vec![d.clone()]);
        let opts = CheckOptions {
            system_map: None,
            arch: Some(d.name.clone()),
            vmlinux: Some(vmlinux),
            symvers,
            policy,
            paths: vec![self.dir.path().join("mods")],
            own_modules: vec![],
            providers: Default::default(),
        };
        run_check(&opts, &registry).unwrap()
    }
}

fn verdict(r: &CheckReport, name: &str) -> Verdict {
    r.modules
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no module {name}"))
        .verdict
}

fn with_mods(c: &Case, mods: &[ModuleSpec]) {
    std::fs::create_dir_all(c.dir.path().join("mods")).unwrap();
    for m in mods {
        std::fs::write(
            c.dir.path().join("mods").join(format!("{}.ko", m.name)),
            m.build(),
        )
        .unwrap();
    }
}

#[test]
fn every_class_endian_and_layout_decodes_and_passes() {
    for t in all_targets() {
        let c = Case::new(t);
        let a = c.module("a").import("crypto_alloc_shash", 0x4444_0004);
        let mut ns = c
            .module("ns_user")
            .import("cxl_driver_register", 0x8888_0008);
        ns.import_ns = vec!["CXL".into()];
        let mut provider = c.module("provider");
        provider.exports = vec![
            export("provided_fn", false, 0xabcd_0001),
            export("provided_gpl", true, 0xabcd_0002),
        ];
        let consumer = c
            .module("consumer")
            .import("provided_fn", 0xabcd_0001)
            .import("provided_gpl", 0xabcd_0002);
        with_mods(&c, &[a, ns, provider, consumer]);
        let r = c.run(Policy::Debian);
        assert_eq!(r.exports.count, 9, "{t:?}");
        assert_eq!(r.exports.gpl, 2, "{t:?}");
        assert!(
            r.exports
                .problems
                .iter()
                .all(|p| p.kind == ExportProblemKind::ZeroCrc),
            "{t:?}: {:#?}",
            r.exports.problems
        );
        for m in &r.modules {
            assert_eq!(
                m.verdict,
                Verdict::Ok,
                "{t:?} {}: {:#?}",
                m.name,
                m.problems
            );
        }
        assert_eq!(
            r.modules
                .iter()
                .find(|m| m.name == "consumer")
                .unwrap()
                .uses,
            vec!["provider".to_string()]
        );
        assert_eq!(
            r.kernel.vermagic.as_deref(),
            Some("6.1.0-synth SMP mod_unload modversions ")
        );
    }
}

/// Linux 5.19: `_mcount` had no CRC, modpost emitted no kcrctab slot for it, and since `_`
/// sorts before lowercase, `module_layout` read its neighbour's CRC: every module failed.
#[test]
fn linux_5_19_missing_crc_slot_shifts_the_table() {
    for t in all_targets() {
        for (symvers, symtab) in [(true, false), (false, true), (false, false)] {
            let mut c = Case::new(t);
            c.kernel.no_slot = vec!["_mcount".into()];
            c.kernel.symtab = symtab;
            c.symvers = symvers;
            with_mods(
                &c,
                &[c.module("a"), c.module("b").import("memset", 0x3333_0003)],
            );
            let r = c.run(Policy::Debian);
            let what = format!("{t:?} symvers={symvers} symtab={symtab}");
            assert!(
                r.exports
                    .problems
                    .iter()
                    .any(|p| p.kind == ExportProblemKind::SlotCount),
                "{what}"
            );
            let shift = r
                .exports
                .problems
                .iter()
                .find(|p| p.kind == ExportProblemKind::IndexShift);
            if symvers || symtab {
                let s = shift
                    .unwrap_or_else(|| panic!("{what}: no shift in {:#?}", r.exports.problems));
                // Sorted normal table: __put_user_8, _mcount, clear_user, kfree, memset, module_layout, zlib_deflate
                assert_eq!(s.slot, Some(1), "{what}");
                assert_eq!(s.delta, Some(1), "{what}");
                assert_eq!(s.symbol.as_deref(), Some("_mcount"), "{what}");
                assert!(s.symbols.contains(&"module_layout".to_string()), "{what}");
            }
            if symtab {
                assert!(
                    r.exports
                        .problems
                        .iter()
                        .any(|p| p.kind == ExportProblemKind::NoCrcSlot
                            && p.symbol.as_deref() == Some("_mcount")),
                    "{what}"
                );
            }
            for name in ["a", "b"] {
                let m = r.modules.iter().find(|m| m.name == name).unwrap();
                assert_eq!(m.verdict, Verdict::CrcMismatch, "{what}");
                assert_eq!(m.problems[0].symbol.as_deref(), Some("module_layout"));
                assert_eq!(
                    m.problems[0].kernel_messages,
                    vec![format!(
                        "{name}: disagrees about version of symbol module_layout"
                    )]
                );
                assert_eq!(m.problems[0].module_crc, Some(0x2222_0002));
                assert_eq!(
                    m.problems[0].kernel_crc,
                    Some(0x5555_0005),
                    "{what}: module_layout reads zlib_deflate's slot"
                );
            }
        }
    }
}

#[test]
fn flipped_crc_is_a_mismatch_with_both_values() {
    for t in all_targets() {
        let c = Case::new(t);
        let bad = ModuleSpec::new(t, "bad")
            .import("kfree", 0x1111_0001 ^ 0x80)
            .import("module_layout", 0x2222_0002);
        with_mods(&c, &[bad]);
        let r = c.run(Policy::Debian);
        let m = &r.modules[0];
        assert_eq!(m.verdict, Verdict::CrcMismatch);
        let p = &m.problems[0];
        assert_eq!(p.symbol.as_deref(), Some("kfree"));
        assert_eq!(
            (p.module_crc, p.kernel_crc),
            (Some(0x1111_0081), Some(0x1111_0001))
        );
        assert_eq!(
            p.kernel_messages,
            vec![
                "bad: disagrees about version of symbol kfree".to_string(),
                "bad: Unknown symbol kfree (err -22)".to_string()
            ]
        );
        assert!(!r.clean());
    }
}

/// 2018: TRIM_UNUSED_KSYMS dropped `clear_user` from the exports; modules failed to load.
#[test]
fn trimmed_export_is_an_unknown_symbol() {
    let t = all_targets()[0];
    let mut c = Case::new(t);
    c.kernel.exports.retain(|e| e.name != "clear_user");
    with_mods(
        &c,
        &[c.module("uaccess_user").import("clear_user", 0x7777_0007)],
    );
    let r = c.run(Policy::Debian);
    assert_eq!(r.modules[0].verdict, Verdict::UnknownSymbol);
    assert_eq!(
        r.modules[0].problems[0].kernel_messages,
        vec!["uaccess_user: Unknown symbol clear_user (err -2)".to_string()]
    );
}

#[test]
fn missing_version_entry_follows_the_policy() {
    let t = all_targets()[1];
    let c = Case::new(t);
    let mut m = c.module("nover");
    m.undefined.push("memset".into());
    with_mods(&c, &[m]);
    assert_eq!(
        c.run(Policy::Debian).modules[0].verdict,
        Verdict::MissingVersion
    );
    let up = c.run(Policy::Upstream);
    assert_eq!(up.modules[0].verdict, Verdict::Ok);
    assert!(!up.modules[0].problems[0].fatal);
    assert_eq!(
        up.modules[0].problems[0].kernel_messages[0],
        "nover: no symbol version for memset"
    );
}

#[test]
fn gpl_only_namespace_vermagic_and_dependencies() {
    for t in all_targets() {
        let c = Case::new(t);
        let mut prop = c.module("prop").import("crypto_alloc_shash", 0x4444_0004);
        prop.license = Some("Proprietary".into());
        let ns = c.module("ns").import("cxl_driver_register", 0x8888_0008);
        let mut magic = c.module("magic");
        magic.vermagic = Some("6.1.0-other SMP preempt mod_unload modversions ".into());
        let mut release_only = c.module("release_only");
        release_only.vermagic = Some("6.1.99-other SMP mod_unload modversions ".into());
        let mut provider = c.module("provider").import("zlib_deflate", 0x5555_0005 ^ 1);
        provider.exports = vec![export("provided_fn", false, 0xabcd_0001)];
        let consumer = c.module("consumer").import("provided_fn", 0xabcd_0001);
        let mut dup = c.module("dup");
        dup.exports = vec![export("kfree", false, 0x1111_0001)];
        with_mods(
            &c,
            &[prop, ns, magic, release_only, provider, consumer, dup],
        );
        let r = c.run(Policy::Debian);
        assert_eq!(verdict(&r, "prop"), Verdict::GplOnly, "{t:?}");
        assert_eq!(verdict(&r, "ns"), Verdict::Namespace, "{t:?}");
        assert_eq!(verdict(&r, "magic"), Verdict::BadVermagic, "{t:?}");
        assert_eq!(
            verdict(&r, "release_only"),
            Verdict::Ok,
            "same_magic skips the release when CRCs exist: {t:?}"
        );
        assert_eq!(verdict(&r, "provider"), Verdict::CrcMismatch, "{t:?}");
        assert_eq!(verdict(&r, "consumer"), Verdict::DependencyFailed, "{t:?}");
        assert_eq!(verdict(&r, "dup"), Verdict::DuplicateExport, "{t:?}");
        let magic = r.modules.iter().find(|m| m.name == "magic").unwrap();
        // Built for another release: said first (a warning), then what the loader stops at.
        assert!(!magic.problems[0].fatal, "{:?}", magic.problems);
        assert!(magic.problems[0]
            .detail
            .contains("built for release 6.1.0-other"));
        assert_eq!(
            magic.problems.iter().find(|p| p.fatal).unwrap().kernel_messages[0],
            "magic: version magic '6.1.0-other SMP preempt mod_unload modversions ' should be '6.1.0-synth SMP mod_unload modversions '"
        );
        // Failing modules are listed first.
        assert!(r.modules[0].failed());
    }
}

#[test]
fn module_of_another_arch_is_wrong_arch_and_the_rest_still_checked() {
    let targets = all_targets();
    let c = Case::new(targets[0]);
    let foreign = ModuleSpec::new(targets[2], "foreign").import("kfree", 0x1111_0001);
    std::fs::create_dir_all(c.dir.path().join("mods")).unwrap();
    std::fs::write(c.dir.path().join("mods/foreign.ko"), foreign.build()).unwrap();
    std::fs::write(
        c.dir.path().join("mods/junk.ko"),
        b"\x7fELF\x02\x01\x01garbage",
    )
    .unwrap();
    std::fs::write(c.dir.path().join("mods/text.ko"), b"not an elf at all").unwrap();
    std::fs::write(c.dir.path().join("mods/good.ko"), c.module("good").build()).unwrap();
    let r = c.run(Policy::Debian);
    assert_eq!(verdict(&r, "foreign"), Verdict::WrongArch);
    assert_eq!(verdict(&r, "junk"), Verdict::Malformed);
    assert_eq!(verdict(&r, "text"), Verdict::Malformed);
    assert_eq!(verdict(&r, "good"), Verdict::Ok);
}

#[test]
fn compressed_modules_are_read() {
    use std::io::Write;
    let t = all_targets()[0];
    let c = Case::new(t);
    std::fs::create_dir_all(c.dir.path().join("mods")).unwrap();
    let raw = c.module("gz").build();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    std::fs::write(c.dir.path().join("mods/gz.ko.gz"), gz.finish().unwrap()).unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &c.module("xz").build()[..], &mut xz).unwrap();
    std::fs::write(c.dir.path().join("mods/xz.ko.xz"), xz).unwrap();
    let r = c.run(Policy::Debian);
    assert_eq!(r.modules.len(), 2);
    assert!(
        r.modules.iter().all(|m| m.verdict == Verdict::Ok),
        "{:#?}",
        r.modules
    );
}

/// A tiny deterministic PRNG: the test must be repeatable without a dependency.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn truncated_and_hostile_bytes_never_panic() {
    use modverify::elf::{ElfFile, ExportTable, ModuleFacts};
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for t in all_targets() {
        let d = descriptor(t);
        let mut c = Case::new(t);
        c.kernel.symtab = true;
        let mut m = c.module("m");
        m.exports = vec![export("e1", false, 1), export("e2", true, 2)];
        for bytes in [c.kernel.build(), m.build()] {
            let step = (bytes.len() / 300).max(1);
            let mut cut = 0;
            while cut < bytes.len() {
                let b = &bytes[..cut];
                if let Ok(elf) = ElfFile::parse(b) {
                    let _ = ExportTable::from_vmlinux(&elf, Some(t.layout));
                    let _ = ModuleFacts::parse(&elf, &d.elf);
                }
                cut += step;
            }
            for _ in 0..400 {
                let mut b = bytes.clone();
                for _ in 0..(xorshift(&mut seed) % 8 + 1) {
                    let i = (xorshift(&mut seed) as usize) % b.len();
                    b[i] = xorshift(&mut seed) as u8;
                }
                if let Ok(elf) = ElfFile::parse(&b) {
                    let _ = ExportTable::from_vmlinux(&elf, Some(t.layout));
                    let _ = ModuleFacts::parse(&elf, &d.elf);
                }
            }
        }
    }
}

#[test]
fn symvers_alone_is_an_export_source() {
    let t = all_targets()[0];
    let c = Case::new(t);
    let dir = c.dir.path();
    std::fs::create_dir_all(dir.join("mods")).unwrap();
    std::fs::write(
        dir.join("mods/a.ko"),
        c.module("a").import("clear_user", 0x7777_0007).build(),
    )
    .unwrap();
    std::fs::write(
        dir.join("mods/b.ko"),
        c.module("b").import("nope", 1).build(),
    )
    .unwrap();
    std::fs::write(dir.join("Module.symvers"), "0x11110001\tkfree\tvmlinux\tEXPORT_SYMBOL\t\n0x22220002\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n0x77770007\tclear_user\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    let d = descriptor(t);
    let registry = ArchRegistry::of(vec![d.clone()]);
    let opts = CheckOptions {
        system_map: None,
        arch: None,
        vmlinux: None,
        symvers: Some(dir.join("Module.symvers")),
        policy: Policy::Debian,
        paths: vec![dir.join("mods")],
        own_modules: vec![],
        providers: Default::default(),
    };
    let r = run_check(&opts, &registry).unwrap();
    assert_eq!(r.arch, d.name, "arch inferred from the modules");
    assert_eq!(r.exports.count, 3);
    assert_eq!(verdict(&r, "a"), Verdict::Ok);
    assert_eq!(verdict(&r, "b"), Verdict::UnknownSymbol);
    let _: Vec<PathBuf> = vec![];
}

#[test]
fn layout_falls_back_when_the_descriptor_is_wrong() {
    use modverify::elf::{ElfFile, ExportTable};
    for t in all_targets() {
        let bytes = KernelSpec::new(t, exports()).build();
        let elf = ElfFile::parse(&bytes).unwrap();
        let other = match t.layout {
            KsymtabLayout::Absolute => KsymtabLayout::Prel32,
            KsymtabLayout::Prel32 => KsymtabLayout::Absolute,
        };
        let table = ExportTable::from_vmlinux(&elf, Some(other)).unwrap();
        assert_eq!(table.layout, Some(t.layout), "{t:?}");
        assert_eq!(
            table.lookup("cxl_driver_register").unwrap().namespace,
            Some("CXL")
        );
    }
}

/// 6.14+ EXTENDED_MODVERSIONS: the kernel uses __version_ext_crcs/__version_ext_names
/// instead of __versions ("If we have extended version info, rely on it").
#[test]
fn extended_modversions_are_read() {
    for t in all_targets() {
        let c = Case::new(t);
        let mut good = c.module("ext_good").import("memset", 0x3333_0003);
        good.extended_versions = true;
        let mut bad = c.module("ext_bad").import("memset", 0x3333_0004);
        bad.extended_versions = true;
        with_mods(&c, &[good, bad]);
        let r = c.run(Policy::Debian);
        assert_eq!(verdict(&r, "ext_good"), Verdict::Ok, "{t:?}");
        assert_eq!(verdict(&r, "ext_bad"), Verdict::CrcMismatch, "{t:?}");
    }
}

/// A symbol exported by a module that is not among those checked resolves through
/// Module.symvers (with its CRC), instead of being reported unknown.
#[test]
fn module_exports_from_symvers_resolve() {
    let t = all_targets()[0];
    let mut c = Case::new(t);
    c.symvers = true;
    with_mods(
        &c,
        &[
            c.module("user").import("provided_elsewhere", 0xfeed_0001),
            c.module("wrong").import("provided_elsewhere", 0xfeed_0002),
        ],
    );
    let vmlinux = c.dir.path().join("vmlinux");
    std::fs::write(&vmlinux, c.kernel.build()).unwrap();
    let sv = c.dir.path().join("Module.symvers");
    let mut text: String = c
        .kernel
        .exports
        .iter()
        .map(|e| {
            format!(
                "{:#010x}\t{}\tvmlinux\t{}\t\n",
                e.crc,
                e.name,
                if e.gpl {
                    "EXPORT_SYMBOL_GPL"
                } else {
                    "EXPORT_SYMBOL"
                }
            )
        })
        .collect();
    text += "0xfeed0001\tprovided_elsewhere\tdrivers/other/mod\tEXPORT_SYMBOL\t\n";
    std::fs::write(&sv, text).unwrap();
    let d = descriptor(t);
    let registry = ArchRegistry::of(vec![d.clone()]);
    let opts = CheckOptions {
        system_map: None,
        arch: Some(d.name.clone()),
        vmlinux: Some(vmlinux),
        symvers: Some(sv),
        policy: Policy::Debian,
        paths: vec![c.dir.path().join("mods")],
        own_modules: vec![],
        providers: Default::default(),
    };
    let r = run_check(&opts, &registry).unwrap();
    assert_eq!(verdict(&r, "user"), Verdict::Ok);
    assert!(r
        .modules
        .iter()
        .find(|m| m.name == "user")
        .unwrap()
        .problems[0]
        .detail
        .contains("drivers/other/mod"));
    assert_eq!(verdict(&r, "wrong"), Verdict::CrcMismatch);
}

/// powerpc64 ELFv1: a module calls `.kfree` (the entry point) and its `__versions` may name
/// `.kfree`; the loader's dedotify resolves both against the export `kfree`, and so does
/// the check where the descriptor says `dedot_undefined` (else `.kfree` is unknown).
#[test]
fn elfv1_dot_symbols_resolve_without_the_dot_where_the_loader_drops_it() {
    use modverify::elf::{ElfFile, ModuleFacts};
    let t = Target {
        is_64: true,
        little: false,
        machine: 21,
        layout: KsymtabLayout::Absolute,
    };
    let bytes = ModuleSpec::new(t, "m")
        .import(".kfree", 0x1111_0001)
        .build();
    let elf = ElfFile::parse(&bytes).unwrap();
    let mut d = descriptor(t);
    let names = |f: &ModuleFacts| {
        let undefined: Vec<String> = f.undefined.iter().map(|u| u.name.clone()).collect();
        let versions: Vec<String> = f
            .versions
            .iter()
            .flatten()
            .map(|v| v.name.clone())
            .collect();
        (undefined, versions)
    };
    let plain = ModuleFacts::parse(&elf, &d.elf).unwrap();
    assert_eq!(
        names(&plain),
        (vec![".kfree".into()], vec![".kfree".into()])
    );
    d.elf.dedot_undefined = true;
    let dedotted = ModuleFacts::parse(&elf, &d.elf).unwrap();
    assert_eq!(
        names(&dedotted),
        (vec!["kfree".into()], vec!["kfree".into()])
    );
}
