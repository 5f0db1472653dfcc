//! The human-readable report of `modverify check`: failing modules first, each with the
//! kernel's own words, then the export table's findings and a one-line summary.
use crate::check::stage::{CheckReport, Verified};
use crate::check::{Severity, Verdict};
use std::fmt::Write;

/// How many symbols of a long list to show inline; the rest are counted, never dropped silently.
const INLINE_SYMBOLS: usize = 8;

/// The check report wrapped to `width` columns (the terminal's, or 100 when not a terminal).
pub fn check_table(r: &CheckReport, verbose: bool, width: usize) -> String {
    wrap(&check_lines(r, verbose), width)
}

/// Breaks lines longer than `width` at spaces; continuation lines keep the line's indent plus
/// four columns, so a finding's words stay under it.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for line in text.lines() {
        if line.chars().count() <= width {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let cont = " ".repeat((indent + 4).min(width / 2));
        let mut cur = String::from(&line[..indent]);
        let mut first = true;
        for word in line[indent..].split(' ') {
            let lead = if first { indent } else { cont.len() };
            if cur.chars().count() > lead && cur.chars().count() + 1 + word.chars().count() > width
            {
                out.push_str(cur.trim_end());
                out.push('\n');
                cur = cont.clone();
                first = false;
            } else if cur.chars().count() > lead {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        out.push_str(cur.trim_end());
        out.push('\n');
    }
    out
}

fn check_lines(r: &CheckReport, verbose: bool) -> String {
    let mut o = String::new();
    let k = &r.kernel;
    let _ = writeln!(
        o,
        "modverify check: {} kernel {} ({}: {}), policy {}",
        r.arch,
        k.release.as_deref().unwrap_or("(release unknown)"),
        match k.source {
            crate::elf::exports::ExportSource::Vmlinux => "vmlinux",
            crate::elf::exports::ExportSource::Symvers => "Module.symvers only",
        },
        k.path,
        match r.policy {
            crate::check::Policy::Debian => "debian",
            crate::check::Policy::Upstream => "upstream",
        }
    );
    if let Some(v) = &k.vermagic {
        let _ = writeln!(o, "  vermagic: '{v}'");
    }
    for n in &r.notes {
        let _ = writeln!(o, "  note: {n}");
    }
    let _ = writeln!(
        o,
        "\nExport table: {} exports ({} GPL-only){}",
        r.exports.count,
        r.exports.gpl,
        if !k.modversions {
            ", no CRC tables (CONFIG_MODVERSIONS off)"
        } else {
            ""
        }
    );
    if r.exports.problems.is_empty() {
        let _ = writeln!(
            o,
            "  {}",
            match r.exports.verified {
                Verified::CrcSlots => "consistent: every CRC slot belongs to its symbol",
                Verified::NamesOnly =>
                    "consistent as far as it goes: no CRC tables to check (CONFIG_MODVERSIONS off)",
                Verified::SymversOnly =>
                    "not verified: without the kernel binary its CRC slots cannot be read (give --vmlinux)",
            }
        );
    }
    // A class that repeats thousands of times (11,182 "has CRC 0" on one kernel) is one
    // finding: its first few are shown, the rest summarised by kind.
    const PER_KIND: usize = 3;
    let mut seen: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for p in &r.exports.problems {
        let kind = format!("{:?}", p.kind);
        let list = seen.entry(kind).or_default();
        list.push(p.symbol.as_deref().unwrap_or("?"));
        if list.len() > PER_KIND && !verbose {
            continue;
        }
        let sev = match p.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "warning",
        };
        let _ = writeln!(
            o,
            "  {sev:7} {}{}: {}",
            p.table,
            p.slot.map(|s| format!(" slot {s}")).unwrap_or_default(),
            p.detail
        );
        if p.expected_crc.is_some() {
            let _ = writeln!(
                o,
                "          symbol's CRC {} ({}), kernel reads {}",
                hex(p.expected_crc),
                p.reference.as_deref().unwrap_or("?"),
                hex(p.kernel_crc)
            );
        }
        if p.symbols.len() > 1 {
            let _ = writeln!(
                o,
                "          symbols: {}",
                inline_list(
                    p.symbols.iter().map(String::as_str),
                    "all listed by --format json"
                )
            );
        }
    }

    for (kind, syms) in &seen {
        if syms.len() > PER_KIND && !verbose {
            let _ = writeln!(
                o,
                "  … and {} more {kind} findings: {}{} (all: -v or --format json)",
                syms.len() - PER_KIND,
                syms[PER_KIND..syms.len().min(PER_KIND + INLINE_SYMBOLS)].join(", "),
                if syms.len() > PER_KIND + INLINE_SYMBOLS {
                    ", …"
                } else {
                    ""
                }
            );
        }
    }

    // Root causes first; modules that fail only because a module they use fails are
    // summarised after them (all of them are in --format json).
    let root: Vec<_> = r
        .modules
        .iter()
        .filter(|m| m.failed() && m.verdict != Verdict::DependencyFailed)
        .collect();
    let dependants: Vec<_> = r
        .modules
        .iter()
        .filter(|m| m.verdict == Verdict::DependencyFailed)
        .collect();
    if !root.is_empty() {
        let _ = writeln!(o, "\nFailing modules ({}):", root.len());
        // With many failing modules, each gets its first problem (the loader stops there
        // for module_layout; otherwise it is one example of the cause).
        let per_module = if verbose {
            usize::MAX
        } else if root.len() > 20 {
            1
        } else {
            PROBLEMS_PER_MODULE
        };
        // Thousands failing the same way are one finding: the first few of each verdict in
        // full, the rest by name.
        const PER_VERDICT: usize = 5;
        let mut shown: std::collections::BTreeMap<Verdict, Vec<&str>> = Default::default();
        for m in &root {
            let names = shown.entry(m.verdict).or_default();
            names.push(&m.name);
            if names.len() > PER_VERDICT && !verbose && root.len() > 20 {
                continue;
            }
            let _ = writeln!(o, "  {:18} {}  ({})", m.verdict.as_str(), m.name, m.path);
            problem_lines(&mut o, &m.problems, per_module);
        }
        for (v, names) in &shown {
            if names.len() > PER_VERDICT && !verbose && root.len() > 20 {
                let rest = &names[PER_VERDICT..];
                let _ = writeln!(
                    o,
                    "  … and {} more {} modules: {}{} (each with its messages: -v)",
                    rest.len(),
                    v.as_str(),
                    rest[..rest.len().min(INLINE_SYMBOLS)].join(", "),
                    if rest.len() > INLINE_SYMBOLS {
                        ", …"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    if !dependants.is_empty() {
        let _ = writeln!(
            o,
            "\n{} failing only because a module they use fails (dependency_failed):",
            plural(dependants.len(), "module")
        );
        if verbose {
            for m in &dependants {
                let why = m.problems.last().map(|p| p.detail.as_str()).unwrap_or("");
                let _ = writeln!(o, "  {}: {why}", m.name);
            }
        } else {
            let _ = writeln!(
                o,
                "  {}",
                inline_list(
                    dependants.iter().map(|m| m.name.as_str()),
                    "each with its reason: -v"
                )
            );
        }
    }
    // Files modprobe would not load: their own heading, with the file that loads instead.
    let shadowed: Vec<_> = r
        .modules
        .iter()
        .filter(|m| m.verdict == Verdict::Shadowed)
        .collect();
    if !shadowed.is_empty() {
        let _ = writeln!(
            o,
            "
Modules shadowed by another file of their name, not checked ({}):",
            shadowed.len()
        );
        for m in &shadowed {
            let _ = writeln!(o, "  {}  ({})", m.name, m.path);
            for p in &m.problems {
                let _ = writeln!(o, "      {}", p.detail);
            }
        }
    }
    let warned: Vec<_> = r
        .modules
        .iter()
        .filter(|m| !m.failed() && m.verdict != Verdict::Shadowed && !m.problems.is_empty())
        .collect();
    if !warned.is_empty() {
        let _ = writeln!(o, "\nModules that load with warnings ({}):", warned.len());
        for m in &warned {
            let _ = writeln!(o, "  {}  ({})", m.name, m.path);
            problem_lines(
                &mut o,
                &m.problems,
                if verbose {
                    usize::MAX
                } else {
                    PROBLEMS_PER_MODULE
                },
            );
        }
    }
    let clean: Vec<_> = r
        .modules
        .iter()
        .filter(|m| !m.failed() && m.problems.is_empty())
        .collect();
    if verbose && !clean.is_empty() {
        let _ = writeln!(o, "\nModules that load ({}):", clean.len());
        for m in clean {
            let _ = writeln!(o, "  ok  {}  ({})", m.name, m.path);
        }
    }
    let s = &r.summary;
    // Said by name, in the order of the names.
    let mut verdicts: Vec<String> = s
        .by_verdict
        .iter()
        .filter(|(v, _)| !matches!(v, Verdict::Ok | Verdict::Shadowed))
        .map(|(v, n)| format!("{} {n}", v.as_str()))
        .collect();
    verdicts.sort();
    let _ = writeln!(
        o,
        "\n{}: {} ok, {}{} failing{}; export table: {}, {}",
        plural(s.modules, "module"),
        s.ok,
        match s.by_verdict.get(&Verdict::Shadowed) {
            Some(n) => format!("{n} shadowed, "),
            None => String::new(),
        },
        s.failed,
        if verdicts.is_empty() {
            String::new()
        } else {
            format!(" ({})", verdicts.join(", "))
        },
        plural(s.export_errors, "error"),
        plural(s.export_warnings, "warning")
    );
    o
}

/// Problems listed per module before the rest are counted (all of them: -v or JSON).
const PROBLEMS_PER_MODULE: usize = 4;

fn problem_lines(o: &mut String, problems: &[crate::check::Problem], limit: usize) {
    let shown = limit.min(problems.len());
    for p in &problems[..shown] {
        for msg in &p.kernel_messages {
            let _ = writeln!(o, "      kernel: {msg}");
        }
        let _ = writeln!(
            o,
            "      {}{}",
            if p.fatal { "" } else { "warning: " },
            p.detail
        );
    }
    if shown < problems.len() {
        let rest = &problems[shown..];
        let symbols: Vec<&str> = rest.iter().filter_map(|p| p.symbol.as_deref()).collect();
        let _ = writeln!(
            o,
            "      … and {} more {}{} (all: -v or --format json)",
            rest.len(),
            if rest.len() == 1 {
                "problem"
            } else {
                "problems"
            },
            if symbols.is_empty() {
                String::new()
            } else {
                format!(
                    " with {}{}",
                    symbols[..symbols.len().min(INLINE_SYMBOLS)].join(", "),
                    if symbols.len() > INLINE_SYMBOLS {
                        ", …"
                    } else {
                        ""
                    }
                )
            }
        );
    }
}

/// The first `INLINE_SYMBOLS` names, then how many more and where they all are: a long list
/// is shortened, never silently.
fn inline_list<'a>(names: impl ExactSizeIterator<Item = &'a str>, all_in: &str) -> String {
    let total = names.len();
    let shown: Vec<&str> = names.take(INLINE_SYMBOLS).collect();
    let more = total - shown.len();
    if more == 0 {
        shown.join(", ")
    } else {
        format!("{}, … and {more} more ({all_in})", shown.join(", "))
    }
}

/// "1 module", "2 modules".
fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn hex(v: Option<u64>) -> String {
    v.map(|v| format!("{v:#010x}"))
        .unwrap_or_else(|| "-".into())
}

/// The human-readable report of `modverify boot`.
pub fn boot_table(r: &crate::boot::BootReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "modverify boot: {} kernel {}", r.arch, r.kernel);
    let _ = writeln!(o, "  qemu: {}", r.qemu_command);
    if !r.payload.is_empty() {
        let _ = writeln!(o, "  payload: {}", r.payload);
    }
    if r.batches.len() > 1 || r.shard.is_some() {
        // Several guests: one line each; their reboots are in boot.json.
        for b in &r.batches {
            let _ = writeln!(
                o,
                "  boot {}: {} modules ({} with what they need), {} MiB{}, {:.1} s{}",
                b.batch,
                b.modules,
                b.loaded_with_dependencies,
                b.memory_mb,
                b.memory_used_mb
                    .map(|u| format!(" ({u} used)"))
                    .unwrap_or_default(),
                b.seconds,
                if b.done { ", done" } else { ", no done" }
            );
        }
    }
    for (i, b) in r.boots.iter().enumerate().filter(|_| r.batches.len() <= 1) {
        let _ = writeln!(
            o,
            "  boot {}: from module {}, {:.1} s, QEMU {}{}",
            i + 1,
            b.start_index,
            b.seconds,
            b.ended,
            if b.saw_done { ", done" } else { ", no done" }
        );
        for l in &b.crash_lines {
            let _ = writeln!(o, "      console: {l}");
        }
    }
    if let Some(f) = &r.boot_failure {
        let _ = writeln!(o, "  BOOT FAILED: {f}");
    }
    if r.damaged_records > 0 || r.lost_records > 0 {
        let _ = writeln!(
            o,
            "  {} damaged and {} lost result records (see {})",
            r.damaged_records, r.lost_records, r.console_log
        );
    }
    // Modules never tried share one reason (the guest died first): said once.
    let not_run: Vec<_> = r
        .modules
        .iter()
        .filter(|m| m.verdict == crate::verdict::RuntimeVerdict::NotRun)
        .collect();
    if let Some(first) = not_run.first() {
        let _ = writeln!(
            o,
            "\n{} module(s) not run: {}",
            not_run.len(),
            first
                .not_run_reason
                .as_deref()
                .unwrap_or("no result arrived")
        );
    }
    let shadowed: Vec<_> = r
        .modules
        .iter()
        .filter(|m| m.verdict == crate::verdict::RuntimeVerdict::Shadowed)
        .collect();
    if !shadowed.is_empty() {
        let _ = writeln!(
            o,
            "\nModules shadowed by another file of their name, not loaded ({}):",
            shadowed.len()
        );
        for m in &shadowed {
            let _ = writeln!(o, "  {}  ({})", m.name, m.path);
            if let Some(why) = &m.not_run_reason {
                let _ = writeln!(o, "      {why}");
            }
        }
    }
    // Tries that disagree: no verdict stands; each try is shown.
    let flaky: Vec<_> = r.modules.iter().filter(|m| m.flaky()).collect();
    if !flaky.is_empty() {
        let _ = writeln!(
            o,
            "\nFlaky modules: tried again in a fresh guest, the tries disagree ({}):",
            flaky.len()
        );
        for m in &flaky {
            let _ = writeln!(o, "  FLAKY          {}", m.name);
            let first = crate::verdict::Try::of(m);
            for (n, t) in std::iter::once(&first).chain(&m.retries).enumerate() {
                let _ = writeln!(
                    o,
                    "      try {}: {}{}{}",
                    n + 1,
                    t.verdict.as_str(),
                    t.errno_name
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default(),
                    t.kernel_messages
                        .first()
                        .map(|k| format!(": {k}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    let mut failed: Vec<_> = r
        .modules
        .iter()
        .filter(|m| m.verdict != crate::verdict::RuntimeVerdict::NotRun)
        .filter(|m| m.not_known_to_work() || (!m.agrees && !m.flaky()))
        .collect();
    // What took the guest down first, then disagreements, then the rest (in load order).
    failed.sort_by_key(|m| {
        use crate::verdict::RuntimeVerdict as R;
        let down = matches!(m.verdict, R::Crashed | R::Hung) || m.unload_crashed;
        (!down, m.agrees, m.index)
    });
    if !failed.is_empty() {
        let _ = writeln!(
            o,
            "\nModules that failed, or where prediction and kernel disagree ({}):",
            failed.len()
        );
        for m in failed {
            let _ = writeln!(
                o,
                "  {:14} {}{}{}{}{}",
                m.verdict.as_str(),
                m.name,
                m.symbol
                    .as_deref()
                    .map(|s| format!(" (symbol {s})"))
                    .unwrap_or_default(),
                match (m.errno, &m.errno_name) {
                    (Some(e), Some(n)) => format!(" errno {e} ({n})"),
                    (Some(e), None) => format!(" errno {e}"),
                    _ => String::new(),
                },
                match (m.predicted, m.agrees) {
                    (Some(p), false) =>
                        format!("  DISAGREES with the static prediction `{}`", p.as_str()),
                    (Some(p), true) => format!("  (predicted {})", p.as_str()),
                    (None, _) => String::new(),
                },
                if m.reproduced() {
                    format!("  reproduced in {} tries", m.retries.len() + 1)
                } else {
                    String::new()
                }
            );
            for msg in &m.kernel_messages {
                let _ = writeln!(o, "      kernel: {msg}");
            }
            if m.unload_crashed {
                let _ = writeln!(o, "      unloading it took the kernel down");
            } else if m.unloaded == Some(false) {
                let _ = writeln!(
                    o,
                    "      unload failed: errno {}",
                    m.unload_errno.unwrap_or(0)
                );
            }
            for l in m
                .console_excerpt
                .iter()
                .rev()
                .take(12)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                let _ = writeln!(o, "      console: {l}");
            }
        }
    }
    if let Some(t) = &r.export_table {
        if t.equal {
            let _ = writeln!(
                o,
                "\nRunning export table: {} exports, identical to the ELF's ({})",
                t.runtime_exports, t.compared
            );
        } else {
            let _ = writeln!(
                o,
                "\nRunning export table differs from the ELF's ({} differences; compared {}):",
                t.differences.len(),
                t.compared
            );
            for d in t.differences.iter().take(20) {
                let _ = writeln!(o, "  {}: {}", d.table, d.detail);
            }
            if t.differences.len() > 20 {
                let _ = writeln!(
                    o,
                    "  … and {} more (all in boot.json)",
                    t.differences.len() - 20
                );
            }
        }
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    let s = &r.summary;
    let _ = writeln!(
        o,
        "\n{} modules: {}, {} unload failures, {} disagreements with the static check{}; results in {}",
        s.modules,
        super::load_counts(s),
        s.unload_failures,
        s.disagreements,
        r.seconds_to_done.map(|t| format!("; done after {t:.1} s")).unwrap_or_default(),
        r.console_log.trim_end_matches("console.log")
    );
    o
}
