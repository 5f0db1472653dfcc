//! The guest agent: cross-compiled per arch as a static binary from `images/agent/agent.c`
//! (embedded in modverify), cached by a hash of its source, compiler and flags, so it is
//! rebuilt exactly when one of those changes.
use super::ImageError;
use crate::arch::ArchDescriptor;
use std::path::PathBuf;
use std::process::Command;

pub const AGENT_SOURCE: &str = include_str!("../../images/agent/agent.c");

pub fn agent_binary(arch: &ArchDescriptor, cache: &std::path::Path) -> Result<PathBuf, ImageError> {
    // Guests booted side by side ask at once: one builds, the others wait and reuse it.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let cc = format!("{}gcc", arch.cross_compile);
    let ldflags = arch
        .build
        .as_ref()
        .map(|b| b.guest_ldflags.clone())
        .unwrap_or_default();
    let mut ask = Command::new(&cc);
    ask.arg("--version");
    let (_, version) = crate::proc::output(ask).map_err(|_| ImageError::Missing {
        what: cc.clone(),
        package: arch.toolchain_packages.join(" "),
    })?;
    // The compiler bug a plugin works round is in the agent's code as much as the kernel's.
    let plugin = crate::compiler_plugin::flag(arch, cache).map_err(ImageError::Plugin)?;
    let sysroot = super::sysroot::guest_sysroot(arch, cache)?;
    let mut key = format!("{AGENT_SOURCE}\n{version}\n{ldflags:?}");
    // (Nothing added where neither is used: those arches keep their cached agents.)
    if let Some(p) = &plugin {
        key += &format!("\n{p}");
    }
    if let Some(s) = &sysroot {
        key += &format!("\n{}", s.versions);
    }
    let dir = cache.join("agent").join(format!(
        "{}-{}",
        arch.name,
        crate::kernel_build::short_hash(&key)
    ));
    let bin = dir.join("init");
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir).map_err(|e| ImageError::io(&dir, e))?;
    let src = dir.join("agent.c");
    std::fs::write(&src, AGENT_SOURCE).map_err(|e| ImageError::io(&src, e))?;
    // Two modverify processes may build the same agent at once: each writes its own file.
    let tmp = dir.join(format!("init.tmp.{}", std::process::id()));
    // Asks the compiler where its own headers are: only when compiling, not for a cached agent.
    let libc = sysroot.as_ref().map(|s| s.cc_args(&cc)).unwrap_or_default();
    let mut cmd = Command::new(&cc);
    cmd.args(&libc)
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(&ldflags)
        .args(&plugin);
    let line = crate::proc::command_line(&cmd);
    let (ended, said) = crate::proc::output(cmd).map_err(|e| ImageError::Spawn {
        cmd: cc.clone(),
        source: e,
    })?;
    if !ended.success() {
        return Err(ImageError::Tool {
            cmd: line,
            output: said,
        });
    }
    std::fs::rename(&tmp, &bin).map_err(|e| ImageError::io(&bin, e))?;
    Ok(bin)
}
