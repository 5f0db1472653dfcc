//! `modverify repro` and the guest's shell, driven through a pseudo-terminal as a person
//! would: a real module that fails to load (riscv64 6.1 with `byte_rev_table`'s export
//! removed, so zlib_deflate's load is refused with "Unknown symbol"), from the results.json
//! of the `modverify run` that found it.
mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs modverify on a new pseudo-terminal (its controlling terminal: stdin, stdout and
/// stderr), typing each of `typed` after a `modverify# ` prompt; returns the exit status and
/// everything the terminal showed.
fn on_a_terminal(args: &[&str], typed: &[&str]) -> (i32, String) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty(3) fills two descriptors we then own.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are ours alone from here on.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modverify"));
    cmd.args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and TIOCSCTTY between fork and exec, as a terminal emulator does.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(slave);
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut reader = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the child and its terminal are gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    let mut prompts_seen = 0;
    let wait_for_prompt = |shown: &mut Vec<u8>, want: usize| {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(100)) {
                shown.extend(b);
            }
            let prompts = String::from_utf8_lossy(shown)
                .matches("modverify# ")
                .count();
            if prompts >= want {
                return;
            }
        }
        panic!(
            "no prompt {want} within 300 s; the terminal showed:\n{}",
            String::from_utf8_lossy(shown)
        );
    };
    for t in typed {
        prompts_seen += 1;
        wait_for_prompt(&mut shown, prompts_seen);
        master.write_all(format!("{t}\n").as_bytes()).unwrap();
    }
    let status = child.wait().unwrap();
    while let Ok(b) = rx.recv_timeout(Duration::from_millis(500)) {
        shown.extend(b);
    }
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&shown).into_owned(),
    )
}

#[test]
fn repro_reloads_a_failing_module_and_leaves_a_shell_worth_using() {
    let tmp = tempfile::tempdir().unwrap();
    let run_out = tmp.path().join("run");
    let p = patch("drop-export-byte_rev_table.patch");
    let o = modverify(&[
        "run",
        "--arch",
        "riscv64",
        "--patch",
        &p,
        "--out",
        run_out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = tmp.path().join("repro");
    let (code, shown) = on_a_terminal(
        &[
            "repro",
            run_out.join("results.json").to_str().unwrap(),
            "--module",
            "zlib_deflate",
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            "help",
            "modules",
            "insmod zlib-deflate",
            "dmesg",
            "lsmod",
            "poweroff",
        ],
    );
    let at = |what: &str| {
        shown
            .find(what)
            .unwrap_or_else(|| panic!("the terminal never showed {what:?}:\n{shown}"))
    };
    // Before the guest: what the run predicted and what its kernel said.
    at("static prediction: unknown_symbol: `byte_rev_table`");
    // (The run tried it twice: a failure that reproduced.)
    at("the run's kernel: unknown_symbol (reproduced in 2 tries): zlib_deflate: Unknown symbol byte_rev_table");
    // The agent's own load, said in one line, then the shell: no protocol on the terminal.
    let load = at("zlib_deflate: refused (ENOENT): zlib_deflate: Unknown symbol byte_rev_table");
    assert!(
        !shown.contains("@MV "),
        "protocol records reached the terminal:\n{shown}"
    );
    assert!(load < at("modverify guest shell"), "{shown}");
    // help, modules by their real names, insmod by name (`-` as `_`), a readable dmesg.
    at("insmod NAME");
    at("zlib_deflate             -");
    at("insmod zlib_deflate: No such file or directory (ENOENT)");
    assert!(
        shown
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .any(|l| l.starts_with('[')
                && l.ends_with("zlib_deflate: Unknown symbol byte_rev_table (err -2)")),
        "no dmesg line as `[seconds] message`:\n{shown}"
    );
    at("Module                       Size  Used by");
    // On leaving: the summary, the results, the exit status of the one rule.
    let off = at("the guest is off");
    assert!(off > load);
    at("unknown_symbol zlib_deflate (symbol byte_rev_table)");
    at("In the shell:\r\n  insmod zlib_deflate: refused (ENOENT)");
    assert_eq!(code, 1, "{shown}");
    // The README's repro recipe shows this session, as the terminal showed it (its run's
    // directory called `tonight`).
    let as_shown = shown
        .replace('\r', "")
        .replace(run_out.to_str().unwrap(), "tonight");
    assert_readme_shows("### Reproducing an arch-specific failure", &as_shown);
    let r: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let a = &r["arches"]["riscv64"];
    assert_eq!(a["status"], "findings");
    assert_eq!(a["boot"]["modules"][0]["name"], "zlib_deflate");
    assert_eq!(a["boot"]["modules"][0]["verdict"], "unknown_symbol");
    assert_eq!(
        a["boot"]["shell"],
        serde_json::json!(["insmod zlib_deflate: refused (ENOENT)"])
    );
    // The console, records and all, is kept for the record.
    let console = std::fs::read_to_string(out.join("console.log")).unwrap();
    assert!(console.contains("zlib_deflate"), "{console}");
}

/// Mistakes name the fix: an arch the results do not hold, a module the build did not make.
#[test]
fn repro_refuses_what_the_results_do_not_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results.json");
    std::fs::write(
        &results,
        r#"{"schema": "modverify.results/1", "arches": {"riscv64": {"status": "ok"}}}"#,
    )
    .unwrap();
    let o = modverify(&[
        "repro",
        results.to_str().unwrap(),
        "--module",
        "md5",
        "--arch",
        "sparc64",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("has no arch sparc64 (it holds riscv64)"),
        "{}",
        text(&o)
    );
    let o = modverify(&["repro", results.to_str().unwrap(), "--module", "md5"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("records no build") && text(&o).contains("boot --kernel"),
        "{}",
        text(&o)
    );
}
