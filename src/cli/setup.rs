//! `modverify setup`: installs every host dependency with apt-get, idempotently.
use super::Failure;
use crate::arch::ArchRegistry;
use crate::host;
use clap::Args;
use std::process::Command;

#[derive(Args, Debug)]
pub struct SetupArgs {
    /// Only what these arches need (comma-separated or repeated), with the tools every arch
    /// needs [default: every arch]
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<String>,
    /// Only print what would be installed and built
    #[arg(long)]
    pub dry_run: bool,
    /// Only install packages: leave the compilers modverify builds itself (ia64's, from
    /// Debian's gcc-12-source) to the first build that needs one
    #[arg(long)]
    pub packages_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("`{cmd}` failed ({status}); run it by hand to see why")]
    Apt {
        cmd: String,
        status: crate::proc::Ended,
    },
    #[error("cannot run apt-get: {0} (modverify setup needs Debian's apt-get and root)")]
    Spawn(std::io::Error),
}

impl crate::failure::Classified for SetupError {
    /// apt-get failing or missing is the machine's failure.
    fn kind(&self) -> crate::failure::FailureKind {
        crate::failure::FailureKind::Infra
    }
}

pub fn run(a: SetupArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    // Ctrl-C stops apt-get or the compiler build (their own process groups) and removes the
    // half-built compiler.
    crate::proc::install_interrupt_handler();
    let arches = if a.arch.is_empty() {
        registry.arches.iter().collect()
    } else {
        a.arch
            .iter()
            .map(|n| registry.get(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::of)?
    };
    install_packages(&a, &arches)?;
    if a.packages_only {
        return Ok(crate::cli::exit::OK);
    }
    // The compilers Debian does not ship, built from its GCC source (once: a cached one is a
    // no-op).
    let cache = crate::files::cache_dir();
    for arch in arches
        .iter()
        .filter(|d| crate::cross_gcc::recipe(d).is_some())
    {
        if let crate::cross_gcc::State::Built(bin) = crate::cross_gcc::state(arch, &cache) {
            crate::outln!(
                "modverify setup: the {} cross compiler is built: {}",
                arch.name,
                bin.display()
            );
            continue;
        }
        if a.dry_run {
            crate::outln!(
                "modverify setup: would build the {} cross compiler",
                arch.name
            );
            continue;
        }
        let bin =
            crate::cross_gcc::ensure(arch, &cache, &mut |m| crate::outln!("modverify setup: {m}"))
                .map_err(Failure::of)?;
        if let Some(bin) = bin {
            crate::outln!(
                "modverify setup: the {} cross compiler is built: {}",
                arch.name,
                bin.display()
            );
        }
    }
    Ok(crate::cli::exit::OK)
}

fn install_packages(a: &SetupArgs, arches: &[&crate::arch::ArchDescriptor]) -> Result<(), Failure> {
    let all = host::packages(arches);
    let missing: Vec<&String> = all.iter().filter(|p| !host::installed(p)).collect();
    if missing.is_empty() {
        crate::outln!(
            "modverify setup: all {} packages already installed",
            all.len()
        );
        return Ok(());
    }
    crate::outln!(
        "modverify setup: installing {} of {} packages: {}",
        missing.len(),
        all.len(),
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    if a.dry_run {
        return Ok(());
    }
    let apt = |args: &[&str]| -> Result<(), Failure> {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = crate::proc::run(
            cmd,
            None,
            &mut |l: &str| crate::outln!("{l}"),
            crate::proc::Limits::default(),
        )
        .map_err(|e| Failure::of(SetupError::Spawn(e)))?;
        if !status.success() {
            return Err(Failure::of(SetupError::Apt {
                cmd: format!("apt-get {}", args.join(" ")),
                status,
            }));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().map(|s| s.as_str()));
    apt(&args)?;
    crate::outln!("modverify setup: packages installed");
    Ok(())
}
