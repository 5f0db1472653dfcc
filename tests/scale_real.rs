//! Distribution scale on real kernels nobody here wrote: Debian trixie's riscv64 kernel with
//! all of its ~3100 modules booted under QEMU (compressed modules the kernel decompresses,
//! memory sized from the payload, batches side by side), its shards merged back into the same
//! results, and an infrastructure failure reported as one error.
mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each module's verdict as a merged run reports it, keyed by its place in the plan.
fn verdicts(report: &Value) -> BTreeMap<String, String> {
    report["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                format!("{:05} {}", m["index"], m["name"].as_str().unwrap()),
                format!(
                    "{} {} {} {} {}",
                    m["verdict"], m["errno_name"], m["symbol"], m["predicted"], m["agrees"]
                ),
            )
        })
        .collect()
}

fn boot(d: &Path, out: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut args: Vec<String> = vec![
        "boot".into(),
        "--arch".into(),
        "riscv64".into(),
        "--kernel".into(),
        d.join("vmlinuz").display().to_string(),
        "--modules".into(),
        d.join("modules").display().to_string(),
        "--symvers".into(),
        d.join("Module.symvers").display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--format".into(),
        "json".into(),
        // test_bpf runs its whole suite in init: 10-20 s under TCG, more on a loaded
        // machine. A hang is still caught, later; a slow load is not a hang.
        "--module-timeout".into(),
        "90s".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = modverify(&refs);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}):\n{}", text(&o)));
    (o.status.code().unwrap(), v, text(&o))
}

/// Linkage verdicts: the ones the static check predicts from the ELF files alone.
const LINKAGE: [&str; 5] = [
    "crc_mismatch",
    "missing_version",
    "unknown_symbol",
    "namespace",
    "gpl_only",
];

/// The modules went into the guest compressed: the kernel decompressed them itself.
fn assert_kernel_decompresses(r: &Value) {
    let payload = r["payload"].as_str().unwrap();
    assert!(payload.contains("decompressed by the kernel"), "{payload}");
}

/// Modules whose runtime verdict disagrees with the prediction, or that the loader refused.
fn linkage_disagreements(r: &Value) -> Vec<String> {
    r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["agrees"] == false || LINKAGE.contains(&m["verdict"].as_str().unwrap()))
        .map(|m| {
            format!(
                "{} {} (predicted {})",
                m["name"], m["verdict"], m["predicted"]
            )
        })
        .collect()
}

/// The whole set, booted as two shards (two CI jobs) of two batches each, and merged: the
/// merged run is every module of the set, each with its verdict, and the kernel agrees with
/// the static check on every one. (It was booted whole as well, and the shards compared with
/// that run: the same set booted twice, 4 of this file's 9 minutes. Each module's verdict is
/// compared with its static prediction instead; `merge` keeps them as the shards found them.)
#[test]
fn debian_riscv64_loads_every_module_as_two_shards_merged() {
    let d = debian_kernel_of("trixie", "riscv64");
    let tmp = tempfile::tempdir().unwrap();
    let mut parts: Vec<PathBuf> = Vec::new();
    let mut in_run = 0;
    let mut booted = 0;
    for k in 1..=2 {
        let o = tmp.path().join(format!("shard-{k}"));
        let (_, s, out) = boot(&d, &o, &["--shard", &format!("{k}/2")]);
        assert_eq!(s["shard"]["k"], k, "{out}");
        assert_eq!(s["done"], true, "{out}");
        assert!(s["boot_failure"].is_null(), "{}", s["boot_failure"]);
        in_run = s["modules_in_run"].as_u64().unwrap();
        let n = s["summary"]["modules"].as_u64().unwrap();
        assert!(n < in_run, "{n} of {in_run}");
        booted += n;
        // Kept compressed: the kernel has MODULE_DECOMPRESS for its xz modules.
        assert_kernel_decompresses(&s);
        assert!(s["batches"].as_array().unwrap().len() > 1, "{out}");
        for b in s["batches"].as_array().unwrap() {
            assert_eq!(b["done"], true, "{b}");
        }
        parts.push(o.join("results.json"));
    }
    assert!(in_run > 2500, "{in_run} modules");
    assert_eq!(booted, in_run, "the two shards are the whole set");
    let mut args = vec!["merge".to_string()];
    args.extend(parts.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = modverify(&refs);
    assert!(o.status.code().unwrap() <= 1, "{}", text(&o));
    let merged: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The HTML report at distribution scale, as the browser has it: the counts on top, the
    // modules that need a look first, each with the kernel's message, one row per module.
    let merged_path = tmp.path().join("merged.json");
    std::fs::write(&merged_path, &o.stdout).unwrap();
    let html = tmp.path().join("report.html");
    let r = modverify(&[
        "report",
        merged_path.to_str().unwrap(),
        "--format",
        "html",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    let keep = std::env::var_os("MODVERIFY_KEEP_SCREENSHOT").map(PathBuf::from);
    let dom = chromium(&html, keep.as_deref());
    let names = assert_html_report(&dom, &[("riscv64", in_run)]);
    assert_eq!(names.len() as u64, in_run, "one row per module");
    let r = &merged["arches"]["riscv64"]["boot"];
    assert!(
        r["shard"].is_null(),
        "both shards are there: {}",
        r["shard"]
    );
    assert_eq!(r["done"], true);
    assert_eq!(
        r["summary"]["modules"].as_u64(),
        Some(in_run),
        "{}",
        r["summary"]
    );
    assert_eq!(r["summary"]["not_run"], 0, "{}", r["summary"]);
    let v = verdicts(r);
    assert_eq!(v.len() as u64, in_run, "one verdict per module");
    // No module the static check calls linkable was refused by the loader, and none the
    // loader refused was called linkable.
    let wrong: Vec<String> = r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["agrees"] == false
                || LINKAGE.contains(&m["verdict"].as_str().unwrap())
                || m["verdict"] == "crashed"
                || m["verdict"] == "hung"
        })
        .map(|m| {
            format!(
                "{} {} (predicted {})",
                m["name"], m["verdict"], m["predicted"]
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    let t = &r["export_table"];
    assert_eq!(t["equal"], true, "{t}");
    assert!(t["runtime_exports"].as_u64().unwrap() > 9000, "{t}");
    assert!(t["compared"].as_str().unwrap().contains("CRC"), "{t}");
}

/// Debian sid's 7.x riscv64 kernel as sid ships it (linux-binary + linux-modules, no
/// MODVERSIONS, one __ksymtab with __kflagstab, no .config in the packages): the guest finds
/// out by itself that the kernel decompresses modules; an eighth of the set (the boot that
/// reads the export table), compared with Module.symvers including the GPL-only flags.
#[test]
fn debian_sid_riscv64_without_modversions_an_eighth() {
    let d = debian_kernel_of("sid", "riscv64");
    let tmp = tempfile::tempdir().unwrap();
    let (_, r, out) = boot(&d, &tmp.path().join("out"), &["--shard", "1/8"]);
    assert_eq!(r["done"], true, "{out}");
    assert_eq!(r["summary"]["not_run"], 0);
    assert_kernel_decompresses(&r);
    let wrong = linkage_disagreements(&r);
    assert!(wrong.is_empty(), "{wrong:#?}");
    let t = &r["export_table"];
    assert_eq!(t["equal"], true, "{t}");
    let compared = t["compared"].as_str().unwrap();
    assert!(
        compared.contains("__kflagstab") && compared.contains("no CRCs"),
        "{compared}"
    );
}

/// Debian's amd64 kernel (bookworm, 4000+ modules) under TCG: a deterministic eighth of it
/// (the first of eight boots, the one that reads the export table) in CI; the whole set's
/// figures are in the README.
#[test]
fn debian_amd64_an_eighth_of_its_modules_under_tcg() {
    let d = debian_kernel();
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args([
            "boot", "--arch", "x86_64", "--format", "json", "--shard", "1/8", "--kernel",
        ])
        .arg(d.join("vmlinuz"))
        .arg("--vmlinux")
        .arg(d.join("vmlinux"))
        .arg("--modules")
        .arg(d.join("modules"))
        .arg("--symvers")
        .arg(d.join("Module.symvers"))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    let n = r["summary"]["modules"].as_u64().unwrap();
    assert!((300..1000).contains(&n), "{n}: {}", r["notes"]);
    assert!(r["modules_in_run"].as_u64().unwrap() > 4000);
    assert_eq!(r["done"], true, "{}", r["boot_failure"]);
    assert_eq!(r["summary"]["not_run"], 0);
    let wrong = linkage_disagreements(&r);
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(r["export_table"]["equal"], true, "{}", r["export_table"]);
    // The boot read the kernel's table as `check` reads it: one reader.
    let c = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(["check", "--format", "json", "--vmlinux"])
        .arg(d.join("vmlinux"))
        .arg("--symvers")
        .arg(d.join("Module.symvers"))
        .arg(d.join("modules"))
        .output()
        .unwrap();
    let c: Value = serde_json::from_slice(&c.stdout).unwrap_or_else(|_| panic!("{}", text(&c)));
    assert_eq!(r["static_table"], c["exports"]);
    assert_eq!(r["export_table"]["static_exports"], c["exports"]["count"]);
}

/// A kernel image QEMU cannot take as it is: an EFI zboot PE (what arm64, riscv64 and
/// loong64 distributions ship) is unwrapped to the raw Image inside, and said so.
#[test]
fn an_efi_zboot_kernel_is_unwrapped_for_qemu() {
    let d = debian_kernel_of("trixie", "riscv64");
    let tmp = tempfile::tempdir().unwrap();
    // Wrap Debian's raw Image the way drivers/firmware/efi/libstub/zboot-header.S does:
    // "MZ", "zimg", the payload's offset and size, then the gzip payload.
    let image = std::fs::read(d.join("vmlinuz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &image).unwrap();
    let payload = gz.finish().unwrap();
    let mut zboot = b"MZ\0\0zimg".to_vec();
    zboot.extend((64u32).to_le_bytes());
    zboot.extend((payload.len() as u32).to_le_bytes());
    zboot.resize(64, 0);
    zboot.extend(&payload);
    let kernel = tmp.path().join("vmlinuz.efi");
    std::fs::write(&kernel, &zboot).unwrap();
    let mods = tmp.path().join("modules");
    std::fs::create_dir(&mods).unwrap();
    for m in ["crc7", "crc8", "crc16"] {
        let src = find_module(&d.join("modules"), m);
        std::fs::copy(&src, mods.join(src.file_name().unwrap())).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(["boot", "--arch", "riscv64", "--format", "json", "--kernel"])
        .arg(&kernel)
        .arg("--modules")
        .arg(&mods)
        .arg("--kernel-config")
        .arg(d.join("config"))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r["summary"]["loaded"], 3, "{}", r["summary"]);
    let notes = r["notes"].to_string();
    assert!(
        notes.contains("EFI zboot") && notes.contains("Image.unwrapped"),
        "{notes}"
    );
    assert!(r["qemu_command"]
        .as_str()
        .unwrap()
        .contains("Image.unwrapped"));
}

fn find_module(dir: &Path, name: &str) -> PathBuf {
    modverify::input::discover(&[dir.to_path_buf()])
        .unwrap()
        .into_iter()
        .find(|p| modverify::input::stem(p) == name)
        .unwrap_or_else(|| panic!("{name} not in {}", dir.display()))
}

/// QEMU that cannot start is one infrastructure failure, exit 4: not a verdict on every
/// module, and no module listed as disagreeing with its prediction.
#[test]
fn an_emulator_that_cannot_start_is_one_error_and_exit_4() {
    let d = debian_kernel_of("trixie", "riscv64");
    let tmp = tempfile::tempdir().unwrap();
    let arches = riscv64_without_qemu(tmp.path());
    let mods = tmp.path().join("modules");
    std::fs::create_dir(&mods).unwrap();
    for m in ["crc7", "crc8", "crc16", "crc_itu_t"] {
        let src = find_module(&d.join("modules"), m);
        std::fs::copy(&src, mods.join(src.file_name().unwrap())).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(["boot", "--arch", "riscv64", "--kernel"])
        .arg(d.join("vmlinuz"))
        .arg("--modules")
        .arg(&mods)
        .arg("--symvers")
        .arg(d.join("Module.symvers"))
        .arg("--arch-dir")
        .arg(&arches)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(4), "{all}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(err.contains("no module could be tested"), "{err}");
    assert!(!all.contains("DISAGREE") && !all.contains("crc7"), "{all}");
}
