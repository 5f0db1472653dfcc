//! ia64, whose kernels cannot be built here: real IA-64 ELF objects assembled and linked by
//! Debian's binutils-ia64-linux-gnu (function descriptors in `__ksymtab`, FPTR64/DIR64
//! relocations in modules), checked by the real binary.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(name: &str) -> String {
    let t = format!("ia64-linux-gnu-{name}");
    assert!(
        Command::new(&t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "{t} is missing: apt-get install binutils-ia64-linux-gnu (ci/test installs it)"
    );
    t
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ia64")
}

fn vmlinux(dir: &Path, nocrc: Option<&str>, strip: bool) -> PathBuf {
    let obj = dir.join("vmlinux.o");
    let mut as_ = Command::new(tool("as"));
    if let Some(s) = nocrc {
        as_.arg(format!("--defsym=nocrc_{s}=1"));
    }
    run(as_.arg("-o").arg(&obj).arg(src().join("vmlinux.S")));
    let out = dir.join("vmlinux");
    run(Command::new(tool("ld"))
        .arg("-T")
        .arg(src().join("vmlinux.lds"))
        .arg("-o")
        .arg(&out)
        .arg(&obj));
    if strip {
        run(Command::new(tool("strip")).arg(&out));
    }
    out
}

fn module(dir: &Path, name: &str, license: &str, kfree_crc: &str, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(src().join("module.S.in"))
        .unwrap()
        .replace("@NAME@", name)
        .replace("@LICENSE@", license)
        .replace("@KFREE_CRC@", kfree_crc)
        .replace("@EXTRA@", extra);
    let s = dir.join(format!("{name}.S"));
    std::fs::write(&s, text).unwrap();
    let o = dir.join(format!("{name}.o"));
    run(Command::new(tool("as")).arg("-o").arg(&o).arg(&s));
    let ko = dir.join("mods").join(format!("{name}.ko"));
    std::fs::create_dir_all(ko.parent().unwrap()).unwrap();
    run(Command::new(tool("ld"))
        .arg("-r")
        .arg("-T")
        .arg(src().join("module.lds"))
        .arg("-o")
        .arg(&ko)
        .arg(&o));
    ko
}

fn check(vmlinux: &Path, mods: &Path, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(["check", "--format", "json"])
        .args(extra)
        .arg("--vmlinux")
        .arg(vmlinux)
        .arg(mods)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

fn verdict<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

fn modules(dir: &Path) {
    module(dir, "good", "GPL", "0x9c0b2f11", "kfree");
    module(dir, "flipped", "GPL", "0x9c0b2f10", "kfree");
    module(dir, "proprietary", "Proprietary", "0x9c0b2f11", "kfree");
    module(dir, "unversioned", "GPL", "0x9c0b2f11", "memset");
    module(dir, "nsuser", "GPL", "0x9c0b2f11", "ns_only_fn");
    module(dir, "unknown", "GPL", "0x9c0b2f11", "clear_user");
}

#[test]
fn ia64_function_descriptor_exports_and_modules() {
    let dir = tempfile::tempdir().unwrap();
    modules(dir.path());
    let v = vmlinux(dir.path(), None, false);
    let (code, r) = check(&v, &dir.path().join("mods"), &[]);
    assert_eq!(r["arch"], "ia64", "inferred from e_machine 50");
    assert_eq!(r["exports"]["count"], 6);
    assert_eq!(
        r["exports"]["problems"].as_array().unwrap().len(),
        0,
        "{:#}",
        r["exports"]
    );
    assert_eq!(
        verdict(&r, "good")["verdict"],
        "ok",
        "{:#}",
        verdict(&r, "good")
    );
    let f = verdict(&r, "flipped");
    assert_eq!(f["verdict"], "crc_mismatch");
    assert_eq!(f["problems"][0]["symbol"], "kfree");
    assert_eq!(f["problems"][0]["module_crc"], "0x9c0b2f10");
    assert_eq!(f["problems"][0]["kernel_crc"], "0x9c0b2f11");
    assert_eq!(verdict(&r, "proprietary")["verdict"], "gpl_only");
    assert_eq!(verdict(&r, "unversioned")["verdict"], "missing_version");
    assert_eq!(verdict(&r, "unknown")["verdict"], "unknown_symbol");
    assert_eq!(
        verdict(&r, "unknown")["problems"][0]["kernel_messages"][0],
        "unknown: Unknown symbol clear_user (err -2)"
    );
    assert_eq!(code, 1);

    // Upstream policy accepts a missing version entry; the namespace check comes next.
    let (_, up) = check(&v, &dir.path().join("mods"), &["--policy", "upstream"]);
    assert_eq!(verdict(&up, "unversioned")["verdict"], "ok");
    assert_eq!(verdict(&up, "nsuser")["verdict"], "namespace");
}

/// Linux 5.19 on ia64: the CRC-less `ia64_pal_call_static` sorts first and gets no slot, so
/// `module_layout` reads past the end of `__kcrctab` and every module fails.
#[test]
fn ia64_missing_crc_slot_fails_every_module() {
    for strip in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        modules(dir.path());
        let v = vmlinux(dir.path(), Some("ia64_pal_call_static"), strip);
        let (code, r) = check(&v, &dir.path().join("mods"), &[]);
        assert_eq!(code, 1);
        let problems = r["exports"]["problems"].as_array().unwrap();
        let count = problems
            .iter()
            .find(|p| p["kind"] == "slot_count")
            .expect("slot count");
        assert!(
            count["detail"]
                .as_str()
                .unwrap()
                .contains("3 CRC slots for 4"),
            "{count:#}"
        );
        if !strip {
            let lost = problems
                .iter()
                .find(|p| p["kind"] == "no_crc_slot")
                .expect("no_crc_slot with a symtab");
            assert_eq!(lost["symbol"], "ia64_pal_call_static");
            let shift = problems
                .iter()
                .find(|p| p["kind"] == "index_shift")
                .expect("index_shift");
            assert_eq!(shift["slot"], 0);
            assert_eq!(shift["delta"], 1);
        }
        for m in r["modules"].as_array().unwrap() {
            if m["name"] == "unknown"
                || m["name"] == "proprietary"
                || m["name"] == "good"
                || m["name"] == "flipped"
                || m["name"] == "unversioned"
                || m["name"] == "nsuser"
            {
                assert_eq!(m["verdict"], "crc_mismatch", "strip={strip}: {m:#}");
                assert_eq!(m["problems"][0]["symbol"], "module_layout");
                assert_eq!(
                    m["problems"][0]["kernel_crc"], "0x3bbd9d76",
                    "read past the table: the first GPL slot"
                );
            }
        }
    }
}
