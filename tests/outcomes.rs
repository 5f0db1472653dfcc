//! One outcome on the real binary: an arch's status and the exit status come from one rule
//! (src/outcome.rs), and every command and report gives the same answer. Each test is named
//! after a wrong answer an earlier main gave.
mod common;
use common::*;
use serde_json::Value;

fn results(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn report(file: &std::path::Path, format: &str) -> String {
    let o = modverify(&["report", "--format", format, file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A nightly went green having tested nothing: `run --source /nonexistent` exited 0 with
/// the arch "skipped" (JUnit skipped, KCIDB SKIP). Now: bad input, exit 2, a failure in
/// JUnit, ERROR in KCIDB, the file named; so for every way of asking for nothing.
#[test]
fn a_run_that_tested_nothing_is_not_green() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("missing-source");
    let o = modverify(&[
        "run",
        "--arch",
        "riscv64",
        "--source",
        "/nonexistent",
        "--static-only",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("/nonexistent"), "{}", text(&o));
    let r = results(&out);
    assert_eq!(r["arches"]["riscv64"]["status"], "bad_input");
    let file = out.join("results.json");
    let junit = report(&file, "junit");
    assert!(
        junit.contains("<failure message=\"bad input: nothing was tested\">"),
        "{junit}"
    );
    assert!(!junit.contains("<skipped"), "{junit}");
    let kcidb = report(&file, "kcidb");
    assert!(kcidb.contains("\"ERROR\""), "{kcidb}");
    assert!(report(&file, "table").contains("BAD INPUT"));
    assert!(report(&file, "html").contains("<td class=\"bad\">BAD INPUT"));

    // Against a night that had results, every module vanished: a regression, listed by
    // merge, and the run keeps its bad-input exit.
    let good = tmp.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"schema":"modverify.results/1","status":"complete","started_unix":1,"arches":{"riscv64":{
 "arch":"riscv64","status":"ok","check":{"exports":{"consistent":true},"modules":[]},
 "boot":{"done":true,"export_table":{"equal":true},
   "modules":[{"name":"md5","verdict":"loaded","unloaded":true,"agrees":true}]}}}}"#,
    )
    .unwrap();
    let again = tmp.path().join("against-baseline");
    let o = modverify(&[
        "run",
        "--arch",
        "riscv64",
        "--source",
        "/nonexistent",
        "--baseline",
        good.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let r = results(&again);
    assert_eq!(r["baseline"]["regressions"][0]["what"], "results", "{r:#}");
    let o = modverify(&[
        "merge",
        again.join("results.json").to_str().unwrap(),
        "--baseline",
        good.to_str().unwrap(),
        "-o",
        tmp.path().join("merged.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("REGRESSION riscv64 results: present -> none (bad_input)"),
        "{}",
        text(&o)
    );

    // An arch no descriptor can build, and an empty selection: nothing tested, exit 2.
    for (what, arch) in [("loong64", "loong64"), ("nothing", ",")] {
        let out = tmp.path().join(what);
        let o = modverify(&["run", "--arch", arch, "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
    }
}

/// One mistake, one answer: a missing --fragment exited 4 from `build` while a missing
/// --source exited 2. Every file the user names is bad input, exit 2, named with its option.
#[test]
fn a_missing_file_the_user_named_is_bad_input_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let o = modverify(&[
        "build",
        "--arch",
        "riscv64",
        "--config-only",
        "--fragment",
        "/nonexistent.config",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--fragment /nonexistent.config"),
        "{}",
        text(&o)
    );
    let o = modverify(&[
        "build",
        "--arch",
        "riscv64",
        "--source",
        "/nonexistent",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// merge called a broken arch ok: two shards whose static check found an export-table error
/// and whose boots were clean merged to `ok` (the join read the boot alone). Now the joined
/// arch is decided by the same rule as `run`: findings, and merge exits as run would (1).
#[test]
fn merged_shards_keep_the_static_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let shard = |k: usize| {
        format!(
            r#"{{"schema":"modverify.results/1","status":"complete","started_unix":1,"arches":{{"sparc64":{{
 "arch":"sparc64","status":"findings","reasons":[],
 "check":{{"summary":{{"ok":2,"modules":2,"export_errors":1}},
   "exports":{{"consistent":false,"problems":[{{"kind":"index_shift","severity":"error","table":"__kcrctab","detail":"slot 225 holds another symbol's CRC"}}]}},"modules":[]}},
 "boot":{{"arch":"sparc64","done":true,"shard":{{"k":{k},"n":2}},"modules_in_run":2,
   "summary":{{"modules":1,"loaded":1,"failed":0,"disagreements":0}},
   "export_table":{{"equal":true,"differences":[]}},
   "modules":[{{"index":{k},"name":"m{k}","verdict":"loaded","unloaded":true,"agrees":true}}]}}}}}}}}"#
        )
    };
    let (a, b) = (tmp.path().join("1.json"), tmp.path().join("2.json"));
    std::fs::write(&a, shard(1)).unwrap();
    std::fs::write(&b, shard(2)).unwrap();
    let merged = tmp.path().join("m.json");
    let o = modverify(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(m["arches"]["sparc64"]["status"], "findings");
    assert_eq!(m["arches"]["sparc64"]["boot"]["summary"]["loaded"], 2);
}

/// Under `git bisect run`, 2 means "bad": a broken descriptor directory exited 2 from
/// bisect-step, so git blamed the commit. It aborts the bisection (128) instead.
#[test]
fn a_broken_descriptor_aborts_a_bisection_instead_of_blaming_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("broken.yaml"), "name: [\n").unwrap();
    let o = modverify(&[
        "--arch-dir",
        tmp.path().to_str().unwrap(),
        "bisect-step",
        "--arch",
        "riscv64",
    ]);
    assert_eq!(o.status.code(), Some(128), "{}", text(&o));
    assert!(text(&o).contains("broken.yaml"), "{}", text(&o));
}

/// A boot whose QEMU would not start the machine was a JUnit `<failure>` ("boot failed"),
/// as if the kernel had been tried and found wanting. It is an `<error>`: the test could
/// not run, and CI dashboards count it apart from findings.
#[test]
fn an_infrastructure_failure_is_a_junit_error_not_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("results.json");
    std::fs::write(
        &file,
        r#"{"schema":"modverify.results/1","status":"complete","started_unix":1,"arches":{"riscv64":{
 "arch":"riscv64","status":"infra","check":{"exports":{"consistent":true},"modules":[]},
 "boot":{"done":false,"infrastructure":true,
   "boot_failure":"QEMU would not start the machine (exited with status 1)","modules":[]}}}}"#,
    )
    .unwrap();
    let junit = report(&file, "junit");
    assert!(
        junit.contains("<error message=\"boot could not run\">QEMU would not start"),
        "{junit}"
    );
    assert!(junit.contains("failures=\"0\" errors=\"1\""), "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
}

/// The HTML coloured a cell red by searching its own text for "FAIL", "DIFFERS" and the
/// like: an arch whose infrastructure failed before any stage showed only "-" cells and no
/// red at all. The colour now comes from the arch's status and the counts.
#[test]
fn the_html_colours_an_arch_by_its_status_not_by_its_text() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("results.json");
    std::fs::write(
        &file,
        r#"{"schema":"modverify.results/1","status":"complete","started_unix":1,"arches":{
 "riscv64":{"arch":"riscv64","status":"infra","reasons":["check: disk full"]},
 "sparc64":{"arch":"sparc64","status":"ok","check":{"exports":{"consistent":true},"modules":[]},
   "boot":{"done":true,"export_table":{"equal":true},
   "modules":[{"name":"md5","verdict":"loaded","unloaded":true,"agrees":true}]}}}}"#,
    )
    .unwrap();
    let html = report(&file, "html");
    assert!(html.contains("<td class=\"bad\">riscv64</td>"), "{html}");
    assert!(html.contains("<td>sparc64</td>"), "{html}");
    let sparc = html.split("<td>sparc64</td>").nth(1).unwrap();
    let row = sparc.split("</tr>").next().unwrap();
    assert!(!row.contains("class=\"bad\""), "{row}");
}

/// `--build DIR` of a directory without a finished build was read three ways from one
/// message: bad input (exit 2) in `check` and `boot`, "build failed" in `run`, "skip" in
/// `bisect-step`. Now the error says its kind: a directory only configured is the request's
/// mistake (2) and a failed build is the tree's (3), in `check` and `boot` alike.
#[test]
fn a_build_directory_without_a_kernel_is_answered_by_why() {
    let tmp = tempfile::tempdir().unwrap();
    let o = modverify(&[
        "build",
        "--arch",
        "riscv64",
        "--config-only",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("build.json").is_file())
        .unwrap();
    let d = dir.to_str().unwrap();
    let answers = |want: i32, says: &str| {
        for args in [
            vec!["check", "--build", d],
            vec!["boot", "--arch", "riscv64", "--build", d],
        ] {
            let o = modverify(&args);
            assert_eq!(o.status.code(), Some(want), "{args:?}: {}", text(&o));
            assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
        }
    };
    answers(2, "only configured (--config-only)");
    // The same directory as a failed build leaves it (build.json says so, with make's error).
    let manifest = dir.join("build.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["status"] = "failed".into();
    m["error"] = "make vmlinux modules exited with status 2".into();
    std::fs::write(&manifest, m.to_string()).unwrap();
    answers(
        3,
        "the build there failed: make vmlinux modules exited with status 2",
    );
}
