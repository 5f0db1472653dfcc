//! The README a newcomer reads to the end: short, every link resolves, its command table is the
//! binary's, and every modverify command it shows is one the binary takes as written (flags,
//! subcommands and values parsed by the real argument parser).
mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn readme_is_read_to_the_end() {
    let n = read(&root().join("README.md")).lines().count();
    assert!(n <= 250, "README.md has {n} lines: move detail to docs/");
}

/// Relative links of README.md and docs/*.md, each to a file or directory that exists.
#[test]
fn every_link_resolves() {
    let mut files = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut broken = Vec::new();
    for f in &files {
        let text = read(f);
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap();
            let target = target.split('#').next().unwrap();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            let p: PathBuf = f.parent().unwrap().join(target);
            if !p.exists() {
                broken.push(format!("{}: {target}", f.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing: {broken:#?}");
}

/// The README's command table is the binary's list of commands.
#[test]
fn the_command_table_is_the_binarys() {
    let o = common::modverify(&["--help"]);
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 8, "{help}");
    let readme = read(&root().join("README.md"));
    let table: String = readme
        .lines()
        .skip_while(|l| *l != "## Commands")
        .take_while(|l| !l.starts_with("## Recipes"))
        .collect::<Vec<_>>()
        .join("\n");
    for c in commands {
        assert!(
            table.contains(&format!("`modverify {c}")) || table.contains(&format!(" / `{c}`")),
            "`modverify {c}` is not in the README's command table"
        );
    }
}

/// Every `modverify …` command in the README's `sh` blocks, as written, with `--help` after
/// it: the real parser accepts its subcommand, flags and values (an unknown flag, a renamed
/// one or a bad value fails here).
#[test]
fn every_command_shown_parses() {
    let readme = read(&root().join("README.md"));
    let mut in_sh = false;
    let mut joined = String::new();
    let mut commands = Vec::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        // Continued lines, and comments, as the shell reads them.
        let line = line.split(" #").next().unwrap().trim_end();
        joined.push_str(line.trim_end_matches('\\'));
        if line.ends_with('\\') {
            continue;
        }
        for part in joined.split("&&") {
            if let Some(at) = part.find("modverify ") {
                let args = &part[at + "modverify ".len()..];
                if !args.trim_start().starts_with("setup") {
                    commands.push(args.trim().to_string());
                }
            }
        }
        joined.clear();
    }
    assert!(commands.len() >= 5, "{commands:?}");
    for c in &commands {
        let mut args: Vec<String> = c
            .split_whitespace()
            .map(|a| a.trim_matches('"').to_string())
            .collect();
        args.push("--help".into());
        let o = Command::new(env!("CARGO_BIN_EXE_modverify"))
            .args(&args)
            .env("OLD", "/old")
            .env("NEW", "/new")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "`modverify {c}` does not parse:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
