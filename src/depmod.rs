//! Which file of a module name modprobe loads when a tree holds several, decided as kmod's
//! depmod decides it (kmod `tools/depmod.c`, `depmod_module_is_higher_priority`), so that the
//! others are reported `shadowed` instead of `ok`: the kernel would refuse a second module of
//! one name ("module already loaded", -EEXIST) and modprobe never tries it.
//!
//! The rules, from kmod's source:
//! - The name is the file name up to its first `.`, `-` read as `_` (`foo-bar.ko.xz` and
//!   `foo_bar.ko` are one module).
//! - `override MODULE KVER SUBDIR` (a depmod.d line) makes the file `SUBDIR/MODULE.ko*` win,
//!   for the kernel versions KVER matches (`*`, or a pattern found in the version).
//! - Else the `search` lines, in order, rank the subdirectories of `lib/modules/VERSION`: the
//!   first listed wins, `built-in` stands for every directory not listed. With no `search`
//!   line anywhere, depmod's default is `updates` before everything else. (`extra/` is *not*
//!   ranked above `kernel/` by default: distributions that want it say so in depmod.d.)
//! - Two files of equal rank: depmod keeps the one its directory walk met first, which is
//!   the file system's order; here, the first by path, so that the answer is repeatable.
//!
//! depmod.d is read only where a tree is given as `ROOT/lib/modules/VERSION` (or
//! `ROOT/usr/lib/modules/VERSION`): from ROOT's `etc/depmod.d`, `run/depmod.d`,
//! `usr/local/lib/depmod.d`, `usr/lib/depmod.d` and `lib/depmod.d`, a file name in an earlier
//! directory hiding the same name in a later one, the files read in name order.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A module file that another file of the same name takes precedence over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    pub path: PathBuf,
    /// The file modprobe loads instead.
    pub by: PathBuf,
    /// Why that one: the rule, and the line of configuration it comes from.
    pub why: String,
}

/// A module name as the kernel and modprobe compare it: `-` and `_` are one character. The
/// one home of that rule.
pub fn normalise(name: &str) -> String {
    name.replace('-', "_")
}

/// depmod's name for a module file.
pub fn name(p: &Path) -> String {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    normalise(n.split('.').next().unwrap_or(""))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Search {
    Dir(String),
    BuiltIn,
}

/// The configuration that applies to one given tree.
#[derive(Debug, Default)]
struct Config {
    /// (entries, where they were read), in the order listed.
    search: Vec<(Search, String)>,
    /// (module name, normalised; subdirectory; where it was read).
    overrides: Vec<(String, String, String)>,
}

impl Config {
    /// depmod.d where `root` is `ROOT/lib/modules/VERSION`; depmod's defaults elsewhere.
    fn for_tree(root: &Path) -> Config {
        let mut c = Config::default();
        if let Some((sysroot, release)) = sysroot_of(root) {
            for (file, text) in config_files(&sysroot) {
                c.parse(&text, &file, &release);
            }
        }
        if c.search.is_empty() {
            c.search.push((
                Search::Dir("updates".into()),
                "depmod's default search order (updates, then the rest)".into(),
            ));
        }
        c
    }

    fn parse(&mut self, text: &str, file: &Path, release: &str) {
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = format!("{}:{}: {}", file.display(), i + 1, words.join(" "));
            match words.as_slice() {
                ["search", dirs @ ..] => {
                    for d in dirs {
                        let e = match *d {
                            "built-in" => Search::BuiltIn,
                            // Directories outside the tree: not in what is checked here.
                            "external" => continue,
                            d => Search::Dir(d.trim_matches('/').to_string()),
                        };
                        self.search.push((e, at.clone()));
                    }
                }
                ["override", module, kver, subdir] if version_matches(kver, release) => {
                    self.overrides.push((
                        normalise(module),
                        subdir.trim_matches('/').to_string(),
                        at.clone(),
                    ));
                }
                _ => {}
            }
        }
    }

    /// The rank of a path relative to the tree (lower wins) and the line that gave it.
    fn rank(&self, rel: &Path) -> (usize, Option<&str>) {
        let builtin = self.search.iter().position(|(e, _)| *e == Search::BuiltIn);
        for (i, (e, at)) in self.search.iter().enumerate() {
            if let Search::Dir(d) = e {
                if rel.starts_with(d) && rel != Path::new(d) {
                    return (i, Some(at));
                }
            }
        }
        match builtin {
            Some(i) => (i, Some(&self.search[i].1)),
            None => (self.search.len(), None),
        }
    }

    fn override_for(&self, rel: &Path) -> Option<&str> {
        let dir = rel.parent().unwrap_or(Path::new(""));
        let module = name(rel);
        self.overrides
            .iter()
            .find(|(m, sub, _)| *m == module && dir == Path::new(sub))
            .map(|(_, _, at)| at.as_str())
    }
}

/// kmod matches KVER as a POSIX regular expression found anywhere in the version; `*` alone
/// is every version. Here the subset depmod.d files use: literal characters, `.`, `*` after
/// a character, `^` and `$` (Pike's matcher).
fn version_matches(kver: &str, release: &str) -> bool {
    if kver == "*" {
        return true;
    }
    let re: Vec<char> = kver.chars().collect();
    let text: Vec<char> = release.chars().collect();
    if let Some(rest) = re.strip_prefix(&['^']) {
        return match_here(rest, &text);
    }
    (0..=text.len()).any(|i| match_here(&re, &text[i..]))
}

fn match_here(re: &[char], text: &[char]) -> bool {
    match re {
        [] => true,
        [c, '*', rest @ ..] => {
            let mut i = 0;
            loop {
                if match_here(rest, &text[i..]) {
                    return true;
                }
                if i < text.len() && (*c == '.' || text[i] == *c) {
                    i += 1;
                } else {
                    return false;
                }
            }
        }
        ['$'] => text.is_empty(),
        [c, rest @ ..] => {
            !text.is_empty() && (*c == '.' || text[0] == *c) && match_here(rest, &text[1..])
        }
    }
}

/// `ROOT/lib/modules/VERSION` or `ROOT/usr/lib/modules/VERSION` → (ROOT, VERSION).
fn sysroot_of(tree: &Path) -> Option<(PathBuf, String)> {
    let release = tree.file_name()?.to_str()?.to_string();
    let modules = tree.parent()?;
    if modules.file_name()? != "modules" {
        return None;
    }
    let lib = modules.parent()?;
    if lib.file_name()? != "lib" {
        return None;
    }
    let mut root = lib.parent()?;
    if root.file_name().is_some_and(|n| n == "usr") {
        root = root.parent()?;
    }
    Some((root.to_path_buf(), release))
}

/// ROOT's depmod.d files, in the order depmod reads them.
fn config_files(root: &Path) -> Vec<(PathBuf, String)> {
    const DIRS: [&str; 5] = [
        "etc/depmod.d",
        "run/depmod.d",
        "usr/local/lib/depmod.d",
        "usr/lib/depmod.d",
        "lib/depmod.d",
    ];
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in DIRS {
        let Ok(rd) = std::fs::read_dir(root.join(d)) else {
            continue;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') || !n.ends_with(".conf") {
                continue;
            }
            by_name.entry(n).or_insert_with(|| e.path());
        }
    }
    by_name
        .into_values()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}

/// `files` split as modprobe would use them: the ones it loads, and the shadowed rest.
pub fn pick(trees: &[PathBuf], files: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<Shadowed>) {
    let shadowed = shadowed(trees, &files);
    let hidden: std::collections::HashSet<&Path> =
        shadowed.iter().map(|s| s.path.as_path()).collect();
    let kept = files
        .iter()
        .filter(|p| !hidden.contains(p.as_path()))
        .cloned()
        .collect();
    (kept, shadowed)
}

/// The files among `files` that another file of the same module name takes precedence over.
/// `trees` are the directories the files were found under (the paths a user gave); a file
/// named directly competes as a tree of its own (it is not under a subdirectory).
pub fn shadowed(trees: &[PathBuf], files: &[PathBuf]) -> Vec<Shadowed> {
    let configs: Vec<(&PathBuf, Config)> = trees
        .iter()
        .filter(|t| t.is_dir())
        .map(|t| (t, Config::for_tree(t)))
        .collect();
    let mut groups: BTreeMap<String, Vec<&PathBuf>> = BTreeMap::new();
    for f in files {
        groups.entry(name(f)).or_default().push(f);
    }
    let mut out = Vec::new();
    for (_, mut group) in groups {
        if group.len() < 2 {
            continue;
        }
        group.sort();
        // (overridden, rank, why) per file; the least wins, the first by path on a tie.
        let ranked: Vec<(bool, usize, String)> = group
            .iter()
            .map(|f| {
                let Some((tree, c)) = configs.iter().find(|(t, _)| f.starts_with(t)) else {
                    return (false, usize::MAX, "named directly".to_string());
                };
                let rel = f.strip_prefix(tree).unwrap_or(f);
                if let Some(at) = c.override_for(rel) {
                    return (true, 0, format!("an override ({at})"));
                }
                let (rank, at) = c.rank(rel);
                let why = match at {
                    Some(at) => format!("the search order ({at})"),
                    None => "the search order (the rest of the tree comes last)".to_string(),
                };
                (false, rank, why)
            })
            .collect();
        let best = (0..group.len())
            .min_by_key(|&i| (!ranked[i].0, ranked[i].1, i))
            .expect("two or more");
        for (i, f) in group.iter().enumerate() {
            if i == best {
                continue;
            }
            let why = if ranked[i].0 == ranked[best].0 && ranked[i].1 == ranked[best].1 {
                "both rank the same, and depmod keeps the first it meets (here: the first by path)"
                    .to_string()
            } else {
                format!("depmod takes it first by {}", ranked[best].2)
            };
            out.push(Shadowed {
                path: (*f).clone(),
                by: group[best].clone(),
                why,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One name for a file everywhere: depmod's (up to the first `.`, `-` as `_`), which is
    /// also the kernel's fallback name in the check.
    #[test]
    fn a_files_module_name_is_depmods_everywhere() {
        for (file, want) in [
            ("kernel/lib/zlib_deflate.ko", "zlib_deflate"),
            ("snd-hda-intel.ko.xz", "snd_hda_intel"),
            ("foo.bar.ko.zst", "foo"),
            ("crc-itu-t.ko.gz", "crc_itu_t"),
        ] {
            assert_eq!(name(Path::new(file)), want, "{file}");
            assert_eq!(crate::input::stem(Path::new(file)), want, "{file}");
        }
    }

    fn tree(
        files: &[&str],
        conf: Option<(&str, &str)>,
    ) -> (tempfile::TempDir, PathBuf, Vec<PathBuf>) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("lib/modules/6.1.0-9-amd64");
        let mut v = Vec::new();
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"").unwrap();
            v.push(p);
        }
        if let Some((name, text)) = conf {
            let d = t.path().join("etc/depmod.d");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), text).unwrap();
        }
        (t, root, v)
    }

    fn losers(root: &Path, files: &[PathBuf]) -> Vec<(String, String)> {
        shadowed(&[root.to_path_buf()], files)
            .into_iter()
            .map(|s| {
                (
                    s.path.strip_prefix(root).unwrap().display().to_string(),
                    s.by.strip_prefix(root).unwrap().display().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn updates_wins_by_default_and_extra_ranks_with_kernel() {
        let (_t, root, files) = tree(
            &[
                "kernel/lib/crc7.ko",
                "updates/dkms/crc7.ko.xz",
                "extra/crc8.ko",
                "kernel/lib/crc8.ko",
            ],
            None,
        );
        assert_eq!(
            losers(&root, &files),
            vec![
                (
                    "kernel/lib/crc7.ko".into(),
                    "updates/dkms/crc7.ko.xz".into()
                ),
                // Equal rank: the first by path.
                ("kernel/lib/crc8.ko".into(), "extra/crc8.ko".into()),
            ]
        );
    }

    #[test]
    fn search_lines_and_overrides_from_the_roots_depmod_d() {
        let (_t, root, files) = tree(
            &["kernel/lib/crc7.ko", "updates/crc7.ko", "extra/crc7.ko", "kernel/lib/crc_itu_t.ko", "updates/crc-itu-t.ko"],
            Some((
                "vendor.conf",
                "# ours first\nsearch extra updates built-in\noverride crc_itu_t 6.1.0-.* kernel/lib\n",
            )),
        );
        let l = losers(&root, &files);
        assert!(
            l.contains(&("updates/crc7.ko".into(), "extra/crc7.ko".into())),
            "{l:?}"
        );
        assert!(
            l.contains(&("kernel/lib/crc7.ko".into(), "extra/crc7.ko".into())),
            "{l:?}"
        );
        assert!(
            l.contains(&(
                "updates/crc-itu-t.ko".into(),
                "kernel/lib/crc_itu_t.ko".into()
            )),
            "{l:?}"
        );
        let why = shadowed(std::slice::from_ref(&root), &files)
            .into_iter()
            .find(|s| s.path.ends_with("updates/crc7.ko"))
            .unwrap()
            .why;
        assert!(
            why.contains("vendor.conf:2: search extra updates built-in"),
            "{why}"
        );
    }

    #[test]
    fn versions_and_roots() {
        assert!(version_matches("*", "6.1.0-9-amd64"));
        assert!(version_matches("6.1.0-.*", "6.1.0-9-amd64"));
        assert!(version_matches("6.1", "6.1.0-9-amd64"));
        assert!(!version_matches("6.12", "6.1.0-9-amd64"));
        assert_eq!(
            sysroot_of(Path::new("/srv/root/usr/lib/modules/7.2.0-1-riscv64")),
            Some((PathBuf::from("/srv/root"), "7.2.0-1-riscv64".into()))
        );
        assert_eq!(sysroot_of(Path::new("/tmp/mods")), None);
        assert_eq!(name(Path::new("a/foo-bar.ko.xz")), "foo_bar");
    }
}
