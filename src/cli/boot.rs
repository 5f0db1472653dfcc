//! `modverify boot`: boot a kernel under QEMU, load every module, record the kernel's verdicts.
use super::check::Format;
use super::Failure;
use crate::arch::ArchRegistry;
use crate::boot::{default_out, prepare, run_boot, BootError, BootOptions};
use crate::check::Policy;
use crate::report::progress::Progress;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Parses `90`, `90s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, mult) = match s.trim().chars().last() {
        Some('s') => (&s[..s.len() - 1], 1),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('h') => (&s[..s.len() - 1], 3600),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .map(|n| Duration::from_secs(n * mult))
        .map_err(|_| format!("`{s}` is not a duration (e.g. 90, 90s, 2m)"))
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  modverify boot --arch sparc64 --build ~/.cache/modverify/builds/sparc64-tinyconfig-XXXX\n  \
modverify boot --arch riscv64 --kernel Image --modules lib/modules/6.1.0/kernel --vmlinux vmlinux\n  \
modverify boot --arch alpha --build DIR --shell\n\n\
Exit status: 0 every module loaded and unloaded and the running export table equals the static one,\n\
1 findings (a module failed, crashed or hung; the kernel did not boot; prediction and kernel disagree),\n\
2 bad input, 4 QEMU or a tool failed, 130 interrupted."
)]
pub struct BootArgs {
    #[arg(long)]
    pub arch: String,
    /// A `modverify build` directory (kernel image, vmlinux, Module.symvers, modules)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kernel", "modules"])]
    pub build: Option<PathBuf>,
    /// A prebuilt kernel image to boot (bring your own kernel)
    #[arg(long, value_name = "IMAGE", requires = "modules")]
    pub kernel: Option<PathBuf>,
    /// Its modules (a directory, e.g. lib/modules/VERSION/kernel; compressed modules are fine)
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    /// The kernel's ELF, for the static prediction and the export-table comparison
    #[arg(long, value_name = "FILE")]
    pub vmlinux: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub symvers: Option<PathBuf>,
    /// Time for the kernel to boot to the agent
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Time one module may take to load before it counts as hung
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub module_timeout: Duration,
    /// Time without console output before the guest counts as hung
    #[arg(long, value_name = "DURATION", default_value = "40s", value_parser = parse_duration)]
    pub silence: Duration,
    /// Print the QEMU command line (shell-quoted) and the initramfs it needs, and exit
    #[arg(long)]
    pub show_command: bool,
    /// After the loads, stay in a shell in the guest (insmod, rmmod, lsmod, dmesg, poweroff)
    #[arg(long)]
    pub shell: bool,
    /// Results directory [default: BUILD/boot, or a cache directory]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Policy::Debian)]
    pub policy: Policy,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn options(a: &BootArgs, arch: &crate::arch::ArchDescriptor) -> Result<BootOptions, BootError> {
    let (kernel, modules, vmlinux, symvers) = match (&a.build, &a.kernel) {
        (Some(dir), _) => {
            let m = crate::build::BuildManifest::read(dir).map_err(BootError::BadInput)?;
            let art = m.artifacts.ok_or_else(|| {
                BootError::BadInput(format!(
                    "{}: the build did not finish; rebuild it",
                    dir.display()
                ))
            })?;
            if m.arch != arch.name {
                return Err(BootError::BadInput(format!(
                    "{}: built for {}, not {}",
                    dir.display(),
                    m.arch,
                    arch.name
                )));
            }
            let kernel = if arch.build.as_ref().is_some_and(|b| b.vmlinux_boots) {
                art.vmlinux.clone()
            } else {
                art.image.clone()
            };
            (
                kernel,
                art.modules,
                Some(art.vmlinux),
                Some(art.module_symvers),
            )
        }
        (None, Some(k)) => (
            k.clone(),
            a.modules.iter().cloned().collect(),
            a.vmlinux.clone(),
            a.symvers.clone(),
        ),
        (None, None) => {
            return Err(BootError::BadInput(
                "give --build DIR, or --kernel IMAGE with --modules DIR".into(),
            ))
        }
    };
    Ok(BootOptions {
        out: a
            .out
            .clone()
            .unwrap_or_else(|| default_out(a.build.as_deref(), &kernel)),
        kernel,
        modules,
        vmlinux,
        symvers,
        boot_timeout: a.timeout,
        module_timeout: a.module_timeout,
        silence: a.silence,
        policy: a.policy,
        extra_append: if a.shell {
            "modverify.shell=1".into()
        } else {
            String::new()
        },
    })
}

pub fn run(a: BootArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    crate::proc::install_interrupt_handler();
    let arch = registry
        .get(&a.arch)
        .map_err(|e| Failure::new(crate::exit::USAGE, e))?;
    let fail = |e: BootError| {
        let c = e.exit_code();
        Failure::new(c, e)
    };
    if arch.qemu.is_none() {
        return Err(fail(BootError::Unsupported {
            arch: arch.name.clone(),
            reason: arch.unsupported.boot.clone().unwrap_or_default(),
        }));
    }
    let opts = options(&a, arch).map_err(fail)?;
    if a.show_command || a.shell {
        let crate::boot::Prepared {
            image,
            qemu_command: cmd,
            ..
        } = prepare(arch, &opts).map_err(fail)?;
        if a.show_command {
            println!("{cmd}");
            eprintln!(
                "# initramfs with the agent and {} modules: {}",
                image.plan.len(),
                image.path.display()
            );
            return Ok(crate::exit::OK);
        }
        // Interactive: QEMU owns the terminal; quit with `poweroff` in the guest or Ctrl-A X.
        let status = crate::qemu::command::QemuCommand::new(
            arch,
            &opts.kernel,
            &image.path,
            &opts.extra_append,
        )
        .expect("qemu facts")
        .command()
        .status()
        .map_err(|e| {
            fail(BootError::Qemu(crate::qemu::QemuError::Spawn {
                binary: "qemu".into(),
                source: e,
            }))
        })?;
        return Ok(if status.success() {
            crate::exit::OK
        } else {
            crate::exit::INFRA
        });
    }
    let progress = Progress::new();
    let bar = progress.arch(&arch.name);
    let n = std::cell::Cell::new(0usize);
    bar.stage("boot: starting QEMU", true);
    let report = run_boot(arch, &opts, &mut |kind| match kind {
        "hello" => bar.stage("boot: agent started, loading modules", true),
        "result" => {
            n.set(n.get() + 1);
            bar.stage(&format!("boot: loaded {} modules", n.get()), false);
        }
        "table" => bar.stage("boot: reading the running export table", true),
        "unload" => bar.stage("boot: unloading", false),
        "done" => bar.stage("boot: done", true),
        _ => {}
    })
    .map_err(|e| {
        bar.finish("boot failed");
        fail(e)
    })?;
    bar.finish(&format!(
        "{} loaded / {} modules",
        report.summary.loaded, report.summary.modules
    ));
    match a.format {
        Format::Table => print!("{}", crate::report::table::boot_table(&report)),
        Format::Json => println!("{}", crate::report::json::to_string(&report)),
    }
    if crate::proc::interrupted() {
        return Ok(crate::exit::INTERRUPTED);
    }
    Ok(if report.clean() {
        crate::exit::OK
    } else {
        crate::exit::FINDINGS
    })
}
