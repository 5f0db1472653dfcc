//! The static checker on real data nobody here wrote: Debian's amd64 6.1 kernel and its 4000+
//! modules (fetched once by ci/fetch-debian-kernel into a cache outside the clone).
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
    let d = debian_kernel();
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
        !expect_fail.is_empty() && expect_fail.len() < 4000,
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
            // Without Module.symvers the modules' __versions are the oracle: the first slot
            // they can vouch for is at or after k.
            assert!(shift["slot"].as_u64().unwrap() >= k as u64, "{shift:#}");
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
