//! One self-contained HTML page (its one script and its styles inline, nothing fetched): the
//! counts per arch and per verdict first, then the arch × module matrix coloured by verdict —
//! modules that failed, disagree with the prediction or are flaky first, each failure with the
//! kernel's first message beside it and all of them on click — with a filter by module name
//! and by verdict, then the export-table findings. It stays usable at a distribution's
//! thousands of modules and at every arch at once.
use crate::results::{
    ArchResult, ModuleOutcome, RunResults, RunStatus, RuntimeVerdict, Severity, Verdict,
};
use crate::verdict::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How a cell is coloured: from the verdict's outcome (init failures and consequences apart).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shade {
    Good,
    Absent,
    InitFailed,
    NotTried,
    KernelDied,
    Bad,
    Flaky,
}

impl Shade {
    /// Where a row goes: the kernel dying first, then refusals and init failures, then flaky
    /// ones, then the rest (a disagreement ranks 2: see `row_rank`).
    fn rank(self) -> u8 {
        match self {
            Shade::KernelDied => 0,
            Shade::Bad | Shade::InitFailed => 1,
            Shade::Flaky => 3,
            Shade::NotTried => 4,
            Shade::Absent | Shade::Good => 5,
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Shade::Good => "#c8f0c8",
            Shade::Absent => "#dff0d0",
            Shade::InitFailed => "#fff3b0",
            Shade::NotTried => "#e0e0e0",
            Shade::KernelDied => "#f0a0a0",
            Shade::Bad => "#f5c6c6",
            Shade::Flaky => "#ffd8a8",
        }
    }

    fn runtime(m: &ModuleOutcome) -> Self {
        match m.outcome() {
            Outcome::Pass => Shade::Good,
            Outcome::Absent => Shade::Absent,
            // The loader accepted it; its own init failed: told apart from a refusal.
            Outcome::Fail if m.verdict == RuntimeVerdict::InitFailed => Shade::InitFailed,
            Outcome::Fail => Shade::Bad,
            Outcome::Error => Shade::KernelDied,
            Outcome::Skip | Outcome::Miss | Outcome::Shadowed => Shade::NotTried,
            Outcome::Flaky => Shade::Flaky,
        }
    }

    fn predicted(v: Verdict) -> Self {
        match v.outcome() {
            Outcome::Pass => Shade::Good,
            // Predicted to fail only because a dependency does: nothing of its own.
            _ if v.is_consequence() => Shade::NotTried,
            Outcome::Shadowed => Shade::NotTried,
            Outcome::Absent
            | Outcome::Fail
            | Outcome::Error
            | Outcome::Skip
            | Outcome::Miss
            | Outcome::Flaky => Shade::Bad,
        }
    }
}

/// The filter: rows by module name (a substring), by verdict, and failures only; counts
/// what is shown. `data-ready` on the body says it ran.
const FILTER_SCRIPT: &str = r#"(function () {
  var q = document.getElementById('q'), v = document.getElementById('verdict'),
      bad = document.getElementById('only-bad'), shown = document.getElementById('shown');
  var rows = document.querySelectorAll('#modules tbody tr');
  function apply() {
    var text = q.value.toLowerCase().replace(/-/g, '_'), want = v.value, n = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var ok = (!text || r.dataset.name.toLowerCase().indexOf(text) >= 0) &&
               (!want || (' ' + r.dataset.verdicts + ' ').indexOf(' ' + want + ' ') >= 0) &&
               (!bad.checked || r.dataset.bad === '1');
      r.style.display = ok ? '' : 'none';
      if (ok) n++;
    }
    shown.textContent = n + ' of ' + rows.length + ' modules';
  }
  q.addEventListener('input', apply);
  v.addEventListener('change', apply);
  bad.addEventListener('change', apply);
  apply();
  document.body.dataset.ready = '1';
})();
"#;

/// One matrix cell.
struct Cell {
    /// The verdict as shown (`flaky: init_failed, then loaded`).
    shown: String,
    /// The verdict as one word, for the filter (`flaky`).
    word: &'static str,
    shade: Shade,
    /// The kernel's messages about it.
    messages: Vec<String>,
    /// A line more (the prediction it disagrees with; the check's problems).
    detail: String,
    /// Loaded, against a prediction that it would not: ranked after the failures.
    disagrees: bool,
}

impl Cell {
    /// Its place in the table: by its shade, a disagreement after the failures.
    fn rank(&self) -> u8 {
        if self.disagrees && self.shade == Shade::Good {
            2
        } else {
            self.shade.rank()
        }
    }
}

pub fn html(r: &RunResults) -> String {
    let arches: Vec<&ArchResult> = r.arches().collect();
    // module → arch → cell
    let mut matrix: BTreeMap<String, BTreeMap<String, Cell>> = BTreeMap::new();
    for a in &arches {
        let arch = a.arch.clone();
        if let Some(boot) = &a.boot {
            for m in &boot.modules {
                let detail = if m.agrees {
                    String::new()
                } else {
                    format!(
                        "static prediction: {}",
                        m.predicted.map_or("?", |p| p.as_str())
                    )
                };
                matrix.entry(m.name.clone()).or_default().insert(
                    arch.clone(),
                    Cell {
                        shown: m.shown_verdict(),
                        word: if m.flaky() {
                            "flaky"
                        } else {
                            m.verdict.as_str()
                        },
                        shade: Shade::runtime(m),
                        messages: m.kernel_messages.clone(),
                        disagrees: !m.agrees,
                        detail,
                    },
                );
            }
        } else {
            for m in a.check.iter().flat_map(|c| &c.modules) {
                let detail = m
                    .problems
                    .iter()
                    .map(|p| p.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                matrix.entry(m.name.clone()).or_default().insert(
                    arch.clone(),
                    Cell {
                        shown: m.verdict.as_str().to_string(),
                        word: m.verdict.as_str(),
                        shade: Shade::predicted(m.verdict),
                        messages: m.kernel_messages(),
                        detail,
                        disagrees: false,
                    },
                );
            }
        }
    }
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>modverify results</title><style>\n");
    o.push_str("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px;vertical-align:top}th{background:#eee}summary{cursor:pointer}pre{margin:4px 0;font-size:12px;white-space:pre-wrap}.bad{color:#a00;font-weight:bold}.legend span{padding:2px 8px;margin-right:6px;border:1px solid #bbb}\n");
    o.push_str("</style></head><body>\n<h1>modverify results</h1>\n");
    let _ = writeln!(
        o,
        "<p>{} &middot; status {} &middot; <code>{}</code></p>",
        esc(&r.schema),
        esc(match r.status {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
        }),
        esc(&r.command)
    );
    // The counts first: per arch, and per verdict over every arch.
    o.push_str("<table id=\"counts\"><thead><tr><th>arch</th><th>status</th><th>modules</th><th>ok</th><th>failed</th><th>flaky</th><th>not run</th><th>disagree</th></tr></thead><tbody>\n");
    let mut by_verdict: BTreeMap<String, usize> = BTreeMap::new();
    for a in &arches {
        let (n, ok, failed, flaky, not_run, disagree) = match (&a.boot, &a.check) {
            (Some(b), _) => {
                let s = &b.summary;
                for (v, k) in &s.by_verdict {
                    *by_verdict.entry(v.as_str().to_string()).or_default() += k;
                }
                (
                    s.modules,
                    s.loaded,
                    s.failed,
                    s.flaky,
                    s.not_run,
                    s.disagreements,
                )
            }
            (None, Some(c)) => {
                let s = &c.summary;
                for (v, k) in &s.by_verdict {
                    *by_verdict.entry(v.as_str().to_string()).or_default() += k;
                }
                (s.modules, s.ok, s.failed, 0, 0, 0)
            }
            (None, None) => (0, 0, 0, 0, 0, 0),
        };
        let bad = |k: usize| if k > 0 { " class=\"bad\"" } else { "" };
        let _ = writeln!(
            o,
            "<tr data-arch=\"{0}\"><td>{0}</td><td{1}>{2}</td><td>{n}</td><td>{ok}</td><td{3}>{failed}</td><td>{flaky}</td><td>{not_run}</td><td{4}>{disagree}</td></tr>",
            esc(&a.arch),
            if a.status == crate::results::ArchStatus::Ok { "" } else { " class=\"bad\"" },
            a.status.as_str(),
            bad(failed),
            bad(disagree)
        );
    }
    o.push_str("</tbody></table>\n<p id=\"by-verdict\">");
    o.push_str(
        &by_verdict
            .iter()
            .map(|(v, k)| format!("<span data-verdict=\"{0}\">{0} {k}</span>", esc(v)))
            .collect::<Vec<_>>()
            .join(" &middot; "),
    );
    o.push_str("</p>\n");
    if let Some(b) = &r.baseline {
        let _ = writeln!(o, "<h2>Against {}</h2><ul>", esc(&b.baseline));
        for (label, list, class) in [
            ("regression", &b.regressions, "bad"),
            ("fix", &b.fixes, ""),
            ("flaky (not counted)", &b.flaky, ""),
        ] {
            for c in list {
                let _ = writeln!(
                    o,
                    "<li class=\"{class}\">{label}: {} {}: {} &rarr; {}</li>",
                    esc(&c.arch),
                    esc(&c.what),
                    esc(&c.before),
                    esc(&c.after)
                );
            }
        }
        for (line, bad) in super::results::drift_lines(b) {
            let _ = writeln!(
                o,
                "<li{}>{}</li>",
                if bad { " class=\"bad\"" } else { "" },
                esc(&line)
            );
        }
        o.push_str("</ul>\n");
    }
    o.push_str("<h2>Architectures</h2><table><tr><th>arch</th><th>build</th><th>static</th><th>boot</th><th>modules</th><th>export table</th><th>prediction</th></tr>\n");
    for a in &arches {
        o.push_str("<tr>");
        for (c, bad) in super::results::arch_cells(a) {
            let _ = write!(
                o,
                "<td{}>{}</td>",
                if bad { " class=\"bad\"" } else { "" },
                esc(&c)
            );
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
    // Why a column says FAILED or dropped: the same cause lines as the table.
    let causes: Vec<String> = arches
        .iter()
        .flat_map(|a| {
            let arch = a.arch.clone();
            // The stages' own reasons first (a failed build's error lines), as the table has
            // them, then the causes read from the results.
            let reasons: Vec<String> = a
                .reasons
                .iter()
                .map(|r| {
                    format!(
                        "<li{}><pre>{}: {}</pre></li>",
                        if a.status == crate::results::ArchStatus::Ok {
                            ""
                        } else {
                            " class=\"bad\""
                        },
                        esc(&a.arch),
                        esc(&r.to_string())
                    )
                })
                .collect();
            reasons.into_iter().chain(
                super::results::causes(a)
                    .into_iter()
                    .map(move |c| format!("<li class=\"bad\">{}: {}</li>", esc(&arch), esc(&c))),
            )
        })
        .collect();
    if !causes.is_empty() {
        let _ = writeln!(o, "<h2>Causes</h2>\n<ul>\n{}\n</ul>", causes.join("\n"));
    }
    o.push_str("<h2>Export-table findings</h2>\n<ul>\n");
    let mut any = false;
    for a in &arches {
        for p in a.check.iter().flat_map(|c| &c.exports.problems) {
            any = true;
            let _ = writeln!(
                o,
                "<li{}>{}: {}</li>",
                match p.severity {
                    Severity::Error => " class=\"bad\"",
                    Severity::Warning => "",
                },
                esc(&a.arch),
                esc(&p.detail)
            );
        }
        let running = a.boot.as_ref().and_then(|b| b.export_table.as_ref());
        for d in running.iter().flat_map(|t| &t.differences) {
            any = true;
            let _ = writeln!(
                o,
                "<li class=\"bad\">{} (running kernel): {}</li>",
                esc(&a.arch),
                esc(&d.detail)
            );
        }
    }
    if !any {
        o.push_str("<li>none: every kcrctab slot belongs to its symbol</li>\n");
    }
    // "no device" only where a module has it: results from before it render as they did.
    let any_absent = matrix
        .values()
        .flat_map(|row| row.values())
        .any(|c| matches!(c.shade, Shade::Absent));
    let any_flaky = matrix
        .values()
        .flat_map(|row| row.values())
        .any(|c| matches!(c.shade, Shade::Flaky));
    let mut rows: Vec<(&String, &BTreeMap<String, Cell>, u8)> = matrix
        .iter()
        .map(|(name, cells)| {
            (
                name,
                cells,
                cells.values().map(Cell::rank).min().unwrap_or(5),
            )
        })
        .collect();
    rows.sort_by_key(|(name, _, rank)| (*rank, (*name).clone()));
    let needs_look = rows.iter().filter(|(_, _, rank)| *rank <= 3).count();
    let mut verdicts: Vec<String> = matrix
        .values()
        .flat_map(|row| row.values().map(|c| c.word.to_string()))
        .collect();
    verdicts.sort();
    verdicts.dedup();
    let _ = writeln!(
        o,
        "</ul>\n<h2 id=\"modules-heading\">Modules</h2>\n<p class=\"legend\"><span style=\"background:#c8f0c8\">loaded / ok</span><span style=\"background:#f5c6c6\">fails</span><span style=\"background:#f0a0a0\">crashed / hung</span><span style=\"background:#fff3b0\">init failed</span>{}{}<span style=\"background:#e0e0e0\">not run / dependency failed</span> Failures, disagreements and flaky modules come first ({needs_look} of {}); click a cell for all of the kernel's messages.</p>",
        if any_absent {
            "<span style=\"background:#dff0d0\">no device</span>"
        } else {
            ""
        },
        if any_flaky {
            "<span style=\"background:#ffd8a8\">flaky (tries disagree)</span>"
        } else {
            ""
        },
        rows.len()
    );
    let _ = writeln!(
        o,
        "<p id=\"filters\"><input id=\"q\" type=\"search\" placeholder=\"module name\"> <select id=\"verdict\"><option value=\"\">any verdict</option>{}</select> <label><input id=\"only-bad\" type=\"checkbox\"> failures, disagreements and flaky only</label> <span id=\"shown\">{} modules</span></p>",
        verdicts
            .iter()
            .map(|v| format!("<option>{}</option>", esc(v)))
            .collect::<String>(),
        rows.len()
    );
    o.push_str("<table id=\"modules\"><thead><tr><th>module</th>");
    for a in &arches {
        let _ = write!(o, "<th>{}</th>", esc(&a.arch));
    }
    o.push_str("</tr></thead><tbody>\n");
    for (module, cells, rank) in &rows {
        let words: Vec<&str> = cells.values().map(|c| c.word).collect();
        let _ = write!(
            o,
            "<tr data-name=\"{}\" data-verdicts=\"{}\" data-bad=\"{}\"><td>{}</td>",
            esc(module),
            esc(&words.join(" ")),
            u8::from(*rank <= 3),
            esc(module)
        );
        for a in &arches {
            match cells.get(&a.arch) {
                None => o.push_str("<td></td>"),
                Some(c) if c.messages.is_empty() && c.detail.is_empty() && c.shade.rank() > 3 => {
                    let _ = write!(
                        o,
                        "<td style=\"background:{}\">{}</td>",
                        c.shade.colour(),
                        esc(&c.shown)
                    );
                }
                Some(c) => {
                    let (v, shade, msgs, detail) = (&c.shown, c.shade, &c.messages, &c.detail);
                    // The kernel's first word on it, beside the verdict; the rest on click.
                    let first = msgs
                        .first()
                        .map(String::as_str)
                        .or((!detail.is_empty()).then_some(detail.as_str()))
                        .unwrap_or("(the kernel said nothing)");
                    let _ = write!(
                        o,
                        "<td style=\"background:{}\"><details><summary>{}<br><small class=\"msg\">{}</small></summary>",
                        shade.colour(),
                        esc(v),
                        esc(first)
                    );
                    if !detail.is_empty() {
                        let _ = write!(o, "<p>{}</p>", esc(detail));
                    }
                    let _ = write!(o, "<pre>{}</pre></details></td>", esc(&msgs.join("\n")));
                }
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n");
    o.push_str("</table>\n<script>\n");
    o.push_str(FILTER_SCRIPT);
    o.push_str("</script>\n</body></html>\n");
    o
}
