//! The kernel tree to build: Debian's linux-source-X.Y unpacked once into the cache (6.1 by
//! default, from /usr/src; another version fetched from the Debian suite that ships it), or
//! the user's tree or git checkout; with `--patch`, a private hard-linked copy with the
//! patches applied, so the user's tree is never written (GNU patch replaces files rather than
//! editing them in place).
use super::BuildError;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_VERSION: &str = "6.1";
pub const DEFAULT_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
const MARKER: &str = ".modverify-complete";
/// Suites searched for a linux-source-X.Y this machine's apt does not have: the newest
/// version any of them serves is taken.
pub const SUITES: &[&str] = &["bookworm", "trixie", "forky", "sid"];

/// The default tree, unpacked into `cache/src` on first use.
pub fn default_source(cache: &Path, note: &mut dyn FnMut(&str)) -> Result<PathBuf, BuildError> {
    debian_source(cache, DEFAULT_VERSION, note)
}

/// `--source SPEC`: a directory (a kernel tree or a git checkout), or a version `X.Y` (or
/// `linux-source-X.Y`) naming Debian's linux-source-X.Y.
pub fn resolve(
    spec: &Path,
    cache: &Path,
    note: &mut dyn FnMut(&str),
) -> Result<PathBuf, BuildError> {
    if spec.is_dir() {
        return user_source(spec);
    }
    match debian_version(&spec.to_string_lossy()) {
        Some(v) => debian_source(cache, &v, note),
        None => Err(BuildError::BadInput(format!(
            "{}: no such directory; --source takes a kernel tree, a git checkout, or a version such as 6.12 for Debian's linux-source-6.12",
            spec.display()
        ))),
    }
}

/// `6.12` or `linux-source-6.12` → `6.12`.
pub fn debian_version(spec: &str) -> Option<String> {
    let v = spec.strip_prefix("linux-source-").unwrap_or(spec);
    let mut parts = v.split('.');
    let ok = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts
            .next()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts.next().is_none();
    ok.then(|| v.to_string())
}

/// Debian's linux-source-`version`, unpacked into `cache/src` on first use: from
/// /usr/src when the package is installed, otherwise downloaded (see `fetch_tarball`).
pub fn debian_source(
    cache: &Path,
    version: &str,
    note: &mut dyn FnMut(&str),
) -> Result<PathBuf, BuildError> {
    let name = format!("linux-source-{version}");
    let dir = cache.join("src").join(&name);
    if dir.join(MARKER).exists() {
        return Ok(dir);
    }
    let installed = PathBuf::from(format!("/usr/src/{name}.tar.xz"));
    let parent = dir.parent().unwrap();
    std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    let download = tempfile::Builder::new()
        .prefix(".fetch")
        .tempdir_in(parent)
        .map_err(|e| BuildError::io(parent, e))?;
    let tarball = if installed.exists() {
        installed
    } else {
        fetch_tarball(cache, &name, download.path(), note)?
    };
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
            .arg(&tarball)
            .arg("-C")
            .arg(tmp.path()),
        "tar",
    )?;
    let unpacked = tmp.path().join(&name);
    if !unpacked.join("Makefile").is_file() {
        return Err(BuildError::BadInput(format!(
            "{}: holds no {name}/Makefile; is it Debian's {name} tarball?",
            tarball.display()
        )));
    }
    std::fs::write(unpacked.join(MARKER), b"").map_err(|e| BuildError::io(&unpacked, e))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&unpacked, &dir).map_err(|e| BuildError::io(&dir, e))?;
    Ok(dir)
}

/// Downloads Debian's `package` (`linux-source-X.Y`) into `work` and returns the tarball it
/// ships: every suite of SUITES is asked, and the newest version any of them serves wins.
fn fetch_tarball(
    cache: &Path,
    package: &str,
    work: &Path,
    note: &mut dyn FnMut(&str),
) -> Result<PathBuf, BuildError> {
    use crate::debian_apt::{newer, AptError, PrivateApt};
    let apt_err = |e: AptError| match e {
        AptError::NoMirror(_) => BuildError::Missing {
            what: format!("a Debian mirror in /etc/apt/sources.list(.d) to fetch {package} from"),
            package: package.into(),
        },
        AptError::Interrupted(what) => BuildError::Interrupted(PathBuf::from(what)),
        AptError::Io { path, source } => BuildError::Io { path, source },
        AptError::Spawn { cmd, source } => BuildError::Spawn { cmd, source },
        AptError::Tool { cmd, output } => BuildError::Tool { cmd, output },
        e @ AptError::NotInSuite { .. } => BuildError::BadInput(e.to_string()),
    };
    let mut best: Option<(String, PrivateApt)> = None;
    let mut mirror = String::new();
    for suite in SUITES {
        note(&format!("looking for {package} in Debian {suite}"));
        let apt =
            PrivateApt::open(cache, &format!("{suite}-source"), suite, package).map_err(apt_err)?;
        mirror = apt.mirror.clone();
        if let Some(version) = apt.candidate(package).map_err(apt_err)? {
            if best.as_ref().is_none_or(|(b, _)| newer(&version, b)) {
                best = Some((version, apt));
            }
        }
    }
    let Some((version, apt)) = best else {
        return Err(BuildError::BadInput(format!(
            "{package} is in none of the Debian suites {} at {mirror}: pass an unpacked tree or a git checkout with --source instead",
            SUITES.join(", ")
        )));
    };
    note(&format!(
        "downloading {package} {version} from Debian {}",
        apt.suite
    ));
    let root = work.join("root");
    apt.unpack(&[package.to_string()], work, &root)
        .map_err(apt_err)?;
    let tarball = root.join(format!("usr/src/{package}.tar.xz"));
    if !tarball.exists() {
        return Err(BuildError::BadInput(format!(
            "{package} {version}: holds no usr/src/{package}.tar.xz"
        )));
    }
    Ok(tarball)
}

/// Runs a short tool through proc.rs; its output, or the build error that names it.
fn tool_output(cmd: &mut Command, name: &str) -> Result<String, BuildError> {
    use crate::proc::ToolError;
    crate::proc::tool(cmd).map_err(|e| match e {
        ToolError::Spawn(source) => BuildError::Spawn {
            cmd: name.into(),
            source,
        },
        ToolError::Interrupted => BuildError::Interrupted(PathBuf::from(name)),
        ToolError::Failed { cmd, output } => BuildError::Tool { cmd, output },
    })
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
    let mut git = Command::new("git");
    git.arg("-C").arg(src).args(["rev-parse", "HEAD"]);
    key += &crate::proc::stdout_if_ok(git).unwrap_or_default();
    for p in patches {
        key += &std::fs::read_to_string(p).map_err(|e| BuildError::named("--patch", p, e))?;
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
    let mut cp = Command::new("cp");
    cp.arg("-al").arg(src).arg(&copy);
    let linked = crate::proc::stdout_if_ok(cp).is_some();
    if !linked {
        let _ = std::fs::remove_dir_all(&copy);
        run_quiet(Command::new("cp").arg("-a").arg(src).arg(&copy), "cp")?;
    }
    let _ = std::fs::remove_file(copy.join(MARKER));
    for p in patches {
        let p = p
            .canonicalize()
            .map_err(|e| BuildError::named("--patch", p, e))?;
        let mut patch = Command::new("patch");
        patch
            .args([
                "-p1",
                "--forward",
                "--batch",
                "--no-backup-if-mismatch",
                "-i",
            ])
            .arg(&p)
            .current_dir(&copy);
        let (ended, said) = crate::proc::output(patch).map_err(|e| BuildError::Spawn {
            cmd: "patch".into(),
            source: e,
        })?;
        if !ended.success() {
            return Err(BuildError::BadInput(format!(
                "{}: does not apply to {}:\n{said}",
                p.display(),
                src.display(),
            )));
        }
    }
    std::fs::write(copy.join(MARKER), b"").map_err(|e| BuildError::io(&copy, e))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&copy, &dir).map_err(|e| BuildError::io(&dir, e))?;
    Ok(dir)
}

fn run_quiet(cmd: &mut Command, name: &str) -> Result<(), BuildError> {
    tool_output(cmd, name).map(|_| ())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_names_a_debian_tree_and_anything_else_does_not() {
        assert_eq!(debian_version("6.12").as_deref(), Some("6.12"));
        assert_eq!(debian_version("linux-source-7.2").as_deref(), Some("7.2"));
        for bad in ["", "7", "7.", ".2", "7.2.1", "v7.2", "../linux", "6.x"] {
            assert_eq!(debian_version(bad), None, "{bad}");
        }
        let e = resolve(
            Path::new("/nonexistent/linux"),
            Path::new("/nonexistent"),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no such directory") && e.contains("6.12"), "{e}");
    }
}
