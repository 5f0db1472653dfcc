//! The outcome vocabulary every report speaks, for a static prediction (`check`) and a
//! kernel's verdict (`boot`) alike: one home below both, so neither imports the other for it.

/// What a module's verdict is to a report, decided once: passed, failed, the kernel died
/// or hung on it, failed only because a module it needs did, or never tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Linked; what it drives is not in the machine, so there was nothing more to test.
    Absent,
    Fail,
    Error,
    Skip,
    Miss,
    /// Another file of the same name is the one that loads: this one is not tried.
    Shadowed,
    /// Tried again in a fresh guest, and the tries disagree: no verdict stands.
    Flaky,
}

impl Outcome {
    /// Tried, and it did not work: refused, took the kernel down or hung it, or skipped
    /// because what it needs did not load. What every summary counts as `failed`, for a
    /// prediction and a kernel's verdict alike (a module never tried is `not_run`, apart).
    pub fn is_failure(self) -> bool {
        match self {
            Outcome::Fail | Outcome::Error | Outcome::Skip => true,
            Outcome::Pass
            | Outcome::Absent
            | Outcome::Miss
            | Outcome::Shadowed
            | Outcome::Flaky => false,
        }
    }

    /// Not known to work: a failure, or never tried. What a module is held to where it
    /// stands alone (a baseline's regression, a JUnit case, bisect's answer): a module that
    /// never ran is not a pass.
    pub fn not_known_to_work(self) -> bool {
        self.is_failure() || self == Outcome::Miss
    }

    /// KCIDB v5 test status.
    pub fn kcidb(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Absent => "SKIP",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
            Outcome::Skip => "SKIP",
            Outcome::Miss => "MISS",
            Outcome::Shadowed => "SKIP",
            // KCIDB has no flaky: it passes, as nextest has it, with its failed try in the
            // log excerpt.
            Outcome::Flaky => "PASS",
        }
    }
}
