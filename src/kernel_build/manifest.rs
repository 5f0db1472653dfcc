//! `build.json`: what was built, how to reproduce it, how long it took and what modpost said.
//! Written when the build starts and when it ends, through a temp file and a rename, under the
//! build directory's exclusive lock; [`BuildManifest::read_finished`] reads it under the shared
//! one, so a reader never takes a build in progress for a finished one.
use super::{config::Dropped, BuildError, BuildOptions, Fragment, ModpostFinding};
use crate::arch::{ArchDescriptor, BuildFacts};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "build.json";

/// Why a build directory holds no finished build to read.
#[derive(Debug, thiserror::Error)]
pub enum FinishedBuildError {
    #[error("{}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: interrupted while waiting for the build under way there", dir.display())]
    Interrupted { dir: PathBuf },
    /// build.json missing or not a manifest: not a `modverify build` directory.
    #[error("{0}")]
    Manifest(String),
    #[error("{}: {why}; build it again with `modverify build --arch {arch}` (the same options)", dir.display())]
    Unfinished {
        dir: PathBuf,
        arch: String,
        why: Unfinished,
    },
}

/// How a build directory's last build ended, when it did not end with a kernel.
#[derive(Debug, thiserror::Error)]
pub enum Unfinished {
    #[error("only configured (--config-only): nothing was built")]
    ConfigOnly,
    /// Under the shared lock no build is under way: one whose manifest says so was killed.
    #[error("the build there never finished (its modverify was killed)")]
    Killed,
    #[error("the build there was interrupted")]
    Interrupted,
    #[error("the build there failed: {0}")]
    Failed(String),
}

impl FinishedBuildError {
    /// A directory that is no build, or only a configuration, is a mistake in the request;
    /// a failed build is the tree's; a killed or interrupted one, or a lock that cannot be
    /// taken, is the machine's; Ctrl-C while waiting is an interruption.
    pub fn kind(&self) -> crate::failure::FailureKind {
        use crate::failure::FailureKind;
        match self {
            FinishedBuildError::Lock { source, .. } => FailureKind::of_io(source),
            FinishedBuildError::Interrupted { .. } => FailureKind::Interrupted,
            FinishedBuildError::Manifest(_) => FailureKind::BadInput,
            FinishedBuildError::Unfinished { why, .. } => match why {
                Unfinished::ConfigOnly => FailureKind::BadInput,
                Unfinished::Killed | Unfinished::Interrupted => FailureKind::Infra,
                Unfinished::Failed(_) => FailureKind::BuildFailed,
            },
        }
    }
}
pub const BUILD_SCHEMA: &str = "modverify.build/1";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildStatus {
    #[default]
    Running,
    Ok,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifacts {
    pub vmlinux: PathBuf,
    pub image: PathBuf,
    pub module_symvers: PathBuf,
    pub modules_order: PathBuf,
    pub config: PathBuf,
    /// Every module of modules.order, as `.ko` paths.
    pub modules: Vec<PathBuf>,
}

impl Artifacts {
    /// The file QEMU boots for `arch`: vmlinux where QEMU loads the ELF itself (alpha,
    /// sparc64), else the boot image. The one home of that choice.
    pub fn kernel_to_boot(&self, arch: &crate::arch::ArchDescriptor) -> &Path {
        if arch.build.as_ref().is_some_and(|b| b.vmlinux_boots) {
            &self.vmlinux
        } else {
            &self.image
        }
    }

    pub fn collect(out: &Path, facts: &BuildFacts) -> Result<Self, BuildError> {
        let order = out.join("modules.order");
        let text = std::fs::read_to_string(&order).unwrap_or_default();
        let modules = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                out.join(
                    l.trim()
                        .strip_suffix(".o")
                        .map(|s| format!("{s}.ko"))
                        .unwrap_or_else(|| l.trim().to_string()),
                )
            })
            .collect();
        let a = Artifacts {
            vmlinux: out.join("vmlinux"),
            image: out.join(&facts.image),
            module_symvers: out.join("Module.symvers"),
            modules_order: order,
            config: out.join(".config"),
            modules,
        };
        for p in [&a.vmlinux, &a.image, &a.module_symvers] {
            if !p.exists() {
                return Err(BuildError::BadInput(format!("make succeeded but {} is missing: check build.targets/build.image in the arch descriptor", p.display())));
            }
        }
        Ok(a)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Durations {
    pub config_s: f64,
    pub build_s: f64,
    pub total_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigInfo {
    /// `tinyconfig`/`defconfig`/`allmodconfig`, or the user's `.config` path.
    pub base: String,
    pub fragments: Vec<String>,
    #[serde(default)]
    pub dropped: Vec<Dropped>,
    /// Lines of modverify's own fragments whose option this tree does not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<super::config::LeftOut>,
    /// The default module set chosen for this tree (none with --no-default-modules).
    #[serde(default)]
    pub module_set: Option<super::config::ModuleSet>,
    /// Options the descriptor needs that tinyconfig turns off although Kconfig defaults
    /// them on (set anyway; shown so a hand-made tinyconfig build does not lose them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Every key has a default so a results.json written by an older or interrupted run reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildManifest {
    pub schema: String,
    pub status: BuildStatus,
    pub arch: String,
    pub source: PathBuf,
    /// The tree before patches (the same as `source` without --patch).
    pub source_origin: PathBuf,
    pub kernel_version: Option<String>,
    pub patches: Vec<PathBuf>,
    pub build_dir: PathBuf,
    pub log: PathBuf,
    pub config: ConfigInfo,
    pub toolchain: String,
    pub ccache: bool,
    /// The make command line that reproduces the build.
    pub make_command: String,
    pub durations: Durations,
    #[serde(default)]
    pub compiled_objects: u64,
    #[serde(default)]
    pub modpost: Vec<ModpostFinding>,
    pub artifacts: Option<Artifacts>,
    #[serde(default)]
    pub error: Option<String>,
}

// `Dropped` and `ModpostFinding` are read back from build.json too.
impl<'de> Deserialize<'de> for Dropped {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            option: String,
            wanted: String,
            got: String,
            origin: String,
            #[serde(default)]
            depends_on: Vec<String>,
            #[serde(default)]
            prompt_if: Vec<String>,
            #[serde(default)]
            essential: bool,
            #[serde(default)]
            unknown: Option<RawUnknown>,
            #[serde(default)]
            caused_by: Vec<String>,
        }
        #[derive(Deserialize)]
        struct RawUnknown {
            #[serde(default)]
            nearest: Option<String>,
        }
        let r = Raw::deserialize(d)?;
        Ok(Dropped {
            option: r.option,
            wanted: r.wanted,
            got: r.got,
            origin: r.origin,
            depends_on: r.depends_on,
            prompt_if: r.prompt_if,
            essential: r.essential,
            unknown: r
                .unknown
                .map(|u| super::config::Unknown { nearest: u.nearest }),
            caused_by: r.caused_by,
        })
    }
}

impl BuildManifest {
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        arch: &ArchDescriptor,
        src: &Path,
        origin: &Path,
        opts: &BuildOptions,
        out: &Path,
        log: &Path,
        fragments: &[Fragment],
        toolchain: String,
        make_command: String,
        ccache: bool,
    ) -> Self {
        BuildManifest {
            schema: BUILD_SCHEMA.into(),
            status: BuildStatus::Running,
            arch: arch.name.clone(),
            source: src.to_path_buf(),
            source_origin: origin.to_path_buf(),
            kernel_version: super::source::kernel_version(src),
            patches: opts.patches.clone(),
            build_dir: out.to_path_buf(),
            log: log.to_path_buf(),
            config: ConfigInfo {
                base: opts
                    .config
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| format!("{:?}", opts.base).to_lowercase()),
                fragments: fragments.iter().map(|f| f.origin.clone()).collect(),
                dropped: vec![],
                left_out: vec![],
                module_set: None,
                warnings: vec![],
            },
            toolchain,
            ccache,
            make_command,
            durations: Durations::default(),
            compiled_objects: 0,
            modpost: vec![],
            artifacts: None,
            error: None,
        }
    }

    pub fn write(&self, dir: &Path) -> Result<(), BuildError> {
        crate::files::write_atomic(&dir.join(MANIFEST), self).map_err(|e| BuildError::io(dir, e))
    }

    /// A finished build's manifest and artifacts, read under the build directory's shared lock
    /// and holding it: a build of the same directory (which rewrites build.json and may relink
    /// what it names) waits until the returned value is dropped, and a build under way is
    /// waited for (`on_wait` is called once) rather than read half done.
    pub fn read_finished(
        dir: &Path,
        on_wait: &mut dyn FnMut(),
    ) -> Result<FinishedBuild, FinishedBuildError> {
        let lock_path = dir.join(super::LOCK);
        let lock = crate::files::lock_shared(&lock_path, on_wait).map_err(|e| match e {
            crate::files::LockError::Io(source) => FinishedBuildError::Lock {
                path: lock_path.clone(),
                source,
            },
            crate::files::LockError::Interrupted => FinishedBuildError::Interrupted {
                dir: dir.to_path_buf(),
            },
        })?;
        let manifest = Self::read(dir).map_err(FinishedBuildError::Manifest)?;
        let unfinished = |why: Unfinished| FinishedBuildError::Unfinished {
            dir: dir.to_path_buf(),
            arch: manifest.arch.clone(),
            why,
        };
        let artifacts = match (manifest.status, &manifest.artifacts) {
            (BuildStatus::Ok, Some(a)) => a.clone(),
            (BuildStatus::Ok, None) => return Err(unfinished(Unfinished::ConfigOnly)),
            (BuildStatus::Running, _) => return Err(unfinished(Unfinished::Killed)),
            (BuildStatus::Interrupted, _) => return Err(unfinished(Unfinished::Interrupted)),
            (BuildStatus::Failed, _) => {
                return Err(unfinished(Unfinished::Failed(
                    manifest
                        .error
                        .clone()
                        .unwrap_or_else(|| "see build.log".into()),
                )))
            }
        };
        Ok(FinishedBuild {
            manifest,
            artifacts,
            _lock: lock,
        })
    }

    /// Reads `build.json` from a build directory as it is (a build may be under way: see
    /// [`BuildManifest::read_finished`]).
    pub fn read(dir: &Path) -> Result<Self, String> {
        let p = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            format!(
                "{}: {e} (is this a `modverify build` directory?)",
                p.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    }
}

/// A finished build, held: see [`BuildManifest::read_finished`].
#[derive(Debug)]
pub struct FinishedBuild {
    pub manifest: BuildManifest,
    pub artifacts: Artifacts,
    _lock: Option<std::fs::File>,
}

crate::failure::classified_by_own_kind!(FinishedBuildError);

#[cfg(test)]
mod tests {
    use super::*;

    fn artifacts() -> Artifacts {
        Artifacts {
            vmlinux: "vmlinux".into(),
            image: "arch/riscv/boot/Image".into(),
            module_symvers: "Module.symvers".into(),
            modules_order: "modules.order".into(),
            config: ".config".into(),
            modules: vec![],
        }
    }

    fn manifest(status: BuildStatus, artifacts: Option<Artifacts>) -> BuildManifest {
        BuildManifest {
            status,
            arch: "riscv64".into(),
            artifacts,
            ..Default::default()
        }
    }

    /// What a directory without a finished build means, decided once by the error's kind:
    /// `check`, `boot`, `run` and `bisect-step` used to read one message three ways.
    #[test]
    fn a_directory_without_a_finished_build_says_what_kind_of_failure_it_is() {
        use crate::failure::FailureKind;
        let kind_of = |m: Option<BuildManifest>| {
            let dir = tempfile::tempdir().unwrap();
            if let Some(m) = m {
                m.write(dir.path()).unwrap();
            }
            BuildManifest::read_finished(dir.path(), &mut || {})
                .err()
                .map(|e| e.kind())
        };
        assert_eq!(kind_of(None), Some(FailureKind::BadInput));
        let cases = [
            (BuildStatus::Ok, None, Some(FailureKind::BadInput)),
            (BuildStatus::Failed, None, Some(FailureKind::BuildFailed)),
            (BuildStatus::Running, None, Some(FailureKind::Infra)),
            (BuildStatus::Interrupted, None, Some(FailureKind::Infra)),
            (BuildStatus::Ok, Some(artifacts()), None),
        ];
        for (status, art, want) in cases {
            assert_eq!(kind_of(Some(manifest(status, art))), want, "{status:?}");
        }
    }

    /// The cause of a fresh machine's failing boot test: a reader took the manifest a build
    /// writes when it starts (no artifacts) for a finished one. Under the shared lock the
    /// reader waits for the build under way and reads what it finished.
    #[test]
    fn a_reader_waits_for_the_build_under_way_and_reads_what_it_finished() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        manifest(BuildStatus::Ok, Some(artifacts()))
            .write(&d)
            .unwrap();
        let held =
            crate::files::lock_exclusive(&d.join(crate::kernel_build::LOCK), &mut || {}).unwrap();
        manifest(BuildStatus::Running, None).write(&d).unwrap();
        let builder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            manifest(BuildStatus::Ok, Some(artifacts()))
                .write(dir.path())
                .unwrap();
            drop(held);
            dir
        });
        let mut waited = false;
        let built = BuildManifest::read_finished(&d, &mut || waited = true).unwrap();
        assert!(waited);
        assert_eq!(built.manifest.status, BuildStatus::Ok);
        assert_eq!(built.artifacts.vmlinux, PathBuf::from("vmlinux"));
        // While the reader holds it, a build waits.
        let lock = d.join(crate::kernel_build::LOCK);
        let mut build_waited = false;
        let t = std::thread::scope(|s| {
            let b = s.spawn(|| {
                crate::files::lock_exclusive(&lock, &mut || build_waited = true).unwrap()
            });
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(built);
            b.join().unwrap()
        });
        drop(t);
        assert!(build_waited);
        drop(builder.join().unwrap());
    }

    /// Anything but a finished build is refused with what happened there and the way out.
    #[test]
    fn an_unfinished_build_is_refused_with_its_reason() {
        let cases = [
            (manifest(BuildStatus::Running, None), "never finished"),
            (manifest(BuildStatus::Interrupted, None), "interrupted"),
            (
                BuildManifest {
                    error: Some("make: *** [Makefile:1] Error 2".into()),
                    ..manifest(BuildStatus::Failed, None)
                },
                "failed: make: *** [Makefile:1] Error 2",
            ),
            (manifest(BuildStatus::Ok, None), "only configured"),
        ];
        for (m, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            m.write(dir.path()).unwrap();
            let e = BuildManifest::read_finished(dir.path(), &mut || {})
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.contains("modverify build --arch riscv64"), "{e}");
        }
    }
}
