//! The C library the static guest agent links against when the cross toolchain's own cannot
//! be used (`build.guest_sysroot`): Debian's cross libc packages from another suite, unpacked
//! once into the cache (`dpkg -x`, nothing installed), then handed to the cross compiler in
//! place of its own headers, start files and libraries.
//!
//! sh4 is why: Debian 12's libc6-dev-sh4-cross was compiled by the same gcc 12.2 whose
//! `sh_treg_combine` pass drops tests, and its `__libc_start_main` spins in a loop whose exit
//! test was deleted before the agent's `main` ever runs; trixie's (gcc 14) is sound.
use super::ImageError;
use crate::arch::{ArchDescriptor, GuestSysroot};
use std::path::{Path, PathBuf};
use std::process::Command;

const MARKER: &str = ".modverify-sysroot";

/// An unpacked sysroot: its include and lib directories, and the package versions in it.
pub struct Sysroot {
    pub include: PathBuf,
    pub lib: PathBuf,
    pub versions: String,
}

impl Sysroot {
    /// The compiler arguments that put this sysroot in place of the toolchain's own C
    /// library (the compiler's own headers, `stddef.h` and the like, stay).
    pub fn cc_args(&self, cc: &str) -> Vec<String> {
        let mut ask = Command::new(cc);
        ask.arg("-print-file-name=include");
        let own = crate::proc::stdout_if_ok(ask).unwrap_or_default();
        let mut v = vec!["-nostdinc".to_string()];
        if !own.trim().is_empty() {
            v.extend(["-isystem".into(), own.trim().to_string()]);
        }
        v.extend([
            "-isystem".into(),
            self.include.display().to_string(),
            // -B: crt1.o, crti.o and crtn.o from here; -L: libc.a.
            format!("-B{}/", self.lib.display()),
            format!("-L{}", self.lib.display()),
        ]);
        v
    }
}

/// The arch's guest sysroot, fetched and unpacked on first use; `None` when the descriptor
/// asks for none (the toolchain's own C library is used).
pub fn guest_sysroot(arch: &ArchDescriptor, cache: &Path) -> Result<Option<Sysroot>, ImageError> {
    let Some(want) = arch.build.as_ref().and_then(|b| b.guest_sysroot.as_ref()) else {
        return Ok(None);
    };
    let key = format!("{}\n{}", want.suite, want.packages.join(" "));
    let dir =
        cache
            .join("sysroots")
            .join(format!("{}-{}", arch.name, crate::files::short_hash(&key)));
    // The cross libc packages put everything under usr/<triplet>.
    let triplet = arch.cross_compile.trim_end_matches('-');
    let sysroot = |versions: String| Sysroot {
        include: dir.join("usr").join(triplet).join("include"),
        lib: dir.join("usr").join(triplet).join("lib"),
        versions,
    };
    if let Ok(versions) = std::fs::read_to_string(dir.join(MARKER)) {
        return Ok(Some(sysroot(versions)));
    }
    let versions = fetch(arch, want, cache, &dir, triplet)?;
    Ok(Some(sysroot(versions)))
}

/// Downloads and unpacks the packages into `dir` (through a temporary directory beside it,
/// checked before it is renamed into place, so a half-unpacked or wrong sysroot is never
/// taken for a whole one); returns their versions. Once in place a sysroot is kept: delete
/// `sysroots/` in the cache to take the suite's newer packages.
fn fetch(
    arch: &ArchDescriptor,
    want: &GuestSysroot,
    cache: &Path,
    dir: &Path,
    triplet: &str,
) -> Result<String, ImageError> {
    let parent = dir.parent().expect("under the cache");
    std::fs::create_dir_all(parent).map_err(|e| ImageError::io(parent, e))?;
    let work = tempfile::Builder::new()
        .prefix(".fetch")
        .tempdir_in(parent)
        .map_err(|e| ImageError::io(parent, e))?;
    let apt = crate::debian_apt::PrivateApt::open(
        cache,
        &format!("{}-guest", want.suite),
        &want.suite,
        &want.packages.join(" "),
    )?;
    let root = work.path().join("root");
    let got = apt.unpack(&want.packages, work.path(), &root)?;
    let libc = root.join("usr").join(triplet).join("lib/libc.a");
    if !libc.exists() {
        return Err(ImageError::Tool {
            cmd: format!("arches/{}.yaml build.guest_sysroot", arch.name),
            output: format!(
                "{} from Debian {} hold no usr/{triplet}/lib/libc.a: list the cross C library (libc6-dev-ARCH-cross and what it needs)",
                want.packages.join(", "),
                want.suite
            ),
        });
    }
    let versions = format!("{} for {}: {}\n", want.suite, arch.name, got.join(", "));
    std::fs::write(root.join(MARKER), &versions).map_err(|e| ImageError::io(&root, e))?;
    // Another modverify may have put the same sysroot in place meanwhile: then use that one
    // (it may be linking against it), else ours. A directory without the marker is what an
    // interrupted older run left: never in use, so it goes.
    if dir.exists() && !dir.join(MARKER).exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Err(e) = std::fs::rename(&root, dir) {
        if !dir.join(MARKER).exists() {
            return Err(ImageError::io(dir, e));
        }
    }
    Ok(std::fs::read_to_string(dir.join(MARKER)).unwrap_or(versions))
}
