//! A cross compiler Debian does not ship, built once from Debian's own GCC source package
//! (`build.cross_gcc` in an arch descriptor; ia64: Debian 12 has `binutils-ia64-linux-gnu` and
//! `gcc-12-source`, but no `gcc-ia64-linux-gnu`).
//!
//! The recipe is GCC's stage-1 compiler (C only, no C library: all a kernel and its modules
//! need), configured with the descriptor's switches and the target's Debian binutils as its
//! assembler and linker. It is installed into modverify's cache under a key made of the source
//! package's version, the binutils package's version, the target and the switches, so a new
//! upload of either package builds a new compiler. One process builds at a time (a lock per
//! key); the build happens in a work directory and the finished compiler is renamed into
//! place whole, so a half-built one is never used; a failed step is named with its log kept.
//! Nothing is downloaded: the source comes from the package archive.
use crate::arch::{ArchDescriptor, CrossGcc};
use crate::proc::{self, Ended, Limits};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum CrossGccError {
    #[error("{what} is missing: install Debian's {package} (or {hint})", hint = crate::host::INSTALL_HINT)]
    Missing { what: String, package: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("building the {arch} cross compiler failed in step `{step}` ({ended}); its log is {log}:\n{tail}")]
    Step {
        arch: String,
        step: String,
        ended: Ended,
        log: PathBuf,
        tail: String,
    },
    #[error("interrupted while building the {arch} cross compiler; its log is {log}")]
    Interrupted { arch: String, log: PathBuf },
}

crate::failure::classified_by_own_kind!(CrossGccError);

impl CrossGccError {
    pub fn kind(&self) -> crate::failure::FailureKind {
        use crate::failure::FailureKind;
        match self {
            // The machine lacks a package, a file or a tool: the machine's failure.
            CrossGccError::Missing { .. }
            | CrossGccError::Io { .. }
            | CrossGccError::Spawn { .. }
            | CrossGccError::Step { .. } => FailureKind::Infra,
            CrossGccError::Interrupted { .. } => FailureKind::Interrupted,
        }
    }
}

/// The descriptor's recipe, if the arch needs a compiler built.
pub fn recipe(arch: &ArchDescriptor) -> Option<&CrossGcc> {
    arch.build.as_ref().and_then(|b| b.cross_gcc.as_ref())
}

/// Where the cached compilers live.
fn root(cache: &Path) -> PathBuf {
    cache.join("cross-gcc")
}

fn package_version(pkg: &str) -> Option<String> {
    crate::host::installed(pkg).then_some(())?;
    let mut q = Command::new("dpkg-query");
    q.args(["-W", "-f=${Version}", pkg]);
    proc::stdout_if_ok(q).map(|v| v.trim().to_string())
}

/// The GCC tarball the source package installed.
fn tarball(r: &CrossGcc) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(&r.source_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("gcc-") && n.contains(".tar."))
        })
        .collect();
    found.sort();
    found.pop()
}

/// What the compiler is built from; `Err` names the package to install.
struct Inputs {
    tarball: PathBuf,
    /// Names the cached compiler: `ARCH-SOURCEVERSION-HASH`.
    name: String,
    as_: PathBuf,
    ld: PathBuf,
}

fn inputs(arch: &ArchDescriptor, r: &CrossGcc) -> Result<Inputs, CrossGccError> {
    let missing = |what: String, package: &str| CrossGccError::Missing {
        what,
        package: package.to_string(),
    };
    let source_version = package_version(&r.source_package)
        .ok_or_else(|| missing(format!("GCC source for {}", r.target), &r.source_package))?;
    let tarball = tarball(r).ok_or_else(|| {
        missing(
            format!("a gcc-*.tar.* in {}", r.source_dir),
            &r.source_package,
        )
    })?;
    let binutils_version = package_version(&r.binutils_package).ok_or_else(|| {
        missing(
            format!("{} binutils", r.target),
            r.binutils_package.as_str(),
        )
    })?;
    let tool = |t: &str| {
        let bin = format!("{}-{t}", r.target);
        crate::host::find_on_path(&bin).ok_or_else(|| missing(bin, &r.binutils_package))
    };
    let (as_, ld) = (tool("as")?, tool("ld")?);
    let key = format!(
        "{}\n{}\n{}\n{}\n{}",
        source_version,
        binutils_version,
        r.target,
        r.configure.join(" "),
        tarball.display()
    );
    let version: String = source_version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(Inputs {
        tarball,
        name: format!(
            "{}-gcc-{version}-{}",
            arch.name,
            crate::files::short_hash(&key)
        ),
        as_,
        ld,
    })
}

/// Whether this arch's compiler is there to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The arch uses a packaged cross compiler.
    NotNeeded,
    /// Built: its `bin` directory.
    Built(PathBuf),
    /// Not built yet; `modverify setup` (or the first build) builds it. The packages it
    /// needs that are missing, if any.
    NotBuilt { missing: Vec<String> },
}

pub fn state(arch: &ArchDescriptor, cache: &Path) -> State {
    let Some(r) = recipe(arch) else {
        return State::NotNeeded;
    };
    let missing = || {
        r.packages
            .iter()
            .filter(|p| !crate::host::installed(p))
            .cloned()
            .collect()
    };
    match inputs(arch, r) {
        Ok(i) => {
            let bin = root(cache).join(&i.name).join("bin");
            if bin.join(format!("{}gcc", arch.cross_compile)).is_file() {
                State::Built(bin)
            } else {
                State::NotBuilt { missing: missing() }
            }
        }
        Err(_) => State::NotBuilt { missing: missing() },
    }
}

/// Whether this machine has the arch's C compiler (packaged on PATH, or built here).
pub fn have_gcc(arch: &ArchDescriptor, cache: &Path) -> bool {
    match state(arch, cache) {
        State::NotNeeded => crate::host::on_path(&format!("{}gcc", arch.cross_compile)),
        State::Built(_) => true,
        State::NotBuilt { .. } => false,
    }
}

/// The directory to put in front of PATH for this arch's builds (`None`: the arch uses a
/// packaged compiler), building the compiler first if it is not built yet. `note` gets the
/// estimate and progress.
pub fn ensure(
    arch: &ArchDescriptor,
    cache: &Path,
    note: &mut dyn FnMut(&str),
) -> Result<Option<PathBuf>, CrossGccError> {
    let Some(r) = recipe(arch) else {
        return Ok(None);
    };
    let i = inputs(arch, r)?;
    let dir = root(cache);
    let done = dir.join(&i.name);
    let gcc = |d: &Path| d.join("bin").join(format!("{}gcc", arch.cross_compile));
    if gcc(&done).is_file() {
        return Ok(Some(done.join("bin")));
    }
    std::fs::create_dir_all(&dir).map_err(|e| CrossGccError::Io {
        path: dir.clone(),
        source: e,
    })?;
    let lock = dir.join(format!("{}.lock", i.name));
    let log_path = dir.join(format!("{}.log", i.name));
    let _held = crate::files::lock_exclusive(&lock, &mut || {
        note(&format!(
            "waiting for another modverify building the {} cross compiler ({})",
            arch.name,
            done.display()
        ))
    })
    .map_err(|e| match e {
        crate::files::LockError::Io(e) => CrossGccError::Io {
            path: lock.clone(),
            source: e,
        },
        crate::files::LockError::Interrupted => CrossGccError::Interrupted {
            arch: arch.name.clone(),
            log: log_path.clone(),
        },
    })?;
    // Built by the process this one waited for.
    if gcc(&done).is_file() {
        return Ok(Some(done.join("bin")));
    }
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    note(&format!(
        "building the {} cross compiler ({}) from {} ({}), once: {} CPU-minutes when measured, so about {} min on {jobs} CPU{}; log: {}",
        arch.name,
        r.target,
        r.source_package,
        i.tarball.display(),
        r.cpu_minutes,
        (r.cpu_minutes as usize).div_ceil(jobs).max(1),
        if jobs == 1 { "" } else { "s" },
        log_path.display()
    ));
    let work = dir.join(format!("{}.work", i.name));
    let result = build(arch, r, &i, &work, &done, &log_path, jobs, note);
    // The work tree (a couple of GB) goes whatever happened; the log stays.
    let _ = std::fs::remove_dir_all(&work);
    result?;
    Ok(Some(done.join("bin")))
}

#[allow(clippy::too_many_arguments)]
fn build(
    arch: &ArchDescriptor,
    r: &CrossGcc,
    i: &Inputs,
    work: &Path,
    done: &Path,
    log_path: &Path,
    jobs: usize,
    note: &mut dyn FnMut(&str),
) -> Result<(), CrossGccError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| CrossGccError::Io { path, source: e }
    };
    let _ = std::fs::remove_dir_all(work);
    let (src, obj, dest) = (work.join("src"), work.join("obj"), work.join("dest"));
    for d in [&src, &obj, &dest] {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let mut log = std::fs::File::create(log_path).map_err(io(log_path))?;
    let started = Instant::now();
    let make = |targets: &[&str]| {
        let mut c = Command::new("make");
        c.arg(format!("-j{jobs}")).args(targets).current_dir(&obj);
        c
    };
    let mut configure = Command::new(src.join("configure"));
    configure
        .arg(format!("--target={}", r.target))
        .arg(format!("--prefix={}", done.display()))
        .arg(format!("--with-as={}", i.as_.display()))
        .arg(format!("--with-ld={}", i.ld.display()))
        .args(&r.configure)
        .current_dir(&obj);
    let mut install = make(&["install-gcc", "install-target-libgcc"]);
    install.arg(format!("DESTDIR={}", dest.display()));
    let mut untar = Command::new("tar");
    untar
        .arg("-xf")
        .arg(&i.tarball)
        .arg("--strip-components=1")
        .arg("-C")
        .arg(&src);
    let steps: Vec<(&str, Command)> = vec![
        ("unpack", untar),
        ("configure", configure),
        ("make all-gcc", make(&["all-gcc"])),
        ("make all-target-libgcc", make(&["all-target-libgcc"])),
        ("make install-gcc install-target-libgcc", install),
    ];
    let total = steps.len();
    for (n, (step, cmd)) in steps.into_iter().enumerate() {
        if step.starts_with("make install") {
            // Debian's dfsg tarball replaces gcc/doc/tm.texi.in with a stub, so the check
            // that tm.texi matches the target hooks fails at install; the documentation is
            // not installed, so its stamp is marked done.
            let stamp = obj.join("gcc/s-tm-texi");
            if stamp.parent().is_some_and(Path::is_dir) {
                std::fs::write(&stamp, "").map_err(io(&stamp))?;
            }
        }
        note(&format!(
            "{} cross compiler: {step} (step {} of {total}, {} in)",
            arch.name,
            n + 1,
            minutes(started.elapsed().as_secs())
        ));
        run_step(arch, step, cmd, &mut log, log_path, started, note)?;
    }
    // DESTDIR holds the tree under its final absolute path: move that into place whole.
    let staged = dest.join(done.strip_prefix("/").unwrap_or(done));
    std::fs::rename(&staged, done).map_err(io(done))?;
    note(&format!(
        "{} cross compiler built in {}: {}",
        arch.name,
        minutes(started.elapsed().as_secs()),
        done.display()
    ));
    Ok(())
}

fn minutes(s: u64) -> String {
    format!("{} min {:02} s", s / 60, s % 60)
}

fn run_step(
    arch: &ArchDescriptor,
    step: &str,
    cmd: Command,
    log: &mut std::fs::File,
    log_path: &Path,
    started: Instant,
    note: &mut dyn FnMut(&str),
) -> Result<(), CrossGccError> {
    use std::io::Write;
    let _ = writeln!(log, "$ {}", proc::command_line(&cmd));
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut tail = std::collections::VecDeque::new();
    let mut last_said = Instant::now();
    let mut lines = 0u64;
    let mut on_line = |l: &str| {
        lines += 1;
        if tail.len() == 20 {
            tail.pop_front();
        }
        tail.push_back(format!("  {l}"));
        // A heartbeat for the long steps (make prints steadily).
        if last_said.elapsed().as_secs() >= 60 {
            last_said = Instant::now();
            note(&format!(
                "{} cross compiler: {step}: {} in, {lines} lines of output",
                arch.name,
                minutes(started.elapsed().as_secs())
            ));
        }
    };
    let ended = proc::run(cmd, Some(log), &mut on_line, Limits::default()).map_err(|e| {
        CrossGccError::Spawn {
            cmd: program,
            source: e,
        }
    })?;
    match ended {
        Ended::Exited(0) => Ok(()),
        Ended::Interrupted => Err(CrossGccError::Interrupted {
            arch: arch.name.clone(),
            log: log_path.to_path_buf(),
        }),
        ended => Err(CrossGccError::Step {
            arch: arch.name.clone(),
            step: step.to_string(),
            ended,
            log: log_path.to_path_buf(),
            tail: tail.into_iter().collect::<Vec<_>>().join("\n"),
        }),
    }
}
