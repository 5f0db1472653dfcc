//! The edges a user meets first, on the real binary: a reader that closes the pipe early,
//! module trees as they are on disk, time limits, refusals that name their cause.
mod common;
use common::*;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

/// The write end of a pipe whose reader has already gone: every write gets EPIPE, as
/// `modverify … | head -1` does once head has its line.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    Stdio::from(unsafe { OwnedFd::from_raw_fd(fds[1]) })
}

/// Runs modverify with stdout (and with `both`, stderr too) on a closed pipe; returns its exit
/// status and what it said on stderr.
fn into_closed_pipe(args: &[&str], both: bool) -> (i32, String) {
    let err_file = tempfile::NamedTempFile::new().unwrap();
    let stderr = if both {
        closed_pipe()
    } else {
        Stdio::from(err_file.reopen().unwrap())
    };
    let st = Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(args)
        .stdout(closed_pipe())
        .stderr(stderr)
        .status()
        .unwrap();
    let err = std::fs::read_to_string(err_file.path()).unwrap();
    (st.code().expect("ended by a signal"), err)
}

/// The command ended by itself, with its own status: no panic (101), nothing printed about
/// the pipe.
fn assert_quiet(args: &[&str], code: i32, err: &str, expected: &[i32]) {
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{args:?}: {err}"
    );
    assert!(
        expected.contains(&code),
        "{args:?}: exit {code}, expected one of {expected:?}: {err}"
    );
}

/// `modverify arches | head -1`, `check … | head`, `report --format json … | head -1` and
/// the others panicked with "failed printing to stdout: Broken pipe" (exit 101). Every
/// subcommand that prints now ends quietly with the status it would have had.
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let root = env!("CARGO_MANIFEST_DIR");
    let results = format!("{root}/tests/fixtures/results-v1.json");
    let d = debian_kernel();
    let vmlinux = d.join("vmlinux").display().to_string();
    let vmlinuz = d.join("vmlinuz").display().to_string();
    let modules = d.join("modules").display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = |n: &str| tmp.path().join(n).display().to_string();
    let (o1, o2, o3) = (out("boot"), out("run"), out("build"));
    let cases: Vec<(Vec<&str>, &[i32])> = vec![
        (vec!["arches"], &[0]),
        (vec!["arches", "--format", "json"], &[0]),
        (vec!["arches", "--default"], &[0]),
        (vec!["check", "--vmlinux", &vmlinux, &modules], &[0]),
        (
            vec!["check", "--format", "json", "--vmlinux", &vmlinux, &modules],
            &[0],
        ),
        (vec!["report", &results], &[0]),
        (vec!["report", "--format", "json", &results], &[0]),
        (vec!["report", "--format", "junit", &results], &[0]),
        (vec!["report", "--format", "kcidb", &results], &[0]),
        (vec!["report", "--format", "html", &results], &[0]),
        // The fixture holds findings: merge exits as run would (1).
        (vec!["merge", &results], &[0, 1]),
        (vec!["setup", "--dry-run", "--arch", "riscv64"], &[0]),
        (
            vec![
                "boot",
                "--arch",
                "x86_64",
                "--kernel",
                &vmlinuz,
                "--modules",
                &modules,
                "--show-command",
                "--out",
                &o1,
            ],
            &[0],
        ),
        (
            vec![
                "bisect-step",
                "--arch",
                "riscv64",
                "--source",
                "/nonexistent",
            ],
            &[128],
        ),
        (
            vec![
                "run",
                "--arch",
                "riscv64",
                "--source",
                "/nonexistent",
                "--static-only",
                "--out",
                &o2,
            ],
            &[2],
        ),
        (
            vec!["build", "--arch", "riscv64", "--config-only", "--out", &o3],
            &[0],
        ),
        (vec!["--help"], &[0]),
        (vec!["check", "--help"], &[0]),
    ];
    for (args, expected) in &cases {
        let (code, err) = into_closed_pipe(args, false);
        assert_quiet(args, code, &err, expected);
    }
    // Both streams closed (`modverify … 2>&1 | head -1`): the same.
    for args in [
        vec!["check", "--vmlinux", &vmlinux, &modules],
        vec!["report", "--format", "json", &results],
        vec!["check", "--vmlinux", "/nonexistent", &modules],
    ] {
        let (code, err) = into_closed_pipe(&args, true);
        assert_quiet(&args, code, &err, &[0, 2]);
    }
}

/// A module tree assembled from symlinks (`kernel/fs -> elsewhere`) reported only the files
/// outside the links (a tree linking to 4,022 modules reported none). Directory symlinks are
/// followed, each directory once: a second path to one, or a loop, is read once and noted;
/// `build` and `source` (to the headers) are not followed, as depmod does.
#[test]
fn symlinked_directories_are_followed_once_each() {
    let d = debian_kernel();
    let all = modverify::input::discover(&[d.join("modules")])
        .unwrap()
        .len();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("6.1.0-test");
    let kernel = root.join("kernel");
    std::fs::create_dir_all(&kernel).unwrap();
    for e in std::fs::read_dir(d.join("modules")).unwrap() {
        let e = e.unwrap();
        std::os::unix::fs::symlink(e.path(), kernel.join(e.file_name())).unwrap();
    }
    std::os::unix::fs::symlink(d.join("modules/fs"), kernel.join("again")).unwrap();
    std::os::unix::fs::symlink(&root, kernel.join("loop")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", root.join("build")).unwrap();
    let vmlinux = d.join("vmlinux");
    let (code, r, o) = json(&[
        "check",
        "--format",
        "json",
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        root.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{}", text(&o));
    assert_eq!(r["summary"]["modules"].as_u64(), Some(all as u64));
    let notes = r["notes"].to_string();
    assert!(
        notes.contains("kernel/fs: the same directory as") && notes.contains("again"),
        "{notes}"
    );
    assert!(
        notes.contains("kernel/loop: a symlink loop back to"),
        "{notes}"
    );
    assert!(!notes.contains("build"), "{notes}");
    // The table says the same, once each.
    let o = modverify(&[
        "check",
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        root.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(t.matches("a symlink loop back to").count(), 1, "{t}");
}

/// One module name, two files: modprobe loads one and the kernel refuses the other, so
/// only one is checked. depmod's order decides which (`updates/` before the rest; an
/// `override` line in the root's depmod.d undoes that); the other is `shadowed`, naming the
/// file that wins, and is neither ok nor failing. Every module is counted once.
#[test]
fn one_module_name_two_files_the_one_depmod_picks_is_checked() {
    let d = debian_kernel();
    let all = modverify::input::discover(&[d.join("modules")])
        .unwrap()
        .len();
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("lib/modules/6.1.0-test");
    std::fs::create_dir_all(tree.join("updates")).unwrap();
    std::os::unix::fs::symlink(d.join("modules"), tree.join("kernel")).unwrap();
    std::fs::copy(d.join("modules/lib/crc7.ko"), tree.join("updates/crc7.ko")).unwrap();
    let vmlinux = d.join("vmlinux");
    let check = || {
        json(&[
            "check",
            "--format",
            "json",
            "--vmlinux",
            vmlinux.to_str().unwrap(),
            tree.to_str().unwrap(),
        ])
    };
    let (code, r, o) = check();
    assert_eq!(code, 0, "{}", text(&o));
    let s = &r["summary"];
    assert_eq!(s["modules"].as_u64(), Some(all as u64 + 1), "{s:#}");
    assert_eq!(s["ok"].as_u64(), Some(all as u64), "{s:#}");
    assert_eq!(s["by_verdict"]["shadowed"].as_u64(), Some(1), "{s:#}");
    assert_eq!(s["failed"].as_u64(), Some(0), "{s:#}");
    let crc7: Vec<&serde_json::Value> = r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "crc7")
        .collect();
    assert_eq!(crc7.len(), 2, "{crc7:#?}");
    let shadowed = crc7.iter().find(|m| m["verdict"] == "shadowed").unwrap();
    let ok = crc7.iter().find(|m| m["verdict"] == "ok").unwrap();
    assert!(ok["path"].as_str().unwrap().contains("/updates/"), "{ok:#}");
    assert!(shadowed["path"].as_str().unwrap().contains("/kernel/"));
    let why = shadowed["problems"][0]["detail"].as_str().unwrap();
    assert!(
        why.contains("shadowed by") && why.contains("updates/crc7.ko"),
        "{why}"
    );
    // The table gives shadowed files their own heading, not "load with warnings".
    let t = text(&modverify(&[
        "check",
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        tree.to_str().unwrap(),
    ]));
    assert!(
        t.contains("Modules shadowed by another file of their name"),
        "{t}"
    );
    assert!(!t.contains("load with warnings"), "{t}");
    assert!(
        t.contains(&format!("{all} ok, 1 shadowed, 0 failing")),
        "{t}"
    );

    // The root's depmod.d says otherwise: the kernel's own file wins.
    let conf = tmp.path().join("etc/depmod.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("crc7.conf"), "override crc7 * kernel/lib\n").unwrap();
    let (code, r, o) = check();
    assert_eq!(code, 0, "{}", text(&o));
    let shadowed = r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["verdict"] == "shadowed")
        .unwrap()
        .clone();
    assert!(
        shadowed["path"].as_str().unwrap().contains("/updates/"),
        "{shadowed:#}"
    );
    assert!(
        shadowed["problems"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("crc7.conf:1"),
        "{shadowed:#}"
    );
}

/// `--timeout` said "Time for the kernel to boot to the agent", yet a guest whose agent
/// started at 0.4 s passed with `--timeout 100ms`: the limit was only part of a total of
/// `timeout + silence × (modules + 2)`. It now bounds each boot to the agent, and the help
/// states the whole budget.
#[test]
fn timeout_bounds_the_boot_to_the_agent() {
    let (dir, m) = build(&["--arch", "riscv64"]);
    let tmp = tempfile::tempdir().unwrap();
    let mods = tmp.path().join("mods");
    std::fs::create_dir_all(&mods).unwrap();
    let first = m["artifacts"]["modules"][0].as_str().unwrap();
    std::fs::copy(first, mods.join("m.ko")).unwrap();
    let out = tmp.path().join("out");
    let (code, r, o) = json(&[
        "boot",
        "--format",
        "json",
        "--arch",
        "riscv64",
        "--kernel",
        m["artifacts"]["image"].as_str().unwrap(),
        "--modules",
        mods.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--timeout",
        "100ms",
    ]);
    assert_eq!(code, 1, "{}", text(&o));
    assert_eq!(r["done"], false, "{r:#}");
    let why = r["boot_failure"].as_str().unwrap_or_default();
    assert!(
        why.contains("did not reach the agent within --timeout 100ms"),
        "{why}\n{}",
        dir.display()
    );
    for cmd in ["boot", "run"] {
        let help = text(&modverify(&[cmd, "--help"]));
        assert!(
            help.contains("TIMEOUT + MODULE_TIMEOUT × its modules"),
            "{cmd}: {help}"
        );
    }
}

/// `bisect-step --help` said the source defaults to 6.1; it builds the current directory
/// (the commit `git bisect` checked out).
#[test]
fn bisect_step_help_names_the_source_it_builds() {
    let help = text(&modverify(&["bisect-step", "--help"]));
    let source = help
        .split("--source")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .unwrap_or_default();
    assert!(source.contains("the current directory"), "{source}");
    assert!(!source.contains("6.1"), "{source}");
}

/// Examples in the help wrapped in the middle of a command on an 80-column terminal
/// (`--fragment` / `debug.config` on two lines): each is now one line, or broken with a
/// shell continuation, as it can be pasted.
#[test]
fn help_examples_do_not_wrap_in_the_middle_of_a_command() {
    for cmd in [
        "arches",
        "build",
        "check",
        "boot",
        "run",
        "merge",
        "report",
        "bisect-step",
        "diff",
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
            .args([cmd, "--help"])
            .env("COLUMNS", "80")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&o.stdout).into_owned();
        let Some(examples) = help.split("Examples:\n").nth(1) else {
            panic!("{cmd} --help has no examples:\n{help}");
        };
        let mut previous = "";
        for line in examples.lines().take_while(|l| !l.is_empty()) {
            let continued = previous.ends_with('\\');
            assert!(
                (continued && line.starts_with("      "))
                    || (!continued
                        && ["  modverify ", "  git ", "  ci/", "  # "]
                            .iter()
                            .any(|p| line.starts_with(p))),
                "{cmd}: an example broken mid-command at {line:?}:\n{examples}"
            );
            previous = line;
        }
    }
}

/// `report DIR` said "Is a directory": a run's --out directory now stands for the
/// results.json in it; a directory without one is refused, saying what to give.
#[test]
fn report_reads_the_results_json_of_a_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = modverify(&[
        "run",
        "--arch",
        "riscv64",
        "--static-only",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let by_dir = modverify(&["report", "--format", "json", out.to_str().unwrap()]);
    let by_file = modverify(&[
        "report",
        "--format",
        "json",
        out.join("results.json").to_str().unwrap(),
    ]);
    assert_eq!(by_dir.status.code(), Some(0), "{}", text(&by_dir));
    assert_eq!(by_dir.stdout, by_file.stdout);
    let empty = modverify(&["report", tmp.path().to_str().unwrap()]);
    assert_eq!(empty.status.code(), Some(2));
    let t = text(&empty);
    assert!(t.contains("a directory with no results.json"), "{t}");
    assert!(!t.contains("Is a directory"), "{t}");
}

/// An x86 bzImage given to `boot --arch alpha` reached QEMU and exited 4 with QEMU's own
/// error; it is refused first (exit 2), naming what the image is, and a plain input error
/// is not preceded by "starting QEMU" / "boot failed".
#[test]
fn a_kernel_for_another_arch_is_refused_before_qemu_and_named() {
    let d = debian_kernel();
    let tmp = tempfile::tempdir().unwrap();
    let mods = tmp.path().join("mods");
    std::fs::create_dir_all(&mods).unwrap();
    std::fs::copy(d.join("modules/lib/crc7.ko"), mods.join("crc7.ko")).unwrap();
    let out = tmp.path().join("out");
    let o = modverify(&[
        "boot",
        "--arch",
        "alpha",
        "--kernel",
        d.join("vmlinuz").to_str().unwrap(),
        "--modules",
        mods.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("an x86 bzImage for EM_X86_64 (62), not a kernel for alpha"),
        "{t}"
    );
    assert!(!t.contains("QEMU") && !t.contains("boot failed"), "{t}");
    // Modules for another machine are named the same way.
    let o = modverify(&[
        "check",
        "--arch",
        "alpha",
        "--symvers",
        d.join("Module.symvers").to_str().unwrap(),
        mods.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(
        t.contains("EM_X86_64 (62)") && t.contains("EM_ALPHA (36902)"),
        "{t}"
    );
}

/// `--memory 16` said "not in 64..18446744073709551615"; it now gives the unit and a
/// range a person would pick from, and takes 512M / 2G.
#[test]
fn memory_out_of_range_says_the_unit_and_the_range() {
    let o = modverify(&[
        "boot", "--arch", "riscv64", "--memory", "16", "--build", "x",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("16 MiB is outside 64 MiB to 64 GiB"), "{t}");
    assert!(!t.contains("18446744073709551615"), "{t}");
    let o = modverify(&[
        "boot",
        "--arch",
        "riscv64",
        "--memory",
        "2G",
        "--build",
        "/nonexistent",
    ]);
    assert!(!text(&o).contains("--memory"), "{}", text(&o));
}

/// "reading the running export table" was printed once per table (__ksymtab,
/// __ksymtab_gpl), and the payload line was said again as a note. Each is said once; the
/// note gives only why (the kernel config's options).
#[test]
fn duplicated_lines_print_once() {
    let (dir, _) = build(&["--arch", "riscv64"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = modverify(&[
        "boot",
        "--arch",
        "riscv64",
        "--build",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert_eq!(
        t.matches("reading the running export table").count(),
        1,
        "{t}"
    );
    assert_eq!(
        t.matches("modules decompressed on the host").count(),
        1,
        "{t}"
    );
    assert!(t.contains("no CONFIG_MODULE_DECOMPRESS"), "{t}");
}

/// One unreadable descriptor in --arch-dir stopped `check` for every arch. It is named in
/// a warning and left out; the other arches go on, and a run that asks for the arch the
/// broken file is named after is refused (exit 2) rather than given the built-in one.
#[test]
fn one_bad_descriptor_does_not_block_the_other_arches() {
    let d = debian_kernel();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("arches");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mine.yaml"), "name: [\n").unwrap();
    std::fs::write(dir.join("riscv64.yaml"), "name: [\n").unwrap();
    let mods = tmp.path().join("mods");
    std::fs::create_dir_all(&mods).unwrap();
    std::fs::copy(d.join("modules/lib/crc7.ko"), mods.join("crc7.ko")).unwrap();
    let o = modverify(&[
        "--arch-dir",
        dir.to_str().unwrap(),
        "check",
        "--vmlinux",
        d.join("vmlinux").to_str().unwrap(),
        mods.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("mine.yaml") && t.contains("the other arches go on"),
        "{t}"
    );
    assert!(t.contains("1 ok"), "{t}");
    let o = modverify(&[
        "--arch-dir",
        dir.to_str().unwrap(),
        "run",
        "--arch",
        "riscv64",
        "--static-only",
        "--out",
        tmp.path().join("out").to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("`riscv64` cannot be used until that file is fixed"),
        "{t}"
    );
    let o = modverify(&["--arch-dir", dir.to_str().unwrap(), "arches"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("sparc64"),
        "the others are listed: {}",
        text(&o)
    );
}

/// Reusing `--out` replaced results.json and left the previous run's arch directories
/// beside it, as if they were this run's. What the previous run wrote is cleared, and said;
/// other files are left; `--baseline OUT/results.json --out OUT` still compares with it.
#[test]
fn reusing_out_clears_the_previous_run_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = |arches: &str, more: &[&str]| {
        let mut args = vec![
            "run",
            "--arch",
            arches,
            "--static-only",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(more);
        modverify(&args)
    };
    let o = run("riscv64,sparc64", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out.join("sparc64/check.json").exists());
    std::fs::write(out.join("riscv64/mine.txt"), "kept\n").unwrap();
    let baseline = out.join("results.json");
    let o = run("riscv64", &["--baseline", baseline.to_str().unwrap()]);
    let t = text(&o);
    // sparc64 vanished from the run: the baseline says so (its modules are gone).
    assert!(
        t.contains("held a previous run (arches riscv64, sparc64)"),
        "{t}"
    );
    assert!(t.contains("other files left in"), "{t}");
    assert!(!out.join("sparc64").exists(), "{t}");
    assert!(out.join("riscv64/mine.txt").exists());
    assert!(out.join("riscv64/check.json").exists());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["arches"].as_object().unwrap().len(), 1, "{r:#}");
    assert!(
        r["baseline"].is_object(),
        "compared with the previous run: {r:#}"
    );
}

/// `--arch all` is what this machine can build: a descriptor with no build recipe (loong64)
/// is left out and named, not made an arch that fails every run; named by itself it is still
/// bad input.
#[test]
fn arch_all_leaves_out_what_cannot_be_built_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("all");
    let o = modverify(&[
        "run",
        "--arch",
        "all",
        "--static-only",
        "--source",
        "/nonexistent",
        "--out",
        out.to_str().unwrap(),
    ]);
    let said = text(&o);
    assert!(
        said.contains("leaves out") && said.contains("loong64"),
        "{said}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert!(r["arches"].get("loong64").is_none(), "{:#}", r["arches"]);
    assert!(r["arches"].get("riscv64").is_some(), "{:#}", r["arches"]);
    let o = modverify(&[
        "run",
        "--arch",
        "loong64",
        "--out",
        tmp.path().join("one").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
