//! Beyond the seed arches: `modverify run` builds arm64 (PREL32 export tables) from the
//! default tree, boots it in QEMU, and every module loads and unloads with the running export
//! table equal to the ELF one. x86_64 and s390x were built here too, cold on a fresh machine
//! only for this test (850 s and 510 s of a 60-minute run): they are built and booted every
//! night by the matrix (ci/nightly.yml, every verified arch), and x86_64's QEMU boot is
//! tested here on Debian's own amd64 kernel (tests/boot_real.rs, tests/scale_real.rs).
//! arm64 is a cold kernel no other test of CI's run shares (about 5 of a fresh machine's
//! minutes on two cores, with its 5.19 regression build), so this test and
//! `linux_5_19_crc_index_shift_arm64` run with `ci/test --extended` and every night
//! (ci/nightly.yml); CI's run keeps PREL32 covered by Debian's own trixie arm64 kernel
//! (tests/debian_amd64.rs) and the synthetic PREL32 tables (tests/static_generations.rs).
//! The packages come from `modverify setup` (ci/test); the build directories are the same
//! ones `modverify build` and the other tests use (~/.cache/modverify/builds).
mod common;
use common::*;
use serde_json::Value;

#[test]
#[ignore = "a cold kernel of its own: run by ci/test --extended and the nightly matrix"]
fn arm64_builds_boots_and_loads_every_module() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = modverify(&["run", "--arch", "arm64", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let arch = "arm64";
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
