//! The final table of a run, from `results.json`: arch × (build, static, boot, modules,
//! export table, prediction agreement), regressions first, then the failing modules with the
//! kernel's own messages.
use serde_json::Value;
use std::fmt::Write;

pub fn arch_row(a: &Value) -> [String; 7] {
    let build = match a["status"].as_str() {
        Some("build_failed") => "FAILED".to_string(),
        _ if a["build"].is_object() => {
            let dropped = a["build"]["config"]["dropped"]
                .as_array()
                .map_or(0, Vec::len);
            format!(
                "ok {:.0}s{}",
                a["seconds"]["build_s"].as_f64().unwrap_or(0.0),
                if dropped > 0 {
                    format!(", {dropped} dropped")
                } else {
                    String::new()
                }
            )
        }
        _ => "-".into(),
    };
    let check = &a["check"];
    let stat = if check.is_object() {
        format!(
            "{}/{} ok",
            check["summary"]["ok"], check["summary"]["modules"]
        )
    } else {
        "-".into()
    };
    let boot = &a["boot"];
    let (bootcol, mods) = if boot.is_object() {
        let b = if boot["boot_failure"].is_string() {
            "FAILED".to_string()
        } else if boot["done"] == true {
            format!("ok {:.1}s", boot["seconds_to_done"].as_f64().unwrap_or(0.0))
        } else {
            "incomplete".into()
        };
        (
            b,
            format!(
                "{} loaded, {} failed{}",
                boot["summary"]["loaded"],
                boot["summary"]["failed"],
                match boot["summary"]["not_run"].as_u64() {
                    Some(n) if n > 0 => format!(", {n} not run"),
                    _ => String::new(),
                }
            ),
        )
    } else {
        ("-".into(), "-".into())
    };
    let table = match (
        check["exports"]["consistent"].as_bool(),
        boot["export_table"]["equal"].as_bool(),
    ) {
        (Some(true), Some(true)) => "consistent, runtime equal".into(),
        (Some(true), None) => "consistent".into(),
        (Some(false), Some(true)) => "INCONSISTENT, runtime equal".into(),
        (Some(false), _) => "INCONSISTENT".into(),
        (Some(true), Some(false)) => "runtime DIFFERS".into(),
        _ => "-".into(),
    };
    let agree = if boot.is_object() {
        let d = boot["summary"]["disagreements"].as_u64().unwrap_or(0);
        if d == 0 {
            "agree".into()
        } else {
            format!("{d} DISAGREE")
        }
    } else {
        "-".into()
    };
    [
        a["arch"].as_str().unwrap_or("?").to_string(),
        build,
        stat,
        bootcol,
        mods,
        table,
        agree,
    ]
}

/// The causes behind an arch's columns, one line each: options Kconfig dropped, why the
/// boot failed, how the running export table differs (the first few of each, then a count).
pub fn causes(a: &Value) -> Vec<String> {
    let mut out = Vec::new();
    // The causes behind the columns: options Kconfig dropped, why the boot failed, how
    // the running export table differs.
    const SHOWN: usize = 5;
    let dropped = a["build"]["config"]["dropped"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for d in dropped.iter().take(SHOWN) {
        let deps: Vec<&str> = d["depends_on"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        out.push(format!(
            "build: {}={} was dropped by Kconfig (now {}){}",
            d["option"].as_str().unwrap_or("?"),
            d["wanted"].as_str().unwrap_or("?"),
            d["got"].as_str().unwrap_or("?"),
            if deps.is_empty() {
                String::new()
            } else {
                format!(": depends on {}", deps.join("; "))
            }
        ));
    }
    if dropped.len() > SHOWN {
        out.push(format!(
            "build: … and {} more dropped options (build.json)",
            dropped.len() - SHOWN
        ));
    }
    if let Some(f) = a["boot"]["boot_failure"].as_str() {
        out.push(format!("boot failed: {f}"));
    }
    let diffs = a["boot"]["export_table"]["differences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for d in diffs.iter().take(SHOWN) {
        out.push(format!(
            "running export table: {} {}",
            d["table"].as_str().unwrap_or(""),
            d["detail"].as_str().unwrap_or("")
        ));
    }
    if diffs.len() > SHOWN {
        out.push(format!(
            "running export table: … and {} more differences (results.json)",
            diffs.len() - SHOWN
        ));
    }
    out
}

pub fn table(r: &Value) -> String {
    let mut o = String::new();
    if let Some(b) = r["baseline"].as_object() {
        let regs = b["regressions"].as_array().cloned().unwrap_or_default();
        let fixes = b["fixes"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(
            o,
            "Against {}: {} regressions, {} fixes",
            b["baseline"].as_str().unwrap_or("the baseline"),
            regs.len(),
            fixes.len()
        );
        for (label, list) in [("REGRESSION", &regs), ("fix", &fixes)] {
            for c in list {
                let _ = writeln!(
                    o,
                    "  {label:10} {} {}: {} -> {}",
                    c["arch"].as_str().unwrap_or(""),
                    c["what"].as_str().unwrap_or(""),
                    c["before"].as_str().unwrap_or(""),
                    c["after"].as_str().unwrap_or("")
                );
            }
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
    for a in r["arches"].as_object().into_iter().flat_map(|m| m.values()) {
        rows.push(arch_row(a));
    }
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
    for a in r["arches"].as_object().into_iter().flat_map(|m| m.values()) {
        let arch = a["arch"].as_str().unwrap_or("?");
        for reason in a["reasons"].as_array().into_iter().flatten() {
            let _ = writeln!(o, "{arch}: {}", reason.as_str().unwrap_or(""));
        }
        for line in causes(a) {
            let _ = writeln!(o, "{arch}: {line}");
        }
        for p in a["check"]["exports"]["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["severity"] == "error")
        {
            let _ = writeln!(
                o,
                "{arch}: export table: {}",
                p["detail"].as_str().unwrap_or("")
            );
        }
        let mut failing: Vec<(String, String, Vec<String>)> = Vec::new();
        if let Some(mods) = a["boot"]["modules"].as_array() {
            let not_run: Vec<&serde_json::Value> =
                mods.iter().filter(|m| m["verdict"] == "not_run").collect();
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
                    first["not_run_reason"]
                        .as_str()
                        .unwrap_or("no result arrived")
                );
            }
            for m in mods.iter().filter(|m| {
                m["verdict"] != "not_run"
                    && m["verdict"] != "no_device"
                    && (m["verdict"] != "loaded" || m["unloaded"] == false || m["agrees"] == false)
            }) {
                let mut v = m["verdict"].as_str().unwrap_or("?").to_string();
                if m["agrees"] == false {
                    v += &format!(" (predicted {})", m["predicted"].as_str().unwrap_or("?"));
                }
                let msgs = super::kernel_messages(m).into_iter().take(6).collect();
                failing.push((m["name"].as_str().unwrap_or("?").to_string(), v, msgs));
            }
        } else if let Some(mods) = a["check"]["modules"].as_array() {
            for m in mods.iter().filter(|m| m["verdict"] != "ok") {
                let msgs = super::kernel_messages(m).into_iter().take(6).collect();
                failing.push((
                    m["name"].as_str().unwrap_or("?").to_string(),
                    format!("{} (static)", m["verdict"].as_str().unwrap_or("?")),
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
