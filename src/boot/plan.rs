//! Planning a boot: the modules in load order with what each needs, this run's share split
//! into batches, the payload the kernel takes, the kernel file QEMU is given.
use super::kernel::{bootable_kernel, kernel_mismatch};
use super::{BootError, BootOptions};
use crate::arch::ArchDescriptor;
use crate::batch::{self, Batch};
use crate::check::stage::load_module;
use crate::image::{
    Compression, Initramfs, InitramfsOptions, KernelAbilities, ModulePayload, PlannedModule,
};
use std::path::{Path, PathBuf};

fn token() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0) as u64;
    format!(
        "{:016x}",
        u64::from_le_bytes(b) ^ t.rotate_left(17) ^ std::process::id() as u64
    )
}

/// What `prepare` worked out: the modules in load order, this run's share of them split into
/// batches, the payload the kernel takes, and the parsed modules (reused for the static
/// prediction).
pub struct Prepared {
    pub token: String,
    pub kernel: PathBuf,
    pub plan: Vec<PlannedModule>,
    pub owned: usize,
    /// This run's batches (a shard's share of them), and how many the whole set makes.
    pub batches: Vec<Batch>,
    pub total_batches: usize,
    pub payload: ModulePayload,
    pub ramdisk: Option<Compression>,
    /// Guest memory for each batch (MiB), and the most the machine (or --memory) allows.
    pub memory_mb: Vec<u64>,
    pub ceiling_mb: u64,
    pub notes: Vec<String>,
    /// This shard's share of the run (`--shard`), said apart from the notes.
    pub shard_note: Option<String>,
    /// Files another file of their name takes precedence over: not loaded, reported so.
    pub shadowed: Vec<crate::depmod::Shadowed>,
}

impl Prepared {
    /// Where batch `b` (of this run's) keeps its files: numbered as in the whole set.
    pub(super) fn batch_dir(&self, out: &Path, b: usize) -> PathBuf {
        if self.total_batches == 1 {
            out.to_path_buf()
        } else {
            out.join(format!("batch-{}", self.batches[b].number + 1))
        }
    }

    /// Writes batch `b`'s initramfs.
    pub fn initramfs(
        &self,
        arch: &ArchDescriptor,
        opts: &BootOptions,
        b: usize,
        payload: ModulePayload,
    ) -> Result<Initramfs, BootError> {
        let dir = self.batch_dir(&opts.out, b);
        std::fs::create_dir_all(&dir).map_err(|e| BootError::Io {
            path: dir.clone(),
            source: e,
        })?;
        let plan: Vec<PlannedModule> = self.batches[b]
            .loads
            .iter()
            .map(|&i| self.plan[i].clone())
            .collect();
        let io = InitramfsOptions {
            token: &self.token,
            // The agent counts whole seconds: round up, never down to 0.
            module_timeout_s: opts.module_timeout.as_millis().div_ceil(1000).max(1) as u32,
            cache: &crate::files::cache_dir(),
            payload,
            compression: match payload {
                // Compressed modules do not shrink again; plain ones do, a lot.
                ModulePayload::KernelDecompresses(_) => None,
                ModulePayload::Decompressed => self.ramdisk,
            },
            // One boot of the kernel reads its export table: the set's first.
            read_table: self.batches[b].number == 0,
        };
        let name = match io.compression {
            Some(Compression::Zstd) => "initramfs.cpio.zst",
            Some(Compression::Gzip) => "initramfs.cpio.gz",
            _ => "initramfs.cpio",
        };
        Ok(crate::image::write_initramfs(
            arch,
            &plan,
            &[],
            &io,
            &dir.join(name),
        )?)
    }

    /// The QEMU command line for batch `b` (for --show-command).
    pub fn qemu_command(
        &self,
        arch: &ArchDescriptor,
        opts: &BootOptions,
        initrd: &Path,
        b: usize,
    ) -> String {
        let mut cmd =
            crate::qemu::command::QemuCommand::new(arch, &self.kernel, initrd, &opts.extra_append)
                .expect("qemu facts checked");
        cmd.memory_mb = Some(self.memory_mb[b]);
        cmd.show()
    }
}

/// The kernel's .config: given, or beside the kernel as Debian and `make install` leave it
/// (`config-VERSION` next to `vmlinuz-VERSION`, or `config` in the same directory).
fn find_kernel_config(opts: &BootOptions) -> Option<PathBuf> {
    if let Some(c) = &opts.kernel_config {
        return Some(c.clone());
    }
    let dir = opts.kernel.parent()?;
    let name = opts.kernel.file_name()?.to_string_lossy().into_owned();
    let mut candidates: Vec<PathBuf> = name
        .split_once('-')
        .map(|(_, v)| dir.join(format!("config-{v}")))
        .into_iter()
        .collect();
    candidates.push(dir.join("config"));
    candidates.push(dir.join(".config"));
    candidates.into_iter().find(|p| p.is_file())
}

/// Works out the plan, the payload, memory and batches; writes nothing but a kernel
/// unwrapped for QEMU where needed.
pub fn prepare(arch: &ArchDescriptor, opts: &BootOptions) -> Result<Prepared, BootError> {
    prepare_with(arch, opts, None)
}

/// `prepare`, with the modules already parsed when the check stage did it.
pub(super) fn prepare_with(
    arch: &ArchDescriptor,
    opts: &BootOptions,
    parsed: Option<(
        Vec<crate::check::modules::ModuleInput>,
        Vec<crate::depmod::Shadowed>,
    )>,
) -> Result<Prepared, BootError> {
    use rayon::prelude::*;
    let qemu = arch
        .qemu_or_why_not()
        .map_err(|reason| BootError::Unsupported {
            arch: arch.name.clone(),
            reason,
        })?;
    if !opts.kernel.exists() {
        return Err(BootError::BadInput(format!(
            "{}: kernel image not found",
            opts.kernel.display()
        )));
    }
    if let Some(why) = kernel_mismatch(&opts.kernel, arch) {
        return Err(BootError::BadInput(format!(
            "{}: {why}",
            opts.kernel.display()
        )));
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| BootError::Io {
        path: opts.out.clone(),
        source: e,
    })?;
    let mut notes = Vec::new();
    let kernel = bootable_kernel(&opts.kernel, &opts.out, &mut notes)?;
    let (inputs, shadowed): (Vec<_>, _) = match parsed {
        Some(both) => both,
        None => {
            let found = crate::input::discover_noted(&opts.modules)
                .map_err(|e| BootError::BadInput(e.to_string()))?;
            notes.extend(found.notes);
            // Of several files of one module name, modprobe loads one (depmod's order): the
            // others are not loaded, and are reported shadowed.
            let (paths, shadowed) = crate::depmod::pick(&opts.modules, found.paths);
            let inputs = paths.par_iter().map(|p| load_module(p, arch)).collect();
            (inputs, shadowed)
        }
    };
    let where_ = || {
        opts.modules
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if inputs.is_empty() {
        return Err(BootError::BadInput(format!(
            "no module files (.ko, .ko.xz, .ko.gz, .ko.zst) in {}: nothing to load",
            where_()
        )));
    }
    if let Some(p) = inputs
        .iter()
        .map(|m| &m.facts)
        .try_fold(None, |first, f| match f {
            Err(p) if p.kind == crate::check::Verdict::WrongArch => Some(first.or(Some(p))),
            _ => None,
        })
        .flatten()
    {
        return Err(BootError::BadInput(format!(
            "every module in {} is for another architecture: {}; pick the right --arch",
            where_(),
            p.detail
        )));
    }
    let (plan, order_notes) = crate::image::plan_modules(&inputs);
    notes.extend(order_notes);
    let all: Vec<usize> = (0..plan.len()).collect();

    // The payload: modules stay compressed where the kernel decompresses them itself.
    let methods: Vec<Option<Compression>> = plan
        .par_iter()
        .map(|m| {
            let mut head = [0u8; 8];
            std::fs::File::open(&m.path)
                .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
                .ok()
                .and_then(|n| Compression::of(&head[..n]))
        })
        .collect();
    let common = [Compression::Xz, Compression::Zstd, Compression::Gzip]
        .into_iter()
        .max_by_key(|c| methods.iter().filter(|m| **m == Some(*c)).count())
        .filter(|c| methods.contains(&Some(*c)));
    let config = find_kernel_config(opts);
    let abilities = match &config {
        Some(p) => {
            let text = crate::input::read_module(p).map_err(|e| {
                BootError::BadInput(format!("{}: the kernel config: {e}", p.display()))
            })?;
            KernelAbilities::from_config(&String::from_utf8_lossy(&text))
        }
        None => KernelAbilities::default(),
    };
    let payload = match (common, abilities.known) {
        (Some(c), true) if abilities.module_decompress == Some(c) => {
            ModulePayload::KernelDecompresses(c)
        }
        // No config at hand: the guest tries, and says if the kernel cannot.
        (Some(c), false) => ModulePayload::KernelDecompresses(c),
        _ => ModulePayload::Decompressed,
    };
    let ramdisk = if abilities.known {
        [Compression::Zstd, Compression::Gzip]
            .into_iter()
            .find(|c| abilities.ramdisk.contains(c))
    } else {
        // RD_GZIP is on in every defconfig and distribution kernel.
        Some(Compression::Gzip)
    };
    if let Some(p) = &config {
        // Why the payload (shown on its own line) is what it is.
        notes.push(format!(
            "kernel config {}: {}; {}",
            p.display(),
            match abilities.module_decompress {
                Some(c) => format!("CONFIG_MODULE_DECOMPRESS for {c:?} modules"),
                None => "no CONFIG_MODULE_DECOMPRESS".into(),
            },
            match ramdisk {
                Some(Compression::Zstd) => "CONFIG_RD_ZSTD",
                Some(Compression::Gzip) => "CONFIG_RD_GZIP",
                Some(_) => "a compressed initramfs",
                None => "neither CONFIG_RD_ZSTD nor CONFIG_RD_GZIP",
            }
        ));
    }

    // Memory: what each module needs loaded; batches so every guest fits its machine.
    let minimum = crate::qemu::command::descriptor_memory_mb(&qemu.args).unwrap_or(256);
    let machine_max = qemu
        .max_memory_mb
        .unwrap_or(if arch.elf.class == 64 { 4096 } else { 768 });
    let ceiling = opts.memory_mb.unwrap_or(machine_max);
    let kernel_mb = batch::kernel_share_mb(machine_max);
    let in_guest_compressed =
        |i: usize| matches!(payload, ModulePayload::KernelDecompresses(c) if methods[i] == Some(c));
    let sizes: Vec<u64> = (0..plan.len())
        .map(|i| batch::loaded_bytes(&plan[i], methods[i].is_some()))
        .collect();
    let shipped = |i: usize| {
        if in_guest_compressed(i) {
            plan[i].file_bytes
        } else {
            sizes[i]
        }
    };
    let need = |b: &Batch| {
        let unpacked: u64 = b.loads.iter().map(|&i| shipped(i)).sum();
        let archive = if ramdisk.is_some() && !b.loads.iter().all(|&i| in_guest_compressed(i)) {
            unpacked / 3
        } else {
            unpacked
        };
        let loaded: u64 = b.loads.iter().map(|&i| sizes[i]).sum();
        batch::guest_memory_mb(kernel_mb, archive, unpacked, loaded)
    };
    // The batches depend on the modules and the machine alone (never on --jobs or the
    // shard), so each module meets the same neighbours in a single run and in any shard:
    // the shards of a run merge into the run's own results.
    let mut count = opts
        .batches
        .unwrap_or(plan.len().div_ceil(batch::MODULES_PER_BATCH))
        .max(opts.shard.map_or(1, |s| s.n))
        .max(1);
    let batches = loop {
        let batches = batch::split(&plan, &all, count, &sizes);
        let fits = batches.iter().all(|b| need(b) <= ceiling);
        if fits || opts.batches.is_some() || count >= plan.len() {
            if !fits {
                let worst = batches.iter().map(&need).max().unwrap_or(0);
                return Err(BootError::BadInput(format!(
                    "{} modules need {worst} MiB in one guest, and {} takes at most {ceiling} MiB{}: {}",
                    batches.iter().map(|b| b.loads.len()).max().unwrap_or(0),
                    qemu.binary,
                    if opts.memory_mb.is_some() { " (--memory)" } else { "" },
                    if opts.batches.is_some() {
                        "ask for more --batches"
                    } else {
                        "one module with its dependencies does not fit; give a larger --memory"
                    }
                )));
            }
            break batches;
        }
        count += 1;
    };
    let total_batches = batches.len();
    if opts.shard.is_some_and(|s| s.n > total_batches) {
        return Err(BootError::BadInput(format!(
            "--shard {}: {} modules make only {total_batches} boots; give at most {total_batches} shards",
            opts.shard.expect("checked"),
            plan.len()
        )));
    }
    let batches: Vec<Batch> = batches
        .into_iter()
        .filter(|b| opts.shard.is_none_or(|s| s.owns(b.number)))
        .collect();
    let owned: usize = batches.iter().map(|b| b.owned.len()).sum();
    let memory_mb: Vec<u64> = batches
        .iter()
        .map(|b| match opts.memory_mb {
            Some(m) => m,
            None => need(b).max(minimum),
        })
        .collect();
    if total_batches > 1 {
        notes.push(format!(
            "{} modules in {total_batches} boots of about {} each (each with what its modules need), {} side by side",
            plan.len(),
            plan.len().div_ceil(total_batches),
            opts.jobs.min(batches.len()).max(1)
        ));
    }
    let shard_note = opts.shard.map(|s| {
        format!(
            "shard {s}: boots {} of {total_batches}, {owned} of the {} modules",
            batches
                .iter()
                .map(|b| (b.number + 1).to_string())
                .collect::<Vec<_>>()
                .join(", "),
            plan.len()
        )
    });
    Ok(Prepared {
        shard_note,
        token: token(),
        kernel,
        owned,
        plan,
        batches,
        total_batches,
        payload,
        ramdisk,
        memory_mb,
        ceiling_mb: ceiling,
        notes,
        shadowed,
    })
}
