//! An installed kernel, or one unpacked from Debian's packages with `dpkg -x`, found by its
//! release under a root directory: the one reader of that layout (`check --release`).
//!
//! - the image: `boot/vmlinuz-VER` (`boot/vmlinux-VER` on some arches), or
//!   `usr/lib/modules/VER/vmlinuz` where the image moved (sid);
//! - `boot/System.map-VER` or `usr/lib/modules/VER/System.map`;
//! - the modules: `lib/modules/VER` or `usr/lib/modules/VER` (kernel/, updates/, extra/);
//! - `usr/src/linux-headers-VER/Module.symvers`, where the headers are installed.
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledKernel {
    pub image: PathBuf,
    pub system_map: Option<PathBuf>,
    pub modules: PathBuf,
    pub symvers: Option<PathBuf>,
}

impl InstalledKernel {
    /// Finds release `ver` under `root`; the error names every place looked at.
    pub fn find(root: &Path, ver: &str) -> Result<Self, String> {
        let first = |candidates: &[String]| {
            candidates
                .iter()
                .map(|c| root.join(c))
                .find(|p| p.is_file() || p.is_dir())
        };
        let images = [
            format!("boot/vmlinuz-{ver}"),
            format!("boot/vmlinux-{ver}"),
            format!("usr/lib/modules/{ver}/vmlinuz"),
            format!("lib/modules/{ver}/vmlinuz"),
        ];
        let module_dirs = [
            format!("lib/modules/{ver}"),
            format!("usr/lib/modules/{ver}"),
        ];
        let looked = |what: &str, c: &[String]| {
            format!(
                "no {what} for release {ver} under {} (looked for {})",
                root.display(),
                c.join(", ")
            )
        };
        let image = first(&images).ok_or_else(|| looked("kernel image", &images))?;
        let modules =
            first(&module_dirs).ok_or_else(|| looked("modules directory", &module_dirs))?;
        Ok(InstalledKernel {
            image,
            system_map: first(&[
                format!("boot/System.map-{ver}"),
                format!("usr/lib/modules/{ver}/System.map"),
                format!("lib/modules/{ver}/System.map"),
            ]),
            modules,
            symvers: first(&[format!("usr/src/linux-headers-{ver}/Module.symvers")]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debian_layouts_are_found_and_a_missing_release_names_where_it_looked() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in [
            "boot",
            "usr/lib/modules/7.2.0-1-riscv64/kernel",
            "usr/src/linux-headers-7.2.0-1-riscv64",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in [
            "usr/lib/modules/7.2.0-1-riscv64/vmlinuz",
            "boot/System.map-7.2.0-1-riscv64",
            "usr/src/linux-headers-7.2.0-1-riscv64/Module.symvers",
        ] {
            std::fs::write(r.join(f), "").unwrap();
        }
        let k = InstalledKernel::find(r, "7.2.0-1-riscv64").unwrap();
        assert_eq!(k.image, r.join("usr/lib/modules/7.2.0-1-riscv64/vmlinuz"));
        assert_eq!(k.modules, r.join("usr/lib/modules/7.2.0-1-riscv64"));
        assert_eq!(
            k.system_map,
            Some(r.join("boot/System.map-7.2.0-1-riscv64"))
        );
        assert!(k.symvers.is_some());
        let e = InstalledKernel::find(r, "6.1.0-9-amd64").unwrap_err();
        assert!(
            e.contains("no kernel image for release 6.1.0-9-amd64"),
            "{e}"
        );
        assert!(e.contains("boot/vmlinuz-6.1.0-9-amd64"), "{e}");
    }
}
