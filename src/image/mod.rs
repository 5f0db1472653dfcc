//! The initramfs modverify boots: the guest agent as /init, every module (decompressed on the
//! host: the agent loads plain ELF with finit_module flags 0), and the plan — token, ksymtab
//! layout and the modules in load order.
pub mod agent;
pub mod cpio;
pub mod order;
pub mod sysroot;

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
    #[error(transparent)]
    Plugin(crate::compiler_plugin::PluginError),
    #[error("the guest agent's C library: {0}")]
    Sysroot(#[from] crate::debian_apt::AptError),
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
    /// Position in the whole run's load order (not in one batch's).
    pub index: usize,
    pub name: String,
    pub path: String,
    pub depends: Vec<String>,
    /// Positions (in the run's load order) of the modules that load before this one because
    /// it needs them: `depends=` and resolved `softdep pre:`.
    #[serde(skip)]
    pub needs: Vec<usize>,
    /// Size of the file as found (compressed or not): what sizes the guest's memory.
    #[serde(skip)]
    pub file_bytes: u64,
}

/// Every usable module (those that parsed) in load order, with notes about dependencies
/// that could not be honoured.
pub fn plan_modules(modules: &[ModuleInput]) -> (Vec<PlannedModule>, Vec<String>) {
    let usable: Vec<&ModuleInput> = modules.iter().filter(|m| m.facts.is_ok()).collect();
    let inputs: Vec<order::OrderInput> = usable
        .iter()
        .filter_map(|m| {
            let f = m.facts.as_ref().ok()?;
            Some(order::OrderInput {
                name: m.name(),
                depends: f.depends.clone(),
                softdep_pre: f.softdep_pre.clone(),
                aliases: f.aliases.clone(),
            })
        })
        .collect();
    let (order, notes, before) = order::load_order_with_edges(&inputs);
    let mut position = vec![0; order.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = pos;
    }
    let plan = order
        .iter()
        .enumerate()
        .map(|(index, &i)| PlannedModule {
            index,
            name: inputs[i].name.clone(),
            path: usable[i].path.clone(),
            depends: inputs[i].depends.clone(),
            needs: before[i].iter().map(|&j| position[j]).collect(),
            file_bytes: std::fs::metadata(&usable[i].path)
                .map(|m| m.len())
                .unwrap_or(0),
        })
        .collect();
    (plan, notes)
}

pub use crate::input::Compression;

/// What the kernel's configuration says about the payload it can take.
#[derive(Debug, Clone, Default)]
pub struct KernelAbilities {
    /// Known from a .config; `None`: no config at hand (then the guest probes).
    pub known: bool,
    /// `CONFIG_MODULE_DECOMPRESS=y` (5.17+): the method of `CONFIG_MODULE_COMPRESS_*`, the
    /// only one kernel/module/decompress.c is built with.
    pub module_decompress: Option<Compression>,
    /// Initramfs decompressors built in (`CONFIG_RD_*`).
    pub ramdisk: Vec<Compression>,
}

impl KernelAbilities {
    pub fn from_config(text: &str) -> Self {
        let c = crate::kernel_build::config::parse_config(text);
        let y = |k: &str| c.get(k).is_some_and(|v| v == "y");
        let method = [
            ("CONFIG_MODULE_COMPRESS_XZ", Compression::Xz),
            ("CONFIG_MODULE_COMPRESS_ZSTD", Compression::Zstd),
            ("CONFIG_MODULE_COMPRESS_GZIP", Compression::Gzip),
        ]
        .into_iter()
        .find(|(k, _)| y(k))
        .map(|(_, m)| m);
        KernelAbilities {
            known: true,
            module_decompress: method.filter(|_| y("CONFIG_MODULE_DECOMPRESS")),
            ramdisk: [
                ("CONFIG_RD_ZSTD", Compression::Zstd),
                ("CONFIG_RD_GZIP", Compression::Gzip),
                ("CONFIG_RD_XZ", Compression::Xz),
            ]
            .into_iter()
            .filter(|(k, _)| y(k))
            .map(|(_, m)| m)
            .collect(),
        }
    }
}

/// How the modules travel: as the kernel will take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModulePayload {
    /// Every module decompressed on the host (finit_module flags 0: any kernel).
    Decompressed,
    /// Modules compressed with this method go as they are, for the kernel to decompress
    /// (`MODULE_INIT_COMPRESSED_FILE`); others are decompressed on the host.
    KernelDecompresses(Compression),
}

pub struct InitramfsOptions<'a> {
    pub token: &'a str,
    pub module_timeout_s: u32,
    pub cache: &'a Path,
    pub payload: ModulePayload,
    /// Compress the archive with this (a method the kernel's `CONFIG_RD_*` accepts).
    pub compression: Option<Compression>,
    /// Read the running export table in this boot (one boot per kernel is enough).
    pub read_table: bool,
}

pub struct Initramfs {
    pub path: PathBuf,
    pub plan: Vec<PlannedModule>,
    pub notes: Vec<String>,
    /// The archive's size as QEMU loads it, and unpacked (what the guest's rootfs holds).
    pub file_bytes: u64,
    pub unpacked_bytes: u64,
    /// Modules handed to the kernel compressed.
    pub kernel_decompressed: usize,
}

/// finit_module's MODULE_INIT_COMPRESSED_FILE.
const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// The writer under the cpio stream: plain or compressed, finished explicitly.
enum Sink {
    Plain(std::io::BufWriter<std::fs::File>),
    Gzip(flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>),
    Zstd(zstd::stream::write::Encoder<'static, std::io::BufWriter<std::fs::File>>),
}

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(b),
            Sink::Gzip(w) => w.write(b),
            Sink::Zstd(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

impl Sink {
    fn new(file: std::fs::File, c: Option<Compression>) -> std::io::Result<Sink> {
        let w = std::io::BufWriter::with_capacity(1 << 20, file);
        Ok(match c {
            None | Some(Compression::Xz) => Sink::Plain(w),
            // Level 1: the guest's rootfs is what matters, and the host's time is the run's.
            Some(Compression::Gzip) => Sink::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::fast(),
            )),
            Some(Compression::Zstd) => {
                let mut e = zstd::stream::write::Encoder::new(w, 3)?;
                // The kernel's unzstd needs the content size or a bounded window: keep the
                // default window of level 3 (well under the 8 MiB the kernel takes).
                e.include_checksum(false)?;
                Sink::Zstd(e)
            }
        })
    }

    fn finish(self) -> std::io::Result<()> {
        use std::io::Write;
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(e) => e.finish()?.flush(),
            Sink::Zstd(e) => e.finish()?.flush(),
        }
    }
}

/// Writes the initramfs for `plan` (a whole run or one batch, in load order) into `path`.
pub fn write_initramfs(
    arch: &ArchDescriptor,
    plan: &[PlannedModule],
    notes: &[String],
    opts: &InitramfsOptions<'_>,
    path: &Path,
) -> Result<Initramfs, ImageError> {
    use rayon::prelude::*;
    let agent = agent::agent_binary(arch, opts.cache)?;
    let agent_bytes = std::fs::read(&agent).map_err(|e| ImageError::io(&agent, e))?;
    let file = std::fs::File::create(path).map_err(|e| ImageError::io(path, e))?;
    let io = |e| ImageError::io(path, e);
    let mut w = cpio::CpioWriter::new(Sink::new(file, opts.compression).map_err(io)?);
    for d in ["dev", "proc", "sys", "modverify", "modverify/modules"] {
        w.dir(d).map_err(io)?;
    }
    w.char_dev("dev/console", 5, 1).map_err(io)?;
    w.file("init", 0o755, &agent_bytes).map_err(io)?;
    let layout = match arch.elf.ksymtab {
        KsymtabLayout::Absolute => "absolute",
        KsymtabLayout::Prel32 => "prel32",
    };
    let mut plan_text = format!(
        "token {}\nlayout {layout}\nmodule_timeout {}\n",
        opts.token, opts.module_timeout_s
    );
    if !opts.read_table {
        plan_text += "table none\n";
    }
    if let Some(off) = arch.build.as_ref().and_then(|b| b.kernel_va_minus_pa) {
        plan_text += &format!("devmem_offset {off:x}\n");
    }
    if arch.build.as_ref().is_some_and(|b| b.kcore_split4) {
        plan_text += "kcore_split4\n";
    }
    let mut kernel_decompressed = 0;
    // Read (and where needed decompress) in parallel, a slice at a time so memory stays
    // bounded; write in load order.
    for chunk in plan.chunks(64) {
        let bodies: Vec<Result<(Vec<u8>, bool), ImageError>> = chunk
            .par_iter()
            .map(|m| {
                let raw =
                    std::fs::read(&m.path).map_err(|e| ImageError::io(Path::new(&m.path), e))?;
                let method = Compression::of(&raw);
                match (opts.payload, method) {
                    (_, None) => Ok((raw, false)),
                    (ModulePayload::KernelDecompresses(k), Some(c)) if k == c => Ok((raw, true)),
                    _ => crate::input::decompress(raw)
                        .map(|b| (b, false))
                        .map_err(|e| ImageError::Tool {
                            cmd: format!("read {}", m.path),
                            output: e,
                        }),
                }
            })
            .collect();
        for (m, body) in chunk.iter().zip(bodies) {
            let (bytes, compressed) = body?;
            let suffix = match (compressed, Compression::of(&bytes)) {
                (true, Some(c)) => format!(".{}", c.name()),
                _ => String::new(),
            };
            let guest_path = format!("modverify/modules/{}-{}.ko{suffix}", m.index, m.name);
            w.file(&guest_path, 0o644, &bytes).map_err(io)?;
            let flags = if compressed {
                kernel_decompressed += 1;
                MODULE_INIT_COMPRESSED_FILE
            } else {
                0
            };
            plan_text += &format!("module /{guest_path} {} {flags}\n", m.name);
        }
    }
    w.file("modverify/plan", 0o644, plan_text.as_bytes())
        .map_err(io)?;
    let unpacked_bytes = w.written();
    let out = w.finish().map_err(io)?;
    out.finish().map_err(io)?;
    let file_bytes = std::fs::metadata(path).map_err(io)?.len();
    Ok(Initramfs {
        path: path.to_path_buf(),
        plan: plan.to_vec(),
        notes: notes.to_vec(),
        file_bytes,
        unpacked_bytes,
        kernel_decompressed,
    })
}
