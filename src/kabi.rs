//! `modverify diff`: what changed between two kernels' export tables, read from the binaries
//! (vmlinux's `__ksymtab*`, `__kcrctab*` and `__kflagstab`, each module's own exports; Module.symvers
//! only where no binary says it), and which modules the change breaks.
//!
//! A module's judgement is `check`'s own ([`predict_providing`]): a consumer *breaks* when the
//! old kernel with its modules would load it and the new kernel with its modules refuses it.
//! Consumers are the old kernel's own modules and any out-of-tree modules given; each is
//! judged alone against the other kernel's modules, as it would load into that system.
use crate::arch::ArchDescriptor;
use crate::check::modules::{predict_providing, ModuleInput, Policy};
use crate::check::{ModuleReport, Verdict};
use crate::elf::exports::ExportTable;
use crate::elf::module::VersionsFormat;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One export as a kernel with its modules offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// `vmlinux` or the module's name.
    pub owner: String,
    /// Where it lives as Module.symvers names it: `vmlinux` or the module's path without
    /// `.ko` (`drivers/net/tun`), what tolerations' module patterns match.
    pub path: String,
    /// The CRC the loader compares (`None`: no CRC table, CONFIG_MODVERSIONS off).
    pub crc: Option<u32>,
    pub gpl_only: bool,
    pub namespace: Option<String>,
}

/// Every export of a kernel and its modules, by symbol: vmlinux's first (as `find_symbol`),
/// then the modules' own tables, then Module.symvers' rows for modules not read.
pub fn exports_of(table: &ExportTable, modules: &[ModuleInput]) -> BTreeMap<String, Export> {
    let mut out = BTreeMap::new();
    for (_, t) in table.tables() {
        for name in &t.names {
            if out.contains_key(name) {
                continue;
            }
            let Some(l) = table.lookup(name) else {
                continue;
            };
            out.insert(
                name.clone(),
                Export {
                    owner: "vmlinux".into(),
                    path: "vmlinux".into(),
                    crc: l.crc.flatten(),
                    gpl_only: l.gpl_only,
                    namespace: l.namespace.filter(|n| !n.is_empty()).map(str::to_string),
                },
            );
        }
    }
    // Module.symvers names each module by its path in the tree; without it, the file's path
    // below `kernel/`.
    let symvers_path: BTreeMap<&str, &str> = table
        .symvers_module_exports()
        .map(|e| (e.symbol.as_str(), e.module.as_str()))
        .collect();
    for m in modules {
        let Ok(f) = &m.facts else { continue };
        let owner = m.name();
        let file_path = module_path(&m.path);
        for e in &f.exports {
            out.entry(e.name.clone()).or_insert_with(|| Export {
                owner: owner.clone(),
                path: symvers_path
                    .get(e.name.as_str())
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| file_path.clone()),
                crc: if table.modversions && f.has_kcrctab[e.table as usize] {
                    e.crc
                } else {
                    None
                },
                gpl_only: e.gpl_only,
                namespace: e.namespace.clone().filter(|n| !n.is_empty()),
            });
        }
    }
    for e in table.symvers_module_exports() {
        out.entry(e.symbol.clone()).or_insert_with(|| Export {
            owner: crate::depmod::name(std::path::Path::new(&e.module)),
            path: e.module.clone(),
            crc: table.modversions.then_some(e.crc),
            gpl_only: e.gpl,
            namespace: e.namespace.clone().filter(|n| !n.is_empty()),
        });
    }
    out
}

/// A module file's path as Module.symvers writes it: below `kernel/` where there is one,
/// without `.ko` and a compression suffix.
fn module_path(file: &str) -> String {
    let rel = file.rsplit_once("/kernel/").map_or(file, |(_, r)| r);
    let rel = rel.strip_prefix("./").unwrap_or(rel);
    match rel.find(".ko") {
        Some(i) => rel[..i].to_string(),
        None => rel.to_string(),
    }
}

/// What happened to one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Removed,
    CrcChanged,
    GplTightened,
    NamespaceChanged,
    Moved,
    GplRelaxed,
    Added,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Removed => "removed",
            ChangeKind::CrcChanged => "crc_changed",
            ChangeKind::GplTightened => "gpl_tightened",
            ChangeKind::NamespaceChanged => "namespace_changed",
            ChangeKind::Moved => "moved",
            ChangeKind::GplRelaxed => "gpl_relaxed",
            ChangeKind::Added => "added",
        }
    }

    /// What a person reads as the group's heading.
    pub fn heading(self) -> &'static str {
        match self {
            ChangeKind::Removed => "removed exports",
            ChangeKind::CrcChanged => "CRC changed",
            ChangeKind::GplTightened => "now GPL-only",
            ChangeKind::NamespaceChanged => "namespace changed",
            ChangeKind::Moved => "moved (vmlinux or another module exports it now)",
            ChangeKind::GplRelaxed => "no longer GPL-only",
            ChangeKind::Added => "added exports",
        }
    }
}

/// One change of one export; a symbol can have several (moved and its CRC changed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub symbol: String,
    pub kind: ChangeKind,
    /// Where the export lives (the new kernel's place, the old one's if removed):
    /// `vmlinux` or a module path, as in Module.symvers.
    pub module: String,
    /// The old value where the kind has one: the owner (removed, moved), the CRC
    /// (`0x%08x`), `EXPORT_SYMBOL[_GPL]`, the namespace (`null`: none).
    pub old: Option<String>,
    pub new: Option<String>,
    /// Modules that import the symbol: the old kernel's own and the consumers given.
    pub consumers: Vec<String>,
    /// Those of them the old kernel loads and the new one refuses for this symbol.
    pub breaks: Vec<String>,
    /// The toleration that covers the change (a pattern and where it came from), if any.
    pub tolerated: Option<String>,
}

fn crc_text(c: Option<u32>) -> Option<String> {
    c.map(|c| format!("{c:#010x}"))
}

fn licence_text(gpl: bool) -> Option<String> {
    Some(
        if gpl {
            "EXPORT_SYMBOL_GPL"
        } else {
            "EXPORT_SYMBOL"
        }
        .into(),
    )
}

/// The per-export changes from `old` to `new`, symbol by symbol, without consumers.
pub fn export_changes(
    old: &BTreeMap<String, Export>,
    new: &BTreeMap<String, Export>,
) -> Vec<Change> {
    let change = |symbol: &str, kind, o: Option<String>, n: Option<String>| Change {
        symbol: symbol.to_string(),
        kind,
        module: new
            .get(symbol)
            .or_else(|| old.get(symbol))
            .map(|e| e.path.clone())
            .unwrap_or_default(),
        old: o,
        new: n,
        consumers: vec![],
        breaks: vec![],
        tolerated: None,
    };
    let mut out = Vec::new();
    for (sym, o) in old {
        let Some(n) = new.get(sym) else {
            out.push(change(
                sym,
                ChangeKind::Removed,
                Some(o.owner.clone()),
                None,
            ));
            continue;
        };
        if o.owner != n.owner {
            out.push(change(
                sym,
                ChangeKind::Moved,
                Some(o.owner.clone()),
                Some(n.owner.clone()),
            ));
        }
        // A CRC appears or goes only with MODVERSIONS, a kernel-wide change said once.
        if let (Some(a), Some(b)) = (o.crc, n.crc) {
            if a != b {
                out.push(change(
                    sym,
                    ChangeKind::CrcChanged,
                    crc_text(Some(a)),
                    crc_text(Some(b)),
                ));
            }
        }
        if o.gpl_only != n.gpl_only {
            let kind = if n.gpl_only {
                ChangeKind::GplTightened
            } else {
                ChangeKind::GplRelaxed
            };
            out.push(change(
                sym,
                kind,
                licence_text(o.gpl_only),
                licence_text(n.gpl_only),
            ));
        }
        if o.namespace != n.namespace {
            out.push(change(
                sym,
                ChangeKind::NamespaceChanged,
                o.namespace.clone(),
                n.namespace.clone(),
            ));
        }
    }
    for (sym, n) in new {
        if !old.contains_key(sym) {
            out.push(change(sym, ChangeKind::Added, None, Some(n.owner.clone())));
        }
    }
    out
}

/// One piece of a toleration pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Byte(u8),
    /// Any run within one path component (Debian's `*`).
    InComponent,
    /// Any run at all (Debian's `**`, SUSE's `*`).
    Any,
    /// Any one byte (SUSE's `?`).
    One,
}

fn glob_matches(p: &[Tok], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((Tok::Byte(b), rest)) => s.first() == Some(b) && glob_matches(rest, &s[1..]),
        Some((Tok::One, rest)) => !s.is_empty() && glob_matches(rest, &s[1..]),
        Some((Tok::Any, rest)) => (0..=s.len()).any(|i| glob_matches(rest, &s[i..])),
        Some((Tok::InComponent, rest)) => {
            let end = s.iter().position(|&b| b == b'/').unwrap_or(s.len());
            (0..=end).any(|i| glob_matches(rest, &s[i..]))
        }
    }
}

/// What a toleration rule is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Symbol,
    /// `vmlinux` or the module's path, as Module.symvers writes it.
    Module,
    Namespace,
}

#[derive(Debug, Clone)]
struct Rule {
    target: Target,
    glob: Vec<Tok>,
    /// SUSE's verdict: PASS tolerates, FAIL does not (Debian's rules always tolerate).
    pass: bool,
    /// `FILE:LINE: PATTERN`, what the report shows.
    said: String,
}

impl Rule {
    fn matches(&self, symbol: &str, module: &str, namespace: Option<&str>) -> bool {
        let subject = match self.target {
            Target::Symbol => symbol,
            Target::Module => module,
            Target::Namespace => match namespace {
                Some(n) => n,
                None => return false,
            },
        };
        glob_matches(&self.glob, subject.as_bytes())
    }
}

/// Changes a maintainer has accepted, in the files maintainers already keep: Debian's
/// `ignore-changes` (debian/bin/buildcheck.py) and SUSE's kABI severities (kabi.pl). A
/// tolerated change stays in the report, marked with the rule that covers it.
#[derive(Debug, Clone, Default)]
pub struct Tolerations {
    debian: Vec<Rule>,
    suse: Vec<Rule>,
}

impl Tolerations {
    pub fn is_empty(&self) -> bool {
        self.debian.is_empty() && self.suse.is_empty()
    }

    /// Debian's `[abi] ignore-changes` entries, one or more a line (`#` comments; the
    /// `ignore-changes:` key and TOML's brackets, quotes and commas are skipped): `PATTERN`
    /// or `name:PATTERN` for a symbol, `module:PATTERN` for `vmlinux` or a module path; `*`
    /// stays within one path component, `**` crosses them. Any rule that matches tolerates.
    pub fn add_debian(&mut self, text: &str, source: &str) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let line = match line.find("ignore-changes") {
                Some(i) => &line[i + "ignore-changes".len()..],
                None => line,
            };
            for word in line.split(|c: char| c.is_whitespace() || c == ',') {
                let word = word.trim_matches(|c| matches!(c, '[' | ']' | '\'' | '"' | '=' | ':'));
                if word.is_empty() {
                    continue;
                }
                let (target, pattern) = match word.split_once(':') {
                    None | Some(("name", _)) => {
                        (Target::Symbol, word.strip_prefix("name:").unwrap_or(word))
                    }
                    Some(("module", p)) => (Target::Module, p),
                    Some((kind, _)) => {
                        return Err(format!(
                        "{source}:{}: `{word}`: unknown kind `{kind}:` (Debian's ignore-changes \
                             takes `name:` and `module:`)",
                        n + 1
                    ))
                    }
                };
                let mut glob = Vec::new();
                let b = pattern.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'*' && b.get(i + 1) == Some(&b'*') {
                        glob.push(Tok::Any);
                        i += 2;
                    } else if b[i] == b'*' {
                        glob.push(Tok::InComponent);
                        i += 1;
                    } else {
                        glob.push(Tok::Byte(b[i]));
                        i += 1;
                    }
                }
                self.debian.push(Rule {
                    target,
                    glob,
                    pass: true,
                    said: format!("{source}:{}: {word}", n + 1),
                });
            }
        }
        Ok(())
    }

    /// SUSE's severities file: `PATTERN PASS|FAIL` a line, `#` comments. A pattern with a
    /// `/`, or `vmlinux`, is a module path; one in capitals without a `/` a namespace; any
    /// other a symbol. `*` is any run, `?` one character. The first rule that matches
    /// decides; PASS tolerates.
    pub fn add_suse(&mut self, text: &str, source: &str) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(pattern), Some(verdict)) = (words.next(), words.next()) else {
                return Err(format!(
                    "{source}:{}: `{line}`: expected `PATTERN PASS` or `PATTERN FAIL`",
                    n + 1
                ));
            };
            let pass = match verdict.to_ascii_uppercase().as_str() {
                "PASS" => true,
                "FAIL" => false,
                _ => {
                    return Err(format!(
                        "{source}:{}: invalid verdict `{verdict}`, must be PASS or FAIL",
                        n + 1
                    ))
                }
            };
            let target = if pattern.contains('/') || pattern == "vmlinux" {
                Target::Module
            } else if pattern.bytes().any(|b| b.is_ascii_uppercase())
                && !pattern.bytes().any(|b| b.is_ascii_lowercase())
            {
                Target::Namespace
            } else {
                Target::Symbol
            };
            let glob = pattern
                .bytes()
                .map(|b| match b {
                    b'*' => Tok::Any,
                    b'?' => Tok::One,
                    b => Tok::Byte(b),
                })
                .collect();
            self.suse.push(Rule {
                target,
                glob,
                pass,
                said: format!("{source}:{}: {pattern} {verdict}", n + 1),
            });
        }
        Ok(())
    }

    /// The rule that tolerates a change of `symbol` (exported from `module`, in
    /// `namespace`), as the report shows it.
    pub fn covering(&self, symbol: &str, module: &str, namespace: Option<&str>) -> Option<String> {
        if let Some(r) = self
            .debian
            .iter()
            .find(|r| r.matches(symbol, module, namespace))
        {
            return Some(r.said.clone());
        }
        self.suse
            .iter()
            .find(|r| r.matches(symbol, module, namespace))
            .filter(|r| r.pass)
            .map(|r| r.said.clone())
    }
}

/// A change of the kernel as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelChange {
    /// `vermagic`, `modversions` (on/off) or `versions_format` (basic / extended / both).
    pub what: String,
    pub old: String,
    pub new: String,
    /// What it means for modules built for the old kernel.
    pub detail: String,
}

/// How a kernel's modules carry their versions: `basic` (`__versions`), `extended` (6.14+
/// `__version_ext_*`), `mixed`, or `none`.
fn versions_format(modules: &[ModuleInput]) -> String {
    let (mut basic, mut ext) = (0, 0);
    for f in modules.iter().filter_map(|m| m.facts.as_ref().ok()) {
        if f.versions.is_some() {
            match f.versions_format {
                VersionsFormat::Basic => basic += 1,
                VersionsFormat::Extended => ext += 1,
            }
        }
    }
    match (basic, ext) {
        (0, 0) => "none",
        (_, 0) => "basic",
        (0, _) => "extended",
        _ => "mixed",
    }
    .to_string()
}

fn kernel_changes(old_kernel: &Kernel<'_>, new_kernel: &Kernel<'_>) -> Vec<KernelChange> {
    let (old, new) = (old_kernel.table, new_kernel.table);
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (&old.vermagic, &new.vermagic) {
        if a != b {
            let tail = |s: &str| s.split_once(' ').map(|(_, t)| t.to_string());
            let detail = if tail(a) == tail(b) {
                "the release only: modules with CRCs load across it (the loader compares \
                 each symbol's CRC instead); modules without them are refused"
            } else {
                "beyond the release: every module built for the old kernel is refused \
                 (bad vermagic)"
            };
            out.push(KernelChange {
                what: "vermagic".into(),
                old: a.clone(),
                new: b.clone(),
                detail: detail.into(),
            });
        }
    }
    if old.modversions != new.modversions {
        let on = |b: bool| if b { "on" } else { "off" }.to_string();
        out.push(KernelChange {
            what: "modversions".into(),
            old: on(old.modversions),
            new: on(new.modversions),
            detail: "CONFIG_MODVERSIONS: CRCs are compared only where both sides have them".into(),
        });
    }
    let (a, b) = (
        old_kernel.versions_format.clone(),
        new_kernel.versions_format.clone(),
    );
    if a != b && a != "none" && b != "none" {
        out.push(KernelChange {
            what: "versions_format".into(),
            old: a,
            new: b,
            detail: "how modules carry their CRCs: `__versions` (basic) or 6.14's \
                     `__version_ext_*` (extended)"
                .into(),
        });
    }
    out
}

/// A consumer the new kernel refuses, by its first reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Broken {
    pub module: String,
    pub path: String,
    pub verdict: Verdict,
    pub symbol: Option<String>,
    pub detail: String,
    /// Every reason it is refused is a change a toleration covers.
    pub tolerated: bool,
}

/// A module judged on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Consumer {
    pub module: String,
    pub path: String,
}

/// `modverify diff --format json`; documented in docs/json-schema.md.
#[derive(Debug, Clone, Serialize)]
pub struct KabiDiff {
    pub schema: String,
    pub arch: String,
    pub old: Side,
    pub new: Side,
    pub kernel: Vec<KernelChange>,
    /// Every export change, grouped by kind, then by symbol.
    pub changes: Vec<Change>,
    /// Every consumer judged: the old kernel's modules, then the --consumers given.
    pub consumers: Vec<Consumer>,
    /// Every consumer the old kernel loads and the new one refuses, with its reason.
    pub broken: Vec<Broken>,
    /// Consumers the old kernel already refuses (not the update's doing).
    pub already_failing: Vec<Consumer>,
    /// What the diff could not see (a kernel read from Module.symvers alone has no vermagic).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub summary: DiffSummary,
}

/// What one side was read from and whether its own table holds together.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub kernel: String,
    pub release: Option<String>,
    pub exports: usize,
    pub modules: usize,
    /// The export table's own consistency (`check`'s export findings); a diff of an
    /// inconsistent table is said first.
    pub consistent: bool,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DiffSummary {
    /// Exports with at least one change.
    pub exports_changed: usize,
    /// Changes: an export can have several (moved, and its CRC changed).
    pub changes: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub consumers: usize,
    pub broken: usize,
    /// Broken consumers refused only over tolerated changes.
    pub broken_tolerated: usize,
    /// Changes that break a consumer and no toleration covers.
    pub breaking_changes: usize,
    pub tolerated: usize,
}

/// One side of a diff: a kernel's export table, its own modules (whose exports it offers
/// and who import from it) and what it was read from.
pub struct Kernel<'a> {
    pub table: &'a ExportTable,
    pub modules: &'a [ModuleInput],
    pub kernel: String,
    pub release: Option<String>,
    /// The export table's own consistency and its errors (`check`'s export findings).
    pub consistent: bool,
    pub problems: Vec<String>,
    /// How the kernel's modules carry their CRCs (see [`versions_format`]).
    pub versions_format: String,
    /// How many modules the kernel has (a saved kernel keeps them as consumers).
    pub module_count: usize,
}

impl<'a> Kernel<'a> {
    /// A kernel as `check` read it.
    pub fn of(c: &'a crate::check::stage::Checked) -> Self {
        Kernel {
            table: &c.table,
            modules: &c.modules,
            kernel: c.report.kernel.path.clone(),
            release: c
                .report
                .kernel
                .release
                .clone()
                // A table read from Module.symvers has no banner: the vermagic check's stage
                // took from the kernel's own modules names the release.
                .or_else(|| {
                    c.table
                        .vermagic
                        .as_deref()
                        .and_then(|v| v.split(' ').next())
                        .map(str::to_string)
                }),
            consistent: c.report.exports.consistent,
            problems: c
                .report
                .exports
                .problems
                .iter()
                .filter(|p| p.severity == crate::check::Severity::Error)
                .map(|p| p.detail.clone())
                .collect(),
            versions_format: versions_format(&c.modules),
            module_count: c.modules.len(),
        }
    }
}

/// One export of a [`Snapshot`]: `[symbol, where it lives (vmlinux or the module's path, as
/// Module.symvers' module column), the CRC the loader compares or null, GPL-only, namespace
/// or null]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedExport(
    pub String,
    pub String,
    pub Option<u32>,
    pub bool,
    pub Option<String>,
);

/// One of a kernel's modules as `check` read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModule {
    pub path: String,
    pub stem: String,
    pub facts: crate::elf::ModuleFacts,
}

/// A kernel's export table and its modules, kept in results.json (`kabi`) so a later run
/// (`--baseline`, `merge --baseline`) can diff its own kernel against this one and judge these
/// modules against it, with no binary at hand. The exports are read from the binaries (the
/// CRC each slot gives the loader, as [`exports_of`] reads it), not copied from Module.symvers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub kernel: String,
    pub release: Option<String>,
    pub vermagic: Option<String>,
    pub modversions: bool,
    pub versions_format: String,
    pub consistent: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Every export of the kernel and its modules, by symbol.
    pub exports: Vec<SavedExport>,
    /// The modules whose facts were read (an unreadable one has none to keep).
    pub modules: Vec<SavedModule>,
}

impl Snapshot {
    pub fn of(c: &crate::check::stage::Checked) -> Self {
        let k = Kernel::of(c);
        Snapshot {
            kernel: k.kernel,
            release: k.release,
            vermagic: c.table.vermagic.clone(),
            modversions: c.table.modversions,
            versions_format: k.versions_format,
            consistent: k.consistent,
            problems: k.problems,
            exports: exports_of(&c.table, &c.modules)
                .into_iter()
                .map(|(sym, e)| SavedExport(sym, e.path, e.crc, e.gpl_only, e.namespace))
                .collect(),
            modules: c
                .modules
                .iter()
                .filter_map(|m| {
                    Some(SavedModule {
                        path: m.path.clone(),
                        stem: m.stem.clone(),
                        facts: m.facts.as_ref().ok()?.clone(),
                    })
                })
                .collect(),
        }
    }

    /// The export table as the loader would find it: vmlinux's exports, and the modules'
    /// (through their Module.symvers rows) for modules not among those judged.
    pub fn table(&self) -> ExportTable {
        let symvers = crate::elf::symvers::Symvers {
            entries: self
                .exports
                .iter()
                .map(
                    |SavedExport(symbol, path, crc, gpl, ns)| crate::elf::symvers::SymversEntry {
                        crc: crc.unwrap_or(0),
                        symbol: symbol.clone(),
                        module: path.clone(),
                        gpl: *gpl,
                        namespace: ns.clone(),
                    },
                )
                .collect(),
        };
        let mut t = ExportTable::from_symvers(&symvers);
        t.modversions = self.modversions;
        t.vermagic = self.vermagic.clone();
        t.release = self.release.clone();
        t
    }

    /// The modules, as `check` takes them.
    pub fn module_inputs(&self) -> Vec<ModuleInput> {
        self.modules
            .iter()
            .map(|m| ModuleInput {
                path: m.path.clone(),
                stem: m.stem.clone(),
                facts: Ok(m.facts.clone()),
            })
            .collect()
    }

    /// This kernel as a side of a diff over `table` (from [`Snapshot::table`]); its modules
    /// are not its own providers there but the consumers the diff judges.
    pub fn side<'a>(&self, table: &'a ExportTable) -> Kernel<'a> {
        Kernel {
            table,
            modules: &[],
            kernel: self.kernel.clone(),
            release: self.release.clone(),
            consistent: self.consistent,
            problems: self.problems.clone(),
            versions_format: self.versions_format.clone(),
            module_count: self.modules.len(),
        }
    }
}

/// What changed between the export table a `baseline` run saved and `now`'s, for the arch
/// `arch`: the baseline's modules are the consumers, judged against each kernel as `check`
/// judges them (a module built last night, loaded into tonight's kernel).
pub fn drift(
    arch: &ArchDescriptor,
    baseline: &Snapshot,
    now: &Snapshot,
    policy: Policy,
) -> KabiDiff {
    let (before, after) = (baseline.table(), now.table());
    diff(
        arch,
        &baseline.side(&before),
        &now.side(&after),
        &baseline.module_inputs(),
        policy,
        &Tolerations::default(),
    )
}

/// Compares two checked kernels. `consumers`: out-of-tree modules (read for `arch`), judged
/// with the old kernel's own modules.
pub fn diff(
    arch: &ArchDescriptor,
    old: &Kernel<'_>,
    new: &Kernel<'_>,
    consumers: &[ModuleInput],
    policy: Policy,
    tolerations: &Tolerations,
) -> KabiDiff {
    let old_exports = exports_of(old.table, old.modules);
    let new_exports = exports_of(new.table, new.modules);
    let mut changes = export_changes(&old_exports, &new_exports);

    // Who imports what: the old kernel's own modules, then the consumers given.
    let all_consumers: Vec<ModuleInput> = old
        .modules
        .iter()
        .chain(consumers.iter())
        .cloned()
        .collect();
    let mut importers: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for m in &all_consumers {
        let Ok(f) = &m.facts else { continue };
        let name = m.name();
        for u in &f.undefined {
            importers
                .entry(u.name.as_str())
                .or_default()
                .insert(name.clone());
        }
    }

    // check's judgement on each consumer, on each side: against that kernel and its modules.
    let judged = |side: &Kernel<'_>| -> Vec<ModuleReport> {
        let mut list = side.modules.to_vec();
        let n = list.len();
        list.extend(all_consumers.iter().cloned());
        let mut r = predict_providing(side.table, arch, &list, n, policy);
        r.split_off(n)
    };
    let (before, after) = rayon::join(|| judged(old), || judged(new));
    let mut broken = Vec::new();
    // The judgement (in `after`) of each broken consumer.
    let mut broken_by: Vec<&ModuleReport> = Vec::new();
    let mut already_failing = Vec::new();
    for (b, a) in before.iter().zip(&after) {
        if b.failed() {
            already_failing.push(Consumer {
                module: b.name.clone(),
                path: b.path.clone(),
            });
            continue;
        }
        if !a.failed() {
            continue;
        }
        broken_by.push(a);
        let first = a.problems.iter().find(|p| p.fatal);
        broken.push(Broken {
            module: a.name.clone(),
            path: a.path.clone(),
            verdict: a.verdict,
            symbol: first.and_then(|p| p.symbol.clone()),
            detail: first.map(|p| p.detail.clone()).unwrap_or_default(),
            tolerated: false,
        });
    }
    // Each change names its consumers, and those the new kernel refuses over that symbol.
    let mut refused: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for a in &broken_by {
        for p in a.problems.iter().filter(|p| p.fatal) {
            if let Some(s) = &p.symbol {
                refused
                    .entry(s.as_str())
                    .or_default()
                    .insert(a.name.clone());
            }
        }
    }
    for c in &mut changes {
        if let Some(users) = importers.get(c.symbol.as_str()) {
            c.consumers = users.iter().cloned().collect();
        }
        if let Some(r) = refused.get(c.symbol.as_str()) {
            c.breaks = r.iter().cloned().collect();
        }
    }
    changes.sort_by(|a, b| (a.kind, &a.symbol).cmp(&(b.kind, &b.symbol)));
    if !tolerations.is_empty() {
        for c in &mut changes {
            let ns = new_exports
                .get(&c.symbol)
                .or_else(|| old_exports.get(&c.symbol))
                .and_then(|e| e.namespace.as_deref());
            c.tolerated = tolerations.covering(&c.symbol, &c.module, ns);
        }
        // A consumer refused only over tolerated changes is tolerated with them.
        let mut untolerated: BTreeSet<&str> = BTreeSet::new();
        let mut changed: BTreeSet<&str> = BTreeSet::new();
        for c in &changes {
            changed.insert(&c.symbol);
            if c.tolerated.is_none() {
                untolerated.insert(&c.symbol);
            }
        }
        for (b, a) in broken.iter_mut().zip(&broken_by) {
            let reasons: Vec<Option<&str>> = a
                .problems
                .iter()
                .filter(|p| p.fatal)
                .map(|p| p.symbol.as_deref())
                .collect();
            b.tolerated = !reasons.is_empty()
                && reasons
                    .iter()
                    .all(|s| s.is_some_and(|s| changed.contains(s) && !untolerated.contains(s)));
        }
    }

    let side = |k: &Kernel<'_>, exports: usize| Side {
        kernel: k.kernel.clone(),
        release: k.release.clone(),
        exports,
        modules: k.module_count,
        consistent: k.consistent,
        problems: k.problems.clone(),
    };
    let mut summary = DiffSummary {
        exports_changed: changes
            .iter()
            .map(|c| c.symbol.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        changes: changes.len(),
        consumers: all_consumers.len(),
        broken: broken.len(),
        broken_tolerated: broken.iter().filter(|b| b.tolerated).count(),
        ..Default::default()
    };
    for c in &changes {
        *summary.by_kind.entry(c.kind.as_str().into()).or_default() += 1;
        if c.tolerated.is_some() {
            summary.tolerated += 1;
        } else if !c.breaks.is_empty() {
            summary.breaking_changes += 1;
        }
    }
    KabiDiff {
        schema: DIFF_SCHEMA.into(),
        arch: arch.name.clone(),
        old: side(old, old_exports.len()),
        new: side(new, new_exports.len()),
        kernel: kernel_changes(old, new),
        changes,
        consumers: before
            .iter()
            .map(|r| Consumer {
                module: r.name.clone(),
                path: r.path.clone(),
            })
            .collect(),
        broken,
        already_failing,
        notes: [("old", old), ("new", new)]
            .iter()
            .filter(|(_, c)| c.table.vermagic.is_none())
            .map(|(w, _)| {
                format!(
                    "the {w} kernel's vermagic is unknown (its table was read from Module.symvers \
                     and none of its modules carries one): a module refused for its vermagic \
                     alone is not counted; give the kernel image (with its real System.map) to \
                     see it"
                )
            })
            .collect(),
        summary,
    }
}

pub const DIFF_SCHEMA: &str = "modverify.diff/1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_patterns_keep_star_within_a_path_component() {
        let mut t = Tolerations::default();
        t.add_debian(
            "# from debian/config/defines\nignore-changes:\n  __cpuhp_*\n  module:drivers/gpu/*\n  'module:net/**', name:kvm_?\n",
            "defines",
        )
        .unwrap();
        assert!(t.covering("__cpuhp_setup_state", "vmlinux", None).is_some());
        assert!(t.covering("drm_foo", "drivers/gpu/drm", None).is_some());
        assert!(t
            .covering("drm_foo", "drivers/gpu/drm/i915/i915", None)
            .is_none());
        assert!(t.covering("x", "net/ipv4/netfilter/nf_nat", None).is_some());
        // `?` is literal for Debian.
        assert!(t.covering("kvm_x", "vmlinux", None).is_none());
        assert_eq!(
            t.covering("x", "net/a/b", None).unwrap(),
            "defines:5: module:net/**"
        );
        let e = Tolerations::default()
            .add_debian("namespace:FOO\n", "f")
            .unwrap_err();
        assert!(
            e.contains("f:1: `namespace:FOO`: unknown kind `namespace:`"),
            "{e}"
        );
    }

    #[test]
    fn suse_severities_first_match_decides_by_symbol_path_or_namespace() {
        let mut t = Tolerations::default();
        t.add_suse(
            "drivers/gpu/drm/i915/* FAIL\ndrivers/gpu/* PASS\nCRYPTO_INTERNAL PASS\nkvm_* PASS # kvm\nvmlinux fail\n",
            "severities",
        )
        .unwrap();
        assert!(t.covering("a", "drivers/gpu/drm/i915/i915", None).is_none());
        assert!(t.covering("a", "drivers/gpu/drm/drm", None).is_some());
        assert!(t
            .covering("a", "lib/foo", Some("CRYPTO_INTERNAL"))
            .is_some());
        assert!(t.covering("kvm_vcpu", "vmlinux", None).is_some());
        assert!(t.covering("other", "vmlinux", None).is_none());
        let e = Tolerations::default()
            .add_suse("foo MAYBE\n", "s")
            .unwrap_err();
        assert!(e.contains("s:1: invalid verdict `MAYBE`"), "{e}");
    }

    #[test]
    fn module_paths_are_written_as_module_symvers_does() {
        assert_eq!(
            module_path("/lib/modules/6.1.0-9-amd64/kernel/drivers/net/tun.ko.xz"),
            "drivers/net/tun"
        );
        assert_eq!(module_path("./fs/fat/vfat.ko"), "fs/fat/vfat");
    }

    fn e(owner: &str, crc: u32, gpl: bool, ns: Option<&str>) -> Export {
        Export {
            owner: owner.into(),
            path: owner.into(),
            crc: Some(crc),
            gpl_only: gpl,
            namespace: ns.map(str::to_string),
        }
    }

    #[test]
    fn every_kind_of_export_change_is_named_with_its_values() {
        let old: BTreeMap<String, Export> = [
            ("gone", e("vmlinux", 1, false, None)),
            ("crc", e("vmlinux", 2, false, None)),
            ("tight", e("vmlinux", 3, false, None)),
            ("loose", e("vmlinux", 4, true, None)),
            ("ns", e("vmlinux", 5, false, Some("A"))),
            ("moved", e("foo", 6, false, None)),
            ("same", e("vmlinux", 7, false, None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let new: BTreeMap<String, Export> = [
            ("crc", e("vmlinux", 9, false, None)),
            ("tight", e("vmlinux", 3, true, None)),
            ("loose", e("vmlinux", 4, false, None)),
            ("ns", e("vmlinux", 5, false, Some("module:kvm"))),
            ("moved", e("vmlinux", 6, false, None)),
            ("same", e("vmlinux", 7, false, None)),
            ("new", e("bar", 8, false, None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let c = export_changes(&old, &new);
        let got: Vec<(String, &str, Option<String>, Option<String>)> = c
            .iter()
            .map(|c| {
                (
                    c.symbol.clone(),
                    c.kind.as_str(),
                    c.old.clone(),
                    c.new.clone(),
                )
            })
            .collect();
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            got,
            vec![
                (
                    "crc".into(),
                    "crc_changed",
                    s("0x00000002"),
                    s("0x00000009")
                ),
                ("gone".into(), "removed", s("vmlinux"), None),
                (
                    "loose".into(),
                    "gpl_relaxed",
                    s("EXPORT_SYMBOL_GPL"),
                    s("EXPORT_SYMBOL")
                ),
                ("moved".into(), "moved", s("foo"), s("vmlinux")),
                ("ns".into(), "namespace_changed", s("A"), s("module:kvm")),
                (
                    "tight".into(),
                    "gpl_tightened",
                    s("EXPORT_SYMBOL"),
                    s("EXPORT_SYMBOL_GPL")
                ),
                ("new".into(), "added", None, s("bar")),
            ]
        );
    }
}
