//! `modverify diff OLD NEW`: what a kernel update changed in the export table, from the
//! binaries, and which modules built for the old kernel the new one refuses.
use super::{CliError, Failure};
use crate::arch::ArchRegistry;
use crate::check::stage::{check_stage, load_module, CheckError, CheckOptions, Checked};
use crate::check::Policy;
use crate::kabi::KabiDiff;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Junit,
}

#[derive(Args, Debug)]
#[command(
    override_usage = "modverify diff [OPTIONS] OLD NEW\n       \
modverify diff [OPTIONS] --old-vmlinux FILE --old-modules DIR --new-vmlinux FILE --new-modules DIR\n       \
modverify diff [OPTIONS] --old-symvers FILE --old-modules DIR --new-symvers FILE --new-modules DIR",
    after_help = "OLD and NEW are each a `modverify build` directory, or the root of an installed kernel or of \
Debian's packages unpacked with `dpkg -x` (boot/vmlinuz-VER, lib/modules/VER or usr/lib/modules/VER, \
usr/src/linux-headers-VER/Module.symvers); --old-release/--new-release pick the release where a root holds several.\n\n\
Examples:\n  \
# two kernels unpacked with dpkg -x (linux-image and linux-headers)\n  \
modverify diff old/ new/\n  \
# two releases installed side by side\n  \
modverify diff --old-release 6.1.0-9-amd64 --new-release 6.1.0-10-amd64 / /\n  \
# will the DKMS modules built for the old kernel load into the new one?\n  \
modverify diff --consumers /var/lib/dkms/*/*/6.1.0-9-amd64/*/module \\\n      \
old/ new/\n\n\
A consumer breaks when the old kernel loads it and the new one refuses it, by `check`'s own judgement: \
the old kernel's modules and every --consumers module, each against the other kernel and its modules.\n\n\
Exit status: 0 no change breaks a consumer, 1 some change does (with --strict: any change at all), 2 bad input."
)]
pub struct DiffArgs {
    /// The old kernel: a build directory or a root (see below)
    #[arg(value_name = "OLD", required_unless_present_any = ["old_vmlinux", "old_symvers"])]
    pub old: Option<PathBuf>,
    /// The new kernel: a build directory or a root
    #[arg(value_name = "NEW", required_unless_present_any = ["new_vmlinux", "new_symvers"])]
    pub new: Option<PathBuf>,
    /// The release to read under the OLD root, where it holds several
    #[arg(long, value_name = "VER")]
    pub old_release: Option<String>,
    /// The release to read under the NEW root, where it holds several
    #[arg(long, value_name = "VER")]
    pub new_release: Option<String>,
    /// The old kernel named file by file: vmlinux, or the image as shipped
    #[arg(
        long,
        value_name = "FILE",
        requires = "old_modules",
        conflicts_with = "old"
    )]
    pub old_vmlinux: Option<PathBuf>,
    /// The old kernel's Module.symvers (or its headers directory); alone, without
    /// --old-vmlinux, the export table comes from it (an arm64/riscv64 Image whose
    /// System.map Debian ships as a stub)
    #[arg(long, value_name = "FILE", requires = "old_modules")]
    pub old_symvers: Option<PathBuf>,
    /// The old kernel's modules (a directory or files; repeatable)
    #[arg(long, value_name = "DIR")]
    pub old_modules: Vec<PathBuf>,
    /// The new kernel named file by file: vmlinux, or the image as shipped
    #[arg(
        long,
        value_name = "FILE",
        requires = "new_modules",
        conflicts_with = "new"
    )]
    pub new_vmlinux: Option<PathBuf>,
    /// The new kernel's Module.symvers (or its headers directory); alone, the export table
    /// comes from it
    #[arg(long, value_name = "FILE", requires = "new_modules")]
    pub new_symvers: Option<PathBuf>,
    /// The new kernel's modules (a directory or files; repeatable)
    #[arg(long, value_name = "DIR")]
    pub new_modules: Vec<PathBuf>,
    /// Out-of-tree modules built for the old kernel (repeatable): judged against the new one
    /// beside the old kernel's own modules
    #[arg(long, value_name = "DIR")]
    pub consumers: Vec<PathBuf>,
    /// Target architecture (default: from the kernels)
    #[arg(long)]
    pub arch: Option<String>,
    /// How a missing version entry is treated: upstream warns and accepts, Debian rejects
    #[arg(long, value_enum, default_value_t = Policy::default())]
    pub policy: Policy,
    /// table for people, json for programs (docs/json-schema.md), junit for CI (a test case
    /// per consumer: failed when the new kernel refuses it)
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// List every change and every consumer, not the first of each group
    #[arg(short, long)]
    pub verbose: bool,
    /// Also fail (exit 1) on changes no consumer is broken by
    #[arg(long)]
    pub strict: bool,
    /// Changes to accept, as Debian keeps them (`[abi] ignore-changes`: `PATTERN`,
    /// `name:PATTERN`, `module:PATTERN`; `*` within a path component, `**` across); repeatable
    #[arg(long, value_name = "FILE")]
    pub ignore_changes: Vec<PathBuf>,
    /// Changes to accept, as SUSE keeps them (kABI severities: `PATTERN PASS|FAIL`, a symbol, a
    /// module path or an upper-case namespace; the first match decides); repeatable
    #[arg(long, value_name = "FILE")]
    pub severities: Vec<PathBuf>,
}

/// One side's files, and the build it came from held until the diff is done.
struct SideFiles {
    opts: CheckOptions,
    _held: Option<crate::kernel_build::manifest::FinishedBuild>,
}

fn usage(message: String) -> Failure {
    Failure::of(CliError::Usage(message))
}

/// The releases under a root that have an image and a modules directory.
fn releases(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["lib/modules", "usr/lib/modules"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let v = e.file_name().to_string_lossy().into_owned();
            if !out.contains(&v) && crate::installed::InstalledKernel::find(root, &v).is_ok() {
                out.push(v);
            }
        }
    }
    out.sort();
    out
}

fn side(
    which: &str,
    dir: Option<&Path>,
    release: Option<&str>,
    files: (Option<&Path>, Option<&Path>, &[PathBuf]),
    a: &DiffArgs,
) -> Result<SideFiles, Failure> {
    let (vmlinux, symvers, modules) = files;
    let mut opts = CheckOptions {
        arch: a.arch.clone(),
        vmlinux: vmlinux.map(Path::to_path_buf),
        system_map: None,
        symvers: symvers.map(Path::to_path_buf),
        policy: a.policy,
        paths: modules.to_vec(),
        own_modules: vec![],
        providers: Default::default(),
    };
    let Some(dir) = dir else {
        // Every module of a side is that kernel's own.
        opts.own_modules = opts.paths.clone();
        return Ok(SideFiles { opts, _held: None });
    };
    if !dir.is_dir() {
        return Err(usage(format!(
            "{which} {}: not a directory (a `modverify build` directory or a kernel's root)",
            dir.display()
        )));
    }
    if dir.join(crate::kernel_build::manifest::MANIFEST).is_file() {
        if let Some(v) = release {
            return Err(usage(format!(
                "{which} {} is a `modverify build` directory: --{which}-release {v} names a \
                 kernel under a root (drop it, or give the root)",
                dir.display()
            )));
        }
        let built = crate::kernel_build::BuildManifest::read_finished(dir, &mut || {
            crate::errln!("waiting for the build under way in {}", dir.display())
        })
        .map_err(Failure::of)?;
        opts.vmlinux = Some(built.artifacts.vmlinux.clone());
        opts.symvers = Some(built.artifacts.module_symvers.clone());
        opts.paths = built.artifacts.modules.clone();
        opts.arch.get_or_insert(built.manifest.arch.clone());
        return Ok(SideFiles {
            opts,
            _held: Some(built),
        });
    }
    let ver = match release {
        Some(v) => v.to_string(),
        None => {
            let found = releases(dir);
            match found.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(usage(format!(
                        "{which} {}: no kernel under it (no boot/vmlinuz-VER with lib/modules/VER or \
                         usr/lib/modules/VER) and no build.json: give a `modverify build` directory, \
                         a root, or the files (--{which}-vmlinux, --{which}-modules)",
                        dir.display()
                    )))
                }
                many => {
                    return Err(usage(format!(
                        "{which} {} holds {} kernels ({}): pick one with --{which}-release VER",
                        dir.display(),
                        many.len(),
                        many.join(", ")
                    )))
                }
            }
        }
    };
    let k = crate::installed::InstalledKernel::find(dir, &ver)
        .map_err(|e| usage(format!("{which}: {e}")))?;
    opts.vmlinux = Some(k.image);
    opts.system_map = k.system_map;
    opts.symvers = opts.symvers.take().or(k.symvers);
    opts.paths = vec![k.modules];
    opts.own_modules = opts.paths.clone();
    Ok(SideFiles { opts, _held: None })
}

pub fn run(a: DiffArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    let old = side(
        "old",
        a.old.as_deref(),
        a.old_release.as_deref(),
        (
            a.old_vmlinux.as_deref(),
            a.old_symvers.as_deref(),
            &a.old_modules,
        ),
        &a,
    )?;
    let new = side(
        "new",
        a.new.as_deref(),
        a.new_release.as_deref(),
        (
            a.new_vmlinux.as_deref(),
            a.new_symvers.as_deref(),
            &a.new_modules,
        ),
        &a,
    )?;
    let named = |w: &str, e: CheckError| {
        let code = super::exit::code(crate::failure::Classified::kind(&e));
        Failure::new(code, CliError::Usage(format!("{w} kernel: {e}")))
    };
    // The two kernels are read side by side: most of each is one thread's work (unpacking
    // the image), which would otherwise stand before the other.
    let (old_checked, new_checked) = rayon::join(
        || check_stage(&old.opts, None, registry),
        || check_stage(&new.opts, None, registry),
    );
    let old_checked: Checked = old_checked.map_err(|e| named("old", e))?;
    let new_checked: Checked = new_checked.map_err(|e| named("new", e))?;
    if old_checked.report.arch != new_checked.report.arch {
        return Err(usage(format!(
            "the old kernel is {} and the new one {}: a diff compares two kernels of one \
             architecture",
            old_checked.report.arch, new_checked.report.arch
        )));
    }
    let arch = registry
        .get(&old_checked.report.arch)
        .map_err(|e| Failure::of(CheckError::from(e)))?;
    let mut consumers = Vec::new();
    if !a.consumers.is_empty() {
        let found = crate::input::discover_noted(&a.consumers)
            .map_err(|e| Failure::of(CheckError::from(e)))?;
        if found.paths.is_empty() {
            return Err(usage(format!(
                "--consumers {}: no module files (.ko, .ko.xz, .ko.gz, .ko.zst) there",
                a.consumers
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        consumers = found.paths.iter().map(|p| load_module(p, arch)).collect();
    }
    let mut tolerations = crate::kabi::Tolerations::default();
    for (files, suse) in [(&a.ignore_changes, false), (&a.severities, true)] {
        for f in files {
            let text = std::fs::read_to_string(f).map_err(|e| Failure::of(CliError::file(f, e)))?;
            let source = f.display().to_string();
            if suse {
                tolerations.add_suse(&text, &source)
            } else {
                tolerations.add_debian(&text, &source)
            }
            .map_err(usage)?;
        }
    }
    let d = crate::kabi::diff(
        arch,
        &crate::kabi::Kernel::of(&old_checked),
        &crate::kabi::Kernel::of(&new_checked),
        &consumers,
        a.policy,
        &tolerations,
    );
    match a.format {
        Format::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&d).expect("a diff serializes")
        ),
        Format::Table => crate::out!("{}", crate::report::diff::table(&d, a.verbose)),
        Format::Junit => crate::out!("{}", crate::report::diff::junit(&d)),
    }
    Ok(exit_of(&d, a.strict))
}

/// 1 when an untolerated change breaks a consumer (or a consumer breaks for a kernel-wide
/// reason, or either table is inconsistent); with `strict`, also for any untolerated change.
pub fn exit_of(d: &KabiDiff, strict: bool) -> i32 {
    let untolerated = d.changes.iter().filter(|c| c.tolerated.is_none());
    let failing = d.broken.iter().any(|b| !b.tolerated)
        || d.summary.breaking_changes > 0
        || !d.old.consistent
        || !d.new.consistent
        || (strict && (untolerated.count() > 0 || !d.kernel.is_empty()));
    i32::from(failing)
}
