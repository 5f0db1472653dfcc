//! ia64 for real: the cross compiler modverify builds from Debian's gcc-12-source (Debian 12
//! ships no gcc-ia64-linux-gnu), the default tree (Debian's linux-source-6.1) built with it
//! and checked statically, and Linux 5.19's modpost bug on ia64: unaffected alone, the index
//! shift once two assembly exports lose their CRCs. ci/test builds the compiler and these
//! kernels in the background; a test that needs one waits on its lock.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn results(file: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

fn tree_6_1() -> String {
    modverify::kernel_build::cache_dir()
        .join("src/linux-source-6.1")
        .display()
        .to_string()
}

/// `modverify setup --arch ia64` builds the compiler once (or finds it built), and it is a
/// real IA-64 compiler: GCC 12 from Debian's source, emitting IA-64 objects through Debian's
/// ia64 binutils. A second setup is a no-op that says where the compiler is.
#[test]
fn the_compiler_is_built_once_from_debians_gcc_source() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..2 {
        let o = modverify(&["setup", "--arch", "ia64"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("the ia64 cross compiler is built: "),
            "{}",
            text(&o)
        );
    }
    let o = modverify(&["setup", "--arch", "ia64"]);
    let bin = text(&o)
        .lines()
        .find_map(|l| l.split("the ia64 cross compiler is built: ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let gcc = Path::new(&bin).join("ia64-linux-gnu-gcc");
    let out = Command::new(&gcc).arg("-dumpmachine").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ia64-linux-gnu"
    );
    let out = Command::new(&gcc).arg("-dumpversion").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("12."));
    // It compiles C into an IA-64 object.
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("t.c");
    std::fs::write(&c, "long div(long a, long b) { return a / b; }\n").unwrap();
    let obj = tmp.path().join("t.o");
    let out = Command::new(&gcc)
        .args(["-O2", "-c", "-o"])
        .arg(&obj)
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&obj).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), 50, "EM_IA_64");
    // `arches` says it can build.
    let o = modverify(&["arches", "--format", "json"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ia64 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "ia64")
        .unwrap();
    assert_eq!(ia64["build"], "ok", "{ia64:#}");
    assert_eq!(ia64["boot"], "unsupported", "{ia64:#}");
}

/// `modverify run --arch ia64`: the default tree built with that compiler, every module
/// checked clean against a consistent export table; the boot that cannot be is said in one
/// reason and is no failure.
#[test]
fn the_default_tree_builds_for_ia64_and_checks_clean() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = modverify(&["run", "--arch", "ia64", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = results(&out.join("results.json"));
    let a = &r["arches"]["ia64"];
    assert_eq!(a["status"], "ok", "{a:#}");
    let reasons: Vec<&str> = a["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("QEMU has no IA-64 system emulator"))
            .count(),
        1,
        "{reasons:?}"
    );
    let check = &a["check"];
    let modules = check["summary"]["modules"].as_u64().unwrap();
    assert!(modules >= 20, "{:#}", check["summary"]);
    assert_eq!(check["summary"]["ok"], modules, "{:#}", check["summary"]);
    assert_eq!(
        check["exports"]["consistent"], true,
        "{:#}",
        check["exports"]
    );
    let exports = check["exports"]["count"].as_u64().unwrap_or(0);
    eprintln!(
        "ia64 default build: {modules} modules, {exports} exports, build {} s",
        a["seconds"]["build_s"]
    );
    // The table says so too.
    let o = modverify(&[
        "report",
        "--format",
        "table",
        out.join("results.json").to_str().unwrap(),
    ]);
    assert!(text(&o).contains("ia64"), "{}", text(&o));
}

/// The seed report said ia64 was unaffected by 5.19's modpost, and it is: every ia64
/// export has a CRC, so no slot is skipped.
#[test]
fn linux_5_19_modpost_alone_leaves_ia64_unaffected() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = patch("modpost-5.19-skip-crc-slot.patch");
    let (dir, _) = build(&["--arch", "ia64", "--patch", &p]);
    let (code, r, o) = json(&[
        "check",
        "--format",
        "json",
        "--build",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{}", text(&o));
    assert_eq!(r["exports"]["consistent"], true);
    let n = r["summary"]["modules"].as_u64().unwrap();
    assert_eq!(r["summary"]["ok"], n);
}

/// With two ia64 assembly exports made CRC-less as well (tests/regressions/
/// ia64-crc-less-asm-exports.patch), 5.19's modpost skips `__divdi3`'s slot: the shift is
/// found statically at that slot, every module fails on `module_layout`, and
/// `bisect-step --static-only` says bad with the patches and good without.
#[test]
fn linux_5_19_crc_index_shift_ia64() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let patches = [
        patch("modpost-5.19-skip-crc-slot.patch"),
        patch("ia64-crc-less-asm-exports.patch"),
    ];
    let mut args = vec!["--arch", "ia64"];
    for p in &patches {
        args.extend(["--patch", p.as_str()]);
    }
    let (dir, m) = build(&args);
    let o = modverify(&["check", "--build", dir.to_str().unwrap()]);
    eprintln!("{}", text(&o));
    let r = assert_crc_index_shift(&dir, &m, "__divdi3", 1);
    // Both helpers lost their slots; every one of the (at least 20) modules fails.
    assert!(
        r["exports"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "no_crc_slot" && p["symbol"] == "__moddi3"),
        "{:#}",
        r["exports"]["problems"]
    );
    assert!(r["summary"]["modules"].as_u64().unwrap() >= 20);
    // bisect-step, statically: bad with the patches, good without.
    let tree = tree_6_1();
    let step = |patches: &[String]| {
        let mut args = vec![
            "bisect-step",
            "--arch",
            "ia64",
            "--static-only",
            "--source",
            &tree,
        ];
        for p in patches {
            args.extend(["--patch", p.as_str()]);
        }
        let o = modverify(&args);
        (o.status.code(), text(&o))
    };
    let (code, said) = step(&patches);
    assert_eq!(code, Some(1), "{said}");
    let (code, said) = step(&[]);
    assert_eq!(code, Some(0), "{said}");
}

/// Linux removed arch/ia64 in 6.7: a tree without it is refused with that reason before
/// anything is built (no compiler, no configuration), as bad input.
#[test]
fn trees_without_arch_ia64_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("linux-6.7");
    std::fs::create_dir_all(tree.join("arch/x86")).unwrap();
    std::fs::write(tree.join("Makefile"), "VERSION = 6\nPATCHLEVEL = 7\n").unwrap();
    std::fs::write(tree.join("Kconfig"), "").unwrap();
    let mut trees = vec![tree.display().to_string()];
    // The real thing, where the cache has it (ci/test --extended unpacks linux-source-7.2).
    let real = modverify::kernel_build::cache_dir().join("src/linux-source-7.2");
    if real.join("Makefile").is_file() {
        trees.push(real.display().to_string());
    }
    for t in &trees {
        let out = tmp.path().join("out");
        let o = modverify(&[
            "build",
            "--arch",
            "ia64",
            "--source",
            t,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{t}: {}", text(&o));
        assert!(
            text(&o).contains("has no arch/ia64") && text(&o).contains("Linux removed ia64 in 6.7"),
            "{t}: {}",
            text(&o)
        );
    }
}

/// Bisecting ia64 with a boot asks for `--static-only` at once (128: git stops), before a
/// kernel is built for nothing.
#[test]
fn bisect_step_on_ia64_without_static_only_aborts_before_building() {
    let tmp = tempfile::tempdir().unwrap();
    let o = modverify(&[
        "bisect-step",
        "--arch",
        "ia64",
        "--source",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(128), "{}", text(&o));
    assert!(text(&o).contains("use --static-only"), "{}", text(&o));
}
