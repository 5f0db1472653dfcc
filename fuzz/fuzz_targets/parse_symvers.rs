#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(sv) = modverify::elf::Symvers::parse(s) {
            let _ = modverify::elf::ExportTable::from_symvers(&sv);
        }
    }
});
