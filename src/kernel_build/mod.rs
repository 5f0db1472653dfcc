//! Cross-builds a kernel and its modules for one arch descriptor: source → config (base or
//! the user's .config, fragments, olddefconfig, dropped-option check) → make → manifest.
//! Emits events for progress; never prints.
pub mod config;
pub mod manifest;
pub mod modpost;
pub mod source;
pub mod tree_view;

use crate::arch::ArchDescriptor;
use crate::failure::FailureKind;
use crate::proc::{self, Ended, Limits};
pub use config::{Dropped, Fragment};
pub use manifest::{Artifacts, BuildManifest, BuildStatus, FinishedBuild};
pub use modpost::ModpostFinding;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{what} is missing: install Debian's {package} (or {hint})", hint = crate::host::INSTALL_HINT)]
    Missing { what: String, package: String },
    #[error("{0}")]
    BadInput(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` failed:\n{output}")]
    Tool { cmd: String, output: String },
    #[error("{arch}: cannot build: {reason}")]
    Unsupported { arch: String, reason: String },
    #[error("configuration lost options modverify needs:\n  {}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n  "))]
    EssentialDropped(Vec<Dropped>),
    #[error("{}", describe_make(.step, .ended, .log, .errors, .tail))]
    Make {
        step: String,
        ended: Ended,
        log: PathBuf,
        /// The compiler's, linker's and modpost's error lines, in the order make printed
        /// them (the cause; make's own "Error 2" lines are not among them).
        errors: Vec<String>,
        tail: String,
    },
    #[error("interrupted; partial build left in {0}")]
    Interrupted(PathBuf),
    #[error(transparent)]
    Plugin(#[from] crate::compiler_plugin::PluginError),
    #[error(transparent)]
    CrossGcc(#[from] crate::cross_gcc::CrossGccError),
}

/// A failed make step for people: the tools' error lines first (the cause: the interleaved
/// `-j` output after them is not), then the log's tail.
fn describe_make(step: &str, ended: &Ended, log: &Path, errors: &[String], tail: &str) -> String {
    const SHOWN: usize = 10;
    let mut s = format!("make {step} {ended}");
    match errors {
        [] => {}
        [one] => s.push_str(&format!(": {one}\n")),
        [first, ..] => {
            s.push_str(&format!(": {first}\nerrors ({}):", errors.len()));
            for e in errors.iter().take(SHOWN) {
                s.push_str("\n  ");
                s.push_str(e);
            }
            if errors.len() > SHOWN {
                s.push_str(&format!("\n  … {} more in the log", errors.len() - SHOWN));
            }
            s.push('\n');
        }
    }
    if errors.is_empty() {
        s.push_str("; ");
    }
    s.push_str(&format!("last lines of {}:\n{tail}", log.display()));
    s
}

/// Whether a line of make's output is a tool's error: the compiler's (`FILE:LINE[:COL]:
/// error:` and `fatal error:`), the linker's (`undefined reference to`, `ld: … error`,
/// `multiple definition of`) or modpost's (`ERROR: modpost:`). make's own `*** […] Error N`
/// lines only say that something failed.
pub fn is_error_line(line: &str) -> bool {
    let l = line.trim();
    if l.starts_with("make") && l.contains("***") {
        return false;
    }
    l.contains(": error: ")
        || l.contains(": fatal error: ")
        || l.starts_with("ERROR: modpost:")
        || l.contains("undefined reference to `")
        || l.contains(": multiple definition of `")
        || (l.contains("ld: ") && l.contains(" error"))
}

impl BuildError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        BuildError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    /// A file the user named (`--patch`, `--fragment`, `--config`) that cannot be read: a
    /// missing or unreadable one is a mistake in the request, named with the option.
    pub fn named(option: &str, path: &Path, source: std::io::Error) -> Self {
        match FailureKind::of_io(&source) {
            FailureKind::BadInput => {
                BuildError::BadInput(format!("{option} {}: {source}", path.display()))
            }
            _ => BuildError::io(path, source),
        }
    }

    /// The exit status this error means.
    pub fn kind(&self) -> FailureKind {
        match self {
            BuildError::BadInput(_) | BuildError::Unsupported { .. } => FailureKind::BadInput,
            BuildError::Missing { .. } | BuildError::Spawn { .. } | BuildError::Io { .. } => {
                FailureKind::Infra
            }
            BuildError::Interrupted(_) => FailureKind::Interrupted,
            // The descriptor's plugin source does not compile: not a finding about the tree.
            BuildError::Plugin(crate::compiler_plugin::PluginError::Tool { .. }) => {
                FailureKind::BadInput
            }
            BuildError::Plugin(_) => FailureKind::Infra,
            BuildError::CrossGcc(e) => e.kind(),
            // A fragment line that turned off what modverify needs (CONFIG_MODULES=n) is a
            // mistake in the request; a tree that loses it by itself is a finding.
            BuildError::EssentialDropped(d) if d.iter().any(|d| !d.caused_by.is_empty()) => {
                FailureKind::BadInput
            }
            BuildError::Tool { .. } | BuildError::EssentialDropped(_) | BuildError::Make { .. } => {
                FailureKind::BuildFailed
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseConfig {
    Tinyconfig,
    Defconfig,
    Allmodconfig,
}

impl BaseConfig {
    fn target(self) -> &'static str {
        match self {
            BaseConfig::Tinyconfig => "tinyconfig",
            BaseConfig::Defconfig => "defconfig",
            BaseConfig::Allmodconfig => "allmodconfig",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `None`: Debian's linux-source-6.1.
    pub source: Option<PathBuf>,
    /// The user's own `.config` (plain or gzip, e.g. from /proc/config.gz).
    pub config: Option<PathBuf>,
    pub base: BaseConfig,
    pub fragments: Vec<PathBuf>,
    pub patches: Vec<PathBuf>,
    /// Parent of the per-arch, per-configuration build directories.
    pub out: Option<PathBuf>,
    pub jobs: usize,
    /// Stop after configuring (no make of vmlinux/modules).
    pub config_only: bool,
    /// Leave out modverify's default module set.
    pub no_default_modules: bool,
}

/// What a build reports while it runs.
pub trait BuildEvents: Sync {
    fn phase(&self, phase: &str);
    /// Objects compiled so far, and the expected total when a previous build told us.
    fn progress(&self, done: u64, total: Option<u64>);
    fn note(&self, msg: &str);
}

pub use crate::files::{cache_dir, short_hash};

/// Holds an exclusive lock on a build directory for as long as it lives.
/// The lock file of a build directory (and of the source cache): exclusive while a build
/// writes there, shared while a reader uses a finished build.
pub(crate) const LOCK: &str = ".modverify.lock";

struct DirLock {
    _held: std::fs::File,
}

impl DirLock {
    /// Waits for any other modverify building in `dir` (a second build of the same tree and
    /// configuration waits rather than corrupting the first).
    fn take(dir: &Path, events: &dyn BuildEvents) -> Result<Self, BuildError> {
        let p = dir.join(LOCK);
        let held = crate::files::lock_exclusive(&p, &mut || {
            events.note(&format!(
                "waiting for another modverify building in or reading {}",
                dir.display()
            ))
        })
        .map_err(|e| match e {
            crate::files::LockError::Io(e) => BuildError::io(&p, e),
            crate::files::LockError::Interrupted => BuildError::Interrupted(dir.to_path_buf()),
        })?;
        Ok(DirLock { _held: held })
    }
}

/// The make invocation for one arch and build directory.
pub struct Make<'a> {
    pub src: PathBuf,
    pub out: PathBuf,
    pub arch: &'a ArchDescriptor,
    pub jobs: usize,
    pub ccache: bool,
    /// `-fplugin=…` for every compiler run (the arch's `build.gcc_plugin`).
    pub plugin: Option<String>,
    /// Put in front of PATH: where the compiler modverify built for this arch is
    /// (`build.cross_gcc`); the target's binutils stay Debian's, found on PATH.
    pub compiler_dir: Option<PathBuf>,
}

impl Make<'_> {
    pub fn command(&self, targets: &[&str]) -> Command {
        let mut c = Command::new("make");
        c.arg("-C")
            .arg(&self.src)
            .arg(format!("O={}", self.out.display()));
        c.arg(format!("ARCH={}", self.arch.kernel_arch));
        c.arg(format!("CROSS_COMPILE={}", self.arch.cross_compile));
        if let Some(dir) = &self.compiler_dir {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let dirs = std::iter::once(dir.clone()).chain(std::env::split_paths(&path));
            if let Ok(joined) = std::env::join_paths(dirs) {
                c.env("PATH", joined);
            }
        }
        // The compiler modverify built is named in full, so the make line recorded in
        // build.json runs as it stands; PATH (above) covers a Makefile that calls
        // `$(CROSS_COMPILE)gcc` itself.
        let cc = cc(self.arch, self.compiler_dir.as_deref())
            .display()
            .to_string();
        if !self.ccache && self.compiler_dir.is_some() {
            c.arg(format!("CC={cc}"));
        }
        if self.ccache {
            c.arg(format!("CC=ccache {cc}"));
            // kbuild's host programs (fixdep, kconfig, genksyms, modpost, …) are built again
            // in every build directory; cached, a second directory of the same tree links
            // them from the cache instead of compiling them.
            c.arg("HOSTCC=ccache gcc");
        }
        // modpost's "undefined!" is an error in 6.1 and would stop the build; a verifier
        // wants the build to finish so the consequence is seen (and the line is kept as a
        // finding: see modpost.rs).
        c.arg("KBUILD_MODPOST_WARN=1");
        // KCFLAGS reaches every C file kbuild compiles, the decompressor's included; a
        // user's own KCFLAGS (from the environment) is kept in front of the plugin.
        if let Some(p) = &self.plugin {
            let user = std::env::var("KCFLAGS").unwrap_or_default();
            c.arg(format!("KCFLAGS={}", format!("{user} {p}").trim()));
        }
        c.arg(format!("-j{}", self.jobs));
        c.args(targets);
        c
    }
}

/// State shared by the make steps of one build: the log, progress and modpost findings.
struct Steps<'a> {
    make: Make<'a>,
    /// The build directory as users name it (make's `O=` may be its real path in a view).
    out: PathBuf,
    log: std::fs::File,
    log_path: PathBuf,
    events: &'a dyn BuildEvents,
    compiled: u64,
    modpost: Vec<ModpostFinding>,
    saw_modpost: bool,
}

impl Steps<'_> {
    /// Runs one make step, logging it; parses progress and modpost findings.
    fn make(&mut self, targets: &[&str], expected: Option<u64>) -> Result<(), BuildError> {
        use std::io::Write;
        let cmd = self.make.command(targets);
        let _ = writeln!(self.log, "$ {}", proc::command_line(&cmd));
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut errors: Vec<String> = Vec::new();
        let (events, compiled, modpost, saw_modpost) = (
            self.events,
            &mut self.compiled,
            &mut self.modpost,
            &mut self.saw_modpost,
        );
        let mut on_line = |l: &str| {
            if is_error_line(l) && errors.len() < 1000 {
                errors.push(l.trim().to_string());
            }
            if tail.len() == 30 {
                tail.pop_front();
            }
            tail.push_back(l.to_string());
            let t = l.trim_start();
            if t.starts_with("CC ") || t.starts_with("AS ") || t.starts_with("CC [M]") {
                *compiled += 1;
                if *compiled % 8 == 0 {
                    events.progress(*compiled, expected);
                }
            } else if t.starts_with("LD      vmlinux") || t.starts_with("LD      .tmp_vmlinux") {
                events.phase("link vmlinux");
            } else if t.starts_with("MODPOST") {
                *saw_modpost = true;
                events.phase("modpost");
            } else if t.starts_with("LD [M]") {
                events.phase("link modules");
            }
            if let Some(f) = modpost::parse(l) {
                modpost.push(f);
            }
        };
        let ended =
            proc::run(cmd, Some(&mut self.log), &mut on_line, Limits::default()).map_err(|e| {
                BuildError::Spawn {
                    cmd: "make".into(),
                    source: e,
                }
            })?;
        match ended {
            Ended::Exited(0) => Ok(()),
            Ended::Interrupted => Err(BuildError::Interrupted(self.out.clone())),
            e => Err(BuildError::Make {
                step: targets.join(" "),
                ended: e,
                log: self.log_path.clone(),
                errors,
                tail: tail
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("  {l}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            }),
        }
    }
}

/// The C compiler for an arch: in `compiler_dir` where modverify built it (ia64's), else
/// `CROSS_COMPILE` + `gcc` as PATH finds it.
fn cc(arch: &ArchDescriptor, compiler_dir: Option<&Path>) -> PathBuf {
    let name = format!("{}gcc", arch.cross_compile);
    match compiler_dir {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

/// Checks the cross toolchain and host tools before anything runs (`compiler_dir`: where
/// the compiler modverify built is, from [`crate::cross_gcc::ensure`]).
fn check_tools(arch: &ArchDescriptor, compiler_dir: Option<&Path>) -> Result<(), BuildError> {
    let cc = cc(arch, compiler_dir);
    let found = match compiler_dir {
        Some(_) => cc.is_file(),
        None => crate::host::on_path(&cc.to_string_lossy()),
    };
    if !found {
        return Err(BuildError::Missing {
            what: cc.display().to_string(),
            package: arch.toolchain_packages.join(" "),
        });
    }
    for (bin, pkg) in [
        ("make", "make"),
        ("flex", "flex"),
        ("bison", "bison"),
        ("bc", "bc"),
        ("patch", "patch"),
    ] {
        if !crate::host::on_path(bin) {
            return Err(BuildError::Missing {
                what: bin.into(),
                package: pkg.into(),
            });
        }
    }
    Ok(())
}

fn toolchain_version(arch: &ArchDescriptor, compiler_dir: Option<&Path>) -> String {
    let mut gcc = Command::new(cc(arch, compiler_dir));
    gcc.arg("--version");
    proc::stdout_if_ok(gcc)
        .and_then(|o| o.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Builds (or incrementally rebuilds) one kernel; returns its manifest.
pub fn run_build(
    opts: &BuildOptions,
    arch: &ArchDescriptor,
    events: &dyn BuildEvents,
) -> Result<BuildManifest, BuildError> {
    let started = Instant::now();
    let facts = match (&arch.build, &arch.unsupported.build) {
        (Some(b), _) => b,
        (None, reason) => {
            return Err(BuildError::Unsupported {
                arch: arch.name.clone(),
                reason: reason
                    .clone()
                    .unwrap_or_else(|| "the descriptor has no `build` section".into()),
            })
        }
    };
    let cache = cache_dir();
    let mut note = |m: &str| events.note(m);
    // Unpacking and patching write into the shared cache: one process at a time.
    let src_dir = cache.join("src");
    std::fs::create_dir_all(&src_dir).map_err(|e| BuildError::io(&src_dir, e))?;
    let src_lock = DirLock::take(&src_dir, events)?;
    let base_src = match &opts.source {
        Some(d) => source::resolve(d, &cache, &mut note)?,
        None => source::default_source(&cache, &mut note)?,
    };
    let src = if opts.patches.is_empty() {
        base_src.clone()
    } else {
        source::patched(&base_src, &opts.patches, &cache, &mut note)?
    };
    drop(src_lock);
    if let Some(need) = &facts.tree_must_have {
        if !src.join(&need.path).exists() {
            return Err(BuildError::BadInput(format!(
                "{}: the tree has no {}, so it cannot be built for {}: {}",
                base_src.display(),
                need.path,
                arch.name,
                need.why
            )));
        }
    }
    // A compiler Debian does not ship is built once, before anything needs it (after the
    // tree is known to have this arch: a refused tree must not cost a compiler build).
    let compiler_dir = crate::cross_gcc::ensure(arch, &cache, &mut note)?;
    check_tools(arch, compiler_dir.as_deref())?;
    let plugin = crate::compiler_plugin::flag(arch, &cache)?;

    // Fragments, in order: modverify's needs, the arch's, the default modules, the user's.
    // modverify's own lines are fitted to the tree: an option it never had is left out
    // (noted), and the default module set is chosen from what the tree offers.
    // Only this arch's arch/ directory: SRCARCH, as the descriptor's image path names it.
    let srcarch = facts
        .image
        .strip_prefix("arch/")
        .and_then(|r| r.split('/').next());
    let kconfig = config::Kconfig::read(&src, srcarch);
    let descriptor = format!("arches/{}.yaml", arch.name);
    let mut left_out = Vec::new();
    let own = |origin: String, lines: Vec<String>, left_out: &mut Vec<config::LeftOut>| {
        let (lines, absent) = config::in_tree(&kconfig, &lines);
        left_out.extend(absent);
        Fragment { origin, lines }
    };
    let mut fragments = vec![own(
        "modverify required".into(),
        config::REQUIRED.iter().map(|s| s.to_string()).collect(),
        &mut left_out,
    )];
    fragments.push(own(descriptor.clone(), facts.config.clone(), &mut left_out));
    let guest = own(
        format!("{descriptor} (guest_config)"),
        facts.guest_config.iter().map(|n| n.line.clone()).collect(),
        &mut left_out,
    );
    let guest_essential: Vec<String> = guest
        .lines
        .iter()
        .filter_map(|l| config::parse_line(l).map(|(k, _)| k.to_string()))
        .collect();
    fragments.push(guest);
    let module_set = (!opts.no_default_modules).then(|| config::default_modules(&kconfig));
    if let Some(set) = &module_set {
        fragments.push(Fragment {
            origin: "modverify default modules".into(),
            lines: set.lines.clone(),
        });
        for l in &set.left_out {
            events.note(&format!(
                "default modules: {} left out: {}",
                l.option, l.reason
            ));
        }
        if !set.added.is_empty() {
            events.note(&format!(
                "default modules: {} added in their place: {}",
                set.added.len(),
                set.added
                    .iter()
                    .map(|l| l.trim_start_matches("CONFIG_").trim_end_matches("=m"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    for l in &left_out {
        events.note(&format!("{} left out: {}", l.option, l.reason));
    }
    let tinyconfig_traps = if opts.config.is_none() && opts.base == BaseConfig::Tinyconfig {
        config::tinyconfig_traps(&kconfig, &facts.guest_config, &descriptor)
    } else {
        Vec::new()
    };
    for w in &tinyconfig_traps {
        events.note(&format!("warning: {w}"));
    }
    for f in &opts.fragments {
        let text = std::fs::read_to_string(f).map_err(|e| BuildError::named("--fragment", f, e))?;
        fragments.push(Fragment {
            origin: f.display().to_string(),
            lines: config::fragment_lines(f, &text).map_err(BuildError::BadInput)?,
        });
    }
    let user_config = match &opts.config {
        Some(p) => {
            let raw = std::fs::read(p).map_err(|e| BuildError::named("--config", p, e))?;
            let text = crate::input::decompress(raw)
                .map_err(|e| BuildError::BadInput(format!("{}: {e}", p.display())))?;
            Some(String::from_utf8_lossy(&text).into_owned())
        }
        None => None,
    };
    let key = format!(
        "{}\n{}\n{:?}\n{}\n{:?}{}",
        src.display(),
        user_config.as_deref().unwrap_or(""),
        opts.base,
        fragments
            .iter()
            .flat_map(|f| f.lines.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n"),
        opts.patches,
        // A plugin changes the code made: its own build directory (none: the key as before).
        plugin
            .as_ref()
            .map(|p| format!("\n{p}"))
            .unwrap_or_default()
    );
    let label = if user_config.is_some() {
        "config".to_string()
    } else {
        opts.base.target().to_string()
    };
    let out_parent = opts.out.clone().unwrap_or_else(|| cache.join("builds"));
    std::fs::create_dir_all(&out_parent).map_err(|e| BuildError::io(&out_parent, e))?;
    let out_parent = out_parent
        .canonicalize()
        .map_err(|e| BuildError::io(&out_parent, e))?;
    let out = out_parent.join(format!("{}-{label}-{}", arch.name, short_hash(&key)));
    // A new build directory starts empty, never from a copy of a sibling's objects: Kbuild's
    // incremental rebuild does not see every input of a symbol's CRC (asm-prototypes.h is no
    // dependency of the .S object that exports), so a patched build started from the plain
    // one's objects kept their CRCs and hid the 5.19 regression on alpha, arm64 and riscv64
    // (tried at bb0c936; tests/regressions.rs caught it on a cold cache).
    let view = tree_view::locate(&src, &out)?;
    let _lock = DirLock::take(&view.objtree, events)?;
    view.link()?;
    let log_path = out.join("build.log");
    let log = std::fs::File::create(&log_path).map_err(|e| BuildError::io(&log_path, e))?;
    let make = Make {
        src: view.src.clone(),
        out: view.objtree.clone(),
        arch,
        jobs: opts.jobs.max(1),
        ccache: crate::host::on_path("ccache"),
        plugin,
        compiler_dir,
    };
    if make.ccache && std::env::var_os("CCACHE_DIR").is_none() {
        std::env::set_var("CCACHE_DIR", cache.join("ccache"));
    }
    let full_targets: Vec<&str> = facts.targets.iter().map(String::as_str).collect();
    let mut manifest = BuildManifest::start(
        arch,
        &src,
        &base_src,
        opts,
        &out,
        &log_path,
        &fragments,
        toolchain_version(arch, make.compiler_dir.as_deref()),
        proc::command_line(&make.command(&full_targets)),
        make.ccache,
    );
    manifest.config.left_out = left_out;
    manifest.config.module_set = module_set;
    manifest.config.warnings = tinyconfig_traps;
    manifest.write(&out)?;
    let mut steps = Steps {
        make,
        out: out.clone(),
        log,
        log_path: log_path.clone(),
        events,
        compiled: 0,
        modpost: Vec::new(),
        saw_modpost: false,
    };

    let result = (|| -> Result<(), BuildError> {
        // Configure only when the wanted configuration changed: an unchanged .config keeps
        // the no-change rebuild down to make's own time.
        events.phase("config");
        let t = Instant::now();
        let wanted_path = out.join(".modverify-config-key");
        let configured = std::fs::read_to_string(&wanted_path).is_ok_and(|k| k == short_hash(&key))
            && out.join(".config").exists();
        let cfg_path = out.join(".config");
        if !configured {
            match &user_config {
                Some(text) => {
                    std::fs::write(&cfg_path, text).map_err(|e| BuildError::io(&cfg_path, e))?
                }
                None => steps.make(&[opts.base.target()], None)?,
            }
            let cfg =
                std::fs::read_to_string(&cfg_path).map_err(|e| BuildError::io(&cfg_path, e))?;
            std::fs::write(&cfg_path, config::apply_fragments(&cfg, &fragments))
                .map_err(|e| BuildError::io(&cfg_path, e))?;
            steps.make(&["olddefconfig"], None)?;
        }
        let final_cfg =
            std::fs::read_to_string(&cfg_path).map_err(|e| BuildError::io(&cfg_path, e))?;
        manifest.config.dropped =
            config::dropped(&final_cfg, &fragments, &kconfig, &guest_essential);
        manifest.durations.config_s = t.elapsed().as_secs_f64();
        for d in &manifest.config.dropped {
            events.note(&format!("dropped by Kconfig: {d}"));
        }
        let essential: Vec<Dropped> = manifest
            .config
            .dropped
            .iter()
            .filter(|d| d.essential)
            .cloned()
            .collect();
        if !essential.is_empty() {
            return Err(BuildError::EssentialDropped(essential));
        }
        std::fs::write(&wanted_path, short_hash(&key))
            .map_err(|e| BuildError::io(&wanted_path, e))?;
        if opts.config_only {
            return Ok(());
        }
        events.phase("compile");
        let t = Instant::now();
        let stats = out.join(".modverify-objects");
        let expected = std::fs::read_to_string(&stats)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        steps.compiled = 0;
        steps.modpost.clear();
        steps.make(&full_targets, expected)?;
        let compiled = steps.compiled;
        if compiled > 0 && expected.is_none_or(|e| compiled > e / 2) {
            let _ = std::fs::write(&stats, compiled.to_string());
        }
        manifest.durations.build_s = t.elapsed().as_secs_f64();
        manifest.compiled_objects = compiled;
        // modpost only runs when something changed; its findings are kept beside the build
        // so a no-change rebuild still reports them.
        let saved = out.join("modpost-findings.json");
        if steps.saw_modpost {
            crate::files::write_atomic(&saved, &steps.modpost)
                .map_err(|e| BuildError::io(&saved, e))?;
            manifest.modpost = std::mem::take(&mut steps.modpost);
        } else if let Ok(text) = std::fs::read_to_string(&saved) {
            manifest.modpost = serde_json::from_str(&text).unwrap_or_default();
        }
        manifest.artifacts = Some(Artifacts::collect(&out, facts)?);
        Ok(())
    })();
    manifest.durations.total_s = started.elapsed().as_secs_f64();
    manifest.status = match &result {
        Ok(()) => BuildStatus::Ok,
        Err(BuildError::Interrupted(_)) => BuildStatus::Interrupted,
        Err(_) => BuildStatus::Failed,
    };
    if let Err(e) = &result {
        manifest.error = Some(e.to_string());
    }
    manifest.write(&out)?;
    result.map(|()| manifest)
}

crate::failure::classified_by_own_kind!(BuildError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_make_names_the_tools_errors_not_makes() {
        for (line, error) in [
            ("arch/alpha/mm/fault.c:242:9: error: implicit declaration of function 'show_signal_msg' [-Werror=implicit-function-declaration]", true),
            ("init/main.c:15:2: error: #error \"this commit does not build (a modverify test)\"", true),
            ("drivers/foo.c:3:10: fatal error: bar.h: No such file or directory", true),
            ("cc1: error: unrecognized command-line option '-mfoo'", true),
            ("main.c:(.text+0x10): undefined reference to `bar'", true),
            ("ERROR: modpost: \"foo\" [drivers/x.ko] undefined!", true),
            ("make[2]: *** [scripts/Makefile.build:250: init/main.o] Error 1", false),
            ("make: *** [Makefile:2012: .] Error 2", false),
            ("  CC      kernel/fork.o", false),
            ("arch/x/y.c:10:5: warning: unused variable 'z' [-Wunused-variable]", false),
        ] {
            assert_eq!(is_error_line(line), error, "{line}");
        }
        let e = BuildError::Make {
            step: "vmlinux".into(),
            ended: Ended::Exited(2),
            log: "build.log".into(),
            errors: vec!["a.c:1:1: error: one".into(), "b.c:2:2: error: two".into()],
            tail: "  make: *** Error 2".into(),
        }
        .to_string();
        assert!(
            e.starts_with("make vmlinux exited with status 2: a.c:1:1: error: one\nerrors (2):\n  a.c:1:1: error: one\n  b.c:2:2: error: two\nlast lines of build.log:\n"),
            "{e}"
        );
        assert!(
            e.ends_with("last lines of build.log:\n  make: *** Error 2"),
            "{e}"
        );
    }

    fn args(m: &Make) -> Vec<String> {
        m.command(&["vmlinux"])
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// A compiler modverify built (ia64's) is named in full in CC, with and without ccache,
    /// and its directory goes in front of PATH; a packaged one stays `CROSS_COMPILE` + gcc.
    #[test]
    fn a_built_compiler_is_named_in_full_and_put_on_path() {
        let r = crate::arch::ArchRegistry::load(None).unwrap();
        let mut m = Make {
            src: "/src".into(),
            out: "/out".into(),
            arch: r.get("ia64").unwrap(),
            jobs: 2,
            ccache: false,
            plugin: None,
            compiler_dir: Some("/cache/cross-gcc/ia64-gcc-x/bin".into()),
        };
        let gcc = "/cache/cross-gcc/ia64-gcc-x/bin/ia64-linux-gnu-gcc";
        assert!(args(&m).contains(&format!("CC={gcc}")), "{:?}", args(&m));
        let path = m
            .command(&["vmlinux"])
            .get_envs()
            .find(|(k, _)| *k == "PATH")
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
            .unwrap();
        assert!(
            path.starts_with("/cache/cross-gcc/ia64-gcc-x/bin:"),
            "{path}"
        );
        m.ccache = true;
        assert!(
            args(&m).contains(&format!("CC=ccache {gcc}")),
            "{:?}",
            args(&m)
        );
        m.compiler_dir = None;
        assert!(args(&m).contains(&"CC=ccache ia64-linux-gnu-gcc".to_string()));
        m.ccache = false;
        assert!(!args(&m).iter().any(|a| a.starts_with("CC=")));
    }

    /// A descriptor's GCC plugin reaches every compiler run through KCFLAGS; without one,
    /// make gets no KCFLAGS and a user's own (from the environment) stays in force.
    #[test]
    fn a_plugin_goes_to_make_as_kcflags_and_only_then() {
        let r = crate::arch::ArchRegistry::load(None).unwrap();
        let mut m = Make {
            src: "/src".into(),
            out: "/out".into(),
            arch: r.get("sh4").unwrap(),
            jobs: 2,
            ccache: false,
            plugin: None,
            compiler_dir: None,
        };
        assert!(!args(&m).iter().any(|a| a.starts_with("KCFLAGS=")));
        m.plugin = Some("-fplugin=/cache/plugins/sh4-0123456789.so".into());
        // Whatever KCFLAGS the environment running the test has comes first.
        let user = std::env::var("KCFLAGS").unwrap_or_default();
        let want = format!("KCFLAGS={user} -fplugin=/cache/plugins/sh4-0123456789.so");
        assert!(
            args(&m).contains(&want.replace("= ", "=")),
            "{:?}",
            args(&m)
        );
    }
}
