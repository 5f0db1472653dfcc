//! Every module-versioning generation the checker reads from the binary, written as
//! synthetic vmlinux and modules for 32/64-bit × little/big endian × absolute/PREL32:
//! word-wide CRC slots (≤4.9), two-field entries (before 5.4), CRC slots filled by relocations
//! (4.10–5.18), self-relative REL_CRCS slots, labelled slots (5.19–7.0), `__kflagstab` (7.1+),
//! and kernels without MODVERSIONS. The descriptor always claims the modern layout: the
//! format must come from the files.
mod support;
use modverify::arch::{ArchDescriptor, ArchRegistry};
use modverify::check::stage::{run_check, CheckOptions, CheckReport};
use modverify::check::{Policy, Verdict};
use support::synth::{all_targets, export, Export, Generation, KernelSpec, ModuleSpec, Target};

fn descriptor(t: Target) -> ArchDescriptor {
    support::synth::descriptor(t, "synth")
}

fn kernel_exports() -> Vec<Export> {
    vec![
        export("kfree", false, 0x1111_0001),
        export("module_layout", false, 0x2222_0002),
        export("memset", false, 0x3333_0003),
        export("crypto_alloc_shash", true, 0x4444_0004),
        export("zlib_deflate", false, 0x5555_0005),
    ]
}

struct World {
    kernel: KernelSpec,
    modules: Vec<ModuleSpec>,
}

fn check(t: Target, w: &World) -> CheckReport {
    let dir = tempfile::tempdir().unwrap();
    let vmlinux = dir.path().join("vmlinux");
    std::fs::write(&vmlinux, w.kernel.build()).unwrap();
    let mods = dir.path().join("mods");
    std::fs::create_dir(&mods).unwrap();
    for m in &w.modules {
        std::fs::write(mods.join(format!("{}.ko", m.name)), m.build()).unwrap();
    }
    let d = descriptor(t);
    let registry = ArchRegistry::of(vec![d.clone()]);
    let opts = CheckOptions {
        arch: Some(d.name.clone()),
        vmlinux: Some(vmlinux),
        system_map: None,
        symvers: None,
        policy: Policy::Debian,
        paths: vec![mods],
        own_modules: vec![],
        providers: Default::default(),
    };
    run_check(&opts, &registry).unwrap()
}

fn verdict(r: &CheckReport, name: &str) -> Verdict {
    r.modules.iter().find(|m| m.name == name).unwrap().verdict
}

/// A provider module exporting a normal and a GPL-only symbol, a user of both, a user with
/// a stale CRC and a proprietary user of the GPL-only kernel export.
fn world(t: Target, g: Generation, modversions: bool) -> World {
    let mut kernel = KernelSpec::new(t, kernel_exports());
    kernel.generation = g;
    kernel.modversions = modversions;
    kernel.symtab = true;
    if !modversions {
        kernel.vermagic = "6.1.0-synth SMP mod_unload ".into();
    }
    let m = |name: &str| {
        let mut m = ModuleSpec::new(t, name);
        m.generation = g;
        if !modversions {
            m.vermagic = Some(kernel.vermagic.clone());
            m.versions = None;
        }
        m
    };
    let imp = |m: ModuleSpec, sym: &str, crc: u32| {
        if modversions {
            m.import(sym, crc)
        } else {
            let mut m = m;
            m.undefined.push(sym.into());
            m
        }
    };
    let mut provider = imp(m("provider"), "module_layout", 0x2222_0002);
    provider = imp(provider, "kfree", 0x1111_0001);
    provider.exports = vec![
        export("prov_plain", false, 0xaaaa_0001),
        export("prov_gpl", true, 0xbbbb_0002),
    ];
    let mut user = imp(m("user"), "module_layout", 0x2222_0002);
    user = imp(user, "prov_plain", 0xaaaa_0001);
    user = imp(user, "prov_gpl", 0xbbbb_0002);
    user = imp(user, "crypto_alloc_shash", 0x4444_0004);
    let stale = imp(m("stale"), "module_layout", 0x2222_0002);
    let stale = imp(stale, "memset", 0x3333_9999);
    let stale_mod = imp(m("stale_mod"), "module_layout", 0x2222_0002);
    let stale_mod = imp(stale_mod, "prov_plain", 0xaaaa_9999);
    let mut proprietary = imp(m("proprietary"), "module_layout", 0x2222_0002);
    proprietary = imp(proprietary, "crypto_alloc_shash", 0x4444_0004);
    proprietary.license = Some("Proprietary".into());
    let mut prop_mod = imp(m("prop_mod"), "module_layout", 0x2222_0002);
    prop_mod = imp(prop_mod, "prov_gpl", 0xbbbb_0002);
    prop_mod.license = Some("Proprietary".into());
    World {
        kernel,
        modules: vec![provider, user, stale, stale_mod, proprietary, prop_mod],
    }
}

#[test]
fn every_generation_is_read_from_the_binary_on_every_target() {
    for t in all_targets() {
        for g in Generation::ALL {
            let r = check(t, &world(t, g, true));
            let ctx = format!("{t:?} {g:?}");
            assert_eq!(r.exports.count, 5, "{ctx}");
            assert_eq!(r.exports.gpl, 1, "{ctx}");
            assert!(r.kernel.modversions, "{ctx}");
            assert!(
                r.exports.problems.is_empty(),
                "{ctx}: {:#?}",
                r.exports.problems
            );
            for ok in ["provider", "user"] {
                assert_eq!(
                    verdict(&r, ok),
                    Verdict::Ok,
                    "{ctx} {ok}: {:#?}",
                    r.modules.iter().find(|m| m.name == ok)
                );
            }
            // The kernel's CRC and a module's CRC are both read, however they are stored.
            assert_eq!(verdict(&r, "stale"), Verdict::CrcMismatch, "{ctx}");
            let p = &r
                .modules
                .iter()
                .find(|m| m.name == "stale")
                .unwrap()
                .problems[0];
            assert_eq!(p.kernel_crc, Some(0x3333_0003), "{ctx}");
            assert_eq!(verdict(&r, "stale_mod"), Verdict::CrcMismatch, "{ctx}");
            let p = &r
                .modules
                .iter()
                .find(|m| m.name == "stale_mod")
                .unwrap()
                .problems[0];
            assert_eq!(p.kernel_crc, Some(0xaaaa_0001), "{ctx}");
            // GPL-only by table before 7.1, by __kflagstab since: for the kernel and modules.
            assert_eq!(verdict(&r, "proprietary"), Verdict::GplOnly, "{ctx}");
            assert_eq!(verdict(&r, "prop_mod"), Verdict::GplOnly, "{ctx}");
        }
    }
}

#[test]
fn a_kernel_without_modversions_checks_no_crcs_and_compares_the_whole_vermagic() {
    for t in all_targets() {
        for g in [Generation::Modern, Generation::Flagstab] {
            let mut w = world(t, g, false);
            let mut other = ModuleSpec::new(t, "other_release");
            other.generation = g;
            other.versions = None;
            other.vermagic = Some("6.1.0-other SMP mod_unload ".into());
            other.undefined.push("kfree".into());
            w.modules.push(other);
            let r = check(t, &w);
            let ctx = format!("{t:?} {g:?}");
            assert!(!r.kernel.modversions, "{ctx}");
            assert!(
                r.exports.problems.is_empty(),
                "{ctx}: {:#?}",
                r.exports.problems
            );
            for ok in ["provider", "user", "stale", "stale_mod"] {
                assert_eq!(verdict(&r, ok), Verdict::Ok, "{ctx} {ok}");
            }
            assert_eq!(verdict(&r, "proprietary"), Verdict::GplOnly, "{ctx}");
            // Without CRCs the release is part of the comparison (same_magic, no has_crcs).
            assert_eq!(verdict(&r, "other_release"), Verdict::BadVermagic, "{ctx}");
        }
    }
}

#[test]
fn a_lost_kcrctab_slot_is_found_in_the_flagstab_format_too() {
    for t in all_targets() {
        let mut w = world(t, Generation::Flagstab, true);
        w.kernel.no_slot = vec!["kfree".into()];
        let r = check(t, &w);
        assert!(
            r.exports
                .problems
                .iter()
                .any(|p| p.kind == modverify::check::ExportProblemKind::IndexShift),
            "{t:?}: {:#?}",
            r.exports.problems
        );
        assert_eq!(verdict(&r, "stale"), Verdict::CrcMismatch);
    }
}
