//! Kernel images as distributions ship them, turned into something the export-table reader
//! can map: x86's bzImage and EFI zboot images carry a compressed payload, arm64 and riscv64
//! ship a raw `Image` (no ELF headers at all) whose addresses System.map gives.
//! Bytes in, bytes out: no file I/O here.
use super::reader::{ElfFile, Section};
use goblin::container::{Container, Ctx};
use goblin::elf::header::{
    Header, EI_CLASS, EI_DATA, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB,
};
use goblin::elf::section_header::{SectionHeader, SHT_PROGBITS};
use scroll::Endian;

/// What a kernel image file holds once unwrapped.
#[derive(Debug)]
pub enum KernelImage {
    /// An ELF vmlinux (possibly stripped).
    Elf(Vec<u8>),
    /// A raw memory image (arm64/riscv64 `Image`): needs System.map to be read.
    Raw(Vec<u8>),
}

/// The ELF identity a raw image's header announces, where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawIdentity {
    pub machine: u16,
    pub is_64: bool,
    pub little: bool,
}

const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Unwraps a kernel image down to an ELF vmlinux or a raw image. `steps` records what was
/// done ("bzImage payload", "EFI zboot payload (gzip)", …) for the report.
pub fn unwrap(bytes: Vec<u8>, steps: &mut Vec<String>) -> Result<KernelImage, String> {
    let mut bytes = bytes;
    for _ in 0..4 {
        if bytes.starts_with(ELF_MAGIC) {
            return Ok(KernelImage::Elf(bytes));
        }
        if raw_identity(&bytes).is_some() {
            return Ok(KernelImage::Raw(bytes));
        }
        let (payload, what) = if let Some(p) = zboot_payload(&bytes) {
            (p, "EFI zboot payload")
        } else if let Some(p) = bzimage_payload(&bytes) {
            (p, "bzImage payload")
        } else if compression(&bytes).is_some() {
            (&bytes[..], "compressed file")
        } else {
            break;
        };
        let kind = compression(payload).ok_or_else(|| {
            format!("the {what} is compressed in a format modverify cannot read (it reads gzip, xz and zstd); run scripts/extract-vmlinux on it")
        })?;
        // The kernel's build appends the uncompressed size (4 bytes, `size_append`) to its
        // compressed payloads; a strict decoder reads it as trailing garbage.
        let sized_zstd = || -> Option<Vec<u8>> {
            // `zstd -22` streams need a 128 MiB window unless decoded into a buffer of the
            // known size, which the appended size gives.
            let n = payload.len().checked_sub(4)?;
            let size = le32(payload, n)?;
            (kind == "zstd" && size < (1 << 30))
                .then(|| zstd::bulk::decompress(&payload[..n], size).ok())
                .flatten()
        };
        let out = sized_zstd()
            .ok_or(String::new())
            .or_else(|_| crate::input::decompress(payload.to_vec()))
            .or_else(|e| match payload.len().checked_sub(4) {
                Some(n) if n > 0 => crate::input::decompress(payload[..n].to_vec()).map_err(|_| e),
                _ => Err(e),
            })
            .map_err(|e| format!("cannot decompress the {what} ({kind}): {e}"))?;
        steps.push(format!("{what} ({kind})"));
        bytes = out;
    }
    Err(if bytes.starts_with(b"MZ") {
        "a PE/EFI file that is neither an EFI zboot image nor an x86 bzImage: not a kernel image modverify can read".into()
    } else {
        "not a kernel image: no ELF header, no bzImage or EFI zboot header, no gzip/xz/zstd \
         data, no arm64/riscv Image header"
            .into()
    })
}

fn compression(b: &[u8]) -> Option<&'static str> {
    crate::input::Compression::of(b).map(crate::input::Compression::name)
}

fn le32(b: &[u8], off: usize) -> Option<usize> {
    let s = b.get(off..off + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// Whether the file starts like an EFI zboot image.
pub fn is_zboot(head: &[u8]) -> bool {
    head.starts_with(b"MZ") && head.get(4..8) == Some(b"zimg")
}

/// EFI zboot (`drivers/firmware/efi/libstub/zboot-header.S`): "MZ", then "zimg", the
/// payload's offset and size.
fn zboot_payload(b: &[u8]) -> Option<&[u8]> {
    if !b.starts_with(b"MZ") || b.get(4..8)? != b"zimg" {
        return None;
    }
    let (off, len) = (le32(b, 8)?, le32(b, 12)?);
    b.get(off..off.checked_add(len)?)
}

/// x86 boot protocol 2.08+: `payload_offset`/`payload_length` from the start of the
/// protected-mode code, which follows `setup_sects` 512-byte sectors after the boot sector.
fn bzimage_payload(b: &[u8]) -> Option<&[u8]> {
    if !is_bzimage(b) {
        return None;
    }
    let setup_sects = match *b.get(0x1f1)? {
        0 => 4,
        n => n as usize,
    };
    let pm = (setup_sects + 1) * 512;
    let (off, len) = (le32(b, 0x248)?, le32(b, 0x24c)?);
    let start = pm.checked_add(off)?;
    b.get(start..start.checked_add(len)?)
}

/// The arm64 (`ARM\x64` at 0x38) and riscv (`RSC\x05` at 0x38) Image headers.
pub fn raw_identity(b: &[u8]) -> Option<RawIdentity> {
    match b.get(0x38..0x3c)? {
        b"ARM\x64" => Some(RawIdentity {
            machine: 183,
            is_64: true,
            little: true,
        }),
        b"RSC\x05" => Some(RawIdentity {
            machine: 243,
            is_64: true,
            little: true,
        }),
        _ => None,
    }
}

/// The x86 boot protocol's header: `boot_flag` 0xAA55 at 0x1fe and `HdrS` at 0x202. Both:
/// sh's zImage has `HdrS` at 0x202 too (its own loader's header), without the boot flag.
fn is_bzimage(b: &[u8]) -> bool {
    b.get(0x1fe..0x200) == Some(&[0x55, 0xaa][..]) && b.get(0x202..0x206) == Some(&b"HdrS"[..])
}

/// An x86 bzImage (boot protocol header `HdrS` at 0x202): x86-64 where `xloadflags` has
/// XLF_KERNEL_64, else i386. Only to name what a boot was given; the static check reads
/// the ELF inside it by other means.
pub fn bzimage_identity(b: &[u8]) -> Option<RawIdentity> {
    if !is_bzimage(b) {
        return None;
    }
    let xloadflags = u16::from_le_bytes(b.get(0x236..0x238)?.try_into().ok()?);
    let is_64 = xloadflags & 1 != 0;
    Some(RawIdentity {
        machine: if is_64 { 62 } else { 3 },
        is_64,
        little: true,
    })
}

/// Parses System.map (`ADDRESS TYPE NAME` per line) into name → address.
pub fn parse_system_map(text: &str) -> std::collections::HashMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let addr = u64::from_str_radix(it.next()?, 16).ok()?;
            let _kind = it.next()?;
            Some((it.next()?, addr))
        })
        .collect()
}

/// Maps a raw image as an ELF view: one section per export table, bounded by System.map's
/// `__start_<sec>`/`__stop_<sec>` symbols, plus the whole image for strings. The image's
/// load address is the one at which `linux_banner` reads "Linux version".
pub fn map_raw<'a>(
    image: &'a [u8],
    map: &std::collections::HashMap<&str, u64>,
    id: RawIdentity,
) -> Result<ElfFile<'a>, String> {
    if map.len() < 2 {
        // Debian's linux-image packages ship a one-line stub ("The real System.map is in the
        // linux-image-<version>-dbg package"), which users reach first.
        return Err(
            "System.map holds no kernel symbols (Debian ships a stub: the real one is in \
                    linux-image-VERSION-dbg); pass that with --system-map, or check against \
                    --symvers alone"
                .into(),
        );
    }
    let banner = *map
        .get("linux_banner")
        .ok_or("System.map has no linux_banner: is it the map of this kernel?")?;
    let base = ["_start", "_text", "_head", "_stext", "stext"]
        .iter()
        .filter_map(|s| map.get(s).copied())
        .find(|&b| {
            banner
                .checked_sub(b)
                .and_then(|o| image.get(o as usize..o as usize + 14))
                == Some(b"Linux version ")
        })
        .ok_or("System.map does not match the image: linux_banner does not read \"Linux version\" at any start address it gives (_start, _text, _head, _stext)")?;
    let ctx = Ctx::new(
        if id.is_64 {
            Container::Big
        } else {
            Container::Little
        },
        if id.little {
            Endian::Little
        } else {
            Endian::Big
        },
    );
    let mut header = Header::new(ctx);
    header.e_ident[EI_CLASS] = if id.is_64 { ELFCLASS64 } else { ELFCLASS32 };
    header.e_ident[EI_DATA] = if id.little { ELFDATA2LSB } else { ELFDATA2MSB };
    header.e_machine = id.machine;
    let section = |index: usize, name: &'a str, addr: u64, size: u64| Section {
        index,
        name,
        shdr: SectionHeader {
            sh_type: SHT_PROGBITS,
            sh_addr: addr,
            sh_offset: addr - base,
            sh_size: size,
            ..Default::default()
        },
    };
    let mut sections = Vec::new();
    let tables = crate::elf::TableKind::ALL
        .iter()
        .flat_map(|k| [k.ksymtab(), k.kcrctab()])
        .chain(["__kflagstab"]);
    for name in tables {
        let (Some(&start), Some(&stop)) = (
            map.get(format!("__start_{name}").as_str()),
            map.get(format!("__stop_{name}").as_str()),
        ) else {
            continue;
        };
        if start < base || stop < start || (stop - base) as usize > image.len() {
            return Err(format!(
                "System.map places {name} at {start:#x}..{stop:#x}, outside the image"
            ));
        }
        sections.push(section(sections.len(), name, start, stop - start));
    }
    sections.push(section(sections.len(), ".image", base, image.len() as u64));
    Ok(ElfFile {
        bytes: image,
        header,
        ctx,
        sections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debians_stub_system_map_is_named_with_where_the_real_one_is() {
        let mut img = vec![0u8; 0x200];
        img[0x38..0x3c].copy_from_slice(b"ARM\x64");
        let text =
            "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n";
        let map = parse_system_map(text);
        let e = map_raw(&img, &map, raw_identity(&img).unwrap())
            .err()
            .unwrap();
        assert!(
            e.contains("Debian ships a stub") && e.contains("--symvers"),
            "{e}"
        );
    }

    #[test]
    fn raw_image_is_mapped_through_system_map() {
        let mut img = vec![0u8; 0x200];
        img[0x38..0x3c].copy_from_slice(b"ARM\x64");
        img[0x100..0x10e].copy_from_slice(b"Linux version ");
        let text = "ffff000000001000 T _text\nffff000000001100 D linux_banner\n\
                    ffff000000001040 D __start___ksymtab\nffff000000001058 D __stop___ksymtab\n";
        let map = parse_system_map(text);
        let id = raw_identity(&img).unwrap();
        let elf = map_raw(&img, &map, id).unwrap();
        let s = elf.section("__ksymtab").unwrap();
        assert_eq!((s.shdr.sh_offset, s.shdr.sh_size), (0x40, 0x18));
        assert_eq!(elf.header.e_machine, 183);
        let bad = parse_system_map("ffff000000002000 T _text\nffff000000001100 D linux_banner\n");
        let e = map_raw(&img, &bad, id)
            .err()
            .expect("a mismatched map is refused");
        assert!(e.contains("does not match"), "{e}");
    }

    #[test]
    fn unwrap_finds_the_payload_or_says_why_not() {
        let mut steps = vec![];
        assert!(matches!(
            unwrap(b"\x7fELF....".to_vec(), &mut steps),
            Ok(KernelImage::Elf(_))
        ));
        let e = unwrap(b"hello world, not a kernel".to_vec(), &mut steps).unwrap_err();
        assert!(e.contains("not a kernel image"), "{e}");
        // A zboot header whose payload lies outside the file is not taken as one.
        let mut z = b"MZ\0\0zimg".to_vec();
        z.extend_from_slice(&1000u32.to_le_bytes());
        z.extend_from_slice(&1000u32.to_le_bytes());
        assert!(unwrap(z, &mut steps).is_err());
    }

    /// sh4's zImage carries `HdrS` at 0x202 (bytes as modverify's sh4 build made them) but
    /// no x86 boot flag: not a bzImage, so a boot of it is not refused as x86's.
    #[test]
    fn an_sh_zimage_is_not_an_x86_bzimage() {
        let mut sh = vec![0u8; 0x240];
        for i in (0x1f0..0x200).step_by(2) {
            sh[i] = 0x09;
        }
        sh[0x202..0x206].copy_from_slice(b"HdrS");
        sh[0x206] = 0x02;
        sh[0x207] = 0x02;
        assert!(bzimage_identity(&sh).is_none());
        let mut x86 = sh.clone();
        x86[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
        x86[0x236] = 1;
        assert_eq!(bzimage_identity(&x86).map(|i| i.machine), Some(62));
    }
}
