//! What this machine has: host tools, their Debian packages, and installing the missing ones.
use crate::arch::ArchRegistry;
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
/// Tools the test suite uses besides the arch packages.
pub const TEST_PACKAGES: [&str; 6] = [
    "xz-utils",
    "zstd",
    "binutils-ia64-linux-gnu",
    "chromium",
    "python3-pip",
    "git",
];

/// Every Debian package modverify can use: base, then each descriptor's toolchain and QEMU.
pub fn all_packages(registry: &ArchRegistry) -> Vec<String> {
    let mut v: Vec<String> = BASE_PACKAGES
        .iter()
        .chain(TEST_PACKAGES.iter())
        .map(|s| s.to_string())
        .collect();
    for a in &registry.arches {
        v.extend(a.toolchain_packages.iter().cloned());
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
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Whether an executable is on PATH.
pub fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// The one line that installs everything, shown in every "missing tool" error.
pub const INSTALL_HINT: &str = "run `modverify setup` (as root) to install every host dependency";
