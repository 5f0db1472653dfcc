//! The kernel QEMU is given: an EFI zboot image unwrapped to its raw Image, and a kernel of
//! another arch refused before QEMU starts, by what its header says.
use super::BootError;
use std::path::{Path, PathBuf};

/// The file QEMU's `-kernel` takes: the image as given, or, for an EFI zboot image (a PE
/// application holding the compressed kernel, as arm64, riscv64 and loong64 distributions
/// ship it), the raw Image inside it, written beside the results.
pub(super) fn bootable_kernel(
    kernel: &Path,
    out: &Path,
    notes: &mut Vec<String>,
) -> Result<PathBuf, BootError> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let n = std::fs::File::open(kernel)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| BootError::Io {
            path: kernel.to_path_buf(),
            source: e,
        })?;
    if !crate::elf::image::is_zboot(&head[..n]) {
        return Ok(kernel.to_path_buf());
    }
    let bytes = std::fs::read(kernel).map_err(|e| BootError::Io {
        path: kernel.to_path_buf(),
        source: e,
    })?;
    let mut steps = Vec::new();
    let raw = match crate::elf::image::unwrap(bytes, &mut steps) {
        Ok(crate::elf::image::KernelImage::Raw(b)) => b,
        Ok(crate::elf::image::KernelImage::Elf(_)) => {
            return Err(BootError::BadInput(format!(
                "{}: an EFI zboot image holding an ELF file, which QEMU cannot boot as -kernel",
                kernel.display()
            )))
        }
        Err(e) => return Err(BootError::BadInput(format!("{}: {e}", kernel.display()))),
    };
    let path = out.join("Image.unwrapped");
    crate::files::write_bytes_atomic(&path, &raw).map_err(|e| BootError::Io {
        path: path.clone(),
        source: e,
    })?;
    notes.push(format!(
        "{} is an EFI zboot image; QEMU boots the raw Image inside it ({}), unwrapped into {}",
        kernel.display(),
        steps.join(", "),
        path.display()
    ));
    Ok(path)
}

/// Where a build directory's boot results go.
/// Why a file cannot be this arch's kernel: an ELF or Image header naming another machine,
/// or text. Other formats (compressed, PE, firmware-specific) are left to QEMU.
pub(super) fn kernel_mismatch(kernel: &Path, arch: &crate::arch::ArchDescriptor) -> Option<String> {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(kernel).ok()?.read(&mut head).ok()?;
    head.truncate(n);
    if head.starts_with(b"\x7fELF") {
        // The ELF header alone names the machine; the section headers may lie far beyond.
        let h = goblin::elf::Elf::parse_header(&head).ok()?;
        let (machine, is_64, little) = (
            h.e_machine,
            h.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64,
            h.e_ident[goblin::elf::header::EI_DATA] == goblin::elf::header::ELFDATA2LSB,
        );
        return (!arch.accepts_elf(machine, is_64, little)).then(|| {
            format!(
                "an ELF kernel for {} ({}-bit), not {}: pick the right --arch",
                crate::elf::machine_name(machine),
                if is_64 { 64 } else { 32 },
                arch.name
            )
        });
    }
    // A raw Image (arm64, riscv64) or an x86 bzImage: their headers name the machine.
    let raw = crate::elf::image::raw_identity(&head)
        .map(|id| (id, "an Image"))
        .or_else(|| crate::elf::image::bzimage_identity(&head).map(|id| (id, "an x86 bzImage")));
    if let Some((id, what)) = raw {
        return (!arch.accepts_elf(id.machine, id.is_64, id.little)).then(|| {
            format!(
                "{what} for {}, not a kernel for {}: pick the right --arch",
                crate::elf::machine_name(id.machine),
                arch.name
            )
        });
    }
    let text = !head.is_empty()
        && head
            .iter()
            .take(512)
            .all(|&b| b == b'\n' || b == b'\t' || b == b'\r' || (0x20..0x7f).contains(&b));
    text.then(|| "a text file, not a kernel image".to_string())
}
