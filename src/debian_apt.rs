//! Debian packages from any suite, through a private apt configuration under the cache (its
//! own lists, sources and archive cache: the system's apt state is untouched), with the
//! mirror this machine already uses. What the suite serves today is what is fetched: the
//! newest version, never a pinned one (what is then unpacked into the cache stays until the
//! cache is cleared). Used for kernel trees (`--source 6.12`) and for a guest agent's C
//! library (`build.guest_sysroot`).
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error("no Debian mirror in /etc/apt/sources.list(.d) to fetch {0} from")]
    NoMirror(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` failed:\n{output}")]
    Tool { cmd: String, output: String },
    #[error("{package} is not in Debian {suite} at {mirror}")]
    NotInSuite {
        package: String,
        suite: String,
        mirror: String,
    },
    #[error("interrupted while running {0}")]
    Interrupted(String),
}

/// One suite's package index, private to modverify; held by one process at a time (the
/// lock lives as long as the value).
pub struct PrivateApt {
    _lock: std::fs::File,
    dir: PathBuf,
    list: PathBuf,
    host_arch: String,
    pub suite: String,
    pub mirror: String,
}

impl PrivateApt {
    /// Sets up (or reuses) `cache/debian/apt/<label>` for `suite` and refreshes its index.
    pub fn open(cache: &Path, label: &str, suite: &str, wanted: &str) -> Result<Self, AptError> {
        let mirror = debian_mirror().ok_or_else(|| AptError::NoMirror(wanted.into()))?;
        let host_arch = run(Command::new("dpkg").arg("--print-architecture"), "dpkg")?
            .trim()
            .to_string();
        let dir = cache.join("debian/apt").join(label);
        for d in ["lists/partial", "cache/archives/partial", "parts"] {
            let p = dir.join(d);
            std::fs::create_dir_all(&p).map_err(|e| AptError::Io { path: p, source: e })?;
        }
        // Two modverify processes fetching from one suite would rewrite each other's lists.
        let lock_path = dir.join(".modverify.lock");
        let lock = crate::files::lock_exclusive(&lock_path, &mut || {}).map_err(|e| match e {
            crate::files::LockError::Io(e) => AptError::Io {
                path: lock_path.clone(),
                source: e,
            },
            crate::files::LockError::Interrupted => {
                AptError::Interrupted(format!("waiting for {}", lock_path.display()))
            }
        })?;
        let list = dir.join("sources.list");
        std::fs::write(&list, format!("deb {mirror} {suite} main\n")).map_err(|e| {
            AptError::Io {
                path: list.clone(),
                source: e,
            }
        })?;
        let apt = PrivateApt {
            _lock: lock,
            dir,
            list,
            host_arch,
            suite: suite.into(),
            mirror,
        };
        run(
            apt.command("apt-get").args(["-qq", "update"]),
            "apt-get update",
        )?;
        Ok(apt)
    }

    /// The version of `package` the suite serves, if it has one.
    pub fn candidate(&self, package: &str) -> Result<Option<String>, AptError> {
        let out = run(
            self.command("apt-cache").args(["policy", package]),
            "apt-cache policy",
        )?;
        Ok(out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate:"))
            .map(str::trim)
            .filter(|v| *v != "(none)")
            .map(str::to_string))
    }

    /// Downloads `package` at `version` into `dir`; returns the .deb.
    pub fn download(&self, package: &str, version: &str, dir: &Path) -> Result<PathBuf, AptError> {
        let before: Vec<PathBuf> = debs(dir);
        run(
            self.command("apt-get")
                .args(["-qq", "download"])
                .arg(format!("{package}={version}"))
                .current_dir(dir),
            "apt-get download",
        )?;
        debs(dir)
            .into_iter()
            .find(|p| !before.contains(p))
            .ok_or_else(|| AptError::Tool {
                cmd: format!("apt-get download {package}={version}"),
                output: format!("left no new .deb in {}", dir.display()),
            })
    }

    /// Downloads each of `packages` at the suite's version and unpacks them into `root`
    /// (`dpkg -x`: no scripts run, nothing installed); returns "package version" lines.
    pub fn unpack(
        &self,
        packages: &[String],
        work: &Path,
        root: &Path,
    ) -> Result<Vec<String>, AptError> {
        let mut got = Vec::new();
        for p in packages {
            let version = self.candidate(p)?.ok_or_else(|| AptError::NotInSuite {
                package: p.clone(),
                suite: self.suite.clone(),
                mirror: self.mirror.clone(),
            })?;
            let deb = self.download(p, &version, work)?;
            run(
                Command::new("dpkg").arg("-x").arg(&deb).arg(root),
                "dpkg -x",
            )?;
            let _ = std::fs::remove_file(&deb);
            got.push(format!("{p} {version}"));
        }
        Ok(got)
    }

    fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        for (k, v) in [
            (
                "Dir::State::Lists",
                self.dir.join("lists").display().to_string(),
            ),
            ("Dir::Etc::SourceList", self.list.display().to_string()),
            (
                "Dir::Etc::SourceParts",
                self.dir.join("parts").display().to_string(),
            ),
            ("Dir::Cache", self.dir.join("cache").display().to_string()),
            ("APT::Architecture", self.host_arch.clone()),
            ("Acquire::Languages", "none".into()),
            ("Debug::NoLocking", "1".into()),
        ] {
            c.arg("-o").arg(format!("{k}={v}"));
        }
        c
    }
}

fn debs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "deb"))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `a` is a newer Debian version than `b` (`dpkg --compare-versions`).
pub fn newer(a: &str, b: &str) -> bool {
    let mut c = Command::new("dpkg");
    c.args(["--compare-versions", a, "gt", b]);
    crate::proc::run(c, None, &mut |_| {}, crate::proc::Limits::default())
        .is_ok_and(|e| e == crate::proc::Ended::Exited(0))
}

/// Runs a short tool through proc.rs; its output, or the apt error that names it.
fn run(cmd: &mut Command, name: &str) -> Result<String, AptError> {
    use crate::proc::ToolError;
    crate::proc::tool(cmd).map_err(|e| match e {
        ToolError::Spawn(source) => AptError::Spawn {
            cmd: name.into(),
            source,
        },
        ToolError::Interrupted => AptError::Interrupted(name.into()),
        ToolError::Failed { cmd, output } => AptError::Tool { cmd, output },
    })
}

/// The Debian mirror this machine uses (deb822 or one-line sources), never a hard-coded host.
pub fn debian_mirror() -> Option<String> {
    let mut uris = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|x| x == "sources"))
        {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            for l in text.lines() {
                if let Some(v) = l.trim().strip_prefix("URIs:") {
                    uris.extend(v.split_whitespace().map(str::to_string));
                }
            }
        }
    }
    let text = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() == Some(&"deb") {
            if let Some(u) = w.iter().find(|x| x.contains("://")) {
                uris.push(u.to_string());
            }
        }
    }
    uris.into_iter().find(|u| !u.contains("-security"))
}
