//! The boot stage's report: what booting a module set found, per module and per guest, and
//! how shards of one set join into one report (`merge`).
use crate::batch::Shard;
use crate::qemu::{BootAttempt, BootFailure, BootFailureKind};
use crate::verdict::{ModuleOutcome, RuntimeVerdict, TableComparison};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BootSummary {
    pub modules: usize,
    pub loaded: usize,
    /// Modules the kernel refused or that crashed, hung or failed in init.
    pub failed: usize,
    /// Modules that never got a verdict (the guest died before them): not failures of theirs.
    pub not_run: usize,
    pub unload_failures: usize,
    pub disagreements: usize,
    /// Modules whose tries disagree (`--retries`): neither failed nor loaded.
    #[serde(skip_serializing_if = "is_zero")]
    pub flaky: usize,
    /// Failed modules tried again with the same verdict.
    #[serde(skip_serializing_if = "is_zero")]
    pub reproduced: usize,
    /// How many modules got each verdict (written by its name, in the verdicts' order).
    pub by_verdict: BTreeMap<RuntimeVerdict, usize>,
}

impl BootSummary {
    pub fn of(modules: &[ModuleOutcome]) -> Self {
        let mut by_verdict = BTreeMap::new();
        for m in modules {
            *by_verdict.entry(m.verdict).or_insert(0) += 1;
        }
        let count = |f: &dyn Fn(&ModuleOutcome) -> bool| modules.iter().filter(|m| f(m)).count();
        BootSummary {
            modules: modules.len(),
            loaded: count(&|m| m.verdict == RuntimeVerdict::Loaded),
            failed: count(&|m| m.verdict.failed() && !m.flaky()),
            not_run: count(&|m| m.verdict == RuntimeVerdict::NotRun),
            unload_failures: count(&|m| m.unloaded == Some(false)),
            // A flaky module's first try is not a verdict to disagree with.
            disagreements: count(&|m| !m.agrees && !m.flaky()),
            flaky: count(&|m| m.flaky()),
            reproduced: count(&|m| m.reproduced()),
            by_verdict,
        }
    }
}

/// One guest of a run that was split into several.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchReport {
    pub batch: usize,
    /// Modules reported from this guest, and all it loaded (with their dependencies).
    pub modules: usize,
    pub loaded_with_dependencies: usize,
    pub memory_mb: u64,
    pub initramfs_bytes: u64,
    /// MemTotal - MemAvailable in the guest with every module loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used_mb: Option<u64>,
    pub console_log: String,
    pub seconds: f64,
    pub done: bool,
}

/// A note on a boot, for people. `of_shard`: it tells this shard's share of the run ("shard
/// 1/2: boots 1, 3 of 4, …"), which joining the shards drops. Written as its text (schema
/// v1); a v1 file's shard note is known by the words modverify wrote for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Note {
    pub text: String,
    pub of_shard: bool,
}

impl Note {
    /// A note about the whole run.
    pub fn run(text: impl Into<String>) -> Self {
        Note {
            text: text.into(),
            of_shard: false,
        }
    }

    /// The note that tells one shard's share of the run.
    pub fn shard(text: impl Into<String>) -> Self {
        Note {
            text: text.into(),
            of_shard: true,
        }
    }
}

impl From<String> for Note {
    fn from(text: String) -> Self {
        let of_shard = text.starts_with("shard ") && text.contains(": boots ");
        Note { text, of_shard }
    }
}

impl From<Note> for String {
    fn from(n: Note) -> Self {
        n.text
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `modverify boot --format json`: schema `modverify.boot/1`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BootReport {
    pub schema: String,
    pub arch: String,
    pub kernel: String,
    pub initramfs: String,
    pub qemu_command: String,
    pub console_log: String,
    /// The guest reached `done`.
    pub done: bool,
    /// Why a guest did not reach `done` (the first, of several): written as schema v1's
    /// `boot_failure` text and `infrastructure` flag, with `boot_failure_kind`.
    #[serde(flatten, with = "crate::qemu::failure::wire")]
    pub boot_failure: Option<BootFailure>,
    pub boots: Vec<BootAttempt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_done: Option<f64>,
    pub damaged_records: usize,
    pub lost_records: u64,
    pub modules: Vec<ModuleOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_table: Option<TableComparison>,
    /// The kernel's export table as `modverify check` reads it from the vmlinux given (or
    /// Module.symvers): its count and its own consistency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_table: Option<crate::check::stage::ExportsReport>,
    pub notes: Vec<Note>,
    pub summary: BootSummary,
    /// How the modules travelled: "xz, decompressed by the kernel" or "decompressed on the host".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub payload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Every module of the run, of which a shard reports its share.
    #[serde(skip_serializing_if = "is_zero")]
    pub modules_in_run: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchReport>,
    /// Parsing the modules and planning the boots, before the first guest starts.
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub prepare_seconds: f64,
    /// What a person did in the agent's shell (`boot --shell`, `repro`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
}

impl BootReport {
    pub fn clean(&self) -> bool {
        self.done
            && self.boot_failure.is_none()
            && self.summary.failed == 0
            && self.summary.not_run == 0
            && self.summary.unload_failures == 0
            && self.summary.disagreements == 0
            && self.export_table.as_ref().is_none_or(|t| t.equal)
            && self.damaged_records == 0
            && self.lost_records == 0
    }

    /// Joins the shards of one run (`--shard 1/N` … `N/N`, one CI job each) into the run's
    /// results: the shards boot disjoint batches of the same plan, so together they are what
    /// a single run would have found. A missing shard is said, never filled in.
    pub fn join_shards(parts: &[BootReport]) -> Result<BootReport, String> {
        let first = parts.first().ok_or("no shards to join")?;
        let n = first.shard.map(|s| s.n).ok_or("not a shard (no --shard)")?;
        let mut seen = std::collections::BTreeSet::new();
        for p in parts {
            match p.shard {
                Some(s)
                    if s.n == n
                        && p.arch == first.arch
                        && p.modules_in_run == first.modules_in_run =>
                {
                    if !seen.insert(s.k) {
                        return Err(format!("shard {s} appears twice"));
                    }
                }
                _ => {
                    return Err(format!(
                        "the parts are not shards of one run: {} {} of {} modules and {} {} of {}",
                        first.arch,
                        first.shard.map(|s| s.to_string()).unwrap_or_default(),
                        first.modules_in_run,
                        p.arch,
                        p.shard
                            .map(|s| s.to_string())
                            .unwrap_or("(no shard)".into()),
                        p.modules_in_run
                    ))
                }
            }
        }
        let mut parts: Vec<&BootReport> = parts.iter().collect();
        parts.sort_by_key(|p| p.shard.map(|s| s.k));
        // The part that booted the set's first batch read the export table.
        let lead = parts
            .iter()
            .find(|p| p.batches.iter().any(|b| b.batch == 1))
            .copied()
            .unwrap_or(parts[0]);
        let mut modules: Vec<ModuleOutcome> = parts
            .iter()
            .flat_map(|p| p.modules.iter().cloned())
            .collect();
        modules.sort_by_key(|m| m.index);
        let mut batches: Vec<BatchReport> = parts
            .iter()
            .flat_map(|p| p.batches.iter().cloned())
            .collect();
        batches.sort_by_key(|b| b.batch);
        let missing: Vec<String> = (1..=n)
            .filter(|k| !seen.contains(k))
            .map(|k| format!("{k}/{n}"))
            .collect();
        let mut notes: Vec<Note> = Vec::new();
        for note in parts.iter().flat_map(|p| p.notes.iter()) {
            if !note.of_shard && !notes.contains(note) {
                notes.push(note.clone());
            }
        }
        if !missing.is_empty() {
            notes.push(Note::run(format!(
                "shards {} are missing: their modules have no verdict here",
                missing.join(", ")
            )));
        }
        let summary = BootSummary::of(&modules);
        Ok(BootReport {
            done: missing.is_empty() && parts.iter().all(|p| p.done),
            boot_failure: parts.iter().find_map(|p| p.boot_failure.clone()),
            boots: parts.iter().flat_map(|p| p.boots.iter().cloned()).collect(),
            seconds_to_done: parts
                .iter()
                .filter_map(|p| p.seconds_to_done)
                .reduce(f64::max),
            damaged_records: parts.iter().map(|p| p.damaged_records).sum(),
            lost_records: parts.iter().map(|p| p.lost_records).sum(),
            modules,
            export_table: lead.export_table.clone(),
            notes,
            summary,
            shard: (!missing.is_empty()).then_some(first.shard).flatten(),
            batches,
            prepare_seconds: parts.iter().map(|p| p.prepare_seconds).fold(0.0, f64::max),
            ..(*lead).clone()
        })
    }

    /// The run could not test the modules at all: QEMU would not start the machine. One
    /// infrastructure failure, not a finding about each module. (A kernel that hangs or
    /// panics before the agent is a finding about the kernel: `git bisect` calls it bad.)
    pub fn infrastructure_failure(&self) -> Option<&str> {
        let nothing_ran = self
            .modules
            .iter()
            .all(|m| m.verdict == RuntimeVerdict::NotRun);
        self.boot_failure
            .as_ref()
            .filter(|f| nothing_ran && f.kind == BootFailureKind::Infrastructure)
            .map(|f| f.text.as_str())
    }
}

// Keys results.json files from before distribution scale lack: not written back as zeros.
fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard's note on its own share is dropped when the shards are joined; notes about
    /// the run are kept once; both are written as their text.
    #[test]
    fn a_shards_own_note_is_dropped_on_joining_and_notes_are_text() {
        let part = |k: u32, share: &str| BootReport {
            done: true,
            shard: Some(format!("{k}/2").parse().unwrap()),
            notes: vec![Note::run("2 boots side by side"), Note::shard(share)],
            ..Default::default()
        };
        let joined = BootReport::join_shards(&[
            part(1, "shard 1/2: boots 1 of 2, 3 of the 6 modules"),
            part(2, "shard 2/2: boots 2 of 2, 3 of the 6 modules"),
        ])
        .unwrap();
        assert_eq!(joined.notes, vec![Note::run("2 boots side by side")]);
        let text = serde_json::to_string(&part(1, "shard 1/2: boots 1 of 2")).unwrap();
        assert!(
            text.contains(r#""notes":["2 boots side by side","shard 1/2: boots 1 of 2"]"#),
            "{text}"
        );
        // Read back (and from a v1 file): the share is known again.
        let back: BootReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back.notes, part(1, "shard 1/2: boots 1 of 2").notes);
    }
}
