//! One self-contained HTML page (no scripts or styles fetched from anywhere): the arch ×
//! module matrix coloured by verdict, the export-table findings, and each failure's kernel
//! messages in a <details> that opens on click.
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(v: &str) -> &'static str {
    match v {
        "loaded" | "ok" => "#c8f0c8",
        "no_device" => "#dff0d0",
        "init_failed" => "#fff3b0",
        "skipped" | "dependency_failed" | "not_run" => "#e0e0e0",
        "crashed" | "hung" => "#f0a0a0",
        _ => "#f5c6c6",
    }
}

/// One matrix cell: verdict, the kernel's messages, a detail line.
type Cell = (String, Vec<String>, String);

pub fn html(r: &Value) -> String {
    let arches: Vec<&Value> = r["arches"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .collect();
    // module → arch → (verdict, messages, detail)
    let mut matrix: BTreeMap<String, BTreeMap<String, Cell>> = BTreeMap::new();
    for a in &arches {
        let arch = a["arch"].as_str().unwrap_or("?").to_string();
        if let Some(mods) = a["boot"]["modules"].as_array() {
            for m in mods {
                let mut v = m["verdict"].as_str().unwrap_or("?").to_string();
                if v == "loaded" && m["unloaded"] == false {
                    v = "loaded, unload failed".into();
                }
                let msgs = super::kernel_messages(m).into_iter().collect();
                let detail = if m["agrees"] == false {
                    format!(
                        "static prediction: {}",
                        m["predicted"].as_str().unwrap_or("?")
                    )
                } else {
                    String::new()
                };
                matrix
                    .entry(m["name"].as_str().unwrap_or("?").to_string())
                    .or_default()
                    .insert(arch.clone(), (v, msgs, detail));
            }
        } else {
            for m in a["check"]["modules"].as_array().into_iter().flatten() {
                let v = m["verdict"].as_str().unwrap_or("?").to_string();
                let msgs = super::kernel_messages(m).into_iter().collect();
                let detail = m["problems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["detail"].as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                matrix
                    .entry(m["name"].as_str().unwrap_or("?").to_string())
                    .or_default()
                    .insert(arch.clone(), (v, msgs, detail));
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
        esc(r["schema"].as_str().unwrap_or("")),
        esc(r["status"].as_str().unwrap_or("")),
        esc(r["command"].as_str().unwrap_or(""))
    );
    if let Some(b) = r["baseline"].as_object() {
        let _ = writeln!(
            o,
            "<h2>Against {}</h2><ul>",
            esc(b["baseline"].as_str().unwrap_or("baseline"))
        );
        for (label, key) in [("regression", "regressions"), ("fix", "fixes")] {
            for c in b[key].as_array().into_iter().flatten() {
                let _ = writeln!(
                    o,
                    "<li class=\"{}\">{label}: {} {}: {} &rarr; {}</li>",
                    if key == "regressions" { "bad" } else { "" },
                    esc(c["arch"].as_str().unwrap_or("")),
                    esc(c["what"].as_str().unwrap_or("")),
                    esc(c["before"].as_str().unwrap_or("")),
                    esc(c["after"].as_str().unwrap_or(""))
                );
            }
        }
        o.push_str("</ul>\n");
    }
    o.push_str("<h2>Architectures</h2><table><tr><th>arch</th><th>build</th><th>static</th><th>boot</th><th>modules</th><th>export table</th><th>prediction</th></tr>\n");
    for a in &arches {
        let row = super::results::arch_row(a);
        o.push_str("<tr>");
        for c in row {
            let bad = c.contains("FAIL")
                || c.contains("INCONSISTENT")
                || c.contains("DIFFERS")
                || c.contains("DISAGREE");
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
            let arch = a["arch"].as_str().unwrap_or("").to_string();
            super::results::causes(a)
                .into_iter()
                .map(move |c| format!("<li class=\"bad\">{}: {}</li>", esc(&arch), esc(&c)))
        })
        .collect();
    if !causes.is_empty() {
        let _ = writeln!(o, "<h2>Causes</h2>\n<ul>\n{}\n</ul>", causes.join("\n"));
    }
    o.push_str("<h2>Export-table findings</h2>\n<ul>\n");
    let mut any = false;
    for a in &arches {
        for p in a["check"]["exports"]["problems"]
            .as_array()
            .into_iter()
            .flatten()
        {
            any = true;
            let _ = writeln!(
                o,
                "<li{}>{}: {}</li>",
                if p["severity"] == "error" {
                    " class=\"bad\""
                } else {
                    ""
                },
                esc(a["arch"].as_str().unwrap_or("")),
                esc(p["detail"].as_str().unwrap_or(""))
            );
        }
        for d in a["boot"]["export_table"]["differences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            any = true;
            let _ = writeln!(
                o,
                "<li class=\"bad\">{} (running kernel): {}</li>",
                esc(a["arch"].as_str().unwrap_or("")),
                esc(d["detail"].as_str().unwrap_or(""))
            );
        }
    }
    if !any {
        o.push_str("<li>none: every kcrctab slot belongs to its symbol</li>\n");
    }
    o.push_str("</ul>\n<h2>Modules</h2>\n<p class=\"legend\"><span style=\"background:#c8f0c8\">loaded / ok</span><span style=\"background:#f5c6c6\">fails</span><span style=\"background:#f0a0a0\">crashed / hung</span><span style=\"background:#fff3b0\">init failed</span><span style=\"background:#e0e0e0\">not run / dependency failed</span> Click a failing cell for the kernel's messages.</p>\n<table><tr><th>module</th>");
    for a in &arches {
        let _ = write!(o, "<th>{}</th>", esc(a["arch"].as_str().unwrap_or("?")));
    }
    o.push_str("</tr>\n");
    for (module, cells) in &matrix {
        let _ = write!(o, "<tr><td>{}</td>", esc(module));
        for a in &arches {
            match cells.get(a["arch"].as_str().unwrap_or("?")) {
                None => o.push_str("<td></td>"),
                Some((v, msgs, detail)) if msgs.is_empty() && detail.is_empty() => {
                    let _ = write!(o, "<td style=\"background:{}\">{}</td>", colour(v), esc(v));
                }
                Some((v, msgs, detail)) => {
                    let _ = write!(
                        o,
                        "<td style=\"background:{}\"><details><summary>{}</summary>",
                        colour(v),
                        esc(v)
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
    o.push_str("</table>\n</body></html>\n");
    o
}
