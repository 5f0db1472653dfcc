//! The human-readable report of `modverify check`: failing modules first, each with the
//! kernel's own words, then the export table's findings and a one-line summary.
use crate::check::run::CheckReport;
use crate::check::Severity;
use std::fmt::Write;

/// How many symbols of a long list to show inline; the rest are counted, never dropped silently.
const INLINE_SYMBOLS: usize = 8;

pub fn check_table(r: &CheckReport, verbose: bool) -> String {
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
        let _ = writeln!(o, "  consistent: every CRC slot belongs to its symbol");
    }
    for p in &r.exports.problems {
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
                p.reference.unwrap_or("?"),
                hex(p.kernel_crc)
            );
        }
        if p.symbols.len() > 1 {
            let shown: Vec<&str> = p
                .symbols
                .iter()
                .take(INLINE_SYMBOLS)
                .map(String::as_str)
                .collect();
            let more = p.symbols.len().saturating_sub(INLINE_SYMBOLS);
            let _ = writeln!(
                o,
                "          symbols: {}{}",
                shown.join(", "),
                if more > 0 {
                    format!(", … and {more} more (all listed by --format json)")
                } else {
                    String::new()
                }
            );
        }
    }

    let failed: Vec<_> = r.modules.iter().filter(|m| m.failed()).collect();
    if !failed.is_empty() {
        let _ = writeln!(o, "\nFailing modules ({}):", failed.len());
        for m in &failed {
            let _ = writeln!(o, "  {:18} {}  ({})", m.verdict.as_str(), m.name, m.path);
            for p in &m.problems {
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
        }
    }
    let warned: Vec<_> = r
        .modules
        .iter()
        .filter(|m| !m.failed() && !m.problems.is_empty())
        .collect();
    if !warned.is_empty() {
        let _ = writeln!(o, "\nModules that load with warnings ({}):", warned.len());
        for m in &warned {
            let _ = writeln!(o, "  {}  ({})", m.name, m.path);
            for p in &m.problems {
                for msg in &p.kernel_messages {
                    let _ = writeln!(o, "      kernel: {msg}");
                }
            }
        }
    }
    if verbose {
        let _ = writeln!(o, "\nModules that load:");
        for m in r.modules.iter().filter(|m| !m.failed()) {
            let _ = writeln!(o, "  ok  {}  ({})", m.name, m.path);
        }
    }
    let s = &r.summary;
    let verdicts: Vec<String> = s
        .by_verdict
        .iter()
        .filter(|(v, _)| **v != "ok")
        .map(|(v, n)| format!("{v} {n}"))
        .collect();
    let _ = writeln!(
        o,
        "\n{} modules: {} ok, {} failing{}; export table: {} errors, {} warnings",
        s.modules,
        s.ok,
        s.failed,
        if verdicts.is_empty() {
            String::new()
        } else {
            format!(" ({})", verdicts.join(", "))
        },
        s.export_errors,
        s.export_warnings
    );
    o
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
    for (i, b) in r.boots.iter().enumerate() {
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
    let failed: Vec<_> = r
        .modules
        .iter()
        .filter(|m| m.verdict != crate::verdict::RuntimeVerdict::NotRun)
        .filter(|m| m.failed() || !m.agrees)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(
            o,
            "\nModules that failed, or where prediction and kernel disagree ({}):",
            failed.len()
        );
        for m in failed {
            let _ = writeln!(
                o,
                "  {:14} {}{}{}{}",
                m.verdict.as_str(),
                m.name,
                m.symbol
                    .as_deref()
                    .map(|s| format!(" (symbol {s})"))
                    .unwrap_or_default(),
                m.errno.map(|e| format!(" errno {e}")).unwrap_or_default(),
                match (m.predicted, m.agrees) {
                    (Some(p), false) =>
                        format!("  DISAGREES with the static prediction `{}`", p.as_str()),
                    (Some(p), true) => format!("  (predicted {})", p.as_str()),
                    (None, _) => String::new(),
                }
            );
            for msg in &m.kernel_messages {
                let _ = writeln!(o, "      kernel: {msg}");
            }
            if m.unloaded == Some(false) {
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
        "\n{} modules: {} loaded, {} failed, {} unload failures, {} disagreements with the static check{}; results in {}",
        s.modules,
        s.loaded,
        s.failed,
        s.unload_failures,
        s.disagreements,
        r.seconds_to_done.map(|t| format!("; done after {t:.1} s")).unwrap_or_default(),
        r.console_log.trim_end_matches("console.log")
    );
    o
}
