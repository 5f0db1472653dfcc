//! The initramfs modverify boots: the guest agent as /init, every module (decompressed on the
//! host: the agent loads plain ELF with finit_module flags 0), and the plan — token, ksymtab
//! layout and the modules in load order.
pub mod agent;
pub mod cpio;
pub mod order;

use crate::arch::{ArchDescriptor, KsymtabLayout};
use crate::check::modules::ModuleInput;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what} is missing: install Debian's {package} (or {hint})", hint = crate::host::INSTALL_HINT)]
    Missing { what: String, package: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` failed:\n{output}")]
    Tool { cmd: String, output: String },
}

impl ImageError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One module as the guest will load it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedModule {
    pub index: usize,
    pub name: String,
    pub path: String,
    pub depends: Vec<String>,
}

pub struct Initramfs {
    pub path: PathBuf,
    pub plan: Vec<PlannedModule>,
    pub notes: Vec<String>,
}

/// Writes the initramfs for `modules` (only those that parsed) into `path`.
pub fn write_initramfs(
    arch: &ArchDescriptor,
    modules: &[ModuleInput],
    token: &str,
    module_timeout_s: u32,
    cache: &Path,
    path: &Path,
) -> Result<Initramfs, ImageError> {
    let agent = agent::agent_binary(arch, cache)?;
    let agent_bytes = std::fs::read(&agent).map_err(|e| ImageError::io(&agent, e))?;
    let usable: Vec<&ModuleInput> = modules.iter().filter(|m| m.facts.is_ok()).collect();
    let inputs: Vec<order::OrderInput> = usable
        .iter()
        .map(|m| {
            let f = m.facts.as_ref().unwrap();
            order::OrderInput {
                name: f.name.clone().unwrap_or_else(|| m.stem.clone()),
                depends: f.depends.clone(),
                softdep_pre: f.softdep_pre.clone(),
                aliases: f.aliases.clone(),
            }
        })
        .collect();
    let (order, notes) = order::load_order(&inputs);
    let mut w = cpio::CpioWriter::new(std::io::BufWriter::new(
        std::fs::File::create(path).map_err(|e| ImageError::io(path, e))?,
    ));
    let io = |e| ImageError::io(path, e);
    for d in ["dev", "proc", "sys", "modverify", "modverify/modules"] {
        w.dir(d).map_err(io)?;
    }
    w.char_dev("dev/console", 5, 1).map_err(io)?;
    w.file("init", 0o755, &agent_bytes).map_err(io)?;
    let layout = match arch.elf.ksymtab {
        KsymtabLayout::Absolute => "absolute",
        KsymtabLayout::Prel32 => "prel32",
    };
    let mut plan_text =
        format!("token {token}\nlayout {layout}\nmodule_timeout {module_timeout_s}\n");
    if let Some(off) = arch.build.as_ref().and_then(|b| b.kernel_va_minus_pa) {
        plan_text += &format!("devmem_offset {off:x}\n");
    }
    let mut plan = Vec::new();
    for (index, &i) in order.iter().enumerate() {
        let m = usable[i];
        let name = &inputs[i].name;
        let bytes =
            crate::input::read_module(Path::new(&m.path)).map_err(|e| ImageError::Tool {
                cmd: format!("read {}", m.path),
                output: e,
            })?;
        let guest_path = format!("modverify/modules/{index}-{name}.ko");
        w.file(&guest_path, 0o644, &bytes).map_err(io)?;
        plan_text += &format!("module /{guest_path} {name}\n");
        plan.push(PlannedModule {
            index,
            name: name.clone(),
            path: m.path.clone(),
            depends: inputs[i].depends.clone(),
        });
    }
    w.file("modverify/plan", 0o644, plan_text.as_bytes())
        .map_err(io)?;
    let mut out = w.finish().map_err(io)?;
    std::io::Write::flush(&mut out).map_err(io)?;
    Ok(Initramfs {
        path: path.to_path_buf(),
        plan,
        notes,
    })
}
