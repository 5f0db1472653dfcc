//! Flaky results as a state (`--retries`), on a real riscv64 6.1 kernel with two test modules
//! (tests/regressions/flaky-test-modules.patch): modverify_flaky fails its init while other
//! modules are loaded — so in the guest that loads the whole set it fails, and tried again
//! alone in a fresh guest it loads — and modverify_fails always fails.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

fn flaky_build() -> std::path::PathBuf {
    let (dir, _) = build(&[
        "--arch",
        "riscv64",
        "--patch",
        &patch("flaky-test-modules.patch"),
        "--fragment",
        &fragment(),
    ]);
    dir
}

fn fragment() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions/test-modules.config")
        .display()
        .to_string()
}

fn module<'a>(boot: &'a Value, name: &str) -> &'a Value {
    boot["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {boot:#}"))
}

#[test]
fn a_failure_that_does_not_reproduce_is_flaky_and_one_that_does_stands() {
    let dir = flaky_build();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("boot");
    let d = dir.to_str().unwrap();
    let (code, b, o) = json(&[
        "boot",
        "--format",
        "json",
        "--arch",
        "riscv64",
        "--build",
        d,
        "--out",
        out.to_str().unwrap(),
    ]);
    // One failure reproduced: the run fails, for it alone.
    assert_eq!(code, 1, "{}", text(&o));
    let flaky = module(&b, "modverify_flaky");
    assert_eq!(flaky["verdict"], "init_failed", "{flaky:#}");
    assert_eq!(flaky["retries"][0]["verdict"], "loaded", "{flaky:#}");
    assert!(
        flaky["kernel_messages"][0]
            .as_str()
            .unwrap()
            .contains("other modules are loaded: failing this time"),
        "{flaky:#}"
    );
    let fails = module(&b, "modverify_fails");
    assert_eq!(fails["verdict"], "init_failed");
    assert_eq!(fails["retries"][0]["verdict"], "init_failed", "{fails:#}");
    assert_eq!(
        fails["retries"][0]["kernel_messages"][0],
        "modverify_fails: failing, as always"
    );
    assert_eq!(b["summary"]["flaky"], 1, "{:#}", b["summary"]);
    assert_eq!(b["summary"]["reproduced"], 1);
    assert_eq!(b["summary"]["failed"], 1);
    assert_eq!(b["summary"]["disagreements"], 0);
    assert!(out.join("retry-1/console.log").exists());

    // Every report says it: the table, JUnit (nextest's convention), KCIDB, HTML.
    let results = out.join("results.json");
    let report = |format: &str| {
        let o = modverify(&["report", "--format", format, results.to_str().unwrap()]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let table = modverify(&[
        "boot",
        "--arch",
        "riscv64",
        "--build",
        d,
        "--out",
        tmp.path().join("again").to_str().unwrap(),
    ]);
    let t = text(&table);
    assert!(
        t.contains("FLAKY          modverify_flaky") && t.contains("try 2: loaded"),
        "{t}"
    );
    assert!(
        t.contains("modverify_fails") && t.contains("reproduced in 2 tries"),
        "{t}"
    );
    assert!(t.contains("1 flaky"), "{t}");
    let junit = report("junit");
    assert!(
        junit.contains("<flakyFailure message=\"init_failed (try 1)\""),
        "{junit}"
    );
    assert!(
        junit.contains("<rerunFailure message=\"init_failed (try 2)\""),
        "{junit}"
    );
    let kcidb: Value = serde_json::from_str(&report("kcidb")).unwrap();
    let case = kcidb["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == "modverify.module.modverify_flaky")
        .unwrap();
    assert_eq!(case["status"], "PASS");
    assert!(case["log_excerpt"]
        .as_str()
        .unwrap()
        .contains("flaky: init_failed, then loaded"));
    // In the browser: the counts, and the two that need a look first.
    let html = tmp.path().join("report.html");
    std::fs::write(&html, report("html")).unwrap();
    let dom = chromium(&html, None);
    assert!(dom.contains("flaky: init_failed, then loaded"));
    let names = assert_html_report(&dom, &[("riscv64", 35)]);
    assert_eq!(names[..2], ["modverify_fails", "modverify_flaky"]);

    // --retries 0: no second try, both failures stand.
    let (code, b0, o) = json(&[
        "boot",
        "--format",
        "json",
        "--arch",
        "riscv64",
        "--build",
        d,
        "--retries",
        "0",
        "--out",
        tmp.path().join("once").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{}", text(&o));
    assert_eq!(b0["summary"]["failed"], 2, "{:#}", b0["summary"]);
    assert!(module(&b0, "modverify_flaky")["retries"].is_null());

    // Against a night where both loaded: one regression (the reproduced one), the flaky
    // one listed apart.
    let mut good: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    for m in good["arches"]["riscv64"]["boot"]["modules"]
        .as_array_mut()
        .unwrap()
    {
        m["verdict"] = "loaded".into();
        m.as_object_mut().unwrap().remove("retries");
    }
    let baseline = tmp.path().join("good.json");
    std::fs::write(&baseline, good.to_string()).unwrap();
    let merged = tmp.path().join("merged.json");
    let o = modverify(&[
        "merge",
        results.to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let m: Value = serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap();
    let regressions: Vec<&str> = m["baseline"]["regressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["what"].as_str().unwrap())
        .collect();
    assert_eq!(regressions, ["module modverify_fails"]);
    assert_eq!(m["baseline"]["flaky"][0]["what"], "module modverify_flaky");
    assert!(text(&o).contains("flaky (not counted) riscv64 module modverify_flaky"));
}

/// `git bisect run` cannot decide on a flaky result: 125, unless asked otherwise; a failure
/// that reproduced is bad.
#[test]
fn bisect_step_skips_a_commit_whose_only_trouble_is_flaky() {
    let _dir = flaky_build();
    let src = modverify::kernel_build::cache_dir().join("src/linux-source-6.1");
    let step = |more: &[&str]| {
        let p = patch("flaky-test-modules.patch");
        let f = fragment();
        let mut args = vec![
            "bisect-step",
            "--arch",
            "riscv64",
            "--source",
            src.to_str().unwrap(),
            "--patch",
            &p,
            "--fragment",
            &f,
        ];
        args.extend(more);
        let o = modverify(&args);
        (o.status.code().unwrap(), text(&o))
    };
    let (code, said) = step(&["--module", "modverify_flaky"]);
    assert_eq!(code, 125, "{said}");
    assert!(said.contains("flaky"), "{said}");
    assert_eq!(
        step(&["--module", "modverify_flaky", "--flaky", "bad"]).0,
        1
    );
    assert_eq!(
        step(&["--module", "modverify_flaky", "--flaky", "good"]).0,
        0
    );
    assert_eq!(step(&["--module", "modverify_fails"]).0, 1);
}

/// A retry costs time only where something failed: a clean boot boots no second guest.
#[test]
fn a_clean_boot_tries_nothing_again() {
    let (dir, _) = build(&["--arch", "riscv64"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("boot");
    let (code, b, o) = json(&[
        "boot",
        "--format",
        "json",
        "--arch",
        "riscv64",
        "--build",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{}", text(&o));
    assert!(!out.join("retry-1").exists());
    assert_eq!(b["boots"].as_array().unwrap().len(), 1);
    assert!(b["summary"]["flaky"].is_null(), "{:#}", b["summary"]);
}
