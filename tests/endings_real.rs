//! Every way an arch can end, on the real binary and real riscv64 kernels: `run`, `merge`
//! (whole, and from shards), `report` (table, JUnit, KCIDB, HTML), `--baseline` and
//! `bisect-step` give one answer, each with the exit status it must have. Before the one rule
//! (src/outcome.rs) each of them decided again from strings: a run that tested nothing was
//! green, a broken QEMU was a bad commit, a merge could call a broken arch ok.
//!
//! One row is not here: export-table errors with a clean boot needs a kernel whose table is
//! wrong and whose modules all load, which no real tree here makes; tests/outcomes.rs
//! `merged_shards_keep_the_static_findings` merges such results.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn results(file: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

struct Ending {
    name: &'static str,
    arch: &'static str,
    args: Vec<String>,
    /// riscv64's descriptor with a QEMU that cannot start the machine.
    broken_qemu: bool,
    status: &'static str,
    exit: i32,
    /// Compared with the ok row's results: the exit, and whether a regression is listed.
    baseline_exit: i32,
    regressed: bool,
    bisect: i32,
}

/// What each report must show for an arch of this status (the arch is the only one).
fn assert_reports_agree(file: &Path, status: &str, why: &str) {
    let report = |format: &str| {
        let o = modverify(&["report", "--format", format, file.to_str().unwrap()]);
        assert!(o.status.success(), "{why}: report {format}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let (junit, kcidb, html, table) = (
        report("junit"),
        report("kcidb"),
        report("html"),
        report("table"),
    );
    let red = html.contains("<td class=\"bad\">riscv64</td>")
        || html.contains("<td class=\"bad\">loong64</td>");
    match status {
        "ok" => {
            assert!(
                !junit.contains("<failure") && !junit.contains("<error"),
                "{why}: {junit}"
            );
            assert!(
                !kcidb.contains("\"FAIL\"") && !kcidb.contains("\"ERROR\""),
                "{why}: {kcidb}"
            );
            assert!(!red, "{why}: {html}");
        }
        "findings" | "build_failed" => {
            assert!(junit.contains("<failure"), "{why}: {junit}");
            assert!(!junit.contains("<skipped"), "{why}: {junit}");
            assert!(kcidb.contains("\"FAIL\""), "{why}: {kcidb}");
            assert!(red, "{why}: {html}");
        }
        "bad_input" => {
            assert!(
                junit.contains("<failure message=\"bad input"),
                "{why}: {junit}"
            );
            assert!(kcidb.contains("\"ERROR\""), "{why}: {kcidb}");
            assert!(table.contains("BAD INPUT"), "{why}: {table}");
            assert!(red, "{why}: {html}");
        }
        "infra" => {
            assert!(junit.contains("<error"), "{why}: {junit}");
            assert!(!junit.contains("<failure"), "{why}: {junit}");
            assert!(kcidb.contains("\"ERROR\""), "{why}: {kcidb}");
            assert!(red, "{why}: {html}");
        }
        "interrupted" => {
            // What ran passed (the build, the static check); the boot is missing, not failed.
            assert!(kcidb.contains("\"MISS\""), "{why}: {kcidb}");
            assert!(!kcidb.contains("\"FAIL\""), "{why}: {kcidb}");
            assert!(red, "{why}: {html}");
        }
        s => panic!("{why}: no expectation for {s}"),
    }
}

/// `merge` of the run's own file gives the run's status and exit; against the ok row's
/// results it lists each regression and exits as `run --baseline` would.
fn assert_merges_agree(e: &Ending, file: &Path, good: &Path, tmp: &Path) {
    let merged = tmp.join(format!("{}-merged.json", e.name));
    let o = modverify(&[
        "merge",
        file.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(e.exit),
        "{}: merge: {}",
        e.name,
        text(&o)
    );
    assert_eq!(
        results(&merged)["arches"][e.arch]["status"],
        e.status,
        "{}: merge",
        e.name
    );
    if e.arch != "riscv64" {
        return;
    }
    let o = modverify(&[
        "merge",
        file.to_str().unwrap(),
        "--baseline",
        good.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(
        o.status.code(),
        Some(e.baseline_exit),
        "{}: merge --baseline: {t}",
        e.name
    );
    assert_eq!(
        t.contains("REGRESSION riscv64"),
        e.regressed,
        "{}: merge --baseline: {t}",
        e.name
    );
}

#[test]
fn every_ending_gets_one_answer_from_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = riscv64_without_qemu(tmp.path());
    let typo = tmp.path().join("typo.config");
    std::fs::write(&typo, "CONFIG_CRC7=m\nCONFIG_DEBUG_INFO y\n").unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let endings = [
        Ending {
            name: "ok",
            arch: "riscv64",
            args: vec![],
            broken_qemu: false,
            status: "ok",
            exit: 0,
            baseline_exit: 0,
            regressed: false,
            bisect: 0,
        },
        Ending {
            name: "static findings",
            arch: "riscv64",
            args: s(&[
                "--static-only",
                "--patch",
                &patch("drop-export-byte_rev_table.patch"),
            ]),
            broken_qemu: false,
            status: "findings",
            exit: 1,
            baseline_exit: 1,
            regressed: true,
            bisect: 1,
        },
        Ending {
            name: "build failed",
            arch: "riscv64",
            args: s(&[
                "--static-only",
                "--patch",
                &patch("init-does-not-build.patch"),
            ]),
            broken_qemu: false,
            status: "build_failed",
            exit: 3,
            baseline_exit: 1,
            regressed: true,
            bisect: 125,
        },
        Ending {
            name: "missing source",
            arch: "riscv64",
            args: s(&["--source", "/nonexistent"]),
            broken_qemu: false,
            status: "bad_input",
            exit: 2,
            baseline_exit: 2,
            regressed: true,
            bisect: 128,
        },
        Ending {
            name: "missing patch",
            arch: "riscv64",
            args: s(&["--patch", "/nonexistent.patch"]),
            broken_qemu: false,
            status: "bad_input",
            exit: 2,
            baseline_exit: 2,
            regressed: true,
            bisect: 128,
        },
        Ending {
            name: "bad fragment",
            arch: "riscv64",
            args: s(&["--fragment", typo.to_str().unwrap()]),
            broken_qemu: false,
            status: "bad_input",
            exit: 2,
            baseline_exit: 2,
            regressed: true,
            bisect: 128,
        },
        Ending {
            name: "QEMU cannot start",
            arch: "riscv64",
            args: vec![],
            broken_qemu: true,
            status: "infra",
            exit: 4,
            baseline_exit: 4,
            regressed: true,
            bisect: 125,
        },
        Ending {
            name: "an arch nothing can build",
            arch: "loong64",
            args: vec![],
            broken_qemu: false,
            status: "bad_input",
            exit: 2,
            baseline_exit: 2,
            regressed: false,
            bisect: 128,
        },
    ];
    let good = tmp.path().join("ok").join("results.json");
    let tree = modverify::kernel_build::cache_dir()
        .join("src/linux-source-6.1")
        .display()
        .to_string();
    for e in &endings {
        let out = tmp.path().join(e.name.replace(' ', "-"));
        let mut run = vec!["run", "--arch", e.arch, "--out", out.to_str().unwrap()];
        let mut step = vec!["bisect-step", "--arch", e.arch];
        for a in &e.args {
            run.push(a);
            step.push(a);
        }
        // bisect-step builds the tree it runs in by default; here, the one `run` builds.
        if !e.args.iter().any(|a| a == "--source") {
            step.extend(["--source", &tree]);
        }
        if e.broken_qemu {
            for v in [&mut run, &mut step] {
                v.extend(["--arch-dir", broken.to_str().unwrap()]);
            }
        }
        let o = modverify(&run);
        assert_eq!(
            o.status.code(),
            Some(e.exit),
            "{}: run: {}",
            e.name,
            text(&o)
        );
        let file = out.join("results.json");
        assert_eq!(
            results(&file)["arches"][e.arch]["status"],
            e.status,
            "{}: results.json",
            e.name
        );
        assert_reports_agree(&file, e.status, e.name);
        assert_merges_agree(e, &file, &good, tmp.path());
        let o = modverify(&step);
        assert_eq!(
            o.status.code(),
            Some(e.bisect),
            "{}: bisect-step: {}",
            e.name,
            text(&o)
        );
    }

    // From shards: two halves of the same boot, merged, answer as the whole run did.
    for (name, broken_qemu, status, exit) in [("ok", false, "ok", 0), ("infra", true, "infra", 4)] {
        let mut files: Vec<PathBuf> = Vec::new();
        for k in 1..=2 {
            let out = tmp.path().join(format!("{name}-shard-{k}"));
            let shard = format!("{k}/2");
            let mut run = vec![
                "run",
                "--arch",
                "riscv64",
                "--shard",
                &shard,
                "--out",
                out.to_str().unwrap(),
            ];
            if broken_qemu {
                run.extend(["--arch-dir", broken.to_str().unwrap()]);
            }
            let o = modverify(&run);
            assert_eq!(
                o.status.code(),
                Some(exit),
                "{name} shard {k}: {}",
                text(&o)
            );
            files.push(out.join("results.json"));
        }
        let merged = tmp.path().join(format!("{name}-shards.json"));
        let o = modverify(&[
            "merge",
            files[0].to_str().unwrap(),
            files[1].to_str().unwrap(),
            "-o",
            merged.to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(exit),
            "{name} shards merged: {}",
            text(&o)
        );
        assert_eq!(results(&merged)["arches"]["riscv64"]["status"], status);
        assert_reports_agree(&merged, status, &format!("{name} shards merged"));
    }

    // Interrupted: Ctrl-C during the boot; the results are kept and say so everywhere.
    let out = tmp.path().join("interrupted");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(["run", "--arch", "riscv64", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // As soon as the guest starts (the build is the cached default one; its boot takes about
    // two seconds, so the signal comes while it runs).
    let events = out.join("riscv64").join("boot").join("events.jsonl");
    let t = std::time::Instant::now();
    while !events.exists() && t.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let st = interrupt_and_wait(&mut child, std::time::Duration::from_secs(30));
    assert_eq!(st.code(), Some(130));
    let file = out.join("results.json");
    assert_eq!(results(&file)["arches"]["riscv64"]["status"], "interrupted");
    assert_reports_agree(&file, "interrupted", "interrupted");
    let o = modverify(&[
        "merge",
        file.to_str().unwrap(),
        "-o",
        tmp.path().join("interrupted-merged.json").to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(130),
        "interrupted: merge: {}",
        text(&o)
    );
}
