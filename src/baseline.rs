//! Comparing a run with an earlier one (`--baseline PREVIOUS/results.json`): what worked and
//! fails now (a regression), what failed and works now (a fix). Works on the JSON of both,
//! so any earlier `results.json` of the same schema can serve as the baseline.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Change {
    pub arch: String,
    /// `module <name>`, `build`, `export table`.
    pub what: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Comparison {
    pub baseline: String,
    pub regressions: Vec<Change>,
    pub fixes: Vec<Change>,
}

/// Per arch: item → (verdict, good?).
fn outcomes(results: &Value) -> BTreeMap<String, BTreeMap<String, (String, bool)>> {
    let mut out = BTreeMap::new();
    let Some(arches) = results["arches"].as_object() else {
        return out;
    };
    for (arch, a) in arches {
        let mut m = BTreeMap::new();
        let status = a["status"].as_str().unwrap_or("?").to_string();
        if status == "skipped" || status == "infra" || status == "interrupted" {
            out.insert(arch.clone(), m);
            continue; // says nothing about the kernel
        }
        m.insert(
            "build".to_string(),
            (
                if status == "build_failed" {
                    "failed"
                } else {
                    "ok"
                }
                .to_string(),
                status != "build_failed",
            ),
        );
        let boot_modules = a["boot"]["modules"].as_array();
        match boot_modules {
            Some(mods) => {
                for x in mods {
                    let v = x["verdict"].as_str().unwrap_or("?").to_string();
                    let good = v == "loaded" && x["unloaded"].as_bool() != Some(false);
                    let v = if v == "loaded" && !good {
                        "loaded, unload failed".to_string()
                    } else {
                        v
                    };
                    m.insert(
                        format!("module {}", x["name"].as_str().unwrap_or("?")),
                        (v, good),
                    );
                }
                if let Some(t) = a["boot"]["export_table"]["equal"].as_bool() {
                    m.insert(
                        "running export table".into(),
                        (if t { "equal" } else { "differs" }.into(), t),
                    );
                }
            }
            None => {
                for x in a["check"]["modules"].as_array().into_iter().flatten() {
                    let v = x["verdict"].as_str().unwrap_or("?").to_string();
                    m.insert(
                        format!("module {}", x["name"].as_str().unwrap_or("?")),
                        (v.clone(), v == "ok"),
                    );
                }
            }
        }
        if let Some(c) = a["check"]["exports"]["consistent"].as_bool() {
            m.insert(
                "static export table".into(),
                (if c { "consistent" } else { "inconsistent" }.into(), c),
            );
        }
        out.insert(arch.clone(), m);
    }
    out
}

pub fn compare(baseline_name: &str, before: &Value, now: &Value) -> Comparison {
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
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results(md5: &str) -> Value {
        json!({"arches": {"sparc64": {"status": "findings", "boot": {"modules": [
            {"name": "md5", "verdict": md5, "unloaded": true},
            {"name": "crc7", "verdict": "loaded", "unloaded": true}
        ], "export_table": {"equal": true}}, "check": {"exports": {"consistent": true}}}}})
    }

    #[test]
    fn a_module_that_loaded_and_fails_now_is_a_regression() {
        let c = compare("prev", &results("loaded"), &results("crc_mismatch"));
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
        let back = compare("prev", &results("crc_mismatch"), &results("loaded"));
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
        let c = compare("prev", &results("loaded"), &now);
        assert_eq!(
            c.regressions,
            vec![Change {
                arch: "sparc64".into(),
                what: "module crc7".into(),
                before: "loaded".into(),
                after: "missing".into()
            }]
        );
        let gone = compare("prev", &results("loaded"), &json!({"arches": {}}));
        assert_eq!(gone.regressions.len(), 1);
        assert_eq!(gone.regressions[0].what, "results");
    }
}
