//! JUnit XML: one testsuite per arch; test cases for build, static export table, boot and
//! running export table, and one per module — failures carry the kernel's own messages.
use serde_json::Value;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

struct Case {
    name: String,
    seconds: f64,
    failure: Option<(String, String)>,
    skipped: Option<String>,
    /// Notes for `<system-out>` (the options Kconfig dropped from a build that passed).
    out: String,
}

pub fn junit(r: &Value) -> String {
    let mut o = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"modverify\">\n",
    );
    for a in r["arches"].as_object().into_iter().flat_map(|m| m.values()) {
        let arch = a["arch"].as_str().unwrap_or("?");
        let mut cases = Vec::new();
        let status = a["status"].as_str().unwrap_or("");
        let reasons: Vec<String> = a["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        cases.push(Case {
            name: "build".into(),
            seconds: a["seconds"]["build_s"].as_f64().unwrap_or(0.0),
            failure: (status == "build_failed")
                .then(|| ("build failed".into(), reasons.join("\n"))),
            skipped: (a["build"].is_null() && status != "build_failed").then(|| reasons.join("; ")),
            out: super::results::causes(a)
                .into_iter()
                .filter(|c| c.starts_with("build: "))
                .collect::<Vec<_>>()
                .join("\n"),
        });
        if a["check"].is_object() {
            let probs = super::export_table_errors(a);
            cases.push(Case {
                name: "export-table.static".into(),
                seconds: a["seconds"]["check_s"].as_f64().unwrap_or(0.0),
                failure: (!probs.is_empty())
                    .then(|| ("export table inconsistent".into(), probs.join("\n"))),
                skipped: None,
                out: String::new(),
            });
        }
        let boot = &a["boot"];
        if boot.is_object() {
            cases.push(Case {
                name: "boot".into(),
                seconds: a["seconds"]["boot_s"].as_f64().unwrap_or(0.0),
                failure: boot["boot_failure"]
                    .as_str()
                    .map(|f| ("boot failed".into(), f.to_string()))
                    .or_else(|| {
                        (boot["done"] != true)
                            .then(|| ("no done from the guest".into(), String::new()))
                    }),
                skipped: None,
                out: String::new(),
            });
            if let Some(eq) = boot["export_table"]["equal"].as_bool() {
                let diffs: Vec<String> = boot["export_table"]["differences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d["detail"].as_str().map(str::to_string))
                    .collect();
                cases.push(Case {
                    name: "export-table.runtime".into(),
                    seconds: 0.0,
                    failure: (!eq).then(|| {
                        (
                            "running export table differs from the ELF".into(),
                            diffs.join("\n"),
                        )
                    }),
                    skipped: None,
                    out: String::new(),
                });
            }
            for m in boot["modules"].as_array().into_iter().flatten() {
                let v = m["verdict"].as_str().unwrap_or("?");
                let msgs: Vec<String> = super::kernel_messages(m).into_iter().collect();
                let mut failure = None;
                let mut skipped = None;
                if v == "not_run" {
                    // Never tried (the guest died first): the boot case carries the failure.
                    skipped = Some(format!(
                        "not run: {}",
                        m["not_run_reason"].as_str().unwrap_or("no result arrived")
                    ));
                } else if v == "no_device" {
                    skipped = Some(format!(
                        "no device: init returned {} (what it drives is not in this machine)",
                        m["errno_name"]
                            .as_str()
                            .unwrap_or("an absent-hardware errno")
                    ));
                } else if v != "loaded" {
                    failure = Some((
                        format!(
                            "{v}{}",
                            m["symbol"]
                                .as_str()
                                .map(|s| format!(" ({s})"))
                                .unwrap_or_default()
                        ),
                        msgs.join("\n"),
                    ));
                } else if m["unloaded"] == false {
                    failure = Some((
                        "unload failed".into(),
                        format!("errno {}", m["unload_errno"]),
                    ));
                } else if m["agrees"] == false {
                    failure = Some((
                        format!(
                            "loaded, but the static check predicted {}",
                            m["predicted"].as_str().unwrap_or("?")
                        ),
                        String::new(),
                    ));
                }
                cases.push(Case {
                    name: format!("module.{}", m["name"].as_str().unwrap_or("?")),
                    seconds: m["load_micros"].as_f64().unwrap_or(0.0) / 1e6,
                    failure,
                    skipped,
                    out: String::new(),
                });
            }
        } else if let Some(mods) = a["check"]["modules"].as_array() {
            for m in mods {
                let v = m["verdict"].as_str().unwrap_or("?");
                let msgs: Vec<String> = super::kernel_messages(m).into_iter().collect();
                cases.push(Case {
                    name: format!("module.{}", m["name"].as_str().unwrap_or("?")),
                    seconds: 0.0,
                    failure: (v != "ok")
                        .then(|| (format!("{v} (static prediction)"), msgs.join("\n"))),
                    skipped: None,
                    out: String::new(),
                });
            }
        }
        let failures = cases.iter().filter(|c| c.failure.is_some()).count();
        let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
        let total: f64 = cases.iter().map(|c| c.seconds).sum();
        let _ = writeln!(o, "  <testsuite name=\"modverify.{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total:.3}\">", esc(arch), cases.len());
        for c in cases {
            let _ = write!(
                o,
                "    <testcase classname=\"modverify.{}\" name=\"{}\" time=\"{:.3}\"",
                esc(arch),
                esc(&c.name),
                c.seconds
            );
            match (c.failure, c.skipped) {
                (Some((msg, body)), _) => {
                    let _ = writeln!(
                        o,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        esc(&msg),
                        esc(&body)
                    );
                }
                (None, Some(why)) => {
                    let _ = writeln!(
                        o,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        esc(&why)
                    );
                }
                _ if !c.out.is_empty() => {
                    let _ = writeln!(
                        o,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        esc(&c.out)
                    );
                }
                _ => o.push_str("/>\n"),
            }
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}
