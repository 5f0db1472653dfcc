//! The results model: what `modverify run` writes to results.json and what `report`, `merge`,
//! `--baseline` and `bisect-step` read back — the same types both ways. Every stage's report
//! (build, check, boot, module outcome) is part of it; renderers `match` on these types, so a
//! new verdict or status is a compile error until each of them handles it.
//!
//! Versioned by `schema`: `modverify.results/2` is written; `/1` is read too. Version 2 is
//! version 1 and the typed keys (`boot_failure_kind`, `static_table`; the `bad_input` and
//! `not_run` statuses), written so that every key of version 1 keeps its form: a reader of
//! version 1 refuses the file by its schema instead of tripping on a new value. Reading a
//! v1 file, the types read its strings (`Reason: From<&str>`, `BootFailure::of_v1`,
//! `Note: From<String>`); every key a file may lack has a default, so files from older or
//! interrupted runs (and hand-written ones in tests) read.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::boot::{BootReport, BootSummary};
pub use crate::check::stage::CheckReport;
pub use crate::check::{ModuleReport, Severity, Verdict};
use crate::kabi::{Broken, DiffSummary, KernelChange};
pub use crate::kernel_build::manifest::BuildManifest;
pub use crate::outcome::ArchStatus;
pub use crate::verdict::{ModuleOutcome, RuntimeVerdict, TableComparison};

pub const RESULTS_SCHEMA: &str = "modverify.results/2";
/// The schema prefix every version shares; the number after it is the version.
const SCHEMA_PREFIX: &str = "modverify.results/";

/// The stage a [`Reason`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Build,
    Check,
    Boot,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Build => "build",
            Stage::Check => "check",
            Stage::Boot => "boot",
        }
    }
}

/// Why a stage of an arch was skipped or failed: the stage, and what it said. Written as the
/// one string schema v1 has (`"build: TEXT"`), and read back from it; a string naming no
/// stage reads as a reason of none (a hand-written or older file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub stage: Option<Stage>,
    pub text: String,
}

impl Reason {
    pub fn of(stage: Stage, text: impl Into<String>) -> Self {
        Reason {
            stage: Some(stage),
            text: text.into(),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.stage {
            Some(s) => write!(f, "{}: {}", s.as_str(), self.text),
            None => f.write_str(&self.text),
        }
    }
}

impl From<&str> for Reason {
    fn from(s: &str) -> Self {
        [Stage::Build, Stage::Check, Stage::Boot]
            .into_iter()
            .find_map(|st| {
                s.strip_prefix(st.as_str())
                    .and_then(|r| r.strip_prefix(": "))
                    .map(|text| Reason::of(st, text))
            })
            .unwrap_or_else(|| Reason {
                stage: None,
                text: s.to_string(),
            })
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Reason::from(String::deserialize(d)?.as_str()))
    }
}

/// Where a run as a whole is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    #[default]
    Running,
    Complete,
    Interrupted,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StageTimes {
    pub build_s: Option<f64>,
    pub check_s: Option<f64>,
    pub boot_s: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ArchResult {
    pub arch: String,
    pub status: ArchStatus,
    /// Why a stage was skipped or failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    pub seconds: StageTimes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildManifest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootReport>,
    /// The kernel's export table and its modules as the check read them, for a later run's
    /// `--baseline` to diff against (written by `run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kabi: Option<crate::kabi::Snapshot>,
}

impl ArchResult {
    pub fn new(arch: &str) -> Self {
        ArchResult {
            arch: arch.to_string(),
            ..Default::default()
        }
    }

    /// The details of the static export-table errors.
    pub fn export_table_errors(&self) -> Vec<String> {
        self.check
            .iter()
            .flat_map(|c| &c.exports.problems)
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.detail.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunResults {
    pub schema: String,
    pub modverify_version: String,
    pub status: RunStatus,
    pub started_unix: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_unix: Option<u64>,
    pub command: String,
    pub arches: BTreeMap<String, ArchResult>,
    /// Filled in when `--baseline` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Comparison>,
}

/// Why a file is not a results.json this version reads.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("not a modverify results.json (schema {0})")]
    NotResults(serde_json::Value),
    #[error("results schema {0} is newer than this modverify reads ({RESULTS_SCHEMA})")]
    Newer(String),
    #[error("{0}")]
    Shape(String),
}

impl ReadError {
    /// A file that is not results this version reads is a mistake in the request.
    pub fn kind(&self) -> crate::failure::FailureKind {
        crate::failure::FailureKind::BadInput
    }
}

impl RunResults {
    /// A new run's results: every arch `running`.
    pub fn start(command: String, arches: &[&str], started_unix: u64) -> Self {
        RunResults {
            schema: RESULTS_SCHEMA.into(),
            modverify_version: env!("CARGO_PKG_VERSION").into(),
            status: RunStatus::Running,
            started_unix,
            finished_unix: None,
            command,
            arches: arches
                .iter()
                .map(|a| (a.to_string(), ArchResult::new(a)))
                .collect(),
            baseline: None,
        }
    }

    /// Reads a results.json of any schema version this modverify knows (1 and 2: version 2
    /// adds keys and keeps every v1 key's form, so one reader takes both).
    pub fn from_json(text: &str) -> Result<Self, ReadError> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(ReadError::NotJson)?;
        let version = v["schema"]
            .as_str()
            .and_then(|s| s.strip_prefix(SCHEMA_PREFIX));
        match version {
            None => Err(ReadError::NotResults(v["schema"].clone())),
            Some("1" | "2") => serde_path_to_error::deserialize(v)
                .map_err(|e| ReadError::Shape(format!("{}: {}", e.path(), e.inner()))),
            Some(_) => Err(ReadError::Newer(v["schema"].as_str().unwrap_or("").into())),
        }
    }

    /// The results of `modverify boot` (one arch, the boot stage), in the form `run` writes,
    /// so `report`, `merge` (shards included) and `--baseline` take them too.
    pub fn of_boot(command: String, started_unix: u64, boot: &BootReport, seconds: f64) -> Self {
        use crate::outcome::StageEnd;
        let status = crate::outcome::decide(&crate::outcome::Stages {
            build: StageEnd::NotAsked,
            check: StageEnd::NotAsked,
            boot: StageEnd::Done(boot),
            interrupted: crate::proc::interrupted(),
        });
        let reasons: Vec<Reason> = boot
            .infrastructure_failure()
            .map(|why| Reason::of(Stage::Boot, why))
            .into_iter()
            .collect();
        let mut r = RunResults::start(command, &[&boot.arch], started_unix);
        r.status = if status == ArchStatus::Interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Complete
        };
        r.finished_unix = Some(crate::files::unix_now());
        if let Some(a) = r.arches.get_mut(&boot.arch) {
            a.status = status;
            a.reasons = reasons;
            a.seconds.boot_s = Some(seconds);
            a.boot = Some(boot.clone());
        }
        r
    }

    /// The arches in results order (by name).
    pub fn arches(&self) -> impl Iterator<Item = &ArchResult> {
        self.arches.values()
    }
}

// What a comparison with an earlier run (`--baseline`) found: part of the results model;
// `crate::baseline` works it out.

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Change {
    pub arch: String,
    /// `module <name>`, `build`, `export table`.
    pub what: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Comparison {
    pub baseline: String,
    pub regressions: Vec<Change>,
    pub fixes: Vec<Change>,
    /// Modules that worked in the baseline and are flaky now (their tries in fresh guests
    /// disagree): not regressions, listed apart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flaky: Vec<Change>,
    /// Per arch whose export table changed since the baseline: what changed, and which of the
    /// baseline's modules the change breaks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
    /// What could not be compared (a baseline written before export tables were saved).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One arch's export drift since the baseline: `modverify diff` of the two kernels, the
/// baseline's modules as consumers (docs/json-schema.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Drift {
    pub arch: String,
    pub old_release: Option<String>,
    pub new_release: Option<String>,
    pub kernel: Vec<KernelChange>,
    pub changes: Vec<crate::kabi::Change>,
    pub broken: Vec<Broken>,
    pub summary: DiffSummary,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

crate::failure::classified_by_own_kind!(ReadError);

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason is typed in memory and the one v1 string on disk, both ways; a string that
    /// names no stage is kept as it is.
    #[test]
    fn a_reason_reads_and_writes_as_schema_v1s_string() {
        let r: Vec<Reason> =
            serde_json::from_str(r#"["build: make failed", "boot: no QEMU", "shard 1/2"]"#)
                .unwrap();
        assert_eq!(r[0], Reason::of(Stage::Build, "make failed"));
        assert_eq!(r[1].stage, Some(Stage::Boot));
        assert_eq!(r[2].stage, None);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"["build: make failed","boot: no QEMU","shard 1/2"]"#
        );
    }
}
