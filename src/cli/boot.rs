//! `modverify boot`: boot a kernel under QEMU, load every module, record the kernel's verdicts.
use super::check::Format;
use super::Failure;
use crate::arch::ArchRegistry;
use crate::boot::{default_out, prepare, run_boot, BootError, BootOptions};
use crate::check::Policy;
use crate::qemu::BootEvent;
use crate::report::progress::Progress;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Guest memory as `--memory` takes it: MiB, or with a unit (`512`, `512M`, `2G`), from
/// 64 MiB (less boots no kernel with an initramfs) to 64 GiB.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mul) = match t.trim_end_matches("iB").trim_end_matches('B') {
        n if n.ends_with(['G', 'g']) => (&n[..n.len() - 1], 1024),
        n if n.ends_with(['M', 'm']) => (&n[..n.len() - 1], 1),
        n => (n, 1),
    };
    let mib = num
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("`{s}` is not an amount of memory: MiB, or 512M, 2G"))?;
    if !(64..=65536).contains(&mib) {
        return Err(format!(
            "{mib} MiB is outside 64 MiB to 64 GiB (the guest's memory, in MiB unless 512M, 2G)"
        ));
    }
    Ok(mib)
}

pub use crate::proc::parse_duration;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
modverify boot --build ~/.cache/modverify/builds/sparc64-tinyconfig-XXXX\n  \
modverify boot --arch riscv64 --kernel Image \\\n      \
--modules lib/modules/6.1.0/kernel --vmlinux vmlinux\n  \
modverify boot --arch alpha --build DIR --shell\n\
\n\
Exit status: 0 every module loaded and unloaded and the running export table equals the static one, 1 findings (a module failed, crashed or hung; the kernel did not boot; prediction and kernel disagree), 2 bad input, 4 QEMU or a tool failed, 130 interrupted.")]
pub struct BootArgs {
    /// Target architecture (`modverify arches` lists them) [default with --build: the
    /// build's]
    #[arg(long, required_unless_present = "build")]
    pub arch: Option<String>,
    /// A `modverify build` directory (kernel image, vmlinux, Module.symvers, modules)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kernel", "modules"])]
    pub build: Option<PathBuf>,
    /// A prebuilt kernel image to boot (bring your own kernel)
    #[arg(long, value_name = "IMAGE", requires = "modules")]
    pub kernel: Option<PathBuf>,
    /// Its modules (a directory, e.g. lib/modules/VERSION/kernel; compressed modules are fine)
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    /// The kernel's ELF or its image (vmlinuz, Image with System.map beside it), read as
    /// `modverify check` reads it: for the static prediction and the export-table comparison
    #[arg(long, value_name = "FILE")]
    pub vmlinux: Option<PathBuf>,
    /// Module.symvers, cross-checked against vmlinux (or the export source without it)
    #[arg(long, value_name = "FILE")]
    pub symvers: Option<PathBuf>,
    /// Time from QEMU's start for the kernel to reach the agent, in every boot; a kernel
    /// that does not is a failed boot (DURATION: 90, 90s, 500ms, 2m).
    ///
    /// The whole of one guest is bounded by TIMEOUT + MODULE_TIMEOUT × its modules +
    /// 2 × SILENCE (with the defaults and 35 modules: 120 s + 700 s + 80 s = 15 min); a
    /// guest that stops talking is stopped after SILENCE, a hung load after MODULE_TIMEOUT.
    #[arg(long, value_name = "DURATION", default_value = crate::boot::limits::BOOT, value_parser = parse_duration)]
    pub timeout: Duration,
    /// Time one module's load may take before the agent records it hung and goes on
    #[arg(long, value_name = "DURATION", default_value = crate::boot::limits::MODULE, value_parser = parse_duration)]
    pub module_timeout: Duration,
    /// Time without console output before the guest counts as hung (a load that took the
    /// machine down)
    #[arg(long, value_name = "DURATION", default_value = crate::boot::limits::SILENCE, value_parser = parse_duration)]
    pub silence: Duration,
    /// Tries of a module whose load fails, hangs or takes the guest down, each in a fresh
    /// guest with what it needs, before its verdict stands; tries that differ make it flaky
    /// (0: no retry)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub retries: usize,
    /// Print the QEMU command line (shell-quoted) and the initramfs it needs, and exit
    #[arg(long)]
    pub show_command: bool,
    /// After the loads, stay in a shell in the guest (insmod, rmmod, lsmod, dmesg, poweroff)
    #[arg(long)]
    pub shell: bool,
    /// Results directory [default: BUILD/boot, or a cache directory]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// How a missing version entry is treated in the static prediction: upstream warns and
    /// accepts, Debian rejects
    #[arg(long, value_enum, default_value_t = Policy::default())]
    pub policy: Policy,
    /// table for people, json for programs
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The kernel's .config (plain or gzip): whether it decompresses modules itself
    /// (CONFIG_MODULE_DECOMPRESS) and which initramfs compression it takes [default: the
    /// build's .config, or config-VERSION / config beside --kernel; without one the guest
    /// tries compressed modules and falls back]
    #[arg(long, value_name = "FILE")]
    pub kernel_config: Option<PathBuf>,
    /// Guest memory: MiB, or 512M, 2G; 64 MiB to 64 GiB [default: sized from the modules,
    /// at least the descriptor's -m]
    #[arg(long, value_name = "MIB", value_parser = parse_memory)]
    pub memory: Option<u64>,
    /// Boot only shard K of N: every N-th of the boots the module set is split into (each
    /// with what its modules need), one CI job each; `modverify merge` joins the shards'
    /// results.json into what one run gives
    /// (`auto`: GitLab's CI_NODE_INDEX/CI_NODE_TOTAL; `auto/N`: a Kubernetes Indexed Job's
    /// JOB_COMPLETION_INDEX of N)
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::batch::Shard>,
    /// Split the modules into this many boots [default: one per 800 modules, more where one
    /// guest's memory cannot hold them]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batches: Option<u64>,
    /// Guests booted side by side [default: the number of CPUs]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
}

/// The boot's options, and with `--build` the build held (see
/// [`crate::kernel_build::BuildManifest::read_finished`]) for as long as the caller keeps it.
fn options(
    a: &BootArgs,
    arch: &crate::arch::ArchDescriptor,
) -> Result<(BootOptions, Option<crate::kernel_build::FinishedBuild>), BootError> {
    let mut held = None;
    let (kernel, modules, vmlinux, symvers, config) = match (&a.build, &a.kernel) {
        (Some(dir), _) => {
            let built = crate::kernel_build::BuildManifest::read_finished(dir, &mut || {
                crate::errln!("waiting for the build under way in {}", dir.display())
            })?;
            let (m, art) = (&built.manifest, built.artifacts.clone());
            if m.arch != arch.name {
                return Err(BootError::BadInput(format!(
                    "{}: built for {}, not {}",
                    dir.display(),
                    m.arch,
                    arch.name
                )));
            }
            let kernel = art.kernel_to_boot(arch).to_path_buf();
            held = Some(built);
            (
                kernel,
                art.modules,
                Some(art.vmlinux),
                Some(art.module_symvers),
                Some(art.config),
            )
        }
        (None, Some(k)) => (
            k.clone(),
            a.modules.iter().cloned().collect(),
            a.vmlinux.clone(),
            a.symvers.clone(),
            None,
        ),
        (None, None) => {
            return Err(BootError::BadInput(
                "give --build DIR, or --kernel IMAGE with --modules DIR".into(),
            ))
        }
    };
    let opts = BootOptions {
        out: a.out.clone().unwrap_or_else(|| {
            default_out(
                a.build.as_deref(),
                &kernel,
                a.modules.as_deref().unwrap_or(Path::new("")),
                &arch.name,
            )
        }),
        kernel,
        modules,
        vmlinux,
        symvers,
        boot_timeout: a.timeout,
        module_timeout: a.module_timeout,
        silence: a.silence,
        policy: a.policy,
        extra_append: String::new(),
        kernel_config: a.kernel_config.clone().or(config),
        memory_mb: a.memory,
        shard: a.shard,
        batches: a.batches.map(|n| n as usize),
        jobs: a
            .jobs
            .map_or_else(crate::boot::default_jobs, |n| n as usize),
        interactive: a.shell,
        retries: a.retries,
    };
    Ok((opts, held))
}

pub fn run(a: BootArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    if let Some(from) = a.shard.and_then(|s| s.from) {
        let s = a.shard.expect("set");
        crate::errln!("shard {s}: from {from}");
    }
    crate::proc::install_interrupt_handler();
    let fail = |e: BootError| Failure::of(e);
    // With --build and no --arch, the arch the build was made for.
    let name = match (&a.arch, &a.build) {
        (Some(n), _) => n.clone(),
        (None, Some(dir)) => {
            crate::kernel_build::BuildManifest::read(dir)
                .map_err(|e| fail(BootError::BadInput(e)))?
                .arch
        }
        (None, None) => {
            return Err(fail(BootError::BadInput(
                "give --arch NAME (or --build DIR, whose arch is used)".into(),
            )))
        }
    };
    let arch = registry.get(&name).map_err(Failure::of)?;
    if let Err(reason) = arch.qemu_or_why_not() {
        return Err(fail(BootError::Unsupported {
            arch: arch.name.clone(),
            reason,
        }));
    }
    // `_held`: a build of the same directory waits until this boot is done.
    let (opts, _held) = options(&a, arch).map_err(fail)?;
    if a.show_command {
        let prepared = prepare(arch, &opts).map_err(fail)?;
        let image = prepared
            .initramfs(arch, &opts, 0, prepared.payload)
            .map_err(fail)?;
        crate::outln!("{}", prepared.qemu_command(arch, &opts, &image.path, 0));
        crate::errln!(
            "# initramfs with the agent and {} modules: {}{}",
            image.plan.len(),
            image.path.display(),
            match prepared.batches.len() {
                1 => String::new(),
                n => format!(" (boot 1 of {n}; --batches 1 puts them all in one)"),
            }
        );
        return Ok(crate::cli::exit::OK);
    }
    if a.shell {
        return shell_session(arch, opts);
    }
    let started = crate::files::unix_now();
    let t0 = std::time::Instant::now();
    let progress = Progress::new();
    let bar = progress.arch(&arch.name);
    let n = std::cell::Cell::new(0usize);
    let total = std::cell::Cell::new(0usize);
    let current = std::cell::RefCell::new(String::new());
    // Nothing is said to start before the inputs are read: a bad input is an error alone.
    bar.hint("boot: reading the modules");
    let report = run_boot(arch, &opts, &mut |event| match event {
        BootEvent::Planned { modules, boots } => {
            total.set(modules);
            bar.stage(
                &match boots {
                    1 => format!("boot: {modules} modules, starting QEMU"),
                    _ => format!("boot: {modules} modules in {boots} guests, starting QEMU"),
                },
                true,
            );
        }
        BootEvent::AgentStarted => bar.stage("boot: agent started, loading modules", true),
        BootEvent::Loading { name } => *current.borrow_mut() = name,
        BootEvent::ModuleDone { .. } => {
            n.set(n.get() + 1);
            bar.stage(
                &format!(
                    "boot: loaded {}/{} modules ({})",
                    n.get(),
                    total.get(),
                    current.borrow()
                ),
                false,
            );
        }
        BootEvent::ReadingTable => bar.stage("boot: reading the running export table", true),
        BootEvent::Unloading => bar.stage("boot: unloading", false),
        BootEvent::Done => bar.stage("boot: done", true),
    })
    .map_err(|e| {
        bar.finish(match e.kind() {
            crate::failure::FailureKind::BadInput => "",
            _ => "boot failed",
        });
        fail(e)
    })?;
    let (results, _) = write_results(&opts, &report, started, t0)?;
    // The exit status, from the arch's one status (outcome.rs), on every path below.
    let statuses: Vec<_> = results.arches().map(|r| r.status).collect();
    let code = crate::outcome::exit_status(&statuses, None);
    // Nothing could be tested: one infrastructure failure, not a verdict on every module.
    if let Some(why) = report.infrastructure_failure() {
        bar.finish("boot failed");
        return Err(Failure::new(
            code,
            BootError::Infrastructure {
                why: why.to_string(),
                results: opts.out.join("boot.json"),
            },
        ));
    }
    bar.finish(&format!(
        "{} loaded / {} modules",
        report.summary.loaded, report.summary.modules
    ));
    match a.format {
        Format::Table => crate::out!("{}", crate::report::table::boot_table(&report)),
        Format::Json => crate::outln!("{}", crate::report::json::to_string(&report)),
    }
    Ok(code)
}

/// OUT/results.json as `run` writes it (`report`, `merge` of shards too, and baselines read
/// it), from a boot that started at `started` (`t0`); the results and where they are.
fn write_results(
    opts: &BootOptions,
    report: &crate::boot::BootReport,
    started: u64,
    t0: std::time::Instant,
) -> Result<(crate::results::RunResults, PathBuf), Failure> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let results =
        crate::results::RunResults::of_boot(command, started, report, t0.elapsed().as_secs_f64());
    let path = opts.out.join("results.json");
    crate::files::write_atomic(&path, &results).map_err(|e| {
        Failure::of(BootError::Io {
            path: path.clone(),
            source: e,
        })
    })?;
    Ok((results, path))
}

/// One guest a person uses (`boot --shell`, `repro`): the plan's loads, each said as it
/// ends, then the agent's shell on this terminal; on leaving it, what was loaded and how it
/// ended, written to OUT/results.json as `boot` writes it, and the exit status from the one
/// rule (outcome.rs).
pub fn shell_session(
    arch: &crate::arch::ArchDescriptor,
    mut opts: BootOptions,
) -> Result<i32, Failure> {
    let fail = |e: BootError| Failure::of(e);
    opts.interactive = true;
    // What happens in the shell is the person's to try again.
    opts.retries = 0;
    // One guest with every module: the shell sees them all.
    opts.batches = Some(1);
    opts.jobs = 1;
    let started = crate::files::unix_now();
    let t0 = std::time::Instant::now();
    crate::errln!(
        "booting {} under QEMU (its console goes to {}); the guest's shell follows the loads \
         (help lists its commands, poweroff leaves)",
        opts.kernel.display(),
        opts.out.join("console.log").display()
    );
    let report = run_boot(arch, &opts, &mut |event| match event {
        BootEvent::Planned { modules, .. } => {
            crate::errln!("  {modules} modules, in load order")
        }
        BootEvent::AgentStarted => crate::errln!("  the agent is running; its loads:"),
        _ => {}
    })
    .map_err(fail)?;
    let (results, results_path) = write_results(&opts, &report, started, t0)?;
    crate::outln!("\nmodverify: the guest is off. What was loaded, and how it ended:");
    crate::out!("{}", crate::report::table::boot_table(&report));
    if !report.shell.is_empty() {
        crate::outln!("In the shell:");
        for s in &report.shell {
            crate::outln!("  {s}");
        }
    }
    crate::outln!("results: {}", results_path.display());
    let statuses: Vec<_> = results.arches().map(|r| r.status).collect();
    Ok(crate::outcome::exit_status(&statuses, None))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_take_units_and_refuse_zero() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["0", "0s", "0ms", "", "s", "-1", "1.5s", "ten"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("0").unwrap_err().contains("positive"));
    }
}
