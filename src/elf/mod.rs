//! Pure ELF parsing: bytes in, plain facts out. No file I/O, no printing, no policy.
//!
//! `reader` is a bounds-checked view over goblin's headers; `exports` decodes a vmlinux
//! export table; `module` reads the facts of one `.ko`; `symvers` parses Module.symvers.
pub mod exports;
pub mod image;
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
