//! The cache of compilers modverify builds (`build.cross_gcc`), on a stand-in GCC source
//! whose configure writes a Makefile with GCC's four targets: one build for two processes
//! asking at once, a no-op the second time, a failed step named with its log kept and
//! nothing half-built left to use. (The real compiler, from Debian's gcc-12-source, is
//! tests/ia64_real.rs's.)
mod common;
use common::text;
use std::path::Path;
use std::process::{Child, Command, Stdio};

trait Later {
    fn output_later(&mut self) -> Child;
}

impl Later for Command {
    /// Started now, its output collected by `wait_with_output`.
    fn output_later(&mut self) -> Child {
        self.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// A descriptor `fake` whose compiler comes from `src_dir` (its `gcc-*.tar.gz`); every
/// package it names is one the test machine has.
fn descriptor(dir: &Path, src_dir: &Path) {
    std::fs::write(
        dir.join("fake.yaml"),
        format!(
            r#"name: fake
kernel_arch: ia64
cross_compile: ia64-linux-gnu-
toolchain_packages: [binutils-ia64-linux-gnu]
elf: {{machine: 50, class: 64, endian: little, ksymtab: absolute}}
build:
  targets: [vmlinux, modules]
  image: vmlinux
  cross_gcc:
    reason: a test
    source_package: make
    source_dir: {}
    binutils_package: binutils-ia64-linux-gnu
    packages: [make]
    target: ia64-linux-gnu
    configure: [--enable-languages=c]
    cpu_minutes: 1
"#,
            src_dir.display()
        ),
    )
    .unwrap();
}

/// A GCC source tarball whose configure succeeds (or fails, printing `why`) and whose
/// install puts an `ia64-linux-gnu-gcc` script under `$(DESTDIR)$(prefix)/bin`.
fn source(dir: &Path, configure_fails: Option<&str>) {
    let tree = dir.join("tree/gcc-0.0.0");
    std::fs::create_dir_all(&tree).unwrap();
    let configure = match configure_fails {
        Some(why) => format!("#!/bin/sh\necho 'configure: error: {why}' >&2\nexit 1\n"),
        None => r##"#!/bin/sh
prefix=
for a; do case "$a" in --prefix=*) prefix=${a#--prefix=};; esac; done
sleep 2
printf 'all-gcc:\n\techo building\nall-target-libgcc:\n\ttrue\ninstall-gcc:\n\tmkdir -p $(DESTDIR)%s/bin && printf "#!/bin/sh\\necho fake\\n" > $(DESTDIR)%s/bin/ia64-linux-gnu-gcc && chmod +x $(DESTDIR)%s/bin/ia64-linux-gnu-gcc\ninstall-target-libgcc:\n\ttrue\n' "$prefix" "$prefix" "$prefix" > Makefile
"##
        .to_string(),
    };
    let script = tree.join("configure");
    std::fs::write(&script, configure).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(dir.join("gcc-0.0.0.tar.gz"))
        .arg("-C")
        .arg(dir.join("tree"))
        .arg("gcc-0.0.0")
        .status()
        .unwrap();
    assert!(ok.success());
}

fn setup(arches: &Path, cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modverify"));
    c.args([
        "--arch-dir",
        arches.to_str().unwrap(),
        "setup",
        "--arch",
        "fake",
    ])
    .env("MODVERIFY_CACHE", cache);
    c
}

/// Under `dir`: the `fake` descriptor (in `arches/`), its GCC source (in `src/`, whose
/// configure fails with `configure_fails` if given), and where the cache goes.
fn layout(dir: &Path, configure_fails: Option<&str>) -> (std::path::PathBuf, std::path::PathBuf) {
    let (arches, src) = (dir.join("arches"), dir.join("src"));
    std::fs::create_dir_all(&arches).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    descriptor(&arches, &src);
    source(&src, configure_fails);
    (arches, dir.join("cache"))
}

/// `modverify arches`' line for `fake`.
fn arches_line(arches: &Path, cache: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(["--arch-dir", arches.to_str().unwrap(), "arches"])
        .env("MODVERIFY_CACHE", cache)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with("fake "))
        .unwrap()
        .to_string()
}

fn built_dirs(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.join("cross-gcc"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn two_setups_build_the_compiler_once_and_a_third_finds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (arches, cache) = layout(tmp.path(), None);
    let (a, b) = (
        setup(&arches, &cache).output_later(),
        setup(&arches, &cache).output_later(),
    );
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    let said = format!("{}{}", text(&a), text(&b));
    assert_eq!(
        said.matches("building the fake cross compiler (ia64-linux-gnu)")
            .count(),
        1,
        "{said}"
    );
    assert_eq!(
        said.matches("waiting for another modverify building the fake cross compiler")
            .count(),
        1,
        "{said}"
    );
    let dirs = built_dirs(&cache);
    let done: Vec<&String> = dirs
        .iter()
        .filter(|d| !d.ends_with(".lock") && !d.ends_with(".log"))
        .collect();
    assert_eq!(
        done.len(),
        1,
        "one compiler, no work directory left: {dirs:?}"
    );
    assert!(done[0].starts_with("fake-gcc-"), "{dirs:?}");
    let gcc = cache
        .join("cross-gcc")
        .join(done[0])
        .join("bin/ia64-linux-gnu-gcc");
    assert!(gcc.is_file());
    // The log holds one build (the second process waited, then found it done).
    let log =
        std::fs::read_to_string(cache.join("cross-gcc").join(format!("{}.log", done[0]))).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("$ ")).count(),
        5,
        "five steps, once:\n{log}"
    );
    // A third: a no-op that says where it is.
    let o = setup(&arches, &cache).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the fake cross compiler is built: ")
            && !text(&o).contains("building the fake cross compiler (ia64-linux-gnu)"),
        "{}",
        text(&o)
    );
    // `arches` says it can build.
    let line = arches_line(&arches, &cache);
    assert!(line.contains(" ok "), "{line}");
}

#[test]
fn a_failed_step_is_named_with_its_log_and_nothing_half_built_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let (arches, cache) = layout(tmp.path(), Some("no usable MPFR"));
    let o = setup(&arches, &cache).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "the machine's failure: {}",
        text(&o)
    );
    let t = text(&o);
    assert!(
        t.contains("building the fake cross compiler failed in step `configure`")
            && t.contains("configure: error: no usable MPFR"),
        "{t}"
    );
    let dirs = built_dirs(&cache);
    assert!(
        dirs.iter()
            .all(|d| d.ends_with(".lock") || d.ends_with(".log")),
        "no compiler and no work directory left: {dirs:?}"
    );
    let log = dirs.iter().find(|d| d.ends_with(".log")).unwrap();
    assert!(t.contains(log.as_str()), "the error names the log: {t}");
    // `arches` says it is not built, and how to build it.
    let line = arches_line(&arches, &cache);
    assert!(
        line.contains("not built") && line.contains("modverify setup --arch fake"),
        "{line}"
    );
}
