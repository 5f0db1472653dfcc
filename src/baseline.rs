//! Comparing a run with an earlier one (`--baseline PREVIOUS/results.json`): what worked and
//! fails now (a regression), what failed and works now (a fix). Reads both as the typed
//! results model, so any `results.json` the model reads can serve as the baseline.
//!
//! Where both runs saved their kernel's export table (`kabi`, written by `run`), each arch's
//! table is also diffed against the baseline's ([`crate::kabi::drift`]): the export drift, with
//! the baseline's modules as the consumers. A change that breaks one of them is a regression.
use crate::arch::ArchRegistry;
use crate::kabi::Broken;
use crate::results::{ArchStatus, RunResults};
pub use crate::results::{Change, Comparison, Drift};
use std::collections::BTreeMap;

/// Each arch's export drift from `before` to `now`, where both saved their table; regressions
/// for the changes that break one of the baseline's modules.
fn drift(before: &RunResults, now: &RunResults, arches: &ArchRegistry, c: &mut Comparison) {
    for (arch, a) in &now.arches {
        let Some(b) = before.arches.get(arch) else {
            continue;
        };
        let (old, new) = match (&b.kabi, &a.kabi) {
            (Some(o), Some(n)) => (o, n),
            // Nothing checked on one side (a failed build): said by the regressions already.
            // Neither saved one (both from `boot`, or from before tables were kept): nothing
            // was there to compare.
            _ if b.check.is_none() || a.check.is_none() => continue,
            (None, None) => continue,
            (o, _) => {
                c.notes.push(format!(
                    "{arch}: {} saved no export table (results.json `kabi`, which `modverify \
                     run` writes): export drift not compared",
                    if o.is_none() {
                        "the baseline"
                    } else {
                        "this run"
                    }
                ));
                continue;
            }
        };
        let Ok(desc) = arches.get(arch) else {
            c.notes.push(format!(
                "{arch}: no descriptor of that name in arches/: export drift not compared"
            ));
            continue;
        };
        let policy = a.check.as_ref().map(|c| c.policy).unwrap_or_default();
        let d = crate::kabi::drift(desc, old, new, policy);
        if d.changes.is_empty() && d.kernel.is_empty() && d.broken.is_empty() {
            continue;
        }
        for ch in d.changes.iter().filter(|ch| !ch.breaks.is_empty()) {
            let n = ch.breaks.len();
            let shown: Vec<&str> = ch.breaks.iter().take(5).map(String::as_str).collect();
            c.regressions.push(Change {
                arch: arch.clone(),
                what: format!("export {} ({})", ch.symbol, ch.kind.as_str()),
                before: ch.old.clone().unwrap_or_else(|| "none".into()),
                after: format!(
                    "{}: breaks {n} of the baseline's modules ({}{})",
                    ch.new.as_deref().unwrap_or("none"),
                    shown.join(", "),
                    if n > shown.len() { ", …" } else { "" }
                ),
            });
        }
        // Refused over no one symbol: a kernel-wide change (vermagic) did it.
        let wide: Vec<&Broken> = d.broken.iter().filter(|b| b.symbol.is_none()).collect();
        if let Some(first) = wide.first() {
            c.regressions.push(Change {
                arch: arch.clone(),
                what: "export table (kernel-wide)".into(),
                before: d
                    .old
                    .release
                    .clone()
                    .unwrap_or_else(|| d.old.kernel.clone()),
                after: format!(
                    "{} of the baseline's modules refused, {}: {}",
                    wide.len(),
                    first.module,
                    first.detail
                ),
            });
        }
        c.drift.push(Drift {
            arch: arch.clone(),
            old_release: d.old.release,
            new_release: d.new.release,
            kernel: d.kernel,
            changes: d.changes,
            broken: d.broken,
            summary: d.summary,
            notes: d.notes,
        });
    }
}

/// Per arch: item → (verdict, good?).
fn outcomes(results: &RunResults) -> BTreeMap<String, BTreeMap<String, (String, bool)>> {
    let mut out = BTreeMap::new();
    for (arch, a) in &results.arches {
        let mut m = BTreeMap::new();
        if !a.status.says_something() {
            out.insert(arch.clone(), m);
            continue;
        }
        let built = a.status != ArchStatus::BuildFailed;
        m.insert(
            "build".to_string(),
            (if built { "ok" } else { "failed" }.to_string(), built),
        );
        match &a.boot {
            Some(boot) => {
                for x in &boot.modules {
                    m.insert(
                        format!("module {}", x.name),
                        (x.shown_verdict(), !x.not_known_to_work()),
                    );
                }
                if let Some(t) = &boot.export_table {
                    m.insert(
                        "running export table".into(),
                        (if t.equal { "equal" } else { "differs" }.into(), t.equal),
                    );
                }
            }
            None => {
                for x in a.check.iter().flat_map(|c| &c.modules) {
                    m.insert(
                        format!("module {}", x.name),
                        (x.verdict.as_str().to_string(), !x.failed()),
                    );
                }
            }
        }
        if let Some(c) = &a.check {
            let ok = c.exports.consistent;
            m.insert(
                "static export table".into(),
                (if ok { "consistent" } else { "inconsistent" }.into(), ok),
            );
        }
        out.insert(arch.clone(), m);
    }
    out
}

pub fn compare(
    baseline_name: &str,
    before: &RunResults,
    now: &RunResults,
    arches: &ArchRegistry,
) -> Comparison {
    let (b, n) = (outcomes(before), outcomes(now));
    let mut c = Comparison {
        baseline: baseline_name.to_string(),
        ..Default::default()
    };
    // An arch whose results are gone is a regression when it had any: a nightly job that
    // stopped reporting must not look like a clean night.
    for (arch, prev) in &b {
        if !n.contains_key(arch) && !prev.is_empty() {
            c.regressions.push(Change {
                arch: arch.clone(),
                what: "results".into(),
                before: "present".into(),
                after: "missing".into(),
            });
        }
    }
    for (arch, items) in &n {
        let Some(prev) = b.get(arch) else { continue };
        // Asked for tonight and tested nothing (bad input, infrastructure, interrupted),
        // where the baseline had results: every module vanished, and that is a regression.
        if items.is_empty() && !prev.is_empty() {
            c.regressions.push(Change {
                arch: arch.clone(),
                what: "results".into(),
                before: "present".into(),
                after: format!(
                    "none ({})",
                    now.arches
                        .get(arch)
                        .map_or("missing", |a| a.status.as_str())
                ),
            });
            continue;
        }
        // A module that worked last time and is not there now (not built, not found) is a
        // regression: it is what a nightly exists to notice.
        if !items.is_empty() {
            for (what, (before, was_good)) in prev {
                if *was_good && what.starts_with("module ") && !items.contains_key(what) {
                    c.regressions.push(Change {
                        arch: arch.clone(),
                        what: what.clone(),
                        before: before.clone(),
                        after: "missing".into(),
                    });
                }
            }
        }
        // Flaky tonight (a failure that did not reproduce): apart, where it worked before.
        for m in now
            .arches
            .get(arch)
            .and_then(|a| a.boot.as_ref())
            .iter()
            .flat_map(|b| &b.modules)
            .filter(|m| m.flaky())
        {
            if let Some((before, true)) = prev.get(&format!("module {}", m.name)) {
                c.flaky.push(Change {
                    arch: arch.clone(),
                    what: format!("module {}", m.name),
                    before: before.clone(),
                    after: m.shown_verdict(),
                });
            }
        }
        for (what, (after, good)) in items {
            let Some((before, was_good)) = prev.get(what) else {
                continue;
            };
            let change = Change {
                arch: arch.clone(),
                what: what.clone(),
                before: before.clone(),
                after: after.clone(),
            };
            match (was_good, good) {
                (true, false) => c.regressions.push(change),
                (false, true) => c.fixes.push(change),
                _ => {}
            }
        }
    }
    drift(before, now, arches, &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_arches() -> ArchRegistry {
        ArchRegistry::of(vec![])
    }

    fn typed(v: serde_json::Value) -> RunResults {
        serde_json::from_value(v).unwrap()
    }

    fn results(md5: &str) -> serde_json::Value {
        json!({"arches": {"sparc64": {"status": "findings", "boot": {"modules": [
            {"name": "md5", "verdict": md5, "unloaded": true},
            {"name": "crc7", "verdict": "loaded", "unloaded": true}
        ], "export_table": {"equal": true}}, "check": {"exports": {"consistent": true}}}}})
    }

    #[test]
    fn a_module_that_loaded_and_fails_now_is_a_regression() {
        let c = compare(
            "prev",
            &typed(results("loaded")),
            &typed(results("crc_mismatch")),
            &no_arches(),
        );
        assert_eq!(
            c.regressions,
            vec![Change {
                arch: "sparc64".into(),
                what: "module md5".into(),
                before: "loaded".into(),
                after: "crc_mismatch".into()
            }]
        );
        assert!(c.fixes.is_empty());
        let back = compare(
            "prev",
            &typed(results("crc_mismatch")),
            &typed(results("loaded")),
            &no_arches(),
        );
        assert_eq!(back.fixes.len(), 1);
        assert!(back.regressions.is_empty());
    }

    #[test]
    fn a_module_or_an_arch_that_vanished_is_a_regression() {
        let mut now = results("loaded");
        now["arches"]["sparc64"]["boot"]["modules"]
            .as_array_mut()
            .unwrap()
            .remove(1);
        let c = compare("prev", &typed(results("loaded")), &typed(now), &no_arches());
        assert_eq!(
            c.regressions,
            vec![Change {
                arch: "sparc64".into(),
                what: "module crc7".into(),
                before: "loaded".into(),
                after: "missing".into()
            }]
        );
        let gone = compare(
            "prev",
            &typed(results("loaded")),
            &typed(json!({"arches": {}})),
            &no_arches(),
        );
        assert_eq!(gone.regressions.len(), 1);
        assert_eq!(gone.regressions[0].what, "results");
    }

    /// A nightly whose source was missing tested nothing: with a good night as its baseline,
    /// that was "0 regressions" although every module vanished.
    #[test]
    fn an_arch_that_tested_nothing_tonight_is_a_regression() {
        for status in ["bad_input", "infra", "interrupted"] {
            let now = json!({"arches": {"sparc64": {"status": status}}});
            let c = compare("prev", &typed(results("loaded")), &typed(now), &no_arches());
            assert_eq!(
                c.regressions,
                vec![Change {
                    arch: "sparc64".into(),
                    what: "results".into(),
                    before: "present".into(),
                    after: format!("none ({status})"),
                }]
            );
        }
    }
}
