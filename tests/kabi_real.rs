//! `modverify diff` on real kernels nobody here wrote: Debian's two newest bookworm amd64 ABIs
//! (a real kABI bump), and damaged copies whose changes are known exactly. The export changes
//! are checked against a plain Module.symvers text diff computed here, and the consumers that
//! break against `modverify check`'s own rejections.
mod common;
use common::*;
use modverify::elf::exports::TableKind;
use modverify::elf::{ElfFile, ModuleFacts};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ABI before the newest one the mirror serves (ci/fetch-debian-kernel --previous).
fn previous_kernel(suite: &str, arch: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("ci/fetch-debian-kernel"))
        .args(["--previous", suite, arch])
        .output()
        .expect("run ci/fetch-debian-kernel");
    assert!(
        out.status.success(),
        "ci/fetch-debian-kernel --previous {suite} {arch} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// `modverify diff --format json` of two fetched kernels (vmlinuz, Module.symvers, modules/),
/// `new_vmlinux` replacing the new one's image where given.
fn diff(old: &Path, new: &Path, new_vmlinux: Option<&Path>, more: &[&str]) -> (i32, Value) {
    let p = |d: &Path, f: &str| d.join(f).display().to_string();
    let nv = new_vmlinux
        .map(|v| v.display().to_string())
        .unwrap_or_else(|| p(new, "vmlinuz"));
    let mut args = vec![
        "diff".to_string(),
        "--format".into(),
        "json".into(),
        "--old-vmlinux".into(),
        p(old, "vmlinuz"),
        "--old-symvers".into(),
        p(old, "Module.symvers"),
        "--old-modules".into(),
        p(old, "modules"),
        "--new-vmlinux".into(),
        nv,
        "--new-modules".into(),
        p(new, "modules"),
    ];
    if new_vmlinux.is_none() {
        args.extend(["--new-symvers".into(), p(new, "Module.symvers")]);
    }
    args.extend(more.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = modverify(&args);
    let code = o.status.code().unwrap();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("diff printed no JSON ({e}): {}", text(&o)));
    (code, v)
}

/// `(symbol, kind)` of every change in a diff.
fn changes(d: &Value) -> BTreeSet<(String, String)> {
    d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["symbol"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn broken(d: &Value) -> BTreeSet<String> {
    d["broken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["module"].as_str().unwrap().to_string())
        .collect()
}

/// Module.symvers as text: symbol → (crc, owner as a module name, licence, namespace).
fn symvers(path: &Path) -> BTreeMap<String, (String, String, String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let owner = c[2].rsplit('/').next().unwrap().replace('-', "_");
            let ns = c.get(4).copied().unwrap_or("").to_string();
            (
                c[1].to_string(),
                (c[0].to_string(), owner, c[3].to_string(), ns),
            )
        })
        .collect()
}

/// The text diff of two Module.symvers, in diff's vocabulary, written here on its own. A
/// kernel without MODVERSIONS writes every CRC as 0: a CRC is compared only where both
/// sides have one (turning MODVERSIONS off is one kernel-wide change, not one per export).
fn symvers_changes(old: &Path, new: &Path) -> BTreeSet<(String, String)> {
    let (a, b) = (symvers(old), symvers(new));
    let versioned = |m: &BTreeMap<String, (String, String, String, String)>| {
        m.values().any(|v| {
            !v.0.trim_start_matches("0x")
                .trim_start_matches('0')
                .is_empty()
        })
    };
    let crcs = versioned(&a) && versioned(&b);
    let mut out = BTreeSet::new();
    for (s, o) in &a {
        let Some(n) = b.get(s) else {
            out.insert((s.clone(), "removed".into()));
            continue;
        };
        let mut kind = |k: &str| out.insert((s.clone(), k.to_string()));
        if crcs && o.0 != n.0 {
            kind("crc_changed");
        }
        if o.1 != n.1 {
            kind("moved");
        }
        if o.2 != n.2 {
            kind(if n.2.contains("GPL") {
                "gpl_tightened"
            } else {
                "gpl_relaxed"
            });
        }
        if o.3 != n.3 {
            kind("namespace_changed");
        }
    }
    for s in b.keys().filter(|s| !a.contains_key(*s)) {
        out.insert((s.clone(), "added".into()));
    }
    out
}

/// Modules `modverify check` rejects: `paths` against a kernel and its own modules (`--with`);
/// without `vmlinux`, the table comes from Module.symvers.
fn check_rejects(kernel: &Path, vmlinux: Option<&Path>, paths: &[PathBuf]) -> BTreeSet<String> {
    let mut args: Vec<String> = vec!["check".into(), "--format".into(), "json".into()];
    if let Some(v) = vmlinux {
        args.extend(["--vmlinux".into(), v.display().to_string()]);
    }
    args.extend([
        "--symvers".into(),
        kernel.join("Module.symvers").display().to_string(),
        "--with".into(),
        kernel.join("modules").display().to_string(),
    ]);
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = modverify(&args);
    let r: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("check printed no JSON ({e}): {}", text(&o)));
    r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["verdict"] != "ok" && m["verdict"] != "shadowed")
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

/// The modules of a kernel that export nothing (Module.symvers names no export of theirs):
/// each loads on its own, so checking them together is checking each alone.
fn leaf_modules(kernel: &Path) -> Vec<PathBuf> {
    leaves_of(&kernel.join("Module.symvers"), &kernel.join("modules"))
}

/// The modules under `dir` that export nothing `symvers` lists.
fn leaves_of(symvers_file: &Path, dir: &Path) -> Vec<PathBuf> {
    let exporters: BTreeSet<String> = symvers(symvers_file).into_values().map(|v| v.1).collect();
    modverify::input::discover(&[dir.to_path_buf()])
        .unwrap()
        .into_iter()
        .filter(|p| !exporters.contains(&modverify::depmod::name(p)))
        .collect()
}

/// The proof for a real pair: diff's export changes are exactly the Module.symvers text diff;
/// the old kernel's leaf modules it says break are exactly those `check` rejects against the
/// new kernel with its modules (none rejected by the old one); the exit status follows.
/// `images`: the kernels are read from their images (else from Module.symvers alone).
fn assert_is_the_symvers_diff_and_checks_judgement(
    old: &Path,
    new: &Path,
    images: bool,
    code: i32,
    d: &Value,
) {
    let expect = symvers_changes(&old.join("Module.symvers"), &new.join("Module.symvers"));
    let got = changes(d);
    assert_eq!(
        got.difference(&expect).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "changes diff found that Module.symvers does not show"
    );
    assert_eq!(
        expect.difference(&got).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "changes Module.symvers shows that diff missed"
    );
    let leaves = leaf_modules(old);
    assert!(leaves.len() > 1000, "{} leaf modules", leaves.len());
    let leaf_names: BTreeSet<String> = leaves.iter().map(|p| modverify::depmod::name(p)).collect();
    let image = |k: &Path| images.then(|| k.join("vmlinuz"));
    assert!(check_rejects(old, image(old).as_deref(), &leaves).is_empty());
    let rejected = check_rejects(new, image(new).as_deref(), &leaves);
    let says: BTreeSet<String> = broken(d)
        .into_iter()
        .filter(|m| leaf_names.contains(m))
        .collect();
    assert_eq!(says, rejected);
    assert_eq!(code, if rejected.is_empty() { 0 } else { 1 });
}

/// Two successive bookworm ABIs: every export change diff names is the Module.symvers text
/// diff's, and the leaf modules it says break are exactly those check rejects against the
/// new kernel (none of them rejected by the old one).
#[test]
fn two_bookworm_abis_equal_a_symvers_text_diff_and_checks_rejections() {
    let old = previous_kernel("bookworm", "amd64");
    let new = debian_kernel();
    assert_ne!(old, new);
    let (code, d) = diff(&old, &new, None, &[]);
    assert_eq!(d["old"]["consistent"], true, "{:#}", d["old"]);
    assert_eq!(d["new"]["consistent"], true, "{:#}", d["new"]);
    assert!(!changes(&d).is_empty(), "a kABI bump with no change");
    assert_is_the_symvers_diff_and_checks_judgement(&old, &new, true, code, &d);
    // The table says it first: how much changed, how many break.
    let o = modverify(&[
        "diff",
        "--old-vmlinux",
        old.join("vmlinuz").to_str().unwrap(),
        "--old-modules",
        old.join("modules").to_str().unwrap(),
        "--new-vmlinux",
        new.join("vmlinuz").to_str().unwrap(),
        "--new-modules",
        new.join("modules").to_str().unwrap(),
    ]);
    let t = text(&o);
    let second = t.lines().nth(1).unwrap_or("");
    assert!(
        second.contains("exports changed") && second.contains("consumers break"),
        "{t}"
    );
    // The README's two examples (bookworm 6.1.0-47 -> -50, which the mirror no longer
    // serves) have the shape of what this pair prints, where this pair changed what that
    // one did: module_layout's CRC (Debian's ABI bumps change it), which every module
    // imports.
    let layout_changed = changes(&d)
        .iter()
        .any(|(sym, kind)| sym == "module_layout" && kind == "crc_changed");
    if !layout_changed {
        eprintln!(
            "this bookworm pair kept module_layout's CRC: the README's examples not compared"
        );
        return;
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Only the lines of what each pair removed are that pair's own.
    assert_readme_shape(
        "What changed between two kernels' export tables",
        &stdout,
        &["removed exports", "ufshcd"],
    );
    let tun = modverify::input::discover(&[old.join("modules")])
        .unwrap()
        .into_iter()
        .find(|p| modverify::input::stem(p) == "tun")
        .expect("tun in the old kernel's modules");
    let o = modverify(&[
        "check",
        "--vmlinux",
        new.join("vmlinuz").to_str().unwrap(),
        "--symvers",
        new.join("Module.symvers").to_str().unwrap(),
        "--with",
        new.join("modules").to_str().unwrap(),
        tun.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_readme_shape(
        "are about to boot, the way its loader would decide",
        &String::from_utf8_lossy(&o.stdout),
        &[],
    );
}

/// Across a Debian release: bookworm's 6.1 to trixie's 6.12 (amd64), thousands of changes
/// of every kind: still exactly the Module.symvers text diff, and the leaf modules diff says
/// break are exactly those check rejects against trixie's kernel with its modules.
#[test]
fn bookworm_to_trixie_equals_a_symvers_text_diff_and_checks_rejections() {
    let old = debian_kernel();
    let new = debian_kernel_of("trixie", "amd64");
    let (code, d) = diff(&old, &new, None, &[]);
    assert_eq!(d["old"]["consistent"], true, "{:#}", d["old"]);
    assert_eq!(d["new"]["consistent"], true, "{:#}", d["new"]);
    let by_kind = &d["summary"]["by_kind"];
    for kind in ["removed", "added", "crc_changed", "moved"] {
        assert!(by_kind[kind].as_u64().unwrap_or(0) > 0, "{by_kind:#}");
    }
    assert_is_the_symvers_diff_and_checks_judgement(&old, &new, true, code, &d);
}

/// bookworm's vmlinux with one `__kcrctab` slot removed (5.19's shape): every later symbol's
/// CRC changes and nothing else; the new table is inconsistent and the diff says so; the
/// modules that break are exactly those importing a symbol at or after the slot.
#[test]
fn a_removed_kcrctab_slot_is_exactly_its_crc_changes_and_their_importers() {
    let d = debian_kernel();
    let bytes = std::fs::read(d.join("vmlinux")).unwrap();
    let elf = ElfFile::parse(&bytes).unwrap();
    let table = modverify::elf::ExportTable::from_vmlinux(&elf, None).unwrap();
    let names = table.table(TableKind::Normal).names.clone();
    let sec = elf.section("__kcrctab").unwrap();
    let (off, n) = (sec.shdr.sh_offset as usize, sec.shdr.sh_size as usize / 4);
    let layout = names.iter().position(|s| s == "module_layout").unwrap();
    let k = layout + 1 + (n - layout) / 3;
    let mut shifted = bytes.clone();
    shifted.copy_within(off + 4 * (k + 1)..off + 4 * n, off + 4 * k);
    shifted[off + 4 * (n - 1)..off + 4 * n].fill(0);
    let tmp = tempfile::tempdir().unwrap();
    let vmlinux = tmp.path().join("vmlinux");
    std::fs::write(&vmlinux, &shifted).unwrap();

    let (code, r) = diff(&d, &d, Some(&vmlinux), &[]);
    assert_eq!(code, 1);
    assert_eq!(r["new"]["consistent"], false, "{:#}", r["new"]);
    let crcs =
        |i: usize| u32::from_le_bytes(bytes[off + 4 * i..off + 4 * i + 4].try_into().unwrap());
    let expect: BTreeSet<(String, String)> = (k..n)
        .filter(|&i| i + 1 == n || crcs(i) != crcs(i + 1))
        .map(|i| (names[i].clone(), "crc_changed".to_string()))
        .collect();
    assert_eq!(changes(&r), expect);
    let affected: BTreeSet<&str> = names[k..].iter().map(String::as_str).collect();
    let arch = modverify::arch::ArchRegistry::load(None)
        .unwrap()
        .get("x86_64")
        .unwrap()
        .clone();
    let mut importers = BTreeSet::new();
    for p in modverify::input::discover(&[d.join("modules")]).unwrap() {
        let b = modverify::input::read_module(&p).unwrap();
        let elf = ElfFile::parse(&b).unwrap();
        let f = ModuleFacts::parse(&elf, &arch.elf).unwrap();
        if f.versions
            .iter()
            .flatten()
            .any(|v| affected.contains(v.name.as_str()))
        {
            importers.insert(f.name.unwrap());
        }
    }
    assert!(!importers.is_empty() && importers.len() < 3800);
    // A module importing only what a module providing a shifted symbol exports fails too
    // (dependency_failed): diff's broken set holds the importers and their dependants.
    let b = broken(&r);
    assert!(importers.is_subset(&b), "{:?}", importers.difference(&b));
    for m in r["broken"].as_array().unwrap() {
        if !importers.contains(m["module"].as_str().unwrap()) {
            assert_eq!(m["verdict"], "dependency_failed", "{m:#}");
        }
    }
}

/// sid's 7.x amd64 kernel with one export flagged GPL-only in `__kflagstab`: one change,
/// `gpl_tightened`; Debian's own modules are all GPL, so none breaks, but a proprietary copy
/// of one of its users given with --consumers does, and only it.
#[test]
fn a_gpl_flag_set_in_7_x_is_one_change_that_breaks_a_proprietary_consumer() {
    let d = debian_kernel_of("sid", "amd64");
    let GplFlagDamage {
        vmlinux: bytes,
        damaged,
        proprietary,
        victim: victim_name,
        module: name,
    } = gpl_flag_damage(&d);
    let tmp = tempfile::tempdir().unwrap();
    let mods = tmp.path().join("consumers");
    std::fs::create_dir(&mods).unwrap();
    std::fs::write(mods.join("proprietary_copy.ko"), &proprietary).unwrap();
    let good = tmp.path().join("vmlinux.good");
    std::fs::write(&good, &bytes).unwrap();
    let bad = tmp.path().join("vmlinux.bad");
    std::fs::write(&bad, &damaged).unwrap();

    // Same kernel on both sides: nothing changes, nothing breaks, exit 0.
    let p = |f: &Path| f.display().to_string();
    let common: Vec<String> = vec![
        "diff".into(),
        "--format".into(),
        "json".into(),
        "--old-vmlinux".into(),
        p(&good),
        "--old-modules".into(),
        p(&d.join("modules")),
        "--new-modules".into(),
        p(&d.join("modules")),
        "--consumers".into(),
        p(&mods),
        "--new-vmlinux".into(),
    ];
    let run = |new: &Path| {
        let mut a = common.clone();
        a.push(p(new));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = modverify(&a);
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}): {}", text(&o)));
        (o.status.code().unwrap(), v)
    };
    let (code, r) = run(&good);
    assert_eq!((code, changes(&r).len()), (0, 0), "{:#}", r["summary"]);
    let (code, r) = run(&bad);
    assert_eq!(code, 1, "{:#}", r["summary"]);
    assert_eq!(
        changes(&r),
        BTreeSet::from([(victim_name.clone(), "gpl_tightened".to_string())])
    );
    let c = &r["changes"][0];
    assert_eq!(
        (c["old"].as_str(), c["new"].as_str()),
        (Some("EXPORT_SYMBOL"), Some("EXPORT_SYMBOL_GPL"))
    );
    assert_eq!(c["breaks"], serde_json::json!([name]), "{c:#}");
    assert!(c["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == &name));
    // Only the proprietary copy: the GPL original of the same name loads on both sides.
    assert_eq!(
        r["broken"].as_array().unwrap().len(),
        1,
        "{:#}",
        r["broken"]
    );
    let b = &r["broken"][0];
    assert_eq!(b["verdict"], "gpl_only");
    assert!(
        b["path"].as_str().unwrap().ends_with("proprietary_copy.ko"),
        "{b:#}"
    );
    assert_eq!(b["tolerated"], false);
    // JUnit: a test case per consumer, the proprietary copy the one failure.
    let mut a = common.clone();
    a.push(p(&bad));
    let i = a.iter().position(|x| x == "json").unwrap();
    a[i] = "junit".into();
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let xml = String::from_utf8(modverify(&a).stdout).unwrap();
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; s = E.fromstring(sys.stdin.read()).find('testsuite'); \
             f = [c for c in s.iter('testcase') if c.find('failure') is not None]; \
             print(s.get('tests'), s.get('failures'), len(f), f[0].get('file'), f[0].find('failure').get('message'))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(xml.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let said = String::from_utf8_lossy(&parsed.stdout);
    let w: Vec<&str> = said.split_whitespace().collect();
    assert!(w.len() == 6, "{said}\n{}", &xml[..xml.len().min(2000)]);
    assert!(w[0].parse::<usize>().unwrap() > 4000, "{said}");
    assert_eq!(&w[1..3], ["1", "1"], "{said}");
    assert!(w[3].ends_with("proprietary_copy.ko"), "{said}");
    assert_eq!(w[4..], ["gpl_only", victim_name.as_str()], "{said}");

    // Tolerated the way Debian and SUSE keep it: the change stays, marked, and exit is 0.
    let debian = tmp.path().join("defines");
    std::fs::write(&debian, "[abi]\nignore-changes:\n module:vmlinux\n").unwrap();
    let suse = tmp.path().join("severities");
    std::fs::write(&suse, format!("{victim_name} PASS\n* FAIL\n")).unwrap();
    for (flag, file, rule) in [
        ("--ignore-changes", &debian, "module:vmlinux".to_string()),
        ("--severities", &suse, format!("{victim_name} PASS")),
    ] {
        let mut a = common.clone();
        a.extend([p(&bad), flag.into(), p(file)]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = modverify(&a);
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(o.status.code(), Some(0), "{flag}: {:#}", r["summary"]);
        let said = r["changes"][0]["tolerated"].as_str().unwrap_or_default();
        assert!(said.ends_with(&rule), "{flag}: {said}");
        assert_eq!(r["broken"][0]["tolerated"], true, "{flag}");
        assert_eq!(r["summary"]["broken_tolerated"], 1, "{flag}");
    }
}

/// OLD and NEW named as installed kernels under one root (as `dpkg -x` of both packages
/// leaves them): a root holding two releases asks which, and `--old-release`/`--new-release`
/// give the same diff as the files named one by one.
#[test]
fn kernels_under_a_root_are_found_by_release() {
    let (old, new) = (previous_kernel("bookworm", "amd64"), debian_kernel());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut releases = Vec::new();
    for d in [&old, &new] {
        let v = std::fs::read_to_string(d.join("abi"))
            .unwrap()
            .trim()
            .to_string();
        for dir in [
            "boot",
            &format!("lib/modules/{v}"),
            &format!("usr/src/linux-headers-{v}"),
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let link = |from: &str, to: &str| {
            std::os::unix::fs::symlink(d.join(from), root.join(to)).unwrap();
        };
        link("vmlinuz", &format!("boot/vmlinuz-{v}"));
        link("System.map", &format!("boot/System.map-{v}"));
        link("modules", &format!("lib/modules/{v}/kernel"));
        link(
            "Module.symvers",
            &format!("usr/src/linux-headers-{v}/Module.symvers"),
        );
        releases.push(v);
    }
    let r = root.to_str().unwrap();
    let o = modverify(&["diff", r, r]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "holds 2 kernels ({}, {}): pick one with --old-release VER",
            releases[0], releases[1]
        )),
        "{}",
        text(&o)
    );
    let o = modverify(&[
        "diff",
        "--format",
        "json",
        "--old-release",
        &releases[0],
        "--new-release",
        &releases[1],
        r,
        r,
    ]);
    let by_root: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {}", text(&o)));
    let (_, by_files) = diff(&old, &new, None, &[]);
    assert_eq!(changes(&by_root), changes(&by_files));
    assert_eq!(broken(&by_root), broken(&by_files));
    assert_eq!(by_root["old"]["release"], releases[0].as_str());
}

/// A non-x86 pair across generations: Debian trixie's riscv64 6.12 (raw Image through its
/// System.map, MODVERSIONS on) to sid's 7.x (`__kflagstab`, MODVERSIONS off): the export
/// changes equal the Module.symvers text diff, MODVERSIONS going off is one kernel-wide change,
/// and the leaf modules diff says break are those check rejects.
#[test]
fn riscv64_trixie_to_sid_equals_a_symvers_text_diff_and_checks_rejections() {
    let old = debian_kernel_of("trixie", "riscv64");
    let new = debian_kernel_of("sid", "riscv64");
    // Debian ships riscv64's System.map as a stub: both tables come from Module.symvers,
    // the modules' own exports from the binaries.
    let p = |d: &Path, f: &str| d.join(f).display().to_string();
    let o = modverify(&[
        "diff",
        "--format",
        "json",
        "--old-symvers",
        &p(&old, "Module.symvers"),
        "--old-modules",
        &p(&old, "modules"),
        "--new-symvers",
        &p(&new, "Module.symvers"),
        "--new-modules",
        &p(&new, "modules"),
    ]);
    let code = o.status.code().unwrap();
    let d: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("diff printed no JSON ({e}): {}", text(&o)));
    assert_eq!(d["old"]["consistent"], true, "{:#}", d["old"]);
    assert_eq!(d["new"]["consistent"], true, "{:#}", d["new"]);
    assert!(
        d["kernel"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["what"] == "modversions" && k["old"] == "on" && k["new"] == "off"),
        "{:#}",
        d["kernel"]
    );
    // Module.symvers carries no vermagic: each kernel's is its own modules', so a module
    // refused for its vermagic alone is counted, and nothing is left unseen.
    assert!(
        d["kernel"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["what"] == "vermagic"),
        "{:#}",
        d["kernel"]
    );
    assert!(d["notes"].is_null(), "{:#}", d["notes"]);
    assert_is_the_symvers_diff_and_checks_judgement(&old, &new, false, code, &d);
}

/// The nightly's export drift (`merge --baseline`), on two real nights of riscv64 6.1: the
/// second with 5.19's modpost and __ctzdi2's prototype rewritten (a kABI change with the same
/// machine code). The drift is exactly the Module.symvers text diff of the two builds; the
/// baseline's modules it says break are exactly those `check` rejects against the second
/// build; each breaking change is a regression (exit 1). A night against itself drifts
/// nothing; a baseline that saved no table says so.
#[test]
fn nightly_export_drift_is_the_symvers_diff_and_checks_rejections() {
    let tmp = tempfile::tempdir().unwrap();
    let night = |name: &str, patches: &[String]| -> (PathBuf, PathBuf) {
        let out = tmp.path().join(name);
        let mut args = vec![
            "run",
            "--arch",
            "riscv64",
            "--static-only",
            "--out",
            out.to_str().unwrap(),
        ];
        for p in patches {
            args.extend(["--patch", p.as_str()]);
        }
        let o = modverify(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let results = out.join("results.json");
        let r: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
        let dir = r["arches"]["riscv64"]["build"]["build_dir"]
            .as_str()
            .unwrap();
        (results, PathBuf::from(dir))
    };
    let (a, a_dir) = night("a", &[]);
    let (b, b_dir) = night(
        "b",
        &[
            patch("modpost-5.19-skip-crc-slot.patch"),
            patch("ctzdi2-prototype-changed.patch"),
        ],
    );
    let merge = |now: &Path, baseline: &Path| -> (i32, Value, String) {
        let merged = tmp.path().join("merged.json");
        let o = modverify(&[
            "merge",
            now.to_str().unwrap(),
            "--baseline",
            baseline.to_str().unwrap(),
            "-o",
            merged.to_str().unwrap(),
        ]);
        let m = serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap();
        (o.status.code().unwrap(), m, text(&o))
    };

    let (code, m, said) = merge(&b, &a);
    let drift = &m["baseline"]["drift"];
    assert_eq!(drift.as_array().unwrap().len(), 1, "{drift:#}");
    let d = &drift[0];
    assert_eq!(d["arch"], "riscv64");
    let expect = symvers_changes(&a_dir.join("Module.symvers"), &b_dir.join("Module.symvers"));
    assert_eq!(changes(d), expect);
    assert!(expect.contains(&("__ctzdi2".to_string(), "crc_changed".to_string())));
    // check's judgement of each of the first night's modules alone, against the second
    // build with its own modules (as a module kept from last night would load tonight).
    let modules = modverify::input::discover(std::slice::from_ref(&a_dir)).unwrap();
    assert!(modules.len() > 20, "{} modules", modules.len());
    let rejected: BTreeSet<String> = modules
        .iter()
        .filter_map(|p| {
            let (_, r, _) = json(&[
                "check",
                "--format",
                "json",
                "--build",
                b_dir.to_str().unwrap(),
                p.to_str().unwrap(),
            ]);
            let m = &r["modules"][0];
            (m["verdict"] != "ok").then(|| m["name"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(rejected, BTreeSet::from(["lzo_compress".to_string()]));
    assert_eq!(broken(d), rejected);
    // Each breaking change is one regression, and the nightly fails.
    let breaking: Vec<&Value> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["breaks"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(
        m["baseline"]["regressions"].as_array().unwrap().len(),
        breaking.len()
    );
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("REGRESSION riscv64 export __ctzdi2 (crc_changed)")
            && said.contains("breaks lzo_compress"),
        "{said}"
    );
    // The README's nightly recipe shows this drift as merge said it (last night's results
    // called a/results.json, as here).
    let here = format!("{}/", tmp.path().display());
    assert_readme_shows("The export drift, the night", &said.replace(&here, ""));
    let merged = tmp.path().join("merged.json");
    for format in ["table", "html"] {
        let o = modverify(&["report", "--format", format, merged.to_str().unwrap()]);
        assert!(
            text(&o).contains("export drift riscv64") && text(&o).contains("__ctzdi2"),
            "{format}: {}",
            text(&o)
        );
    }

    // The same night against itself: nothing drifted.
    let (code, m, said) = merge(&a, &a);
    assert_eq!(code, 0, "{said}");
    assert!(m["baseline"]["drift"].is_null(), "{:#}", m["baseline"]);
    // A baseline from before the table was saved: said, not silently skipped.
    let mut old: Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    old["arches"]["riscv64"]
        .as_object_mut()
        .unwrap()
        .remove("kabi");
    let old_path = tmp.path().join("old.json");
    std::fs::write(&old_path, old.to_string()).unwrap();
    let (_, m, said) = merge(&b, &old_path);
    assert!(
        m["baseline"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("the baseline saved no export table"),
        "{said}"
    );
}
