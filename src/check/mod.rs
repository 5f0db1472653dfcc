//! Static prediction: the kernel's export table plus module facts in, a verdict per module
//! and the export table's own consistency out. Findings are values here, never errors.
pub mod exports;
pub mod modules;
pub mod stage;

use serde::{Deserialize, Serialize};

pub use exports::{check_export_table, ExportProblem, ExportProblemKind, Severity};
pub use modules::{predict, ModuleInput, Policy};

/// The verdict vocabulary, shared by `check`'s JSON and the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    CrcMismatch,
    UnknownSymbol,
    MissingVersion,
    GplOnly,
    Namespace,
    BadVermagic,
    DuplicateExport,
    DependencyFailed,
    WrongArch,
    Malformed,
    /// Another file of the same module name takes precedence (depmod's order): modprobe
    /// loads that one, and the kernel would refuse this one as already loaded. Neither ok
    /// nor a failure.
    Shadowed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::CrcMismatch => "crc_mismatch",
            Verdict::UnknownSymbol => "unknown_symbol",
            Verdict::MissingVersion => "missing_version",
            Verdict::GplOnly => "gpl_only",
            Verdict::Namespace => "namespace",
            Verdict::BadVermagic => "bad_vermagic",
            Verdict::DuplicateExport => "duplicate_export",
            Verdict::DependencyFailed => "dependency_failed",
            Verdict::WrongArch => "wrong_arch",
            Verdict::Malformed => "malformed",
            Verdict::Shadowed => "shadowed",
        }
    }

    /// What a static verdict is to a CI report: it passes or fails (a module predicted to
    /// fail only because of a dependency still fails: nothing was tried).
    pub fn outcome(self) -> crate::outcome_kind::Outcome {
        use crate::outcome_kind::Outcome;
        match self {
            Verdict::Ok => Outcome::Pass,
            Verdict::CrcMismatch
            | Verdict::UnknownSymbol
            | Verdict::MissingVersion
            | Verdict::GplOnly
            | Verdict::Namespace
            | Verdict::BadVermagic
            | Verdict::DuplicateExport
            | Verdict::DependencyFailed
            | Verdict::WrongArch
            | Verdict::Malformed => Outcome::Fail,
            Verdict::Shadowed => Outcome::Shadowed,
        }
    }

    /// Fails only because a module it needs fails: listed after the cause.
    pub fn is_consequence(self) -> bool {
        self == Verdict::DependencyFailed
    }
}

/// One reason a module would fail (or, if not `fatal`, a warning the kernel prints).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    pub kind: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// The CRC the module expects (its `__versions` entry).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::hex")]
    pub module_crc: Option<u64>,
    /// The CRC the kernel would compare it with (`kcrctab[index]`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::hex")]
    pub kernel_crc: Option<u64>,
    /// What the kernel would print, line by line, as in dmesg.
    #[serde(default)]
    pub kernel_messages: Vec<String>,
    pub detail: String,
    pub fatal: bool,
}

impl Problem {
    pub fn new(kind: Verdict, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            symbol: None,
            module_crc: None,
            kernel_crc: None,
            kernel_messages: vec![],
            detail: detail.into(),
            fatal: true,
        }
    }
    pub fn symbol(mut self, s: &str) -> Self {
        self.symbol = Some(s.to_string());
        self
    }
    pub fn crcs(mut self, module: Option<u64>, kernel: Option<u64>) -> Self {
        self.module_crc = module;
        self.kernel_crc = kernel;
        self
    }
    pub fn says(mut self, msg: impl Into<String>) -> Self {
        self.kernel_messages.push(msg.into());
        self
    }
    pub fn warning(mut self) -> Self {
        self.fatal = false;
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleReport {
    /// The kernel's name for the module (`.modinfo name=`), or the file's stem.
    pub name: String,
    pub path: String,
    pub verdict: Verdict,
    #[serde(default)]
    pub problems: Vec<Problem>,
    /// Modules this one takes symbols from (what `depends=` should say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uses: Vec<String>,
}

impl ModuleReport {
    /// Predicted not to load ([`Outcome::is_failure`](crate::outcome_kind::Outcome::is_failure);
    /// a shadowed file is not tried: neither ok nor failed).
    pub fn failed(&self) -> bool {
        self.verdict.outcome().is_failure()
    }

    /// What the kernel would print for this module, from every problem (warnings too).
    pub fn kernel_messages(&self) -> Vec<String> {
        self.problems
            .iter()
            .flat_map(|p| p.kernel_messages.iter().cloned())
            .collect()
    }
}
