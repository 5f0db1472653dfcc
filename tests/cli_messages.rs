//! What a person reads around the verdicts, on the real binary: one error prefix and no
//! repeated cause, bad output paths as bad input, help for every option, a module that loads
//! with a warning shown once with its reason, "not run" as one state in every format.
mod common;
use common::*;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn errors_have_one_prefix_and_say_their_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    // A module directory of the test's own: never the machine's /tmp, whose contents
    // (modules or none) belong to whatever ran there before.
    let mods = tmp.path().join("modules");
    std::fs::create_dir(&mods).unwrap();
    std::fs::write(mods.join("dummy.ko"), b"\x7fELF").unwrap();
    let (code, _, err) = run(&[
        "check",
        "--vmlinux",
        text.to_str().unwrap(),
        mods.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("not a kernel image"), "{err}");
    assert!(!err.contains("caused by"), "{err}");
    // clap's own usage errors share the prefix.
    let (code, _, err) = run(&["check", "--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: "), "{err}");
}

/// `setup --arch` installs what the named arches need (ci/test installs only the tests'
/// arches with it); an arch no descriptor names is refused before apt-get runs.
#[test]
fn setup_for_some_arches_names_an_unknown_one() {
    let (code, out, err) = run(&["setup", "--dry-run", "--arch", "sparc64,vax"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("unknown architecture `vax`"), "{err}");
    assert!(out.is_empty(), "nothing is installed: {out}");
}

#[test]
fn an_unwritable_output_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results.json");
    std::fs::write(
        &results,
        r#"{"schema":"modverify.results/1","status":"complete","arches":{}}"#,
    )
    .unwrap();
    let bad = "/nonexistent-dir/out.json";
    for args in [
        vec!["report", results.to_str().unwrap(), "-o", bad],
        vec!["merge", results.to_str().unwrap(), "-o", bad],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("/nonexistent-dir"), "{err}");
    }
}

#[test]
fn every_option_has_help_and_commands_say_their_exit_statuses() {
    for cmd in [
        "check",
        "boot",
        "run",
        "report",
        "merge",
        "arches",
        "bisect-step",
        "build",
        "diff",
    ] {
        let (code, out, _) = run(&[cmd, "--help"]);
        assert_eq!(code, 0);
        // An option line followed directly by another option line has no description.
        let lines: Vec<&str> = out.lines().collect();
        for w in lines.windows(2) {
            let opt = |l: &str| {
                let t = l.trim_start();
                let b = t.as_bytes();
                t.starts_with("--")
                    || (b.len() > 2 && b[0] == b'-' && b[1].is_ascii_alphabetic() && b[2] == b',')
            };
            assert!(
                !(opt(w[0]) && opt(w[1]) && !w[0].trim().contains("  ")),
                "{cmd}: `{}` has no description",
                w[0].trim()
            );
        }
        assert!(out.contains("Exit status"), "{cmd}: {out}");
    }
    let (_, out, _) = run(&["run", "--help"]);
    assert!(out.contains("3 a build failed"), "{out}");
    let (_, out, _) = run(&["boot", "--help"]);
    assert!(out.contains("500ms"), "{out}");
}

/// vfat alone: its symbols come from fat, which is not among the modules checked. It loads
/// (with fat loaded first), so it is listed once, under warnings, with that reason.
#[test]
fn a_module_that_loads_with_a_warning_says_why_once() {
    let d = debian_kernel();
    let vfat = modverify::input::discover(&[d.join("modules")])
        .unwrap()
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vfat.ko"))
        })
        .unwrap();
    let (code, out, _) = run(&[
        "check",
        "-v",
        "--vmlinux",
        d.join("vmlinux").to_str().unwrap(),
        "--symvers",
        d.join("Module.symvers").to_str().unwrap(),
        vfat.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    // Named once; its path follows on the same line or, when the path is long (the cache's
    // place on this machine), on the next.
    let named = out
        .lines()
        .filter(|l| l.trim_start().starts_with("vfat"))
        .count();
    assert_eq!(named, 1, "{out}");
    assert!(out.contains("Modules that load with warnings (1)"), "{out}");
    assert!(
        out.contains("comes from module") && out.contains("fat"),
        "{out}"
    );
    assert!(
        !out.contains("Modules that load ("),
        "an empty heading: {out}"
    );
    assert!(out.contains("1 module: 1 ok"), "{out}");
    assert!(out.contains("0 errors, 0 warnings"), "{out}");
}

/// One state, one name: modules that never ran are skipped in JUnit with the reason, "not
/// run" in the table and the HTML legend, MISS in KCIDB; the boot itself carries the failure.
#[test]
fn modules_that_never_ran_are_not_run_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results.json");
    std::fs::write(
        &results,
        r#"{"schema":"modverify.results/1","status":"complete","started_unix":1,"arches":{"riscv64":{
 "arch":"riscv64","status":"findings","seconds":{"build_s":4.0},"reasons":[],
 "build":{"config":{"dropped":[{"option":"CONFIG_CRC7","wanted":"m","got":"n","origin":"default","depends_on":[],"essential":false}]}},
 "check":{"summary":{"ok":1,"modules":1},"exports":{"consistent":true,"problems":[]},"modules":[]},
 "boot":{"boot_failure":"Kernel panic - not syncing: Attempted to kill init!",
   "summary":{"loaded":0,"failed":0,"not_run":1,"disagreements":0},
   "export_table":{"equal":true,"differences":[]},
   "modules":[{"name":"crc7","verdict":"not_run","not_run_reason":"Kernel panic - not syncing: Attempted to kill init!","agrees":true}]}}}}"#,
    )
    .unwrap();
    let r = results.to_str().unwrap();
    let (_, table, _) = run(&["report", r]);
    assert!(table.contains("1 not run"), "{table}");
    assert!(
        table.contains("riscv64: 1 module not run: Kernel panic"),
        "{table}"
    );
    assert!(!table.contains("failing modules"), "{table}");
    let (_, junit, _) = run(&["report", r, "--format", "junit"]);
    let case = junit
        .split("<testcase")
        .find(|c| c.contains("module.crc7"))
        .unwrap();
    assert!(
        case.contains("<skipped") && case.contains("not run: Kernel panic"),
        "{case}"
    );
    assert!(!case.contains("<failure"), "{case}");
    // The options Kconfig dropped are in every format for people and CI.
    let build = junit
        .split("<testcase")
        .find(|c| c.contains("name=\"build\""))
        .unwrap();
    assert!(
        build.contains("<system-out>build: CONFIG_CRC7=m was dropped"),
        "{build}"
    );
    assert!(table.contains("ok 4s, 1 dropped") && table.contains("CONFIG_CRC7=m was dropped"));
    let (_, html, _) = run(&["report", r, "--format", "html"]);
    assert!(html.contains("not run / dependency failed"), "legend");
    assert!(html.contains("Attempted to kill init"), "the cause");
    assert!(html.contains("CONFIG_CRC7"), "dropped options");
    let (_, kcidb, _) = run(&["report", r, "--format", "kcidb"]);
    assert!(kcidb.contains("\"MISS\""), "{kcidb}");
}

/// The nightly's memory: a module that loaded last night and is gone tonight is a regression
/// (exit 1), named.
#[test]
fn merge_baseline_reports_a_vanished_module() {
    let tmp = tempfile::tempdir().unwrap();
    let night = |mods: &[&str]| {
        let modules: Vec<String> = mods
            .iter()
            .map(|m| {
                format!(r#"{{"name":"{m}","verdict":"loaded","unloaded":true,"agrees":true}}"#)
            })
            .collect();
        format!(
            r#"{{"schema":"modverify.results/1","status":"complete","started_unix":1,"arches":{{"sparc64":{{
 "arch":"sparc64","status":"ok","reasons":[],"build":{{"config":{{"dropped":[]}}}},
 "check":{{"summary":{{"ok":2,"modules":2}},"exports":{{"consistent":true,"problems":[]}},"modules":[]}},
 "boot":{{"done":true,"summary":{{"loaded":2,"failed":0,"disagreements":0}},
   "export_table":{{"equal":true,"differences":[]}},"modules":[{}]}}}}}}}}"#,
            modules.join(",")
        )
    };
    let last = tmp.path().join("last.json");
    let now = tmp.path().join("now.json");
    std::fs::write(&last, night(&["aead", "crc7"])).unwrap();
    std::fs::write(&now, night(&["crc7"])).unwrap();
    let (code, out, err) = run(&[
        "merge",
        now.to_str().unwrap(),
        "--baseline",
        last.to_str().unwrap(),
        "-o",
        tmp.path().join("m.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("1 regressions"), "{err}");
    let (_, table, _) = run(&["report", tmp.path().join("m.json").to_str().unwrap()]);
    assert!(
        table.contains("REGRESSION sparc64 module aead: loaded -> missing"),
        "{table}"
    );
}
