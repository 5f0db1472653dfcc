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

/// Whether an instruction that sets the T bit (`tst`, `cmp/…`) is in `asm`, gcc's output
/// or objdump's.
fn tests_t_bit(asm: &str) -> bool {
    asm.split_whitespace()
        .any(|w| w == "tst" || w.starts_with("cmp/"))
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

/// The agent sh4 boots: built with the plugin and linked against trixie's C library
/// (arches/sh4.yaml `guest_sysroot`), whose `__libc_start_main` walks envp with a test at
/// the loop's end; Debian 12's own static libc for sh4, built by the broken compiler, has
/// none there and spins before `main`.
#[test]
fn sh4_agent_links_a_c_library_that_reaches_main() {
    let registry = ArchRegistry::load(None).unwrap();
    let sh4 = registry.get("sh4").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let agent = modverify::image::agent::agent_binary(sh4, cache.path()).unwrap();
    let start = |binary: &std::path::Path| {
        let o = Command::new("sh4-linux-gnu-objdump")
            .arg("-d")
            .arg(binary)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let from = text
            .find("<__libc_start_main>:")
            .expect("__libc_start_main");
        // Up to its first conditional branch, the end of the envp walk.
        let mut upto = Vec::new();
        for l in text[from..].lines().take(60) {
            upto.push(l);
            let op = l.split('\t').nth(2).unwrap_or("");
            if op.starts_with("bf") || op.starts_with("bt") {
                break;
            }
        }
        upto.join("\n")
    };
    let ours = start(&agent);
    assert!(tests_t_bit(&ours), "{ours}");
    // The toolchain's own libc.a, for contrast: the walk's test is missing.
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("m.c");
    std::fs::write(&c, "int main(void) { return 0; }\n").unwrap();
    let plain = dir.path().join("m");
    let o = Command::new("sh4-linux-gnu-gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&plain)
        .arg(&c)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs = start(&plain);
    assert!(
        !tests_t_bit(&theirs),
        "Debian's libc6-dev-sh4-cross now has the test: arches/sh4.yaml's guest_sysroot may go\n{theirs}"
    );
}
