//! The kernel tree to build: Debian's linux-source-6.1 unpacked once into the cache, or the
//! user's tree; with `--patch`, a private hard-linked copy with the patches applied, so the
//! user's tree is never written (GNU patch replaces files rather than editing them in place).
use super::BuildError;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
const MARKER: &str = ".modverify-complete";

/// The default tree, unpacked into `cache/src` on first use.
pub fn default_source(cache: &Path, note: &mut dyn FnMut(&str)) -> Result<PathBuf, BuildError> {
    let dir = cache.join("src/linux-source-6.1");
    if dir.join(MARKER).exists() {
        return Ok(dir);
    }
    let tarball = Path::new(DEFAULT_TARBALL);
    if !tarball.exists() {
        return Err(BuildError::Missing {
            what: DEFAULT_TARBALL.into(),
            package: "linux-source-6.1".into(),
        });
    }
    note(&format!(
        "unpacking {} into {} (once)",
        tarball.display(),
        dir.display()
    ));
    let parent = dir.parent().unwrap();
    std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpack")
        .tempdir_in(parent)
        .map_err(|e| BuildError::io(parent, e))?;
    run_quiet(
        Command::new("tar")
            .arg("-xJf")
            .arg(tarball)
            .arg("-C")
            .arg(tmp.path()),
        "tar",
    )?;
    let unpacked = tmp.path().join("linux-source-6.1");
    std::fs::write(unpacked.join(MARKER), b"").map_err(|e| BuildError::io(&unpacked, e))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&unpacked, &dir).map_err(|e| BuildError::io(&dir, e))?;
    Ok(dir)
}

/// Checks that a user-named directory is a kernel tree that can be built out of tree.
pub fn user_source(dir: &Path) -> Result<PathBuf, BuildError> {
    let bad = |why: String| BuildError::BadInput(format!("{}: {why}", dir.display()));
    if !dir.join("Makefile").is_file() || !dir.join("Kconfig").is_file() {
        return Err(bad("not a kernel tree (no Makefile and Kconfig)".into()));
    }
    if dir.join(".config").exists() || dir.join("include/config").exists() {
        return Err(bad("the tree has been configured in place; kbuild refuses O= builds from it. Run `make mrproper` there (or pass its .config with --config)".into()));
    }
    dir.canonicalize().map_err(|e| BuildError::io(dir, e))
}

/// A copy of `src` with `patches` applied, cached by the tree's identity and the patches.
pub fn patched(
    src: &Path,
    patches: &[PathBuf],
    cache: &Path,
    note: &mut dyn FnMut(&str),
) -> Result<PathBuf, BuildError> {
    let mut key = format!("{}\n", src.display());
    if let Ok(out) = Command::new("git")
        .arg("-C")
        .arg(src)
        .args(["rev-parse", "HEAD"])
        .output()
    {
        key += &String::from_utf8_lossy(&out.stdout);
    }
    for p in patches {
        key += &std::fs::read_to_string(p).map_err(|e| BuildError::io(p, e))?;
    }
    let dir = cache
        .join("src")
        .join(format!("patched-{}", super::short_hash(&key)));
    if dir.join(MARKER).exists() {
        return Ok(dir);
    }
    note(&format!(
        "applying {} patch(es) to a private copy in {}",
        patches.len(),
        dir.display()
    ));
    let parent = dir.parent().unwrap();
    std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".patch")
        .tempdir_in(parent)
        .map_err(|e| BuildError::io(parent, e))?;
    let copy = tmp.path().join("tree");
    // Hard links make the copy nearly free; patch(1) writes new files, never through a link.
    let linked = Command::new("cp")
        .arg("-al")
        .arg(src)
        .arg(&copy)
        .status()
        .is_ok_and(|s| s.success());
    if !linked {
        let _ = std::fs::remove_dir_all(&copy);
        run_quiet(Command::new("cp").arg("-a").arg(src).arg(&copy), "cp")?;
    }
    let _ = std::fs::remove_file(copy.join(MARKER));
    for p in patches {
        let p = p.canonicalize().map_err(|e| BuildError::io(p, e))?;
        let out = Command::new("patch")
            .args([
                "-p1",
                "--forward",
                "--batch",
                "--no-backup-if-mismatch",
                "-i",
            ])
            .arg(&p)
            .current_dir(&copy)
            .output()
            .map_err(|e| BuildError::Spawn {
                cmd: "patch".into(),
                source: e,
            })?;
        if !out.status.success() {
            return Err(BuildError::BadInput(format!(
                "{}: does not apply to {}:\n{}",
                p.display(),
                src.display(),
                String::from_utf8_lossy(&out.stdout)
            )));
        }
    }
    std::fs::write(copy.join(MARKER), b"").map_err(|e| BuildError::io(&copy, e))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&copy, &dir).map_err(|e| BuildError::io(&dir, e))?;
    Ok(dir)
}

fn run_quiet(cmd: &mut Command, name: &str) -> Result<(), BuildError> {
    let out = cmd.output().map_err(|e| BuildError::Spawn {
        cmd: name.into(),
        source: e,
    })?;
    if !out.status.success() {
        return Err(BuildError::Tool {
            cmd: crate::proc::command_line(cmd),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// The kernel release of a tree, from its Makefile (`VERSION.PATCHLEVEL.SUBLEVEL`).
pub fn kernel_version(src: &Path) -> Option<String> {
    let text = std::fs::read_to_string(src.join("Makefile")).ok()?;
    let get = |k: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(k)
                .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
        })
    };
    Some(format!(
        "{}.{}.{}",
        get("VERSION")?,
        get("PATCHLEVEL")?,
        get("SUBLEVEL")?
    ))
}
