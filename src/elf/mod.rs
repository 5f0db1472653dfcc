//! Pure ELF parsing: bytes in, plain facts out. No file I/O, no printing, no policy.
//!
//! `reader` is a bounds-checked view over goblin's headers; `exports` decodes a vmlinux
//! export table; `module` reads the facts of one `.ko`; `symvers` parses Module.symvers.
pub mod exports;
pub mod image;
pub mod kinds;
pub mod module;
pub mod reader;
pub mod symvers;

pub use exports::{ExportTable, KsymTable, TableKind};
pub use module::ModuleFacts;
pub use reader::{ElfFile, ParseError};
pub use symvers::{Symvers, SymversEntry};

/// Reads a NUL-terminated string starting at `off`; `None` if it runs off the end or is not UTF-8.
pub fn cstr_at(data: &[u8], off: usize) -> Option<&str> {
    let rest = data.get(off..)?;
    let end = memchr::memchr(0, rest)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// An ELF machine as people read it: `EM_X86_64 (62)`, `EM_ALPHA (36902)`.
pub fn machine_name(machine: u16) -> String {
    let name = match machine {
        // Linux's EM_ALPHA, which predates an official number (goblin has only the "fake" one).
        0x9026 => "ALPHA",
        m => goblin::elf::header::machine_to_str(m),
    };
    if name.starts_with("UNKNOWN") || name.is_empty() {
        format!("e_machine {machine}")
    } else {
        format!("EM_{name} ({machine})")
    }
}

#[cfg(test)]
mod machine_tests {
    #[test]
    fn machines_are_named() {
        assert_eq!(super::machine_name(62), "EM_X86_64 (62)");
        assert_eq!(super::machine_name(0x9026), "EM_ALPHA (36902)");
        assert_eq!(super::machine_name(43), "EM_SPARCV9 (43)");
    }
}
