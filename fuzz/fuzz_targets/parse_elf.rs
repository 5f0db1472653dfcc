//! Every ELF parser modverify has, on hostile bytes: vmlinux export tables in every layout,
//! module facts for every descriptor, and the decompressors in front of them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modverify::arch::ArchRegistry;
use modverify::elf::{ElfFile, ExportTable, ModuleFacts};

static REGISTRY: std::sync::OnceLock<ArchRegistry> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let registry = REGISTRY.get_or_init(|| ArchRegistry::load(None).unwrap());
    let bytes = modverify::input::decompress(data.to_vec()).unwrap_or_else(|_| data.to_vec());
    if let Ok(elf) = ElfFile::parse(&bytes) {
        let _ = ExportTable::from_vmlinux(&elf, None);
        for a in &registry.arches {
            let _ = ModuleFacts::parse(&elf, &a.elf);
        }
    }
});
