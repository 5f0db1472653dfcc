//! The final table of a run, from `results.json`: arch × (build, static, boot, modules,
//! export table, prediction agreement), regressions first, then the failing modules with the
//! kernel's own messages.
use crate::results::{ArchResult, ArchStatus, RunResults, RuntimeVerdict};
use std::fmt::Write;

pub fn arch_row(a: &ArchResult) -> [String; 7] {
    arch_cells(a).map(|(text, _)| text)
}

/// [`arch_row`]'s cells, each with whether it shows a failure: decided from the results'
/// types (the arch's status, the counts), never from the cell's text.
pub fn arch_cells(a: &ArchResult) -> [(String, bool); 7] {
    let build = match (&a.build, a.status) {
        (_, ArchStatus::BuildFailed) => "FAILED".to_string(),
        // Nothing was tested: the request was wrong (the reason below names the file).
        (None, ArchStatus::BadInput) => "BAD INPUT".to_string(),
        (None, ArchStatus::NotRun) => "not run".to_string(),
        (Some(b), _) => {
            let dropped = b.config.dropped.len();
            format!(
                "ok {:.0}s{}",
                a.seconds.build_s.unwrap_or(0.0),
                if dropped > 0 {
                    format!(", {dropped} dropped")
                } else {
                    String::new()
                }
            )
        }
        (None, _) => "-".into(),
    };
    let stat = match &a.check {
        Some(c) => format!("{}/{} ok", c.summary.ok, c.summary.modules),
        None => "-".into(),
    };
    let (bootcol, mods) = match &a.boot {
        Some(boot) => {
            let b = if boot.boot_failure.is_some() {
                "FAILED".to_string()
            } else if boot.done {
                format!("ok {:.1}s", boot.seconds_to_done.unwrap_or(0.0))
            } else {
                "incomplete".into()
            };
            (b, super::load_counts(&boot.summary))
        }
        None => ("-".into(), "-".into()),
    };
    // The static table's consistency: the check's, or (a `boot` with a vmlinux) the table the
    // boot read through the check stage.
    let consistent = a.check.as_ref().map(|c| c.exports.consistent).or_else(|| {
        a.boot
            .as_ref()
            .and_then(|b| b.static_table.as_ref())
            .map(|t| t.consistent)
    });
    let equal = a
        .boot
        .as_ref()
        .and_then(|b| b.export_table.as_ref())
        .map(|t| t.equal);
    let table = match (consistent, equal) {
        (Some(true), Some(true)) => "consistent, runtime equal".into(),
        (Some(true), None) => "consistent".into(),
        (Some(false), Some(true)) => "INCONSISTENT, runtime equal".into(),
        (Some(false), _) => "INCONSISTENT".into(),
        (Some(true), Some(false)) => "runtime DIFFERS".into(),
        (None, _) => "-".into(),
    };
    let agree = match &a.boot {
        Some(b) if b.summary.disagreements == 0 => "agree".into(),
        Some(b) => format!("{} DISAGREE", b.summary.disagreements),
        None => "-".into(),
    };
    let boot = a.boot.as_ref();
    let build_bad = matches!(
        (&a.build, a.status),
        (_, ArchStatus::BuildFailed) | (None, ArchStatus::BadInput)
    );
    [
        (
            a.arch.clone(),
            // The arch's one status: anything but ok (or a descriptor that cannot do it,
            // said in the reasons) is red, also where every column is empty.
            !matches!(
                a.status,
                ArchStatus::Ok | ArchStatus::Running | ArchStatus::Skipped
            ),
        ),
        (build, build_bad),
        (stat, a.check.as_ref().is_some_and(|c| c.summary.failed > 0)),
        (bootcol, boot.is_some_and(|b| b.boot_failure.is_some())),
        (mods, boot.is_some_and(|b| b.summary.failed > 0)),
        (table, consistent == Some(false) || equal == Some(false)),
        (agree, boot.is_some_and(|b| b.summary.disagreements > 0)),
    ]
}

/// The causes behind an arch's columns, one line each: options Kconfig dropped, why the
/// boot failed, how the running export table differs (the first few of each, then a count).
pub fn causes(a: &ArchResult) -> Vec<String> {
    let mut out = Vec::new();
    const SHOWN: usize = 5;
    let dropped: &[_] = a.build.as_ref().map_or(&[], |b| &b.config.dropped);
    for d in dropped.iter().take(SHOWN) {
        out.push(format!(
            "build: {}={} was dropped by Kconfig (now {}){}",
            d.option,
            d.wanted,
            d.got,
            if d.depends_on.is_empty() {
                String::new()
            } else {
                format!(": depends on {}", d.depends_on.join("; "))
            }
        ));
    }
    if dropped.len() > SHOWN {
        out.push(format!(
            "build: … and {} more dropped options (build.json)",
            dropped.len() - SHOWN
        ));
    }
    if let Some(f) = a.boot.as_ref().and_then(|b| b.boot_failure.as_ref()) {
        out.push(format!("boot failed: {f}"));
    }
    let diffs: &[_] = a
        .boot
        .as_ref()
        .and_then(|b| b.export_table.as_ref())
        .map_or(&[], |t| &t.differences);
    for d in diffs.iter().take(SHOWN) {
        out.push(format!("running export table: {} {}", d.table, d.detail));
    }
    if diffs.len() > SHOWN {
        out.push(format!(
            "running export table: … and {} more differences (results.json)",
            diffs.len() - SHOWN
        ));
    }
    out
}

/// The export drift against a baseline, for people: per arch a summary line, then the
/// changes that break one of the baseline's modules (at most [`DRIFT_SHOWN`] each, the rest
/// counted and left to results.json), then what could not be compared. Each line says
/// whether it is a failure.
pub fn drift_lines(c: &crate::results::Comparison) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for d in &c.drift {
        let by_kind: Vec<String> = d
            .summary
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let name = |r: &Option<String>| r.clone().unwrap_or_else(|| "?".into());
        out.push((
            format!(
                "export drift {} {} -> {}: {} exports changed ({}), {} of the baseline's {} \
                 modules break",
                d.arch,
                name(&d.old_release),
                name(&d.new_release),
                d.summary.exports_changed,
                if by_kind.is_empty() {
                    "none".to_string()
                } else {
                    by_kind.join(", ")
                },
                d.summary.broken,
                d.summary.consumers
            ),
            d.summary.broken > 0,
        ));
        for k in &d.kernel {
            out.push((
                format!("  kernel {}: {} -> {}", k.what, k.old, k.new),
                false,
            ));
        }
        let breaking: Vec<_> = d.changes.iter().filter(|c| !c.breaks.is_empty()).collect();
        for ch in breaking.iter().take(DRIFT_SHOWN) {
            out.push((
                format!(
                    "  {} {}: {} -> {}, breaks {}",
                    ch.kind.as_str(),
                    ch.symbol,
                    ch.old.as_deref().unwrap_or("none"),
                    ch.new.as_deref().unwrap_or("none"),
                    ch.breaks.join(", ")
                ),
                true,
            ));
        }
        if breaking.len() > DRIFT_SHOWN {
            out.push((
                format!(
                    "  … and {} more breaking changes (results.json: baseline.drift)",
                    breaking.len() - DRIFT_SHOWN
                ),
                true,
            ));
        }
    }
    out.extend(c.notes.iter().map(|n| (format!("note: {n}"), false)));
    out
}

pub const DRIFT_SHOWN: usize = 10;

pub fn table(r: &RunResults) -> String {
    let mut o = String::new();
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            o,
            "Against {}: {} regressions, {} fixes{}",
            b.baseline,
            b.regressions.len(),
            b.fixes.len(),
            if b.flaky.is_empty() {
                String::new()
            } else {
                format!(", {} flaky (not counted)", b.flaky.len())
            }
        );
        for (label, list) in [
            ("REGRESSION", &b.regressions),
            ("fix", &b.fixes),
            ("flaky", &b.flaky),
        ] {
            for c in list {
                let _ = writeln!(
                    o,
                    "  {label:10} {} {}: {} -> {}",
                    c.arch, c.what, c.before, c.after
                );
            }
        }
        for (line, _) in drift_lines(b) {
            let _ = writeln!(o, "  {line}");
        }
        o.push('\n');
    }
    let header = [
        "arch",
        "build",
        "static",
        "boot",
        "modules",
        "export table",
        "prediction",
    ];
    let mut rows = vec![header.map(str::to_string)];
    rows.extend(r.arches().map(arch_row));
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        let _ = writeln!(o, "{}", line.join("  ").trim_end());
    }
    for a in r.arches() {
        let arch = &a.arch;
        for reason in &a.reasons {
            let _ = writeln!(o, "{arch}: {reason}");
        }
        for line in causes(a) {
            let _ = writeln!(o, "{arch}: {line}");
        }
        for detail in a.export_table_errors() {
            let _ = writeln!(o, "{arch}: export table: {detail}");
        }
        let mut failing: Vec<(String, String, Vec<String>)> = Vec::new();
        if let Some(boot) = &a.boot {
            let not_run: Vec<_> = boot
                .modules
                .iter()
                .filter(|m| m.verdict == RuntimeVerdict::NotRun)
                .collect();
            if let Some(first) = not_run.first() {
                // One reason for all of them (the guest died first): said once, apart from
                // the failures, since none of these modules was tried.
                let _ = writeln!(
                    o,
                    "{arch}: {} not run: {}",
                    if not_run.len() == 1 {
                        "1 module".to_string()
                    } else {
                        format!("{} modules", not_run.len())
                    },
                    first
                        .not_run_reason
                        .as_deref()
                        .unwrap_or("no result arrived")
                );
            }
            for m in boot.modules.iter().filter(|m| {
                m.verdict != RuntimeVerdict::NotRun && (m.not_known_to_work() || !m.agrees)
            }) {
                let mut v = m.verdict.as_str().to_string();
                if !m.agrees {
                    v += &format!(" (predicted {})", m.predicted.map_or("?", |p| p.as_str()));
                }
                let msgs = m.kernel_messages.iter().take(6).cloned().collect();
                failing.push((m.name.clone(), v, msgs));
            }
        } else if let Some(check) = &a.check {
            for m in check.modules.iter().filter(|m| m.failed()) {
                let msgs = m.kernel_messages().into_iter().take(6).collect();
                failing.push((
                    m.name.clone(),
                    format!("{} (static)", m.verdict.as_str()),
                    msgs,
                ));
            }
        }
        if !failing.is_empty() {
            let _ = writeln!(o, "\n{arch}: failing modules ({}):", failing.len());
            for (name, v, msgs) in failing {
                let _ = writeln!(o, "  {v:24} {name}");
                for m in msgs {
                    let _ = writeln!(o, "      kernel: {m}");
                }
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A run whose boot failed: the table says why, says which options were dropped, and
    /// counts the modules that never ran as "not run", not as failures.
    #[test]
    fn the_table_shows_the_causes_behind_its_columns() {
        let r = json!({"arches": {"riscv64": {
            "arch": "riscv64", "status": "findings", "seconds": {"build_s": 4.0},
            "build": {"config": {"dropped": [
                {"option": "CONFIG_CRC7", "wanted": "m", "got": "n", "origin": "default",
                 "depends_on": [], "essential": false}]}},
            "check": {"summary": {"ok": 16, "modules": 16}, "exports": {"consistent": true}},
            "boot": {"boot_failure": "Kernel panic - not syncing: Attempted to kill init!",
                     "summary": {"loaded": 0, "failed": 0, "not_run": 16, "disagreements": 0},
                     "export_table": {"equal": false, "differences": [
                         {"table": "__ksymtab_gpl", "detail": "the guest sent no runtime table"}]},
                     "modules": []}}}});
        let r: RunResults = serde_json::from_value(r).unwrap();
        let t = table(&r);
        assert!(t.contains("ok 4s, 1 dropped"), "{t}");
        assert!(t.contains("0 loaded, 0 failed, 16 not run"), "{t}");
        assert!(
            t.contains("riscv64: boot failed: Kernel panic - not syncing: Attempted to kill init!"),
            "{t}"
        );
        assert!(
            t.contains("riscv64: build: CONFIG_CRC7=m was dropped by Kconfig (now n)"),
            "{t}"
        );
        assert!(t.contains("the guest sent no runtime table"), "{t}");
        let h = super::super::html::html(&r);
        assert!(
            h.contains("Attempted to kill init") && h.contains("CONFIG_CRC7"),
            "{h}"
        );
    }
}
