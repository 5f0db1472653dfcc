//! Why a guest did not reach `done`, typed: what decides (infrastructure or a finding about
//! the kernel) reads the kind; the words are for people.
use serde::{Deserialize, Serialize};

/// One boot failure: its kind and what to tell a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootFailure {
    pub kind: BootFailureKind,
    pub text: String,
}

/// The ways a guest ends without reporting `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootFailureKind {
    /// QEMU would not start the machine: nothing was tested, and nothing is known about the
    /// kernel.
    Infrastructure,
    /// The kernel crashed (a panic, an oops) before the agent started.
    KernelCrashed,
    /// The kernel did not reach the agent: in time, or before QEMU ended or went silent.
    KernelHung,
    /// The agent (init) died or exited: before it reported anything, or after its loads
    /// without reporting done.
    AgentDied,
    /// The guest never booted: the run was interrupted first.
    Interrupted,
}

impl BootFailure {
    pub fn new(kind: BootFailureKind, text: impl Into<String>) -> Self {
        BootFailure {
            kind,
            text: text.into(),
        }
    }

    /// The same failure, its text led by where it happened ("boot 2 of 3: …").
    pub fn in_boot(&self, place: &str) -> Self {
        BootFailure::new(self.kind, format!("{place}: {}", self.text))
    }

    /// A failure as schema v1 wrote it: its text and the infrastructure flag only. The kind
    /// is read back from the words modverify wrote for each (files written since carry it).
    pub fn of_v1(text: String, infrastructure: bool) -> Self {
        let has = |s: &str| text.contains(s);
        let kind = if infrastructure {
            BootFailureKind::Infrastructure
        } else if has("interrupted before this batch booted") {
            BootFailureKind::Interrupted
        } else if has("init (the guest agent)") || has("the guest stopped after its loads") {
            BootFailureKind::AgentDied
        } else if has("crashed while booting") || has("Kernel panic") {
            BootFailureKind::KernelCrashed
        } else {
            BootFailureKind::KernelHung
        };
        BootFailure::new(kind, text)
    }
}

impl std::fmt::Display for BootFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A report's failure as results.json keeps it: `boot_failure` (the text, as in schema v1),
/// `boot_failure_kind`, and v1's `infrastructure` flag; a v1 file without the kind is read
/// by [`BootFailure::of_v1`]. Used with `#[serde(flatten, with = "…")]`.
pub mod wire {
    use super::{BootFailure, BootFailureKind};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize, Default)]
    #[serde(default)]
    struct Wire {
        #[serde(skip_serializing_if = "Option::is_none")]
        boot_failure: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        boot_failure_kind: Option<BootFailureKind>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        infrastructure: bool,
    }

    pub fn serialize<S: Serializer>(f: &Option<BootFailure>, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            boot_failure: f.as_ref().map(|f| f.text.clone()),
            boot_failure_kind: f.as_ref().map(|f| f.kind),
            infrastructure: f
                .as_ref()
                .is_some_and(|f| f.kind == BootFailureKind::Infrastructure),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BootFailure>, D::Error> {
        let w = Wire::deserialize(d)?;
        Ok(w.boot_failure.map(|text| match w.boot_failure_kind {
            Some(kind) => BootFailure::new(kind, text),
            None => BootFailure::of_v1(text, w.infrastructure),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Default)]
    #[serde(default)]
    struct Holder {
        done: bool,
        #[serde(flatten, with = "wire")]
        failure: Option<BootFailure>,
    }

    /// Written with its kind; a v1 file's text and flag read back to the kind modverify
    /// meant; none is no keys at all.
    #[test]
    fn a_failure_reads_and_writes_as_v1_did_plus_its_kind() {
        let h = Holder {
            done: false,
            failure: Some(BootFailure::new(
                BootFailureKind::Infrastructure,
                "QEMU would not start the machine (exited with status 1)",
            )),
        };
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(
            text,
            r#"{"done":false,"boot_failure":"QEMU would not start the machine (exited with status 1)","boot_failure_kind":"infrastructure","infrastructure":true}"#
        );
        let back: Holder = serde_json::from_str(&text).unwrap();
        assert_eq!(back.failure, h.failure);
        assert_eq!(
            serde_json::to_string(&Holder::default()).unwrap(),
            r#"{"done":false}"#
        );
        for (json, kind) in [
            (
                r#"{"boot_failure":"QEMU would not start the machine","infrastructure":true}"#,
                BootFailureKind::Infrastructure,
            ),
            (
                r#"{"boot_failure":"Kernel panic - not syncing: Attempted to kill init!"}"#,
                BootFailureKind::KernelCrashed,
            ),
            (
                r#"{"boot_failure":"boot 2 of 3: init (the guest agent) was killed by signal 4 (SIGILL), before it reported anything"}"#,
                BootFailureKind::AgentDied,
            ),
            (
                r#"{"boot_failure":"the kernel did not reach the agent within --timeout 2m"}"#,
                BootFailureKind::KernelHung,
            ),
            (
                r#"{"boot_failure":"interrupted before this batch booted"}"#,
                BootFailureKind::Interrupted,
            ),
        ] {
            let h: Holder = serde_json::from_str(json).unwrap();
            assert_eq!(h.failure.unwrap().kind, kind, "{json}");
        }
        let none: Holder = serde_json::from_str(r#"{"done":true}"#).unwrap();
        assert!(none.failure.is_none());
    }
}
