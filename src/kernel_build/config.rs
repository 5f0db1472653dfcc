//! Kernel configuration: a base (`tinyconfig`, …) or the user's own `.config`, plus fragments,
//! brought up with `olddefconfig` — then every requested line is checked against the result,
//! because Kconfig drops options with unmet dependencies without a word.
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
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

/// Substitutes for default modules a tree no longer offers (7.x made the CRC libraries and
/// CRYPTO_MANAGER internal, and dropped LIBCRC32C and CRYPTO_CRCT10DIF): generic algorithms
/// with no hardware behind them, each a module that imports from vmlinux and from the crypto
/// core, some in pairs (blowfish_common ← blowfish_generic), so the graph keeps real edges.
pub const SUBSTITUTE_MODULES: &[&str] = &[
    "CONFIG_CRYPTO_SHA1=m",
    "CONFIG_CRYPTO_SHA512=m",
    "CONFIG_CRYPTO_SHA3=m",
    "CONFIG_CRYPTO_MD4=m",
    "CONFIG_CRYPTO_RMD160=m",
    "CONFIG_CRYPTO_WP512=m",
    "CONFIG_CRYPTO_BLOWFISH=m",
    "CONFIG_CRYPTO_TWOFISH=m",
    "CONFIG_CRYPTO_CAST5=m",
    "CONFIG_CRYPTO_CAST6=m",
    "CONFIG_CRYPTO_SERPENT=m",
    "CONFIG_CRYPTO_DES=m",
    "CONFIG_CRYPTO_ECB=m",
    "CONFIG_CRYPTO_CBC=m",
    "CONFIG_CRYPTO_CTR=m",
    "CONFIG_CRYPTO_HMAC=m",
    "CONFIG_CRYPTO_XXHASH=m",
    "CONFIG_CRYPTO_TEA=m",
    "CONFIG_CRYPTO_KHAZAD=m",
    "CONFIG_CRYPTO_ANUBIS=m",
    "CONFIG_CRYPTO_LZ4=m",
    "CONFIG_CRYPTO_CRC32=m",
];

/// How many substitutes beyond one per left-out module: the crypto chain and the CRC
/// libraries that disappear with the left-out options were several modules each.
const SUBSTITUTE_MARGIN: usize = 6;

/// What the tree's Kconfig files say about each symbol (read once per build).
#[derive(Debug, Default)]
pub struct Kconfig {
    /// Symbols with a `config`/`menuconfig` entry.
    pub defined: HashSet<String>,
    /// Symbols with a prompt: a user (or a fragment) can set them.
    pub prompted: HashSet<String>,
    /// The condition of a symbol's prompt (`bool "…" if !ARM`): where it is false, the
    /// option cannot be set however its `depends on` stand (PROC_KCORE on 32-bit ARM).
    pub prompt_if: HashMap<String, Vec<String>>,
    /// Symbols with a `default y` (possibly conditional).
    pub default_y: HashSet<String>,
    pub depends: HashMap<String, Vec<String>>,
    /// Symbol → the symbols it selects.
    pub selects: HashMap<String, Vec<String>>,
}

impl Kconfig {
    /// Every `Kconfig*` file of the tree. Enclosing `if`/`menu` conditions are not followed:
    /// the direct `depends on` lines are what users fix. `srcarch`: the one `arch/` directory
    /// to read (the others' `depends on` lines are no one's fix on this arch).
    pub fn read(src: &Path, srcarch: Option<&str>) -> Self {
        let mut k = Kconfig::default();
        let mut stack = vec![src.to_path_buf()];
        let arch_dir = src.join("arch");
        while let Some(dir) = stack.pop() {
            if let (Some(keep), Some(parent)) = (srcarch, dir.parent()) {
                if parent == arch_dir && dir.file_name().is_some_and(|n| n != keep) {
                    continue;
                }
            }
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
                    if let Ok(text) = std::fs::read_to_string(&p) {
                        k.add_file(&text);
                    }
                }
            }
        }
        k
    }

    fn add_file(&mut self, text: &str) {
        let mut current: Option<String> = None;
        let mut in_help = false;
        // `if EXPR` … `endif` around entries: a dependency of each (MODVERSIONS sits inside
        // `if MODULES`, with no `depends on` line of its own).
        let mut ifs: Vec<String> = Vec::new();
        for line in text.lines() {
            let t = line.trim();
            if !line.starts_with(char::is_whitespace) {
                if let Some(cond) = t.strip_prefix("if ") {
                    ifs.push(cond.split('#').next().unwrap_or("").trim().to_string());
                } else if t == "endif" || t.starts_with("endif ") || t.starts_with("endif#") {
                    ifs.pop();
                }
            }
            if let Some(sym) = t
                .strip_prefix("config ")
                .or_else(|| t.strip_prefix("menuconfig "))
            {
                let sym = sym.trim().to_string();
                self.defined.insert(sym.clone());
                if !ifs.is_empty() {
                    let deps = self.depends.entry(sym.clone()).or_default();
                    for c in &ifs {
                        if !deps.contains(c) {
                            deps.push(c.clone());
                        }
                    }
                }
                current = Some(sym);
                in_help = false;
                continue;
            }
            if !line.starts_with(char::is_whitespace) && !t.is_empty() {
                current = None;
                continue;
            }
            let Some(sym) = &current else { continue };
            if in_help || t.is_empty() {
                continue;
            }
            if t == "help" || t == "---help---" {
                in_help = true;
            } else if let Some(dep) = t.strip_prefix("depends on ") {
                self.depends
                    .entry(sym.clone())
                    .or_default()
                    .push(dep.trim().to_string());
            } else if let Some(sel) = t.strip_prefix("select ") {
                let target = sel.split_whitespace().next().unwrap_or("").to_string();
                self.selects.entry(sym.clone()).or_default().push(target);
            } else if t == "default y" || t.starts_with("default y if ") {
                self.default_y.insert(sym.clone());
            } else {
                let rest = ["bool", "tristate", "prompt"]
                    .iter()
                    .find_map(|kw| t.strip_prefix(kw));
                if let Some(r) = rest
                    .map(str::trim_start)
                    .filter(|r| r.starts_with('"') || r.starts_with('\''))
                {
                    self.prompted.insert(sym.clone());
                    // The text between its quotes, then `if COND`, if any.
                    let quote = r.chars().next().unwrap_or('"');
                    let after = r[1..].find(quote).map(|i| &r[i + 2..]).unwrap_or("");
                    if let Some(cond) = after.trim().strip_prefix("if ") {
                        let cond = cond.split('#').next().unwrap_or("").trim().to_string();
                        let conds = self.prompt_if.entry(sym.clone()).or_default();
                        if !cond.is_empty() && !conds.contains(&cond) {
                            conds.push(cond);
                        }
                    }
                }
            }
        }
    }

    /// No Kconfig was read (not a kernel tree, or a unit test): nothing can be decided.
    pub fn is_empty(&self) -> bool {
        self.defined.is_empty()
    }

    /// Who selects `sym` (up to `max` names).
    fn selected_by(&self, sym: &str, max: usize) -> Vec<String> {
        let mut v: Vec<String> = self
            .selects
            .iter()
            .filter(|(_, t)| t.iter().any(|s| s == sym))
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v.truncate(max);
        v
    }
}

/// A line modverify wanted but did not ask for in this tree, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeftOut {
    pub option: String,
    pub reason: String,
}

/// The default module set as chosen for one tree.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModuleSet {
    /// Fragment lines asked for.
    pub lines: Vec<String>,
    /// Lines of DEFAULT_MODULES this tree does not offer.
    pub left_out: Vec<LeftOut>,
    /// SUBSTITUTE_MODULES lines added in their place.
    pub added: Vec<String>,
}

/// Chooses the default modules for a tree: every DEFAULT_MODULES line whose option exists and
/// can be set there (it has a prompt, or an option of the set selects it, as CRYPTO_DEFLATE
/// selects ZLIB_DEFLATE); for each `=m` line left out, a substitute, plus a margin, so every
/// tree builds 30+ modules with dependencies between them.
pub fn default_modules(kc: &Kconfig) -> ModuleSet {
    if kc.is_empty() {
        return ModuleSet {
            lines: DEFAULT_MODULES.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
    }
    let sym = |l: &str| parse_line(l).map(|(k, _)| k.trim_start_matches("CONFIG_").to_string());
    // What the set's own options select, transitively: options without a prompt are set
    // through these.
    let mut selected: HashSet<String> = HashSet::new();
    let mut todo: Vec<String> = DEFAULT_MODULES
        .iter()
        .filter_map(|l| sym(l))
        .filter(|s| kc.prompted.contains(s))
        .collect();
    while let Some(s) = todo.pop() {
        for t in kc.selects.get(&s).into_iter().flatten() {
            if selected.insert(t.clone()) {
                todo.push(t.clone());
            }
        }
    }
    let mut set = ModuleSet::default();
    let mut missing_modules = 0;
    for l in DEFAULT_MODULES {
        let Some(s) = sym(l) else { continue };
        let reason = if !kc.defined.contains(&s) {
            "not in this tree".to_string()
        } else if !kc.prompted.contains(&s) && !selected.contains(&s) {
            let by = kc.selected_by(&s, 3);
            if by.is_empty() {
                "not user-selectable in this tree (no prompt)".to_string()
            } else {
                format!(
                    "not user-selectable in this tree (no prompt; selected by {}{})",
                    by.join(", "),
                    if by.len() == 3 { ", …" } else { "" }
                )
            }
        } else {
            set.lines.push(l.to_string());
            continue;
        };
        if l.ends_with("=m") {
            missing_modules += 1;
        }
        set.left_out.push(LeftOut {
            option: format!("CONFIG_{s}"),
            reason,
        });
    }
    if missing_modules > 0 {
        let want = missing_modules + SUBSTITUTE_MARGIN;
        for l in SUBSTITUTE_MODULES {
            if set.added.len() == want {
                break;
            }
            if sym(l).is_some_and(|s| kc.prompted.contains(&s)) && !set.lines.iter().any(|x| x == l)
            {
                set.lines.push(l.to_string());
                set.added.push(l.to_string());
            }
        }
    }
    set
}

/// Keeps the lines of modverify's own fragments whose option exists in this tree (an option
/// the tree never had cannot be "dropped"; RISCV_ISA_FALLBACK is not in 6.1). Options
/// modverify cannot work without are always kept, so losing one stays an error.
pub fn in_tree(kc: &Kconfig, lines: &[String]) -> (Vec<String>, Vec<LeftOut>) {
    let mut kept = Vec::new();
    let mut absent = Vec::new();
    for l in lines {
        match parse_line(l) {
            Some((k, _))
                if !kc.is_empty()
                    && !ESSENTIAL.contains(&k)
                    && !kc.defined.contains(k.trim_start_matches("CONFIG_")) =>
            {
                absent.push(LeftOut {
                    option: k.to_string(),
                    reason: "not in this tree".into(),
                })
            }
            _ => kept.push(l.clone()),
        }
    }
    (kept, absent)
}

/// Options a descriptor needs that tinyconfig (allnoconfig underneath) turns off although
/// Kconfig defaults them on: newer trees add such defaults (RISCV_ISA_FALLBACK, 6.6) and a
/// tinyconfig build silently loses them. One warning line each.
pub fn tinyconfig_traps(
    kc: &Kconfig,
    needs: &[crate::arch::GuestNeed],
    origin: &str,
) -> Vec<String> {
    needs
        .iter()
        .filter_map(|n| {
            let (k, v) = parse_line(&n.line)?;
            let s = k.trim_start_matches("CONFIG_");
            (v != "n" && kc.prompted.contains(s) && kc.default_y.contains(s)).then(|| {
                format!(
                    "{k}: Kconfig defaults it to y in this tree, but tinyconfig turns it off; {origin} sets it because {}",
                    n.why
                )
            })
        })
        .collect()
}

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

/// A fragment file's option lines. Blank lines and `#` comments are skipped; any other line
/// that is not `CONFIG_NAME=value` or `# CONFIG_NAME is not set` is a mistake (a missing `=`,
/// a lost prefix), named with its line number rather than silently left out.
pub fn fragment_lines(origin: &std::path::Path, text: &str) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for (n, l) in text.lines().enumerate() {
        let t = l.trim();
        if parse_line(t).is_some() {
            lines.push(l.to_string());
        } else if !(t.is_empty() || t.starts_with('#')) {
            return Err(format!(
                "--fragment {}:{}: `{t}` is not a Kconfig line (`CONFIG_NAME=value` or \
                 `# CONFIG_NAME is not set`)",
                origin.display(),
                n + 1
            ));
        }
    }
    Ok(lines)
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
    /// Conditions of its prompt (`bool "…" if COND`), with the values they saw: false, the
    /// option cannot be set whatever its dependencies say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prompt_if: Vec<String>,
    pub essential: bool,
    /// The tree has no such option (a typo, or an option of another version): with the
    /// nearest name it does have, when one is close.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<Unknown>,
    /// Lines of a fragment that turned off what the option depends on (`CONFIG_MODULES=n`
    /// drops CONFIG_MODVERSIONS): the cause, named with where it came from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caused_by: Vec<String>,
}

/// An option no Kconfig file of the tree defines.
#[derive(Debug, Clone, Serialize)]
pub struct Unknown {
    pub nearest: Option<String>,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.unknown {
            write!(
                f,
                "{}={}: no such option in this tree (from {})",
                self.option, self.wanted, self.origin
            )?;
            if let Some(n) = &u.nearest {
                write!(f, "; did you mean {n}?")?;
            }
            return Ok(());
        }
        write!(
            f,
            "{}={} was dropped (now {}; from {})",
            self.option, self.wanted, self.got, self.origin
        )?;
        if !self.caused_by.is_empty() {
            write!(f, ": because of {}", self.caused_by.join(", "))?;
        }
        if !self.depends_on.is_empty() {
            write!(f, ": depends on {}", self.depends_on.join("; "))?;
        }
        if !self.prompt_if.is_empty() {
            write!(
                f,
                "; and it can be set only if {}",
                self.prompt_if.join(" or ")
            )?;
        }
        Ok(())
    }
}

/// The Kconfig symbol nearest to `sym` by edit distance, if it is close (a typo).
fn nearest(kc: &Kconfig, sym: &str) -> Option<String> {
    fn distance(a: &[u8], b: &[u8]) -> usize {
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    let limit = (sym.len() / 5).clamp(1, 3);
    kc.defined
        .iter()
        .filter(|d| d.len().abs_diff(sym.len()) <= limit)
        .map(|d| (distance(sym.as_bytes(), d.as_bytes()), d))
        .filter(|(n, _)| *n <= limit)
        .min()
        .map(|(_, d)| format!("CONFIG_{d}"))
}

/// Compares the requested lines with the final `.config`.
/// `essential`: options besides ESSENTIAL whose loss is an error (the descriptor's guest needs).
pub fn dropped(
    final_config: &str,
    fragments: &[Fragment],
    kc: &Kconfig,
    essential: &[String],
) -> Vec<Dropped> {
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
    // What each fragment turned off, for naming the cause of what it drops.
    let turned_off: HashMap<&str, &str> = want
        .iter()
        .filter(|(_, v, _)| v == "n")
        .map(|(k, _, o)| (k.trim_start_matches("CONFIG_"), o.as_str()))
        .collect();
    let mut out = Vec::new();
    for (k, v, origin) in &want {
        let have = got.get(k).map(String::as_str).unwrap_or("n");
        if have == v {
            continue;
        }
        let sym = k.trim_start_matches("CONFIG_");
        let unknown = (!kc.is_empty() && !kc.defined.contains(sym)).then(|| Unknown {
            nearest: nearest(kc, sym),
        });
        let exprs = kc.depends.get(sym).cloned().unwrap_or_default();
        let depends_on = exprs.iter().map(|e| annotate(e, &got)).collect();
        let prompt_if = kc
            .prompt_if
            .get(sym)
            .map(|c| c.iter().map(|e| annotate(e, &got)).collect())
            .unwrap_or_default();
        let mut caused_by: Vec<String> = Vec::new();
        for e in &exprs {
            for tok in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(o) = turned_off.get(tok) {
                    let c = format!("CONFIG_{tok}=n (from {o})");
                    if !caused_by.contains(&c) {
                        caused_by.push(c);
                    }
                }
            }
        }
        out.push(Dropped {
            essential: ESSENTIAL.contains(&k.as_str()) || essential.contains(k),
            option: k.clone(),
            wanted: v.clone(),
            got: have.to_string(),
            origin: origin.clone(),
            depends_on,
            prompt_if,
            unknown,
            caused_by,
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_fragment_line_that_is_no_option_is_named_not_dropped() {
        let p = std::path::Path::new("debug.config");
        let ok = "# debugging\n\nCONFIG_A=y\n# CONFIG_B is not set\n  CONFIG_C=\"x\"\n";
        assert_eq!(fragment_lines(p, ok).unwrap().len(), 3);
        let e = fragment_lines(p, "CONFIG_A=y\nCONFIG_DEBUG_INFO y\n").unwrap_err();
        assert!(e.contains("debug.config:2: `CONFIG_DEBUG_INFO y`"), "{e}");
    }

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
        let d = dropped("CONFIG_A=y\n", &f, &Kconfig::default(), &[]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].option, "CONFIG_B");
        assert_eq!(d[0].got, "n");
    }

    #[test]
    fn an_enclosing_if_is_a_dependency_and_a_fragment_turning_it_off_the_cause() {
        let mut kc = Kconfig::default();
        kc.add_file(
            "menuconfig MODULES\n\tbool \"Modules\"\n\nif MODULES\n\nconfig MODVERSIONS\n\tbool \"Versions\"\n\nendif # MODULES\n\nconfig DEBUG_INFO\n\tbool \"Debug\"\n",
        );
        assert_eq!(kc.depends["MODVERSIONS"], vec!["MODULES".to_string()]);
        assert!(!kc.depends.contains_key("DEBUG_INFO"));
        let f = vec![
            Fragment {
                origin: "modverify required".into(),
                lines: vec!["CONFIG_MODVERSIONS=y".into()],
            },
            Fragment {
                origin: "mine.config".into(),
                lines: vec![
                    "# CONFIG_MODULES is not set".into(),
                    "CONFIG_DEBUG_INFOO=y".into(),
                ],
            },
        ];
        let d = dropped("", &f, &kc, &[]);
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(
            d[0].to_string(),
            "CONFIG_MODVERSIONS=y was dropped (now n; from modverify required): because of \
             CONFIG_MODULES=n (from mine.config): depends on MODULES [MODULES=n]"
        );
        assert_eq!(
            d[1].to_string(),
            "CONFIG_DEBUG_INFOO=y: no such option in this tree (from mine.config); did you mean \
             CONFIG_DEBUG_INFO?"
        );
    }

    /// PROC_KCORE on 32-bit ARM: its dependencies hold, its prompt's condition does not.
    #[test]
    fn a_prompt_that_shows_only_if_is_named_as_the_reason() {
        let kc = kconfig(
            "config PROC_KCORE\n\tbool \"/proc/kcore support\" if !ARM\n\tdepends on PROC_FS && MMU\n",
        );
        assert_eq!(kc.prompt_if["PROC_KCORE"], vec!["!ARM".to_string()]);
        let f = vec![Fragment {
            origin: "modverify required".into(),
            lines: vec!["CONFIG_PROC_KCORE=y".into()],
        }];
        let d = dropped(
            "CONFIG_PROC_FS=y\nCONFIG_MMU=y\nCONFIG_ARM=y\n",
            &f,
            &kc,
            &[],
        );
        assert_eq!(
            d[0].to_string(),
            "CONFIG_PROC_KCORE=y was dropped (now n; from modverify required): depends on \
             PROC_FS && MMU [PROC_FS=y, MMU=y]; and it can be set only if !ARM [ARM=y]"
        );
    }

    fn kconfig(text: &str) -> Kconfig {
        let mut k = Kconfig::default();
        k.add_file(text);
        k
    }

    #[test]
    fn kconfig_prompts_selects_and_help_text() {
        let k = kconfig(
            "config A\n\ttristate \"A thing\"\n\tselect B\n\tdefault y\n\thelp\n\t  depends on nothing\n\
             config B\n\ttristate\n\tdepends on C\nmenuconfig C\n\tbool\n",
        );
        assert!(k.prompted.contains("A") && !k.prompted.contains("B") && !k.prompted.contains("C"));
        assert!(k.default_y.contains("A"));
        assert_eq!(k.selects["A"], vec!["B".to_string()]);
        assert_eq!(k.depends.get("A"), None, "help text is not a dependency");
        assert_eq!(k.depends["B"], vec!["C".to_string()]);
    }

    #[test]
    fn default_modules_follow_the_tree() {
        // A 6.1-like tree offers every default option: the set is unchanged.
        let mut all = String::new();
        for l in DEFAULT_MODULES.iter().chain(SUBSTITUTE_MODULES) {
            let (k, _) = parse_line(l).unwrap();
            all += &format!(
                "config {}\n\ttristate \"x\"\n",
                k.trim_start_matches("CONFIG_")
            );
        }
        let set = default_modules(&kconfig(&all));
        assert_eq!(set.lines, DEFAULT_MODULES.to_vec());
        assert!(set.left_out.is_empty() && set.added.is_empty());
        // A 7.x-like tree: LIBCRC32C gone, CRC7 without a prompt: both left out, with the
        // reason, and substitutes (one each plus the margin) take their place.
        let seven = all
            .replace("config LIBCRC32C\n\ttristate \"x\"\n", "")
            .replace(
                "config CRC7\n\ttristate \"x\"\n",
                "config CRC7\n\ttristate\n",
            )
            + "config MMC_SPI\n\ttristate \"y\"\n\tselect CRC7\n";
        let set = default_modules(&kconfig(&seven));
        assert_eq!(set.left_out.len(), 2);
        assert_eq!(set.left_out[0].reason, "not in this tree");
        assert!(
            set.left_out[1].reason.contains("selected by MMC_SPI"),
            "{:?}",
            set.left_out
        );
        assert_eq!(set.added.len(), 2 + SUBSTITUTE_MARGIN);
        assert!(!set
            .lines
            .iter()
            .any(|l| l.contains("CRC7") || l.contains("LIBCRC32C")));
        // No Kconfig at all (not a tree we can read): the list as it is.
        assert_eq!(
            default_modules(&Kconfig::default()).lines.len(),
            DEFAULT_MODULES.len()
        );
    }

    #[test]
    fn options_the_tree_never_had_are_left_out_but_essential_ones_kept() {
        let k = kconfig("config MODULES\n\tbool \"m\"\nconfig FPU\n\tbool \"f\"\n");
        let lines: Vec<String> = [
            "CONFIG_FPU=y",
            "CONFIG_RISCV_ISA_FALLBACK=y",
            "CONFIG_MODVERSIONS=y",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (kept, absent) = in_tree(&k, &lines);
        assert_eq!(kept, vec!["CONFIG_FPU=y", "CONFIG_MODVERSIONS=y"]);
        assert_eq!(absent[0].option, "CONFIG_RISCV_ISA_FALLBACK");
    }

    #[test]
    fn tinyconfig_traps_name_default_y_options() {
        let k = kconfig(
            "config RISCV_ISA_FALLBACK\n\tbool \"p\"\n\tdefault y\nconfig X\n\tbool \"x\"\n",
        );
        let needs = vec![
            crate::arch::GuestNeed {
                line: "CONFIG_RISCV_ISA_FALLBACK=y".into(),
                why: "QEMU".into(),
            },
            crate::arch::GuestNeed {
                line: "CONFIG_X=y".into(),
                why: "x".into(),
            },
        ];
        let w = tinyconfig_traps(&k, &needs, "arches/riscv64.yaml");
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("CONFIG_RISCV_ISA_FALLBACK: Kconfig defaults it to y"));
    }
}
