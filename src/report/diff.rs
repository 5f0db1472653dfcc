//! `modverify diff` for people (a table, the summary first) and for CI (JUnit).
use crate::kabi::{ChangeKind, KabiDiff};
use std::fmt::Write;

/// Up to `n` names, then how many more.
fn some(names: &[String], n: usize) -> String {
    if names.len() <= n {
        names.join(", ")
    } else {
        format!("{} (+{} more)", names[..n].join(", "), names.len() - n)
    }
}

/// The table for people: the summary first, then each kind of change with its consumers.
pub fn table(d: &KabiDiff, verbose: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let name = |side: &crate::kabi::Side| side.release.clone().unwrap_or(side.kernel.clone());
    let _ = writeln!(
        s,
        "{} ({} exports, {} modules) -> {} ({} exports, {} modules), {}",
        name(&d.old),
        d.old.exports,
        d.old.modules,
        name(&d.new),
        d.new.exports,
        d.new.modules,
        d.arch
    );
    for (w, side) in [("old", &d.old), ("new", &d.new)] {
        if !side.consistent {
            let _ = writeln!(
                s,
                "the {w} kernel's export table is inconsistent: modules fail whatever changed"
            );
            for p in &side.problems {
                let _ = writeln!(s, "  {p}");
            }
        }
    }
    let _ = writeln!(
        s,
        "{} exports changed ({} changes), {} consumers break ({} changes break one){}",
        d.summary.exports_changed,
        d.summary.changes,
        d.summary.broken,
        d.summary.breaking_changes,
        if d.summary.tolerated > 0 {
            format!(
                "; {} changes and {} consumers only over them tolerated",
                d.summary.tolerated, d.summary.broken_tolerated
            )
        } else {
            String::new()
        }
    );
    for n in &d.notes {
        let _ = writeln!(s, "note: {n}");
    }
    for k in &d.kernel {
        let _ = writeln!(
            s,
            "kernel: {} `{}` -> `{}`: {}",
            k.what,
            k.old.trim(),
            k.new.trim(),
            k.detail
        );
    }
    let (rows, names) = if verbose {
        (usize::MAX, usize::MAX)
    } else {
        (10, 4)
    };
    for kind in [
        ChangeKind::Removed,
        ChangeKind::CrcChanged,
        ChangeKind::GplTightened,
        ChangeKind::NamespaceChanged,
        ChangeKind::Moved,
        ChangeKind::GplRelaxed,
        ChangeKind::Added,
    ] {
        let mut group: Vec<_> = d.changes.iter().filter(|c| c.kind == kind).collect();
        if group.is_empty() {
            continue;
        }
        // What breaks the most first, then what is used the most, then by name.
        group.sort_by(|a, b| {
            (b.breaks.len(), b.consumers.len(), &a.symbol).cmp(&(
                a.breaks.len(),
                a.consumers.len(),
                &b.symbol,
            ))
        });
        let _ = writeln!(s, "\n{} ({}):", kind.heading(), group.len());
        for c in group.iter().take(rows) {
            let none = || "(none)".to_string();
            let values = match (&c.old, &c.new) {
                // A namespace gained or lost reads as such, not as an owner.
                (o, n) if c.kind == ChangeKind::NamespaceChanged => format!(
                    " {} -> {}",
                    o.clone().unwrap_or_else(none),
                    n.clone().unwrap_or_else(none)
                ),
                (Some(o), Some(n)) => format!(" {o} -> {n}"),
                (Some(o), None) => format!(" (was {o})"),
                (None, Some(n)) => format!(" ({n})"),
                (None, None) => String::new(),
            };
            let who = if !c.breaks.is_empty() {
                format!("  breaks {}", some(&c.breaks, names))
            } else if !c.consumers.is_empty() {
                format!("  used by {}", some(&c.consumers, names))
            } else {
                String::new()
            };
            let tol = c
                .tolerated
                .as_ref()
                .map(|t| format!("  (tolerated: {t})"))
                .unwrap_or_default();
            let _ = writeln!(s, "  {}{values}{who}{tol}", c.symbol);
        }
        if group.len() > rows {
            let _ = writeln!(s, "  … {} more (-v lists them)", group.len() - rows);
        }
    }
    if !d.broken.is_empty() {
        // By first reason: one line for the thousands module_layout refuses.
        let mut causes: std::collections::BTreeMap<(&str, &str), Vec<String>> = Default::default();
        for b in &d.broken {
            causes
                .entry((b.verdict.as_str(), b.symbol.as_deref().unwrap_or("")))
                .or_default()
                .push(b.module.clone());
        }
        let mut causes: Vec<_> = causes.into_iter().collect();
        causes.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let _ = writeln!(
            s,
            "\nconsumers the new kernel refuses ({}), by first reason:",
            d.broken.len()
        );
        for ((verdict, symbol), modules) in causes.iter().take(rows) {
            let _ = writeln!(
                s,
                "  {verdict}{}: {} ({})",
                if symbol.is_empty() {
                    String::new()
                } else {
                    format!(" {symbol}")
                },
                modules.len(),
                some(modules, names)
            );
        }
        if causes.len() > rows {
            let _ = writeln!(
                s,
                "  … {} more reasons (-v lists them)",
                causes.len() - rows
            );
        }
        if verbose {
            for b in &d.broken {
                let _ = writeln!(s, "  {}  {}: {}", b.module, b.verdict.as_str(), b.detail);
            }
        }
    }
    if !d.already_failing.is_empty() {
        let _ = writeln!(
            s,
            "\nrefused by the old kernel already, not counted: {}",
            some(
                &d.already_failing
                    .iter()
                    .map(|c| c.module.clone())
                    .collect::<Vec<_>>(),
                names
            )
        );
    }
    s
}

/// JUnit: the two tables' consistency, then one test case per consumer — failed when the new
/// kernel refuses it over an untolerated change, skipped when the old kernel refused it
/// already; tolerated refusals pass with the rule in `<system-out>`.
pub fn junit(d: &KabiDiff) -> String {
    let esc = super::junit::esc;
    let mut cases = String::new();
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for (w, side) in [("old", &d.old), ("new", &d.new)] {
        tests += 1;
        let _ = write!(
            cases,
            "    <testcase classname=\"export table\" name=\"{w} kernel's table consistent\">"
        );
        if !side.consistent {
            failures += 1;
            let _ = write!(
                cases,
                "<failure message=\"inconsistent\">{}</failure>",
                esc(&side.problems.join("\n"))
            );
        }
        cases.push_str("</testcase>\n");
    }
    let refused: std::collections::BTreeMap<&str, &crate::kabi::Broken> =
        d.broken.iter().map(|b| (b.path.as_str(), b)).collect();
    let mut names: Vec<(&str, &str)> = d
        .consumers
        .iter()
        .map(|c| (c.module.as_str(), c.path.as_str()))
        .collect();
    names.sort();
    for (name, path) in names {
        tests += 1;
        let _ = write!(
            cases,
            "    <testcase classname=\"consumers\" name=\"{}\" file=\"{}\">",
            esc(name),
            esc(path)
        );
        match refused.get(path) {
            Some(b) if !b.tolerated => {
                failures += 1;
                let _ = write!(
                    cases,
                    "<failure message=\"{}{}\">{}</failure>",
                    b.verdict.as_str(),
                    b.symbol
                        .as_deref()
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default(),
                    esc(&b.detail)
                );
            }
            Some(b) => {
                let _ = write!(
                    cases,
                    "<system-out>refused only over tolerated changes: {}</system-out>",
                    esc(&b.detail)
                );
            }
            None if d.already_failing.iter().any(|c| c.path == path) => {
                skipped += 1;
                cases.push_str("<skipped message=\"refused by the old kernel already\"/>");
            }
            None => {}
        }
        cases.push_str("</testcase>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"modverify diff\">\n  \
         <testsuite name=\"{} -> {} ({})\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\">\n    \
         <properties><property name=\"exports_changed\" value=\"{}\"/><property name=\"breaking_changes\" value=\"{}\"/><property name=\"tolerated\" value=\"{}\"/></properties>\n{cases}  </testsuite>\n</testsuites>\n",
        esc(d.old.release.as_deref().unwrap_or(&d.old.kernel)),
        esc(d.new.release.as_deref().unwrap_or(&d.new.kernel)),
        esc(&d.arch),
        d.summary.exports_changed,
        d.summary.breaking_changes,
        d.summary.tolerated,
    )
}
