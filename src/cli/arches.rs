//! `modverify arches`: every descriptor, and whether this machine can build and boot it.
use super::Failure;
use crate::arch::ArchRegistry;
use clap::Args;

#[derive(Args, Debug)]
#[command(
    after_help = "Lists every descriptor (arches/*.yaml, plus --arch-dir) with what can be done for it here: check, build (cross compiler installed?), boot (QEMU installed?), and why not.\n\
\n\
Examples:\n  \
modverify arches\n  \
modverify arches --default   # the default set, one name a line\n  \
modverify arches --format json | jq '.[] | select(.boot == \"ok\")'\n  \
modverify --arch-dir my-arches/ arches\n\
\n\
Exit status: 0, or 2 if a descriptor is invalid."
)]
pub struct ArchesArgs {
    /// table for people, json for scripts (one object per arch: check, build, boot status)
    #[arg(long, value_enum, default_value_t = super::check::Format::Table)]
    pub format: super::check::Format,
    /// Print only the names of the default arches (descriptors with `default: true`), one a
    /// line: what `modverify run` does with no --arch, for scripts
    #[arg(long)]
    pub default: bool,
}

/// One arch's status for `--format json`.
#[derive(serde::Serialize)]
struct ArchStatus<'a> {
    name: &'a str,
    aliases: &'a [String],
    kernel_arch: &'a str,
    e_machine: u16,
    class: u8,
    endian: crate::arch::Endian,
    /// Always "ok": the static check needs nothing but the descriptor.
    check: &'static str,
    /// "ok", "missing", "not built" (a compiler `modverify setup` builds), or "unsupported".
    build: &'static str,
    boot: &'static str,
    /// Debian packages to install for what is missing.
    missing_packages: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsupported_build: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsupported_boot: Option<&'a str>,
}

/// What this machine can do for one descriptor: (build, boot, packages to install).
fn status(d: &crate::arch::ArchDescriptor) -> (&'static str, &'static str, Vec<String>) {
    let mut missing = Vec::new();
    let cache = crate::files::cache_dir();
    let build = if d.unsupported.build.is_some() || d.build.is_none() {
        "unsupported"
    } else if let crate::cross_gcc::State::NotBuilt { missing: m } =
        crate::cross_gcc::state(d, &cache)
    {
        // A compiler modverify builds itself (`modverify setup` does, once).
        if m.is_empty() {
            "not built"
        } else {
            missing.extend(m);
            "missing"
        }
    } else if crate::cross_gcc::have_gcc(d, &cache) {
        match d.build.as_ref().and_then(|b| b.gcc_plugin.as_ref()) {
            Some(p) if !crate::compiler_plugin::available(d) => {
                missing.extend(p.packages.iter().cloned());
                "missing"
            }
            _ => "ok",
        }
    } else {
        missing.extend(d.toolchain_packages.iter().cloned());
        "missing"
    };
    let boot = match crate::host::boots_here(d) {
        Ok(_) => "ok",
        Err(crate::host::CannotBoot::Unsupported(_)) => "unsupported",
        Err(crate::host::CannotBoot::NotInstalled { packages, .. }) => {
            missing.extend(packages);
            "missing"
        }
    };
    (build, boot, missing)
}

pub fn run(a: ArchesArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    if a.default {
        for d in registry.arches.iter().filter(|d| d.default) {
            crate::outln!("{}", d.name);
        }
        return Ok(listed(registry));
    }
    if matches!(a.format, super::check::Format::Json) {
        let list: Vec<ArchStatus> = registry
            .arches
            .iter()
            .map(|d| {
                let (build, boot, missing) = status(d);
                ArchStatus {
                    name: &d.name,
                    aliases: &d.aliases,
                    kernel_arch: &d.kernel_arch,
                    e_machine: d.elf.machine,
                    class: d.elf.class,
                    endian: d.elf.endian,
                    check: "ok",
                    build,
                    boot,
                    missing_packages: missing,
                    unsupported_build: d.unsupported.build.as_deref(),
                    unsupported_boot: d.unsupported.boot.as_deref(),
                }
            })
            .collect();
        crate::outln!("{}", crate::report::json::to_string(&list));
        return Ok(listed(registry));
    }
    crate::outln!(
        "{:10} {:10} {:6} {:12} {:12} install / notes",
        "arch",
        "ARCH=",
        "check",
        "build",
        "boot"
    );
    for d in &registry.arches {
        let (build, boot, missing) = status(d);
        // What to do about it: the packages to install, else why a stage cannot be done.
        let notes = if !missing.is_empty() {
            format!("apt-get install {}", missing.join(" "))
        } else if build == "not built" {
            format!(
                "`modverify setup --arch {}` builds its compiler (once, ~{} CPU-minutes)",
                d.name,
                crate::cross_gcc::recipe(d).map_or(0, |r| r.cpu_minutes)
            )
        } else {
            d.unsupported
                .boot
                .as_deref()
                .or(d.unsupported.build.as_deref())
                .map(|s| s.split(". ").next().unwrap_or(s).to_string())
                .unwrap_or_default()
        };
        crate::outln!(
            "{:10} {:10} {:6} {:12} {:12} {}",
            d.name,
            d.kernel_arch,
            "ok",
            build,
            boot,
            notes
        );
    }
    Ok(listed(registry))
}

/// 0, or 2 when a descriptor could not be read (it is said above the list).
fn listed(registry: &ArchRegistry) -> i32 {
    if registry.broken.is_empty() {
        crate::cli::exit::OK
    } else {
        crate::cli::exit::USAGE
    }
}
