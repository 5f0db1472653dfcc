//! What this machine has: host tools, their Debian packages, and installing the missing ones.
use crate::arch::ArchDescriptor;
use std::process::Command;

/// Packages every build needs whatever the arch (kbuild's host tools, ccache, the source).
pub const BASE_PACKAGES: [&str; 12] = [
    "make",
    "gcc",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "cpio",
    "ccache",
    "kmod",
    "patch",
    "linux-source-6.1",
];
/// The Debian packages these arches need: base, then each descriptor's toolchain and QEMU.
/// (What only the test suite needs — chromium, pip, an ia64 assembler — is installed by
/// ci/test, not on every user's machine.)
pub fn packages(arches: &[&ArchDescriptor]) -> Vec<String> {
    let mut v: Vec<String> = BASE_PACKAGES.iter().map(|s| s.to_string()).collect();
    for a in arches {
        v.extend(a.toolchain_packages.iter().cloned());
        if let Some(p) = a.build.as_ref().and_then(|b| b.gcc_plugin.as_ref()) {
            v.extend(p.packages.iter().cloned());
        }
        if let Some(c) = a.build.as_ref().and_then(|b| b.cross_gcc.as_ref()) {
            v.extend(c.packages.iter().cloned());
        }
        if let Some(q) = &a.qemu {
            v.extend(q.packages.iter().cloned());
        }
    }
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
    v
}

/// Whether a Debian package is installed (dpkg-query status).
pub fn installed(pkg: &str) -> bool {
    let mut q = Command::new("dpkg-query");
    q.args(["-W", "-f=${Status}", pkg]);
    crate::proc::stdout_if_ok(q).is_some_and(|o| o.contains("install ok installed"))
}

/// Why an arch's kernels do not boot on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CannotBoot {
    /// Nothing boots it: the descriptor says why (`unsupported.boot`, or no `qemu` section).
    Unsupported(String),
    /// Its QEMU is not installed here.
    NotInstalled {
        binary: String,
        packages: Vec<String>,
    },
}

impl std::fmt::Display for CannotBoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CannotBoot::Unsupported(why) => f.write_str(why),
            CannotBoot::NotInstalled { binary, .. } => {
                write!(f, "{binary} is not installed (modverify setup installs it)")
            }
        }
    }
}

/// How QEMU boots `arch` on this machine, or why it cannot: the one rule `run`, `arches`,
/// `--arch all` and the boot loop ask. (Whether anything boots it at all is the
/// descriptor's: [`ArchDescriptor::qemu_or_why_not`].)
pub fn boots_here(arch: &ArchDescriptor) -> Result<&crate::arch::QemuFacts, CannotBoot> {
    let q = arch.qemu_or_why_not().map_err(CannotBoot::Unsupported)?;
    if !on_path(&q.binary) {
        return Err(CannotBoot::NotInstalled {
            binary: q.binary.clone(),
            packages: q.packages.clone(),
        });
    }
    Ok(q)
}

/// Whether an executable is on PATH.
pub fn on_path(bin: &str) -> bool {
    find_on_path(bin).is_some()
}

/// Where PATH finds an executable.
pub fn find_on_path(bin: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// The one line that installs everything, shown in every "missing tool" error.
pub const INSTALL_HINT: &str = "run `modverify setup` (as root) to install every host dependency";

#[cfg(test)]
mod tests {
    use super::*;

    /// Booting here needs a recipe and its QEMU: each missing one said as itself.
    #[test]
    fn an_arch_boots_here_with_a_recipe_and_its_qemu() {
        let reg = crate::arch::ArchRegistry::load(None).unwrap();
        let mut riscv = reg.get("riscv64").unwrap().clone();
        riscv.qemu.as_mut().unwrap().binary = "qemu-system-none-such".into();
        match boots_here(&riscv) {
            Err(e @ CannotBoot::NotInstalled { .. }) => {
                assert!(e
                    .to_string()
                    .contains("qemu-system-none-such is not installed"))
            }
            other => panic!("{other:?}"),
        }
        let ia64 = reg.get("ia64").unwrap();
        assert!(matches!(boots_here(ia64), Err(CannotBoot::Unsupported(_))));
    }
}
