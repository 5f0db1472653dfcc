//! `ci/bisect` + `modverify bisect-step` on a real kernel git tree: Debian's linux-source-6.1
//! with six commits, one of which removes an export a module uses, and three of which QEMU
//! cannot start (a broken emulator on the runner, tied here to a marker file the commits
//! carry). The driver must skip those (125: nothing was tested, so no verdict), and still
//! name the commit that removed the export, with the finding.
mod common;
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", file.display());
    // Write a new file rather than through the hard link to the cached source.
    std::fs::remove_file(file).unwrap();
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn bisect_names_the_commit_that_removed_an_export() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = env!("CARGO_BIN_EXE_modverify");
    // The default tree, unpacked once into the cache by `modverify build`. Configured in a
    // directory of the test's own: in the shared default riscv64 build directory a
    // configure-only build would leave a manifest without artifacts for the tests after it.
    let scratch = tempfile::tempdir().unwrap();
    let o = Command::new(bin)
        .args(["build", "--arch", "riscv64", "--config-only", "--out"])
        .arg(scratch.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let src = modverify::kernel_build::cache_dir().join("src/linux-source-6.1");
    // A fixed place in the cache rather than a temporary directory: builds are keyed by the
    // source path, so each test run reuses one build directory (an incremental make) instead
    // of leaving a new one behind. Every file that differs from the cached source is written
    // anew below or by git's checkouts, so its mtime is newer than any object built from it.
    let repo = modverify::kernel_build::cache_dir().join("tests/bisect/linux");
    if repo.exists() {
        std::fs::remove_dir_all(&repo).unwrap();
    }
    std::fs::create_dir_all(repo.parent().unwrap()).unwrap();
    // Hard links make the copy cheap; edits below replace files instead of writing through.
    assert!(Command::new("cp")
        .arg("-al")
        .arg(&src)
        .arg(&repo)
        .status()
        .unwrap()
        .success());
    let _ = std::fs::remove_file(repo.join(".modverify-complete"));
    // Debian's packaged tree ignores everything at its top level ("/*"): not in a git tree.
    edit(&repo.join(".gitignore"), "\n/*\n", "\n");
    git(&repo, &["init", "-q"]);
    git(
        &repo,
        &["-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"],
    );
    let commit_as = |how: &str, msg: &str| {
        git(
            &repo,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                how,
                "-m",
                msg,
            ],
        )
    };
    let commit = |msg: &str| commit_as("-a", msg);
    let commit_empty = |msg: &str| commit_as("--allow-empty", msg);
    commit("base: Debian linux-source-6.1");
    // QEMU as the runner has it: the real one, except while the tree holds the marker (the
    // commits in the middle of the range, so that git's first pick is one of them).
    let marker = repo.join("QEMU_CANNOT_START");
    let real_qemu = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v qemu-system-riscv64"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let wrappers = tempfile::tempdir().unwrap();
    let wrapper = wrappers.path().join("qemu-system-riscv64");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ -e '{}' ]; then\n  echo 'qemu-system-riscv64: cannot start (the test breaks it)' >&2\n  exit 1\nfi\nexec '{}' \"$@\"\n",
            marker.display(),
            real_qemu.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(&marker, "").unwrap();
    git(&repo, &["add", "QEMU_CANNOT_START"]);
    edit(
        &repo.join("lib/crc7.c"),
        "Table for CRC-7 (polynomial",
        "Table for CRC-7 (the polynomial",
    );
    commit("lib/crc7: comment (QEMU cannot start from here)");
    commit_empty("runner: still broken");
    commit_empty("runner: still broken, again");
    git(&repo, &["rm", "-q", "QEMU_CANNOT_START"]);
    commit("runner: QEMU starts again");
    edit(
        &repo.join("lib/bitrev.c"),
        "EXPORT_SYMBOL_GPL(byte_rev_table);",
        "",
    );
    commit("lib/bitrev: stop exporting byte_rev_table");
    edit(&repo.join("lib/crc8.c"), "crc8", "crc8 ");
    commit("lib/crc8: whitespace");
    let path = format!(
        "{}:{}",
        wrappers.path().display(),
        std::env::var("PATH").unwrap()
    );
    let o = Command::new("bash")
        .arg(root.join("ci/bisect"))
        .args(["HEAD~6", "HEAD", "--arch", "riscv64"])
        .current_dir(&repo)
        .env("MODVERIFY", bin)
        .env("PATH", path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let first_bad = out
        .lines()
        .find(|l| l.starts_with("first bad commit: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        first_bad.ends_with("lib/bitrev: stop exporting byte_rev_table"),
        "{out}"
    );
    assert!(
        out.contains("finding: bisect-step: bad: riscv64: zlib_deflate unknown_symbol"),
        "{out}"
    );
    assert!(out.contains("byte_rev_table"), "{out}");
    // The README's bisect recipe shows the first bad commit's line, as bisect-step printed it.
    let said: String = out
        .lines()
        .filter_map(|l| l.strip_prefix("finding: "))
        .collect::<Vec<_>>()
        .join("\n");
    common::assert_readme_shows("One line says why", &said);
    // At least one of the commits QEMU could not start was tried, and skipped, not called bad.
    assert!(out.contains("bisect-step: skip: riscv64: "), "{out}");
}
