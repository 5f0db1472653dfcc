//! `modverify repro`: one module's result from a results.json, again, in a guest a person
//! uses: the same kernel (reused, or rebuilt as build.json records it), that module and what
//! it needs under their own names, the agent's exact load, then the agent's shell.
use super::{CliError, Failure};
use crate::arch::ArchRegistry;
use crate::boot::BootOptions;
use crate::kernel_build::manifest::BuildManifest;
use crate::kernel_build::{BaseConfig, BuildOptions};
use crate::report::progress::Progress;
use crate::results::ArchResult;
use clap::Args;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
modverify repro nightly/results.json --arch sparc64 --module md5\n  \
modverify repro out/ --module zlib_deflate      # a run's --out; its one arch\n\
\n\
The kernel is the run's own build directory when it is still there, else rebuilt as its \
build.json records (tree, config, fragments, patches). The guest loads the module after what \
it needs, as the run's agent did, prints the kernel's verdict beside the static prediction, \
and leaves you in its shell: help, modules, insmod NAME, rmmod NAME, lsmod, dmesg, poweroff.\n\
\n\
Exit status (from the one rule, as `boot`): 0 everything loaded, 1 a module failed, 2 bad \
input, 3 the rebuild failed, 4 QEMU or a tool failed, 130 interrupted.")]
pub struct ReproArgs {
    /// A results.json of `modverify run` (a nightly's, a CI artifact), or its --out directory
    pub results: PathBuf,
    /// The module to load, by name as the report shows it (`-` and `_` alike)
    #[arg(long)]
    pub module: String,
    /// The arch whose kernel to boot (needed when the results hold several)
    #[arg(long)]
    pub arch: Option<String>,
    /// Where the initramfs, console log and results.json go
    /// [default: modverify-results/repro-ARCH-MODULE]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Time for the kernel to reach the agent
    #[arg(long, value_parser = super::boot::parse_duration, default_value = crate::boot::limits::BOOT)]
    pub timeout: Duration,
}

fn norm(name: &str) -> String {
    crate::depmod::normalise(name)
}

/// The options the run's build was made with, from what build.json records: the tree before
/// patches, the base config or the user's .config, the user's fragments (modverify's own are
/// recorded by label and added again by the build), the patches.
fn build_options(m: &BuildManifest) -> BuildOptions {
    let base = m.config.base.as_str();
    let own = |f: &str| {
        f.starts_with("modverify ") || f.starts_with("arches/") || f.ends_with("(guest_config)")
    };
    BuildOptions {
        source: Some(m.source_origin.clone()),
        config: (!["tinyconfig", "defconfig", "allmodconfig"].contains(&base))
            .then(|| PathBuf::from(base)),
        base: match base {
            "defconfig" => BaseConfig::Defconfig,
            "allmodconfig" => BaseConfig::Allmodconfig,
            _ => BaseConfig::Tinyconfig,
        },
        fragments: m
            .config
            .fragments
            .iter()
            .filter(|f| !own(f))
            .map(PathBuf::from)
            .collect(),
        patches: m.patches.clone(),
        out: m.build_dir.parent().map(Path::to_path_buf),
        jobs: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        config_only: false,
        no_default_modules: m.config.module_set.is_none(),
    }
}

/// The module and everything it uses (by the check's `uses`), dependencies first.
fn with_dependencies(a: &ArchResult, name: &str) -> Result<Vec<String>, String> {
    let check = a.check.as_ref().ok_or_else(|| {
        format!(
            "arch {}: the results hold no static check to find the module's dependencies in",
            a.arch
        )
    })?;
    let by_name: std::collections::BTreeMap<String, &crate::check::ModuleReport> =
        check.modules.iter().map(|m| (norm(&m.name), m)).collect();
    if !by_name.contains_key(&norm(name)) {
        let like: Vec<&str> = check
            .modules
            .iter()
            .map(|m| m.name.as_str())
            .filter(|n| n.contains(&norm(name)) || norm(name).contains(*n))
            .take(5)
            .collect();
        return Err(format!(
            "arch {}: no module `{name}` among its {} modules{}",
            a.arch,
            check.modules.len(),
            if like.is_empty() {
                String::new()
            } else {
                format!(" (did you mean {}?)", like.join(", "))
            }
        ));
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit(
        n: &str,
        by_name: &std::collections::BTreeMap<String, &crate::check::ModuleReport>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(n.to_string()) {
            return;
        }
        if let Some(m) = by_name.get(n) {
            for u in &m.uses {
                visit(&norm(u), by_name, seen, order);
            }
            order.push(m.path.clone());
        }
    }
    visit(&norm(name), &by_name, &mut seen, &mut order);
    Ok(order)
}

pub fn run(a: ReproArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    crate::proc::install_interrupt_handler();
    let usage = |m: String| Failure::of(CliError::Usage(m));
    let results = super::report::read_results(&a.results)?;
    let arch_name = match &a.arch {
        Some(x) => x.clone(),
        None if results.arches.len() == 1 => results.arches.keys().next().cloned().unwrap(),
        None => {
            return Err(usage(format!(
                "{} holds arches {}: give --arch",
                a.results.display(),
                results
                    .arches
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    let ar = results.arches.get(&arch_name).ok_or_else(|| {
        usage(format!(
            "{} has no arch {arch_name} (it holds {})",
            a.results.display(),
            results
                .arches
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let arch = registry.get(&arch_name).map_err(Failure::of)?;
    let manifest = ar.build.as_ref().ok_or_else(|| {
        usage(format!(
            "{}: arch {arch_name} records no build (not written by `modverify run`); for a \
             kernel you have, use `modverify boot --kernel IMAGE --modules DIR --shell`",
            a.results.display()
        ))
    })?;
    let wanted = with_dependencies(ar, &a.module).map_err(usage)?;

    // The run's kernel: its build directory if it still holds that build, else built again.
    let reuse = crate::kernel_build::BuildManifest::read_finished(&manifest.build_dir, &mut || {
        crate::errln!(
            "waiting for the build under way in {}",
            manifest.build_dir.display()
        )
    });
    let held = match reuse {
        Ok(h) => h,
        Err(why) => {
            crate::errln!(
                "{} is not the run's finished build ({why}): building it again as build.json records",
                manifest.build_dir.display()
            );
            let progress = Progress::new();
            let bar = progress.arch(&arch.name);
            let m = crate::kernel_build::run_build(&build_options(manifest), arch, &bar).map_err(
                |e| {
                    bar.finish("build failed");
                    Failure::of(e)
                },
            )?;
            bar.finish(&format!("built in {:.1} s", m.durations.total_s));
            crate::kernel_build::BuildManifest::read_finished(&m.build_dir, &mut || {})
                .map_err(Failure::of)?
        }
    };
    let art = held.artifacts.clone();
    // The module files, where this build keeps them (the run's paths, below its directory).
    let modules: Vec<PathBuf> = wanted
        .iter()
        .map(|p| {
            let rel = Path::new(p)
                .strip_prefix(&manifest.build_dir)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| PathBuf::from(p));
            held.manifest.build_dir.join(rel)
        })
        .collect();
    if let Some(gone) = modules.iter().find(|p| !p.exists()) {
        return Err(usage(format!(
            "{}: not in the build (the run's build of {arch_name} made other modules)",
            gone.display()
        )));
    }

    // What the run said of it: the static prediction and the kernel's verdict.
    let name = norm(&a.module);
    crate::outln!(
        "repro: {} on {arch_name} ({}), as {} ran it",
        a.module,
        held.manifest.kernel_version.as_deref().unwrap_or("?"),
        a.results.display()
    );
    if let Some(m) = ar
        .check
        .iter()
        .flat_map(|c| &c.modules)
        .find(|m| norm(&m.name) == name)
    {
        let why = m.problems.iter().find(|p| p.fatal).or(m.problems.first());
        crate::outln!(
            "  static prediction: {}{}",
            m.verdict.as_str(),
            why.map(|p| format!(": {}", p.detail)).unwrap_or_default()
        );
    }
    if let Some(m) = ar
        .boot
        .iter()
        .flat_map(|b| &b.modules)
        .find(|m| norm(&m.name) == name)
    {
        crate::outln!(
            "  the run's kernel: {}{}",
            m.shown_verdict(),
            m.kernel_messages
                .first()
                .map(|k| format!(": {k}"))
                .unwrap_or_default()
        );
    }
    if wanted.len() > 1 {
        crate::outln!("  loaded after what it needs: {} modules", wanted.len() - 1);
    }
    let policy = ar.check.as_ref().map(|c| c.policy).unwrap_or_default();
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("modverify-results").join(format!("repro-{arch_name}-{name}"))
    });
    let opts = BootOptions {
        modules,
        boot_timeout: a.timeout,
        ..BootOptions::for_build(arch, &art, out, policy)
    };
    // `held`: a build of the same directory waits until the guest is off.
    let code = super::boot::shell_session(arch, opts);
    drop(held);
    code
}
