//! Kernel configuration: a base (`tinyconfig`, …) or the user's own `.config`, plus fragments,
//! brought up with `olddefconfig` — then every requested line is checked against the result,
//! because Kconfig drops options with unmet dependencies without a word.
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// What modverify itself needs in every kernel: modules with versions and unloading,
/// kallsyms and /proc/kcore (the guest reads the live export table), an initramfs with gzip,
/// devtmpfs and a serial console. Measured in ../shared/reference/ARCHES.md.
pub const REQUIRED: &[&str] = &[
    "CONFIG_MODULES=y",
    "CONFIG_MODVERSIONS=y",
    "CONFIG_MODULE_UNLOAD=y",
    "CONFIG_BLK_DEV_INITRD=y",
    "CONFIG_RD_GZIP=y",
    "# CONFIG_RD_BZIP2 is not set",
    "# CONFIG_RD_LZMA is not set",
    "# CONFIG_RD_XZ is not set",
    "# CONFIG_RD_LZO is not set",
    "# CONFIG_RD_LZ4 is not set",
    "# CONFIG_RD_ZSTD is not set",
    "CONFIG_PRINTK=y",
    "CONFIG_PRINTK_TIME=y",
    "CONFIG_TTY=y",
    "CONFIG_PROC_FS=y",
    "CONFIG_SYSFS=y",
    "CONFIG_DEVTMPFS=y",
    "CONFIG_BINFMT_ELF=y",
    "CONFIG_BINFMT_SCRIPT=y",
    "CONFIG_KALLSYMS=y",
    "CONFIG_KALLSYMS_ALL=y",
    "CONFIG_PROC_KCORE=y",
    "CONFIG_FUTEX=y",
    "CONFIG_MULTIUSER=y",
    "# CONFIG_VT is not set",
    "# CONFIG_INPUT is not set",
    "# CONFIG_SERIO is not set",
];

/// Options modverify cannot work without: losing one of these is an error, not a warning.
pub const ESSENTIAL: &[&str] = &[
    "CONFIG_MODULES",
    "CONFIG_MODVERSIONS",
    "CONFIG_MODULE_UNLOAD",
    "CONFIG_BLK_DEV_INITRD",
];

/// Small arch-independent modules that import from vmlinux and from each other
/// (CRYPTO=m splits the crypto core into a chain), so every build has real dependencies.
pub const DEFAULT_MODULES: &[&str] = &[
    "CONFIG_CRYPTO=m",
    "CONFIG_CRYPTO_MANAGER=m",
    "CONFIG_CRYPTO_MANAGER_DISABLE_TESTS=y",
    "CONFIG_CRYPTO_CRC32C=m",
    "CONFIG_CRYPTO_CRCT10DIF=m",
    "CONFIG_CRYPTO_DEFLATE=m",
    "CONFIG_CRYPTO_LZO=m",
    "CONFIG_CRYPTO_MD5=m",
    "CONFIG_CRYPTO_SHA256=m",
    "CONFIG_LIBCRC32C=m",
    "CONFIG_CRC_T10DIF=m",
    "CONFIG_CRC_ITU_T=m",
    "CONFIG_CRC7=m",
    "CONFIG_CRC8=m",
    "CONFIG_CRC4=m",
    "CONFIG_CRC16=m",
    "CONFIG_CRC_CCITT=m",
    "CONFIG_ZLIB_DEFLATE=m",
    "CONFIG_LZO_COMPRESS=m",
    "CONFIG_LZO_DECOMPRESS=m",
];

/// A fragment and where it came from (shown when one of its lines is dropped).
#[derive(Debug, Clone, Serialize)]
pub struct Fragment {
    pub origin: String,
    pub lines: Vec<String>,
}

/// One `CONFIG_X=v` / `# CONFIG_X is not set` line; `n` stands for "not set".
pub fn parse_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("# ") {
        let sym = rest.strip_suffix(" is not set")?;
        return sym.starts_with("CONFIG_").then_some((sym, "n"));
    }
    let (k, v) = line.split_once('=')?;
    k.starts_with("CONFIG_").then_some((k, v))
}

pub fn parse_config(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(parse_line)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Replaces every symbol the fragments set and appends the fragment lines (later wins).
pub fn apply_fragments(config: &str, fragments: &[Fragment]) -> String {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for f in fragments {
        for l in &f.lines {
            if let Some((k, _)) = parse_line(l) {
                wanted.retain(|(s, _)| s != k);
                wanted.push((k.to_string(), l.trim().to_string()));
            }
        }
    }
    let set: std::collections::HashSet<&str> = wanted.iter().map(|(k, _)| k.as_str()).collect();
    let mut out: String = config
        .lines()
        .filter(|l| parse_line(l).is_none_or(|(k, _)| !set.contains(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    for (_, l) in wanted {
        out += &l;
        out.push('\n');
    }
    out
}

/// A requested option that is not in the final configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    pub option: String,
    pub wanted: String,
    pub got: String,
    pub origin: String,
    /// `depends on` expressions of the option's Kconfig entries, with the values they saw.
    pub depends_on: Vec<String>,
    pub essential: bool,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={} was dropped (now {}; from {})",
            self.option, self.wanted, self.got, self.origin
        )?;
        if !self.depends_on.is_empty() {
            write!(f, ": depends on {}", self.depends_on.join("; "))?;
        }
        Ok(())
    }
}

/// Compares the requested lines with the final `.config`.
pub fn dropped(final_config: &str, fragments: &[Fragment], src: &Path) -> Vec<Dropped> {
    let got = parse_config(final_config);
    let mut want: Vec<(String, String, String)> = Vec::new();
    for f in fragments {
        for l in &f.lines {
            if let Some((k, v)) = parse_line(l) {
                want.retain(|(s, _, _)| s != k);
                want.push((k.to_string(), v.to_string(), f.origin.clone()));
            }
        }
    }
    let mut out = Vec::new();
    let mut kconfig: Option<HashMap<String, Vec<String>>> = None;
    for (k, v, origin) in want {
        let have = got.get(&k).map(String::as_str).unwrap_or("n");
        if have == v {
            continue;
        }
        let deps = kconfig.get_or_insert_with(|| kconfig_depends(src));
        let sym = k.trim_start_matches("CONFIG_");
        let depends_on = deps
            .get(sym)
            .map(|exprs| exprs.iter().map(|e| annotate(e, &got)).collect())
            .unwrap_or_default();
        out.push(Dropped {
            essential: ESSENTIAL.contains(&k.as_str()),
            option: k,
            wanted: v,
            got: have.to_string(),
            origin,
            depends_on,
        });
    }
    out
}

/// `A && (B || !C)` → `A && (B || !C) [A=y, B=n, C=n]`
fn annotate(expr: &str, got: &HashMap<String, String>) -> String {
    let mut vals = Vec::new();
    for tok in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if tok.is_empty()
            || tok.chars().next().is_some_and(|c| c.is_ascii_digit())
            || ["y", "m", "n"].contains(&tok)
        {
            continue;
        }
        let v = got
            .get(&format!("CONFIG_{tok}"))
            .map(String::as_str)
            .unwrap_or("n");
        let s = format!("{tok}={v}");
        if !vals.contains(&s) {
            vals.push(s);
        }
    }
    if vals.is_empty() {
        expr.to_string()
    } else {
        format!("{expr} [{}]", vals.join(", "))
    }
}

/// `config SYM` → its `depends on` expressions, from every Kconfig file of the tree.
/// Enclosing `if`/`menu` conditions are not followed: the direct ones are what users fix.
fn kconfig_depends(src: &Path) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if !name.starts_with('.') && name != "Documentation" && name != "tools" {
                    stack.push(p);
                }
            } else if name.starts_with("Kconfig") {
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                let mut current: Option<String> = None;
                for line in text.lines() {
                    let t = line.trim();
                    if let Some(sym) = t
                        .strip_prefix("config ")
                        .or_else(|| t.strip_prefix("menuconfig "))
                    {
                        current = Some(sym.trim().to_string());
                    } else if !line.starts_with(char::is_whitespace) && !t.is_empty() {
                        current = None;
                    } else if let (Some(sym), Some(dep)) = (&current, t.strip_prefix("depends on "))
                    {
                        out.entry(sym.clone())
                            .or_default()
                            .push(dep.trim().to_string());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_replace_and_append() {
        let base = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n";
        let f = vec![Fragment {
            origin: "x".into(),
            lines: vec!["CONFIG_B=y".into(), "# CONFIG_C is not set".into()],
        }];
        let out = apply_fragments(base, &f);
        let c = parse_config(&out);
        assert_eq!(c["CONFIG_A"], "y");
        assert_eq!(c["CONFIG_B"], "y");
        assert_eq!(c["CONFIG_C"], "n");
    }

    #[test]
    fn dropped_lines_are_named() {
        let f = vec![Fragment {
            origin: "frag".into(),
            lines: vec![
                "CONFIG_A=y".into(),
                "CONFIG_B=m".into(),
                "# CONFIG_C is not set".into(),
            ],
        }];
        let d = dropped("CONFIG_A=y\n", &f, Path::new("/nonexistent"));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].option, "CONFIG_B");
        assert_eq!(d[0].got, "n");
    }
}
