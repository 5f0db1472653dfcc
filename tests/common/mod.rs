//! Helpers shared by the integration tests: run the real binary, read what it wrote.
#![allow(dead_code)] // each test crate uses a different subset
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn modverify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modverify"))
        .args(args)
        .output()
        .unwrap()
}

/// stdout and stderr together, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `modverify build ARGS`; returns the build directory and its manifest.
pub fn build(args: &[&str]) -> (PathBuf, Value) {
    let mut all = vec!["build"];
    all.extend(args);
    let o = modverify(&all);
    assert!(
        o.status.success(),
        "modverify {all:?} failed:\n{}",
        text(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let manifest = out
        .lines()
        .find_map(|l| l.strip_prefix("manifest: "))
        .expect("manifest line")
        .to_string();
    let dir = Path::new(&manifest).parent().unwrap().to_path_buf();
    let m = if args.contains(&"--config-only") {
        // Configured, not built: a finished reader refuses it, rightly. The caller names its
        // own `--out`, so nothing else writes there.
        serde_json::to_value(modverify::kernel_build::BuildManifest::read(&dir).unwrap()).unwrap()
    } else {
        finished_manifest(&dir)
    };
    (dir, m)
}

/// A build directory's build.json, read as modverify's own readers read it: under the
/// directory's shared lock, so a build of the same directory elsewhere (the background
/// builds of ci/test, another test) is waited for and never read half done.
pub fn finished_manifest(dir: &Path) -> Value {
    let built = modverify::kernel_build::BuildManifest::read_finished(dir, &mut || {}).unwrap();
    serde_json::to_value(&built.manifest).unwrap()
}

/// Runs modverify with `args` and parses its JSON output; returns (exit status, JSON, output).
pub fn json(args: &[&str]) -> (i32, Value, Output) {
    let o = modverify(args);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}):\n{}", text(&o)));
    (o.status.code().unwrap(), v, o)
}

/// Debian's bookworm amd64 kernel, fetched once into the cache by ci/fetch-debian-kernel.
pub fn debian_kernel() -> PathBuf {
    debian_kernel_of("bookworm", "amd64")
}

/// A Debian kernel of any suite and architecture (newest ABI the mirror serves, fetched once
/// into the cache outside the clone): vmlinuz, vmlinux where extractable, modules/,
/// Module.symvers.
pub fn debian_kernel_of(suite: &str, arch: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("ci/fetch-debian-kernel"))
        .args([suite, arch])
        .output()
        .expect("run ci/fetch-debian-kernel");
    assert!(
        out.status.success(),
        "ci/fetch-debian-kernel {suite} {arch} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Sends SIGINT to a running modverify, as a terminal's Ctrl-C would, and waits for it to
/// exit (at most `limit`).
pub fn interrupt_and_wait(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(t.elapsed() < limit, "modverify did not stop after Ctrl-C");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An `--arch-dir` in `dir` holding riscv64's descriptor with an emulator that cannot start
/// (`false`): the same build section, so the same build directory, and a QEMU that never
/// starts the machine.
pub fn riscv64_without_qemu(dir: &Path) -> PathBuf {
    let arches = dir.join("arches");
    std::fs::create_dir_all(&arches).unwrap();
    let desc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("arches/riscv64.yaml"))
            .unwrap()
            .replace("binary: qemu-system-riscv64", "binary: \"false\"");
    assert!(desc.contains("binary: \"false\""));
    std::fs::write(arches.join("riscv64.yaml"), desc).unwrap();
    arches
}

/// A patch in tests/regressions, by absolute path (as `--patch` takes it, and as the build
/// directory's key holds it, so that every test naming it shares one build).
pub fn patch(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(name)
        .display()
        .to_string()
}

/// sid's 7.x amd64 vmlinux (from its bzImage), a copy with one non-GPL export flagged
/// GPL-only in `__kflagstab`, and a proprietary copy of a module whose kernel imports are all
/// non-GPL exports (its `license=GPL` rewritten; its `.modinfo name=` kept): it loads against
/// the real table and is refused, naming that export, against the damaged one.
#[allow(dead_code)]
pub struct GplFlagDamage {
    pub vmlinux: Vec<u8>,
    pub damaged: Vec<u8>,
    pub proprietary: Vec<u8>,
    /// The export flagged.
    pub victim: String,
    /// The module's name (`.modinfo name=`).
    pub module: String,
}

#[allow(dead_code)]
pub fn gpl_flag_damage(d: &Path) -> GplFlagDamage {
    use modverify::elf::exports::TableKind;
    use modverify::elf::{ElfFile, ModuleFacts};
    let image = std::fs::read(d.join("vmlinuz")).unwrap();
    let modverify::elf::image::KernelImage::Elf(bytes) =
        modverify::elf::image::unwrap(image, &mut vec![]).unwrap()
    else {
        panic!("no ELF inside sid's bzImage")
    };
    let arch = modverify::arch::ArchRegistry::load(None)
        .unwrap()
        .get("x86_64")
        .unwrap()
        .clone();
    let elf = ElfFile::parse(&bytes).unwrap();
    let table = modverify::elf::ExportTable::from_vmlinux(&elf, None).unwrap();
    let (module, victim, name) = modverify::input::discover(&[d.join("modules")])
        .unwrap()
        .into_iter()
        .find_map(|p| {
            let b = modverify::input::read_module(&p).unwrap();
            let elf = ElfFile::parse(&b).unwrap();
            let f = ModuleFacts::parse(&elf, &arch.elf).unwrap();
            let imports: Vec<_> = f
                .undefined
                .iter()
                .filter_map(|u| table.lookup(&u.name))
                .collect();
            (imports.len() == f.undefined.len()
                && !imports.is_empty()
                && imports.iter().all(|l| !l.gpl_only)
                && memchr::memmem::find(&b, b"license=GPL").is_some())
            .then(|| (b, imports[0].index, f.name.unwrap()))
        })
        .expect("a module importing only non-GPL kernel exports");
    let mut damaged = bytes.clone();
    let sec = elf.section("__kflagstab").unwrap();
    damaged[sec.shdr.sh_offset as usize + victim] |= 1;
    let mut proprietary = module;
    let at = memchr::memmem::find(&proprietary, b"license=GPL").unwrap();
    proprietary[at..at + 11].copy_from_slice(b"license=Pro");
    GplFlagDamage {
        victim: table.table(TableKind::Normal).names[victim].clone(),
        vmlinux: bytes,
        damaged,
        proprietary,
        module: name,
    }
}

/// A page as headless Chromium has it once its script ran (`--dump-dom`): what a person's
/// browser shows, not the file's text. With `screenshot`, also a PNG of the first screen.
pub fn chromium(html: &Path, screenshot: Option<&Path>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let base = |c: &mut Command| {
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    if let Some(png) = screenshot {
        let mut c = Command::new("chromium");
        base(&mut c);
        c.arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1400,1000")
            .arg(format!("file://{}", html.display()));
        let o = c
            .output()
            .expect("chromium is missing: apt-get install chromium (ci/test installs it)");
        assert!(png.exists(), "no screenshot: {}", text(&o));
    }
    let mut c = Command::new("chromium");
    base(&mut c);
    c.arg("--dump-dom")
        .arg(format!("file://{}", html.display()));
    let o = c
        .output()
        .expect("chromium is missing: apt-get install chromium (ci/test installs it)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The HTML report's structure as the browser has it: its script ran, the counts table has
/// each arch with its module count, and every module row that needs a look (a failure, a
/// disagreement, a flaky module) comes before every one that does not, each such row with
/// the kernel's first message beside its verdict. Returns the module names in page order.
pub fn assert_html_report(dom: &str, arches: &[(&str, u64)]) -> Vec<String> {
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not run"
    );
    for (arch, modules) in arches {
        let row = dom
            .split("<tr data-arch=\"")
            .skip(1)
            .find(|r| r.starts_with(&format!("{arch}\"")))
            .unwrap_or_else(|| panic!("no counts row for {arch}"));
        assert!(
            row.contains(&format!("<td>{modules}</td>")),
            "{arch}'s counts row does not say {modules} modules: {}",
            &row[..row.len().min(400)]
        );
    }
    let mut names = Vec::new();
    let mut seen_fine = false;
    for row in dom.split("<tr data-name=\"").skip(1) {
        let name = row.split('"').next().unwrap().to_string();
        let bad = row.contains("data-bad=\"1\"");
        assert!(
            !(bad && seen_fine),
            "{name} needs a look but comes after fine modules"
        );
        seen_fine |= !bad;
        if bad {
            let row_end = row.find("</tr>").unwrap_or(row.len());
            assert!(
                row[..row_end].contains("<small class=\"msg\">"),
                "{name}: no message beside its verdict"
            );
        }
        names.push(name);
    }
    names
}

/// The README's output block after the first line containing `after`: the first fenced block
/// from there whose fence names no language (commands are in ```sh blocks). The tests that
/// run the README's commands hold their output to it (see [`assert_readme_shows`]).
pub fn readme_output(after: &str) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut lines = text.lines().skip_while(|l| !l.contains(after));
    assert!(
        lines.next().is_some(),
        "README.md has no line with {after:?}"
    );
    // (fence's language, its lines) of each block from there; the first without a language.
    let mut block: Option<(String, Vec<&str>)> = None;
    for l in lines {
        match (&mut block, l.strip_prefix("```")) {
            (None, Some(lang)) => block = Some((lang.to_string(), Vec::new())),
            (Some((lang, body)), Some(_)) => {
                if lang.is_empty() {
                    // (`after` inside a fenced block would take its closing fence for an
                    // opening one and compare nothing.)
                    assert!(!body.is_empty(), "an empty output block after {after:?}");
                    return body.join("\n");
                }
                block = None;
            }
            (Some((_, body)), None) => body.push(l),
            (None, None) => {}
        }
    }
    panic!("no output block after {after:?}")
}

/// A line with its times (`4s`, `1.1s`, `[    0.854032]`) made `T`, its kernel versions
/// (`6.1.192`: Debian's linux-source moves on) `V`, and its runs of spaces one (a column's
/// width follows the widest time).
pub fn modulo_times(line: &str) -> String {
    let line = match (line.find('['), line.find(']')) {
        (Some(a), Some(b)) if a < b && line[a + 1..b].trim().parse::<f64>().is_ok() => {
            format!("{}[T]{}", &line[..a], &line[b + 1..])
        }
        _ => line.to_string(),
    };
    let version = |w: &str| {
        let parts: Vec<&str> = w.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    line.split_whitespace()
        .map(|w| {
            let n = w.strip_suffix('s').unwrap_or("");
            if !n.is_empty() && n.parse::<f64>().is_ok() {
                return "T".to_string();
            }
            let core = w.trim_matches(|c: char| "(),:;".contains(c));
            if version(core) {
                return w.replace(core, "V");
            }
            w.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The README shows what the command printed: every line of its block after `after` is one of
/// the lines of `printed`, in order, modulo times (the README may leave lines out, such as the
/// rest of a long list, never change one).
pub fn assert_readme_shows(after: &str, printed: &str) {
    let shown = readme_output(after);
    let printed: Vec<String> = printed.lines().map(modulo_times).collect();
    let mut at = 0;
    for line in shown.lines().map(modulo_times) {
        match printed[at..].iter().position(|p| *p == line) {
            Some(i) => at += i + 1,
            None => panic!(
                "README.md shows a line the command did not print (in this order), after {after:?}:\n  {line}\nprinted:\n{}",
                printed.join("\n")
            ),
        }
    }
}

/// A line's shape: its numbers `N`, its CRCs `H`, its runs of spaces one. What a README
/// example made from two dated kernels shares with the same command on any other pair.
pub fn modulo_numbers(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.split_whitespace().collect::<Vec<_>>().join(" ");
    while !chars.is_empty() {
        if let Some(rest) = chars.strip_prefix("0x") {
            let n = rest.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
            if n > 0 {
                out.push('H');
                chars = rest[n..].to_string();
                continue;
            }
        }
        let c = chars.chars().next().unwrap();
        if c.is_ascii_digit() {
            let n = chars.bytes().take_while(|b| b.is_ascii_digit()).count();
            out.push('N');
            chars = chars[n..].to_string();
        } else {
            out.push(c);
            chars = chars[c.len_utf8()..].to_string();
        }
    }
    out
}

/// The README's dated example after `after` has the shape of what the command printed:
/// each of its lines but those naming something only that pair of kernels had (`dated`),
/// modulo numbers and CRCs, among the printed lines in order.
pub fn assert_readme_shape(after: &str, printed: &str, dated: &[&str]) {
    let shown = readme_output(after);
    let printed: Vec<String> = printed.lines().map(modulo_numbers).collect();
    let mut at = 0;
    for line in shown
        .lines()
        .filter(|l| !dated.iter().any(|d| l.contains(d)))
    {
        let line = modulo_numbers(line);
        match printed[at..].iter().position(|p| *p == line) {
            Some(i) => at += i + 1,
            None => panic!(
                "README.md shows a line whose shape the command did not print (in this order), after {after:?}:\n  {line}\nprinted:\n{}",
                printed.join("\n")
            ),
        }
    }
}

/// Linux 5.19's modpost on a build whose `lost` export has no CRC: modpost says the CRC
/// could not be generated; `check` finds the index shift at `lost`'s slot by `delta` (two
/// adjacent lost slots make 2), a shifted run holding `module_layout`, `lost` without a slot
/// of its own, and every module failing on `module_layout` with two different CRCs.
/// Returns check's JSON.
pub fn assert_crc_index_shift(dir: &Path, manifest: &Value, lost: &str, delta: u64) -> Value {
    assert!(
        manifest["modpost"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "version_generation_failed" && f["symbol"] == lost),
        "{:#}",
        manifest["modpost"]
    );
    let d = dir.to_str().unwrap();
    let (code, r, o) = json(&["check", "--format", "json", "--build", d]);
    assert_eq!(code, 1, "{}", text(&o));
    let problems = r["exports"]["problems"].as_array().unwrap();
    let shift = problems
        .iter()
        .find(|p| p["kind"] == "index_shift")
        .unwrap_or_else(|| panic!("{problems:#?}"));
    assert_eq!(shift["table"], "__ksymtab/__kcrctab");
    assert_eq!(shift["delta"], delta, "{shift:#}");
    assert_eq!(shift["symbol"], lost, "{shift:#}");
    assert!(problems
        .iter()
        .filter(|p| p["kind"] == "index_shift")
        .any(|p| p["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "module_layout")));
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "no_crc_slot" && p["symbol"] == lost),
        "{problems:#?}"
    );
    let n = r["summary"]["modules"].as_u64().unwrap();
    assert_eq!(
        r["summary"]["failed"], n,
        "every module is predicted to fail"
    );
    for x in r["modules"].as_array().unwrap() {
        assert_eq!(x["verdict"], "crc_mismatch", "{x:#}");
        assert_eq!(x["problems"][0]["symbol"], "module_layout");
        assert_ne!(
            x["problems"][0]["module_crc"],
            x["problems"][0]["kernel_crc"]
        );
    }
    r
}
