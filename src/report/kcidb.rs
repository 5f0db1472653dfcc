//! KCIDB v5 JSON (kernelci/kcidb-io): one checkout, a build per arch, a test per stage and
//! module. IDs are `<origin>:<anything>`; no nulls; free-form data goes under `misc`.
use crate::results::{ArchStatus, RunResults};
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

pub fn kcidb(r: &RunResults, origin: &str) -> Value {
    let started = r.started_unix;
    let run_id = format!("{started}");
    let checkout_id = format!("{origin}:{run_id}");
    let start_time = rfc3339(started);
    let mut checkout =
        json!({"id": checkout_id, "origin": origin, "start_time": start_time, "valid": true});
    if let Some(b) = r.arches().find_map(|a| a.build.as_ref()) {
        let mut misc = Map::new();
        if !b.source_origin.as_os_str().is_empty() {
            misc.insert("source".into(), json!(b.source_origin));
        }
        checkout["misc"] = Value::Object(misc);
        if let Some(v) = &b.kernel_version {
            checkout["git_commit_name"] = json!(v);
        }
    }
    let mut builds = Vec::new();
    let mut tests = Vec::new();
    for (arch, a) in &r.arches {
        let build_id = format!("{origin}:{run_id}-{}", clean_id(arch));
        let status = match (a.status, &a.build) {
            (ArchStatus::BuildFailed, _) => "FAIL",
            (_, Some(_)) => "PASS",
            (ArchStatus::Skipped, None) => "SKIP",
            (ArchStatus::Infra | ArchStatus::BadInput, None) => "ERROR",
            (
                ArchStatus::Running
                | ArchStatus::Ok
                | ArchStatus::Findings
                | ArchStatus::NotRun
                | ArchStatus::Interrupted,
                None,
            ) => "MISS",
        };
        let mut build = json!({"checkout_id": checkout_id, "id": build_id, "origin": origin, "architecture": arch, "status": status, "start_time": start_time});
        if let Some(b) = &a.build {
            // A results.json written by hand may leave these out: KCIDB wants no empty values.
            for (key, v) in [
                ("compiler", &b.toolchain),
                ("command", &b.make_command),
                ("config_name", &b.config.base),
            ] {
                if !v.is_empty() {
                    build[key] = json!(v);
                }
            }
            build["duration"] = json!(b.durations.total_s);
            if !b.modpost.is_empty() {
                build["misc"] = json!({"modpost": b.modpost.iter().map(|f| f.line.as_str()).collect::<Vec<_>>()});
            }
        }
        // Why it failed: the tool's error lines first (the reasons the build stage gave).
        if status == "FAIL" {
            let why: Vec<&str> = a
                .reasons
                .iter()
                .filter(|r| r.stage == Some(crate::results::Stage::Build))
                .map(|r| r.text.as_str())
                .collect();
            if !why.is_empty() {
                build["log_excerpt"] =
                    json!(why.join("\n").chars().take(16_000).collect::<String>());
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
        if a.check.is_some() {
            let errs = a.export_table_errors();
            add(
                "modverify.export_table.static".into(),
                if errs.is_empty() { "PASS" } else { "FAIL" },
                errs.join("\n"),
                a.seconds.check_s.unwrap_or(0.0),
            );
        }
        if let Some(boot) = &a.boot {
            let ok = boot.done && boot.boot_failure.is_none();
            add(
                "modverify.boot".into(),
                // A boot that could not run (QEMU would not start the machine) is the
                // test's error, not the kernel's failure: as JUnit's <error>, by the status.
                match (ok, a.status) {
                    (true, _) => "PASS",
                    (false, ArchStatus::Infra) => "ERROR",
                    (false, ArchStatus::Interrupted) => "MISS",
                    (false, _) => "FAIL",
                },
                boot.boot_failure
                    .as_ref()
                    .map(|f| f.text.clone())
                    .unwrap_or_default(),
                a.seconds.boot_s.unwrap_or(0.0),
            );
            if let Some(t) = &boot.export_table {
                add(
                    "modverify.export_table.runtime".into(),
                    if t.equal { "PASS" } else { "FAIL" },
                    String::new(),
                    0.0,
                );
            }
            for m in &boot.modules {
                // Every try's verdict and messages where it was tried again.
                let mut log = m.kernel_messages.join("\n");
                if !m.retries.is_empty() {
                    log = format!("{}: {}\n{log}", m.shown_verdict(), m.verdict.as_str());
                    for (n, t) in m.retries.iter().enumerate() {
                        log += &format!(
                            "\ntry {}: {}\n{}",
                            n + 2,
                            t.verdict.as_str(),
                            t.kernel_messages.join("\n")
                        );
                    }
                }
                add(
                    format!("modverify.module.{}", clean_id(&m.name)),
                    m.outcome().kcidb(),
                    log,
                    m.load_micros.map_or(0.0, |u| u as f64) / 1e6,
                );
            }
        } else if let Some(check) = &a.check {
            for m in &check.modules {
                add(
                    format!("modverify.module.{}", clean_id(&m.name)),
                    m.verdict.outcome().kcidb(),
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
