//! `modverify check`: the static verifier.
use super::Failure;
use crate::arch::ArchRegistry;
use crate::check::stage::{run_check, CheckError, CheckOptions};
use crate::check::Policy;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
#[command(
    override_usage = "modverify check [OPTIONS] (--vmlinux FILE | --symvers FILE) PATH...\n       \
modverify check [OPTIONS] --build DIR [PATH]...\n       \
modverify check [OPTIONS] --release VER [--root DIR] [PATH]...",
    after_help = "Examples:\n  \
modverify check --vmlinux build/vmlinux build/\n  \
modverify check --vmlinux vmlinux --symvers Module.symvers \\\n      \
--format json /lib/modules/6.1.0-56-amd64/kernel\n  \
modverify check --arch sparc64 --symvers Module.symvers drivers/foo.ko\n  \
modverify check --vmlinux /boot/vmlinuz-$(uname -r) \\\n      \
/lib/modules/$(uname -r)/kernel\n  \
# before a reboot: will these modules load into the kernel just installed?\n  \
modverify check --release 6.12.57+deb13-amd64 \\\n      \
/var/lib/dkms/*/*/6.1*/x86_64/module\n\
\n\
Exit status: 0 every module ok and the export table consistent, 1 findings, 2 the check could not be run."
)]
pub struct CheckArgs {
    /// Target architecture (default: inferred from vmlinux or the modules)
    #[arg(long)]
    pub arch: Option<String>,
    /// The kernel: an ELF vmlinux (stripped is fine) or the boot image as shipped (x86
    /// bzImage, EFI zboot, gzip/xz/zstd-compressed, arm64/riscv Image with its System.map)
    #[arg(long, value_name = "FILE")]
    pub vmlinux: Option<PathBuf>,
    /// System.map for a raw Image (default: System.map or System.map-VERSION beside it)
    #[arg(long, value_name = "FILE")]
    pub system_map: Option<PathBuf>,
    /// Module.symvers: cross-checked against vmlinux, or the export source when there is no vmlinux
    #[arg(long, value_name = "FILE")]
    pub symvers: Option<PathBuf>,
    /// How a missing version entry is treated: upstream warns and accepts, Debian rejects
    #[arg(long, value_enum, default_value_t = Policy::default())]
    pub policy: Policy,
    /// table for people (wrapped to the terminal), json for programs (docs/json-schema.md)
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also list the modules that load, and every problem of each module
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print nothing when all is well, only the summary line when not (the exit status
    /// says it all)
    #[arg(short, long)]
    pub quiet: bool,
    /// Report only these modules (repeatable; `*` globs, `-` and `_` are the same). Every
    /// module is still checked, so a dependency's failure still counts
    #[arg(long, value_name = "NAME")]
    pub module: Vec<String>,
    /// Modules (files or directories, repeatable) that provide symbols and resolve
    /// dependencies without being reported: the kernel's own tree, when the PATHs are
    /// out-of-tree modules to check against it
    #[arg(long, value_name = "DIR")]
    pub with: Vec<PathBuf>,
    /// An installed kernel by its release (`uname -r` of the kernel to boot): its image,
    /// System.map, modules and, where the headers are installed, Module.symvers. With
    /// PATHs, its modules are the reference (as --with) and only the PATHs are reported
    #[arg(long, value_name = "VER", conflicts_with_all = ["vmlinux", "build"])]
    pub release: Option<String>,
    /// Where --release looks: an installed system's / (the default) or a tree of Debian's
    /// packages unpacked with `dpkg -x`
    #[arg(long, value_name = "DIR", requires = "release", default_value = "/")]
    pub root: PathBuf,
    /// A `modverify build` directory: its vmlinux, Module.symvers and modules
    #[arg(long, value_name = "DIR", conflicts_with_all = ["vmlinux", "symvers"])]
    pub build: Option<PathBuf>,
    /// Module files (.ko, .ko.xz, .ko.gz, .ko.zst) or directories to search
    #[arg(required_unless_present_any = ["build", "release"], value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

pub fn run(a: CheckArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    let mut opts = CheckOptions {
        arch: a.arch,
        vmlinux: a.vmlinux,
        system_map: a.system_map,
        symvers: a.symvers,
        policy: a.policy,
        paths: a.paths.clone(),
        own_modules: vec![],
        providers: Default::default(),
    };
    let mut with = a.with.clone();
    if let Some(ver) = &a.release {
        let k = crate::installed::InstalledKernel::find(&a.root, ver)
            .map_err(|e| Failure::of(CheckError::Usage(e)))?;
        opts.vmlinux = Some(k.image);
        opts.system_map = opts.system_map.take().or(k.system_map);
        opts.symvers = opts.symvers.take().or(k.symvers);
        if a.paths.is_empty() {
            opts.own_modules.push(k.modules.clone());
            opts.paths.push(k.modules);
        } else {
            with.push(k.modules);
        }
    }
    // The --with modules: checked with the rest (as providers, as modprobe would see them),
    // never reported. A module the PATHs give replaces the reference module of its name, as
    // a module in updates/ replaces the kernel's own.
    let mut reference = std::collections::HashSet::new();
    // The --with modules are the kernel's own: where the table has no vermagic (read from
    // Module.symvers), theirs is the kernel's.
    opts.own_modules.extend(with.iter().cloned());
    if !with.is_empty() {
        let named = |paths: &[PathBuf]| {
            crate::input::discover_noted(paths)
                .map(|d| d.paths)
                .map_err(|e| Failure::of(CheckError::from(e)))
        };
        let given: std::collections::HashSet<String> = named(&a.paths)?
            .iter()
            .map(|p| crate::depmod::name(p))
            .collect();
        for p in named(&with)? {
            if !given.contains(&crate::depmod::name(&p)) {
                reference.insert(p.display().to_string());
                opts.paths.push(p);
            }
        }
    }
    // Held until the check is done: a build of the same directory waits for it.
    let mut _held = None;
    if let Some(dir) = &a.build {
        let built = crate::kernel_build::BuildManifest::read_finished(dir, &mut || {
            crate::errln!("waiting for the build under way in {}", dir.display())
        })
        .map_err(Failure::of)?;
        let art = built.artifacts.clone();
        opts.arch.get_or_insert(built.manifest.arch.clone());
        _held = Some(built);
        opts.vmlinux = Some(art.vmlinux);
        opts.symvers = Some(art.module_symvers);
        if a.paths.is_empty() {
            opts.paths.extend(art.modules);
        }
    }
    // Bad input (2) or the machine's I/O failing (4), by the error's kind.
    let mut report = run_check(&opts, registry).map_err(Failure::of)?;
    if !reference.is_empty() {
        report.retain_modules(|m| !reference.contains(&m.path));
    }
    if !a.module.is_empty() {
        report.retain_modules(|m| a.module.iter().any(|p| name_matches(p, &m.name)));
        if report.modules.is_empty() {
            return Err(Failure::of(CheckError::Usage(format!(
                "no module named {} among those checked",
                a.module.join(", ")
            ))));
        }
    }
    if a.quiet {
        if !report.clean() {
            let t = crate::report::table::check_table(&report, false, usize::MAX);
            crate::out!(
                "{}",
                t.lines()
                    .last()
                    .map(|l| format!("{l}\n"))
                    .unwrap_or_default()
            );
        }
        return Ok(exit_of(&report));
    }
    match a.format {
        Format::Table => crate::out!(
            "{}",
            crate::report::table::check_table(&report, a.verbose, super::terminal_width())
        ),
        Format::Json => crate::outln!("{}", crate::report::json::to_string(&report)),
    }
    Ok(exit_of(&report))
}

/// The exit status of a check: the arch's one status (outcome::decide) of a run that only
/// checked, through the one exit rule.
fn exit_of(report: &crate::check::stage::CheckReport) -> i32 {
    use crate::outcome::{decide, exit_status, StageEnd, Stages};
    let status = decide(&Stages {
        build: StageEnd::NotAsked,
        check: StageEnd::Done(report),
        boot: StageEnd::NotAsked,
        interrupted: false,
    });
    exit_status(&[status], None)
}

/// A `--module` pattern against a module name: `*` matches any run, `-` equals `_`.
fn name_matches(pattern: &str, name: &str) -> bool {
    let norm = crate::depmod::normalise;
    let (p, n) = (norm(pattern), norm(name));
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == n;
    }
    let mut rest = n.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn module_patterns() {
        use super::name_matches as m;
        assert!(m("vfat", "vfat"));
        assert!(m("snd-hda-*", "snd_hda_intel"));
        assert!(m("*_cs", "3c574_cs"));
        assert!(m("crc*c", "crc32c"));
        assert!(!m("vfat", "vfat2"));
        assert!(!m("snd*", "asnd"));
    }
}
