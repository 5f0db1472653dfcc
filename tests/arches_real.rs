//! Beyond the seed arches: `modverify run` builds x86_64, arm64 (both with PREL32 export
//! tables) and s390x (big-endian 64-bit) from the default tree, boots each in QEMU, and
//! every module loads and unloads with the running export table equal to the ELF one.
//! The packages come from `modverify setup` (ci/test); the build directories are the same
//! ones `modverify build` and the other tests use (~/.cache/modverify/builds).
mod common;
use common::*;
use serde_json::Value;

#[test]
fn x86_64_arm64_and_s390x_build_boot_and_load_every_module() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = modverify(&[
        "run",
        "--arch",
        "x86_64,arm64,s390x",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for arch in ["x86_64", "arm64", "s390x"] {
        let a = &r["arches"][arch];
        assert_eq!(a["status"], "ok", "{arch}: {a:#}");
        let s = &a["boot"]["summary"];
        let n = s["modules"].as_u64().unwrap();
        assert!(n >= 30, "{arch}: only {n} modules");
        assert_eq!(s["loaded"], n, "{arch}: {s:#}");
        assert_eq!(s["unload_failures"], 0, "{arch}: {s:#}");
        assert_eq!(s["disagreements"], 0, "{arch}: {s:#}");
        let t = &a["boot"]["export_table"];
        assert_eq!(t["equal"], true, "{arch}: {t:#}");
        assert!(
            t["runtime_exports"].as_u64().unwrap() > 1000,
            "{arch}: {t:#}"
        );
    }
}
