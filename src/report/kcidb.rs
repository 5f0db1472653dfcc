//! KCIDB v5 JSON (kernelci/kcidb-io): one checkout, a build per arch, a test per stage and
//! module. IDs are `<origin>:<anything>`; no nulls; free-form data goes under `misc`.
use serde_json::{json, Map, Value};

fn rfc3339(unix: u64) -> String {
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let (days, secs) = ((unix / 86400) as i64, unix % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn clean_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn kcidb(r: &Value, origin: &str) -> Value {
    let started = r["started_unix"].as_u64().unwrap_or(0);
    let run_id = format!("{started}");
    let checkout_id = format!("{origin}:{run_id}");
    let start_time = rfc3339(started);
    let mut checkout =
        json!({"id": checkout_id, "origin": origin, "start_time": start_time, "valid": true});
    let first = r["arches"]
        .as_object()
        .and_then(|m| m.values().find_map(|a| a["build"].as_object().cloned()));
    if let Some(b) = &first {
        let mut misc = Map::new();
        misc.insert(
            "source".into(),
            b.get("source_origin").cloned().unwrap_or(Value::Null),
        );
        misc.retain(|_, v| !v.is_null());
        checkout["misc"] = Value::Object(misc);
        if let Some(v) = b.get("kernel_version").and_then(Value::as_str) {
            checkout["git_commit_name"] = json!(v);
        }
    }
    let mut builds = Vec::new();
    let mut tests = Vec::new();
    for (arch, a) in r["arches"].as_object().into_iter().flatten() {
        let build_id = format!("{origin}:{run_id}-{}", clean_id(arch));
        let status = match a["status"].as_str() {
            Some("build_failed") => "FAIL",
            Some("skipped") if a["build"].is_null() => "SKIP",
            Some("infra") if a["build"].is_null() => "ERROR",
            _ if a["build"].is_object() => "PASS",
            _ => "MISS",
        };
        let mut build = json!({"checkout_id": checkout_id, "id": build_id, "origin": origin, "architecture": arch, "status": status, "start_time": start_time});
        if let Some(b) = a["build"].as_object() {
            if let Some(c) = b.get("toolchain").and_then(Value::as_str) {
                build["compiler"] = json!(c);
            }
            if let Some(c) = b.get("make_command").and_then(Value::as_str) {
                build["command"] = json!(c);
            }
            if let Some(c) = b.get("config").and_then(|c| c["base"].as_str()) {
                build["config_name"] = json!(c);
            }
            if let Some(d) = b.get("durations").and_then(|d| d["total_s"].as_f64()) {
                build["duration"] = json!(d);
            }
            let modpost: Vec<Value> = b
                .get("modpost")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !modpost.is_empty() {
                build["misc"] = json!({"modpost": modpost.iter().filter_map(|f| f["line"].as_str()).collect::<Vec<_>>()});
            }
        }
        builds.push(build);
        let mut add = |path: String, status: &str, excerpt: String, seconds: f64| {
            let mut t = json!({"build_id": build_id, "id": format!("{build_id}-{}", clean_id(&path)), "origin": origin, "path": path, "status": status, "start_time": start_time, "duration": seconds});
            if !excerpt.is_empty() {
                t["log_excerpt"] = json!(excerpt.chars().take(16_000).collect::<String>());
            }
            tests.push(t);
        };
        if a["check"].is_object() {
            let errs = super::export_table_errors(a);
            add(
                "modverify.export_table.static".into(),
                if errs.is_empty() { "PASS" } else { "FAIL" },
                errs.join("\n"),
                a["seconds"]["check_s"].as_f64().unwrap_or(0.0),
            );
        }
        let boot = &a["boot"];
        if boot.is_object() {
            let ok = boot["done"] == true && boot["boot_failure"].is_null();
            add(
                "modverify.boot".into(),
                if ok { "PASS" } else { "FAIL" },
                boot["boot_failure"].as_str().unwrap_or("").to_string(),
                a["seconds"]["boot_s"].as_f64().unwrap_or(0.0),
            );
            if let Some(eq) = boot["export_table"]["equal"].as_bool() {
                add(
                    "modverify.export_table.runtime".into(),
                    if eq { "PASS" } else { "FAIL" },
                    String::new(),
                    0.0,
                );
            }
            for m in boot["modules"].as_array().into_iter().flatten() {
                let v = m["verdict"].as_str().unwrap_or("?");
                let status = match v {
                    "loaded" if m["unloaded"] != false => "PASS",
                    "loaded" => "FAIL",
                    "crashed" | "hung" => "ERROR",
                    "skipped" => "SKIP",
                    // Linked; what it drives is not in the machine: nothing to test.
                    "no_device" => "SKIP",
                    "not_run" => "MISS",
                    _ => "FAIL",
                };
                let msgs: Vec<String> = super::kernel_messages(m);
                add(
                    format!(
                        "modverify.module.{}",
                        clean_id(m["name"].as_str().unwrap_or("x"))
                    ),
                    status,
                    msgs.join("\n"),
                    m["load_micros"].as_f64().unwrap_or(0.0) / 1e6,
                );
            }
        } else if let Some(mods) = a["check"]["modules"].as_array() {
            for m in mods {
                let v = m["verdict"].as_str().unwrap_or("?");
                add(
                    format!(
                        "modverify.module.{}",
                        clean_id(m["name"].as_str().unwrap_or("x"))
                    ),
                    if v == "ok" { "PASS" } else { "FAIL" },
                    String::new(),
                    0.0,
                );
            }
        }
    }
    json!({"version": {"major": 5, "minor": 3}, "checkouts": [checkout], "builds": builds, "tests": tests})
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(super::rfc3339(1_795_339_871), "2026-11-22T09:31:11+00:00");
    }
}
