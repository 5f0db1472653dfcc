//! A new build directory starts from a finished sibling's objects instead of from nothing.
//!
//! Kbuild rebuilds exactly what changed since the build it finds: an object whose command line
//! changed (`if_changed`), one that depends on a configuration option whose value changed
//! (fixdep records each object's `CONFIG_` dependencies), one older than a file it was made
//! from. So a build of the same tree with a patch or another fragment, started from a copy of
//! the tree's plain build, compiles only what the difference touches. Started from nothing,
//! each such build compiled the whole tree again: 70–140 s on two cores even with every object
//! in ccache (genksyms and host programs do not go through ccache).
//!
//! When a sibling is a sound start:
//! - it is finished (`build.json` says ok) and no one is building there (its shared lock is
//!   free and held while copying);
//! - it is of the same arch (any configuration: Kbuild rebuilds what a changed option
//!   touches; the same base configuration is preferred, as the least to compile);
//! - it was built from the very tree we build (`source` equal), or ours is a patched copy of
//!   its tree. A patched copy shares each unpatched file with its tree (a hard link); the files
//!   patch(1) wrote are its own, and may be older than the sibling's objects (the copy is
//!   cached), so each such file is touched: make then sees it newer than every object made
//!   from it. A copy that shares little (cp -al was not possible) is not a sound start.
//!
//! Paths inside the objects are relative to the view (see `tree_view`), so the copies read
//! our tree, not the sibling's; the few absolute ones are also in their command lines, which
//! then differ, and those objects are rebuilt.
use super::manifest::{BuildManifest, BuildStatus};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files of a build directory that belong to its own build, never copied: the lock (ours is
/// held on our own file), the manifest and log, and the key of the configuration made there
/// (so ours is made, not taken).
const OWN: &[&str] = &[
    super::LOCK,
    super::manifest::MANIFEST,
    "build.log",
    ".modverify-config-key",
];

/// More touched files than this and the copy is not a patched copy of the sibling's tree:
/// starting from nothing costs as much.
const MOST_DIFFERING: usize = 2000;

/// The build being started, as far as choosing a sibling goes.
pub struct Wanted<'a> {
    pub arch: &'a str,
    /// The base configuration's label in the build directory's name (`tinyconfig`, `config`).
    pub label: &'a str,
    /// The tree make builds (a patched copy with --patch).
    pub src: &'a Path,
    /// The tree before patches.
    pub origin: &'a Path,
}

/// A sibling chosen to start from, with the files of ours to touch.
#[derive(Debug)]
pub struct Seed {
    /// The sibling's name as users know it (`<out>/<arch>-<label>-<hash>`).
    pub from: PathBuf,
    objtree: PathBuf,
    touch: Vec<PathBuf>,
    _lock: std::fs::File,
}

/// `objtree` is a build directory never configured (no `.config`): the newest sound sibling
/// in `parent` to start from, if any. Any doubt is no seed.
pub fn find(parent: &Path, objtree: &Path, wanted: &Wanted) -> Option<Seed> {
    if objtree.join(".config").exists() {
        return None;
    }
    let prefix = format!("{}-", wanted.arch);
    let label = format!("{}-{}-", wanted.arch, wanted.label);
    let mut candidates: Vec<(bool, std::time::SystemTime, PathBuf, BuildManifest)> =
        std::fs::read_dir(parent)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .filter_map(|e| {
                let same_label = e.file_name().to_string_lossy().starts_with(&label);
                let dir = e.path();
                let real = dir.canonicalize().ok()?;
                if real == objtree.canonicalize().ok()? {
                    return None;
                }
                let m = BuildManifest::read(&dir).ok()?;
                let sound_tree = m.source == wanted.src
                    || (m.source == wanted.origin && m.source == m.source_origin);
                let done = m.status == BuildStatus::Ok && m.artifacts.is_some();
                let when = std::fs::metadata(dir.join(super::manifest::MANIFEST))
                    .and_then(|md| md.modified())
                    .ok()?;
                (sound_tree && done && m.arch == wanted.arch).then_some((same_label, when, real, m))
            })
            .collect();
    // The sibling of the same tree first (nothing to touch), then of the same base
    // configuration (the least to compile), then the newest.
    candidates.sort_by_key(|(same_label, when, _, m)| (m.source == wanted.src, *same_label, *when));
    let (_, _, real, m) = candidates.pop()?;
    let lock = crate::files::try_lock_shared(&real.join(super::LOCK))?;
    // Read again under the lock: a build may have started there since.
    let m2 = BuildManifest::read(&real).ok()?;
    if m2.status != BuildStatus::Ok || m2.source != m.source {
        return None;
    }
    let touch = if m.source == wanted.src {
        Vec::new()
    } else {
        differing(wanted.src, &m.source)?
    };
    Some(Seed {
        from: m.build_dir,
        objtree: real,
        touch,
        _lock: lock,
    })
}

/// The files of `ours` that are not `theirs`' file at the same path (another inode), or None
/// when there are too many for `ours` to be a patched copy of `theirs`.
fn differing(ours: &Path, theirs: &Path) -> Option<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(ours.join(&rel)).ok()?.flatten() {
            let rel = rel.join(e.file_name());
            let md = e.metadata().ok()?;
            if md.is_dir() {
                stack.push(rel);
                continue;
            }
            let same = std::fs::symlink_metadata(theirs.join(&rel))
                .is_ok_and(|t| t.ino() == md.ino() && t.dev() == md.dev());
            if !same {
                out.push(ours.join(&rel));
                if out.len() > MOST_DIFFERING {
                    return None;
                }
            }
        }
    }
    Some(out)
}

impl Seed {
    /// Copies the sibling's objects into `objtree` (times kept, so make's comparisons hold)
    /// and touches our files that differ from its tree. On an error `objtree` may hold part of
    /// a copy: the caller empties it ([`clear`]) and builds from nothing.
    pub fn plant(&self, objtree: &Path) -> Result<(), String> {
        let entries: Vec<PathBuf> = std::fs::read_dir(&self.objtree)
            .map_err(|e| format!("{}: {e}", self.objtree.display()))?
            .flatten()
            .filter(|e| !OWN.iter().any(|o| e.file_name() == *o))
            .map(|e| e.path())
            .collect();
        if !entries.is_empty() {
            let mut cp = Command::new("cp");
            cp.args(["-a", "--reflink=auto", "-t"])
                .arg(objtree)
                .args(&entries);
            crate::proc::tool(&cp).map_err(|e| match e {
                crate::proc::ToolError::Spawn(e) => format!("cannot run cp: {e}"),
                crate::proc::ToolError::Interrupted => "interrupted".into(),
                crate::proc::ToolError::Failed { cmd, output } => {
                    format!("`{cmd}` failed: {output}")
                }
            })?;
        }
        for f in &self.touch {
            touch(f).map_err(|e| format!("{}: {e}", f.display()))?;
        }
        Ok(())
    }

    /// How many of our files differ from the sibling's tree.
    pub fn touched(&self) -> usize {
        self.touch.len()
    }
}

/// Sets `p`'s times to now, without following a symbolic link.
fn touch(p: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid C string; a null `times` means now.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            std::ptr::null(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Removes everything in `objtree` but the lock: a copy that failed half way is not a start.
pub fn clear(objtree: &Path) {
    if let Ok(rd) = std::fs::read_dir(objtree) {
        for e in rd.flatten() {
            if e.file_name() == super::LOCK {
                continue;
            }
            let p = e.path();
            let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patched_copy_differs_in_the_files_patch_wrote() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("base");
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        std::fs::write(base.join("a/b/x.c"), "x").unwrap();
        std::fs::write(base.join("y.h"), "y").unwrap();
        let copy = t.path().join("copy");
        assert!(Command::new("cp")
            .arg("-al")
            .arg(&base)
            .arg(&copy)
            .status()
            .unwrap()
            .success());
        assert_eq!(differing(&copy, &base).unwrap(), Vec::<PathBuf>::new());
        // patch(1) writes a new file in place of the link.
        std::fs::remove_file(copy.join("y.h")).unwrap();
        std::fs::write(copy.join("y.h"), "y2").unwrap();
        std::fs::write(copy.join("a/new.c"), "n").unwrap();
        let mut d = differing(&copy, &base).unwrap();
        d.sort();
        assert_eq!(d, vec![copy.join("a/new.c"), copy.join("y.h")]);
        let before = std::fs::metadata(copy.join("y.h"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        touch(&copy.join("y.h")).unwrap();
        assert!(
            std::fs::metadata(copy.join("y.h"))
                .unwrap()
                .modified()
                .unwrap()
                > before
        );
        // The base's file (another inode) is not touched.
        assert!(
            std::fs::metadata(base.join("y.h"))
                .unwrap()
                .modified()
                .unwrap()
                <= before
        );
    }
}
