//! sh4's GCC plugin against the real compiler bug it is there for: Debian 12's sh4 cross gcc
//! deletes the test of `if (g == 0)` on a global (its `sh_treg_combine` pass), and with the
//! plugin that arches/sh4.yaml carries, built the way a build builds it, the test is back.
//! The packages come from `modverify setup` (ci/test).
use modverify::arch::ArchRegistry;
use std::process::Command;

/// The assembly sh4-linux-gnu-gcc makes of a function that branches on a global being zero.
fn branch_on_global(extra: &[String]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("t.c");
    std::fs::write(
        &c,
        "extern int g; extern void f(int);\nvoid t(void) { if (g == 0) f(1); else f(2); }\n",
    )
    .unwrap();
    let o = Command::new("sh4-linux-gnu-gcc")
        .args(["-Os", "-S", "-o", "-"])
        .arg(&c)
        .args(extra)
        .output()
        .expect("sh4-linux-gnu-gcc (modverify setup installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn tests_t_bit(asm: &str) -> bool {
    asm.lines()
        .map(str::trim_start)
        .any(|l| l.starts_with("tst") || l.starts_with("cmp/"))
}

#[test]
fn sh4_plugin_brings_back_the_test_gcc_12_deletes() {
    let registry = ArchRegistry::load(None).unwrap();
    let sh4 = registry.get("sh4").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let flag = modverify::compiler_plugin::flag(sh4, cache.path())
        .unwrap()
        .expect("arches/sh4.yaml has a gcc_plugin");
    let without = branch_on_global(&[]);
    let with = branch_on_global(std::slice::from_ref(&flag));
    // If a later compiler stops deleting the test, the plugin is no longer needed: say so.
    assert!(
        !tests_t_bit(&without),
        "sh4-linux-gnu-gcc now keeps the test by itself: arches/sh4.yaml's gcc_plugin may go\n{without}"
    );
    assert!(tests_t_bit(&with), "the plugin did not help:\n{with}");
    assert!(with.contains("@r"), "the global is loaded:\n{with}");
    // Built once: a second ask reuses the cached plugin.
    let again = modverify::compiler_plugin::flag(sh4, cache.path()).unwrap();
    assert_eq!(again.as_deref(), Some(flag.as_str()));
}
