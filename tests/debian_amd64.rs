//! The static checker on real data nobody here wrote: Debian's kernels of every generation
//! (bullseye 5.10, bookworm 6.1, trixie 6.12, sid 7.x; amd64 and arm64) and their thousands
//! of modules, fetched once by ci/fetch-debian-kernel into a cache outside the clone (the
//! newest ABI each suite serves), plus damaged copies diagnosed at the right place.
mod common;
use common::*;
use modverify::elf::{ElfFile, ModuleFacts, TableKind};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

fn check(args: &[&std::ffi::OsStr]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .arg("check")
        .arg("--format")
        .arg("json")
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
}

fn names_with(report: &Value, verdict: &str) -> BTreeSet<String> {
    report["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["verdict"] == verdict)
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_debian_module_is_ok_and_the_export_table_consistent() {
    let d = debian_kernel();
    let (code, r) = check(&[
        "--vmlinux".as_ref(),
        d.join("vmlinux").as_os_str(),
        "--symvers".as_ref(),
        d.join("Module.symvers").as_os_str(),
        d.join("modules").as_os_str(),
    ]);
    assert_eq!(r["arch"], "x86_64");
    assert!(
        r["summary"]["modules"].as_u64().unwrap() >= 4000,
        "{}",
        r["summary"]
    );
    assert_eq!(
        r["summary"]["failed"],
        0,
        "{:#}",
        r["modules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["verdict"] != "ok")
            .take(5)
            .collect::<Vec<_>>()
            .len()
    );
    assert!(r["exports"]["count"].as_u64().unwrap() >= 10000);
    assert_eq!(
        r["exports"]["problems"].as_array().unwrap().len(),
        0,
        "{:#}",
        r["exports"]["problems"]
    );
    assert!(r["kernel"]["vermagic"]
        .as_str()
        .unwrap()
        .contains("modversions"));
    assert_eq!(code, 0);
}

/// The Linux 5.19 shape on real data: one `__kcrctab` slot removed, later slots moved down,
/// the last slot zero. The shift must be found at that slot, and exactly the modules that
/// import a symbol at or after it must fail.
#[test]
fn a_removed_kcrctab_slot_is_diagnosed_as_an_index_shift() {
    removed_kcrctab_slot_is_an_index_shift(&debian_kernel());
}

/// 5.10: slots filled by the linker from absolute `__crc_*` symbols, read the same way.
#[test]
fn a_removed_kcrctab_slot_in_bullseye_5_10_is_an_index_shift() {
    removed_kcrctab_slot_is_an_index_shift(&debian_kernel_of("bullseye", "amd64"));
}

fn removed_kcrctab_slot_is_an_index_shift(d: &std::path::Path) {
    let bytes = std::fs::read(d.join("vmlinux")).unwrap();
    let (names, k, shifted) = {
        let elf = ElfFile::parse(&bytes).unwrap();
        let table = modverify::elf::ExportTable::from_vmlinux(&elf, None).unwrap();
        let names = table.table(TableKind::Normal).names.clone();
        let sec = elf.section("__kcrctab").unwrap();
        let (off, n) = (sec.shdr.sh_offset as usize, sec.shdr.sh_size as usize / 4);
        assert_eq!(n, names.len());
        // A slot after module_layout, so that only some modules fail.
        let k = names.iter().position(|s| s == "module_layout").unwrap()
            + 1
            + (n - names.iter().position(|s| s == "module_layout").unwrap()) / 3;
        let mut shifted = bytes.clone();
        shifted.copy_within(off + 4 * (k + 1)..off + 4 * n, off + 4 * k);
        shifted[off + 4 * (n - 1)..off + 4 * n].fill(0);
        (names, k, shifted)
    };
    let tmp = tempfile::tempdir().unwrap();
    let vmlinux = tmp.path().join("vmlinux");
    std::fs::write(&vmlinux, &shifted).unwrap();

    // Which modules import a symbol at or after slot k (computed from __versions directly).
    let affected: BTreeSet<&str> = names[k..].iter().map(String::as_str).collect();
    let arch = modverify::arch::ArchRegistry::load(None)
        .unwrap()
        .get("x86_64")
        .unwrap()
        .clone();
    let mut expect_fail = BTreeSet::new();
    for p in modverify::input::discover(&[d.join("modules")]).unwrap() {
        let b = std::fs::read(&p).unwrap();
        let elf = ElfFile::parse(&b).unwrap();
        let f = ModuleFacts::parse(&elf, &arch.elf).unwrap();
        if f.versions
            .iter()
            .flatten()
            .any(|v| affected.contains(v.name.as_str()))
        {
            expect_fail.insert(f.name.unwrap());
        }
    }
    assert!(
        !expect_fail.is_empty() && expect_fail.len() < 3800,
        "{} modules affected",
        expect_fail.len()
    );

    for with_symvers in [true, false] {
        let mut args: Vec<&std::ffi::OsStr> = vec!["--vmlinux".as_ref(), vmlinux.as_os_str()];
        let symvers = d.join("Module.symvers");
        if with_symvers {
            args.extend(["--symvers".as_ref(), symvers.as_os_str()]);
        }
        let modules = d.join("modules");
        args.push(modules.as_os_str());
        let (code, r) = check(&args);
        assert_eq!(code, 1);
        let problems = r["exports"]["problems"].as_array().unwrap();
        let shift = problems
            .iter()
            .find(|p| p["kind"] == "index_shift")
            .unwrap_or_else(|| panic!("no index_shift in {problems:#?}"));
        assert_eq!(shift["table"], "__ksymtab/__kcrctab");
        assert_eq!(shift["delta"], 1);
        if with_symvers {
            assert_eq!(shift["slot"], k, "{shift:#}");
            assert_eq!(shift["symbol"], names[k].as_str());
            assert_eq!(shift["last_slot"], names.len() - 2);
            assert_eq!(shift["reference"], "Module.symvers");
        } else {
            // Without Module.symvers the modules' __versions are the only (sparse) oracle:
            // still one shift, at the same slot, blaming the same export — not dozens.
            let shifts = problems
                .iter()
                .filter(|p| p["kind"] == "index_shift")
                .count();
            assert_eq!(shifts, 1, "{problems:#?}");
            // Where the slots before the shift have no reference CRC, it names the range
            // it can tell (and the lost slot lies in it).
            let slot = shift["slot"].as_u64().unwrap() as usize;
            let earliest = shift["earliest_slot"].as_u64().map_or(slot, |e| e as usize);
            assert!(earliest <= k && k <= slot, "k={k}: {shift:#}");
            if earliest == slot {
                assert_eq!(shift["symbol"], names[k].as_str());
            }
            // Besides the shift, only the zeroed last slot.
            assert!(
                problems
                    .iter()
                    .all(|p| p["kind"] != "crc_mismatch" || p["slot"] == names.len() - 1),
                "{problems:#?}"
            );
        }
        if with_symvers {
            // What a person reads: the cause first, thousands of failures summarised, lines
            // wrapped to 100 columns off a terminal (a path is never broken).
            let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
                .arg("check")
                .args(&args)
                .output()
                .unwrap();
            let t = String::from_utf8_lossy(&o.stdout);
            let lines: Vec<&str> = t.lines().collect();
            assert!(lines.len() < 200, "{} lines", lines.len());
            assert!(
                lines
                    .iter()
                    .all(|l| l.chars().count() <= 100 || !l.trim().contains(' ')),
                "{t}"
            );
            let shift = t.find("index shift").unwrap();
            let first_module = t.find("Failing modules").unwrap();
            let dependants = t
                .find("failing only because a module they use fails")
                .unwrap();
            assert!(shift < first_module && first_module < dependants, "{t}");
            assert!(t.contains("more crc_mismatch modules"), "{t}");
        }
        let crc_fail = names_with(&r, "crc_mismatch");
        let expect: BTreeSet<String> = expect_fail.iter().cloned().collect();
        assert_eq!(crc_fail, expect, "with_symvers={with_symvers}");
        // Everything else loads, or fails only because a module it needs fails.
        for m in r["modules"].as_array().unwrap() {
            assert!(
                ["ok", "crc_mismatch", "dependency_failed"]
                    .contains(&m["verdict"].as_str().unwrap()),
                "{m:#}"
            );
        }
        let one = r["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["verdict"] == "crc_mismatch")
            .unwrap();
        assert!(one["problems"][0]["kernel_messages"][0]
            .as_str()
            .unwrap()
            .contains("disagrees about version of symbol"));
    }
}

/// Every module of a real kernel is ok, the export table has no finding, and it holds exactly
/// Module.symvers' vmlinux exports.
fn all_ok(suite: &str, arch: &str, kernel: &str) -> Value {
    let d = debian_kernel_of(suite, arch);
    let image = d.join(kernel);
    let symvers = d.join("Module.symvers");
    let modules = d.join("modules");
    let mut args: Vec<&std::ffi::OsStr> = vec![];
    if image.exists() {
        args.extend(["--vmlinux".as_ref(), image.as_os_str()]);
    }
    args.extend([
        "--symvers".as_ref(),
        symvers.as_os_str(),
        modules.as_os_str(),
    ]);
    let (code, r) = check(&args);
    let ctx = format!("{suite} {arch} {}", d.display());
    let bad: Vec<&Value> = r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["verdict"] != "ok")
        .take(3)
        .collect();
    assert_eq!(r["summary"]["failed"], 0, "{ctx}: {bad:#?}");
    assert!(r["summary"]["modules"].as_u64().unwrap() > 2000, "{ctx}");
    assert_eq!(
        r["exports"]["problems"].as_array().unwrap().len(),
        0,
        "{ctx}: {:#}",
        r["exports"]["problems"]
    );
    let text = std::fs::read_to_string(&symvers).unwrap();
    let in_symvers = text
        .lines()
        .filter(|l| l.split('\t').nth(2) == Some("vmlinux"))
        .count();
    assert_eq!(
        r["exports"]["count"].as_u64().unwrap() as usize,
        in_symvers,
        "{ctx}"
    );
    assert_eq!(code, 0, "{ctx}");
    r
}

/// Before 5.19 a module's own __kcrctab slots are relocations against absolute __crc_*.
#[test]
fn bullseye_5_10_amd64_every_module_ok() {
    let r = all_ok("bullseye", "amd64", "vmlinux");
    assert!(r["kernel"]["release"]
        .as_str()
        .unwrap()
        .starts_with("5.10."));
}

/// Read from the bzImage itself: its xz payload (with the x86 BCJ filter) unwrapped.
#[test]
fn trixie_6_12_amd64_every_module_ok_from_the_bzimage() {
    let r = all_ok("trixie", "amd64", "vmlinuz");
    assert!(r["kernel"]["release"]
        .as_str()
        .unwrap()
        .starts_with("6.12."));
    assert!(!r["kernel"]["unpacked"].as_array().unwrap().is_empty());
}

/// 7.1+: __kflagstab, no _gpl tables, module: namespaces, CONFIG_MODVERSIONS off.
#[test]
fn sid_7_x_amd64_every_module_ok() {
    let r = all_ok("sid", "amd64", "vmlinuz");
    assert_eq!(r["kernel"]["modversions"], false);
    // Consistent, but it must not claim CRC slots it never had.
    assert_eq!(r["exports"]["verified"], "names_only");
    assert!(r["exports"]["gpl"].as_u64().unwrap() > 5000);
}

/// arm64 ships a raw Image and a placeholder System.map: the export table comes from
/// Module.symvers (and the arch from the modules' ELF headers).
#[test]
fn trixie_6_12_arm64_every_module_ok() {
    let r = all_ok("trixie", "arm64", "no-usable-image");
    assert_eq!(r["arch"], "arm64");
    assert_eq!(r["exports"]["verified"], "symvers_only");
}

/// 7.x damaged: one non-GPL export flagged GPL-only in __kflagstab. Debian's modules are all
/// GPL, so one whose kernel imports are all non-GPL exports is copied with its licence
/// rewritten to a proprietary one: it loads against the real table and gets gpl_only, naming
/// that export, against the damaged one.
#[test]
fn a_gpl_flag_set_in_7_x_kflagstab_fails_a_non_gpl_user() {
    let d = debian_kernel_of("sid", "amd64");
    let GplFlagDamage {
        vmlinux: bytes,
        damaged,
        proprietary,
        victim: victim_name,
        ..
    } = gpl_flag_damage(&d);
    let tmp = tempfile::tempdir().unwrap();
    let mods = tmp.path().join("mods");
    std::fs::create_dir(&mods).unwrap();
    std::fs::write(mods.join("proprietary_copy.ko"), &proprietary).unwrap();
    let good = tmp.path().join("vmlinux.good");
    std::fs::write(&good, &bytes).unwrap();
    let bad = tmp.path().join("vmlinux.bad");
    std::fs::write(&bad, &damaged).unwrap();
    let (code, r) = check(&["--vmlinux".as_ref(), good.as_os_str(), mods.as_os_str()]);
    assert_eq!((code, &r["summary"]["ok"]), (0, &Value::from(1)), "{r:#}");
    let (code, r) = check(&["--vmlinux".as_ref(), bad.as_os_str(), mods.as_os_str()]);
    assert_eq!(code, 1);
    let m = &r["modules"][0];
    assert_eq!(m["verdict"], "gpl_only", "{m:#}");
    assert_eq!(m["problems"][0]["symbol"], victim_name.as_str(), "{m:#}");
}

/// Bad input is named and is exit 2, never a verdict: nothing to check, an empty
/// Module.symvers, files given in each other's place.
#[test]
fn mistaken_inputs_are_named_and_exit_2() {
    let d = debian_kernel();
    let tmp = tempfile::tempdir().unwrap();
    let empty_dir = tmp.path().join("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    let empty_symvers = tmp.path().join("Module.symvers");
    std::fs::write(&empty_symvers, "").unwrap();
    let vmlinux = d.join("vmlinux");
    let symvers = d.join("Module.symvers");
    let a_module = modverify::input::discover(&[d.join("modules")]).unwrap()[0].clone();
    let run = |args: &[&std::path::Path]| {
        let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
            .arg("check")
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let v = std::path::Path::new("--vmlinux");
    let s = std::path::Path::new("--symvers");
    for (args, says) in [
        (vec![v, &vmlinux, &empty_dir], "nothing to check"),
        (
            vec![s, &empty_symvers, &d.join("modules")],
            "lists no vmlinux export",
        ),
        (vec![v, &a_module, &d.join("modules")], "this is a module"),
        (vec![v, &vmlinux, &vmlinux], "pass it as --vmlinux"),
        (vec![v, &vmlinux, &symvers], "pass it as --symvers"),
    ] {
        let (code, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// `boot` checks what it is given before it starts QEMU: a kernel or modules of another
/// arch, a text file as the kernel, no modules at all are bad input (exit 2), named.
#[test]
fn boot_refuses_a_kernel_or_modules_of_another_arch() {
    let d = debian_kernel();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let text_file = tmp.path().join("notes.txt");
    std::fs::write(&text_file, "not a kernel\n").unwrap();
    let run = |arch: &str, kernel: &std::path::Path, modules: &std::path::Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
            .args(["boot", "--arch", arch, "--show-command", "--kernel"])
            .arg(kernel)
            .arg("--modules")
            .arg(modules)
            .arg("--out")
            .arg(tmp.path().join(format!("out-{arch}")))
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let vmlinuz = d.join("vmlinuz");
    let modules = d.join("modules");
    for (arch, kernel, mods, says) in [
        ("riscv64", &d.join("vmlinux"), &modules, "EM_X86_64 (62)"),
        ("riscv64", &text_file, &modules, "a text file"),
        (
            "riscv64",
            &vmlinuz,
            &modules,
            "an x86 bzImage for EM_X86_64",
        ),
        ("x86_64", &vmlinuz, &empty, "no module files"),
    ] {
        let (code, err) = run(arch, kernel, mods);
        assert_eq!(code, 2, "{arch} {}: {err}", kernel.display());
        assert!(err.contains(says), "{arch} {}: {err}", kernel.display());
    }
}

/// Without --out, two arches booted with the same kernel path get separate directories.
#[test]
fn boot_default_directories_differ_per_arch() {
    let a = modverify::boot::default_out(None, "k".as_ref(), "m".as_ref(), "riscv64");
    let b = modverify::boot::default_out(None, "k".as_ref(), "m".as_ref(), "sparc64");
    assert_ne!(a, b);
}

/// What modprobe/depmod users reach for: a module filter, -q, JSON from `arches`.
#[test]
fn check_filters_modules_and_stays_quiet() {
    let d = debian_kernel();
    let bin = env!("CARGO_BIN_EXE_modverify");
    let vmlinux = d.join("vmlinux");
    let modules = d.join("modules");
    let (code, r) = check(&[
        "--vmlinux".as_ref(),
        vmlinux.as_os_str(),
        "--module".as_ref(),
        "vfat".as_ref(),
        "--module".as_ref(),
        "snd-hda-*".as_ref(),
        modules.as_os_str(),
    ]);
    assert_eq!(code, 0);
    let names = names_with(&r, "ok");
    assert!(names.contains("vfat") && names.iter().any(|n| n.starts_with("snd_hda_")));
    assert!(
        names
            .iter()
            .all(|n| n == "vfat" || n.starts_with("snd_hda_")),
        "{names:?}"
    );
    assert_eq!(
        r["summary"]["modules"].as_u64().unwrap() as usize,
        names.len()
    );
    let o = Command::new(bin)
        .args(["check", "-q", "--vmlinux"])
        .arg(&vmlinux)
        .arg(&modules)
        .output()
        .unwrap();
    assert_eq!((o.status.code(), o.stdout.len()), (Some(0), 0));
    let o = Command::new(bin)
        .args(["check", "--module", "no_such_module", "--vmlinux"])
        .arg(&vmlinux)
        .arg(&modules)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(bin)
        .args(["arches", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let x86 = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "x86_64")
        .unwrap();
    assert_eq!(x86["check"], "ok");
    assert_eq!(x86["e_machine"], 62);
}

/// The distribution maintainer's question, before a reboot: will last kernel's modules load
/// into the new one? 20 of bookworm 6.1's modules against trixie 6.12's vmlinuz, with no
/// Module.symvers (Debian's image package ships none). The modules' __versions were taken
/// as evidence about the kernel: "ERROR __kcrctab slot 57 (`__alloc_skb`) holds 0xdc3eabd6
/// but the symbol's CRC is 0x4f3ab69e (module __versions)", and `"consistent": false`. The
/// kernel is consistent; the modules are stale, and each one says so with both CRCs.
#[test]
fn stale_modules_are_their_own_findings_not_the_kernels() {
    let old = debian_kernel_of("bookworm", "amd64");
    let new = debian_kernel_of("trixie", "amd64");
    let tmp = tempfile::tempdir().unwrap();
    let mut all: Vec<std::path::PathBuf> = walk(&old.join("modules"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".ko"))
        .collect();
    all.sort();
    for p in all.iter().step_by(all.len() / 20).take(20) {
        std::fs::copy(p, tmp.path().join(p.file_name().unwrap())).unwrap();
    }
    let (code, r) = check(&[
        "--vmlinux".as_ref(),
        new.join("vmlinuz").as_os_str(),
        tmp.path().as_os_str(),
    ]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["exports"]["consistent"], true, "{:#}", r["exports"]);
    assert_eq!(r["summary"]["export_errors"], 0);
    assert_eq!(r["summary"]["modules"], 20);
    assert_eq!(r["summary"]["ok"], 0, "{:#}", r["summary"]);
    for m in r["modules"].as_array().unwrap() {
        // The kernel stops at module_layout; the person reads first that the module was
        // built for another release, then every mismatch with both CRCs.
        assert_eq!(m["verdict"], "crc_mismatch", "{m:#}");
        let problems = m["problems"].as_array().unwrap();
        let first = problems[0]["detail"].as_str().unwrap();
        assert!(
            first.contains("built for release 6.1.0-") && first.contains("this kernel is 6.12."),
            "{m:#}"
        );
        assert_eq!(problems[0]["fatal"], false);
        let crcs: Vec<&Value> = problems
            .iter()
            .filter(|p| p["kind"] == "crc_mismatch")
            .collect();
        assert!(crcs.iter().any(|p| p["symbol"] == "module_layout"), "{m:#}");
        assert!(
            crcs.iter()
                .all(|p| p["module_crc"].is_string() && p["module_crc"] != p["kernel_crc"]),
            "{m:#}"
        );
    }
    // No Rust type names in what a person reads.
    let o = modverify(&[
        "check",
        "--vmlinux",
        new.join("vmlinuz").to_str().unwrap(),
        tmp.path().to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(
        !t.contains("CrcMismatch") && !t.contains("BadVermagic"),
        "{t}"
    );
    assert!(t.contains("built for release 6.1.0-"), "{t}");

    // With the new kernel's own modules as a reference (--with): the stale modules' imports
    // from other modules resolve (against the new modules' CRCs) instead of reading "exported
    // by neither the kernel nor any module checked", and only the 20 are reported.
    let unknown = |r: &Value| {
        r["modules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["problems"].as_array().unwrap())
            .filter(|p| p["kind"] == "unknown_symbol")
            .count()
    };
    let (code, with) = check(&[
        "--vmlinux".as_ref(),
        new.join("vmlinuz").as_os_str(),
        "--with".as_ref(),
        new.join("modules").as_os_str(),
        tmp.path().as_os_str(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(with["summary"]["modules"], 20, "{:#}", with["summary"]);
    assert_eq!(with["exports"]["consistent"], true);
    assert!(unknown(&r) > 0);
    assert!(
        unknown(&with) < unknown(&r),
        "{} then {}",
        unknown(&r),
        unknown(&with)
    );
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A headers directory given as `--symvers` said "Is a directory": it stands for the
/// Module.symvers in it (/usr/src/linux-headers-VER has one), and a directory without one is
/// bad input that says what to give.
#[test]
fn a_headers_directory_is_taken_as_symvers() {
    let d = debian_kernel();
    let tmp = tempfile::tempdir().unwrap();
    let mods = tmp.path().join("mods");
    std::fs::create_dir(&mods).unwrap();
    let some: Vec<std::path::PathBuf> = walk(&d.join("modules"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".ko"))
        .take(5)
        .collect();
    for p in &some {
        std::fs::copy(p, mods.join(p.file_name().unwrap())).unwrap();
    }
    let vmlinux = d.join("vmlinux");
    let run = |symvers: &std::path::Path| {
        check(&[
            "--vmlinux".as_ref(),
            vmlinux.as_os_str(),
            "--symvers".as_ref(),
            symvers.as_os_str(),
            mods.as_os_str(),
        ])
    };
    let (code_dir, by_dir) = run(&d);
    let (code_file, by_file) = run(&d.join("Module.symvers"));
    assert_eq!(code_dir, code_file);
    assert_eq!(by_dir["modules"], by_file["modules"]);
    assert_eq!(by_dir["exports"], by_file["exports"]);
    let o = modverify(&[
        "check",
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        "--symvers",
        tmp.path().to_str().unwrap(),
        mods.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("a directory without Module.symvers"),
        "{}",
        text(&o)
    );
}

/// `check --release VER --root DIR` reads a kernel laid out as Debian installs it (here
/// trixie's files placed as `dpkg -x` leaves them: boot/vmlinuz-VER, boot/System.map-VER,
/// lib/modules/VER/kernel, usr/src/linux-headers-VER/Module.symvers) exactly as the same
/// check with every file named by hand: its own modules as the reference, the PATHs reported.
#[test]
fn an_installed_kernel_is_named_by_its_release() {
    let (k, ver, root) = trixie_installed();
    let r = root.path();
    // A few of the kernel's own modules, as if an out-of-tree build had made them.
    let tmp = tempfile::tempdir().unwrap();
    for p in walk(&k.join("modules/crypto")).into_iter().take(5) {
        std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
    }
    let (code_named, named) = check(&[
        "--release".as_ref(),
        ver.as_ref(),
        "--root".as_ref(),
        r.as_os_str(),
        tmp.path().as_os_str(),
    ]);
    let (code_by_hand, by_hand) = check(&[
        "--vmlinux".as_ref(),
        k.join("vmlinuz").as_os_str(),
        "--symvers".as_ref(),
        k.join("Module.symvers").as_os_str(),
        "--with".as_ref(),
        k.join("modules").as_os_str(),
        tmp.path().as_os_str(),
    ]);
    assert_eq!(code_named, 0, "{named:#}");
    assert_eq!(code_named, code_by_hand);
    assert_eq!(named["modules"], by_hand["modules"]);
    assert_eq!(named["exports"], by_hand["exports"]);
    assert_eq!(named["summary"]["modules"], 5);
    // A release that is not there: bad input, naming where it looked.
    let o = modverify(&[
        "check",
        "--release",
        "9.9.9-1-amd64",
        "--root",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("boot/vmlinuz-9.9.9-1-amd64"),
        "{}",
        text(&o)
    );
}

/// trixie's amd64 kernel laid out as Debian installs it (as `dpkg -x` of its packages
/// leaves it): boot/vmlinuz-VER, boot/System.map-VER, lib/modules/VER/kernel and
/// usr/src/linux-headers-VER/Module.symvers, linked to the cached files. Returns the cached
/// kernel, its release and the root.
fn trixie_installed() -> (std::path::PathBuf, String, tempfile::TempDir) {
    let k = debian_kernel_of("trixie", "amd64");
    let ver = k.file_name().unwrap().to_str().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in [
        "boot".to_string(),
        format!("lib/modules/{ver}"),
        format!("usr/src/linux-headers-{ver}"),
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    for (from, to) in [
        ("vmlinuz", format!("boot/vmlinuz-{ver}")),
        ("System.map", format!("boot/System.map-{ver}")),
        ("modules", format!("lib/modules/{ver}/kernel")),
        (
            "Module.symvers",
            format!("usr/src/linux-headers-{ver}/Module.symvers"),
        ),
    ] {
        std::os::unix::fs::symlink(k.join(from), r.join(to)).unwrap();
    }
    (k, ver, root)
}

/// The kernel postinst hook (contrib/kernel-postinst/zz-modverify), run as dpkg runs it
/// (`zz-modverify VER /boot/vmlinuz-VER`) on trixie's kernel: with bookworm's modules under
/// updates/ it names them as not loading and says where the full report is; with the
/// kernel's own modules there it says all will load. It never fails the installation.
#[test]
fn the_postinst_hook_names_the_modules_that_will_not_load() {
    let (k, ver, root) = trixie_installed();
    let r = root.path();
    let updates = r.join(format!("lib/modules/{ver}/updates/dkms"));
    std::fs::create_dir_all(&updates).unwrap();
    let old = debian_kernel_of("bookworm", "amd64");
    let hook = |reports: &std::path::Path| {
        let o = Command::new("sh")
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("contrib/kernel-postinst/zz-modverify"),
            )
            .arg(&ver)
            .arg(format!("/boot/vmlinuz-{ver}"))
            .env("MODVERIFY", env!("CARGO_BIN_EXE_modverify"))
            .env("MODVERIFY_ROOT", r)
            .env("MODVERIFY_REPORTS", reports)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let reports = tempfile::tempdir().unwrap();
    let stale: Vec<std::path::PathBuf> = walk(&old.join("modules/crypto"))
        .into_iter()
        .take(2)
        .collect();
    for p in &stale {
        std::fs::copy(p, updates.join(p.file_name().unwrap())).unwrap();
    }
    let out = hook(reports.path());
    assert!(
        out.contains(&format!(
            "some out-of-tree modules will NOT load into {ver}"
        )),
        "{out}"
    );
    for p in &stale {
        let name = modverify::depmod::name(p);
        assert!(
            out.lines()
                .any(|l| l.contains(&name) && l.contains("crc_mismatch")),
            "{name}: {out}"
        );
    }
    let report = reports.path().join(format!("postinst-{ver}.txt"));
    assert!(out.contains(&report.display().to_string()), "{out}");
    assert!(std::fs::read_to_string(&report)
        .unwrap()
        .contains("built for release 6.1.0-"));

    // Current modules there (copies of the kernel's own): all will load.
    for p in &stale {
        std::fs::remove_file(updates.join(p.file_name().unwrap())).unwrap();
    }
    for p in walk(&k.join("modules/crypto")).into_iter().take(2) {
        std::fs::copy(&p, updates.join(p.file_name().unwrap())).unwrap();
    }
    let out = hook(reports.path());
    assert!(
        out.contains(&format!("every out-of-tree module will load into {ver}")),
        "{out}"
    );
}
