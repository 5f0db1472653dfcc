//! The HTML report as a person meets it at fourteen arches, looked at in the real browser
//! (Chromium, headless): the counts on top with a row per arch, the modules that need a look
//! first, each with the kernel's message. The results are a real run's:
//! `tests/fixtures/results-14-arches.json` is the results.json of
//! `modverify run --arch alpha,arm64,armhf,hppa,i386,ia64,m68k,mips64el,ppc64,ppc64el,riscv64,s390x,sh4,sparc64`
//! on linux-source-6.1 (each arch built, checked and booted here on 2026-12-07; ia64, which no
//! QEMU boots, built and checked; its `kabi` tables left out of the saved file for size, this
//! machine's paths written as `~/.cache/modverify`). sh4's crypto modules oops (a 6.1 kernel
//! bug on sh4, docs/architectures.md): the failures the page must put first. The
//! 4,000-module page is tests/scale_real.rs's.
//! `MODVERIFY_KEEP_SCREENSHOT=FILE.png` keeps what the browser drew.
mod common;
use common::*;
use serde_json::Value;

const FIXTURE: &str = "tests/fixtures/results-14-arches.json";

#[test]
fn fourteen_arches_read_in_the_browser() {
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let arches: Vec<(String, u64)> = saved["arches"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, a)| {
            let n = a["boot"]["summary"]["modules"]
                .as_u64()
                .or(a["check"]["summary"]["modules"].as_u64())
                .unwrap_or(0);
            (name.clone(), n)
        })
        .collect();
    assert_eq!(arches.len(), 14, "{arches:?}");
    assert!(arches.iter().all(|(_, n)| *n >= 20), "{arches:?}");
    let tmp = tempfile::tempdir().unwrap();
    let html = tmp.path().join("report.html");
    let o = modverify(&[
        "report",
        FIXTURE,
        "--format",
        "html",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let keep = std::env::var_os("MODVERIFY_KEEP_SCREENSHOT").map(std::path::PathBuf::from);
    let dom = chromium(&html, keep.as_deref());
    let wanted: Vec<(&str, u64)> = arches.iter().map(|(a, n)| (a.as_str(), *n)).collect();
    let names = assert_html_report(&dom, &wanted);
    // sh4's crashed and hung modules are the ones that need a look: they lead the page.
    let sh4_failing: Vec<&str> = saved["arches"]["sh4"]["boot"]["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["verdict"] == "crashed" || m["verdict"] == "hung")
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(!sh4_failing.is_empty());
    for name in names.iter().take(sh4_failing.len()) {
        assert!(
            sh4_failing.contains(&name.as_str()),
            "{name} leads the page: {names:?}"
        );
    }
    // One row per module name across the arches, and a column per arch.
    let distinct: std::collections::BTreeSet<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(distinct.len(), names.len(), "a module listed twice");
    let header = dom
        .split("<table id=\"modules\">")
        .nth(1)
        .and_then(|t| t.split("</thead>").next())
        .unwrap();
    for (arch, _) in &arches {
        assert!(
            header.contains(&format!("<th>{arch}</th>")),
            "no column for {arch}"
        );
    }
    // Every arch's status as the run decided it, in the counts row.
    for (arch, a) in saved["arches"].as_object().unwrap() {
        let row = dom
            .split("<tr data-arch=\"")
            .find(|r| r.starts_with(&format!("{arch}\"")))
            .unwrap();
        let status = a["status"].as_str().unwrap();
        assert!(row.contains(&format!(">{status}</td>")), "{arch}: {row}");
    }
}
