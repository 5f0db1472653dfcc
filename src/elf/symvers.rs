//! `Module.symvers`: `0x%08x<TAB>symbol<TAB>module<TAB>EXPORT_SYMBOL[_GPL]<TAB>namespace`.
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymversEntry {
    pub crc: u32,
    pub symbol: String,
    /// `vmlinux` or the module's path without `.ko`.
    pub module: String,
    pub gpl: bool,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Symvers {
    pub entries: Vec<SymversEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SymversError {
    pub line: usize,
    pub message: String,
}

impl Symvers {
    pub fn parse(text: &str) -> Result<Self, SymversError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let err = |message: String| SymversError {
                line: i + 1,
                message,
            };
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 4 {
                return Err(err(format!(
                    "expected 4 or 5 tab-separated columns, found {}",
                    cols.len()
                )));
            }
            let hex = cols[0].strip_prefix("0x").unwrap_or(cols[0]);
            let crc = u64::from_str_radix(hex, 16)
                .map_err(|_| err(format!("`{}` is not a hexadecimal CRC", cols[0])))?
                as u32;
            // The licence side by the export's table, as the kernel's tables would have it
            // (EXPORT_SYMBOL_GPL_FUTURE is not GPL-only: find_symbol only warns).
            let kind = super::kinds::TableKind::of_symvers_type(cols[3])
                .ok_or_else(|| err(format!("unknown export type `{}`", cols[3])))?;
            let gpl = super::kinds::gpl_only(kind, None);
            entries.push(SymversEntry {
                crc,
                symbol: cols[1].to_string(),
                module: cols[2].to_string(),
                gpl,
                namespace: cols.get(4).filter(|s| !s.is_empty()).map(|s| s.to_string()),
            });
        }
        Ok(Symvers { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each type Module.symvers has written, on its licence side: GPL_FUTURE exports load
    /// into non-GPL modules (with a warning), the GPL and UNUSED_GPL ones do not.
    #[test]
    fn every_export_type_is_on_its_tables_licence_side() {
        for (t, gpl) in [
            ("EXPORT_SYMBOL", false),
            ("EXPORT_SYMBOL_GPL", true),
            ("EXPORT_SYMBOL_GPL_FUTURE", false),
            ("EXPORT_UNUSED_SYMBOL", false),
            ("EXPORT_UNUSED_SYMBOL_GPL", true),
            ("EXPORT_SYMBOL_NS", false),
            ("EXPORT_SYMBOL_NS_GPL", true),
        ] {
            let s = Symvers::parse(&format!("0x1\tf\tvmlinux\t{t}\t\n")).unwrap();
            assert_eq!(s.entries[0].gpl, gpl, "{t}");
        }
        assert!(Symvers::parse("0x1\tf\tvmlinux\tPUBLIC\n").is_err());
    }

    #[test]
    fn parses_both_forms() {
        let s = Symvers::parse("0x1234abcd\tkfree\tvmlinux\tEXPORT_SYMBOL\t\n0x00000001\tfoo\tdrivers/x/y\tEXPORT_SYMBOL_GPL\tNS\n").unwrap();
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[0].crc, 0x1234abcd);
        assert_eq!(s.entries[0].namespace, None);
        assert!(s.entries[1].gpl);
        assert_eq!(s.entries[1].namespace.as_deref(), Some("NS"));
    }

    #[test]
    fn names_the_bad_line() {
        let e = Symvers::parse("0x1\ta\tvmlinux\tEXPORT_SYMBOL\n0xzz\tb\tvmlinux\tEXPORT_SYMBOL\n")
            .unwrap_err();
        assert_eq!(e.line, 2);
    }
}
