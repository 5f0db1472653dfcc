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
            let gpl = match cols[3] {
                "EXPORT_SYMBOL" => false,
                "EXPORT_SYMBOL_GPL" => true,
                // Older kernels' variants are treated by their licence side.
                t if t.starts_with("EXPORT_SYMBOL_GPL")
                    || t.starts_with("EXPORT_UNUSED_SYMBOL_GPL") =>
                {
                    true
                }
                t if t.starts_with("EXPORT_") => false,
                t => return Err(err(format!("unknown export type `{t}`"))),
            };
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
