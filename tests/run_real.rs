//! `modverify run` end to end on the default set from the default source (sparc64, alpha and
//! riscv64 built, checked and booted; ia64 built and checked: ci/test runs this file after
//! tests/ia64_real.rs, whose background job builds ia64's compiler and kernel), and
//! every report it can render, validated by the tools that consume them: JUnit parsed as
//! XML, KCIDB by KernelCI's own kcidb-io, HTML rendered by headless Chromium.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn python(script: &str, arg: &Path) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(arg)
        .output()
        .unwrap()
}

#[test]
fn default_run_then_every_report_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = modverify(&["run", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let results = out.join("results.json");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(r["schema"], "modverify.results/2");
    assert_eq!(r["status"], "complete");
    for arch in ["sparc64", "alpha", "riscv64"] {
        let a = &r["arches"][arch];
        assert_eq!(a["status"], "ok", "{arch}: {:#}", a["reasons"]);
        for f in [
            "build.json",
            "build.log",
            "check.json",
            "boot/console.log",
            "boot/boot.json",
        ] {
            assert!(out.join(arch).join(f).exists(), "{arch}/{f}");
        }
    }
    // ia64: built and checked, no boot (no QEMU machine), and still ok.
    let a = &r["arches"]["ia64"];
    assert_eq!(a["status"], "ok", "ia64: {:#}", a["reasons"]);
    assert!(out.join("ia64/check.json").exists());
    assert!(!out.join("ia64/boot").exists());
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("consistent, runtime equal") && table.contains("agree"),
        "{table}"
    );
    // The README's first recipe shows this table, as printed (modulo times).
    assert_readme_shows("### A nightly regression matrix", &table);

    // A second run on the same directory while the first holds it is refused.
    let lock = std::fs::File::open(out.join(".modverify-run.lock")).unwrap();
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own.
        assert_eq!(
            unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        let o = modverify(&["run", "--arch", "riscv64", "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("another modverify run is using"));
    }
    drop(lock);

    // JUnit: one testsuite per arch, one testcase per module plus build/boot/table cases.
    let junit = tmp.path().join("junit.xml");
    assert!(modverify(&[
        "report",
        results.to_str().unwrap(),
        "--format",
        "junit",
        "-o",
        junit.to_str().unwrap()
    ])
    .status
    .success());
    let o = python(
        "import sys, xml.etree.ElementTree as ET\nr = ET.parse(sys.argv[1]).getroot()\nfor s in r: print(s.get('name'), s.get('tests'), s.get('failures'), len([c for c in s if c.get('name','').startswith('module.')]))",
        &junit,
    );
    let lines = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        lines.contains("modverify.sparc64 39 0 35") && lines.contains("modverify.riscv64 37 0 33"),
        "{lines}"
    );

    // KCIDB v5, validated by kcidb-io (installed by ci/test from PyPI).
    let kcidb = tmp.path().join("kcidb.json");
    assert!(modverify(&[
        "report",
        results.to_str().unwrap(),
        "--format",
        "kcidb",
        "--origin",
        "modverify_test",
        "-o",
        kcidb.to_str().unwrap()
    ])
    .status
    .success());
    let o = python("import json, sys, kcidb_io\nd = json.load(open(sys.argv[1]))\nkcidb_io.schema.V5_3.validate(d)\nprint(len(d['builds']), len(d['tests']))", &kcidb);
    assert!(
        o.status.success(),
        "kcidb-io rejected it (pip install kcidb-io?):\n{}",
        text(&o)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "4 146",
        "4 builds; per booted arch 3 stage tests, ia64's static export table 1, + one per module"
    );

    // HTML: rendered by headless Chromium; the screenshot must not be blank.
    let html = tmp.path().join("report.html");
    assert!(modverify(&[
        "report",
        results.to_str().unwrap(),
        "--format",
        "html",
        "-o",
        html.to_str().unwrap()
    ])
    .status
    .success());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "self-contained, nothing fetched"
    );
    let png = tmp.path().join("report.png");
    let profile = tmp.path().join("chromium-profile");
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,900")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium is missing: apt-get install chromium (ci/test installs it)");
    assert!(png.exists(), "no screenshot:\n{}", text(&o));
    let o = python(
        "import sys, zlib, struct\nb = open(sys.argv[1], 'rb').read()\nassert b[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\nw, h = struct.unpack('>II', b[16:24])\nprint(w, h, len(set(b[100:])))",
        &png,
    );
    let dims = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(dims.starts_with("1200 900"), "{dims} {}", text(&o));
    let distinct: usize = dims.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(distinct > 50, "the screenshot looks blank: {dims}");
    if let Some(keep) = std::env::var_os("MODVERIFY_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

/// A module that loaded in the baseline and fails now is a regression (and the only thing
/// that fails a nightly run with --baseline).
#[test]
fn baseline_regressions_are_listed_first_and_decide_the_status() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = modverify(&["run", "--arch", "riscv64", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Yesterday's results: the same, except crc7 did not load then (a fix today) —
    // and today is compared with a baseline in which md5 loaded but now "fails".
    let mut today: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let mut yesterday = today.clone();
    for m in yesterday["arches"]["riscv64"]["boot"]["modules"]
        .as_array_mut()
        .unwrap()
    {
        if m["name"] == "crc7" {
            m["verdict"] = "crc_mismatch".into();
        }
    }
    for m in today["arches"]["riscv64"]["boot"]["modules"]
        .as_array_mut()
        .unwrap()
    {
        if m["name"] == "md5" {
            m["verdict"] = "crc_mismatch".into();
        }
    }
    let c = modverify::baseline::compare(
        "yesterday",
        &typed(&yesterday),
        &typed(&today),
        &modverify::arch::ArchRegistry::load(None).unwrap(),
    );
    assert_eq!(c.regressions.len(), 1);
    assert_eq!(c.regressions[0].what, "module md5");
    assert_eq!(c.fixes.len(), 1);
    assert_eq!(c.fixes[0].what, "module crc7");

    // Through the CLI: a run against a baseline where crc7 failed reports the fix, exits 0.
    let base = tmp.path().join("yesterday.json");
    std::fs::write(&base, serde_json::to_string(&yesterday).unwrap()).unwrap();
    let o = modverify(&[
        "run",
        "--arch",
        "riscv64",
        "--out",
        tmp.path().join("run2").to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 regressions, 1 fixes"),
        "{}",
        text(&o)
    );
    // And against a baseline where everything loaded but one module is now reported failing:
    let mut now_bad = today.clone();
    now_bad["baseline"] = Value::Null;
    let base2 = tmp.path().join("good.json");
    let mut good = yesterday.clone();
    for m in good["arches"]["riscv64"]["boot"]["modules"]
        .as_array_mut()
        .unwrap()
    {
        m["verdict"] = "loaded".into();
    }
    std::fs::write(&base2, serde_json::to_string(&good).unwrap()).unwrap();
    let c = modverify::baseline::compare(
        "good",
        &typed(&good),
        &typed(&now_bad),
        &modverify::arch::ArchRegistry::load(None).unwrap(),
    );
    assert_eq!(c.regressions.len(), 1, "{c:?}");
}

/// A results.json as the library reads it.
fn typed(v: &Value) -> modverify::results::RunResults {
    modverify::results::RunResults::from_json(&v.to_string()).unwrap()
}

#[test]
fn merge_joins_per_arch_results() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for arch in ["alpha", "riscv64"] {
        let out = tmp.path().join(arch);
        let o = modverify(&[
            "run",
            "--arch",
            arch,
            "--static-only",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        files.push(out.join("results.json").display().to_string());
    }
    let merged = tmp.path().join("merged.json");
    let o = modverify(&[
        "merge",
        &files[0],
        &files[1],
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(m["arches"].as_object().unwrap().len(), 2);
    // A CI artifact: readable by others, like results.json itself.
    use std::os::unix::fs::PermissionsExt;
    for f in [&merged, &std::path::PathBuf::from(&files[0])] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", f.display());
    }
    // The same arch twice would lose one file's results: refused unless asked for.
    let o = modverify(&["merge", &files[0], &files[0]]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("arch alpha is also in") && text(&o).contains("--later-wins"),
        "{}",
        text(&o)
    );
    let o = modverify(&["merge", "--later-wins", &files[0], &files[0]]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // `report -` reads the results from standard input (a pipe from merge).
    let mut child = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(["report", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        &std::fs::read(&merged).unwrap(),
    )
    .unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("riscv64"),
        "{}",
        text(&o)
    );
    let o = modverify(&["report", merged.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("alpha")
            && String::from_utf8_lossy(&o.stdout).contains("riscv64")
    );
}

/// Ctrl-C while two arches build side by side (`--jobs 2`): make and every compiler under it
/// are stopped, the run exits 130 and results.json says what was interrupted.
#[test]
fn ctrl_c_during_parallel_builds_stops_make_and_keeps_results() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    // A build directory of its own, so make has real work to do (ccache makes it quick).
    let builds = tmp.path().join("builds");
    let out = tmp.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(["run", "--arch", "sparc64,riscv64", "--jobs", "2"])
        .arg("--build-dir")
        .arg(&builds)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until both builds are compiling.
    let compiling = |arch: &str| {
        std::fs::read_dir(&builds)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(arch))
            .any(|e| {
                std::fs::read_to_string(e.path().join("build.log"))
                    .unwrap_or_default()
                    .contains("  CC  ")
            })
    };
    let t = Instant::now();
    while !(compiling("sparc64") && compiling("riscv64")) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "modverify ended before both builds compiled"
        );
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "the builds never started compiling"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = interrupt_and_wait(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    // Nothing that works in our build directory (make names it, compilers run in it) is left.
    let marker = builds.to_string_lossy().into_owned();
    let t = Instant::now();
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter_map(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                (cmdline.contains(&marker) || cwd.starts_with(&builds)).then_some(cmdline)
            })
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "still running after Ctrl-C: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["status"], "interrupted", "{r:#}");
    for arch in ["sparc64", "riscv64"] {
        assert_eq!(r["arches"][arch]["status"], "interrupted", "{arch}: {r:#}");
    }
}
