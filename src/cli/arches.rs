//! `modverify arches`: every descriptor, and whether this machine can build and boot it.
use super::Failure;
use crate::arch::ArchRegistry;
use crate::host::on_path;
use clap::Args;

#[derive(Args, Debug)]
#[command(
    after_help = "Lists every descriptor (arches/*.yaml, plus --arch-dir) with what can be done \
for it here: check, build (cross compiler installed?), boot (QEMU installed?), and why not.\n\n\
Examples:\n  modverify arches\n  modverify --arch-dir my-arches/ arches\n\nExit status: 0, or 2 \
if a descriptor is invalid."
)]
pub struct ArchesArgs {}

pub fn run(_a: ArchesArgs, registry: &ArchRegistry) -> Result<i32, Failure> {
    println!(
        "{:10} {:9} {:26} {:24} notes",
        "arch", "ARCH=", "toolchain", "emulator"
    );
    for d in &registry.arches {
        let cc = format!("{}gcc", d.cross_compile);
        let tool = match &d.unsupported.build {
            Some(_) => "n/a".to_string(),
            None if on_path(&cc) => format!("{cc} ok"),
            None => format!("missing ({})", d.toolchain_packages.join(" ")),
        };
        let emu = match &d.qemu {
            Some(q) if on_path(&q.binary) => format!("{} ok", q.binary),
            Some(q) => format!("missing ({})", q.packages.join(" ")),
            None => "n/a".into(),
        };
        let notes = d
            .unsupported
            .boot
            .as_deref()
            .or(d.unsupported.build.as_deref())
            .map(|s| s.split(". ").next().unwrap_or(s))
            .unwrap_or("");
        println!(
            "{:10} {:9} {:26} {:24} {}",
            d.name, d.kernel_arch, tool, emu, notes
        );
    }
    Ok(crate::exit::OK)
}
