//! A GCC plugin an arch descriptor asks the cross compiler to load (`build.gcc_plugin`), for
//! the kernel, its modules and the guest agent alike: the way round a compiler bug that no
//! command-line option reaches (sh4: Debian 12's gcc 12.2 drops the test before a branch in
//! its `sh_treg_combine` pass, and target passes cannot be turned off with `-fdisable-`).
//!
//! The plugin is C++ source held in the descriptor, compiled for the host against the cross
//! compiler's plugin headers and cached by a hash of source, both compilers' versions and the
//! headers' place, so it is rebuilt when one of those changes.
use crate::arch::{ArchDescriptor, GccPlugin};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{what} is missing: install Debian's {package} (or {hint})", hint = crate::host::INSTALL_HINT)]
    Missing { what: String, package: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("the GCC plugin of arches/{arch}.yaml does not compile: `{cmd}` failed:\n{output}")]
    Tool {
        arch: String,
        cmd: String,
        output: String,
    },
}

/// The host C++ compiler plugins are built with (GCC's plugin ABI is C++).
const HOST_CXX: &str = "g++";

/// Where the cross compiler keeps its plugin headers, if they are installed.
fn plugin_headers(arch: &ArchDescriptor) -> Option<PathBuf> {
    let mut ask = Command::new(format!("{}gcc", arch.cross_compile));
    ask.arg("-print-file-name=plugin");
    let dir = PathBuf::from(crate::proc::stdout_if_ok(ask)?.trim());
    dir.join("include/gcc-plugin.h")
        .exists()
        .then(|| dir.join("include"))
}

/// Whether this machine can build the arch's plugin (true when it asks for none).
pub fn available(arch: &ArchDescriptor) -> bool {
    match arch.build.as_ref().and_then(|b| b.gcc_plugin.as_ref()) {
        None => true,
        Some(_) => crate::host::on_path(HOST_CXX) && plugin_headers(arch).is_some(),
    }
}

/// The flag that loads the arch's plugin (`-fplugin=…`), building it first if needed; `None`
/// when the descriptor asks for no plugin.
pub fn flag(arch: &ArchDescriptor, cache: &Path) -> Result<Option<String>, PluginError> {
    let Some(plugin) = arch.build.as_ref().and_then(|b| b.gcc_plugin.as_ref()) else {
        return Ok(None);
    };
    let so = build(arch, plugin, cache)?;
    Ok(Some(format!("-fplugin={}", so.display())))
}

fn build(arch: &ArchDescriptor, plugin: &GccPlugin, cache: &Path) -> Result<PathBuf, PluginError> {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let missing = || PluginError::Missing {
        what: format!("GCC plugin support for {}gcc", arch.cross_compile),
        package: plugin.packages.join(" "),
    };
    if !crate::host::on_path(HOST_CXX) {
        return Err(missing());
    }
    let headers = plugin_headers(arch).ok_or_else(missing)?;
    let version = |tool: String| {
        let mut ask = Command::new(tool);
        ask.arg("--version");
        crate::proc::stdout_if_ok(ask).unwrap_or_default()
    };
    let key = format!(
        "{}\n{}\n{}\n{}",
        plugin.source,
        version(format!("{}gcc", arch.cross_compile)),
        version(HOST_CXX.into()),
        headers.display()
    );
    let dir = cache.join("plugins");
    let so = dir.join(format!(
        "{}-{}.so",
        arch.name,
        crate::files::short_hash(&key)
    ));
    if so.exists() {
        return Ok(so);
    }
    std::fs::create_dir_all(&dir).map_err(|e| PluginError::Io {
        path: dir.clone(),
        source: e,
    })?;
    // Another modverify may build the same plugin at once: each writes its own files, and
    // the finished plugin is renamed into place whole.
    let stem = format!("{}.tmp.{}", so.display(), std::process::id());
    let src = PathBuf::from(format!("{stem}.cc"));
    std::fs::write(&src, &plugin.source).map_err(|e| PluginError::Io {
        path: src.clone(),
        source: e,
    })?;
    let tmp = PathBuf::from(format!("{stem}.so"));
    let mut cmd = Command::new(HOST_CXX);
    cmd.args(["-shared", "-fPIC", "-fno-rtti", "-O2", "-I"])
        .arg(&headers)
        .arg("-o")
        .arg(&tmp)
        .arg(&src);
    let line = crate::proc::command_line(&cmd);
    let ran = crate::proc::output(cmd);
    let _ = std::fs::remove_file(&src);
    let (ended, said) = ran.map_err(|e| PluginError::Spawn {
        cmd: HOST_CXX.into(),
        source: e,
    })?;
    if !ended.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(PluginError::Tool {
            arch: arch.name.clone(),
            cmd: line,
            output: said,
        });
    }
    std::fs::rename(&tmp, &so).map_err(|e| PluginError::Io {
        path: so.clone(),
        source: e,
    })?;
    Ok(so)
}
