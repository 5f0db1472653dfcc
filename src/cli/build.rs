//! `modverify build`: cross-build a kernel and its modules for one architecture.
use super::Failure;
use crate::arch::ArchRegistry;
use crate::kernel_build::{run_build, BaseConfig, BuildOptions};
use crate::report::progress::Progress;
use clap::Args;
use std::path::PathBuf;

/// Which kernel tree and configuration: shared by build, run and bisect-step.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Kernel tree or git checkout, or a version X.Y for Debian's linux-source-X.Y (e.g. 6.12,
    /// 7.2: fetched from the Debian suite that ships it and unpacked once into the cache);
    /// default 6.1. Never written
    #[arg(long, value_name = "DIR|X.Y")]
    pub source: Option<PathBuf>,
    /// Your own .config (plain or gzip, e.g. /proc/config.gz), taken through olddefconfig
    #[arg(long, value_name = "FILE", conflicts_with = "base")]
    pub config: Option<PathBuf>,
    /// Base configuration when no --config is given
    #[arg(long, value_enum, default_value_t = BaseConfig::Tinyconfig)]
    pub base: BaseConfig,
    /// Config fragment (CONFIG_X=y / # CONFIG_X is not set lines); repeatable
    #[arg(long, value_name = "FILE")]
    pub fragment: Vec<PathBuf>,
    /// Patch applied (-p1) to a private copy of the source; repeatable
    #[arg(long, value_name = "FILE")]
    pub patch: Vec<PathBuf>,
}

impl SourceArgs {
    /// Build options for these flags (all CPUs, modverify's default module set).
    pub fn options(&self, out: Option<PathBuf>) -> BuildOptions {
        BuildOptions {
            source: self.source.clone(),
            config: self.config.clone(),
            base: self.base,
            fragments: self.fragment.clone(),
            patches: self.patch.clone(),
            out,
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            config_only: false,
            no_default_modules: false,
        }
    }
}

#[derive(Args, Debug)]
#[command(
    after_help = "The build directory is <out>/<arch>-<config>-<hash>; it holds build.json (the manifest), build.log, vmlinux, the boot image and the modules. `modverify check --build DIR` checks it.\n\
\n\
Examples:\n  \
modverify build --arch sparc64\n  \
modverify build --arch alpha --config /proc/config.gz\n  \
modverify build --arch riscv64 --source ~/linux \\\n      \
--patch fix.patch --fragment debug.config\n\
\n\
Exit status: 0 built, 2 bad input, 3 build failed, 4 a tool is missing, 130 interrupted."
)]
pub struct BuildArgs {
    /// Architecture descriptor name (see `modverify arches`)
    #[arg(long)]
    pub arch: String,
    #[command(flatten)]
    pub kernel: SourceArgs,
    /// Parent directory of the build directories [default: ~/.cache/modverify/builds]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Parallel make jobs [default: number of CPUs]
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Configure and report dropped options, without building
    #[arg(long)]
    pub config_only: bool,
    /// Leave out modverify's default module set (crypto and CRC modules)
    #[arg(long)]
    pub no_default_modules: bool,
}

impl BuildArgs {
    pub fn options(&self) -> BuildOptions {
        let mut o = self.kernel.options(self.out.clone());
        if let Some(j) = self.jobs {
            o.jobs = j;
        }
        o.config_only = self.config_only;
        o.no_default_modules = self.no_default_modules;
        o
    }
}

pub fn run(a: BuildArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    crate::proc::install_interrupt_handler();
    let arch = registry.get(&a.arch).map_err(Failure::of)?;
    let progress = Progress::new();
    let bar = progress.arch(&arch.name);
    let m = run_build(&a.options(), arch, &bar).map_err(|e| {
        bar.finish("build failed");
        Failure::of(e)
    })?;
    bar.finish(&format!("built in {:.1} s", m.durations.total_s));
    for d in &m.config.dropped {
        crate::outln!("dropped option: {d}");
    }
    for f in &m.modpost {
        crate::outln!("modpost: {}", f.line);
    }
    if let Some(art) = &m.artifacts {
        crate::outln!(
            "{}: {} modules, {} modpost findings; build directory {}",
            m.arch,
            art.modules.len(),
            m.modpost.len(),
            m.build_dir.display()
        );
    } else {
        crate::outln!("{}: configured in {}", m.arch, m.build_dir.display());
    }
    crate::outln!(
        "manifest: {}",
        m.build_dir
            .join(crate::kernel_build::manifest::MANIFEST)
            .display()
    );
    Ok(crate::cli::exit::OK)
}
