//! Where make builds from and into, so that ccache can share objects between copies of a tree.
//!
//! Kbuild writes absolute source paths into every compiler command line (`-I/src/include`,
//! `/src/init/main.c`) unless the build directory is a direct subdirectory of the source
//! tree: then `srctree := ..` and every path is relative (top-level Makefile, "building in a
//! subdirectory of the source tree"). ccache hashes the command line, so with absolute paths a
//! patched copy of a tree (`--patch`), a bisect checkout copied elsewhere, or the same tree
//! unpacked in another place compiles everything cold: on a fresh machine the CI's five
//! patched builds took as long as five first builds (the arm64 one 629 s).
//!
//! The source tree is never written, so the build does not go inside it. Instead each build
//! directory gets a *view*: a directory of symbolic links to the tree's top-level entries, with
//! the real build directory inside it. `make -C VIEW O=VIEW/.modverify-build` then sees a
//! subdirectory build, and the name users know (`<out>/<arch>-<config>-<hash>`) is a symbolic
//! link to that build directory. Build directories made before views existed (a real
//! directory under that name) are used as they are.
use super::BuildError;
use std::path::{Path, PathBuf};

/// The build directory's name inside its view; no kernel tree has a top-level entry so named.
const OBJTREE: &str = ".modverify-build";
/// Where the views live, inside the parent of the build directories.
const VIEWS: &str = ".views";

/// What make is given: the tree to build (`-C`) and the build directory (`O=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeView {
    pub src: PathBuf,
    pub objtree: PathBuf,
    /// The tree and the name users know, for a view; None for a build directory of the
    /// earlier layout.
    named: Option<(PathBuf, PathBuf)>,
}

/// Decides where `named` (`<out>/<name>`) builds and creates that build directory (safe when
/// two processes do it at once). Take the build directory's lock, then [`TreeView::link`].
pub fn locate(src: &Path, named: &Path) -> Result<TreeView, BuildError> {
    if named.is_dir() && !is_symlink(named) {
        // A build directory of the earlier layout: keep building in it (its objects are there).
        return Ok(TreeView {
            src: src.to_path_buf(),
            objtree: named.to_path_buf(),
            named: None,
        });
    }
    let parent = named
        .parent()
        .ok_or_else(|| BuildError::BadInput(format!("{}: no parent", named.display())))?;
    let name = named
        .file_name()
        .ok_or_else(|| BuildError::BadInput(format!("{}: no name", named.display())))?;
    let view = parent.join(VIEWS).join(name);
    let objtree = view.join(OBJTREE);
    std::fs::create_dir_all(&objtree).map_err(|e| BuildError::io(&objtree, e))?;
    Ok(TreeView {
        src: view,
        objtree,
        named: Some((src.to_path_buf(), named.to_path_buf())),
    })
}

impl TreeView {
    /// Under the build directory's lock: brings the view's links up to date with the tree's
    /// top-level entries (a bisect checkout may add or remove some between builds) and points
    /// the name users know at the build directory.
    pub fn link(&self) -> Result<(), BuildError> {
        let Some((tree, named)) = &self.named else {
            return Ok(());
        };
        sync_links(tree, &self.src)?;
        // Relative, so that the whole output directory can be moved.
        let name = named.file_name().unwrap_or_default();
        let target = Path::new(VIEWS).join(name).join(OBJTREE);
        if std::fs::read_link(named).ok().as_deref() != Some(target.as_path()) {
            if is_symlink(named) {
                std::fs::remove_file(named).map_err(|e| BuildError::io(named, e))?;
            }
            std::os::unix::fs::symlink(&target, named).map_err(|e| BuildError::io(named, e))?;
        }
        Ok(())
    }
}

fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// Makes `view` hold exactly one link per top-level entry of `src` (plus the build directory).
fn sync_links(src: &Path, view: &Path) -> Result<(), BuildError> {
    let mut wanted = std::collections::HashSet::new();
    for entry in std::fs::read_dir(src).map_err(|e| BuildError::io(src, e))? {
        let entry = entry.map_err(|e| BuildError::io(src, e))?;
        let name = entry.file_name();
        if name == OBJTREE {
            continue;
        }
        let target = src.join(&name);
        let link = view.join(&name);
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            if std::fs::symlink_metadata(&link).is_ok() {
                std::fs::remove_file(&link).map_err(|e| BuildError::io(&link, e))?;
            }
            std::os::unix::fs::symlink(&target, &link).map_err(|e| BuildError::io(&link, e))?;
        }
        wanted.insert(name);
    }
    for entry in std::fs::read_dir(view).map_err(|e| BuildError::io(view, e))? {
        let entry = entry.map_err(|e| BuildError::io(view, e))?;
        let name = entry.file_name();
        if name != OBJTREE && !wanted.contains(&name) && is_symlink(&entry.path()) {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| BuildError::io(&p, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_links_every_top_level_entry_and_follows_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("linux");
        std::fs::create_dir_all(src.join("include")).unwrap();
        std::fs::write(src.join("Makefile"), "all:\n").unwrap();
        let out = t.path().join("builds");
        std::fs::create_dir_all(&out).unwrap();
        let named = out.join("sparc64-tinyconfig-0123");
        let v = locate(&src, &named).unwrap();
        v.link().unwrap();
        assert_eq!(v.objtree, v.src.join(OBJTREE));
        assert_eq!(
            std::fs::read_link(v.src.join("Makefile")).unwrap(),
            src.join("Makefile")
        );
        // The name users know leads to the build directory.
        std::fs::write(v.objtree.join("vmlinux"), "elf").unwrap();
        assert_eq!(
            std::fs::read_to_string(named.join("vmlinux")).unwrap(),
            "elf"
        );
        // A checkout that drops and adds top-level entries: the view follows.
        std::fs::remove_file(src.join("Makefile")).unwrap();
        std::fs::write(src.join("Kbuild"), "").unwrap();
        let again = locate(&src, &named).unwrap();
        again.link().unwrap();
        assert_eq!(again, v);
        assert!(std::fs::symlink_metadata(v.src.join("Makefile")).is_err());
        assert!(is_symlink(&v.src.join("Kbuild")));
        assert_eq!(
            std::fs::read_to_string(named.join("vmlinux")).unwrap(),
            "elf"
        );
    }

    #[test]
    fn a_build_directory_of_the_earlier_layout_is_used_as_it_is() {
        let t = tempfile::tempdir().unwrap();
        let named = t.path().join("riscv64-tinyconfig-89ab");
        std::fs::create_dir_all(&named).unwrap();
        let v = locate(t.path(), &named).unwrap();
        v.link().unwrap();
        assert_eq!(v.objtree, named);
        assert_eq!(v.src, t.path());
    }
}
